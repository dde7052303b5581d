package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/breachflow/breachflow/internal/testenv"
	bfworker "github.com/breachflow/breachflow/worker"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// quiet runs longer than its heartbeat timeout without heartbeating itself.
func quiet(ctx context.Context) (int32, error) {
	select {
	case <-time.After(4 * time.Second):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return activity.GetInfo(ctx).Attempt, nil
}

func runsQuiet(ctx workflow.Context) (int32, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute, HeartbeatTimeout: time.Second,
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}})
	var attempt int32
	err := workflow.ExecuteActivity(ctx, quiet).Get(ctx, &attempt)
	return attempt, err
}

// The worker heartbeats an activity for it while it runs: one that runs past its heartbeat
// timeout without heartbeating completes, on its first attempt.
func TestWorkerHeartbeatsEveryActivity(t *testing.T) {
	ts := testenv.Temporal(t)
	c := ts.GetDefaultClient()
	for _, tc := range []struct {
		name string
		opts sdkworker.Options
		ok   bool
	}{{"the worker's options", bfworker.Options(), true}, {"without them", sdkworker.Options{}, false}} {
		t.Run(tc.name, func(t *testing.T) {
			tq := "heartbeat-" + tc.name
			w := sdkworker.New(c, tq, tc.opts)
			w.RegisterWorkflow(runsQuiet)
			w.RegisterActivity(quiet)
			require.NoError(t, w.Start())
			defer w.Stop()
			run, err := c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{TaskQueue: tq}, runsQuiet)
			require.NoError(t, err)
			var attempt int32
			err = run.Get(context.Background(), &attempt)
			if !tc.ok {
				var timeout *temporal.TimeoutError
				require.ErrorAs(t, err, &timeout, "the control: an activity that does not heartbeat times out")
				return
			}
			require.NoError(t, err)
			require.Equal(t, int32(1), attempt)
		})
	}
}
