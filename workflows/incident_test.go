package workflows_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
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

// fakePhase is one phase of the fake ledger: the tenants not covered by the partner and
// the covered ones, each released and notified as a group.
type fakePhase struct {
	relUnc, relCov bool
	notUnc, notCov bool
	hashUnc        string
	hashCov        string
	notifiedAt     time.Time
	reminders      int
}

// wf runs IncidentWorkflow in the time-skipping test environment with every activity and
// the pass child workflow mocked over a small fake ledger that follows the same rules as
// the real one: releases need two approvals of (hash, version) and, for covered tenants,
// the partner's confirmation of the hash; passes notify what is released.
type wf struct {
	t            *testing.T
	env          *testsuite.TestWorkflowEnvironment
	total        int
	covered      int
	acked        int
	scopes       int
	phases       []*fakePhase
	openedPhases []string                   // hashes whose draft phase was opened
	openFails    int                        // OpenDraftPhase fails this many times first
	approvals    map[string]map[string]bool // hash/version → approvers
	partnerOK    map[string]bool            // hash → confirmed or overridden
	reviewHash   string
	failSends    bool  // every page refused for good
	remindErr    error // what RemindPartner answers
	releases     []activities.ReleaseInput
	passes       []string // kind:tenants notified
	plans        []activities.PlanStepInput
	alerts       []string
	alertLog     []string // kind:tenants@time
	reminded     int
	decided      []string
	rejected     []string
	slowStage    workflows.Stage
}

func newWF(t *testing.T, total, covered int) *wf {
	return newWFWith(t, total, covered, "")
}

