package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/store"
)

func TestResolveScopeSyncsTheLedger(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t, fixtureOpts{})
	contacts := f.simple("a", "b", "c", "d")

	res := f.scope("a", "b", "c")
	require.Equal(t, []int{1, 3, 3, 0}, []int{res.Version, res.Total, res.Added, res.Removed})
	require.Equal(t, 3, f.approveAndRelease(hashA, 1))
	f.planAll(f.pass(1, 1))
	claimed := f.claim(1)
	require.NoError(t, f.s.MarkSent(f.ctx, f.id, append(claimed["a"], claimed["c"]...), "msg"))
	require.NoError(t, f.s.ReleaseClaims(f.ctx, claimed["b"], "503")) // b's notice waits, unsent
	phase, err := f.s.OpenPhase(f.ctx, f.id, store.PhaseUpdate, "alice")
	require.NoError(t, err)
	require.Equal(t, 2, phase)
	require.Equal(t, []string{"a", "b", "c"}, f.tenantsWhere(2, `removed_at IS NULL`))

	// Wider: d is owed both phases opened so far, unreleased until version 2 is approved.
	res = f.scope("a", "b", "c", "d")
	require.Equal(t, []int{2, 4, 1, 0}, []int{res.Version, res.Total, res.Added, res.Removed})
	for _, phase := range []int{1, 2} {
		d := f.row(phase, "d")
		require.Equal(t, 2, d.AddedVersion, "phase %d", phase)
		require.Nil(t, d.ReleasedAt, "phase %d", phase)
		require.Nil(t, d.RemovedAt, "phase %d", phase)
	}
	require.True(t, f.awareAt.Add(72*time.Hour).Equal(f.row(1, "d").Deadline))
	require.Equal(t, 1, f.row(1, "a").AddedVersion, "tenants already owed keep their version")

	// Narrower: b and c leave; b's unsent notice is cancelled, c's sent one stays.
	res = f.scope("a", "d")
	require.Equal(t, []int{3, 2, 0, 2}, []int{res.Version, res.Total, res.Added, res.Removed})
	for _, id := range []string{"b", "c"} {
		for _, phase := range []int{1, 2} {
			r := f.row(phase, id)
			require.NotNil(t, r.RemovedAt, "%s phase %d", id, phase)
			require.Equal(t, 3, *r.RemovedVersion, "%s phase %d", id, phase)
		}
	}
	require.Equal(t, "cancelled", f.noticeOf(1, contacts["b"]).Status)
	require.Equal(t, "sent", f.noticeOf(1, contacts["c"]).Status)
	require.NotNil(t, f.row(1, "c").SatisfiedAt, "what was sent stays recorded")
	l := f.ledger(time.Now())
	require.Equal(t, 2, l.Tenants)
	require.Equal(t, []int{2, 2}, []int{l.Phases[0].Removed, l.Phases[1].Removed})
	cp, err := f.s.ClaimPage(f.ctx, f.id, 1, 0, f.secret, time.Minute)
	require.NoError(t, err)
	require.Empty(t, cp.Recipients, "a cancelled notice is not sent")

	// b and c come back: c was told and stays told; b never was and needs a release under
	// the version that brought it back.
	res = f.scope("a", "b", "c", "d")
	require.Equal(t, []int{4, 4, 2, 0}, []int{res.Version, res.Total, res.Added, res.Removed})
	b := f.row(1, "b")
	require.Nil(t, b.RemovedAt)
	require.Nil(t, b.ReleasedAt)
	require.Nil(t, b.ContentHash)
	require.Nil(t, b.ScopeVersion)
	require.Equal(t, 4, b.AddedVersion)
	c := f.row(1, "c")
	require.Nil(t, c.RemovedAt)
	require.NotNil(t, c.SatisfiedAt)
	require.NotNil(t, c.ReleasedAt)
	require.Equal(t, 1, *c.ScopeVersion)

	// Version 1's approvals release only what version 1 included: a's update.
	released, _ := f.release(hashA, 1)
	require.Equal(t, 1, released)
	require.Equal(t, []string{"a", "c"}, f.released(1))
	require.Equal(t, []string{"a"}, f.released(2))
	require.Equal(t, 5, f.approveAndRelease(hashA, 4), "b and d in phase 1, b, c and d in phase 2")
	f.planAll(f.pass(2, 1))
	require.Equal(t, map[string][]int64{"b": {contacts["b"]}, "d": {contacts["d"]}}, f.recipients(2))

	versions, err := f.s.ScopeVersions(f.ctx, f.id)
	require.NoError(t, err)
	var got [][4]int
	for _, v := range versions {
		got = append(got, [4]int{v.Version, v.Tenants, v.Added, v.Removed})
	}
	require.Equal(t, [][4]int{{1, 3, 3, 0}, {2, 4, 1, 0}, {3, 2, 0, 2}, {4, 4, 2, 0}}, got)
}

