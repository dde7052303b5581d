package console_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/mail/sink"
	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/workflows"
)

var ackLinkRe = regexp.MustCompile(`https?://[^\s"<]+/ack/[0-9a-f]{64}`)

// headless starts Debian's Chromium for one test and returns a browser context that
// ends after timeout or with the test.
func headless(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	chrome, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is needed for the browser test (apt-get install chromium): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, timeout)
	t.Cleanup(cancel)
	return ctx
}

// TestBrowserIncident runs a whole incident in headless Chromium: a responder signs in
// and declares through the form, assesses and scopes, two approvers approve, the partner
// confirms on the partner page, a customer follows the link from the mail sink and
// acknowledges, and the incident page and the list count it in tenants, with bars drawn
// under the console's CSP. A screenshot of each page is saved to
// artifacts/browser (not committed).
func TestBrowserIncident(t *testing.T) {
	ctx := headless(t, 3*time.Minute)
	s := newStack(t, 12)
	shots := filepath.Join("..", "..", "artifacts", "browser")
	require.NoError(t, os.MkdirAll(shots, 0o755))

	type step = chromedp.Action[chromedp.Void]
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	shot := func(name string) step {
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			buf, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return chromedp.Void{}, err
			}
			return chromedp.Void{}, os.WriteFile(filepath.Join(shots, name+".png"), buf, 0o644)
		}
	}
	run := func(what string, actions ...step) {
		t.Helper()
		require.NoError(t, chromedp.Do(ctx, actions...), what)
	}
	text := func(sel string) string {
		t.Helper()
		out, err := chromedp.Run(ctx, chromedp.Text(css(sel)))
		require.NoError(t, err, "read "+sel)
		return out
	}
	// bar is how far a <progress> element draws, 0 to 1, as the browser computes it.
	bar := func(sel string) float64 {
		t.Helper()
		out, err := chromedp.Run(ctx, chromedp.JavascriptAttribute[float64](css(sel), "position"))
		require.NoError(t, err, "read "+sel)
		return out
	}
	// submit clicks button and waits until the page's message contains want.
	submit := func(what, button, want string) {
		t.Helper()
		run(what, chromedp.Click(css(button)))
		deadline := time.Now().Add(30 * time.Second)
		for {
			tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			out, err := chromedp.Run(tctx, chromedp.Text(css("#flash")))
			cancel()
			if err == nil && strings.Contains(out, want) {
				return
			}
			require.True(t, time.Now().Before(deadline), "%s: waiting for %q, page says %q (%v)", what, want, out, err)
			time.Sleep(100 * time.Millisecond)
		}
	}
	signIn := func(who string) {
		t.Helper()
		run("sign in "+who,
			chromedp.Navigate(s.url+"/console/login"),
			chromedp.WaitVisible(css("#key")),
			chromedp.SendKeys(css("#key"), s.keys[who]),
			chromedp.Click(css("#signin")),
			chromedp.WaitVisible(css("header .who")))
	}
	signOut := func() {
		t.Helper()
		run("sign out", chromedp.Click(css("header .who button")), chromedp.WaitVisible(css("#key")))
	}
	// waitText reloads url until sel's text satisfies ok.
	waitText := func(url, sel string, ok func(string) bool) string {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitReady(css("body")))
			var out string
			if err == nil {
				tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				out, err = chromedp.Run(tctx, chromedp.Text(css(sel)))
				cancel()
			}
			if err == nil && ok(out) {
				return out
			}
			require.True(t, time.Now().Before(deadline), "waiting for %s on %s; last %q (%v)", sel, url, out, err)
			time.Sleep(300 * time.Millisecond)
		}
	}

	signIn("rita")
	run("incidents page", shot("01-incidents"))

	// The declaration form: a bad time is refused with a visible message, then fixed.
	fill := func(sel, v string) step { return chromedp.SetValue(css(sel), v) }
	run("declare form",
		chromedp.Navigate(s.url+"/console/declare"), chromedp.WaitVisible(css("#declare")),
		fill("#title", "Device database exposure"), fill("#summary", "Leaked service credential."),
		fill("#aware_at", "yesterday"), fill("#data_categories", "device identifiers, user names"),
		fill("#partner", "devicecare"), fill("#nature", "Unauthorised read access to the device inventory."),
		fill("#subjects", "employees"), fill("#approx_subjects", "1200"), fill("#approx_records", "5400"),
		fill("#contact_name", "Privacy Office"), fill("#contact_email", "+49 30 1234567"),
		fill("#consequences", "Phishing against device users."), fill("#measures_taken", "Credential revoked."),
		fill("#measures_proposed", "Rotate enrolment tokens."),
		// No translations: every other locale is sent the English text, by choice.
		chromedp.Click(css("#fallback-de")), chromedp.Click(css("#fallback-es")), chromedp.Click(css("#fallback-fr")),
		chromedp.Click(css("#fallback-it")))
	submit("declare with a bad time", "#declare-submit", "aware_at")
	n, _, err := s.st.CountTenants(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 12, n)
	run("fix the time", fill("#aware_at", time.Now().Add(-2*time.Hour).UTC().Format(time.RFC3339)), shot("02-declare"))
	submit("declare", "#declare-submit", "Declared.")
	loc, err := chromedp.Run(ctx, chromedp.Location())
	require.NoError(t, err)
	incURL := strings.SplitN(loc, "?", 2)[0]
	require.Regexp(t, `/console/incidents/INC-`, incURL)

	run("rationale", chromedp.SetValue(css("#rationale"), "controllers' users affected"))
	submit("assess without choosing", "#assess-submit", "reportable: choose yes or no")
	run("assess", chromedp.Click(css(`#assess input[value="true"]`)), chromedp.SetValue(css("#rationale"), "controllers' users affected"))
	submit("assess", "#assess-submit", "Done: assess")
	require.Contains(t, text("#stage"), "scoping")
	run("countries", chromedp.SetValue(css("#countries"), "DE, IT, FR, ES, AT, CH, BE, NL, IE, GB, US, MX"))
	submit("scope", "#scope-submit", "Done: scope")
	require.Equal(t, "12", text("#scope-total"))
	require.Equal(t, "12", text("#tenants-1"))
	require.Equal(t, "0", text("#released-1"), "nothing is released before two approvals")
	require.Zero(t, bar("#bar-released-1"), "an empty bar draws empty")
	run("incident page", shot("03-incident"))
	signOut()

	for _, who := range []string{"alice", "bob"} {
		signIn(who)
		run("open "+who, chromedp.Navigate(incURL), chromedp.WaitVisible(css("#approve-submit")))
		submit("approve "+who, "#approve-submit", "Done: approval recorded.")
		require.Contains(t, text("#approvers"), who)
		signOut()
	}

	signIn("dc")
	waitText(s.url+"/console/partner", "main", func(s string) bool { return strings.Contains(s, "Confirm joint notification") })
	run("partner page", shot("04-partner"))
	submit("confirm", `button[id^="confirm-"]`, "Decision recorded")
	signOut()

	// A customer follows the link in their notice.
	var link string
	deadline := time.Now().Add(time.Minute)
	for link == "" {
		for _, m := range s.sink.Messages(sink.Query{Limit: 100}).Messages {
			if l := ackLinkRe.FindString(m.Text); l != "" && strings.HasPrefix(l, s.url) {
				link = l
				break
			}
		}
		require.True(t, time.Now().Before(deadline), "no notice in the mail sink")
		time.Sleep(200 * time.Millisecond)
	}
	run("ack page", chromedp.Navigate(link), chromedp.WaitVisible(css("form button")), shot("05-ack"),
		chromedp.Click(css("form button")), chromedp.WaitVisible(css(`p[role="status"]`)), shot("06-acked"))

	signIn("rita")
	waitText(incURL, "#acked", func(s string) bool { return s == "1" })
	waitText(incURL, "#delivered-1", func(s string) bool { return s == "12" })
	require.Equal(t, "12", text("#notified-1"))
	require.Equal(t, "0", text("#owed-1"))
	require.Equal(t, "11", text("#open-count"))
	require.Equal(t, 1.0, bar("#bar-notified-1"))
	require.Equal(t, 1.0, bar("#bar-delivered-1"))
	require.InDelta(t, 1.0/12, bar("#bar-acked"), 1e-6, "the bar draws one twelfth, not full")
	require.Contains(t, text("#versions"), "v1")
	// Under the console's CSP an inline style would be refused; nothing may need one.
	styled, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("[style]").length`))
	require.NoError(t, err)
	require.Zero(t, styled, "elements with inline styles")
	display, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("header .who form")).display`))
	require.NoError(t, err)
	require.Equal(t, "inline", display, "the sign-out form sits inline, styled from the style sheet")
	run("final incident page", shot("07-incident-acked"))

	// The incidents list counts the same tenants.
	run("incidents list", chromedp.Navigate(s.url+"/console/"), chromedp.WaitVisible(css("#incidents")))
	row := "#row-" + path.Base(incURL)
	require.Equal(t, "12", text(row+" .scope"))
	require.Equal(t, "12", text(row+" .notified"))
	require.Equal(t, "1", text(row+" .acked"))
	run("incidents list", shot("08-incidents"))
}

