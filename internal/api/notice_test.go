package api_test

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/breachflow/breachflow/activities"
	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/mail/sink"
	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/workflows"
)

// pixel is the tracking image a custom HTML template hides in the notice of locale loc: it
// hands each recipient's acknowledgement link to whoever serves the image.
func pixel(host, loc string) string {
	return `<img src="https://` + host + `/p-` + loc + `.gif?l={{.AckURL}}" width="1" height="1" alt="">`
}

// pixelDraft is draftJSON with a revised nature and, in every locale, the default HTML
// template with pixel added before </body>.
func pixelDraft(t *testing.T, title, host string) json.RawMessage {
	t.Helper()
	var d notice.Draft
	require.NoError(t, json.Unmarshal(draftJSON(t, title), &d))
	d.Fields.Nature += " (revised)"
	d.Templates = map[string]notice.Template{}
	for _, loc := range notice.Locales() {
		src := notice.DefaultTemplate(loc).HTML
		require.Contains(t, src, "</body>")
		d.Templates[loc] = notice.Template{HTML: strings.Replace(src, "</body>", pixel(host, loc)+"\n</body>", 1)}
	}
	raw, err := json.Marshal(d)
	require.NoError(t, err)
	return raw
}

// proposeDirect keeps a draft and makes it the incident's current one through the store
// and the workflow, past any link policy of the API's proposal path.
func (e *apiEnv) proposeDirect(t *testing.T, id string, raw json.RawMessage) string {
	t.Helper()
	ctx := context.Background()
	k, err := e.st.GetAPIKey(ctx, e.keyIDs[keyResponder])
	require.NoError(t, err)
	p, err := activities.ProposeDraft(ctx, e.st, id, raw, k.Actor(), activities.DraftOptions{Sender: e.api.Sender})
	require.NoError(t, err)
	hash := p.Hash
	h, err := e.tc.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: workflows.IncidentWorkflowID(id),
		UpdateName: workflows.UpdateDraft, Args: []any{workflows.DraftInput{ContentHash: hash, Actor: k.Actor(), Phase: p.Phase.Number}},
		WaitForStage: client.WorkflowUpdateStageCompleted})
	require.NoError(t, err)
	var st workflows.Status
	require.NoError(t, h.Get(ctx, &st))
	require.Equal(t, hash, st.ContentHash)
	return hash
}

// preview reads GET /v1/incidents/{id}/notice (query may be "").
func (e *apiEnv) preview(t *testing.T, id, query string) api.NoticePreview {
	t.Helper()
	var p api.NoticePreview
	e.must(t, http.StatusOK, "GET", "/v1/incidents/"+id+"/notice"+query, keyApprover, nil).JSON(t, &p)
	return p
}

