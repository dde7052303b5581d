package store_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/store"
)

func TestReleaseRefusesWithoutTwoApproversOfTheVersion(t *testing.T) {
	t.Parallel()
	type approval struct {
		hash    string
		version int
		who     string
	}
	cases := []struct {
		name      string
		approvals []approval
		ok        bool
	}{
		{"no approval", nil, false},
		{"one approver", []approval{{hashA, 1, "alice"}}, false},
		{"one approver twice", []approval{{hashA, 1, "alice"}, {hashA, 1, "alice"}}, false},
		{"two approvers of the next version", []approval{{hashA, 2, "alice"}, {hashA, 2, "bob"}}, false},
		{"two approvers split over versions", []approval{{hashA, 1, "alice"}, {hashA, 2, "bob"}}, false},
		{"two approvers of another notice", []approval{{hashB, 1, "alice"}, {hashB, 1, "bob"}}, false},
		{"two approvers of the version", []approval{{hashA, 1, "alice"}, {hashA, 1, "bob"}}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newLedgerFixture(t, fixtureOpts{})
			f.simple("a", "b")
			f.scope("a", "b")
			f.scope("a", "b") // version 2: same tenants
			for _, a := range tc.approvals {
				f.approve(a.hash, a.version, a.who)
			}
			released, waiting, err := f.s.Release(f.ctx, f.id, hashA, 1, "system")
			if !tc.ok {
				require.ErrorIs(t, err, store.ErrNotApproved)
				require.ErrorIs(t, err, store.ErrInvalidInput)
				require.Zero(t, released)
				require.Empty(t, f.released(1))
				require.Zero(t, f.ledger(time.Now()).Initial().Released)
				return
			}
			require.NoError(t, err)
			require.Equal(t, 2, released)
			require.Zero(t, waiting)
			require.Equal(t, []string{"a", "b"}, f.released(1))
			r := f.row(1, "a")
			require.Equal(t, hashA, *r.ContentHash)
			require.Equal(t, 1, *r.ScopeVersion)
		})
	}
}

func TestReleaseOnlyReleasesWhatTheVersionIncluded(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t, fixtureOpts{})
	f.simple("a", "b", "c")
	f.scope("a", "b")
	f.scope("a", "b", "c")
	require.Equal(t, 1, f.row(1, "a").AddedVersion)
	require.Equal(t, 2, f.row(1, "c").AddedVersion)

	require.Equal(t, 2, f.approveAndRelease(hashA, 1), "version 1 did not include c")
	require.Equal(t, []string{"a", "b"}, f.released(1))
	released, _ := f.release(hashA, 1)
	require.Zero(t, released, "a second release of the same pair releases nothing")

	require.Equal(t, 1, f.approveAndRelease(hashA, 2))
	require.Equal(t, []string{"a", "b", "c"}, f.released(1))
	require.Equal(t, 1, *f.row(1, "a").ScopeVersion, "released rows keep the version they were released under")
	require.Equal(t, 2, *f.row(1, "c").ScopeVersion)

	var audits int
	require.NoError(t, f.s.Pool().QueryRow(f.ctx, `SELECT count(*) FROM audit_log WHERE incident_id = $1 AND action = 'notice.released'`, f.id).Scan(&audits))
	require.Equal(t, 2, audits, "a release that released nothing is not audited")
}

