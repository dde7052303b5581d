package workflows_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/breachflow/breachflow/activities"
	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/devenv"
	"github.com/breachflow/breachflow/internal/mail"
	"github.com/breachflow/breachflow/internal/mail/sink"
	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/tenants"
	"github.com/breachflow/breachflow/internal/testenv"
	bfworker "github.com/breachflow/breachflow/worker"
	"github.com/breachflow/breachflow/workflows"
)

var allServices = []string{"compute", "object-storage", "managed-postgres", "identity", "email-relay", "backup", tenants.PartnerService}

// stack is a real run: PostgreSQL, the in-process Temporal server, the mail sink and the
// real SendGrid client.
type stack struct {
	st        *store.Store
	sink      *sink.Sink
	tc        client.Client
	namespace string
	tq        string
	acts      *activities.Activities
	sinkURL   string
	mu        sync.Mutex
	worker    sdkworker.Worker
	approvers map[string]string
}

// approver returns the actor of person's approver key, made on first use: the database
// counts approvals by the people behind live approver keys.
func (s *stack) approver(t testing.TB, person string) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.approvers[person]; ok {
		return a
	}
	_, k, err := s.st.CreateAPIKey(context.Background(), person, "approver", "test")
	require.NoError(t, err)
	if s.approvers == nil {
		s.approvers = map[string]string{}
	}
	s.approvers[person] = k.Actor()
	return k.Actor()
}

// stackOptions shapes a stack.
type stackOptions struct {
	Tenants, Contacts int
	AlternateShare    float64
	// Webhook makes the sink post its signed delivery events to the API's webhook, which
	// applies them to the ledger and signals the incidents.
	Webhook bool
	// SinkKeys are the only API keys the sink accepts (nil: any); SenderKey is the
	// worker's (default SG.test).
	SinkKeys  []string
	SenderKey string
	// MaxMessages caps what the sink keeps (default 200,000); it counts every message anyway.
	MaxMessages int
}

func newStack(t *testing.T, nTenants, perTenant int) *stack {
	return newStackWith(t, stackOptions{Tenants: nTenants, Contacts: perTenant})
}

func newStackWith(t testing.TB, o stackOptions) *stack {
	t.Helper()
	ctx := context.Background()
	st := testenv.Store(t)
	testenv.Tenants(t, st, tenants.Options{Tenants: o.Tenants, ContactsPerTenant: o.Contacts, Seed: 11, AlternateShare: o.AlternateShare})
	require.NoError(t, st.UpsertPartner(ctx, devenv.DemoPartner))
	ts2 := testenv.Temporal(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	s := &stack{st: st, tc: ts2.GetDefaultClient(), namespace: ts2.GetDefaultNamespace(), tq: "it-" + hex.EncodeToString(b)}

	cfg := sink.Config{MaxMessages: 200_000, APIKeys: o.SinkKeys}
	if o.MaxMessages > 0 {
		cfg.MaxMessages = o.MaxMessages
	}
	var hook *httptest.Server
	var server *api.Server
	if o.Webhook {
		server = api.New(st, s.tc, zap.NewNop())
		server.Limits = nil
		hook = httptest.NewUnstartedServer(server.Handler())
		t.Cleanup(hook.Close)
		privPEM, _, err := sink.GenerateKey()
		require.NoError(t, err)
		cfg.WebhookURL = "http://" + hook.Listener.Addr().String() + "/v1/webhooks/sendgrid"
		cfg.WebhookPrivateKeyPEM = privPEM
		cfg.WebhookInterval = 50 * time.Millisecond
	}
	sk, err := sink.New(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sk.Close() })
	if o.Webhook {
		server.Webhook, err = mail.NewVerifier(sk.PublicKey())
		require.NoError(t, err)
		hook.Start()
	}
	s.sink, s.sinkURL = sk, newHTTPServer(t, sk)
	secret, err := st.AckSecret(ctx, "")
	require.NoError(t, err)
	s.acts = &activities.Activities{Store: st, Logger: zap.NewNop(), Now: time.Now,
		PublicURL: "https://notices.provider.example", AckSecret: secret, ResponderEmails: []string{"responders@provider.example"}}
	s.setSender(t, coalesce(o.SenderKey, "SG.test"))
	s.startWorker(t)
	t.Cleanup(s.stopWorker)
	return s
}

