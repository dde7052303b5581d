package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/breachflow/breachflow/internal/notice"
)

// PhaseState is where an incident's notice phases stand, for a new draft to be placed.
type PhaseState struct {
	// Opened is the highest phase the ledger owes (0 before the first scope).
	Opened int `json:"opened"`
	// Approved is the highest phase released under an approved draft (0: none yet).
	Approved int `json:"approved"`
	// ApprovedKind is that phase's kind.
	ApprovedKind string `json:"approved_kind,omitempty"`
}

// Phases returns where incident id's notice phases stand.
func (s *Store) Phases(ctx context.Context, id string) (PhaseState, error) {
	var st PhaseState
	err := s.pool.QueryRow(ctx, `SELECT coalesce(max(phase), 0),
			coalesce(max(phase) FILTER (WHERE content_hash IS NOT NULL), 0),
			coalesce((array_agg(kind ORDER BY phase DESC) FILTER (WHERE content_hash IS NOT NULL))[1], '')
		FROM notice_phases WHERE incident_id = $1`, id).Scan(&st.Opened, &st.Approved, &st.ApprovedKind)
	return st, err
}

// Impact is one tenant's own share of an incident, from an imported impact file.
type Impact struct {
	TenantID     string `json:"tenant_id"`
	DataSubjects int64  `json:"approx_data_subjects"`
	Records      int64  `json:"approx_records"`
}

// MaxImpactRows bounds one impact import.
const MaxImpactRows = 2_000_000

// ImportImpact records each tenant's approximate data subjects and records for incident
// id, replacing what an earlier import said for the same tenants. Every tenant must
// exist; otherwise nothing is written. It returns how many tenants it recorded.
func (s *Store) ImportImpact(ctx context.Context, id string, rows []Impact, actor string) (int, error) {
	if len(rows) == 0 {
		return 0, fieldErr("impact", "no rows")
	}
	if len(rows) > MaxImpactRows {
		return 0, fieldErr("impact", "at most %d rows", MaxImpactRows)
	}
	seen := make(map[string]bool, len(rows))
	for i, r := range rows {
		switch {
		case !itemRe.MatchString(r.TenantID):
			return 0, fieldErr("impact", "row %d: tenant_id %q is not a tenant id", i+1, r.TenantID)
		case seen[r.TenantID]:
			return 0, fieldErr("impact", "row %d: tenant %s appears twice", i+1, r.TenantID)
		case r.DataSubjects < 0 || r.Records < 0:
			return 0, fieldErr("impact", "row %d: numbers must not be negative", i+1)
		}
		seen[r.TenantID] = true
	}
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT id FROM incidents WHERE id = $1 FOR NO KEY UPDATE`, id).Scan(new(string)); err != nil {
			return notFound(err)
		}
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE impact_in (tenant_id text, data_subjects bigint, records bigint) ON COMMIT DROP`); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"impact_in"}, []string{"tenant_id", "data_subjects", "records"},
			pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
				return []any{rows[i].TenantID, rows[i].DataSubjects, rows[i].Records}, nil
			})); err != nil {
			return fmt.Errorf("load impact: %w", err)
		}
		rs, err := tx.Query(ctx, `SELECT i.tenant_id FROM impact_in i
			WHERE NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = i.tenant_id) ORDER BY i.tenant_id LIMIT 5`)
		if err != nil {
			return err
		}
		unknown, err := pgx.CollectRows(rs, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if len(unknown) > 0 {
			return fieldErr("impact", "unknown tenants: %s", strings.Join(unknown, ", "))
		}
		if _, err := tx.Exec(ctx, `INSERT INTO tenant_impacts (incident_id, tenant_id, data_subjects, records, imported_by)
			SELECT $1, tenant_id, data_subjects, records, $2 FROM impact_in
			ON CONFLICT (incident_id, tenant_id) DO UPDATE SET data_subjects = excluded.data_subjects, records = excluded.records,
			    imported_by = excluded.imported_by, imported_at = now()`, id, actor); err != nil {
			return fmt.Errorf("record impact: %w", err)
		}
		_, err = AppendAudit(ctx, tx, AuditEntry{IncidentID: id, Actor: actor, Action: "impact.imported", Detail: map[string]any{"tenants": len(rows)}})
		return err
	})
	if err != nil {
		return 0, err
	}
	return len(rows), nil
}

