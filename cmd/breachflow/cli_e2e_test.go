package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/testenv"
)

// TestIncidentThroughTheCLI drives a whole incident through the CLI against a running
// dev stack: declare from the example file, assess, scope, two approvals by two keys,
// partner confirmation with a partner key, notices in the mail sink, scope versions and
// the tenant ledger, a tenant's acknowledgement by following its link, show, retry, close.
func TestIncidentThroughTheCLI(t *testing.T) {
	dbURL := testenv.EmptyDatabaseURL(t)
	d := startDevOn(t, dbURL, t.TempDir(), 30)
	ctx := context.Background()
	// The example's scope names two services: the demo tenants using either are in it.
	st, err := store.Open(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	var n int
	require.NoError(t, st.Pool().QueryRow(ctx, `SELECT count(*) FROM tenants WHERE services && '{device-management,identity}'`).Scan(&n))
	require.Positive(t, n)
	require.Less(t, n, 30, "the example's scope is not every tenant")
	newKey := func(name, role string) string {
		t.Setenv("BREACHFLOW_API_KEY", "")
		out, err := run(t, ctx, "apikey", "create", "--name", name, "--role", role)
		require.NoError(t, err)
		return strings.Fields(out)[0]
	}
	rita, alice, bob, partner := newKey("rita", "responder"), newKey("alice", "approver"), newKey("bob", "approver"), newKey("devicecare-team", "partner:devicecare")
	t.Setenv("BREACHFLOW_URL", d.apiURL)
	as := func(key string, args ...string) (string, error) {
		t.Setenv("BREACHFLOW_API_KEY", key)
		return run(t, ctx, args...)
	}
	must := func(key string, args ...string) string {
		t.Helper()
		out, err := as(key, args...)
		require.NoError(t, err, "%v: %s", args, out)
		return out
	}

	id := strings.TrimSpace(must(rita, "incident", "declare", "-f", "../../examples/incident.yaml", "--idempotency-key", "cli-e2e"))
	require.Regexp(t, `^INC-\d{8}-[A-Z0-9]{6}$`, id)
	require.Equal(t, id, strings.TrimSpace(must(rita, "incident", "declare", "-f", "../../examples/incident.yaml", "--idempotency-key", "cli-e2e")))
	require.Contains(t, must(rita, "incident", "list"), id)

	require.Contains(t, must(rita, "incident", "assess", id, "--reportable=true", "--rationale", "device users' personal data was read"), "stage scoping")
	require.Contains(t, must(rita, "incident", "scope", id), fmt.Sprintf("scope v1: %d tenants", n))

	// A responder may not approve; the API's message comes back as the error.
	_, err = as(rita, "incident", "approve", id)
	require.ErrorContains(t, err, "403")
	must(alice, "incident", "approve", id)
	_, err = as(alice, "incident", "approve", id)
	require.ErrorContains(t, err, "already approved")
	must(bob, "incident", "approve", id)

	var reviewID string
	require.Eventually(t, func() bool {
		out, err := as(partner, "partner", "pending", "--json")
		if err != nil {
			return false
		}
		var v struct {
			Reviews []struct {
				ID         int64  `json:"id"`
				IncidentID string `json:"incident_id"`
			} `json:"reviews"`
		}
		if json.Unmarshal([]byte(out), &v) != nil || len(v.Reviews) == 0 {
			return false
		}
		require.Equal(t, id, v.Reviews[0].IncidentID)
		reviewID = strconv.FormatInt(v.Reviews[0].ID, 10)
		return true
	}, 30*time.Second, 200*time.Millisecond)
	_, err = as(rita, "partner", "confirm", reviewID)
	require.ErrorContains(t, err, "403", "a responder cannot answer for the partner")
	require.Contains(t, must(partner, "partner", "confirm", reviewID), "confirm recorded")

	require.Eventually(t, func() bool {
		out, err := as(rita, "incident", "show", id, "--json")
		return err == nil && strings.Contains(out, `"stage":"tracking"`)
	}, time.Minute, 200*time.Millisecond)

	// Progress is the ledger's, in tenants: every tenant notified, none owed.
	var show string
	require.Eventually(t, func() bool {
		show, _ = as(rita, "incident", "show", id)
		return strings.Contains(show, fmt.Sprintf("%d in scope, %d released, %d notified", n, n, n))
	}, 30*time.Second, 200*time.Millisecond, "%s", show)
	require.Contains(t, show, fmt.Sprintf("[####################] %d/%d", n, n))
	require.NotContains(t, show, "still owed")

	versions := strings.Split(strings.TrimSpace(must(rita, "incident", "scope", id, "--versions")), "\n")
	require.Len(t, versions, 2, "a header and version 1")
	require.Equal(t, []string{"1", strconv.Itoa(n), "+" + strconv.Itoa(n), "-0"}, strings.Fields(versions[1])[:4])
	var diff struct {
		AddedCount   int      `json:"added_count"`
		RemovedCount int      `json:"removed_count"`
		Added        []string `json:"added"`
	}
	require.NoError(t, json.Unmarshal([]byte(must(rita, "incident", "scope", id, "--diff", "1..1", "--json")), &diff))
	require.Zero(t, diff.AddedCount+diff.RemovedCount)
	require.Empty(t, diff.Added)
	_, err = as(rita, "incident", "scope", id, "--diff", "1..9")
	require.ErrorContains(t, err, "404")
	_, err = as(rita, "incident", "scope", id, "--diff", "1..9", "--services", "devicecare")
	require.ErrorContains(t, err, "take no criteria")

	var ledger struct {
		Tenants []struct {
			TenantID string `json:"tenant_id"`
			State    string `json:"state"`
		} `json:"tenants"`
	}
	require.NoError(t, json.Unmarshal([]byte(must(rita, "incident", "tenants", id, "--json")), &ledger))
	require.Len(t, ledger.Tenants, n)
	for _, ts := range ledger.Tenants {
		require.Contains(t, []string{"notified", "delivered"}, ts.State, ts.TenantID)
	}

	// Follow the acknowledgement link of one tenant's notice.
	link := ackLink(t, d.sinkURL)
	for range 2 {
		resp, err := http.Get(link)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	require.Contains(t, must(rita, "incident", "show", id), fmt.Sprintf("acknowledged 0 of %d tenants", n), "GET acknowledges nothing")
	resp, err := http.PostForm(link, url.Values{})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	show = must(rita, "incident", "show", id)
	require.Contains(t, show, fmt.Sprintf("acknowledged 1 of %d tenants", n))
	require.Contains(t, show, "partner     devicecare: confirmed")
	require.NotContains(t, show, "still owed")
	open := must(rita, "incident", "tenants", id, "--open", "--limit", "100")
	require.Len(t, strings.Split(strings.TrimSpace(open), "\n"), 1+n-1, "a header and the %d tenants yet to acknowledge:\n%s", n-1, open)

	// A retry with nothing owed sends nothing again.
	require.Contains(t, must(rita, "incident", "retry", id), "retry requested; stage ")

	_, err = as(rita, "incident", "close", id)
	require.ErrorContains(t, err, "reason", "closing with tenants unacknowledged needs a reason")
	must(rita, "incident", "close", id, "--reason", "notified; one tenant acknowledged; follow-up by account managers")
	require.Eventually(t, func() bool {
		out, err := as(rita, "incident", "show", id)
		return err == nil && strings.Contains(out, "stage       closed")
	}, 30*time.Second, 200*time.Millisecond)
	out := must(rita, "incident", "watch", id)
	require.Contains(t, out, "closed", "watch exits once the incident is closed")
	ackBar := strings.Repeat("#", 20/n) + strings.Repeat(".", 20-20/n)
	require.Contains(t, out, fmt.Sprintf("acknowledged [%s] 1/%d", ackBar, n))
	var watched struct {
		Incident struct {
			Stage string `json:"stage"`
		} `json:"incident"`
		Ledger struct {
			Acknowledged int `json:"acknowledged"`
		} `json:"ledger"`
	}
	require.NoError(t, json.Unmarshal([]byte(must(rita, "incident", "watch", id, "--json")), &watched))
	require.Equal(t, "closed", watched.Incident.Stage)
	require.Equal(t, 1, watched.Ledger.Acknowledged)
}

var ackRe = regexp.MustCompile(`http://[^\s"<\\]+/ack/[0-9a-f]{64}`)

func ackLink(t *testing.T, sinkURL string) string {
	t.Helper()
	resp, err := http.Get(sinkURL + "/sink/messages?limit=100")
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	link := ackRe.FindString(string(raw))
	require.NotEmpty(t, link, "no acknowledgement link in %s", raw)
	return link
}
