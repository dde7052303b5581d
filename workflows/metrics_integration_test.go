package workflows_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/mail/sink"
	"github.com/breachflow/breachflow/internal/metrics"
	"github.com/breachflow/breachflow/internal/metrics/metricstest"
	"github.com/breachflow/breachflow/internal/store"
	bfworker "github.com/breachflow/breachflow/worker"
	"github.com/breachflow/breachflow/workflows"
)

// startInstrumentedWorker replaces the stack's worker with one built as `breachflow
// worker` builds it: activities counting into a worker registry, and the SDK's metrics
// recorded there too.
func (s *stack) startInstrumentedWorker(t *testing.T) *metrics.Worker {
	t.Helper()
	s.stopWorker()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acts.Metrics = metrics.NewWorker()
	w, err := bfworker.NewInstrumented(s.tc, s.namespace, s.tq, s.acts)
	require.NoError(t, err)
	require.NoError(t, w.Start())
	s.worker = w
	return s.acts.Metrics
}

// scraper serves h as a /metrics listener would and returns a function scraping it.
func scraper(t *testing.T, h http.Handler) func() metricstest.Scrape {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return func() metricstest.Scrape { return metricstest.Get(t, srv.URL) }
}

func gauge(t *testing.T, s metricstest.Scrape, name string, labels ...string) float64 {
	t.Helper()
	v, ok := s.Value(name, labels...)
	require.True(t, ok, "%s%v missing", name, labels)
	return v
}

