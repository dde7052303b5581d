// Package store is breachflow's PostgreSQL data layer (pgx).
package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

// Store wraps a pgx connection pool with breachflow's typed queries.
type Store struct {
	pool *pgxpool.Pool
}

// Open connects a pool to the database at dsn and checks that it answers.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to database %s: %w", cfg.ConnConfig.Database, err)
	}
	return &Store{pool: pool}, nil
}

// New wraps an existing pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Pool exposes the underlying pool for callers that need raw access (tests, benchmarks).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close releases every connection.
func (s *Store) Close() { s.pool.Close() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// WithTx runs fn in a transaction, committing when it returns nil and rolling back otherwise.
func (s *Store) WithTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// IsUniqueViolation reports whether err is a PostgreSQL unique_violation.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// WithDatabase returns dsn (a postgres:// URL) pointing at database name instead.
func WithDatabase(dsn, name string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("database URL must look like postgres://user@host:port/db")
	}
	u.Path = "/" + name
	return u.String(), nil
}

// DatabaseName returns the database named in dsn.
func DatabaseName(dsn string) (string, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return "", fmt.Errorf("parse database URL: %w", err)
	}
	return cfg.Database, nil
}

// EnsureDatabase creates the database named in dsn when it does not exist yet, connecting
// to the server's "postgres" database to do so. It reports whether it created it.
func EnsureDatabase(ctx context.Context, dsn string) (bool, error) {
	name, err := DatabaseName(dsn)
	if err != nil {
		return false, err
	}
	adminURL, err := WithDatabase(dsn, "postgres")
	if err != nil {
		return false, err
	}
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return false, fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return false, nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // created meanwhile by another process
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create database %s: %w", name, err)
	}
	return true, nil
}

// DropDatabase drops the database named in dsn if it exists (dev --reset), ending its
// other connections first.
func DropDatabase(ctx context.Context, dsn string) error {
	name, err := DatabaseName(dsn)
	if err != nil {
		return err
	}
	adminURL, err := WithDatabase(dsn, "postgres")
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// ErrInvalidInput marks input the store refuses; the message says why.
var ErrInvalidInput = errors.New("invalid input")
