// Package worker builds the Temporal worker that runs breachflow's workflows and activities.
package worker

import (
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/breachflow/breachflow/activities"
	"github.com/breachflow/breachflow/workflows"
)

// New returns a worker on taskQueue with every breachflow workflow and activity registered.
func New(c client.Client, taskQueue string, acts *activities.Activities) sdkworker.Worker {
	w := sdkworker.New(c, taskQueue, sdkworker.Options{
		// Bounded so a large notification round never floods the database or SendGrid.
		MaxConcurrentActivityExecutionSize: 64,
		// Let in-flight sends finish and record their outcome on shutdown.
		WorkerStopTimeout: 30 * time.Second,
	})
	Register(w, acts)
	return w
}

// Register adds every breachflow workflow and activity to r.
func Register(r sdkworker.Registry, acts *activities.Activities) {
	r.RegisterWorkflow(workflows.IncidentWorkflow)
	r.RegisterWorkflow(workflows.NotifyPassWorkflow)
	r.RegisterActivity(acts)
}
