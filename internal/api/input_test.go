package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/workflows"
)

// badInput is one request the API must refuse.
type badInput struct {
	name   string
	body   any
	header []string
	code   int
	field  string // the error's field; "" expects none
	says   string // something the message must say
}

// oversized is a JSON object just over the 1 MiB body limit.
func oversized(field string) raw {
	return raw(`{"` + field + `":"` + strings.Repeat("a", 1<<20) + `"}`)
}

func with(base map[string]any, kv ...any) map[string]any {
	out := maps.Clone(base)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
			continue
		}
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// writes is every table a refused request must leave alone, summarised.
func (e *apiEnv) writes(t *testing.T) string {
	t.Helper()
	var s string
	require.NoError(t, e.st.Pool().QueryRow(context.Background(), `SELECT concat_ws(' | ',
		(SELECT count(*) FROM incidents), (SELECT max(updated_at)::text FROM incidents), (SELECT count(*) FROM audit_log),
		(SELECT count(*) FROM notice_drafts), (SELECT count(*) FROM approvals), (SELECT count(*) FROM api_keys),
		(SELECT count(*) FROM api_keys WHERE revoked_at IS NOT NULL), (SELECT count(*) FROM scope_tenants))`).Scan(&s))
	return s
}

// refuse sends every case and checks its status, error code, field, and that nothing was written.
func (e *apiEnv) refuse(t *testing.T, method, path string, cases []badInput) {
	t.Helper()
	for _, tc := range cases {
		before := e.writes(t)
		key := keyAdmin
		if strings.HasPrefix(path, "/v1/incidents") {
			key = keyApprover // may use every incident route
		}
		r := e.do(t, method, path, key, tc.body, tc.header...)
		require.Equal(t, tc.code, r.Code, "%s %s, %s: %s", method, path, tc.name, r.Body)
		got := r.Err(t)
		want := map[int]string{http.StatusBadRequest: "invalid", http.StatusRequestEntityTooLarge: "too_large",
			http.StatusConflict: "conflict", http.StatusUnprocessableEntity: "rejected", http.StatusNotFound: "not_found"}[tc.code]
		require.Equal(t, want, got.Code, "%s: %s", tc.name, r.Body)
		require.NotEmpty(t, got.Message, tc.name)
		require.Equal(t, tc.field, got.Field, "%s: %s", tc.name, r.Body)
		require.Contains(t, got.Message, tc.says, tc.name)
		require.Equal(t, before, e.writes(t), "%s wrote something", tc.name)
	}
}

