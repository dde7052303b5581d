//go:build faults

package faults_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/mail/sink"
	"github.com/breachflow/breachflow/internal/notice"
)

// Sizes and windows of the suite: big enough that a fault lands mid-round, small enough
// that every scenario ends within a few minutes on two cores.
const (
	suiteTenants  = 3000
	suiteContacts = 2
	inDoubtGrace  = 15 * time.Second
	scenarioLimit = 5 * time.Minute
	sinkKey       = "SG.faults"
)

var allServices = []string{"compute", "object-storage", "managed-postgres", "identity", "email-relay", "backup", "device-management"}

// deployment is the real thing in processes: Temporal on SQLite, serve, two workers and
// the mail sink, over a private PostgreSQL cluster.
type deployment struct {
	t        *testing.T
	dir, bin string
	pg       *cluster
	dbURL    string
	pool     *pgxpool.Pool
	temporal *proc
	sink     *proc
	api      *proc
	workers  []*proc
	apiURL   string
	sinkURL  string
	sinkPort int
	apiPort  int
	sinkPriv string
	keys     map[string]string
}

func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	require.NoError(t, err)
	return filepath.Dir(strings.TrimSpace(string(out)))
}

func newDeployment(t *testing.T) *deployment {
	t.Helper()
	d := &deployment{t: t, dir: t.TempDir(), keys: map[string]string{}}
	if dir := os.Getenv("BREACHFLOW_FAULTS_LOGS"); dir != "" {
		require.NoError(t, os.MkdirAll(dir, 0o755))
		d.dir = dir
	}
	d.bin = filepath.Join(t.TempDir(), "breachflow")
	build := exec.Command("go", "build", "-o", d.bin, "./cmd/breachflow")
	build.Dir = repoRoot(t)
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build: %s", out)

	d.pg = newCluster(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, d.pg.url("postgres"))
	require.NoError(t, err)
	_, err = admin.Exec(ctx, `CREATE DATABASE breachflow_faults`)
	require.NoError(t, err)
	require.NoError(t, admin.Close(ctx))
	d.dbURL = d.pg.url("breachflow_faults")
	d.cli(t, "migrate")
	data := filepath.Join(d.dir, "tenants")
	d.cli(t, "tenants", "generate", "--tenants", strconv.Itoa(suiteTenants), "--contacts-per-tenant", strconv.Itoa(suiteContacts),
		"--alternates", "0", "--seed", "11", "--out", data)
	d.cli(t, "tenants", "import", "--tenants", filepath.Join(data, "tenants.csv"), "--contacts", filepath.Join(data, "contacts.csv"))
	for name, role := range map[string]string{"rita": "responder", "alice": "approver", "bob": "approver"} {
		d.keys[name] = strings.TrimSpace(d.cli(t, "apikey", "create", "--name", name, "--role", role))
	}
	d.pool, err = pgxpool.New(ctx, d.dbURL)
	require.NoError(t, err)
	t.Cleanup(d.pool.Close)

	priv, pub, err := sink.GenerateKey()
	require.NoError(t, err)
	d.sinkPriv = priv
	d.apiPort, d.sinkPort = freePort(t), freePort(t)
	d.apiURL = fmt.Sprintf("http://127.0.0.1:%d", d.apiPort)
	d.sinkURL = fmt.Sprintf("http://127.0.0.1:%d", d.sinkPort)
	temporalAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	common := []string{"DATABASE_URL=" + d.dbURL, "TEMPORAL_ADDRESS=" + temporalAddr, "BREACHFLOW_PUBLIC_URL=" + d.apiURL,
		"BREACHFLOW_LOG_LEVEL=info", "BREACHFLOW_METRICS_LISTEN=127.0.0.1:0"}
	d.temporal = &proc{name: "temporal", bin: d.bin, dir: d.dir, ready: "temporal listening on",
		args: []string{"temporal", "--db-file", filepath.Join(d.dir, "temporal.db"), "--listen", temporalAddr, "--log-level", "warn"}}
	d.api = &proc{name: "serve", bin: d.bin, dir: d.dir, args: []string{"serve"}, env: append(slicesClone(common),
		"BREACHFLOW_LISTEN="+fmt.Sprintf("127.0.0.1:%d", d.apiPort), "SENDGRID_WEBHOOK_PUBLIC_KEY="+pub,
		"BREACHFLOW_SESSION_KEYS=k1:"+randomHex(32))}
	for i := range 2 {
		d.workers = append(d.workers, &proc{name: fmt.Sprintf("worker-%d", i+1), bin: d.bin, dir: d.dir, ready: "worker started",
			args: []string{"worker"}, env: append(slicesClone(common), "SENDGRID_API_KEY="+sinkKey, "SENDGRID_API_URL="+d.sinkURL,
				"SENDGRID_TIMEOUT=10s", "BREACHFLOW_IN_DOUBT_GRACE="+inDoubtGrace.String())})
	}
	d.temporal.start(t)
	d.startSink(t, true)
	d.api.start(t)
	waitHTTP(t, d.apiURL+"/readyz", time.Minute)
	for _, w := range d.workers {
		w.start(t)
	}
	t.Cleanup(func() {
		for _, p := range append(append([]*proc{}, d.workers...), d.api, d.sink, d.temporal) {
			p.stop()
		}
		if t.Failed() {
			for _, p := range []*proc{d.temporal, d.api, d.sink, d.workers[0], d.workers[1]} {
				t.Logf("--- %s (last lines)\n%s", p.name, tail(p.logPath(), 25))
			}
		}
	})
	return d
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// cli runs a breachflow command against the suite's database.
func (d *deployment) cli(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(d.bin, args...)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+d.dbURL, "BREACHFLOW_API_KEY=", "BREACHFLOW_LOG_LEVEL=warn")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(t, cmd.Run(), "breachflow %s: %s", strings.Join(args, " "), errb.String())
	return out.String()
}

