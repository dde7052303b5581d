package store_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/tenants"
	"github.com/breachflow/breachflow/internal/testenv"
)

func TestPlanStepRefusesBadPlans(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t, fixtureOpts{})
	cases := []struct {
		field string
		edit  func(p *store.PassPlan)
	}{
		{"page_size", func(p *store.PassPlan) { p.PageSize = 0 }},
		{"page_size", func(p *store.PassPlan) { p.PageSize = 1001 }},
		{"chunk", func(p *store.PassPlan) { p.Chunk = 0 }},
		{"phase", func(p *store.PassPlan) { p.Phase = -1 }},
		{"phase", func(p *store.PassPlan) { p.Phase, p.ReminderAfter = 0, nil }},
	}
	for _, tc := range cases {
		p := f.pass(1, 1)
		tc.edit(&p)
		_, err := f.s.PlanStep(f.ctx, p, f.secret)
		var fe *store.FieldError
		require.True(t, errors.As(err, &fe), "%v", err)
		require.Equal(t, tc.field, fe.Field)
		require.ErrorIs(t, err, store.ErrInvalidInput)
	}
	require.Empty(t, f.notices(0))
}

// Rows released under a (hash, version) that lacks two approvals are never planned, however
// they came to be released.
func TestPlanStepPlansNothingWithoutTwoApprovals(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		tamper string
		want   int
	}{
		{"untouched", ``, 2},
		{"an approval deleted", `DELETE FROM approvals WHERE incident_id = $1 AND approver = 'bob'`, 0},
		{"content hash swapped", `UPDATE ledger SET content_hash = '` + hashB + `' WHERE incident_id = $1`, 0},
		{"scope version swapped", `UPDATE ledger SET scope_version = 7 WHERE incident_id = $1`, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newLedgerFixture(t, fixtureOpts{})
			f.simple("a", "b")
			f.scope("a", "b")
			require.Equal(t, 2, f.approveAndRelease(hashA, 1))
			if tc.tamper != "" {
				f.exec(tc.tamper, f.id)
			}
			out := f.step(f.pass(1, 1))
			require.Equal(t, tc.want, out.Notices)
			require.True(t, out.Done)
			require.Len(t, f.notices(1), tc.want)
			var tokens int
			require.NoError(t, f.s.Pool().QueryRow(f.ctx, `SELECT count(*) FROM ack_tokens WHERE incident_id = $1`, f.id).Scan(&tokens))
			require.Equal(t, tc.want, tokens)
		})
	}
}