// TestDeclarationRejectsBadInput sends malformed, oversized, mistyped and invalid
// declarations: each gets the right 4xx, names the field where there is one, and writes
// nothing.
func TestDeclarationRejectsBadInput(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{})
	ok := declaration("Credential exposure", nil)
	long := func(n int) string { return strings.Repeat("x", n) }
	badNotice := draftOf(t, notice.Fields{Nature: "Only a nature"})
	var badEmail map[string]any
	require.NoError(t, json.Unmarshal(draftJSON(t, "Credential exposure"), &badEmail))
	badEmail["fields"].(map[string]any)["contact_point"] = map[string]any{"name": "Privacy Office", "email": "privacy at provider"}
	cats := make([]string, 51)
	for i := range cats {
		cats[i] = fmt.Sprintf("category %d", i)
	}

	e.refuse(t, "POST", "/v1/incidents", []badInput{
		{name: "empty body", body: raw(""), code: 400},
		{name: "malformed JSON", body: raw(`{"title": "x",`), code: 400},
		{name: "not an object", body: raw(`["title"]`), code: 400},
		{name: "two objects", body: raw(`{"title":"a"} {"title":"b"}`), code: 400},
		{name: "trailing garbage", body: raw(`{"title":"a"} garbage`), code: 400},
		{name: "oversized", body: oversized("summary"), code: 413},
		{name: "unknown field", body: with(ok, "titel", "x"), code: 400, field: "titel"},
		{name: "unknown scope field", body: with(ok, "scope", map[string]any{"service": []string{"compute"}}), code: 400, field: "service"},
		{name: "title a number", body: with(ok, "title", 5), code: 400, field: "title"},
		{name: "severity a list", body: with(ok, "severity", []string{"high"}), code: 400, field: "severity"},
		{name: "categories a string", body: with(ok, "data_categories", "emails"), code: 400, field: "data_categories"},
		{name: "scope services a string", body: with(ok, "scope", map[string]any{"services": "compute"}), code: 400, field: "scope.services"},
		{name: "aware_at not a time", body: with(ok, "aware_at", "yesterday"), code: 400, field: "aware_at"},
		{name: "aware_at without zone", body: with(ok, "aware_at", "2026-01-10T10:00:00"), code: 400, field: "aware_at"},
		{name: "aware_at with a space", body: with(ok, "aware_at", "2026-01-10 10:00:00Z"), code: 400, field: "aware_at"},
		{name: "aware_at month 13", body: with(ok, "aware_at", "2026-13-10T10:00:00Z"), code: 400, field: "aware_at"},
		{name: "aware_at a number", body: with(ok, "aware_at", 1767225600), code: 400, field: "aware_at"},
		{name: "aware_at missing", body: with(ok, "aware_at", nil), code: 400, field: "aware_at"},
		{name: "aware_at in the future", body: with(ok, "aware_at", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)), code: 400, field: "aware_at"},
		{name: "severity unknown", body: with(ok, "severity", "urgent"), code: 400, field: "severity"},
		{name: "severity upper case", body: with(ok, "severity", "HIGH"), code: 400, field: "severity"},
		{name: "severity missing", body: with(ok, "severity", nil), code: 400, field: "severity"},
		{name: "title missing", body: with(ok, "title", nil), code: 400, field: "title"},
		{name: "title blank", body: with(ok, "title", "   "), code: 400, field: "title"},
		{name: "title too long", body: with(ok, "title", long(201)), code: 400, field: "title"},
		{name: "title with NUL", body: with(ok, "title", "Credential\u0000exposure"), code: 400, field: "title"},
		{name: "summary with NUL", body: with(ok, "summary", "a\u0000b"), code: 400, field: "summary"},
		{name: "category with NUL", body: with(ok, "data_categories", []string{"e\u0000mail"}), code: 400, field: "data_categories"},
		{name: "summary too long", body: with(ok, "summary", long(20001)), code: 400, field: "summary"},
		{name: "too many categories", body: with(ok, "data_categories", cats), code: 400, field: "data_categories"},
		{name: "blank category", body: with(ok, "data_categories", []string{"emails", " "}), code: 400, field: "data_categories"},
		{name: "category too long", body: with(ok, "data_categories", []string{long(101)}), code: 400, field: "data_categories"},
		{name: "country lower case", body: with(ok, "scope", map[string]any{"countries": []string{"de"}}), code: 400, field: "scope.countries"},
		{name: "service with spaces", body: with(ok, "scope", map[string]any{"services": []string{"object storage"}}), code: 400, field: "scope.services"},
		{name: "partner malformed", body: with(ok, "partner", "Device Care"), code: 400, field: "partner"},
		{name: "partner unknown", body: with(ok, "partner", "nosuch"), code: 400, field: "partner"},
		{name: "notice incomplete", body: with(ok, "notice", badNotice), code: 400, field: "notice"},
		{name: "notice with another title", body: with(ok, "notice", draftJSON(t, "Credential exposure (internal)")), code: 400,
			field: "notice.fields.title", says: `from its declaration ("Credential exposure")`},
		{name: "notice contact email invalid", body: with(ok, "notice", badEmail), code: 400, field: "notice"},
		{name: "notice not an object", body: with(ok, "notice", 5), code: 400, field: "notice"},
		{name: "notice unknown field", body: with(ok, "notice", map[string]any{"felds": map[string]any{}}), code: 400, field: "notice"},
		{name: "idempotency key too long", body: ok, header: []string{"Idempotency-Key", long(201)}, code: 400, field: "Idempotency-Key"},
	})
	require.Zero(t, e.count(t, `SELECT count(*) FROM incidents`))

	// The same declaration, valid, is accepted: the cases failed for their own reason.
	e.must(t, http.StatusCreated, "POST", "/v1/incidents", keyResponder, ok)
}