// TestBrowserTenantPreviewAndFollowup runs in headless Chromium: a responder previews one
// Italian tenant's notice — its name, its matched service and the Italian headings, the
// HTML part drawn in its sandboxed iframe — then proposes an update as phase 2 through
// the follow-up form, two approvers approve it on the incident page, and the page shows
// phase 2 approved and sent. A screenshot of the tenant preview goes to the test's
// temporary directory and, when BREACHFLOW_SCREENSHOTS names one, there too.
func TestBrowserTenantPreviewAndFollowup(t *testing.T) {
	ctx := headless(t, 3*time.Minute)
	s := newStack(t, 6)
	ids := s.tenantIDs(t, 6)
	tenant := ids[0]
	name, services := s.italianTenant(t, tenant)
	id := s.declareScoped(t, "Device database exposure", draftJSON(t, noticeFields("Device database exposure")),
		store.ScopeCriteria{Services: services[:1]})
	st := s.waitStatus(t, id, func(st workflows.Status) bool { return st.ContentHash != "" })
	for _, who := range []string{"alice", "bob"} {
		s.call(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/approval", who, map[string]string{"content_hash": st.ContentHash}, nil)
	}
	st = s.waitStatus(t, id, func(st workflows.Status) bool { return st.ApprovedPhase == 1 })
	inScope := st.Scope.Total
	require.Positive(t, inScope)
	incURL := s.url + "/console/incidents/" + id

	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		require.NoError(t, chromedp.Do(ctx, actions...), what)
	}
	text := func(sel string) string {
		t.Helper()
		out, err := chromedp.Run(ctx, chromedp.Text(css(sel)))
		require.NoError(t, err, "read "+sel)
		return out
	}
	// flash waits until the page's message contains want.
	flash := func(what, want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			out, err := chromedp.Run(tctx, chromedp.Text(css("#flash")))
			cancel()
			if err == nil && strings.Contains(out, want) {
				return
			}
			require.True(t, time.Now().Before(deadline), "%s: waiting for %q, page says %q (%v)", what, want, out, err)
			time.Sleep(100 * time.Millisecond)
		}
	}
	signIn := func(who string) {
		t.Helper()
		run("sign in "+who, chromedp.Navigate(s.url+"/console/login"), chromedp.WaitVisible(css("#key")),
			chromedp.SendKeys(css("#key"), s.keys[who]), chromedp.Click(css("#signin")), chromedp.WaitVisible(css("header .who")))
	}
	signOut := func() {
		t.Helper()
		run("sign out", chromedp.Click(css("header .who button")), chromedp.WaitVisible(css("#key")))
	}

	// The responder previews the tenant's notice from the incident page.
	signIn("rita")
	run("preview form", chromedp.Navigate(incURL), chromedp.WaitVisible(css("#preview-tenant")),
		chromedp.SendKeys(css("#preview-tenant"), tenant), chromedp.Click(css("#preview-submit")), chromedp.WaitVisible(css("#tenant-preview")))
	require.Equal(t, name, text("#tenant-name"))
	require.Contains(t, text("#facts-services"), services[0])
	require.Equal(t, "it", text("#tenant-locale"))
	require.Contains(t, text("#tenant-subject"), "Notifica di violazione dei dati personali")
	body := text("#tenant-text")
	require.Contains(t, body, "NOTIFICA DI VIOLAZIONE DEI DATI PERSONALI")
	require.Contains(t, body, "Perché la vostra organizzazione è interessata")
	require.Contains(t, body, name)
	// Chrome runs the sandboxed iframe in a process of its own: read what it draws there.
	infos, err := chromedp.Targets(ctx)
	require.NoError(t, err)
	var headings []string
	for _, info := range infos {
		if info.Type != "iframe" || info.URL != "about:srcdoc" {
			continue
		}
		fctx, cancel := chromedp.NewContext(ctx, chromedp.WithTargetID(info.TargetID))
		defer cancel()
		h1, err := chromedp.Run(fctx, chromedp.TextContent(css("h1")))
		require.NoError(t, err)
		h2, err := chromedp.Run(fctx, chromedp.TextContent(css("h2")))
		require.NoError(t, err)
		headings = append(headings, h1, h2)
	}
	require.Equal(t, []string{"Notifica di violazione dei dati personali", "Perché la vostra organizzazione è interessata"}, headings,
		"one iframe, drawing the Italian HTML part")
	box, err := chromedp.Run(ctx, chromedp.Dimensions(css("#tenant-html")))
	require.NoError(t, err)
	require.Greater(t, box.Height, int64(100), "the iframe is drawn")
	buf, err := chromedp.Run(ctx, chromedp.Screenshot(css("#tenant-preview")))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(t.TempDir(), "tenant-preview.png"), buf, 0o644))
	if dir := os.Getenv("BREACHFLOW_SCREENSHOTS"); dir != "" {
		require.NoError(t, os.MkdirAll(dir, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "tenant-preview.png"), buf, 0o644))
	}

	// The follow-up form proposes phase 2, an update, typed as YAML.
	const whatsNew = "The credential was also used against the backup service."
	run("follow-up form", chromedp.Navigate(incURL), chromedp.WaitVisible(css("#followup-notice")),
		chromedp.SetValue(css("#followup-kind"), notice.PhaseUpdate),
		chromedp.SetValue(css("#followup-notice"), asYAML(t, followupDraft(t, whatsNew))), chromedp.Click(css("#followup-submit")))
	flash("follow-up", "Done: follow-up drafted")
	require.Equal(t, "2", text("#draft-phase"))
	require.Equal(t, "Update 2", text("#notice-phase-label"))
	require.Equal(t, "1", text("#approved-phase"))
	signOut()

	for _, who := range []string{"alice", "bob"} {
		signIn(who)
		run("open "+who, chromedp.Navigate(incURL), chromedp.WaitVisible(css("#approve-submit")))
		require.Contains(t, text("#approve"), "Update 2")
		run("approve "+who, chromedp.Click(css("#approve-submit")))
		flash("approve "+who, "Done: approval recorded.")
		signOut()
	}

	signIn("rita")
	deadline := time.Now().Add(time.Minute)
	for {
		run("incident page", chromedp.Navigate(incURL), chromedp.WaitVisible(css("#approved-phase")))
		if text("#approved-phase") == "2" && text("#notified-2") == strconv.Itoa(inScope) {
			break
		}
		require.True(t, time.Now().Before(deadline), "phase 2 not approved and sent: approved %q, notified %q",
			text("#approved-phase"), text("#notified-2"))
		time.Sleep(300 * time.Millisecond)
	}
	require.Contains(t, text("#phase-2 caption"), "Phase 2: update notice")
}
