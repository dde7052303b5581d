package mail_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/breachflow/breachflow/internal/mail"
	"github.com/breachflow/breachflow/internal/mail/sink"
)

const apiKey = "SG.test"

func startSink(t *testing.T, cfg sink.Config) (*sink.Sink, *httptest.Server) {
	t.Helper()
	if cfg.APIKeys == nil {
		cfg.APIKeys = []string{apiKey}
	}
	s, err := sink.New(cfg, nil)
	require.NoError(t, err)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		srv.Close()
		require.NoError(t, s.Close())
	})
	return s, srv
}

func newSender(t *testing.T, baseURL, key string, timeout time.Duration) *mail.Sender {
	t.Helper()
	s, err := mail.NewSender(mail.Config{
		APIKey: key, BaseURL: baseURL, FromEmail: "notices@breachflow.example.com", FromName: "Breachflow", Timeout: timeout,
	}, nil)
	require.NoError(t, err)
	return s
}

// page builds a notice page for recipients [from, from+n).
func page(from, n int) mail.Page {
	p := mail.Page{
		Subject: "Security incident at -tenant-",
		Text:    "Dear -tenant-, please acknowledge at -ack-.",
		HTML:    `<p>Dear -tenant-, please <a href="-ack-">acknowledge</a>.</p>`,
	}
	for i := from; i < from+n; i++ {
		p.Personalizations = append(p.Personalizations, mail.Personalization{
			To:            fmt.Sprintf("contact%d@tenant%d.example.com", i, i),
			ToName:        fmt.Sprintf("Contact %d", i),
			Substitutions: map[string]string{"-tenant-": fmt.Sprintf("Tenant %d", i), "-ack-": fmt.Sprintf("https://ack.example.com/t/%d", i)},
			Args:          mail.CustomArgs{NoticeID: fmt.Sprintf("notice-%d", i), IncidentID: "incident-1", Round: 1},
		})
	}
	return p
}

func TestSendBatchInPages(t *testing.T) {
	t.Parallel()
	s, srv := startSink(t, sink.Config{})
	sender := newSender(t, srv.URL, apiKey, 0)

	all := page(0, 2500)
	pages := mail.SplitPage(all, mail.MaxPersonalizations)
	require.Len(t, pages, 3)
	require.Equal(t, 3, mail.PageCount(len(all.Personalizations)))
	ids := map[string]bool{}
	for _, p := range pages {
		res, err := sender.Send(context.Background(), p)
		require.NoError(t, err)
		require.NotEmpty(t, res.MessageID)
		ids[res.MessageID] = true
	}
	require.Len(t, ids, 3)

	st := s.Stats()
	require.EqualValues(t, 3, st.Requests)
	require.EqualValues(t, 2500, st.Accepted)

	list := s.Messages(sink.Query{Limit: sink.MaxListLimit})
	require.Equal(t, 2500, list.Total)
	got := map[string]int{}
	for _, m := range list.Messages {
		require.Len(t, m.To, 1)
		to := m.To[0].Email
		got[to]++
		var i int
		_, err := fmt.Sscanf(to, "contact%d@", &i)
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("Security incident at Tenant %d", i), m.Subject)
		require.Equal(t, fmt.Sprintf("Dear Tenant %d, please acknowledge at https://ack.example.com/t/%d.", i, i), m.Text)
		require.Equal(t, fmt.Sprintf(`<p>Dear Tenant %d, please <a href="https://ack.example.com/t/%d">acknowledge</a>.</p>`, i, i), m.HTML)
		require.Equal(t, fmt.Sprintf("Contact %d", i), m.To[0].Name)
		require.Equal(t, sink.Address{Email: "notices@breachflow.example.com", Name: "Breachflow"}, m.From)
		require.True(t, ids[m.MessageID])
		// custom_args carry opaque IDs only.
		require.Equal(t, map[string]string{"notice_id": fmt.Sprintf("notice-%d", i), "incident_id": "incident-1", "round": "1"}, m.CustomArgs)
		for _, v := range m.CustomArgs {
			require.NotContains(t, v, "@")
		}
	}
	require.Len(t, got, 2500)
	for to, n := range got {
		require.Equal(t, 1, n, to)
	}
}