// TestUpdatesRejectBadInput sends bad bodies to the routes that change a live incident:
// malformed and mistyped bodies are 400 (naming the field), oversized ones 413, what the
// workflow refuses 422; none of them writes anything or moves the incident.
func TestUpdatesRejectBadInput(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{Worker: true, Tenants: 5})
	id := e.declare(t, declaration("Credential exposure", nil))
	e.waitStage(t, id, workflows.StageAssessing)
	inc := "/v1/incidents/" + id
	common := func(field string) []badInput {
		return []badInput{
			{name: "empty body", body: raw(""), code: 400},
			{name: "malformed JSON", body: raw(`{"x": `), code: 400},
			{name: "an array", body: raw(`[]`), code: 400},
			{name: "two objects", body: raw(`{} {}`), code: 400},
			{name: "oversized", body: oversized(field), code: 413},
			{name: "unknown field", body: map[string]any{"extra": true}, code: 400, field: "extra"},
		}
	}
	e.refuse(t, "POST", inc+"/assessment", append(common("rationale"),
		badInput{name: "reportable missing", body: map[string]any{"rationale": "x"}, code: 400, field: "reportable"},
		badInput{name: "reportable a string", body: map[string]any{"reportable": "yes", "rationale": "x"}, code: 400, field: "reportable"},
		badInput{name: "rationale a number", body: map[string]any{"reportable": true, "rationale": 1}, code: 400, field: "rationale"},
		badInput{name: "rationale missing", body: map[string]any{"reportable": true}, code: 422},
		badInput{name: "rationale with a NUL", body: map[string]any{"reportable": true, "rationale": "a\u0000b"}, code: 400, field: "rationale"},
		badInput{name: "rationale too long", body: map[string]any{"reportable": true, "rationale": strings.Repeat("r", 10001)}, code: 422},
	))
	e.refuse(t, "POST", inc+"/scope", append(common("services"),
		badInput{name: "no criteria", body: map[string]any{}, code: 400, field: "scope"},
		badInput{name: "services a string", body: map[string]any{"services": "compute"}, code: 400, field: "services"},
		badInput{name: "services of numbers", body: map[string]any{"services": []int{1}}, code: 400, field: "services"},
		badInput{name: "country lower case", body: map[string]any{"countries": []string{"de"}}, code: 400, field: "scope.countries"},
		badInput{name: "tenant id injection", body: map[string]any{"tenant_ids": []string{"'; DROP TABLE tenants; --"}}, code: 400, field: "scope.tenant_ids"},
		badInput{name: "valid, but not in this stage", body: map[string]any{"services": []string{"compute"}}, code: 422},
	))
	draftWith := func(change func(*notice.Draft)) json.RawMessage {
		var d notice.Draft
		require.NoError(t, json.Unmarshal(draftJSON(t, ""), &d))
		change(&d)
		raw, err := json.Marshal(d)
		require.NoError(t, err)
		return raw
	}
	// A draft is raw JSON to the API: what is wrong inside it is the notice's fault.
	e.refuse(t, "POST", inc+"/draft", []badInput{
		{name: "empty body", body: raw(""), code: 400},
		{name: "malformed JSON", body: raw(`{"fields": `), code: 400},
		{name: "two objects", body: raw(`{} {}`), code: 400},
		{name: "oversized", body: oversized("nature"), code: 413},
		{name: "an array", body: raw(`[]`), code: 400, field: "notice"},
		{name: "incomplete", body: map[string]any{"fields": map[string]any{"nature": "x"}}, code: 400, field: "notice"},
		{name: "another title", body: draftJSON(t, "Credential exposure (internal)"), code: 400, field: "notice.fields.title", says: "from its declaration"},
		{name: "another awareness time", body: draftWith(func(d *notice.Draft) { d.Fields.AwareAt = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }),
			code: 400, field: "notice.fields.aware_at", says: "from its declaration"},
		{name: "other data categories", body: draftWith(func(d *notice.Draft) { d.Fields.DataCategories = []string{"passwords"} }),
			code: 400, field: "notice.fields.data_categories", says: "device identifiers"},
		{name: "unknown draft field", body: map[string]any{"fields": map[string]any{}, "extra": 1}, code: 400, field: "notice"},
		{name: "contact email invalid", body: draftWith(func(d *notice.Draft) { d.Fields.Contact.Email = "privacy@@provider" }), code: 400, field: "notice", says: "email"},
		{name: "nature with a NUL", body: draftWith(func(d *notice.Draft) { d.Fields.Nature = "a\u0000b" }), code: 400, field: "notice"},
		{name: "subject template with a NUL", body: draftWith(func(d *notice.Draft) {
			d.Templates = map[string]notice.Template{"en": {Subject: "Incident\u0000{{.Reference}}"}}
		}), code: 400, field: "notice"},
	})
	e.refuse(t, "POST", inc+"/approval", append(common("content_hash"),
		badInput{name: "hash a number", body: map[string]any{"content_hash": 1}, code: 400, field: "content_hash"},
		badInput{name: "hash not hex", body: map[string]any{"content_hash": "not a hash"}, code: 422},
	))
	e.refuse(t, "POST", inc+"/close", append(common("reason"),
		badInput{name: "reason a list", body: map[string]any{"reason": []string{"x"}}, code: 400, field: "reason"},
		badInput{name: "reason missing", body: map[string]any{}, code: 422},
		badInput{name: "reason with a NUL", body: map[string]any{"reason": "\u0000"}, code: 400, field: "reason"},
		badInput{name: "reason too long", body: map[string]any{"reason": strings.Repeat("r", 10001)}, code: 422},
	))
	e.refuse(t, "POST", inc+"/override", append(common("justification"),
		badInput{name: "justification a bool", body: map[string]any{"justification": true}, code: 400, field: "justification"},
		badInput{name: "justification with a NUL", body: map[string]any{"justification": "a\u0000"}, code: 400, field: "justification"},
	))
	e.refuse(t, "POST", inc+"/followup", append(common("x"),
		badInput{name: "notice missing", body: map[string]any{"kind": "update"}, code: 400, field: "notice", says: "next phase's notice draft"},
		badInput{name: "notice not an object", body: map[string]any{"kind": "update", "notice": 5}, code: 400, field: "notice"},
		badInput{name: "kind a number", body: map[string]any{"kind": 2, "notice": followupJSON(t, "More is known.")}, code: 400, field: "kind"},
		badInput{name: "valid, but the initial notice is not approved", body: map[string]any{"kind": "update", "notice": followupJSON(t, "More is known.")},
			code: 400, field: "notice.phase", says: "not approved yet"},
	))
	// An unknown incident is 404 once the body is good, and 400 before.
	e.refuse(t, "POST", "/v1/incidents/INC-20260101-NOSUCH/assessment", []badInput{
		{name: "unknown incident", body: map[string]any{"reportable": true, "rationale": "x"}, code: 404},
		{name: "unknown incident, bad body", body: raw(`{`), code: 400},
	})
	require.Equal(t, store.StageAssessing, e.view(t, id).Incident.Stage)

	// Good bodies go through: the cases failed for their own reason.
	e.must(t, http.StatusOK, "POST", inc+"/assessment", keyResponder, map[string]any{"reportable": true, "rationale": "exposed"})
	e.must(t, http.StatusOK, "POST", inc+"/scope", keyResponder, map[string]any{"tenant_ids": []string{"t-1"}})
}

