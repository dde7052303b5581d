package main

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/testenv"
)

// cli runs args as main does and returns what went to stdout and stderr and the exit
// status.
func cli(t *testing.T, ctx context.Context, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	a, root := newApp()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	status = a.execute(ctx, root, args, &errb)
	return out.String(), errb.String(), status
}

// serverSettings are flags that only server commands take.
var serverSettings = []string{"--sendgrid-api-key", "--ack-secret", "--temporal-address", "--session-keys", "--mail-from",
	"--public-url", "--metrics-listen", "--log-level", "--log-format", "--audit-signing-key"}

// TestHelpShowsEachCommandItsOwnSettings: client commands list --url and --api-key with
// their environment variables and none of the server settings; server commands list
// the settings they read and no client settings.
func TestHelpShowsEachCommandItsOwnSettings(t *testing.T) {
	ctx := context.Background()
	help := func(args ...string) string {
		t.Helper()
		out, errOut, status := cli(t, ctx, append(args, "--help")...)
		require.Zero(t, status, errOut)
		return out
	}
	for _, args := range [][]string{{"incident"}, {"incident", "show"}, {"incident", "watch"}, {"incident", "declare"},
		{"partner"}, {"partner", "pending"}, {"apikey", "create"}} {
		out := help(args...)
		name := strings.Join(args, " ")
		for _, want := range []string{"--url", "BREACHFLOW_URL", "--api-key", "BREACHFLOW_API_KEY", "--json", "http://127.0.0.1:8080"} {
			require.Contains(t, out, want, name)
		}
		for _, server := range append(serverSettings, "--listen", "--in-doubt-grace", "--task-queue") {
			require.NotContains(t, out, server, "%s shows server setting %s:\n%s", name, server, out)
		}
		if args[0] == "apikey" {
			require.Contains(t, out, "--database-url", "apikey also goes straight to the database")
			require.Contains(t, out, "DATABASE_URL")
		} else {
			require.NotContains(t, out, "--database-url", name)
		}
	}

	root := help()
	root = root[strings.Index(root, "Flags:"):]
	for _, f := range append(serverSettings, "--database-url", "--url", "--api-key") {
		require.NotContains(t, root, f, "the root command has no settings of its own")
	}
	for _, name := range []string{"dev", "serve", "worker"} {
		out := help(name)
		for _, want := range append(serverSettings, "--database-url", "--listen", "BREACHFLOW_ACK_SECRET") {
			require.Contains(t, out, want, name)
		}
		require.NotContains(t, out, "--url ", name)
		require.NotContains(t, out, "--api-key", name)
		require.NotContains(t, out, "--json", name)
	}
	migrate := help("migrate")
	require.Contains(t, migrate, "--database-url")
	require.Contains(t, migrate, "--log-level")
	require.NotContains(t, migrate, "--sendgrid-api-key", "migrate reads only the database and logging settings")
	require.Contains(t, help("tenants", "import"), "--database-url")
	require.NotContains(t, help("tenants", "generate"), "--database-url", "generate writes files only")
	sink := help("mailsink")
	require.Contains(t, sink, "accepted API keys", "the sink keeps its own --api-key")
	require.Contains(t, sink, "--mailsink-listen")
	require.NotContains(t, sink, "--database-url")
	temporal := help("temporal")
	require.Contains(t, temporal, "the server's own logs", "temporal keeps its own --log-level")
	require.NotContains(t, temporal, "--database-url")
}

// TestServerFlagsAreReadAndClientCommandsRefuseThem: a server setting given as a flag
// reaches the server command; a client command refuses it as an unknown flag.
func TestServerFlagsAreReadAndClientCommandsRefuseThem(t *testing.T) {
	ctx := context.Background()
	t.Setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/nothing?sslmode=disable")
	_, errOut, status := cli(t, ctx, "migrate", "--database-url", "postgres://postgres@127.0.0.1:1/nothing?sslmode=disable")
	require.Equal(t, 1, status)
	require.Contains(t, errOut, "no PostgreSQL server answers at 127.0.0.1:1", "the flag beats DATABASE_URL")

	_, errOut, status = cli(t, ctx, "incident", "list", "--sendgrid-api-key", "SG.x")
	require.Equal(t, 2, status, "a usage error")
	require.Contains(t, errOut, "unknown flag: --sendgrid-api-key")
	require.Contains(t, errOut, "Run 'breachflow incident list --help' for usage.")
}

