package workflows_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/breachflow/breachflow/activities"
	"github.com/breachflow/breachflow/workflows"
)

// A pass keeps planning while its window sends: the planner is the slowest part of a
// large pass, and waiting for the window to drain before each step left it idle.
func TestPassPlansWhileItsWindowSends(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	var a *activities.Activities
	env.RegisterActivity(&activities.Activities{})
	const steps, pagesPerStep, sendTime = 4, 15, 10 * time.Second
	var mu sync.Mutex
	var planned []time.Time
	var sent []int
	start := env.Now()
	env.OnActivity(a.PlanStep, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.PlanStepInput) (activities.PlanStepResult, error) {
		mu.Lock()
		defer mu.Unlock()
		planned = append(planned, env.Now())
		n := len(planned)
		return activities.PlanStepResult{Pages: n * pagesPerStep, Notices: n * pagesPerStep * 1000, Tenants: 5000, Done: n == steps}, nil
	})
	env.OnActivity(a.SendPage, mock.Anything, mock.Anything).After(sendTime).Return(func(_ context.Context, in activities.SendPageInput) (activities.SendPageResult, error) {
		mu.Lock()
		defer mu.Unlock()
		sent = append(sent, in.Page)
		return activities.SendPageResult{Sent: 1000, Requests: 1}, nil
	})
	env.ExecuteWorkflow(workflows.NotifyPassWorkflow, workflows.PassInput{
		Plan:   activities.PlanStepInput{IncidentID: "INC-1", Pass: 1, Kind: "initial", Phase: 1, Chunk: 5000, PageSize: 1000},
		Window: 4, PagesPerRun: 1000,
	})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res workflows.PassResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, steps*pagesPerStep, res.Pages)
	require.Equal(t, steps*pagesPerStep*1000, res.Sent)
	require.Len(t, sent, steps*pagesPerStep, "every page once")
	require.Len(t, planned, steps)
	for i, at := range planned {
		require.Less(t, at.Sub(start), sendTime, "step %d was planned only after the first pages were sent", i+1)
	}
}
