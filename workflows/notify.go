package workflows

import (
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/breachflow/breachflow/activities"
)

var acts *activities.Activities // nil: method values name the activities

// nonRetryable are the error types no retry can fix.
var nonRetryable = []string{activities.ErrTypeInvalidInput, activities.ErrTypeNotFound, "InvalidPage", "SendGridRejected", "SendGridUnauthorized"}

// activityHeartbeat is how soon an activity whose worker died is retried: the worker
// heartbeats every activity while it runs (worker.Options).
const activityHeartbeat = 15 * time.Second

func activityCtx(ctx workflow.Context, timeout time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		HeartbeatTimeout:    activityHeartbeat,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			NonRetryableErrorTypes: nonRetryable,
		},
	})
}

// planAheadPages is how many planned pages a pass may have waiting for the window.
const planAheadPages = 64

// NotifyPassWorkflow sends one notification pass: it plans the pass step by step
// (each step one keyset chunk of tenants the ledger owes) while sending the pages already
// planned through a sliding window of at most Window concurrent SendPage activities, so
// the first page goes out as soon as the first step is planned. It continues as new every
// PagesPerRun pages so that no history grows past a few thousand events. A page SendGrid
// refuses for good leaves its tenants owed (the ledger says so) and is counted; the other
// pages still go out.
func NotifyPassWorkflow(ctx workflow.Context, in PassInput) (PassResult, error) {
	if in.Window <= 0 {
		in.Window = 4
	}
	if in.PagesPerRun <= 0 {
		in.PagesPerRun = 200
	}
	in.Runs++
	planCtx := activityCtx(ctx, 5*time.Minute)
	// The worker heartbeats a page every few seconds, during its request too
	// (worker.Options): a dead worker's page is retried within seconds. The attempt may run long while it records what SendGrid
	// accepted through a database outage.
	sendCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute,
		HeartbeatTimeout:    10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			NonRetryableErrorTypes: nonRetryable,
		},
	})
	// Planning runs ahead of the window by up to ahead pages per lane, in the pass's lanes
	// at the same time. Planning only two windows ahead in one lane left the planner (the
	// slowest part of a large pass) idle for half of every step; pages are only numbers
	// here, so planning now keeps going while the sends go out.
	ahead := 2 * in.Window
	if workflow.GetVersion(ctx, "plan-lanes", workflow.DefaultVersion, 1) >= 1 {
		ahead = max(ahead, planAheadPages)
	}
	lanes := max(in.Lanes, 1)
	if len(in.LanePlanned) != lanes {
		// A pass's first run, or one planned as a single lane before lanes.
		in.LanePlanned, in.LaneNext = make([]activities.PlanStepResult, lanes), make([]int, lanes)
		if lanes == 1 {
			in.LanePlanned[0], in.LaneNext[0] = in.Planned, in.NextPage
		}
	}
	sel := workflow.NewSelector(ctx)
	pending, launched := 0, 0
	planning := make([]bool, lanes)
	var planErr error
	plan := func(lane int) {
		planning[lane] = true
		step := in.Plan
		if lanes > 1 {
			step.Lane, step.Lanes = lane, lanes
		}
		f := workflow.ExecuteActivity(planCtx, acts.PlanStep, step)
		sel.AddFuture(f, func(f workflow.Future) {
			planning[lane] = false
			var r activities.PlanStepResult
			if err := f.Get(ctx, &r); err != nil {
				planErr = err
				return
			}
			in.LanePlanned[lane] = r
		})
	}
	send := func(page int) {
		f := workflow.ExecuteActivity(sendCtx, acts.SendPage, activities.SendPageInput{IncidentID: in.Plan.IncidentID, Round: in.Plan.Pass, Page: page})
		pending++
		launched++
		sel.AddFuture(f, func(f workflow.Future) {
			pending--
			var r activities.SendPageResult
			if err := f.Get(ctx, &r); err != nil {
				in.FailedPages++
				if in.Error == "" {
					in.Error = err.Error()
				}
				workflow.GetLogger(ctx).Warn("page failed", "incident_id", in.Plan.IncidentID, "pass", in.Plan.Pass, "page", page, "error", err)
				return
			}
			in.Sent += r.Sent
		})
	}
	// nextLane is the lane whose next planned page is the earliest unsent one (-1: none).
	nextLane := func() int {
		best := -1
		for l := range lanes {
			if in.LaneNext[l] < in.LanePlanned[l].Pages && (best < 0 || in.LaneNext[l] < in.LaneNext[best]) {
				best = l
			}
		}
		return best
	}
	for {
		// Keep planning ahead of the window, but not past this run's pages.
		for l := range lanes {
			if !in.LanePlanned[l].Done && !planning[l] && planErr == nil && launched < in.PagesPerRun && in.LanePlanned[l].Pages-in.LaneNext[l] < ahead {
				plan(l)
			}
		}
		for pending < in.Window && launched < in.PagesPerRun {
			l := nextLane()
			if l < 0 {
				break
			}
			send(l + lanes*in.LaneNext[l]) // lane l's pages are l, l + lanes, …
			in.LaneNext[l]++
		}
		if pending == 0 && !slices.Contains(planning, true) {
			in.sumLanes()
			switch {
			case planErr != nil:
				return in.result(), planErr
			case in.Planned.Done && nextLane() < 0:
				return in.result(), nil
			case launched >= in.PagesPerRun:
				return PassResult{}, workflow.NewContinueAsNewError(ctx, NotifyPassWorkflow, in)
			}
			continue
		}
		sel.Select(ctx)
	}
}

// sumLanes totals the lanes' planning into Planned, and their pages sent into NextPage.
func (in *PassInput) sumLanes() {
	in.Planned = activities.PlanStepResult{Done: true}
	in.NextPage = 0
	for l, r := range in.LanePlanned {
		in.Planned.Pages += r.Pages
		in.Planned.Notices += r.Notices
		in.Planned.Done = in.Planned.Done && r.Done
		in.NextPage += in.LaneNext[l]
	}
}

func (in PassInput) result() PassResult {
	return PassResult{Pass: in.Plan.Pass, Kind: in.Plan.Kind, Phase: in.Plan.Phase, Notices: in.Planned.Notices, Pages: in.Planned.Pages,
		Sent: in.Sent, FailedPages: in.FailedPages, Runs: in.Runs, Error: in.Error}
}
