package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

// apiClient is the client of the client commands, from BREACHFLOW_URL and BREACHFLOW_API_KEY.
func apiClient() (*client.Client, error) {
	key := os.Getenv("BREACHFLOW_API_KEY")
	if key == "" {
		return nil, errors.New("BREACHFLOW_API_KEY is not set (create one with `breachflow apikey create`)")
	}
	return client.New(clientURL(), key), nil
}

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
		return nil, err
	}
	out, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (a *app) incidentCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "incident", Short: "Declare and drive incidents through the API"}
	var asJSON bool
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "machine-readable output")

	// call runs one request and prints the answer as JSON or through human.
	call := func(cmd *cobra.Command, method, path string, headers map[string]string, body any, human func(io.Writer, json.RawMessage) error) error {
		c, err := apiClient()
		if err != nil {
			return err
		}
		var out json.RawMessage
		if err := c.Do(cmd.Context(), method, path, headers, body, &out); err != nil {
			return err
		}
		if asJSON || human == nil {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), string(bytes.TrimSpace(out)))
			return err
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
				return errors.New("-f FILE: required (see examples/incident.yaml)")
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
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", i.ID, i.Stage, i.Severity, i.AwareAt.UTC().Format("2006-01-02 15:04"), i.Title)
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

	var interval time.Duration
	watch := &cobra.Command{
		Use:   "watch ID",
		Short: "Follow an incident's progress live until it is closed",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient()
			if err != nil {
				return err
			}
			var lastAlert int64
			for {
				v, raw, err := getIncident(cmd.Context(), c, args[0])
				if err != nil {
					return err
				}
				if asJSON {
					// One compact answer a line, as the API gave it.
					var line bytes.Buffer
					if err := json.Compact(&line, raw); err != nil {
						return err
					}
					if _, err := fmt.Fprintln(cmd.OutOrStdout(), line.String()); err != nil {
						return err
					}
				} else {
					lastAlert = printProgress(cmd.OutOrStdout(), v, time.Now(), lastAlert)
				}
				if v.Incident.Stage == store.StageClosed {
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(interval):
				}
			}
		},
	}
	watch.Flags().DurationVar(&interval, "interval", 2*time.Second, "refresh interval")

	var reportable bool
	var rationale string
	assess := &cobra.Command{
		Use:   "assess ID --reportable=true|false --rationale TEXT",
		Short: "Record whether the incident is reportable, and why",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("reportable") {
				return errors.New("--reportable: required (true or false)")
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
				return errors.New("--versions and --diff: give one of them")
			case (versions || diff != "") && setting:
				return errors.New("--versions and --diff read the scope: they take no criteria")
			case cmd.Flags().Changed("limit") && diff == "":
				return errors.New("--limit: only with --diff")
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
				c, err := apiClient()
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
				return errors.New("-f FILE: required")
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
			c, err := apiClient()
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
					return errors.New("the incident has no notice draft to approve yet")
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

	followup := &cobra.Command{
		Use:   "followup ID",
		Short: "Open an update phase: the current notice, marked as an update, owed again to every tenant in scope",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd, http.MethodPost, "/v1/incidents/"+url.PathEscape(args[0])+"/followup", nil, map[string]any{}, status)
		},
	}

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

	cmd.AddCommand(declare, list, show, watch, assess, scope, draft, approve, override, followup, retry, tenants, closeCmd)
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
		return 0, 0, fmt.Errorf("--diff %q: want FROM..TO, two scope version numbers such as 1..2", s)
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
		return v, nil, fmt.Errorf("decode incident: %w", err)
	}
	return v, raw, nil
}

func (a *app) partnerCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "partner", Short: "Partner team: review joint notifications"}
	var asJSON bool
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "machine-readable output")
	pending := &cobra.Command{
		Use:   "pending",
		Short: "List your team's pending reviews",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := apiClient()
			if err != nil {
				return err
			}
			var v struct {
				Reviews []api.ReviewView `json:"reviews"`
			}
			if err := c.Do(cmd.Context(), http.MethodGet, "/v1/partner/reviews", nil, nil, &v); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), v)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "REVIEW\tINCIDENT\tTENANTS\tDUE\tHASH\tTITLE")
			for _, r := range v.Reviews {
				fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\n", r.ID, r.IncidentID, r.CoveredTenants, r.DueAt.UTC().Format("2006-01-02 15:04"), r.ContentHash[:12], r.Title)
			}
			return tw.Flush()
		},
	}
	decide := func(cmd *cobra.Command, id, decision, hash, comment string) error {
		c, err := apiClient()
		if err != nil {
			return err
		}
		if _, err := strconv.ParseInt(id, 10, 64); err != nil {
			return errors.New("ID: the review number shown by `partner pending`")
		}
		if hash == "" {
			h, err := reviewHash(cmd.Context(), c, id)
			if err != nil {
				return err
			}
			hash = h
		}
		var out json.RawMessage
		if err := c.Do(cmd.Context(), http.MethodPost, "/v1/partner/reviews/"+id+"/decision", nil,
			map[string]string{"decision": decision, "content_hash": hash, "comment": comment}, &out); err != nil {
			return err
		}
		if asJSON {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), string(out))
			return err
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "review %s: %s recorded\n", id, decision)
		return err
	}
	var hash, comment string
	confirm := &cobra.Command{
		Use:   "confirm ID [--hash HASH]",
		Short: "Confirm the joint notification (the draft's hash defaults to the one under review)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return decide(cmd, args[0], "confirm", hash, comment)
		},
	}
	confirm.Flags().StringVar(&hash, "hash", "", "content hash being confirmed")
	confirm.Flags().StringVar(&comment, "comment", "", "optional remark")
	changes := &cobra.Command{
		Use:   "request-changes ID --comment TEXT",
		Short: "Send the draft back to the responders with what should change",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(comment) == "" {
				return errors.New("--comment: say what should change")
			}
			return decide(cmd, args[0], "request_changes", hash, comment)
		},
	}
	changes.Flags().StringVar(&hash, "hash", "", "content hash reviewed")
	changes.Flags().StringVar(&comment, "comment", "", "what should change")
	cmd.AddCommand(pending, confirm, changes)
	return cmd
}

func reviewHash(ctx context.Context, c *client.Client, id string) (string, error) {
	var v struct {
		Reviews []api.ReviewView `json:"reviews"`
	}
	if err := c.Do(ctx, http.MethodGet, "/v1/partner/reviews", nil, nil, &v); err != nil {
		return "", err
	}
	for _, r := range v.Reviews {
		if strconv.FormatInt(r.ID, 10) == id {
			return r.ContentHash, nil
		}
	}
	return "", fmt.Errorf("review %s is not pending for your team", id)
}
