package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Tenant is a customer of the cloud service.
type Tenant struct {
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	Country        string   `json:"country"`
	Locale         string   `json:"locale"`
	Services       []string `json:"services"`
	Connectors     []string `json:"connectors"`
	DataRegions    []string `json:"data_regions"`
	Regimes        []string `json:"regimes"`
	NoticeSLAHours int      `json:"notice_sla_hours"`
	Line           int      `json:"-"` // source line, for error reports
}

// Contact is a person at a tenant who receives notices.
type Contact struct {
	ID       int64  `json:"id"`
	TenantID string `json:"tenant_id"`
	Email    string `json:"-"`
	Name     string `json:"-"`
	Role     string `json:"role"`
	Locale   string `json:"locale,omitempty"`
	Kind     string `json:"kind"` // primary or alternate
	Line     int    `json:"-"`    // source line, for error reports
}

// ImportResult counts what an import wrote.
type ImportResult struct {
	TenantsInserted  int64         `json:"tenants_inserted"`
	TenantsUpdated   int64         `json:"tenants_updated"`
	ContactsInserted int64         `json:"contacts_inserted"`
	ContactsUpdated  int64         `json:"contacts_updated"`
	Elapsed          time.Duration `json:"elapsed"`
}

// RowError names a rejected input row.
type RowError struct {
	File   string
	Line   int
	Reason string
}

func (e RowError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason) }

// ImportError lists every rejected row of an import that wrote nothing.
type ImportError struct{ Rows []RowError }

func (e *ImportError) Error() string {
	msg := fmt.Sprintf("import refused, nothing written: %d bad row(s)", len(e.Rows))
	for i, r := range e.Rows {
		if i == 20 {
			msg += fmt.Sprintf("\n  … and %d more", len(e.Rows)-20)
			break
		}
		msg += "\n  " + r.Error()
	}
	return msg
}

