package store_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"
	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/testenv"
	"github.com/breachflow/breachflow/schema"
)

// An incident notified before the ledger existed keeps going after the upgrade: the tenants
// it still owes, whose notice two people approved, are retried by the next pass.
func TestLedgerMigrationCarriesAnIncidentInFlight(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testenv.EmptyDatabaseURL(t)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	m, err := migrate.NewMigrator(ctx, conn, schema.VersionTable)
	require.NoError(t, err)
	require.NoError(t, m.LoadMigrations(os.DirFS("../../schema/migrations")))
	require.NoError(t, m.MigrateTo(ctx, 1))

	// Before the ledger: round 1 reached t1, bounced at t2's primary and was refused for t3;
	// t4 is covered by the partner, which has not answered.
	const id = "INC-20260301-OLD001"
	_, err = conn.Exec(ctx, `
		INSERT INTO tenants (id, name, country, locale, notice_sla_hours) VALUES
			('t1', 'T1', 'DE', 'en', 72), ('t2', 'T2', 'DE', 'en', 72), ('t3', 'T3', 'DE', 'en', 72), ('t4', 'T4', 'DE', 'en', 72);
		INSERT INTO contacts (tenant_id, email, kind) VALUES ('t1', 'p@t1.example', 'primary'), ('t2', 'p@t2.example', 'primary'),
			('t2', 'a@t2.example', 'alternate'), ('t3', 'p@t3.example', 'primary'), ('t4', 'p@t4.example', 'primary');
		UPDATE contacts SET undeliverable_at = now() - interval '1 hour', undeliverable_reason = 'bounce' WHERE email = 'p@t2.example';
		INSERT INTO incidents (id, declaration_hash, title, severity, aware_at, declared_by, notice_hash, stage)
			VALUES ('`+id+`', 'x', 'Old', 'high', now() - interval '1 day', 'alice', '`+hashA+`', 'notifying');
		INSERT INTO approvals (incident_id, content_hash, approver) VALUES ('`+id+`', '`+hashA+`', 'alice'), ('`+id+`', '`+hashA+`', 'bob');
		INSERT INTO scope_snapshots (incident_id, version, criteria, tenant_count, created_by) VALUES ('`+id+`', 1, '{}', 4, 'alice');
		INSERT INTO scope_tenants (incident_id, version, tenant_id, deadline, partner_covered)
			SELECT '`+id+`', 1, t, now() + interval '2 days', t = 't4' FROM unnest(ARRAY['t1', 't2', 't3', 't4']) t;
		INSERT INTO notice_rounds (incident_id, round, kind, scope_version, content_hash, planned) VALUES ('`+id+`', 1, 'initial', 1, '`+hashA+`', 3);
		INSERT INTO notices (incident_id, round, tenant_id, contact_id, page, locale, status, sent_at, status_at)
			SELECT '`+id+`', 1, c.tenant_id, c.id, 0, 'en', s.status, s.sent_at, now() - interval '2 hours'
			FROM (VALUES ('p@t1.example', 'sent', now() - interval '3 hours'), ('p@t2.example', 'bounced', now() - interval '3 hours'),
			             ('p@t3.example', 'failed', NULL)) s (email, status, sent_at)
			JOIN contacts c ON c.email = s.email`)
	require.NoError(t, err)
	// The upgrade: every migration since, as a deployment applies them.
	require.NoError(t, m.Migrate(ctx))

	s, err := store.Open(ctx, url)
	require.NoError(t, err)
	defer s.Close()
	secret, err := s.AckSecret(ctx, "")
	require.NoError(t, err)
	l, err := s.Ledger(ctx, id, time.Now(), nil)
	require.NoError(t, err)
	require.Equal(t, 4, l.Initial().Tenants)
	require.Equal(t, 1, l.Initial().Notified)

	out, err := s.PlanStep(ctx, store.PassPlan{IncidentID: id, Pass: 2, Kind: store.RoundInitial, Phase: 1, ScopeVersion: 1, Chunk: 100,
		PageSize: 100, Locales: []string{"en"}, Fallback: "en", TokenTTL: time.Hour}, secret)
	require.NoError(t, err)
	require.Equal(t, 2, out.Notices, "t2's alternate and t3's primary")
	require.Equal(t, 3, l.Initial().Released, "t1, t2 and t3 were approved and attempted; t4 waits for the partner")
}
