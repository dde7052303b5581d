package api_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/mail"
	"github.com/breachflow/breachflow/internal/mail/sink"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/testenv"
	"github.com/breachflow/breachflow/workflows"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	webhookPath     = "/v1/webhooks/sendgrid"
	webhookIncident = "INC-TEST-0001"
)

// webhookPost is one Event Webhook post as it reached the API.
type webhookPost struct {
	body   []byte
	header http.Header
	status int // the API's answer; 0 while held
}

// webhookTap sits in front of the API and records every post. While holding it keeps posts
// from the API and answers 200 itself, so a genuine signed post can be replayed later.
type webhookTap struct {
	next http.Handler

	mu    sync.Mutex
	hold  bool
	posts []webhookPost
}

func (tp *webhookTap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	post := webhookPost{body: body, header: r.Header.Clone()}
	tp.mu.Lock()
	hold := tp.hold
	tp.mu.Unlock()
	if !hold {
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		tp.next.ServeHTTP(rec, r)
		post.status = rec.Code
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	} else {
		w.WriteHeader(http.StatusOK)
	}
	tp.mu.Lock()
	tp.posts = append(tp.posts, post)
	tp.mu.Unlock()
}

func (tp *webhookTap) setHold(hold bool) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	tp.hold = hold
}

func (tp *webhookTap) recorded() []webhookPost {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([]webhookPost(nil), tp.posts...)
}

// webhookEnv is the API on a fresh database, a mail sink posting signed events to it, and
// the real SendGrid client sending to the sink.
type webhookEnv struct {
	st         *store.Store
	api        *api.Server
	handler    http.Handler
	hook       *httptest.Server
	tap        *webhookTap
	sink       *sink.Sink
	sender     *mail.Sender
	signingKey *ecdsa.PrivateKey
	logs       *observer.ObservedLogs
}

// newWebhookEnv is the webhook alone: a server without Temporal.
func newWebhookEnv(t *testing.T) *webhookEnv { return newWebhookEnvWith(t, nil) }

// newWebhookEnvWith is a webhookEnv whose server signals workflows through tc (nil: none).
func newWebhookEnvWith(t *testing.T, tc client.Client) *webhookEnv {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	logger := zap.New(core)
	env := &webhookEnv{st: testenv.Store(t), logs: logs}
	env.api = api.New(env.st, tc, logger)
	env.handler = env.api.Handler()
	env.tap = &webhookTap{next: env.handler}
	env.hook = httptest.NewUnstartedServer(env.tap)
	t.Cleanup(env.hook.Close)

	privPEM, _, err := sink.GenerateKey()
	require.NoError(t, err)
	env.signingKey = parseSigningKey(t, privPEM)
	env.sink, err = sink.New(sink.Config{
		WebhookURL:           "http://" + env.hook.Listener.Addr().String() + webhookPath,
		WebhookPrivateKeyPEM: privPEM,
		WebhookInterval:      time.Hour, // post only when the test flushes
	}, zap.NewNop())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, env.sink.Close()) })
	env.api.Webhook, err = mail.NewVerifier(env.sink.PublicKey())
	require.NoError(t, err)
	env.hook.Start()

	sinkSrv := httptest.NewServer(env.sink.Handler())
	t.Cleanup(sinkSrv.Close)
	env.sender, err = mail.NewSender(mail.Config{
		APIKey: "SG.test-key", BaseURL: sinkSrv.URL, FromEmail: "notices@breachflow.example.com", Timeout: 10 * time.Second,
	}, zap.NewNop())
	require.NoError(t, err)
	return env
}

func parseSigningKey(t *testing.T, privPEM string) *ecdsa.PrivateKey {
	t.Helper()
	block, _ := pem.Decode([]byte(privPEM))
	require.NotNil(t, block)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	require.NoError(t, err)
	ec, ok := key.(*ecdsa.PrivateKey)
	require.True(t, ok)
	return ec
}

// webhookNotice is an outbox row of the fixture.
type webhookNotice struct {
	ID      int64
	Contact int64
	Email   string
}

