package evidence_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/breachflow/breachflow/internal/evidence"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/testenv"
)

func appendRows(t *testing.T, st *store.Store, n int) {
	t.Helper()
	for i := range n {
		_, err := st.AppendAudit(context.Background(), store.AuditEntry{Actor: "alice", Action: "test.step", Detail: map[string]any{"i": i}})
		require.NoError(t, err)
	}
}

// TestVerifyAuditSaysWhatItCannotCheck: without keys the verification still runs, and
// says loudly that no signature was checked and no checkpoint taken; with a signing key
// an intact chain gets a checkpoint of its verified head.
func TestVerifyAuditSaysWhatItCannotCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	appendRows(t, st, 3)

	v, err := evidence.VerifyAudit(ctx, st, nil, nil, time.Now())
	require.NoError(t, err)
	require.True(t, v.OK)
	require.False(t, v.Signed)
	require.Nil(t, v.Checkpoint)
	warnings := strings.Join(v.Warnings, "\n")
	require.Contains(t, warnings, "NO AUDIT PUBLIC KEY CONFIGURED")
	require.Contains(t, warnings, "NO CHECKPOINT")

	keys, _ := newKeys(t)
	v, err = evidence.VerifyAudit(ctx, st, keys, nil, time.Now())
	require.NoError(t, err)
	require.True(t, v.OK)
	require.True(t, v.Signed)
	require.NotNil(t, v.Checkpoint, "the verified head is signed")
	require.EqualValues(t, 3, v.Checkpoint.Seq)
	require.Equal(t, store.CheckpointVerify, v.Checkpoint.Reason)

	appendRows(t, st, 2)
	v, err = evidence.VerifyAudit(ctx, st, keys, nil, time.Now())
	require.NoError(t, err)
	require.True(t, v.OK)
	require.EqualValues(t, 1, v.Checkpoints)
	require.EqualValues(t, 2, v.Uncovered)
	require.Contains(t, strings.Join(v.Warnings, "\n"), "2 rows after the newest checkpoint")

	// A verifier holding the public key only checks signatures but takes no checkpoint.
	pubOnly, err := evidence.LoadKeys("", keys.PublicKeys()[keys.KeyID()])
	require.NoError(t, err)
	v, err = evidence.VerifyAudit(ctx, st, pubOnly, nil, time.Now())
	require.NoError(t, err)
	require.True(t, v.OK)
	require.True(t, v.Signed)
	require.Nil(t, v.Checkpoint)
}

// TestCheckpointer signs the head at its interval when it moved, and logs a broken chain
// as an error instead of signing over it.
func TestCheckpointer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := testenv.Store(t)
	keys, _ := newKeys(t)
	core, logs := observer.New(zap.DebugLevel)
	appendRows(t, st, 2)
	done := make(chan error, 1)
	go func() {
		done <- (&evidence.Checkpointer{Store: st, Keys: keys, Logger: zap.New(core), Every: 20 * time.Millisecond}).Run(ctx)
	}()
	waitCheckpoints := func(n int) []store.Checkpoint {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			cps, err := st.Checkpoints(ctx, 0, 100)
			require.NoError(t, err)
			if len(cps) >= n {
				return cps
			}
			require.True(t, time.Now().Before(deadline), "no checkpoint %d", n)
			time.Sleep(10 * time.Millisecond)
		}
	}
	require.EqualValues(t, 2, waitCheckpoints(1)[0].Seq)
	time.Sleep(100 * time.Millisecond)
	cps := waitCheckpoints(1)
	require.Len(t, cps, 1, "the head did not move: no new checkpoint")
	appendRows(t, st, 1)
	cps = waitCheckpoints(2)
	require.EqualValues(t, 3, cps[1].Seq)
	require.Equal(t, store.CheckpointPeriodic, cps[1].Reason)

	_, err := st.Pool().Exec(ctx, `ALTER TABLE audit_log DISABLE TRIGGER USER; UPDATE audit_log SET hash = sha256(hash) WHERE seq = 3;
		ALTER TABLE audit_log ENABLE TRIGGER USER`)
	require.NoError(t, err)
	appendRows(t, st, 1)
	deadline := time.Now().Add(10 * time.Second)
	for logs.FilterMessage("AUDIT CHAIN BROKEN: checkpoint refused").Len() == 0 {
		require.True(t, time.Now().Before(deadline), "the broken chain was not reported")
		time.Sleep(10 * time.Millisecond)
	}
	require.Len(t, waitCheckpoints(2), 2, "nothing signed over the broken chain")
	cancel()
	require.NoError(t, <-done)
}
