package devenv

import (
	"context"
	"database/sql"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap"

	"github.com/breachflow/breachflow/internal/logging"
)

const (
	waitWorkflow = "WaitForSignal"
	waitSignal   = "go"
	waitQueue    = "devenv-sqlite"
)

// waitForSignal returns the value of the first "go" signal.
func waitForSignal(ctx workflow.Context) (string, error) {
	var v string
	workflow.GetSignalChannel(ctx, waitSignal).Receive(ctx, &v)
	return v, nil
}

func startSQLite(t *testing.T, opts SQLiteOptions) *SQLiteTemporal {
	t.Helper()
	began := time.Now()
	srv, err := StartSQLiteTemporal(opts)
	require.NoError(t, err)
	t.Cleanup(srv.Stop)
	t.Logf("Temporal on %s ready in %s", srv.Address(), time.Since(began).Round(time.Millisecond))
	return srv
}

// dialWorker connects to srv and runs a worker for waitForSignal until the test ends.
func dialWorker(t *testing.T, srv *SQLiteTemporal) (client.Client, worker.Worker) {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: srv.Address(), Namespace: srv.Namespace(), Logger: logging.Temporal(zap.NewNop())})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	w := worker.New(c, waitQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(waitForSignal, workflow.RegisterOptions{Name: waitWorkflow})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return c, w
}

func TestSQLiteTemporalKeepsWorkflowsAcrossRestarts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dbFile := filepath.Join(t.TempDir(), "data", "temporal.db")

	first := startSQLite(t, SQLiteOptions{DBFile: dbFile, Namespace: "breachflow-test"})
	require.Equal(t, "breachflow-test", first.Namespace())
	require.FileExists(t, dbFile)
	c, w := dialWorker(t, first)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "survives-restart", TaskQueue: waitQueue}, waitWorkflow)
	require.NoError(t, err)
	// The workflow has run once and is blocked on the signal when its first task completed.
	require.Eventually(t, func() bool {
		d, err := c.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
		return err == nil && d.GetWorkflowExecutionInfo().GetHistoryLength() >= 4
	}, 30*time.Second, 50*time.Millisecond)
	w.Stop()
	c.Close()
	first.Stop()

	// Same file, same port: the workflow is still there and completes on the signal.
	second := startSQLite(t, SQLiteOptions{DBFile: dbFile, Namespace: "breachflow-test", Listen: first.Address()})
	require.Equal(t, first.Address(), second.Address())
	c2, _ := dialWorker(t, second)
	require.NoError(t, c2.SignalWorkflow(ctx, run.GetID(), "", waitSignal, "after restart"))
	var got string
	require.NoError(t, c2.GetWorkflow(ctx, run.GetID(), "").Get(ctx, &got))
	require.Equal(t, "after restart", got)
}

func TestSQLiteTemporalRejectsBadOptions(t *testing.T) {
	dir := t.TempDir()
	foreign := filepath.Join(dir, "foreign.db")
	db, err := sql.Open("sqlite", "file:"+foreign)
	require.NoError(t, err)
	_, err = db.Exec(`CREATE TABLE notes (body TEXT)`)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	notDB := filepath.Join(dir, "plain.txt")
	require.NoError(t, os.WriteFile(notDB, []byte("this is not a database file, not at all, no"), 0o600))

	for _, tc := range []struct {
		name string
		opts SQLiteOptions
		want string
	}{
		{"no file", SQLiteOptions{}, "database file is required"},
		{"query in path", SQLiteOptions{DBFile: filepath.Join(dir, "a?b.db")}, "no '?' or '#'"},
		{"listen without port", SQLiteOptions{DBFile: filepath.Join(dir, "x.db"), Listen: "127.0.0.1"}, "want host:port"},
		{"listen on a name", SQLiteOptions{DBFile: filepath.Join(dir, "x.db"), Listen: "example.com:7233"}, "want an IP address"},
		{"bad log level", SQLiteOptions{DBFile: filepath.Join(dir, "x.db"), LogLevel: "loud"}, "log level"},
		{"foreign database", SQLiteOptions{DBFile: foreign}, "holds tables but not Temporal's"},
		{"not a database", SQLiteOptions{DBFile: notDB}, "read " + notDB},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := StartSQLiteTemporal(tc.opts)
			if srv != nil {
				srv.Stop()
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
	require.NoFileExists(t, filepath.Join(dir, "x.db"), "options are checked before the file is touched")
}

func TestSQLiteTemporalReportsATakenPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	// The server itself would exit the process on a port it cannot bind.
	srv, err := StartSQLiteTemporal(SQLiteOptions{DBFile: filepath.Join(t.TempDir(), "temporal.db"), Listen: ln.Addr().String()})
	if srv != nil {
		srv.Stop()
	}
	require.ErrorContains(t, err, "listen on "+ln.Addr().String())
}
