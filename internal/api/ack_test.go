package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/mail/sink"
	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/testenv"
	"github.com/breachflow/breachflow/workflows"
)

// ackToken reads the acknowledgement token from the notice the tenant's contact received.
func (e *apiEnv) ackToken(t *testing.T, tenantID string) string {
	t.Helper()
	contacts, err := e.st.TenantContacts(context.Background(), tenantID)
	require.NoError(t, err)
	require.Len(t, contacts, 1)
	list := e.sink.Messages(sink.Query{To: contacts[0].Email})
	require.Len(t, list.Messages, 1, "notices to %s's contact", tenantID)
	m := ackLinkRe.FindStringSubmatch(list.Messages[0].Text)
	require.NotNil(t, m, "no acknowledgement link in %q", list.Messages[0].Text)
	require.Contains(t, list.Messages[0].HTML, m[0])
	return m[1]
}

// requireAckHeaders checks the headers every acknowledgement page carries.
func requireAckHeaders(t *testing.T, r reply) {
	t.Helper()
	require.Equal(t, "text/html; charset=utf-8", r.Header.Get("Content-Type"))
	require.Equal(t, "no-store", r.Header.Get("Cache-Control"))
	require.Equal(t, "no-referrer", r.Header.Get("Referrer-Policy"))
	require.Equal(t, "nosniff", r.Header.Get("X-Content-Type-Options"))
	require.Equal(t, "DENY", r.Header.Get("X-Frame-Options"))
	csp := r.Header.Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'none'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
		require.Contains(t, csp, d)
	}
	require.NotContains(t, csp, "script-src")
}