// TestAPIKeyRoutesRejectBadInput covers creating and revoking keys.
func TestAPIKeyRoutesRejectBadInput(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{})
	e.refuse(t, "POST", "/v1/apikeys", []badInput{
		{name: "empty body", body: raw(""), code: 400},
		{name: "malformed", body: raw(`{"name":`), code: 400},
		{name: "oversized", body: oversized("name"), code: 413},
		{name: "unknown field", body: map[string]any{"name": "ci", "role": "responder", "scopes": []string{"all"}}, code: 400, field: "scopes"},
		{name: "name a number", body: map[string]any{"name": 7, "role": "responder"}, code: 400, field: "name"},
		{name: "name with a NUL", body: map[string]any{"name": "ci\u0000", "role": "responder"}, code: 400, field: "name"},
		{name: "name missing", body: map[string]any{"role": "responder"}, code: 400, field: "name"},
		{name: "name too long", body: map[string]any{"name": strings.Repeat("n", 101), "role": "responder"}, code: 400, field: "name"},
		{name: "name with a newline", body: map[string]any{"name": "ci\nadmin", "role": "responder"}, code: 400, field: "name"},
		{name: "name injection", body: map[string]any{"name": "'; DROP TABLE api_keys; --", "role": "responder"}, code: 400, field: "name"},
		{name: "role unknown", body: map[string]any{"name": "ci", "role": "root"}, code: 400, field: "role"},
		{name: "role upper case", body: map[string]any{"name": "ci", "role": "ADMIN"}, code: 400, field: "role"},
		{name: "partner without name", body: map[string]any{"name": "ci", "role": "partner:"}, code: 400, field: "role"},
		{name: "partner malformed", body: map[string]any{"name": "ci", "role": "partner:Device Care"}, code: 400, field: "role"},
	})
	e.refuse(t, "DELETE", "/v1/apikeys/abc", []badInput{{name: "id not a number", code: 400, field: "id"}})
	e.refuse(t, "DELETE", "/v1/apikeys/0", []badInput{{name: "id zero", code: 400, field: "id"}})
	e.refuse(t, "DELETE", "/v1/apikeys/-3", []badInput{{name: "id negative", code: 400, field: "id"}})
	e.refuse(t, "DELETE", "/v1/apikeys/999999", []badInput{{name: "unknown id", code: 404}})

	var out struct {
		Key    string
		APIKey store.APIKey `json:"api_key"`
	}
	e.must(t, http.StatusCreated, "POST", "/v1/apikeys", keyAdmin, map[string]string{"name": "ci", "role": "partner:devicecare"}).JSON(t, &out)
	require.Equal(t, []string{"partner:devicecare"}, out.APIKey.Roles)
	require.True(t, strings.HasPrefix(out.Key, out.APIKey.Prefix))
	require.Equal(t, 0, e.count(t, `SELECT count(*) FROM api_keys WHERE key_hash = $1::bytea AND id <> $2`, store.HashKey(out.Key), out.APIKey.ID))
	require.NotContains(t, e.logged(), out.Key)
}