func TestPlanStepPlansKeysetChunksAcrossCalls(t *testing.T) {
	t.Parallel()
	type step struct {
		pages, notices, tenants int
		done                    bool
		cursor                  string
	}
	cases := []struct {
		name            string
		tenants         int
		chunk, pageSize int
		steps           []step
		pages           [][]string
	}{
		{"chunks that do not divide", 7, 3, 2,
			[]step{{2, 3, 3, false, "t3"}, {4, 6, 3, false, "t6"}, {5, 7, 1, true, "t7"}, {5, 7, 0, true, "t7"}},
			[][]string{{"t1", "t2"}, {"t3"}, {"t4", "t5"}, {"t6"}, {"t7"}}},
		{"chunks that divide", 6, 3, 5,
			[]step{{1, 3, 3, false, "t3"}, {2, 6, 3, false, "t6"}, {2, 6, 0, true, "t6"}},
			[][]string{{"t1", "t2", "t3"}, {"t4", "t5", "t6"}}},
		{"one chunk of single pages", 4, 10, 1,
			[]step{{4, 4, 4, true, "t4"}},
			[][]string{{"t1"}, {"t2"}, {"t3"}, {"t4"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newLedgerFixture(t, fixtureOpts{})
			var ids []string
			for i := 1; i <= tc.tenants; i++ {
				ids = append(ids, fmt.Sprintf("t%d", i))
			}
			f.simple(ids...)
			f.scope(ids...)
			f.approveAndRelease(hashA, 1)
			p := f.pass(1, 1)
			p.Chunk, p.PageSize = tc.chunk, tc.pageSize
			for i, want := range tc.steps {
				out := f.step(p)
				require.Equal(t, store.PassPlanned{Pages: want.pages, Notices: want.notices, Tenants: want.tenants, Done: want.done}, out, "step %d", i+1)
				var cursor string
				var pages, planned int
				var done bool
				require.NoError(t, f.s.Pool().QueryRow(f.ctx, `SELECT plan_cursor, planned_done, pages, planned FROM notice_plan_lanes
					WHERE incident_id = $1 AND round = 1 AND lane = 0`, f.id).Scan(&cursor, &done, &pages, &planned))
				require.Equal(t, want.cursor, cursor, "step %d", i+1)
				require.Equal(t, []any{want.done, want.pages, want.notices}, []any{done, pages, planned}, "step %d", i+1)
			}
			got := make([][]string, len(tc.pages))
			for _, n := range f.notices(1) {
				require.Less(t, n.Page, len(tc.pages))
				got[n.Page] = append(got[n.Page], n.Tenant)
			}
			require.Equal(t, tc.pages, got)
			var audits int
			require.NoError(t, f.s.Pool().QueryRow(f.ctx, `SELECT count(*) FROM audit_log WHERE incident_id = $1 AND action = 'pass.planned'`, f.id).Scan(&audits))
			require.Equal(t, 1, audits, "a pass is audited once, when its planning is done")
		})
	}
}

func TestPlanStepPagesHoldOneLocaleAndOneNotice(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t, fixtureOpts{})
	wantLocale := map[int64]string{}
	add := func(id, tenantLocale string, contactLocales ...string) {
		f.tenant(id, tenantLocale, 72)
		for _, cl := range contactLocales {
			want := cl
			if want == "" {
				want = tenantLocale
			}
			want = want[:2]
			if want == "pt" {
				want = "en" // unsupported: the fallback
			}
			wantLocale[f.contact(id, "primary", cl)] = want
		}
	}
	add("de1", "de", "")
	add("de2", "de-AT", "", "")
	add("en1", "en", "")
	add("it1", "it", "")
	add("mix", "de", "en", "", "it")
	add("pt1", "pt", "")
	add("de3", "de", "")
	add("en2", "en-GB", "")
	f.scope("de1", "de2", "en1", "it1", "mix", "pt1")
	require.Equal(t, 6, f.approveAndRelease(hashA, 1))
	// Version 2 adds two tenants under a revised notice.
	f.scope("de1", "de2", "en1", "it1", "mix", "pt1", "de3", "en2")
	require.Equal(t, 2, f.approveAndRelease(hashB, 2))

	p := f.pass(1, 1)
	p.Chunk, p.PageSize = 3, 2
	out := f.planAll(p)
	require.Equal(t, len(wantLocale), out.Notices)
	notices := f.notices(1)
	require.Len(t, notices, len(wantLocale))
	type page struct {
		locales, hashes map[string]bool
		n               int
	}
	pages := map[int]*page{}
	for _, n := range notices {
		require.Equal(t, wantLocale[n.Contact], n.Locale, "contact %d of %s", n.Contact, n.Tenant)
		wantHash := hashA
		if n.Tenant == "de3" || n.Tenant == "en2" {
			wantHash = hashB
		}
		require.Equal(t, wantHash, n.Hash, n.Tenant)
		require.Equal(t, 1, *n.Phase)
		pg := pages[n.Page]
		if pg == nil {
			pg = &page{locales: map[string]bool{}, hashes: map[string]bool{}}
			pages[n.Page] = pg
		}
		pg.locales[n.Locale], pg.hashes[n.Hash] = true, true
		pg.n++
	}
	require.Len(t, pages, out.Pages, "pages are numbered 0 … Pages-1 without gaps")
	for i := range out.Pages {
		pg := pages[i]
		require.NotNil(t, pg, "page %d is empty", i)
		require.Len(t, pg.locales, 1, "page %d", i)
		require.Len(t, pg.hashes, 1, "page %d", i)
		require.LessOrEqual(t, pg.n, p.PageSize, "page %d", i)
	}
	// What a page claims is what its message is rendered from.
	for i := range out.Pages {
		cp, err := f.s.ClaimPage(f.ctx, f.id, 1, i, f.secret, time.Minute)
		require.NoError(t, err)
		require.Len(t, cp.Recipients, pages[i].n)
		require.True(t, pages[i].locales[cp.Locale] && pages[i].hashes[cp.ContentHash], "page %d", i)
		require.Equal(t, 1, cp.Phase)
		require.Equal(t, store.RoundInitial, cp.Kind)
	}
}

