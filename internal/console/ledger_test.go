package console_test

import (
	"context"
	"encoding/csv"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/mail/sink"
)

// allCountries are the countries of the generated tenants (seed 3): scoping by them
// takes every tenant in.
const allCountries = "DE, IT, FR, ES, AT, CH, BE, NL, IE, GB, US, MX"

// elementRe finds the start tag of the element with id.
func elementRe(id string) *regexp.Regexp {
	return regexp.MustCompile(`<[a-z]+\b[^>]*\bid="` + regexp.QuoteMeta(id) + `"[^>]*>`)
}

// textByID is the text of the element with id, up to its first child tag.
func textByID(body, id string) string {
	loc := elementRe(id).FindStringIndex(body)
	if loc == nil {
		return ""
	}
	rest := body[loc[1]:]
	if i := strings.IndexByte(rest, '<'); i >= 0 {
		rest = rest[:i]
	}
	return strings.TrimSpace(rest)
}

// attrByID is attribute name of the element with id ("" when either is missing).
func attrByID(body, id, name string) string {
	tag := elementRe(id).FindString(body)
	if m := regexp.MustCompile(`\b` + name + `="([^"]*)"`).FindStringSubmatch(tag); m != nil {
		return m[1]
	}
	return ""
}

// waitPage reloads path until ok holds for its body, and returns that body.
func (b *browser) waitPage(path string, ok func(string) bool) string {
	b.t.Helper()
	var body string
	require.Eventually(b.t, func() bool {
		var code int
		code, body = b.get(path)
		return code == http.StatusOK && ok(body)
	}, time.Minute, 200*time.Millisecond, "waiting on %s; last page: %s", path, flashOf(body))
	return body
}

// releaseToAll declares an incident through the console, assesses it, scopes every
// tenant and has two approvers approve: the notice is released to every tenant. It
// returns the incident's page.
func (s *stack) releaseToAll(t *testing.T) string {
	t.Helper()
	rita := s.browser(t)
	rita.signIn(s.keys["rita"])
	resp, err := rita.c.PostForm(s.url+"/console/declare", validDeclaration(rita.csrf("/console/declare")))
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	page := strings.SplitN(resp.Header.Get("Location"), "?", 2)[0]
	require.Regexp(t, `^/console/incidents/INC-`, page)
	rita.waitPage(page, func(body string) bool { return textByID(body, "stage") == "assessing" })

	tok := rita.csrf(page)
	for _, f := range []struct {
		action string
		form   url.Values
	}{
		{"assess", url.Values{"reportable": {"true"}, "rationale": {"customers' users affected"}}},
		{"scope", url.Values{"countries": {allCountries}}},
	} {
		f.form.Set("csrf", tok)
		code, body := rita.post(page+"/"+f.action, f.form)
		require.Equal(t, http.StatusSeeOther, code, "%s: %s", f.action, flashOf(body))
	}
	for _, who := range []string{"alice", "bob"} {
		b := s.browser(t)
		b.signIn(s.keys[who])
		_, body := b.get(page)
		m := regexp.MustCompile(`name="content_hash" value="([0-9a-f]{64})"`).FindStringSubmatch(body)
		require.NotNil(t, m, "no approve form for %s", who)
		code, body := b.post(page+"/approve", url.Values{"csrf": {csrfRe.FindStringSubmatch(body)[1]}, "content_hash": {m[1]}})
		require.Equal(t, http.StatusSeeOther, code, "approve %s: %s", who, flashOf(body))
	}
	return page
}

