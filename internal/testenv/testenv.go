// Package testenv gives tests real dependencies: a PostgreSQL database cloned from a
// migrated template (one template per test binary, one clone per test) and an
// in-process Temporal server per test binary.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.temporal.io/server/temporaltest"

	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/tenants"
	"github.com/breachflow/breachflow/schema"
)

// ServerURL is the PostgreSQL server tests use: DATABASE_URL, or the local default.
func ServerURL() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

var (
	tmplOnce sync.Once
	tmplName string
	tmplErr  error

	temporalOnce sync.Once
	temporalSrv  *temporaltest.TestServer
)

// Main runs the package's tests and then removes what the package created.
func Main(m *testing.M) {
	code := m.Run()
	if tmplName != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = dropDatabase(ctx, tmplName)
		cancel()
	}
	if temporalSrv != nil {
		temporalSrv.Stop()
	}
	os.Exit(code)
}

func randomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func admin(ctx context.Context) (*pgx.Conn, error) {
	u, err := store.WithDatabase(ServerURL(), "postgres")
	if err != nil {
		return nil, err
	}
	return pgx.Connect(ctx, u)
}

func exec(ctx context.Context, sql string) error {
	conn, err := admin(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func dropDatabase(ctx context.Context, name string) error {
	return exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

// template creates and migrates the binary's template database once.
func template(ctx context.Context) (string, error) {
	tmplOnce.Do(func() {
		name := randomName("bf_tmpl_")
		if tmplErr = exec(ctx, "CREATE DATABASE "+name); tmplErr != nil {
			tmplErr = fmt.Errorf("create template database (is PostgreSQL running at %s?): %w", ServerURL(), tmplErr)
			return
		}
		tmplName = name
		u, err := store.WithDatabase(ServerURL(), name)
		if err != nil {
			tmplErr = err
			return
		}
		_, _, tmplErr = schema.MigrateURL(ctx, u)
	})
	return tmplName, tmplErr
}

// DatabaseURL creates a fresh migrated database for t, dropped when t ends, and returns its URL.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tmpl, err := template(ctx)
	require.NoError(t, err)
	name := randomName("bf_test_")
	require.NoError(t, exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, tmpl)))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := dropDatabase(ctx, name); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	u, err := store.WithDatabase(ServerURL(), name)
	require.NoError(t, err)
	return u
}

// EmptyDatabaseURL creates an empty database (no migrations) for t, dropped when t ends.
func EmptyDatabaseURL(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := randomName("bf_empty_")
	require.NoError(t, exec(ctx, "CREATE DATABASE "+name))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = dropDatabase(ctx, name)
	})
	u, err := store.WithDatabase(ServerURL(), name)
	require.NoError(t, err)
	return u
}

// Store opens a Store on a fresh migrated database for t.
func Store(t testing.TB) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := store.Open(ctx, DatabaseURL(t))
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

// Temporal returns the test binary's in-process Temporal server, starting it on first use.
func Temporal(t testing.TB) *temporaltest.TestServer {
	t.Helper()
	temporalOnce.Do(func() { temporalSrv = temporaltest.NewServer() })
	return temporalSrv
}

// Tenants imports generated tenants and contacts into st.
func Tenants(t testing.TB, st *store.Store, opts tenants.Options) {
	t.Helper()
	var tb, cb bytes.Buffer
	require.NoError(t, tenants.Generate(opts, &tb, &cb))
	ts, err := tenants.ReadTenants(&tb, "tenants.csv")
	require.NoError(t, err)
	cs, err := tenants.ReadContacts(&cb, "contacts.csv")
	require.NoError(t, err)
	_, err = st.ImportTenants(context.Background(), "contacts.csv", ts, func() ([]store.Contact, error) { return cs, nil })
	require.NoError(t, err)
}