// TestNoticePreview: approvers are shown, for every locale, the subject, the text and the
// HTML part exactly as they are sent — a custom template's tracking image included — and
// what changed since the previous draft; the notices then sent are that HTML with each
// recipient's values in place of the sample recipient's.
func TestNoticePreview(t *testing.T) {
	e := newAPIEnv(t, envOptions{Tenants: 6, Worker: true})
	const host = "notices.provider.example" // publicURL's host: links there are allowed
	id := e.declare(t, declaration("Device database exposure", draftJSON(t, "Device database exposure")))
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/assessment", keyResponder,
		map[string]any{"reportable": true, "rationale": "personal data of the controllers' users exposed"})
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/scope", keyResponder, store.ScopeCriteria{TenantIDs: e.tenantIDs(t, 6)})
	first := e.waitFor(t, id, "declared draft", func(s workflows.Status) bool { return s.ContentHash != "" }).ContentHash

	p := e.preview(t, id, "")
	require.Equal(t, first, p.ContentHash)
	require.Empty(t, p.PreviousHash, "the declared draft is the first")
	require.Nil(t, p.Diff)

	second := e.proposeDirect(t, id, pixelDraft(t, "Device database exposure", host))
	p = e.preview(t, id, "")
	require.Equal(t, second, p.ContentHash)
	require.Equal(t, second, p.CurrentHash)
	require.Equal(t, first, p.PreviousHash)
	require.Equal(t, "Example Tenant Ltd", p.SampleRecipient.TenantName)
	require.NotEmpty(t, p.SampleRecipient.AckURL)
	require.NotEmpty(t, p.SampleRecipient.Note)

	var locales []string
	for _, l := range p.Locales {
		locales = append(locales, l.Locale)
		img := strings.Replace(pixel(host, l.Locale), "{{.AckURL}}", p.SampleRecipient.AckURL, 1)
		require.Empty(t, l.Error, l.Locale)
		require.Equal(t, []string{"html"}, l.Custom, l.Locale)
		require.Contains(t, l.HTML, img, "%s: the HTML part shows the image as sent", l.Locale)
		require.Contains(t, l.URLs, "https://"+host+"/p-"+l.Locale+".gif?l="+p.SampleRecipient.AckURL, l.Locale)
		require.Contains(t, l.Subject, "Device database exposure", l.Locale)
		require.Contains(t, l.Text, "(revised)", l.Locale)
		require.Contains(t, l.Text, p.SampleRecipient.AckURL, "%s: the sample link stands in for the recipient's", l.Locale)
		require.NotContains(t, l.HTML+l.Text+l.Subject, "-bf_", "%s: no substitution tag is left", l.Locale)

		require.NotNil(t, l.Diff, l.Locale)
		require.Contains(t, l.Diff.HTML, "\n+ "+img+"\n", l.Locale)
		require.Empty(t, l.Diff.Subject, "%s: the title is the declaration's, so the subject is unchanged", l.Locale)
		require.Contains(t, l.Diff.Text, "- ", l.Locale)
		require.Contains(t, l.Diff.Text, "+ ", l.Locale)
		require.Contains(t, p.Diff.HTML, "== "+l.Locale+" ==\n", l.Locale)
	}
	require.Equal(t, notice.Locales(), locales)
	require.NotNil(t, p.Diff)
	require.Equal(t, len(notice.Locales()), strings.Count(p.Diff.HTML, "/p-"), "the image once per locale: %s", p.Diff.HTML)
	require.Contains(t, p.Diff.Text, "(revised)")

	// The answer as JSON, as a client reads it.
	var out map[string]any
	e.must(t, http.StatusOK, "GET", "/v1/incidents/"+id+"/notice", keyResponder, nil).JSON(t, &out)
	for _, k := range []string{"content_hash", "previous_hash", "sample_recipient", "locales", "diff"} {
		require.Contains(t, out, k)
	}
	diff, ok := out["diff"].(map[string]any)
	require.True(t, ok, "diff: %v", out["diff"])
	for _, k := range []string{"text", "html"} {
		require.NotEmpty(t, diff[k], k)
	}
	require.Empty(t, diff["subject"])

	// An earlier proposed draft by hash: it replaced nothing.
	old := e.preview(t, id, "?hash="+first)
	require.Equal(t, first, old.ContentHash)
	require.Equal(t, second, old.CurrentHash)
	require.Empty(t, old.PreviousHash)
	for _, l := range old.Locales {
		require.NotContains(t, l.HTML, "/p-"+l.Locale+".gif", l.Locale)
	}

	// What is sent is what was shown.
	e.approveTwice(t, id, second)
	e.waitStage(t, id, workflows.StageTracking)
	var msgs []sink.Message
	require.Eventually(t, func() bool {
		msgs = e.sink.Messages(sink.Query{Limit: 100}).Messages
		return len(msgs) >= 6
	}, time.Minute, 100*time.Millisecond)
	for _, m := range msgs {
		require.Contains(t, m.HTML, `<img src="https://`+host+`/p-`, "%s", m.Subject)
		require.True(t, shownAs(p, m), "the HTML sent to %s is the HTML shown, recipient values aside", m.To)
	}
}

// shownAs reports whether the message sent is one locale of the preview with the
// recipient's own values in place of the sample recipient's.
func shownAs(p api.NoticePreview, m sink.Message) bool {
	for _, l := range p.Locales {
		_, sampleFacts := notice.FactsBlock(p.SampleRecipient.Facts, l.Locale)
		rep := strings.NewReplacer(
			html.EscapeString(p.SampleRecipient.AckURL), m.Substitutions[notice.TagAckURLHTML],
			html.EscapeString(p.SampleRecipient.TenantName), m.Substitutions[notice.TagTenantNameHTML],
			html.EscapeString(notice.FormatTime(p.SampleRecipient.Deadline, l.Locale)), m.Substitutions[notice.TagDeadlineHTML],
			sampleFacts, m.Substitutions[notice.TagTenantFactsHTML])
		if rep.Replace(l.HTML) == m.HTML {
			return true
		}
	}
	return false
}

// TestNoticePreviewErrors: an unknown incident, an incident without a draft and an
// unknown or malformed hash each get their own answer.
func TestNoticePreviewErrors(t *testing.T) {
	e := newAPIEnv(t, envOptions{Worker: true})
	noDraft := e.declare(t, declaration("No draft yet", nil))
	withDraft := e.declare(t, declaration("With a draft", draftJSON(t, "With a draft")))
	e.waitFor(t, withDraft, "declared draft", func(s workflows.Status) bool { return s.ContentHash != "" })

	for _, c := range []struct {
		name, path string
		code       int
		errCode    string
		message    string
	}{
		{"unknown incident", "/v1/incidents/INC-20260101-NOSUCH/notice", http.StatusNotFound, "not_found", ""},
		{"no draft", "/v1/incidents/" + noDraft + "/notice", http.StatusConflict, "no_draft", "no notice draft yet"},
		{"unknown hash", "/v1/incidents/" + withDraft + "/notice?hash=" + strings.Repeat("ab", 32), http.StatusNotFound, "not_found", "no draft with content hash"},
		{"malformed hash", "/v1/incidents/" + withDraft + "/notice?hash=xyz", http.StatusBadRequest, "invalid", "64-hex-digit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e2 := e.must(t, c.code, "GET", c.path, keyResponder, nil).Err(t)
			require.Equal(t, c.errCode, e2.Code)
			require.Contains(t, e2.Message, c.message)
		})
	}
	e.must(t, http.StatusForbidden, "GET", "/v1/incidents/"+withDraft+"/notice", keyDevicecare, nil)
	e.must(t, http.StatusOK, "GET", "/v1/incidents/"+withDraft+"/notice", keyResponder, nil)
}
