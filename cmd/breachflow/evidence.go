package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/breachflow/breachflow/internal/client"
	"github.com/breachflow/breachflow/internal/evidence"
)

// evidenceDownload bounds one pack's download; a pack of 100,000 tenants streams for minutes.
const evidenceDownload = time.Hour

// incidentEvidenceCmd is `breachflow incident evidence`: the pack through the API.
func (a *app) incidentEvidenceCmd() *cobra.Command {
	var tenant, out string
	cmd := &cobra.Command{
		Use:   "evidence ID -o FILE",
		Short: "Download the incident's evidence pack (a zip with a signed manifest); --tenant for one tenant's",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return errors.New("-o FILE: required")
			}
			c, err := a.apiClient()
			if err != nil {
				return err
			}
			path := "/v1/incidents/" + url.PathEscape(args[0]) + "/evidence"
			if tenant != "" {
				path += "?tenant=" + url.QueryEscape(tenant)
			}
			n, err := download(cmd, c, path, out)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(cmd.OutOrStdout(), map[string]any{"file": out, "bytes": n})
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d bytes); check it with: breachflow evidence verify %s\n", out, n, out)
			return err
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "only this tenant's evidence")
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write the zip to")
	return cmd
}

// download streams path into file out, through a temporary file so that an interrupted
// download leaves nothing behind.
func download(cmd *cobra.Command, c *client.Client, path, out string) (int64, error) {
	req, err := http.NewRequestWithContext(cmd.Context(), http.MethodGet, c.BaseURL+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Key)
	hc := &http.Client{Timeout: evidenceDownload, Transport: &http.Transport{Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext, TLSHandshakeTimeout: 10 * time.Second,
		ResponseHeaderTimeout: 5 * time.Minute}}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("call %s: %w", c.BaseURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var env struct {
			Error *client.APIError `json:"error"`
		}
		if json.Unmarshal(raw, &env) == nil && env.Error != nil {
			env.Error.Status = resp.StatusCode
			return 0, env.Error
		}
		return 0, &client.APIError{Status: resp.StatusCode, Code: "http", Message: strings.TrimSpace(string(raw))}
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name()) // gone once renamed
	n, err := io.Copy(tmp, resp.Body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("download evidence: %w", err)
	}
	return n, os.Rename(tmp.Name(), out)
}

// evidenceCmd is `breachflow evidence`: offline checks of packs.
func (a *app) evidenceCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "evidence", Short: "Check evidence packs offline"}
	var publicKey string
	verify := &cobra.Command{
		Use:   "verify FILE",
		Short: "Verify an evidence pack offline: manifest hashes and signature, audit excerpt and checkpoints (exit status 1 if it does not verify)",
		Long: `Verify an evidence pack without the server: the manifest's Ed25519 signature, the SHA-256 of every
file (and that no file was added or removed), the drafts' content hashes, every audit row's hash
against the canonical bytes it covers and its link to the row before, and each checkpoint's
signature and digest of the excerpt. The public key comes from --public-key or
BREACHFLOW_AUDIT_PUBLIC_KEY (comma-separated for keys used before a rotation).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if publicKey == "" {
				publicKey = os.Getenv("BREACHFLOW_AUDIT_PUBLIC_KEY")
			}
			if publicKey == "" {
				return errors.New("--public-key (or BREACHFLOW_AUDIT_PUBLIC_KEY): the base64 public key of the server's audit signing key is required")
			}
			keys, err := evidence.LoadKeys("", publicKey)
			if err != nil {
				return fmt.Errorf("--public-key: %w", err)
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			info, err := f.Stat()
			if err != nil {
				return err
			}
			rep, err := evidence.VerifyPack(f, info.Size(), keys)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if a.json {
				if err := printJSON(cmd.OutOrStdout(), rep); err != nil {
					return err
				}
			} else {
				printPackReport(cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], rep)
			}
			if !rep.OK {
				return fmt.Errorf("%s does not verify: %d problems", args[0], len(rep.Problems))
			}
			return nil
		},
	}
	verify.Flags().StringVar(&publicKey, "public-key", "", "base64 Ed25519 public key(s) to trust, comma-separated (env BREACHFLOW_AUDIT_PUBLIC_KEY)")
	verify.Flags().BoolVar(&a.json, "json", false, "machine-readable output")
	cmd.AddCommand(verify)
	return cmd
}

func printPackReport(w, errw io.Writer, file string, r evidence.PackReport) {
	who := "every tenant"
	if r.TenantID != "" {
		who = "tenant " + r.TenantID
	}
	verdict := "OK"
	if !r.OK {
		verdict = "DOES NOT VERIFY"
	}
	fmt.Fprintf(w, "%s: %s\n  incident %s, %s; exported %s by %s; signed by key %s\n", file, verdict, r.IncidentID, who,
		r.CreatedAt.Format(time.RFC3339), r.CreatedBy, r.KeyID)
	fmt.Fprintf(w, "  %d files, %d tenants, %d audit rows (%d shown by hash only), covered through row %d by %d checkpoints\n",
		r.Files, r.Tenants, r.AuditRows, r.Redacted, r.CoveredThrough, r.Checkpoints)
	for _, p := range r.Problems {
		fmt.Fprintf(w, "PROBLEM: %s\n", p)
	}
	for _, warning := range r.Warnings {
		fmt.Fprintf(errw, "WARNING: %s\n", warning)
	}
}