// TestAcknowledgementLinks runs a small incident through the API to notification and
// follows tenants' links: looking never acknowledges, posting acknowledges once, and
// every link that leads nowhere gets the same 404 page.
func TestAcknowledgementLinks(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{Tenants: 20, Contacts: 1, Worker: true})
	ctx := context.Background()
	tenants := e.tenantIDs(t, 20)
	_, err := e.st.Pool().Exec(ctx, `UPDATE tenants SET locale = CASE id WHEN $1 THEN 'it' ELSE 'en' END`, tenants[1])
	require.NoError(t, err)
	id, v := e.notifyIncident(t, "Device database exposure", 20)
	require.NotNil(t, v.Scope)
	require.Equal(t, 20, v.Scope.Tenants)
	require.Equal(t, 20, v.Ledger.Tenants)
	require.Equal(t, 20, v.Ledger.Initial().Notified)
	require.Zero(t, v.Ledger.Initial().Owed)
	require.Zero(t, v.Ledger.Acknowledged)

	token := e.ackToken(t, tenants[0])
	page := "/ack/" + token
	acks := func() int { return e.count(t, `SELECT count(*) FROM acknowledgements`) }

	// Looking: three GETs and a HEAD show the page and change nothing.
	for range 3 {
		r := e.must(t, http.StatusOK, "GET", page, keyNone, nil)
		requireAckHeaders(t, r)
		body := string(r.Body)
		require.Contains(t, body, `<html lang="en">`)
		require.Contains(t, body, "Acknowledge receipt")
		// The notice's reference and title, not the incident's internal id.
		require.Contains(t, body, "Device database exposure (INC-API-TEST)")
		require.NotContains(t, body, id)
		require.Contains(t, body, `<form method="post">`)
	}
	head := e.must(t, http.StatusOK, "HEAD", page, keyNone, nil)
	require.Empty(t, head.Body)
	requireAckHeaders(t, head)
	require.Zero(t, acks(), "looking at the page acknowledged")

	// Posting records it once; the second post says it was already done.
	first := e.must(t, http.StatusOK, "POST", page, keyNone, nil)
	requireAckHeaders(t, first)
	require.Contains(t, string(first.Body), "Thank you. Your acknowledgement was recorded at")
	require.NotContains(t, string(first.Body), "<form")
	require.Equal(t, 1, acks())
	second := e.must(t, http.StatusOK, "POST", page, keyNone, nil)
	require.Contains(t, string(second.Body), "This notice was already acknowledged at")
	require.Equal(t, 1, acks())
	require.Equal(t, 1, e.count(t, `SELECT count(*) FROM acknowledgements WHERE incident_id = $1 AND tenant_id = $2 AND via = 'link'`, id, tenants[0]))
	require.Equal(t, 1, e.count(t, `SELECT count(*) FROM audit_log WHERE action = 'tenant.acknowledged'`))
	after := e.must(t, http.StatusOK, "GET", page, keyNone, nil)
	require.Contains(t, string(after.Body), "This notice was already acknowledged at")
	require.NotContains(t, string(after.Body), "<form")
	require.Equal(t, 1, e.view(t, id).Ledger.Acknowledged, "the incident counts the acknowledgement")

	// The page speaks the tenant's language, and shows its name as text, not markup.
	_, err = e.st.Pool().Exec(ctx, `UPDATE tenants SET name = '<script>alert(1)</script> & Co' WHERE id = $1`, tenants[1])
	require.NoError(t, err)
	it := e.must(t, http.StatusOK, "GET", "/ack/"+e.ackToken(t, tenants[1]), keyNone, nil)
	require.Contains(t, string(it.Body), `<html lang="it">`)
	require.Contains(t, string(it.Body), "Conferma di ricezione")
	require.Contains(t, string(it.Body), "Vi chiediamo di confermare")
	require.Contains(t, string(it.Body), "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co")
	require.NotContains(t, string(it.Body), "<script>")
	require.Equal(t, 1, acks())

	// Links that lead nowhere: unknown, truncated, lengthened, upper-cased, expired.
	expiredToken := e.ackToken(t, tenants[2])
	tag, err := e.st.Pool().Exec(ctx, `UPDATE ack_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = $1`, store.HashKey(expiredToken))
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected())
	other := e.ackToken(t, tenants[3])
	bad := map[string]string{
		"unknown":    randomHex(32),
		"truncated":  other[:63],
		"half":       other[:32],
		"lengthened": other + "0",
		"upper case": strings.ToUpper(other),
		"expired":    expiredToken,
		"not hex":    strings.Repeat("z", 64),
	}
	var notFound []byte
	for name, tok := range bad {
		for _, method := range []string{"GET", "POST"} {
			r := e.do(t, method, "/ack/"+tok, keyNone, nil)
			require.Equal(t, http.StatusNotFound, r.Code, "%s %s: %s", method, name, r.Body)
			requireAckHeaders(t, r)
			if notFound == nil {
				notFound = r.Body
				require.Contains(t, string(notFound), "Link not valid")
			}
			require.Equal(t, string(notFound), string(r.Body), "%s %s differs from the other 404 pages", method, name)
		}
	}
	require.Equal(t, 1, acks(), "a dead link acknowledged")
	require.NotContains(t, e.logged(), token)

	// The tenant whose link still works can use it after all that.
	e.must(t, http.StatusOK, "POST", "/ack/"+other, keyNone, nil)
	require.Equal(t, 2, acks())

	// Ten tabs posting at once record one acknowledgement; one of them says so first.
	racing := "/ack/" + e.ackToken(t, tenants[4])
	pages := make(chan reply, 10)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { pages <- e.do(t, "POST", racing, keyNone, nil) })
	}
	wg.Wait()
	close(pages)
	thanked := 0
	for r := range pages {
		require.Equal(t, http.StatusOK, r.Code, r.String())
		if strings.Contains(string(r.Body), "Thank you.") {
			thanked++
		} else {
			require.Contains(t, string(r.Body), "This notice was already acknowledged at")
		}
	}
	require.Equal(t, 1, thanked)
	require.Equal(t, 3, acks())

	// Many tenants at once, each from three tabs: the POSTs are recorded in shared
	// transactions, and still each tenant once, with one audit row, thanked once.
	many := tenants[5:]
	type answer struct {
		tenant string
		r      reply
	}
	answers := make(chan answer, 3*len(many))
	for _, tenant := range many {
		link := "/ack/" + e.ackToken(t, tenant)
		for range 3 {
			wg.Go(func() { answers <- answer{tenant, e.do(t, "POST", link, keyNone, nil)} })
		}
	}
	wg.Wait()
	close(answers)
	thankedBy := map[string]int{}
	for a := range answers {
		require.Equal(t, http.StatusOK, a.r.Code, a.r.String())
		if strings.Contains(string(a.r.Body), "Thank you.") {
			thankedBy[a.tenant]++
		}
	}
	require.Len(t, thankedBy, len(many))
	for tenant, n := range thankedBy {
		require.Equal(t, 1, n, tenant)
	}
	require.Equal(t, 3+len(many), acks())
	require.Equal(t, 3+len(many), e.count(t, `SELECT count(*) FROM audit_log WHERE action = 'tenant.acknowledged'`))

	// Closing: the workflow finishes, and changes to a closed incident are a conflict.
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/close", keyResponder, map[string]string{"reason": "test over"})
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := e.tc.DescribeWorkflowExecution(ctx, workflows.IncidentWorkflowID(id), "")
		require.NoError(t, err)
		if d.WorkflowExecutionInfo.Status == enums.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			break
		}
		require.True(t, time.Now().Before(deadline), "workflow still %s", d.WorkflowExecutionInfo.Status)
		time.Sleep(50 * time.Millisecond)
	}
	r := e.must(t, http.StatusConflict, "POST", "/v1/incidents/"+id+"/close", keyResponder, map[string]string{"reason": "again"})
	require.Equal(t, "conflict", r.Err(t).Code)
	r = e.must(t, http.StatusConflict, "POST", "/v1/incidents/"+id+"/followup", keyResponder,
		map[string]any{"kind": "update", "notice": followupJSON(t, "Nothing new: the incident is closed.")})
	require.Equal(t, "conflict", r.Err(t).Code)
	require.Contains(t, r.Err(t).Message, "closed incidents take no more changes")
	require.Equal(t, store.StageClosed, e.view(t, id).Incident.Stage)
	// A link of a closed incident still shows its page.
	e.must(t, http.StatusOK, "GET", page, keyNone, nil)
}

