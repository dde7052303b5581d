package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/breachflow/breachflow/activities"
	"github.com/breachflow/breachflow/internal/store"
)

var acts *activities.Activities // nil: method values name the activities

// nonRetryable are the error types no retry can fix.
var nonRetryable = []string{activities.ErrTypeInvalidInput, activities.ErrTypeNotFound, "InvalidPage", "SendGridRejected", "SendGridUnauthorized"}

func activityCtx(ctx workflow.Context, timeout time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			NonRetryableErrorTypes: nonRetryable,
		},
	})
}

// NotifyRoundWorkflow plans one notification round in the outbox and sends its pages
// through a sliding window of at most Window concurrent SendPage activities, continuing
// as new every PagesPerRun pages so that no history grows past a few thousand events.
func NotifyRoundWorkflow(ctx workflow.Context, in RoundInput) (RoundResult, error) {
	if in.Window <= 0 {
		in.Window = 4
	}
	if in.PagesPerRun <= 0 {
		in.PagesPerRun = 200
	}
	in.Runs++
	p := in.Plan
	if in.Planned == nil {
		var planned store.RoundPlanned
		if err := workflow.ExecuteActivity(activityCtx(ctx, 5*time.Minute), acts.PlanRound, p).Get(ctx, &planned); err != nil {
			return RoundResult{}, err
		}
		in.Planned = &planned
	}
	sendCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		HeartbeatTimeout:    time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			NonRetryableErrorTypes: nonRetryable,
		},
	})
	end := min(in.Planned.Pages, in.NextPage+in.PagesPerRun)
	next := in.NextPage
	pending := 0
	sel := workflow.NewSelector(ctx)
	var firstErr error
	launch := func(page int) {
		f := workflow.ExecuteActivity(sendCtx, acts.SendPage, activities.SendPageInput{IncidentID: p.IncidentID, Round: p.Round, Page: page})
		pending++
		sel.AddFuture(f, func(f workflow.Future) {
			pending--
			var r activities.SendPageResult
			if err := f.Get(ctx, &r); err != nil {
				// A page SendGrid refuses for good is recorded as failed in the outbox;
				// the other pages still go out.
				in.Failed++
				if firstErr == nil {
					firstErr = err
				}
				workflow.GetLogger(ctx).Warn("page failed", "incident_id", p.IncidentID, "round", p.Round, "page", page, "error", err)
				return
			}
			in.Sent += r.Sent + r.AlreadySent
		})
	}
	for next < end || pending > 0 {
		for next < end && pending < in.Window {
			launch(next)
			next++
		}
		sel.Select(ctx)
	}
	in.NextPage = next
	if in.NextPage < in.Planned.Pages {
		return RoundResult{}, workflow.NewContinueAsNewError(ctx, NotifyRoundWorkflow, in)
	}
	return RoundResult{Round: p.Round, Kind: p.Kind, Planned: in.Planned.Notices, Tenants: in.Planned.Tenants,
		Pages: in.Planned.Pages, Sent: in.Sent, Failed: in.Failed, Runs: in.Runs}, nil
}
