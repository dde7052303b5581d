package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/client"
	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/testenv"
)

// TestPreviewImpactAndFollowupFromTheCLI drives the example incident on dev: an impact
// file with a bad line is refused naming the line and records nothing, a good one
// reports how many tenants it recorded; `incident preview --tenant` then shows that
// tenant's own notice with its numbers (and with --json the API's answer as it came);
// `incident followup` without -f is refused, saying what it needs.
func TestPreviewImpactAndFollowupFromTheCLI(t *testing.T) {
	dbURL := testenv.EmptyDatabaseURL(t)
	d := startDevOn(t, dbURL, t.TempDir(), 12)
	ctx := context.Background()
	t.Setenv("BREACHFLOW_URL", "")
	t.Setenv("BREACHFLOW_API_KEY", "")
	var rita string
	as := func(args ...string) (string, string, int) {
		return cli(t, ctx, append(args, "--url", d.apiURL, "--api-key", rita)...)
	}
	must := func(args ...string) string {
		t.Helper()
		out, errOut, status := as(args...)
		require.Zero(t, status, "%v: %s", args, errOut)
		return out
	}
	out, errOut, status := cli(t, ctx, "apikey", "create", "--name", "rita", "--role", "responder", "--url", d.apiURL, "--api-key", d.key)
	require.Zero(t, status, errOut)
	rita = strings.TrimSpace(out)

	id := strings.TrimSpace(must("incident", "declare", "-f", "../../examples/incident.yaml"))
	must("incident", "assess", id, "--reportable=true", "--rationale", "device users' data was read")
	must("incident", "scope", id)

	st, err := store.Open(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	// A tenant the example's scope (two services) holds, and another.
	var tenant, name, other string
	require.NoError(t, st.Pool().QueryRow(ctx, `SELECT t.id, t.name, (SELECT o.id FROM tenants o WHERE o.id <> t.id ORDER BY o.id LIMIT 1)
		FROM tenants t WHERE t.services && '{device-management,identity}' ORDER BY t.id LIMIT 1`).Scan(&tenant, &name, &other))
	impacts := func() int {
		var n int
		require.NoError(t, st.Pool().QueryRow(ctx, `SELECT count(*) FROM tenant_impacts WHERE incident_id = $1`, id).Scan(&n))
		return n
	}

	dir := t.TempDir()
	csvFile := func(name, content string) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		return path
	}
	const header = "tenant_id,approx_data_subjects,approx_records\n"
	for _, tc := range []struct {
		name, content, line string
	}{
		{"a number that is not one", header + tenant + ",1234,56789\n" + other + ",many,8\n", "line 3"},
		{"a negative number", header + tenant + ",1234,-1\n", "line 2"},
		{"a missing column", header + tenant + ",1234,56789\n" + other + ",7\n", "line 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := csvFile(strings.ReplaceAll(tc.name, " ", "-")+".csv", tc.content)
			stdout, stderr, status := as("incident", "impact", id, "-f", path)
			require.Equal(t, 1, status, stderr)
			require.Empty(t, stdout)
			require.Contains(t, stderr, path)
			require.Contains(t, stderr, tc.line, "the refusal names the bad line")
			require.Zero(t, impacts(), "nothing was recorded")

			stdout, stderr, status = as("incident", "impact", id, "-f", path, "--json")
			require.Equal(t, 1, status)
			e := jsonError(t, stdout, stderr)
			require.Equal(t, "invalid", e.Error.Code)
			require.Equal(t, "file", e.Error.Field)
			require.Contains(t, e.Error.Message, tc.line)
		})
	}
	good := csvFile("impact.csv", header+tenant+",1234,56789\n"+other+",7,8\n")
	require.Equal(t, "impact recorded for 2 tenants\n", must("incident", "impact", id, "-f", good))
	require.Equal(t, 2, impacts())

	// The declared notice is checked by the workflow: the preview follows.
	var raw string
	require.Eventually(t, func() bool {
		out, _, status := as("incident", "preview", id, "--tenant", tenant, "--json")
		raw = out
		return status == 0
	}, 30*time.Second, 200*time.Millisecond)
	lines := strings.Split(strings.TrimSpace(raw), "\n")
	require.Len(t, lines, 1, "one line of JSON")
	var p api.NoticePreview
	require.NoError(t, json.Unmarshal([]byte(raw), &p))
	require.NotNil(t, p.Tenant, raw)
	require.Equal(t, tenant, p.Tenant.TenantID)
	require.True(t, p.Tenant.InScope)
	require.EqualValues(t, 1234, p.Tenant.Facts.DataSubjects, "its own numbers")
	require.EqualValues(t, 56789, p.Tenant.Facts.Records)
	require.NotEmpty(t, p.Tenant.Facts.Services, "the services of its that the scope names")
	require.Subset(t, []string{"device-management", "identity"}, p.Tenant.Facts.Services)

	// --json is the API's answer, passed through.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.apiURL+"/v1/incidents/"+id+"/notice?tenant="+tenant, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+rita)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	answer, err := client.NullUnsetTimes(body)
	require.NoError(t, err)
	require.JSONEq(t, string(answer), raw)

	// For a person: the tenant, then its notice as it would receive it, with its facts.
	text := must("incident", "preview", id, "--tenant", tenant)
	require.Contains(t, text, "tenant "+tenant+" ("+name+"), in scope, locale "+p.Tenant.Notice.Locale+"\n")
	require.Contains(t, text, "Subject: "+p.Tenant.Notice.Subject+"\n")
	require.Contains(t, text, p.Tenant.Notice.Text)
	facts, _ := notice.FactsBlock(p.Tenant.Facts, p.Tenant.Notice.Locale)
	require.Contains(t, text, facts, "the tenant's own facts")
	require.Contains(t, text, notice.FormatCount(56789, p.Tenant.Notice.Locale))
	require.NotContains(t, text, "== en ==", "one tenant's notice, not every locale")
	subject := must("incident", "preview", id, "--tenant", tenant, "--part", "subject")
	require.Equal(t, p.Tenant.Notice.Subject+"\n", subject, "the subject alone, to pipe on")

	// A follow-up needs its draft.
	stdout, stderr, status := as("incident", "followup", id)
	require.Equal(t, 1, status, stderr)
	require.Empty(t, stdout)
	require.Contains(t, stderr, "-f FILE: required: the next phase's notice draft, with whats_new")
	stdout, stderr, status = as("incident", "followup", id, "--final", "--json")
	require.Equal(t, 1, status)
	e := jsonError(t, stdout, stderr)
	require.Equal(t, "invalid", e.Error.Code)
	require.Equal(t, "file", e.Error.Field)
	var phases int
	require.NoError(t, st.Pool().QueryRow(ctx, `SELECT count(*) FROM notice_drafts WHERE incident_id = $1 AND phase > 1`, id).Scan(&phases))
	require.Zero(t, phases, "no follow-up was proposed")
}
