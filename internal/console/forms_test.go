package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/store"
)

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// browser is a cookie-keeping HTTP client signed in to the console.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func (s *stack) browser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &browser{t: t, base: s.url, c: &http.Client{Jar: jar, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	resp, err := b.c.Get(b.base + path)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	return resp.StatusCode, string(raw)
}

func (b *browser) post(path string, form url.Values) (int, string) {
	b.t.Helper()
	resp, err := b.c.PostForm(b.base+path, form)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	return resp.StatusCode, string(raw)
}

// csrf reads the form token from a page.
func (b *browser) csrf(path string) string {
	b.t.Helper()
	_, body := b.get(path)
	m := csrfRe.FindStringSubmatch(body)
	require.NotNil(b.t, m, "no csrf token on %s", path)
	return m[1]
}

func (b *browser) signIn(key string) {
	b.t.Helper()
	tok := b.csrf("/console/login")
	code, _ := b.post("/console/login", url.Values{"csrf": {tok}, "key": {key}})
	require.Equal(b.t, http.StatusSeeOther, code)
}

func counts(t *testing.T, s *stack) (incidents, audit int) {
	t.Helper()
	require.NoError(t, s.st.Pool().QueryRow(context.Background(), `SELECT (SELECT count(*) FROM incidents), (SELECT count(*) FROM audit_log)`).Scan(&incidents, &audit))
	return incidents, audit
}

func validDeclaration(tok string) url.Values {
	return url.Values{"csrf": {tok}, "title": {"Leak"}, "severity": {"high"}, "aware_at": {time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)},
		"data_categories": {"names"}, "nature": {"n"}, "subjects": {"staff"}, "approx_subjects": {"10"}, "approx_records": {"20"},
		"contact_name": {"DPO"}, "contact_email": {"dpo@provider.example"}, "consequences": {"c"}, "measures_taken": {"m"}, "measures_proposed": {"p"},
		"english_fallback": {"de", "es", "fr", "it"}}
}

func TestCSRFIsRequired(t *testing.T) {
	s := newStack(t, 5)
	b := s.browser(t)
	// Signing in needs the token of the sign-in page too.
	code, _ := b.post("/console/login", url.Values{"key": {s.keys["rita"]}})
	require.Equal(t, http.StatusForbidden, code)
	b.signIn(s.keys["rita"])
	i0, _ := counts(t, s)
	for _, tok := range []string{"", "forged"} {
		form := validDeclaration(tok)
		code, body := b.post("/console/declare", form)
		require.Equal(t, http.StatusForbidden, code, body)
		require.Contains(t, body, "CSRF")
	}
	i1, _ := counts(t, s)
	require.Equal(t, i0, i1, "nothing written")
	// With the token it works.
	code, _ = b.post("/console/declare", validDeclaration(b.csrf("/console/declare")))
	require.Equal(t, http.StatusSeeOther, code)
	i2, _ := counts(t, s)
	require.Equal(t, i0+1, i2)

	// The follow-up form too needs the session's token.
	var id string
	require.NoError(t, s.st.Pool().QueryRow(context.Background(), `SELECT id FROM incidents`).Scan(&id))
	drafts := func() (n int) {
		require.NoError(t, s.st.Pool().QueryRow(context.Background(), `SELECT count(*) FROM notice_drafts`).Scan(&n))
		return n
	}
	d0 := drafts()
	for _, tok := range []string{"", "forged"} {
		code, body := b.post("/console/incidents/"+id+"/followup", url.Values{"csrf": {tok}, "kind": {"update"},
			"notice": {string(followupDraft(t, "More is known."))}})
		require.Equal(t, http.StatusForbidden, code, body)
		require.Contains(t, body, "CSRF")
	}
	require.Equal(t, d0, drafts(), "nothing written")
}

