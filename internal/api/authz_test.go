package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/devenv"
	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/tenants"
	"github.com/breachflow/breachflow/workflows"
)

// documentedRoute is one operation of the OpenAPI document.
type documentedRoute struct {
	Method, Path string
	Secured      bool
	Roles        []string
}

// documentedRoutes reads GET /v1/openapi.json. The secured operations are the API's
// route table, so iterating them covers a route as soon as it is added.
func (e *apiEnv) documentedRoutes(t *testing.T) []documentedRoute {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]struct {
			Security []any    `json:"security"`
			Roles    []string `json:"x-roles"`
		}
	}
	e.must(t, http.StatusOK, "GET", "/v1/openapi.json", keyNone, nil).JSON(t, &doc)
	var out []documentedRoute
	for path, ops := range doc.Paths {
		for method, op := range ops {
			out = append(out, documentedRoute{Method: strings.ToUpper(method), Path: path, Secured: len(op.Security) > 0, Roles: op.Roles})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path+out[i].Method < out[j].Path+out[j].Method })
	return out
}

// authCase is what the matrix sends to one route and what callers allowed in get back.
type authCase struct {
	roles []string // what the route admits besides admin, as its table entry says
	path  string
	body  any
	want  int            // status for every key allowed in
	by    map[string]int // per-key exceptions
}

