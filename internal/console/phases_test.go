package console_test

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/workflows"
)

// followupDraft is the next phase's draft of a test incident: the test notice's facts
// without the title and categories (the declaration's), saying what is new.
func followupDraft(t *testing.T, whatsNew string) json.RawMessage {
	t.Helper()
	f := noticeFields("")
	f.DataCategories, f.WhatsNew = nil, whatsNew
	return draftJSON(t, f)
}

// asYAML is a JSON document as YAML, as a person would type it.
func asYAML(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	out, err := yaml.JSONToYAML(raw)
	require.NoError(t, err)
	return string(out)
}

// italianTenant makes tenant read Italian and returns its name and services.
func (s *stack) italianTenant(t *testing.T, tenant string) (string, []string) {
	t.Helper()
	ctx := context.Background()
	var name string
	var services []string
	require.NoError(t, s.st.Pool().QueryRow(ctx, `SELECT name, services FROM tenants WHERE id = $1`, tenant).Scan(&name, &services))
	require.NotEmpty(t, services)
	_, err := s.st.Pool().Exec(ctx, `UPDATE tenants SET locale = 'it-IT' WHERE id = $1`, tenant)
	require.NoError(t, err)
	_, err = s.st.Pool().Exec(ctx, `UPDATE contacts SET locale = NULL WHERE tenant_id = $1`, tenant)
	require.NoError(t, err)
	return name, services
}

// tenantIDs returns the first n tenant ids in order.
func (s *stack) tenantIDs(t *testing.T, n int) []string {
	t.Helper()
	rows, err := s.st.Pool().Query(context.Background(), `SELECT id FROM tenants ORDER BY id LIMIT $1`, n)
	require.NoError(t, err)
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		ids = append(ids, id)
	}
	require.NoError(t, rows.Err())
	require.Len(t, ids, n)
	return ids
}

// declareScoped declares an incident through the API with draft as its notice, assesses
// it and scopes it by crit, and returns its id once the workflow has the draft and scope.
func (s *stack) declareScoped(t *testing.T, title string, draft json.RawMessage, crit store.ScopeCriteria) string {
	t.Helper()
	var declared struct{ Incident store.Incident }
	s.call(t, http.StatusCreated, "POST", "/v1/incidents", "rita", map[string]any{
		"title": title, "summary": "Leaked service credential.", "severity": "high",
		"aware_at": time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339), "data_categories": []string{"device identifiers"},
		"notice": draft}, &declared)
	id := declared.Incident.ID
	s.call(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/assessment", "rita", map[string]any{"reportable": true, "rationale": "users affected"}, nil)
	s.call(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/scope", "rita", crit, nil)
	s.waitStatus(t, id, func(st workflows.Status) bool { return st.ContentHash != "" && st.Scope.Version > 0 })
	return id
}

// TestIncidentPageShowsPhaseSenderTranslationsAndReach: the notice section names the
// draft's phase and sender, warns — before anyone tries — that approval will be refused
// while locales have no text, and counts the tenants in scope no notice can reach.
func TestIncidentPageShowsPhaseSenderTranslationsAndReach(t *testing.T) {
	s := newStack(t, 6)
	ctx := context.Background()
	bare, err := json.Marshal(notice.Draft{Fields: noticeFields("Device database exposure")})
	require.NoError(t, err)
	ids := s.tenantIDs(t, 6)
	id := s.declareScoped(t, "Device database exposure", bare, store.ScopeCriteria{TenantIDs: ids[:4]})
	_, err = s.st.Pool().Exec(ctx, `UPDATE contacts SET undeliverable_at = now(), undeliverable_reason = 'bounced' WHERE tenant_id = $1`, ids[2])
	require.NoError(t, err)

	alice := s.browser(t)
	alice.signIn(s.keys["alice"])
	page := "/console/incidents/" + id
	code, body := alice.get(page)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "Initial notification", textByID(body, "notice-phase-label"))
	require.Equal(t, "1", textByID(body, "notice-phase-number"))
	require.Equal(t, notice.PhaseInitial, textByID(body, "notice-phase-kind"))
	require.Equal(t, api.DefaultSenderOrganisation, textByID(body, "notice-organisation"))
	require.Equal(t, "the From address", textByID(body, "notice-reply-to"))
	require.Equal(t, "de, es, fr, it", textByID(body, "untranslated-locales"))
	require.Contains(t, body, "approval will be refused until each of these locales has a translation")
	require.Contains(t, elementRe("notice-untranslated").FindString(body), `role="alert"`)
	require.NotEmpty(t, elementRe("approve-untranslated").FindString(body), "the approve form says so too")
	require.Equal(t, "1", textByID(body, "reach-count"))
	require.Equal(t, ids[2], textByID(body, "reach-sample"))
	require.Contains(t, body, "with no deliverable contact, whom no notice can reach")

	// The approval is refused as the warning said, and nothing is recorded.
	code, body = alice.post(page+"/approve", url.Values{"csrf": {csrfRe.FindStringSubmatch(body)[1]}, "content_hash": {textByID(body, "notice-hash")}})
	require.Equal(t, http.StatusUnprocessableEntity, code)
	require.Contains(t, flashOf(body), "the draft has no text in de, es, fr, it")
	var approvals int
	require.NoError(t, s.st.Pool().QueryRow(ctx, `SELECT count(*) FROM approvals WHERE incident_id = $1`, id).Scan(&approvals))
	require.Zero(t, approvals)

	// A draft typed as YAML, with a sender of its own and the English text by choice.
	var d notice.Draft
	require.NoError(t, json.Unmarshal(draftJSON(t, noticeFields("Device database exposure")), &d))
	d.Sender = notice.Sender{Organisation: "Example Cloud GmbH", ReplyTo: "privacy@provider.example"}
	raw, err := json.Marshal(d)
	require.NoError(t, err)
	rita := s.browser(t)
	rita.signIn(s.keys["rita"])
	code, body = rita.post(page+"/draft", url.Values{"csrf": {rita.csrf(page)}, "draft": {asYAML(t, raw)}})
	require.Equal(t, http.StatusSeeOther, code, flashOf(body))
	_, body = alice.get(page)
	require.Equal(t, "Example Cloud GmbH", textByID(body, "notice-organisation"))
	require.Equal(t, "privacy@provider.example", textByID(body, "notice-reply-to"))
	require.Equal(t, "de, es, fr, it", textByID(body, "notice-fallback"))
	require.Empty(t, elementRe("notice-untranslated").FindString(body))
	require.Empty(t, elementRe("approve-untranslated").FindString(body))
}

