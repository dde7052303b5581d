// Package bench runs one incident over generated tenants through the whole stack
// (PostgreSQL, in-process Temporal, worker, API, the SendGrid client against the mail sink
// with webhooks on) in one process, or with the worker in a process of its own; once every
// notice is accepted it measures the API's delivery webhook ingest and acknowledgement
// POSTs; then, over the same contacts and a fresh sink, it runs a baseline without the
// engine, and reports the figures of the README's table.
package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/breachflow/breachflow/activities"
	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/devenv"
	"github.com/breachflow/breachflow/internal/logging"
	"github.com/breachflow/breachflow/internal/mail"
	"github.com/breachflow/breachflow/internal/mail/sink"
	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/tenants"
	"github.com/breachflow/breachflow/schema"
	bfworker "github.com/breachflow/breachflow/worker"
	"github.com/breachflow/breachflow/workflows"
)

// AllServices are the scope criteria of the benchmark's incident: every service.
var AllServices = []string{"compute", "object-storage", "managed-postgres", "identity", "email-relay", "backup", tenants.PartnerService}

// Baseline shape: pages of this many personalizations, posted by this many senders.
const (
	BaselinePageSize = 1000
	BaselineSenders  = 4
)

// webhookBatchEvents caps the sink's webhook batches by count well above what 768 KiB
// holds, so that their size decides, as at SendGrid.
const webhookBatchEvents = 10_000

// sinkKey is the SendGrid API key the sinks accept and the senders use.
const sinkKey = "SG.bench"

// The sender of the notices and the responders the workers alert.
const (
	mailFrom   = "notices@provider.example"
	responders = "responders@provider.example"
)

// Options shape a run.
type Options struct {
	// DatabaseURL names the PostgreSQL server; the run creates and drops its own database there.
	DatabaseURL string
	// Tenants and ContactsPerTenant size the generated data.
	Tenants, ContactsPerTenant int
	// Progress receives a line every ProgressEvery while the run lasts (nil: none).
	Progress      io.Writer
	ProgressEvery time.Duration
	// Timeout bounds the wait for the last notice (default 30 minutes).
	Timeout time.Duration
	// Logger logs the parts' own messages (nil: none).
	Logger *zap.Logger
	// CPUProfile, when set, receives a CPU profile of the process from the second
	// approval to the last notice accepted.
	CPUProfile string
	// KeepDatabase leaves the run's database in place, to look at its plans afterwards.
	KeepDatabase bool
	// WorkerCommand, when set, runs the worker as a child process: the binary and its
	// arguments, such as {os.Executable(), "worker"} of breachflow. It is told the run's
	// settings by environment variable (DATABASE_URL, TEMPORAL_ADDRESS, …) and stopped
	// with SIGTERM at the end. Empty runs the worker in this process.
	WorkerCommand []string
	// WorkerEnv is added to the child worker's environment after the run's settings
	// (its log level and format, say).
	WorkerEnv []string
	// Window and PlanLanes, when set, replace the incident's concurrent page sends and
	// planning lanes per pass (workflows.Timing), to size them by measurement.
	Window, PlanLanes int
}

// Figures are what a run measured.
type Figures struct {
	Tenants, Contacts int
	Notices           int
	Import            time.Duration
	// ScopeResolution is the wall time of the scope request (POST …/scope), which returns
	// once the workflow has resolved the snapshot and the ledger.
	ScopeResolution time.Duration
	// ToFirst and ToLast run from the answer to the second approval to the first and the
	// last notice accepted by the sink.
	ToFirst, ToLast  time.Duration
	NoticesPerSecond float64
	SendGridRequests uint64
	// PeakRSS is this process's VmHWM: Temporal, API, sink and baseline share it, and the
	// worker unless it ran in a process of its own.
	PeakRSS int64
	// WorkerPeakRSS is the child worker's VmHWM, read just before it was stopped (0: the
	// worker ran in this process).
	WorkerPeakRSS int64
	// Ingest and Acks were measured once every notice was accepted.
	Ingest IngestFigures
	Acks   AckFigures
	// LargestHistory is the most events in any run of the incident's workflows; Runs counts them.
	LargestHistory, Runs int
	// Baseline is the time of the plain program over the same contacts.
	Baseline         time.Duration
	BaselineRequests uint64
	Ratio            float64
	Database         string
}