func coalesce(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// setSender points the worker's SendGrid client at the sink with key; call it while no
// worker runs.
func (s *stack) setSender(t testing.TB, key string) {
	sender, err := mail.NewSender(mail.Config{APIKey: key, BaseURL: s.sinkURL, FromEmail: "notices@provider.example"}, nil)
	require.NoError(t, err)
	s.acts.Mail = sender
}

func (s *stack) startWorker(t testing.TB) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := sdkworker.New(s.tc, s.tq, bfworker.Options())
	bfworker.Register(w, s.acts)
	require.NoError(t, w.Start())
	s.worker = w
}

func (s *stack) stopWorker() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.worker != nil {
		s.worker.Stop()
		s.worker = nil
	}
}

// declare stores an incident and starts its workflow.
func (s *stack) declare(t testing.TB, partner string, timing workflows.Timing) (string, client.WorkflowRun) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	inc, _, err := s.st.CreateIncident(ctx, "", store.Declaration{Title: "Device database exposure", Severity: "high",
		AwareAt: now.Add(-2 * time.Hour), DataCategories: []string{"device identifiers"}, Partner: partner}, "alice", now)
	require.NoError(t, err)
	run, err := s.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.IncidentWorkflowID(inc.ID), TaskQueue: s.tq},
		workflows.IncidentWorkflow, workflows.IncidentInput{IncidentID: inc.ID, AwareAt: inc.AwareAt, Partner: partner, Timing: timing})
	require.NoError(t, err)
	return inc.ID, run
}

func (s *stack) update(t testing.TB, id, name string, arg any) {
	t.Helper()
	require.NoError(t, s.tryUpdate(id, name, arg), name)
}

func (s *stack) tryUpdate(id, name string, arg any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h, err := s.tc.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: workflows.IncidentWorkflowID(id), UpdateName: name,
		Args: []any{arg}, WaitForStage: client.WorkflowUpdateStageCompleted})
	if err != nil {
		return err
	}
	return h.Get(ctx, nil)
}

func (s *stack) status(t *testing.T, id string) workflows.Status {
	t.Helper()
	v, err := s.tc.QueryWorkflow(context.Background(), workflows.IncidentWorkflowID(id), "", workflows.QueryStatus)
	require.NoError(t, err)
	var st workflows.Status
	require.NoError(t, v.Get(&st))
	return st
}

func (s *stack) waitFor(t *testing.T, id string, what string, timeout time.Duration, cond func(workflows.Status) bool) workflows.Status {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := s.status(t, id)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; status %+v", what, st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// approveNotice runs assessment, draft, scope and two approvals.
func (s *stack) approveNotice(t testing.TB, id string, criteria store.ScopeCriteria) string {
	t.Helper()
	s.update(t, id, workflows.UpdateAssess, workflows.AssessInput{Reportable: true, Rationale: "personal data of controllers' users exposed", Actor: "alice"})
	p, err := activities.ProposeDraft(context.Background(), s.st, id, draftJSON(t, ""), "alice", activities.DraftOptions{})
	require.NoError(t, err)
	hash := p.Hash
	s.update(t, id, workflows.UpdateDraft, workflows.DraftInput{ContentHash: hash, Actor: "alice"})
	s.update(t, id, workflows.UpdateScope, workflows.ScopeInput{Criteria: criteria, Actor: "alice"})
	s.update(t, id, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: hash, Actor: s.approver(t, "alice")})
	s.update(t, id, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: hash, Actor: s.approver(t, "bob")})
	return hash
}

