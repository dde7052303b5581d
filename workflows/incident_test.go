package workflows_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/breachflow/breachflow/activities"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/workflows"
)

var aware = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)

const (
	h1 = "1111111111111111111111111111111111111111111111111111111111111111"
	h2 = "2222222222222222222222222222222222222222222222222222222222222222"
)

// wf runs IncidentWorkflow in the time-skipping test environment with every activity
// and the round child workflow mocked; it records what they were asked to do.
type wf struct {
	t        *testing.T
	env      *testsuite.TestWorkflowEnvironment
	total    int
	covered  int
	acked    int
	scopes   int
	rounds   []store.RoundPlan
	alerts   []string
	reminded int
	decided  []string
	rejected []string
}

func newWF(t *testing.T, total, covered int) *wf {
	var suite testsuite.WorkflowTestSuite
	w := &wf{t: t, env: suite.NewTestWorkflowEnvironment(), total: total, covered: covered}
	env := w.env
	var a *activities.Activities
	env.RegisterActivity(&activities.Activities{})
	env.RegisterWorkflow(workflows.NotifyRoundWorkflow)
	env.OnActivity(a.SetStage, mock.Anything, mock.Anything).Return(nil)
	env.OnActivity(a.RecordAssessment, mock.Anything, mock.Anything).Return(nil)
	env.OnActivity(a.ResolveScope, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ScopeActivityInput) (store.ScopeResult, error) {
		w.scopes++
		return store.ScopeResult{Version: w.scopes, Total: w.total, PartnerCovered: w.covered, Earliest: aware.Add(10 * time.Hour),
			ByCountry: map[string]int{"DE": w.total}}, nil
	})
	env.OnActivity(a.SaveDraft, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.DraftActivityInput) (string, error) {
		return in.ContentHash, nil
	})
	env.OnActivity(a.Approve, mock.Anything, mock.Anything).Return(1, nil)
	env.OnActivity(a.OpenPartnerReview, mock.Anything, mock.Anything).Return(int64(1), nil)
	env.OnActivity(a.RemindPartner, mock.Anything, mock.Anything).Return(func(context.Context, activities.PartnerNudgeInput) error {
		w.reminded++
		return nil
	})
	env.OnActivity(a.DecidePartner, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.DecisionInput) error {
		w.decided = append(w.decided, in.Status)
		return nil
	})
	env.OnActivity(a.AlertResponders, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.AlertInput) error {
		w.alerts = append(w.alerts, in.Kind)
		return nil
	})
	env.OnActivity(a.AckStatus, mock.Anything, mock.Anything).Return(func(context.Context, activities.AckStatusInput) (store.AckStats, error) {
		return store.AckStats{Tenants: w.total, Acknowledged: w.acked}, nil
	})
	env.OnActivity(a.CloseIncident, mock.Anything, mock.Anything).Return(nil)
	env.OnWorkflow(workflows.NotifyRoundWorkflow, mock.Anything, mock.Anything).Return(func(_ workflow.Context, in workflows.RoundInput) (workflows.RoundResult, error) {
		w.rounds = append(w.rounds, in.Plan)
		return workflows.RoundResult{Round: in.Plan.Round, Kind: in.Plan.Kind, Planned: 3, Sent: 3}, nil
	})
	return w
}

// at sends an update after d of workflow time; a rejection is recorded as "name: reason".
func (w *wf) at(d time.Duration, name string, arg any) {
	w.env.RegisterDelayedCallback(func() {
		w.env.UpdateWorkflow(name, "", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { w.rejected = append(w.rejected, name+": "+err.Error()) },
			OnAccept:   func() {},
			OnComplete: func(_ any, err error) { require.NoError(w.t, err, name) },
		}, arg)
	}, d)
}

func (w *wf) run(partner string, timing workflows.Timing) workflows.Status {
	w.env.ExecuteWorkflow(workflows.IncidentWorkflow, workflows.IncidentInput{IncidentID: "INC-TEST-0001", AwareAt: aware, Partner: partner, Timing: timing})
	require.True(w.t, w.env.IsWorkflowCompleted())
	require.NoError(w.t, w.env.GetWorkflowError())
	var st workflows.Status
	require.NoError(w.t, w.env.GetWorkflowResult(&st))
	return st
}

