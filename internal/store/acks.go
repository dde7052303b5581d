package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// AckTarget is what an acknowledgement link points at, for showing the page.
type AckTarget struct {
	IncidentID string `json:"incident_id"`
	TenantID   string `json:"tenant_id"`
	TenantName string `json:"tenant_name"`
	Locale     string `json:"locale"`
	// Reference and Title are those of the approved notice last sent to the tenant (see
	// LookupAck), not the incident's internal ones; empty when nothing was sent yet.
	Reference      string     `json:"reference"`
	Title          string     `json:"title"`
	AcknowledgedAt *time.Time `json:"acknowledged_at,omitempty"`
}

// LookupAck returns the live target of token, or ErrNotFound for an unknown, expired or
// tampered token (all alike). The notice it names is the one the tenant was told of: the
// latest phase whose send is still good (not bounced or dropped), else the latest phase
// sent at all, read from the draft stored under the hash that phase was released with
// (its title in the tenant's language where the draft gives one).
func (s *Store) LookupAck(ctx context.Context, token string) (AckTarget, error) {
	var a AckTarget
	var ref, title *string
	err := s.pool.QueryRow(ctx, `SELECT tok.incident_id, tok.tenant_id, t.name, t.locale,
			d.draft->'fields'->>'reference',
			coalesce(d.draft->'translations'->lower(left(t.locale, 2))->>'title', d.draft->'fields'->>'title'), ack.acknowledged_at
		FROM ack_tokens tok JOIN tenants t ON t.id = tok.tenant_id
		LEFT JOIN LATERAL (
			SELECT l.content_hash FROM ledger l
			WHERE l.incident_id = tok.incident_id AND l.tenant_id = tok.tenant_id
			  AND l.content_hash IS NOT NULL AND l.first_sent_at IS NOT NULL
			ORDER BY l.satisfied_at IS NULL, l.phase DESC
			LIMIT 1) sent ON true
		LEFT JOIN notice_drafts d ON d.incident_id = tok.incident_id AND d.content_hash = sent.content_hash
		LEFT JOIN acknowledgements ack ON ack.incident_id = tok.incident_id AND ack.tenant_id = tok.tenant_id
		WHERE tok.token_hash = $1 AND tok.expires_at > now()`, HashKey(token)).
		Scan(&a.IncidentID, &a.TenantID, &a.TenantName, &a.Locale, &ref, &title, &a.AcknowledgedAt)
	if ref != nil {
		// As the notice renders them.
		a.Reference = strings.TrimSpace(*ref)
	}
	if title != nil {
		a.Title = strings.TrimSpace(*title)
	}
	return a, notFound(err)
}

// Acknowledge records a tenant's acknowledgement once; it reports whether this call
// recorded it (false: it was already acknowledged).
func (s *Store) Acknowledge(ctx context.Context, incidentID, tenantID, via, actor string) (bool, error) {
	var recorded bool
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO acknowledgements (incident_id, tenant_id, via, actor) VALUES ($1, $2, $3, $4)
			ON CONFLICT DO NOTHING`, incidentID, tenantID, via, actor)
		if err != nil {
			return fmt.Errorf("record acknowledgement: %w", err)
		}
		recorded = tag.RowsAffected() == 1
		if !recorded {
			return nil
		}
		_, err = AppendAudit(ctx, tx, AuditEntry{IncidentID: incidentID, Actor: actor, Action: "tenant.acknowledged",
			Detail: map[string]any{"tenant_id": tenantID, "via": via}})
		return err
	})
	return recorded, err
}

// AckRequest is one acknowledgement to record.
type AckRequest struct {
	IncidentID, TenantID, Via, Actor string
}

// AcknowledgeMany records a batch of acknowledgements in one transaction, each once with
// its audit row, and reports for each request whether it recorded it (false: the tenant
// had already acknowledged, or an earlier request of the batch did). The audit chain is
// appended under one lock for the whole batch rather than once per acknowledgement.
func (s *Store) AcknowledgeMany(ctx context.Context, reqs []AckRequest) ([]bool, error) {
	n := len(reqs)
	inc, ten, via, act := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	for i, r := range reqs {
		inc[i], ten[i], via[i], act[i] = r.IncidentID, r.TenantID, r.Via, r.Actor
	}
	recorded := make([]bool, n)
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			WITH req AS (
				SELECT DISTINCT ON (incident_id, tenant_id) * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
				    WITH ORDINALITY AS r (incident_id, tenant_id, via, actor, i)
				ORDER BY incident_id, tenant_id, i
			), ins AS (
				INSERT INTO acknowledgements (incident_id, tenant_id, via, actor)
				SELECT incident_id, tenant_id, via, actor FROM req ORDER BY i
				ON CONFLICT DO NOTHING
				RETURNING incident_id, tenant_id
			), audited AS (
				-- Runs whether or not the query reads it, as every data-modifying WITH does.
				INSERT INTO audit_log (incident_id, actor, action, detail)
				SELECT req.incident_id, req.actor, 'tenant.acknowledged', jsonb_build_object('tenant_id', req.tenant_id, 'via', req.via)
				FROM ins JOIN req USING (incident_id, tenant_id) ORDER BY req.i
			)
			SELECT req.i FROM ins JOIN req USING (incident_id, tenant_id)`, inc, ten, via, act)
		if err != nil {
			return fmt.Errorf("record acknowledgements: %w", err)
		}
		idx, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("record acknowledgements: %w", err)
		}
		for _, i := range idx {
			recorded[i-1] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return recorded, nil
}

