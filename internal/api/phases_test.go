package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/mail/sink"
	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/workflows"
)

// Italian free text of the test drafts: what an Italian tenant reads instead of the English.
const (
	itNature   = "Accesso non autorizzato a un database di gestione dei dispositivi tramite una credenziale di servizio trapelata."
	itWhatsNew = "La credenziale è stata usata anche contro il servizio di backup."
)

// italian is d with an Italian translation of its free text; the other locales other than
// English read the English text by choice.
func italian(t *testing.T, raw json.RawMessage, title string) json.RawMessage {
	t.Helper()
	var d notice.Draft
	require.NoError(t, json.Unmarshal(raw, &d))
	tr := notice.Translation{Title: title, Nature: itNature, DataCategories: []string{"identificativi dei dispositivi"},
		DataSubjectCategories: []string{"dipendenti del tenant"}, LikelyConsequences: "È possibile un phishing mirato contro gli utenti interessati.",
		MeasuresTaken:    "La credenziale è stata revocata e i log di accesso sono stati esaminati.",
		MeasuresProposed: "Ruotare i token di registrazione dei dispositivi; vigilare sul phishing."}
	if d.Fields.WhatsNew != "" {
		tr.WhatsNew = itWhatsNew
	}
	d.Translations = map[string]notice.Translation{"it": tr}
	d.EnglishFallback = []string{"de", "es", "fr"}
	out, err := json.Marshal(d)
	require.NoError(t, err)
	return out
}

// drafts counts the drafts kept for incident id.
func (e *apiEnv) drafts(t *testing.T, id string) int {
	t.Helper()
	return e.count(t, `SELECT count(*) FROM notice_drafts WHERE incident_id = $1`, id)
}

// followup posts a follow-up of kind with draft raw and requires code.
func (e *apiEnv) followup(t *testing.T, code int, id, kind string, raw any) reply {
	t.Helper()
	return e.must(t, code, "POST", "/v1/incidents/"+id+"/followup", keyResponder, map[string]any{"kind": kind, "notice": raw})
}

