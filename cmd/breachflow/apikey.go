package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/breachflow/breachflow/internal/client"
	"github.com/breachflow/breachflow/internal/store"
)

// keyAdmin manages API keys either through the API (when BREACHFLOW_API_KEY is set) or
// directly in the database (for bootstrapping the first key).
type keyAdmin interface {
	create(ctx context.Context, name, role string) (string, store.APIKey, error)
	list(ctx context.Context) ([]store.APIKey, error)
	revoke(ctx context.Context, id int64) error
	close()
}

type dbKeys struct{ st *store.Store }

func (d dbKeys) create(ctx context.Context, name, role string) (string, store.APIKey, error) {
	return d.st.CreateAPIKey(ctx, name, role, "cli")
}
func (d dbKeys) list(ctx context.Context) ([]store.APIKey, error) { return d.st.ListAPIKeys(ctx) }
func (d dbKeys) revoke(ctx context.Context, id int64) error       { return d.st.RevokeAPIKey(ctx, id, "cli") }
func (d dbKeys) close()                                           { d.st.Close() }

type apiKeys struct{ c *client.Client }

func (h apiKeys) create(ctx context.Context, name, role string) (string, store.APIKey, error) {
	var out struct {
		Key    string       `json:"key"`
		APIKey store.APIKey `json:"api_key"`
	}
	err := h.c.Do(ctx, http.MethodPost, "/v1/apikeys", nil, map[string]string{"name": name, "role": role}, &out)
	return out.Key, out.APIKey, err
}
func (h apiKeys) list(ctx context.Context) ([]store.APIKey, error) {
	var out struct {
		Keys []store.APIKey `json:"keys"`
	}
	err := h.c.Do(ctx, http.MethodGet, "/v1/apikeys", nil, nil, &out)
	return out.Keys, err
}
func (h apiKeys) revoke(ctx context.Context, id int64) error {
	return h.c.Do(ctx, http.MethodDelete, "/v1/apikeys/"+strconv.FormatInt(id, 10), nil, nil, nil)
}
func (h apiKeys) close() {}

func (a *app) keyAdmin(cmd *cobra.Command) (keyAdmin, error) {
	if key := os.Getenv("BREACHFLOW_API_KEY"); key != "" {
		return apiKeys{c: client.New(clientURL(), key)}, nil
	}
	if err := a.load(nil, "DATABASE_URL"); err != nil {
		return nil, err
	}
	st, err := a.openStore(cmd.Context())
	if err != nil {
		return nil, err
	}
	return dbKeys{st: st}, nil
}

func clientURL() string {
	if u := os.Getenv("BREACHFLOW_URL"); u != "" {
		return u
	}
	return "http://127.0.0.1:8080"
}

func (a *app) apikeyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apikey",
		Short: "Create, list and revoke API keys (through the API with BREACHFLOW_API_KEY, else in DATABASE_URL)",
	}
	var name, role string
	var asJSON bool
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a key and print it once; only its hash is stored",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ka, err := a.keyAdmin(cmd)
			if err != nil {
				return err
			}
			defer ka.close()
			key, k, err := ka.create(cmd.Context(), name, role)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{"key": key, "api_key": k})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n", key)
			fmt.Fprintf(cmd.ErrOrStderr(), "key %d (%s, roles %s) created; it is shown only this once\n", k.ID, k.Name, strings.Join(k.Roles, ","))
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "the person the key belongs to (approvals count people: keys with the same name are one person)")
	create.Flags().StringVar(&role, "role", "", "admin, responder, approver (comma-separated to combine, e.g. responder,approver) or partner:<team>")
	list := &cobra.Command{
		Use:   "list",
		Short: "List keys (never the keys themselves)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ka, err := a.keyAdmin(cmd)
			if err != nil {
				return err
			}
			defer ka.close()
			keys, err := ka.list(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(keys)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tPERSON\tROLES\tPREFIX\tCREATED\tSTATE")
			for _, k := range keys {
				state := "active"
				if k.RevokedAt != nil {
					state = "revoked " + k.RevokedAt.UTC().Format("2006-01-02 15:04")
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s…\t%s\t%s\n", k.ID, k.Name, strings.Join(k.Roles, ","), k.Prefix, k.CreatedAt.UTC().Format("2006-01-02 15:04"), state)
			}
			return tw.Flush()
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || id < 1 {
				return errors.New("ID: want a positive number (see apikey list)")
			}
			ka, err := a.keyAdmin(cmd)
			if err != nil {
				return err
			}
			defer ka.close()
			if err := ka.revoke(cmd.Context(), id); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "key %d revoked\n", id)
			return nil
		},
	}
	for _, c := range []*cobra.Command{create, list} {
		c.Flags().BoolVar(&asJSON, "json", false, "machine-readable output")
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