// mailbox counts the sink's messages per recipient, split by whether the subject marks a reminder.
func mailbox(t testing.TB, sk *sink.Sink) (initial, reminders map[string]int) {
	t.Helper()
	initial, reminders = map[string]int{}, map[string]int{}
	var after uint64
	for {
		list := sk.Messages(sink.Query{After: after, Limit: sink.MaxListLimit})
		for _, m := range list.Messages {
			for _, to := range m.To {
				if isReminder(m.Subject) {
					reminders[to.Email]++
				} else {
					initial[to.Email]++
				}
			}
			after = m.Seq
		}
		if len(list.Messages) < sink.MaxListLimit {
			return initial, reminders
		}
	}
}

// isReminder reports whether a subject carries the reminder mark of one of the languages.
func isReminder(subject string) bool {
	for _, loc := range notice.Locales() {
		if strings.HasPrefix(subject, notice.ReminderPrefix(loc)) {
			return true
		}
	}
	return false
}

var emailRe = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`)

// checkHistories asserts that no run of the incident's workflows exceeds limit events
// and that none carries an email address; it returns the largest history length.
func (s *stack) checkHistories(t testing.TB, id string, limit int, saveDir string) int {
	t.Helper()
	ctx := context.Background()
	prefix := workflows.IncidentWorkflowID(id)
	largest, runs := 0, 0
	var token []byte
	for {
		resp, err := s.tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: s.namespace, PageSize: 1000, NextPageToken: token})
		require.NoError(t, err)
		for _, ex := range resp.Executions {
			wid, rid := ex.Execution.GetWorkflowId(), ex.Execution.GetRunId()
			if !strings.HasPrefix(wid, prefix) {
				continue
			}
			runs++
			hist := &historypb.History{}
			it := s.tc.GetWorkflowHistory(ctx, wid, rid, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for it.HasNext() {
				ev, err := it.Next()
				require.NoError(t, err)
				hist.Events = append(hist.Events, ev)
			}
			raw, err := protojson.Marshal(hist)
			require.NoError(t, err)
			require.Empty(t, emailRe.FindAllString(string(raw), 3), "email address in history of %s", wid)
			require.LessOrEqual(t, len(hist.Events), limit, "history of %s run %s", wid, rid)
			largest = max(largest, len(hist.Events))
			if saveDir != "" && (wid == prefix || (wid == workflows.PassWorkflowID(id, 1) && ex.GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_COMPLETED)) {
				name := filepath.Join(saveDir, strings.NewReplacer("/", "_").Replace(wid)+"_"+rid[:8]+".json")
				require.NoError(t, os.WriteFile(name, raw, 0o644))
			}
		}
		token = resp.NextPageToken
		if len(token) == 0 {
			break
		}
	}
	require.Positive(t, runs)
	return largest
}

// TestTenThousandTenants runs a whole incident over 10,000 tenants × 3 contacts.
func TestTenThousandTenants(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	s := newStack(t, 10_000, 3)
	ctx := context.Background()
	id, run := s.declare(t, "", workflows.Timing{AckCheckInterval: 500 * time.Millisecond, ReminderAfter: []time.Duration{20 * time.Second},
		ReminderCoalesce: 5 * time.Second, EscalateFromRound: 5, PagesPerRun: 8, Window: 4})
	approvedAt := time.Now()
	s.approveNotice(t, id, store.ScopeCriteria{Services: allServices})
	st := s.waitFor(t, id, "initial notices", 3*time.Minute, func(st workflows.Status) bool { return st.Stage == store.StageTracking })
	elapsed := time.Since(approvedAt)
	require.Equal(t, 10_000, st.Scope.Total)
	require.Len(t, st.Passes, 1)
	require.Equal(t, 30_000, st.Passes[0].Notices)
	require.Equal(t, 30_000, st.Passes[0].Sent)
	require.Greater(t, st.Passes[0].Runs, 1, "the pass should have continued as new")
	l := s.ledger(t, id)
	require.Equal(t, 10_000, l.Initial().Notified)
	require.Zero(t, l.Initial().Owed)

	initial, _ := mailbox(t, s.sink)
	require.Len(t, initial, 30_000, "every contact gets a notice")
	for addr, n := range initial {
		require.Equal(t, 1, n, "initial notices to %s", addr)
	}
	t.Logf("approval to last notice accepted: %s for 30,000 notices", elapsed.Round(time.Millisecond))

	// Half the tenants acknowledge; the other half get exactly one reminder.
	acked := map[string]bool{}
	var wg sync.WaitGroup
	ch := make(chan string)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for tenant := range ch {
				_, err := s.st.Acknowledge(ctx, id, tenant, "link", "customer")
				require.NoError(t, err)
			}
		}()
	}
	for i := 1; i <= 10_000; i += 2 {
		tenant := "t-" + pad(i)
		acked[tenant] = true
		ch <- tenant
	}
	close(ch)
	wg.Wait()
	t.Logf("5,000 acknowledgements recorded after %s", time.Since(approvedAt).Round(time.Millisecond))

	// Each tenant's reminder falls due 20 s after it was notified; passes every 5 s remind
	// those then due, so the 5,000 unacknowledged tenants are reminded once each.
	var reminders map[string]int
	require.Eventually(t, func() bool {
		_, reminders = mailbox(t, s.sink)
		return len(reminders) >= 15_000
	}, 2*time.Minute, 500*time.Millisecond)
	time.Sleep(6 * time.Second) // one more reminder pass would repeat a reminder if it could
	_, reminders = mailbox(t, s.sink)
	st = s.status(t, id)
	t.Logf("reminders done after %s in %d passes", time.Since(approvedAt).Round(time.Millisecond), st.NextPass-2)
	require.Len(t, reminders, 15_000)
	for addr, n := range reminders {
		require.Equal(t, 1, n, addr)
		require.False(t, acked[tenantOf(addr)], "acknowledged tenant reminded: %s", tenantOf(addr))
	}
	s.update(t, id, workflows.UpdateClose, workflows.CloseInput{Reason: "half the tenants acknowledged; the rest were reminded", Actor: "alice"})
	var final workflows.Status
	require.NoError(t, run.Get(ctx, &final))
	require.Equal(t, workflows.StageClosed, final.Stage)
	largest := s.checkHistories(t, id, 4096, "")
	t.Logf("largest history: %d events", largest)

	rep, err := s.st.VerifyAudit(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK, rep.Problem)
}

// TestTenThousandTenantsWorkerRestart stops the worker in the middle of sending and
// starts a new one: every contact still gets exactly one notice.
func TestTenThousandTenantsWorkerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	s := newStack(t, 10_000, 3)
	id, _ := s.declare(t, "", workflows.Timing{AckCheckInterval: time.Second, PagesPerRun: 6, Window: 2})
	s.approveNotice(t, id, store.ScopeCriteria{Services: allServices})
	deadline := time.Now().Add(2 * time.Minute)
	for s.sink.Stats().Accepted < 6_000 {
		require.True(t, time.Now().Before(deadline), "sending did not start")
		time.Sleep(20 * time.Millisecond)
	}
	s.stopWorker()
	mid := s.sink.Stats().Accepted
	s.startWorker(t)
	s.waitFor(t, id, "initial notices", 3*time.Minute, func(st workflows.Status) bool { return st.Stage == workflows.StageTracking })
	require.Equal(t, 10_000, s.ledger(t, id).Initial().Notified)
	initial, _ := mailbox(t, s.sink)
	require.Len(t, initial, 30_000)
	for addr, n := range initial {
		require.Equal(t, 1, n, addr)
	}
	t.Logf("worker stopped after %d of 30,000 notices", mid)
	s.update(t, id, workflows.UpdateClose, workflows.CloseInput{Reason: "test over", Actor: "alice"})
}

func pad(i int) string { return fmt.Sprintf("%05d", i) }

// tenantOf reads the tenant id from a generated address (…@t-00001.example).
func tenantOf(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	return strings.TrimSuffix(addr[at+1:], ".example")
}

// ledger reads an incident's ledger from PostgreSQL.
func (s *stack) ledger(t *testing.T, id string) store.LedgerStats {
	t.Helper()
	l, err := s.st.Ledger(context.Background(), id, time.Now(), nil)
	require.NoError(t, err)
	return l
}

// noticesPerTenant counts, per tenant, the notices (not reminders) the sink received for
// any of its contacts, read from what the recipients saw.
func (s *stack) noticesPerTenant(t *testing.T) map[string]int {
	t.Helper()
	rows, err := s.st.Pool().Query(context.Background(), `SELECT lower(email), tenant_id FROM contacts`)
	require.NoError(t, err)
	owner := map[string]string{}
	for rows.Next() {
		var e, tenant string
		require.NoError(t, rows.Scan(&e, &tenant))
		owner[e] = tenant
	}
	require.NoError(t, rows.Err())
	initial, _ := mailbox(t, s.sink)
	out := map[string]int{}
	for addr, n := range initial {
		if tenant, ok := owner[strings.ToLower(addr)]; ok {
			out[tenant] += n
		}
	}
	return out
}

// perContact asserts that no address received more than one notice.
func perContact(t *testing.T, sk *sink.Sink) {
	t.Helper()
	initial, _ := mailbox(t, sk)
	for addr, n := range initial {
		require.Equal(t, 1, n, "notices to %s", addr)
	}
}

func (s *stack) tenantIDs(t *testing.T, where string, args ...any) map[string]bool {
	t.Helper()
	rows, err := s.st.Pool().Query(context.Background(), `SELECT id FROM tenants WHERE `+where, args...)
	require.NoError(t, err)
	out := map[string]bool{}
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		out[id] = true
	}
	require.NoError(t, rows.Err())
	return out
}

// Item 1: scope → approve → partner requests changes → a wider scope and a new draft →
// approve → partner confirms. Every tenant of the wider scope gets exactly one notice.
// Before the ledger, the workflow remembered "uncovered done" across the re-scope and the
// new scope's uncovered tenants were never notified.
func TestRescopeAfterChangesRequestedNotifiesAll(t *testing.T) {
	s := newStack(t, 200, 1)
	id, _ := s.declare(t, "devicecare", workflows.Timing{AckCheckInterval: 200 * time.Millisecond, PartnerResponse: time.Hour})
	hash := s.approveNotice(t, id, store.ScopeCriteria{Countries: []string{"IT"}})
	st := s.waitFor(t, id, "partner review", time.Minute, func(st workflows.Status) bool { return st.Stage == workflows.StagePartnerReview })
	require.Positive(t, st.Scope.PartnerCovered)
	s.update(t, id, workflows.UpdatePartnerDecision, workflows.PartnerDecisionInput{Comment: "name our product", ContentHash: hash, Actor: "partner:devicecare"})
	s.update(t, id, workflows.UpdateScope, workflows.ScopeInput{Criteria: store.ScopeCriteria{Countries: []string{"IT", "ES"}}, Actor: "alice"})
	p2, err := activities.ProposeDraft(context.Background(), s.st, id, draftJSON(t, "Reviewed with DeviceCare."), "alice", activities.DraftOptions{})
	h2 := p2.Hash
	require.NoError(t, err)
	s.update(t, id, workflows.UpdateDraft, workflows.DraftInput{ContentHash: h2, Actor: "alice"})
	s.update(t, id, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: h2, Actor: s.approver(t, "alice")})
	s.update(t, id, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: h2, Actor: s.approver(t, "bob")})
	s.waitFor(t, id, "second review", time.Minute, func(st workflows.Status) bool {
		return st.Partner.Status == workflows.PartnerPending && st.Partner.ContentHash == h2
	})
	s.update(t, id, workflows.UpdatePartnerDecision, workflows.PartnerDecisionInput{Confirm: true, ContentHash: h2, Actor: "partner:devicecare"})
	s.waitFor(t, id, "tracking", time.Minute, func(st workflows.Status) bool { return st.Stage == workflows.StageTracking })

	want := s.tenantIDs(t, `country IN ('IT', 'ES')`)
	require.Greater(t, len(want), len(s.tenantIDs(t, `country = 'IT'`)))
	got := s.noticesPerTenant(t)
	for tenant := range want {
		require.Equal(t, 1, got[tenant], "notices to tenant %s", tenant)
	}
	require.Len(t, got, len(want))
	l := s.ledger(t, id).Initial()
	require.Equal(t, len(want), l.Tenants)
	require.Equal(t, len(want), l.Notified)
	require.Zero(t, l.Owed)
	s.update(t, id, workflows.UpdateClose, workflows.CloseInput{Reason: "test over", Actor: "alice"})
	s.checkHistories(t, id, 4096, historiesDir(t))
}

// historiesDir is where tests save the histories the replay test runs: testdata/ with
// BREACHFLOW_WRITE_HISTORIES=1, nowhere otherwise.
func historiesDir(t *testing.T) string {
	if os.Getenv("BREACHFLOW_WRITE_HISTORIES") == "" {
		return ""
	}
	require.NoError(t, os.MkdirAll("testdata", 0o755))
	return "testdata"
}

// Item 2: SendGrid refuses every page (401). The tenants stay owed, with the error, the
// responders are alerted, the incident does not move on as if notified; once the key is
// fixed, a retry notifies each contact exactly once.
func TestRefusedKeyLeavesTenantsOwedThenRetrySendsOnce(t *testing.T) {
	s := newStackWith(t, stackOptions{Tenants: 30, Contacts: 2, SinkKeys: []string{"SG.good"}, SenderKey: "SG.revoked"})
	ctx := context.Background()
	id, _ := s.declare(t, "", workflows.Timing{AckCheckInterval: time.Hour, RetryAfter: []time.Duration{time.Hour}})
	s.approveNotice(t, id, store.ScopeCriteria{Services: allServices})
	st := s.waitFor(t, id, "refused pass", time.Minute, func(st workflows.Status) bool { return len(st.Passes) == 1 && st.Ledger.Failed > 0 })
	require.Positive(t, st.Passes[0].FailedPages)
	require.NotEqual(t, workflows.StageTracking, st.Stage, "an unsent notice is not tracking")
	l := s.ledger(t, id).Initial()
	require.Equal(t, 30, l.Owed)
	require.Equal(t, 30, l.Failed)
	require.Zero(t, l.Notified)
	require.Contains(t, l.LastError, "401")
	var alerts []store.Alert
	require.Eventually(t, func() bool {
		var err error
		alerts, err = s.st.Alerts(ctx, id, 10)
		require.NoError(t, err)
		return len(alerts) > 0 && alerts[0].Kind == "send_failed" && alerts[0].EmailError != ""
	}, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, 30, alerts[0].Tenants)
	require.NotEmpty(t, alerts[0].EmailError, "the alert email went through the refused key too, and the alert is kept anyway")
	require.Zero(t, s.sink.Stats().Accepted)

	s.stopWorker()
	s.setSender(t, "SG.good")
	s.startWorker(t)
	s.update(t, id, workflows.UpdateRetry, workflows.RetryInput{Actor: "alice"})
	s.waitFor(t, id, "tracking", time.Minute, func(st workflows.Status) bool { return st.Stage == workflows.StageTracking })
	l = s.ledger(t, id).Initial()
	require.Equal(t, 30, l.Notified)
	require.Zero(t, l.Owed)
	require.Zero(t, l.Failed)
	initial, _ := mailbox(t, s.sink)
	require.Len(t, initial, 60)
	perContact(t, s.sink)
	s.update(t, id, workflows.UpdateClose, workflows.CloseInput{Reason: "test over", Actor: "alice"})
	s.checkHistories(t, id, 4096, historiesDir(t))
}

// Item 3: a tenant whose only primary contact bounces is owed again, and its alternate is
// notified within the coalescing window (not at the 48 h reminder). A bounce is never
// "deadline met".
func TestOnlyPrimaryBouncesThenAlternateIsNotified(t *testing.T) {
	s := newStackWith(t, stackOptions{Tenants: 20, Contacts: 2, AlternateShare: 1, Webhook: true})
	ctx := context.Background()
	// Five tenants' primaries bounce.
	_, err := s.st.Pool().Exec(ctx, `UPDATE contacts SET email = 'nobody-' || tenant_id || '@bounce.invalid'
		WHERE kind = 'primary' AND tenant_id IN (SELECT id FROM tenants ORDER BY id LIMIT 5)`)
	require.NoError(t, err)
	bouncing := s.tenantIDs(t, `id IN (SELECT id FROM tenants ORDER BY id LIMIT 5)`)
	id, _ := s.declare(t, "", workflows.Timing{AckCheckInterval: time.Hour, FailureCoalesce: 2 * time.Second})
	s.approveNotice(t, id, store.ScopeCriteria{Services: allServices})
	s.waitFor(t, id, "alternates notified", time.Minute, func(st workflows.Status) bool {
		return len(st.Passes) >= 2 && st.Stage == workflows.StageTracking
	})
	require.Eventually(t, func() bool { return s.ledger(t, id).Initial().Notified == 20 }, 30*time.Second, 100*time.Millisecond)
	// The alternates' delivery events come through the webhook after their sends.
	require.Eventually(t, func() bool { return s.ledger(t, id).Initial().Delivered == 20 }, 30*time.Second, 100*time.Millisecond)
	l := s.ledger(t, id).Initial()
	require.Zero(t, l.Owed)
	require.Equal(t, 20, l.Met)
	// Each bounced tenant got its notice twice (primary bounced, then the alternate), every
	// other tenant once, and no address twice.
	got := s.noticesPerTenant(t)
	require.Len(t, got, 20)
	for tenant, n := range got {
		want := 1
		if bouncing[tenant] {
			want = 2
		}
		require.Equal(t, want, n, tenant)
	}
	perContact(t, s.sink)
	var bouncedOnly int
	require.NoError(t, s.st.TenantStatuses(ctx, id, 1, false, 0, time.Now(), func(ts store.TenantStatus) error {
		if ts.BouncedAt != nil {
			bouncedOnly++
			require.Equal(t, "delivered", ts.State, ts.TenantID)
			require.True(t, *ts.DeadlineMet)
		}
		return nil
	}))
	require.Equal(t, 5, bouncedOnly)
	s.update(t, id, workflows.UpdateClose, workflows.CloseInput{Reason: "test over", Actor: "alice"})
	s.checkHistories(t, id, 4096, historiesDir(t))
}

// Item 6: the scope grows after notices went out; after the new version's approval only
// the new tenants get a notice. A narrower version then removes tenants without sending.
func TestWidenedScopeAfterTrackingNotifiesOnlyNewTenants(t *testing.T) {
	s := newStack(t, 120, 1)
	ctx := context.Background()
	id, _ := s.declare(t, "", workflows.Timing{AckCheckInterval: 200 * time.Millisecond})
	hash := s.approveNotice(t, id, store.ScopeCriteria{Countries: []string{"DE"}})
	s.waitFor(t, id, "tracking", time.Minute, func(st workflows.Status) bool { return st.Stage == workflows.StageTracking })
	de := s.tenantIDs(t, `country = 'DE'`)
	require.Len(t, s.noticesPerTenant(t), len(de))

	s.update(t, id, workflows.UpdateScope, workflows.ScopeInput{Criteria: store.ScopeCriteria{Countries: []string{"DE", "FR"}}, Actor: "alice"})
	st := s.status(t, id)
	fr := s.tenantIDs(t, `country = 'FR'`)
	require.Equal(t, len(fr), st.Scope.Added)
	require.Equal(t, workflows.StageApproval, st.Stage)
	s.update(t, id, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: hash, Actor: s.approver(t, "alice")})
	s.update(t, id, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: hash, Actor: s.approver(t, "bob")})
	s.waitFor(t, id, "tracking again", time.Minute, func(st workflows.Status) bool {
		return st.Stage == workflows.StageTracking && st.Ledger.Notified == len(de)+len(fr)
	})
	got := s.noticesPerTenant(t)
	require.Len(t, got, len(de)+len(fr))
	for tenant, n := range got {
		require.Equal(t, 1, n, tenant)
		require.True(t, de[tenant] || fr[tenant], tenant)
	}

	// Narrower: FR only. The DE tenants were told; they are listed as removed, nothing is sent.
	s.update(t, id, workflows.UpdateScope, workflows.ScopeInput{Criteria: store.ScopeCriteria{Countries: []string{"FR"}}, Actor: "alice"})
	st = s.status(t, id)
	require.Equal(t, len(de), st.Scope.Removed)
	require.Equal(t, workflows.StageTracking, st.Stage, "removing tenants needs no approval")
	d, err := s.st.DiffScope(ctx, id, 2, 3, 1000)
	require.NoError(t, err)
	require.Equal(t, len(de), d.RemovedCount)
	require.Zero(t, d.AddedCount)
	l := s.ledger(t, id).Initial()
	require.Equal(t, len(fr), l.Tenants)
	require.Equal(t, len(de), l.Removed)
	require.Len(t, s.noticesPerTenant(t), len(de)+len(fr))
	// The old follow-up, which sent the same notice again, is refused; an update phase is
	// its own draft, approved for version 3.
	require.ErrorContains(t, s.tryUpdate(id, workflows.UpdateFollowup, workflows.FollowupInput{Actor: "alice"}), "next phase's own notice draft")
	p := s.propose(t, id, phaseDraft(t, "The FR tenants are the only ones still affected.", "A leaked credential gave read access."), true, "")
	s.approveTwice(t, id, p.Hash)
	s.waitFor(t, id, "update phase", time.Minute, func(st workflows.Status) bool {
		return st.Phases == 2 && st.Stage == workflows.StageTracking && len(st.Ledger.PlannablePhases) == 0
	})
	l2 := s.ledger(t, id)
	require.Len(t, l2.Phases, 2)
	require.Equal(t, len(fr), l2.Phases[1].Notified, "the update goes to the tenants in scope only")
	s.update(t, id, workflows.UpdateClose, workflows.CloseInput{Reason: "test over", Actor: "alice"})
	s.checkHistories(t, id, 4096, historiesDir(t))
}

// Item 7: the incident view and the evidence read the ledger, so they survive the loss of
// the workflow (a restarted in-memory Temporal, or its retention).
func TestLedgerOutlivesTheWorkflow(t *testing.T) {
	s := newStack(t, 25, 1)
	ctx := context.Background()
	id, _ := s.declare(t, "", workflows.Timing{AckCheckInterval: 200 * time.Millisecond})
	s.approveNotice(t, id, store.ScopeCriteria{Services: allServices})
	s.waitFor(t, id, "tracking", time.Minute, func(st workflows.Status) bool { return st.Stage == workflows.StageTracking })
	require.NoError(t, s.tc.TerminateWorkflow(ctx, workflows.IncidentWorkflowID(id), "", "Temporal state lost"))
	s.stopWorker()

	v, err := api.New(s.st, s.tc, zap.NewNop()).View(ctx, store.APIKey{Roles: []string{"responder"}}, id)
	require.NoError(t, err)
	require.Nil(t, v.Status, "no workflow answers")
	require.Equal(t, 25, v.Ledger.Tenants)
	require.Equal(t, 25, v.Ledger.Initial().Notified)
	require.NotNil(t, v.Scope)
	require.Equal(t, 25, v.Scope.Tenants)
	n := 0
	require.NoError(t, s.st.TenantStatuses(ctx, id, 1, false, 0, time.Now(), func(ts store.TenantStatus) error {
		n++
		require.Equal(t, "notified", ts.State)
		require.NotNil(t, ts.NotifiedAt)
		return nil
	}))
	require.Equal(t, 25, n)
}
