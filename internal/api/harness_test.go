package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/breachflow/breachflow/activities"
	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/devenv"
	"github.com/breachflow/breachflow/internal/mail"
	"github.com/breachflow/breachflow/internal/mail/sink"
	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/tenants"
	"github.com/breachflow/breachflow/internal/testenv"
	bfworker "github.com/breachflow/breachflow/worker"
	"github.com/breachflow/breachflow/workflows"
)

// publicURL is the base of the acknowledgement links the worker writes into notices.
const publicURL = "https://notices.provider.example"

// otherPartner is a second partner team, so a partner key can be shown its own reviews only.
var otherPartner = store.Partner{Name: "other", DisplayName: "Other product", TeamEmails: []string{"team@other.example"},
	Service: "backup", ResponseDeadlineHours: 24}

// Key labels: one API key each. "revoked" is an admin key that was revoked.
const (
	keyAdmin      = "admin"
	keyResponder  = "responder"
	keyApprover   = "approver"
	keyApprover2  = "approver2"
	keyDevicecare = "partner:devicecare"
	keyOther      = "partner:other"
	keyRevoked    = "revoked"
	keyNone       = ""
)

// envOptions shapes an apiEnv.
type envOptions struct {
	Tenants, Contacts int  // generated tenants and contacts per tenant; 0 tenants imports none
	Worker            bool // run a worker for the incident workflows
}

// apiEnv is the API over HTTP on a fresh database with the shared in-process Temporal
// server, optionally a worker on a task queue of its own that sends through the real
// SendGrid client to the mail sink, and one API key per role.
type apiEnv struct {
	st     *store.Store
	tc     client.Client
	api    *api.Server
	srv    *httptest.Server
	sink   *sink.Sink
	logs   *observer.ObservedLogs
	keys   map[string]string
	keyIDs map[string]int64
}

func newAPIEnv(t *testing.T, opts envOptions) *apiEnv {
	t.Helper()
	ctx := context.Background()
	core, logs := observer.New(zap.DebugLevel)
	e := &apiEnv{st: testenv.Store(t), tc: testenv.Temporal(t).GetDefaultClient(), logs: logs,
		keys: map[string]string{}, keyIDs: map[string]int64{}}
	require.NoError(t, e.st.UpsertPartner(ctx, devenv.DemoPartner))
	require.NoError(t, e.st.UpsertPartner(ctx, otherPartner))
	if opts.Tenants > 0 {
		testenv.Tenants(t, e.st, tenants.Options{Tenants: opts.Tenants, ContactsPerTenant: max(opts.Contacts, 1), Seed: 7})
	}

	tq := "api-" + randomHex(4)
	e.api = api.New(e.st, e.tc, zap.New(core))
	e.api.TaskQueue = tq
	e.api.Timing = workflows.Timing{AckCheckInterval: 200 * time.Millisecond}
	e.api.Limits = nil
	e.api.PublicURL = publicURL
	e.srv = httptest.NewServer(e.api.Handler())
	t.Cleanup(e.srv.Close)

	if opts.Worker {
		var err error
		e.sink, err = sink.New(sink.Config{}, nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = e.sink.Close() })
		sinkSrv := httptest.NewServer(e.sink.Handler())
		t.Cleanup(sinkSrv.Close)
		sender, err := mail.NewSender(mail.Config{APIKey: "SG.test", BaseURL: sinkSrv.URL, FromEmail: "notices@provider.example",
			Timeout: 10 * time.Second}, nil)
		require.NoError(t, err)
		secret, err := e.st.AckSecret(ctx, "")
		require.NoError(t, err)
		w := sdkworker.New(e.tc, tq, bfworker.Options())
		bfworker.Register(w, &activities.Activities{Store: e.st, Mail: sender, Logger: zap.NewNop(), Now: time.Now,
			PublicURL: publicURL, AckSecret: secret, ResponderEmails: []string{"responders@provider.example"}})
		require.NoError(t, w.Start())
		t.Cleanup(w.Stop)
	}

	for label, role := range map[string]string{keyAdmin: "admin", keyResponder: "responder", keyApprover: "approver",
		keyApprover2: "approver", keyDevicecare: "partner:devicecare", keyOther: "partner:other", keyRevoked: "admin"} {
		key, k, err := e.st.CreateAPIKey(ctx, strings.ReplaceAll(label, ":", "-")+" key", role, "test")
		require.NoError(t, err)
		e.keys[label], e.keyIDs[label] = key, k.ID
	}
	require.NoError(t, e.st.RevokeAPIKey(ctx, e.keyIDs[keyRevoked], "test"))
	return e
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// reply is one HTTP answer.
type reply struct {
	Code   int
	Header http.Header
	Body   []byte
}