func TestCookieCannotActBeyondItsRole(t *testing.T) {
	s := newStack(t, 5)
	ctx := context.Background()
	inc, _, err := s.st.CreateIncident(ctx, "", store.Declaration{Title: "x", Severity: "low", AwareAt: time.Now().Add(-time.Hour)}, "setup", time.Now())
	require.NoError(t, err)

	partner := s.browser(t)
	partner.signIn(s.keys["dc"])
	tok := partner.csrf("/console/partner")
	_, a0 := counts(t, s)
	for _, path := range []string{"/console/incidents/" + inc.ID + "/approve", "/console/incidents/" + inc.ID + "/close", "/console/declare",
		"/console/incidents/" + inc.ID + "/followup", "/console/incidents/" + inc.ID + "/draft"} {
		code, body := partner.post(path, url.Values{"csrf": {tok}, "content_hash": {strings.Repeat("a", 64)}, "reason": {"r"},
			"kind": {"update"}, "notice": {"{}"}, "draft": {"{}"}})
		require.Equal(t, http.StatusForbidden, code, path)
		require.Contains(t, body, "may not do that")
	}
	code, _ := partner.get("/console/incidents/" + inc.ID)
	require.Equal(t, http.StatusForbidden, code)
	code, _ = partner.get("/console/incidents/" + inc.ID + "/preview?tenant=t-1")
	require.Equal(t, http.StatusForbidden, code, "the tenant preview is for those who may read the incident")

	responder := s.browser(t)
	responder.signIn(s.keys["rita"])
	tok = responder.csrf("/console/")
	code, _ = responder.post("/console/incidents/"+inc.ID+"/approve", url.Values{"csrf": {tok}, "content_hash": {strings.Repeat("a", 64)}})
	require.Equal(t, http.StatusForbidden, code, "a responder is not an approver")
	code, _ = responder.post("/console/partner/reviews/1/decision", url.Values{"csrf": {tok}, "decision": {"confirm"}})
	require.Equal(t, http.StatusForbidden, code)

	// A token from one session does not work in another.
	code, _ = partner.post("/console/incidents/"+inc.ID+"/close", url.Values{"csrf": {tok}, "reason": {"r"}})
	require.Equal(t, http.StatusForbidden, code)

	var approvals int
	require.NoError(t, s.st.Pool().QueryRow(ctx, `SELECT count(*) FROM approvals`).Scan(&approvals))
	require.Zero(t, approvals)
	_, a1 := counts(t, s)
	require.Greater(t, a1, a0, "refusals are audited")

	// A revoked key's session ends.
	keys, err := s.st.ListAPIKeys(ctx)
	require.NoError(t, err)
	for _, k := range keys {
		if k.Name == "rita" {
			require.NoError(t, s.st.RevokeAPIKey(ctx, k.ID, "test"))
		}
	}
	code, _ = responder.get("/console/")
	require.Equal(t, http.StatusSeeOther, code)
}