// TestListIncidentsRejectsBadQueries covers the list's query parameters.
func TestListIncidentsRejectsBadQueries(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{})
	for q, field := range map[string]string{
		"stage=open": "stage", "stage=%27%3B+DROP+TABLE+incidents%3B+--": "stage",
		"limit=0": "limit", "limit=501": "limit", "limit=ten": "limit", "limit=-1": "limit",
		"before=yesterday": "before", "before=%27+OR+1%3D1": "before",
	} {
		r := e.do(t, "GET", "/v1/incidents?"+q, keyResponder, nil)
		require.Equal(t, http.StatusBadRequest, r.Code, "%s: %s", q, r.Body)
		require.Equal(t, field, r.Err(t).Field, q)
	}
	e.must(t, http.StatusOK, "GET", "/v1/incidents?stage=closed&limit=500&before=2030-01-01T00:00:00Z", keyResponder, nil)
}

// TestLedgerRoutesRejectBadQueries covers the query parameters of the scope diff and the
// tenant ledger: each bad one is 400 naming it, before anything is looked up.
func TestLedgerRoutesRejectBadQueries(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{})
	inc := "/v1/incidents/" + e.declare(t, declaration("Credential exposure", nil))
	cases := map[string]string{
		"/scope/diff":                             "from",
		"/scope/diff?limit=5":                     "from",
		"/scope/diff?from=0&to=1":                 "from",
		"/scope/diff?from=-1&to=1":                "from",
		"/scope/diff?from=one&to=1":               "from",
		"/scope/diff?from=1.5&to=1":               "from",
		"/scope/diff?from=%27%3B+DROP+TABLE&to=1": "from",
		"/scope/diff?from=1&to=0":                 "to",
		"/scope/diff?from=1&to=two":               "to",
		"/scope/diff?from=1&to=99999999999":       "to",
		"/scope/diff?from=1&to=2&limit=0":         "limit",
		"/scope/diff?from=1&to=2&limit=100001":    "limit",
		"/scope/diff?from=1&to=2&limit=all":       "limit",
		"/tenants?phase=0":                        "phase",
		"/tenants?phase=-1":                       "phase",
		"/tenants?phase=first":                    "phase",
		"/tenants?phase=1048577":                  "phase",
		"/tenants?phase=1%27+OR+1%3D1":            "phase",
		"/tenants?limit=0":                        "limit",
		"/tenants?limit=100001":                   "limit",
		"/tenants?open=true&limit=ten":            "limit",
	}
	for q, field := range cases {
		r := e.do(t, "GET", inc+q, keyResponder, nil)
		require.Equal(t, http.StatusBadRequest, r.Code, "%s: %s", q, r.Body)
		got := r.Err(t)
		require.Equal(t, "invalid", got.Code, q)
		require.Equal(t, field, got.Field, q)
		require.NotEmpty(t, got.Message, q)
	}
	// Good values go through: the cases failed for their own reason.
	e.must(t, http.StatusOK, "GET", inc+"/tenants?phase=1&open=true&limit=100000", keyResponder, nil)
	r := e.must(t, http.StatusNotFound, "GET", inc+"/scope/diff?from=1&to=2&limit=100000", keyResponder, nil)
	require.Equal(t, "not_found", r.Err(t).Code, "no scope version yet")
	require.NotContains(t, e.logged(), "request failed")
}

// hostile are strings that break code which builds SQL, HTML or shell lines by hand.
var hostile = []string{
	"'; DROP TABLE tenants; --",
	`Robert'); DROP TABLE incidents;--`,
	`" OR ""="`,
	`1; SELECT pg_sleep(10); --`,
	`\'; TRUNCATE audit_log; --`,
	`$$; DELETE FROM api_keys; $$`,
	`<script>alert(1)</script>`,
	"Ünïcødé ✓ 漢字 — 'quotes' \"double\" \\ backslash % _ wildcard",
}

