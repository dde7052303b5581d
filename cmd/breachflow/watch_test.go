package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/workflows"
)

func TestSpanAndTimesReadAsPeopleWriteThem(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{23*time.Hour + 29*time.Minute, "23 h 29 min"},
		{23*time.Hour + 29*time.Minute + 10*time.Second, "23 h 29 min"},
		{-(2 * time.Hour), "2 h"},
		{45 * time.Minute, "45 min"},
		{20 * time.Second, "< 1 min"},
		{0, "< 1 min"},
		{3*24*time.Hour + 4*time.Hour + 20*time.Minute, "3 d 4 h"},
		{48 * time.Hour, "2 d"},
		{47*time.Hour + 59*time.Minute, "2 d"},
	} {
		require.Equal(t, tc.want, span(tc.d), tc.d.String())
	}
	deadline := time.Date(2026, 12, 2, 8, 52, 0, 0, time.UTC)
	require.Equal(t, "2026-12-02 08:52 UTC (in 23 h 29 min)", when(deadline, deadline.Add(-23*time.Hour-29*time.Minute)))
	require.Equal(t, "2026-12-02 08:52 UTC (passed 1 h ago)", when(deadline, deadline.Add(time.Hour)))
	require.Equal(t, "2026-12-02 08:52 UTC (6 h ago)", ago(deadline, deadline.Add(6*time.Hour)))
	berlin := time.FixedZone("CET", 3600)
	require.Equal(t, "2026-12-02 08:52 UTC", stamp(deadline.In(berlin)), "times are shown in UTC")
	require.Equal(t, "—", stamp(time.Time{}))
	require.Equal(t, "—", stampPtr(nil))
	require.Equal(t, "—", when(time.Time{}, deadline))
}

func TestProgressCountsTenants(t *testing.T) {
	st := &workflows.Status{Stage: workflows.StageTracking,
		Partner: workflows.PartnerGate{Name: "devicecare", Status: workflows.PartnerPending, Covered: 4}}
	lines := progress(trackingView(owedPhase(), st), testNow)
	s := strings.Join(lines, "\n")
	for _, want := range []string{
		"INC-20261130-ABC123  tracking       acknowledged [....................] 1/30",
		"  partner  devicecare: pending (4 tenant notices wait for it)",
		"  1 initial  notified [##################..] 28/30  owed 2  delivered 27  bounced 1  unreachable 0  failed 1",
		"deadlines 28 met, 0 late; earliest owed 2026-11-30 12:00 UTC (in 2 h); 3 removed from scope",
		"1 not yet released: approval or partner",
		"last error: sendgrid 400: invalid from address",
		"  reminders 2 due, next 2026-11-30 10:30 UTC (in 30 min)",
	} {
		require.Contains(t, s, want)
	}
	require.NotContains(t, s, "not answering")
	require.NotContains(t, s, "h0m", "durations are not Go's")

	// Without the workflow: the stored partner name, and it says so.
	v := trackingView(owedPhase(), nil)
	v.Incident.Partner = "devicecare"
	s = strings.Join(progress(v, testNow.Add(3*time.Hour)), "\n")
	require.Contains(t, s, "(workflow not answering)")
	require.Contains(t, s, "  partner  devicecare")
	require.Contains(t, s, "earliest owed 2026-11-30 12:00 UTC (passed 1 h ago)")
}

func TestProgressBeforeScoping(t *testing.T) {
	v := api.IncidentView{Incident: store.Incident{ID: "INC-1", Stage: store.StageAssessing}, Status: &workflows.Status{Stage: workflows.StageAssessing}}
	require.Equal(t, []string{"INC-1  assessing      no tenants in scope yet"}, progress(v, testNow))

	var out bytes.Buffer
	printIncident(&out, v, testNow)
	require.Contains(t, out.String(), "tenants     none in scope yet")
}

