package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestIncidentThroughTheCLI drives a whole incident through the CLI against a running
// dev stack: declare from the example file, assess, scope, two approvals by two keys,
// partner confirmation with a partner key, notices in the mail sink, a tenant's
// acknowledgement by following its link, show, close.
func TestIncidentThroughTheCLI(t *testing.T) {
	d := startDev(t, 30)
	ctx := context.Background()
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
	require.Contains(t, must(rita, "incident", "scope", id), "scope v1: 30 tenants")

	// A responder may not approve; the API's message comes back as the error.
	_, err := as(rita, "incident", "approve", id)
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

	// Follow the acknowledgement link of one tenant's notice.
	link := ackLink(t, d.sinkURL)
	for range 2 {
		resp, err := http.Get(link)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	require.Contains(t, must(rita, "incident", "show", id), "0 acknowledged", "GET acknowledges nothing")
	resp, err := http.PostForm(link, url.Values{})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	show := must(rita, "incident", "show", id)
	require.Contains(t, show, "30 notified of 30, 1 acknowledged")
	require.Contains(t, show, "partner     devicecare: confirmed")

	_, err = as(rita, "incident", "close", id)
	require.ErrorContains(t, err, "reason", "closing with tenants unacknowledged needs a reason")
	must(rita, "incident", "close", id, "--reason", "notified; one tenant acknowledged; follow-up by account managers")
	require.Eventually(t, func() bool {
		out, err := as(rita, "incident", "show", id)
		return err == nil && strings.Contains(out, "stage       closed")
	}, 30*time.Second, 200*time.Millisecond)
	out := must(rita, "incident", "watch", id)
	require.Contains(t, out, "closed", "watch exits once the incident is closed")
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