// seedNotices writes one tenant per address, each with the address as primary contact and
// an alternate, an incident with round 1 of its initial phase, every tenant owed that
// phase in the ledger (released), and a notice of it in sending to every primary.
func (env *webhookEnv) seedNotices(t *testing.T, emails ...string) []webhookNotice {
	t.Helper()
	ctx := context.Background()
	pool := env.st.Pool()
	_, err := pool.Exec(ctx, `INSERT INTO incidents (id, declaration_hash, title, severity, aware_at, declared_by)
		VALUES ($1, 'test-hash', 'Credential exposure', 'high', now() - interval '2 hours', 'alice')`, webhookIncident)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO notice_phases (incident_id, phase, kind, created_by) VALUES ($1, 1, 'initial', 'alice')`, webhookIncident)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO notice_rounds (incident_id, round, kind, scope_version, content_hash, phase)
		VALUES ($1, 1, 'initial', 1, 'content-hash', 1)`, webhookIncident)
	require.NoError(t, err)
	out := make([]webhookNotice, len(emails))
	for i, email := range emails {
		tenant := fmt.Sprintf("tenant-%d", i)
		_, err := pool.Exec(ctx, `INSERT INTO tenants (id, name, country, locale, notice_sla_hours)
			VALUES ($1, 'Tenant', 'DE', 'en', 72)`, tenant)
		require.NoError(t, err)
		n := webhookNotice{Email: email}
		require.NoError(t, pool.QueryRow(ctx, `INSERT INTO contacts (tenant_id, email, kind) VALUES ($1, $2, 'primary') RETURNING id`,
			tenant, email).Scan(&n.Contact))
		_, err = pool.Exec(ctx, `INSERT INTO contacts (tenant_id, email, kind) VALUES ($1, $2, 'alternate')`,
			tenant, fmt.Sprintf("alternate%d@example.com", i))
		require.NoError(t, err)
		_, err = pool.Exec(ctx, `INSERT INTO ledger (incident_id, phase, tenant_id, added_version, deadline, content_hash, scope_version, released_at)
			VALUES ($1, 1, $2, 1, now() + interval '72 hours', 'content-hash', 1, now())`, webhookIncident, tenant)
		require.NoError(t, err)
		require.NoError(t, pool.QueryRow(ctx, `INSERT INTO notices (incident_id, round, tenant_id, contact_id, page, locale, status, claimed_at, attempts, phase, content_hash)
			VALUES ($1, 1, $2, $3, 0, 'en', 'sending', now(), 1, 1, 'content-hash') RETURNING id`, webhookIncident, tenant, n.Contact).Scan(&n.ID))
		out[i] = n
	}
	return out
}

