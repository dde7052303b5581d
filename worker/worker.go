// Package worker builds the Temporal worker that runs breachflow's workflows and activities.
package worker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/breachflow/breachflow/activities"
	"github.com/breachflow/breachflow/internal/logging"
	"github.com/breachflow/breachflow/workflows"
)

// New returns a worker on taskQueue with every breachflow workflow and activity
// registered. The SDK reports its own metrics to c's metrics handler; NewInstrumented
// records them with acts.Metrics instead.
func New(c client.Client, taskQueue string, acts *activities.Activities) sdkworker.Worker {
	w := sdkworker.New(c, taskQueue, Options())
	Register(w, acts)
	return w
}

// Options are the worker's options; tests that build a worker of their own start from them.
func Options() sdkworker.Options {
	return sdkworker.Options{
		// Bounded so a large notification round never floods the database or SendGrid.
		MaxConcurrentActivityExecutionSize: 64,
		// Let in-flight sends finish and record their outcome on shutdown.
		WorkerStopTimeout: 30 * time.Second,
		Interceptors:      []interceptor.WorkerInterceptor{&heartbeats{}},
	}
}

// heartbeats keeps every activity that has a heartbeat timeout heartbeating while it runs.
// An activity whose worker died (or dropped the task while stopping) is then retried once
// its heartbeat timeout passes, not once its whole start-to-close timeout does: the
// incident workflow holds its lock across some activities, and every update waits for it.
type heartbeats struct {
	interceptor.WorkerInterceptorBase
}

func (*heartbeats) InterceptActivity(_ context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	return &heartbeating{ActivityInboundInterceptorBase: interceptor.ActivityInboundInterceptorBase{Next: next}}
}

type heartbeating struct {
	interceptor.ActivityInboundInterceptorBase
}

func (h *heartbeating) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	timeout := activity.GetInfo(ctx).HeartbeatTimeout
	if timeout <= 0 {
		return h.Next.ExecuteActivity(ctx, in)
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		tick := time.NewTicker(timeout / 3)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return h.Next.ExecuteActivity(ctx, in)
}

// NewInstrumented is New with the SDK's metrics (workflow task latency and
// schedule-to-start, activity latency and failures, slots, polls) recorded with
// acts.Metrics, served on the worker's metrics listener. The SDK takes its metrics handler
// from the client, so the worker runs on a client that shares c's connection and reports
// to acts.Metrics.Temporal(); namespace must be c's. Stop stops the worker and closes
// that client (c stays open). With acts.Metrics nil it is New.
func NewInstrumented(c client.Client, namespace, taskQueue string, acts *activities.Activities) (sdkworker.Worker, error) {
	if acts.Metrics == nil {
		return New(c, taskQueue, acts), nil
	}
	opts := client.Options{Namespace: namespace, MetricsHandler: acts.Metrics.Temporal()}
	if acts.Logger != nil {
		opts.Logger = logging.Temporal(acts.Logger)
	}
	mc, err := client.NewClientFromExisting(c, opts)
	if err != nil {
		return nil, fmt.Errorf("temporal client with metrics: %w", err)
	}
	return &instrumented{Worker: New(mc, taskQueue, acts), client: mc}, nil
}

// instrumented is a worker on a client of its own, closed once when the worker stops (c's
// connection stays open until c and every client made from it are closed).
type instrumented struct {
	sdkworker.Worker
	client client.Client
	once   sync.Once
}

// Stop stops the worker, then closes its client.
func (w *instrumented) Stop() {
	w.Worker.Stop()
	w.once.Do(w.client.Close)
}

// Run runs the worker until interruptCh says, then closes its client.
func (w *instrumented) Run(interruptCh <-chan any) error {
	defer w.once.Do(w.client.Close)
	return w.Worker.Run(interruptCh)
}

// Register adds every breachflow workflow and activity to r.
func Register(r sdkworker.Registry, acts *activities.Activities) {
	r.RegisterWorkflow(workflows.IncidentWorkflow)
	r.RegisterWorkflow(workflows.NotifyPassWorkflow)
	r.RegisterActivity(acts)
}
