package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/activities"
	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/workflows"
)

var testNow = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

const fullBar = "[####################]"

// trackingView is an incident in tracking whose initial notice reached all but the
// tenants owed, with the workflow not answering unless st is given.
func trackingView(p store.PhaseCounts, st *workflows.Status) api.IncidentView {
	reminder := testNow.Add(30 * time.Minute)
	return api.IncidentView{
		Incident: store.Incident{ID: "INC-20261130-ABC123", Title: "Device data read", Severity: "high", Stage: store.StageTracking,
			AwareAt: testNow.Add(-6 * time.Hour), NoticeHash: "sha256:stored"},
		Ledger: store.LedgerStats{Phases: []store.PhaseCounts{p}, Tenants: p.Tenants, Acknowledged: 1, RemindersDue: 2, NextReminderAt: &reminder},
		Scope:  &store.ScopeVersion{Version: 2, Tenants: p.Tenants, Added: 1, Removed: 3, CreatedBy: "rita#2", CreatedAt: testNow.Add(-5 * time.Hour)},
		Passes: []store.RoundCounts{{Round: 1, Kind: "initial", Planned: 60, Sent: 58, Delivered: 55, Bounced: 2, Failed: 2}},
		Alerts: []store.Alert{
			{ID: 7, Kind: "send_refused", Tenants: 1, Message: "SendGrid refused a page for good", CreatedAt: testNow.Add(-time.Hour),
				EmailError: "smtp: connection refused"},
			{ID: 3, Kind: "deadline_risk", Tenants: 12, Message: "75% of the notice window used", CreatedAt: testNow.Add(-2 * time.Hour)},
		},
		Status: st,
	}
}

func owedPhase() store.PhaseCounts {
	earliest := testNow.Add(2 * time.Hour)
	return store.PhaseCounts{Phase: 1, Kind: store.PhaseInitial, Tenants: 30, Released: 29, Notified: 28, Delivered: 27,
		Bounced: 1, Unreachable: 0, Failed: 1, Owed: 2, Plannable: 1, Met: 28, Late: 0, Removed: 3,
		LastError: "sendgrid 400: invalid from address", Earliest: &earliest}
}

func TestPrintIncidentReportsOwedTenantsFromTheLedger(t *testing.T) {
	var out bytes.Buffer
	printIncident(&out, trackingView(owedPhase(), nil), testNow)
	s := out.String()
	for _, want := range []string{
		"stage       tracking",
		"workflow    not answering",
		"scope       v2: 30 tenants (+1 -3), by rita#2",
		"notice      sha256:stored",
		"phase 1     initial: 30 in scope, 29 released, 28 notified, 27 delivered, 1 bounced, 0 unreachable, 1 failed, 0 late, 3 removed from scope",
		"28/30",
		"2 tenants still owed (1 not yet released: approval or partner); last error: sendgrid 400: invalid from address; earliest deadline 2026-11-30 12:00 UTC (in 2 h)",
		"acknowledged 1 of 30 tenants",
		"reminders   2 due, next 2026-11-30 10:30 UTC (in 30 min)",
		"aware at    2026-11-30 04:00 UTC (6 h ago)",
		"by rita#2 at 2026-11-30 05:00 UTC",
		"send_refused  1 tenant  SendGrid refused a page for good (responders' email failed: smtp: connection refused)",
		"deadline_risk  12 tenants  75% of the notice window used",
		"pass 1   initial   planned 60, sent 58",
	} {
		require.Contains(t, s, want)
	}
	require.NotContains(t, s, fullBar, "the notified bar is full while tenants are owed")
	require.NotContains(t, s, "approvals", "approvers are the workflow's; it did not answer")
}

func TestPrintIncidentWithWorkflowStatus(t *testing.T) {
	p := owedPhase()
	p.Notified, p.Delivered, p.Owed, p.Plannable, p.Released, p.LastError, p.Earliest, p.Bounced, p.Failed = 30, 30, 0, 0, 30, "", nil, 0, 0
	st := &workflows.Status{Stage: workflows.StageClosed, Scope: activities.ScopeResult{Version: 2, Total: 30, PartnerCovered: 4},
		ContentHash: "sha256:current", Approvers: []string{"alice#3", "bob#4"},
		Partner: workflows.PartnerGate{Name: "devicecare", Status: workflows.PartnerConfirmed}, CloseReason: "done"}
	var out bytes.Buffer
	printIncident(&out, trackingView(p, st), testNow)
	s := out.String()
	for _, want := range []string{
		"stage       tracking (workflow: closed)",
		", 4 covered by the partner",
		"notice      sha256:current",
		"approvals   alice#3, bob#4",
		"partner     devicecare: confirmed",
		fullBar + " 30/30",
		"closed      done",
	} {
		require.Contains(t, s, want)
	}
	require.NotContains(t, s, "still owed")
	require.NotContains(t, s, "not answering")

	out.Reset()
	v := trackingView(p, st)
	v.Incident.Stage = store.StageClosed
	printIncident(&out, v, testNow)
	require.NotContains(t, out.String(), "reminders", "a closed incident sends no reminders")
}

