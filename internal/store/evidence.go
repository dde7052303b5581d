package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// TenantStatus is one tenant's line in the evidence of who was told what and when.
type TenantStatus struct {
	TenantID       string     `json:"tenant_id"`
	TenantName     string     `json:"tenant_name"`
	Country        string     `json:"country"`
	Deadline       time.Time  `json:"deadline"`
	Notices        int        `json:"notices"`
	FirstSentAt    *time.Time `json:"first_sent_at,omitempty"`
	Delivered      int        `json:"delivered"`
	Bounced        int        `json:"bounced"`
	ContentHash    string     `json:"content_hash,omitempty"`
	AcknowledgedAt *time.Time `json:"acknowledged_at,omitempty"`
}

// TenantStatuses calls fn for each tenant of a scope version, in tenant order; with
// onlyUnacked, only those that have not acknowledged, earliest deadline first.
func (s *Store) TenantStatuses(ctx context.Context, incidentID string, version int, onlyUnacked bool, limit int, fn func(TenantStatus) error) error {
	if limit <= 0 {
		limit = 1 << 30
	}
	order := "st.tenant_id"
	if onlyUnacked {
		order = "st.deadline, st.tenant_id"
	}
	rows, err := s.pool.Query(ctx, `
		SELECT st.tenant_id, t.name, t.country, st.deadline,
		       count(n.id), min(n.sent_at) FILTER (WHERE r.kind = 'initial'),
		       count(n.id) FILTER (WHERE n.status = 'delivered'), count(n.id) FILTER (WHERE n.status IN ('bounced', 'dropped')),
		       coalesce(min(r.content_hash) FILTER (WHERE r.kind = 'initial'), ''), a.acknowledged_at
		FROM scope_tenants st
		JOIN tenants t ON t.id = st.tenant_id
		LEFT JOIN notices n ON n.incident_id = st.incident_id AND n.tenant_id = st.tenant_id
		LEFT JOIN notice_rounds r ON r.incident_id = n.incident_id AND r.round = n.round
		LEFT JOIN acknowledgements a ON a.incident_id = st.incident_id AND a.tenant_id = st.tenant_id
		WHERE st.incident_id = $1 AND st.version = $2 AND (NOT $3 OR a.tenant_id IS NULL)
		GROUP BY st.tenant_id, t.name, t.country, st.deadline, a.acknowledged_at
		ORDER BY `+order+` LIMIT $4`, incidentID, version, onlyUnacked, limit)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var ts TenantStatus
		if err := rows.Scan(&ts.TenantID, &ts.TenantName, &ts.Country, &ts.Deadline, &ts.Notices, &ts.FirstSentAt,
			&ts.Delivered, &ts.Bounced, &ts.ContentHash, &ts.AcknowledgedAt); err != nil {
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
