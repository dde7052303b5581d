package store_test

import (
	"cmp"
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/testenv"
)

func TestDeclarationKeyIsIdempotent(t *testing.T) {
	t.Parallel()
	s := testenv.Store(t)
	ctx := context.Background()
	now := time.Now()
	d := store.Declaration{Title: "Leak", Severity: "high", AwareAt: now.Add(-time.Hour)}
	a, created, err := s.CreateIncident(ctx, "key-1", d, "alice", now)
	require.NoError(t, err)
	require.True(t, created)
	b, created, err := s.CreateIncident(ctx, "key-1", d, "alice", now)
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, a.ID, b.ID)

	d.Title = "Another leak"
	_, _, err = s.CreateIncident(ctx, "key-1", d, "alice", now)
	require.ErrorIs(t, err, store.ErrConflict)

	bad := []struct {
		d     store.Declaration
		field string
	}{
		{store.Declaration{Severity: "high", AwareAt: now}, "title"},
		{store.Declaration{Title: "x", Severity: "urgent", AwareAt: now}, "severity"},
		{store.Declaration{Title: "x", Severity: "low"}, "aware_at"},
		{store.Declaration{Title: "x", Severity: "low", AwareAt: now.Add(time.Hour)}, "aware_at"},
		{store.Declaration{Title: "x", Severity: "low", AwareAt: now, Partner: "nobody"}, "partner"},
		{store.Declaration{Title: "x", Severity: "low", AwareAt: now, Scope: store.ScopeCriteria{Countries: []string{"Germany"}}}, "scope.countries"},
	}
	for _, tc := range bad {
		_, _, err := s.CreateIncident(ctx, "", tc.d, "alice", now)
		var fe *store.FieldError
		require.True(t, errors.As(err, &fe), "%v", err)
		require.Equal(t, tc.field, fe.Field)
		require.ErrorIs(t, err, store.ErrInvalidInput)
	}
	list, err := s.ListIncidents(ctx, "", 10, time.Time{})
	require.NoError(t, err)
	require.Len(t, list, 1, "refused declarations write nothing")
}

// TestConcurrentDeclarationsWithOneKey: identical declarations racing under one key all
// get the one incident (one of them created it), never a conflict; a different body
// under the same key racing with them is the only conflict. Under REPEATABLE READ the
// advisory lock alone cannot help (a waiter's snapshot predates the winner's commit), so
// that run shows the retry after a unique violation.
func TestConcurrentDeclarationsWithOneKey(t *testing.T) {
	t.Parallel()
	for _, isolation := range []string{"", "repeatable read"} {
		t.Run("isolation "+cmp.Or(isolation, "default"), func(t *testing.T) {
			t.Parallel()
			dsn := testenv.DatabaseURL(t)
			if isolation != "" {
				u, err := url.Parse(dsn)
				require.NoError(t, err)
				// PathEscape: pgx reads "+" in a query as itself, not as a space.
				u.RawQuery = strings.TrimPrefix(u.RawQuery+"&default_transaction_isolation="+url.PathEscape(isolation), "&")
				dsn = u.String()
			}
			s, err := store.Open(context.Background(), dsn)
			require.NoError(t, err)
			t.Cleanup(s.Close)
			if isolation != "" {
				var got string
				require.NoError(t, s.Pool().QueryRow(context.Background(), `SHOW transaction_isolation`).Scan(&got))
				require.Equal(t, isolation, got)
			}
			raceDeclarations(t, s)
		})
	}
}

func raceDeclarations(t *testing.T, s *store.Store) {
	ctx := context.Background()
	now := time.Now()
	same := store.Declaration{Title: "Leak", Severity: "high", AwareAt: now.Add(-time.Hour)}
	other := same
	other.Severity = "critical"

	const n = 50
	type result struct {
		inc     store.Incident
		created bool
		err     error
		other   bool
	}
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			d := same
			// A few callers send another body under the same key; which body wins the
			// key is up to the race.
			results[i].other = i%10 == 9
			if results[i].other {
				d = other
			}
			results[i].inc, results[i].created, results[i].err = s.CreateIncident(ctx, "race-key", d, "alice", now)
		})
	}
	close(start)
	wg.Wait()

	var winner store.Incident
	for _, r := range results {
		if r.created {
			require.Empty(t, winner.ID, "two callers created an incident")
			winner = r.inc
		}
	}
	require.NotEmpty(t, winner.ID, "nobody created the incident")
	for i, r := range results {
		sent := same
		if r.other {
			sent = other
		}
		if sent.Severity == winner.Severity {
			require.NoError(t, r.err, "caller %d sent the winning body", i)
			require.Equal(t, winner.ID, r.inc.ID, "caller %d", i)
			continue
		}
		// Only a body other than the winner's is refused, as a conflict naming the incident.
		require.ErrorIs(t, r.err, store.ErrConflict, "caller %d", i)
		require.Contains(t, r.err.Error(), winner.ID, "caller %d", i)
	}
	var incidents, declared int
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FROM incidents`).Scan(&incidents))
	require.NoError(t, s.Pool().QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'incident.declared'`).Scan(&declared))
	require.Equal(t, 1, incidents)
	require.Equal(t, 1, declared)
}
