package main

import (
	"fmt"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/breachflow/breachflow/schema"
)

func (a *app) migrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database migrations (safe to run twice and concurrently)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.load(nil, "DATABASE_URL"); err != nil {
				return err
			}
			from, to, err := schema.MigrateURL(cmd.Context(), a.cfg.DatabaseURL)
			if err != nil {
				return postgresHint(err, a.cfg.DatabaseURL)
			}
			a.log.Info("migrated", zap.Int32("from", from), zap.Int32("to", to))
			fmt.Fprintf(cmd.OutOrStdout(), "schema at version %d (was %d)\n", to, from)
			return nil
		},
	}
}
