package main

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/testenv"
)

// `breachflow bench` runs the worker as `breachflow worker` in a process of its own (here
// this test binary acting as the CLI) and reports that process's peak RSS beside the
// bench process's, with the ingest and acknowledgement figures of the same run.
func TestBenchRunsTheWorkerInItsOwnProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	t.Setenv(cliUnderTest, "1") // inherited by the worker process, which os.Executable names
	t.Setenv("DATABASE_URL", testenv.ServerURL())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := run(t, ctx, "bench", "--tenants", "100", "--contacts-per-tenant", "2")
	require.NoError(t, err, out)
	require.Regexp(t, `\| worker peak RSS \(own process\) \| [1-9][0-9]* MiB \|`, out)
	require.Regexp(t, `\| bench process peak RSS [^|]*\| [1-9][0-9]* MiB \|`, out)
	require.Contains(t, out, "| tenants × contacts (notices) | 100 × 2 (200) |")
	require.Regexp(t, `\| delivery webhook ingest: events posted [^|]*\| 200 in 1 batches, `, out)
	require.Contains(t, out, "| acknowledgements recorded (once per tenant) | 100 |")
}