// TestAuthorizationMatrix sends every route of the table with no key, a revoked key and a
// key of every role, and checks the exact answer: 401 without a live key, 403 for a role
// the route does not admit, and for the others the answer of the request itself.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{Worker: true})
	ctx := context.Background()

	// A live incident, in the assessing stage, that no request of the matrix moves on.
	id := e.declare(t, declaration("Matrix incident", nil))
	e.waitStage(t, id, workflows.StageAssessing)
	// A devicecare review already decided: its partner (and admin) get 409, another partner 404.
	decided, _, err := e.st.CreateIncident(ctx, "", store.Declaration{Title: "Decided review", Severity: "low",
		AwareAt: time.Now().Add(-time.Hour), Partner: devenv.DemoPartner.Name}, "test", time.Now())
	require.NoError(t, err)
	rv, err := e.st.OpenPartnerReview(ctx, decided.ID, devenv.DemoPartner.Name, strings.Repeat("a", 64), 1, 3, time.Now().Add(time.Hour))
	require.NoError(t, err)
	_, err = e.st.DecidePartnerReview(ctx, decided.ID, "confirmed", "", "test")
	require.NoError(t, err)
	// A key for admin to revoke.
	_, victim, err := e.st.CreateAPIKey(ctx, "victim", "responder", "test")
	require.NoError(t, err)

	responders := []string{"responder", "approver"}
	admin := []string{"admin"}
	cases := map[string]authCase{
		"GET /v1/apikeys":         {roles: admin, path: "/v1/apikeys", want: http.StatusOK},
		"POST /v1/apikeys":        {roles: admin, path: "/v1/apikeys", body: map[string]string{"name": "matrix", "role": "responder"}, want: http.StatusCreated},
		"DELETE /v1/apikeys/{id}": {roles: admin, path: "/v1/apikeys/" + strconv.FormatInt(victim.ID, 10), want: http.StatusNoContent},
		"POST /v1/incidents":      {roles: responders, path: "/v1/incidents", body: map[string]any{}, want: http.StatusBadRequest},
		"GET /v1/incidents":       {roles: responders, path: "/v1/incidents", want: http.StatusOK},
		"GET /v1/incidents/{id}":  {roles: responders, path: "/v1/incidents/" + id, want: http.StatusOK},
		"POST /v1/incidents/{id}/assessment": {roles: responders, path: "/v1/incidents/" + id + "/assessment",
			body: map[string]any{"reportable": true}, want: http.StatusUnprocessableEntity},
		"POST /v1/incidents/{id}/scope": {roles: responders, path: "/v1/incidents/" + id + "/scope",
			body: map[string]any{"services": []string{"compute"}}, want: http.StatusUnprocessableEntity},
		"POST /v1/incidents/{id}/draft": {roles: responders, path: "/v1/incidents/" + id + "/draft",
			body: draftJSON(t, "Matrix incident"), want: http.StatusOK},
		"POST /v1/incidents/{id}/approval": {roles: []string{"approver"}, path: "/v1/incidents/" + id + "/approval",
			body: map[string]string{"content_hash": strings.Repeat("0", 64)}, want: http.StatusUnprocessableEntity},
		"POST /v1/incidents/{id}/override": {roles: responders, path: "/v1/incidents/" + id + "/override",
			body: map[string]string{"justification": "matrix"}, want: http.StatusUnprocessableEntity},
		// The initial notice is not approved: no phase can follow it yet.
		"POST /v1/incidents/{id}/followup": {roles: responders, path: "/v1/incidents/" + id + "/followup",
			body: map[string]any{"kind": "update", "notice": followupJSON(t, "More is known.")}, want: http.StatusBadRequest},
		"POST /v1/incidents/{id}/impact": {roles: responders, path: "/v1/incidents/" + id + "/impact",
			body: map[string]any{"tenants": []map[string]any{{"tenant_id": "t-nosuch", "approx_data_subjects": 1}}}, want: http.StatusBadRequest},
		"POST /v1/incidents/{id}/close": {roles: responders, path: "/v1/incidents/" + id + "/close",
			body: map[string]any{}, want: http.StatusUnprocessableEntity},
		// Nothing is scoped yet: a retry is refused, there are no versions to compare, and
		// the ledger is empty.
		"POST /v1/incidents/{id}/retry": {roles: responders, path: "/v1/incidents/" + id + "/retry",
			body: map[string]any{}, want: http.StatusUnprocessableEntity},
		"GET /v1/incidents/{id}/scope/versions": {roles: responders, path: "/v1/incidents/" + id + "/scope/versions", want: http.StatusOK},
		"GET /v1/incidents/{id}/scope/diff": {roles: responders, path: "/v1/incidents/" + id + "/scope/diff?from=1&to=2",
			want: http.StatusNotFound},
		"GET /v1/incidents/{id}/tenants": {roles: responders, path: "/v1/incidents/" + id + "/tenants?open=true", want: http.StatusOK},
		"GET /v1/incidents/{id}/notice":  {roles: responders, path: "/v1/incidents/" + id + "/notice", want: http.StatusOK},
		"GET /v1/partner/reviews":        {roles: []string{"partner"}, path: "/v1/partner/reviews", want: http.StatusOK},
		"GET /v1/partner/reviews/{id}/notice": {roles: []string{"partner"}, path: fmt.Sprintf("/v1/partner/reviews/%d/notice", rv.ID),
			want: http.StatusNotFound, by: map[string]int{keyOther: http.StatusNotFound}},
		"POST /v1/partner/reviews/{id}/decision": {roles: []string{"partner"}, path: fmt.Sprintf("/v1/partner/reviews/%d/decision", rv.ID),
			body: map[string]string{"decision": "confirm", "content_hash": rv.ContentHash}, want: http.StatusConflict,
			by: map[string]int{keyOther: http.StatusNotFound}},
		// The evidence of an incident with no scope yet is a pack without tenants; the
		// audit routes are the admin's.
		"GET /v1/incidents/{id}/evidence": {roles: responders, path: "/v1/incidents/" + id + "/evidence", want: http.StatusOK},
		"GET /v1/audit/verify":            {roles: admin, path: "/v1/audit/verify", want: http.StatusOK},
		"GET /v1/audit/checkpoints":       {roles: admin, path: "/v1/audit/checkpoints", want: http.StatusOK},
	}
	roleOf := map[string]string{keyAdmin: "admin", keyResponder: "responder", keyApprover: "approver",
		keyDevicecare: "partner:devicecare", keyOther: "partner:other"}
	labels := []string{keyNone, keyRevoked, keyAdmin, keyResponder, keyApprover, keyDevicecare, keyOther}

	deniedBefore := e.denials(t)
	denials, seen := 0, 0
	for _, rt := range e.documentedRoutes(t) {
		if !rt.Secured {
			continue
		}
		name := rt.Method + " " + rt.Path
		tc, ok := cases[name]
		if !ok {
			t.Errorf("route %s has no case in the authorization matrix: add one", name)
			continue
		}
		seen++
		require.Equal(t, roleSet(tc.roles), roleSet(rt.Roles), "roles of %s", name)
		for _, label := range labels {
			r := e.do(t, rt.Method, tc.path, label, tc.body)
			who := label
			if who == "" {
				who = "no key"
			}
			switch {
			case label == keyNone || label == keyRevoked:
				require.Equal(t, http.StatusUnauthorized, r.Code, "%s with %s: %s", name, who, r.Body)
				require.Equal(t, "unauthenticated", r.Err(t).Code)
				denials++
			case !admits(tc.roles, roleOf[label]):
				require.Equal(t, http.StatusForbidden, r.Code, "%s with %s: %s", name, who, r.Body)
				require.Equal(t, "forbidden", r.Err(t).Code)
				denials++
			default:
				want := tc.want
				if w, ok := tc.by[label]; ok {
					want = w
				}
				require.Equal(t, want, r.Code, "%s with %s: %s", name, who, r.Body)
				if want == http.StatusNotFound && rt.Path == "/v1/partner/reviews/{id}/decision" {
					denials++ // another partner's review is audited as a denial
				}
			}
			if label == keyNone {
				require.Equal(t, `Bearer realm="breachflow"`, r.Header.Get("WWW-Authenticate"))
			}
		}
	}
	require.Equal(t, len(cases), seen, "every case matches a route of the table")

	// Every denial is in the audit log, by key id where the key is known, and nothing the
	// matrix refused changed a thing.
	require.Equal(t, denials, e.denials(t)-deniedBefore)
	byReason := func(reason string) int {
		return e.count(t, `SELECT coalesce(sum((detail->>'count')::int), 0) FROM audit_log WHERE action = 'auth.denied' AND detail->>'reason' LIKE $1`, reason)
	}
	require.Equal(t, len(cases), byReason("missing bearer key"))
	require.Equal(t, len(cases), byReason("unknown or revoked key"))
	require.Equal(t, 1, byReason("another partner's review"))
	require.Zero(t, e.count(t, `SELECT count(*) FROM audit_log WHERE action = 'auth.denied' AND detail ? 'key_id' AND detail->>'reason' LIKE '%key'`),
		"a denial without a live key names no key")
	require.Positive(t, e.count(t, `SELECT count(*) FROM audit_log WHERE action = 'auth.denied' AND detail->>'reason' LIKE 'role not allowed%'
		AND (detail->>'key_id')::bigint = $1`, e.keyIDs[keyOther]))
	got, err := e.st.GetReview(ctx, rv.ID)
	require.NoError(t, err)
	require.Equal(t, "confirmed", got.Status)
	require.Equal(t, 1, e.count(t, `SELECT count(*) FROM api_keys WHERE revoked_at IS NULL AND name = 'matrix'`), "only admin created a key")
	require.Equal(t, store.StageAssessing, e.view(t, id).Incident.Stage)
	require.Zero(t, e.count(t, `SELECT count(*) FROM audit_log WHERE action = 'notice.retry_requested'`), "a refused retry is not recorded")

	// Neither the log nor the audit trail carries a key.
	logged := e.logged()
	require.Contains(t, logged, "access denied")
	var audit string
	require.NoError(t, e.st.Pool().QueryRow(ctx, `SELECT coalesce(string_agg(actor || ' ' || action || ' ' || detail::text, E'\n'), '') FROM audit_log`).Scan(&audit))
	for label, key := range e.keys {
		require.NotContains(t, logged, key, "the log carries the %s key", label)
		require.NotContains(t, audit, key, "the audit log carries the %s key", label)
	}
}

