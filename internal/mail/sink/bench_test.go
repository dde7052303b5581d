package sink_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/mail"
	"github.com/breachflow/breachflow/internal/mail/sink"
)

// noticePage builds a page shaped like a real notification round: a notice of a few KB with
// substitution tags and n recipients with their own substitutions and IDs.
func noticePage(n int, domain string) mail.Page {
	text := "Dear -bf_tenant_name-,\n\n" + strings.Repeat(
		"We are writing to inform you of a security incident that affected personal data processed on your behalf. ", 12) +
		"\n\nPlease acknowledge this notice by -bf_deadline- at -bf_ack_url-\n"
	html := "<p>Dear -bf_tenant_name_html-,</p>\n<p>" + strings.Repeat(
		"We are writing to inform you of a security incident that affected personal data processed on your behalf. ", 12) +
		"</p>\n<p>Please <a href=\"-bf_ack_url_html-\">acknowledge this notice</a> by -bf_deadline_html-.</p>\n"
	p := mail.Page{
		Subject:          "Security incident notice for -bf_tenant_name-",
		Text:             text,
		HTML:             html,
		Personalizations: make([]mail.Personalization, n),
	}
	for i := range p.Personalizations {
		tenant := fmt.Sprintf("Tenant %05d GmbH", i)
		ack := fmt.Sprintf("https://breachflow.example.com/ack/%032x", i+1)
		deadline := "2026-03-14 09:30 UTC"
		p.Personalizations[i] = mail.Personalization{
			To:     fmt.Sprintf("security-contact-%05d@%s", i, domain),
			ToName: fmt.Sprintf("Contact %05d", i),
			Substitutions: map[string]string{
				"-bf_tenant_name-":      tenant,
				"-bf_tenant_name_html-": tenant,
				"-bf_ack_url-":          ack,
				"-bf_ack_url_html-":     ack,
				"-bf_deadline-":         deadline,
				"-bf_deadline_html-":    deadline,
			},
			Args: mail.CustomArgs{
				NoticeID:   fmt.Sprintf("0190c5a2-7b4e-7d1a-9f3c-%012x", i+1),
				IncidentID: "0190c5a2-7b4e-7d1a-9f3c-4b2d1e0f9a88",
				Round:      1,
			},
		}
	}
	return p
}

func marshalPage(tb testing.TB, p mail.Page) []byte {
	tb.Helper()
	s, err := mail.NewSender(mail.Config{APIKey: "SG.bench", BaseURL: "http://127.0.0.1:1", FromEmail: "notices@breachflow.example.com"}, nil)
	require.NoError(tb, err)
	body, err := s.MarshalPage(p)
	require.NoError(tb, err)
	return body
}

// BenchmarkSinkAccept posts 1,000-personalization requests of the real payload shape from 4
// concurrent senders and reports accepted personalizations per second.
func BenchmarkSinkAccept(b *testing.B) {
	b.Run("store", func(b *testing.B) { benchAccept(b, "") })
	b.Run("store+webhook", func(b *testing.B) {
		var events atomic.Int64
		recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _ := io.Copy(io.Discard, r.Body)
			events.Add(n)
			w.WriteHeader(http.StatusOK)
		}))
		defer recv.Close()
		benchAccept(b, recv.URL)
	})
}

// BenchmarkDecodeOnlyBaseline is the yardstick for BenchmarkSinkAccept: a server that only
// decodes the same requests into maps and answers 202.
func BenchmarkDecodeOnlyBaseline(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			From             map[string]string   `json:"from"`
			Subject          string              `json:"subject"`
			Content          []map[string]string `json:"content"`
			Personalizations []struct {
				To            []map[string]string `json:"to"`
				Substitutions map[string]string   `json:"substitutions"`
				CustomArgs    map[string]string   `json:"custom_args"`
			} `json:"personalizations"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	runSenders(b, srv.URL, nil)
}

func benchAccept(b *testing.B, webhookURL string) {
	s, err := sink.New(sink.Config{WebhookURL: webhookURL, WebhookQueue: 4096}, nil)
	require.NoError(b, err)
	defer s.Close()
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	runSenders(b, srv.URL, s)
}

// runSenders posts b.N requests of 1,000 personalizations from 4 goroutines and reports
// personalizations per second, and the process CPU time per request, which shows the cost when
// other work shares the machine.
func runSenders(b *testing.B, url string, s *sink.Sink) {
	const senders = 4
	srv := struct{ URL string }{url}

	body := marshalPage(b, noticePage(1000, "tenant.example.com"))
	client := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: senders, DisableCompression: true},
	}
	post := func() error {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/v3/mail/send", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer SG.bench")
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	require.NoError(b, post()) // warm the connection and the pools
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()

	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	start := time.Now()
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := post(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	if s != nil {
		// With a webhook, count the time until every event is posted, not only accepted.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.NoError(b, s.FlushWebhooks(ctx))
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	close(errs)
	require.NoError(b, <-errs)
	b.ReportMetric(float64(b.N)*1000/elapsed.Seconds(), "pers/s")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
	if s != nil {
		if st := s.Stats(); st.WebhookEvents > 0 || st.WebhookDroppedMessages > 0 {
			b.ReportMetric(float64(st.WebhookEvents)/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64(st.WebhookDroppedMessages), "dropped")
		}
	}
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
