package metrics_test

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/metrics"
	"github.com/breachflow/breachflow/internal/metrics/metricstest"
	"github.com/breachflow/breachflow/internal/testenv"
)

type dashboardPanel struct {
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// Every series the Grafana dashboard charts is one breachflow serves (or, for the
// Temporal SDK's, one the package documentation lists), so that a renamed series
// cannot leave a panel silently empty.
func TestDashboardChartsServedSeries(t *testing.T) {
	raw, err := os.ReadFile("../../deploy/grafana-dashboard.json")
	require.NoError(t, err)
	var dash struct {
		UID    string           `json:"uid"`
		Panels []dashboardPanel `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(raw, &dash))
	require.NotEmpty(t, dash.UID)

	// What the two registries serve.
	w := metrics.NewWorker()
	w.Request(time.Millisecond, nil)
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.NewDomain(testenv.Store(t).Pool(), nil))
	served := map[string]bool{"breachflow_http_requests_total": true} // internal/api's, tested there
	for _, h := range []*httptest.Server{httptest.NewServer(w.Handler()), httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))} {
		for name := range metricstest.Get(t, h.URL) {
			served[name] = true
		}
		h.Close()
	}
	doc, err := os.ReadFile("doc.go")
	require.NoError(t, err)

	nameRe := regexp.MustCompile(`breachflow_[a-z0-9_]+`)
	charted := 0
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		require.NotNil(t, p.Datasource, p.Title)
		require.Equal(t, "${datasource}", p.Datasource.UID, p.Title)
		require.NotEmpty(t, p.Targets, p.Title)
		for _, tg := range p.Targets {
			for _, name := range nameRe.FindAllString(tg.Expr, -1) {
				charted++
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count"), "_sum")
				if strings.HasPrefix(base, "breachflow_temporal_") {
					require.Contains(t, string(doc), base, "panel %q charts an SDK series the documentation does not list", p.Title)
					continue
				}
				require.True(t, served[base], "panel %q charts %s, which nothing serves", p.Title, base)
				require.Contains(t, string(doc), base, "panel %q charts %s, which the documentation does not list", p.Title, base)
			}
		}
	}
	require.Positive(t, charted)
}