// newWFWith delays the SetStage activity for slowStage by a minute of workflow time.
func newWFWith(t *testing.T, total, covered int, slowStage workflows.Stage) *wf {
	var suite testsuite.WorkflowTestSuite
	w := &wf{t: t, env: suite.NewTestWorkflowEnvironment(), total: total, covered: covered,
		approvals: map[string]map[string]bool{}, partnerOK: map[string]bool{}, slowStage: slowStage}
	env := w.env
	var a *activities.Activities
	env.RegisterActivity(&activities.Activities{})
	env.RegisterWorkflow(workflows.NotifyPassWorkflow)
	if slowStage != "" {
		env.OnActivity(a.SetStage, mock.Anything, mock.MatchedBy(func(in activities.StageInput) bool { return in.Stage == string(slowStage) })).
			After(time.Minute).Return(nil)
	}
	env.OnActivity(a.SetStage, mock.Anything, mock.Anything).Return(nil)
	env.OnActivity(a.RecordAssessment, mock.Anything, mock.Anything).Return(nil)
	env.OnActivity(a.Audit, mock.Anything, mock.Anything).Return(int64(1), nil)
	env.OnActivity(a.ResolveScope, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ScopeActivityInput) (activities.ScopeResult, error) {
		w.scopes++
		added := 0
		if w.scopes == 1 && w.total > 0 {
			w.phases = append(w.phases, &fakePhase{})
			added = w.total
		}
		return activities.ScopeResult{Version: w.scopes, Total: w.total, PartnerCovered: w.covered, Added: added, Earliest: aware.Add(10 * time.Hour)}, nil
	})
	env.OnActivity(a.SaveDraft, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.DraftActivityInput) (string, error) {
		return in.ContentHash, nil
	})
	env.OnActivity(a.Approve, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ApproveActivityInput) (int, error) {
		key := fmt.Sprintf("%s/%d", in.ContentHash, in.ScopeVersion)
		if w.approvals[key] == nil {
			w.approvals[key] = map[string]bool{}
		}
		w.approvals[key][in.Actor] = true
		return len(w.approvals[key]), nil
	})
	env.OnActivity(a.Release, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ReleaseInput) (activities.ReleaseResult, error) {
		if len(w.approvals[fmt.Sprintf("%s/%d", in.ContentHash, in.ScopeVersion)]) < 2 {
			return activities.ReleaseResult{}, temporal.NewNonRetryableApplicationError("not approved", activities.ErrTypeInvalidInput, nil)
		}
		w.releases = append(w.releases, in)
		var res activities.ReleaseResult
		for _, p := range w.phases {
			if !p.relUnc && w.total > w.covered {
				p.relUnc, p.hashUnc = true, in.ContentHash
				res.Released += w.total - w.covered
			}
			if !p.relCov && w.covered > 0 {
				if w.partnerOK[in.ContentHash] {
					p.relCov, p.hashCov = true, in.ContentHash
					res.Released += w.covered
				} else {
					res.AwaitReview += w.covered
				}
			}
		}
		return res, nil
	})
	env.OnActivity(a.OpenPhase, mock.Anything, mock.Anything).Return(func(context.Context, activities.OpenPhaseInput) (int, error) {
		w.phases = append(w.phases, &fakePhase{})
		return len(w.phases), nil
	})
	env.OnActivity(a.OpenDraftPhase, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.OpenDraftPhaseInput) (int, error) {
		if w.openFails > 0 {
			w.openFails--
			return 0, temporal.NewNonRetryableApplicationError("phase not opened", "Test", nil)
		}
		w.openedPhases = append(w.openedPhases, in.ContentHash)
		w.phases = append(w.phases, &fakePhase{})
		return len(w.phases), nil
	})
	env.OnActivity(a.Ledger, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.LedgerInput) (activities.LedgerSummary, error) {
		return w.ledger(in.ReminderAfter), nil
	})
	env.OnActivity(a.DeadlineRisk, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.DeadlineRiskInput) (activities.DeadlineRiskResult, error) {
		return w.risk(in.Fractions), nil
	})
	env.OnActivity(a.OpenPartnerReview, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.PartnerReviewInput) (int64, error) {
		w.reviewHash = in.ContentHash
		return 1, nil
	})
	env.OnActivity(a.RemindPartner, mock.Anything, mock.Anything).Return(func(context.Context, activities.PartnerNudgeInput) error {
		w.reminded++
		return w.remindErr
	})
	env.OnActivity(a.DecidePartner, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.DecisionInput) error {
		w.decided = append(w.decided, in.Status)
		if in.Status == "confirmed" || in.Status == "overridden" {
			w.partnerOK[w.reviewHash] = true
		}
		return nil
	})
	env.OnActivity(a.AlertResponders, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.AlertInput) error {
		w.alerts = append(w.alerts, in.Kind)
		w.alertLog = append(w.alertLog, fmt.Sprintf("%s:%d@%s", in.Kind, in.Tenants, w.env.Now().UTC().Truncate(time.Second).Format(time.RFC3339)))
		return nil
	})
	env.OnActivity(a.CloseIncident, mock.Anything, mock.Anything).Return(nil)
	env.OnWorkflow(workflows.NotifyPassWorkflow, mock.Anything, mock.Anything).Return(func(_ workflow.Context, in workflows.PassInput) (workflows.PassResult, error) {
		return w.pass(in), nil
	})
	return w
}

func (w *wf) ledger(after []time.Duration) activities.LedgerSummary {
	l := activities.LedgerSummary{Phases: len(w.phases), Acknowledged: w.acked}
	if len(w.phases) > 0 {
		l.Tenants = w.total
	}
	now := w.env.Now()
	for i, p := range w.phases {
		unc, cov := w.total-w.covered, w.covered
		released := 0
		if p.relUnc {
			released += unc
		}
		if p.relCov {
			released += cov
		}
		l.Released += released
		l.Unreleased += w.total - released
		notified := 0
		if p.notUnc {
			notified += unc
		}
		if p.notCov {
			notified += cov
		}
		l.Notified += notified
		l.Owed += w.total - notified
		if (p.relUnc && !p.notUnc && unc > 0) || (p.relCov && !p.notCov && cov > 0) {
			l.PlannablePhases = append(l.PlannablePhases, i+1)
			if w.failSends {
				l.Failed += released - notified
				l.LastError = "SendGridUnauthorized: 401"
			}
		}
		if i == 0 && notified == w.total && w.acked < w.total && p.reminders < len(after) {
			due := p.notifiedAt.Add(after[p.reminders])
			if !due.After(now) {
				l.RemindersDue = w.total - w.acked
			} else {
				l.NextReminderAt = &due
			}
		}
	}
	return l
}

