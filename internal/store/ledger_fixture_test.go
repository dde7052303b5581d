package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/testenv"
)

// Content hashes of two notices (approvals require 64 hex digits).
var (
	hashA = strings.Repeat("a", 64)
	hashB = strings.Repeat("b", 64)
)

// testPartner covers the tenants that use its service.
var testPartner = store.Partner{Name: "mdm-team", DisplayName: "MDM team", TeamEmails: []string{"team@partner.example"},
	Service: "device-management", ResponseDeadlineHours: 24}

// ledgerFixture is one incident on a fresh database, with tenants and contacts written by
// hand so that every expectation can be counted on one's fingers.
type ledgerFixture struct {
	t        *testing.T
	ctx      context.Context
	s        *store.Store
	id       string
	awareAt  time.Time
	secret   []byte
	contacts int
	people   map[string]string // person → actor of their approver key
}

type fixtureOpts struct {
	awareAgo time.Duration // how long before now the incident became known (default 1h)
	partner  bool          // the incident has testPartner
}

func newLedgerFixture(t *testing.T, o fixtureOpts) *ledgerFixture {
	t.Helper()
	ctx := context.Background()
	f := &ledgerFixture{t: t, ctx: ctx, s: testenv.Store(t)}
	if o.awareAgo == 0 {
		o.awareAgo = time.Hour
	}
	d := store.Declaration{Title: "Credential exposure", Severity: "high", AwareAt: time.Now().Add(-o.awareAgo)}
	if o.partner {
		require.NoError(t, f.s.UpsertPartner(ctx, testPartner))
		d.Partner = testPartner.Name
	}
	inc, _, err := f.s.CreateIncident(ctx, "", d, "alice", time.Now())
	require.NoError(t, err)
	f.id, f.awareAt = inc.ID, inc.AwareAt
	f.secret, err = f.s.AckSecret(ctx, "")
	require.NoError(t, err)
	return f
}

// tenant adds a tenant with locale, notice SLA and services, and no contacts.
func (f *ledgerFixture) tenant(id, locale string, slaHours int, services ...string) {
	f.t.Helper()
	_, err := f.s.Pool().Exec(f.ctx, `INSERT INTO tenants (id, name, country, locale, services, notice_sla_hours)
		VALUES ($1, $1 || ' Ltd', 'DE', $2, $3, $4)`, id, locale, append([]string{}, services...), slaHours)
	require.NoError(f.t, err)
}

// contact adds a contact of kind (primary or alternate) with an optional own locale.
func (f *ledgerFixture) contact(tenant, kind, locale string) int64 {
	f.t.Helper()
	f.contacts++
	var id int64
	err := f.s.Pool().QueryRow(f.ctx, `INSERT INTO contacts (tenant_id, email, name, kind, locale) VALUES ($1, $2, 'Contact', $3, nullif($4, ''))
		RETURNING id`, tenant, fmt.Sprintf("c%d@%s.example", f.contacts, tenant), kind, locale).Scan(&id)
	require.NoError(f.t, err)
	return id
}

// simple adds tenants with one primary contact each, locale en and a 72-hour SLA.
func (f *ledgerFixture) simple(ids ...string) map[string]int64 {
	f.t.Helper()
	out := map[string]int64{}
	for _, id := range ids {
		f.tenant(id, "en", 72)
		out[id] = f.contact(id, "primary", "")
	}
	return out
}

func (f *ledgerFixture) undeliverable(contact int64) {
	f.t.Helper()
	_, err := f.s.Pool().Exec(f.ctx, `UPDATE contacts SET undeliverable_at = now(), undeliverable_reason = 'test' WHERE id = $1`, contact)
	require.NoError(f.t, err)
}

// scope resolves a new scope version of exactly the tenants ids.
func (f *ledgerFixture) scope(ids ...string) store.ScopeResult {
	f.t.Helper()
	res, err := f.s.ResolveScope(f.ctx, f.id, store.ScopeCriteria{TenantIDs: ids}, "alice")
	require.NoError(f.t, err)
	return res
}

// actor returns the actor of person's approver key, made on first use.
func (f *ledgerFixture) actor(person string) string {
	f.t.Helper()
	if a, ok := f.people[person]; ok {
		return a
	}
	_, k, err := f.s.CreateAPIKey(f.ctx, person, "approver", "test")
	require.NoError(f.t, err)
	if f.people == nil {
		f.people = map[string]string{}
	}
	f.people[person] = k.Actor()
	return k.Actor()
}

