package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/client"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/workflows"
)

// readDoc reads a YAML or JSON file ("-" for standard input) as JSON.
func readDoc(path string, stdin io.Reader) ([]byte, error) {
	var raw []byte
	var err error
	if path == "-" {
		raw, err = io.ReadAll(io.LimitReader(stdin, 1<<20))
	} else {
		raw, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, &client.APIError{Code: "invalid", Field: "file", Message: err.Error(), Err: err}
	}
	out, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, &client.APIError{Code: "invalid", Field: "file", Message: fmt.Sprintf("%s: %v", path, err), Err: err}
	}
	return out, nil
}

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printAnswer writes an API answer as one line of JSON, unset times as null.
func printAnswer(w io.Writer, raw json.RawMessage) error {
	out, err := client.NullUnsetTimes(raw)
	if err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	_, err = fmt.Fprintln(w, string(out))
	return err
}

func (a *app) incidentCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "incident", Short: "Declare and drive incidents through the API (--url, --api-key)"}

	// call runs one request and prints the answer as JSON or through human.
	call := func(cmd *cobra.Command, method, path string, headers map[string]string, body any, human func(io.Writer, json.RawMessage) error) error {
		c, err := a.apiClient()
		if err != nil {
			return err
		}
		var out json.RawMessage
		if err := c.Do(cmd.Context(), method, path, headers, body, &out); err != nil {
			return err
		}
		if a.json || human == nil {
			return printAnswer(cmd.OutOrStdout(), out)
		}
		return human(cmd.OutOrStdout(), out)
	}
	status := func(w io.Writer, raw json.RawMessage) error {
		var v struct {
			Status workflows.Status `json:"status"`
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		printStatus(w, v.Status)
		return nil
	}

	var file, key string
	declare := &cobra.Command{
		Use:   "declare -f FILE",
		Short: "Declare an incident from a YAML or JSON file and print its id",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return client.Errorf("invalid", "file", "-f FILE: required (see examples/incident.yaml)")
			}
			body, err := readDoc(file, cmd.InOrStdin())
			if err != nil {
				return err
			}
			headers := map[string]string{}
			if key != "" {
				headers["Idempotency-Key"] = key
			}
			return call(cmd, http.MethodPost, "/v1/incidents", headers, json.RawMessage(body), func(w io.Writer, raw json.RawMessage) error {
				var v struct {
					Incident store.Incident `json:"incident"`
				}
				if err := json.Unmarshal(raw, &v); err != nil {
					return err
				}
				_, err := fmt.Fprintln(w, v.Incident.ID)
				return err
			})
		},
	}
	declare.Flags().StringVarP(&file, "file", "f", "", "declaration file (YAML or JSON; - for stdin)")
	declare.Flags().StringVar(&key, "idempotency-key", "", "the same key and body declare one incident however often sent")

	var stage string
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List incidents, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			if stage != "" {
				q.Set("stage", stage)
			}
			q.Set("limit", strconv.Itoa(limit))
			return call(cmd, http.MethodGet, "/v1/incidents?"+q.Encode(), nil, nil, func(w io.Writer, raw json.RawMessage) error {
				var v struct {
					Incidents []store.Incident `json:"incidents"`
				}
				if err := json.Unmarshal(raw, &v); err != nil {
					return err
				}
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tSTAGE\tSEVERITY\tAWARE\tTITLE")
				for _, i := range v.Incidents {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", i.ID, i.Stage, i.Severity, stamp(i.AwareAt), i.Title)
				}
				return tw.Flush()
			})
		},
	}
	list.Flags().StringVar(&stage, "stage", "", "only incidents in this stage")
	list.Flags().IntVar(&limit, "limit", 50, "how many")

	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show an incident: stage, scope, approvals, partner, tenants notified and owed per phase, acknowledgements, alerts",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd, http.MethodGet, "/v1/incidents/"+url.PathEscape(args[0]), nil, nil, func(w io.Writer, raw json.RawMessage) error {
				var v api.IncidentView
				if err := json.Unmarshal(raw, &v); err != nil {
					return err
				}
				printIncident(w, v, time.Now())
				return nil
			})
		},
	}

	var reportable bool
	var rationale string
	assess := &cobra.Command{
		Use:   "assess ID --reportable=true|false --rationale TEXT",
		Short: "Record whether the incident is reportable, and why",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("reportable") {
				return client.Errorf("invalid", "reportable", "--reportable: required (true or false)")
			}
			return call(cmd, http.MethodPost, "/v1/incidents/"+url.PathEscape(args[0])+"/assessment", nil,
				map[string]any{"reportable": reportable, "rationale": rationale}, status)
		},
	}
	assess.Flags().BoolVar(&reportable, "reportable", false, "whether the breach must be notified")
	assess.Flags().StringVar(&rationale, "rationale", "", "why (kept in the audit log)")

	var crit store.ScopeCriteria
	var scopeFile, diff string
	var versions bool
	var diffLimit int
	scope := &cobra.Command{
		Use:   "scope ID [--services …] [--countries …] … | -f FILE | --versions | --diff FROM..TO [--limit N]",
		Short: "Set or revise the affected-tenant criteria (none given: the declared criteria); list or diff scope versions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := url.PathEscape(args[0])
			setting := scopeFile != "" || !crit.Empty() || len(crit.Exclude) > 0
			switch {
			case versions && diff != "":
				return client.Errorf("invalid", "diff", "--versions and --diff: give one of them")
			case (versions || diff != "") && setting:
				return client.Errorf("invalid", "diff", "--versions and --diff read the scope: they take no criteria")
			case cmd.Flags().Changed("limit") && diff == "":
				return client.Errorf("invalid", "limit", "--limit: only with --diff")
			case versions:
				return call(cmd, http.MethodGet, "/v1/incidents/"+id+"/scope/versions", nil, nil, func(w io.Writer, raw json.RawMessage) error {
					var v struct {
						Versions []store.ScopeVersion `json:"versions"`
					}
					if err := json.Unmarshal(raw, &v); err != nil {
						return err
					}
					return printScopeVersions(w, v.Versions)
				})
			case diff != "":
				from, to, err := parseDiff(diff)
				if err != nil {
					return err
				}
				q := url.Values{"from": {strconv.Itoa(from)}, "to": {strconv.Itoa(to)}, "limit": {strconv.Itoa(diffLimit)}}
				return call(cmd, http.MethodGet, "/v1/incidents/"+id+"/scope/diff?"+q.Encode(), nil, nil, func(w io.Writer, raw json.RawMessage) error {
					var d store.ScopeDiff
					if err := json.Unmarshal(raw, &d); err != nil {
						return err
					}
					printScopeDiff(w, d)
					return nil
				})
			}
			var body any = crit
			switch {
			case scopeFile != "":
				raw, err := readDoc(scopeFile, cmd.InOrStdin())
				if err != nil {
					return err
				}
				body = json.RawMessage(raw)
			case !setting:
				c, err := a.apiClient()
				if err != nil {
					return err
				}
				v, _, err := getIncident(cmd.Context(), c, args[0])
				if err != nil {
					return err
				}
				body = v.Incident.Scope
			}
			return call(cmd, http.MethodPost, "/v1/incidents/"+id+"/scope", nil, body, status)
		},
	}
	scope.Flags().BoolVar(&versions, "versions", false, "list every scope version: tenants, added, removed, by whom, when")
	scope.Flags().StringVar(&diff, "diff", "", "tenants added and removed between two versions, FROM..TO (e.g. 1..2)")
	scope.Flags().IntVar(&diffLimit, "limit", 100, "with --diff: at most this many tenant ids of each kind")
	scope.Flags().StringSliceVar(&crit.Services, "services", nil, "tenant services")
	scope.Flags().StringSliceVar(&crit.Connectors, "connectors", nil, "third parties tenants share data with (apple-dep, google, jamf-pro, …)")
	scope.Flags().StringSliceVar(&crit.Countries, "countries", nil, "ISO country codes")
	scope.Flags().StringSliceVar(&crit.DataRegions, "data-regions", nil, "data regions")
	scope.Flags().StringSliceVar(&crit.Regimes, "regimes", nil, "regulatory regimes")
	scope.Flags().StringSliceVar(&crit.TenantIDs, "tenants", nil, "tenant ids to add")
	scope.Flags().StringSliceVar(&crit.Exclude, "exclude", nil, "tenant ids to leave out")
	scope.Flags().StringVarP(&scopeFile, "file", "f", "", "criteria file (YAML or JSON)")

	var draftFile string
	draft := &cobra.Command{
		Use:   "draft ID -f FILE",
		Short: "Propose a new notice draft (earlier approvals lapse)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if draftFile == "" {
				return client.Errorf("invalid", "file", "-f FILE: required")
			}
			raw, err := readDoc(draftFile, cmd.InOrStdin())
			if err != nil {
				return err
			}
			return call(cmd, http.MethodPost, "/v1/incidents/"+url.PathEscape(args[0])+"/draft", nil, json.RawMessage(raw), status)
		},
	}
	draft.Flags().StringVarP(&draftFile, "file", "f", "", "notice draft (YAML or JSON)")

	var hash string
	approve := &cobra.Command{
		Use:   "approve ID [--hash HASH]",
		Short: "Approve the notice draft (default: the current draft's hash, which is printed)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.apiClient()
			if err != nil {
				return err
			}
			id := url.PathEscape(args[0])
			h := hash
			if h == "" {
				v, _, err := getIncident(cmd.Context(), c, args[0])
				if err != nil {
					return err
				}
				switch {
				case v.Status != nil && v.Status.ContentHash != "":
					h = v.Status.ContentHash
				case v.Status == nil && v.Incident.NoticeHash != "":
					// The stored current draft; the workflow checks it again.
					h = v.Incident.NoticeHash
				default:
					return client.Errorf("no_draft", "hash", "the incident has no notice draft to approve yet")
				}
			}
			return call(cmd, http.MethodPost, "/v1/incidents/"+id+"/approval", nil, map[string]string{"content_hash": h}, status)
		},
	}
	approve.Flags().StringVar(&hash, "hash", "", "content hash being approved")

	var justification string
	override := &cobra.Command{
		Use:   "override ID --justification TEXT",
		Short: "Release the partner gate without the partner's confirmation",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd, http.MethodPost, "/v1/incidents/"+url.PathEscape(args[0])+"/override", nil, map[string]string{"justification": justification}, status)
		},
	}
	override.Flags().StringVar(&justification, "justification", "", "why (kept in the audit log)")

	var followupFile string
	var final bool
	followup := &cobra.Command{
		Use:   "followup ID -f FILE [--final]",
		Short: "Propose the next notice phase (an update, or with --final the final notice); two approvals send it to every tenant in scope",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if followupFile == "" {
				return client.Errorf("invalid", "file", "-f FILE: required: the next phase's notice draft, with whats_new (see examples/update.yaml)")
			}
			raw, err := readDoc(followupFile, cmd.InOrStdin())
			if err != nil {
				return err
			}
			kind := "update"
			if final {
				kind = "final"
			}
			return call(cmd, http.MethodPost, "/v1/incidents/"+url.PathEscape(args[0])+"/followup", nil,
				map[string]any{"kind": kind, "notice": json.RawMessage(raw)}, status)
		},
	}
	followup.Flags().StringVarP(&followupFile, "file", "f", "", "the next phase's notice draft (YAML or JSON)")
	followup.Flags().BoolVar(&final, "final", false, "the final notice: every element stated, nothing left to follow")

	var reason string
	closeCmd := &cobra.Command{
		Use:   "close ID [--reason TEXT]",
		Short: "Close the incident (a reason is needed unless every tenant acknowledged)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd, http.MethodPost, "/v1/incidents/"+url.PathEscape(args[0])+"/close", nil, map[string]string{"reason": reason}, status)
		},
	}
	closeCmd.Flags().StringVar(&reason, "reason", "", "why")

	retry := &cobra.Command{
		Use:   "retry ID",
		Short: "Send now what the ledger says is still owed and released (what was sent is not sent again)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd, http.MethodPost, "/v1/incidents/"+url.PathEscape(args[0])+"/retry", nil, map[string]any{}, func(w io.Writer, raw json.RawMessage) error {
				fmt.Fprint(w, "retry requested; ")
				return status(w, raw)
			})
		},
	}

	var tenantsOpen bool
	var tenantsPhase, tenantsLimit int
	tenants := &cobra.Command{
		Use:   "tenants ID [--open] [--phase N] [--limit N]",
		Short: "The ledger, one line per tenant: state, deadline, notices, acknowledgement, last error",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{}
			if cmd.Flags().Changed("phase") {
				q.Set("phase", strconv.Itoa(tenantsPhase))
			}
			if tenantsOpen {
				q.Set("open", "true")
			}
			q.Set("limit", strconv.Itoa(tenantsLimit))
			return call(cmd, http.MethodGet, "/v1/incidents/"+url.PathEscape(args[0])+"/tenants?"+q.Encode(), nil, nil, func(w io.Writer, raw json.RawMessage) error {
				var v struct {
					Tenants []store.TenantStatus `json:"tenants"`
				}
				if err := json.Unmarshal(raw, &v); err != nil {
					return err
				}
				return printTenants(w, v.Tenants, tenantsLimit)
			})
		},
	}
	tenants.Flags().BoolVar(&tenantsOpen, "open", false, "only tenants in scope that have not acknowledged, earliest deadline first")
	tenants.Flags().IntVar(&tenantsPhase, "phase", 1, "notice phase (1 is the initial notice)")
	tenants.Flags().IntVar(&tenantsLimit, "limit", 100, "how many")

	cmd.AddCommand(declare, list, show, a.watchCmd(), assess, scope, draft, approve, override, followup, retry, tenants,
		a.incidentEvidenceCmd(), closeCmd, a.previewCmd(), a.impactCmd())
	return cmd
}

// parseDiff reads FROM..TO, two scope version numbers.
func parseDiff(s string) (from, to int, err error) {
	a, b, ok := strings.Cut(s, "..")
	if ok {
		from, err = strconv.Atoi(a)
	}
	if ok && err == nil {
		to, err = strconv.Atoi(b)
	}
	if !ok || err != nil || from < 1 || to < 1 {
		return 0, 0, client.Errorf("invalid", "diff", "--diff %q: want FROM..TO, two scope version numbers such as 1..2", s)
	}
	return from, to, nil
}

// getIncident reads one incident's view, decoded and as the API answered it.
func getIncident(ctx context.Context, c *client.Client, id string) (api.IncidentView, json.RawMessage, error) {
	var raw json.RawMessage
	var v api.IncidentView
	if err := c.Do(ctx, http.MethodGet, "/v1/incidents/"+url.PathEscape(id), nil, nil, &raw); err != nil {
		return v, nil, err
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, nil, &client.APIError{Code: "internal", Message: "decode incident: " + err.Error(), Err: err}
	}
	return v, raw, nil
}
