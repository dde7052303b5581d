package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/devenv"
	"github.com/breachflow/breachflow/internal/evidence"
	"github.com/breachflow/breachflow/internal/mail"
	"github.com/breachflow/breachflow/internal/mail/sink"
	"github.com/breachflow/breachflow/internal/metrics"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/schema"
	bfworker "github.com/breachflow/breachflow/worker"
)

// devAdmin is the person of the admin key dev prints.
const devAdmin = "dev-admin"

func (a *app) devCmd() *cobra.Command {
	var demoTenants int
	var temporalListen, dataDir string
	var reset bool
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything in one process: Temporal, worker, API, mail sink, on a local dev database",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			err := a.load(map[string]string{
				"DATABASE_URL":          "postgres://postgres@127.0.0.1:5432/breachflow_dev?sslmode=disable",
				"BREACHFLOW_LOG_FORMAT": "console",
				"SENDGRID_API_KEY":      "SG.dev-sink-key",
			}, "DATABASE_URL")
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			if dataDir == "" {
				if dataDir, err = defaultDataDir(); err != nil {
					return err
				}
			}
			if reset {
				if err := resetDev(ctx, dataDir, a.cfg.DatabaseURL); err != nil {
					return err
				}
				a.log.Info("dev state reset", zap.String("data_dir", dataDir))
			}
			if err := os.MkdirAll(dataDir, 0o700); err != nil {
				return fmt.Errorf("dev data directory: %w", err)
			}
			if a.cfg.SessionKeys == "" {
				// Console sessions outlive a restart, like the incidents do.
				secret, err := devSecret(filepath.Join(dataDir, "session.key"))
				if err != nil {
					return err
				}
				a.cfg.SessionKeys = "dev:" + secret
			}
			if a.cfg.AuditSigningKey == "" {
				// The audit chain's checkpoints are signed with a key of the data directory.
				if a.cfg.AuditSigningKey, err = devAuditKey(filepath.Join(dataDir, "audit.key")); err != nil {
					return err
				}
			}
			created, err := store.EnsureDatabase(ctx, a.cfg.DatabaseURL)
			if err != nil {
				return postgresHint(err, a.cfg.DatabaseURL)
			}
			if created {
				a.log.Info("created dev database")
			}
			if _, _, err := schema.MigrateURL(ctx, a.cfg.DatabaseURL); err != nil {
				return err
			}
			st, err := a.openStore(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			seeded, err := devenv.Seed(ctx, st, demoTenants, 2)
			if err != nil {
				return err
			}
			if seeded {
				a.log.Info("seeded demo data", zap.Int("tenants", demoTenants), zap.String("partner", devenv.DemoPartner.Name))
			}

			apiLn, err := net.Listen("tcp", a.cfg.Listen)
			if err != nil {
				return fmt.Errorf("listen on %s (BREACHFLOW_LISTEN): %w", a.cfg.Listen, err)
			}
			sinkLn, err := net.Listen("tcp", a.cfg.MailsinkListen)
			if err != nil {
				apiLn.Close()
				return fmt.Errorf("listen on %s (BREACHFLOW_MAILSINK_LISTEN): %w", a.cfg.MailsinkListen, err)
			}
			apiURL := "http://" + apiLn.Addr().String()
			sinkURL := "http://" + sinkLn.Addr().String()
			a.cfg.SendGridAPIURL = sinkURL
			if a.cfg.PublicURL == "http://127.0.0.1:8080" {
				a.cfg.PublicURL = apiURL
			}
			mailSink, err := sink.New(sink.Config{APIKeys: []string{a.cfg.SendGridAPIKey}, WebhookURL: apiURL + "/v1/webhooks/sendgrid"}, a.log.Named("mailsink"))
			if err != nil {
				return err
			}
			defer mailSink.Close()

			// Temporal's state lives in the data directory beside PostgreSQL's rows: a
			// restart resumes every incident where it was.
			temporal, err := devenv.StartSQLiteTemporal(devenv.SQLiteOptions{
				DBFile:    filepath.Join(dataDir, "temporal.db"),
				Listen:    temporalListen,
				Namespace: a.cfg.TemporalNamespace,
				Logger:    a.log.Named("temporal"),
			})
			if err != nil {
				return fmt.Errorf("embedded Temporal (--temporal-listen %s): %w", temporalListen, err)
			}
			defer temporal.Stop()
			tc, err := a.dialTemporal(temporal.Address(), temporal.Namespace())
			if err != nil {
				return err
			}
			defer tc.Close()

			acts, err := a.activities(ctx, st)
			if err != nil {
				return err
			}
			acts.Metrics = metrics.NewWorker()
			w, err := bfworker.NewInstrumented(tc, temporal.Namespace(), a.cfg.TaskQueue, acts)
			if err != nil {
				return err
			}
			if err := w.Start(); err != nil {
				return fmt.Errorf("start worker: %w", err)
			}
			defer w.Stop()

			// One dev admin key at a time: the previous start's is revoked.
			if _, err := st.RevokePerson(ctx, devAdmin, "admin", "dev"); err != nil {
				return err
			}
			key, _, err := st.CreateAPIKey(ctx, devAdmin, "admin", "dev")
			if err != nil {
				return err
			}
			auditPub := ""
			if priv, err := evidence.ParseSigningKey(a.cfg.AuditSigningKey); err == nil {
				auditPub = base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey))
			}
			fmt.Fprintf(out, `
breachflow dev is running
  API          %s   (health: %s/healthz, readiness: %s/readyz)
  console      %s/console/
  metrics      http://%s/metrics
  mail sink    %s/sink/   (SendGrid API at %s/v3/mail/send)
  Temporal     %s   namespace %s
  database     %s
  state        %s   (Temporal's temporal.db, the console session and audit signing keys; --reset starts clean)
  admin key    %s
  audit key    %s   (public; verifies checkpoints and evidence packs)

  export BREACHFLOW_URL=%s BREACHFLOW_API_KEY=%s BREACHFLOW_AUDIT_PUBLIC_KEY=%s

Press Ctrl-C to stop.
`, apiURL, apiURL, apiURL, apiURL, a.cfg.MetricsListen, sinkURL, sinkURL, temporal.Address(), temporal.Namespace(), redactURL(a.cfg.DatabaseURL), dataDir, key, auditPub, apiURL, key, auditPub)

			g, gctx := errgroup.WithContext(ctx)
			srv := api.New(st, tc, a.log)
			srv.TaskQueue = a.cfg.TaskQueue
			if srv.Webhook, err = mail.NewVerifier(mailSink.PublicKey()); err != nil {
				return err
			}
			if srv.AuditKeys, err = a.auditKeys(); err != nil {
				return err
			}
			h, err := a.withConsole(st, srv, sinkURL)
			if err != nil {
				return err
			}
			// One listener for both: the API's domain gauges and the worker's counters.
			both := promhttp.HandlerFor(prometheus.Gatherers{srv.MetricsGatherer(), acts.Metrics.Gatherer()}, promhttp.HandlerOpts{})
			g.Go(func() error { return a.serveMetrics(gctx, both) })
			g.Go(func() error { return a.serveListener(gctx, apiLn, h) })
			g.Go(func() error { return a.checkpoints(gctx, st, srv.AuditKeys) })
			g.Go(func() error { return a.serveListener(gctx, sinkLn, mailSink.Handler()) })
			err = g.Wait()
			a.log.Info("shutting down")
			if err != nil && err != http.ErrServerClosed {
				return err
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&demoTenants, "demo-tenants", 200, "tenants to seed into an empty database")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "where dev keeps its state between runs (default $XDG_DATA_HOME/breachflow/dev or ~/.local/share/breachflow/dev)")
	cmd.Flags().BoolVar(&reset, "reset", false, "start clean: drop the dev database and Temporal's state first")
	cmd.Flags().StringVar(&temporalListen, "temporal-listen", devenv.DefaultSQLiteListen, "listen address host:port of the embedded Temporal frontend (port 0 picks a free one)")
	return cmd
}