// Generated tenants with several primaries, alternates and locales: every page keeps the
// rules, and each released tenant is planned to exactly its primaries.
func TestPlanStepOverGeneratedTenants(t *testing.T) {
	t.Parallel()
	s := testenv.Store(t)
	testenv.Tenants(t, s, tenants.Options{Tenants: 240, ContactsPerTenant: 3, AlternateShare: 0.5, Seed: 11})
	f := &ledgerFixture{t: t, ctx: t.Context(), s: s}
	inc, _, err := s.CreateIncident(f.ctx, "", store.Declaration{Title: "Exposure", Severity: "high", AwareAt: time.Now().Add(-time.Hour)}, "alice", time.Now())
	require.NoError(t, err)
	f.id = inc.ID
	f.secret, err = s.AckSecret(f.ctx, "")
	require.NoError(t, err)
	res, err := s.ResolveScope(f.ctx, f.id, store.ScopeCriteria{Countries: []string{"DE", "FR", "IT", "CH", "US", "NL"}}, "alice")
	require.NoError(t, err)
	require.Greater(t, res.Total, 50)
	require.Equal(t, res.Total, f.approveAndRelease(hashA, 1))

	p := f.pass(1, 1)
	p.Chunk, p.PageSize = 37, 25
	steps := 0
	for {
		out := f.step(p)
		steps++
		if out.Done {
			break
		}
	}
	require.Equal(t, res.Total/37+1, steps)

	var primaries, badPages, wrongKind, tenantsPlanned int
	require.NoError(t, s.Pool().QueryRow(f.ctx, `SELECT count(*) FROM contacts c JOIN ledger l ON l.tenant_id = c.tenant_id
		WHERE l.incident_id = $1 AND c.kind = 'primary'`, f.id).Scan(&primaries))
	require.NoError(t, s.Pool().QueryRow(f.ctx, `SELECT count(*) FROM (SELECT page FROM notices WHERE incident_id = $1 AND round = 1
		GROUP BY page HAVING count(DISTINCT locale) > 1 OR count(DISTINCT content_hash) > 1 OR count(*) > 25) x`, f.id).Scan(&badPages))
	require.NoError(t, s.Pool().QueryRow(f.ctx, `SELECT count(*) FROM notices n JOIN contacts c ON c.id = n.contact_id
		WHERE n.incident_id = $1 AND c.kind <> 'primary'`, f.id).Scan(&wrongKind))
	require.NoError(t, s.Pool().QueryRow(f.ctx, `SELECT count(DISTINCT tenant_id) FROM notices WHERE incident_id = $1`, f.id).Scan(&tenantsPlanned))
	require.Equal(t, primaries, len(f.notices(1)), "one notice per primary contact")
	require.Zero(t, badPages)
	require.Zero(t, wrongKind)
	require.Equal(t, res.Total, tenantsPlanned)
}

func TestPlanStepNeverPlansASecondLiveNoticeOfAPhase(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t, fixtureOpts{})
	contacts := f.simple("a", "b", "c")
	f.scope("a", "b", "c")
	f.approveAndRelease(hashA, 1)
	require.Equal(t, 3, f.planAll(f.pass(1, 1)).Notices)

	// A second pass of the phase while pass 1 is still unsent plans nothing.
	require.Equal(t, store.PassPlanned{Done: true}, f.planAll(f.pass(2, 1)))

	claimed := f.claim(1)
	require.NoError(t, f.s.MarkSent(f.ctx, f.id, claimed["a"], "msg-a"))
	require.NoError(t, f.s.MarkFailed(f.ctx, f.id, claimed["b"], "401 key revoked"))
	require.NoError(t, f.s.ReleaseClaims(f.ctx, claimed["c"], "503"))

	a := f.row(1, "a")
	require.NotNil(t, a.SatisfiedAt)
	require.Equal(t, a.SatisfiedAt, a.FirstSentAt)
	b := f.row(1, "b")
	require.Nil(t, b.SatisfiedAt)
	require.NotNil(t, b.FailedAt)
	require.Equal(t, "401 key revoked", *b.LastError)
	require.Equal(t, "pending", f.noticeOf(1, contacts["c"]).Status)

	// Pass 3 re-plans exactly the refused notice: a is notified, c's notice is still live.
	out := f.planAll(f.pass(3, 1))
	require.Equal(t, 1, out.Notices)
	require.Equal(t, map[string][]int64{"b": {contacts["b"]}}, f.recipients(3))
	require.Equal(t, store.PassPlanned{Done: true}, f.planAll(f.pass(4, 1)))

	// Sent at last: b is notified and its earlier failure is history.
	f.sendAll(3)
	b = f.row(1, "b")
	require.NotNil(t, b.SatisfiedAt)
	require.Nil(t, b.FailedAt)
	require.Nil(t, b.LastError)

	// The database itself refuses a second live notice of the phase to a contact.
	_, err := f.s.Pool().Exec(f.ctx, `INSERT INTO notices (incident_id, round, phase, tenant_id, contact_id, locale, content_hash, page)
		VALUES ($1, 4, 1, 'a', $2, 'en', $3, 0)`, f.id, contacts["a"], hashA)
	require.True(t, store.IsUniqueViolation(err), "%v", err)
}