// send sends one page to the notices through the sink and returns SendGrid's message id.
func (env *webhookEnv) send(t *testing.T, notices []webhookNotice) string {
	t.Helper()
	page := mail.Page{
		Subject: "Security incident " + webhookIncident,
		Text:    "Dear -name-, please read and acknowledge this notice.",
		HTML:    "<p>Dear -name-, please read and acknowledge this notice.</p>",
	}
	for _, n := range notices {
		page.Personalizations = append(page.Personalizations, mail.Personalization{
			To:            n.Email,
			Substitutions: map[string]string{"-name-": "Customer"},
			Args:          mail.CustomArgs{NoticeID: strconv.FormatInt(n.ID, 10), IncidentID: webhookIncident, Round: 1},
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := env.sender.Send(ctx, page)
	require.NoError(t, err)
	require.NotEmpty(t, res.MessageID)
	return res.MessageID
}

func (env *webhookEnv) flush(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, env.sink.FlushWebhooks(ctx))
}

type noticeRow struct {
	Status    string
	MessageID string
}

func (env *webhookEnv) notice(t *testing.T, id int64) noticeRow {
	t.Helper()
	var n noticeRow
	require.NoError(t, env.st.Pool().QueryRow(context.Background(),
		`SELECT status, coalesce(provider_message_id, '') FROM notices WHERE id = $1`, id).Scan(&n.Status, &n.MessageID))
	return n
}

// undeliverable returns the contact's undeliverable reason, or "" while it is deliverable.
func (env *webhookEnv) undeliverable(t *testing.T, contact int64) string {
	t.Helper()
	var at *time.Time
	var reason *string
	require.NoError(t, env.st.Pool().QueryRow(context.Background(),
		`SELECT undeliverable_at, undeliverable_reason FROM contacts WHERE id = $1`, contact).Scan(&at, &reason))
	if at == nil {
		return ""
	}
	require.NotNil(t, reason)
	return *reason
}

// state summarises everything the webhook may write, to show that a request wrote nothing.
func (env *webhookEnv) state(t *testing.T) string {
	t.Helper()
	var s string
	require.NoError(t, env.st.Pool().QueryRow(context.Background(), `SELECT concat_ws(' | ',
			(SELECT count(*) FROM delivery_events),
			(SELECT string_agg(id || ':' || status || ':' || coalesce(provider_message_id, '') || ':' || coalesce(status_at::text, ''), ',' ORDER BY id) FROM notices),
			(SELECT string_agg(id || ':' || coalesce(undeliverable_at::text, ''), ',' ORDER BY id) FROM contacts),
			(SELECT count(*) FROM audit_log))`).Scan(&s))
	return s
}

func (env *webhookEnv) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, env.st.Pool().QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// post sends body with the given headers to the API over HTTP and decodes the JSON answer.
func (env *webhookEnv) post(t *testing.T, body []byte, header http.Header) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, env.hook.URL+webhookPath, bytes.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

// signed returns headers signing body at ts with key, as SendGrid signs: ECDSA over the
// SHA-256 of the timestamp followed by the body.
func signed(t *testing.T, key *ecdsa.PrivateKey, ts int64, body []byte) http.Header {
	t.Helper()
	stamp := strconv.FormatInt(ts, 10)
	h := sha256.New()
	h.Write([]byte(stamp))
	h.Write(body)
	sig, err := ecdsa.SignASN1(rand.Reader, key, h.Sum(nil))
	require.NoError(t, err)
	header := http.Header{}
	header.Set("Content-Type", "application/json")
	header.Set(mail.SignatureHeader, base64.StdEncoding.EncodeToString(sig))
	header.Set(mail.TimestampHeader, stamp)
	return header
}

func TestSendgridWebhookAppliesSinkEvents(t *testing.T) {
	t.Parallel()
	env := newWebhookEnv(t)
	notices := env.seedNotices(t,
		"security@tenant-one.example.com",
		"nobody@bounce.invalid",
		"gone@dropped.invalid",
		"slow@deferred.invalid",
	)
	delivered, bounced, dropped, deferred := notices[0], notices[1], notices[2], notices[3]
	messageID := env.send(t, notices)
	env.flush(t)

	posts := env.tap.recorded()
	require.NotEmpty(t, posts)
	for _, p := range posts {
		require.Equal(t, http.StatusOK, p.status)
	}
	require.Zero(t, env.sink.Stats().WebhookFailedEvents)

	require.Equal(t, noticeRow{"delivered", messageID}, env.notice(t, delivered.ID))
	require.Equal(t, noticeRow{"bounced", messageID}, env.notice(t, bounced.ID))
	require.Equal(t, noticeRow{"dropped", messageID}, env.notice(t, dropped.ID))
	require.Equal(t, noticeRow{"delivered", messageID}, env.notice(t, deferred.ID), "deferred once, then delivered")

	require.Empty(t, env.undeliverable(t, delivered.Contact))
	require.Contains(t, env.undeliverable(t, bounced.Contact), "5.1.1")
	require.Equal(t, "Bounced Address", env.undeliverable(t, dropped.Contact))
	require.Empty(t, env.undeliverable(t, deferred.Contact))
	require.Zero(t, env.count(t, `SELECT count(*) FROM contacts WHERE kind = 'alternate' AND undeliverable_at IS NOT NULL`))

	// The ledger follows: the bounced and dropped tenants are owed again (a server without
	// Temporal answered all the same), the others notified.
	ledger, err := env.st.Ledger(context.Background(), webhookIncident, time.Now(), nil)
	require.NoError(t, err)
	in := ledger.Initial()
	require.Equal(t, 4, in.Tenants)
	require.Equal(t, 2, in.Notified)
	require.Equal(t, 2, in.Delivered)
	require.Equal(t, 2, in.Owed)
	require.Equal(t, 2, in.Bounced)
	require.Equal(t, 2, in.Plannable, "the owed tenants are released: the next pass tries their alternates")

	// processed+delivered, processed+bounce, dropped, processed+deferred+delivered.
	require.Equal(t, 8, env.count(t, `SELECT count(*) FROM delivery_events`))
	require.Equal(t, len(posts), env.count(t, `SELECT count(*) FROM audit_log WHERE action = 'delivery.events_applied'`))
	require.Zero(t, env.count(t, `SELECT count(*) FROM audit_log WHERE detail::text LIKE '%@%'`))

	entries := env.logs.All()
	require.NotEmpty(t, entries)
	for _, e := range entries {
		line := e.Message + fmt.Sprint(e.ContextMap())
		require.NotContains(t, line, "@", "a log line carries an address: %s", line)
	}
}

func TestSendgridWebhookReplayedPostAppliesOnce(t *testing.T) {
	t.Parallel()
	env := newWebhookEnv(t)
	notices := env.seedNotices(t, "security@tenant-one.example.com", "nobody@bounce.invalid")
	env.tap.setHold(true)
	env.send(t, notices)
	env.flush(t)
	held := env.tap.recorded()
	require.Len(t, held, 1)
	require.Zero(t, env.count(t, `SELECT count(*) FROM delivery_events`), "a held post reaches nothing")
	env.tap.setHold(false)

	var after string
	for i := range 3 {
		code, body := env.post(t, held[0].body, held[0].header)
		require.Equal(t, http.StatusOK, code, "post %d: %v", i+1, body)
		require.EqualValues(t, 4, body["received"])
		if i == 0 {
			require.EqualValues(t, 4, body["applied"])
			require.EqualValues(t, 0, body["duplicates"])
			require.EqualValues(t, 2, body["notices_updated"])
			require.EqualValues(t, 1, body["contacts_undeliverable"])
			require.Equal(t, map[string]any{webhookIncident: float64(1)}, body["reopened"], "the bounce left one tenant owed")
			after = env.state(t)
			continue
		}
		require.NotContains(t, body, "reopened", "post %d reopened nothing", i+1)
		require.EqualValues(t, 0, body["applied"])
		require.EqualValues(t, 4, body["duplicates"])
		require.EqualValues(t, 0, body["notices_updated"])
		require.Equal(t, after, env.state(t), "post %d changed something", i+1)
	}
	require.Equal(t, "delivered", env.notice(t, notices[0].ID).Status)
	require.Equal(t, "bounced", env.notice(t, notices[1].ID).Status)
	require.Equal(t, 4, env.count(t, `SELECT count(*) FROM delivery_events`))
	require.Equal(t, 1, env.count(t, `SELECT count(*) FROM audit_log WHERE action = 'delivery.events_applied'`))
}

func TestSendgridWebhookRejectsUnverifiedPosts(t *testing.T) {
	t.Parallel()
	env := newWebhookEnv(t)
	notices := env.seedNotices(t, "security@tenant-one.example.com", "nobody@bounce.invalid")
	env.tap.setHold(true)
	env.send(t, notices)
	env.flush(t)
	held := env.tap.recorded()
	require.Len(t, held, 1)
	genuine := held[0]
	env.tap.setHold(false)

	_, otherKey, err := sink.GenerateKey()
	require.NoError(t, err)
	otherVerifier, err := mail.NewVerifier(otherKey)
	require.NoError(t, err)
	otherAPI := api.New(env.st, nil, zap.NewNop())
	otherAPI.Webhook = otherVerifier
	unconfigured := api.New(env.st, nil, zap.NewNop())

	without := func(names ...string) http.Header {
		h := genuine.header.Clone()
		for _, n := range names {
			h.Del(n)
		}
		return h
	}
	tampered := bytes.Replace(genuine.body, []byte(`"event":"bounce"`), []byte(`"event":"delivered"`), 1)
	require.NotEqual(t, genuine.body, tampered)
	now := time.Now()
	oversized := append([]byte(`[`), bytes.Repeat([]byte(" "), api.MaxWebhookBody)...)
	oversized = append(oversized, ']')

	cases := []struct {
		name    string
		handler http.Handler
		body    []byte
		header  http.Header
		code    int
		errCode string
	}{
		{"tampered body", env.handler, tampered, genuine.header, http.StatusUnauthorized, "invalid_signature"},
		{"signed by another key", otherAPI.Handler(), genuine.body, genuine.header, http.StatusUnauthorized, "invalid_signature"},
		{"missing signature", env.handler, genuine.body, without(mail.SignatureHeader), http.StatusUnauthorized, "unauthenticated"},
		{"missing timestamp", env.handler, genuine.body, without(mail.TimestampHeader), http.StatusUnauthorized, "unauthenticated"},
		{"missing both headers", env.handler, genuine.body, without(mail.SignatureHeader, mail.TimestampHeader), http.StatusUnauthorized, "unauthenticated"},
		{"garbage signature", env.handler, genuine.body, func() http.Header {
			h := genuine.header.Clone()
			h.Set(mail.SignatureHeader, "not-base64!")
			return h
		}(), http.StatusUnauthorized, "invalid_signature"},
		{"timestamp not a number", env.handler, genuine.body, func() http.Header {
			h := genuine.header.Clone()
			h.Set(mail.TimestampHeader, "yesterday")
			return h
		}(), http.StatusBadRequest, "invalid"},
		{"timestamp swapped", env.handler, genuine.body, func() http.Header {
			h := genuine.header.Clone()
			ts, err := strconv.ParseInt(h.Get(mail.TimestampHeader), 10, 64)
			require.NoError(t, err)
			h.Set(mail.TimestampHeader, strconv.FormatInt(ts+1, 10))
			return h
		}(), http.StatusUnauthorized, "invalid_signature"},
		{"stale timestamp", env.handler, genuine.body,
			signed(t, env.signingKey, now.Add(-6*time.Minute).Unix(), genuine.body), http.StatusUnauthorized, "stale_signature"},
		{"future timestamp", env.handler, genuine.body,
			signed(t, env.signingKey, now.Add(10*time.Minute).Unix(), genuine.body), http.StatusUnauthorized, "stale_signature"},
		{"signed but not an event array", env.handler, []byte(`{"event":"delivered"}`),
			signed(t, env.signingKey, now.Unix(), []byte(`{"event":"delivered"}`)), http.StatusBadRequest, "invalid"},
		{"too large", env.handler, oversized, signed(t, env.signingKey, now.Unix(), oversized), http.StatusRequestEntityTooLarge, "too_large"},
		{"no verification key", unconfigured.Handler(), genuine.body, genuine.header, http.StatusServiceUnavailable, "webhook_not_configured"},
	}
	before := env.state(t)
	for _, tc := range cases {
		req := httptest.NewRequest(http.MethodPost, webhookPath, bytes.NewReader(tc.body))
		req.Header = tc.header.Clone()
		rec := httptest.NewRecorder()
		tc.handler.ServeHTTP(rec, req)
		require.Equal(t, tc.code, rec.Code, "%s: %s", tc.name, rec.Body.String())
		var answer struct{ Error api.Error }
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &answer), tc.name)
		require.Equal(t, tc.errCode, answer.Error.Code, tc.name)
		require.NotEmpty(t, answer.Error.Message, tc.name)
		require.Equal(t, before, env.state(t), "%s wrote something", tc.name)
	}

	// The genuine post, refused in none of its parts, applies.
	code, body := env.post(t, genuine.body, genuine.header)
	require.Equal(t, http.StatusOK, code, "%v", body)
	require.EqualValues(t, 4, body["applied"])
	require.Equal(t, "delivered", env.notice(t, notices[0].ID).Status)
	require.Equal(t, "bounced", env.notice(t, notices[1].ID).Status)
}