// TestFollowupPhases: a follow-up is refused until the initial notice is approved; after
// it, a follow-up is phase 2's own draft (the declaration's facts, the sender, what is
// new), approved by two people and sent to every tenant in scope; a final phase ends the
// incident's notices, and nothing may follow it. Refused follow-ups store nothing.
func TestFollowupPhases(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{Tenants: 3, Contacts: 1, Worker: true})
	const title = "Device database exposure"
	id := e.declare(t, declaration(title, draftJSON(t, title)))
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/assessment", keyResponder, map[string]any{"reportable": true, "rationale": "exposed"})
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/scope", keyResponder, store.ScopeCriteria{TenantIDs: e.tenantIDs(t, 3)})
	first := e.waitFor(t, id, "declared draft", func(s workflows.Status) bool { return s.ContentHash != "" }).ContentHash

	// Before the initial notice is approved there is no next phase.
	before := e.drafts(t, id)
	r := e.followup(t, http.StatusBadRequest, id, notice.PhaseUpdate, followupJSON(t, "More is known."))
	require.Equal(t, "notice.phase", r.Err(t).Field)
	require.Contains(t, r.Err(t).Message, "the initial notice is not approved yet")
	require.Equal(t, before, e.drafts(t, id), "a refused follow-up stores nothing")
	require.Equal(t, first, e.view(t, id).Status.ContentHash)

	e.approveTwice(t, id, first)
	e.waitStage(t, id, workflows.StageTracking)
	require.Equal(t, 1, e.view(t, id).Status.ApprovedPhase)

	// Refused follow-ups: another title, nothing new, an unknown kind.
	var other notice.Draft
	require.NoError(t, json.Unmarshal(followupJSON(t, "More is known."), &other))
	other.Fields.Title = "Another title"
	for _, c := range []struct {
		name, kind string
		draft      any
		field      string
		says       string
	}{
		{"another title", notice.PhaseUpdate, other, "notice.fields.title", `the notice states the incident's title from its declaration ("` + title + `")`},
		{"nothing new", notice.PhaseUpdate, draftJSON(t, ""), "notice", "(" + notice.ElementWhatsNew + ")"},
		{"unknown kind", "addendum", followupJSON(t, "More is known."), "notice.phase", `"addendum"`},
	} {
		r := e.followup(t, http.StatusBadRequest, id, c.kind, c.draft)
		require.Equal(t, c.field, r.Err(t).Field, "%s: %s", c.name, r)
		require.Contains(t, r.Err(t).Message, c.says, c.name)
		require.Equal(t, before, e.drafts(t, id), "%s stored a draft", c.name)
	}

	// Phase 2, an update.
	const whatsNew = "The credential was also used against the backup service."
	var out struct{ Status workflows.Status }
	e.followup(t, http.StatusOK, id, notice.PhaseUpdate, followupJSON(t, whatsNew)).JSON(t, &out)
	second := out.Status.ContentHash
	require.Len(t, second, 64)
	require.NotEqual(t, first, second)
	require.Equal(t, 2, out.Status.DraftPhase)
	require.False(t, out.Status.DraftFinal)
	require.Empty(t, out.Status.Approvers, "the new phase's draft starts without approvals")
	p := e.preview(t, id, "")
	require.Equal(t, second, p.ContentHash)
	require.Equal(t, notice.Phase{Number: 2, Kind: notice.PhaseUpdate}, p.Phase)
	require.Equal(t, api.DefaultSenderOrganisation, p.Sender.Organisation, "the API stamps its sender")
	require.Empty(t, p.Untranslated)
	for _, l := range p.Locales {
		require.Empty(t, l.Error, l.Locale)
		require.True(t, strings.HasPrefix(l.Subject, notice.PhaseLabel(p.Phase, l.Locale)+" — "), "%s: %s", l.Locale, l.Subject)
		require.Contains(t, l.Text, whatsNew, l.Locale)
		require.Contains(t, l.Text, title, "%s: the declared title", l.Locale)
	}
	e.approveTwice(t, id, second)
	v := e.waitView(t, id, "phase 2 notified", func(v api.IncidentView) bool {
		return v.Status != nil && v.Status.ApprovedPhase == 2 && len(v.Ledger.Phases) == 2 && v.Ledger.Phases[1].Notified == 3
	})
	require.Equal(t, notice.PhaseUpdate, v.Ledger.Phases[1].Kind)
	require.Equal(t, 3, v.Ledger.Phases[0].Notified, "phase 1 stays as it was")
	var updates int
	for _, m := range e.sink.Messages(sink.Query{Limit: 100}).Messages {
		if strings.Contains(m.Subject, " 2 — ") { // "Update 2 — …", "Aggiornamento 2 — …", …
			updates++
			require.Contains(t, m.Text, whatsNew)
		}
	}
	require.Equal(t, 3, updates, "every tenant in scope is sent the update")

	// Phase 3, the final notice; nothing follows it.
	e.followup(t, http.StatusOK, id, notice.PhaseFinal, followupJSON(t, "The investigation is complete.")).JSON(t, &out)
	third := out.Status.ContentHash
	require.Equal(t, 3, out.Status.DraftPhase)
	require.True(t, out.Status.DraftFinal)
	require.Equal(t, notice.Phase{Number: 3, Kind: notice.PhaseFinal}, e.preview(t, id, "").Phase)
	e.approveTwice(t, id, third)
	e.waitView(t, id, "final phase approved", func(v api.IncidentView) bool {
		return v.Status != nil && v.Status.ApprovedPhase == 3 && v.Status.FinalApproved
	})
	before = e.drafts(t, id)
	for _, kind := range []string{notice.PhaseUpdate, notice.PhaseFinal} {
		r = e.followup(t, http.StatusBadRequest, id, kind, followupJSON(t, "Even more."))
		require.Equal(t, "notice.phase", r.Err(t).Field, kind)
		require.Contains(t, r.Err(t).Message, "phase 3 was the final notice; no phase follows it", kind)
	}
	require.Equal(t, before, e.drafts(t, id))
	require.Equal(t, third, e.view(t, id).Status.ContentHash)
}

