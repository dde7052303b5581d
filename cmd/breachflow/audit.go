package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/client"
	"github.com/breachflow/breachflow/internal/evidence"
	"github.com/breachflow/breachflow/internal/store"
)

func (a *app) auditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Verify the hash-chained audit trail against its signed checkpoints; make its signing key"}
	cmd.PersistentFlags().BoolVar(&a.json, "json", false, "machine-readable output")
	// --url and --api-key ask the API instead of reading the database.
	var remote client.Settings
	viaAPI := func() (*client.Client, bool, error) {
		if remote.URL == "" && remote.Key == "" {
			return nil, false, nil
		}
		c, err := remote.Resolve(os.LookupEnv).Client()
		return c, true, err
	}

	var published string
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Walk the audit chain, check it against every signed checkpoint and name the first bad row (exit status 1 if any)",
		Long: `Walk the audit chain in DATABASE_URL, recomputing every hash, and check every signed checkpoint
against it (signatures with BREACHFLOW_AUDIT_SIGNING_KEY's public key and BREACHFLOW_AUDIT_PUBLIC_KEY):
a row edited with every later hash recomputed passes the chain but not the checkpoints.
--checkpoints adds published copies (breachflow audit checkpoints), which a rewrite that also deleted
the stored checkpoints cannot remove. With a signing key, an intact head is checkpointed.
With --url or --api-key (env BREACHFLOW_URL, BREACHFLOW_API_KEY) the API verifies instead
(GET /v1/audit/verify, with an admin key).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var v evidence.Verification
			c, ok, err := viaAPI()
			if err != nil {
				return err
			}
			if ok {
				if published != "" {
					return errors.New("--checkpoints is checked against the database: leave out --url and --api-key")
				}
				if err := c.Do(cmd.Context(), http.MethodGet, "/v1/audit/verify", nil, nil, &v); err != nil {
					return err
				}
			} else {
				var pub []store.Checkpoint
				if published != "" {
					var err error
					if pub, err = readCheckpoints(published); err != nil {
						return err
					}
				}
				st, keys, err := a.auditStore(cmd.Context())
				if err != nil {
					return err
				}
				defer st.Close()
				if v, err = evidence.VerifyAudit(cmd.Context(), st, keys, pub, time.Now()); err != nil {
					return err
				}
			}
			if a.json {
				if err := printJSON(cmd.OutOrStdout(), v); err != nil {
					return err
				}
			} else {
				printVerification(cmd.OutOrStdout(), cmd.ErrOrStderr(), v)
			}
			if !v.OK {
				return fmt.Errorf("audit chain broken at row %d", v.BadSeq)
			}
			return nil
		},
	}
	remote.Register(verify.Flags())
	verify.Flags().StringVar(&published, "checkpoints", "", "published checkpoints to check too (JSON, as `breachflow audit checkpoints` or GET /v1/audit/checkpoints writes them)")

	checkpoints := &cobra.Command{
		Use:   "checkpoints",
		Short: "Print every signed checkpoint as JSON, to publish: keep the copy where the database's administrators cannot change it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var all []store.Checkpoint
			page := func(ctx context.Context, after int64) ([]store.Checkpoint, error) {
				c, ok, err := viaAPI()
				if err != nil {
					return nil, err
				}
				if ok {
					var out api.CheckpointList
					err := c.Do(ctx, http.MethodGet, "/v1/audit/checkpoints?limit=10000&after="+strconv.FormatInt(after, 10), nil, nil, &out)
					return out.Checkpoints, err
				}
				st, _, err := a.auditStore(ctx)
				if err != nil {
					return nil, err
				}
				defer st.Close()
				return st.Checkpoints(ctx, after, 10000)
			}
			for after := int64(0); ; {
				cps, err := page(cmd.Context(), after)
				if err != nil {
					return err
				}
				all = append(all, cps...)
				if len(cps) < 10000 {
					break
				}
				after = cps[len(cps)-1].ID
			}
			if all == nil {
				all = []store.Checkpoint{}
			}
			return printJSON(cmd.OutOrStdout(), all)
		},
	}
	remote.Register(checkpoints.Flags())

	keygen := &cobra.Command{
		Use:   "keygen",
		Short: "Make an Ed25519 audit signing key and print it and its public key as environment lines",
		Long: `Print a new key pair as two environment lines. Give BREACHFLOW_AUDIT_SIGNING_KEY to serve and
