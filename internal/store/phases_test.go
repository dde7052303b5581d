package store_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
)

// putPhaseDraft keeps a stand-in draft of phase (kind) under hash, as ProposeDraft would.
func (f *ledgerFixture) putPhaseDraft(hash string, phase int, kind string) {
	f.t.Helper()
	raw, err := json.Marshal(map[string]any{"phase": map[string]any{"number": phase, "kind": kind}})
	require.NoError(f.t, err)
	require.NoError(f.t, f.s.PutDraft(f.ctx, f.id, raw, hash, "alice"))
}

// Each phase is released with its own approved hash; a tenant the scope gained later is
// owed the earlier phases with the hash each was approved with, under the later approval.
func TestPhasesReleaseTheirOwnHashAndLateTenantsTheEarlierOnes(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t, fixtureOpts{})
	hashC := "c" + hashA[1:]
	f.simple("t1", "t2")
	f.putPhaseDraft(hashA, 1, notice.PhaseInitial)
	f.putPhaseDraft(hashB, 2, notice.PhaseUpdate)
	f.putPhaseDraft(hashC, 4, notice.PhaseUpdate)
	f.scope("t1")
	require.Equal(t, 1, f.approveAndRelease(hashA, 1))
	f.planAll(f.pass(1, 1))
	f.sendAll(1)

	// Phase 2 cannot open before its draft is approved past the phase before; phase 4 skips one.
	_, err := f.s.OpenDraftPhase(f.ctx, f.id, hashC, "alice")
	require.ErrorIs(t, err, store.ErrInvalidInput)
	require.ErrorContains(t, err, "the next phase is 2")
	f.simple("t3")
	f.scope("t1", "t3") // t3 is late: version 2
	phase, err := f.s.OpenDraftPhase(f.ctx, f.id, hashB, "alice")
	require.NoError(t, err)
	require.Equal(t, 2, phase)
	again, err := f.s.OpenDraftPhase(f.ctx, f.id, hashB, "alice")
	require.NoError(t, err)
	require.Equal(t, 2, again, "opening it again is a no-op")
	st, err := f.s.Phases(f.ctx, f.id)
	require.NoError(t, err)
	require.Equal(t, store.PhaseState{Opened: 2, Approved: 1, ApprovedKind: notice.PhaseInitial}, st)

	f.approve(hashB, 2, "alice", "bob")
	released, _ := f.release(hashB, 2)
	require.Equal(t, 3, released, "t1 and t3 phase 2, and t3 phase 1")
	require.Equal(t, hashA, *f.row(1, "t3").ContentHash, "the late tenant is sent the initial notice as approved")
	require.Equal(t, hashB, *f.row(2, "t1").ContentHash)
	require.Equal(t, hashB, *f.row(2, "t3").ContentHash)
	require.Equal(t, hashA, *f.row(1, "t1").ContentHash, "what was sent stays")

	// The earlier phase is planned for the late tenant under the later phase's approval.
	out := f.planAll(f.pass(2, 1))
	require.Equal(t, 1, out.Notices)
	require.Equal(t, []string{"t3"}, keys(f.recipients(2)))
	st, err = f.s.Phases(f.ctx, f.id)
	require.NoError(t, err)
	require.Equal(t, store.PhaseState{Opened: 2, Approved: 2, ApprovedKind: notice.PhaseUpdate}, st)

	// Nothing follows a final phase.
	hashD := "d" + hashA[1:]
	f.putPhaseDraft(hashD, 3, notice.PhaseFinal)
	_, err = f.s.OpenDraftPhase(f.ctx, f.id, hashD, "alice")
	require.NoError(t, err)
	hashE := "e" + hashA[1:]
	f.putPhaseDraft(hashE, 4, notice.PhaseUpdate)
	_, err = f.s.OpenDraftPhase(f.ctx, f.id, hashE, "alice")
	require.ErrorContains(t, err, "final notice; no phase follows")
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// A page's recipients carry their tenant's facts: the values the scope criteria name
// and the tenant's imported impact; a preview shows the same for a chosen tenant.
func TestClaimedRecipientsCarryTheirTenantsFacts(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t, fixtureOpts{})
	f.tenant("t1", "it", 72, "compute", "backup", "dns")
	f.contact("t1", "primary", "")
	f.tenant("t2", "de", 72, "backup")
	f.contact("t2", "primary", "")
	f.tenant("t3", "en", 72, "compute")
	lost := f.contact("t3", "primary", "")
	f.undeliverable(lost)
	f.exec(`UPDATE tenants SET connectors = '{jamf-pro,google}', data_regions = '{eu-west}' WHERE id = 't1'`)
	_, err := f.s.ResolveScope(f.ctx, f.id, store.ScopeCriteria{Services: []string{"compute", "backup"}}, "alice")
	require.NoError(t, err)

	// Bad impact changes nothing.
	_, err = f.s.ImportImpact(f.ctx, f.id, []store.Impact{{TenantID: "t1", DataSubjects: 10, Records: 20}, {TenantID: "nope"}}, "alice")
	require.ErrorContains(t, err, "unknown tenants: nope")
	_, err = f.s.ImportImpact(f.ctx, f.id, []store.Impact{{TenantID: "t1", DataSubjects: 10}, {TenantID: "t1", DataSubjects: 11}}, "alice")
	require.ErrorContains(t, err, "appears twice")
	_, err = f.s.ImportImpact(f.ctx, f.id, []store.Impact{{TenantID: "t1", DataSubjects: -1}}, "alice")
	require.ErrorContains(t, err, "negative")
	var n int
	require.NoError(t, f.s.Pool().QueryRow(f.ctx, `SELECT count(*) FROM tenant_impacts`).Scan(&n))
	require.Zero(t, n)
	got, err := f.s.ImportImpact(f.ctx, f.id, []store.Impact{{TenantID: "t1", DataSubjects: 10, Records: 20}}, "alice")
	require.NoError(t, err)
	require.Equal(t, 1, got)
	_, err = f.s.ImportImpact(f.ctx, f.id, []store.Impact{{TenantID: "t1", DataSubjects: 12, Records: 40}}, "alice")
	require.NoError(t, err, "a later import replaces the numbers")

	p, err := f.s.PreviewTenant(f.ctx, f.id, "t1")
	require.NoError(t, err)
	// The connectors and regions are no reason: the criteria name none.
	want := notice.TenantFacts{Services: []string{"compute", "backup"}, DataSubjects: 12, Records: 40}
	require.Equal(t, want, p.Facts)
	require.True(t, p.InScope)
	require.Equal(t, "it", p.Locale)
	_, err = f.s.PreviewTenant(f.ctx, f.id, "missing")
	require.ErrorIs(t, err, store.ErrUnknownTenant)

	reach, err := f.s.ScopeReach(f.ctx, f.id)
	require.NoError(t, err)
	require.Equal(t, store.Reach{ScopeVersion: 1, Tenants: 3, NoDeliverable: 1, Sample: []string{"t3"}}, reach)

	f.approveAndRelease(hashA, 1)
	f.planAll(f.pass(1, 1))
	// Facts are frozen on the notice when it is planned: a later import changes the
	// preview (and later notices), not what this notice states.
	_, err = f.s.ImportImpact(f.ctx, f.id, []store.Impact{{TenantID: "t1", DataSubjects: 99, Records: 99}}, "alice")
	require.NoError(t, err)
	p, err = f.s.PreviewTenant(f.ctx, f.id, "t1")
	require.NoError(t, err)
	require.Equal(t, int64(99), p.Facts.DataSubjects)
	facts := map[string]notice.TenantFacts{}
	var pages int
	require.NoError(t, f.s.Pool().QueryRow(f.ctx, `SELECT pages FROM notice_plan_lanes WHERE incident_id = $1 AND round = 1 AND lane = 0`, f.id).Scan(&pages))
	for page := range pages {
		cp, err := f.s.ClaimPage(f.ctx, f.id, 1, page, f.secret, 0)
		require.NoError(t, err)
		for _, r := range cp.Recipients {
			facts[r.TenantID] = r.Facts
		}
	}
	require.Equal(t, map[string]notice.TenantFacts{"t1": want, "t2": {Services: []string{"backup"}}}, facts)
}

