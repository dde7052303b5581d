package sink_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/mail/sink"
)

func TestMailSendConformance(t *testing.T) {
	t.Parallel()
	_, srv := startSink(t, sink.Config{
		APIKeys:       []string{testKey, "SG.read-only"},
		ForbiddenKeys: []string{"SG.read-only"},
	})
	bearer := "Bearer " + testKey
	base := validRequest(2)

	cc := func(n int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = map[string]any{"email": fmt.Sprintf("cc%d@example.com", i)}
		}
		return out
	}
	onePers := func(p map[string]any) request { return base.with("personalizations", []any{p}) }

	tests := []struct {
		name   string
		auth   string
		body   []byte
		status int
		field  string // expected field of the first error; "" for none
		msg    string // expected substring of the first error message
	}{
		{name: "accepted", auth: bearer, body: base.body(t), status: http.StatusAccepted},
		{name: "no authorization", body: base.body(t), status: http.StatusUnauthorized},
		{name: "not a bearer token", auth: "Basic " + testKey, body: base.body(t), status: http.StatusUnauthorized},
		{name: "empty bearer token", auth: "Bearer ", body: base.body(t), status: http.StatusUnauthorized},
		{name: "unknown key", auth: "Bearer SG.other", body: base.body(t), status: http.StatusUnauthorized, msg: "invalid, expired, or revoked"},
		{name: "key without mail.send", auth: "Bearer SG.read-only", body: base.body(t), status: http.StatusForbidden, msg: "access forbidden"},
		{name: "missing from", auth: bearer, body: base.with("from", nil).body(t), status: http.StatusBadRequest, field: "from.email", msg: "from object must be provided"},
		{name: "invalid from", auth: bearer, body: base.with("from", map[string]any{"email": "not-an-address"}).body(t), status: http.StatusBadRequest, field: "from.email"},
		{name: "missing subject", auth: bearer, body: base.with("subject", nil).body(t), status: http.StatusBadRequest, field: "subject", msg: "subject is required"},
		{name: "blank subject", auth: bearer, body: base.with("subject", "  ").body(t), status: http.StatusBadRequest, field: "subject"},
		{name: "subject in every personalization", auth: bearer, status: http.StatusAccepted,
			body: base.with("subject", nil).with("personalizations", []any{map[string]any{
				"to": []any{map[string]any{"email": "a@example.com"}}, "subject": "own subject"}}).body(t)},
		{name: "missing content", auth: bearer, body: base.with("content", nil).body(t), status: http.StatusBadRequest, field: "content"},
		{name: "empty content list", auth: bearer, body: base.with("content", []any{}).body(t), status: http.StatusBadRequest, field: "content"},
		{name: "template instead of content and subject", auth: bearer, body: base.with("content", nil).with("subject", nil).with("template_id", "d-123").body(t), status: http.StatusAccepted},
		{name: "empty content value", auth: bearer, status: http.StatusBadRequest, field: "content.0.value",
			body: base.with("content", []any{map[string]any{"type": "text/plain", "value": ""}}).body(t)},
		{name: "html before plain", auth: bearer, status: http.StatusBadRequest, field: "content", msg: "text/plain content must be first",
			body: base.with("content", []any{map[string]any{"type": "text/html", "value": "<p>x</p>"}, map[string]any{"type": "text/plain", "value": "x"}}).body(t)},
		{name: "no personalizations", auth: bearer, body: base.with("personalizations", []any{}).body(t), status: http.StatusBadRequest, field: "personalizations"},
		{name: "personalizations missing", auth: bearer, body: base.with("personalizations", nil).body(t), status: http.StatusBadRequest, field: "personalizations"},
		{name: "1000 personalizations", auth: bearer, body: validRequest(1000).body(t), status: http.StatusAccepted},
		{name: "1001 personalizations", auth: bearer, body: validRequest(1001).body(t), status: http.StatusBadRequest, field: "personalizations", msg: "You have provided 1001 personalizations"},
		{name: "1001 recipients over to, cc and bcc", auth: bearer, status: http.StatusBadRequest, field: "personalizations", msg: "1000 total recipients",
			body: onePers(map[string]any{"to": []any{map[string]any{"email": "to@example.com"}}, "cc": cc(500), "bcc": cc(1000)[500:]}).body(t)},
		{name: "1000 recipients over to, cc and bcc", auth: bearer, status: http.StatusAccepted,
			body: onePers(map[string]any{"to": []any{map[string]any{"email": "to@example.com"}}, "cc": cc(500), "bcc": cc(999)[500:]}).body(t)},
		{name: "personalization without to", auth: bearer, status: http.StatusBadRequest, field: "personalizations.0.to",
			body: onePers(map[string]any{"cc": cc(1)}).body(t)},
		{name: "invalid to address", auth: bearer, status: http.StatusBadRequest, field: "personalizations.0.to.0.email", msg: "valid address",
			body: onePers(map[string]any{"to": []any{map[string]any{"email": "someone@localhost"}}}).body(t)},
		{name: "same address in two personalizations", auth: bearer, status: http.StatusBadRequest, field: "personalizations.1.to.0.email", msg: "more than once",
			body: base.with("personalizations", []any{
				map[string]any{"to": []any{map[string]any{"email": "twice@example.com"}}},
				map[string]any{"to": []any{map[string]any{"email": "Twice@Example.com"}}},
			}).body(t)},
		{name: "same address in to and bcc", auth: bearer, status: http.StatusBadRequest, field: "personalizations.0.bcc.0.email",
			body: onePers(map[string]any{"to": []any{map[string]any{"email": "x@example.com"}}, "bcc": []any{map[string]any{"email": "x@example.com"}}}).body(t)},
		{name: "custom args too large", auth: bearer, status: http.StatusBadRequest, field: "personalizations.0.custom_args",
			body: onePers(map[string]any{"to": []any{map[string]any{"email": "x@example.com"}}, "custom_args": map[string]any{"k": strings.Repeat("v", 10000)}}).body(t)},
		{name: "custom arg not a string", auth: bearer, status: http.StatusBadRequest, msg: "Bad Request",
			body: onePers(map[string]any{"to": []any{map[string]any{"email": "x@example.com"}}, "custom_args": map[string]any{"round": 1}}).body(t)},
		{name: "personalizations not an array", auth: bearer, body: base.with("personalizations", "x").body(t), status: http.StatusBadRequest, msg: "Bad Request"},
		{name: "malformed JSON", auth: bearer, body: []byte(`{"from": {"email": "a@example.com"},`), status: http.StatusBadRequest, msg: "Bad Request"},
		{name: "trailing garbage", auth: bearer, body: append(base.body(t), []byte(" x")...), status: http.StatusBadRequest, msg: "Bad Request"},
		{name: "empty body", auth: bearer, body: nil, status: http.StatusBadRequest, msg: "Bad Request"},
		{name: "unknown fields are ignored", auth: bearer, status: http.StatusAccepted,
			body: base.with("tracking_settings", map[string]any{"click_tracking": map[string]any{"enable": false}}).with("categories", []any{"incident"}).body(t)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp := postSend(t, srv.URL, tc.auth, tc.body)
			defer resp.Body.Close()
			require.Equal(t, tc.status, resp.StatusCode)
			for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
				_, err := strconv.ParseInt(resp.Header.Get(h), 10, 64)
				require.NoError(t, err, "header %s on every response", h)
			}
			if tc.status == http.StatusAccepted {
				require.Len(t, resp.Header.Get("X-Message-Id"), 22)
				b, err := io.ReadAll(resp.Body)
				require.NoError(t, err)
				require.Empty(t, b, "202 has an empty body")
				return
			}
			require.Empty(t, resp.Header.Get("X-Message-Id"))
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			e := readErrors(t, resp)
			require.NotEmpty(t, e.Errors)
			if tc.field != "" {
				require.NotNil(t, e.Errors[0].Field)
				require.Equal(t, tc.field, *e.Errors[0].Field, "message: %s", e.Errors[0].Message)
			}
			if tc.msg != "" {
				require.Contains(t, e.Errors[0].Message, tc.msg)
			}
		})
	}
}