// Run builds a fresh database bench_<random> on o.DatabaseURL's server, runs the
// incident, measures the webhook ingest and the acknowledgement POSTs on it, runs the
// baseline, and drops the database.
func Run(ctx context.Context, o Options) (f Figures, err error) {
	if o.Tenants < 1 || o.ContactsPerTenant < 1 {
		return f, errors.New("bench: tenants and contacts per tenant must be positive")
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 2 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	r := &run{o: o, log: o.Logger}
	if o.Progress != nil {
		r.out = &syncWriter{w: o.Progress}
	}
	r.phase.Store("starting")
	stopProgress := r.progress()
	defer stopProgress()

	b := make([]byte, 6)
	_, _ = rand.Read(b)
	f.Database = "bench_" + hex.EncodeToString(b)
	dsn, err := store.WithDatabase(o.DatabaseURL, f.Database)
	if err != nil {
		return f, err
	}
	if _, err := store.EnsureDatabase(ctx, dsn); err != nil {
		return f, fmt.Errorf("create database %s: %w", f.Database, err)
	}
	defer func() {
		if o.KeepDatabase {
			return
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if derr := store.DropDatabase(dctx, dsn); derr != nil && err == nil {
			err = derr
		}
	}()
	if _, _, err := schema.MigrateURL(ctx, dsn); err != nil {
		return f, err
	}
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return f, err
	}
	defer st.Close()
	r.st = st

	r.phase.Store("importing")
	start := time.Now()
	if err := importTenants(ctx, st, o.Tenants, o.ContactsPerTenant); err != nil {
		return f, err
	}
	f.Import = time.Since(start)
	f.Tenants = o.Tenants
	if err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM contacts`).Scan(&f.Contacts); err != nil {
		return f, err
	}
	f.Notices = f.Contacts

	if err := r.engine(ctx, &f, dsn); err != nil {
		return f, err
	}
	if err := r.baseline(ctx, &f); err != nil {
		return f, err
	}
	f.PeakRSS, _ = PeakRSS()
	if f.Baseline > 0 {
		f.Ratio = f.ToLast.Seconds() / f.Baseline.Seconds()
	}
	r.phase.Store("done")
	return f, nil
}

type run struct {
	o      Options
	log    *zap.Logger
	out    io.Writer // o.Progress, shared with the worker's output (nil: none)
	st     *store.Store
	phase  atomic.Value // string
	sink   atomic.Pointer[sink.Sink]
	want   atomic.Int64
	step   atomic.Pointer[step]
	worker atomic.Pointer[workerProcess]
}

// step counts the work of a measurement for the progress lines.
type step struct {
	name string
	want int
	atomic.Int64
}

func (r *run) startStep(name string, want int) *step {
	s := &step{name: name, want: want}
	r.step.Store(s)
	return s
}

func (r *run) endStep() { r.step.Store(nil) }

// progress prints a line every o.ProgressEvery until the returned func is called.
func (r *run) progress() func() {
	if r.out == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	start := time.Now()
	go func() {
		defer wg.Done()
		t := time.NewTicker(r.o.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				line := fmt.Sprintf("bench %6.1fs  %s", time.Since(start).Seconds(), r.phase.Load())
				if sk := r.sink.Load(); sk != nil {
					s := sk.Stats()
					line += fmt.Sprintf("  accepted %d/%d  requests %d", s.Accepted, r.want.Load(), s.Requests)
				}
				if s := r.step.Load(); s != nil {
					line += fmt.Sprintf("  %s %d/%d", s.name, s.Load(), s.want)
				}
				if rss, err := PeakRSS(); err == nil {
					line += fmt.Sprintf("  peak RSS %d MiB", rss>>20)
				}
				if w := r.worker.Load(); w != nil {
					if rss, err := w.peakRSS(); err == nil {
						line += fmt.Sprintf("  worker peak RSS %d MiB", rss>>20)
					}
				}
				fmt.Fprintln(r.out, line)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func importTenants(ctx context.Context, st *store.Store, n, k int) error {
	var tb, cb bytes.Buffer
	if err := tenants.Generate(tenants.Options{Tenants: n, ContactsPerTenant: k, Seed: 42}, &tb, &cb); err != nil {
		return err
	}
	ts, err := tenants.ReadTenants(&tb, "bench-tenants.csv")
	if err != nil {
		return err
	}
	cs, err := tenants.ReadContacts(&cb, "bench-contacts.csv")
	if err != nil {
		return err
	}
	if _, err := st.ImportTenants(ctx, "bench-contacts.csv", ts, func() ([]store.Contact, error) { return cs, nil }); err != nil {
		return fmt.Errorf("import tenants: %w", err)
	}
	return nil
}

// serve serves h on a loopback listener until the returned func is called.
func serve(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// engine runs one incident through the whole stack, then measures the webhook ingest
// and the acknowledgement POSTs on it.
func (r *run) engine(ctx context.Context, f *Figures, dsn string) (err error) {
	st := r.st
	r.phase.Store("starting Temporal")
	temporal, err := devenv.StartTemporal()
	if err != nil {
		return err
	}
	defer temporal.Stop()
	tc, err := client.Dial(client.Options{HostPort: temporal.Address(), Namespace: temporal.Namespace(), Logger: logging.Temporal(r.log.Named("temporal"))})
	if err != nil {
		return fmt.Errorf("connect to in-process Temporal: %w", err)
	}
	defer tc.Close()

	// The API's listener comes first: the sink posts its webhooks there.
	apiLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	apiURL := "http://" + apiLn.Addr().String()
	// The sink and the ingest sign with one key, which the API verifies.
	hookKey, err := newWebhookKey()
	if err != nil {
		apiLn.Close()
		return err
	}
	// SendGrid posts its events in batches of up to 768 KiB (sink.DefaultWebhookBatchBytes)
	// rather than by count: the sink does the same here.
	sk, err := sink.New(sink.Config{APIKeys: []string{sinkKey}, MaxMessages: 10_000, WebhookURL: apiURL + "/v1/webhooks/sendgrid",
		WebhookPrivateKeyPEM: hookKey.private, WebhookBatchSize: webhookBatchEvents}, r.log.Named("mailsink"))
	if err != nil {
		apiLn.Close()
		return err
	}
	defer sk.Close()
	sinkURL, stopSink, err := serve(sk.Handler())
	if err != nil {
		apiLn.Close()
		return err
	}
	defer stopSink()

	tq := "bench-" + f.Database
	srv := api.New(st, tc, r.log.Named("api"))
	srv.TaskQueue = tq
	srv.Limits = nil
	srv.Timing.Window, srv.Timing.PlanLanes = r.o.Window, r.o.PlanLanes
	srv.PublicURL = apiURL
	if srv.Webhook, err = mail.NewVerifier(hookKey.publicKey); err != nil {
		apiLn.Close()
		return err
	}
	httpSrv := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = httpSrv.Serve(apiLn) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = httpSrv.Shutdown(sctx)
	}()

	secret, err := st.AckSecret(ctx, "")
	if err != nil {
		return err
	}
	if len(r.o.WorkerCommand) == 0 {
		sender, err := mail.NewSender(mail.Config{APIKey: sinkKey, BaseURL: sinkURL, FromEmail: mailFrom, FromName: "Security Notices"}, r.log.Named("mail"))
		if err != nil {
			return err
		}
		acts := &activities.Activities{Store: st, Mail: sender, Logger: r.log.Named("worker"), Now: time.Now, PublicURL: apiURL,
			AckSecret: secret, ResponderEmails: []string{responders}}
		w := bfworker.New(tc, tq, acts)
		if err := w.Start(); err != nil {
			return fmt.Errorf("start worker: %w", err)
		}
		defer w.Stop()
	} else {
		r.phase.Store("starting the worker process")
		settings := workerSettings{databaseURL: dsn, temporalAddress: temporal.Address(), namespace: temporal.Namespace(),
			taskQueue: tq, sendGridURL: sinkURL, publicURL: apiURL}
		wp, serr := startWorker(r.o.WorkerCommand, settings.env(r.o.WorkerEnv), r.out)
		if serr != nil {
			return serr
		}
		// Stopped on every path, before Temporal, the sink and the API it talks to. (The
		// deferred funcs set the named result err: nothing in this block may shadow it.)
		defer func() {
			rss, serr := wp.stop(WorkerStopTimeout)
			r.worker.Store(nil)
			f.WorkerPeakRSS = rss
			if err == nil {
				err = serr
			}
		}()
		r.worker.Store(wp)
		// Should the worker exit on its own, everything waiting on it ends, with its error.
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		wp.watch(cancel)
		defer func() {
			if err != nil && ctx.Err() != nil {
				err = context.Cause(ctx)
			}
		}()
		if err = wp.waitPolling(ctx, tc, tq, time.Minute); err != nil {
			return err
		}
	}

	keys := map[string]string{}
	for _, p := range []struct{ name, role string }{{"rita", "responder"}, {"alice", "approver"}, {"bob", "approver"}} {
		key, _, err := st.CreateAPIKey(ctx, p.name, p.role, "bench")
		if err != nil {
			return err
		}
		keys[p.name] = key
	}
	c := &apiClient{base: apiURL, http: &http.Client{Timeout: 10 * time.Minute}}

	r.phase.Store("declaring")
	title := "Benchmark: device database exposure"
	awareAt := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	var inc struct{ Incident struct{ ID string } }
	if err := c.do(ctx, http.StatusCreated, "/v1/incidents", keys["rita"], map[string]any{"title": title, "severity": "high",
		"aware_at": awareAt.Format(time.RFC3339)}, &inc); err != nil {
		return err
	}
	id := inc.Incident.ID
	// The title and awareness time come from the declaration; the tenants' locales other
	// than English read the English text, there being no translation.
	draft := notice.Draft{Fields: notice.Fields{Reference: id,
		Nature: "Unauthorised read access to a database.", DataCategories: []string{"contact details"},
		DataSubjectCategories: []string{"customers' users"}, ApproxDataSubjects: 100, ApproxRecords: 1000,
		Contact:            notice.ContactPoint{Name: "Privacy Office", Email: "privacy@provider.example"},
		LikelyConsequences: "Phishing.", MeasuresTaken: "Access revoked.", MeasuresProposed: "Rotate credentials."},
		EnglishFallback: otherLocales(), Sender: notice.Sender{Organisation: "Benchmark Cloud Ltd"}}
	var drafted struct {
		Status struct {
			ContentHash string `json:"content_hash"`
		}
	}
	if err := c.do(ctx, http.StatusOK, "/v1/incidents/"+id+"/draft", keys["rita"], draft, &drafted); err != nil {
		return err
	}
	if err := c.do(ctx, http.StatusOK, "/v1/incidents/"+id+"/assessment", keys["rita"], map[string]any{"reportable": true, "rationale": "personal data read"}, nil); err != nil {
		return err
	}
	r.phase.Store("resolving scope")
	start := time.Now()
	if err := c.do(ctx, http.StatusOK, "/v1/incidents/"+id+"/scope", keys["rita"], map[string]any{"services": AllServices}, nil); err != nil {
		return err
	}
	f.ScopeResolution = time.Since(start)
	r.phase.Store("approving")
	hash := map[string]string{"content_hash": drafted.Status.ContentHash}
	if err := c.do(ctx, http.StatusOK, "/v1/incidents/"+id+"/approval", keys["alice"], hash, nil); err != nil {
		return err
	}
	r.sink.Store(sk)
	r.want.Store(int64(f.Notices))
	if err := c.do(ctx, http.StatusOK, "/v1/incidents/"+id+"/approval", keys["bob"], hash, nil); err != nil {
		return err
	}
	approved := time.Now()
	r.phase.Store("notifying (engine)")
	stopProfile, err := startProfile(r.o.CPUProfile)
	if err != nil {
		return err
	}
	f.ToFirst, f.ToLast, err = waitAccepted(ctx, sk, uint64(f.Notices), approved, r.o.Timeout)
	stopProfile()
	if err != nil {
		return err
	}
	if f.ToLast > 0 {
		f.NoticesPerSecond = float64(f.Notices) / f.ToLast.Seconds()
	}
	f.SendGridRequests = sk.Stats().Requests
	r.phase.Store("reading histories")
	f.LargestHistory, f.Runs, err = largestHistory(ctx, tc, temporal.Namespace(), workflows.IncidentWorkflowID(id))
	if err != nil {
		return err
	}
	// The delivery events still queued go to the API before it stops.
	r.phase.Store("flushing webhooks")
	fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := sk.FlushWebhooks(fctx); err != nil {
		return fmt.Errorf("flush webhooks: %w", err)
	}
	r.sink.Store(nil)

	if f.Ingest, err = r.ingest(ctx, apiURL, hookKey, id); err != nil {
		return err
	}
	if f.Acks, err = r.acks(ctx, apiURL, secret, id); err != nil {
		return err
	}
	return nil
}

// otherLocales lists every supported locale but English.
func otherLocales() []string {
	var out []string
	for _, l := range notice.Locales() {
		if l != notice.DefaultLocale {
			out = append(out, l)
		}
	}
	return out
}

// startProfile starts a CPU profile into path (none when path is empty).
func startProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	out, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		out.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); out.Close() }, nil
}

// waitAccepted polls sk until want personalizations are accepted.
func waitAccepted(ctx context.Context, sk *sink.Sink, want uint64, since time.Time, timeout time.Duration) (first, last time.Duration, err error) {
	deadline := since.Add(timeout)
	for {
		got := sk.Stats().Accepted
		if got > 0 && first == 0 {
			first = time.Since(since)
		}
		if got >= want {
			return first, time.Since(since), nil
		}
		if time.Now().After(deadline) {
			return first, 0, fmt.Errorf("bench: only %d of %d notices accepted after %s", got, want, timeout)
		}
		select {
		case <-ctx.Done():
			return first, 0, context.Cause(ctx)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// largestHistory lists the runs of the workflows whose IDs start with prefix and returns
// the most events in one, and how many runs there were.
func largestHistory(ctx context.Context, tc client.Client, namespace, prefix string) (largest, runs int, err error) {
	var token []byte
	for {
		resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: namespace, PageSize: 1000, NextPageToken: token})
		if err != nil {
			return 0, 0, fmt.Errorf("list workflows: %w", err)
		}
		for _, ex := range resp.Executions {
			wid, rid := ex.Execution.GetWorkflowId(), ex.Execution.GetRunId()
			if !strings.HasPrefix(wid, prefix) {
				continue
			}
			runs++
			n := 0
			it := tc.GetWorkflowHistory(ctx, wid, rid, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for it.HasNext() {
				if _, err := it.Next(); err != nil {
					return 0, 0, fmt.Errorf("history of %s: %w", wid, err)
				}
				n++
			}
			largest = max(largest, n)
		}
		token = resp.NextPageToken
		if len(token) == 0 {
			return largest, runs, nil
		}
	}
}

// baseline sends the same contacts without the engine: stream them from PostgreSQL,
// post pages of BaselinePageSize through BaselineSenders concurrent senders to a fresh
// sink, one UPDATE per page into a scratch table.
func (r *run) baseline(ctx context.Context, f *Figures) error {
	r.phase.Store("preparing baseline")
	pool := r.st.Pool()
	if _, err := pool.Exec(ctx, `CREATE TABLE bench_baseline (contact_id bigint PRIMARY KEY, message_id text, sent_at timestamptz);
		INSERT INTO bench_baseline (contact_id) SELECT id FROM contacts; ANALYZE bench_baseline`); err != nil {
		return fmt.Errorf("baseline scratch table: %w", err)
	}
	sk, err := sink.New(sink.Config{APIKeys: []string{sinkKey}, MaxMessages: 10_000}, r.log.Named("mailsink"))
	if err != nil {
		return err
	}
	defer sk.Close()
	sinkURL, stopSink, err := serve(sk.Handler())
	if err != nil {
		return err
	}
	defer stopSink()
	sender, err := mail.NewSender(mail.Config{APIKey: sinkKey, BaseURL: sinkURL, FromEmail: mailFrom, FromName: "Security Notices"}, r.log.Named("mail"))
	if err != nil {
		return err
	}
	r.sink.Store(sk)
	r.want.Store(int64(f.Notices))
	r.phase.Store("notifying (baseline)")

	start := time.Now()
	pages := make(chan mail.Page, BaselineSenders)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(pages)
		rows, err := pool.Query(gctx, `SELECT id, email, name FROM contacts ORDER BY id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		page := newPage()
		var id int64
		var email, name string
		if _, err := pgx.ForEachRow(rows, []any{&id, &email, &name}, func() error {
			page.Personalizations = append(page.Personalizations, mail.Personalization{To: email, ToName: name,
				Substitutions: map[string]string{"-name-": name}, Args: mail.CustomArgs{NoticeID: strconv.FormatInt(id, 10), IncidentID: "baseline"}})
			if len(page.Personalizations) == BaselinePageSize {
				select {
				case pages <- page:
				case <-gctx.Done():
					return gctx.Err()
				}
				page = newPage()
			}
			return nil
		}); err != nil {
			return fmt.Errorf("stream contacts: %w", err)
		}
		if len(page.Personalizations) > 0 {
			select {
			case pages <- page:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	for range BaselineSenders {
		g.Go(func() error {
			ids := make([]int64, 0, BaselinePageSize)
			for p := range pages {
				res, err := sender.Send(gctx, p)
				if err != nil {
					return err
				}
				ids = ids[:0]
				for _, ps := range p.Personalizations {
					id, _ := strconv.ParseInt(ps.Args.NoticeID, 10, 64)
					ids = append(ids, id)
				}
				if _, err := pool.Exec(gctx, `UPDATE bench_baseline SET message_id = $1, sent_at = now() WHERE contact_id = ANY($2)`, res.MessageID, ids); err != nil {
					return fmt.Errorf("baseline update: %w", err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	if _, _, err := waitAccepted(ctx, sk, uint64(f.Notices), start, r.o.Timeout); err != nil {
		return err
	}
	f.Baseline = time.Since(start)
	f.BaselineRequests = sk.Stats().Requests
	r.sink.Store(nil)
	return nil
}

func newPage() mail.Page {
	return mail.Page{Subject: "Security incident notice", Text: "Dear -name-, we are writing to tell you of a security incident.",
		Personalizations: make([]mail.Personalization, 0, BaselinePageSize)}
}

// PeakRSS is the process's peak resident set size (VmHWM of /proc/self/status), in bytes.
func PeakRSS() (int64, error) { return vmHWM("/proc/self/status") }

// vmHWM reads the VmHWM line of a /proc/<pid>/status file, in bytes.
func vmHWM(path string) (int64, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmHWM: %w", err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmHWM in %s", path)
}

type apiClient struct {
	base string
	http *http.Client
}

// do POSTs body as JSON to path with key and requires status want; out receives the answer.
func (c *apiClient) do(ctx context.Context, want int, path, key string, body, out any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, bytes.TrimSpace(answer))
	}
	if out != nil {
		return json.Unmarshal(answer, out)
	}
	return nil
}

// Markdown writes f as the README's figures table.
func (f Figures) Markdown(w io.Writer) error {
	ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	mib := func(b int64) string { return fmt.Sprintf("%d MiB", b>>20) }
	rss := [][2]string{
		{"worker peak RSS (VmHWM of the one process: Temporal, worker, API, sink, baseline)", mib(f.PeakRSS)},
		{"worker peak RSS (own process)", "– (the worker ran in the bench process)"},
	}
	if f.WorkerPeakRSS > 0 {
		rss = [][2]string{
			{"worker peak RSS (own process)", mib(f.WorkerPeakRSS)},
			{"bench process peak RSS (VmHWM: Temporal, API, sink, baseline; the worker apart)", mib(f.PeakRSS)},
		}
	}
	in, ack := f.Ingest, f.Acks
	rows := [][2]string{
		{"tenants × contacts (notices)", fmt.Sprintf("%d × %d (%d)", f.Tenants, f.Contacts/max(f.Tenants, 1), f.Notices)},
		{"import tenants + contacts", ms(f.Import)},
		{"scope resolution (scope request, all services)", ms(f.ScopeResolution)},
		{"second approval → first notice accepted", ms(f.ToFirst)},
		{"second approval → last notice accepted", ms(f.ToLast)},
		{"notices/s", fmt.Sprintf("%.0f", f.NoticesPerSecond)},
		{"SendGrid requests", strconv.FormatUint(f.SendGridRequests, 10)},
		rss[0], rss[1],
		{"largest workflow history (events)", fmt.Sprintf("%d (of %d runs)", f.LargestHistory, f.Runs)},
		{fmt.Sprintf("delivery webhook ingest: events posted (signed batches of ≤ %d / %d KiB, %d posters)", IngestBatchSize, IngestBatchBytes>>10, in.Posters),
			fmt.Sprintf("%d in %d batches, %s", in.Events, in.Batches, ms(in.Elapsed))},
		{"delivery webhook ingest: events applied/s", fmt.Sprintf("%.0f (each applied once; a batch posted again: %d duplicates, 0 applied)", in.PerSecond, in.Replayed)},
		{fmt.Sprintf("ack POSTs (loopback, %d concurrent): tenants + repeats", ack.Clients), fmt.Sprintf("%d + %d in %s", ack.Tenants, ack.Repeats, ms(ack.Elapsed))},
		{"ack POSTs/s", fmt.Sprintf("%.0f", ack.PerSecond)},
		{"ack POST latency p50 / p99", fmt.Sprintf("%s / %s", ack.P50.Round(10*time.Microsecond), ack.P99.Round(10*time.Microsecond))},
		{"acknowledgements recorded (once per tenant)", strconv.Itoa(ack.Recorded)},
		{fmt.Sprintf("baseline: %d senders, pages of %d, one UPDATE per page", BaselineSenders, BaselinePageSize), ms(f.Baseline)},
		{"baseline SendGrid requests", strconv.FormatUint(f.BaselineRequests, 10)},
		{"ratio engine / baseline (to last notice)", fmt.Sprintf("%.2f×", f.Ratio)},
	}
	var b strings.Builder
	b.WriteString("| figure | value |\n|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s |\n", r[0], r[1])
	}
	_, err := io.WriteString(w, b.String())
	return err
}
