package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/workflows"
)

// Progress is read from the ledger (v.Ledger), counted in tenants: the workflow's status
// only adds what it alone holds (approvers, partner gate), so show and watch work when
// the workflow does not answer.

// alertsShown bounds the alerts show prints and watch prints per refresh.
const alertsShown = 5

// passesShown bounds the notification passes show prints.
const passesShown = 5

func printIncident(w io.Writer, v api.IncidentView, now time.Time) {
	i := v.Incident
	st := v.Status
	fmt.Fprintf(w, "%s  %s\n", i.ID, i.Title)
	stage := i.Stage
	if st != nil && string(st.Stage) != i.Stage {
		stage += fmt.Sprintf(" (workflow: %s)", st.Stage)
	}
	fmt.Fprintf(w, "  stage       %s\n  severity    %s\n  aware at    %s\n", stage, i.Severity, ago(i.AwareAt, now))
	if st == nil && i.Stage != store.StageClosed {
		fmt.Fprintln(w, "  workflow    not answering: stored facts only")
	}
	if i.Reportable != nil {
		fmt.Fprintf(w, "  reportable  %t (%s)\n", *i.Reportable, i.Rationale)
	}
	if sv := v.Scope; sv != nil {
		fmt.Fprintf(w, "  scope       v%d: %d tenants (+%d -%d), by %s at %s", sv.Version, sv.Tenants, sv.Added, sv.Removed,
			orDash(sv.CreatedBy), stamp(sv.CreatedAt))
		if st != nil && st.Scope.Version == sv.Version {
			fmt.Fprintf(w, ", %d covered by the partner", st.Scope.PartnerCovered)
		}
		fmt.Fprintln(w)
	}
	hash := i.NoticeHash
	if st != nil && st.ContentHash != "" {
		hash = st.ContentHash
	}
	if hash != "" {
		fmt.Fprintf(w, "  notice      %s", hash)
		if st != nil && st.ContentHash != "" {
			kind := "initial"
			switch {
			case st.DraftFinal:
				kind = "final"
			case st.DraftPhase > 1:
				kind = "update"
			}
			fmt.Fprintf(w, " (draft of phase %d, %s; phases approved: %d)", max(st.DraftPhase, 1), kind, st.ApprovedPhase)
			if st.ApprovedHash != "" && st.ApprovedHash != st.ContentHash {
				fmt.Fprintf(w, "\n              phase %d's notice %s (approve it with --hash for tenants the scope gained)", st.ApprovedPhase, st.ApprovedHash)
			}
		}
		fmt.Fprintln(w)
	}
	if st != nil && st.ContentHash != "" {
		fmt.Fprintf(w, "  approvals   %s\n", orDash(strings.Join(st.Approvers, ", ")))
	}
	if p := partnerState(v); p != "" {
		fmt.Fprintf(w, "  partner     %s\n", p)
	}

	if len(v.Ledger.Phases) == 0 {
		fmt.Fprintln(w, "  tenants     none in scope yet")
	}
	for _, p := range v.Ledger.Phases {
		fmt.Fprintf(w, "  phase %-5d %s: %s\n", p.Phase, p.Kind, phaseCounts(p))
		fmt.Fprintf(w, "              notified %s, deadlines %d met, %d late\n", notifiedBar(p), p.Met, p.Late)
		if s := owedLine(p, now); s != "" {
			fmt.Fprintf(w, "              %s\n", s)
		}
	}
	l := v.Ledger
	if l.Tenants > 0 {
		fmt.Fprintf(w, "  acknowledged %d of %d tenants %s\n", l.Acknowledged, l.Tenants, bar(l.Acknowledged, l.Tenants))
	}
	if i.Stage != store.StageClosed && (l.RemindersDue > 0 || l.NextReminderAt != nil) {
		fmt.Fprintf(w, "  reminders   %d due", l.RemindersDue)
		if l.NextReminderAt != nil {
			fmt.Fprintf(w, ", next %s", when(*l.NextReminderAt, now))
		}
		fmt.Fprintln(w)
	}
	if st != nil && st.LastError != "" {
		fmt.Fprintf(w, "  workflow    last error: %s\n", st.LastError)
	}
	if len(v.Alerts) > 0 {
		fmt.Fprintf(w, "  alerts      %d latest", min(len(v.Alerts), alertsShown))
		if len(v.Alerts) > alertsShown {
			fmt.Fprintf(w, " of %d (--json for all)", len(v.Alerts))
		}
		fmt.Fprintln(w)
		printAlerts(w, v.Alerts[:min(len(v.Alerts), alertsShown)], "    ")
	}
	if len(v.Passes) > 0 {
		// Messages are a detail: progress is the tenants above.
		fmt.Fprintln(w, "  messages    per notification pass")
		passes := v.Passes
		if len(passes) > passesShown {
			fmt.Fprintf(w, "    (%d earlier passes: --json)\n", len(passes)-passesShown)
			passes = passes[len(passes)-passesShown:]
		}
		for _, r := range passes {
			fmt.Fprintf(w, "    pass %-3d %-9s planned %d, sent %d, delivered %d, deferred %d, bounced %d, dropped %d, failed %d\n",
				r.Round, r.Kind, r.Planned, r.Sent, r.Delivered, r.Deferred, r.Bounced, r.Dropped, r.Failed)
		}
	}
	closed := i.ClosedReason
	if closed == "" && st != nil {
		closed = st.CloseReason
	}
	if closed != "" {
		fmt.Fprintf(w, "  closed      %s\n", closed)
	}
}

