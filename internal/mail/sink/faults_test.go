package sink_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/mail/sink"
)

func setFaults(t *testing.T, base string, f map[string]any) {
	t.Helper()
	resp := doJSON(t, http.MethodPost, base+"/sink/faults", f)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		faults map[string]any
		check  func(t *testing.T, resp *http.Response, elapsed time.Duration)
	}{
		{
			name:   "rate limited with reset",
			faults: map[string]any{"rate_limit_share": 1, "rate_limit_reset_seconds": 30},
			check: func(t *testing.T, resp *http.Response, _ time.Duration) {
				require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
				require.Equal(t, "0", resp.Header.Get("X-RateLimit-Remaining"))
				reset, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64)
				require.NoError(t, err)
				require.InDelta(t, time.Now().Add(30*time.Second).Unix(), reset, 2)
				require.NotEmpty(t, readErrors(t, resp).Errors)
			},
		},
		{
			name:   "server errors",
			faults: map[string]any{"server_error_share": 1},
			check: func(t *testing.T, resp *http.Response, _ time.Duration) {
				require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
				require.NotEmpty(t, resp.Header.Get("X-RateLimit-Limit"))
				require.NotEmpty(t, readErrors(t, resp).Errors)
			},
		},
		{
			name:   "outage window",
			faults: map[string]any{"outage_seconds": 60},
			check: func(t *testing.T, resp *http.Response, _ time.Duration) {
				require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
			},
		},
		{
			name:   "latency",
			faults: map[string]any{"latency_ms": 300},
			check: func(t *testing.T, resp *http.Response, elapsed time.Duration) {
				require.Equal(t, http.StatusAccepted, resp.StatusCode)
				require.GreaterOrEqual(t, elapsed, 300*time.Millisecond)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, srv := startSink(t, sink.Config{})
			setFaults(t, srv.URL, tc.faults)
			start := time.Now()
			resp := postSend(t, srv.URL, "Bearer "+testKey, validRequest(1).body(t))
			elapsed := time.Since(start)
			defer resp.Body.Close()
			tc.check(t, resp, elapsed)
			if resp.StatusCode == http.StatusAccepted {
				require.Equal(t, 1, s.Stats().Stored)
				return
			}
			require.Zero(t, s.Stats().Stored, "a request met by a fault keeps nothing")

			// Clearing the faults restores service.
			setFaults(t, srv.URL, map[string]any{})
			ok := postSend(t, srv.URL, "Bearer "+testKey, validRequest(1).body(t))
			ok.Body.Close()
			require.Equal(t, http.StatusAccepted, ok.StatusCode)
		})
	}
}

func TestFaultsShownAndValidated(t *testing.T) {
	t.Parallel()
	_, srv := startSink(t, sink.Config{Faults: sink.Faults{ServerErrorShare: 0.25}})
	var f sink.Faults
	getJSON(t, srv.URL+"/sink/faults", &f)
	require.Equal(t, sink.Faults{ServerErrorShare: 0.25}, f)

	setFaults(t, srv.URL, map[string]any{"rate_limit_share": 0.5, "rate_limit_reset_seconds": 5, "latency_ms": 10, "outage_seconds": 30})
	getJSON(t, srv.URL+"/sink/faults", &f)
	require.Equal(t, 0.5, f.RateLimitShare)
	require.Zero(t, f.ServerErrorShare, "a POST replaces all faults")
	require.Equal(t, 5, f.RateLimitResetSeconds)
	require.Equal(t, 10, f.LatencyMillis)
	require.WithinDuration(t, time.Now().Add(30*time.Second), f.OutageUntil, 5*time.Second)

	for _, bad := range []map[string]any{
		{"rate_limit_share": 1.5},
		{"server_error_share": -0.1},
		{"latency_ms": -1},
		{"outage_seconds": -5},
		{"no_such_fault": 1},
	} {
		resp := doJSON(t, http.MethodPost, srv.URL+"/sink/faults", bad)
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%v", bad)
	}
	_, err := sink.New(sink.Config{Faults: sink.Faults{RateLimitShare: 2}}, nil)
	require.Error(t, err)
}

// Fractional shares follow the seed: the same seed gives the same sequence of answers.
func TestFaultSharesAreDeterministic(t *testing.T) {
	t.Parallel()
	run := func() []int {
		_, srv := startSink(t, sink.Config{Seed: 42, Faults: sink.Faults{RateLimitShare: 0.3, ServerErrorShare: 0.3}})
		var statuses []int
		for range 40 {
			resp := postSend(t, srv.URL, "Bearer "+testKey, validRequest(1).body(t))
			resp.Body.Close()
			statuses = append(statuses, resp.StatusCode)
		}
		return statuses
	}
	first, second := run(), run()
	require.Equal(t, first, second)
	require.Contains(t, first, http.StatusTooManyRequests)
	require.Contains(t, first, http.StatusInternalServerError)
	require.Contains(t, first, http.StatusAccepted)
}