func TestFormsRejectBadInputVisiblyAndWriteNothing(t *testing.T) {
	s := newStack(t, 5)
	b := s.browser(t)
	b.signIn(s.keys["rita"])
	tok := b.csrf("/console/declare")
	_, page0 := b.get("/console/declare")
	require.Contains(t, page0, `id="declare-submit"`, "the empty form renders whole")
	require.NotContains(t, elementRe("fallback-it").FindString(page0), " checked", "no locale is sent the English text unless ticked")

	bad := []struct {
		name, field, value, want string
	}{
		{"no title", "title", "", "title"},
		{"bad time", "aware_at", "30/11/2026", "aware_at"},
		{"future time", "aware_at", time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339), "future"},
		{"bad severity", "severity", "apocalyptic", "severity"},
		{"negative count", "approx_records", "-4", "approx_records"},
		{"missing nature", "nature", "", "nature"},
		{"missing consequences", "consequences", "", "likely_consequences"},
	}
	i0, a0 := counts(t, s)
	for _, tc := range bad {
		form := validDeclaration(tok)
		form.Set(tc.field, tc.value)
		code, body := b.post("/console/declare", form)
		require.Equal(t, http.StatusBadRequest, code, tc.name)
		require.Contains(t, body, `id="flash"`, tc.name)
		require.Contains(t, body, tc.want, tc.name)
		require.Contains(t, body, `value="`+form.Get("data_categories")+`"`, "the form keeps what was typed")
		for _, loc := range []string{"de", "es", "fr", "it"} {
			require.Contains(t, elementRe("fallback-"+loc).FindString(body), " checked", "%s: the ticked locales stay ticked", tc.name)
		}
	}
	i1, a1 := counts(t, s)
	require.Equal(t, i0, i1)
	require.Equal(t, a0, a1)

	code, _ := b.post("/console/declare", validDeclaration(tok))
	require.Equal(t, http.StatusSeeOther, code)
	var id string
	require.NoError(t, s.st.Pool().QueryRow(context.Background(), `SELECT id FROM incidents`).Scan(&id))
	// The workflow may still be starting; the forms below must be refused either way.
	page := "/console/incidents/" + id
	require.Eventually(t, func() bool { c, body := b.get(page); return c == 200 && strings.Contains(body, "assessing") }, 30*time.Second, 100*time.Millisecond)
	tok = b.csrf(page)
	_, a2 := counts(t, s)
	forms := []struct {
		action string
		form   url.Values
		code   int
		want   string
	}{
		{"assess", url.Values{"rationale": {"r"}}, 400, "reportable"},
		{"assess", url.Values{"reportable": {"true"}}, 422, "rationale"},
		{"scope", url.Values{"countries": {"Germany"}}, 400, "scope.countries"},
		{"scope", url.Values{}, 400, "no criteria"},
		{"draft", url.Values{"draft": {"{not json"}}, 400, "not valid JSON"},
		{"draft", url.Values{"draft": {`{"fields":{"title":"Leak"}}`}}, 400, "nature"},
		{"draft", url.Values{"draft": {"fields:\n  title: Another title\n"}}, 400, `notice.fields.title: the notice states the incident&#39;s title from its declaration`},
		{"draft", url.Values{"draft": {""}}, 400, "draft: required"},
		{"override", url.Values{"justification": {"partner unreachable"}}, 422, "no partner review is pending"},
		{"close", url.Values{"reason": {""}}, 422, "reason"},
		{"followup", url.Values{"kind": {"update"}, "notice": {string(followupDraft(t, "More is known."))}}, 400, "the initial notice is not approved yet"},
		{"followup", url.Values{"kind": {"sequel"}, "notice": {string(followupDraft(t, "More is known."))}}, 400, "kind: choose an update or the final notice"},
		{"followup", url.Values{"kind": {"update"}, "notice": {"{not json"}}, 400, "notice: not valid JSON"},
		{"followup", url.Values{"kind": {"final"}}, 400, "notice: required"},
		{"retry", url.Values{}, 422, "not allowed in stage"},
	}
	for _, f := range forms {
		f.form.Set("csrf", tok)
		code, body := b.post(page+"/"+f.action, f.form)
		require.Equal(t, f.code, code, "%s %v: %s", f.action, f.form, flashOf(body))
		require.Contains(t, flashOf(body), f.want, f.action)
	}
	_, a3 := counts(t, s)
	require.Equal(t, a2, a3, "refused forms write nothing")
	var drafts int
	require.NoError(t, s.st.Pool().QueryRow(context.Background(), `SELECT count(*) FROM notice_drafts WHERE incident_id = $1`, id).Scan(&drafts))
	require.Equal(t, 1, drafts, "only the declared draft is kept")

	// The tenant preview form asks for a tenant that exists.
	for _, c := range []struct{ query, want string }{
		{"", "tenant: required"},
		{"?tenant=t-nosuch", `tenant: no tenant &#34;t-nosuch&#34;`},
		{"?tenant=%27%3B+DROP+TABLE+tenants", "tenant: no tenant"},
	} {
		code, body := b.get(page + "/preview" + c.query)
		require.Equal(t, http.StatusBadRequest, code, c.query)
		require.Contains(t, flashOf(body), c.want, c.query)
		require.NotContains(t, body, `id="tenant-preview"`, c.query)
	}

	// Before any scope version there is no evidence to export.
	code, body := b.get(page + "/tenants.csv")
	require.Equal(t, http.StatusConflict, code)
	require.Contains(t, flashOf(body), "No scope yet")
	require.Contains(t, body, `id="no-scope"`)
}

var flashRe = regexp.MustCompile(`(?s)id="flash">(.*?)</div>`)

func flashOf(body string) string {
	if m := flashRe.FindStringSubmatch(body); m != nil {
		return m[1]
	}
	return ""
}
