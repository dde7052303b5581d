package tenants_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/tenants"
	"github.com/breachflow/breachflow/internal/testenv"
)

// BenchmarkImport measures `tenants import` of 100,000 tenants and 300,000 contacts into
// an empty database, parsing included: run with -benchtime=1x.
func BenchmarkImport(b *testing.B) {
	dir := b.TempDir()
	tp, cp := filepath.Join(dir, "tenants.csv"), filepath.Join(dir, "contacts.csv")
	tf, err := os.Create(tp)
	require.NoError(b, err)
	cf, err := os.Create(cp)
	require.NoError(b, err)
	require.NoError(b, tenants.Generate(tenants.Options{Tenants: 100_000, ContactsPerTenant: 3, Seed: 1}, tf, cf))
	require.NoError(b, tf.Close())
	require.NoError(b, cf.Close())
	ctx := context.Background()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st, err := store.Open(ctx, testenv.DatabaseURL(b))
		require.NoError(b, err)
		b.StartTimer()
		start := time.Now()
		res, err := tenants.ImportFiles(ctx, st, tp, cp)
		total += time.Since(start)
		require.NoError(b, err)
		require.EqualValues(b, 300_000, res.ContactsInserted)
		st.Close()
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/import")
	b.ReportMetric(400_000/(total.Seconds()/float64(b.N)), "rows/s")
}
