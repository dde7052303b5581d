package workflows_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/breachflow/breachflow/activities"
	"github.com/breachflow/breachflow/internal/store"
	bfworker "github.com/breachflow/breachflow/worker"
	"github.com/breachflow/breachflow/workflows"
)

// A worker that dies while it runs an activity the incident workflow holds its lock across
// (here: reading the ledger, which at a million tenants is given 15 minutes) holds up every
// update until that activity is retried elsewhere. The worker heartbeats every activity,
// so the retry comes once the heartbeat timeout passes: the approvers' next update is
// answered by the worker that took over, not a quarter of an hour later.
func TestUpdatesAreNotHeldUpByAnActivityLostWithItsWorker(t *testing.T) {
	s := newStack(t, 20, 1)
	s.stopWorker()

	// The doomed worker: its Ledger activity starts, then never answers, as if the process
	// had died; it is stopped at once, so it takes nothing else.
	started, release := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(release) })
	var once sync.Once
	dc, err := client.NewClientFromExisting(s.tc, client.Options{Namespace: s.namespace})
	require.NoError(t, err)
	t.Cleanup(dc.Close)
	opts := bfworker.Options()
	opts.WorkerStopTimeout = 0
	doomed := sdkworker.New(dc, s.tq, opts)
	bfworker.Register(doomed, s.acts)
	doomed.RegisterActivityWithOptions(func(ctx context.Context, _ activities.LedgerInput) (activities.LedgerSummary, error) {
		once.Do(func() { close(started) })
		<-release
		return activities.LedgerSummary{}, context.Canceled
	}, activity.RegisterOptions{Name: "Ledger", DisableAlreadyRegisteredCheck: true})
	require.NoError(t, doomed.Start())

	id, _ := s.declare(t, "", workflows.Timing{})
	s.update(t, id, workflows.UpdateAssess, workflows.AssessInput{Reportable: true, Rationale: "personal data exposed", Actor: "alice"})
	<-started // the main line holds the lock across this activity
	go doomed.Stop()

	s.startWorker(t)
	// An update that needs the lock: answered once the lost activity is retried here.
	require.NoError(t, s.tryUpdate(id, workflows.UpdateScope, workflows.ScopeInput{Criteria: store.ScopeCriteria{Services: allServices}, Actor: "alice"}))
	require.Equal(t, 20, s.status(t, id).Scope.Total)
}