func TestReleaseOfCoveredTenantsWaitsForThePartner(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t, fixtureOpts{partner: true})
	f.simple("a")
	for _, id := range []string{"p1", "p2"} {
		f.tenant(id, "en", 72, "compute", testPartner.Service)
		f.contact(id, "primary", "")
	}
	res := f.scope("a", "p1")
	require.Equal(t, 1, res.PartnerCovered)
	require.True(t, f.row(1, "p1").PartnerCovered)
	require.False(t, f.row(1, "a").PartnerCovered)
	f.approve(hashA, 1, "alice", "bob")

	review := func(hash string, version int, status string) {
		t.Helper()
		_, err := f.s.OpenPartnerReview(f.ctx, f.id, testPartner.Name, hash, version, 1, time.Now().Add(24*time.Hour))
		require.NoError(t, err)
		if status != "pending" {
			_, err = f.s.DecidePartnerReview(f.ctx, f.id, status, "", "partner")
			require.NoError(t, err)
		}
	}
	steps := []struct {
		name             string
		review           func()
		released, wait   int
		releasedTenants  []string
		releaseVersion   int
		approveVersion   int
		widenWithCovered bool
	}{
		{name: "no review yet", released: 1, wait: 1, releasedTenants: []string{"a"}},
		{name: "review pending", review: func() { review(hashA, 1, "pending") }, wait: 1, releasedTenants: []string{"a"}},
		{name: "changes requested", review: func() { review(hashA, 1, "changes_requested") }, wait: 1, releasedTenants: []string{"a"}},
		{name: "another notice confirmed", review: func() { review(hashB, 1, "confirmed") }, wait: 1, releasedTenants: []string{"a"}},
		{name: "confirmed", review: func() { review(hashA, 1, "confirmed") }, released: 1, releasedTenants: []string{"a", "p1"}},
		// Version 2 brings p2 in; the partner reviewed only version 1.
		{name: "new covered tenant, old review", widenWithCovered: true, approveVersion: 2, releaseVersion: 2, wait: 1,
			releasedTenants: []string{"a", "p1"}},
		{name: "overridden for version 2", review: func() { review(hashA, 2, "overridden") }, releaseVersion: 2, released: 1,
			releasedTenants: []string{"a", "p1", "p2"}},
	}
	for _, st := range steps {
		if st.widenWithCovered {
			f.scope("a", "p1", "p2")
		}
		if st.approveVersion > 0 {
			f.approve(hashA, st.approveVersion, "alice", "bob")
		}
		if st.review != nil {
			st.review()
		}
		v := max(st.releaseVersion, 1)
		released, waiting := f.release(hashA, v)
		require.Equal(t, st.released, released, st.name)
		require.Equal(t, st.wait, waiting, st.name)
		require.Equal(t, st.releasedTenants, f.released(1), st.name)
	}
}

func TestLedgerCountsTenantsByWhatHappenedToThem(t *testing.T) {
	t.Parallel()
	// Aware ten hours ago: a 1-hour SLA is past its deadline, a 100-hour one is not.
	f := newLedgerFixture(t, fixtureOpts{awareAgo: 10 * time.Hour, partner: true})
	for _, tn := range []struct {
		id  string
		sla int
	}{{"a", 100}, {"b", 1}, {"c", 100}, {"d", 100}, {"e", 100}, {"g", 100}, {"i", 100}} {
		f.tenant(tn.id, "en", tn.sla)
	}
	primary := map[string]int64{}
	for _, id := range []string{"a", "b", "c", "d", "e", "g", "i"} {
		primary[id] = f.contact(id, "primary", "")
	}
	f.contact("d", "alternate", "")
	f.tenant("f", "en", 1) // no contact at all
	f.tenant("h", "en", 1, testPartner.Service)
	f.contact("h", "primary", "")

	f.scope("a", "b", "c", "d", "e", "f", "g", "h", "i")
	f.scope("a", "b", "c", "d", "e", "f", "g", "h") // i leaves
	require.Equal(t, 7, f.approveAndRelease(hashA, 2), "all but the covered h, held for the partner")
	planned := f.planAll(f.pass(1, 1))
	require.Equal(t, 1, planned.Unreachable, "f has no contact")
	claimed := f.claim(1)
	var sent []int64
	for _, id := range []string{"a", "b", "c", "d"} {
		sent = append(sent, claimed[id]...)
	}
	require.NoError(t, f.s.MarkSent(f.ctx, f.id, sent, "msg-1"))
	require.NoError(t, f.s.MarkFailed(f.ctx, f.id, claimed["e"], "550 refused by the API"))
	require.NoError(t, f.s.ReleaseClaims(f.ctx, claimed["g"], "429"))
	_, err := f.s.ApplyDeliveryEvents(f.ctx, []store.DeliveryEvent{
		ev("c-delivered", claimed["c"][0], "delivered", 1),
		ev("d-bounce", claimed["d"][0], "bounce", 2),
	})
	require.NoError(t, err)
	_, err = f.s.Acknowledge(f.ctx, f.id, "a", "responder", "alice")
	require.NoError(t, err)

	now := time.Now()
	l := f.ledger(now)
	require.Len(t, l.Phases, 1)
	p := l.Initial()
	require.NotNil(t, p.Earliest)
	require.True(t, f.awareAt.Add(time.Hour).Equal(*p.Earliest), "earliest owed deadline %v", p.Earliest)
	p.Earliest = nil
	require.Equal(t, store.PhaseCounts{
		Phase: 1, Kind: store.PhaseInitial,
		Tenants:     8, // i left
		Released:    7, // all but h
		Notified:    3, // a, b, c
		Delivered:   1, // c
		Bounced:     1, // d
		Unreachable: 1, // f
		Failed:      1, // e
		Owed:        5, // d, e, f, g, h
		Plannable:   4, // d, e, f, g
		Met:         2, // a, c
		Late:        3, // b notified late, f and h owed past their deadline
		Removed:     1, // i
		LastError:   "550 refused by the API",
	}, p)
	require.Equal(t, 8, l.Tenants)
	require.Equal(t, 1, l.Acknowledged)
	require.Zero(t, l.RemindersDue)
	require.Nil(t, l.NextReminderAt, "no reminder schedule")

	// Reminders one and 24 hours after a tenant was notified: b and c are notified and
	// have not acknowledged.
	var first time.Time
	require.NoError(t, f.s.Pool().QueryRow(f.ctx, `SELECT min(satisfied_at) FROM ledger WHERE incident_id = $1 AND tenant_id IN ('b', 'c')`, f.id).Scan(&first))
	schedule := []time.Duration{time.Hour, 24 * time.Hour}
	l = f.ledger(now, schedule...)
	require.Zero(t, l.RemindersDue)
	require.NotNil(t, l.NextReminderAt)
	require.True(t, first.Add(time.Hour).Equal(*l.NextReminderAt), "next reminder %v, want %v", l.NextReminderAt, first.Add(time.Hour))
	l = f.ledger(now.Add(2*time.Hour), schedule...)
	require.Equal(t, 2, l.RemindersDue)
	f.exec(`UPDATE ledger SET reminders = 2 WHERE incident_id = $1 AND tenant_id = 'b'`, f.id)
	l = f.ledger(now.Add(48*time.Hour), schedule...)
	require.Equal(t, 1, l.RemindersDue, "b had every reminder")

	require.Equal(t, map[string]string{"a": "notified", "b": "notified", "c": "delivered", "d": "bounced", "e": "failed",
		"f": "unreachable", "g": "owed", "h": "held", "i": "removed"}, f.states(1))

	// An update phase owes every tenant in scope again.
	phase, err := f.s.OpenPhase(f.ctx, f.id, store.PhaseUpdate, "alice")
	require.NoError(t, err)
	require.Equal(t, 2, phase)
	l = f.ledger(now)
	require.Len(t, l.Phases, 2)
	u := l.Phases[1]
	u.Earliest = nil
	require.Equal(t, store.PhaseCounts{Phase: 2, Kind: store.PhaseUpdate, Tenants: 8, Owed: 8}, u)
}