func TestSendgridWebhookSkipsUnknownNotices(t *testing.T) {
	t.Parallel()
	env := newWebhookEnv(t)
	notices := env.seedNotices(t, "security@tenant-one.example.com")
	events := []map[string]any{
		{"email": "a@example.com", "timestamp": time.Now().Unix(), "event": "delivered", "sg_event_id": "ev-unknown-1", "sg_message_id": "m1.f.0.0", "notice_id": "999999"},
		{"email": "b@example.com", "timestamp": time.Now().Unix(), "event": "delivered", "sg_event_id": "ev-unknown-2", "sg_message_id": "m2.f.0.0", "notice_id": "not-a-number"},
		{"email": "c@example.com", "timestamp": time.Now().Unix(), "event": "delivered", "sg_event_id": "ev-unknown-3", "sg_message_id": "m3.f.0.0"},
		{"email": "security@tenant-one.example.com", "timestamp": time.Now().Unix(), "event": "delivered", "sg_event_id": "ev-known",
			"sg_message_id": "m4.f.0.0", "notice_id": strconv.FormatInt(notices[0].ID, 10), "incident_id": webhookIncident, "round": "1"},
	}
	body, err := json.Marshal(events)
	require.NoError(t, err)
	code, answer := env.post(t, body, signed(t, env.signingKey, time.Now().Unix(), body))
	require.Equal(t, http.StatusOK, code, "%v", answer)
	require.EqualValues(t, 4, answer["received"])
	require.EqualValues(t, 1, answer["applied"])
	require.EqualValues(t, 3, answer["unknown"])
	require.Equal(t, noticeRow{"delivered", "m4"}, env.notice(t, notices[0].ID))
	require.Equal(t, 1, env.count(t, `SELECT count(*) FROM delivery_events`))
}