// risk is DeadlineRisk over the fake ledger: every tenant's deadline is 10 h after awareness.
func (w *wf) risk(fractions []float64) activities.DeadlineRiskResult {
	owed := 0
	if len(w.phases) > 0 {
		owed = w.total
		if w.phases[0].notUnc {
			owed -= w.total - w.covered
		}
		if w.phases[0].notCov {
			owed -= w.covered
		}
	}
	var res activities.DeadlineRiskResult
	now := w.env.Now()
	deadline := aware.Add(10 * time.Hour)
	for _, f := range fractions {
		at := aware.Add(time.Duration(f * float64(10*time.Hour)))
		lv := activities.RiskCount{Fraction: f}
		if !at.After(now) {
			lv.Tenants, lv.Earliest = owed, &deadline
		} else if owed > 0 && (res.Next == nil || at.Before(*res.Next)) {
			res.Next = &at
		}
		res.Levels = append(res.Levels, lv)
	}
	return res
}

func (w *wf) pass(in workflows.PassInput) workflows.PassResult {
	w.plans = append(w.plans, in.Plan)
	res := workflows.PassResult{Pass: in.Plan.Pass, Kind: in.Plan.Kind, Phase: in.Plan.Phase}
	n := 0
	if in.Plan.Phase == 0 {
		p := w.phases[0]
		p.reminders++
		n = w.total - w.acked
	} else {
		p := w.phases[in.Plan.Phase-1]
		if w.failSends {
			res.FailedPages, res.Error = 1, "SendGridUnauthorized: 401"
		} else {
			if p.relUnc && !p.notUnc {
				p.notUnc = true
				n += w.total - w.covered
			}
			if p.relCov && !p.notCov {
				p.notCov = true
				n += w.covered
			}
			if (p.notUnc || w.covered == w.total) && (p.notCov || w.covered == 0) {
				p.notifiedAt = w.env.Now()
			}
		}
	}
	w.passes = append(w.passes, fmt.Sprintf("%s:%d", in.Plan.Kind, n))
	res.Sent = n
	return res
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

func (w *wf) alertsOf(prefix string) []string {
	var out []string
	for _, a := range w.alerts {
		if strings.HasPrefix(a, prefix) {
			out = append(out, a)
		}
	}
	return out
}

func TestNotReportableIsClosedAndDocumented(t *testing.T) {
	w := newWF(t, 10, 0)
	w.at(time.Minute, workflows.UpdateAssess, workflows.AssessInput{Reportable: false, Rationale: "encrypted data, key not exposed", Actor: "alice"})
	st := w.run("", workflows.Timing{})
	require.Equal(t, workflows.StageClosed, st.Stage)
	require.Contains(t, st.CloseReason, "not reportable: encrypted data")
	require.Empty(t, w.passes)
}

func TestAssessmentNeedsRationale(t *testing.T) {
	w := newWF(t, 10, 0)
	w.at(time.Minute, workflows.UpdateAssess, workflows.AssessInput{Reportable: true, Actor: "alice"})
	w.closeAt(2 * time.Minute)
	st := w.run("", workflows.Timing{})
	require.Equal(t, workflows.StageClosed, st.Stage)
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
	require.Equal(t, []string{"initial:10"}, w.passes)
	require.Equal(t, workflows.StageClosed, st.Stage)
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
		require.Empty(t, w.passes, "one approval of the new draft is not enough")
	}, 7*time.Minute)
	w.at(8*time.Minute, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: h2, Actor: "bob"})
	w.at(9*time.Minute, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: h2, Actor: "alice"})
	w.closeAt(10 * time.Minute)
	st := w.run("", workflows.Timing{})
	require.Len(t, w.rejected, 1)
	require.Contains(t, w.rejected[0], "is not the current draft")
	require.Equal(t, h2, st.ContentHash)
	require.Equal(t, []string{"bob", "alice"}, st.Approvers)
	require.Equal(t, []string{"initial:10"}, w.passes)
	require.Len(t, w.releases, 1)
	require.Equal(t, h2, w.releases[0].ContentHash)
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
	require.Len(t, w.releases, 1)
	require.Equal(t, 2, w.releases[0].ScopeVersion)
	require.Equal(t, []string{"initial:10"}, w.passes)
}

