// Package api is breachflow's HTTP surface: health, metrics and the JSON API under /v1/.
package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/breachflow/breachflow/internal/evidence"
	"github.com/breachflow/breachflow/internal/mail"
	"github.com/breachflow/breachflow/internal/metrics"
	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/workflows"
)

// Server serves the HTTP API.
type Server struct {
	Store    *store.Store
	Temporal client.Client
	Logger   *zap.Logger
	// Webhook verifies SendGrid's signed Event Webhook; nil answers 503 there.
	Webhook *mail.Verifier
	// TaskQueue is where incident workflows run.
	TaskQueue string
	// Timing is passed to every new incident workflow (zero values take the defaults).
	Timing workflows.Timing
	// Limits throttles requests per key and per address.
	Limits *Limiter
	// ClientHeader names the header a trusted reverse proxy sets to the client's address
	// (X-Forwarded-For: its last entry); empty uses the TCP peer.
	ClientHeader string
	// PublicURL is the base of acknowledgement links; its host is one custom notice
	// templates may link to.
	PublicURL string
	// URLHosts are the hosts custom notice templates may link to.
	URLHosts []string
	// Sender is who notices come from, stamped into drafts that name no sender.
	Sender notice.Sender
	// DenialWindow is how long refused requests are counted before they are audited
	// (zero: DefaultDenialWindow).
	DenialWindow time.Duration
	// AuditKeys sign audit checkpoints and evidence packs and verify checkpoints (nil:
	// nothing is signed or checked, and verification says so).
	AuditKeys *evidence.Keys

	denied denials
	acks   ackBatcher

	registry *prometheus.Registry
	requests *prometheus.CounterVec
}

// DefaultSenderOrganisation names the sender of notices until one is configured.
const DefaultSenderOrganisation = "Breachflow Cloud"

// New returns a server over st and tc with the default limits and sender.
func New(st *store.Store, tc client.Client, logger *zap.Logger) *Server {
	s := &Server{Store: st, Temporal: tc, Logger: logger, registry: prometheus.NewRegistry(),
		TaskQueue: workflows.TaskQueue, Limits: NewLimiter(DefaultLimits), Sender: notice.Sender{Organisation: DefaultSenderOrganisation}}
	s.acks.st = st
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "breachflow_http_requests_total", Help: "HTTP requests by route and status class.",
	}, []string{"route", "code"})
	s.registry.MustRegister(s.requests, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if st != nil {
		// The domain gauges are read from PostgreSQL at scrape time, here rather than in
		// the worker, so that they stay right across worker restarts and scale-outs.
		s.registry.MustRegister(metrics.NewDomain(st.Pool(), logger))
	}
	return s
}

// Metrics returns the /metrics handler, served on a listener of its own: the public
// listener does not tell the world that a breach was declared. It serves the HTTP
// request counter, the domain gauges (see package metrics) and the Go runtime's series.
func (s *Server) Metrics() http.Handler {
	return promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{})
}

// MetricsGatherer returns the registry behind Metrics, for a process that serves other
// series beside it (prometheus.Gatherers).
func (s *Server) MetricsGatherer() prometheus.Gatherer { return s.registry }

// Handler returns the routed handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.route(mux, "GET /healthz", s.healthz)
	s.route(mux, "GET /readyz", s.readyz)
	s.route(mux, "POST /v1/webhooks/sendgrid", s.sendgridWebhook)
	for _, rt := range s.apiRoutes() {
		s.route(mux, rt.Method+" "+rt.Path, s.limited(s.auth(rt.Handler, rt.Action, rt.Method+" "+rt.Path)))
	}
	s.route(mux, "GET /v1/openapi.json", s.openAPI)
	s.route(mux, "GET /ack/{token}", s.limitedAck(s.ackPage))
	s.route(mux, "POST /ack/{token}", s.limitedAck(s.ackSubmit))
	return mux
}

func (s *Server) route(mux *http.ServeMux, pattern string, h http.HandlerFunc) {
	mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		h(rec, r)
		s.requests.WithLabelValues(pattern, strconv.Itoa(rec.code/100)+"xx").Inc()
	}))
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (write deadlines, flushes).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 only when both PostgreSQL and Temporal answer.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	checks := map[string]string{"postgres": "ok", "temporal": "ok"}
	code := http.StatusOK
	if err := s.Store.Ping(ctx); err != nil {
		checks["postgres"], code = "unavailable", http.StatusServiceUnavailable
		s.Logger.Warn("readiness: postgres", zap.Error(err))
	}
	if _, err := s.Temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		checks["temporal"], code = "unavailable", http.StatusServiceUnavailable
		s.Logger.Warn("readiness: temporal", zap.Error(err))
	}
	writeJSON(w, code, checks)
}

// Error is the body of every error response.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, e Error) {
	writeJSON(w, code, map[string]Error{"error": e})
}

// fail maps a domain error to its status in one place.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, e := ErrorFor(err)
	if code >= 500 {
		s.Logger.Error("request failed", zap.String("path", r.URL.Path), zap.Error(err))
	}
	writeError(w, code, e)
}
