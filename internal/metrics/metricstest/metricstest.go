// Package metricstest scrapes a /metrics endpoint over HTTP the way Prometheus does and
// reads series from what it answered, for tests.
package metricstest

import (
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// Scrape is one scrape's metric families by name.
type Scrape map[string]*dto.MetricFamily

// Get scrapes url (text exposition format) and fails t unless it answers 200 with
// families that parse.
func Get(t testing.TB, url string) Scrape {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "scrape %s", url)
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err, "scrape %s", url)
	return fams
}

// Has reports whether the scrape holds a family name with at least one series.
func (s Scrape) Has(name string) bool {
	f, ok := s[name]
	return ok && len(f.GetMetric()) > 0
}

// Series returns the series of family name whose labels include every pair of
// labels (name, value, name, value …).
func (s Scrape) Series(name string, labels ...string) []*dto.Metric {
	var out []*dto.Metric
	for _, m := range s[name].GetMetric() {
		if matches(m, labels) {
			out = append(out, m)
		}
	}
	return out
}

// Value sums the values of the matching counter, gauge or untyped series of family name;
// ok is false when no series matches.
func (s Scrape) Value(name string, labels ...string) (v float64, ok bool) {
	for _, m := range s.Series(name, labels...) {
		ok = true
		switch {
		case m.Counter != nil:
			v += m.GetCounter().GetValue()
		case m.Gauge != nil:
			v += m.GetGauge().GetValue()
		case m.Untyped != nil:
			v += m.GetUntyped().GetValue()
		}
	}
	return v, ok
}

// HistogramCount sums the observation counts of the matching histogram series of family
// name; ok is false when no series matches.
func (s Scrape) HistogramCount(name string, labels ...string) (n uint64, ok bool) {
	for _, m := range s.Series(name, labels...) {
		if m.Histogram != nil {
			ok = true
			n += m.GetHistogram().GetSampleCount()
		}
	}
	return n, ok
}

// LabelValues returns every label name's values in family name.
func (s Scrape) LabelValues(name string) map[string][]string {
	out := map[string][]string{}
	for _, m := range s[name].GetMetric() {
		for _, lp := range m.GetLabel() {
			out[lp.GetName()] = append(out[lp.GetName()], lp.GetValue())
		}
	}
	return out
}

func matches(m *dto.Metric, labels []string) bool {
	have := map[string]string{}
	for _, lp := range m.GetLabel() {
		have[lp.GetName()] = lp.GetValue()
	}
	for i := 0; i+1 < len(labels); i += 2 {
		if v, ok := have[labels[i]]; !ok || v != labels[i+1] {
			return false
		}
	}
	return true
}