// Item 4 of the ledger issue: while the stage change to notifying is being recorded, a
// draft must not slip in and be sent unapproved. Before handlers and the main line
// shared one lock and the stage was set before its activity ran, the draft was accepted
// and the round was planned with its unapproved hash.
func TestDelayedSetStageAndDraftSendNothingUnapproved(t *testing.T) {
	w := newWFWith(t, 10, 0, workflows.StageNotifying)
	w.approve(h1)
	w.at(5*time.Minute+10*time.Second, workflows.UpdateDraft, workflows.DraftInput{ContentHash: h2, Actor: "mallory"})
	w.closeAt(time.Hour)
	st := w.run("", workflows.Timing{})
	require.Len(t, w.rejected, 1)
	require.Contains(t, w.rejected[0], "draft: not allowed in stage notifying")
	require.Equal(t, h1, st.ContentHash)
	require.Len(t, w.releases, 1)
	require.Equal(t, h1, w.releases[0].ContentHash)
	require.Len(t, w.approvals[h1+"/1"], 2)
	require.Equal(t, []string{"initial:10"}, w.passes)
}

func TestPartnerConfirmsAfterUncoveredTenantsWereNotified(t *testing.T) {
	w := newWF(t, 10, 4)
	w.approve(h1)
	w.env.RegisterDelayedCallback(func() {
		require.Equal(t, []string{"initial:6"}, w.passes, "uncovered tenants go at once")
	}, 30*time.Minute)
	w.at(time.Hour, workflows.UpdatePartnerDecision, workflows.PartnerDecisionInput{Confirm: true, ContentHash: h1, Actor: "partner:devicecare"})
	w.closeAt(2 * time.Hour)
	st := w.run("devicecare", workflows.Timing{})
	require.Equal(t, []string{"initial:6", "initial:4"}, w.passes)
	require.Equal(t, []string{"confirmed"}, w.decided)
	require.Equal(t, workflows.PartnerConfirmed, st.Partner.Status)
	require.Zero(t, w.reminded)
}

// A second approval whose phase fails to open leaves the draft approved; a retry opens
// it and sends it.
func TestRetryOpensThePhaseAnApprovalFailedToOpen(t *testing.T) {
	w := newWF(t, 10, 0)
	w.openFails = 1
	w.approve(h1)
	w.at(time.Hour, workflows.UpdateDraft, workflows.DraftInput{ContentHash: h2, Actor: "alice", Phase: 2})
	w.at(time.Hour+time.Minute, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: h2, Actor: "alice"})
	var failed error
	w.env.RegisterDelayedCallback(func() {
		w.env.UpdateWorkflow(workflows.UpdateApprove, "", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { failed = err }, OnAccept: func() {},
			OnComplete: func(_ any, err error) { failed = err },
		}, workflows.ApproveInput{ContentHash: h2, Actor: "bob"})
	}, time.Hour+2*time.Minute)
	w.at(time.Hour+3*time.Minute, workflows.UpdateRetry, workflows.RetryInput{Actor: "alice"})
	w.closeAt(3 * time.Hour)
	st := w.run("", workflows.Timing{})
	require.ErrorContains(t, failed, "phase not opened")
	require.Equal(t, []string{h2}, w.openedPhases, "the retry opened it")
	require.Equal(t, 2, st.ApprovedPhase)
	require.Equal(t, []string{"initial:10", "followup:10"}, w.passes)
}

