package console_test

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/breachflow/breachflow/activities"
	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/testenv"
	"github.com/breachflow/breachflow/workflows"
)

// call sends a JSON API request as who (a key name of the stack) and decodes the answer
// into out (nil: ignored), requiring status code.
func (s *stack) call(t *testing.T, code int, method, path, who string, body, out any) {
	t.Helper()
	got, raw := s.apiDo(t, method, path, who, body)
	require.Equal(t, code, got, "%s %s: %s", method, path, raw)
	if out != nil {
		require.NoError(t, json.Unmarshal([]byte(raw), out), "%s", raw)
	}
}

// waitStatus polls the incident's workflow status until ok holds.
func (s *stack) waitStatus(t *testing.T, id string, ok func(workflows.Status) bool) workflows.Status {
	t.Helper()
	var v api.IncidentView
	require.Eventually(t, func() bool {
		v = api.IncidentView{}
		s.call(t, http.StatusOK, "GET", "/v1/incidents/"+id, "rita", nil, &v)
		return v.Status != nil && ok(*v.Status)
	}, time.Minute, 100*time.Millisecond, "incident %s", id)
	return *v.Status
}

// pendingReview waits for the partner's pending review of hash.
func (s *stack) pendingReview(t *testing.T, id, hash string) store.PartnerReview {
	t.Helper()
	var rv store.PartnerReview
	require.Eventually(t, func() bool {
		list, err := s.st.PendingReviews(context.Background(), "devicecare")
		require.NoError(t, err)
		for _, r := range list {
			if r.IncidentID == id && r.ContentHash == hash {
				rv = r
				return true
			}
		}
		return false
	}, time.Minute, 100*time.Millisecond, "no pending review of %s", hash)
	return rv
}

// noticeFields are the facts of the test notices, for an incident declared with title
// and the data category "device identifiers"; the awareness time is the declaration's.
func noticeFields(title string) notice.Fields {
	return notice.Fields{Reference: "INC-CONSOLE-TEST", Title: title,
		Nature: "Unauthorised read access to the device inventory.", DataCategories: []string{"device identifiers"},
		DataSubjectCategories: []string{"employees"}, ApproxDataSubjects: 1200, ApproxRecords: 5400,
		Contact:            notice.ContactPoint{Name: "Privacy Office", Email: "privacy@provider.example"},
		LikelyConsequences: "Phishing against device users.", MeasuresTaken: "Credential revoked.", MeasuresProposed: "Rotate enrolment tokens."}
}

// trackingPixel is the image a custom HTML template adds to the notice of locale loc,
// handing each recipient's acknowledgement link to the image's server (here the public
// URL's host, which link checks allow).
func trackingPixel(base, loc string) string {
	return `<img src="` + base + `/p-` + loc + `.gif?l={{.AckURL}}" width="1" height="1" alt="">`
}

// otherLocales are the supported locales other than English.
func otherLocales() []string {
	var out []string
	for _, loc := range notice.Locales() {
		if loc != notice.DefaultLocale {
			out = append(out, loc)
		}
	}
	return out
}

// draftJSON is a draft with fields f whose other locales read the English text by choice.
func draftJSON(t *testing.T, f notice.Fields) json.RawMessage {
	t.Helper()
	raw, err := json.Marshal(notice.Draft{Fields: f, EnglishFallback: otherLocales()})
	require.NoError(t, err)
	return raw
}

// proposeDirect keeps raw as a draft of incident id by who and makes it current through
// the store and the workflow, past any link check of the API's proposal path.
func (s *stack) proposeDirect(t *testing.T, id, who string, raw json.RawMessage) string {
	t.Helper()
	ctx := context.Background()
	k, err := s.st.Authenticate(ctx, s.keys[who])
	require.NoError(t, err)
	p, err := activities.ProposeDraft(ctx, s.st, id, raw, k.Actor(), activities.DraftOptions{Sender: s.api.Sender})
	require.NoError(t, err)
	h, err := testenv.Temporal(t).GetDefaultClient().UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflows.IncidentWorkflowID(id), UpdateName: workflows.UpdateDraft,
		Args:         []any{workflows.DraftInput{ContentHash: p.Hash, Actor: k.Actor(), Phase: p.Phase.Number}},
		WaitForStage: client.WorkflowUpdateStageCompleted})
	require.NoError(t, err)
	require.NoError(t, h.Get(ctx, nil))
	return p.Hash
}

