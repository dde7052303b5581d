package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/breachflow/breachflow/internal/client"
	"github.com/breachflow/breachflow/internal/store"
)

// keyAdmin manages API keys either through the API (given an API key) or directly in
// the database (for bootstrapping the first key).
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

// keyAdmin goes through the API when it has an API key and straight to the database
// otherwise. Flags beat the environment: --database-url reaches the database even with
// BREACHFLOW_API_KEY set.
func (a *app) keyAdmin(cmd *cobra.Command) (keyAdmin, error) {
	keyFlag, dbFlag := cmd.Flags().Changed("api-key"), cmd.Flags().Changed("database-url")
	if keyFlag && dbFlag {
		return nil, client.Errorf("invalid", "database-url", "give --api-key (through the API) or --database-url (straight to the database), not both")
	}
	if s := a.api.Resolve(os.LookupEnv); keyFlag || (!dbFlag && s.Key != "") {
		c, err := s.Client()
		if err != nil {
			return nil, err
		}
		return apiKeys{c: c}, nil
	}
	if err := a.load(nil, "DATABASE_URL"); err != nil {
		return nil, err
	}
	st, err := a.openStore(cmd.Context())
	if err != nil {
		return nil, &client.APIError{Code: "unavailable", Field: "database-url", Message: err.Error(), Err: err}
	}
	return dbKeys{st: st}, nil
}

func (a *app) apikeyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apikey",
		Short: "Create, list and revoke API keys (through the API with an admin key, else straight to the database)",
		Long: `Create, list and revoke API keys.

With an API key (--api-key or BREACHFLOW_API_KEY; an admin's) the commands go through the
API at --url. Without one, or with --database-url, they write straight to the database
(--database-url or DATABASE_URL): that is how the first admin key is made.`,
	}
	a.loader.Bind(cmd.PersistentFlags(), "DATABASE_URL")
	var name, role string
	create := &cobra.Command{
		Use:   "create --name PERSON --role ROLE[,ROLE…]",
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
			if a.json {
				return printValue(cmd.OutOrStdout(), map[string]any{"key": key, "api_key": k})
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
			if a.json {
				if keys == nil {
					keys = []store.APIKey{}
				}
				return printValue(cmd.OutOrStdout(), keys)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tPERSON\tROLES\tPREFIX\tCREATED\tLAST USED\tSTATE")
			for _, k := range keys {
				state := "active"
				if k.RevokedAt != nil {
					state = "revoked " + stamp(*k.RevokedAt)
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s…\t%s\t%s\t%s\n", k.ID, k.Name, strings.Join(k.Roles, ","), k.Prefix,
					stamp(k.CreatedAt), stampPtr(k.LastUsedAt), state)
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
				return client.Errorf("invalid", "id", "ID: want a positive number (see apikey list)")
			}
			ka, err := a.keyAdmin(cmd)
			if err != nil {
				return err
			}
			defer ka.close()
			if err := ka.revoke(cmd.Context(), id); err != nil {
				return err
			}
			if a.json {
				return printValue(cmd.OutOrStdout(), map[string]any{"id": id, "revoked": true})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "key %d revoked\n", id)
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

// printValue writes v as one line of JSON, unset times as null.
func printValue(w io.Writer, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return printAnswer(w, raw)
}
