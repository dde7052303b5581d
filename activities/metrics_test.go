package activities_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/mail/sink"
	"github.com/breachflow/breachflow/internal/metrics"
	"github.com/breachflow/breachflow/internal/metrics/metricstest"
)

// withMetrics gives the fixture's activities a worker registry and returns a scraper of it.
func (f *fixture) withMetrics(t *testing.T) func() metricstest.Scrape {
	t.Helper()
	f.acts.Metrics = metrics.NewWorker()
	srv := httptest.NewServer(f.acts.Metrics.Handler())
	t.Cleanup(srv.Close)
	return func() metricstest.Scrape { return metricstest.Get(t, srv.URL) }
}

func value(t *testing.T, s metricstest.Scrape, name string, labels ...string) float64 {
	t.Helper()
	v, ok := s.Value(name, labels...)
	require.True(t, ok, "%s%v missing", name, labels)
	return v
}

// One page walks through a 429, a 500, its send, a retry with nothing left, a lost
// answer and a resend as possible duplicates; SendPage counts each step.
func TestSendPageCountsOutcomesRequestsAndRetries(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 20, "SG.good")
	scrape := f.withMetrics(t)

	require.NoError(t, f.sink.SetFaults(sink.Faults{RateLimitShare: 1}))
	_, err := f.send(0)
	require.Error(t, err)
	require.NoError(t, f.sink.SetFaults(sink.Faults{ServerErrorShare: 1}))
	_, err = f.send(0)
	require.Error(t, err)
	require.NoError(t, f.sink.SetFaults(sink.Faults{}))
	r, err := f.send(0)
	require.NoError(t, err)
	require.Equal(t, 20, r.Sent)
	_, err = f.send(0)
	require.NoError(t, err)

	s := scrape()
	require.Equal(t, 2.0, value(t, s, "breachflow_pages_total", "outcome", "temporary_error"))
	require.Equal(t, 1.0, value(t, s, "breachflow_pages_total", "outcome", "sent"))
	require.Equal(t, 1.0, value(t, s, "breachflow_pages_total", "outcome", "nothing_to_send"))
	require.Equal(t, 1.0, value(t, s, "breachflow_sendgrid_requests_total", "outcome", "rate_limited"))
	require.Equal(t, 1.0, value(t, s, "breachflow_sendgrid_requests_total", "outcome", "server_error"))
	require.Equal(t, 1.0, value(t, s, "breachflow_sendgrid_requests_total", "outcome", "accepted"))
	require.Equal(t, 3.0, value(t, s, "breachflow_sendgrid_requests_total"), "the empty retry sends no request")
	require.Equal(t, 1.0, value(t, s, "breachflow_sendgrid_retries_total", "status", "429"))
	require.Equal(t, 1.0, value(t, s, "breachflow_sendgrid_retries_total", "status", "5xx"))
	require.Equal(t, 20.0, value(t, s, "breachflow_notices_sent_total"))
	n, ok := s.HistogramCount("breachflow_sendgrid_request_duration_seconds")
	require.True(t, ok)
	require.Equal(t, uint64(3), n)

	// As if the worker died after SendGrid accepted the page: in doubt, then sent again.
	f.acts.InDoubtGrace = time.Second
	_, err = f.st.Pool().Exec(context.Background(), `UPDATE notices SET status = 'sending', provider_message_id = NULL, sent_at = NULL,
		claimed_at = now() WHERE incident_id = $1`, f.id)
	require.NoError(t, err)
	_, err = f.send(0)
	inDoubtError(t, err)
	time.Sleep(f.acts.InDoubtGrace)
	r, err = f.send(0)
	require.NoError(t, err)
	require.Equal(t, 20, r.PossibleDuplicates)

	s = scrape()
	require.Equal(t, 1.0, value(t, s, "breachflow_pages_total", "outcome", "in_doubt"))
	require.Equal(t, 2.0, value(t, s, "breachflow_pages_total", "outcome", "sent"))
	require.Equal(t, 20.0, value(t, s, "breachflow_possible_duplicates_total"))
	require.Equal(t, 40.0, value(t, s, "breachflow_notices_sent_total"))
}

// A refused key refuses the page for good: counted as refused and unauthorized, not as
// a retry.
func TestSendPageCountsRefusedKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 5, "SG.revoked")
	scrape := f.withMetrics(t)
	_, err := f.send(0)
	require.Error(t, err)

	s := scrape()
	require.Equal(t, 1.0, value(t, s, "breachflow_pages_total", "outcome", "refused"))
	require.Equal(t, 1.0, value(t, s, "breachflow_sendgrid_requests_total", "outcome", "unauthorized"))
	require.Zero(t, value(t, s, "breachflow_sendgrid_retries_total"))
	require.Zero(t, value(t, s, "breachflow_notices_sent_total"))
}