// TestSendgridWebhookSignalsReopenedIncidents: a batch whose bounces and drops leave an
// incident's tenants owed again signals the incident's workflow with how many; a signal
// that cannot be delivered is logged and the batch still answered 200.
func TestSendgridWebhookSignalsReopenedIncidents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tc := testenv.Temporal(t).GetDefaultClient()
	env := newWebhookEnvWith(t, tc)
	notices := env.seedNotices(t, "security@tenant-one.example.com", "nobody@bounce.invalid", "gone@dropped.invalid")

	// The incident's workflow, on a task queue no worker polls: its history keeps what it is sent.
	wfID := workflows.IncidentWorkflowID(webhookIncident)
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: wfID, TaskQueue: "webhook-" + randomHex(4)},
		workflows.IncidentWorkflow, workflows.IncidentInput{IncidentID: webhookIncident})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tc.TerminateWorkflow(context.Background(), wfID, run.GetRunID(), "test over") })

	env.send(t, notices)
	env.flush(t)
	posts := env.tap.recorded()
	require.NotEmpty(t, posts)
	for _, p := range posts {
		require.Equal(t, http.StatusOK, p.status)
	}

	var signalled []int
	iter := tc.GetWorkflowHistory(ctx, wfID, run.GetRunID(), false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		ev, err := iter.Next()
		require.NoError(t, err)
		a := ev.GetWorkflowExecutionSignaledEventAttributes()
		if a == nil {
			continue
		}
		require.Equal(t, workflows.SignalDeliveryFailures, a.GetSignalName())
		var n int
		require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(a.GetInput(), &n))
		signalled = append(signalled, n)
	}
	require.NotEmpty(t, signalled, "the workflow was told")
	require.LessOrEqual(t, len(signalled), len(posts), "at most one signal per batch")
	sum := 0
	for _, n := range signalled {
		sum += n
	}
	require.Equal(t, 2, sum, "the bounced and the dropped tenant")

	// A late bounce of the delivered notice, with no workflow left to tell: the batch is
	// still applied and answered, and the failed signal is logged.
	require.NoError(t, tc.TerminateWorkflow(ctx, wfID, run.GetRunID(), "gone"))
	events := []map[string]any{{"email": "security@tenant-one.example.com", "timestamp": time.Now().Unix(), "event": "bounce",
		"sg_event_id": "ev-late-bounce", "sg_message_id": "m9.f.0.0", "notice_id": strconv.FormatInt(notices[0].ID, 10),
		"reason": "550 5.1.1 mailbox gone"}}
	body, err := json.Marshal(events)
	require.NoError(t, err)
	code, answer := env.post(t, body, signed(t, env.signingKey, time.Now().Unix(), body))
	require.Equal(t, http.StatusOK, code, "%v", answer)
	require.Equal(t, map[string]any{webhookIncident: float64(1)}, answer["reopened"])
	var warned bool
	for _, e := range env.logs.FilterMessage("signal delivery failures").All() {
		warned = warned || (e.ContextMap()["incident_id"] == webhookIncident && e.ContextMap()["tenants"] == int64(1))
	}
	require.True(t, warned, "the failed signal is logged: %v", env.logs.All())
}