// pixelNotice is a draft with fields f whose every locale's HTML template is the default
// with trackingPixel added.
func pixelNotice(t *testing.T, f notice.Fields, base string) json.RawMessage {
	t.Helper()
	d := notice.Draft{Fields: f, Templates: map[string]notice.Template{}, EnglishFallback: otherLocales()}
	for _, loc := range notice.Locales() {
		d.Templates[loc] = notice.Template{HTML: strings.Replace(notice.DefaultTemplate(loc).HTML, "</body>", trackingPixel(base, loc)+"\n</body>", 1)}
	}
	raw, err := json.Marshal(d)
	require.NoError(t, err)
	return raw
}

// iframeRe finds the start tag of the iframe with id; the capture is its srcdoc.
func iframeRe(id string) *regexp.Regexp {
	return regexp.MustCompile(`<iframe sandbox srcdoc="([^"]*)"[^>]*\bid="` + regexp.QuoteMeta(id) + `"[^>]*>`)
}

// sourceRe finds the HTML source shown in the <details> with id; the capture is the source.
func sourceRe(id string) *regexp.Regexp {
	return regexp.MustCompile(`(?s)<details id="` + regexp.QuoteMeta(id) + `"><summary>HTML source</summary><pre class="notice source">(.*?)</pre>`)
}

// preByID is the unescaped content of the <pre> with id.
func preByID(t *testing.T, body, id string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<pre[^>]*\bid="` + regexp.QuoteMeta(id) + `"[^>]*>(.*?)</pre>`).FindStringSubmatch(body)
	require.NotNil(t, m, "no <pre id=%q>", id)
	return html.UnescapeString(m[1])
}

// requireShown checks that body shows every locale of p's HTML part in a sandboxed
// iframe (escaped into srcdoc, so it decodes to exactly the HTML sent) and as source,
// with the tracking image; ids name the elements of a locale.
func requireShown(t *testing.T, body string, p api.NoticePreview, base string, frameID, sourceID func(loc string) string) {
	t.Helper()
	require.NotContains(t, body, `<img src="`+base, "the notice's HTML never reaches the console page as markup")
	require.NotContains(t, body, "allow-scripts")
	require.NotContains(t, body, "allow-same-origin")
	require.Len(t, p.Locales, len(notice.Locales()))
	for _, l := range p.Locales {
		img := strings.Replace(trackingPixel(base, l.Locale), "{{.AckURL}}", p.SampleRecipient.AckURL, 1)
		require.Contains(t, l.HTML, img, l.Locale)

		m := iframeRe(frameID(l.Locale)).FindStringSubmatch(body)
		require.NotNil(t, m, "%s: no sandboxed iframe %s", l.Locale, frameID(l.Locale))
		require.Contains(t, m[1], "&lt;img src=&#34;"+base+"/p-"+l.Locale+".gif?l=", "%s: srcdoc is escaped", l.Locale)
		require.NotContains(t, m[1], "<", "%s: srcdoc is escaped", l.Locale)
		require.Equal(t, l.HTML, html.UnescapeString(m[1]), "%s: the iframe draws exactly the HTML sent", l.Locale)

		src := sourceRe(sourceID(l.Locale)).FindStringSubmatch(body)
		require.NotNil(t, src, "%s: no HTML source %s", l.Locale, sourceID(l.Locale))
		require.Equal(t, l.HTML, html.UnescapeString(src[1]), "%s: the source shown is the HTML sent", l.Locale)
	}
}

