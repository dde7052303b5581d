package main

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/metrics/metricstest"
	"github.com/breachflow/breachflow/internal/testenv"
)

// `breachflow worker` serves its registry on BREACHFLOW_METRICS_LISTEN: its own series
// and the Temporal SDK's, reported once the worker polls.
func TestWorkerServesItsMetrics(t *testing.T) {
	ts := testenv.Temporal(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	t.Setenv("DATABASE_URL", testenv.DatabaseURL(t))
	t.Setenv("TEMPORAL_ADDRESS", ts.GetFrontendHostPort())
	t.Setenv("TEMPORAL_NAMESPACE", ts.GetDefaultNamespace())
	t.Setenv("BREACHFLOW_TASK_QUEUE", "worker-metrics-test")
	t.Setenv("SENDGRID_API_KEY", "SG.test")
	t.Setenv("BREACHFLOW_METRICS_LISTEN", addr)
	t.Setenv("BREACHFLOW_LOG_LEVEL", "warn")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := run(t, ctx, "worker")
		done <- err
	}()
	url := "http://" + addr + "/metrics"
	require.Eventually(t, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "the worker's metrics listener answers")
	var s metricstest.Scrape
	require.Eventually(t, func() bool {
		s = metricstest.Get(t, url)
		return s.Has("breachflow_temporal_worker_start_total")
	}, 30*time.Second, 100*time.Millisecond, "the SDK reports to the worker's registry")
	starts, _ := s.Value("breachflow_temporal_worker_start_total", "task_queue", "worker-metrics-test")
	require.Positive(t, starts)
	for _, name := range []string{"breachflow_pages_total", "breachflow_sendgrid_requests_total", "breachflow_sendgrid_retries_total",
		"breachflow_notices_sent_total", "breachflow_possible_duplicates_total", "go_goroutines"} {
		require.True(t, s.Has(name), name)
	}
	require.False(t, s.Has("breachflow_notices"), "the domain gauges are the API's")

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(45 * time.Second):
		t.Fatal("worker did not stop")
	}
}
