package metrics_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/metrics"
	"github.com/breachflow/breachflow/internal/metrics/metricstest"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// domainFixture writes, by hand, an open incident whose ledger holds one tenant of each
// kind the domain gauges count, a closed incident whose rows must count nowhere, and an
// open incident without rows.
type domainFixture struct {
	t   *testing.T
	ctx context.Context
	st  *store.Store
}

func (f *domainFixture) exec(sql string, args ...any) {
	f.t.Helper()
	_, err := f.st.Pool().Exec(f.ctx, sql, args...)
	require.NoError(f.t, err, sql)
}

func (f *domainFixture) incident(stage string) string {
	f.t.Helper()
	inc, _, err := f.st.CreateIncident(f.ctx, "", store.Declaration{Title: "Credential exposure", Severity: "high",
		AwareAt: time.Now().Add(-2 * time.Hour)}, "alice", time.Now())
	require.NoError(f.t, err)
	f.exec(`UPDATE incidents SET stage = $2 WHERE id = $1`, inc.ID, stage)
	return inc.ID
}

// ledger adds a ledger row of phase for tenant, due in due (negative: past).
func (f *domainFixture) ledger(incident string, phase int, tenant string, due time.Duration, extra string) {
	f.t.Helper()
	f.exec(`INSERT INTO ledger (incident_id, phase, tenant_id, added_version, deadline) VALUES ($1, $2, $3, 1, now() + $4::interval)`,
		incident, phase, tenant, due)
	if extra != "" {
		f.exec(`UPDATE ledger SET `+extra+` WHERE incident_id = $1 AND phase = $2 AND tenant_id = $3`, incident, phase, tenant)
	}
}

func (f *domainFixture) notice(incident, tenant, status string, duplicate bool) {
	f.t.Helper()
	f.exec(`INSERT INTO notices (incident_id, round, tenant_id, contact_id, page, locale, status, possible_duplicate)
		SELECT $1, 1, $2, c.id, 0, 'en', $3, $4 FROM contacts c WHERE c.tenant_id = $2`, incident, tenant, status, duplicate)
}

func newDomainFixture(t *testing.T) *domainFixture {
	f := &domainFixture{t: t, ctx: context.Background(), st: testenv.Store(t)}
	for _, id := range []string{"t1", "t2", "t3", "t4", "t5", "t6"} {
		f.exec(`INSERT INTO tenants (id, name, country, locale, notice_sla_hours) VALUES ($1, $1, 'DE', 'en', 72)`, id)
		f.exec(`INSERT INTO contacts (tenant_id, email, kind) VALUES ($1, 'dpo@' || $1 || '.example', 'primary')`, id)
	}
	open, closed := f.incident(store.StageTracking), f.incident(store.StageClosed)
	f.incident(store.StageScoping)
	for _, id := range []string{open, closed} {
		f.exec(`INSERT INTO notice_phases (incident_id, phase, kind, created_by) VALUES ($1, 1, 'initial', 'alice'), ($1, 2, 'update', 'alice')`, id)
		f.exec(`INSERT INTO notice_rounds (incident_id, round, kind, scope_version, content_hash, phase) VALUES ($1, 1, 'initial', 1, $2, 1)`,
			id, strings.Repeat("a", 64))
	}
	f.ledger(open, 1, "t1", 70*time.Hour, "satisfied_at = now()")   // notified: owed nothing
	f.ledger(open, 1, "t2", 70*time.Hour, "")                       // owed, time to spare
	f.ledger(open, 1, "t3", -time.Minute, "")                       // owed, past its deadline …
	f.ledger(open, 2, "t3", 70*time.Hour, "")                       // … and owed an update: one tenant
	f.ledger(open, 1, "t4", 10*time.Minute, "")                     // owed, 2 h of 2 h 10 min used: near
	f.ledger(open, 1, "t5", 70*time.Hour, "unreachable_at = now()") // owed, no deliverable contact
	f.ledger(open, 1, "t6", -time.Hour, "removed_at = now()")       // left the scope: owed nothing
	f.ledger(closed, 1, "t2", -time.Hour, "unreachable_at = now()") // closed: counted nowhere
	f.notice(open, "t1", "delivered", false)
	f.notice(open, "t2", "sent", false)
	f.notice(open, "t3", "sent", true)
	f.notice(open, "t4", "pending", false)
	f.notice(open, "t5", "failed", false)
	f.notice(closed, "t1", "sent", true)
	_, err := f.st.Acknowledge(f.ctx, open, "t1", "link", "customer")
	require.NoError(t, err)
	_, err = f.st.Acknowledge(f.ctx, closed, "t2", "link", "customer")
	require.NoError(t, err)
	return f
}

