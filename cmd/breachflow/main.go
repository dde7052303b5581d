// Command breachflow runs breachflow's server roles (dev, serve, worker, migrate,
// mailsink) and its client commands (tenants, apikey, …).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/breachflow/breachflow/internal/config"
	"github.com/breachflow/breachflow/internal/logging"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "breachflow:", err)
		os.Exit(1)
	}
}

// app carries what every command shares: the configuration loader and, once loaded,
// the configuration and logger.
type app struct {
	loader *config.Loader
	cfg    config.Config
	log    *zap.Logger
}

func newRoot() *cobra.Command {
	a := &app{}
	root := &cobra.Command{
		Use:           "breachflow",
		Short:         "Notify affected customer tenants of a reportable security incident, durably",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	a.loader = config.NewLoader(root.PersistentFlags())
	root.AddCommand(a.devCmd(), a.serveCmd(), a.workerCmd(), a.migrateCmd(), a.tenantsCmd(), a.apikeyCmd(), a.mailsinkCmd(), a.probeCmd(), a.incidentCmd(), a.partnerCmd())
	root.AddCommand(a.temporalCmd())
	return root
}

// load reads and checks the configuration; overrides replace defaults for one role and
// required names the settings the role cannot run without.
func (a *app) load(overrides map[string]string, required ...string) error {
	cfg, err := a.loader.Load(os.LookupEnv, overrides)
	if err == nil {
		err = cfg.Require(required...)
	}
	if err != nil {
		return fmt.Errorf("configuration:\n%w", indent(err))
	}
	a.cfg = cfg
	a.log, err = logging.New(cfg.LogFormat, cfg.LogLevel)
	return err
}

func indent(err error) error {
	var msgs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			msgs = append(msgs, fmt.Errorf("  %w", e))
		}
		return errors.Join(msgs...)
	}
	return fmt.Errorf("  %w", err)
}