// TestSendgridWebhookBodyCap: a body of MaxWebhookBody is read and verified; one byte more
// is refused 413 before a byte of it is read when its length is declared, and read no
// further than the cap when it is not. Neither writes anything.
func TestSendgridWebhookBodyCap(t *testing.T) {
	t.Parallel()
	env := newWebhookEnv(t)
	env.seedNotices(t, "security@tenant-one.example.com")
	before := env.state(t)
	now := time.Now().Unix()

	atCap := append(append([]byte{'['}, bytes.Repeat([]byte{' '}, api.MaxWebhookBody-2)...), ']')
	rec := serveDirect(env.handler, http.MethodPost, webhookPath, bytes.NewReader(atCap), int64(len(atCap)),
		signed(t, env.signingKey, now, atCap))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

	over := append(append([]byte{'['}, bytes.Repeat([]byte{' '}, api.MaxWebhookBody-1)...), ']')
	declared := &countingReader{r: bytes.NewReader(over)}
	rec = serveDirect(env.handler, http.MethodPost, webhookPath, declared, int64(len(over)), signed(t, env.signingKey, now, over))
	require.Equal(t, http.StatusRequestEntityTooLarge, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), `"too_large"`)
	require.Zero(t, declared.n, "the body was read")

	chunked := &countingReader{r: io.LimitReader(zeros{}, 64<<20)}
	rec = serveDirect(env.handler, http.MethodPost, webhookPath, chunked, -1, signed(t, env.signingKey, now, []byte("[]")))
	require.Equal(t, http.StatusRequestEntityTooLarge, rec.Code, rec.Body.String())
	require.LessOrEqual(t, chunked.n, int64(api.MaxWebhookBody+1), "read past the cap")
	require.Equal(t, before, env.state(t))
}