// TestNoticeIncidentAndPartnerPages: approvers on the incident page and the partner on
// the partner page see every locale's HTML part — a custom template's tracking image
// included — drawn in a sandboxed iframe and as source, with the changes to the text and
// the HTML since the previous draft (for the partner, the previous review's draft), and
// the hash shown is the hash approved.
func TestNoticeIncidentAndPartnerPages(t *testing.T) {
	s := newStack(t, 12)
	first := draftJSON(t, noticeFields("Device database exposure"))
	var declared struct{ Incident store.Incident }
	s.call(t, http.StatusCreated, "POST", "/v1/incidents", "rita", map[string]any{
		"title": "Device database exposure", "summary": "Leaked service credential.", "severity": "high",
		"aware_at": time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339), "data_categories": []string{"device identifiers"},
		"partner": "devicecare", "notice": json.RawMessage(first)}, &declared)
	id := declared.Incident.ID
	s.call(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/assessment", "rita", map[string]any{"reportable": true, "rationale": "users affected"}, nil)
	s.call(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/scope", "rita", store.ScopeCriteria{Countries: strings.Split(strings.ReplaceAll(allCountries, " ", ""), ",")}, nil)
	firstHash := s.waitStatus(t, id, func(st workflows.Status) bool { return st.ContentHash != "" && st.Scope.Version > 0 }).ContentHash
	for _, who := range []string{"alice", "bob"} {
		s.call(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/approval", who, map[string]string{"content_hash": firstHash}, nil)
	}
	rv1 := s.pendingReview(t, id, firstHash)
	s.call(t, http.StatusOK, "POST", "/v1/partner/reviews/"+itoa(rv1.ID)+"/decision", "dc",
		map[string]string{"decision": "request_changes", "content_hash": firstHash, "comment": "say which devices"}, nil)

	// The revised draft goes in through the store and the workflow, past any link check of
	// the API's proposal path: the preview must show whatever was proposed.
	revised := noticeFields("Device database exposure")
	revised.Nature += " (revised)"
	secondHash := s.proposeDirect(t, id, "rita", pixelNotice(t, revised, s.url))
	var p api.NoticePreview
	s.call(t, http.StatusOK, "GET", "/v1/incidents/"+id+"/notice", "alice", nil, &p)
	require.Equal(t, secondHash, p.ContentHash)

	t.Run("incident page", func(t *testing.T) {
		alice := s.browser(t)
		alice.signIn(s.keys["alice"])
		code, body := alice.get("/console/incidents/" + id)
		require.Equal(t, http.StatusOK, code)
		requireShown(t, body, p, s.url, func(loc string) string { return "html-" + loc }, func(loc string) string { return "html-source-" + loc })
		require.Equal(t, secondHash, textByID(body, "notice-hash"))
		m := regexp.MustCompile(`name="content_hash" value="([0-9a-f]{64})"`).FindAllStringSubmatch(body, -1)
		require.Len(t, m, 1, "one approve form")
		require.Equal(t, secondHash, m[0][1], "the approve form approves the hash shown")
		require.Contains(t, body, p.SampleRecipient.AckURL, "the sample recipient is named")
		require.Contains(t, elementRe("notice-en").FindString(body), " open", "the default locale is open")

		for _, loc := range notice.Locales() {
			img := strings.Replace(trackingPixel(s.url, loc), "{{.AckURL}}", p.SampleRecipient.AckURL, 1)
			require.Contains(t, preByID(t, body, "diff-html"), "\n+ "+img+"\n", loc)
			require.Contains(t, preByID(t, body, "diff-html"), "== "+loc+" ==\n", loc)
			require.Contains(t, preByID(t, body, "text-"+loc), "(revised)", loc)
			require.Contains(t, textByID(body, "subject-"+loc), "Device database exposure", loc)
		}
		require.Contains(t, preByID(t, body, "diff-text"), "+ ")
		require.Contains(t, preByID(t, body, "diff-text"), "(revised)")

		_, body = alice.get("/console/incidents/" + id + "?locale=it-IT")
		require.Contains(t, elementRe("notice-it").FindString(body), " open", "?locale= opens that locale")
		require.NotContains(t, elementRe("notice-en").FindString(body), " open")
	})

	t.Run("partner page", func(t *testing.T) {
		for _, who := range []string{"alice", "bob"} {
			s.call(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/approval", who, map[string]string{"content_hash": secondHash}, nil)
		}
		rv2 := s.pendingReview(t, id, secondHash)
		dc := s.browser(t)
		dc.signIn(s.keys["dc"])
		code, body := dc.get("/console/partner")
		require.Equal(t, http.StatusOK, code)
		rid := "review-" + itoa(rv2.ID)
		requireShown(t, body, p, s.url, func(loc string) string { return rid + "-html-" + loc }, func(loc string) string { return rid + "-source-" + loc })
		diffHTML, diffText := preByID(t, body, rid+"-diff-html"), preByID(t, body, rid+"-diff-text")
		for _, loc := range notice.Locales() {
			img := strings.Replace(trackingPixel(s.url, loc), "{{.AckURL}}", p.SampleRecipient.AckURL, 1)
			require.Contains(t, diffHTML, "\n+ "+img+"\n", loc)
			require.Contains(t, preByID(t, body, rid+"-text-"+loc), "(revised)", loc)
		}
		require.Contains(t, diffText, "- ", "the previous review's text is compared")
		require.Contains(t, diffText, "(revised)")
		require.Contains(t, body, `name="content_hash" value="`+secondHash+`"`, "the partner confirms the hash shown")
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestNoticeBrowserSandbox: in headless Chromium, the incident page draws a notice's HTML
// part in its sandboxed iframe under the console's CSP, so an image the template points
// at another site is never fetched; the same iframe on a page without that CSP does
// fetch it, so the test would see a fetch. A screenshot is saved to artifacts/browser.
func TestNoticeBrowserSandbox(t *testing.T) {
	chrome, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is needed for the browser test (apt-get install chromium): %v", err)
	}
	s := newStack(t, 2)
	ctx := context.Background()

	var fetched sync.Map // path -> true
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/control" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, `<!DOCTYPE html><iframe sandbox id="control" srcdoc="`+html.EscapeString(`<img src="/p-control.gif">`)+`"></iframe>`)
			return
		}
		fetched.Store(r.URL.Path, true)
		w.Header().Set("Content-Type", "image/gif")
	}))
	t.Cleanup(other.Close)

	// A draft the API's link check would refuse, put in through the store and the workflow:
	// viewing it must still fetch nothing.
	var declared struct{ Incident store.Incident }
	s.call(t, http.StatusCreated, "POST", "/v1/incidents", "rita", map[string]any{
		"title": "Device database exposure", "summary": "Leaked service credential.", "severity": "high",
		"aware_at": time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339), "data_categories": []string{"device identifiers"}}, &declared)
	id := declared.Incident.ID
	s.waitStatus(t, id, func(st workflows.Status) bool { return st.Stage == workflows.StageAssessing })
	s.proposeDirect(t, id, "rita", pixelNotice(t, noticeFields("Device database exposure"), other.URL))

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()))
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	bctx, cancel = context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }

	require.NoError(t, chromedp.Do(bctx,
		chromedp.Navigate(s.url+"/console/login"), chromedp.WaitVisible(css("#key")),
		chromedp.SendKeys(css("#key"), s.keys["alice"]), chromedp.Click(css("#signin")), chromedp.WaitVisible(css("header .who")),
		chromedp.Navigate(s.url+"/console/incidents/"+id), chromedp.WaitVisible(css("#html-en"))))
	box, err := chromedp.Run(bctx, chromedp.Dimensions(css("#html-en")))
	require.NoError(t, err)
	require.Greater(t, box.Height, int64(100), "the iframe is drawn")
	// Chrome runs each sandboxed iframe in a process of its own: read what it draws there.
	infos, err := chromedp.Targets(bctx)
	require.NoError(t, err)
	var headings []string
	for _, info := range infos {
		if info.Type != "iframe" || info.URL != "about:srcdoc" {
			continue
		}
		fctx, cancel := chromedp.NewContext(bctx, chromedp.WithTargetID(info.TargetID))
		defer cancel() // it closes the iframe's target
		h1, err := chromedp.Run(fctx, chromedp.TextContent(css("h1")))
		require.NoError(t, err)
		headings = append(headings, h1)
	}
	require.Len(t, headings, len(notice.Locales()), "one drawn iframe per locale")
	require.Contains(t, headings, "Personal data breach notification", "the English HTML part is drawn")
	time.Sleep(time.Second) // time for any fetch the page would make
	require.NoError(t, chromedp.Do(bctx, chromedp.ScrollIntoView(css("#html-en"))))
	buf, err := chromedp.Run(bctx, chromedp.Screenshot(css("#notice-en")))
	require.NoError(t, err)
	shots := filepath.Join("..", "..", "artifacts", "browser")
	require.NoError(t, os.MkdirAll(shots, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(shots, "notice-preview.png"), buf, 0o644))
	fetched.Range(func(k, _ any) bool {
		t.Errorf("the console page fetched %s from another site", k)
		return true
	})

	// The control: the same kind of iframe without the console's CSP fetches its image.
	require.NoError(t, chromedp.Do(bctx, chromedp.Navigate(other.URL+"/control"), chromedp.WaitVisible(css("#control"))))
	require.Eventually(t, func() bool { _, ok := fetched.Load("/p-control.gif"); return ok }, 10*time.Second, 50*time.Millisecond,
		"without the console's CSP the sandboxed iframe's image loads: the check above could fail")
}