// PartnerReview is a partner team's review of a joint notification.
type PartnerReview struct {
	ID             int64      `json:"id"`
	IncidentID     string     `json:"incident_id"`
	Partner        string     `json:"partner"`
	ContentHash    string     `json:"content_hash"`
	ScopeVersion   int        `json:"scope_version"`
	CoveredTenants int        `json:"covered_tenants"`
	Status         string     `json:"status"`
	Comment        string     `json:"comment,omitempty"`
	DecidedBy      string     `json:"decided_by,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	DueAt          time.Time  `json:"due_at"`
	DecidedAt      *time.Time `json:"decided_at,omitempty"`
}

const reviewCols = `id, incident_id, partner_name, content_hash, scope_version, covered_tenants, status, coalesce(comment, ''),
	coalesce(decided_by, ''), created_at, due_at, decided_at`

func scanReview(row pgx.Row) (PartnerReview, error) {
	var r PartnerReview
	err := row.Scan(&r.ID, &r.IncidentID, &r.Partner, &r.ContentHash, &r.ScopeVersion, &r.CoveredTenants, &r.Status, &r.Comment,
		&r.DecidedBy, &r.CreatedAt, &r.DueAt, &r.DecidedAt)
	return r, notFound(err)
}

// OpenPartnerReview supersedes any pending review of the incident and opens a new one.
// Opening the same (hash, scope version) twice returns the pending one.
func (s *Store) OpenPartnerReview(ctx context.Context, incidentID, partner, hash string, scopeVersion, covered int, due time.Time) (PartnerReview, error) {
	var r PartnerReview
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		var err error
		r, err = scanReview(tx.QueryRow(ctx, `SELECT `+reviewCols+` FROM partner_reviews
			WHERE incident_id = $1 AND status = 'pending' AND content_hash = $2 AND scope_version = $3`, incidentID, hash, scopeVersion))
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE partner_reviews SET status = 'superseded', decided_at = now() WHERE incident_id = $1 AND status = 'pending'`, incidentID); err != nil {
			return err
		}
		r, err = scanReview(tx.QueryRow(ctx, `INSERT INTO partner_reviews (incident_id, partner_name, content_hash, scope_version, covered_tenants, due_at)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+reviewCols, incidentID, partner, hash, scopeVersion, covered, due))
		if err != nil {
			return fmt.Errorf("open partner review: %w", err)
		}
		_, err = AppendAudit(ctx, tx, AuditEntry{IncidentID: incidentID, Actor: "system", Action: "partner.review_requested",
			Detail: map[string]any{"review_id": r.ID, "partner": partner, "content_hash": hash, "covered_tenants": covered, "due_at": due}})
		return err
	})
	return r, err
}

// DecidePartnerReview closes the pending review with status (confirmed,
// changes_requested or overridden).
func (s *Store) DecidePartnerReview(ctx context.Context, incidentID, status, comment, actor string) (PartnerReview, error) {
	var r PartnerReview
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		var err error
		r, err = scanReview(tx.QueryRow(ctx, `UPDATE partner_reviews SET status = $2, comment = $3, decided_by = $4, decided_at = now()
			WHERE incident_id = $1 AND status = 'pending' RETURNING `+reviewCols, incidentID, status, comment, actor))
		if err != nil {
			return err
		}
		_, err = AppendAudit(ctx, tx, AuditEntry{IncidentID: incidentID, Actor: actor, Action: "partner." + status,
			Detail: map[string]any{"review_id": r.ID, "content_hash": r.ContentHash, "comment": comment}})
		return err
	})
	return r, err
}

// PendingReviews lists a partner's pending reviews (every partner's when partner is empty).
func (s *Store) PendingReviews(ctx context.Context, partner string) ([]PartnerReview, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+reviewCols+` FROM partner_reviews WHERE status = 'pending' AND ($1 = '' OR partner_name = $1)
		ORDER BY due_at`, partner)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (PartnerReview, error) { return scanReview(row) })
}

// GetReview returns one partner review.
func (s *Store) GetReview(ctx context.Context, id int64) (PartnerReview, error) {
	return scanReview(s.pool.QueryRow(ctx, `SELECT `+reviewCols+` FROM partner_reviews WHERE id = $1`, id))
}
