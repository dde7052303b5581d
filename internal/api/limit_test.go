package api_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/api"
)

// requireLimited checks a 429 with a Retry-After of at least minWait whole seconds.
func requireLimited(t *testing.T, r reply, minWait int, what string) {
	t.Helper()
	require.Equal(t, http.StatusTooManyRequests, r.Code, "%s: %s", what, r)
	require.Equal(t, "rate_limited", r.Err(t).Code, what)
	wait, err := strconv.Atoi(r.Header.Get("Retry-After"))
	require.NoError(t, err, "%s: Retry-After %q", what, r.Header.Get("Retry-After"))
	require.GreaterOrEqual(t, wait, minWait, what)
	require.Equal(t, "no-store", r.Header.Get("Cache-Control"), what)
}

// TestRateLimits runs a tight Limiter: each bucket lets its burst through and answers the
// next request 429 with Retry-After; the acknowledgement pages have a bucket of their own.
func TestRateLimits(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{})
	// Refills take a thousand seconds: nothing refills during the test.
	e.api.Limits = api.NewLimiter(api.Limits{PerAddress: 0.001, AddressBurst: 6, PerKey: 0.001, KeyBurst: 3, Ack: 0.001, AckBurst: 2})
	deadLink := "/ack/" + randomHex(32)

	// The acknowledgement pages: two, then 429, whatever the method.
	for range 2 {
		e.must(t, http.StatusNotFound, "GET", deadLink, keyNone, nil)
	}
	requireLimited(t, e.do(t, "GET", deadLink, keyNone, nil), 1000, "third acknowledgement page")
	requireLimited(t, e.do(t, "POST", deadLink, keyNone, nil), 1000, "acknowledgement post")

	// The JSON API is not touched by that: a key has three requests, the fourth is 429.
	for range 3 {
		e.must(t, http.StatusOK, "GET", "/v1/incidents", keyResponder, nil)
	}
	requireLimited(t, e.do(t, "GET", "/v1/incidents", keyResponder, nil), 1000, "fourth request of a key")
	// Another key from the same address has its own three, until the address's six are spent.
	e.must(t, http.StatusOK, "GET", "/v1/incidents", keyApprover, nil)
	e.must(t, http.StatusOK, "GET", "/v1/incidents", keyApprover, nil)
	requireLimited(t, e.do(t, "GET", "/v1/incidents", keyApprover, nil), 1000, "seventh request of the address")
	// Now nothing from this address gets through, not even a key never used, and a
	// refused request is not audited as a denied one.
	e.api.FlushDenials()
	audited := e.count(t, `SELECT count(*) FROM audit_log`)
	for _, key := range []string{keyAdmin, keyNone, keyRevoked} {
		requireLimited(t, e.do(t, "GET", "/v1/apikeys", key, nil), 1000, "address spent, key "+key)
	}
	e.api.FlushDenials()
	require.Equal(t, audited, e.count(t, `SELECT count(*) FROM audit_log`))
	// Probes and the document are not limited.
	e.must(t, http.StatusOK, "GET", "/healthz", keyNone, nil)
	e.must(t, http.StatusOK, "GET", "/v1/openapi.json", keyNone, nil)
}

// TestRateLimitsThrottleKeyGuessing: requests with wrong keys spend the address's budget,
// so guessing keys stops at the burst.
func TestRateLimitsThrottleKeyGuessing(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{})
	e.api.Limits = api.NewLimiter(api.Limits{PerAddress: 0.001, AddressBurst: 4, PerKey: 100, KeyBurst: 100, Ack: 100, AckBurst: 100})
	for i := range 4 {
		r := e.do(t, "GET", "/v1/incidents", keyNone, nil, "Authorization", "Bearer bf_guess"+strconv.Itoa(i))
		require.Equal(t, http.StatusUnauthorized, r.Code, r.String())
	}
	requireLimited(t, e.do(t, "GET", "/v1/incidents", keyNone, nil, "Authorization", "Bearer bf_guess4"), 1000, "fifth guess")
	requireLimited(t, e.do(t, "GET", "/v1/incidents", keyResponder, nil), 1000, "a good key from the guessing address")
	e.api.FlushDenials()
	require.Equal(t, 4, e.count(t, `SELECT coalesce(sum((detail->>'count')::int), 0) FROM audit_log WHERE action = 'auth.denied'`))
}

