package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/evidence"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func appendN(t *testing.T, s *store.Store, n int) {
	t.Helper()
	for i := range n {
		_, err := s.AppendAudit(context.Background(), store.AuditEntry{Actor: "alice", Action: "test.step", Detail: map[string]any{"i": i}})
		require.NoError(t, err)
	}
}

func TestAuditChainVerifies(t *testing.T) {
	t.Parallel()
	s := testenv.Store(t)
	appendN(t, s, 5)
	rep, err := s.VerifyAudit(context.Background())
	require.NoError(t, err)
	require.True(t, rep.OK, rep.Problem)
	require.EqualValues(t, 5, rep.Rows)
	require.Len(t, rep.Head, 64)
}

func TestAuditConcurrentInsertsKeepOneChain(t *testing.T) {
	t.Parallel()
	s := testenv.Store(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				_, err := s.AppendAudit(ctx, store.AuditEntry{IncidentID: fmt.Sprintf("INC-%04d", w), Actor: "system", Action: "test.concurrent", Detail: map[string]any{"i": i}})
				require.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	rep, err := s.VerifyAudit(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK, rep.Problem)
	require.EqualValues(t, 200, rep.Rows)
}

func TestAuditRejectsUpdateDeleteTruncate(t *testing.T) {
	t.Parallel()
	s := testenv.Store(t)
	appendN(t, s, 2)
	ctx := context.Background()
	for _, sql := range []string{
		`UPDATE audit_log SET actor = 'mallory' WHERE seq = 1`,
		`DELETE FROM audit_log WHERE seq = 2`,
		`TRUNCATE audit_log`,
	} {
		_, err := s.Pool().Exec(ctx, sql)
		require.ErrorContains(t, err, "append-only", sql)
	}
	rep, err := s.VerifyAudit(ctx)
	require.NoError(t, err)
	require.True(t, rep.OK)
	require.EqualValues(t, 2, rep.Rows)
}

// tamper runs sql as the superuser with the audit triggers switched off, as an attacker
// with database access could.
func tamper(t *testing.T, s *store.Store, sql string) {
	t.Helper()
	ctx := context.Background()
	_, err := s.Pool().Exec(ctx, `ALTER TABLE audit_log DISABLE TRIGGER USER`)
	require.NoError(t, err)
	_, err = s.Pool().Exec(ctx, sql)
	require.NoError(t, err)
	_, err = s.Pool().Exec(ctx, `ALTER TABLE audit_log ENABLE TRIGGER USER`)
	require.NoError(t, err)
}

func TestAuditVerifyFindsTampering(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		sql     string
		badSeq  int64
		problem string
	}{
		{"edited actor", `UPDATE audit_log SET actor = 'mallory' WHERE seq = 3`, 3, "edited"},
		{"edited detail", `UPDATE audit_log SET detail = '{"i": 99}' WHERE seq = 4`, 4, "edited"},
		{"edited time", `UPDATE audit_log SET at = at - interval '1 hour' WHERE seq = 2`, 2, "edited"},
		{"deleted row", `DELETE FROM audit_log WHERE seq = 3`, 4, "missing"},
		{"deleted and renumbered", `DELETE FROM audit_log WHERE seq = 3; UPDATE audit_log SET seq = seq - 1 WHERE seq > 3`, 3, "prev_hash"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := testenv.Store(t)
			appendN(t, s, 5)
			tamper(t, s, tc.sql)
			rep, err := s.VerifyAudit(context.Background())
			require.NoError(t, err)
			require.False(t, rep.OK)
			require.Equal(t, tc.badSeq, rep.BadSeq)
			require.Contains(t, rep.Problem, tc.problem)
		})
	}
}

// testKeys is a signing key of the evidence package, as serve would configure it.
func testKeys(t *testing.T) *evidence.Keys {
	t.Helper()
	seed, _, err := evidence.GenerateKey()
	require.NoError(t, err)
	k, err := evidence.LoadKeys(seed, "")
	require.NoError(t, err)
	return k
}

// rehashFrom is the attack a superuser can make on the chain itself: edit row seq, then
// recompute the hash of it and of every later row with the chain's own canonical function,
// so that every link checks out again.
func rehashFrom(t *testing.T, s *store.Store, edit string, seq int64) {
	t.Helper()
	testenv.RehashAudit(t, s, edit, seq)
}

