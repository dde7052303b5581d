package bench_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/bench"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/testenv"
)

// TestRunSmoke runs the benchmark at 200 tenants × 2 and checks every figure is there:
// each webhook event and each acknowledgement counted once, a replayed batch and the
// repeated acknowledgements answered without being recorded again.
func TestRunSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	f, err := bench.Run(ctx, bench.Options{DatabaseURL: testenv.ServerURL(), Tenants: 200, ContactsPerTenant: 2,
		Progress: &progress, ProgressEvery: 100 * time.Millisecond})
	require.NoError(t, err)
	require.Equal(t, 400, f.Notices)
	for name, v := range map[string]float64{
		"import": f.Import.Seconds(), "scope resolution": f.ScopeResolution.Seconds(), "to first": f.ToFirst.Seconds(),
		"to last": f.ToLast.Seconds(), "notices/s": f.NoticesPerSecond, "requests": float64(f.SendGridRequests),
		"peak RSS": float64(f.PeakRSS), "largest history": float64(f.LargestHistory), "baseline": f.Baseline.Seconds(),
		"baseline requests": float64(f.BaselineRequests), "ratio": f.Ratio,
		"ingest elapsed": f.Ingest.Elapsed.Seconds(), "events/s": f.Ingest.PerSecond,
		"acks elapsed": f.Acks.Elapsed.Seconds(), "acks/s": f.Acks.PerSecond, "ack p50": f.Acks.P50.Seconds(),
	} {
		require.Positive(t, v, name)
	}
	require.LessOrEqual(t, f.ToFirst, f.ToLast)
	require.Zero(t, f.WorkerPeakRSS, "the worker ran in this process")

	// One event per notice, in one batch (400 events are under the batch's count and
	// size), each applied once; the same batch again applied nothing.
	require.Equal(t, bench.IngestFigures{Events: 400, Batches: 1, Posters: bench.IngestPosters, Applied: 400, Replayed: 400},
		bench.IngestFigures{Events: f.Ingest.Events, Batches: f.Ingest.Batches, Posters: f.Ingest.Posters, Applied: f.Ingest.Applied, Replayed: f.Ingest.Replayed})

	// Each of the 50 clients posts 4 tenants and its first one twice.
	require.Equal(t, 200, f.Acks.Tenants)
	require.Equal(t, bench.AckClients, f.Acks.Clients)
	require.Equal(t, bench.AckClients, f.Acks.Repeats)
	require.Equal(t, 200, f.Acks.Recorded)
	require.LessOrEqual(t, f.Acks.P50, f.Acks.P99)

	require.Contains(t, progress.String(), "bench ")
	var out strings.Builder
	require.NoError(t, f.Markdown(&out))
	require.True(t, strings.HasPrefix(out.String(), "| figure | value |\n|---|---|\n"))
	for _, row := range []string{"| second approval → last notice accepted |", "| worker peak RSS (own process) | – ",
		"| delivery webhook ingest: events applied/s |", "| ack POSTs/s |", "| ack POST latency p50 / p99 |",
		"| acknowledgements recorded (once per tenant) | 200 |"} {
		require.Contains(t, out.String(), row)
	}
}

// A worker process that exits on its own fails the run with what it printed, and the
// run's database is dropped all the same.
func TestRunFailsWhenTheWorkerProcessExits(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f, err := bench.Run(ctx, bench.Options{DatabaseURL: testenv.ServerURL(), Tenants: 20, ContactsPerTenant: 1,
		WorkerCommand: []string{"sh", "-c", "echo cannot reach the database >&2; exit 3"}})
	require.ErrorContains(t, err, "exit status 3")
	require.ErrorContains(t, err, "cannot reach the database")
	dsn, err := store.WithDatabase(testenv.ServerURL(), "postgres")
	require.NoError(t, err)
	st, err := store.Open(ctx, dsn)
	require.NoError(t, err)
	defer st.Close()
	var n int
	require.NoError(t, st.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, f.Database).Scan(&n))
	require.Zero(t, n, "database %s dropped", f.Database)
}