// The next phase waits for the partner's answer on the current one: its review would
// supersede the pending one, and the covered tenants would wait for nobody.
func TestNextPhaseWaitsForThePartnersAnswer(t *testing.T) {
	w := newWF(t, 10, 4)
	w.approve(h1)
	w.at(30*time.Minute, workflows.UpdateDraft, workflows.DraftInput{ContentHash: h2, Actor: "alice", Phase: 2}) // refused
	w.at(time.Hour, workflows.UpdatePartnerDecision, workflows.PartnerDecisionInput{Confirm: true, ContentHash: h1, Actor: "partner:devicecare"})
	w.at(time.Hour+time.Minute, workflows.UpdateDraft, workflows.DraftInput{ContentHash: h2, Actor: "alice", Phase: 2})
	w.closeAt(2 * time.Hour)
	st := w.run("devicecare", workflows.Timing{})
	require.Len(t, w.rejected, 1)
	require.Contains(t, w.rejected[0], "the partner has not answered on the current phase's notice")
	require.Equal(t, 2, st.DraftPhase)
	require.Equal(t, h2, st.ContentHash)
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
	require.Equal(t, []string{"initial:6", "initial:4"}, w.passes)
	require.Equal(t, h1, w.phases[0].hashUnc, "the uncovered tenants had the first approved notice")
	require.Equal(t, h2, w.phases[0].hashCov, "the covered tenants get the notice the partner confirmed")
	require.Equal(t, workflows.PartnerConfirmed, st.Partner.Status)
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
	require.Equal(t, []string{"initial:10"}, w.passes, "every tenant is covered: nothing went before the override")
}

func TestRemindersThenEscalation(t *testing.T) {
	w := newWF(t, 10, 0)
	w.approve(h1)
	w.env.RegisterDelayedCallback(func() { w.acked = 6 }, 2*time.Hour)
	w.closeAt(10 * time.Hour)
	st := w.run("", workflows.Timing{ReminderAfter: []time.Duration{3 * time.Hour, 6 * time.Hour}, EscalateFromRound: 2, AckCheckInterval: 30 * time.Minute})
	require.Equal(t, []string{"initial:10", "reminder:4", "reminder:4"}, w.passes)
	for _, p := range w.plans[1:] {
		require.Equal(t, 0, p.Phase)
		require.Equal(t, 2, p.EscalateFrom, "the database adds alternates from the second reminder on")
		require.Equal(t, []time.Duration{3 * time.Hour, 6 * time.Hour}, p.ReminderAfter)
	}
	require.Equal(t, 6, st.Ledger.Acknowledged)
}

func TestFollowupIsTheNextPhasesDraftAndCloseRules(t *testing.T) {
	w := newWF(t, 10, 0)
	w.approve(h1)
	w.at(time.Hour, workflows.UpdateFollowup, workflows.FollowupInput{Actor: "alice"})                                  // the old follow-up: refused
	w.at(time.Hour+time.Minute, workflows.UpdateDraft, workflows.DraftInput{ContentHash: h2, Actor: "alice", Phase: 3}) // skips phase 2: refused
	w.at(time.Hour+2*time.Minute, workflows.UpdateDraft, workflows.DraftInput{ContentHash: h2, Actor: "alice", Phase: 2})
	w.at(time.Hour+3*time.Minute, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: h2, Actor: "alice"})
	w.at(time.Hour+4*time.Minute, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: h2, Actor: "bob"})
	w.at(2*time.Hour, workflows.UpdateClose, workflows.CloseInput{Actor: "alice"}) // not all acknowledged, no reason
	w.closeAt(3 * time.Hour)
	st := w.run("", workflows.Timing{})
	require.Equal(t, []string{"initial:10", "followup:10"}, w.passes)
	require.Equal(t, 2, w.plans[1].Phase)
	require.Equal(t, 2, st.Phases)
	require.Equal(t, 2, st.ApprovedPhase)
	require.Equal(t, []string{h2}, w.openedPhases, "the phase opened is the approved draft's")
	require.Len(t, w.rejected, 3)
	require.Contains(t, w.rejected[0], "next phase's own notice draft")
	require.Contains(t, w.rejected[1], "the next phase is 2")
	require.Contains(t, w.rejected[2], "reason: required")
	require.Equal(t, "responder closed", st.CloseReason)
}