// TestAckPageNamesTheApprovedNotice: the page names the notice the tenant was sent, by its
// reference and the declared title, and shows nothing of the incident's id or of another
// reference.
func TestAckPageNamesTheApprovedNotice(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{Tenants: 1, Contacts: 1, Worker: true})
	var d notice.Draft
	require.NoError(t, json.Unmarshal(draftJSON(t, ""), &d))
	f := d.Fields
	f.Reference = "PSIRT-2026-0042"
	id := e.notifyNotice(t, "Unauthorised access to device records", f, 1)
	page := "/ack/" + e.ackToken(t, e.tenantIDs(t, 1)[0])
	for _, method := range []string{"GET", "POST"} {
		body := string(e.must(t, http.StatusOK, method, page, keyNone, nil).Body)
		require.Contains(t, body, "<dd>Unauthorised access to device records (PSIRT-2026-0042)</dd>", method)
		require.NotContains(t, body, id, method)
		require.NotContains(t, body, "INC-API-TEST", method)
	}
}

// TestAckBadLinksDoNotLockOutAValidOne: with the default limits, made-up links from one
// address get the 404 page, then 429; the customer with the right link from that same
// address still sees the page and acknowledges, once.
func TestAckBadLinksDoNotLockOutAValidOne(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{Tenants: 2, Contacts: 1, Worker: true})
	id, _ := e.notifyIncident(t, "Badge database exposure", 2)
	tenant := e.tenantIDs(t, 1)[0]
	page := "/ack/" + e.ackToken(t, tenant)
	d := api.DefaultLimits
	e.api.Limits = api.NewLimiter(d)

	for range d.AckBadBurst {
		e.must(t, http.StatusNotFound, "GET", "/ack/"+randomHex(32), keyNone, nil)
	}
	for _, method := range []string{"GET", "POST", "GET", "POST", "GET"} {
		requireLimited(t, e.do(t, method, "/ack/"+randomHex(32), keyNone, nil), 1, "made-up link past the burst")
	}
	// Malformed links are refused without a lookup, as before.
	e.must(t, http.StatusNotFound, "GET", "/ack/"+strings.Repeat("z", 64), keyNone, nil)

	r := e.must(t, http.StatusOK, "GET", page, keyNone, nil)
	require.Contains(t, string(r.Body), `<form method="post">`)
	first := e.must(t, http.StatusOK, "POST", page, keyNone, nil)
	require.Contains(t, string(first.Body), "Thank you. Your acknowledgement was recorded at")
	second := e.must(t, http.StatusOK, "POST", page, keyNone, nil)
	require.Contains(t, string(second.Body), "This notice was already acknowledged at")
	require.Equal(t, 1, e.count(t, `SELECT count(*) FROM acknowledgements WHERE incident_id = $1`, id))
	require.Equal(t, 1, e.count(t, `SELECT count(*) FROM acknowledgements WHERE incident_id = $1 AND tenant_id = $2 AND via = 'link'`, id, tenant))
	require.Equal(t, 1, e.count(t, `SELECT count(*) FROM audit_log WHERE action = 'tenant.acknowledged'`))
	// The made-up links are still refused.
	requireLimited(t, e.do(t, "GET", "/ack/"+randomHex(32), keyNone, nil), 1, "made-up link after the good one")
}