// factsSQL is the facts of tenant t under the criteria crit (jsonb) with its impact ti
// (LEFT JOINed tenant_impacts), as notice.TenantFacts reads them: the values of the
// tenant's services, connectors and data regions that the criteria name, in the tenant's
// order (a list the criteria leave empty says nothing), and its impact numbers.
const factsSQL = `jsonb_strip_nulls(jsonb_build_object(
	'services', nullif(ARRAY(SELECT v FROM unnest(t.services) v WHERE crit -> 'services' ? v), '{}'),
	'connectors', nullif(ARRAY(SELECT v FROM unnest(t.connectors) v WHERE crit -> 'connectors' ? v), '{}'),
	'data_regions', nullif(ARRAY(SELECT v FROM unnest(t.data_regions) v WHERE crit -> 'data_regions' ? v), '{}'),
	'data_subjects', nullif(ti.data_subjects, 0), 'records', nullif(ti.records, 0)))`

// PreviewTenant is one tenant as its notice would be rendered for it.
type PreviewTenant struct {
	TenantID string
	Name     string
	// Locale is the primary contact's locale, else the tenant's.
	Locale string
	// InScope says whether the incident's current scope holds the tenant; Deadline is
	// its initial notice's deadline then (zero otherwise).
	InScope  bool
	Deadline time.Time
	Facts    notice.TenantFacts
}

// ErrUnknownTenant is matched by the error for a tenant that does not exist.
var ErrUnknownTenant = fmt.Errorf("%w: no such tenant", ErrNotFound)

// PreviewTenant returns what incident id's notice would show tenant tenantID.
func (s *Store) PreviewTenant(ctx context.Context, id, tenantID string) (PreviewTenant, error) {
	p := PreviewTenant{TenantID: tenantID}
	if !itemRe.MatchString(tenantID) {
		return p, ErrUnknownTenant
	}
	var deadline *time.Time
	err := s.pool.QueryRow(ctx, `
		SELECT t.name, coalesce((SELECT c.locale FROM contacts c WHERE c.tenant_id = t.id AND c.kind = 'primary' AND c.locale IS NOT NULL
		                         ORDER BY c.id LIMIT 1), t.locale),
		       `+factsSQL+`,
		       (SELECT l.deadline FROM ledger l WHERE l.incident_id = i.id AND l.phase = 1 AND l.tenant_id = t.id AND l.removed_at IS NULL)
		FROM incidents i CROSS JOIN LATERAL (SELECT i.scope_criteria AS crit) c JOIN tenants t ON t.id = $2
		LEFT JOIN tenant_impacts ti ON ti.incident_id = i.id AND ti.tenant_id = t.id
		WHERE i.id = $1`, id, tenantID).Scan(&p.Name, &p.Locale, &p.Facts, &deadline)
	if errors.Is(err, pgx.ErrNoRows) {
		if _, ierr := s.GetIncident(ctx, id); ierr != nil {
			return p, ierr
		}
		return p, ErrUnknownTenant
	}
	if err != nil {
		return p, err
	}
	if deadline != nil {
		p.InScope, p.Deadline = true, *deadline
	}
	return p, nil
}

// Reach counts the tenants of a scope version and those of them with no deliverable
// contact left (no contact, or every contact undeliverable): they cannot be told.
type Reach struct {
	ScopeVersion  int      `json:"scope_version"`
	Tenants       int      `json:"tenants"`
	NoDeliverable int      `json:"no_deliverable_contact"`
	Sample        []string `json:"sample,omitempty"` // up to 20 of them, by tenant id
}

// ScopeReach counts, for incident id's latest scope version, the tenants with no
// deliverable contact.
func (s *Store) ScopeReach(ctx context.Context, id string) (Reach, error) {
	var r Reach
	err := s.pool.QueryRow(ctx, `
		WITH v AS (SELECT coalesce(max(version), 0) AS version FROM scope_snapshots WHERE incident_id = $1),
		     lost AS (SELECT st.tenant_id FROM scope_tenants st, v WHERE st.incident_id = $1 AND st.version = v.version
		              AND NOT EXISTS (SELECT 1 FROM contacts c WHERE c.tenant_id = st.tenant_id AND c.undeliverable_at IS NULL))
		SELECT v.version, (SELECT count(*) FROM scope_tenants st WHERE st.incident_id = $1 AND st.version = v.version),
		       (SELECT count(*) FROM lost), coalesce((SELECT array_agg(tenant_id ORDER BY tenant_id) FROM
		           (SELECT tenant_id FROM lost ORDER BY tenant_id LIMIT 20) x), '{}')
		FROM v`, id).Scan(&r.ScopeVersion, &r.Tenants, &r.NoDeliverable, &r.Sample)
	return r, err
}