// roleSet is roles sorted and without repeats.
func roleSet(roles []string) []string {
	out := slices.Clone(roles)
	slices.Sort(out)
	return slices.Compact(out)
}

// admits reports whether a route admitting roles lets role in: admin is one role among
// others, not a key to every route.
func admits(roles []string, role string) bool {
	if slices.Contains(roles, role) {
		return true
	}
	return strings.HasPrefix(role, "partner:") && slices.Contains(roles, "partner")
}

// TestPartnerKeysSeeAndDecideOnlyTheirReviews runs an incident with the devicecare partner
// to the partner gate: each partner key lists only its own partner's reviews, another
// partner's decision is answered 404 and changes nothing, and devicecare's confirmation
// releases the covered tenants.
func TestPartnerKeysSeeAndDecideOnlyTheirReviews(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{Tenants: 20, Contacts: 1, Worker: true})
	ctx := context.Background()

	// A pending review of the other partner, on an incident without a workflow.
	otherInc, _, err := e.st.CreateIncident(ctx, "", store.Declaration{Title: "Other partner's incident", Severity: "low",
		AwareAt: time.Now().Add(-time.Hour), Partner: otherPartner.Name}, "test", time.Now())
	require.NoError(t, err)
	otherReview, err := e.st.OpenPartnerReview(ctx, otherInc.ID, otherPartner.Name, strings.Repeat("b", 64), 1, 2, time.Now().Add(time.Hour))
	require.NoError(t, err)

	body := declaration("Device database exposure", nil)
	body["partner"] = devenv.DemoPartner.Name
	id := e.declare(t, body)
	var drafted struct{ Status workflows.Status }
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/draft", keyResponder, draftJSON(t, "Device database exposure")).JSON(t, &drafted)
	hash := drafted.Status.ContentHash
	require.Len(t, hash, 64)
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/assessment", keyResponder, map[string]any{"reportable": true, "rationale": "device data exposed"})
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/scope", keyResponder, store.ScopeCriteria{Services: []string{tenants.PartnerService, "compute"}})
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/approval", keyApprover, map[string]string{"content_hash": hash})
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/approval", keyApprover2, map[string]string{"content_hash": hash})
	// The scope holds tenants the partner covers and tenants it does not. The review is
	// stored once the uncovered tenants are notified; the covered ones wait for it.
	v := e.waitView(t, id, "partner review", func(v api.IncidentView) bool {
		in := v.Ledger.Initial()
		return v.Status != nil && v.Status.Stage == workflows.StagePartnerReview && v.Status.Partner.Status == workflows.PartnerPending &&
			in.Released > 0 && in.Notified == in.Released
	})
	covered := v.Status.Scope.PartnerCovered
	require.Positive(t, covered)
	require.Equal(t, v.Scope.Tenants, v.Ledger.Tenants)
	require.Equal(t, v.Ledger.Tenants-covered, v.Ledger.Initial().Notified, "every uncovered tenant is notified")
	require.Equal(t, covered, v.Ledger.Initial().Owed, "the covered tenants wait for the partner")
	require.Zero(t, v.Ledger.Initial().Plannable, "nothing covered is released before the partner answers")

	type review struct {
		ID          int64           `json:"id"`
		IncidentID  string          `json:"incident_id"`
		Partner     string          `json:"partner"`
		ContentHash string          `json:"content_hash"`
		Title       string          `json:"title"`
		Draft       json.RawMessage `json:"draft"`
	}
	reviews := func(key string) []review {
		var out struct{ Reviews []review }
		e.must(t, http.StatusOK, "GET", "/v1/partner/reviews", key, nil).JSON(t, &out)
		return out.Reviews
	}
	mine := reviews(keyDevicecare)
	require.Len(t, mine, 1)
	require.Equal(t, id, mine[0].IncidentID)
	require.Equal(t, devenv.DemoPartner.Name, mine[0].Partner)
	require.Equal(t, hash, mine[0].ContentHash)
	require.Equal(t, "Device database exposure", mine[0].Title)
	require.Contains(t, string(mine[0].Draft), "leaked service credential")
	theirs := reviews(keyOther)
	require.Len(t, theirs, 1)
	require.Equal(t, otherReview.ID, theirs[0].ID)
	e.must(t, http.StatusForbidden, "GET", "/v1/partner/reviews", keyAdmin, nil)

	// The partner reads the notice under review as it will be sent, every locale.
	var preview api.NoticePreview
	e.must(t, http.StatusOK, "GET", fmt.Sprintf("/v1/partner/reviews/%d/notice", mine[0].ID), keyDevicecare, nil).JSON(t, &preview)
	require.Equal(t, hash, preview.ContentHash)
	require.Len(t, preview.Locales, len(notice.Locales()))
	for _, l := range preview.Locales {
		require.NotEmpty(t, l.HTML, l.Locale)
	}
	e.must(t, http.StatusNotFound, "GET", fmt.Sprintf("/v1/partner/reviews/%d/notice", mine[0].ID), keyOther, nil)

	// The other partner deciding devicecare's review: 404, as if it did not exist, audited.
	decision := fmt.Sprintf("/v1/partner/reviews/%d/decision", mine[0].ID)
	denied := e.denials(t)
	for _, d := range []map[string]string{
		{"decision": "confirm", "content_hash": hash},
		{"decision": "request_changes", "content_hash": hash, "comment": "no"},
	} {
		r := e.must(t, http.StatusNotFound, "POST", decision, keyOther, d)
		require.Equal(t, "not_found", r.Err(t).Code)
	}
	unknown := e.must(t, http.StatusNotFound, "POST", "/v1/partner/reviews/999999/decision", keyOther, map[string]string{"decision": "confirm", "content_hash": hash})
	require.Equal(t, unknown.Body, e.do(t, "POST", decision, keyOther, map[string]string{"decision": "confirm", "content_hash": hash}).Body,
		"another partner's review reads exactly like one that does not exist")
	require.Equal(t, 3, e.denials(t)-denied)
	got, err := e.st.GetReview(ctx, mine[0].ID)
	require.NoError(t, err)
	require.Equal(t, "pending", got.Status)
	after := e.view(t, id)
	require.Equal(t, workflows.PartnerPending, after.Status.Partner.Status)
	require.Equal(t, covered, after.Ledger.Initial().Owed, "another partner's decision released nothing")
	// Devicecare deciding the other partner's review is refused alike.
	e.must(t, http.StatusNotFound, "POST", fmt.Sprintf("/v1/partner/reviews/%d/decision", otherReview.ID), keyDevicecare,
		map[string]string{"decision": "confirm", "content_hash": otherReview.ContentHash})
	got, err = e.st.GetReview(ctx, otherReview.ID)
	require.NoError(t, err)
	require.Equal(t, "pending", got.Status)

	// Devicecare decides its own: a wrong hash is refused by the workflow, the right one
	// confirms, and a second decision finds the review decided.
	r := e.must(t, http.StatusUnprocessableEntity, "POST", decision, keyDevicecare, map[string]string{"decision": "confirm", "content_hash": strings.Repeat("c", 64)})
	require.Equal(t, "rejected", r.Err(t).Code)
	e.must(t, http.StatusOK, "POST", decision, keyDevicecare, map[string]string{"decision": "confirm", "content_hash": hash})
	got, err = e.st.GetReview(ctx, mine[0].ID)
	require.NoError(t, err)
	require.Equal(t, "confirmed", got.Status)
	require.True(t, strings.HasPrefix(got.DecidedBy, "partner:devicecare/partner-devicecare key#"), got.DecidedBy)
	e.must(t, http.StatusConflict, "POST", decision, keyDevicecare, map[string]string{"decision": "confirm", "content_hash": hash})
	require.Empty(t, reviews(keyDevicecare))
	done := e.waitFor(t, id, "tracking", func(s workflows.Status) bool { return s.Stage == workflows.StageTracking })
	require.Equal(t, workflows.PartnerConfirmed, done.Partner.Status)
	in := e.view(t, id).Ledger.Initial()
	require.Equal(t, v.Ledger.Tenants, in.Notified, "the confirmation released the covered tenants")
	require.Zero(t, in.Owed)
}

// TestAuthorizationHeaderForms: the bearer scheme is matched whatever its case (RFC 7235);
// anything else is 401, audited.
func TestAuthorizationHeaderForms(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{})
	key := e.keys[keyResponder]
	for _, h := range []string{"Bearer " + key, "bearer " + key, "BEARER " + key} {
		r := e.do(t, "GET", "/v1/incidents", keyNone, nil, "Authorization", h)
		require.Equal(t, http.StatusOK, r.Code, "%q: %s", h[:7], r.Body)
	}
	denied := e.denials(t)
	bad := []string{"", "Bearer", "Bearer ", "Basic " + key, "Token " + key, key, "Bearer " + key + "x", "Bearer " + key[:len(key)-1],
		"Bearer  " + key}
	for _, h := range bad {
		r := e.do(t, "GET", "/v1/incidents", keyNone, nil, "Authorization", h)
		require.Equal(t, http.StatusUnauthorized, r.Code, "header %d: %s", len(h), r.Body)
		require.Equal(t, "unauthenticated", r.Err(t).Code)
	}
	require.Equal(t, len(bad), e.denials(t)-denied)
	require.NotContains(t, e.logged(), key[3:])
}