// TestDeclarationStoresHostileTextVerbatim declares incidents whose every text field is
// an SQL injection attempt: each is stored as given and read back identical, and the
// tables are intact.
func TestDeclarationStoresHostileTextVerbatim(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{Tenants: 5, Contacts: 1, Worker: true})
	for i, s := range hostile {
		d := declaration(s, nil)
		d["summary"] = strings.Repeat(s+"\n", 3)
		d["data_categories"] = []string{s, "emails " + s}
		f := notice.Fields{Reference: "REF-1", Nature: s, DataSubjectCategories: []string{s}, ApproxDataSubjects: 1, ApproxRecords: 1,
			Contact: notice.ContactPoint{Name: s, Phone: "+1 555 0100"}, LikelyConsequences: s, MeasuresTaken: s, MeasuresProposed: s}
		d["notice"] = draftOf(t, f)
		// The notice states the declaration's title, time and categories, as declared.
		awareAt, err := time.Parse(time.RFC3339, d["aware_at"].(string))
		require.NoError(t, err)
		f.Title, f.AwareAt, f.DataCategories = s, awareAt.UTC(), d["data_categories"].([]string)
		n, err := json.Marshal(notice.Draft{Phase: notice.Phase{Number: 1, Kind: notice.PhaseInitial}, Fields: f,
			EnglishFallback: otherLocales(), Sender: notice.Sender{Organisation: api.DefaultSenderOrganisation}})
		require.NoError(t, err)
		var created struct{ Incident store.Incident }
		e.must(t, http.StatusCreated, "POST", "/v1/incidents", keyResponder, d, "Idempotency-Key", fmt.Sprintf("%d %s", i, s)).JSON(t, &created)
		got := e.view(t, created.Incident.ID).Incident
		require.Equal(t, s, got.Title)
		require.Equal(t, d["summary"], got.Summary)
		require.Equal(t, d["data_categories"], got.DataCategories)
		require.JSONEq(t, string(n), string(got.NoticeDraft))
		require.Equal(t, created.Incident.Title, got.Title)
		require.Equal(t, created.Incident.Summary, got.Summary)
		require.Equal(t, created.Incident.DataCategories, got.DataCategories)
		var listed struct{ Incidents []store.Incident }
		e.must(t, http.StatusOK, "GET", "/v1/incidents?limit=1", keyResponder, nil).JSON(t, &listed)
		require.Len(t, listed.Incidents, 1)
		require.Equal(t, got.ID, listed.Incidents[0].ID)
		require.Equal(t, s, listed.Incidents[0].Title)
		require.Equal(t, got.Summary, listed.Incidents[0].Summary)
		require.Equal(t, got.DataCategories, listed.Incidents[0].DataCategories)
		// The workflow took the declared notice (its hash covers the text as given).
		require.Len(t, e.waitFor(t, got.ID, "draft hashed", func(st workflows.Status) bool { return st.ContentHash != "" }).ContentHash, 64)
		// The same key and body is the same incident.
		e.must(t, http.StatusOK, "POST", "/v1/incidents", keyResponder, d, "Idempotency-Key", fmt.Sprintf("%d %s", i, s))
	}
	require.Equal(t, len(hostile), e.count(t, `SELECT count(*) FROM incidents`))
	require.Equal(t, 5, e.count(t, `SELECT count(*) FROM tenants`))
	require.Equal(t, 5, e.count(t, `SELECT count(*) FROM contacts`))
	require.Equal(t, len(e.keys), e.count(t, `SELECT count(*) FROM api_keys`))
	rep, err := e.st.VerifyAudit(context.Background())
	require.NoError(t, err)
	require.True(t, rep.OK, rep.Problem)
	// The path is not a way in either.
	e.must(t, http.StatusNotFound, "GET", "/v1/incidents/%27%20OR%20%271%27%3D%271", keyResponder, nil)
}