// phaseCounts is one phase's ledger in tenants.
func phaseCounts(p store.PhaseCounts) string {
	s := fmt.Sprintf("%d in scope, %d released, %d notified, %d delivered, %d bounced, %d unreachable, %d failed, %d late",
		p.Tenants, p.Released, p.Notified, p.Delivered, p.Bounced, p.Unreachable, p.Failed, p.Late)
	if p.Removed > 0 {
		s += fmt.Sprintf(", %d removed from scope", p.Removed)
	}
	return s
}

// notifiedBar draws the tenants notified of those in scope. A tenant still owed is not
// notified whatever the other counts say, so the bar is never full while one is owed.
func notifiedBar(p store.PhaseCounts) string {
	n := min(p.Notified, p.Tenants-p.Owed)
	return fmt.Sprintf("%s %d/%d", bar(n, p.Tenants), max(n, 0), p.Tenants)
}

// owedLine says how many tenants of a phase are still owed, why, and by when; "" when
// none is.
func owedLine(p store.PhaseCounts, now time.Time) string {
	if p.Owed <= 0 {
		return ""
	}
	s := fmt.Sprintf("%d %s still owed", p.Owed, plural(p.Owed, "tenant", "tenants"))
	if held := p.Owed - p.Plannable; held > 0 {
		s += fmt.Sprintf(" (%d not yet released: approval or partner)", held)
	}
	if p.LastError != "" {
		s += "; last error: " + p.LastError
	}
	if p.Earliest != nil {
		s += "; earliest deadline " + when(*p.Earliest, now)
	}
	return s
}

// printAlerts prints alerts one a line, each after prefix.
func printAlerts(w io.Writer, alerts []store.Alert, prefix string) {
	for _, a := range alerts {
		fmt.Fprintf(w, "%s%s  %s  %d %s  %s", prefix, stamp(a.CreatedAt), a.Kind,
			a.Tenants, plural(a.Tenants, "tenant", "tenants"), a.Message)
		if a.EmailError != "" {
			fmt.Fprintf(w, " (responders' email failed: %s)", a.EmailError)
		}
		fmt.Fprintln(w)
	}
}