// A reminder carries the latest phase's notice that reached the tenant, not the initial
// one whose facts a later phase has overtaken.
func TestRemindersCarryTheLatestPhaseSent(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t, fixtureOpts{})
	f.simple("a", "b")
	f.putPhaseDraft(hashA, 1, notice.PhaseInitial)
	f.putPhaseDraft(hashB, 2, notice.PhaseUpdate)
	f.scope("a", "b")
	f.approveAndRelease(hashA, 1)
	f.planAll(f.pass(1, 1))
	f.sendAll(1)
	_, err := f.s.OpenDraftPhase(f.ctx, f.id, hashB, "alice")
	require.NoError(t, err)
	f.approveAndRelease(hashB, 1)
	p := f.pass(2, 2)
	f.planAll(p)
	claimed := f.claim(2)
	require.NoError(t, f.s.MarkSent(f.ctx, f.id, claimed["a"], "msg-2")) // b has only the initial notice
	f.exec(`UPDATE ledger SET satisfied_at = satisfied_at - interval '2 hours' WHERE incident_id = $1 AND phase = 1`, f.id)
	r := f.pass(3, 0)
	r.ReminderAfter = []time.Duration{time.Hour}
	require.Equal(t, 2, f.planAll(r).Notices)
	got := map[string]string{}
	for _, n := range f.notices(3) {
		got[n.Tenant] = n.Hash
	}
	require.Equal(t, map[string]string{"a": hashB, "b": hashA}, got)
}

