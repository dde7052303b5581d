package metrics

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"
)

// temporalBuckets span a workflow task (milliseconds) to an incident's whole life (days):
// the SDK times both with the same kind of timer.
var temporalBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 86400}

// temporalSeries keeps the Temporal SDK's metrics as Prometheus series. The SDK names a
// metric once but tags it differently at different call sites, so a name may carry
// several label sets: each (kind, name, label names) gets a vector of its own, and the
// collector is unchecked (it describes nothing) so the registry accepts them side by side.
type temporalSeries struct {
	mu   sync.Mutex
	vecs map[string]prometheus.Collector
	list []prometheus.Collector
}

func newTemporalSeries() *temporalSeries {
	return &temporalSeries{vecs: map[string]prometheus.Collector{}}
}

// Describe describes nothing: the series are known only once the SDK reports them.
func (s *temporalSeries) Describe(chan<- *prometheus.Desc) {}

// Collect sends every series the SDK reported.
func (s *temporalSeries) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	list := slices.Clone(s.list)
	s.mu.Unlock()
	for _, c := range list {
		c.Collect(ch)
	}
}

type metricKind int

const (
	kindCounter metricKind = iota
	kindGauge
	kindTimer
)

// vec returns the vector of kind for name with these label names, made on first use.
func (s *temporalSeries) vec(kind metricKind, name string, labels []string) prometheus.Collector {
	fq, help := temporalName(kind, name), "Temporal SDK metric "+name+"."
	key := strings.Join(append([]string{fq}, labels...), "\x00")
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.vecs[key]; ok {
		return v
	}
	var v prometheus.Collector
	switch kind {
	case kindCounter:
		v = prometheus.NewCounterVec(prometheus.CounterOpts{Name: fq, Help: help}, labels)
	case kindGauge:
		v = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: fq, Help: help}, labels)
	default:
		v = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: fq, Help: help, Buckets: temporalBuckets}, labels)
	}
	s.vecs[key] = v
	s.list = append(s.list, v)
	return v
}

// temporalName is the Prometheus name of an SDK metric: breachflow_ before it (the SDK's
// own start with temporal_), _total after a counter and _seconds after a timer.
func temporalName(kind metricKind, name string) string {
	n := "breachflow_" + sanitize(name)
	switch {
	case kind == kindCounter && !strings.HasSuffix(n, "_total"):
		n += "_total"
	case kind == kindTimer && !strings.HasSuffix(n, "_seconds"):
		n += "_seconds"
	}
	return n
}

// sanitize keeps [a-zA-Z0-9_] and replaces anything else with _.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, s)
}

// temporalHandler is the client.MetricsHandler the SDK reports to.
type temporalHandler struct {
	series *temporalSeries
	tags   map[string]string
}

var _ client.MetricsHandler = (*temporalHandler)(nil)

// WithTags returns a handler with tags added to (and overriding) its own.
func (h *temporalHandler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := maps.Clone(h.tags)
	if merged == nil {
		merged = map[string]string{}
	}
	for k, v := range tags {
		merged[sanitize(k)] = v
	}
	return &temporalHandler{series: h.series, tags: merged}
}

// labels returns the label names (sorted) and values of the handler's tags; an empty
// value is no label at all, as Prometheus reads it.
func (h *temporalHandler) labels() ([]string, prometheus.Labels) {
	names := make([]string, 0, len(h.tags))
	values := prometheus.Labels{}
	for k, v := range h.tags {
		if v == "" || k == "" {
			continue
		}
		names = append(names, k)
		values[k] = v
	}
	slices.Sort(names)
	return names, values
}

// Counter returns the counter name with the handler's tags.
func (h *temporalHandler) Counter(name string) client.MetricsCounter {
	names, values := h.labels()
	c := h.series.vec(kindCounter, name, names).(*prometheus.CounterVec).With(values)
	return counterFunc(func(d int64) {
		if d > 0 {
			c.Add(float64(d))
		}
	})
}

// Gauge returns the gauge name with the handler's tags.
func (h *temporalHandler) Gauge(name string) client.MetricsGauge {
	names, values := h.labels()
	g := h.series.vec(kindGauge, name, names).(*prometheus.GaugeVec).With(values)
	return gaugeFunc(g.Set)
}

// Timer returns the timer name with the handler's tags, recorded in seconds.
func (h *temporalHandler) Timer(name string) client.MetricsTimer {
	names, values := h.labels()
	o := h.series.vec(kindTimer, name, names).(*prometheus.HistogramVec).With(values)
	return timerFunc(func(d time.Duration) { o.Observe(d.Seconds()) })
}

type counterFunc func(int64)

func (f counterFunc) Inc(d int64) { f(d) }

type gaugeFunc func(float64)

func (f gaugeFunc) Update(v float64) { f(v) }

type timerFunc func(time.Duration)

func (f timerFunc) Record(d time.Duration) { f(d) }