func TestSendErrorsAreTyped(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		cfg        sink.Config
		key        string
		page       mail.Page
		status     int
		retryable  bool
		errType    string
		retryAfter time.Duration
		field      string
	}{
		{
			name: "400 rejected by SendGrid's validation", key: apiKey,
			// The sender's own check is looser than SendGrid's: SendGrid is the authority.
			page:   withTo(page(0, 2), 1, "someone@localhost"),
			status: http.StatusBadRequest, errType: mail.ErrTypeRejected, field: "personalizations.1.to.0.email",
		},
		{name: "401 unknown key", key: "SG.wrong", page: page(0, 1), status: http.StatusUnauthorized, errType: mail.ErrTypeUnauthorized},
		{name: "403 key without scope", cfg: sink.Config{APIKeys: []string{apiKey, "SG.ro"}, ForbiddenKeys: []string{"SG.ro"}}, key: "SG.ro", page: page(0, 1), status: http.StatusForbidden, errType: mail.ErrTypeUnauthorized},
		{name: "413 payload too large", cfg: sink.Config{MaxBodyBytes: 2048}, key: apiKey, page: page(0, 50), status: http.StatusRequestEntityTooLarge, errType: mail.ErrTypeRejected},
		{
			name: "429 rate limited", cfg: sink.Config{Faults: sink.Faults{RateLimitShare: 1, RateLimitResetSeconds: 30}}, key: apiKey, page: page(0, 1),
			status: http.StatusTooManyRequests, retryable: true, errType: mail.ErrTypeRateLimited, retryAfter: 30 * time.Second,
		},
		{name: "500 server error", cfg: sink.Config{Faults: sink.Faults{ServerErrorShare: 1}}, key: apiKey, page: page(0, 1), status: http.StatusInternalServerError, retryable: true, errType: mail.ErrTypeUnavailable},
		{name: "503 outage", cfg: sink.Config{Faults: sink.Faults{OutageUntil: time.Now().Add(time.Hour)}}, key: apiKey, page: page(0, 1), status: http.StatusServiceUnavailable, retryable: true, errType: mail.ErrTypeUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, srv := startSink(t, tc.cfg)
			_, err := newSender(t, srv.URL, tc.key, 0).Send(context.Background(), tc.page)
			require.Error(t, err)

			var se *mail.SendError
			require.ErrorAs(t, err, &se)
			require.Equal(t, tc.status, se.Status)
			require.Equal(t, tc.retryable, se.Retryable)
			require.Equal(t, tc.errType, se.Type())
			require.NotEmpty(t, se.Errors, "SendGrid's messages are parsed")
			if tc.field != "" {
				require.Equal(t, tc.field, se.Errors[0].Field)
			}
			if tc.retryAfter > 0 {
				require.InDelta(t, tc.retryAfter.Seconds(), se.RetryAfter.Seconds(), 2)
			}
			require.NotContains(t, err.Error(), "@", "no address in the error text")
			require.Zero(t, s.Stats().Stored)

			terr := mail.TemporalError(err)
			var appErr *temporal.ApplicationError
			require.ErrorAs(t, terr, &appErr)
			require.Equal(t, tc.errType, appErr.Type())
			require.Equal(t, !tc.retryable, appErr.NonRetryable())
			if tc.retryAfter > 0 {
				require.Equal(t, se.RetryAfter, appErr.NextRetryDelay())
			} else {
				require.Zero(t, appErr.NextRetryDelay())
			}
			// The original error stays reachable.
			var again *mail.SendError
			require.ErrorAs(t, terr, &again)
			require.Same(t, se, again)
		})
	}
}

func withTo(p mail.Page, i int, to string) mail.Page {
	p.Personalizations[i].To = to
	return p
}

func TestSendNetworkErrorsAreRetryable(t *testing.T) {
	t.Parallel()
	t.Run("closed server", func(t *testing.T) {
		t.Parallel()
		_, srv := startSink(t, sink.Config{})
		url := srv.URL
		srv.Close()
		_, err := newSender(t, url, apiKey, 0).Send(context.Background(), page(0, 1))
		var se *mail.SendError
		require.ErrorAs(t, err, &se)
		require.Zero(t, se.Status)
		require.True(t, se.Retryable)
		require.Equal(t, mail.ErrTypeUnavailable, se.Type())
		var appErr *temporal.ApplicationError
		require.ErrorAs(t, mail.TemporalError(err), &appErr)
		require.False(t, appErr.NonRetryable())
		require.Equal(t, mail.ErrTypeUnavailable, appErr.Type())
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		_, srv := startSink(t, sink.Config{Faults: sink.Faults{LatencyMillis: 2000}})
		start := time.Now()
		_, err := newSender(t, srv.URL, apiKey, 100*time.Millisecond).Send(context.Background(), page(0, 1))
		require.Less(t, time.Since(start), time.Second, "the client timeout holds")
		var se *mail.SendError
		require.ErrorAs(t, err, &se)
		require.True(t, se.Retryable)
	})
	t.Run("caller's context", func(t *testing.T) {
		t.Parallel()
		_, srv := startSink(t, sink.Config{Faults: sink.Faults{LatencyMillis: 2000}})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := newSender(t, srv.URL, apiKey, 0).Send(ctx, page(0, 1))
		require.ErrorIs(t, err, context.DeadlineExceeded)
		var se *mail.SendError
		require.ErrorAs(t, err, &se)
		require.True(t, se.Retryable)
	})
}