func redactURL(dsn string) string {
	if h, err := hostOf(dsn); err == nil {
		if name, err := store.DatabaseName(dsn); err == nil {
			return h + "/" + name
		}
	}
	return "(set)"
}

// defaultDataDir is where dev keeps its state when --data-dir is not given.
func defaultDataDir() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "breachflow", "dev"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no home directory for the dev data directory: give --data-dir: %w", err)
	}
	return filepath.Join(home, ".local", "share", "breachflow", "dev"), nil
}

// resetDev forgets dev's state: Temporal's file and the dev database.
func resetDev(ctx context.Context, dataDir, dsn string) error {
	for _, f := range []string{"temporal.db", "temporal.db-wal", "temporal.db-shm"} {
		if err := os.Remove(filepath.Join(dataDir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("reset: %w", err)
		}
	}
	if err := store.DropDatabase(ctx, dsn); err != nil {
		return postgresHint(err, dsn)
	}
	return nil
}

// devKept reads the secret dev keeps in path, making it with create (and keeping it) when
// the file holds none of at least minLen characters.
func devKept(path string, minLen int, create func() (string, error)) (string, error) {
	if raw, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(raw))) >= minLen {
		return strings.TrimSpace(string(raw)), nil
	}
	v, err := create()
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("dev key %s: %w", filepath.Base(path), err)
	}
	return v, nil
}

// devSecret reads the hex session secret kept in path, making it on first use.
func devSecret(path string) (string, error) {
	return devKept(path, 64, func() (string, error) {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		return hex.EncodeToString(b), nil
	})
}

// devAuditKey reads the audit signing key kept in path, making it on first use.
func devAuditKey(path string) (string, error) {
	return devKept(path, 1, func() (string, error) {
		signing, _, err := evidence.GenerateKey()
		return signing, err
	})
}
