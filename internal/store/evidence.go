package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// TenantStatus is one tenant's line in the evidence of who was told what and when: its
// ledger row for one phase, as the database holds it.
type TenantStatus struct {
	TenantID       string     `json:"tenant_id"`
	TenantName     string     `json:"tenant_name"`
	Country        string     `json:"country"`
	Phase          int        `json:"phase"`
	State          string     `json:"state"` // owed, held, notified, delivered, bounced, unreachable, failed, removed
	Deadline       time.Time  `json:"deadline"`
	ContentHash    string     `json:"content_hash,omitempty"`
	ScopeVersion   int        `json:"scope_version,omitempty"`
	ReleasedAt     *time.Time `json:"released_at,omitempty"`
	Notices        int        `json:"notices"`
	FirstSentAt    *time.Time `json:"first_sent_at,omitempty"`
	NotifiedAt     *time.Time `json:"notified_at,omitempty"`
	DeliveredAt    *time.Time `json:"delivered_at,omitempty"`
	BouncedAt      *time.Time `json:"bounced_at,omitempty"`
	LastError      string     `json:"last_error,omitempty"`
	Reminders      int        `json:"reminders"`
	AcknowledgedAt *time.Time `json:"acknowledged_at,omitempty"`
	// DeadlineMet is true when notified by the deadline, false when notified after it or
	// still owed past it, and nil while still owed before it.
	DeadlineMet *bool `json:"deadline_met,omitempty"`
}

// stateSQL names a ledger row's state, most telling first.
const stateSQL = `CASE WHEN l.removed_at IS NOT NULL THEN 'removed'
	WHEN l.delivered_at IS NOT NULL AND l.satisfied_at IS NOT NULL THEN 'delivered'
	WHEN l.satisfied_at IS NOT NULL THEN 'notified'
	WHEN l.unreachable_at IS NOT NULL THEN 'unreachable'
	WHEN l.bounced_at IS NOT NULL THEN 'bounced'
	WHEN l.failed_at IS NOT NULL THEN 'failed'
	WHEN l.released_at IS NULL THEN 'held'
	ELSE 'owed' END`

// TenantStatuses calls fn for each tenant of incident id's ledger for phase, in tenant
// order; with onlyOpen, only tenants in scope that have not acknowledged, earliest
// deadline first. Removed tenants are listed too (state removed) unless onlyOpen.
func (s *Store) TenantStatuses(ctx context.Context, incidentID string, phase int, onlyOpen bool, limit int, now time.Time, fn func(TenantStatus) error) error {
	if limit <= 0 {
		limit = 1 << 30
	}
	order := "l.tenant_id"
	if onlyOpen {
		order = "l.deadline, l.tenant_id"
	}
	rows, err := s.pool.Query(ctx, `
		SELECT l.tenant_id, t.name, t.country, l.phase, `+stateSQL+`, l.deadline, coalesce(l.content_hash, ''), coalesce(l.scope_version, 0),
		       l.released_at, (SELECT count(*) FROM notices n WHERE n.incident_id = l.incident_id AND n.tenant_id = l.tenant_id
		                        AND (n.phase = l.phase OR (n.phase IS NULL AND l.phase = 1))),
		       l.first_sent_at, l.satisfied_at, l.delivered_at, l.bounced_at, coalesce(l.last_error, ''), l.reminders, a.acknowledged_at,
		       CASE WHEN l.satisfied_at IS NOT NULL THEN l.satisfied_at <= l.deadline WHEN l.deadline < $5 THEN false END
		FROM ledger l
		JOIN tenants t ON t.id = l.tenant_id
		LEFT JOIN acknowledgements a ON a.incident_id = l.incident_id AND a.tenant_id = l.tenant_id
		WHERE l.incident_id = $1 AND l.phase = $2 AND (NOT $3 OR (a.tenant_id IS NULL AND l.removed_at IS NULL))
		ORDER BY `+order+` LIMIT $4`, incidentID, phase, onlyOpen, limit, now)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var ts TenantStatus
		if err := rows.Scan(&ts.TenantID, &ts.TenantName, &ts.Country, &ts.Phase, &ts.State, &ts.Deadline, &ts.ContentHash, &ts.ScopeVersion,
			&ts.ReleasedAt, &ts.Notices, &ts.FirstSentAt, &ts.NotifiedAt, &ts.DeliveredAt, &ts.BouncedAt, &ts.LastError, &ts.Reminders,
			&ts.AcknowledgedAt, &ts.DeadlineMet); err != nil {
			return err
		}
		if err := fn(ts); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ListPartners returns every partner.
func (s *Store) ListPartners(ctx context.Context) ([]Partner, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, display_name, team_emails, service, response_deadline_hours FROM partners ORDER BY name`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Partner, error) {
		var p Partner
		err := row.Scan(&p.Name, &p.DisplayName, &p.TeamEmails, &p.Service, &p.ResponseDeadlineHours)
		return p, err
	})
}

// PreviousReviewHash returns the content hash of the latest decided review before
// review id of the same incident, or "".
func (s *Store) PreviousReviewHash(ctx context.Context, incidentID string, id int64) (string, error) {
	var h string
	err := s.pool.QueryRow(ctx, `SELECT coalesce((SELECT content_hash FROM partner_reviews WHERE incident_id = $1 AND id < $2
		ORDER BY id DESC LIMIT 1), '')`, incidentID, id).Scan(&h)
	return h, err
}
