package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// denials writes the refusals counted so far and returns how many the audit trail holds.
func (e *apiEnv) denials(t *testing.T) int {
	t.Helper()
	e.api.FlushDenials()
	return e.count(t, `SELECT coalesce(sum((detail->>'count')::int), 0) FROM audit_log WHERE action = 'auth.denied'`)
}

// TestDenialsAreAuditedByRouteNotPath: a flood of unauthenticated requests with huge or
// hostile paths costs the audit trail one row per address, route and reason, holding
// the route's pattern and a count, never the raw path.
func TestDenialsAreAuditedByRouteNotPath(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{})
	rowsBefore := e.count(t, `SELECT count(*) FROM audit_log`)
	huge := "/v1/incidents/INC-" + strings.Repeat("A", 500_000)
	for range 20 {
		r := e.do(t, "GET", huge, keyNone, nil)
		require.Equal(t, http.StatusUnauthorized, r.Code)
	}
	// A NUL in the path once skipped the audit row: it is counted like any other.
	for range 5 {
		require.Equal(t, http.StatusUnauthorized, e.do(t, "GET", "/v1/incidents/%00", keyRevoked, nil).Code)
	}
	require.Equal(t, 25, e.denials(t))
	require.Equal(t, 2, e.count(t, `SELECT count(*) FROM audit_log`)-rowsBefore, "one row per route and reason")
	require.Equal(t, 20, e.count(t, `SELECT (detail->>'count')::int FROM audit_log WHERE action = 'auth.denied'
		AND detail->>'route' = 'GET /v1/incidents/{id}' AND detail->>'reason' = 'missing bearer key'`))
	require.Equal(t, 5, e.count(t, `SELECT (detail->>'count')::int FROM audit_log WHERE action = 'auth.denied'
		AND detail->>'route' = 'GET /v1/incidents/{id}' AND detail->>'reason' = 'unknown or revoked key'`))
	require.Less(t, e.count(t, `SELECT max(length(detail::text)) FROM audit_log WHERE action = 'auth.denied'`), 300,
		"no path is kept")
}
