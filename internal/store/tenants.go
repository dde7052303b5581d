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
	TenantsInserted   int64         `json:"tenants_inserted"`
	TenantsUpdated    int64         `json:"tenants_updated"`
	TenantsUnchanged  int64         `json:"tenants_unchanged"`
	ContactsInserted  int64         `json:"contacts_inserted"`
	ContactsUpdated   int64         `json:"contacts_updated"`
	ContactsUnchanged int64         `json:"contacts_unchanged"`
	Elapsed           time.Duration `json:"elapsed"`
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

// bulkContacts is the size from which a first load into an empty contacts table checks
// its constraints set-based.
const bulkContacts = 10_000

// ImportTenants loads tenants and contacts (already checked row by row by the caller) in
// one transaction: both go through temporary staging tables with CopyFrom, changed rows
// are updated and new ones inserted set-based, and contacts whose tenant is neither in
// the file nor in the database are reported by line. Nothing is written when any row is
// refused. contactsSrc is called once the tenants are written, so a caller can parse the
// contacts file meanwhile.
func (s *Store) ImportTenants(ctx context.Context, contactsFile string, tenants []Tenant, contactsSrc func() ([]Contact, error)) (ImportResult, error) {
	start := time.Now()
	var res ImportResult
	var nContacts int
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		// One import at a time: two racing imports would otherwise both insert a new tenant.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7251310)`); err != nil {
			return fmt.Errorf("wait for other imports: %w", err)
		}
		// The joins and the sort below hold a whole file's rows: give them memory to do so
		// rather than spill to disk (for this transaction only).
		if _, err := tx.Exec(ctx, `SET LOCAL work_mem = '256MB'`); err != nil {
			return err
		}
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
		// Update only rows that changed, then insert the new ones: a re-import of the same
		// files rewrites nothing.
		tag, err := tx.Exec(ctx, `
			UPDATE tenants t SET name = s.name, country = s.country, locale = s.locale, services = s.services,
				connectors = s.connectors, data_regions = s.data_regions, regimes = s.regimes,
				notice_sla_hours = s.notice_sla_hours, updated_at = now()
			FROM stage_tenants s
			WHERE t.id = s.id AND (t.name, t.country, t.locale, t.services, t.connectors, t.data_regions, t.regimes, t.notice_sla_hours)
				IS DISTINCT FROM (s.name, s.country, s.locale, s.services, s.connectors, s.data_regions, s.regimes, s.notice_sla_hours)`)
		if err != nil {
			return fmt.Errorf("update tenants: %w", err)
		}
		res.TenantsUpdated = tag.RowsAffected()
		tag, err = tx.Exec(ctx, `
			INSERT INTO tenants (id, name, country, locale, services, connectors, data_regions, regimes, notice_sla_hours)
			SELECT id, name, country, locale, services, connectors, data_regions, regimes, notice_sla_hours
			FROM stage_tenants s WHERE NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = s.id)`)
		if err != nil {
			return fmt.Errorf("insert tenants: %w", err)
		}
		res.TenantsInserted = tag.RowsAffected()
		// The caller may still be parsing the contacts file; wait for it only now, so that
		// parsing overlaps the tenant work above.
		contacts, err := contactsSrc()
		if err != nil {
			return err
		}
		nContacts = len(contacts)
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
		tag, err = tx.Exec(ctx, `
			UPDATE contacts c SET name = s.name, role = s.role, locale = s.locale, kind = s.kind, updated_at = now()
			FROM stage_contacts s
			WHERE c.tenant_id = s.tenant_id AND c.email = s.email
				AND (c.name, c.role, c.locale, c.kind) IS DISTINCT FROM (s.name, s.role, s.locale, s.kind)`)
		if err != nil {
			return fmt.Errorf("update contacts: %w", err)
		}
		res.ContactsUpdated = tag.RowsAffected()
		// A first load into an empty table checks the contacts' tenants and uniqueness once,
		// set-based, instead of row by row: the constraints are dropped and added back in
		// this transaction (the callers' readers refuse duplicates and orphans were refused
		// above, so adding them back cannot fail on this file).
		bulk := false
		if len(contacts) >= bulkContacts {
			if err := tx.QueryRow(ctx, `SELECT NOT EXISTS (SELECT 1 FROM contacts)`).Scan(&bulk); err != nil {
				return err
			}
		}
		if bulk {
			if _, err := tx.Exec(ctx, `ALTER TABLE contacts DROP CONSTRAINT contacts_tenant_id_fkey, DROP CONSTRAINT contacts_tenant_id_email_key`); err != nil {
				return fmt.Errorf("bulk load contacts: %w", err)
			}
		}
		tag, err = tx.Exec(ctx, `
			INSERT INTO contacts (tenant_id, email, name, role, locale, kind)
			SELECT tenant_id, email, name, role, locale, kind FROM stage_contacts s
			WHERE NOT EXISTS (SELECT 1 FROM contacts c WHERE c.tenant_id = s.tenant_id AND c.email = s.email)
			ORDER BY tenant_id, email`)
		if err != nil {
			return fmt.Errorf("insert contacts: %w", err)
		}
		if bulk {
			if _, err := tx.Exec(ctx, `ALTER TABLE contacts ADD CONSTRAINT contacts_tenant_id_email_key UNIQUE (tenant_id, email),
				ADD CONSTRAINT contacts_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE`); err != nil {
				return fmt.Errorf("bulk load contacts: %w", err)
			}
		}
		res.ContactsInserted = tag.RowsAffected()
		res.TenantsUnchanged = int64(len(tenants)) - res.TenantsInserted - res.TenantsUpdated
		res.ContactsUnchanged = int64(nContacts) - res.ContactsInserted - res.ContactsUpdated
		_, err = AppendAudit(ctx, tx, AuditEntry{Actor: "import", Action: "tenants.imported", Detail: map[string]any{
			"tenants_inserted": res.TenantsInserted, "tenants_updated": res.TenantsUpdated,
			"contacts_inserted": res.ContactsInserted, "contacts_updated": res.ContactsUpdated,
		}})
		return err
	})
	if err == nil {
		// Scope resolution and planning read these tables next: give the planner their new size.
		if _, err = s.pool.Exec(ctx, `ANALYZE tenants, contacts`); err != nil {
			err = fmt.Errorf("analyze imported tables: %w", err)
		}
	}
	res.Elapsed = time.Since(start)
	return res, err
}

func orphanContacts(ctx context.Context, tx pgx.Tx, file string) error {
	rows, err := tx.Query(ctx, `
		SELECT sc.line, sc.tenant_id FROM stage_contacts sc
		WHERE NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = sc.tenant_id)
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