// TestAckLookupsPerAddressStayBounded: every lookup spends the address's Ack bucket, so a
// client mixing good and bad links gets no more than its burst of lookups; the address
// next to it, behind the same proxy, is not affected.
func TestAckLookupsPerAddressStayBounded(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{Tenants: 2, Contacts: 1, Worker: true})
	e.notifyIncident(t, "Badge database exposure", 2)
	tenants := e.tenantIDs(t, 2)
	pageA, pageB := "/ack/"+e.ackToken(t, tenants[0]), "/ack/"+e.ackToken(t, tenants[1])
	e.api.Limits = api.NewLimiter(api.Limits{Ack: 0.001, AckBurst: 5, AckBad: 0.001, AckBadBurst: 2})
	e.api.ClientHeader = forwardedHeader
	flood, office := via("203.0.113.50"), via("198.51.100.20")

	e.must(t, http.StatusNotFound, "GET", "/ack/"+randomHex(32), keyNone, nil, flood...)
	e.must(t, http.StatusNotFound, "GET", "/ack/"+randomHex(32), keyNone, nil, flood...)
	requireLimited(t, e.do(t, "GET", "/ack/"+randomHex(32), keyNone, nil, flood...), 1000, "third made-up link")
	requireLimited(t, e.do(t, "GET", "/ack/"+randomHex(32), keyNone, nil, flood...), 1000, "fourth made-up link")
	e.must(t, http.StatusOK, "GET", pageA, keyNone, nil, flood...)
	// Five lookups: nothing more from this address reaches the database, good link or not.
	requireLimited(t, e.do(t, "GET", pageA, keyNone, nil, flood...), 1000, "sixth lookup")
	requireLimited(t, e.do(t, "POST", pageA, keyNone, nil, flood...), 1000, "seventh lookup")
	// A malformed link needs no lookup and still gets its 404 page.
	e.must(t, http.StatusNotFound, "GET", "/ack/not-a-token", keyNone, nil, flood...)
	require.Zero(t, e.count(t, `SELECT count(*) FROM acknowledgements`))

	e.must(t, http.StatusOK, "POST", pageB, keyNone, nil, office...)
	e.must(t, http.StatusOK, "POST", pageA, keyNone, nil, office...)
	require.Equal(t, 2, e.count(t, `SELECT count(*) FROM acknowledgements`))
}

// TestAckMalformedLinksAreRefusedWithoutALookup runs the pages over a database that is
// gone: malformed links get the 404 page without trying it, a well-formed one tries it
// (and a failed lookup spends nothing of the client's bad-link budget).
func TestAckMalformedLinksAreRefusedWithoutALookup(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), testenv.DatabaseURL(t))
	require.NoError(t, err)
	pool.Close()
	core, logs := observer.New(zap.DebugLevel)
	srv := api.New(store.New(pool), nil, zap.New(core))
	srv.Limits = api.NewLimiter(api.Limits{Ack: 100, AckBurst: 100, AckBad: 0.001, AckBadBurst: 1})
	h := srv.Handler()
	good := randomHex(32)
	lookups := func() int { return logs.FilterMessage("acknowledgement lookup").Len() }

	for _, tok := range []string{good[:63], good + "0", strings.ToUpper(good), strings.Repeat("z", 64), "x", good[:32]} {
		for _, method := range []string{"GET", "POST"} {
			rec := serveDirect(h, method, "/ack/"+tok, nil, 0, nil)
			require.Equal(t, http.StatusNotFound, rec.Code, "%s %s", method, tok)
			require.Contains(t, rec.Body.String(), "Link not valid")
		}
	}
	require.Zero(t, lookups(), "a malformed link was looked up")

	for i := range 3 {
		rec := serveDirect(h, "GET", "/ack/"+good, nil, 0, nil)
		require.Equal(t, http.StatusNotFound, rec.Code, rec.Body.String())
		require.Equal(t, i+1, lookups())
	}
}
