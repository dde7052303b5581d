package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// run executes the CLI with args and returns what it printed.
func run(t *testing.T, ctx context.Context, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&out)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// devStack runs `breachflow dev` on free ports with n demo tenants until the test ends
// (or stop).
type devStack struct {
	apiURL, sinkURL, key string
	stop                 func()
}

func startDev(t *testing.T, n int) devStack {
	t.Helper()
	return startDevOn(t, testenv.EmptyDatabaseURL(t), t.TempDir(), n)
}

// startDevOn runs `breachflow dev` on the database dbURL with its state in dataDir.
func startDevOn(t *testing.T, dbURL, dataDir string, n int) devStack {
	t.Helper()
	t.Setenv("DATABASE_URL", dbURL)
	t.Setenv("BREACHFLOW_LISTEN", "127.0.0.1:0")
	t.Setenv("BREACHFLOW_MAILSINK_LISTEN", "127.0.0.1:0")
	t.Setenv("BREACHFLOW_METRICS_LISTEN", "127.0.0.1:0")
	t.Setenv("BREACHFLOW_LOG_LEVEL", "warn")

	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		root := newRoot()
		root.SetArgs([]string{"dev", "--demo-tenants", strconv.Itoa(n), "--data-dir", dataDir})
		root.SetOut(pw)
		root.SetErr(io.Discard)
		done <- root.ExecuteContext(ctx)
		pw.Close()
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(30 * time.Second):
				t.Error("dev did not shut down")
			}
		})
	}
	t.Cleanup(stop)

	d := devStack{stop: stop}
	apiRe := regexp.MustCompile(`^\s+API\s+(http://\S+)`)
	keyRe := regexp.MustCompile(`^\s+admin key\s+(bf_\S+)`)
	sinkRe := regexp.MustCompile(`^\s+mail sink\s+(http://\S+)/sink/`)
	sc := bufio.NewScanner(pr)
	for sc.Scan() && (d.apiURL == "" || d.key == "" || d.sinkURL == "") {
		line := sc.Text()
		if m := apiRe.FindStringSubmatch(line); m != nil {
			d.apiURL = m[1]
		}
		if m := keyRe.FindStringSubmatch(line); m != nil {
			d.key = m[1]
		}
		if m := sinkRe.FindStringSubmatch(line); m != nil {
			d.sinkURL = m[1]
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	require.NotEmpty(t, d.apiURL)
	require.NotEmpty(t, d.key)
	require.NotEmpty(t, d.sinkURL)
	return d
}

func TestDevStackServesHealthAndAcceptsItsKey(t *testing.T) {
	d := startDev(t, 30)
	apiURL, key, sinkURL := d.apiURL, d.key, d.sinkURL
	ctx := context.Background()

	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(apiURL + path)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
	}
	resp, err := http.Get(sinkURL + "/sink/messages")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	t.Setenv("BREACHFLOW_URL", apiURL)
	t.Setenv("BREACHFLOW_API_KEY", key)
	out, err := run(t, ctx, "apikey", "list")
	require.NoError(t, err)
	require.Contains(t, out, "dev-admin")
	require.Contains(t, out, "admin")
	require.NotContains(t, out, key)

	t.Setenv("BREACHFLOW_API_KEY", "bf_wrong")
	_, err = run(t, ctx, "apikey", "list")
	require.ErrorContains(t, err, "401")

	// Without BREACHFLOW_API_KEY the command works on DATABASE_URL directly.
	t.Setenv("BREACHFLOW_API_KEY", "")
	out, err = run(t, ctx, "apikey", "create", "--name", "second", "--role", "responder")
	require.NoError(t, err)
	require.Regexp(t, `^bf_`, out)

}

// TestDevRevokesThePreviousAdminKey: each start of dev prints a new admin key and revokes
// the one the previous start printed, so keys pasted into old shells stop working.
func TestDevRevokesThePreviousAdminKey(t *testing.T) {
	dbURL := testenv.EmptyDatabaseURL(t)
	first := startDevOn(t, dbURL, t.TempDir(), 5)
	second := startDevOn(t, dbURL, t.TempDir(), 5)
	require.NotEqual(t, first.key, second.key)
	ctx := context.Background()
	t.Setenv("BREACHFLOW_URL", second.apiURL)
	t.Setenv("BREACHFLOW_API_KEY", first.key)
	_, err := run(t, ctx, "apikey", "list")
	require.ErrorContains(t, err, "401", "the first start's key is revoked")
	t.Setenv("BREACHFLOW_API_KEY", second.key)
	out, err := run(t, ctx, "apikey", "list")
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(out, "active"), out)
}

func TestUnreachablePostgresSaysWhatToDo(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nothing?sslmode=disable")
	_, err := run(t, context.Background(), "migrate")
	require.ErrorContains(t, err, "no PostgreSQL server answers at 127.0.0.1:1")
	require.ErrorContains(t, err, "DATABASE_URL")
}

