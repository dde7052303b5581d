package api_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/metrics"
	"github.com/breachflow/breachflow/internal/metrics/metricstest"
)

// The API's registry counts requests by route pattern and status class and carries the
// domain gauges read from PostgreSQL; the public listener does not serve it.
func TestMetricsServesRequestsByStatusClassAndDomainGauges(t *testing.T) {
	e := newAPIEnv(t, envOptions{Tenants: 3})
	srv := httptest.NewServer(e.api.Metrics())
	t.Cleanup(srv.Close)

	e.must(t, http.StatusOK, http.MethodGet, "/healthz", keyNone, nil)
	e.must(t, http.StatusOK, http.MethodGet, "/healthz", keyNone, nil)
	e.must(t, http.StatusUnauthorized, http.MethodGet, "/v1/incidents", keyNone, nil)
	e.must(t, http.StatusNotFound, http.MethodGet, "/metrics", keyNone, nil)

	s := metricstest.Get(t, srv.URL)
	ok, _ := s.Value("breachflow_http_requests_total", "route", "GET /healthz", "code", "2xx")
	require.Equal(t, 2.0, ok)
	denied, _ := s.Value("breachflow_http_requests_total", "route", "GET /v1/incidents", "code", "4xx")
	require.Equal(t, 1.0, denied)
	for _, v := range s.LabelValues("breachflow_http_requests_total")["code"] {
		require.Regexp(t, `^[1-5]xx$`, v, "code is a status class")
	}
	success, found := s.Value("breachflow_domain_scrape_success")
	require.True(t, found)
	require.Equal(t, 1.0, success)
	incidents, found := s.Value("breachflow_incidents")
	require.True(t, found)
	require.Zero(t, incidents)
	require.True(t, s.Has("breachflow_notices"))
	require.True(t, s.Has("go_goroutines"))
}

// One process can serve the API's and the worker's series on one listener (dev runs
// both): the worker's Gatherer leaves out the Go runtime's series the API already has.
func TestMetricsOfAPIAndWorkerServeTogether(t *testing.T) {
	e := newAPIEnv(t, envOptions{})
	w := metrics.NewWorker()
	w.Temporal().WithTags(map[string]string{"task_queue": "breachflow"}).Counter("temporal_worker_start").Inc(1)
	srv := httptest.NewServer(promhttp.HandlerFor(prometheus.Gatherers{e.api.MetricsGatherer(), w.Gatherer()}, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)

	s := metricstest.Get(t, srv.URL)
	for _, name := range []string{"breachflow_notices", "breachflow_pages_total", "breachflow_temporal_worker_start_total", "go_goroutines"} {
		require.True(t, s.Has(name), name)
	}
}