func TestInvalidPagesAreRefusedBeforeSending(t *testing.T) {
	t.Parallel()
	s, srv := startSink(t, sink.Config{})
	sender := newSender(t, srv.URL, apiKey, 0)
	dup := page(0, 3)
	dup.Personalizations[2].To = strings.ToUpper(dup.Personalizations[0].To)
	leaky := page(0, 2)
	leaky.Personalizations[1].Args.NoticeID = "contact1@tenant1.example.com"
	tests := map[string]mail.Page{
		"no personalizations":    page(0, 0),
		"1001 personalizations":  page(0, 1001),
		"no subject":             func() mail.Page { p := page(0, 1); p.Subject = " "; return p }(),
		"no content":             func() mail.Page { p := page(0, 1); p.Text, p.HTML = "", ""; return p }(),
		"bad address":            withTo(page(0, 2), 0, "not an address"),
		"same address twice":     dup,
		"address in custom args": leaky,
		"negative round":         func() mail.Page { p := page(0, 1); p.Personalizations[0].Args.Round = -1; return p }(),
		"oversized substitutions": func() mail.Page {
			p := page(0, 1)
			p.Personalizations[0].Substitutions["-x-"] = strings.Repeat("x", 10000)
			return p
		}(),
	}
	for name, p := range tests {
		_, err := sender.Send(context.Background(), p)
		require.ErrorIs(t, err, mail.ErrInvalidPage, name)
		require.NotContains(t, err.Error(), "@", name)
		var appErr *temporal.ApplicationError
		require.ErrorAs(t, mail.TemporalError(err), &appErr, name)
		require.True(t, appErr.NonRetryable(), name)
		require.Equal(t, mail.ErrTypeInvalidPage, appErr.Type(), name)
	}
	st := s.Stats()
	require.Zero(t, st.Requests+st.Rejected, "nothing was sent")
}

func TestDisplayNamesWithControlCharactersAreLeftOut(t *testing.T) {
	t.Parallel()
	s, srv := startSink(t, sink.Config{})
	sender := newSender(t, srv.URL, apiKey, 0)
	names := []struct {
		name, sent string
	}{
		{"Eve\r\nBcc: victim@example.com", ""},
		{"Eve\nX-Injected: 1", ""},
		{"Eve\rSmith", ""},
		{"Eve\tSmith", ""},
		{"Eve\u0085Smith", ""},
		{"Ev\xe9", ""},
		{"Zoë O'Brien, DPO", "Zoë O'Brien, DPO"},
		{"", ""},
	}
	p := page(0, len(names))
	for i, n := range names {
		p.Personalizations[i].ToName = n.name
	}
	body, err := sender.MarshalPage(p)
	require.NoError(t, err)
	require.NotContains(t, string(body), "Bcc")
	require.NotContains(t, string(body), "X-Injected")

	_, err = sender.Send(context.Background(), p)
	require.NoError(t, err)
	for i, n := range names {
		list := s.Messages(sink.Query{To: p.Personalizations[i].To})
		require.Len(t, list.Messages, 1, "personalization %d is still sent", i)
		require.Equal(t, []sink.Address{{Email: p.Personalizations[i].To, Name: n.sent}}, list.Messages[0].To, "personalization %d", i)
	}
}

func TestNewSenderChecksConfig(t *testing.T) {
	t.Parallel()
	good := mail.Config{APIKey: apiKey, FromEmail: "a@example.com"}
	_, err := mail.NewSender(good, nil)
	require.NoError(t, err)
	for name, cfg := range map[string]mail.Config{
		"no key":         {FromEmail: "a@example.com"},
		"bad from":       {APIKey: apiKey, FromEmail: "nobody"},
		"relative URL":   {APIKey: apiKey, FromEmail: "a@example.com", BaseURL: "/v3"},
		"unknown proto":  {APIKey: apiKey, FromEmail: "a@example.com", BaseURL: "ftp://example.com"},
		"from name CRLF": {APIKey: apiKey, FromEmail: "a@example.com", FromName: "Notices\r\nBcc: x@example.com"},
		"from name UTF8": {APIKey: apiKey, FromEmail: "a@example.com", FromName: "Notic\xe9s"},
	} {
		_, err := mail.NewSender(cfg, nil)
		require.Error(t, err, name)
	}
}

func TestTemporalErrorPassesOthersThrough(t *testing.T) {
	t.Parallel()
	require.NoError(t, mail.TemporalError(nil))
	plain := errors.New("something else")
	require.Same(t, plain, mail.TemporalError(plain))
	app := temporal.NewNonRetryableApplicationError("x", "Other", nil)
	require.Same(t, app, mail.TemporalError(app))
	wrapped := fmt.Errorf("send page 3: %w", &mail.SendError{Status: 429, Retryable: true, RetryAfter: 7 * time.Second})
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, mail.TemporalError(wrapped), &appErr)
	require.Equal(t, mail.ErrTypeRateLimited, appErr.Type())
	require.Equal(t, 7*time.Second, appErr.NextRetryDelay())
}
