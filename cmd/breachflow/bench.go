package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/breachflow/breachflow/internal/bench"
)

func (a *app) benchCmd() *cobra.Command {
	var o bench.Options
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Run one incident over generated tenants on the real stack in this process, and a plain baseline; print the figures",
		Long: `bench creates a database bench_<random> on DATABASE_URL's server, imports generated
tenants, runs one incident through in-process Temporal, a worker, the API and the SendGrid
client against the built-in mail sink (webhooks on), from declaration to the last notice
accepted, then a baseline without the engine over the same contacts (stream them, pages of
1,000 through 4 senders to a fresh sink, one UPDATE per page). It drops the database at the
end, shows progress on stderr every 2 s and prints the figures as a Markdown table.
Everything runs in one process: the peak RSS is that process's.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.load(map[string]string{
				"DATABASE_URL":          "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
				"BREACHFLOW_LOG_LEVEL":  "error",
				"BREACHFLOW_LOG_FORMAT": "console",
			}, "DATABASE_URL"); err != nil {
				return err
			}
			o.DatabaseURL, o.Logger, o.Progress = a.cfg.DatabaseURL, a.log, cmd.ErrOrStderr()
			f, err := bench.Run(cmd.Context(), o)
			if err != nil {
				return postgresHint(err, a.cfg.DatabaseURL)
			}
			return f.Markdown(cmd.OutOrStdout())
		},
	}
	cmd.Flags().IntVar(&o.Tenants, "tenants", 100_000, "tenants to generate")
	cmd.Flags().IntVar(&o.ContactsPerTenant, "contacts-per-tenant", 3, "contacts per tenant")
	cmd.Flags().DurationVar(&o.Timeout, "timeout", 30*time.Minute, "how long to wait for the last notice")
	cmd.Flags().StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the notifying phase to this file (go tool pprof reads it)")
	cmd.Flags().BoolVar(&o.KeepDatabase, "keep-database", false, "leave the run's database in place")
	return cmd
}
