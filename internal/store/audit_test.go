package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

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
