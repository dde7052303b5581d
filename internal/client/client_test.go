package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/client"
)

func TestNullUnsetTimes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want string }{
		{"zero time in an object", `{"a":"0001-01-01T00:00:00Z","b":1}`, `{"a":null,"b":1}`},
		{"nested and in arrays", `{"s":{"earliest_deadline":"0001-01-01T00:00:00Z"},"l":["0001-01-01T00:00:00Z","x"]}`,
			`{"s":{"earliest_deadline":null},"l":[null,"x"]}`},
		{"set times stay", `{"at":"2026-12-02T08:52:00Z","z":"0001-01-01T00:00:00.000Z"}`, `{"at":"2026-12-02T08:52:00Z","z":null}`},
		{"key order stays", `{"z":1,"a":2,"m":{"y":true,"b":false}}`, `{"z":1,"a":2,"m":{"y":true,"b":false}}`},
		{"numbers as written", `[1.50,12345678901234567890,-0,1e3]`, `[1.50,12345678901234567890,-0,1e3]`},
		{"a key is not a value", `{"0001-01-01T00:00:00Z":"0001-01-01T00:00:00Z"}`, `{"0001-01-01T00:00:00Z":null}`},
		{"text mentioning it", `{"m":"since 0001-01-01T00:00:00Z","q":"\"0001-01-01T00:00:00Z"}`, `{"m":"since 0001-01-01T00:00:00Z","q":"\"0001-01-01T00:00:00Z"}`},
		{"empty containers and null", `{"a":[],"b":{},"c":null}`, `{"a":[],"b":{},"c":null}`},
		{"indented input", "{\n  \"a\": \"0001-01-01T00:00:00Z\"\n}\n", `{"a":null}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := client.NullUnsetTimes([]byte(tc.in))
			require.NoError(t, err)
			require.Equal(t, tc.want, string(got))
		})
	}
	_, err := client.NullUnsetTimes([]byte(`{"a":`))
	require.Error(t, err)
}

func TestSettingsFlagsBeatEnvironmentBeatsDefault(t *testing.T) {
	t.Parallel()
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	var s client.Settings
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	s.Register(fs)
	require.NoError(t, fs.Parse(nil))
	got := s.Resolve(env(nil))
	require.Equal(t, client.DefaultURL, got.URL)
	require.Empty(t, got.Key)
	_, err := got.Client()
	var ae *client.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "unauthenticated", ae.Code)
	require.Equal(t, "api-key", ae.Field)

	got = s.Resolve(env(map[string]string{client.EnvURL: "http://api:8080", client.EnvAPIKey: "bf_env"}))
	require.Equal(t, client.Settings{URL: "http://api:8080", Key: "bf_env"}, got)

	require.NoError(t, fs.Parse([]string{"--url", "https://flag.example", "--api-key", "bf_flag"}))
	got = s.Resolve(env(map[string]string{client.EnvURL: "http://api:8080", client.EnvAPIKey: "bf_env"}))
	require.Equal(t, client.Settings{URL: "https://flag.example", Key: "bf_flag"}, got)

	_, err = client.Settings{URL: "127.0.0.1:8080", Key: "bf_x"}.Client()
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "invalid", ae.Code)
	require.Equal(t, "url", ae.Field)
}

// TestDoErrorsCarryTheAPIShape: the API's error body comes back as it is, with the
// status; a gateway's bare 502 and a server that is not there are "unavailable".
func TestDoErrorsCarryTheAPIShape(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/api-error", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":{"code":"invalid","message":"want 1 to 500","field":"limit"}}`))
	})
	mux.HandleFunc("/v1/gateway", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "bad gateway", http.StatusBadGateway)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx := context.Background()
	c := client.New(srv.URL, "bf_x")

	err := c.Do(ctx, http.MethodGet, "/v1/api-error", nil, nil, nil)
	var ae *client.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, client.APIError{Status: 400, Code: "invalid", Message: "want 1 to 500", Field: "limit"}, *ae)
	require.Equal(t, "want 1 to 500 (400 invalid, field limit)", err.Error())
	require.True(t, client.IsStatus(err, 400))

	err = c.Do(ctx, http.MethodGet, "/v1/gateway", nil, nil, nil)
	require.True(t, client.IsUnavailable(err), "%v", err)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	err = client.New("http://"+addr, "bf_x").Do(ctx, http.MethodGet, "/v1/incidents", nil, nil, nil)
	require.True(t, client.IsUnavailable(err), "%v", err)
	var opErr *net.OpError
	require.True(t, errors.As(err, &opErr), "the cause is kept: %v", err)

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	err = c.Do(canceled, http.MethodGet, "/v1/api-error", nil, nil, nil)
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, client.IsUnavailable(err), "a canceled call is not an unavailable server")

	local := client.Errorf("invalid", "file", "-f FILE: required")
	require.Equal(t, "-f FILE: required", local.Error(), "a local error reads as its message")
}
