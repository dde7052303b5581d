package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
)

// APIKey is a stored API key; the key itself is never stored, only its SHA-256.
type APIKey struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	Prefix     string     `json:"prefix"`
	CreatedAt  time.Time  `json:"created_at"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// ErrInvalidKey is returned for an unknown or revoked API key.
var ErrInvalidKey = errors.New("invalid API key")

var (
	roleRe    = regexp.MustCompile(`^(admin|responder|approver|partner:[a-z0-9][a-z0-9-]{0,62})$`)
	keyNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 _.@:-]{0,99}$`)
)

// ValidRole reports whether role is one breachflow knows.
func ValidRole(role string) bool { return roleRe.MatchString(role) }

// HashKey returns the SHA-256 of an API key or token, the only form stored.
func HashKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// CreateAPIKey makes a new random key with role and returns it once, in clear.
func (s *Store) CreateAPIKey(ctx context.Context, name, role, actor string) (string, APIKey, error) {
	if !keyNameRe.MatchString(name) {
		return "", APIKey{}, fieldErr("name", "1-100 letters, digits, spaces and _.@:-")
	}
	if !ValidRole(role) {
		return "", APIKey{}, fieldErr("role", "want admin, responder, approver or partner:<name>, got %q", role)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", APIKey{}, err
	}
	key := "bf_" + base64.RawURLEncoding.EncodeToString(raw)
	k := APIKey{Name: name, Role: role, Prefix: key[:10]}
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO api_keys (name, role, prefix, key_hash) VALUES ($1, $2, $3, $4)
			RETURNING id, created_at`, name, role, k.Prefix, HashKey(key)).Scan(&k.ID, &k.CreatedAt); err != nil {
			return fmt.Errorf("store API key: %w", err)
		}
		_, err := AppendAudit(ctx, tx, AuditEntry{Actor: actor, Action: "apikey.created", Detail: map[string]any{"key_id": k.ID, "role": role}})
		return err
	})
	if err != nil {
		return "", APIKey{}, err
	}
	return key, k, nil
}

// ListAPIKeys returns every key, newest first.
func (s *Store) ListAPIKeys(ctx context.Context) ([]APIKey, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, name, role, prefix, created_at, revoked_at, last_used_at FROM api_keys ORDER BY id DESC`)
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (APIKey, error) {
		var k APIKey
		err := row.Scan(&k.ID, &k.Name, &k.Role, &k.Prefix, &k.CreatedAt, &k.RevokedAt, &k.LastUsedAt)
		return k, err
	})
}

// RevokeAPIKey revokes key id; revoking twice is harmless.
func (s *Store) RevokeAPIKey(ctx context.Context, id int64, actor string) error {
	return s.WithTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("revoke API key: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		_, err = AppendAudit(ctx, tx, AuditEntry{Actor: actor, Action: "apikey.revoked", Detail: map[string]any{"key_id": id}})
		return err
	})
}

// Authenticate returns the live key matching key, or ErrInvalidKey.
func (s *Store) Authenticate(ctx context.Context, key string) (APIKey, error) {
	var k APIKey
	err := s.pool.QueryRow(ctx, `UPDATE api_keys SET last_used_at = now()
		WHERE key_hash = $1 AND revoked_at IS NULL
		RETURNING id, name, role, prefix, created_at, revoked_at, last_used_at`, HashKey(key)).
		Scan(&k.ID, &k.Name, &k.Role, &k.Prefix, &k.CreatedAt, &k.RevokedAt, &k.LastUsedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return APIKey{}, ErrInvalidKey
	}
	return k, err
}

// GetAPIKey returns a live key by id (ErrInvalidKey when unknown or revoked).
func (s *Store) GetAPIKey(ctx context.Context, id int64) (APIKey, error) {
	var k APIKey
	err := s.pool.QueryRow(ctx, `SELECT id, name, role, prefix, created_at, revoked_at, last_used_at FROM api_keys
		WHERE id = $1 AND revoked_at IS NULL`, id).Scan(&k.ID, &k.Name, &k.Role, &k.Prefix, &k.CreatedAt, &k.RevokedAt, &k.LastUsedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return APIKey{}, ErrInvalidKey
	}
	return k, err
}