func TestPlanStepUsesAlternatesOnlyWithoutADeliverablePrimary(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t, fixtureOpts{})
	c := map[string]int64{}
	add := func(tenant string, kinds ...string) {
		f.tenant(tenant, "en", 72)
		for i, k := range kinds {
			c[fmt.Sprintf("%s/%s%d", tenant, k, i)] = f.contact(tenant, k, "")
		}
	}
	add("both", "primary", "primary", "alternate")
	add("deadp", "primary", "alternate")
	f.undeliverable(c["deadp/primary0"])
	add("onlyalt", "alternate")
	add("nocontact")
	add("alldead", "primary", "alternate")
	f.undeliverable(c["alldead/primary0"])
	f.undeliverable(c["alldead/alternate1"])
	f.scope("both", "deadp", "onlyalt", "nocontact", "alldead")
	f.approveAndRelease(hashA, 1)

	out := f.planAll(f.pass(1, 1))
	require.Equal(t, store.PassPlanned{Pages: 1, Notices: 4, Tenants: 3, Unreachable: 2, Done: true}, out)
	require.Equal(t, map[string][]int64{
		"both":    {c["both/primary0"], c["both/primary1"]},
		"deadp":   {c["deadp/alternate1"]},
		"onlyalt": {c["onlyalt/alternate0"]},
	}, f.recipients(1))
	for tenant, unreachable := range map[string]bool{"both": false, "deadp": false, "onlyalt": false, "nocontact": true, "alldead": true} {
		require.Equal(t, unreachable, f.row(1, tenant).UnreachableAt != nil, tenant)
	}
	require.Equal(t, 2, f.ledger(time.Now()).Initial().Unreachable)

	// A contact that becomes deliverable again makes its tenant reachable at the next pass.
	f.exec(`UPDATE contacts SET undeliverable_at = NULL WHERE id = $1`, c["alldead/alternate1"])
	out = f.planAll(f.pass(2, 1))
	require.Equal(t, 1, out.Notices)
	require.Equal(t, 1, out.Unreachable, "nocontact still has nobody")
	require.Equal(t, map[string][]int64{"alldead": {c["alldead/alternate1"]}}, f.recipients(2))
	require.Nil(t, f.row(1, "alldead").UnreachableAt)
}