// Err decodes the error body.
func (r reply) Err(t *testing.T) api.Error {
	t.Helper()
	var out struct{ Error *api.Error }
	require.NoError(t, json.Unmarshal(r.Body, &out), "not an error body: %s", r.Body)
	require.NotNil(t, out.Error, "not an error body: %s", r.Body)
	return *out.Error
}

// JSON decodes the body into v.
func (r reply) JSON(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(r.Body, v), "%s", r.Body)
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.Code, r.Body) }

// raw is a request body sent as is.
type raw string

// do sends a request as the key labelled key ("" sends none). body is nil (no body), raw,
// or anything else, sent as JSON. header holds name, value pairs.
func (e *apiEnv) do(t *testing.T, method, path, key string, body any, header ...string) reply {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case raw:
		rd = strings.NewReader(string(b))
	default:
		data, err := json.Marshal(b)
		require.NoError(t, err)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	require.NoError(t, err)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		k, ok := e.keys[key]
		require.True(t, ok, "no key %q", key)
		req.Header.Set("Authorization", "Bearer "+k)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{Code: resp.StatusCode, Header: resp.Header, Body: data}
}

// must sends a request and requires the status code.
func (e *apiEnv) must(t *testing.T, code int, method, path, key string, body any, header ...string) reply {
	t.Helper()
	r := e.do(t, method, path, key, body, header...)
	require.Equal(t, code, r.Code, "%s %s: %s", method, path, r.Body)
	return r
}

func (e *apiEnv) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, e.st.Pool().QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// declare declares an incident as the responder and returns its id.
func (e *apiEnv) declare(t *testing.T, body any) string {
	t.Helper()
	var out struct{ Incident store.Incident }
	e.must(t, http.StatusCreated, "POST", "/v1/incidents", keyResponder, body).JSON(t, &out)
	require.NotEmpty(t, out.Incident.ID)
	return out.Incident.ID
}

// view reads GET /v1/incidents/{id}.
func (e *apiEnv) view(t *testing.T, id string) api.IncidentView {
	t.Helper()
	var v api.IncidentView
	e.must(t, http.StatusOK, "GET", "/v1/incidents/"+id, keyResponder, nil).JSON(t, &v)
	return v
}

// waitFor polls the incident's workflow status until cond holds.
func (e *apiEnv) waitFor(t *testing.T, id, what string, cond func(workflows.Status) bool) workflows.Status {
	t.Helper()
	return *e.waitView(t, id, what, func(v api.IncidentView) bool { return v.Status != nil && cond(*v.Status) }).Status
}

