package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// ErrConflict is returned when a request contradicts stored state (the same declaration
// key with a different body, for instance).
var ErrConflict = errors.New("conflict")

// FieldError is invalid input in one named field.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Unwrap makes errors.Is(err, ErrInvalidInput) hold.
func (e *FieldError) Unwrap() error { return ErrInvalidInput }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Stages of an incident's life.
const (
	StageDeclared      = "declared"
	StageAssessing     = "assessing"
	StageScoping       = "scoping"
	StageApproval      = "approval"
	StagePartnerReview = "partner_review"
	StageNotifying     = "notifying"
	StageTracking      = "tracking"
	StageClosed        = "closed"
)

// Severities an incident may have.
var Severities = []string{"low", "medium", "high", "critical"}

// ScopeCriteria selects the affected tenants. Within one list any value matches; across
// lists every non-empty list must match (services AND countries, …). TenantIDs are added
// whatever the other lists say and Exclude removes tenants.
type ScopeCriteria struct {
	Services    []string `json:"services,omitempty"`
	Connectors  []string `json:"connectors,omitempty"`
	Countries   []string `json:"countries,omitempty"`
	DataRegions []string `json:"data_regions,omitempty"`
	Regimes     []string `json:"regimes,omitempty"`
	TenantIDs   []string `json:"tenant_ids,omitempty"`
	Exclude     []string `json:"exclude,omitempty"`
}

// Empty reports whether no criterion would select a tenant.
func (c ScopeCriteria) Empty() bool {
	return len(c.Services)+len(c.Connectors)+len(c.Countries)+len(c.DataRegions)+len(c.Regimes)+len(c.TenantIDs) == 0
}

var (
	itemRe    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)
	partnerRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
)

// Validate checks every list.
func (c ScopeCriteria) Validate() error {
	lists := []struct {
		name string
		v    []string
	}{{"scope.services", c.Services}, {"scope.connectors", c.Connectors}, {"scope.countries", c.Countries},
		{"scope.data_regions", c.DataRegions}, {"scope.regimes", c.Regimes}, {"scope.tenant_ids", c.TenantIDs}, {"scope.exclude", c.Exclude}}
	for _, l := range lists {
		if len(l.v) > 10000 {
			return fieldErr(l.name, "at most 10000 values")
		}
		for _, v := range l.v {
			if !itemRe.MatchString(v) {
				return fieldErr(l.name, "value %q: want 1-64 letters, digits, '.', '_', ':', '-'", v)
			}
		}
	}
	for _, c := range c.Countries {
		if len(c) != 2 || strings.ToUpper(c) != c {
			return fieldErr("scope.countries", "value %q: want an ISO 3166-1 alpha-2 code such as DE", c)
		}
	}
	return nil
}

// Declaration is what a responder declares.
type Declaration struct {
	Title          string          `json:"title"`
	Summary        string          `json:"summary"`
	Severity       string          `json:"severity"`
	AwareAt        time.Time       `json:"aware_at"`
	DataCategories []string        `json:"data_categories"`
	Scope          ScopeCriteria   `json:"scope"`
	Partner        string          `json:"partner,omitempty"`
	Notice         json.RawMessage `json:"notice,omitempty"`
}

// Validate checks a declaration against now.
func (d Declaration) Validate(now time.Time) error {
	switch {
	case strings.TrimSpace(d.Title) == "" || utf8.RuneCountInString(d.Title) > 200:
		return fieldErr("title", "required, at most 200 characters")
	case !storable(d.Title):
		return fieldErr("title", "contains characters that cannot be stored (NUL or invalid UTF-8)")
	case !storable(d.Summary):
		return fieldErr("summary", "contains characters that cannot be stored (NUL or invalid UTF-8)")
	case utf8.RuneCountInString(d.Summary) > 20000:
		return fieldErr("summary", "at most 20000 characters")
	case !slices.Contains(Severities, d.Severity):
		return fieldErr("severity", "want one of %s", strings.Join(Severities, ", "))
	case d.AwareAt.IsZero():
		return fieldErr("aware_at", "required (RFC 3339 time at which we became aware of the breach)")
	case d.AwareAt.After(now.Add(5 * time.Minute)):
		return fieldErr("aware_at", "lies in the future")
	case len(d.DataCategories) > 50:
		return fieldErr("data_categories", "at most 50")
	case d.Partner != "" && !partnerRe.MatchString(d.Partner):
		return fieldErr("partner", "not a partner name")
	}
	for _, c := range d.DataCategories {
		if strings.TrimSpace(c) == "" || utf8.RuneCountInString(c) > 100 || !storable(c) {
			return fieldErr("data_categories", "each 1-100 characters")
		}
	}
	return d.Scope.Validate()
}