// TestSendgridWebhookRateLimit: posts count against their address before anything is read
// or verified; past the burst even a genuine post is refused 429 (SendGrid posts it again
// later) and writes nothing, while another address, another of SendGrid's servers behind
// the same proxy, is not affected.
func TestSendgridWebhookRateLimit(t *testing.T) {
	t.Parallel()
	env := newWebhookEnv(t)
	notices := env.seedNotices(t, "security@tenant-one.example.com")
	env.tap.setHold(true)
	env.send(t, notices)
	env.flush(t)
	held := env.tap.recorded()
	require.Len(t, held, 1)
	genuine := held[0]
	env.api.Limits = api.NewLimiter(api.Limits{Webhook: 0.001, WebhookBurst: 3})
	env.api.ClientHeader = forwardedHeader
	from := func(h http.Header, addr string) http.Header {
		h = h.Clone()
		h.Set(forwardedHeader, addr)
		return h
	}
	const a, b = "203.0.113.10", "203.0.113.11"

	for range 3 {
		rec := serveDirect(env.handler, http.MethodPost, webhookPath, strings.NewReader("[]"), 2, from(http.Header{}, a))
		require.Equal(t, http.StatusUnauthorized, rec.Code, rec.Body.String())
	}
	before := env.state(t)
	body := &countingReader{r: bytes.NewReader(genuine.body)}
	rec := serveDirect(env.handler, http.MethodPost, webhookPath, body, int64(len(genuine.body)), from(genuine.header, a))
	require.Equal(t, http.StatusTooManyRequests, rec.Code, rec.Body.String())
	require.Contains(t, rec.Body.String(), `"rate_limited"`)
	wait, err := strconv.Atoi(rec.Header().Get("Retry-After"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, wait, 1000)
	require.Zero(t, body.n, "a refused post was read")
	require.Equal(t, before, env.state(t))

	rec = serveDirect(env.handler, http.MethodPost, webhookPath, bytes.NewReader(genuine.body), int64(len(genuine.body)), from(genuine.header, b))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, "delivered", env.notice(t, notices[0].ID).Status)
}