// TestUntranslatedLocalesBlockApproval: the preview lists the locales a draft gives no
// text for, and approval is refused naming them until each is translated or sent the
// English text by choice.
func TestUntranslatedLocalesBlockApproval(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{Tenants: 2, Contacts: 1, Worker: true})
	const title = "Badge database exposure"
	id := e.declare(t, declaration(title, nil))
	var bare notice.Draft
	require.NoError(t, json.Unmarshal(draftJSON(t, title), &bare))
	bare.EnglishFallback = nil
	var out struct{ Status workflows.Status }
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/draft", keyResponder, bare).JSON(t, &out)
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/assessment", keyResponder, map[string]any{"reportable": true, "rationale": "exposed"})
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/scope", keyResponder, store.ScopeCriteria{TenantIDs: e.tenantIDs(t, 2)})

	p := e.preview(t, id, "")
	require.Equal(t, []string{"de", "es", "fr", "it"}, p.Untranslated)
	require.Empty(t, p.EnglishFallback)
	var body map[string]any
	e.must(t, http.StatusOK, "GET", "/v1/incidents/"+id+"/notice", keyResponder, nil).JSON(t, &body)
	require.Equal(t, []any{"de", "es", "fr", "it"}, body["untranslated"])
	r := e.must(t, http.StatusUnprocessableEntity, "POST", "/v1/incidents/"+id+"/approval", keyApprover, map[string]string{"content_hash": out.Status.ContentHash})
	require.Contains(t, r.Err(t).Message, "the draft has no text in de, es, fr, it")
	require.Zero(t, e.count(t, `SELECT count(*) FROM approvals WHERE incident_id = $1`, id))

	// Italian translated, the rest in English by choice: approved and sent.
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/draft", keyResponder, italian(t, draftJSON(t, ""), "Esposizione del database dei badge")).JSON(t, &out)
	p = e.preview(t, id, "")
	require.Empty(t, p.Untranslated)
	require.Equal(t, []string{"de", "es", "fr"}, p.EnglishFallback)
	for _, l := range p.Locales {
		if l.Locale == "it" {
			require.Contains(t, l.Text, itNature)
		}
	}
	e.approveTwice(t, id, out.Status.ContentHash)
	e.waitStage(t, id, workflows.StageTracking)
}