// storable reports whether PostgreSQL can store s as text: valid UTF-8 without NUL.
func storable(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// Incident is a stored incident.
type Incident struct {
	ID             string          `json:"id"`
	Title          string          `json:"title"`
	Summary        string          `json:"summary"`
	Severity       string          `json:"severity"`
	AwareAt        time.Time       `json:"aware_at"`
	DataCategories []string        `json:"data_categories"`
	Scope          ScopeCriteria   `json:"scope"`
	Partner        string          `json:"partner,omitempty"`
	Reportable     *bool           `json:"reportable,omitempty"`
	Rationale      string          `json:"rationale,omitempty"`
	NoticeDraft    json.RawMessage `json:"notice_draft,omitempty"`
	NoticeHash     string          `json:"notice_hash,omitempty"`
	Stage          string          `json:"stage"`
	ClosedReason   string          `json:"closed_reason,omitempty"`
	DeclaredBy     string          `json:"declared_by"`
	CreatedAt      time.Time       `json:"created_at"`
	UpdatedAt      time.Time       `json:"updated_at"`
}

const incidentCols = `id, title, summary, severity, aware_at, data_categories, scope_criteria, coalesce(partner_name, ''),
	reportable, coalesce(reportable_rationale, ''), notice_draft, coalesce(notice_hash, ''), stage, coalesce(closed_reason, ''),
	declared_by, created_at, updated_at`

func scanIncident(row pgx.Row) (Incident, error) {
	var i Incident
	err := row.Scan(&i.ID, &i.Title, &i.Summary, &i.Severity, &i.AwareAt, &i.DataCategories, &i.Scope, &i.Partner,
		&i.Reportable, &i.Rationale, &i.NoticeDraft, &i.NoticeHash, &i.Stage, &i.ClosedReason, &i.DeclaredBy, &i.CreatedAt, &i.UpdatedAt)
	return i, notFound(err)
}

func newIncidentID(now time.Time) string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "INC-" + now.UTC().Format("20060102") + "-" + string(b)
}

// declarationLockClass is the first key of the transaction-scoped advisory locks that
// serialize declarations under one Idempotency-Key (the second key is the key's hash). The
// two-key lock space does not overlap the one-key space the audit chain and tenant
// imports lock in.
const declarationLockClass = 7251311

// CreateIncident stores a declaration. With a key, the same key and body return the
// incident already stored (created false) and the same key with another body is
// ErrConflict. Identical declarations racing under one key get the one incident: one of
// them creates it, the others return it.
func (s *Store) CreateIncident(ctx context.Context, key string, d Declaration, actor string, now time.Time) (Incident, bool, error) {
	if err := d.Validate(now); err != nil {
		return Incident{}, false, err
	}
	if len(key) > 200 {
		return Incident{}, false, fieldErr("Idempotency-Key", "at most 200 characters")
	}
	d.AwareAt = d.AwareAt.UTC().Truncate(time.Microsecond)
	body, err := json.Marshal(d)
	if err != nil {
		return Incident{}, false, err
	}
	sum := sha256.Sum256(body)
	hash := hex.EncodeToString(sum[:])
	// The advisory lock makes a racing declaration wait for the first one's commit and
	// then find its row, so it normally never reaches the INSERT. A unique violation can
	// still happen where the lock cannot help (a transaction isolation above READ
	// COMMITTED, whose snapshot predates the winner's commit; an incident id drawn twice):
	// the violation is raised only once the other row is committed, so a fresh
	// transaction finds it (or draws another id).
	for attempt := 1; ; attempt++ {
		inc, created, err := s.createIncident(ctx, key, d, hash, actor, now)
		if !IsUniqueViolation(err) {
			return inc, created, err
		}
		if attempt == 3 {
			return Incident{}, false, fmt.Errorf("%w: declaration raced with another using the same key; retry", ErrConflict)
		}
	}
}

