package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// APIKey is a stored API key; the key itself is never stored, only its SHA-256.
type APIKey struct {
	ID int64 `json:"id"`
	// Name is the person the key belongs to; keys with the same name (compared without
	// case) are the same person, and approvals count people, not keys.
	Name       string     `json:"name"`
	Roles      []string   `json:"roles"`
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

// ParseRoles reads a comma-separated role set such as "responder,approver". A partner
// role stands alone: a partner team's key is never also a responder.
func ParseRoles(s string) ([]string, error) {
	var roles []string
	for _, r := range strings.Split(s, ",") {
		r = strings.TrimSpace(r)
		if !ValidRole(r) {
			return nil, fieldErr("role", "want admin, responder, approver (comma-separated to combine) or partner:<team>, got %q", r)
		}
		if !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	if len(roles) > 1 && slices.ContainsFunc(roles, func(r string) bool { return strings.HasPrefix(r, "partner:") }) {
		return nil, fieldErr("role", "a partner role cannot be combined with another role")
	}
	slices.Sort(roles)
	return roles, nil
}

// Has reports whether the key holds role.
func (k APIKey) Has(role string) bool { return slices.Contains(k.Roles, role) }

// Person is the person the key belongs to, as approvals count them.
func (k APIKey) Person() string { return Person(k.Name) }

// Person normalises a key name into the person it names (as the database does).
func Person(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

// Actor is how the key's person appears in the audit trail and to workflows: its name
// and the key's id. Names cannot hold '#', so the id is always the last part.
func (k APIKey) Actor() string { return fmt.Sprintf("%s#%d", k.Name, k.ID) }

// ActorKeyID returns the key id an actor string names (0 when it names none).
func ActorKeyID(actor string) int64 {
	i := strings.LastIndexByte(actor, '#')
	if i < 0 {
		return 0
	}
	id, err := strconv.ParseInt(actor[i+1:], 10, 64)
	if err != nil || id < 1 {
		return 0
	}
	return id
}

// HashKey returns the SHA-256 of an API key or token, the only form stored.
func HashKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// CreateAPIKey makes a new random key for the person name with a role set such as
// "responder,approver" and returns it once, in clear.
func (s *Store) CreateAPIKey(ctx context.Context, name, role, actor string) (string, APIKey, error) {
	if !keyNameRe.MatchString(name) {
		return "", APIKey{}, fieldErr("name", "the person the key belongs to: 1-100 letters, digits, spaces and _.@:-")
	}
	roles, err := ParseRoles(role)
	if err != nil {
		return "", APIKey{}, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", APIKey{}, err
	}
	key := "bf_" + base64.RawURLEncoding.EncodeToString(raw)
	k := APIKey{Name: name, Roles: roles, Prefix: key[:10]}
	err = s.WithTx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO api_keys (name, roles, prefix, key_hash) VALUES ($1, $2, $3, $4)
			RETURNING id, created_at`, name, roles, k.Prefix, HashKey(key)).Scan(&k.ID, &k.CreatedAt); err != nil {
			return fmt.Errorf("store API key: %w", err)
		}
		_, err := AppendAudit(ctx, tx, AuditEntry{Actor: actor, Action: "apikey.created", Detail: map[string]any{"key_id": k.ID, "roles": roles, "person": k.Person()}})
		return err
	})
	if err != nil {
		return "", APIKey{}, err
	}
	return key, k, nil
}

// ListAPIKeys returns every key, newest first.
func (s *Store) ListAPIKeys(ctx context.Context) ([]APIKey, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, name, roles, prefix, created_at, revoked_at, last_used_at FROM api_keys ORDER BY id DESC`)
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (APIKey, error) {
		var k APIKey
		err := row.Scan(&k.ID, &k.Name, &k.Roles, &k.Prefix, &k.CreatedAt, &k.RevokedAt, &k.LastUsedAt)
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

// RevokePerson revokes every live key of the person name holding role and reports how
// many it revoked (dev replaces its admin key at each start this way).
func (s *Store) RevokePerson(ctx context.Context, name, role, actor string) (int, error) {
	var n int
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE api_keys SET revoked_at = now()
			WHERE person = $1 AND $2 = ANY (roles) AND revoked_at IS NULL RETURNING id`, Person(name), role)
		if err != nil {
			return fmt.Errorf("revoke keys: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := AppendAudit(ctx, tx, AuditEntry{Actor: actor, Action: "apikey.revoked", Detail: map[string]any{"key_id": id}}); err != nil {
				return err
			}
		}
		n = len(ids)
		return nil
	})
	return n, err
}

// Authenticate returns the live key matching key, or ErrInvalidKey.
func (s *Store) Authenticate(ctx context.Context, key string) (APIKey, error) {
	var k APIKey
	err := s.pool.QueryRow(ctx, `UPDATE api_keys SET last_used_at = now()
		WHERE key_hash = $1 AND revoked_at IS NULL
		RETURNING id, name, roles, prefix, created_at, revoked_at, last_used_at`, HashKey(key)).
		Scan(&k.ID, &k.Name, &k.Roles, &k.Prefix, &k.CreatedAt, &k.RevokedAt, &k.LastUsedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return APIKey{}, ErrInvalidKey
	}
	return k, err
}

// GetAPIKey returns a live key by id (ErrInvalidKey when unknown or revoked).
func (s *Store) GetAPIKey(ctx context.Context, id int64) (APIKey, error) {
	var k APIKey
	err := s.pool.QueryRow(ctx, `SELECT id, name, roles, prefix, created_at, revoked_at, last_used_at FROM api_keys
		WHERE id = $1 AND revoked_at IS NULL`, id).Scan(&k.ID, &k.Name, &k.Roles, &k.Prefix, &k.CreatedAt, &k.RevokedAt, &k.LastUsedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return APIKey{}, ErrInvalidKey
	}
	return k, err
}