func TestReminderPassesRemindNotifiedTenantsThatHaveNotAcknowledged(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t, fixtureOpts{})
	c := map[string]int64{}
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		f.tenant(id, "en", 72)
		c[id] = f.contact(id, "primary", "")
	}
	altA := f.contact("a", "alternate", "")
	f.contact("e", "alternate", "")
	f.scope("a", "b", "c", "d", "e")
	f.approveAndRelease(hashA, 1)
	f.planAll(f.pass(1, 1))
	claimed := f.claim(1)
	require.NoError(t, f.s.MarkSent(f.ctx, f.id, slices.Concat(claimed["a"], claimed["b"], claimed["c"], claimed["e"]), "msg"))
	require.NoError(t, f.s.MarkFailed(f.ctx, f.id, claimed["d"], "refused")) // d is never notified
	_, err := f.s.Acknowledge(f.ctx, f.id, "b", "link", "customer")
	require.NoError(t, err)

	schedule := []time.Duration{time.Hour, 2 * time.Hour, 3 * time.Hour}
	elapse := func(d time.Duration, ids ...string) { // the clock moves on for ids since they were notified
		t.Helper()
		f.exec(`UPDATE ledger SET satisfied_at = satisfied_at - $3::interval WHERE incident_id = $1 AND tenant_id = ANY ($2)`, f.id, ids, d)
	}
	remind := func(pass int) store.PassPlanned {
		t.Helper()
		p := f.pass(pass, 0)
		p.ReminderAfter, p.EscalateFrom = schedule, 2
		return f.planAll(p)
	}
	reminders := func() map[string]int {
		t.Helper()
		out := map[string]int{}
		for _, id := range []string{"a", "b", "c", "d", "e"} {
			out[id] = f.row(1, id).Reminders
		}
		return out
	}

	elapse(90*time.Minute, "a", "b", "e")
	require.Equal(t, 2, f.ledger(time.Now(), schedule...).RemindersDue, "a and e")
	out := remind(2)
	require.Equal(t, store.PassPlanned{Pages: 1, Notices: 2, Tenants: 2, Done: true}, out)
	require.Equal(t, map[string][]int64{"a": {c["a"]}, "e": {c["e"]}}, f.recipients(2), "primaries only before the escalation")
	for _, n := range f.notices(2) {
		require.Nil(t, n.Phase, "a reminder delivers no phase")
		require.Equal(t, hashA, n.Hash)
	}
	require.Equal(t, map[string]int{"a": 1, "b": 0, "c": 0, "d": 0, "e": 1}, reminders())
	require.NotNil(t, f.row(1, "a").SatisfiedAt, "a reminder leaves the ledger notified")
	require.Zero(t, f.ledger(time.Now(), schedule...).RemindersDue)

	// Nothing more is due yet.
	require.Equal(t, store.PassPlanned{Done: true}, remind(3))
	require.Equal(t, map[string]int{"a": 1, "b": 0, "c": 0, "d": 0, "e": 1}, reminders())

	// An hour later for a: the second reminder escalates to the alternate too; e acknowledged.
	elapse(time.Hour, "a")
	_, err = f.s.Acknowledge(f.ctx, f.id, "e", "responder", "alice")
	require.NoError(t, err)
	elapse(time.Hour, "e")
	out = remind(4)
	require.Equal(t, 2, out.Notices)
	require.Equal(t, map[string][]int64{"a": {c["a"], altA}}, f.recipients(4))
	require.Equal(t, map[string]int{"a": 2, "b": 0, "c": 0, "d": 0, "e": 1}, reminders())

	elapse(time.Hour, "a")
	require.Equal(t, 2, remind(5).Notices)
	require.Equal(t, map[string][]int64{"a": {c["a"], altA}}, f.recipients(5))
	elapse(10*time.Hour, "a")
	require.Equal(t, store.PassPlanned{Done: true}, remind(6), "the schedule is used up")
	require.Equal(t, map[string]int{"a": 3, "b": 0, "c": 0, "d": 0, "e": 1}, reminders())

	// Claimed reminders carry the reminder kind and no phase; sending them leaves the ledger alone.
	before := f.row(1, "a")
	sent := f.sendAll(4)
	require.Len(t, sent["a"], 2)
	after := f.row(1, "a")
	require.Equal(t, before.SatisfiedAt, after.SatisfiedAt)
	rounds, err := f.s.Rounds(f.ctx, f.id)
	require.NoError(t, err)
	kinds := map[int]string{}
	for _, r := range rounds {
		kinds[r.Round] = r.Kind
	}
	require.Equal(t, map[int]string{1: "initial", 2: "reminder", 3: "reminder", 4: "reminder", 5: "reminder", 6: "reminder"}, kinds)
	require.Equal(t, "notified", f.states(1)["a"])
}

// An update sent after the first notice's link expired carries a link that works: a tenant
// must be able to acknowledge what it was just sent.
func TestLaterPassesCarryALiveAcknowledgementLink(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t, fixtureOpts{})
	f.simple("a")
	f.scope("a")
	f.approveAndRelease(hashA, 1)
	p := f.pass(1, 1)
	p.TokenTTL = 30 * 24 * time.Hour
	f.planAll(p)
	first, err := f.s.ClaimPage(f.ctx, f.id, 1, 0, f.secret, time.Minute)
	require.NoError(t, err)
	require.Len(t, first.Recipients, 1)
	require.NoError(t, f.s.MarkSent(f.ctx, f.id, []int64{first.Recipients[0].NoticeID}, "msg-1"))
	_, err = f.s.LookupAck(f.ctx, first.Recipients[0].Token)
	require.NoError(t, err)

	// Thirty-one days on, the first link has expired and an update goes out.
	f.exec(`UPDATE ack_tokens SET expires_at = now() - interval '1 day' WHERE incident_id = $1`, f.id)
	phase, err := f.s.OpenPhase(f.ctx, f.id, store.PhaseUpdate, "alice")
	require.NoError(t, err)
	released, _ := f.release(hashA, 1)
	require.Equal(t, 1, released)
	p = f.pass(2, phase)
	p.TokenTTL = 30 * 24 * time.Hour
	require.Equal(t, 1, f.planAll(p).Notices)
	update, err := f.s.ClaimPage(f.ctx, f.id, 2, 0, f.secret, time.Minute)
	require.NoError(t, err)
	require.Len(t, update.Recipients, 1)
	target, err := f.s.LookupAck(f.ctx, update.Recipients[0].Token)
	require.NoError(t, err, "the update's acknowledgement link must not be expired")
	require.Equal(t, "a", target.TenantID)
}

