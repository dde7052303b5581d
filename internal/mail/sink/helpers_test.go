package sink_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/mail/sink"
)

const testKey = "SG.test-key"

// startSink runs a sink behind a real HTTP server for the test.
func startSink(t *testing.T, cfg sink.Config) (*sink.Sink, *httptest.Server) {
	t.Helper()
	s, err := sink.New(cfg, nil)
	require.NoError(t, err)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		srv.Close()
		require.NoError(t, s.Close())
	})
	return s, srv
}

// request is a Mail Send body built as generic JSON, so tests can break it in any way.
type request map[string]any

// pers builds n personalizations to user<i>@example.com with their own substitution and IDs.
func pers(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{
			"to":            []any{map[string]any{"email": fmt.Sprintf("user%d@example.com", i), "name": fmt.Sprintf("User %d", i)}},
			"substitutions": map[string]any{"-name-": fmt.Sprintf("User %d", i), "-ack-": fmt.Sprintf("https://ack.example.com/%d", i)},
			"custom_args":   map[string]any{"notice_id": fmt.Sprintf("n-%d", i), "incident_id": "inc-1", "round": "1"},
		}
	}
	return out
}

// validRequest is a request SendGrid accepts with n personalizations.
func validRequest(n int) request {
	return request{
		"from":    map[string]any{"email": "notices@breachflow.example.com", "name": "Breachflow"},
		"subject": "Incident notice for -name-",
		"content": []any{
			map[string]any{"type": "text/plain", "value": "Hello -name-, acknowledge at -ack-"},
			map[string]any{"type": "text/html", "value": "<p>Hello -name-, <a href=\"-ack-\">acknowledge</a></p>"},
		},
		"personalizations": pers(n),
	}
}

// with returns a copy of r with key set (or deleted when v is nil).
func (r request) with(key string, v any) request {
	out := make(request, len(r)+1)
	for k, val := range r {
		out[k] = val
	}
	if v == nil {
		delete(out, key)
	} else {
		out[key] = v
	}
	return out
}

func (r request) body(t testing.TB) []byte {
	t.Helper()
	b, err := json.Marshal(r)
	require.NoError(t, err)
	return b
}

// postSend posts a raw body to /v3/mail/send with the given Authorization value ("" for none).
func postSend(t testing.TB, base, auth string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/v3/mail/send", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	require.NoError(t, err)
	return resp
}

// sgErrors reads SendGrid's error body.
type sgErrors struct {
	Errors []struct {
		Message string  `json:"message"`
		Field   *string `json:"field"`
		Help    *string `json:"help"`
	} `json:"errors"`
}

func readErrors(t testing.TB, resp *http.Response) sgErrors {
	t.Helper()
	defer resp.Body.Close()
	var e sgErrors
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
	return e
}

func getJSON(t testing.TB, url string, dst any) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.NoError(t, json.Unmarshal(body, dst))
}

func doJSON(t testing.TB, method, url string, body any) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	require.NoError(t, err)
	return resp
}
