package main

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/client"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/workflows"
)

func (a *app) watchCmd() *cobra.Command {
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "watch ID",
		Short: "Follow an incident's progress until it is closed (Ctrl-C leaves): redrawn in place on a terminal, lines when piped",
		Long: `Follow an incident's progress until it is closed; Ctrl-C leaves.

Progress is counted in tenants: owed, notified, delivered, unreachable and acknowledged per
notice phase, the partner's answer, deadlines met, late and the earliest still owed, and the
latest alerts. On a terminal the picture is redrawn in place; piped, a block of lines is
printed whenever something changed, with only the alerts raised since; with --json, every
refresh is one line of the API's incident view.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if interval < 100*time.Millisecond {
				return client.Errorf("invalid", "interval", "--interval %s: want at least 100ms", interval)
			}
			c, err := a.apiClient()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			scr := newScreen(cmd.OutOrStdout())
			scr.every = interval
			answered := false
			for {
				v, raw, err := getIncident(ctx, c, args[0])
				switch {
				case ctx.Err() != nil:
					return nil
				case err != nil && (!answered || !client.IsUnavailable(err)):
					return err
				case err != nil:
					// The API went away after answering: say so and keep trying.
					err = scr.problem(err.Error(), time.Now())
				case a.json:
					answered = true
					err = printAnswer(cmd.OutOrStdout(), raw)
				default:
					answered = true
					err = scr.show(v, time.Now())
				}
				if err != nil {
					return err
				}
				if answered && v.Incident.Stage == store.StageClosed {
					return nil
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(interval):
				}
			}
		},
	}
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "refresh interval")
	return cmd
}

// ANSI sequences that redraw a frame in place without flicker: home the cursor, clear
// to the end of each line written and, last, below the frame.
const (
	ansiHome      = "\x1b[H"
	ansiClear     = "\x1b[2J"
	ansiClearLine = "\x1b[K"
	ansiClearDown = "\x1b[J"
)

// screen draws watch's refreshes: redrawn in place on a terminal, appended as lines
// when piped (a block whenever the progress changed, with only the alerts raised since).
type screen struct {
	w     io.Writer
	tty   bool
	every time.Duration

	title     string   // terminal: the incident's title
	drawn     bool     // terminal: the screen was cleared once
	last      []string // the progress last shown
	alerts    []string // terminal: the latest alerts, as last shown
	lastAlert int64    // piped: the newest alert printed
	lastErr   string   // piped: the problem last printed
}

// newScreen draws on w, in place when w is a terminal.
func newScreen(w io.Writer) *screen { return &screen{w: w, tty: isTerminal(w), every: 2 * time.Second} }

// isTerminal reports whether w is a terminal (a file such as os.Stdout attached to one).
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// show draws one refresh of v.
func (s *screen) show(v api.IncidentView, now time.Time) error {
	lines := progress(v, now)
	fresh, newest := newAlerts(v.Alerts, s.lastAlert)
	if s.tty {
		s.title, s.last, s.alerts = v.Incident.Title, lines, alertLines(v.Alerts)
		return s.draw(now, "")
	}
	s.lastErr = ""
	if slices.Equal(lines, s.last) && len(fresh) == 0 {
		return nil
	}
	s.last, s.lastAlert = lines, newest
	var b bytes.Buffer
	for i, l := range lines {
		if i == 0 {
			l = now.UTC().Format("15:04:05") + "  " + l
		}
		b.WriteString(l + "\n")
	}
	if len(fresh) > alertsShown {
		fmt.Fprintf(&b, "  alerts: %d new, the latest %d:\n", len(fresh), alertsShown)
		fresh = fresh[:alertsShown]
	}
	printAlerts(&b, fresh, "  alert ")
	_, err := s.w.Write(b.Bytes())
	return err
}

// problem shows that the API did not answer, keeping the last picture on a terminal.
func (s *screen) problem(msg string, now time.Time) error {
	if s.tty {
		return s.draw(now, "API not answering, retrying: "+msg)
	}
	if msg == s.lastErr {
		return nil
	}
	s.lastErr = msg
	_, err := fmt.Fprintf(s.w, "%s  API not answering, retrying: %s\n", now.UTC().Format("15:04:05"), msg)
	return err
}

// draw redraws the terminal: a heading, a problem if any, the progress and the alerts.
func (s *screen) draw(now time.Time, problem string) error {
	var b bytes.Buffer
	if !s.drawn {
		b.WriteString(ansiClear)
		s.drawn = true
	}
	b.WriteString(ansiHome)
	put := func(l string) { b.WriteString(l + ansiClearLine + "\n") }
	put(fmt.Sprintf("%s  (%s UTC, every %s; Ctrl-C leaves)", s.title, now.UTC().Format("15:04:05"), every(s.every)))
	if problem != "" {
		put(problem)
	}
	for _, l := range s.last {
		put(l)
	}
	for _, l := range s.alerts {
		put(l)
	}
	b.WriteString(ansiClearDown)
	_, err := s.w.Write(b.Bytes())
	return err
}

// every is a refresh interval for people: "2 s" under a minute, else as span.
func every(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%g s", d.Seconds())
	}
	return span(d)
}

// newAlerts returns the alerts newer than after (an alert id), newest first as the API
// lists them, and the newest id seen.
func newAlerts(alerts []store.Alert, after int64) ([]store.Alert, int64) {
	var fresh []store.Alert
	newest := after
	for _, a := range alerts {
		if a.ID > after {
			fresh = append(fresh, a)
		}
		newest = max(newest, a.ID)
	}
	return fresh, newest
}

// alertLines are the latest alerts as a terminal frame shows them.
func alertLines(alerts []store.Alert) []string {
	if len(alerts) == 0 {
		return nil
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "  alerts   %d latest", min(len(alerts), alertsShown))
	if len(alerts) > alertsShown {
		fmt.Fprintf(&b, " of %d", len(alerts))
	}
	b.WriteString("\n")
	printAlerts(&b, alerts[:min(len(alerts), alertsShown)], "    ")
	return strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
}

// progress is watch's picture of an incident, counted in tenants: the stage and the
// tenants acknowledged, the partner, per notice phase the tenants notified, owed,
// delivered and unreachable, the deadlines met, late and the earliest still owed, and
// the reminders.
func progress(v api.IncidentView, now time.Time) []string {
	i, l := v.Incident, v.Ledger
	head := fmt.Sprintf("%s  %-14s", i.ID, i.Stage)
	if i.ID == "" {
		head = fmt.Sprintf("%-14s", i.Stage)
	}
	if v.Status == nil && i.Stage != store.StageClosed {
		head += " (workflow not answering)"
	}
	switch {
	case l.Tenants > 0:
		head += fmt.Sprintf(" acknowledged %s %d/%d", bar(l.Acknowledged, l.Tenants), l.Acknowledged, l.Tenants)
	case len(l.Phases) == 0:
		head += " no tenants in scope yet"
	}
	lines := []string{strings.TrimRight(head, " ")}
	if p := partnerState(v); p != "" {
		lines = append(lines, "  partner  "+p)
	}
	for _, p := range l.Phases {
		label := fmt.Sprintf("  %d %-8s", p.Phase, p.Kind)
		pad := strings.Repeat(" ", len(label))
		lines = append(lines, fmt.Sprintf("%s notified %s  owed %d  delivered %d  bounced %d  unreachable %d  failed %d",
			label, notifiedBar(p), max(p.Owed, 0), p.Delivered, p.Bounced, p.Unreachable, p.Failed))
		dl := fmt.Sprintf("deadlines %d met, %d late", p.Met, p.Late)
		if p.Owed > 0 && p.Earliest != nil {
			dl += "; earliest owed " + when(*p.Earliest, now)
		}
		if p.Removed > 0 {
			dl += fmt.Sprintf("; %d removed from scope", p.Removed)
		}
		lines = append(lines, pad+" "+dl)
		if held := p.Owed - p.Plannable; held > 0 {
			lines = append(lines, fmt.Sprintf("%s %d not yet released: approval or partner", pad, held))
		}
		if p.Owed > 0 && p.LastError != "" {
			lines = append(lines, pad+" last error: "+p.LastError)
		}
	}
	if i.Stage != store.StageClosed && (l.RemindersDue > 0 || l.NextReminderAt != nil) {
		r := fmt.Sprintf("  reminders %d due", l.RemindersDue)
		if l.NextReminderAt != nil {
			r += ", next " + when(*l.NextReminderAt, now)
		}
		lines = append(lines, r)
	}
	return lines
}

// partnerState is the partner gate as watch shows it; "" for an incident without a
// partner.
func partnerState(v api.IncidentView) string {
	st := v.Status
	if st == nil || st.Partner.Name == "" {
		if v.Incident.Partner == "" {
			return ""
		}
		return v.Incident.Partner
	}
	state := string(st.Partner.Status)
	if st.Partner.Status == workflows.PartnerNone {
		state = "not asked yet"
	}
	s := st.Partner.Name + ": " + strings.ReplaceAll(state, "_", " ")
	if st.Partner.Covered > 0 {
		s += fmt.Sprintf(" (%d tenant notices wait for it)", st.Partner.Covered)
	}
	return s
}
