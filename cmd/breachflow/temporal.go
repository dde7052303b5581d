package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/breachflow/breachflow/internal/devenv"
	"github.com/breachflow/breachflow/internal/logging"
)

func (a *app) temporalCmd() *cobra.Command {
	var opts devenv.SQLiteOptions
	cmd := &cobra.Command{
		Use:   "temporal",
		Short: "Run a single-process Temporal server persisted to a SQLite file, for development and fault tests",
		Long: `Run a single-process Temporal server (frontend, history, matching and worker services)
persisted to a SQLite file until SIGINT or SIGTERM.

The file is created with Temporal's schema on first start and reused later, so workflows survive a
restart, a kill included. The namespace is registered if missing. When the frontend answers, one
line goes to stdout:

  temporal listening on <host:port> namespace <namespace> db <file>

Point workers and the API at it with TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE. It has no
authentication: keep it on loopback.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.load(nil); err != nil {
				return err
			}
			// The server's logs take this command's --log-level, not BREACHFLOW_LOG_LEVEL.
			base, err := logging.New(a.cfg.LogFormat, "debug")
			if err != nil {
				return err
			}
			defer func() { _ = base.Sync() }()
			opts.Logger = base.Named("temporal")
			srv, err := devenv.StartSQLiteTemporal(opts)
			if err != nil {
				return err
			}
			defer srv.Stop()
			fmt.Fprintf(cmd.OutOrStdout(), "temporal listening on %s namespace %s db %s\n", srv.Address(), srv.Namespace(), srv.DBFile())
			<-cmd.Context().Done()
			a.log.Info("shutting down")
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.DBFile, "db-file", "", "SQLite file to persist to (created if missing)")
	cmd.Flags().StringVar(&opts.Listen, "listen", "127.0.0.1:7233", "frontend listen address host:port (port 0 picks a free one)")
	cmd.Flags().StringVar(&opts.Namespace, "namespace", devenv.DefaultSQLiteNamespace, "namespace to register if missing")
	cmd.Flags().DurationVar(&opts.Retention, "retention", devenv.DefaultSQLiteRetention, "retention of closed workflows in a namespace this start registers")
	cmd.Flags().StringVar(&opts.LogLevel, "log-level", devenv.DefaultSQLiteLogLevel, "the server's own logs: debug, info, warn, error or none")
	_ = cmd.MarkFlagRequired("db-file")
	return cmd
}