type errorBody struct {
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

// jsonError decodes stderr as one JSON error and checks nothing went to stdout.
func jsonError(t *testing.T, stdout, stderr string) errorBody {
	t.Helper()
	require.Empty(t, stdout)
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	require.Len(t, lines, 1, "one line of JSON on stderr: %q", stderr)
	var e errorBody
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &e), stderr)
	require.NotNil(t, e.Error, stderr)
	require.NotEmpty(t, e.Error.Message)
	return e
}

// TestJSONErrorsFoundByTheCLI: with --json, errors the CLI finds itself (before or
// without a request) are the API's error shape on stderr with a non-zero status.
func TestJSONErrorsFoundByTheCLI(t *testing.T) {
	ctx := context.Background()
	t.Setenv("BREACHFLOW_URL", "")
	t.Setenv("BREACHFLOW_API_KEY", "")
	for _, tc := range []struct {
		name        string
		args        []string
		code, field string
		status      int
	}{
		{"no API key", []string{"incident", "show", "INC-1", "--json"}, "unauthenticated", "api-key", 1},
		{"bad URL", []string{"partner", "pending", "--json", "--url", "ftp://x", "--api-key", "bf_x"}, "invalid", "url", 1},
		{"API not listening", []string{"incident", "list", "--json", "--url", "http://127.0.0.1:1", "--api-key", "bf_x"}, "unavailable", "", 1},
		{"missing flag", []string{"incident", "assess", "INC-1", "--json", "--api-key", "bf_x"}, "invalid", "reportable", 1},
		{"missing file", []string{"incident", "declare", "-f", "nope.yaml", "--json", "--api-key", "bf_x"}, "invalid", "file", 1},
		{"bad review id", []string{"partner", "confirm", "x", "--json"}, "invalid", "id", 1},
		{"unknown flag", []string{"incident", "list", "--json", "--bogus"}, "invalid", "bogus", 2},
		{"unknown flag before --json", []string{"incident", "list", "--bogus", "--json"}, "invalid", "bogus", 2},
		{"bad flag value", []string{"incident", "list", "--limit", "many", "--json"}, "invalid", "limit", 2},
		{"missing argument", []string{"incident", "show", "--json"}, "invalid", "", 2},
		{"unknown command", []string{"incident", "frobnicate", "--json"}, "invalid", "", 2},
		{"unknown top command", []string{"frobnicate", "--json"}, "invalid", "", 2},
		{"both key and database", []string{"apikey", "list", "--json", "--api-key", "bf_x", "--database-url", "postgres://h/db"}, "invalid", "database-url", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, status := cli(t, ctx, tc.args...)
			require.Equal(t, tc.status, status, stderr)
			e := jsonError(t, stdout, stderr)
			require.Equal(t, tc.code, e.Error.Code, stderr)
			require.Equal(t, tc.field, e.Error.Field, stderr)
		})
	}

	// Without --json the same error is a sentence.
	_, stderr, status := cli(t, ctx, "incident", "show", "INC-1")
	require.Equal(t, 1, status)
	require.True(t, strings.HasPrefix(stderr, "breachflow: no API key: give --api-key or set BREACHFLOW_API_KEY"), stderr)
}

var stamped = regexp.MustCompile(`^\d\d:\d\d:\d\d  `)

var goDuration = regexp.MustCompile(`\d+h\d+m|\d+m\d+(\.\d+)?s\b`)