func TestMailSendDefaultBodyLimitIsThirtyMB(t *testing.T) {
	t.Parallel()
	_, srv := startSink(t, sink.Config{})
	body := validRequest(1).with("padding", strings.Repeat("x", sink.DefaultMaxBodyBytes)).body(t)
	resp := postSend(t, srv.URL, "Bearer "+testKey, body)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	require.Contains(t, readErrors(t, resp).Errors[0].Message, "too large")
}

func TestMailSendBodyOverLimit(t *testing.T) {
	t.Parallel()
	_, srv := startSink(t, sink.Config{MaxBodyBytes: 4096})
	body := validRequest(50).body(t)
	resp := postSend(t, srv.URL, "Bearer "+testKey, body)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	e := readErrors(t, resp)
	require.Contains(t, e.Errors[0].Message, "too large")
	require.NotEmpty(t, resp.Header.Get("X-RateLimit-Remaining"))

	// No Content-Length: the limit must hold while reading.
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/v3/mail/send", io.MultiReader(bytes.NewReader(body)))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testKey)
	chunked, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer chunked.Body.Close()
	require.Equal(t, http.StatusRequestEntityTooLarge, chunked.StatusCode)
}

func TestMailSendGzipBody(t *testing.T) {
	t.Parallel()
	s, srv := startSink(t, sink.Config{})
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(validRequest(3).body(t))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/v3/mail/send", &buf)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.EqualValues(t, 3, s.Stats().Accepted)
}

