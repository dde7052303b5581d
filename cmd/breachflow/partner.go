package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/client"
)

func (a *app) partnerCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "partner", Short: "Partner team: review joint notifications through the API (--url, --api-key)"}
	pending := &cobra.Command{
		Use:   "pending",
		Short: "List your team's pending reviews",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.apiClient()
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := c.Do(cmd.Context(), http.MethodGet, "/v1/partner/reviews", nil, nil, &raw); err != nil {
				return err
			}
			if a.json {
				return printAnswer(cmd.OutOrStdout(), raw)
			}
			var v struct {
				Reviews []api.ReviewView `json:"reviews"`
			}
			if err := json.Unmarshal(raw, &v); err != nil {
				return fmt.Errorf("decode reviews: %w", err)
			}
			now := time.Now()
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "REVIEW\tINCIDENT\tTENANTS\tDUE\tHASH\tTITLE")
			for _, r := range v.Reviews {
				fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\n", r.ID, r.IncidentID, r.CoveredTenants, when(r.DueAt, now), shortHash(r.ContentHash), r.Title)
			}
			return tw.Flush()
		},
	}
	decide := func(cmd *cobra.Command, id, decision, hash, comment string) error {
		if n, err := strconv.ParseInt(id, 10, 64); err != nil || n < 1 {
			return client.Errorf("invalid", "id", "ID: the review number shown by `partner pending`")
		}
		c, err := a.apiClient()
		if err != nil {
			return err
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
		if a.json {
			return printAnswer(cmd.OutOrStdout(), out)
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
				return client.Errorf("invalid", "comment", "--comment: say what should change")
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
	return "", client.Errorf("not_found", "id", "review %s is not pending for your team (see `partner pending`)", id)
}

// shortHash is the start of a content hash, enough to tell drafts apart.
func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return orDash(h)
}