// createIncident is one attempt of CreateIncident, in one transaction.
func (s *Store) createIncident(ctx context.Context, key string, d Declaration, hash, actor string, now time.Time) (Incident, bool, error) {
	var inc Incident
	created := false
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		if key != "" {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, declarationLockClass, key); err != nil {
				return fmt.Errorf("lock declaration key: %w", err)
			}
			var existingHash string
			err := tx.QueryRow(ctx, `SELECT id, declaration_hash FROM incidents WHERE declaration_key = $1`, key).Scan(&inc.ID, &existingHash)
			if err == nil {
				if existingHash != hash {
					return fmt.Errorf("%w: Idempotency-Key %q was used for a different declaration (%s)", ErrConflict, key, inc.ID)
				}
				inc, err = scanIncident(tx.QueryRow(ctx, `SELECT `+incidentCols+` FROM incidents WHERE id = $1`, inc.ID))
				return err
			}
			if err = notFound(err); !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		if d.Partner != "" {
			var ok bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM partners WHERE name = $1)`, d.Partner).Scan(&ok); err != nil {
				return err
			}
			if !ok {
				return fieldErr("partner", "unknown partner %q", d.Partner)
			}
		}
		var keyArg any
		if key != "" {
			keyArg = key
		}
		var draft any
		if len(d.Notice) > 0 {
			draft = d.Notice
		}
		var err error
		inc, err = scanIncident(tx.QueryRow(ctx, `INSERT INTO incidents (id, declaration_key, declaration_hash, title, summary, severity,
				aware_at, data_categories, scope_criteria, partner_name, notice_draft, declared_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULLIF($10, ''), $11, $12)
			RETURNING `+incidentCols,
			newIncidentID(now), keyArg, hash, d.Title, d.Summary, d.Severity, d.AwareAt, nz(d.DataCategories), d.Scope, d.Partner, draft, actor))
		if err != nil {
			return fmt.Errorf("insert incident: %w", err)
		}
		created = true
		_, err = AppendAudit(ctx, tx, AuditEntry{IncidentID: inc.ID, Actor: actor, Action: "incident.declared",
			Detail: map[string]any{"severity": d.Severity, "aware_at": d.AwareAt, "partner": d.Partner}})
		return err
	})
	return inc, created, err
}

// GetIncident returns one incident.
func (s *Store) GetIncident(ctx context.Context, id string) (Incident, error) {
	return scanIncident(s.pool.QueryRow(ctx, `SELECT `+incidentCols+` FROM incidents WHERE id = $1`, id))
}

// ListIncidents returns incidents newest first, optionally of one stage, after the
// cursor (an incident id) for pagination.
func (s *Store) ListIncidents(ctx context.Context, stage string, limit int, before time.Time) ([]Incident, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	if before.IsZero() {
		before = time.Now().Add(time.Hour)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+incidentCols+` FROM incidents
		WHERE ($1 = '' OR stage = $1) AND created_at < $2 ORDER BY created_at DESC LIMIT $3`, stage, before, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Incident, error) { return scanIncident(row) })
}

// SetStage moves an incident to stage and audits it with actor and detail.
func (s *Store) SetStage(ctx context.Context, id, stage, actor string, detail map[string]any) error {
	return s.WithTx(ctx, func(tx pgx.Tx) error {
		var from string
		if err := tx.QueryRow(ctx, `SELECT stage FROM incidents WHERE id = $1 FOR NO KEY UPDATE`, id).Scan(&from); err != nil {
			return notFound(err)
		}
		if from == stage {
			return nil // a retried activity
		}
		if _, err := tx.Exec(ctx, `UPDATE incidents SET stage = $2, updated_at = now() WHERE id = $1`, id, stage); err != nil {
			return err
		}
		d := map[string]any{"from": from, "to": stage}
		for k, v := range detail {
			d[k] = v
		}
		_, err := AppendAudit(ctx, tx, AuditEntry{IncidentID: id, Actor: actor, Action: "incident.stage", Detail: d})
		return err
	})
}

// RecordAssessment stores the reportability decision.
func (s *Store) RecordAssessment(ctx context.Context, id string, reportable bool, rationale, actor string) error {
	return s.WithTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE incidents SET reportable = $2, reportable_rationale = $3, updated_at = now() WHERE id = $1`, id, reportable, rationale)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		_, err = AppendAudit(ctx, tx, AuditEntry{IncidentID: id, Actor: actor, Action: "incident.assessed",
			Detail: map[string]any{"reportable": reportable, "rationale": rationale}})
		return err
	})
}

