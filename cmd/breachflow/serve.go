package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/breachflow/breachflow/activities"
	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/config"
	"github.com/breachflow/breachflow/internal/console"
	"github.com/breachflow/breachflow/internal/evidence"
	"github.com/breachflow/breachflow/internal/logging"
	"github.com/breachflow/breachflow/internal/mail"
	"github.com/breachflow/breachflow/internal/metrics"
	"github.com/breachflow/breachflow/internal/store"
	bfworker "github.com/breachflow/breachflow/worker"
)

func (a *app) serveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Serve the HTTP API, acknowledgement pages and console",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.load(nil, "DATABASE_URL", "TEMPORAL_ADDRESS"); err != nil {
				return err
			}
			ctx := cmd.Context()
			st, tc, err := a.connect(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			defer tc.Close()
			srv := api.New(st, tc, a.log)
			srv.TaskQueue = a.cfg.TaskQueue
			if a.cfg.WebhookPublicKey != "" {
				if srv.Webhook, err = mail.NewVerifier(a.cfg.WebhookPublicKey); err != nil {
					return fmt.Errorf("SENDGRID_WEBHOOK_PUBLIC_KEY: %w", err)
				}
			}
			if srv.AuditKeys, err = a.auditKeys(); err != nil {
				return err
			}
			h, err := a.withConsole(st, srv, "")
			if err != nil {
				return err
			}
			g, gctx := errgroup.WithContext(ctx)
			g.Go(func() error { return a.serveMetrics(gctx, srv.Metrics()) })
			g.Go(func() error { return a.serveHTTP(gctx, a.cfg.Listen, h) })
			g.Go(func() error { return a.checkpoints(gctx, st, srv.AuditKeys) })
			return g.Wait()
		},
	}
}

func (a *app) workerCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "worker",
		Short: "Run the Temporal worker that executes incident workflows and activities",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.load(nil, "DATABASE_URL", "TEMPORAL_ADDRESS", "SENDGRID_API_KEY"); err != nil {
				return err
			}
			ctx := cmd.Context()
			st, tc, err := a.connect(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			defer tc.Close()
			acts, err := a.activities(ctx, st)
			if err != nil {
				return err
			}
			acts.Metrics = metrics.NewWorker()
			w, err := bfworker.NewInstrumented(tc, a.cfg.TemporalNamespace, a.cfg.TaskQueue, acts)
			if err != nil {
				return err
			}
			if err := w.Start(); err != nil {
				return fmt.Errorf("start worker: %w", err)
			}
			a.log.Info("worker started", zap.String("task_queue", a.cfg.TaskQueue))
			// Serves until ctx ends; a metrics listener that cannot start stops the worker.
			err = a.serveMetrics(ctx, acts.Metrics.Handler())
			w.Stop()
			return err
		},
	}
}

func (a *app) activities(ctx context.Context, st *store.Store) (*activities.Activities, error) {
	sender, err := mail.NewSender(mail.Config{APIKey: a.cfg.SendGridAPIKey, BaseURL: a.cfg.SendGridAPIURL,
		FromEmail: a.cfg.MailFrom, FromName: a.cfg.SenderOrg, Timeout: a.cfg.SendGridTimeout}, a.log.Named("mail"))
	if err != nil {
		return nil, err
	}
	secret, err := st.AckSecret(ctx, a.cfg.AckSecret)
	if err != nil {
		return nil, fmt.Errorf("acknowledgement secret: %w", err)
	}
	keys, err := a.auditKeys()
	if err != nil {
		return nil, err
	}
	return &activities.Activities{Store: st, Mail: sender, Logger: a.log, Now: time.Now, PublicURL: a.cfg.PublicURL,
		AckSecret: secret, ResponderEmails: a.cfg.Responders(), InDoubtGrace: a.cfg.InDoubtGrace, AuditKeys: keys}, nil
}

// auditKeys are the keys that sign audit checkpoints and evidence manifests.
func (a *app) auditKeys() (*evidence.Keys, error) {
	return evidence.LoadKeys(a.cfg.AuditSigningKey, a.cfg.AuditPublicKey)
}

// checkpoints signs the audit chain's head into a checkpoint at intervals until ctx ends.
func (a *app) checkpoints(ctx context.Context, st *store.Store, keys *evidence.Keys) error {
	return (&evidence.Checkpointer{Store: st, Keys: keys, Logger: a.log.Named("audit"), Every: a.cfg.AuditCheckpointInterval}).Run(ctx)
}