worker only, from a secret store, never the database; give BREACHFLOW_AUDIT_PUBLIC_KEY to whoever
verifies audit trails and evidence packs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			signing, public, err := evidence.GenerateKey()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "BREACHFLOW_AUDIT_SIGNING_KEY=%s\nBREACHFLOW_AUDIT_PUBLIC_KEY=%s\n", signing, public)
			return err
		},
	}
	cmd.AddCommand(verify, checkpoints, keygen)
	return cmd
}

// auditStore opens DATABASE_URL and loads the audit keys of the configuration.
func (a *app) auditStore(ctx context.Context) (*store.Store, *evidence.Keys, error) {
	if err := a.load(nil, "DATABASE_URL"); err != nil {
		return nil, nil, err
	}
	keys, err := evidence.LoadKeys(a.cfg.AuditSigningKey, a.cfg.AuditPublicKey)
	if err != nil {
		return nil, nil, err
	}
	st, err := a.openStore(ctx)
	if err != nil {
		return nil, nil, err
	}
	return st, keys, nil
}

// readCheckpoints reads published checkpoints: a JSON array, or a page of the API.
func readCheckpoints(path string) ([]store.Checkpoint, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	raw = bytes.TrimSpace(raw)
	var cps []store.Checkpoint
	if len(raw) > 0 && raw[0] == '{' {
		var page api.CheckpointList
		err = json.Unmarshal(raw, &page)
		cps = page.Checkpoints
	} else {
		err = json.Unmarshal(raw, &cps)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: want the JSON of breachflow audit checkpoints: %w", path, err)
	}
	return cps, nil
}

// printVerification prints a verification for people; warnings go to errw.
func printVerification(w, errw io.Writer, v evidence.Verification) {
	if v.OK {
		signed := "signatures NOT checked"
		if v.Signed {
			signed = "signatures checked"
		}
		fmt.Fprintf(w, "audit chain OK: %d rows, head row %d %s; %d checkpoints match (%s)\n", v.Rows, v.HeadSeq, v.Head, v.Checkpoints, signed)
	} else {
		fmt.Fprintf(w, "AUDIT CHAIN BROKEN at row %d", v.BadSeq)
		if v.BadCheckpoint != 0 {
			fmt.Fprintf(w, " (checkpoint #%d)", v.BadCheckpoint)
		}
		fmt.Fprintf(w, ": %s\n", v.Problem)
		if v.SuspectFrom != 0 {
			fmt.Fprintf(w, "  rows %d to %d were rewritten; the rows before them match a signed checkpoint\n", v.SuspectFrom, v.BadSeq)
		}
	}
	if c := v.LastCheckpoint; c != nil {
		fmt.Fprintf(w, "  newest matching checkpoint: #%d at row %d (%s, %s, key %s)\n", c.ID, c.Seq, c.Reason, c.TakenAt.Format(time.RFC3339), c.KeyID)
	}
	if c := v.Checkpoint; c != nil {
		fmt.Fprintf(w, "  head checkpointed: #%d at row %d\n", c.ID, c.Seq)
	}
	if v.CheckpointError != "" {
		fmt.Fprintf(errw, "WARNING: no checkpoint taken: %s\n", v.CheckpointError)
	}
	for _, warning := range v.Warnings {
		fmt.Fprintf(errw, "WARNING: %s\n", warning)
	}
}