// TestNoticePreviewForATenant: ?tenant= renders the draft exactly as that tenant would
// receive it — in its locale, with its name, its deadline, the services of the scope it
// uses and its imported numbers — and says whether the scope holds it; an unknown
// tenant is refused naming the parameter.
func TestNoticePreviewForATenant(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{Tenants: 6, Contacts: 1, Worker: true})
	ctx := context.Background()
	ids := e.tenantIDs(t, 6)
	tenant, excluded := ids[0], ids[1]
	var name string
	var services []string
	require.NoError(t, e.st.Pool().QueryRow(ctx, `SELECT name, services FROM tenants WHERE id = $1`, tenant).Scan(&name, &services))
	require.NotEmpty(t, services)
	_, err := e.st.Pool().Exec(ctx, `UPDATE tenants SET locale = 'it-IT' WHERE id = $1`, tenant)
	require.NoError(t, err)
	_, err = e.st.Pool().Exec(ctx, `UPDATE contacts SET locale = NULL WHERE tenant_id = $1`, tenant)
	require.NoError(t, err)

	const title = "Device database exposure"
	id := e.declare(t, declaration(title, italian(t, draftJSON(t, title), "Esposizione del database dei dispositivi")))
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/assessment", keyResponder, map[string]any{"reportable": true, "rationale": "exposed"})
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/scope", keyResponder,
		store.ScopeCriteria{Services: services[:1], Exclude: []string{excluded}})
	e.waitFor(t, id, "draft and scope", func(s workflows.Status) bool { return s.ContentHash != "" && s.Scope.Version > 0 })
	var imported map[string]int
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/impact", keyResponder,
		map[string]any{"tenants": []map[string]any{{"tenant_id": tenant, "approx_data_subjects": 37, "approx_records": 1234}}}).JSON(t, &imported)
	require.Equal(t, map[string]int{"tenants": 1}, imported)

	p := e.preview(t, id, "?tenant="+tenant)
	require.Len(t, p.Locales, len(notice.Locales()), "the preview of every locale is still there")
	tp := p.Tenant
	require.NotNil(t, tp)
	require.Equal(t, tenant, tp.TenantID)
	require.Equal(t, name, tp.Name)
	require.True(t, tp.InScope)
	require.NotNil(t, tp.Deadline)
	require.Equal(t, services[:1], tp.Facts.Services, "the scope's service it uses")
	require.EqualValues(t, 37, tp.Facts.DataSubjects)
	require.EqualValues(t, 1234, tp.Facts.Records)
	n := tp.Notice
	require.Empty(t, n.Error)
	require.Equal(t, "it", n.Locale)
	require.Contains(t, n.Subject, "Notifica di violazione dei dati personali")
	for _, s := range []string{"NOTIFICA DI VIOLAZIONE DEI DATI PERSONALI", "Perché la vostra organizzazione è interessata", itNature,
		name, notice.FormatTime(*tp.Deadline, "it"), "1.234", services[0]} {
		require.Contains(t, n.Text, s)
	}
	factsText, factsHTML := notice.FactsBlock(tp.Facts, "it")
	require.Contains(t, n.Text, factsText)
	require.Contains(t, n.HTML, factsHTML)
	require.Contains(t, n.HTML, "Perché la vostra organizzazione è interessata")
	require.NotContains(t, n.Text+n.HTML+n.Subject, "-bf_", "no substitution tag is left")
	require.NotContains(t, n.Text, p.SampleRecipient.TenantName, "the tenant's own name, not the sample's")

	// A tenant the scope leaves out is shown its notice too, without a deadline.
	out := e.preview(t, id, "?tenant="+excluded).Tenant
	require.NotNil(t, out)
	require.False(t, out.InScope)
	require.Nil(t, out.Deadline)
	require.Empty(t, out.Notice.Error)

	for _, bad := range []string{"t-nosuch", "%27%3B%20DROP%20TABLE%20tenants"} {
		r := e.must(t, http.StatusBadRequest, "GET", "/v1/incidents/"+id+"/notice?tenant="+bad, keyApprover, nil)
		require.Equal(t, "tenant", r.Err(t).Field, bad)
		require.Contains(t, r.Err(t).Message, "no tenant", bad)
	}
	require.Contains(t, e.must(t, http.StatusBadRequest, "GET", "/v1/incidents/"+id+"/notice?tenant=t-nosuch", keyApprover, nil).Err(t).Message, "t-nosuch")
}

// TestNoticePreviewReach: the preview counts the current scope's tenants that no notice
// can reach — every contact undeliverable — and names them; a tenant with one
// deliverable contact left is not counted.
func TestNoticePreviewReach(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{Tenants: 4, Contacts: 2, Worker: true})
	ctx := context.Background()
	const title = "Device database exposure"
	id := e.declare(t, declaration(title, draftJSON(t, title)))
	e.waitFor(t, id, "declared draft", func(s workflows.Status) bool { return s.ContentHash != "" })
	require.Equal(t, store.Reach{}, *e.preview(t, id, "").Reach, "no scope yet")

	ids := e.tenantIDs(t, 3)
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/assessment", keyResponder, map[string]any{"reportable": true, "rationale": "exposed"})
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/scope", keyResponder, store.ScopeCriteria{TenantIDs: ids})
	_, err := e.st.Pool().Exec(ctx, `UPDATE contacts SET undeliverable_at = now(), undeliverable_reason = 'bounced' WHERE tenant_id = $1`, ids[0])
	require.NoError(t, err)
	_, err = e.st.Pool().Exec(ctx, `UPDATE contacts SET undeliverable_at = now(), undeliverable_reason = 'bounced'
		WHERE id = (SELECT min(id) FROM contacts WHERE tenant_id = $1)`, ids[1])
	require.NoError(t, err)

	p := e.preview(t, id, "")
	require.NotNil(t, p.Reach)
	require.Equal(t, store.Reach{ScopeVersion: 1, Tenants: 3, NoDeliverable: 1, Sample: []string{ids[0]}}, *p.Reach)
	var body struct {
		Reach map[string]any `json:"reach"`
	}
	e.must(t, http.StatusOK, "GET", "/v1/incidents/"+id+"/notice", keyResponder, nil).JSON(t, &body)
	require.EqualValues(t, 1, body.Reach["no_deliverable_contact"])
	require.Equal(t, []any{ids[0]}, body.Reach["sample"])
}