// A phase opened before any tenant is owed it counts nobody, owed or otherwise.
func TestLedgerCountsAPhaseWithoutTenantsAsEmpty(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t, fixtureOpts{})
	_, err := f.s.OpenPhase(f.ctx, f.id, store.PhaseUpdate, "alice")
	require.NoError(t, err)
	l := f.ledger(time.Now())
	require.Len(t, l.Phases, 1)
	require.Equal(t, store.PhaseCounts{Phase: 1, Kind: store.PhaseUpdate}, l.Phases[0])
	require.Zero(t, l.Tenants)
}

func TestDeadlineRiskCountsOwedTenantPhasesByTimeUsed(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t, fixtureOpts{awareAgo: 10 * time.Hour})
	// Ten hours of an SLA used: t19 0.53, t12 0.83, t8 1.25 (past), t100 0.1; n is notified
	// and r leaves the scope, so neither counts in the initial phase.
	sla := map[string]int{"t19": 19, "t12": 12, "t8": 8, "t100": 100, "n": 100, "r": 1}
	for id, h := range sla {
		f.tenant(id, "en", h)
		f.contact(id, "primary", "")
	}
	f.scope("n", "r", "t100", "t12", "t19", "t8")
	f.scope("n", "t100", "t12", "t19", "t8")
	f.approve(hashA, 2, "alice", "bob")
	f.release(hashA, 2)
	f.exec(`UPDATE ledger SET released_at = NULL, content_hash = NULL, scope_version = NULL WHERE incident_id = $1 AND tenant_id = 't19'`, f.id)
	f.planAll(f.pass(1, 1))
	claimed := f.claim(1)
	require.NoError(t, f.s.MarkSent(f.ctx, f.id, claimed["n"], "msg"))
	// The update phase's clock starts when it opens, not at awareness.
	_, err := f.s.OpenPhase(f.ctx, f.id, store.PhaseUpdate, "alice")
	require.NoError(t, err)

	deadline := func(id string) time.Time { return f.awareAt.Add(time.Duration(sla[id]) * time.Hour) }
	levels, next, err := f.s.DeadlineRisk(f.ctx, f.id, []float64{0.5, 0.75, 1}, time.Now())
	require.NoError(t, err)
	require.Len(t, levels, 3)
	want := []struct {
		fraction float64
		tenants  int
	}{{0.5, 3}, {0.75, 2}, {1, 1}}
	for i, w := range want {
		require.Equal(t, w.fraction, levels[i].Fraction)
		require.Equal(t, w.tenants, levels[i].Tenants, "fraction %v", w.fraction)
		require.NotNil(t, levels[i].Earliest)
		require.True(t, deadline("t8").Equal(*levels[i].Earliest), "fraction %v: earliest %v", w.fraction, levels[i].Earliest)
	}
	// t12 reaches its deadline (fraction 1) at awareness + 12 h, before t19 reaches 0.75.
	require.NotNil(t, next)
	require.True(t, deadline("t12").Equal(*next), "next crossing %v, want %v", next, deadline("t12"))

	levels, next, err = f.s.DeadlineRisk(f.ctx, f.id, []float64{0.5}, f.awareAt.Add(200*time.Hour))
	require.NoError(t, err)
	require.Equal(t, 4+5, levels[0].Tenants, "every owed tenant-phase of both phases is past half its time")
	require.Nil(t, next, "nothing left to cross")

	f.exec(`UPDATE ledger SET satisfied_at = now() WHERE incident_id = $1`, f.id)
	levels, next, err = f.s.DeadlineRisk(f.ctx, f.id, []float64{0.5, 1}, time.Now())
	require.NoError(t, err)
	require.Equal(t, []store.RiskLevel{{Fraction: 0.5}, {Fraction: 1}}, levels)
	require.Nil(t, next)
}