// TestDeclarationIdempotencyKey: the same key and body return the same incident (201,
// then 200) and one workflow; the same key with another body is a conflict.
func TestDeclarationIdempotencyKey(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{})
	d := declaration("Credential exposure", nil)
	var first, again struct{ Incident store.Incident }
	e.must(t, http.StatusCreated, "POST", "/v1/incidents", keyResponder, d, "Idempotency-Key", "decl-1").JSON(t, &first)
	desc, err := e.tc.DescribeWorkflowExecution(context.Background(), workflows.IncidentWorkflowID(first.Incident.ID), "")
	require.NoError(t, err)
	runID := desc.WorkflowExecutionInfo.Execution.RunId
	for range 2 {
		e.must(t, http.StatusOK, "POST", "/v1/incidents", keyApprover, d, "Idempotency-Key", "decl-1").JSON(t, &again)
		require.Equal(t, first.Incident, again.Incident)
	}
	before := e.writes(t)
	r := e.must(t, http.StatusConflict, "POST", "/v1/incidents", keyResponder, with(d, "severity", "critical"), "Idempotency-Key", "decl-1")
	require.Equal(t, "conflict", r.Err(t).Code)
	require.Contains(t, r.Err(t).Message, first.Incident.ID)
	require.Equal(t, before, e.writes(t))

	require.Equal(t, 1, e.count(t, `SELECT count(*) FROM incidents`))
	require.Equal(t, 1, e.count(t, `SELECT count(*) FROM audit_log WHERE action = 'incident.declared'`))
	desc, err = e.tc.DescribeWorkflowExecution(context.Background(), workflows.IncidentWorkflowID(first.Incident.ID), "")
	require.NoError(t, err)
	require.Equal(t, runID, desc.WorkflowExecutionInfo.Execution.RunId, "one workflow run")

	// Without a key, the same body declares a second incident.
	e.must(t, http.StatusCreated, "POST", "/v1/incidents", keyResponder, d)
	require.Equal(t, 2, e.count(t, `SELECT count(*) FROM incidents`))
}

// TestIncidentPathsThatCannotExist: an incident id in the path holding NUL, invalid UTF-8
// or SQL is an incident that does not exist (404), never a failed query (500).
func TestIncidentPathsThatCannotExist(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{})
	bodies := map[string]any{
		"":            nil,
		"/assessment": map[string]any{"reportable": true, "rationale": "x"},
		"/scope":      map[string]any{"services": []string{"compute"}},
		"/draft":      draftJSON(t, "x"),
		"/approval":   map[string]string{"content_hash": strings.Repeat("0", 64)},
		"/override":   map[string]string{"justification": "x"},
		"/followup":   map[string]any{"kind": "update", "notice": followupJSON(t, "More is known.")},
		"/close":      map[string]string{"reason": "x"},
	}
	before := e.writes(t)
	for _, id := range []string{"%00", "INC-%00", "%ff%fe", "%c3%28", "inc-20260101-abcdef", "INC-1",
		"%27%20OR%20%271%27%3D%271", "INC-20260101-NOSUCH"} {
		for suffix, body := range bodies {
			method := "POST"
			if suffix == "" {
				method = "GET"
			}
			r := e.do(t, method, "/v1/incidents/"+id+suffix, keyApprover, body)
			require.Equal(t, http.StatusNotFound, r.Code, "%s %s%s: %s", method, id, suffix, r.Body)
			require.Equal(t, "not_found", r.Err(t).Code)
		}
	}
	require.Equal(t, before, e.writes(t))
	require.NotContains(t, e.logged(), "request failed")
}

// spliced is body as JSON with the placeholder string "@@" replaced by text as is: the
// way to send bytes (invalid UTF-8, a raw \u escape) that json.Marshal would not write.
func spliced(t *testing.T, body any, text string) raw {
	t.Helper()
	data, err := json.Marshal(body)
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(string(data), "@@"), "%s", data)
	return raw(strings.Replace(string(data), "@@", text, 1))
}