// TestTenantPreviewPage: the preview form shows one tenant's notice exactly as the API
// renders it for that tenant — its locale, name, facts and deadline — with the HTML part
// only in a sandboxed iframe, and says when the scope leaves the tenant out.
func TestTenantPreviewPage(t *testing.T) {
	s := newStack(t, 6)
	ids := s.tenantIDs(t, 6)
	tenant, excluded := ids[0], ids[1]
	name, services := s.italianTenant(t, tenant)
	id := s.declareScoped(t, "Device database exposure", draftJSON(t, noticeFields("Device database exposure")),
		store.ScopeCriteria{Services: services[:1], Exclude: []string{excluded}})
	s.call(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/impact", "rita",
		map[string]any{"tenants": []map[string]any{{"tenant_id": tenant, "approx_data_subjects": 37, "approx_records": 1234}}}, nil)
	var p api.NoticePreview
	s.call(t, http.StatusOK, "GET", "/v1/incidents/"+id+"/notice?tenant="+tenant, "rita", nil, &p)
	require.NotNil(t, p.Tenant)

	rita := s.browser(t)
	rita.signIn(s.keys["rita"])
	_, body := rita.get("/console/incidents/" + id)
	require.Contains(t, elementRe("preview").FindString(body), `method="get"`, "the preview form only reads")
	require.Equal(t, "/console/incidents/"+id+"/preview", attrByID(body, "preview", "action"))

	code, body := rita.get("/console/incidents/" + id + "/preview?tenant=" + tenant)
	require.Equal(t, http.StatusOK, code, flashOf(body))
	require.Equal(t, html.EscapeString(name), textByID(body, "tenant-name"))
	require.Equal(t, tenant, attrByID(body, "preview-tenant", "value"))
	require.NotEmpty(t, elementRe("in-scope").FindString(body))
	require.Equal(t, services[0], textByID(body, "facts-services"))
	require.Equal(t, "about 37", textByID(body, "facts-subjects"))
	require.Equal(t, "about 1234", textByID(body, "facts-records"))
	require.Equal(t, "it", textByID(body, "tenant-locale"))
	require.Equal(t, p.Tenant.Notice.Subject, html.UnescapeString(textByID(body, "tenant-subject")))
	require.Contains(t, p.Tenant.Notice.Subject, "Notifica di violazione dei dati personali")
	text := preByID(t, body, "tenant-text")
	require.Equal(t, p.Tenant.Notice.Text, text, "the text part as the API renders it for the tenant")
	for _, want := range []string{"NOTIFICA DI VIOLAZIONE DEI DATI PERSONALI", "Perché la vostra organizzazione è interessata", name, "1.234"} {
		require.Contains(t, text, want)
	}
	m := iframeRe("tenant-html").FindStringSubmatch(body)
	require.NotNil(t, m, "the HTML part is drawn in a sandboxed iframe")
	require.Equal(t, p.Tenant.Notice.HTML, html.UnescapeString(m[1]))
	require.NotContains(t, m[1], "<")
	require.NotContains(t, body, "allow-scripts")
	require.NotContains(t, body, "<h1 style=", "the notice's HTML never reaches the console page as markup")
	src := sourceRe("tenant-html-source").FindStringSubmatch(body)
	require.NotNil(t, src)
	require.Equal(t, p.Tenant.Notice.HTML, html.UnescapeString(src[1]))

	code, body = rita.get("/console/incidents/" + id + "/preview?tenant=" + excluded)
	require.Equal(t, http.StatusOK, code)
	require.NotEmpty(t, elementRe("not-in-scope").FindString(body))
	require.Empty(t, elementRe("in-scope").FindString(body))
}