func TestDeadlineAlertsWhileNoticesAreNotOut(t *testing.T) {
	w := newWF(t, 10, 0)
	// Every deadline is 10 h after awareness; approvals come only after 9.5 h.
	w.at(time.Minute, workflows.UpdateAssess, workflows.AssessInput{Reportable: true, Rationale: "r", Actor: "alice"})
	w.at(2*time.Minute, workflows.UpdateDraft, workflows.DraftInput{ContentHash: h1, Actor: "alice"})
	w.at(3*time.Minute, workflows.UpdateScope, workflows.ScopeInput{Criteria: store.ScopeCriteria{Services: []string{"compute"}}, Actor: "alice"})
	w.env.SetStartTime(aware.Add(30 * time.Minute))
	w.at(9*time.Hour, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: h1, Actor: "alice"})
	w.at(9*time.Hour+time.Minute, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: h1, Actor: "bob"})
	w.closeAt(12 * time.Hour)
	w.run("", workflows.Timing{})
	require.Equal(t, []string{"deadline_50", "deadline_75", "deadline_90"}, w.alertsOf("deadline_"),
		"no 100 % alert: every tenant was notified before its deadline")
}

// Item 5: a deadline already past when the scope is set alerts at once, at 100 %, naming
// the tenants; the lower points are not repeated for the same tenants.
func TestDeadlineAlreadyPastAtScopingAlertsAtOnce(t *testing.T) {
	w := newWF(t, 10, 0)
	w.env.SetStartTime(aware.Add(11 * time.Hour))
	w.at(time.Minute, workflows.UpdateAssess, workflows.AssessInput{Reportable: true, Rationale: "r", Actor: "alice"})
	w.at(3*time.Minute, workflows.UpdateScope, workflows.ScopeInput{Criteria: store.ScopeCriteria{Services: []string{"compute"}}, Actor: "alice"})
	w.closeAt(time.Hour)
	w.run("", workflows.Timing{})
	require.Equal(t, []string{"deadline_100"}, w.alertsOf("deadline_"))
	require.Equal(t, []string{"deadline_100:10@" + aware.Add(11*time.Hour+3*time.Minute).Format(time.RFC3339)}, w.alertLog)
}

// Item 2: a pass whose pages SendGrid refuses for good does not count as done: the
// tenants stay owed, the responders are alerted, retries follow, and once the cause is
// fixed a retry notifies them.
func TestRefusedSendsStayOwedAlertAndRetry(t *testing.T) {
	w := newWF(t, 10, 0)
	w.failSends = true
	w.approve(h1)
	w.env.RegisterDelayedCallback(func() {
		require.Equal(t, []string{"initial:0", "initial:0"}, w.passes, "the first automatic retry ran")
		require.Equal(t, []string{"send_failed", "send_failed"}, w.alertsOf("send_failed"))
		w.failSends = false // the key was fixed
	}, 12*time.Minute)
	w.at(13*time.Minute, workflows.UpdateRetry, workflows.RetryInput{Actor: "alice"})
	w.closeAt(3 * time.Hour)
	st := w.run("", workflows.Timing{RetryAfter: []time.Duration{5 * time.Minute}})
	require.Equal(t, []string{"initial:0", "initial:0", "initial:10"}, w.passes)
	require.Equal(t, 10, st.Ledger.Notified)
	require.Empty(t, st.Ledger.PlannablePhases)
	require.Contains(t, st.LastError, "401")
}

