package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/breachflow/breachflow/internal/tenants"
)

func (a *app) tenantsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "tenants", Short: "Generate or import tenant and contact data"}
	cmd.AddCommand(a.tenantsGenerateCmd(), a.tenantsImportCmd())
	return cmd
}

func (a *app) tenantsGenerateCmd() *cobra.Command {
	var opts tenants.Options
	var out string
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Write synthetic tenants.csv and contacts.csv",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("--out: required")
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			tp, cp := filepath.Join(out, "tenants.csv"), filepath.Join(out, "contacts.csv")
			tf, err := os.Create(tp)
			if err != nil {
				return err
			}
			defer tf.Close()
			cf, err := os.Create(cp)
			if err != nil {
				return err
			}
			defer cf.Close()
			if err := tenants.Generate(opts, tf, cf); err != nil {
				return err
			}
			if err := tf.Close(); err != nil {
				return err
			}
			if err := cf.Close(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d tenants to %s and %d contacts to %s\n", opts.Tenants, tp, opts.Tenants*opts.ContactsPerTenant, cp)
			return nil
		},
	}
	cmd.Flags().IntVar(&opts.Tenants, "tenants", 1000, "number of tenants")
	cmd.Flags().IntVar(&opts.ContactsPerTenant, "contacts-per-tenant", 3, "contacts per tenant (the first is the primary)")
	cmd.Flags().Float64Var(&opts.AlternateShare, "alternates", 0.3, "share of tenants whose last contact is an alternate")
	cmd.Flags().Uint64Var(&opts.Seed, "seed", 1, "random seed; the same seed writes the same files")
	cmd.Flags().StringVar(&out, "out", "", "directory to write into")
	return cmd
}

func (a *app) tenantsImportCmd() *cobra.Command {
	var tp, cp string
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Load tenants.csv and contacts.csv in one transaction (all or nothing; re-import updates)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tp == "" || cp == "" {
				return errors.New("--tenants and --contacts: both required")
			}
			if err := a.load(nil, "DATABASE_URL"); err != nil {
				return err
			}
			st, err := a.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			res, err := tenants.ImportFiles(cmd.Context(), st, tp, cp)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "tenants: %d new, %d updated, %d unchanged; contacts: %d new, %d updated, %d unchanged; in %s\n",
				res.TenantsInserted, res.TenantsUpdated, res.TenantsUnchanged, res.ContactsInserted, res.ContactsUpdated, res.ContactsUnchanged, res.Elapsed.Round(1e6))
			return nil
		},
	}
	cmd.Flags().StringVar(&tp, "tenants", "", "tenants CSV file")
	cmd.Flags().StringVar(&cp, "contacts", "", "contacts CSV file")
	return cmd
}