// A version that matches nobody is kept for the record and leaves the ledger alone.
func TestResolveScopeWithoutTenantsLeavesTheLedger(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t, fixtureOpts{})
	f.simple("a", "b")
	f.scope("a", "b")
	res, err := f.s.ResolveScope(f.ctx, f.id, store.ScopeCriteria{TenantIDs: []string{"nobody"}}, "alice")
	require.NoError(t, err)
	require.Equal(t, []int{2, 0, 0, 0}, []int{res.Version, res.Total, res.Added, res.Removed})
	l := f.ledger(time.Now())
	require.Equal(t, 2, l.Tenants)
	require.Zero(t, l.Initial().Removed)
}

// A tenant that was out of scope when a phase opened is owed that phase once it is back.
func TestResolveScopeOwesABackTenantThePhasesItMissed(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t, fixtureOpts{})
	f.simple("a", "b")
	f.scope("a", "b")
	f.approveAndRelease(hashA, 1)
	require.Equal(t, 1, f.scope("a").Removed)
	_, err := f.s.OpenPhase(f.ctx, f.id, store.PhaseUpdate, "alice")
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, f.tenantsWhere(2, `true`))

	res := f.scope("a", "b")
	require.Equal(t, 1, res.Added)
	require.Equal(t, []string{"a", "b"}, f.tenantsWhere(1, `removed_at IS NULL`))
	require.Equal(t, []string{"a", "b"}, f.tenantsWhere(2, `removed_at IS NULL`))
	require.Equal(t, 3, f.row(2, "b").AddedVersion)
	l := f.ledger(time.Now())
	require.Equal(t, []int{2, 2}, []int{l.Phases[0].Tenants, l.Phases[1].Tenants})
	require.Equal(t, []int{0, 0}, []int{l.Phases[0].Removed, l.Phases[1].Removed})
}

// A tenant that joins the scope after an update phase opened owes that update from when it
// joined at the earliest: it cannot be late for it the moment it is added.
func TestResolveScopeGivesANewTenantTimeForAnOpenUpdate(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t, fixtureOpts{awareAgo: 100 * time.Hour})
	f.simple("a", "b")
	f.scope("a")
	_, err := f.s.OpenPhase(f.ctx, f.id, store.PhaseUpdate, "alice")
	require.NoError(t, err)
	f.scope("a", "b")

	require.True(t, f.awareAt.Add(72*time.Hour).Equal(f.row(1, "b").Deadline), "the initial notice is due from awareness")
	l := f.ledger(time.Now())
	require.Equal(t, 2, l.Phases[1].Tenants)
	require.Zero(t, l.Phases[1].Late, "b was added a moment ago; a's update deadline %v, b's %v", f.row(2, "a").Deadline, f.row(2, "b").Deadline)
	require.False(t, f.row(2, "b").Deadline.Before(f.row(2, "b").OwedSince))
}