// A covered tenant the scope gains after phase 1 is sent phase 1 only once the partner
// confirmed both the later phase's notice for its version and phase 1's notice itself.
func TestLateCoveredTenantsGetEarlierPhasesOnlyThroughThePartner(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t, fixtureOpts{partner: true})
	for _, id := range []string{"p1", "p2"} {
		f.tenant(id, "en", 72, "compute", testPartner.Service)
		f.contact(id, "primary", "")
	}
	decide := func(hash string, version int, status string) {
		t.Helper()
		_, err := f.s.OpenPartnerReview(f.ctx, f.id, testPartner.Name, hash, version, 1, time.Now().Add(24*time.Hour))
		require.NoError(t, err)
		_, err = f.s.DecidePartnerReview(f.ctx, f.id, status, "", "partner")
		require.NoError(t, err)
	}
	f.putPhaseDraft(hashA, 1, notice.PhaseInitial)
	f.putPhaseDraft(hashB, 2, notice.PhaseUpdate)
	f.scope("p1")
	f.approve(hashA, 1, "alice", "bob")
	decide(hashA, 1, "confirmed")
	f.release(hashA, 1)
	require.Equal(t, []string{"p1"}, f.released(1))

	f.scope("p1", "p2") // p2 is late and covered
	_, err := f.s.OpenDraftPhase(f.ctx, f.id, hashB, "alice")
	require.NoError(t, err)
	f.approve(hashB, 2, "alice", "bob")
	released, waiting := f.release(hashB, 2)
	require.Zero(t, released, "nothing for covered tenants before the partner's answer")
	require.Equal(t, 3, waiting, "p1 and p2 phase 2, p2 phase 1")
	decide(hashB, 2, "confirmed")
	released, waiting = f.release(hashB, 2)
	require.Equal(t, 3, released)
	require.Zero(t, waiting)
	require.Equal(t, hashA, *f.row(1, "p2").ContentHash, "the initial notice the partner confirmed")

	// Had the partner never confirmed phase 1's notice, a confirmation of phase 2's would
	// not carry it.
	g := newLedgerFixture(t, fixtureOpts{partner: true})
	g.tenant("p1", "en", 72, "compute", testPartner.Service)
	g.contact("p1", "primary", "")
	g.putPhaseDraft(hashA, 1, notice.PhaseInitial)
	g.putPhaseDraft(hashB, 2, notice.PhaseUpdate)
	g.scope("p1")
	g.approve(hashA, 1, "alice", "bob")
	g.release(hashA, 1) // waits for the partner
	_, err = g.s.OpenDraftPhase(g.ctx, g.id, hashB, "alice")
	require.NoError(t, err)
	g.approve(hashB, 1, "alice", "bob")
	_, err = g.s.OpenPartnerReview(g.ctx, g.id, testPartner.Name, hashB, 1, 1, time.Now().Add(24*time.Hour))
	require.NoError(t, err)
	_, err = g.s.DecidePartnerReview(g.ctx, g.id, "confirmed", "", "partner")
	require.NoError(t, err)
	released, waiting = g.release(hashB, 1)
	require.Equal(t, 1, released, "phase 2 only")
	require.Equal(t, 1, waiting, "phase 1 still waits for a confirmation of its own notice")
	require.Nil(t, g.row(1, "p1").ContentHash)
}

