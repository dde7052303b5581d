// Package schema holds breachflow's embedded SQL migrations and applies them.
package schema

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// VersionTable is the table in which tern records the applied version.
const VersionTable = "public.schema_version"

// Migrate applies every pending migration on conn, each in its own transaction.
// tern holds a session advisory lock while it works, so concurrent runs from several
// processes apply each migration exactly once.
func Migrate(ctx context.Context, conn *pgx.Conn) (from, to int32, err error) {
	m, err := migrate.NewMigrator(ctx, conn, VersionTable)
	if err != nil {
		return 0, 0, fmt.Errorf("prepare migrator: %w", err)
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return 0, 0, fmt.Errorf("open embedded migrations: %w", err)
	}
	if err := m.LoadMigrations(sub); err != nil {
		return 0, 0, fmt.Errorf("load migrations: %w", err)
	}
	from, err = m.GetCurrentVersion(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("read schema version: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return from, 0, fmt.Errorf("apply migrations: %w", err)
	}
	to, err = m.GetCurrentVersion(ctx)
	if err != nil {
		return from, 0, fmt.Errorf("read schema version: %w", err)
	}
	return from, to, nil
}

// MigrateURL connects to the database at url and applies every pending migration.
func MigrateURL(ctx context.Context, url string) (from, to int32, err error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, 0, fmt.Errorf("connect to database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return Migrate(ctx, conn)
}

// Latest returns the number of embedded migrations.
func Latest() (int, error) {
	entries, err := fs.Glob(migrations, "migrations/*.sql")
	return len(entries), err
}