// startSink (re)starts the mail sink, with or without its webhook; a restart empties
// the mailbox.
func (d *deployment) startSink(t *testing.T, webhook bool) {
	t.Helper()
	if d.sink != nil {
		d.sink.stop()
	}
	args := []string{"mailsink", "--listen", fmt.Sprintf("127.0.0.1:%d", d.sinkPort), "--api-key", sinkKey}
	if webhook {
		args = append(args, "--webhook-url", d.apiURL+"/v1/webhooks/sendgrid")
	}
	d.sink = &proc{name: "mailsink", bin: d.bin, dir: d.dir, ready: "mail sink on", args: args,
		env: []string{"BREACHFLOW_MAILSINK_PRIVATE_KEY=" + d.sinkPriv, "BREACHFLOW_LOG_LEVEL=warn"}}
	d.sink.start(t)
	// The banner may come before the listener: wait for an answer.
	waitHTTP(t, d.sinkURL+"/sink/messages?limit=1", 30*time.Second)
}

func (d *deployment) setFaults(t *testing.T, f map[string]any) {
	t.Helper()
	code, body := d.http(t, "POST", d.sinkURL+"/sink/faults", "", f)
	require.Equal(t, http.StatusOK, code, body)
}

// http sends a JSON request and returns the status and body.
func (d *deployment) http(t *testing.T, method, url, key string, body any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(raw)
}

// must sends an API request as who and requires code.
func (d *deployment) must(t *testing.T, code int, method, path, who string, body, out any) {
	t.Helper()
	got, raw := d.http(t, method, d.apiURL+path, d.keys[who], body)
	require.Equal(t, code, got, "%s %s: %s", method, path, raw)
	if out != nil {
		require.NoError(t, json.Unmarshal([]byte(raw), out))
	}
}

// declare runs an incident to its second approval and returns its id.
func (d *deployment) declare(t *testing.T, title string) string {
	t.Helper()
	var inc struct{ Incident struct{ ID string } }
	d.must(t, http.StatusCreated, "POST", "/v1/incidents", "rita", map[string]any{"title": title, "severity": "high",
		"aware_at": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}, &inc)
	id := inc.Incident.ID
	// The title and awareness time are the declaration's, stated by the service; every
	// locale but English reads the English text, there being no translation.
	draft := notice.Draft{Fields: notice.Fields{Reference: id,
		Nature: "Unauthorised read access to a database.", DataCategories: []string{"contact details"},
		DataSubjectCategories: []string{"customers' users"}, ApproxDataSubjects: 100, ApproxRecords: 1000,
		Contact:            notice.ContactPoint{Name: "Privacy Office", Email: "privacy@provider.example"},
		LikelyConsequences: "Phishing.", MeasuresTaken: "Access revoked.", MeasuresProposed: "Rotate credentials."},
		EnglishFallback: []string{"de", "es", "fr", "it"}, Sender: notice.Sender{Organisation: "Faults Cloud Ltd"}}
	var st struct {
		Status struct {
			ContentHash string `json:"content_hash"`
		}
	}
	d.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/draft", "rita", draft, &st)
	d.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/assessment", "rita", map[string]any{"reportable": true, "rationale": "personal data read"}, nil)
	d.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/scope", "rita", map[string]any{"services": allServices}, nil)
	d.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/approval", "alice", map[string]string{"content_hash": st.Status.ContentHash}, nil)
	d.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/approval", "bob", map[string]string{"content_hash": st.Status.ContentHash}, nil)
	return id
}