// TestImpactImport: per-tenant numbers are imported for existing tenants only — a file
// naming an unknown tenant records nothing — and a later import replaces a tenant's.
func TestImpactImport(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{Tenants: 3})
	id := e.declare(t, declaration("Impact import", nil))
	ids := e.tenantIDs(t, 2)
	path := "/v1/incidents/" + id + "/impact"
	rows := func(rs ...map[string]any) map[string]any { return map[string]any{"tenants": rs} }
	row := func(tenant string, subjects, records int) map[string]any {
		return map[string]any{"tenant_id": tenant, "approx_data_subjects": subjects, "approx_records": records}
	}
	recorded := func() int { return e.count(t, `SELECT count(*) FROM tenant_impacts WHERE incident_id = $1`, id) }
	audited := func() int {
		return e.count(t, `SELECT count(*) FROM audit_log WHERE incident_id = $1 AND action = 'impact.imported'`, id)
	}

	for _, c := range []struct {
		name string
		body any
		says string
	}{
		{"unknown tenant", rows(row(ids[0], 10, 20), row("t-nosuch", 1, 1)), "unknown tenants: t-nosuch"},
		{"no rows", rows(), "no rows"},
		{"a tenant twice", rows(row(ids[0], 1, 1), row(ids[0], 2, 2)), "appears twice"},
		{"negative numbers", rows(row(ids[0], -1, 1)), "must not be negative"},
		{"not a tenant id", rows(row("'; DROP TABLE tenants; --", 1, 1)), "is not a tenant id"},
	} {
		r := e.must(t, http.StatusBadRequest, "POST", path, keyResponder, c.body)
		require.Equal(t, "impact", r.Err(t).Field, c.name)
		require.Contains(t, r.Err(t).Message, c.says, c.name)
		require.Zero(t, recorded(), "%s recorded something", c.name)
		require.Zero(t, audited(), c.name)
	}
	e.must(t, http.StatusForbidden, "POST", path, keyDevicecare, rows(row(ids[0], 1, 1)))
	e.must(t, http.StatusNotFound, "POST", "/v1/incidents/INC-20260101-NOSUCH/impact", keyResponder, rows(row(ids[0], 1, 1)))
	require.Zero(t, recorded())

	var out map[string]int
	e.must(t, http.StatusOK, "POST", path, keyResponder, rows(row(ids[0], 10, 20), row(ids[1], 0, 7))).JSON(t, &out)
	require.Equal(t, map[string]int{"tenants": 2}, out)
	e.must(t, http.StatusOK, "POST", path, keyResponder, rows(row(ids[0], 11, 21)))
	require.Equal(t, 2, recorded())
	require.Equal(t, 2, audited())
	var subjects, records int64
	require.NoError(t, e.st.Pool().QueryRow(context.Background(),
		`SELECT data_subjects, records FROM tenant_impacts WHERE incident_id = $1 AND tenant_id = $2`, id, ids[0]).Scan(&subjects, &records))
	require.EqualValues(t, 11, subjects)
	require.EqualValues(t, 21, records)
}