// withConsole serves the console under /console/ beside the API. Its cookies are signed
// with the configured session keys, which nothing else derives from; dev, given none,
// makes one for the life of the process.
func (a *app) withConsole(st *store.Store, srv *api.Server, sinkURL string) (http.Handler, error) {
	keys := a.cfg.ConsoleKeys()
	if len(keys) == 0 {
		if sinkURL == "" {
			return nil, errors.New("BREACHFLOW_SESSION_KEYS is required (flag --session-keys): console session keys as id:secret, for example k1:$(openssl rand -hex 32)")
		}
		secret := make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
		keys = append(keys, config.SessionKey{ID: "dev", Secret: secret})
	}
	c := &console.Console{API: srv, Store: st, Logger: a.log.Named("console"), SinkURL: sinkURL,
		Secure: strings.HasPrefix(a.cfg.PublicURL, "https://")}
	for _, k := range keys {
		c.Keys = append(c.Keys, console.SessionKey{ID: k.ID, Secret: k.Secret})
	}
	srv.PublicURL, srv.URLHosts, srv.ClientHeader, srv.Sender = a.cfg.PublicURL, a.cfg.URLHosts(), a.cfg.TrustedProxy, a.cfg.Sender()
	mux := http.NewServeMux()
	mux.Handle("/console/", c.Handler())
	mux.Handle("/", srv.Handler())
	return mux, nil
}

// serveMetrics serves /metrics on a listener of its own until ctx ends.
func (a *app) serveMetrics(ctx context.Context, h http.Handler) error {
	ln, err := net.Listen("tcp", a.cfg.MetricsListen)
	if err != nil {
		return fmt.Errorf("listen on %s (BREACHFLOW_METRICS_LISTEN): %w", a.cfg.MetricsListen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	return a.serveListener(ctx, ln, mux)
}

// connect opens the store and dials the configured Temporal; the caller closes both.
func (a *app) connect(ctx context.Context) (*store.Store, client.Client, error) {
	st, err := a.openStore(ctx)
	if err != nil {
		return nil, nil, err
	}
	tc, err := a.dialTemporal(a.cfg.TemporalAddress, a.cfg.TemporalNamespace)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, tc, nil
}

func (a *app) openStore(ctx context.Context) (*store.Store, error) {
	st, err := store.Open(ctx, a.cfg.DatabaseURL)
	if err != nil {
		return nil, postgresHint(err, a.cfg.DatabaseURL)
	}
	return st, nil
}

func (a *app) dialTemporal(addr, namespace string) (client.Client, error) {
	tc, err := client.Dial(client.Options{HostPort: addr, Namespace: namespace, Logger: logging.Temporal(a.log)})
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (TEMPORAL_ADDRESS): %w", addr, err)
	}
	return tc, nil
}

// serveHTTP serves h on addr until ctx ends, then shuts down gracefully.
func (a *app) serveHTTP(ctx context.Context, addr string, h http.Handler) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s (BREACHFLOW_LISTEN): %w", addr, err)
	}
	if a.cfg.TLSCert != "" || a.cfg.TLSKey != "" {
		cert, err := tls.LoadX509KeyPair(a.cfg.TLSCert, a.cfg.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("BREACHFLOW_TLS_CERT / BREACHFLOW_TLS_KEY: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	return a.serveListener(ctx, ln, h)
}

func (a *app) serveListener(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.log.Info("http listening", zap.String("addr", ln.Addr().String()))
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// postgresHint explains a failure to reach PostgreSQL in terms of what to do about it.
func postgresHint(err error, dsn string) error {
	if errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "connect: connection refused") ||
		strings.Contains(err.Error(), "no such host") {
		host := dsn
		if cfgHost, herr := hostOf(dsn); herr == nil {
			host = cfgHost
		}
		return fmt.Errorf(`no PostgreSQL server answers at %s.
  Start one, for example:
    pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start   (Debian/Ubuntu)
    docker compose up -d postgres                                             (with Docker)
  or point DATABASE_URL (or --database-url) at a running server.
  (%v)`, host, err)
	}
	return err
}

func hostOf(dsn string) (string, error) {
	name, err := store.DatabaseName(dsn)
	if err != nil {
		return "", err
	}
	u, err := store.WithDatabase(dsn, name)
	if err != nil {
		return "", err
	}
	if i := strings.Index(u, "@"); i >= 0 {
		u = u[i+1:]
	} else {
		u = strings.TrimPrefix(strings.TrimPrefix(u, "postgres://"), "postgresql://")
	}
	if i := strings.IndexAny(u, "/?"); i >= 0 {
		u = u[:i]
	}
	return u, nil
}
