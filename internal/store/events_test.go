package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/testenv"
)

// deliveryFixture is one tenant with a primary and an alternate contact, an incident and its
// first notification round, written with plain SQL.
type deliveryFixture struct {
	s          *store.Store
	incidentID string
	tenantID   string
	primary    int64
	alternate  int64
	contacts   int
}

func newDeliveryFixture(t *testing.T) *deliveryFixture {
	t.Helper()
	ctx := context.Background()
	fx := &deliveryFixture{s: testenv.Store(t), incidentID: "INC-TEST-0001", tenantID: "acme"}
	pool := fx.s.Pool()
	_, err := pool.Exec(ctx, `INSERT INTO tenants (id, name, country, locale, notice_sla_hours)
		VALUES ($1, 'Acme GmbH', 'DE', 'de', 72)`, fx.tenantID)
	require.NoError(t, err)
	fx.primary = fx.addContact(t, "primary")
	fx.alternate = fx.addContact(t, "alternate")
	_, err = pool.Exec(ctx, `INSERT INTO incidents (id, declaration_hash, title, severity, aware_at, declared_by)
		VALUES ($1, 'test-hash', 'Credential exposure', 'high', now() - interval '2 hours', 'alice')`, fx.incidentID)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO notice_rounds (incident_id, round, kind, scope_version, content_hash)
		VALUES ($1, 1, 'initial', 1, 'content-hash')`, fx.incidentID)
	require.NoError(t, err)
	return fx
}

func (fx *deliveryFixture) addContact(t *testing.T, kind string) int64 {
	t.Helper()
	fx.contacts++
	var id int64
	err := fx.s.Pool().QueryRow(context.Background(), `INSERT INTO contacts (tenant_id, email, name, kind)
		VALUES ($1, $2, 'Contact', $3) RETURNING id`,
		fx.tenantID, fmt.Sprintf("contact%d@acme.example.com", fx.contacts), kind).Scan(&id)
	require.NoError(t, err)
	return id
}

// addNotice writes a notice of round 1 to contactID in status, with messageID as its provider
// message id when not empty.
func (fx *deliveryFixture) addNotice(t *testing.T, contactID int64, status, messageID string) int64 {
	t.Helper()
	var id int64
	err := fx.s.Pool().QueryRow(context.Background(), `INSERT INTO notices
			(incident_id, round, tenant_id, contact_id, page, locale, status, provider_message_id)
		VALUES ($1, 1, $2, $3, 0, 'de', $4, nullif($5, '')) RETURNING id`,
		fx.incidentID, fx.tenantID, contactID, status, messageID).Scan(&id)
	require.NoError(t, err)
	return id
}

type noticeState struct {
	Status    string
	MessageID string
	StatusAt  *time.Time
	SentAt    *time.Time
}

func (fx *deliveryFixture) notice(t *testing.T, id int64) noticeState {
	t.Helper()
	var n noticeState
	err := fx.s.Pool().QueryRow(context.Background(), `SELECT status, coalesce(provider_message_id, ''), status_at, sent_at
		FROM notices WHERE id = $1`, id).Scan(&n.Status, &n.MessageID, &n.StatusAt, &n.SentAt)
	require.NoError(t, err)
	return n
}

type contactState struct {
	UndeliverableAt *time.Time
	Reason          *string
}

func (fx *deliveryFixture) contact(t *testing.T, id int64) contactState {
	t.Helper()
	var c contactState
	err := fx.s.Pool().QueryRow(context.Background(), `SELECT undeliverable_at, undeliverable_reason
		FROM contacts WHERE id = $1`, id).Scan(&c.UndeliverableAt, &c.Reason)
	require.NoError(t, err)
	return c
}

func (fx *deliveryFixture) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, fx.s.Pool().QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

var eventBase = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// ev builds an event for notice at eventBase plus minute minutes.
func ev(id string, notice int64, name string, minute int) store.DeliveryEvent {
	return store.DeliveryEvent{
		SGEventID:   id,
		NoticeID:    notice,
		Event:       name,
		OccurredAt:  eventBase.Add(time.Duration(minute) * time.Minute),
		SGMessageID: "msg-abc.filter0001.1.0",
	}
}

func TestApplyDeliveryEventsMovesStatusForwardOnly(t *testing.T) {
	t.Parallel()
	type step struct {
		event  string
		minute int
	}
	cases := []struct {
		name    string
		initial string
		batches [][]step
		want    string
		atMin   int // minute of the event that set the final status
	}{
		{"processed confirms a send in flight", "sending", [][]step{{{"processed", 1}}}, "sent", 1},
		{"processed confirms a pending notice", "pending", [][]step{{{"processed", 1}}}, "sent", 1},
		{"processed then delivered in one batch", "sending", [][]step{{{"processed", 1}, {"delivered", 2}}}, "delivered", 2},
		{"delivered before processed in one batch", "sent", [][]step{{{"delivered", 2}, {"processed", 1}}}, "delivered", 2},
		{"deferred then delivered", "sent", [][]step{{{"deferred", 1}}, {{"delivered", 5}}}, "delivered", 5},
		{"late deferred after delivered is ignored", "sent", [][]step{{{"delivered", 5}}, {{"deferred", 1}}}, "delivered", 5},
		{"late processed after delivered is ignored", "sent", [][]step{{{"delivered", 5}}, {{"processed", 1}}}, "delivered", 5},
		{"bounce after delivered wins", "sent", [][]step{{{"delivered", 1}}, {{"bounce", 9}}}, "bounced", 9},
		{"delivered after bounce is ignored", "sent", [][]step{{{"bounce", 1}}, {{"delivered", 9}}}, "bounced", 1},
		{"dropped is final", "sending", [][]step{{{"dropped", 1}}, {{"delivered", 2}, {"deferred", 3}}}, "dropped", 1},
		{"bounce after dropped keeps dropped", "sent", [][]step{{{"dropped", 1}}, {{"bounce", 2}}}, "dropped", 1},
		{"engagement events leave the status", "delivered", [][]step{{{"open", 3}, {"click", 4}}}, "delivered", -1},
		{"delivered settles a send that timed out", "failed", [][]step{{{"delivered", 2}}}, "delivered", 2},
	}
	fx := newDeliveryFixture(t)
	ctx := context.Background()
	for i, tc := range cases {
		contact := fx.addContact(t, "alternate")
		notice := fx.addNotice(t, contact, tc.initial, "")
		for b, batch := range tc.batches {
			events := make([]store.DeliveryEvent, len(batch))
			for j, st := range batch {
				events[j] = ev(fmt.Sprintf("case%d-batch%d-%d", i, b, j), notice, st.event, st.minute)
			}
			res, err := fx.s.ApplyDeliveryEvents(ctx, events)
			require.NoError(t, err, tc.name)
			require.Equal(t, len(batch), res.Applied, tc.name)
		}
		got := fx.notice(t, notice)
		require.Equal(t, tc.want, got.Status, tc.name)
		if tc.atMin >= 0 {
			require.NotNil(t, got.StatusAt, tc.name)
			require.True(t, eventBase.Add(time.Duration(tc.atMin)*time.Minute).Equal(*got.StatusAt), "%s: status_at %v", tc.name, got.StatusAt)
			require.Equal(t, "msg-abc", got.MessageID, tc.name)
			require.NotNil(t, got.SentAt, tc.name)
		} else {
			require.Nil(t, got.StatusAt, tc.name)
		}
	}
}

func TestApplyDeliveryEventsKeepsProviderMessageID(t *testing.T) {
	t.Parallel()
	fx := newDeliveryFixture(t)
	notice := fx.addNotice(t, fx.primary, "sent", "from-the-sender")
	_, err := fx.s.ApplyDeliveryEvents(context.Background(), []store.DeliveryEvent{ev("e1", notice, "delivered", 1)})
	require.NoError(t, err)
	got := fx.notice(t, notice)
	require.Equal(t, "delivered", got.Status)
	require.Equal(t, "from-the-sender", got.MessageID)
}

func TestApplyDeliveryEventsAppliesDuplicatesOnce(t *testing.T) {
	t.Parallel()
	fx := newDeliveryFixture(t)
	ctx := context.Background()
	notice := fx.addNotice(t, fx.primary, "sending", "")
	batch := []store.DeliveryEvent{
		ev("e-processed", notice, "processed", 1),
		ev("e-delivered", notice, "delivered", 2),
		ev("e-delivered", notice, "delivered", 2), // repeated inside the batch
	}
	first, err := fx.s.ApplyDeliveryEvents(ctx, batch)
	require.NoError(t, err)
	require.Equal(t, store.ApplyResult{
		Received: 3, Applied: 2, Duplicates: 1, Notices: 1,
		Events: map[string]int{"processed": 1, "delivered": 1},
	}, first)
	before := fx.notice(t, notice)

	// SendGrid posting the same batch again changes nothing.
	for range 2 {
		again, err := fx.s.ApplyDeliveryEvents(ctx, batch)
		require.NoError(t, err)
		require.Equal(t, store.ApplyResult{Received: 3, Duplicates: 3, Events: map[string]int{}}, again)
	}
	require.Equal(t, before, fx.notice(t, notice))
	require.Equal(t, 2, fx.count(t, `SELECT count(*) FROM delivery_events WHERE notice_id = $1`, notice))
	require.Equal(t, 1, fx.count(t, `SELECT count(*) FROM audit_log WHERE action = 'delivery.events_applied'`))
}

func TestApplyDeliveryEventsConcurrentRepeatsApplyOnce(t *testing.T) {
	t.Parallel()
	fx := newDeliveryFixture(t)
	ctx := context.Background()
	notice := fx.addNotice(t, fx.primary, "sending", "")
	batch := []store.DeliveryEvent{ev("c-processed", notice, "processed", 1), ev("c-bounce", notice, "bounce", 2)}
	var wg sync.WaitGroup
	results := make([]store.ApplyResult, 6)
	errs := make([]error, len(results))
	for i := range results {
		wg.Go(func() { results[i], errs[i] = fx.s.ApplyDeliveryEvents(ctx, batch) })
	}
	wg.Wait()
	applied, undeliverable := 0, 0
	for i := range results {
		require.NoError(t, errs[i])
		applied += results[i].Applied
		undeliverable += results[i].Undeliverable
	}
	require.Equal(t, 2, applied)
	require.Equal(t, 1, undeliverable)
	require.Equal(t, "bounced", fx.notice(t, notice).Status)
	require.Equal(t, 2, fx.count(t, `SELECT count(*) FROM delivery_events`))
	rep, err := fx.s.VerifyAudit(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK, rep.Problem)
}

func TestApplyDeliveryEventsSkipsUnknownAndInvalid(t *testing.T) {
	t.Parallel()
	fx := newDeliveryFixture(t)
	ctx := context.Background()
	notice := fx.addNotice(t, fx.primary, "sent", "")
	noTime := ev("no-time", notice, "delivered", 0)
	noTime.OccurredAt = time.Time{}
	withNUL := ev("nul-reason", notice, "bounce", 0)
	withNUL.Reason = "bad\x00reason"
	res, err := fx.s.ApplyDeliveryEvents(ctx, []store.DeliveryEvent{
		ev("u-missing-arg", 0, "delivered", 1),      // notice_id absent or not a number
		ev("u-no-such-notice", 987654, "bounce", 1), // not one of ours
		ev("", notice, "bounce", 1),
		ev(strings.Repeat("x", 201), notice, "bounce", 1),
		ev("long-name", notice, strings.Repeat("y", 41), 1),
		noTime,
		withNUL,
		ev("ok", notice, "delivered", 3),
	})
	require.NoError(t, err)
	require.Equal(t, store.ApplyResult{
		Received: 8, Applied: 1, Unknown: 2, Invalid: 5, Notices: 1,
		Events: map[string]int{"delivered": 1},
	}, res)
	require.Equal(t, "delivered", fx.notice(t, notice).Status)
	require.Equal(t, 1, fx.count(t, `SELECT count(*) FROM delivery_events`))
	require.Nil(t, fx.contact(t, fx.primary).UndeliverableAt)

	res, err = fx.s.ApplyDeliveryEvents(ctx, []store.DeliveryEvent{ev("u-only", 42, "bounce", 1)})
	require.NoError(t, err)
	require.Equal(t, store.ApplyResult{Received: 1, Unknown: 1, Events: map[string]int{}}, res)

	res, err = fx.s.ApplyDeliveryEvents(ctx, nil)
	require.NoError(t, err)
	require.Zero(t, res.Received)
}

func TestApplyDeliveryEventsMarksContactUndeliverable(t *testing.T) {
	t.Parallel()
	fx := newDeliveryFixture(t)
	ctx := context.Background()
	bounced := fx.addNotice(t, fx.primary, "sent", "")
	dropContact := fx.addContact(t, "alternate")
	dropped := fx.addNotice(t, dropContact, "sending", "")
	delivered := fx.addNotice(t, fx.alternate, "sent", "")

	bounce := ev("b1", bounced, "bounce", 4)
	bounce.Reason = "550 5.1.1 mailbox does not exist"
	res, err := fx.s.ApplyDeliveryEvents(ctx, []store.DeliveryEvent{
		ev("b0", bounced, "processed", 1),
		bounce,
		ev("d1", dropped, "dropped", 2), // no reason given
		ev("ok1", delivered, "delivered", 3),
	})
	require.NoError(t, err)
	require.Equal(t, 3, res.Notices)
	require.Equal(t, 2, res.Undeliverable)

	require.Equal(t, "bounced", fx.notice(t, bounced).Status)
	require.Equal(t, "dropped", fx.notice(t, dropped).Status)
	require.Equal(t, "delivered", fx.notice(t, delivered).Status)

	p := fx.contact(t, fx.primary)
	require.NotNil(t, p.UndeliverableAt)
	require.True(t, eventBase.Add(4*time.Minute).Equal(*p.UndeliverableAt))
	require.Equal(t, "550 5.1.1 mailbox does not exist", *p.Reason)
	d := fx.contact(t, dropContact)
	require.NotNil(t, d.UndeliverableAt)
	require.Equal(t, "dropped", *d.Reason)
	require.Nil(t, fx.contact(t, fx.alternate).UndeliverableAt)

	// A later bounce keeps the first failure on record.
	later := ev("b2", bounced, "bounce", 30)
	later.Reason = "another reason"
	res, err = fx.s.ApplyDeliveryEvents(ctx, []store.DeliveryEvent{later})
	require.NoError(t, err)
	require.Equal(t, 1, res.Applied)
	require.Zero(t, res.Undeliverable)
	require.Equal(t, "550 5.1.1 mailbox does not exist", *fx.contact(t, fx.primary).Reason)
}

func TestApplyDeliveryEventsAuditsCountsOnly(t *testing.T) {
	t.Parallel()
	fx := newDeliveryFixture(t)
	ctx := context.Background()
	notice := fx.addNotice(t, fx.primary, "sent", "")
	bounce := ev("a1", notice, "bounce", 1)
	bounce.Reason = "550 <contact1@acme.example.com> unknown"
	_, err := fx.s.ApplyDeliveryEvents(ctx, []store.DeliveryEvent{bounce, ev("a2", 777, "delivered", 1)})
	require.NoError(t, err)

	var actor, detail string
	var incident *string
	err = fx.s.Pool().QueryRow(ctx, `SELECT actor, incident_id, detail::text FROM audit_log
		WHERE action = 'delivery.events_applied'`).Scan(&actor, &incident, &detail)
	require.NoError(t, err)
	require.Equal(t, "sendgrid", actor)
	require.Nil(t, incident)
	require.NotContains(t, detail, "@")
	require.JSONEq(t, `{"received": 2, "applied": 1, "duplicates": 0, "unknown": 1, "invalid": 0,
		"notices_updated": 1, "contacts_undeliverable": 1, "events": {"bounce": 1}}`, detail)
}

func TestDeliveryEventsKeepTheLedger(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t, fixtureOpts{})
	c := map[string]int64{}
	for _, tc := range []struct{ tenant, name, kind string }{
		{"solo", "solo", "primary"}, {"solo", "solo-alt", "alternate"},
		{"pair", "pair1", "primary"}, {"pair", "pair2", "primary"},
		{"dlv", "dlv", "primary"}, {"refused", "refused", "primary"},
	} {
		if _, err := f.s.GetTenant(f.ctx, tc.tenant); err != nil {
			f.tenant(tc.tenant, "en", 72)
		}
		c[tc.name] = f.contact(tc.tenant, tc.kind, "")
	}
	f.scope("dlv", "pair", "refused", "solo")
	f.approveAndRelease(hashA, 1)
	f.planAll(f.pass(1, 1))
	claimed := f.claim(1)
	require.NoError(t, f.s.MarkSent(f.ctx, f.id, slices.Concat(claimed["solo"], claimed["pair"], claimed["dlv"]), "msg-1"))
	require.NoError(t, f.s.MarkFailed(f.ctx, f.id, claimed["refused"], "550 refused"))
	require.Equal(t, 3, f.ledger(time.Now()).Initial().Notified)
	pairNotified := f.row(1, "pair").SatisfiedAt
	soloSent := f.row(1, "solo").FirstSentAt
	require.NotNil(t, soloSent)

	bounce := ev("solo-bounce", f.noticeOf(1, c["solo"]).ID, "bounce", 5)
	bounce.Reason = "550 5.1.1 no such mailbox"
	batch := []store.DeliveryEvent{
		bounce,
		ev("pair1-bounce", f.noticeOf(1, c["pair1"]).ID, "bounce", 6),
		ev("pair2-processed", f.noticeOf(1, c["pair2"]).ID, "processed", 1),
		ev("dlv-delivered", f.noticeOf(1, c["dlv"]).ID, "delivered", 7),
	}
	res, err := f.s.ApplyDeliveryEvents(f.ctx, batch)
	require.NoError(t, err)
	require.Equal(t, 4, res.Applied)
	require.Equal(t, 2, res.Undeliverable)
	require.Equal(t, map[string]int{f.id: 1}, res.Reopened, "only solo is owed again")

	solo := f.row(1, "solo")
	require.Nil(t, solo.SatisfiedAt)
	require.NotNil(t, solo.BouncedAt)
	require.True(t, eventBase.Add(5*time.Minute).Equal(*solo.BouncedAt))
	require.Equal(t, soloSent, solo.FirstSentAt)
	require.Equal(t, pairNotified, f.row(1, "pair").SatisfiedAt, "pair2 still reached pair")
	dlv := f.row(1, "dlv")
	require.NotNil(t, dlv.DeliveredAt)
	require.True(t, eventBase.Add(7*time.Minute).Equal(*dlv.DeliveredAt))
	require.NotNil(t, dlv.SatisfiedAt)
	require.NotNil(t, undeliverableAt(t, f, c["solo"]))
	require.NotNil(t, undeliverableAt(t, f, c["pair1"]))
	require.Nil(t, undeliverableAt(t, f, c["pair2"]))

	l := f.ledger(time.Now()).Initial()
	require.Equal(t, []int{2, 1, 1, 1, 2, 2}, []int{l.Notified, l.Delivered, l.Bounced, l.Failed, l.Owed, l.Plannable})
	require.Equal(t, map[string]string{"solo": "bounced", "pair": "notified", "dlv": "delivered", "refused": "failed"}, f.states(1))

	// SendGrid posting the batch again changes nothing and reopens nothing.
	again, err := f.s.ApplyDeliveryEvents(f.ctx, batch)
	require.NoError(t, err)
	require.Zero(t, again.Applied)
	require.Nil(t, again.Reopened)

	// Events that move no notice (opens, a late processed) are recorded without a write
	// to the ledger.
	written := func() (v string) {
		require.NoError(t, f.s.Pool().QueryRow(f.ctx, `SELECT string_agg(xmin::text, ',' ORDER BY tenant_id) FROM ledger WHERE incident_id = $1`, f.id).Scan(&v))
		return v
	}
	before := written()
	quiet, err := f.s.ApplyDeliveryEvents(f.ctx, []store.DeliveryEvent{ev("dlv-open", f.noticeOf(1, c["dlv"]).ID, "open", 8),
		ev("pair2-processed-late", f.noticeOf(1, c["pair2"]).ID, "processed", 8)})
	require.NoError(t, err)
	require.Equal(t, 2, quiet.Applied)
	require.Zero(t, quiet.Notices)
	require.Equal(t, before, written(), "no ledger row rewritten")

	// The next pass goes to solo's alternate and retries the refused notice, nothing else.
	out := f.planAll(f.pass(2, 1))
	require.Equal(t, 2, out.Notices)
	require.Equal(t, map[string][]int64{"solo": {c["solo-alt"]}, "refused": {c["refused"]}}, f.recipients(2))
	f.sendAll(2)
	solo = f.row(1, "solo")
	require.NotNil(t, solo.SatisfiedAt)
	require.True(t, solo.SatisfiedAt.After(*soloSent), "notified by the alternate's send")
	require.Equal(t, "notified", f.states(1)["solo"])
	require.Equal(t, 4, f.ledger(time.Now()).Initial().Notified)

	// pair's last primary bounces too: owed again, and nobody is left to try.
	res, err = f.s.ApplyDeliveryEvents(f.ctx, []store.DeliveryEvent{ev("pair2-bounce", f.noticeOf(1, c["pair2"]).ID, "bounce", 9)})
	require.NoError(t, err)
	require.Equal(t, map[string]int{f.id: 1}, res.Reopened)
	require.Nil(t, f.row(1, "pair").SatisfiedAt)
	out = f.planAll(f.pass(3, 1))
	require.Equal(t, store.PassPlanned{Unreachable: 1, Done: true}, out)
	require.NotNil(t, f.row(1, "pair").UnreachableAt)
	require.Equal(t, "unreachable", f.states(1)["pair"])
}

// undeliverableAt returns when contact id was marked undeliverable (nil: it was not).
func undeliverableAt(t *testing.T, f *ledgerFixture, id int64) *time.Time {
	t.Helper()
	var at *time.Time
	require.NoError(t, f.s.Pool().QueryRow(f.ctx, `SELECT undeliverable_at FROM contacts WHERE id = $1`, id).Scan(&at))
	return at
}

// A delivery of a notice that was already notified records only the tenant's first
// delivery; one of a notice refused before (its send had timed out, say) notifies the
// tenant too, and a later delivery leaves the first one.
func TestDeliveriesNotifyOrOnlyRecordTheFirstDelivery(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t, fixtureOpts{})
	c := f.simple("sent", "refused")
	second := f.contact("sent", "primary", "")
	f.scope("sent", "refused")
	f.approveAndRelease(hashA, 1)
	f.planAll(f.pass(1, 1))
	claimed := f.claim(1)
	require.NoError(t, f.s.MarkSent(f.ctx, f.id, claimed["sent"], "msg-1"))
	require.NoError(t, f.s.MarkFailed(f.ctx, f.id, claimed["refused"], "timed out"))
	notified := f.row(1, "sent").SatisfiedAt
	require.NotNil(t, notified)
	require.Nil(t, f.row(1, "refused").SatisfiedAt)

	res, err := f.s.ApplyDeliveryEvents(f.ctx, []store.DeliveryEvent{
		ev("sent-delivered", f.noticeOf(1, c["sent"]).ID, "delivered", 3),
		ev("refused-delivered", f.noticeOf(1, c["refused"]).ID, "delivered", 4),
	})
	require.NoError(t, err)
	require.Equal(t, 2, res.Notices)
	sent := f.row(1, "sent")
	require.Equal(t, notified, sent.SatisfiedAt)
	require.True(t, eventBase.Add(3*time.Minute).Equal(*sent.DeliveredAt))
	refused := f.row(1, "refused")
	require.NotNil(t, refused.SatisfiedAt, "the delivery says the send went through")
	require.True(t, eventBase.Add(4*time.Minute).Equal(*refused.SatisfiedAt))
	require.True(t, eventBase.Add(4*time.Minute).Equal(*refused.DeliveredAt))
	require.Nil(t, refused.FailedAt)
	require.Nil(t, refused.LastError)

	_, err = f.s.ApplyDeliveryEvents(f.ctx, []store.DeliveryEvent{ev("second-delivered", f.noticeOf(1, second).ID, "delivered", 9)})
	require.NoError(t, err)
	require.True(t, eventBase.Add(3*time.Minute).Equal(*f.row(1, "sent").DeliveredAt), "the first delivery stays")
	require.Equal(t, map[string]string{"sent": "delivered", "refused": "delivered"}, f.states(1))
}