// A pass planned in lanes, every lane at the same time, plans each contact once: lane l
// takes the tenants whose id hashes to l and numbers its pages l, l + lanes, … from 0 on
// without gaps, and the last lane to finish records the pass as planned, once.
func TestPassLanesPlanEachContactOnceAtTheSameTime(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t, fixtureOpts{})
	var ids []string
	for i := 1; i <= 300; i++ {
		ids = append(ids, fmt.Sprintf("t%03d", i))
	}
	f.simple(ids...)
	for _, id := range ids[:40] {
		f.contact(id, "primary", "de") // a second primary, in another locale: another page
	}
	f.scope(ids...)
	f.approveAndRelease(hashA, 1)
	const lanes = 3
	p := f.pass(1, 1)
	p.Chunk, p.PageSize, p.Lanes = 20, 7, lanes
	results := make([]store.PassPlanned, lanes)
	errs := make([]error, lanes)
	var wg sync.WaitGroup
	for lane := range lanes {
		wg.Go(func() {
			lp := p
			lp.Lane = lane
			for range 1000 {
				out, err := f.s.PlanStep(f.ctx, lp, f.secret)
				if err != nil {
					errs[lane] = err
					return
				}
				if results[lane] = out; out.Done {
					return
				}
			}
		})
	}
	wg.Wait()
	for lane := range lanes {
		require.NoError(t, errs[lane], "lane %d", lane)
	}
	perContact := map[int64]int{}
	pagesOf := map[int]map[int]int{} // lane → page → notices
	for _, n := range f.notices(1) {
		perContact[n.Contact]++
		lane := n.Page % lanes
		if pagesOf[lane] == nil {
			pagesOf[lane] = map[int]int{}
		}
		pagesOf[lane][n.Page]++
	}
	require.Len(t, perContact, 340)
	for c, n := range perContact {
		require.Equal(t, 1, n, "contact %d", c)
	}
	total := 0
	for lane, r := range results {
		require.True(t, r.Done)
		require.Len(t, pagesOf[lane], r.Pages, "lane %d", lane)
		for k := range r.Pages {
			require.Positive(t, pagesOf[lane][lane+lanes*k], "lane %d has page %d", lane, lane+lanes*k)
			require.LessOrEqual(t, pagesOf[lane][lane+lanes*k], 7)
		}
		total += r.Notices
	}
	require.Equal(t, 340, total)
	var wrongLane, audits, planned, tokens int
	require.NoError(t, f.s.Pool().QueryRow(f.ctx, `SELECT
			(SELECT count(*) FROM notices WHERE incident_id = $1 AND mod(page, 3) <> mod(hashtext(tenant_id) & 2147483647, 3)),
			(SELECT count(*) FROM audit_log WHERE incident_id = $1 AND action = 'pass.planned' AND (detail ->> 'notices')::int = 340
			   AND (detail ->> 'lanes')::int = 3),
			(SELECT planned FROM notice_rounds WHERE incident_id = $1 AND round = 1),
			(SELECT count(*) FROM ack_tokens WHERE incident_id = $1)`, f.id).Scan(&wrongLane, &audits, &planned, &tokens))
	require.Zero(t, wrongLane, "notices on a page of another lane")
	require.Equal(t, 1, audits)
	require.Equal(t, 340, planned)
	require.Equal(t, 300, tokens)

	// A pass keeps its lanes; a lane is one of them.
	p.Lanes, p.Lane = 2, 0
	_, err := f.s.PlanStep(f.ctx, p, f.secret)
	require.ErrorContains(t, err, "3, as pass 1 was started with")
	p.Lanes, p.Lane = 3, 3
	_, err = f.s.PlanStep(f.ctx, p, f.secret)
	require.ErrorContains(t, err, "0 to 2")
	require.ErrorIs(t, err, store.ErrInvalidInput)
}