// ImportTenants loads tenants and contacts (already checked row by row by the caller) in
// one transaction: both go through temporary staging tables with CopyFrom, contacts whose
// tenant is neither in the file nor in the database are reported by line, and then one
// upsert per table writes everything. Nothing is written when any row is refused.
func (s *Store) ImportTenants(ctx context.Context, contactsFile string, tenants []Tenant, contacts []Contact) (ImportResult, error) {
	start := time.Now()
	var res ImportResult
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			CREATE TEMP TABLE stage_tenants (LIKE tenants INCLUDING DEFAULTS) ON COMMIT DROP;
			CREATE TEMP TABLE stage_contacts (line integer, tenant_id text, email text, name text,
				role text, locale text, kind text) ON COMMIT DROP`); err != nil {
			return fmt.Errorf("create staging tables: %w", err)
		}
		now := time.Now()
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"stage_tenants"},
			[]string{"id", "name", "country", "locale", "services", "connectors", "data_regions", "regimes", "notice_sla_hours", "created_at", "updated_at"},
			pgx.CopyFromSlice(len(tenants), func(i int) ([]any, error) {
				t := tenants[i]
				return []any{t.ID, t.Name, t.Country, t.Locale, nz(t.Services), nz(t.Connectors), nz(t.DataRegions), nz(t.Regimes), t.NoticeSLAHours, now, now}, nil
			})); err != nil {
			return fmt.Errorf("stage tenants: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"stage_contacts"},
			[]string{"line", "tenant_id", "email", "name", "role", "locale", "kind"},
			pgx.CopyFromSlice(len(contacts), func(i int) ([]any, error) {
				c := contacts[i]
				var locale any
				if c.Locale != "" {
					locale = c.Locale
				}
				return []any{c.Line, c.TenantID, c.Email, c.Name, c.Role, locale, c.Kind}, nil
			})); err != nil {
			return fmt.Errorf("stage contacts: %w", err)
		}
		if err := orphanContacts(ctx, tx, contactsFile); err != nil {
			return err
		}
		// xmax = 0 marks a freshly inserted row, anything else an updated one.
		if err := tx.QueryRow(ctx, `
			WITH up AS (
				INSERT INTO tenants AS t (id, name, country, locale, services, connectors, data_regions, regimes, notice_sla_hours)
				SELECT id, name, country, locale, services, connectors, data_regions, regimes, notice_sla_hours FROM stage_tenants
				ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, country = EXCLUDED.country, locale = EXCLUDED.locale,
					services = EXCLUDED.services, connectors = EXCLUDED.connectors, data_regions = EXCLUDED.data_regions,
					regimes = EXCLUDED.regimes, notice_sla_hours = EXCLUDED.notice_sla_hours, updated_at = now()
				RETURNING (xmax = 0) AS inserted)
			SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up`).
			Scan(&res.TenantsInserted, &res.TenantsUpdated); err != nil {
			return fmt.Errorf("upsert tenants: %w", err)
		}
		if err := tx.QueryRow(ctx, `
			WITH up AS (
				INSERT INTO contacts AS c (tenant_id, email, name, role, locale, kind)
				SELECT tenant_id, email, name, role, locale, kind FROM stage_contacts
				ON CONFLICT (tenant_id, email) DO UPDATE SET name = EXCLUDED.name, role = EXCLUDED.role,
					locale = EXCLUDED.locale, kind = EXCLUDED.kind, updated_at = now()
				RETURNING (xmax = 0) AS inserted)
			SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up`).
			Scan(&res.ContactsInserted, &res.ContactsUpdated); err != nil {
			return fmt.Errorf("upsert contacts: %w", err)
		}
		_, err := AppendAudit(ctx, tx, AuditEntry{Actor: "import", Action: "tenants.imported", Detail: map[string]any{
			"tenants_inserted": res.TenantsInserted, "tenants_updated": res.TenantsUpdated,
			"contacts_inserted": res.ContactsInserted, "contacts_updated": res.ContactsUpdated,
		}})
		return err
	})
	res.Elapsed = time.Since(start)
	return res, err
}

func orphanContacts(ctx context.Context, tx pgx.Tx, file string) error {
	rows, err := tx.Query(ctx, `
		SELECT sc.line, sc.tenant_id FROM stage_contacts sc
		WHERE NOT EXISTS (SELECT 1 FROM stage_tenants st WHERE st.id = sc.tenant_id)
		  AND NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = sc.tenant_id)
		ORDER BY sc.line LIMIT 1000`)
	if err != nil {
		return fmt.Errorf("check contact tenants: %w", err)
	}
	bad, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (RowError, error) {
		var r RowError
		var tenant string
		err := row.Scan(&r.Line, &tenant)
		r.File, r.Reason = file, fmt.Sprintf("unknown tenant %q", tenant)
		return r, err
	})
	if err != nil {
		return fmt.Errorf("check contact tenants: %w", err)
	}
	if len(bad) > 0 {
		return &ImportError{Rows: bad}
	}
	return nil
}

func nz(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// CountTenants returns how many tenants and contacts are stored.
func (s *Store) CountTenants(ctx context.Context) (tenants, contacts int64, err error) {
	err = s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM tenants), (SELECT count(*) FROM contacts)`).Scan(&tenants, &contacts)
	return tenants, contacts, err
}

// GetTenant returns one tenant.
func (s *Store) GetTenant(ctx context.Context, id string) (Tenant, error) {
	var t Tenant
	err := s.pool.QueryRow(ctx, `SELECT id, name, country, locale, services, connectors, data_regions, regimes, notice_sla_hours
		FROM tenants WHERE id = $1`, id).Scan(&t.ID, &t.Name, &t.Country, &t.Locale, &t.Services, &t.Connectors, &t.DataRegions, &t.Regimes, &t.NoticeSLAHours)
	return t, notFound(err)
}

// TenantContacts returns a tenant's contacts, primaries first.
func (s *Store) TenantContacts(ctx context.Context, tenantID string) ([]Contact, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, tenant_id, email, name, role, coalesce(locale, ''), kind
		FROM contacts WHERE tenant_id = $1 ORDER BY kind DESC, id`, tenantID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Contact, error) {
		var c Contact
		err := row.Scan(&c.ID, &c.TenantID, &c.Email, &c.Name, &c.Role, &c.Locale, &c.Kind)
		return c, err
	})
}