func TestConfigErrorsAreListed(t *testing.T) {
	t.Setenv("BREACHFLOW_LISTEN", "nowhere")
	t.Setenv("DATABASE_URL", "mysql://db/x")
	_, err := run(t, context.Background(), "migrate")
	require.Error(t, err)
	msg := err.Error()
	require.True(t, strings.HasPrefix(msg, "configuration:"), msg)
	require.Contains(t, msg, "BREACHFLOW_LISTEN")
	require.Contains(t, msg, "DATABASE_URL")
}

func TestTenantsGenerateAndImport(t *testing.T) {
	t.Setenv("DATABASE_URL", testenv.DatabaseURL(t))
	dir := t.TempDir()
	out, err := run(t, context.Background(), "tenants", "generate", "--tenants", "120", "--contacts-per-tenant", "2", "--out", dir)
	require.NoError(t, err)
	require.Contains(t, out, "wrote 120 tenants")
	out, err = run(t, context.Background(), "tenants", "import", "--tenants", dir+"/tenants.csv", "--contacts", dir+"/contacts.csv")
	require.NoError(t, err)
	require.Contains(t, out, "tenants: 120 new")
	require.Contains(t, out, "contacts: 240 new")
	_, err = run(t, context.Background(), "tenants", "import", "--tenants", dir+"/missing.csv", "--contacts", dir+"/contacts.csv")
	require.ErrorContains(t, err, "missing.csv")
}

// TestDevRestartResumesTheIncident: dev keeps Temporal's state in its data directory, so
// an incident waiting for approval when dev stops is approved, confirmed by the partner,
// notified to every tenant and closed after a restart on the same directory.
func TestDevRestartResumesTheIncident(t *testing.T) {
	dbURL, dataDir := testenv.EmptyDatabaseURL(t), t.TempDir()
	ctx := context.Background()
	first := startDevOn(t, dbURL, dataDir, 12)
	t.Setenv("BREACHFLOW_URL", first.apiURL)
	t.Setenv("BREACHFLOW_API_KEY", first.key)
	keys := map[string]string{}
	for name, role := range map[string]string{"rita": "responder", "alice": "approver", "bob": "approver", "dc": "partner:devicecare"} {
		out, err := run(t, ctx, "apikey", "create", "--name", name, "--role", role)
		require.NoError(t, err)
		keys[name] = strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
	}
	t.Setenv("BREACHFLOW_API_KEY", keys["rita"])
	out, err := run(t, ctx, "incident", "declare", "-f", "../../examples/incident.yaml")
	require.NoError(t, err, out)
	id := strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
	_, err = run(t, ctx, "incident", "assess", id, "--reportable=true", "--rationale", "personal data read")
	require.NoError(t, err)
	out, err = run(t, ctx, "incident", "scope", id)
	require.NoError(t, err, out)
	require.Contains(t, out, "stage approval")
	first.stop()

	second := startDevOn(t, dbURL, dataDir, 12)
	t.Setenv("BREACHFLOW_URL", second.apiURL)
	// The restarted worker picks the workflow up again; its status answers once it has.
	t.Setenv("BREACHFLOW_API_KEY", keys["rita"])
	require.Eventually(t, func() bool {
		out, err := run(t, ctx, "incident", "show", id, "--json")
		return err == nil && strings.Contains(out, `"status"`) && strings.Contains(out, `"approval"`)
	}, 2*time.Minute, 500*time.Millisecond, "the workflow answers after the restart")
	for _, who := range []string{"alice", "bob"} {
		t.Setenv("BREACHFLOW_API_KEY", keys[who])
		out, err = run(t, ctx, "incident", "approve", id)
		require.NoError(t, err, "the workflow is still there after the restart: %s", out)
	}
	// The partner confirms its covered tenants, and every tenant is notified.
	t.Setenv("BREACHFLOW_API_KEY", keys["dc"])
	var review int64
	require.Eventually(t, func() bool {
		out, err := run(t, ctx, "partner", "pending", "--json")
		var list struct{ Reviews []struct{ ID int64 } }
		if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list.Reviews) == 0 {
			return false
		}
		review = list.Reviews[0].ID
		return true
	}, 2*time.Minute, 500*time.Millisecond, "the partner's review is open")
	out, err = run(t, ctx, "partner", "confirm", strconv.FormatInt(review, 10))
	require.NoError(t, err, out)
	t.Setenv("BREACHFLOW_API_KEY", keys["rita"])
	require.Eventually(t, func() bool {
		out, err := run(t, ctx, "incident", "show", id, "--json")
		if err != nil {
			return false
		}
		var v struct {
			Ledger struct {
				Tenants int
				Phases  []struct{ Notified, Owed int }
			}
		}
		if json.Unmarshal([]byte(out), &v) != nil || len(v.Ledger.Phases) == 0 {
			return false
		}
		p := v.Ledger.Phases[0]
		return v.Ledger.Tenants > 0 && p.Owed == 0 && p.Notified == v.Ledger.Tenants
	}, 2*time.Minute, 500*time.Millisecond, "every tenant notified after the restart")
	out, err = run(t, ctx, "incident", "close", id, "--reason", "every tenant told")
	require.NoError(t, err, out)
}