// TestAuditRehashIsCaughtByCheckpoints makes exactly the attack: as superuser, edit an
// audit row and recompute the hash of every later row. The plain chain check says ok; the
// check against the signed checkpoints fails, naming the checkpoint, the row it signed and
// the rows the change lies in, and no checkpoint is signed over the rewritten chain.
func TestAuditRehashIsCaughtByCheckpoints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := testenv.Store(t)
	keys := testKeys(t)
	appendN(t, s, 2)
	first, taken, err := s.TakeCheckpoint(ctx, keys, "", store.CheckpointPeriodic, time.Now())
	require.NoError(t, err)
	require.True(t, taken)
	require.EqualValues(t, 2, first.Seq)
	appendN(t, s, 3)
	second, taken, err := s.TakeCheckpoint(ctx, keys, "", store.CheckpointPeriodic, time.Now())
	require.NoError(t, err)
	require.True(t, taken)
	require.EqualValues(t, 5, second.Seq)
	appendN(t, s, 2)

	rep, err := s.VerifyAuditCheckpoints(ctx, keys.VerifyCheckpoint, nil)
	require.NoError(t, err)
	require.True(t, rep.OK, rep.Problem)
	require.EqualValues(t, 2, rep.Checkpoints)
	require.EqualValues(t, 2, rep.Uncovered, "rows 6 and 7 come after the newest checkpoint")

	rehashFrom(t, s, `UPDATE audit_log SET actor = 'mallory' WHERE seq = 3`, 3)

	plain, err := s.VerifyAudit(ctx)
	require.NoError(t, err)
	require.True(t, plain.OK, "the rewritten chain links up: %s", plain.Problem)
	require.EqualValues(t, 7, plain.Rows)

	rep, err = s.VerifyAuditCheckpoints(ctx, keys.VerifyCheckpoint, nil)
	require.NoError(t, err)
	require.False(t, rep.OK)
	require.EqualValues(t, 5, rep.BadSeq, "the row the second checkpoint signed")
	require.Equal(t, second.ID, rep.BadCheckpoint)
	require.EqualValues(t, 3, rep.SuspectFrom, "the first checkpoint still matches: the change is in rows 3 to 5")
	require.Contains(t, rep.Problem, fmt.Sprintf("checkpoint #%d", second.ID))
	require.Contains(t, rep.Problem, "rows 3 to 5")

	_, _, err = s.TakeCheckpoint(ctx, keys, "", store.CheckpointPeriodic, time.Now())
	require.ErrorIs(t, err, store.ErrChainBroken, "no checkpoint vouches for the rewritten chain")
	var ce *store.ChainError
	require.ErrorAs(t, err, &ce)
	require.EqualValues(t, 5, ce.Report.BadSeq)
}

// TestAuditRehashAndCheckpointDeletionMeetPublishedCheckpoints: a rewrite that also deletes
// the stored checkpoints it breaks leaves a chain the database alone cannot fault; a
// published copy of a checkpoint (GET /v1/audit/checkpoints) still names the row.
func TestAuditRehashAndCheckpointDeletionMeetPublishedCheckpoints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := testenv.Store(t)
	keys := testKeys(t)
	appendN(t, s, 4)
	cp, _, err := s.TakeCheckpoint(ctx, keys, "", store.CheckpointPeriodic, time.Now())
	require.NoError(t, err)
	published, err := s.Checkpoints(ctx, 0, 100)
	require.NoError(t, err)
	require.Len(t, published, 1)

	rehashFrom(t, s, `UPDATE audit_log SET detail = '{"i": 99}' WHERE seq = 2`, 2)
	_, err = s.Pool().Exec(ctx, `ALTER TABLE audit_checkpoints DISABLE TRIGGER USER; DELETE FROM audit_checkpoints;
		ALTER TABLE audit_checkpoints ENABLE TRIGGER USER`)
	require.NoError(t, err)

	rep, err := s.VerifyAuditCheckpoints(ctx, keys.VerifyCheckpoint, nil)
	require.NoError(t, err)
	require.True(t, rep.OK)
	require.Zero(t, rep.Checkpoints)
	require.EqualValues(t, 4, rep.Uncovered, "nothing covers the rows: evidence.VerifyAudit warns")

	rep, err = s.VerifyAuditCheckpoints(ctx, keys.VerifyCheckpoint, published)
	require.NoError(t, err)
	require.False(t, rep.OK)
	require.Equal(t, cp.Seq, rep.BadSeq)
	require.Contains(t, rep.Problem, fmt.Sprintf("published checkpoint #%d", cp.ID))
}

// TestAuditCheckpointProblems: a forged checkpoint, one naming a removed row and one whose
// key is not trusted are each reported, by checkpoint.
func TestAuditCheckpointProblems(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases := []struct {
		name    string
		attack  func(t *testing.T, s *store.Store, cp store.Checkpoint)
		keys    func(signer *evidence.Keys) *evidence.Keys
		problem string
	}{
		{"forged signature", func(t *testing.T, s *store.Store, cp store.Checkpoint) {
			_, err := s.Pool().Exec(ctx, `ALTER TABLE audit_checkpoints DISABLE TRIGGER USER;
				UPDATE audit_checkpoints SET seq = 2, hash = (SELECT hash FROM audit_log WHERE seq = 2);
				ALTER TABLE audit_checkpoints ENABLE TRIGGER USER`)
			require.NoError(t, err)
		}, nil, "signature does not verify"},
		{"tail removed", func(t *testing.T, s *store.Store, cp store.Checkpoint) {
			tamper(t, s, `DELETE FROM audit_log WHERE seq >= 3`)
		}, nil, "not in the chain: rows were removed"},
		{"untrusted key", func(*testing.T, *store.Store, store.Checkpoint) {}, func(*evidence.Keys) *evidence.Keys {
			return testKeys(t)
		}, "not trusted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := testenv.Store(t)
			keys := testKeys(t)
			appendN(t, s, 3)
			cp, _, err := s.TakeCheckpoint(ctx, keys, "", store.CheckpointPeriodic, time.Now())
			require.NoError(t, err)
			tc.attack(t, s, cp)
			verifier := keys
			if tc.keys != nil {
				verifier = tc.keys(keys)
			}
			rep, err := s.VerifyAuditCheckpoints(ctx, verifier.VerifyCheckpoint, nil)
			require.NoError(t, err)
			require.False(t, rep.OK)
			require.Equal(t, cp.ID, rep.BadCheckpoint)
			require.Contains(t, rep.Problem, tc.problem)
		})
	}
}
