package activities_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.uber.org/zap"

	"github.com/breachflow/breachflow/activities"
	"github.com/breachflow/breachflow/internal/mail"
	"github.com/breachflow/breachflow/internal/mail/sink"
	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/tenants"
	"github.com/breachflow/breachflow/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type fixture struct {
	st      *store.Store
	sink    *sink.Sink
	sinkURL string
	acts    *activities.Activities
	env     *testsuite.TestActivityEnvironment
	id      string
}

// newFixture imports n tenants with one primary contact each, declares an incident with
// an approved draft and a scope over all of them.
func newFixture(t *testing.T, n int, apiKey string) *fixture {
	ctx := context.Background()
	st := testenv.Store(t)
	testenv.Tenants(t, st, tenants.Options{Tenants: n, ContactsPerTenant: 1, Seed: 5})
	// One locale, so that pages are filled to 1,000 (pages never mix locales).
	_, err := st.Pool().Exec(ctx, `UPDATE tenants SET locale = 'en'; UPDATE contacts SET locale = NULL`)
	require.NoError(t, err)

	sk, err := sink.New(sink.Config{APIKeys: []string{"SG.good"}}, nil)
	require.NoError(t, err)
	srv := httptest.NewServer(sk.Handler())
	t.Cleanup(srv.Close)
	sender, err := mail.NewSender(mail.Config{APIKey: apiKey, BaseURL: srv.URL, FromEmail: "notices@provider.example"}, nil)
	require.NoError(t, err)
	secret, err := st.AckSecret(ctx, "")
	require.NoError(t, err)
	acts := &activities.Activities{Store: st, Mail: sender, Logger: zap.NewNop(), Now: time.Now, PublicURL: "https://n.example", AckSecret: secret}

	inc, _, err := st.CreateIncident(ctx, "", store.Declaration{Title: "Exposure", Severity: "high", AwareAt: time.Now().Add(-time.Hour)}, "alice", time.Now())
	require.NoError(t, err)
	d := notice.Draft{Fields: notice.Fields{Reference: inc.ID, Title: "Exposure", AwareAt: inc.AwareAt, Nature: "n",
		DataCategories: []string{"names"}, DataSubjectCategories: []string{"staff"}, ApproxDataSubjects: 10, ApproxRecords: 10,
		Contact: notice.ContactPoint{Name: "DPO", Phone: "+1 555 0100"}, LikelyConsequences: "c", MeasuresTaken: "m", MeasuresProposed: "p"}}
	raw, err := json.Marshal(d)
	require.NoError(t, err)
	p, err := activities.ProposeDraft(ctx, st, inc.ID, raw, "alice", activities.DraftOptions{Sender: notice.Sender{Organisation: "Provider Cloud SE"}})
	require.NoError(t, err)
	hash := p.Hash
	stored, err := st.GetDraft(ctx, inc.ID, hash)
	require.NoError(t, err)
	require.NoError(t, st.SaveDraft(ctx, inc.ID, stored, hash, "alice"))
	_, err = st.ResolveScope(ctx, inc.ID, store.ScopeCriteria{Services: []string{"compute", "object-storage", "managed-postgres", "identity", "email-relay", "backup", tenants.PartnerService}}, "alice")
	require.NoError(t, err)
	for _, who := range []string{"alice", "bob"} {
		_, k, err := st.CreateAPIKey(ctx, who, "approver", "test")
		require.NoError(t, err)
		_, err = st.Approve(ctx, inc.ID, hash, 1, k.Actor())
		require.NoError(t, err)
	}
	released, waiting, err := st.Release(ctx, inc.ID, hash, 1, "system")
	require.NoError(t, err)
	require.Equal(t, n, released)
	require.Zero(t, waiting)

	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	f := &fixture{st: st, sink: sk, sinkURL: srv.URL, acts: acts, env: env, id: inc.ID}
	planned := f.plan(t)
	require.Equal(t, n, planned.Notices)
	require.True(t, planned.Done)
	return f
}

// plan plans pass 1 of phase 1 to the end, one step per 1,000 tenants.
func (f *fixture) plan(t *testing.T) activities.PlanStepResult {
	for {
		v, err := f.env.ExecuteActivity(f.acts.PlanStep, activities.PlanStepInput{IncidentID: f.id, Pass: 1, Kind: store.RoundInitial, Phase: 1,
			ScopeVersion: 1, Chunk: 1000, PageSize: 1000, TokenTTL: time.Hour})
		require.NoError(t, err)
		var p activities.PlanStepResult
		require.NoError(t, v.Get(&p))
		if p.Done {
			return p
		}
	}
}

func (f *fixture) send(page int) (activities.SendPageResult, error) {
	var r activities.SendPageResult
	v, err := f.env.ExecuteActivity(f.acts.SendPage, activities.SendPageInput{IncidentID: f.id, Round: 1, Page: page})
	if err != nil {
		return r, err
	}
	return r, v.Get(&r)
}

func (f *fixture) statuses(t *testing.T) map[string]int {
	rows, err := f.st.Pool().Query(context.Background(), `SELECT status, count(*) FROM notices WHERE incident_id = $1 GROUP BY status`, f.id)
	require.NoError(t, err)
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		require.NoError(t, rows.Scan(&s, &n))
		out[s] = n
	}
	return out
}