// approve has each person approve hash for version; a person's second approval is
// refused and changes nothing.
func (f *ledgerFixture) approve(hash string, version int, who ...string) {
	f.t.Helper()
	for _, w := range who {
		_, err := f.s.Approve(f.ctx, f.id, hash, version, f.actor(w))
		if err != nil && strings.Contains(err.Error(), "has already approved") {
			continue
		}
		require.NoError(f.t, err)
	}
}

func (f *ledgerFixture) release(hash string, version int) (released, waiting int) {
	f.t.Helper()
	released, waiting, err := f.s.Release(f.ctx, f.id, hash, version, "system")
	require.NoError(f.t, err)
	return released, waiting
}

// approveAndRelease has alice and bob approve hash for version and releases it.
func (f *ledgerFixture) approveAndRelease(hash string, version int) int {
	f.t.Helper()
	f.approve(hash, version, "alice", "bob")
	n, _ := f.release(hash, version)
	return n
}

// pass is a notice pass of phase (a reminder pass for phase 0) with roomy chunks and pages.
func (f *ledgerFixture) pass(pass, phase int) store.PassPlan {
	kind := store.RoundInitial
	switch {
	case phase == 0:
		kind = store.RoundReminder
	case phase > 1:
		kind = store.RoundFollowup
	}
	return store.PassPlan{IncidentID: f.id, Pass: pass, Kind: kind, Phase: phase, ScopeVersion: 1, Chunk: 100, PageSize: 100,
		Locales: []string{"de", "en", "es", "fr", "it"}, Fallback: "en", TokenTTL: 24 * time.Hour}
}

func (f *ledgerFixture) step(p store.PassPlan) store.PassPlanned {
	f.t.Helper()
	out, err := f.s.PlanStep(f.ctx, p, f.secret)
	require.NoError(f.t, err)
	return out
}

// planAll plans p to the end and returns where it stands.
func (f *ledgerFixture) planAll(p store.PassPlan) store.PassPlanned {
	f.t.Helper()
	for range 1000 {
		if out := f.step(p); out.Done {
			return out
		}
	}
	f.t.Fatalf("pass %d never finished planning", p.Pass)
	return store.PassPlanned{}
}

// noticeRow is one outbox row.
type noticeRow struct {
	ID      int64
	Tenant  string
	Contact int64
	Page    int
	Locale  string
	Hash    string
	Status  string
	Phase   *int
}

// notices lists the notices of round (every round when round is 0) in id order.
func (f *ledgerFixture) notices(round int) []noticeRow {
	f.t.Helper()
	rows, err := f.s.Pool().Query(f.ctx, `SELECT id, tenant_id, contact_id, page, locale, coalesce(content_hash, ''), status, phase
		FROM notices WHERE incident_id = $1 AND ($2 = 0 OR round = $2) ORDER BY id`, f.id, round)
	require.NoError(f.t, err)
	defer rows.Close()
	var out []noticeRow
	for rows.Next() {
		var n noticeRow
		require.NoError(f.t, rows.Scan(&n.ID, &n.Tenant, &n.Contact, &n.Page, &n.Locale, &n.Hash, &n.Status, &n.Phase))
		out = append(out, n)
	}
	require.NoError(f.t, rows.Err())
	return out
}

// recipients maps each tenant of round to the contacts it has notices for, in id order.
func (f *ledgerFixture) recipients(round int) map[string][]int64 {
	f.t.Helper()
	out := map[string][]int64{}
	for _, n := range f.notices(round) {
		out[n.Tenant] = append(out[n.Tenant], n.Contact)
	}
	for _, c := range out {
		slices.Sort(c)
	}
	return out
}

// noticeOf returns the only notice of round to contact.
func (f *ledgerFixture) noticeOf(round int, contact int64) noticeRow {
	f.t.Helper()
	var found []noticeRow
	for _, n := range f.notices(round) {
		if n.Contact == contact {
			found = append(found, n)
		}
	}
	require.Len(f.t, found, 1, "notices of round %d to contact %d", round, contact)
	return found[0]
}