// TestWatchPipedPrintsLines: piped, watch appends a block of plain lines when the
// progress changes, none while it does not, and each alert once.
func TestWatchPipedPrintsLines(t *testing.T) {
	var out bytes.Buffer
	scr := newScreen(&out)
	require.False(t, scr.tty)
	v := trackingView(owedPhase(), nil)
	require.NoError(t, scr.show(v, testNow))
	first := out.String()
	require.True(t, strings.HasPrefix(first, "10:00:00  INC-20261130-ABC123  tracking"), first)
	require.Contains(t, first, "alert 2026-11-30 09:00 UTC  send_refused  1 tenant")
	require.Contains(t, first, "deadline_risk  12 tenants")
	require.NotContains(t, first, "\x1b", "no terminal sequences in a pipe")

	out.Reset()
	require.NoError(t, scr.show(v, testNow.Add(2*time.Second)))
	require.Empty(t, out.String(), "nothing changed, nothing printed")

	p := owedPhase()
	p.Notified, p.Owed, p.Plannable = 29, 1, 1
	v = trackingView(p, nil)
	v.Alerts = append([]store.Alert{{ID: 9, Kind: "partner_overdue", Tenants: 4, Message: "the partner has not answered", CreatedAt: testNow}}, v.Alerts...)
	require.NoError(t, scr.show(v, testNow.Add(4*time.Second)))
	s := out.String()
	require.True(t, strings.HasPrefix(s, "10:00:04  "), s)
	require.Contains(t, s, "notified [###################.] 29/30  owed 1")
	require.Contains(t, s, "partner_overdue  4 tenants  the partner has not answered")
	require.NotContains(t, s, "send_refused", "an alert is printed once")

	out.Reset()
	require.NoError(t, scr.problem("no answer from the API at http://x: connection refused", testNow.Add(6*time.Second)))
	require.NoError(t, scr.problem("no answer from the API at http://x: connection refused", testNow.Add(8*time.Second)))
	require.Equal(t, "10:00:06  API not answering, retrying: no answer from the API at http://x: connection refused\n", out.String())
}

// TestWatchOnATerminalRedrawsInPlace: on a terminal each refresh homes the cursor and
// rewrites the frame, clearing what the previous one left.
func TestWatchOnATerminalRedrawsInPlace(t *testing.T) {
	var out bytes.Buffer
	scr := &screen{w: &out, tty: true, every: 2 * time.Second}
	v := trackingView(owedPhase(), nil)
	require.NoError(t, scr.show(v, testNow))
	first := out.String()
	require.True(t, strings.HasPrefix(first, ansiClear+ansiHome), "%q", first)
	require.True(t, strings.HasSuffix(first, ansiClearDown), "%q", first)
	require.Contains(t, first, "Device data read  (10:00:00 UTC, every 2 s; Ctrl-C leaves)"+ansiClearLine+"\n")
	require.Contains(t, first, "owed 2"+"  delivered 27")
	require.Contains(t, first, "alerts   2 latest")

	out.Reset()
	require.NoError(t, scr.show(v, testNow.Add(2*time.Second)))
	second := out.String()
	require.True(t, strings.HasPrefix(second, ansiHome), "later frames only home the cursor: %q", second)
	require.NotContains(t, second, ansiClear, "no full clear, no flicker")
	require.Contains(t, second, "10:00:02 UTC")
	require.Contains(t, second, "send_refused", "a terminal frame keeps showing the latest alerts")
	// Every line clears its rest, so a shorter frame leaves nothing of the longer one.
	for _, l := range strings.Split(strings.TrimSuffix(second, ansiClearDown), "\n") {
		if l != "" {
			require.True(t, strings.HasSuffix(l, ansiClearLine), "%q", l)
		}
	}

	out.Reset()
	require.NoError(t, scr.problem("connection refused", testNow.Add(4*time.Second)))
	require.Contains(t, out.String(), "API not answering, retrying: connection refused")
	require.Contains(t, out.String(), "owed 2", "the last picture stays")
}

func TestIsTerminal(t *testing.T) {
	require.False(t, isTerminal(&bytes.Buffer{}))
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	require.False(t, isTerminal(w), "a pipe is not a terminal")
	if f, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		// Only where the tests run on a terminal.
		defer f.Close()
		require.True(t, isTerminal(f))
	}
}
