package schema_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/testenv"
	"github.com/breachflow/breachflow/schema"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestMigrateTwice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testenv.EmptyDatabaseURL(t)
	latest, err := schema.Latest()
	require.NoError(t, err)

	from, to, err := schema.MigrateURL(ctx, url)
	require.NoError(t, err)
	require.EqualValues(t, 0, from)
	require.EqualValues(t, latest, to)

	from, to, err = schema.MigrateURL(ctx, url)
	require.NoError(t, err)
	require.EqualValues(t, latest, from)
	require.EqualValues(t, latest, to)
}

func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testenv.EmptyDatabaseURL(t)
	latest, err := schema.Latest()
	require.NoError(t, err)

	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	tos := make([]int32, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, tos[i], errs[i] = schema.MigrateURL(ctx, url)
		}()
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i], "run %d", i)
		require.EqualValues(t, latest, tos[i], "run %d", i)
	}

	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var version, rows int
	require.NoError(t, conn.QueryRow(ctx, `SELECT max(version), count(*) FROM `+schema.VersionTable).Scan(&version, &rows))
	require.Equal(t, latest, version)
	require.Equal(t, 1, rows)
	var tables int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = 'audit_log'`).Scan(&tables))
	require.Equal(t, 1, tables)
}

func TestSchemaConstraints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testenv.DatabaseURL(t))
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `INSERT INTO tenants (id, name, country, locale, notice_sla_hours) VALUES ('t1', 'Acme', 'DE', 'de', 72)`)
	require.NoError(t, err)

	bad := []struct{ name, sql string }{
		{"bad country", `INSERT INTO tenants (id, name, country, locale, notice_sla_hours) VALUES ('t2', 'X', 'Germany', 'de', 72)`},
		{"zero sla", `INSERT INTO tenants (id, name, country, locale, notice_sla_hours) VALUES ('t2', 'X', 'DE', 'de', 0)`},
		{"bad email", `INSERT INTO contacts (tenant_id, email, kind) VALUES ('t1', 'not-an-email', 'primary')`},
		{"bad kind", `INSERT INTO contacts (tenant_id, email, kind) VALUES ('t1', 'a@b.example', 'boss')`},
		{"unknown tenant", `INSERT INTO contacts (tenant_id, email, kind) VALUES ('nope', 'a@b.example', 'primary')`},
		{"bad role", `INSERT INTO api_keys (name, role, prefix, key_hash) VALUES ('k', 'root', 'x', sha256('x'))`},
		{"short key hash", `INSERT INTO api_keys (name, role, prefix, key_hash) VALUES ('k', 'admin', 'x', '\x01')`},
	}
	for _, tc := range bad {
		_, err := conn.Exec(ctx, tc.sql)
		require.Error(t, err, tc.name)
	}
}