// TestDefaultLimitsAckIsTighter: with the default limits, made-up acknowledgement links
// stop at their burst while the JSON API from the same address goes on.
func TestDefaultLimitsAckIsTighter(t *testing.T) {
	t.Parallel()
	d := api.DefaultLimits
	require.Less(t, d.Ack, d.PerAddress)
	require.Less(t, d.AckBurst, d.AddressBurst)
	require.Less(t, d.AckBad, d.Ack, "bad links are held tighter than lookups")
	require.Less(t, d.AckBadBurst, d.AckBurst)
	e := newAPIEnv(t, envOptions{})
	e.api.Limits = api.NewLimiter(d)
	deadLink := "/ack/" + randomHex(32)
	// Back to back: a bad-link token refills in a minute.
	for range d.AckBadBurst {
		e.must(t, http.StatusNotFound, "GET", deadLink, keyNone, nil)
	}
	requireLimited(t, e.do(t, "GET", deadLink, keyNone, nil), 30, "made-up link past the default burst")
	for range d.AddressBurst / 2 {
		e.must(t, http.StatusOK, "GET", "/v1/incidents", keyResponder, nil)
	}
}

// TestRateLimitsKeyOnTheTrustedProxyHeader: behind a proxy named by ClientHeader, every
// client has its own buckets, keyed on the last entry of the header (the one the proxy
// appended), so entries a client writes itself do not move it to another bucket.
func TestRateLimitsKeyOnTheTrustedProxyHeader(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{})
	e.api.Limits = api.NewLimiter(api.Limits{PerAddress: 0.001, AddressBurst: 2, PerKey: 100, KeyBurst: 100,
		Ack: 0.001, AckBurst: 2, AckBad: 100, AckBadBurst: 100})
	e.api.ClientHeader = forwardedHeader
	deadLink := "/ack/" + randomHex(32)
	const a, b = "203.0.113.7", "198.51.100.9"

	for range 2 {
		e.must(t, http.StatusNotFound, "GET", deadLink, keyNone, nil, via(a)...)
	}
	requireLimited(t, e.do(t, "GET", deadLink, keyNone, nil, via(a)...), 1000, "a's third acknowledgement page")
	requireLimited(t, e.do(t, "GET", deadLink, keyNone, nil, via("192.0.2.99, "+a)...), 1000, "a with an entry of its own first")
	for range 2 {
		e.must(t, http.StatusNotFound, "GET", deadLink, keyNone, nil, via("10.1.2.3, "+b)...)
	}
	requireLimited(t, e.do(t, "GET", deadLink, keyNone, nil, via(b)...), 1000, "b's third acknowledgement page")

	for range 2 {
		e.must(t, http.StatusOK, "GET", "/v1/incidents", keyResponder, nil, via(a)...)
	}
	requireLimited(t, e.do(t, "GET", "/v1/incidents", keyResponder, nil, via(a)...), 1000, "a's third API request")
	e.must(t, http.StatusOK, "GET", "/v1/incidents", keyResponder, nil, via(b)...)
}

// TestRateLimitsIgnoreTheHeaderWithoutAProxy: without ClientHeader the header is the
// client's own word: requests count against the TCP peer whatever it says.
func TestRateLimitsIgnoreTheHeaderWithoutAProxy(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{})
	e.api.Limits = api.NewLimiter(api.Limits{PerAddress: 0.001, AddressBurst: 2, PerKey: 100, KeyBurst: 100,
		Ack: 0.001, AckBurst: 2, AckBad: 100, AckBadBurst: 100})
	deadLink := "/ack/" + randomHex(32)
	e.must(t, http.StatusNotFound, "GET", deadLink, keyNone, nil, via("203.0.113.7")...)
	e.must(t, http.StatusNotFound, "GET", deadLink, keyNone, nil, via("203.0.113.8")...)
	requireLimited(t, e.do(t, "GET", deadLink, keyNone, nil, via("203.0.113.9")...), 1000, "a third spoofed address")
	requireLimited(t, e.do(t, "GET", deadLink, keyNone, nil), 1000, "no header")
	e.must(t, http.StatusOK, "GET", "/v1/incidents", keyResponder, nil, via("203.0.113.7")...)
	e.must(t, http.StatusOK, "GET", "/v1/incidents", keyResponder, nil, via("203.0.113.8")...)
	requireLimited(t, e.do(t, "GET", "/v1/incidents", keyResponder, nil, via("203.0.113.9")...), 1000, "a third spoofed API client")
}
