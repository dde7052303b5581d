package console_test

import (
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
// the mail sink with the real SendGrid client, the API and the console on one server.
type stack struct {
	st   *store.Store
	sink *sink.Sink
	url  string
	keys map[string]string
}

func newStack(t *testing.T, nTenants int) *stack {
	t.Helper()
	ctx := context.Background()
	st := testenv.Store(t)
	testenv.Tenants(t, st, tenants.Options{Tenants: nTenants, ContactsPerTenant: 1, Seed: 3})
	require.NoError(t, st.UpsertPartner(ctx, devenv.DemoPartner))

	sk, err := sink.New(sink.Config{}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sk.Close() })
	sinkSrv := httptest.NewServer(sk.Handler())
	t.Cleanup(sinkSrv.Close)

	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)

	sender, err := mail.NewSender(mail.Config{APIKey: "SG.test", BaseURL: sinkSrv.URL, FromEmail: "notices@provider.example"}, nil)
	require.NoError(t, err)
	secret, err := st.AckSecret(ctx, "")
	require.NoError(t, err)
	acts := &activities.Activities{Store: st, Mail: sender, Logger: zap.NewNop(), Now: time.Now, PublicURL: srv.URL, AckSecret: secret}
	tsrv := testenv.Temporal(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	tq := "console-" + hex.EncodeToString(b)
	w := sdkworker.New(tsrv.GetDefaultClient(), tq, sdkworker.Options{})
	bfworker.Register(w, acts)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	a := api.New(st, tsrv.GetDefaultClient(), zap.NewNop())
	a.TaskQueue = tq
	a.Timing = workflows.Timing{AckCheckInterval: 300 * time.Millisecond}
	c := &console.Console{API: a, Store: st, Logger: zap.NewNop(), Secret: []byte("0123456789abcdef0123456789abcdef"), SinkURL: sinkSrv.URL}
	mux := http.NewServeMux()
	mux.Handle("/console/", c.Handler())
	mux.Handle("/", a.Handler())
	handler = mux

	s := &stack{st: st, sink: sk, url: srv.URL, keys: map[string]string{}}
	for name, role := range map[string]string{"rita": "responder", "alice": "approver", "bob": "approver", "dc": "partner:devicecare", "other": "partner:other"} {
		key, _, err := st.CreateAPIKey(ctx, name, role, "test")
		require.NoError(t, err)
		s.keys[name] = key
	}
	return s
}