func TestRoundOf2500GoesOutAsThreeRequestsOncePerRecipient(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 2500, "SG.good")
	requests := 0
	for page := range 3 {
		r, err := f.send(page)
		require.NoError(t, err)
		requests += r.Requests
	}
	require.Equal(t, 3, requests)
	list := f.sink.Messages(sink.Query{Limit: sink.MaxListLimit})
	require.Equal(t, 2500, len(list.Messages))
	seen := map[string]bool{}
	for _, m := range list.Messages {
		to := m.To[0].Email
		require.False(t, seen[to], "twice: %s", to)
		seen[to] = true
		// Each message carries its own tenant's acknowledgement link and name.
		tenant := strings.TrimSuffix(to[strings.IndexByte(to, '@')+1:], ".example")
		require.Contains(t, m.Text, "https://n.example/ack/")
		require.NotContains(t, m.Text, "-bf_")
		got, err := f.st.GetTenant(context.Background(), tenant)
		require.NoError(t, err)
		require.Contains(t, m.Text, got.Name)
		require.NotContains(t, m.CustomArgs["notice_id"], "@")
	}
	// A retried page sends nothing more.
	r, err := f.send(0)
	require.NoError(t, err)
	require.Zero(t, r.Sent)
	require.Equal(t, 1000, r.AlreadySent)
	require.Equal(t, 2500, len(f.sink.Messages(sink.Query{Limit: sink.MaxListLimit}).Messages))
	require.Equal(t, map[string]int{"sent": 2500}, f.statuses(t))
}

func TestServerErrorsAreRetryableAndSendNothingTwice(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 1500, "SG.good")
	_, err := f.send(0)
	require.NoError(t, err)
	require.NoError(t, f.sink.SetFaults(sink.Faults{ServerErrorShare: 1}))
	_, err = f.send(1)
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%v", err)
	require.False(t, appErr.NonRetryable())
	require.Equal(t, "SendGridUnavailable", appErr.Type())
	require.NoError(t, f.sink.SetFaults(sink.Faults{}))
	// The retry sends page 1 once; page 0 is not sent again.
	_, err = f.send(1)
	require.NoError(t, err)
	_, err = f.send(0)
	require.NoError(t, err)
	require.Equal(t, 1500, len(f.sink.Messages(sink.Query{Limit: sink.MaxListLimit}).Messages))
	require.Equal(t, map[string]int{"sent": 1500}, f.statuses(t))
	l, err := f.st.Ledger(context.Background(), f.id, time.Now(), nil)
	require.NoError(t, err)
	require.Equal(t, 1500, l.Initial().Notified)
	require.Zero(t, l.Initial().Failed, "a temporary error leaves nothing failed once the retry went out")
}

func TestRateLimitWaitsForTheReset(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 10, "SG.good")
	require.NoError(t, f.sink.SetFaults(sink.Faults{RateLimitShare: 1, RateLimitResetSeconds: 7}))
	_, err := f.send(0)
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%v", err)
	require.Equal(t, "SendGridRateLimited", appErr.Type())
	require.False(t, appErr.NonRetryable())
	require.InDelta(t, 7, appErr.NextRetryDelay().Seconds(), 1.5)
	require.NoError(t, f.sink.SetFaults(sink.Faults{}))
	r, err := f.send(0)
	require.NoError(t, err)
	require.Equal(t, 10, r.Sent)
}

func TestRejectedKeyFailsWithoutRetry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 10, "SG.wrong")
	_, err := f.send(0)
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%v", err)
	require.True(t, appErr.NonRetryable())
	require.Equal(t, map[string]int{"failed": 10}, f.statuses(t))
	require.Zero(t, len(f.sink.Messages(sink.Query{}).Messages))
	// The tenants stay owed in the ledger, marked with SendGrid's answer.
	l, err := f.st.Ledger(context.Background(), f.id, time.Now(), nil)
	require.NoError(t, err)
	require.Equal(t, 10, l.Initial().Owed)
	require.Equal(t, 10, l.Initial().Failed)
	require.Contains(t, l.Initial().LastError, "401")
}

func TestCrashAfterSendBeforeRecordIsReconciledFromEvents(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 20, "SG.good")
	_, err := f.send(0)
	require.NoError(t, err)
	ctx := context.Background()
	// As if the worker died after SendGrid accepted the page but before the outbox
	// update: the rows are still "sending", and SendGrid's processed events arrived.
	_, err = f.st.Pool().Exec(ctx, `UPDATE notices SET status = 'sending', provider_message_id = NULL, sent_at = NULL WHERE incident_id = $1`, f.id)
	require.NoError(t, err)
	_, err = f.st.Pool().Exec(ctx, `INSERT INTO delivery_events (sg_event_id, notice_id, event, occurred_at)
		SELECT 'ev-' || id, id, 'processed', now() FROM notices WHERE incident_id = $1`, f.id)
	require.NoError(t, err)
	r, err := f.send(0)
	require.NoError(t, err)
	require.Zero(t, r.Sent)
	require.Equal(t, 20, len(f.sink.Messages(sink.Query{}).Messages))
	require.Equal(t, map[string]int{"sent": 20}, f.statuses(t))
	l, err := f.st.Ledger(ctx, f.id, time.Now(), nil)
	require.NoError(t, err)
	require.Equal(t, 20, l.Initial().Notified, "the events settle the ledger too")
}

// A page whose notice cannot be rendered fails for good; its claimed notices are marked
// failed, not left "sending" where no later pass would plan their contacts again.
func TestUnrenderablePageLeavesNothingSending(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 10, "SG.good")
	_, err := f.st.Pool().Exec(context.Background(), `UPDATE notice_drafts SET draft = jsonb_set(draft, '{fields,title}', '"tampered"') WHERE incident_id = $1`, f.id)
	require.NoError(t, err)
	_, err = f.send(0)
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%v", err)
	require.True(t, appErr.NonRetryable())
	require.Equal(t, map[string]int{"failed": 10}, f.statuses(t))
	require.Zero(t, len(f.sink.Messages(sink.Query{}).Messages))
}
