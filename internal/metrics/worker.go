package metrics

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"

	"github.com/breachflow/breachflow/internal/mail"
)

// PageOutcome is how one attempt of SendPage ended.
type PageOutcome string

// Page outcomes, the values of breachflow_pages_total's outcome label.
const (
	// PageSent: the attempt sent its unsent notices and recorded them.
	PageSent PageOutcome = "sent"
	// PageNothingToSend: every notice of the page was already sent (a retried page).
	PageNothingToSend PageOutcome = "nothing_to_send"
	// PageInDoubt: a send got no answer; the page waits for delivery events.
	PageInDoubt PageOutcome = "in_doubt"
	// PageTemporaryError: a retryable failure (429, 5xx, database); the page is retried.
	PageTemporaryError PageOutcome = "temporary_error"
	// PageRefused: refused for good (400/401/403, an invalid page); its tenants stay owed.
	PageRefused PageOutcome = "refused"
)

// PageOutcomes lists every PageOutcome.
var PageOutcomes = []PageOutcome{PageSent, PageNothingToSend, PageInDoubt, PageTemporaryError, PageRefused}

// Values of breachflow_sendgrid_requests_total's outcome label.
const (
	RequestAccepted     = "accepted"      // 2xx
	RequestRateLimited  = "rate_limited"  // 429, retried after SendGrid's reset time
	RequestServerError  = "server_error"  // 5xx, retried
	RequestUnauthorized = "unauthorized"  // 401, 403: the key is refused
	RequestRejected     = "rejected"      // any other 4xx (408 is retried)
	RequestNoAnswer     = "no_answer"     // sent, no answer (timeout, reset): its notices are in doubt
	RequestNetworkError = "network_error" // never reached SendGrid (refused connection, DNS), retried
)

// RequestOutcomes lists every value of the outcome label of SendGrid requests.
var RequestOutcomes = []string{RequestAccepted, RequestRateLimited, RequestServerError, RequestUnauthorized, RequestRejected,
	RequestNoAnswer, RequestNetworkError}

// RetryStatuses are the values of breachflow_sendgrid_retries_total's status label: the
// status class of a retryable refusal, "none" when no HTTP answer came.
var RetryStatuses = []string{"429", "5xx", "4xx", "none"}

// sendgridBuckets span one small request (tens of ms) to a slow page of 1,000
// personalizations near the client's timeout.
var sendgridBuckets = []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60}

// Worker holds the worker process's event series: what its SendPage attempts did and
// the Temporal SDK's own metrics. They live in the worker because only it sees them; a
// restart resets them, which rate() and increase() absorb. Its methods do nothing on a
// nil *Worker, so activities built without metrics (tests, tools) need no checks.
type Worker struct {
	events     *prometheus.Registry // breachflow_… series
	runtime    *prometheus.Registry // go_… and process_… series
	pages      *prometheus.CounterVec
	requests   *prometheus.CounterVec
	latency    *prometheus.HistogramVec
	retries    *prometheus.CounterVec
	sent       prometheus.Counter
	duplicates prometheus.Counter
	temporal   *temporalSeries
}

// NewWorker builds the worker's registry with its series, the Temporal SDK's and the Go
// runtime's and process's.
func NewWorker() *Worker {
	w := &Worker{
		events:  prometheus.NewRegistry(),
		runtime: prometheus.NewRegistry(),
		pages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "breachflow_pages_total",
			Help: "SendPage attempts by outcome: sent, nothing_to_send, in_doubt, temporary_error, refused."}, []string{"outcome"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "breachflow_sendgrid_requests_total",
			Help: "SendGrid Mail Send requests of notice pages by outcome: accepted, rate_limited, server_error, unauthorized, rejected, no_answer, network_error."},
			[]string{"outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "breachflow_sendgrid_request_duration_seconds",
			Help: "Duration of SendGrid Mail Send requests of notice pages as the worker sees them, by outcome.", Buckets: sendgridBuckets},
			[]string{"outcome"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "breachflow_sendgrid_retries_total",
			Help: "SendGrid requests refused in a way that is retried (429, 5xx, 408; none: no connection), by status class."},
			[]string{"status"}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "breachflow_notices_sent_total",
			Help: "Notices SendGrid accepted and the worker recorded as sent."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "breachflow_possible_duplicates_total",
			Help: "Notices sent again after their first send's answer was lost and no delivery event confirmed them."}),
		temporal: newTemporalSeries(),
	}
	for _, o := range PageOutcomes {
		w.pages.WithLabelValues(string(o))
	}
	for _, o := range RequestOutcomes {
		w.requests.WithLabelValues(o)
	}
	for _, s := range RetryStatuses {
		w.retries.WithLabelValues(s)
	}
	w.events.MustRegister(w.pages, w.requests, w.latency, w.retries, w.sent, w.duplicates, w.temporal)
	w.runtime.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return w
}

// Handler serves the worker's series and the Go runtime's; serve it on a listener of its own.
func (w *Worker) Handler() http.Handler {
	return promhttp.HandlerFor(prometheus.Gatherers{w.events, w.runtime}, promhttp.HandlerOpts{})
}

// Gatherer gathers the worker's breachflow_… series alone, without the Go runtime's, for
// a process that serves them beside a registry that has those already (dev runs the API
// and the worker in one process).
func (w *Worker) Gatherer() prometheus.Gatherer { return w.events }

// Temporal returns the handler the Temporal SDK reports its metrics to (workflow task
// latency, schedule-to-start, slots, polls …), recorded as breachflow_temporal_… series.
func (w *Worker) Temporal() client.MetricsHandler {
	return &temporalHandler{series: w.temporal}
}

// Page counts one SendPage attempt: its outcome, the notices it recorded sent, and those
// it claimed to send again as possible duplicates.
func (w *Worker) Page(outcome PageOutcome, sent, possibleDuplicates int) {
	if w == nil {
		return
	}
	w.pages.WithLabelValues(string(outcome)).Inc()
	w.sent.Add(float64(max(sent, 0)))
	w.duplicates.Add(float64(max(possibleDuplicates, 0)))
}

// Request counts one SendGrid request that took d and ended with err (nil: accepted),
// and a retry when SendGrid refused it in a way that is retried. A page refused before
// any request (mail.ErrInvalidPage) is not a request and is not counted.
func (w *Worker) Request(d time.Duration, err error) {
	if w == nil {
		return
	}
	outcome, retry, ok := classifyRequest(err)
	if !ok {
		return
	}
	w.requests.WithLabelValues(outcome).Inc()
	w.latency.WithLabelValues(outcome).Observe(d.Seconds())
	if retry != "" {
		w.retries.WithLabelValues(retry).Inc()
	}
}

// classifyRequest names a request's outcome and, when it is retried, its status class.
func classifyRequest(err error) (outcome, retry string, ok bool) {
	if err == nil {
		return RequestAccepted, "", true
	}
	var se *mail.SendError
	if !errors.As(err, &se) {
		return "", "", false
	}
	switch {
	case se.Status == 0 && mail.InDoubt(err):
		// Not retried as such: the page waits for delivery events (possible duplicates).
		return RequestNoAnswer, "", true
	case se.Status == 0:
		return RequestNetworkError, "none", true
	case se.Status == http.StatusTooManyRequests:
		return RequestRateLimited, "429", true
	case se.Status >= 500:
		return RequestServerError, "5xx", true
	case se.Status == http.StatusUnauthorized || se.Status == http.StatusForbidden:
		return RequestUnauthorized, "", true
	case se.Retryable:
		return RequestRejected, strconv.Itoa(se.Status/100) + "xx", true
	default:
		return RequestRejected, "", true
	}
}
