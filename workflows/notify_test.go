package workflows_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

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

// A pass planned in lanes plans them at the same time and sends each lane's pages
// (lane l: l, l + lanes, …) once, whatever their lanes' lengths; it continues as new in
// the middle and keeps where each lane stands.
func TestPassPlansItsLanesAtTheSameTime(t *testing.T) {
	var suite testsuite.WorkflowTestSuite
	var a *activities.Activities
	const lanes = 3
	stepsOf := []int{4, 2, 3} // each lane's steps, of 5 pages each
	var mu sync.Mutex
	steps := make([]int, lanes)
	var concurrent, maxConcurrent int
	sent := map[int]int{}
	in := workflows.PassInput{
		Plan:  activities.PlanStepInput{IncidentID: "INC-1", Pass: 1, Kind: "initial", Phase: 1, Chunk: 1000, PageSize: 1000},
		Lanes: lanes, Window: 4, PagesPerRun: 12,
	}
	var res workflows.PassResult
	runs := 0
	for {
		runs++
		env := suite.NewTestWorkflowEnvironment()
		env.RegisterActivity(&activities.Activities{})
		env.OnActivity(a.PlanStep, mock.Anything, mock.Anything).After(time.Second).Return(func(_ context.Context, in activities.PlanStepInput) (activities.PlanStepResult, error) {
			mu.Lock()
			defer mu.Unlock()
			require.Equal(t, lanes, in.Lanes)
			steps[in.Lane]++
			n := steps[in.Lane]
			return activities.PlanStepResult{Pages: 5 * n, Notices: 5000 * n, Tenants: 1000, Done: n == stepsOf[in.Lane]}, nil
		})
		env.OnActivity(a.SendPage, mock.Anything, mock.Anything).After(3 * time.Second).Return(func(_ context.Context, in activities.SendPageInput) (activities.SendPageResult, error) {
			mu.Lock()
			defer mu.Unlock()
			sent[in.Page]++
			return activities.SendPageResult{Sent: 1000, Requests: 1}, nil
		})
		env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
			if info.ActivityType.Name == "PlanStep" {
				mu.Lock()
				concurrent++
				maxConcurrent = max(maxConcurrent, concurrent)
				mu.Unlock()
			}
		})
		env.SetOnActivityCompletedListener(func(info *activity.Info, _ converter.EncodedValue, _ error) {
			if info.ActivityType.Name == "PlanStep" {
				mu.Lock()
				concurrent--
				mu.Unlock()
			}
		})
		env.ExecuteWorkflow(workflows.NotifyPassWorkflow, in)
		require.True(t, env.IsWorkflowCompleted())
		var next *workflow.ContinueAsNewError
		if errors.As(env.GetWorkflowError(), &next) {
			require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(next.Input, &in))
			continue
		}
		require.NoError(t, env.GetWorkflowError())
		require.NoError(t, env.GetWorkflowResult(&res))
		break
	}
	require.Greater(t, runs, 3, "the pass continued as new")
	require.Equal(t, runs, res.Runs)
	want := map[int]int{}
	for l, n := range stepsOf {
		for k := range 5 * n {
			want[l+lanes*k] = 1
		}
	}
	require.Equal(t, want, sent, "each lane's pages once")
	require.Equal(t, len(want), res.Pages)
	require.Equal(t, 1000*len(want), res.Sent)
	require.Equal(t, stepsOf, steps)
	require.Equal(t, lanes, maxConcurrent, "the lanes planned at the same time")
}