// TestFollowupThroughTheConsole: once the initial notice is approved, the follow-up form
// proposes phase 2's draft (typed as YAML), two approvers approve it with the approve
// form and every tenant is sent it; a final phase follows, and after it the form is
// refused with the reason.
func TestFollowupThroughTheConsole(t *testing.T) {
	s := newStack(t, 4)
	s.api.Limits = nil // six sign-ins from one address: the limits are tested elsewhere
	page := s.releaseToAll(t)
	rita := s.browser(t)
	rita.signIn(s.keys["rita"])
	_, body := rita.get(page)
	require.Equal(t, "1", textByID(body, "approved-phase"))
	start := html.UnescapeString(textareaByID(t, body, "followup-notice"))
	var prefill map[string]any
	require.NoError(t, json.Unmarshal([]byte(start), &prefill), "the form starts from the current draft")
	require.NotContains(t, prefill, "phase", "the service sets the next phase")

	const whatsNew = "The credential was also used against the backup service."
	code, body := rita.post(page+"/followup", url.Values{"csrf": {rita.csrf(page)}, "kind": {notice.PhaseUpdate},
		"notice": {asYAML(t, followupDraft(t, whatsNew))}})
	require.Equal(t, http.StatusSeeOther, code, flashOf(body))
	_, body = rita.get(page + "?ok=followup")
	require.Contains(t, flashOf(body), "Done: follow-up drafted")
	require.Equal(t, "2", textByID(body, "draft-phase"))
	require.Equal(t, "Update 2", textByID(body, "notice-phase-label"))
	require.Equal(t, notice.PhaseUpdate, textByID(body, "notice-phase-kind"))
	require.Contains(t, preByID(t, body, "text-en"), whatsNew)

	approvers := []*browser{s.browser(t), s.browser(t)}
	approvers[0].signIn(s.keys["alice"])
	approvers[1].signIn(s.keys["bob"])
	approve := func() {
		t.Helper()
		for i, b := range approvers {
			who := []string{"alice", "bob"}[i]
			_, body := b.get(page)
			code, body := b.post(page+"/approve", url.Values{"csrf": {csrfRe.FindStringSubmatch(body)[1]}, "content_hash": {approveHash(t, body)}})
			require.Equal(t, http.StatusSeeOther, code, "approve %s: %s", who, flashOf(body))
		}
	}
	approve()
	body = rita.waitPage(page, func(body string) bool {
		return textByID(body, "approved-phase") == "2" && textByID(body, "notified-2") == "4"
	})
	require.NotEmpty(t, elementRe("phase-2").FindString(body), "phase 2's progress table")

	code, body = rita.post(page+"/followup", url.Values{"csrf": {rita.csrf(page)}, "kind": {notice.PhaseFinal},
		"notice": {string(followupDraft(t, "The investigation is complete."))}})
	require.Equal(t, http.StatusSeeOther, code, flashOf(body))
	_, body = rita.get(page)
	require.Equal(t, "3", textByID(body, "draft-phase"))
	require.Equal(t, notice.PhaseFinal, textByID(body, "notice-phase-kind"))
	approve()
	rita.waitPage(page, func(body string) bool { return textByID(body, "approved-phase") == "3" })
	code, body = rita.post(page+"/followup", url.Values{"csrf": {rita.csrf(page)}, "kind": {notice.PhaseUpdate},
		"notice": {string(followupDraft(t, "Even more."))}})
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, flashOf(body), "phase 3 was the final notice; no phase follows it")
}

// textareaByID is the raw content of the textarea with id.
func textareaByID(t *testing.T, body, id string) string {
	t.Helper()
	i := strings.Index(body, `id="`+id+`"`)
	require.GreaterOrEqual(t, i, 0, "no element %s", id)
	rest := body[i:]
	start := strings.IndexByte(rest, '>')
	end := strings.Index(rest, "</textarea>")
	require.True(t, start >= 0 && end > start, "no textarea %s", id)
	return rest[start+1 : end]
}

// approveHash is the content hash the page's approve form posts.
func approveHash(t *testing.T, body string) string {
	t.Helper()
	const attr = `name="content_hash" value="`
	i := strings.Index(body, attr)
	require.GreaterOrEqual(t, i, 0, "no approve form")
	return body[i+len(attr) : i+len(attr)+64]
}
