package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNoSession is returned for a console session that is unknown, expired, ended, or
// whose key was revoked.
var ErrNoSession = errors.New("no such console session")

// Session is a live console session and the key it signed in with.
type Session struct {
	Key       APIKey
	ExpiresAt time.Time
}

// CreateSession stores a console session of key id whose cookie id hashes to idHash;
// its expiry is fixed now (the schema caps it at 12 hours) and never extended.
func (s *Store) CreateSession(ctx context.Context, idHash []byte, keyID int64, ttl time.Duration) (time.Time, error) {
	var exp time.Time
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO console_sessions (id_hash, key_id, expires_at)
			VALUES ($1, $2, now() + $3::interval) RETURNING expires_at`, idHash, keyID, fmt.Sprintf("%d seconds", int(ttl.Seconds()))).Scan(&exp); err != nil {
			return fmt.Errorf("store console session: %w", err)
		}
		_, err := AppendAudit(ctx, tx, AuditEntry{Actor: "console", Action: "console.signed_in", Detail: map[string]any{"key_id": keyID}})
		return err
	})
	return exp, err
}

// GetSession returns the live session idHash names with its live key.
func (s *Store) GetSession(ctx context.Context, idHash []byte) (Session, error) {
	var ss Session
	k := &ss.Key
	err := s.pool.QueryRow(ctx, `SELECT k.id, k.name, k.roles, k.prefix, k.created_at, k.revoked_at, k.last_used_at, cs.expires_at
		FROM console_sessions cs JOIN api_keys k ON k.id = cs.key_id
		WHERE cs.id_hash = $1 AND cs.ended_at IS NULL AND cs.expires_at > now() AND k.revoked_at IS NULL`, idHash).
		Scan(&k.ID, &k.Name, &k.Roles, &k.Prefix, &k.CreatedAt, &k.RevokedAt, &k.LastUsedAt, &ss.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, ErrNoSession
	}
	return ss, err
}

// EndSession ends a console session (sign-out); ending it twice is harmless.
func (s *Store) EndSession(ctx context.Context, idHash []byte) error {
	return s.WithTx(ctx, func(tx pgx.Tx) error {
		var keyID int64
		err := tx.QueryRow(ctx, `UPDATE console_sessions SET ended_at = now() WHERE id_hash = $1 AND ended_at IS NULL RETURNING key_id`, idHash).Scan(&keyID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("end console session: %w", err)
		}
		_, err = AppendAudit(ctx, tx, AuditEntry{Actor: "console", Action: "console.signed_out", Detail: map[string]any{"key_id": keyID}})
		return err
	})
}
