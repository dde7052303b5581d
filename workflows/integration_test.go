package workflows_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
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
	"github.com/breachflow/breachflow/internal/devenv"
	"github.com/breachflow/breachflow/internal/mail"
	"github.com/breachflow/breachflow/internal/mail/sink"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/tenants"
	"github.com/breachflow/breachflow/internal/testenv"
	bfworker "github.com/breachflow/breachflow/worker"
	"github.com/breachflow/breachflow/workflows"
)

func TestMain(m *testing.M) { testenv.Main(m) }

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
	mu        sync.Mutex
	worker    sdkworker.Worker
}

func newStack(t *testing.T, nTenants, perTenant int) *stack {
	t.Helper()
	ctx := context.Background()
	st := testenv.Store(t)
	testenv.Tenants(t, st, tenants.Options{Tenants: nTenants, ContactsPerTenant: perTenant, Seed: 11})
	require.NoError(t, st.UpsertPartner(ctx, devenv.DemoPartner))

	sk, err := sink.New(sink.Config{MaxMessages: 200_000}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sk.Close() })
	srv := newHTTPServer(t, sk)
	sender, err := mail.NewSender(mail.Config{APIKey: "SG.test", BaseURL: srv, FromEmail: "notices@provider.example"}, nil)
	require.NoError(t, err)
	secret, err := st.AckSecret(ctx, "")
	require.NoError(t, err)
	ts2 := testenv.Temporal(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	s := &stack{st: st, sink: sk, tc: ts2.GetDefaultClient(), namespace: ts2.GetDefaultNamespace(), tq: "it-" + hex.EncodeToString(b),
		acts: &activities.Activities{Store: st, Mail: sender, Logger: zap.NewNop(), Now: time.Now,
			PublicURL: "https://notices.provider.example", AckSecret: secret, ResponderEmails: []string{"responders@provider.example"}}}
	s.startWorker(t)
	t.Cleanup(s.stopWorker)
	return s
}

func (s *stack) startWorker(t *testing.T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := sdkworker.New(s.tc, s.tq, sdkworker.Options{WorkerStopTimeout: 30 * time.Second})
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
func (s *stack) declare(t *testing.T, partner string, timing workflows.Timing) (string, client.WorkflowRun) {
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

func (s *stack) update(t *testing.T, id, name string, arg any) {
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
func (s *stack) approveNotice(t *testing.T, id string, criteria store.ScopeCriteria) string {
	t.Helper()
	s.update(t, id, workflows.UpdateAssess, workflows.AssessInput{Reportable: true, Rationale: "personal data of controllers' users exposed", Actor: "alice"})
	hash, err := activities.ProposeDraft(context.Background(), s.st, id, draftJSON(t, "Device database exposure"), "alice")
	require.NoError(t, err)
	s.update(t, id, workflows.UpdateDraft, workflows.DraftInput{ContentHash: hash, Actor: "alice"})
	s.update(t, id, workflows.UpdateScope, workflows.ScopeInput{Criteria: criteria, Actor: "alice"})
	s.update(t, id, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: hash, Actor: "alice"})
	s.update(t, id, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: hash, Actor: "bob"})
	return hash
}

// mailbox counts the sink's messages per recipient, split by whether the subject marks a reminder.
func mailbox(t *testing.T, sk *sink.Sink) (initial, reminders map[string]int) {
	t.Helper()
	initial, reminders = map[string]int{}, map[string]int{}
	var after uint64
	for {
		list := sk.Messages(sink.Query{After: after, Limit: sink.MaxListLimit})
		for _, m := range list.Messages {
			for _, to := range m.To {
				if strings.HasPrefix(m.Subject, "[Reminder]") {
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

var emailRe = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`)

// checkHistories asserts that no run of the incident's workflows exceeds limit events
// and that none carries an email address; it returns the largest history length.
func (s *stack) checkHistories(t *testing.T, id string, limit int, saveDir string) int {
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
			if saveDir != "" && wid == prefix {
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
		EscalateFromRound: 5, PagesPerRun: 8, Window: 4})
	approvedAt := time.Now()
	s.approveNotice(t, id, store.ScopeCriteria{Services: allServices})
	st := s.waitFor(t, id, "initial notices", 3*time.Minute, func(st workflows.Status) bool { return st.Stage == store.StageTracking })
	elapsed := time.Since(approvedAt)
	require.Equal(t, 10_000, st.Scope.Total)
	require.Len(t, st.Rounds, 1)
	require.Equal(t, 30_000, st.Rounds[0].Planned)
	require.Equal(t, 30_000, st.Rounds[0].Sent)
	require.Greater(t, st.Rounds[0].Runs, 1, "the round should have continued as new")

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

	st = s.waitFor(t, id, "reminder round", 2*time.Minute, func(st workflows.Status) bool { return len(st.Rounds) == 2 })
	require.Equal(t, 1, st.Reminders)
	require.Equal(t, 15_000, st.Rounds[1].Planned)
	t.Logf("reminder round done after %s", time.Since(approvedAt).Round(time.Millisecond))
	_, reminders := mailbox(t, s.sink)
	require.Len(t, reminders, 15_000)
	for addr, n := range reminders {
		require.Equal(t, 1, n, addr)
		require.False(t, acked[tenantOf(addr)], "acknowledged tenant reminded: %s", tenantOf(addr))
	}
	s.update(t, id, workflows.UpdateClose, workflows.CloseInput{Reason: "half the tenants acknowledged; the rest were reminded", Actor: "alice"})
	var final workflows.Status
	require.NoError(t, run.Get(ctx, &final))
	require.Equal(t, store.StageClosed, final.Stage)
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
	st := s.waitFor(t, id, "initial notices", 3*time.Minute, func(st workflows.Status) bool { return st.Stage == store.StageTracking })
	require.Equal(t, 30_000, st.Rounds[0].Sent)
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