// ackOne follows the acknowledgement link of one notice in the mail sink, as a customer would.
func (s *stack) ackOne(t *testing.T) {
	t.Helper()
	var link string
	require.Eventually(t, func() bool {
		for _, m := range s.sink.Messages(sink.Query{Limit: 100}).Messages {
			if l := ackLinkRe.FindString(m.Text); strings.HasPrefix(l, s.url) {
				link = l
				return true
			}
		}
		return false
	}, time.Minute, 100*time.Millisecond, "no notice in the mail sink")
	resp, err := http.PostForm(link, url.Values{})
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// TestCountsOutliveTheWorker: once the worker is gone (a restart lost it, or Temporal is
// down), the incident page, the incidents list and the evidence CSV still count the
// tenants from the ledger, and a tenant name that a spreadsheet would run as a formula is
// exported as text.
func TestCountsOutliveTheWorker(t *testing.T) {
	s := newStack(t, 12)
	page := s.releaseToAll(t)
	id := strings.TrimPrefix(page, "/console/incidents/")
	rita := s.browser(t)
	rita.signIn(s.keys["rita"])
	body := rita.waitPage(page, func(body string) bool { return textByID(body, "delivered-1") == "12" })
	require.Equal(t, "12", textByID(body, "notified-1"))
	require.Equal(t, "12", attrByID(body, "bar-notified-1", "value"))
	require.Equal(t, "12", attrByID(body, "bar-notified-1", "max"))
	require.NotContains(t, body, `id="retry"`, "nothing is owed: no retry offered")
	s.ackOne(t)
	body = rita.waitPage(page, func(body string) bool { return textByID(body, "acked") == "1" })
	require.Equal(t, "1", attrByID(body, "bar-acked", "value"))
	require.Equal(t, "12", attrByID(body, "bar-acked", "max"))
	require.Equal(t, "11", textByID(body, "open-count"))

	const formula = `=HYPERLINK("https://attacker.invalid","Open")`
	var renamed string
	require.NoError(t, s.st.Pool().QueryRow(context.Background(), `UPDATE tenants SET name = $1
		WHERE id = (SELECT min(tenant_id) FROM ledger WHERE incident_id = $2) RETURNING id`, formula, id).Scan(&renamed))

	s.stopWorker()

	_, body = rita.get("/console/")
	row := elementRe("row-" + id).FindStringIndex(body)
	require.NotNil(t, row, "the incident is listed")
	cells := body[row[0]:]
	cells = cells[:strings.Index(cells, "</tr>")]
	require.Contains(t, cells, `<td class="scope">12</td>`, "scope is counted in tenants without the workflow")
	require.Contains(t, cells, `<span class="notified">12</span> / <span class="acked">1</span>`)
	require.Contains(t, cells, `<td class="left">—</td>`, "no tenant is owed a notice")

	_, body = rita.get(page)
	require.Contains(t, body, `id="no-status"`, "the page says the workflow does not answer")
	require.Equal(t, "12", textByID(body, "scope-total"))
	require.Equal(t, "12", attrByID(body, "bar-delivered-1", "value"))
	require.Equal(t, "1", textByID(body, "acked"))
	require.Equal(t, "11", textByID(body, "open-count"))

	resp, err := rita.c.Get(s.url + page + "/tenants.csv")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/csv; charset=utf-8", resp.Header.Get("Content-Type"))
	records, err := csv.NewReader(resp.Body).ReadAll()
	require.NoError(t, err)
	require.Equal(t, []string{"tenant_id", "tenant_name", "country", "phase", "state", "deadline", "content_hash", "scope_version",
		"released_at", "notices", "first_sent_at", "notified_at", "delivered_at", "bounced_at", "last_error", "reminders",
		"acknowledged_at", "deadline_met"}, records[0])
	require.Len(t, records[1:], 12, "one line per tenant in scope")
	col := map[string]int{}
	for i, name := range records[0] {
		col[name] = i
	}
	acked := 0
	for _, rec := range records[1:] {
		require.Equal(t, "1", rec[col["phase"]])
		require.Equal(t, "delivered", rec[col["state"]], rec[col["tenant_id"]])
		require.Equal(t, "1", rec[col["scope_version"]])
		require.Equal(t, "1", rec[col["notices"]])
		require.Regexp(t, `^[0-9a-f]{64}$`, rec[col["content_hash"]])
		for _, c := range []string{"deadline", "released_at", "first_sent_at", "notified_at", "delivered_at"} {
			_, err := time.Parse(time.RFC3339, rec[col[c]])
			require.NoError(t, err, "%s of %s", c, rec[col["tenant_id"]])
		}
		require.Empty(t, rec[col["bounced_at"]])
		require.Equal(t, "true", rec[col["deadline_met"]])
		if rec[col["acknowledged_at"]] != "" {
			acked++
		}
		if rec[col["tenant_id"]] == renamed {
			require.Equal(t, "'"+formula, rec[col["tenant_name"]], "a formula is exported as text")
		}
	}
	require.Equal(t, 1, acked)
}

// TestRetryOffersWhatTheLedgerOwes: a SendGrid key refused for good leaves every tenant
// owed; the incident page shows the failures, the alert and a retry button; once the
// worker runs with a fixed key, the button sends what is owed, and is gone.
func TestRetryOffersWhatTheLedgerOwes(t *testing.T) {
	s := newStackWith(t, stackOptions{Tenants: 12, MailKey: "SG.revoked",
		Sink: sink.Config{APIKeys: []string{"SG.revoked", "SG.fixed"}, ForbiddenKeys: []string{"SG.revoked"}}})
	page := s.releaseToAll(t)
	rita := s.browser(t)
	rita.signIn(s.keys["rita"])
	body := rita.waitPage(page, func(body string) bool {
		return textByID(body, "failed-1") == "12" && strings.Contains(body, `id="alerts"`)
	})
	require.Equal(t, "0", textByID(body, "notified-1"))
	require.Equal(t, "0", attrByID(body, "bar-notified-1", "value"))
	require.Equal(t, "12", textByID(body, "owed-1"))
	require.NotEmpty(t, textByID(body, "last-error-1"))
	require.Contains(t, body, "send_failed")
	require.Equal(t, "12", textByID(body, "retry-tenants"))
	require.Contains(t, body, `id="retry-submit"`)

	// The key is fixed and the worker restarted with it.
	s.stopWorker()
	s.startWorker(t, "SG.fixed")
	code, body := rita.post(page+"/retry", url.Values{"csrf": {rita.csrf(page)}})
	require.Equal(t, http.StatusSeeOther, code, flashOf(body))
	body = rita.waitPage(page, func(body string) bool { return textByID(body, "notified-1") == "12" })
	require.Equal(t, "0", textByID(body, "failed-1"))
	require.Equal(t, "0", textByID(body, "owed-1"))
	require.NotContains(t, body, `id="retry"`, "nothing is owed any more")

	var retried int
	require.NoError(t, s.st.Pool().QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE action = 'notice.retry_requested'
		AND actor LIKE 'rita#%'`).Scan(&retried))
	require.Equal(t, 1, retried, "the retry is audited under the responder's name")
}