// A tenant an incident names cannot be deleted or renamed: its evidence needs it. One
// no incident names can.
func TestTenantsNamedByAnIncidentStay(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t, fixtureOpts{})
	f.simple("named", "free")
	f.scope("named")
	_, err := f.s.Pool().Exec(f.ctx, `DELETE FROM tenants WHERE id = 'named'`)
	require.ErrorContains(t, err, "tenant named is named by an incident's scope, ledger or notices: it cannot be deleted")
	_, err = f.s.Pool().Exec(f.ctx, `UPDATE tenants SET id = 'renamed' WHERE id = 'named'`)
	require.ErrorContains(t, err, "cannot be updated")
	_, err = f.s.Pool().Exec(f.ctx, `UPDATE tenants SET name = 'Still Named Ltd' WHERE id = 'named'`)
	require.NoError(t, err, "other columns change as before")
	_, err = f.s.Pool().Exec(f.ctx, `DELETE FROM tenants WHERE id = 'free'`)
	require.NoError(t, err)
}

// The outbox and what it points at stay: a notice, its round, its phase and its delivery
// events are never deleted, and a contact a notice went to is neither deleted nor
// renumbered. A contact no notice names can go.
func TestOutboxEvidenceStays(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t, fixtureOpts{})
	contacts := f.simple("told")
	spare := f.contact("told", "alternate", "")
	f.scope("told")
	require.Equal(t, 1, f.approveAndRelease(hashA, 1))
	f.planAll(f.pass(1, 1))
	sent := f.sendAll(1)
	require.Len(t, sent["told"], 1)
	_, err := f.s.ApplyDeliveryEvents(f.ctx, []store.DeliveryEvent{{SGEventID: "ev-1", NoticeID: sent["told"][0], Event: "delivered", OccurredAt: time.Now()}})
	require.NoError(t, err)
	for _, q := range []string{
		`DELETE FROM notices`,
		`DELETE FROM notice_rounds`,
		`DELETE FROM notice_phases`,
		`DELETE FROM delivery_events`,
		`TRUNCATE notices CASCADE`,
		`TRUNCATE delivery_events`,
	} {
		_, err := f.s.Pool().Exec(f.ctx, q)
		require.ErrorContains(t, err, "are evidence of an incident's notification: they cannot be deleted", q)
	}
	_, err = f.s.Pool().Exec(f.ctx, `DELETE FROM contacts WHERE id = $1`, contacts["told"])
	require.ErrorContains(t, err, fmt.Sprintf("contact %d was sent notices: it cannot be deleted", contacts["told"]))
	_, err = f.s.Pool().Exec(f.ctx, `UPDATE contacts SET id = DEFAULT WHERE id = $1`, contacts["told"])
	require.ErrorContains(t, err, "cannot be updated")
	_, err = f.s.Pool().Exec(f.ctx, `UPDATE contacts SET name = 'Renamed' WHERE id = $1`, contacts["told"])
	require.NoError(t, err, "other columns change as before")
	_, err = f.s.Pool().Exec(f.ctx, `DELETE FROM contacts WHERE id = $1`, spare)
	require.NoError(t, err)
	var n int
	require.NoError(t, f.s.Pool().QueryRow(f.ctx, `SELECT (SELECT count(*) FROM notices) + (SELECT count(*) FROM delivery_events)`).Scan(&n))
	require.Equal(t, 2, n)
}
