package workflows_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/workflows"
)

// TestSmallIncidents runs two whole incidents on the real stack: one through the partner
// gate to every tenant's acknowledgement, one not reportable. With
// BREACHFLOW_WRITE_HISTORIES=1 it saves their histories to testdata/ for the replay test.
func TestSmallIncidents(t *testing.T) {
	s := newStack(t, 40, 2)
	ctx := context.Background()
	save := ""
	if os.Getenv("BREACHFLOW_WRITE_HISTORIES") != "" {
		save = "testdata"
		require.NoError(t, os.MkdirAll(save, 0o755))
	}

	id, run := s.declare(t, "devicecare", workflows.Timing{AckCheckInterval: 200 * time.Millisecond, PartnerResponse: time.Hour})
	hash := s.approveNotice(t, id, store.ScopeCriteria{Countries: []string{"DE", "IT", "FR", "ES", "AT", "CH", "BE", "NL", "IE", "GB", "US", "MX"}})
	st := s.waitFor(t, id, "partner review", time.Minute, func(st workflows.Status) bool {
		return st.Partner.Status == workflows.PartnerPending && st.Stage == workflows.StagePartnerReview
	})
	require.Positive(t, st.Scope.PartnerCovered)
	require.Equal(t, st.Scope.Total-st.Scope.PartnerCovered, s.ledger(t, id).Initial().Notified, "uncovered tenants go at once")
	s.update(t, id, workflows.UpdatePartnerDecision, workflows.PartnerDecisionInput{Confirm: true, ContentHash: hash, Actor: "partner:devicecare"})
	st = s.waitFor(t, id, "tracking", time.Minute, func(st workflows.Status) bool { return st.Stage == workflows.StageTracking })
	require.Len(t, st.Passes, 2)
	require.Equal(t, 40, s.ledger(t, id).Initial().Notified)
	for i := 1; i <= 40; i++ {
		_, err := s.st.Acknowledge(ctx, id, "t-"+pad(i)[3:], "link", "customer")
		require.NoError(t, err)
	}
	var final workflows.Status
	require.NoError(t, run.Get(ctx, &final))
	require.Equal(t, "all tenants acknowledged", final.CloseReason)
	s.checkHistories(t, id, 4096, save)

	id2, run2 := s.declare(t, "", workflows.Timing{})
	s.update(t, id2, workflows.UpdateAssess, workflows.AssessInput{Reportable: false, Rationale: "data was encrypted at rest; key not exposed", Actor: "alice"})
	require.NoError(t, run2.Get(ctx, &final))
	require.Equal(t, workflows.StageClosed, final.Stage)
	s.checkHistories(t, id2, 4096, save)
}

// TestReplayCommittedHistories replays every committed history against today's workflow
// code; a non-deterministic change fails here.
func TestReplayCommittedHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 2, "committed histories")
	r := sdkworker.NewWorkflowReplayer()
	r.RegisterWorkflow(workflows.IncidentWorkflow)
	r.RegisterWorkflow(workflows.NotifyPassWorkflow)
	for _, f := range files {
		require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, f), f)
	}
}