func TestNotifiedBarIsNeverFullWhileTenantsAreOwed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		p      store.PhaseCounts
		want   string
		owed   string
		isFull bool
	}{
		{name: "one of many owed", p: store.PhaseCounts{Tenants: 10000, Notified: 9999, Owed: 1},
			want: " 9999/10000", owed: "1 tenant still owed"},
		// Counts read while a pass runs may disagree; owed wins.
		{name: "notified counted as all", p: store.PhaseCounts{Tenants: 30, Notified: 30, Owed: 2},
			want: " 28/30", owed: "2 tenants still owed"},
		{name: "none notified", p: store.PhaseCounts{Tenants: 5, Owed: 5, Plannable: 5},
			want: "[....................] 0/5", owed: "5 tenants still owed"},
		{name: "all notified", p: store.PhaseCounts{Tenants: 30, Notified: 30},
			want: fullBar + " 30/30", isFull: true},
		{name: "empty phase", p: store.PhaseCounts{}, want: "0/0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := notifiedBar(tc.p)
			require.Contains(t, got, tc.want)
			require.Equal(t, tc.isFull, strings.Contains(got, fullBar), got)
			if tc.owed == "" {
				require.Empty(t, owedLine(tc.p, testNow))
			} else {
				require.Contains(t, owedLine(tc.p, testNow), tc.owed)
			}
		})
	}
}

func TestPrintStatusSaysWhatIsOwed(t *testing.T) {
	var out bytes.Buffer
	st := workflows.Status{Stage: workflows.StageTracking, Scope: activities.ScopeResult{Version: 1, Total: 30}}
	st.Ledger.Owed, st.Ledger.LastError = 3, "sendgrid 401"
	printStatus(&out, st)
	require.Equal(t, "stage tracking; scope v1: 30 tenants (0 partner-covered); 3 tenant notices still owed (last error: sendgrid 401)\n", out.String())
}

func TestParseDiff(t *testing.T) {
	for _, tc := range []struct {
		in       string
		from, to int
		ok       bool
	}{
		{"1..2", 1, 2, true},
		{"3..1", 3, 1, true},
		{"2..2", 2, 2, true},
		{"1-2", 0, 0, false},
		{"..2", 0, 0, false},
		{"0..1", 0, 0, false},
		{"a..b", 0, 0, false},
		{"1..2..3", 0, 0, false},
	} {
		from, to, err := parseDiff(tc.in)
		if !tc.ok {
			require.ErrorContains(t, err, "FROM..TO", tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, [2]int{tc.from, tc.to}, [2]int{from, to}, tc.in)
	}
}

func TestPrintScopeVersionsAndDiff(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, printScopeVersions(&out, []store.ScopeVersion{
		{Version: 1, Tenants: 30, Added: 30, CreatedBy: "rita#2", CreatedAt: testNow},
		{Version: 2, Tenants: 28, Added: 1, Removed: 3, CreatedBy: "rita#2", CreatedAt: testNow.Add(time.Minute)},
	}))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 3)
	require.Equal(t, []string{"VERSION", "TENANTS", "ADDED", "REMOVED", "BY", "AT"}, strings.Fields(lines[0]))
	require.Equal(t, []string{"2", "28", "+1", "-3", "rita#2", "2026-11-30", "10:01", "UTC"}, strings.Fields(lines[2]))

	out.Reset()
	printScopeDiff(&out, store.ScopeDiff{From: 1, To: 2, AddedCount: 1, RemovedCount: 3, Added: []string{"t-0031"}, Removed: []string{"t-0001", "t-0002"}})
	require.Equal(t, "scope v1..v2: 1 added, 3 removed\n+ t-0031\n- t-0001\n- t-0002\n(listed 1 of 1 added, 2 of 3 removed: raise --limit)\n", out.String())
}

func TestPrintTenants(t *testing.T) {
	met, late := true, false
	acked := testNow
	var out bytes.Buffer
	require.NoError(t, printTenants(&out, []store.TenantStatus{
		{TenantID: "t-0001", TenantName: "Acme", Country: "DE", Phase: 1, State: "delivered", Deadline: testNow, DeadlineMet: &met, Notices: 2, AcknowledgedAt: &acked},
		{TenantID: "t-0002", TenantName: "Globex", Country: "FR", Phase: 1, State: "failed", Deadline: testNow, DeadlineMet: &late, LastError: "sendgrid 400"},
		{TenantID: "t-0003", TenantName: "Initech", Country: "US", Phase: 1, State: "owed", Deadline: testNow},
	}, 3))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 5)
	require.Equal(t, []string{"t-0001", "Acme", "DE", "1", "delivered", "2026-11-30", "10:00", "UTC", "met", "2", "2026-11-30", "10:00", "UTC", "—"}, strings.Fields(lines[1]))
	require.Equal(t, []string{"t-0002", "Globex", "FR", "1", "failed", "2026-11-30", "10:00", "UTC", "late", "0", "—", "sendgrid", "400"}, strings.Fields(lines[2]))
	require.Equal(t, []string{"t-0003", "Initech", "US", "1", "owed", "2026-11-30", "10:00", "UTC", "—", "0", "—", "—"}, strings.Fields(lines[3]))
	require.Equal(t, "(first 3 tenants: raise --limit)", lines[4])
}
