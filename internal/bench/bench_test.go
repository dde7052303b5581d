package bench_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/bench"
	"github.com/breachflow/breachflow/internal/testenv"
)

// TestRunSmoke runs the benchmark at 200 tenants × 2 and checks every figure is there.
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
	} {
		require.Positive(t, v, name)
	}
	require.LessOrEqual(t, f.ToFirst, f.ToLast)
	require.Contains(t, progress.String(), "bench ")
	var out strings.Builder
	require.NoError(t, f.Markdown(&out))
	require.True(t, strings.HasPrefix(out.String(), "| figure | value |\n|---|---|\n"))
	require.Contains(t, out.String(), "| second approval → last notice accepted |")
}