// SaveDraft stores the notice draft and its content hash; earlier approvals no longer
// match the new hash.
func (s *Store) SaveDraft(ctx context.Context, id string, draft json.RawMessage, hash, actor string) error {
	return s.WithTx(ctx, func(tx pgx.Tx) error {
		var old string
		if err := tx.QueryRow(ctx, `SELECT coalesce(notice_hash, '') FROM incidents WHERE id = $1 FOR NO KEY UPDATE`, id).Scan(&old); err != nil {
			return notFound(err)
		}
		if old == hash {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE incidents SET notice_draft = $2, notice_hash = $3, updated_at = now() WHERE id = $1`, id, draft, hash); err != nil {
			return err
		}
		// Sends read the notice by hash, whichever way it came.
		if _, err := tx.Exec(ctx, insertDraft, id, hash, draft, actor, ActorKeyID(actor)); err != nil {
			return err
		}
		var phase int
		if err := tx.QueryRow(ctx, `SELECT phase FROM notice_drafts WHERE incident_id = $1 AND content_hash = $2`, id, hash).Scan(&phase); err != nil {
			return err
		}
		_, err := AppendAudit(ctx, tx, AuditEntry{IncidentID: id, Actor: actor, Action: "notice.drafted",
			Detail: map[string]any{"content_hash": hash, "previous_hash": old, "phase": phase}})
		return err
	})
}

// insertDraft keeps a draft under its hash with the person who proposed it first, so
// that person cannot approve it.
// The phase is the one the draft names (notice.Draft.Phase; none reads as the initial).
const insertDraft = `INSERT INTO notice_drafts (incident_id, content_hash, draft, created_by, drafted_by, phase)
	VALUES ($1, $2, $3, $4, (SELECT person FROM api_keys WHERE id = $5),
	        greatest(coalesce(CASE WHEN jsonb_typeof($3::jsonb -> 'phase' -> 'number') = 'number'
	                               THEN ($3::jsonb -> 'phase' ->> 'number')::numeric END, 1), 1)::integer)
	ON CONFLICT DO NOTHING`

// ErrSeparation is returned for an approval that separation of duties refuses.
var ErrSeparation = fmt.Errorf("%w: separation of duties", ErrInvalidInput)

// Approve records the approval of hash for scope version by the person whose key actor
// names ("name#id") and returns how many distinct people have approved that hash for
// that version. The database is the authority, whatever door the approval came through:
// the key must be live, belong to the named person and hold the approver role; the
// person who drafted the hash may not approve it; a person approves once, with any key.
func (s *Store) Approve(ctx context.Context, id, hash string, version int, actor string) (int, error) {
	var n int
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		var person string
		var approver bool
		name, _, _ := strings.Cut(actor, "#")
		err := tx.QueryRow(ctx, `SELECT person, 'approver' = ANY (roles) FROM api_keys
			WHERE id = $1 AND name = $2 AND revoked_at IS NULL`, ActorKeyID(actor), name).Scan(&person, &approver)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("%w: %q is not a live API key's person", ErrSeparation, actor)
		case err != nil:
			return err
		case !approver:
			return fmt.Errorf("%w: %s's key does not hold the approver role", ErrSeparation, actor)
		}
		var drafter *string
		if err := tx.QueryRow(ctx, `SELECT drafted_by FROM notice_drafts WHERE incident_id = $1 AND content_hash = $2`, id, hash).
			Scan(&drafter); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if drafter != nil && *drafter == person {
			return fmt.Errorf("%w: %s drafted this notice and may not approve it; two other people must", ErrSeparation, name)
		}
		tag, err := tx.Exec(ctx, `INSERT INTO approvals (incident_id, content_hash, scope_version, approver, key_id) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT DO NOTHING`, id, hash, version, person, ActorKeyID(actor))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%w: %s has already approved this notice (with another key); a second, different person is needed", ErrSeparation, name)
		}
		if _, err := AppendAudit(ctx, tx, AuditEntry{IncidentID: id, Actor: actor, Action: "notice.approved",
			Detail: map[string]any{"content_hash": hash, "scope_version": version, "person": person}}); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT count(DISTINCT approver) FROM approvals WHERE incident_id = $1 AND content_hash = $2 AND scope_version = $3`,
			id, hash, version).Scan(&n)
	})
	return n, err
}

// CloseIncident marks an incident closed with reason.
func (s *Store) CloseIncident(ctx context.Context, id, reason, actor string) error {
	return s.WithTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE incidents SET stage = 'closed', closed_reason = $2, updated_at = now() WHERE id = $1 AND stage <> 'closed'`, id, reason)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		_, err = AppendAudit(ctx, tx, AuditEntry{IncidentID: id, Actor: actor, Action: "incident.closed", Detail: map[string]any{"reason": reason}})
		return err
	})
}

// PutDraft keeps a proposed notice draft under its content hash (validated by the
// caller); proposing the same draft twice is harmless.
func (s *Store) PutDraft(ctx context.Context, id string, draft json.RawMessage, hash, actor string) error {
	_, err := s.pool.Exec(ctx, insertDraft, id, hash, draft, actor, ActorKeyID(actor))
	if err != nil {
		return fmt.Errorf("store draft: %w", err)
	}
	return nil
}

// GetDraft returns a proposed draft by hash.
func (s *Store) GetDraft(ctx context.Context, id, hash string) (json.RawMessage, error) {
	var raw json.RawMessage
	err := s.pool.QueryRow(ctx, `SELECT draft FROM notice_drafts WHERE incident_id = $1 AND content_hash = $2`, id, hash).Scan(&raw)
	return raw, notFound(err)
}