// progress reads the ledger and the outbox of incident id (PostgreSQL may be down: ok
// false).
type progress struct {
	// sending counts notices in doubt and pages an attempt holds.
	tenants, notified, open, sending int
}

func (d *deployment) progress(id string) (progress, bool) {
	var p progress
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := d.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM ledger WHERE incident_id = $1 AND phase = 1 AND removed_at IS NULL),
		(SELECT count(*) FROM ledger WHERE incident_id = $1 AND phase = 1 AND removed_at IS NULL AND satisfied_at IS NOT NULL),
		(SELECT count(*) FROM notices WHERE incident_id = $1 AND status IN ('pending', 'sending')),
		(SELECT count(*) FROM notices WHERE incident_id = $1 AND status = 'sending') +
		(SELECT count(*) FROM notice_pages WHERE incident_id = $1 AND claim IS NOT NULL)`, id).Scan(&p.tenants, &p.notified, &p.open, &p.sending)
	return p, err == nil
}

func (p progress) done() bool { return p.tenants > 0 && p.notified == p.tenants && p.open == 0 }

// received counts the notices of incident id each address received at the sink.
func (d *deployment) received(t *testing.T, id string) map[string]int {
	t.Helper()
	out := map[string]int{}
	after := uint64(0)
	for {
		code, raw := d.http(t, "GET", fmt.Sprintf("%s/sink/messages?limit=1000&after=%d", d.sinkURL, after), "", nil)
		require.Equal(t, http.StatusOK, code, raw)
		var page struct {
			Messages []struct {
				Seq        uint64 `json:"seq"`
				To         []struct{ Email string }
				CustomArgs map[string]string `json:"custom_args"`
			} `json:"messages"`
			NextAfter uint64 `json:"next_after"`
		}
		require.NoError(t, json.Unmarshal([]byte(raw), &page))
		for _, m := range page.Messages {
			if m.CustomArgs["incident_id"] != id {
				continue
			}
			for _, to := range m.To {
				out[strings.ToLower(to.Email)]++
			}
		}
		if page.NextAfter == 0 || len(page.Messages) == 0 {
			return out
		}
		after = page.NextAfter
	}
}

// scenario is one fault and where in the round it strikes.
type scenario struct {
	name    string
	webhook bool
	faults  map[string]any // sink faults from the start
	// trigger says when to strike: on the first claim (at < 0) or once this share of
	// tenants is notified.
	at float64
	// delay after the trigger before striking.
	delay time.Duration
	// strike injects the fault and returns once it is over (the process restarted, the
	// database back).
	strike func(t *testing.T, d *deployment)
}

type outcome struct {
	name                                                       string
	recipients, once, twice, none, recorded, unrecorded, stray int
	recovery, total                                            time.Duration
}

func (d *deployment) runScenario(t *testing.T, sc scenario) outcome {
	t.Helper()
	d.startSink(t, sc.webhook)
	if sc.faults != nil {
		d.setFaults(t, sc.faults)
	}
	id := d.declare(t, "Fault scenario: "+sc.name)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), scenarioLimit)
	defer cancel()
	o := outcome{name: sc.name}
	if sc.strike != nil {
		hit := within(ctx, 20*time.Millisecond, func() bool {
			p, ok := d.progress(id)
			if !ok {
				return false
			}
			if sc.at < 0 {
				return p.sending > 0 || p.notified > 0
			}
			return p.tenants > 0 && float64(p.notified) >= sc.at*float64(p.tenants)
		})
		require.True(t, hit, "%s: the trigger never came", sc.name)
		time.Sleep(sc.delay)
		before, _ := d.progress(id)
		sc.strike(t, d)
		over := time.Now()
		if before.done() {
			t.Logf("%s: the round ended before the fault struck", sc.name)
		} else {
			// Recovery: from the end of the fault to the next tenant notified.
			base := before.notified
			if p, ok := d.progress(id); ok && p.notified > base {
				base = p.notified
			}
			require.True(t, within(ctx, 50*time.Millisecond, func() bool {
				p, ok := d.progress(id)
				return ok && (p.notified > base || p.done())
			}), "%s: no progress after the fault", sc.name)
			o.recovery = time.Since(over)
		}
	}
	var last progress
	require.True(t, within(ctx, 200*time.Millisecond, func() bool {
		p, ok := d.progress(id)
		last = p
		return ok && p.done()
	}), "%s: not every tenant notified within %s: %+v", sc.name, scenarioLimit, last)
	o.total = time.Since(start)

	// What each recipient saw, against what the outbox says it sent.
	got := d.received(t, id)
	rows, err := d.pool.Query(context.Background(), `SELECT lower(c.email), n.possible_duplicate FROM notices n JOIN contacts c ON c.id = n.contact_id
		WHERE n.incident_id = $1 AND n.status IN ('sent', 'delivered', 'deferred')`, id)
	require.NoError(t, err)
	expected := map[string]bool{}
	for rows.Next() {
		var email string
		var dup bool
		require.NoError(t, rows.Scan(&email, &dup))
		expected[email] = true
		if dup {
			o.recorded++
		}
	}
	require.NoError(t, rows.Err())
	o.recipients = len(expected)
	extra := 0
	for email := range expected {
		switch n := got[email]; {
		case n == 0:
			o.none++
		case n == 1:
			o.once++
		default:
			o.twice++
			extra += n - 1
		}
	}
	for email := range got {
		if !expected[email] {
			o.stray++
		}
	}
	o.unrecorded = max(extra-o.recorded, 0)
	return o
}

// TestFaults runs every scenario on one deployment and prints, per scenario, how many
// recipients were told once, more than once and not at all, the duplicates the outbox
// recorded, and how long the round took to move again after the fault.
func TestFaults(t *testing.T) {
	d := newDeployment(t)
	killWorkers := func(which ...int) func(t *testing.T, d *deployment) {
		return func(t *testing.T, d *deployment) {
			for _, i := range which {
				d.workers[i].kill()
			}
			time.Sleep(time.Second)
			for _, i := range which {
				d.workers[i].start(t)
			}
		}
	}
	scenarios := []scenario{
		{name: "no fault", webhook: true},
		{name: "worker SIGKILL after the first claim", webhook: true, at: -1, strike: killWorkers(0, 1)},
		{name: "worker SIGKILL mid-request, webhook off", webhook: false, at: -1, delay: 300 * time.Millisecond,
			faults: map[string]any{"answer_delay_ms": 3000},
			strike: func(t *testing.T, d *deployment) {
				d.workers[0].kill()
				d.workers[1].kill()
				d.setFaults(t, map[string]any{})
				d.workers[0].start(t)
				d.workers[1].start(t)
			}},
		{name: "worker SIGKILL at half the tenants", webhook: true, at: 0.5, strike: killWorkers(0)},
		{name: "PostgreSQL outage of 20 s", webhook: true, at: 0.2, strike: func(t *testing.T, d *deployment) {
			d.pg.stop(t)
			time.Sleep(20 * time.Second)
			d.pg.start(t)
		}},
		{name: "Temporal server SIGKILL and restart", webhook: true, at: 0.3, strike: func(t *testing.T, d *deployment) {
			d.temporal.kill()
			time.Sleep(2 * time.Second)
			d.temporal.start(t)
		}},
		{name: "sink 429/500 storm, then a 5 s outage", webhook: true, at: 0.3,
			faults: map[string]any{"rate_limit_share": 0.3, "server_error_share": 0.2},
			strike: func(t *testing.T, d *deployment) {
				d.setFaults(t, map[string]any{"rate_limit_share": 0.3, "server_error_share": 0.2, "outage_seconds": 5})
				time.Sleep(5 * time.Second)
				d.setFaults(t, map[string]any{})
			}},
		{name: "webhook lost for the whole round", webhook: false},
	}
	var results []outcome
	for _, sc := range scenarios {
		o := d.runScenario(t, sc)
		results = append(results, o)
		t.Logf("%s: %+v", sc.name, o)
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\trecipients\ttold once\tmore than once\tnot at all\tduplicates recorded\tunrecorded\trecovery\tround")
	for _, o := range results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", o.name, o.recipients, o.once, o.twice, o.none, o.recorded, o.unrecorded,
			o.recovery.Round(100*time.Millisecond), o.total.Round(100*time.Millisecond))
	}
	tw.Flush()
	fmt.Print("\n" + b.String())
	for _, o := range results {
		require.Zero(t, o.none, "%s: recipients never told", o.name)
		require.Zero(t, o.unrecorded, "%s: duplicates nobody recorded", o.name)
		require.Zero(t, o.stray, "%s: messages to addresses the outbox never sent to", o.name)
		require.Positive(t, o.recipients, o.name)
	}
}
