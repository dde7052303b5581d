package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ScopeResult counts one scope snapshot; no tenant list ever leaves the database.
type ScopeResult struct {
	Version        int            `json:"version"`
	Total          int            `json:"total"`
	PartnerCovered int            `json:"partner_covered"`
	ByCountry      map[string]int `json:"by_country"`
	Earliest       time.Time      `json:"earliest_deadline"`
	Added          int            `json:"added"`   // tenants new to the ledger with this version
	Removed        int            `json:"removed"` // tenants the ledger no longer owes
}

// ResolveScope writes a new scope snapshot version for incident id from criteria with one
// INSERT … SELECT over the tenants, each with its deadline (aware_at + its notice SLA)
// and whether the incident's partner covers it, and returns counts only.
func (s *Store) ResolveScope(ctx context.Context, id string, c ScopeCriteria, actor string) (ScopeResult, error) {
	if err := c.Validate(); err != nil {
		return ScopeResult{}, err
	}
	if c.Empty() {
		return ScopeResult{}, fieldErr("scope", "no criteria: name services, connectors, countries, data regions, regimes or tenant ids")
	}
	var res ScopeResult
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		var awareAt time.Time
		var partnerService string
		if err := tx.QueryRow(ctx, `SELECT i.aware_at, coalesce(p.service, '') FROM incidents i
			LEFT JOIN partners p ON p.name = i.partner_name WHERE i.id = $1 FOR NO KEY UPDATE OF i`, id).Scan(&awareAt, &partnerService); err != nil {
			return notFound(err)
		}
		if err := tx.QueryRow(ctx, `INSERT INTO scope_snapshots (incident_id, version, criteria, created_by)
			SELECT $1, coalesce(max(version), 0) + 1, $2, $3 FROM scope_snapshots WHERE incident_id = $1
			RETURNING version`, id, c, actor).Scan(&res.Version); err != nil {
			return fmt.Errorf("new scope version: %w", err)
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO scope_tenants (incident_id, version, tenant_id, deadline, partner_covered)
			SELECT $1, $2, t.id, $3::timestamptz + make_interval(hours => t.notice_sla_hours),
			       $4 <> '' AND $4 = ANY (t.services)
			FROM tenants t
			WHERE ((cardinality($5::text[]) + cardinality($6::text[]) + cardinality($7::text[]) + cardinality($8::text[]) + cardinality($9::text[]) > 0
			        AND (cardinality($5::text[]) = 0 OR t.services && $5)
			        AND (cardinality($6::text[]) = 0 OR t.connectors && $6)
			        AND (cardinality($7::text[]) = 0 OR t.country = ANY ($7))
			        AND (cardinality($8::text[]) = 0 OR t.data_regions && $8)
			        AND (cardinality($9::text[]) = 0 OR t.regimes && $9))
			       OR t.id = ANY ($10))
			  AND NOT (t.id = ANY ($11))`,
			id, res.Version, awareAt, partnerService, nz(c.Services), nz(c.Connectors), nz(c.Countries), nz(c.DataRegions),
			nz(c.Regimes), nz(c.TenantIDs), nz(c.Exclude)); err != nil {
			return fmt.Errorf("resolve scope: %w", err)
		}
		res.ByCountry = map[string]int{}
		rows, err := tx.Query(ctx, `SELECT t.country, count(*), count(*) FILTER (WHERE st.partner_covered), min(st.deadline)
			FROM scope_tenants st JOIN tenants t ON t.id = st.tenant_id
			WHERE st.incident_id = $1 AND st.version = $2 GROUP BY t.country`, id, res.Version)
		if err != nil {
			return err
		}
		for rows.Next() {
			var country string
			var n, covered int
			var earliest time.Time
			if err := rows.Scan(&country, &n, &covered, &earliest); err != nil {
				return err
			}
			res.ByCountry[country] = n
			res.Total += n
			res.PartnerCovered += covered
			if res.Earliest.IsZero() || earliest.Before(res.Earliest) {
				res.Earliest = earliest
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if res.Total > 0 {
			if res.Added, res.Removed, err = syncLedger(ctx, tx, id, res.Version, actor); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE scope_snapshots SET tenant_count = $3, added = $4, removed = $5 WHERE incident_id = $1 AND version = $2`,
			id, res.Version, res.Total, res.Added, res.Removed); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE incidents SET scope_criteria = $2, updated_at = now() WHERE id = $1`, id, c); err != nil {
			return err
		}
		_, err = AppendAudit(ctx, tx, AuditEntry{IncidentID: id, Actor: actor, Action: "scope.resolved", Detail: map[string]any{
			"version": res.Version, "tenants": res.Total, "partner_covered": res.PartnerCovered, "by_country": res.ByCountry,
			"added": res.Added, "removed": res.Removed}})
		return err
	})
	return res, err
}