func TestMailSendWrongContentType(t *testing.T) {
	t.Parallel()
	_, srv := startSink(t, sink.Config{})
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/v3/mail/send", bytes.NewReader(validRequest(1).body(t)))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode)
}

func TestMailSendSandboxModeStoresNothing(t *testing.T) {
	t.Parallel()
	s, srv := startSink(t, sink.Config{})
	body := validRequest(2).with("mail_settings", map[string]any{"sandbox_mode": map[string]any{"enable": true}}).body(t)
	resp := postSend(t, srv.URL, "Bearer "+testKey, body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	st := s.Stats()
	require.Zero(t, st.Stored)
	require.EqualValues(t, 1, st.Sandbox)
}

func TestRateLimitHeadersCountDown(t *testing.T) {
	t.Parallel()
	_, srv := startSink(t, sink.Config{RateLimit: 2, RateWindow: time.Hour})
	var statuses []int
	var remaining []string
	for range 3 {
		resp := postSend(t, srv.URL, "Bearer "+testKey, validRequest(1).body(t))
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
		remaining = append(remaining, resp.Header.Get("X-RateLimit-Remaining"))
		require.Equal(t, "2", resp.Header.Get("X-RateLimit-Limit"))
		reset, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64)
		require.NoError(t, err)
		require.Greater(t, reset, time.Now().Unix())
	}
	// The same address may be sent again in a later request.
	require.Equal(t, []int{http.StatusAccepted, http.StatusAccepted, http.StatusTooManyRequests}, statuses)
	require.Equal(t, []string{"1", "0", "0"}, remaining)
}

func TestMessageIDsAreUnique(t *testing.T) {
	t.Parallel()
	_, srv := startSink(t, sink.Config{})
	seen := map[string]bool{}
	for range 20 {
		resp := postSend(t, srv.URL, "Bearer "+testKey, validRequest(1).body(t))
		resp.Body.Close()
		id := resp.Header.Get("X-Message-Id")
		require.NotContains(t, id, ".")
		require.False(t, seen[id])
		seen[id] = true
	}
}