// TestMetricsOfAnIncident runs an incident through the whole stack — a tenant without a
// deliverable contact, SendGrid answering 429 at first, delivery events through the
// signed webhook, one acknowledgement — and scrapes both registries over HTTP: the API's
// (truth from PostgreSQL) and the worker's (what it did, and the SDK's metrics).
func TestMetricsOfAnIncident(t *testing.T) {
	const tenants = 20
	s := newStackWith(t, stackOptions{Tenants: tenants, Contacts: 1, Webhook: true})
	ctx := context.Background()
	wm := s.startInstrumentedWorker(t)
	scrapeWorker := scraper(t, wm.Handler())
	scrapeAPI := scraper(t, api.New(s.st, s.tc, zap.NewNop()).Metrics())

	var lost string
	require.NoError(t, s.st.Pool().QueryRow(ctx, `SELECT id FROM tenants ORDER BY id LIMIT 1`).Scan(&lost))
	_, err := s.st.Pool().Exec(ctx, `UPDATE contacts SET undeliverable_at = now(), undeliverable_reason = 'test' WHERE tenant_id = $1`, lost)
	require.NoError(t, err)

	require.NoError(t, s.sink.SetFaults(sink.Faults{RateLimitShare: 1}))
	id, run := s.declare(t, "", workflows.Timing{AckCheckInterval: 200 * time.Millisecond, PageSize: 5})
	s.approveNotice(t, id, store.ScopeCriteria{Services: allServices})
	require.Eventually(t, func() bool {
		v, _ := scrapeWorker().Value("breachflow_sendgrid_retries_total", "status", "429")
		return v >= 1
	}, time.Minute, 50*time.Millisecond, "a page meets a 429")
	require.NoError(t, s.sink.SetFaults(sink.Faults{}))

	require.Eventually(t, func() bool {
		l := s.ledger(t, id).Initial()
		return l.Notified == tenants-1 && l.Unreachable == 1
	}, time.Minute, 100*time.Millisecond)
	// The sink's events reach the outbox through the webhook: sent becomes delivered.
	require.Eventually(t, func() bool {
		v, _ := scrapeAPI().Value("breachflow_notices", "status", "delivered")
		return v == tenants-1
	}, 30*time.Second, 100*time.Millisecond)
	var ackTenant string
	require.NoError(t, s.st.Pool().QueryRow(ctx, `SELECT id FROM tenants WHERE id <> $1 ORDER BY id LIMIT 1`, lost).Scan(&ackTenant))
	_, err = s.st.Acknowledge(ctx, id, ackTenant, "link", "customer")
	require.NoError(t, err)
	// The unreachable tenant's deadline passes.
	_, err = s.st.Pool().Exec(ctx, `UPDATE ledger SET deadline = now() - interval '1 minute' WHERE incident_id = $1 AND tenant_id = $2`, id, lost)
	require.NoError(t, err)

	a := scrapeAPI()
	require.Equal(t, 1.0, gauge(t, a, "breachflow_domain_scrape_success"))
	require.Equal(t, float64(tenants-1), gauge(t, a, "breachflow_notices"), "one notice per reachable contact")
	require.Equal(t, float64(tenants-1), gauge(t, a, "breachflow_notices", "status", "delivered"))
	require.Zero(t, gauge(t, a, "breachflow_notices", "status", "failed"))
	require.Equal(t, 1.0, gauge(t, a, "breachflow_acknowledged_tenants"))
	require.Equal(t, 1.0, gauge(t, a, "breachflow_owed_tenants"))
	require.Equal(t, 1.0, gauge(t, a, "breachflow_unreachable_tenants"))
	require.Equal(t, 1.0, gauge(t, a, "breachflow_tenants_at_risk", "window", "past"))
	require.Zero(t, gauge(t, a, "breachflow_tenants_at_risk", "window", "near"))
	require.Zero(t, gauge(t, a, "breachflow_possible_duplicate_notices"))
	require.Equal(t, 1.0, gauge(t, a, "breachflow_incidents")-gauge(t, a, "breachflow_incidents", "stage", "closed"), "one open incident")

	w := scrapeWorker()
	require.GreaterOrEqual(t, gauge(t, w, "breachflow_pages_total", "outcome", "sent"), 4.0, "19 notices in pages of 5")
	require.GreaterOrEqual(t, gauge(t, w, "breachflow_pages_total", "outcome", "temporary_error"), 1.0)
	require.Zero(t, gauge(t, w, "breachflow_pages_total", "outcome", "refused"))
	require.GreaterOrEqual(t, gauge(t, w, "breachflow_sendgrid_requests_total", "outcome", "accepted"), 4.0)
	require.GreaterOrEqual(t, gauge(t, w, "breachflow_sendgrid_requests_total", "outcome", "rate_limited"), 1.0)
	require.Equal(t, float64(tenants-1), gauge(t, w, "breachflow_notices_sent_total"))
	require.Zero(t, gauge(t, w, "breachflow_possible_duplicates_total"))
	n, ok := w.HistogramCount("breachflow_sendgrid_request_duration_seconds", "outcome", "accepted")
	require.True(t, ok)
	require.GreaterOrEqual(t, n, uint64(4))
	n, ok = w.HistogramCount("breachflow_temporal_workflow_task_execution_latency_seconds", "workflow_type", "IncidentWorkflow",
		"task_queue", s.tq, "namespace", s.namespace)
	require.True(t, ok, "the SDK reports workflow task latency to the worker's registry")
	require.Positive(t, n)
	n, _ = w.HistogramCount("breachflow_temporal_activity_execution_latency_seconds", "activity_type", "SendPage")
	require.Positive(t, n)
	for _, fam := range []string{"breachflow_pages_total", "breachflow_sendgrid_requests_total", "breachflow_sendgrid_retries_total"} {
		for label, values := range w.LabelValues(fam) {
			for _, v := range values {
				require.NotContains(t, v, "@", "%s{%s=%q}", fam, label, v)
				require.NotContains(t, v, id, "%s{%s=%q}", fam, label, v)
			}
		}
	}

	// Closing the incident leaves nothing open.
	s.update(t, id, workflows.UpdateClose, workflows.CloseInput{Reason: "test over", Actor: "alice"})
	var final workflows.Status
	require.NoError(t, run.Get(ctx, &final))
	a = scrapeAPI()
	require.Zero(t, gauge(t, a, "breachflow_notices"))
	require.Zero(t, gauge(t, a, "breachflow_acknowledged_tenants"))
	require.Zero(t, gauge(t, a, "breachflow_tenants_at_risk"))
	require.Equal(t, 1.0, gauge(t, a, "breachflow_incidents", "stage", "closed"))
}