// waitView polls GET /v1/incidents/{id} until cond holds for the view.
func (e *apiEnv) waitView(t *testing.T, id, what string, cond func(api.IncidentView) bool) api.IncidentView {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		v := e.view(t, id)
		if cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; view %+v", what, v)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitStage waits until the incident is in stage both in its workflow's status and in
// PostgreSQL: the workflow takes a stage before the activity that stores it returns.
func (e *apiEnv) waitStage(t *testing.T, id string, stage workflows.Stage) api.IncidentView {
	t.Helper()
	return e.waitView(t, id, string(stage), func(v api.IncidentView) bool {
		return v.Status != nil && v.Status.Stage == stage && v.Incident.Stage == string(stage)
	})
}

// logged returns every log line of the API (message and fields) in one string.
func (e *apiEnv) logged() string {
	var b strings.Builder
	for _, entry := range e.logs.All() {
		fmt.Fprintln(&b, entry.Message, entry.ContextMap())
	}
	return b.String()
}

// draftJSON is a complete notice draft for an incident declared as declaration(title, …)
// declares it: the title, awareness time and data categories are the declaration's, so
// the draft leaves out the time, and states the title (when given) and the categories as
// declared. The locales other than English read the English text by explicit choice.
func draftJSON(t *testing.T, title string) json.RawMessage {
	t.Helper()
	return draftOf(t, notice.Fields{
		Reference: "INC-API-TEST", Title: title,
		Nature:                "Unauthorised access to a device-management database through a leaked service credential.",
		DataCategories:        []string{"device identifiers"},
		DataSubjectCategories: []string{"employees of the tenant"},
		ApproxDataSubjects:    1200, ApproxRecords: 5400,
		Contact:            notice.ContactPoint{Name: "Privacy Office", Role: "DPO", Email: "privacy@provider.example", Phone: "+49 30 1234567"},
		LikelyConsequences: "Targeted phishing against affected users is possible.",
		MeasuresTaken:      "The credential was revoked and access logs were reviewed.",
		MeasuresProposed:   "Rotate device enrolment tokens; watch for phishing.",
	})
}

// followupJSON is draftJSON as a follow-up's draft: it leaves the title to the
// declaration and says what is new.
func followupJSON(t *testing.T, whatsNew string) json.RawMessage {
	t.Helper()
	var d notice.Draft
	require.NoError(t, json.Unmarshal(draftJSON(t, ""), &d))
	d.Fields.WhatsNew = whatsNew
	raw, err := json.Marshal(d)
	require.NoError(t, err)
	return raw
}

// draftOf is a draft with fields f whose other locales fall back to English; the API
// stamps its configured sender.
func draftOf(t *testing.T, f notice.Fields) json.RawMessage {
	t.Helper()
	raw, err := json.Marshal(notice.Draft{Fields: f, EnglishFallback: otherLocales()})
	require.NoError(t, err)
	return raw
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

// declaration is a valid declaration body; notice may be nil.
func declaration(title string, notice json.RawMessage) map[string]any {
	d := map[string]any{
		"title": title, "summary": "A leaked service credential gave read access to the device database.",
		"severity": "high", "aware_at": time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339),
		"data_categories": []string{"device identifiers"},
	}
	if notice != nil {
		d["notice"] = notice
	}
	return d
}

// tenantIDs returns the first n tenant ids in order.
func (e *apiEnv) tenantIDs(t *testing.T, n int) []string {
	t.Helper()
	rows, err := e.st.Pool().Query(context.Background(), `SELECT id FROM tenants ORDER BY id LIMIT $1`, n)
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Len(t, ids, n)
	return ids
}

var ackLinkRe = regexp.MustCompile(regexp.QuoteMeta(publicURL) + `/ack/([0-9a-f]{64})\b`)

// notifyIncident declares an incident with its notice, assesses, scopes it to the first n
// tenants and approves it with two approver keys, then waits for tracking and returns the
// view then.
func (e *apiEnv) notifyIncident(t *testing.T, title string, n int) (string, api.IncidentView) {
	t.Helper()
	id := e.declare(t, declaration(title, draftJSON(t, title)))
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/assessment", keyResponder,
		map[string]any{"reportable": true, "rationale": "personal data of the controllers' users exposed"})
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/scope", keyResponder, store.ScopeCriteria{TenantIDs: e.tenantIDs(t, n)})
	st := e.waitFor(t, id, "declared draft", func(s workflows.Status) bool { return s.ContentHash != "" })
	e.approveTwice(t, id, st.ContentHash)
	return id, e.waitStage(t, id, workflows.StageTracking)
}

// approveTwice approves hash for the incident's current scope version with both approver keys.
func (e *apiEnv) approveTwice(t *testing.T, id, hash string) {
	t.Helper()
	for _, key := range []string{keyApprover, keyApprover2} {
		e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/approval", key, map[string]string{"content_hash": hash})
	}
}
