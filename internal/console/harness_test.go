package console_test

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkworker "go.temporal.io/sdk/worker"
	"go.uber.org/zap"

	"github.com/breachflow/breachflow/activities"
	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/console"
	"github.com/breachflow/breachflow/internal/devenv"
	"github.com/breachflow/breachflow/internal/mail"
	"github.com/breachflow/breachflow/internal/mail/sink"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/tenants"
	"github.com/breachflow/breachflow/internal/testenv"
	bfworker "github.com/breachflow/breachflow/worker"
	"github.com/breachflow/breachflow/workflows"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// stack is the whole system in one test: PostgreSQL, in-process Temporal and a worker,
// the mail sink with the real SendGrid client and its signed delivery events, the API
// and the console on one server.
type stack struct {
	api  *api.Server
	st   *store.Store
	sink *sink.Sink
	url  string
	keys map[string]string

	ackSecret []byte
	mailTo    string // the mail sink's URL
	tq        string
	worker    sdkworker.Worker
}

// stackOptions shapes a stack; the zero value but Tenants is the usual one.
type stackOptions struct {
	Tenants int
	// Sink configures the mail sink; its webhook is always pointed at the API.
	Sink sink.Config
	// MailKey is the SendGrid API key the worker sends with (default SG.test).
	MailKey string
}

func newStack(t *testing.T, nTenants int) *stack {
	t.Helper()
	return newStackWith(t, stackOptions{Tenants: nTenants})
}

func newStackWith(t *testing.T, opts stackOptions) *stack {
	t.Helper()
	ctx := context.Background()
	st := testenv.Store(t)
	testenv.Tenants(t, st, tenants.Options{Tenants: opts.Tenants, ContactsPerTenant: 1, Seed: 3})
	require.NoError(t, st.UpsertPartner(ctx, devenv.DemoPartner))

	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)

	cfg := opts.Sink
	cfg.WebhookURL = srv.URL + "/v1/webhooks/sendgrid"
	sk, err := sink.New(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sk.Close() })
	sinkSrv := httptest.NewServer(sk.Handler())
	t.Cleanup(sinkSrv.Close)

	secret, err := st.AckSecret(ctx, "")
	require.NoError(t, err)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	s := &stack{st: st, sink: sk, url: srv.URL, keys: map[string]string{}, ackSecret: secret, mailTo: sinkSrv.URL,
		tq: "console-" + hex.EncodeToString(b)}
	s.startWorker(t, cmp.Or(opts.MailKey, "SG.test"))

	tsrv := testenv.Temporal(t)
	a := api.New(st, tsrv.GetDefaultClient(), zap.NewNop())
	a.TaskQueue = s.tq
	a.Timing = workflows.Timing{AckCheckInterval: 300 * time.Millisecond}
	a.PublicURL = s.url
	s.api = a
	a.Webhook, err = mail.NewVerifier(sk.PublicKey())
	require.NoError(t, err)
	c := &console.Console{API: a, Store: st, Logger: zap.NewNop(), SinkURL: sinkSrv.URL,
		Keys: []console.SessionKey{{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")}}}
	mux := http.NewServeMux()
	mux.Handle("/console/", c.Handler())
	mux.Handle("/", a.Handler())
	handler = mux

	for name, role := range map[string]string{"rita": "responder", "alice": "approver", "bob": "approver", "dc": "partner:devicecare", "other": "partner:other"} {
		key, _, err := st.CreateAPIKey(ctx, name, role, "test")
		require.NoError(t, err)
		s.keys[name] = key
	}
	return s
}

// startWorker starts a worker on the stack's task queue that sends with the SendGrid
// API key mailKey, as a restart with a new key would.
func (s *stack) startWorker(t *testing.T, mailKey string) {
	t.Helper()
	sender, err := mail.NewSender(mail.Config{APIKey: mailKey, BaseURL: s.mailTo, FromEmail: "notices@provider.example", Timeout: 10 * time.Second}, nil)
	require.NoError(t, err)
	w := sdkworker.New(testenv.Temporal(t).GetDefaultClient(), s.tq, bfworker.Options())
	bfworker.Register(w, &activities.Activities{Store: s.st, Mail: sender, Logger: zap.NewNop(), Now: time.Now, PublicURL: s.url,
		AckSecret: s.ackSecret})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop) // Stop is idempotent
	s.worker = w
}

// stopWorker stops the worker: the workflows stay where they are and their status
// queries go unanswered, as when the worker or Temporal is down.
func (s *stack) stopWorker() { s.worker.Stop() }
