package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/authz"
	"github.com/breachflow/breachflow/internal/console"
	"github.com/breachflow/breachflow/internal/devenv"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/workflows"
)

// matrixRoles are the roles the matrix walks, each with the stack's key that holds it.
var matrixRoles = map[string]string{"admin": "ada", "responder": "rita", "approver": "alice", "partner": "dc"}

// apiDo sends a JSON API request as who and returns the status and body.
func (s *stack) apiDo(t *testing.T, method, path, who string, body any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	require.NoError(t, err)
	if who != "" {
		req.Header.Set("Authorization", "Bearer "+s.keys[who])
	}
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(raw)
}

// admitted turns the answers of one door into, per action, the roles it let in.
type admitted map[authz.Action][]string

func (a admitted) add(action authz.Action, role string, code int) {
	if _, ok := a[action]; !ok {
		a[action] = []string{}
	}
	if code != http.StatusForbidden && code != http.StatusUnauthorized {
		a[action] = append(a[action], role)
		slices.Sort(a[action])
		a[action] = slices.Compact(a[action])
	}
}

// TestEveryDoorSameMatrix walks every console route and every JSON API route with a key
// of every role, and checks that both doors admit exactly the roles internal/authz names
// for the route's action: one policy, whatever the door. Every request is shaped to be
// refused after authorization (a bad form or body), so nothing changes. Then it tries
// the encoded-slash and case variants of the approve routes as every role with the real
// content hash: none approves.
func TestEveryDoorSameMatrix(t *testing.T) {
	s := newStack(t, 20)
	s.api.Limits = nil // hundreds of requests from one address: the limits are tested elsewhere
	ctx := context.Background()
	var err error
	s.keys["ada"], _, err = s.st.CreateAPIKey(ctx, "ada", "admin", "test")
	require.NoError(t, err)

	// An incident waiting for approval of a real hash, drafted by rita.
	var declared struct{ Incident store.Incident }
	s.call(t, http.StatusCreated, "POST", "/v1/incidents", "rita", map[string]any{"title": "Matrix incident", "severity": "high",
		"aware_at": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}, &declared)
	id := declared.Incident.ID
	var st struct{ Status workflows.Status }
	s.call(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/draft", "rita", pixelFreeDraft(t, id), &st)
	hash := st.Status.ContentHash
	s.call(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/assessment", "rita", map[string]any{"reportable": true, "rationale": "r"}, nil)
	s.call(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/scope", "rita", map[string]any{"services": []string{"compute"}}, nil)
	s.waitStatus(t, id, func(st workflows.Status) bool { return st.Stage == workflows.StageApproval })
	// A partner review, for the decision routes.
	other, _, err := s.st.CreateIncident(ctx, "", store.Declaration{Title: "Review", Severity: "low", AwareAt: time.Now().Add(-time.Hour),
		Partner: devenv.DemoPartner.Name}, "test", time.Now())
	require.NoError(t, err)
	rv, err := s.st.OpenPartnerReview(ctx, other.ID, devenv.DemoPartner.Name, hash, 1, 1, time.Now().Add(time.Hour))
	require.NoError(t, err)
	fill := strings.NewReplacer("{id}", id, "{$}", "")
	_, auditBefore := counts(t, s)

	// The console door.
	browsers := map[string]*browser{}
	for role, who := range matrixRoles {
		b := s.browser(t)
		b.signIn(s.keys[who])
		browsers[role] = b
	}
	consoleSaw := admitted{}
	for _, rt := range console.Routes() {
		if rt.Action == "" {
			continue
		}
		method, pattern, _ := strings.Cut(rt.Pattern, " ")
		path := fill.Replace(pattern)
		if strings.Contains(pattern, "/reviews/") {
			path = "/console/partner/reviews/" + strconv.FormatInt(rv.ID, 10) + "/decision"
		}
		for role, b := range browsers {
			var code int
			if method == http.MethodGet {
				code, _ = b.get(path)
			} else {
				// Every field a form reads is missing or bad: refused after authorization.
				code, _ = b.post(path, url.Values{"csrf": {b.token(t)}, "draft": {"not json"}, "decision": {"maybe"},
					"content_hash": {strings.Repeat("0", 64)}})
			}
			if rt.Action != authz.IncidentRetry { // a retry with nothing owed is a harmless no-op
				require.NotEqual(t, http.StatusSeeOther, code, "%s as %s succeeded", rt.Pattern, role)
			}
			consoleSaw.add(rt.Action, role, code)
		}
	}

	// The API door.
	apiSaw := admitted{}
	for _, rt := range api.Routes() {
		path := fill.Replace(rt.Path)
		switch {
		case strings.HasPrefix(rt.Path, "/v1/apikeys/"):
			path = "/v1/apikeys/0"
		case strings.Contains(rt.Path, "/reviews/"):
			path = strings.Replace(rt.Path, "{id}", strconv.FormatInt(rv.ID, 10), 1)
		}
		for role, who := range matrixRoles {
			var body any
			if rt.Method == http.MethodPost {
				body = "not an object" // refused after authorization
			}
			code, raw := s.apiDo(t, rt.Method, path, who, body)
			require.Less(t, code, 500, "%s %s as %s: %s", rt.Method, path, role, raw)
			require.NotEqual(t, http.StatusTooManyRequests, code)
			require.NotContains(t, []int{http.StatusCreated, http.StatusNoContent}, code, "%s %s as %s changed something", rt.Method, path, role)
			apiSaw.add(rt.Action, role, code)
		}
	}

	// Both doors admit what the policy says, action by action.
	for action, roles := range consoleSaw {
		require.Equal(t, policy(action), roles, "console, %s", action)
	}
	for action, roles := range apiSaw {
		require.Equal(t, policy(action), roles, "API, %s", action)
	}
	for action := range consoleSaw {
		require.Contains(t, apiSaw, action, "the console's %s has an API route", action)
	}

	// Encoded slashes and other spellings of the approve routes, with the real hash.
	variants := []string{
		"/console/incidents/" + id + "/x%2Fapprove", "/console/incidents/" + id + "/x%2fapprove",
		"/console/incidents/" + id + "/APPROVE", "/console/incidents/" + id + "/Approve",
		"/console/incidents/" + id + "/approve/", "/console/incidents/" + id + "/approve%2F",
		"/console/Incidents/" + id + "/approve", "/console/incidents/" + id + "/..%2Fapprove",
		"/console/incidents/" + id + "/%61pprove",
	}
	for role, b := range browsers {
		for _, v := range variants {
			code, _ := b.post(v, url.Values{"csrf": {b.token(t)}, "content_hash": {hash}})
			if role == "approver" && strings.HasSuffix(v, "/%61pprove") {
				// The same route as /approve once unescaped: an approver reaches it.
				require.NotEqual(t, http.StatusForbidden, code, v)
				continue
			}
			require.Contains(t, []int{http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed}, code, "%s as %s", v, role)
		}
	}
	apiVariants := []string{
		"/v1/incidents/" + id + "/x%2Fapproval", "/v1/incidents/" + id + "/APPROVAL", "/V1/incidents/" + id + "/approval",
		"/v1/Incidents/" + id + "/approval", "/v1/incidents/" + id + "/approval/", "/v1/incidents/" + id + "%2Fapproval",
	}
	for role, who := range matrixRoles {
		if role == "approver" {
			continue // the approver's own approval below is the real one
		}
		for _, v := range append(apiVariants, "/v1/incidents/"+id+"/approval") {
			code, raw := s.apiDo(t, "POST", v, who, map[string]string{"content_hash": hash})
			require.Contains(t, []int{http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed}, code, "%s as %s: %s", v, role, raw)
		}
	}
	for _, v := range apiVariants {
		code, raw := s.apiDo(t, "POST", v, "alice", map[string]string{"content_hash": hash})
		require.Contains(t, []int{http.StatusNotFound, http.StatusMethodNotAllowed}, code, "%s: %s", v, raw)
	}

	// Nothing the matrix sent approved, decided, declared or closed anything.
	var approvals, decided, incidents int
	require.NoError(t, s.st.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM approvals WHERE approver <> 'alice'),
		(SELECT count(*) FROM partner_reviews WHERE status <> 'pending'), (SELECT count(*) FROM incidents)`).Scan(&approvals, &decided, &incidents))
	require.Zero(t, approvals, "no approval but the approver's own got through a variant")
	require.Zero(t, decided)
	require.Equal(t, 2, incidents)
	require.Equal(t, workflows.StageApproval, s.waitStatus(t, id, func(workflows.Status) bool { return true }).Stage)
	s.api.FlushDenials()
	_, auditAfter := counts(t, s)
	require.Greater(t, auditAfter, auditBefore, "the refusals are audited")
}

// policy is the roles internal/authz admits for action, as matrixRoles names them.
func policy(action authz.Action) []string {
	out := []string{}
	for _, r := range authz.RolesFor(action) {
		if _, ok := matrixRoles[r]; ok {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

// token reads the signed-in browser's CSRF token from a page any role may open.
func (b *browser) token(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/console/", "/console/partner"} {
		code, body := b.get(p)
		if code == http.StatusOK {
			if m := csrfRe.FindStringSubmatch(body); m != nil {
				return m[1]
			}
		}
	}
	t.Fatal("no page shows a CSRF token")
	return ""
}

// pixelFreeDraft is a valid draft for incident id with the default templates.
func pixelFreeDraft(t *testing.T, id string) json.RawMessage {
	t.Helper()
	f := noticeFields("Matrix incident")
	f.Reference = id
	raw, err := json.Marshal(map[string]any{"fields": f, "english_fallback": otherLocales()})
	require.NoError(t, err)
	return raw
}