// scrapeDomain serves a registry holding only d and scrapes it over HTTP.
func scrapeDomain(t *testing.T, d *metrics.Domain) metricstest.Scrape {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(d)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	return metricstest.Get(t, srv.URL)
}

func TestDomainGaugesCountOpenIncidentsFromPostgres(t *testing.T) {
	f := newDomainFixture(t)
	s := scrapeDomain(t, metrics.NewDomain(f.st.Pool(), nil))

	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"breachflow_domain_scrape_success", nil, 1},
		{"breachflow_incidents", []string{"stage", "tracking"}, 1},
		{"breachflow_incidents", []string{"stage", "closed"}, 1},
		{"breachflow_incidents", []string{"stage", "scoping"}, 1},
		{"breachflow_incidents", []string{"stage", "declared"}, 0},
		{"breachflow_incidents", nil, 3},
		{"breachflow_notices", []string{"status", "sent"}, 2},
		{"breachflow_notices", []string{"status", "delivered"}, 1},
		{"breachflow_notices", []string{"status", "pending"}, 1},
		{"breachflow_notices", []string{"status", "failed"}, 1},
		{"breachflow_notices", []string{"status", "bounced"}, 0},
		{"breachflow_notices", nil, 5},
		{"breachflow_possible_duplicate_notices", nil, 1},
		{"breachflow_acknowledged_tenants", nil, 1},
		{"breachflow_owed_tenants", nil, 4},
		{"breachflow_unreachable_tenants", nil, 1},
		{"breachflow_tenants_at_risk", []string{"window", "past"}, 1},
		{"breachflow_tenants_at_risk", []string{"window", "near"}, 1},
	} {
		got, ok := s.Value(c.name, c.labels...)
		require.True(t, ok, "%s%v missing", c.name, c.labels)
		require.Equal(t, c.want, got, "%s%v", c.name, c.labels)
	}
	require.Len(t, s.Series("breachflow_notices"), len(metrics.NoticeStatuses), "every status has a series, zero or not")
	require.True(t, s.Has("breachflow_domain_scrape_duration_seconds"))

	// Closing the incident takes its rows out of every open-incident gauge.
	f.exec(`UPDATE incidents SET stage = 'closed' WHERE stage = 'tracking'`)
	s = scrapeDomain(t, metrics.NewDomain(f.st.Pool(), nil))
	for _, name := range []string{"breachflow_notices", "breachflow_acknowledged_tenants", "breachflow_owed_tenants",
		"breachflow_unreachable_tenants", "breachflow_tenants_at_risk", "breachflow_possible_duplicate_notices"} {
		got, ok := s.Value(name)
		require.True(t, ok, name)
		require.Zero(t, got, name)
	}
	closed, _ := s.Value("breachflow_incidents", "stage", "closed")
	require.Equal(t, 2.0, closed)
}

// A share of the time of 0.95 makes t4 (92 % used) not near yet.
func TestDomainNearDeadlineShare(t *testing.T) {
	f := newDomainFixture(t)
	d := metrics.NewDomain(f.st.Pool(), nil)
	d.Near = 0.95
	s := scrapeDomain(t, d)
	near, _ := s.Value("breachflow_tenants_at_risk", "window", "near")
	past, _ := s.Value("breachflow_tenants_at_risk", "window", "past")
	require.Zero(t, near)
	require.Equal(t, 1.0, past)
}

// A database that does not answer in time leaves the domain series out, says so in
// breachflow_domain_scrape_success, and does not fail the scrape of everything else.
func TestDomainScrapeWithoutDatabase(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(t *testing.T) *metrics.Domain
	}{
		{"closed pool", func(t *testing.T) *metrics.Domain {
			pool, err := pgxpool.New(context.Background(), testenv.DatabaseURL(t))
			require.NoError(t, err)
			pool.Close()
			return metrics.NewDomain(pool, nil)
		}},
		{"timeout", func(t *testing.T) *metrics.Domain {
			d := metrics.NewDomain(testenv.Store(t).Pool(), nil)
			d.Timeout = time.Nanosecond
			return d
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := scrapeDomain(t, c.setup(t))
			ok, found := s.Value("breachflow_domain_scrape_success")
			require.True(t, found)
			require.Zero(t, ok)
			for _, name := range []string{"breachflow_incidents", "breachflow_notices", "breachflow_acknowledged_tenants",
				"breachflow_owed_tenants", "breachflow_tenants_at_risk"} {
				require.False(t, s.Has(name), name)
			}
		})
	}
}
