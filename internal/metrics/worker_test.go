package metrics_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/mail"
	"github.com/breachflow/breachflow/internal/metrics"
	"github.com/breachflow/breachflow/internal/metrics/metricstest"
)

func onePage() mail.Page {
	return mail.Page{Subject: "Security incident", Text: "Please acknowledge.", Personalizations: []mail.Personalization{{
		To: "dpo@tenant.example", Args: mail.CustomArgs{NoticeID: "1", IncidentID: "INC-TEST-0001", Round: 1}}}}
}

// answering is a SendGrid stand-in that answers every request with status.
func answering(t *testing.T, status int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if status == http.StatusTooManyRequests {
			w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10))
		}
		if status/100 == 2 {
			w.Header().Set("X-Message-Id", "msg-1")
		}
		w.WriteHeader(status)
		if status/100 != 2 {
			_, _ = w.Write([]byte(`{"errors":[{"message":"no"}]}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestWorkerCountsSendGridRequestsByOutcome sends through the real SendGrid client and
// counts each answer the way SendPage does.
func TestWorkerCountsSendGridRequestsByOutcome(t *testing.T) {
	// Reads the request, never answers: the server notices the client hang up only once
	// the body is read.
	silent := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(silent.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())

	cases := []struct {
		name    string
		url     string
		page    mail.Page
		outcome string // "" when not a request
		retry   string
	}{
		{"accepted", answering(t, http.StatusAccepted), onePage(), metrics.RequestAccepted, ""},
		{"429", answering(t, http.StatusTooManyRequests), onePage(), metrics.RequestRateLimited, "429"},
		{"500", answering(t, http.StatusInternalServerError), onePage(), metrics.RequestServerError, "5xx"},
		{"503", answering(t, http.StatusServiceUnavailable), onePage(), metrics.RequestServerError, "5xx"},
		{"408", answering(t, http.StatusRequestTimeout), onePage(), metrics.RequestRejected, "4xx"},
		{"401", answering(t, http.StatusUnauthorized), onePage(), metrics.RequestUnauthorized, ""},
		{"403", answering(t, http.StatusForbidden), onePage(), metrics.RequestUnauthorized, ""},
		{"400", answering(t, http.StatusBadRequest), onePage(), metrics.RequestRejected, ""},
		{"no answer", silent.URL, onePage(), metrics.RequestNoAnswer, ""},
		{"connection refused", refused, onePage(), metrics.RequestNetworkError, "none"},
		{"invalid page", answering(t, http.StatusAccepted), mail.Page{Subject: "x", Text: "y"}, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := metrics.NewWorker()
			srv := httptest.NewServer(w.Handler())
			t.Cleanup(srv.Close)
			sender, err := mail.NewSender(mail.Config{APIKey: "SG.test", BaseURL: c.url, FromEmail: "notices@provider.example",
				Timeout: 200 * time.Millisecond}, nil)
			require.NoError(t, err)
			start := time.Now()
			_, serr := sender.Send(context.Background(), c.page)
			w.Request(time.Since(start), serr)

			s := metricstest.Get(t, srv.URL)
			total, ok := s.Value("breachflow_sendgrid_requests_total")
			require.True(t, ok, "every outcome has a series from the start")
			n, _ := s.HistogramCount("breachflow_sendgrid_request_duration_seconds")
			retries, _ := s.Value("breachflow_sendgrid_retries_total")
			if c.outcome == "" {
				require.Zero(t, total)
				require.Zero(t, n)
				require.Zero(t, retries)
				return
			}
			require.Equal(t, 1.0, total)
			got, _ := s.Value("breachflow_sendgrid_requests_total", "outcome", c.outcome)
			require.Equal(t, 1.0, got, "outcome %s", c.outcome)
			n, _ = s.HistogramCount("breachflow_sendgrid_request_duration_seconds", "outcome", c.outcome)
			require.Equal(t, uint64(1), n)
			if c.retry == "" {
				require.Zero(t, retries)
				return
			}
			require.Equal(t, 1.0, retries)
			got, _ = s.Value("breachflow_sendgrid_retries_total", "status", c.retry)
			require.Equal(t, 1.0, got, "retry status %s", c.retry)
		})
	}
}

func TestWorkerCountsPages(t *testing.T) {
	w := metrics.NewWorker()
	srv := httptest.NewServer(w.Handler())
	t.Cleanup(srv.Close)
	w.Page(metrics.PageSent, 1000, 0)
	w.Page(metrics.PageSent, 250, 3)
	w.Page(metrics.PageInDoubt, 0, 0)
	w.Page(metrics.PageRefused, 0, 0)

	s := metricstest.Get(t, srv.URL)
	for outcome, want := range map[metrics.PageOutcome]float64{metrics.PageSent: 2, metrics.PageInDoubt: 1, metrics.PageRefused: 1,
		metrics.PageNothingToSend: 0, metrics.PageTemporaryError: 0} {
		got, ok := s.Value("breachflow_pages_total", "outcome", string(outcome))
		require.True(t, ok, outcome)
		require.Equal(t, want, got, outcome)
	}
	sent, _ := s.Value("breachflow_notices_sent_total")
	require.Equal(t, 1250.0, sent)
	dups, _ := s.Value("breachflow_possible_duplicates_total")
	require.Equal(t, 3.0, dups)
	require.True(t, s.Has("go_goroutines"), "the worker serves the Go runtime's series too")
}

// A nil *Worker counts nothing and does not panic: activities without metrics.
func TestNilWorkerCountsNothing(t *testing.T) {
	var w *metrics.Worker
	w.Page(metrics.PageSent, 1, 1)
	w.Request(time.Second, nil)
}