// TestBodiesRefuseInvalidUTF8: text that is not valid UTF-8 — raw bytes or an escaped
// unpaired surrogate, in a value, a key or between values — is refused with 400 naming
// its field before anything is decoded, on every kind of route (a declaration, an
// assessment, a draft taken as raw JSON, scope criteria), and nothing is written; valid
// multi-byte text and surrogate pairs are stored as sent.
func TestBodiesRefuseInvalidUTF8(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{Worker: true, Tenants: 3})
	id := e.declare(t, declaration("Credential exposure", nil))
	e.waitStage(t, id, workflows.StageAssessing)
	inc := "/v1/incidents/" + id
	const bytesFF, lone, loneLow = "Leak \xff\xfe", `Leak \ud800`, `\udc00 leak`
	badUTF8 := func(name string, body raw, field string) badInput {
		return badInput{name: name, body: body, code: 400, field: field, says: "not valid UTF-8"}
	}

	ok := declaration("Credential exposure", nil)
	e.refuse(t, "POST", "/v1/incidents", []badInput{
		badUTF8("title with bytes FF FE", spliced(t, with(ok, "title", "@@"), bytesFF), "title"),
		badUTF8("title with a lone surrogate escape", spliced(t, with(ok, "title", "@@"), lone), "title"),
		badUTF8("title with a lone low surrogate", spliced(t, with(ok, "title", "@@"), loneLow), "title"),
		badUTF8("title with a surrogate encoded as bytes", spliced(t, with(ok, "title", "@@"), "\xed\xa0\x80"), "title"),
		badUTF8("summary truncated mid-character", spliced(t, with(ok, "summary", "@@"), "caf\xc3"), "summary"),
		badUTF8("category", spliced(t, with(ok, "data_categories", []string{"emails", "@@"}), "\xff"), "data_categories"),
		badUTF8("scope criteria", spliced(t, with(ok, "scope", map[string]any{"services": []string{"compute", "@@"}}), `\udfff`), "scope.services"),
		badUTF8("notice title", spliced(t, with(ok, "notice", draftJSON(t, "@@")), bytesFF), "notice.fields.title"),
		badUTF8("notice title escaped", spliced(t, with(ok, "notice", draftJSON(t, "@@")), lone), "notice.fields.title"),
		badUTF8("a key", spliced(t, with(ok, "@@", "x"), "ti\xfftle"), ""),
		badUTF8("a scope key", spliced(t, with(ok, "scope", map[string]any{"@@": []string{"compute"}}), `serv\ud800`), "scope"),
		badUTF8("outside strings", spliced(t, with(ok, "title", "@@"), "\"x\" \xff"), "title"),
	})
	require.Equal(t, 1, e.count(t, `SELECT count(*) FROM incidents`))

	e.refuse(t, "POST", inc+"/assessment", []badInput{
		badUTF8("rationale with bytes", spliced(t, map[string]any{"reportable": true, "rationale": "@@"}, bytesFF), "rationale"),
		badUTF8("rationale with a lone surrogate", spliced(t, map[string]any{"reportable": true, "rationale": "@@"}, lone), "rationale"),
	})
	// A draft is decoded into json.RawMessage: the check runs on the raw bytes all the same.
	e.refuse(t, "POST", inc+"/draft", []badInput{
		badUTF8("draft title with bytes", spliced(t, json.RawMessage(draftJSON(t, "@@")), bytesFF), "fields.title"),
		badUTF8("draft title with a lone surrogate", spliced(t, json.RawMessage(draftJSON(t, "@@")), lone), "fields.title"),
		badUTF8("draft subject template", spliced(t, notice.Draft{Fields: notice.Fields{Title: "x"},
			Templates: map[string]notice.Template{"en": {Subject: "@@"}}}, "\xc0\xaf"), "templates.en.subject"),
	})
	e.refuse(t, "POST", inc+"/scope", []badInput{
		badUTF8("service with bytes", spliced(t, map[string]any{"services": []string{"@@"}}, "\xff"), "services"),
		badUTF8("tenant id with a lone surrogate", spliced(t, map[string]any{"tenant_ids": []string{"t-1", "@@"}}, `t-\ud83d`), "tenant_ids"),
	})
	e.refuse(t, "POST", inc+"/close", []badInput{
		badUTF8("reason", spliced(t, map[string]any{"reason": "@@"}, `\ude00`), "reason"),
	})
	v := e.view(t, id)
	require.Equal(t, store.StageAssessing, v.Incident.Stage)
	require.Empty(t, v.Incident.Rationale)

	// Valid text goes through and is stored as sent: multi-byte characters, a surrogate
	// pair escape, and U+FFFD itself when it is what the client means.
	var created struct{ Incident store.Incident }
	e.must(t, http.StatusCreated, "POST", "/v1/incidents", keyResponder,
		spliced(t, with(ok, "title", "@@"), `Leak ✓ 漢字 😀 \ud83d\ude00 \ufffd`)).JSON(t, &created)
	require.Equal(t, "Leak ✓ 漢字 😀 😀 \uFFFD", e.view(t, created.Incident.ID).Incident.Title)
	e.must(t, http.StatusOK, "POST", inc+"/assessment", keyResponder,
		spliced(t, map[string]any{"reportable": true, "rationale": "@@"}, `exposed \ud83d\udd12`))
	require.Equal(t, "exposed 🔒", e.view(t, id).Incident.Rationale)
}
