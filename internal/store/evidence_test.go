package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/store"
)

func TestTenantStatusesListEvidenceFromTheLedger(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t, fixtureOpts{awareAgo: 10 * time.Hour})
	for id, sla := range map[string]int{"late": 5, "soon": 12, "told": 20, "acked": 30, "gone": 40} {
		f.tenant(id, "en", sla)
		f.contact(id, "primary", "")
	}
	f.scope("acked", "gone", "late", "soon", "told")
	f.scope("acked", "late", "soon", "told")
	f.approveAndRelease(hashA, 2)
	f.planAll(f.pass(1, 1))
	claimed := f.claim(1)
	require.NoError(t, f.s.MarkSent(f.ctx, f.id, append(claimed["told"], claimed["acked"]...), "msg"))
	require.NoError(t, f.s.ReleaseClaims(f.ctx, append(claimed["late"], claimed["soon"]...), "503"))
	_, err := f.s.Acknowledge(f.ctx, f.id, "acked", "api", "alice")
	require.NoError(t, err)

	list := func(onlyOpen bool, limit int) []store.TenantStatus {
		t.Helper()
		var out []store.TenantStatus
		require.NoError(t, f.s.TenantStatuses(f.ctx, f.id, 1, onlyOpen, limit, time.Now(), func(ts store.TenantStatus) error {
			out = append(out, ts)
			return nil
		}))
		return out
	}
	ids := func(ts []store.TenantStatus) []string {
		out := []string{}
		for _, s := range ts {
			out = append(out, s.TenantID)
		}
		return out
	}
	all := list(false, 0)
	require.Equal(t, []string{"acked", "gone", "late", "soon", "told"}, ids(all), "tenant order, removed tenants too")
	require.Equal(t, []string{"late", "soon", "told"}, ids(list(true, 0)), "in scope, unacknowledged, earliest deadline first")
	require.Equal(t, []string{"late"}, ids(list(true, 1)))

	byID := map[string]store.TenantStatus{}
	for _, s := range all {
		byID[s.TenantID] = s
	}
	met := func(b bool) *bool { return &b }
	for _, tc := range []struct {
		id    string
		state string
		met   *bool
	}{
		{"acked", "notified", met(true)},
		{"gone", "removed", nil},
		{"late", "owed", met(false)}, // owed past its deadline
		{"soon", "owed", nil},        // owed, deadline ahead
		{"told", "notified", met(true)},
	} {
		s := byID[tc.id]
		require.Equal(t, tc.state, s.State, tc.id)
		require.Equal(t, tc.met, s.DeadlineMet, tc.id)
		require.Equal(t, 1, s.Phase, tc.id)
		if tc.id != "gone" {
			require.Equal(t, hashA, s.ContentHash, tc.id)
			require.Equal(t, 2, s.ScopeVersion, tc.id)
			require.Equal(t, 1, s.Notices, tc.id)
		}
	}
	require.NotNil(t, byID["acked"].AcknowledgedAt)
	require.Nil(t, byID["told"].AcknowledgedAt)
	require.True(t, f.awareAt.Add(5*time.Hour).Equal(byID["late"].Deadline))
}