// approve schedules assessment, draft, scope and two approvals from minute 1 on.
func (w *wf) approve(hash string) {
	w.at(time.Minute, workflows.UpdateAssess, workflows.AssessInput{Reportable: true, Rationale: "controllers' data exposed", Actor: "alice"})
	w.at(2*time.Minute, workflows.UpdateDraft, workflows.DraftInput{ContentHash: hash, Actor: "alice"})
	w.at(3*time.Minute, workflows.UpdateScope, workflows.ScopeInput{Criteria: store.ScopeCriteria{Services: []string{"compute"}}, Actor: "alice"})
	w.at(4*time.Minute, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: hash, Actor: "alice"})
	w.at(5*time.Minute, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: hash, Actor: "bob"})
}

func (w *wf) closeAt(d time.Duration) {
	w.at(d, workflows.UpdateClose, workflows.CloseInput{Reason: "responder closed", Actor: "alice"})
}

func kinds(plans []store.RoundPlan) []string {
	var out []string
	for _, p := range plans {
		k := p.Kind
		if p.PartnerCovered != nil {
			if *p.PartnerCovered {
				k += "/covered"
			} else {
				k += "/uncovered"
			}
		}
		if p.Alternates {
			k += "+alternates"
		}
		out = append(out, k)
	}
	return out
}

func TestNotReportableIsClosedAndDocumented(t *testing.T) {
	w := newWF(t, 10, 0)
	w.at(time.Minute, workflows.UpdateAssess, workflows.AssessInput{Reportable: false, Rationale: "encrypted data, key not exposed", Actor: "alice"})
	st := w.run("", workflows.Timing{})
	require.Equal(t, store.StageClosed, st.Stage)
	require.Contains(t, st.CloseReason, "not reportable: encrypted data")
	require.Empty(t, w.rounds)
}

func TestAssessmentNeedsRationale(t *testing.T) {
	w := newWF(t, 10, 0)
	w.at(time.Minute, workflows.UpdateAssess, workflows.AssessInput{Reportable: true, Actor: "alice"})
	w.closeAt(2 * time.Minute)
	st := w.run("", workflows.Timing{})
	require.Equal(t, store.StageClosed, st.Stage)
	require.Len(t, w.rejected, 1)
	require.Contains(t, w.rejected[0], "rationale")
}

func TestApprovalNeedsTwoDifferentPeopleAndAllAcksClose(t *testing.T) {
	w := newWF(t, 10, 0)
	w.approve(h1)
	w.at(4*time.Minute+30*time.Second, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: h1, Actor: "alice"})
	w.env.RegisterDelayedCallback(func() { w.acked = 10 }, 3*time.Hour)
	st := w.run("", workflows.Timing{})
	require.Len(t, w.rejected, 1)
	require.Contains(t, w.rejected[0], "alice has already approved")
	require.Equal(t, []string{"alice", "bob"}, st.Approvers)
	require.Equal(t, []string{"initial"}, kinds(w.rounds))
	require.Equal(t, store.StageClosed, st.Stage)
	require.Equal(t, "all tenants acknowledged", st.CloseReason)
}

func TestDraftChangeVoidsApprovals(t *testing.T) {
	w := newWF(t, 10, 0)
	w.at(time.Minute, workflows.UpdateAssess, workflows.AssessInput{Reportable: true, Rationale: "r", Actor: "alice"})
	w.at(2*time.Minute, workflows.UpdateDraft, workflows.DraftInput{ContentHash: h1, Actor: "alice"})
	w.at(3*time.Minute, workflows.UpdateScope, workflows.ScopeInput{Criteria: store.ScopeCriteria{Countries: []string{"DE"}}, Actor: "alice"})
	w.at(4*time.Minute, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: h1, Actor: "alice"})
	w.at(5*time.Minute, workflows.UpdateDraft, workflows.DraftInput{ContentHash: h2, Actor: "carol"})
	w.at(6*time.Minute, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: h1, Actor: "bob"})
	w.env.RegisterDelayedCallback(func() {
		require.Empty(t, w.rounds, "one approval of the new draft is not enough")
	}, 7*time.Minute)
	w.at(8*time.Minute, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: h2, Actor: "bob"})
	w.at(9*time.Minute, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: h2, Actor: "alice"})
	w.closeAt(10 * time.Minute)
	st := w.run("", workflows.Timing{})
	require.Len(t, w.rejected, 1)
	require.Contains(t, w.rejected[0], "is not the current draft")
	require.Equal(t, h2, st.ContentHash)
	require.Equal(t, []string{"bob", "alice"}, st.Approvers)
	require.Len(t, w.rounds, 1)
	require.Equal(t, h2, w.rounds[0].ContentHash)
}