// stamp is t for people, in UTC to the minute: "2026-12-02 08:52 UTC"; "—" when unset.
func stamp(t time.Time) string {
	if t.IsZero() {
		return dash
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// stampPtr is stamp of an optional time.
func stampPtr(t *time.Time) string {
	if t == nil {
		return dash
	}
	return stamp(*t)
}

// span is d for people, to the minute under a day and to the hour beyond: "23 h 29 min",
// "3 d 4 h", "45 min", "< 1 min". Its sign is dropped: the caller says "in" or "ago".
func span(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	const day = 24 * time.Hour
	if d >= day {
		d = d.Round(time.Hour)
		days, h := d/day, (d%day)/time.Hour
		if h == 0 {
			return fmt.Sprintf("%d d", days)
		}
		return fmt.Sprintf("%d d %d h", days, h)
	}
	d = d.Round(time.Minute)
	h, m := d/time.Hour, (d%time.Hour)/time.Minute
	switch {
	case d < time.Minute:
		return "< 1 min"
	case h == 0:
		return fmt.Sprintf("%d min", m)
	case m == 0:
		return fmt.Sprintf("%d h", h)
	default:
		return fmt.Sprintf("%d h %d min", h, m)
	}
}

// when is a deadline or due time, absolute and relative to now: "2026-12-02 08:52 UTC
// (in 23 h 29 min)" or "(passed 2 h ago)".
func when(t, now time.Time) string {
	if t.IsZero() {
		return dash
	}
	if d := t.Sub(now); d < 0 {
		return fmt.Sprintf("%s (passed %s ago)", stamp(t), span(d))
	}
	return fmt.Sprintf("%s (in %s)", stamp(t), span(t.Sub(now)))
}

// ago is a past event, absolute and relative to now: "2026-11-30 04:00 UTC (6 h ago)".
func ago(t, now time.Time) string {
	if t.IsZero() {
		return dash
	}
	if d := now.Sub(t); d >= 0 {
		return fmt.Sprintf("%s (%s ago)", stamp(t), span(d))
	}
	return stamp(t)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// dash stands for a value that is not set.
const dash = "—"

func orDash(s string) string {
	if s == "" {
		return dash
	}
	return s
}

// bar draws n of total as a 20-cell bar; it is full only when n reaches total.
func bar(n, total int) string {
	if total <= 0 {
		return "[" + strings.Repeat(" ", 20) + "]"
	}
	full := min(20, max(0, n)*20/total)
	return "[" + strings.Repeat("#", full) + strings.Repeat(".", 20-full) + "]"
}

// printStatus prints the workflow status an update answers with.
func printStatus(w io.Writer, st workflows.Status) {
	fmt.Fprintf(w, "stage %s", st.Stage)
	if st.Scope.Version > 0 {
		fmt.Fprintf(w, "; scope v%d: %d tenants (%d partner-covered)", st.Scope.Version, st.Scope.Total, st.Scope.PartnerCovered)
	}
	if st.ContentHash != "" {
		kind := ""
		if st.DraftFinal {
			kind = ", the final notice"
		}
		fmt.Fprintf(w, "; draft %s for phase %d%s; approvals %d", st.ContentHash, max(st.DraftPhase, 1), kind, len(st.Approvers))
	}
	if st.ApprovedPhase > 0 {
		fmt.Fprintf(w, "; phases approved: %d", st.ApprovedPhase)
	}
	if l := st.Ledger; l.Owed > 0 {
		// The workflow's latest ledger summary, over every phase.
		fmt.Fprintf(w, "; %d tenant notices still owed", l.Owed)
		if l.LastError != "" {
			fmt.Fprintf(w, " (last error: %s)", l.LastError)
		}
	}
	fmt.Fprintln(w)
}

// printScopeVersions lists scope versions, oldest first.
func printScopeVersions(w io.Writer, versions []store.ScopeVersion) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tTENANTS\tADDED\tREMOVED\tBY\tAT")
	for _, v := range versions {
		fmt.Fprintf(tw, "%d\t%d\t+%d\t-%d\t%s\t%s\n", v.Version, v.Tenants, v.Added, v.Removed, orDash(v.CreatedBy), stamp(v.CreatedAt))
	}
	return tw.Flush()
}

// printScopeDiff prints the counts of a scope diff and the tenant ids it carries.
func printScopeDiff(w io.Writer, d store.ScopeDiff) {
	fmt.Fprintf(w, "scope v%d..v%d: %d added, %d removed\n", d.From, d.To, d.AddedCount, d.RemovedCount)
	for _, id := range d.Added {
		fmt.Fprintf(w, "+ %s\n", id)
	}
	for _, id := range d.Removed {
		fmt.Fprintf(w, "- %s\n", id)
	}
	if len(d.Added) < d.AddedCount || len(d.Removed) < d.RemovedCount {
		fmt.Fprintf(w, "(listed %d of %d added, %d of %d removed: raise --limit)\n", len(d.Added), d.AddedCount, len(d.Removed), d.RemovedCount)
	}
}

// printTenants prints ledger lines, one a tenant.
func printTenants(w io.Writer, list []store.TenantStatus, limit int) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tNAME\tCOUNTRY\tPHASE\tSTATE\tDEADLINE\tMET\tNOTICES\tACKNOWLEDGED\tLAST ERROR")
	for _, t := range list {
		met := dash
		if t.DeadlineMet != nil {
			met = map[bool]string{true: "met", false: "late"}[*t.DeadlineMet]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\n", t.TenantID, t.TenantName, t.Country, t.Phase, t.State,
			stamp(t.Deadline), met, t.Notices, stampPtr(t.AcknowledgedAt), orDash(t.LastError))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if limit > 0 && len(list) >= limit {
		_, err := fmt.Fprintf(w, "(first %d tenants: raise --limit)\n", limit)
		return err
	}
	return nil
}
