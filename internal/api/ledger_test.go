package api_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/mail/sink"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/workflows"
)

// received counts the messages each tenant's contacts received in the mail sink.
func (e *apiEnv) received(t *testing.T, tenantIDs []string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, id := range tenantIDs {
		contacts, err := e.st.TenantContacts(context.Background(), id)
		require.NoError(t, err)
		for _, c := range contacts {
			out[id] += e.sink.Messages(sink.Query{To: c.Email}).Total
		}
	}
	return out
}

// each is a map giving every tenant of ids the count n.
func each(ids []string, n int) map[string]int {
	out := map[string]int{}
	for _, id := range ids {
		out[id] = n
	}
	return out
}

// tenantLedger reads GET /v1/incidents/{id}/tenants with query q.
func (e *apiEnv) tenantLedger(t *testing.T, id, q string) []store.TenantStatus {
	t.Helper()
	var out struct{ Tenants []store.TenantStatus }
	e.must(t, http.StatusOK, "GET", "/v1/incidents/"+id+"/tenants?"+q, keyResponder, nil).JSON(t, &out)
	require.NotNil(t, out.Tenants, "tenants is a list, never null")
	return out.Tenants
}

// TestScopeChangesAreVersionedAndApprovedAgain notifies ten tenants, then changes the
// scope twice after notification: the versions and their diffs name the tenants each
// change added and removed, and the tenants new to the scope get nothing until two
// people approve the notice again for the new version; those already told are not told
// again.
func TestScopeChangesAreVersionedAndApprovedAgain(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{Tenants: 16, Contacts: 1, Worker: true})
	ids := e.tenantIDs(t, 16)
	id, v := e.notifyIncident(t, "Scope grows and shrinks", 10) // version 1: ids[0:10]
	require.Equal(t, 10, v.Ledger.Initial().Notified)
	hash := v.Status.ContentHash
	inc := "/v1/incidents/" + id

	// Version 2 drops ids[0:4] and adds ids[10:14]; version 3 drops ids[4:6] and adds ids[14:16].
	for i, scope := range [][]string{ids[4:14], ids[6:16]} {
		var out struct{ Status workflows.Status }
		e.must(t, http.StatusOK, "POST", inc+"/scope", keyResponder, store.ScopeCriteria{TenantIDs: scope}).JSON(t, &out)
		require.Equal(t, i+2, out.Status.Scope.Version)
		require.Equal(t, 10, out.Status.Scope.Total)
		require.Equal(t, workflows.StageApproval, out.Status.Stage, "new tenants wait for approval")
		require.False(t, out.Status.Approved, "an approval is of one scope version")
		require.Empty(t, out.Status.Approvers)
	}

	var versions struct{ Versions []store.ScopeVersion }
	e.must(t, http.StatusOK, "GET", inc+"/scope/versions", keyResponder, nil).JSON(t, &versions)
	type counts struct{ Version, Tenants, Added, Removed int }
	var got []counts
	for _, sv := range versions.Versions {
		got = append(got, counts{sv.Version, sv.Tenants, sv.Added, sv.Removed})
		require.True(t, strings.HasPrefix(sv.CreatedBy, "responder key#"), sv.CreatedBy)
		require.False(t, sv.CreatedAt.IsZero())
	}
	require.Equal(t, []counts{{1, 10, 10, 0}, {2, 10, 4, 4}, {3, 10, 2, 2}}, got)
	require.Equal(t, ids[0:10], versions.Versions[0].Criteria.TenantIDs)
	require.Equal(t, ids[6:16], versions.Versions[2].Criteria.TenantIDs)

	diff := func(q string) store.ScopeDiff {
		t.Helper()
		var d store.ScopeDiff
		e.must(t, http.StatusOK, "GET", inc+"/scope/diff?"+q, keyResponder, nil).JSON(t, &d)
		return d
	}
	for q, want := range map[string]store.ScopeDiff{
		"from=1&to=2":         {From: 1, To: 2, AddedCount: 4, RemovedCount: 4, Added: ids[10:14], Removed: ids[0:4]},
		"from=2&to=3":         {From: 2, To: 3, AddedCount: 2, RemovedCount: 2, Added: ids[14:16], Removed: ids[4:6]},
		"from=1&to=3":         {From: 1, To: 3, AddedCount: 6, RemovedCount: 6, Added: ids[10:16], Removed: ids[0:6]},
		"from=3&to=1":         {From: 3, To: 1, AddedCount: 6, RemovedCount: 6, Added: ids[0:6], Removed: ids[10:16]},
		"from=1&to=3&limit=2": {From: 1, To: 3, AddedCount: 6, RemovedCount: 6, Added: ids[10:12], Removed: ids[0:2]},
		"from=2&to=2":         {From: 2, To: 2, Added: []string{}, Removed: []string{}},
	} {
		require.Equal(t, want, diff(q), q)
	}
	for _, q := range []string{"from=1&to=4", "from=9&to=9"} {
		r := e.must(t, http.StatusNotFound, "GET", inc+"/scope/diff?"+q, keyResponder, nil)
		require.Equal(t, "not_found", r.Err(t).Code, q)
	}

	// The view counts version 3: the four tenants told under version 1 that are still in
	// scope, and six owed and held.
	v = e.view(t, id)
	require.Equal(t, 3, v.Scope.Version)
	require.Equal(t, 10, v.Ledger.Tenants)
	in := v.Ledger.Initial()
	require.Equal(t, 4, in.Notified)
	require.Equal(t, 4, in.Released)
	require.Equal(t, 6, in.Owed)
	require.Zero(t, in.Plannable, "nothing new is released before approval")
	require.Equal(t, 6, in.Removed)
	held := 0
	for _, ts := range e.tenantLedger(t, id, "") {
		if ts.State == "held" {
			held++
			require.Contains(t, ids[10:16], ts.TenantID)
		}
		if slices.Contains(ids[0:6], ts.TenantID) {
			require.NotNil(t, ts.NotifiedAt, "%s left the scope after it was told; the ledger keeps that", ts.TenantID)
		}
	}
	require.Equal(t, 6, held)

	// One approval is not enough: the new tenants still have nothing.
	e.must(t, http.StatusOK, "POST", inc+"/approval", keyApprover, map[string]string{"content_hash": hash})
	r := e.must(t, http.StatusUnprocessableEntity, "POST", inc+"/approval", keyApprover, map[string]string{"content_hash": hash})
	require.Equal(t, "rejected", r.Err(t).Code, "the same approver twice is one approval")
	require.Equal(t, each(ids[10:16], 0), e.received(t, ids[10:16]))
	require.Equal(t, 6, e.view(t, id).Ledger.Initial().Owed)

	// The second approver releases them; nobody is told twice.
	e.must(t, http.StatusOK, "POST", inc+"/approval", keyApprover2, map[string]string{"content_hash": hash})
	v = e.waitView(t, id, "version 3 notified", func(v api.IncidentView) bool {
		return v.Status != nil && v.Status.Stage == workflows.StageTracking && v.Ledger.Initial().Owed == 0
	})
	in = v.Ledger.Initial()
	require.Equal(t, 10, in.Notified)
	require.Equal(t, 10, in.Released)
	require.Equal(t, 6, in.Removed)
	require.True(t, v.Status.Approved)
	require.Equal(t, each(ids, 1), e.received(t, ids), "every tenant ever in scope got the notice once")
}

