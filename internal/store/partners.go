package store

import (
	"context"
	"fmt"
)

// Partner is a partner team that confirms joint notifications for the tenants of the
// service it covers.
type Partner struct {
	Name                  string   `json:"name"`
	DisplayName           string   `json:"display_name"`
	TeamEmails            []string `json:"-"`
	Service               string   `json:"service"`
	ResponseDeadlineHours int      `json:"response_deadline_hours"`
}

// UpsertPartner creates or updates a partner.
func (s *Store) UpsertPartner(ctx context.Context, p Partner) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO partners (name, display_name, team_emails, service, response_deadline_hours)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (name) DO UPDATE SET display_name = EXCLUDED.display_name, team_emails = EXCLUDED.team_emails,
			service = EXCLUDED.service, response_deadline_hours = EXCLUDED.response_deadline_hours`,
		p.Name, p.DisplayName, p.TeamEmails, p.Service, p.ResponseDeadlineHours)
	if err != nil {
		return fmt.Errorf("upsert partner %s: %w", p.Name, err)
	}
	return nil
}

// GetPartner returns one partner.
func (s *Store) GetPartner(ctx context.Context, name string) (Partner, error) {
	var p Partner
	err := s.pool.QueryRow(ctx, `SELECT name, display_name, team_emails, service, response_deadline_hours FROM partners WHERE name = $1`, name).
		Scan(&p.Name, &p.DisplayName, &p.TeamEmails, &p.Service, &p.ResponseDeadlineHours)
	return p, notFound(err)
}