func TestScopeRevisedBeforeNotification(t *testing.T) {
	w := newWF(t, 10, 0)
	w.approve(h1)
	// A revision after one approval: the new version is used and approvals restart.
	w.at(4*time.Minute+30*time.Second, workflows.UpdateScope, workflows.ScopeInput{Criteria: store.ScopeCriteria{Services: []string{"backup"}}, Actor: "alice"})
	w.at(6*time.Minute, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: h1, Actor: "alice"})
	w.closeAt(time.Hour)
	st := w.run("", workflows.Timing{})
	require.Equal(t, 2, st.Scope.Version)
	require.Len(t, w.rounds, 1)
	require.Equal(t, 2, w.rounds[0].ScopeVersion)
}

func TestPartnerConfirmsAfterUncoveredTenantsWereNotified(t *testing.T) {
	w := newWF(t, 10, 4)
	w.approve(h1)
	w.env.RegisterDelayedCallback(func() {
		require.Equal(t, []string{"initial/uncovered"}, kinds(w.rounds), "uncovered tenants go at once")
	}, 30*time.Minute)
	w.at(time.Hour, workflows.UpdatePartnerDecision, workflows.PartnerDecisionInput{Confirm: true, ContentHash: h1, Actor: "partner:devicecare"})
	w.closeAt(2 * time.Hour)
	st := w.run("devicecare", workflows.Timing{})
	require.Equal(t, []string{"initial/uncovered", "initial/covered"}, kinds(w.rounds))
	require.Equal(t, []string{"confirmed"}, w.decided)
	require.Equal(t, "confirmed", st.Partner.Status)
	require.Zero(t, w.reminded)
}

func TestPartnerRequestsChanges(t *testing.T) {
	w := newWF(t, 10, 4)
	w.approve(h1)
	w.at(time.Hour, workflows.UpdatePartnerDecision, workflows.PartnerDecisionInput{Confirm: false, ContentHash: h1, Comment: "name our service", Actor: "partner:devicecare"})
	w.at(61*time.Minute, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: h1, Actor: "alice"})
	w.at(62*time.Minute, workflows.UpdateDraft, workflows.DraftInput{ContentHash: h2, Actor: "alice"})
	w.at(63*time.Minute, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: h2, Actor: "alice"})
	w.at(64*time.Minute, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: h2, Actor: "bob"})
	w.at(2*time.Hour, workflows.UpdatePartnerDecision, workflows.PartnerDecisionInput{Confirm: true, ContentHash: h2, Actor: "partner:devicecare"})
	w.closeAt(3 * time.Hour)
	st := w.run("devicecare", workflows.Timing{})
	require.Equal(t, []string{"changes_requested", "confirmed"}, w.decided)
	require.Len(t, w.rejected, 1)
	require.Contains(t, w.rejected[0], "partner asked for changes")
	require.Equal(t, []string{"initial/uncovered", "initial/covered"}, kinds(w.rounds))
	require.Equal(t, h2, w.rounds[1].ContentHash)
	require.Equal(t, "confirmed", st.Partner.Status)
}

func TestPartnerSilentIsRemindedAlertedAndOverridden(t *testing.T) {
	w := newWF(t, 10, 10)
	w.approve(h1)
	w.at(20*time.Hour, workflows.UpdateOverride, workflows.OverrideInput{Actor: "alice"}) // no justification: refused
	w.at(30*time.Hour, workflows.UpdateOverride, workflows.OverrideInput{Justification: "regulator deadline; partner unreachable", Actor: "alice"})
	w.closeAt(31 * time.Hour)
	st := w.run("devicecare", workflows.Timing{PartnerResponse: 24 * time.Hour})
	require.Equal(t, 2, w.reminded)
	require.Contains(t, w.alerts, "partner_silent")
	require.True(t, st.Partner.Alerted)
	require.Len(t, w.rejected, 1)
	require.Contains(t, w.rejected[0], "justification")
	require.Equal(t, []string{"overridden"}, w.decided)
	require.Equal(t, []string{"initial/covered"}, kinds(w.rounds), "every tenant is covered: nothing went before the override")
}