// claim claims every page of round and returns the claimed notice ids by tenant.
func (f *ledgerFixture) claim(round int) map[string][]int64 {
	f.t.Helper()
	rows, err := f.s.Pool().Query(f.ctx, `SELECT DISTINCT page FROM notices WHERE incident_id = $1 AND round = $2 ORDER BY page`, f.id, round)
	require.NoError(f.t, err)
	pages, err := pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(f.t, err)
	out := map[string][]int64{}
	for _, page := range pages {
		cp, err := f.s.ClaimPage(f.ctx, f.id, round, page, f.secret, time.Minute)
		require.NoError(f.t, err)
		for _, r := range cp.Recipients {
			out[r.TenantID] = append(out[r.TenantID], r.NoticeID)
		}
	}
	return out
}

// sendAll claims every page of round and has SendGrid accept every notice.
func (f *ledgerFixture) sendAll(round int) map[string][]int64 {
	f.t.Helper()
	claimed := f.claim(round)
	var ids []int64
	for _, n := range claimed {
		ids = append(ids, n...)
	}
	require.NoError(f.t, f.s.MarkSent(f.ctx, f.id, ids, fmt.Sprintf("msg-round-%d", round)))
	return claimed
}

// ledgerRow is one tenant-phase of the ledger.
type ledgerRow struct {
	AddedVersion   int
	PartnerCovered bool
	Deadline       time.Time
	OwedSince      time.Time
	ContentHash    *string
	ScopeVersion   *int
	ReleasedAt     *time.Time
	FirstSentAt    *time.Time
	SatisfiedAt    *time.Time
	DeliveredAt    *time.Time
	BouncedAt      *time.Time
	UnreachableAt  *time.Time
	FailedAt       *time.Time
	LastError      *string
	RemovedAt      *time.Time
	RemovedVersion *int
	Reminders      int
}

func (f *ledgerFixture) row(phase int, tenant string) ledgerRow {
	f.t.Helper()
	var r ledgerRow
	err := f.s.Pool().QueryRow(f.ctx, `SELECT added_version, partner_covered, deadline, owed_since, content_hash, scope_version, released_at,
			first_sent_at, satisfied_at, delivered_at, bounced_at, unreachable_at, failed_at, last_error, removed_at, removed_version, reminders
		FROM ledger WHERE incident_id = $1 AND phase = $2 AND tenant_id = $3`, f.id, phase, tenant).
		Scan(&r.AddedVersion, &r.PartnerCovered, &r.Deadline, &r.OwedSince, &r.ContentHash, &r.ScopeVersion, &r.ReleasedAt,
			&r.FirstSentAt, &r.SatisfiedAt, &r.DeliveredAt, &r.BouncedAt, &r.UnreachableAt, &r.FailedAt, &r.LastError,
			&r.RemovedAt, &r.RemovedVersion, &r.Reminders)
	require.NoError(f.t, err, "ledger row phase %d tenant %s", phase, tenant)
	return r
}

// released lists the tenants of phase whose rows are released, in tenant order.
func (f *ledgerFixture) released(phase int) []string {
	f.t.Helper()
	return f.tenantsWhere(phase, `released_at IS NOT NULL`)
}

// tenantsWhere lists the tenants of phase whose ledger rows match cond, in tenant order.
func (f *ledgerFixture) tenantsWhere(phase int, cond string) []string {
	f.t.Helper()
	rows, err := f.s.Pool().Query(f.ctx, `SELECT tenant_id FROM ledger WHERE incident_id = $1 AND phase = $2 AND `+cond+` ORDER BY tenant_id`, f.id, phase)
	require.NoError(f.t, err)
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var s string
		require.NoError(f.t, rows.Scan(&s))
		out = append(out, s)
	}
	require.NoError(f.t, rows.Err())
	return out
}

func (f *ledgerFixture) exec(sql string, args ...any) {
	f.t.Helper()
	_, err := f.s.Pool().Exec(f.ctx, sql, args...)
	require.NoError(f.t, err)
}

func (f *ledgerFixture) ledger(now time.Time, reminderAfter ...time.Duration) store.LedgerStats {
	f.t.Helper()
	l, err := f.s.Ledger(f.ctx, f.id, now, reminderAfter)
	require.NoError(f.t, err)
	return l
}

// states maps each tenant of phase to its evidence state.
func (f *ledgerFixture) states(phase int) map[string]string {
	f.t.Helper()
	out := map[string]string{}
	require.NoError(f.t, f.s.TenantStatuses(f.ctx, f.id, phase, false, 0, time.Now(), func(ts store.TenantStatus) error {
		out[ts.TenantID] = ts.State
		return nil
	}))
	return out
}