// TestClientCommandsAgainstDev runs the client commands against dev with --url and
// --api-key alone (no environment): API errors come back in the API's shape with
// --json, unset times are null, text shows times and durations for people, and watch
// prints plain lines into a pipe.
func TestClientCommandsAgainstDev(t *testing.T) {
	dbURL := testenv.EmptyDatabaseURL(t)
	d := startDevOn(t, dbURL, t.TempDir(), 12)
	ctx := context.Background()
	t.Setenv("BREACHFLOW_URL", "")
	t.Setenv("BREACHFLOW_API_KEY", "")
	as := func(key string, args ...string) (string, string, int) {
		return cli(t, ctx, append(args, "--url", d.apiURL, "--api-key", key)...)
	}
	must := func(key string, args ...string) string {
		t.Helper()
		out, errOut, status := as(key, args...)
		require.Zero(t, status, "%v: %s", args, errOut)
		return out
	}
	rita := strings.TrimSpace(must(d.key, "apikey", "create", "--name", "rita", "--role", "responder"))
	require.Regexp(t, `^bf_\S+$`, rita)
	keys := must(d.key, "apikey", "list", "--json")
	require.NotContains(t, keys, "0001-01-01")

	// --database-url goes straight to the database even with an API key in the
	// environment.
	t.Setenv("BREACHFLOW_API_KEY", "bf_not-a-key")
	out, errOut, status := cli(t, ctx, "apikey", "list", "--database-url", dbURL)
	require.Zero(t, status, errOut)
	require.Contains(t, out, "rita")
	t.Setenv("BREACHFLOW_API_KEY", "")

	id := strings.TrimSpace(must(rita, "incident", "declare", "-f", "../../examples/incident.yaml"))
	require.Regexp(t, `^INC-\d{8}-[A-Z0-9]{6}$`, id)

	// Before scoping the workflow knows no deadline: null, not year 1.
	raw := must(rita, "incident", "show", id, "--json")
	require.NotContains(t, raw, "0001-01-01")
	var view struct {
		Incident struct {
			AwareAt *time.Time `json:"aware_at"`
		} `json:"incident"`
		Status *struct {
			Scope map[string]any `json:"scope"`
		} `json:"status"`
	}
	require.NoError(t, json.Unmarshal([]byte(raw), &view), raw)
	require.Equal(t, time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC), view.Incident.AwareAt.UTC(), "set times are RFC 3339")
	if view.Status != nil {
		deadline, ok := view.Status.Scope["earliest_deadline"]
		require.True(t, ok, raw)
		require.Nil(t, deadline, "an unset time is null: %s", raw)
	}

	text := must(rita, "incident", "show", id)
	require.Regexp(t, `aware at    2026-11-30 08:00 UTC \(\d+ (d|h|min)[^)]* ago\)`, text)
	require.NotRegexp(t, goDuration, text)
	require.NotContains(t, text, "T08:00:00Z", "text shows times for people")

	// The API's errors, in its shape, on stderr.
	stdout, stderr, status := as(rita, "incident", "approve", id, "--hash", "sha256:0123456789abcdef", "--json")
	require.Equal(t, 1, status)
	e := jsonError(t, stdout, stderr)
	require.Equal(t, "forbidden", e.Error.Code, "a responder may not approve")
	stdout, stderr, status = as(rita, "incident", "show", "INC-20260101-NOSUCH", "--json")
	require.Equal(t, 1, status)
	require.Equal(t, "not_found", jsonError(t, stdout, stderr).Error.Code)

	// Piped, watch prints lines and no terminal sequences; Ctrl-C (the context) ends it
	// with status 0.
	wctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	a, root := newApp()
	var wout, werr bytes.Buffer
	root.SetOut(&wout)
	root.SetErr(&werr)
	require.Zero(t, a.execute(wctx, root, []string{"incident", "watch", id, "--interval", "200ms", "--url", d.apiURL, "--api-key", rita}, &werr), werr.String())
	require.Regexp(t, `^\d\d:\d\d:\d\d  `+id+`  (assessing|declared)`, wout.String())
	require.Contains(t, wout.String(), "  partner  devicecare")
	require.NotContains(t, wout.String(), "\x1b")
	// Seven refreshes or so, but a block only when the picture changed.
	var blocks []string
	for _, l := range strings.Split(wout.String(), "\n") {
		if stamped.MatchString(l) {
			blocks = append(blocks, "")
			l = l[len("15:04:05  "):]
		}
		require.NotEmpty(t, blocks, "a block starts with the time: %q", wout.String())
		blocks[len(blocks)-1] += l + "\n"
	}
	for i := 1; i < len(blocks); i++ {
		require.NotEqual(t, blocks[i-1], blocks[i], "an unchanged picture is printed once:\n%s", wout.String())
	}
}