func TestRemindersThenEscalationToAlternates(t *testing.T) {
	w := newWF(t, 10, 0)
	w.approve(h1)
	w.env.RegisterDelayedCallback(func() { w.acked = 6 }, 2*time.Hour)
	w.closeAt(10 * time.Hour)
	st := w.run("", workflows.Timing{ReminderAfter: []time.Duration{3 * time.Hour, 6 * time.Hour}, EscalateFromRound: 2, AckCheckInterval: 30 * time.Minute})
	require.Equal(t, []string{"initial", "reminder", "escalation+alternates"}, kinds(w.rounds))
	require.True(t, w.rounds[1].OnlyUnacked)
	require.True(t, w.rounds[2].OnlyUnacked)
	require.Equal(t, 2, st.Reminders)
	require.Equal(t, 6, st.Acks.Acknowledged)
}

func TestFollowupAndCloseRules(t *testing.T) {
	w := newWF(t, 10, 0)
	w.approve(h1)
	w.at(time.Hour, workflows.UpdateFollowup, workflows.FollowupInput{Actor: "alice"})
	w.at(2*time.Hour, workflows.UpdateClose, workflows.CloseInput{Actor: "alice"}) // not all acknowledged, no reason
	w.closeAt(3 * time.Hour)
	st := w.run("", workflows.Timing{})
	require.Equal(t, []string{"initial", "followup"}, kinds(w.rounds))
	require.Equal(t, 1, st.Followups)
	require.Len(t, w.rejected, 1)
	require.Contains(t, w.rejected[0], "reason: required")
	require.Equal(t, "responder closed", st.CloseReason)
}

func TestDeadlineAlertsWhileNoticesAreNotOut(t *testing.T) {
	w := newWF(t, 10, 0)
	// The earliest deadline is 10 h after awareness; approvals come only after 9.5 h.
	w.at(time.Minute, workflows.UpdateAssess, workflows.AssessInput{Reportable: true, Rationale: "r", Actor: "alice"})
	w.at(2*time.Minute, workflows.UpdateDraft, workflows.DraftInput{ContentHash: h1, Actor: "alice"})
	w.at(3*time.Minute, workflows.UpdateScope, workflows.ScopeInput{Criteria: store.ScopeCriteria{Services: []string{"compute"}}, Actor: "alice"})
	w.env.SetStartTime(aware.Add(time.Hour))
	w.at(9*time.Hour, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: h1, Actor: "alice"})
	w.at(9*time.Hour+time.Minute, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: h1, Actor: "bob"})
	w.closeAt(12 * time.Hour)
	w.run("", workflows.Timing{})
	var deadline []string
	for _, a := range w.alerts {
		if strings.HasPrefix(a, "deadline_") {
			deadline = append(deadline, a)
		}
	}
	require.Equal(t, []string{"deadline_50", "deadline_75", "deadline_90"}, deadline)
}

func TestScopeMatchingNoTenantIsRefused(t *testing.T) {
	w := newWF(t, 0, 0)
	w.at(time.Minute, workflows.UpdateAssess, workflows.AssessInput{Reportable: true, Rationale: "r", Actor: "alice"})
	w.env.RegisterDelayedCallback(func() {
		w.env.UpdateWorkflow(workflows.UpdateScope, "", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("validator refused: %v", err) },
			OnAccept: func() {},
			OnComplete: func(_ any, err error) {
				require.ErrorContains(t, err, "no tenant matches")
			},
		}, workflows.ScopeInput{Criteria: store.ScopeCriteria{TenantIDs: []string{"t-nope"}}, Actor: "alice"})
	}, 2*time.Minute)
	w.closeAt(time.Hour)
	st := w.run("", workflows.Timing{})
	require.Zero(t, st.Scope.Version, "the empty version is not taken")
}

func TestTextThatCannotBeStoredIsRefused(t *testing.T) {
	w := newWF(t, 10, 0)
	w.at(time.Minute, workflows.UpdateAssess, workflows.AssessInput{Reportable: true, Rationale: "bad\x00byte", Actor: "alice"})
	w.at(2*time.Minute, workflows.UpdateAssess, workflows.AssessInput{Reportable: true, Rationale: strings.Repeat("é", 10001), Actor: "alice"})
	w.at(3*time.Minute, workflows.UpdateAssess, workflows.AssessInput{Reportable: true, Rationale: strings.Repeat("é", 10000), Actor: "alice"})
	w.closeAt(time.Hour)
	st := w.run("", workflows.Timing{})
	require.Len(t, w.rejected, 2)
	require.Contains(t, w.rejected[0], "cannot be stored")
	require.Contains(t, w.rejected[1], "at most 10000 characters")
	require.NotNil(t, st.Reportable, "10,000 two-byte characters are accepted")
}
