package store_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/testenv"
)

func TestTakeCheckpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := testenv.Store(t)
	keys := testKeys(t)

	_, taken, err := s.TakeCheckpoint(ctx, keys, "", store.CheckpointPeriodic, time.Now())
	require.NoError(t, err)
	require.False(t, taken, "an empty chain has nothing to vouch for")

	appendN(t, s, 3)
	at := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.FixedZone("CET", 3600))
	cp, taken, err := s.TakeCheckpoint(ctx, keys, "", store.CheckpointPeriodic, at)
	require.NoError(t, err)
	require.True(t, taken)
	require.EqualValues(t, 3, cp.Seq)
	require.Equal(t, keys.KeyID(), cp.KeyID)
	require.NoError(t, keys.VerifyCheckpoint(cp))
	stored, err := s.Checkpoints(ctx, 0, 10)
	require.NoError(t, err)
	require.Equal(t, []store.Checkpoint{cp}, stored, "the checkpoint reads back as signed (time to the microsecond, UTC)")
	require.NoError(t, keys.VerifyCheckpoint(stored[0]))
	rep, err := s.VerifyAudit(ctx)
	require.NoError(t, err)
	require.Equal(t, rep.Head, cp.Hash)

	again, taken, err := s.TakeCheckpoint(ctx, keys, "", store.CheckpointPeriodic, time.Now())
	require.NoError(t, err)
	require.False(t, taken, "the head has not moved")
	require.Equal(t, cp.ID, again.ID)

	// An incident checkpoint signs the digest of the incident's rows up to the head.
	for i := range 3 {
		_, err := s.AppendAudit(ctx, store.AuditEntry{IncidentID: "INC-TEST-0001", Actor: "alice", Action: "test.incident", Detail: map[string]any{"i": i}})
		require.NoError(t, err)
		appendN(t, s, 1)
	}
	inc, taken, err := s.TakeCheckpoint(ctx, keys, "INC-TEST-0001", store.CheckpointClose, time.Now())
	require.NoError(t, err)
	require.True(t, taken)
	require.EqualValues(t, 9, inc.Seq)
	require.EqualValues(t, 3, inc.IncidentRows)
	trail, err := s.AuditTrail(ctx, "INC-TEST-0001")
	require.NoError(t, err)
	d := store.NewIncidentDigest()
	for _, r := range trail {
		h, err := hex.DecodeString(r.Hash)
		require.NoError(t, err)
		d.Add(r.Seq, h)
	}
	require.Equal(t, d.Sum(), inc.IncidentDigest)
	require.NoError(t, keys.VerifyCheckpoint(inc))
	mine, err := store.IncidentCheckpoints(ctx, s.Pool(), "INC-TEST-0001")
	require.NoError(t, err)
	require.Equal(t, []store.Checkpoint{inc}, mine)

	// A signed field changed is a signature that no longer verifies.
	forged := inc
	forged.IncidentRows = 2
	require.Error(t, keys.VerifyCheckpoint(forged))
}

// TestTakeCheckpointRefusesABrokenChain: a checkpoint is never signed over rows that do
// not check out since the newest checkpoint, nor after a checkpoint whose signature fails.
func TestTakeCheckpointRefusesABrokenChain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases := []struct {
		name, sql string
		badSeq    int64
	}{
		{"row edited after the checkpoint", `UPDATE audit_log SET actor = 'mallory' WHERE seq = 4`, 4},
		{"row removed after the checkpoint", `DELETE FROM audit_log WHERE seq = 4`, 5},
		{"checkpointed row edited", `UPDATE audit_log SET hash = sha256(hash) WHERE seq = 2`, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := testenv.Store(t)
			keys := testKeys(t)
			appendN(t, s, 2)
			_, _, err := s.TakeCheckpoint(ctx, keys, "", store.CheckpointPeriodic, time.Now())
			require.NoError(t, err)
			appendN(t, s, 3)
			tamper(t, s, tc.sql)
			_, taken, err := s.TakeCheckpoint(ctx, keys, "", store.CheckpointPeriodic, time.Now())
			require.ErrorIs(t, err, store.ErrChainBroken)
			require.False(t, taken)
			var ce *store.ChainError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, tc.badSeq, ce.Report.BadSeq, ce.Report.Problem)
		})
	}
	t.Run("forged newest checkpoint", func(t *testing.T) {
		t.Parallel()
		s := testenv.Store(t)
		keys := testKeys(t)
		appendN(t, s, 2)
		_, _, err := s.TakeCheckpoint(ctx, keys, "", store.CheckpointPeriodic, time.Now())
		require.NoError(t, err)
		appendN(t, s, 1)
		_, err = s.Pool().Exec(ctx, `ALTER TABLE audit_checkpoints DISABLE TRIGGER USER;
			UPDATE audit_checkpoints SET seq = 3, hash = (SELECT hash FROM audit_log WHERE seq = 3);
			ALTER TABLE audit_checkpoints ENABLE TRIGGER USER`)
		require.NoError(t, err)
		appendN(t, s, 1)
		_, _, err = s.TakeCheckpoint(ctx, keys, "", store.CheckpointPeriodic, time.Now())
		require.ErrorIs(t, err, store.ErrChainBroken)
		require.ErrorContains(t, err, "does not verify")
	})
}

func TestCheckpointsAreAppendOnly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := testenv.Store(t)
	appendN(t, s, 1)
	_, _, err := s.TakeCheckpoint(ctx, testKeys(t), "", store.CheckpointPeriodic, time.Now())
	require.NoError(t, err)
	for _, sql := range []string{
		`UPDATE audit_checkpoints SET seq = 2`,
		`DELETE FROM audit_checkpoints`,
		`TRUNCATE audit_checkpoints`,
	} {
		_, err := s.Pool().Exec(ctx, sql)
		require.ErrorContains(t, err, "append-only", sql)
	}
}

// TestConcurrentCheckpoints: writers and checkpoint takers side by side leave one chain
// whose every checkpoint checks out.
func TestConcurrentCheckpoints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := testenv.Store(t)
	keys := testKeys(t)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 20 {
				_, err := s.AppendAudit(ctx, store.AuditEntry{IncidentID: fmt.Sprintf("INC-TEST-%04d", w), Actor: "system", Action: "test.concurrent",
					Detail: map[string]any{"i": i}})
				require.NoError(t, err)
			}
		}()
		go func() {
			defer wg.Done()
			for range 10 {
				_, _, err := s.TakeCheckpoint(ctx, keys, fmt.Sprintf("INC-TEST-%04d", w), store.CheckpointClose, time.Now())
				require.NoError(t, err)
				_, _, err = s.TakeCheckpoint(ctx, keys, "", store.CheckpointPeriodic, time.Now())
				require.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	rep, err := s.VerifyAuditCheckpoints(ctx, keys.VerifyCheckpoint, nil)
	require.NoError(t, err)
	require.True(t, rep.OK, rep.Problem)
	require.EqualValues(t, 80, rep.Rows)
	require.Positive(t, rep.Checkpoints)
}
