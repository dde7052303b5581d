package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/client"
	"github.com/breachflow/breachflow/internal/store"
)

// previewCmd shows the notice as approvers must see it before they approve: every
// locale, what is untranslated, who cannot be reached, or one tenant's exact notice.
func (a *app) previewCmd() *cobra.Command {
	var tenant, locale, hash, part string
	cmd := &cobra.Command{
		Use:   "preview ID [--tenant T] [--locale L] [--part subject|text|html]",
		Short: "Dry run: the notice as a tenant would receive it (--tenant), or in every locale, before approval",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.apiClient()
			if err != nil {
				return err
			}
			switch part {
			case "", "subject", "text", "html":
			default:
				return client.Errorf("invalid", "part", "--part: want subject, text or html")
			}
			q := url.Values{}
			if tenant != "" {
				q.Set("tenant", tenant)
			}
			if hash != "" {
				q.Set("hash", hash)
			}
			var raw json.RawMessage
			if err := c.Do(cmd.Context(), http.MethodGet, "/v1/incidents/"+url.PathEscape(args[0])+"/notice?"+q.Encode(), nil, nil, &raw); err != nil {
				return err
			}
			if a.json {
				return printAnswer(cmd.OutOrStdout(), raw)
			}
			var p api.NoticePreview
			if err := json.Unmarshal(raw, &p); err != nil {
				return err
			}
			return printPreview(cmd.OutOrStdout(), p, locale, part)
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant id: its notice exactly, in its language, with its facts")
	cmd.Flags().StringVar(&locale, "locale", "", "without --tenant: only this locale (de, en, es, fr, it)")
	cmd.Flags().StringVar(&hash, "hash", "", "a proposed draft's content hash (default: the current draft)")
	cmd.Flags().StringVar(&part, "part", "", "print only this part: subject, text or html")
	return cmd
}

func printPreview(w io.Writer, p api.NoticePreview, locale, part string) error {
	if part != "" {
		// Only the part: no header lines, so that it can be piped on.
		return printNotices(w, io.Discard, p, locale, part)
	}
	return printNotices(w, w, p, locale, part)
}

// printNotices writes the preview's header lines to header and its notices to w.
func printNotices(w, header io.Writer, p api.NoticePreview, locale, part string) error {
	fmt.Fprintf(header, "incident %s  phase %d (%s)  content hash %s\n", p.IncidentID, p.Phase.Number, p.Phase.Kind, p.ContentHash)
	fmt.Fprintf(header, "sender: %s", p.Sender.Organisation)
	if p.Sender.ReplyTo != "" {
		fmt.Fprintf(header, "  reply-to %s", p.Sender.ReplyTo)
	}
	fmt.Fprintln(header)
	if len(p.Untranslated) > 0 {
		fmt.Fprintf(header, "NOT TRANSLATED: %s (approval is refused until they have their own text or are listed in english_fallback)\n",
			strings.Join(p.Untranslated, ", "))
	}
	if len(p.EnglishFallback) > 0 {
		fmt.Fprintf(header, "English text by choice in: %s\n", strings.Join(p.EnglishFallback, ", "))
	}
	if r := p.Reach; r != nil {
		fmt.Fprintf(header, "scope version %d: %d tenants, %d with no deliverable contact", r.ScopeVersion, r.Tenants, r.NoDeliverable)
		if len(r.Sample) > 0 {
			fmt.Fprintf(header, " (e.g. %s)", strings.Join(r.Sample, ", "))
		}
		fmt.Fprintln(header)
	}
	show := func(n api.NoticeLocale) {
		if n.Error != "" {
			fmt.Fprintf(w, "== %s: does not render: %s\n", n.Locale, n.Error)
			return
		}
		switch part {
		case "subject":
			fmt.Fprintln(w, n.Subject)
		case "text":
			fmt.Fprint(w, n.Text)
		case "html":
			fmt.Fprintln(w, n.HTML)
		default:
			fmt.Fprintf(w, "== %s ==\nSubject: %s\n\n%s\n", n.Locale, n.Subject, n.Text)
		}
	}
	if t := p.Tenant; t != nil {
		scope := "in scope"
		if !t.InScope {
			scope = "NOT in the current scope"
		}
		fmt.Fprintf(header, "tenant %s (%s), %s, locale %s\n", t.TenantID, t.Name, scope, t.Notice.Locale)
		show(t.Notice)
		return nil
	}
	shown := false
	for _, n := range p.Locales {
		if locale == "" || n.Locale == locale {
			show(n)
			shown = true
		}
	}
	if !shown {
		return client.Errorf("invalid", "locale", "--locale %s: not a supported locale", locale)
	}
	return nil
}

// impactBatch is how many tenants one impact request carries.
const impactBatch = 10000

// impactCmd imports a per-tenant impact CSV: tenant_id,approx_data_subjects,approx_records.
func (a *app) impactCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "impact ID -f FILE.csv",
		Short: "Import per-tenant impact (CSV: tenant_id,approx_data_subjects,approx_records); each tenant's notice shows its own numbers",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return client.Errorf("invalid", "file", "-f FILE: required")
			}
			rows, err := readImpact(file)
			if err != nil {
				return err
			}
			c, err := a.apiClient()
			if err != nil {
				return err
			}
			total := 0
			for start := 0; start < len(rows); start += impactBatch {
				batch := rows[start:min(start+impactBatch, len(rows))]
				var out struct {
					Tenants int `json:"tenants"`
				}
				if err := c.Do(cmd.Context(), http.MethodPost, "/v1/incidents/"+url.PathEscape(args[0])+"/impact", nil,
					map[string]any{"tenants": batch}, &out); err != nil {
					if total > 0 {
						return fmt.Errorf("after %d tenants were recorded: %w", total, err)
					}
					return err
				}
				total += out.Tenants
			}
			if a.json {
				return printJSON(cmd.OutOrStdout(), map[string]int{"tenants": total})
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "impact recorded for %d tenants\n", total)
			return err
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "CSV with a header: tenant_id,approx_data_subjects,approx_records")
	return cmd
}

// readImpact reads and checks an impact CSV; a bad line is named and nothing is sent.
func readImpact(path string) ([]store.Impact, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, client.Errorf("invalid", "file", "%v", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = 3
	head, err := r.Read()
	if err != nil {
		return nil, client.Errorf("invalid", "file", "%s: %v", path, err)
	}
	if strings.Join(head, ",") != "tenant_id,approx_data_subjects,approx_records" {
		return nil, client.Errorf("invalid", "file", "%s: want the header tenant_id,approx_data_subjects,approx_records", path)
	}
	var rows []store.Impact
	for line := 2; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, client.Errorf("invalid", "file", "%s: %v", path, err)
		}
		subjects, serr := strconv.ParseInt(strings.TrimSpace(rec[1]), 10, 64)
		records, rerr := strconv.ParseInt(strings.TrimSpace(rec[2]), 10, 64)
		if serr != nil || rerr != nil || subjects < 0 || records < 0 {
			return nil, client.Errorf("invalid", "file", "%s line %d: the numbers must be whole numbers ≥ 0", path, line)
		}
		rows = append(rows, store.Impact{TenantID: strings.TrimSpace(rec[0]), DataSubjects: subjects, Records: records})
	}
	if len(rows) == 0 {
		return nil, client.Errorf("invalid", "file", "%s: no tenants", path)
	}
	return rows, nil
}