// Item 3: bounces reported by the webhook (several signals) lead to one pass after the
// coalescing window.
func TestDeliveryFailuresAreCoalescedIntoOnePass(t *testing.T) {
	w := newWF(t, 10, 0)
	w.approve(h1)
	signal := func(d time.Duration) {
		w.env.RegisterDelayedCallback(func() {
			w.phases[0].notUnc = false // as the ledger shows once a primary bounced
			w.env.SignalWorkflow(workflows.SignalDeliveryFailures, 1)
		}, d)
	}
	signal(20 * time.Minute)
	signal(20*time.Minute + 5*time.Second)
	signal(20*time.Minute + 10*time.Second)
	var passesAt21 []string
	w.env.RegisterDelayedCallback(func() { passesAt21 = append([]string(nil), w.passes...) }, 20*time.Minute+50*time.Second)
	w.closeAt(time.Hour)
	w.run("", workflows.Timing{FailureCoalesce: time.Minute})
	require.Equal(t, []string{"initial:10"}, passesAt21, "nothing before the coalescing window ends")
	require.Equal(t, []string{"initial:10", "initial:10"}, w.passes)
}

// Item 6: the scope may grow after notices went out; the new version needs approval and
// then only what the ledger owes goes out.
func TestScopeWidenedAfterTrackingNeedsApprovalThenSends(t *testing.T) {
	w := newWF(t, 10, 0)
	w.approve(h1)
	w.env.RegisterDelayedCallback(func() {
		w.total = 15
		w.phases[0].relUnc, w.phases[0].notUnc = false, false // five new tenants owed, unreleased
	}, 59*time.Minute)
	w.at(time.Hour, workflows.UpdateScope, workflows.ScopeInput{Criteria: store.ScopeCriteria{Services: []string{"compute", "backup"}}, Actor: "alice"})
	w.env.RegisterDelayedCallback(func() {
		st := queryStatus(t, w.env)
		require.Equal(t, workflows.StageApproval, st.Stage)
		require.Equal(t, []string{"initial:10"}, w.passes, "nothing goes to new tenants before the new version is approved")
	}, 61*time.Minute)
	w.at(62*time.Minute, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: h1, Actor: "alice"})
	w.at(63*time.Minute, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: h1, Actor: "bob"})
	w.closeAt(2 * time.Hour)
	st := w.run("", workflows.Timing{})
	require.Equal(t, 2, st.Scope.Version)
	require.Len(t, w.releases, 2)
	require.Equal(t, 2, w.releases[1].ScopeVersion)
	require.Len(t, w.passes, 2)
}

func queryStatus(t *testing.T, env *testsuite.TestWorkflowEnvironment) workflows.Status {
	v, err := env.QueryWorkflow(workflows.QueryStatus)
	require.NoError(t, err)
	var st workflows.Status
	require.NoError(t, v.Get(&st))
	return st
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

// A tenant owed again with no signal (the webhook's signal was lost) is still sent to:
// the ledger alone schedules the pass.
func TestOwedTenantsWithoutASignalGetAPass(t *testing.T) {
	w := newWF(t, 10, 0)
	w.approve(h1)
	w.env.RegisterDelayedCallback(func() { w.phases[0].notUnc = false }, 20*time.Minute)
	w.closeAt(3 * time.Hour)
	w.run("", workflows.Timing{AckCheckInterval: time.Hour, FailureCoalesce: time.Minute})
	require.Equal(t, []string{"initial:10", "initial:10"}, w.passes)
}

// A partner reminder that cannot be sent (a refused key) must not end the incident.
func TestPartnerReminderRefusedKeepsTheIncidentGoing(t *testing.T) {
	w := newWF(t, 10, 4)
	w.remindErr = temporal.NewNonRetryableApplicationError("SendGrid refused the key", "SendGridUnauthorized", nil)
	w.approve(h1)
	w.at(20*time.Hour, workflows.UpdatePartnerDecision, workflows.PartnerDecisionInput{Confirm: true, ContentHash: h1, Actor: "partner:devicecare"})
	w.closeAt(21 * time.Hour)
	st := w.run("devicecare", workflows.Timing{PartnerResponse: 24 * time.Hour})
	require.Equal(t, 1, w.reminded, "the reminder at 12 h was refused")
	require.Equal(t, []string{"initial:6", "initial:4"}, w.passes)
	require.Equal(t, workflows.StageClosed, st.Stage)
}