func TestScopeVersionsAndDiff(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t, fixtureOpts{})
	f.simple("a", "b", "c", "d")
	f.scope("a", "b")
	f.scope("a", "b", "c", "d")
	f.scope("a", "d")

	versions, err := f.s.ScopeVersions(f.ctx, f.id)
	require.NoError(t, err)
	type vc struct{ Version, Tenants, Added, Removed int }
	var got []vc
	for _, v := range versions {
		got = append(got, vc{v.Version, v.Tenants, v.Added, v.Removed})
		require.Equal(t, "alice", v.CreatedBy)
	}
	require.Equal(t, []vc{{1, 2, 2, 0}, {2, 4, 2, 0}, {3, 2, 0, 2}}, got)
	require.Equal(t, []string{"a", "d"}, versions[2].Criteria.TenantIDs)

	cases := []struct {
		from, to, limit int
		want            store.ScopeDiff
	}{
		{1, 2, 10, store.ScopeDiff{From: 1, To: 2, AddedCount: 2, Added: []string{"c", "d"}, Removed: []string{}}},
		{2, 3, 10, store.ScopeDiff{From: 2, To: 3, RemovedCount: 2, Added: []string{}, Removed: []string{"b", "c"}}},
		{2, 3, 1, store.ScopeDiff{From: 2, To: 3, RemovedCount: 2, Added: []string{}, Removed: []string{"b"}}},
		{1, 3, 10, store.ScopeDiff{From: 1, To: 3, AddedCount: 1, RemovedCount: 1, Added: []string{"d"}, Removed: []string{"b"}}},
		{3, 1, 10, store.ScopeDiff{From: 3, To: 1, AddedCount: 1, RemovedCount: 1, Added: []string{"b"}, Removed: []string{"d"}}},
		{2, 2, 10, store.ScopeDiff{From: 2, To: 2, Added: []string{}, Removed: []string{}}},
	}
	for _, tc := range cases {
		d, err := f.s.DiffScope(f.ctx, f.id, tc.from, tc.to, tc.limit)
		require.NoError(t, err)
		require.Equal(t, tc.want, d, "diff %d → %d", tc.from, tc.to)
	}
	for _, bad := range [][2]int{{1, 9}, {9, 1}, {9, 9}, {0, 1}} {
		_, err := f.s.DiffScope(f.ctx, f.id, bad[0], bad[1], 10)
		require.ErrorIs(t, err, store.ErrNotFound, "diff %d → %d", bad[0], bad[1])
	}
	_, err = f.s.DiffScope(f.ctx, "INC-NONE-0000", 1, 1, 10)
	require.ErrorIs(t, err, store.ErrNotFound)
}