// TestTenantLedgerAndRetry: after notices went out the view counts the ledger in
// tenants, the tenant list with open=true shows only those that have not acknowledged,
// and a retry is refused before there is a scope and accepted once notified, sending
// nothing again.
func TestTenantLedgerAndRetry(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{Tenants: 12, Contacts: 1, Worker: true})
	ids := e.tenantIDs(t, 12)
	retries := func(id string) int {
		return e.count(t, `SELECT count(*) FROM audit_log WHERE incident_id = $1 AND action = 'notice.retry_requested'`, id)
	}

	// An incident without a scope has nothing to retry.
	bare := e.declare(t, declaration("Not scoped yet", nil))
	var assessed struct{ Status workflows.Status }
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+bare+"/assessment", keyResponder,
		map[string]any{"reportable": true, "rationale": "users' data exposed"}).JSON(t, &assessed)
	require.Equal(t, workflows.StageScoping, assessed.Status.Stage)
	r := e.must(t, http.StatusUnprocessableEntity, "POST", "/v1/incidents/"+bare+"/retry", keyResponder, map[string]any{})
	require.Equal(t, "rejected", r.Err(t).Code)
	require.Zero(t, retries(bare))
	require.Empty(t, e.tenantLedger(t, bare, "open=true"))

	id, v := e.notifyIncident(t, "Ledger after notification", 12)
	require.Equal(t, 12, v.Scope.Tenants)
	require.Equal(t, 12, v.Ledger.Tenants)
	require.Zero(t, v.Ledger.Acknowledged)
	require.Equal(t, store.PhaseCounts{Phase: 1, Kind: store.PhaseInitial, Tenants: 12, Released: 12, Notified: 12, Met: 12},
		v.Ledger.Initial(), "every tenant notified in time, none owed")
	require.Len(t, v.Ledger.Phases, 1)
	require.NotNil(t, v.Ledger.NextReminderAt, "a reminder is scheduled for tenants that do not acknowledge")
	require.Len(t, v.Passes, 1)
	require.Equal(t, 12, v.Passes[0].Sent)
	require.Equal(t, 12, v.Status.Ledger.Notified, "the workflow counts the same")
	require.Equal(t, each(ids, 1), e.received(t, ids))

	// A retry with nothing owed is accepted, recorded under the caller, and sends nothing.
	var retried struct{ Status workflows.Status }
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/retry", keyResponder, map[string]any{}).JSON(t, &retried)
	require.Equal(t, id, retried.Status.IncidentID)
	require.Equal(t, 1, retries(id))
	require.Equal(t, 1, e.count(t, `SELECT count(*) FROM audit_log WHERE incident_id = $1 AND action = 'notice.retry_requested'
		AND actor LIKE 'responder key#%'`, id))

	// Three tenants acknowledge through their links.
	acked := []string{ids[0], ids[5], ids[11]}
	for _, tenant := range acked {
		e.must(t, http.StatusOK, "POST", "/ack/"+e.ackToken(t, tenant), keyNone, nil)
	}
	require.Equal(t, 3, e.view(t, id).Ledger.Acknowledged)

	open := e.tenantLedger(t, id, "open=true")
	require.Len(t, open, 9)
	for _, ts := range open {
		require.NotContains(t, acked, ts.TenantID)
		require.Nil(t, ts.AcknowledgedAt, ts.TenantID)
		require.Equal(t, "notified", ts.State, ts.TenantID)
		require.Equal(t, 1, ts.Notices, ts.TenantID)
	}
	require.Len(t, e.tenantLedger(t, id, "open=true&limit=4"), 4)
	all := e.tenantLedger(t, id, "")
	require.Len(t, all, 12)
	var ackedSeen []string
	for _, ts := range all {
		require.Equal(t, 1, ts.Phase)
		require.Equal(t, v.Status.ContentHash, ts.ContentHash)
		require.NotNil(t, ts.NotifiedAt)
		if ts.AcknowledgedAt != nil {
			ackedSeen = append(ackedSeen, ts.TenantID)
		}
	}
	require.ElementsMatch(t, acked, ackedSeen)
	require.Empty(t, e.tenantLedger(t, id, "phase=2"), "no update phase was opened")

	// Once the workflow has reconciled the acknowledgements (after the retry), nothing
	// was sent again.
	st := e.waitFor(t, id, "acknowledgements reconciled", func(s workflows.Status) bool { return s.Ledger.Acknowledged == 3 })
	require.Equal(t, workflows.StageTracking, st.Stage)
	require.Len(t, e.view(t, id).Passes, 1, "the retry started no pass")
	require.Equal(t, each(ids, 1), e.received(t, ids))
}
