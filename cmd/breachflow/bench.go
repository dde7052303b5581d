package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/breachflow/breachflow/internal/bench"
	"github.com/breachflow/breachflow/workflows"
)

func (a *app) benchCmd() *cobra.Command {
	var o bench.Options
	var inProcess bool
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Run one incident over generated tenants on the real stack, and a plain baseline; print the figures",
		Long: `bench creates a database bench_<random> on DATABASE_URL's server, imports generated
tenants, runs one incident through in-process Temporal, a worker, the API and the SendGrid
client against the built-in mail sink (webhooks on), from declaration to the last notice
accepted. On that incident it then posts signed SendGrid Event Webhook batches (one fresh
event per notice, at most 300,000, 4 posters) and one acknowledgement per tenant (at most
20,000, 50 concurrent clients, with repeats) to the API, checking that each is recorded
exactly once. Last comes a baseline without the engine over the same contacts (stream
them, pages of 1,000 through 4 senders to a fresh sink, one UPDATE per page). It drops the
database at the end, shows progress on stderr every 2 s and prints the figures as a
Markdown table.
The worker runs as a process of its own (this binary's worker command), so that its peak
RSS is its own; --in-process-worker runs it in the bench process, as go test does.`,
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
			if !inProcess {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("find this binary for the worker process: %w", err)
				}
				o.WorkerCommand = []string{exe, "worker"}
				o.WorkerEnv = []string{"BREACHFLOW_LOG_LEVEL=" + a.cfg.LogLevel, "BREACHFLOW_LOG_FORMAT=" + a.cfg.LogFormat}
			}
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
	cmd.Flags().StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the notifying phase to this file (go tool pprof reads it); it covers the bench process, so add --in-process-worker to profile the worker")
	cmd.Flags().BoolVar(&o.KeepDatabase, "keep-database", false, "leave the run's database in place")
	defaults := workflows.Timing{}.WithDefaults()
	cmd.Flags().IntVar(&o.Window, "window", 0, fmt.Sprintf("concurrent page sends per pass (0: the default, %d)", defaults.Window))
	cmd.Flags().IntVar(&o.PlanLanes, "plan-lanes", 0, fmt.Sprintf("planning lanes per pass (0: the default, %d)", defaults.PlanLanes))
	cmd.Flags().BoolVar(&inProcess, "in-process-worker", false, "run the worker in the bench process instead of a process of its own")
	return cmd
}