// TestDefaultWebhookLimitTakesABurst: by default one address may post a burst of fifty
// before it is refused.
func TestDefaultWebhookLimitTakesABurst(t *testing.T) {
	t.Parallel()
	require.GreaterOrEqual(t, api.DefaultLimits.WebhookBurst, 50)
	env := newWebhookEnv(t)
	for range api.DefaultLimits.WebhookBurst {
		rec := serveDirect(env.handler, http.MethodPost, webhookPath, strings.NewReader("[]"), 2, nil)
		require.Equal(t, http.StatusUnauthorized, rec.Code, rec.Body.String())
	}
	rec := serveDirect(env.handler, http.MethodPost, webhookPath, strings.NewReader("[]"), 2, nil)
	require.Equal(t, http.StatusTooManyRequests, rec.Code, rec.Body.String())
}

// TestSendgridWebhookTakesTheSinksLargestBatches: a page whose events carry the largest
// custom args SendGrid accepts reaches the API in posts under its cap, every one accepted
// under the default limits.
func TestSendgridWebhookTakesTheSinksLargestBatches(t *testing.T) {
	t.Parallel()
	env := newWebhookEnv(t)
	sinkSrv := httptest.NewServer(env.sink.Handler())
	t.Cleanup(sinkSrv.Close)
	ps := make([]any, 1000)
	for i := range ps {
		ps[i] = map[string]any{
			"to": []any{map[string]any{"email": fmt.Sprintf("user%d@example.com", i)}},
			// Just under the 10,000 bytes of custom args a personalization may carry.
			"custom_args": map[string]any{"notice_id": strconv.Itoa(900000 + i), "pad": strings.Repeat("x", 9900)},
		}
	}
	raw, err := json.Marshal(map[string]any{
		"from":             map[string]any{"email": "notices@breachflow.example.com"},
		"subject":          "Security incident notice",
		"content":          []any{map[string]any{"type": "text/plain", "value": "Please read and acknowledge this notice."}},
		"personalizations": ps,
	})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, sinkSrv.URL+"/v3/mail/send", bytes.NewReader(raw))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer SG.test-key")
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	env.flush(t)

	posts := env.tap.recorded()
	events := 0
	for i, p := range posts {
		require.Equal(t, http.StatusOK, p.status, "post %d of %d bytes", i, len(p.body))
		require.LessOrEqual(t, len(p.body), api.MaxWebhookBody)
		var batch []json.RawMessage
		require.NoError(t, json.Unmarshal(p.body, &batch))
		events += len(batch)
	}
	require.Equal(t, 2000, events, "processed and delivered for each")
	require.Zero(t, env.sink.Stats().WebhookFailedEvents)
}
