package evidence_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"
	"go.uber.org/zap"

	"github.com/breachflow/breachflow/activities"
	"github.com/breachflow/breachflow/internal/evidence"
	"github.com/breachflow/breachflow/internal/mail"
	"github.com/breachflow/breachflow/internal/mail/sink"
	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/tenants"
	"github.com/breachflow/breachflow/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const publicURL = "https://notices.provider.example"

// notified is one incident taken through the real store and activities (no workflow):
// declared, drafted by one person, approved by two others, scoped to the first tenants by
// id and by their services, each tenant given its own impact numbers, planned and sent
// page by page through the real SendGrid client to the mail sink, optionally followed by
// an update notice, with delivery events (one bounce) and an acknowledgement, then closed.
type notified struct {
	st         *store.Store
	keys       *evidence.Keys
	acts       *activities.Activities
	env        *testsuite.TestActivityEnvironment
	sink       *sink.Sink
	id         string
	hash       string
	updateHash string // the update notice's, when the fixture sent one
	tenants    []string
	facts      map[string]notice.TenantFacts // what each tenant's notices state about it
	acked      string                        // the tenant that acknowledged
	bounced    string                        // the tenant whose primary contact bounced
	actor      string                        // the responder
}

// fixtureOptions vary notifyIncidentWith.
type fixtureOptions struct {
	// update sends an update notice (phase 2) after the initial one.
	update bool
}

// sender is who the fixture's notices come from.
var sender = notice.Sender{Organisation: "Provider Cloud Ltd", Signature: "Security and Privacy Team", ReplyTo: "privacy@provider.example"}

// dataCategories are the fixture incident's declared categories.
var dataCategories = []string{"device identifiers", "user names"}

func newKeys(t testing.TB) (*evidence.Keys, string) {
	t.Helper()
	seed, pub, err := evidence.GenerateKey()
	require.NoError(t, err)
	k, err := evidence.LoadKeys(seed, "")
	require.NoError(t, err)
	return k, pub
}

func notifyIncident(t *testing.T, n int, keys *evidence.Keys) *notified {
	t.Helper()
	return notifyIncidentWith(t, n, keys, fixtureOptions{})
}

func notifyIncidentWith(t *testing.T, n int, keys *evidence.Keys, o fixtureOptions) *notified {
	t.Helper()
	ctx := context.Background()
	f := &notified{st: testenv.Store(t), keys: keys, facts: map[string]notice.TenantFacts{}}
	testenv.Tenants(t, f.st, tenants.Options{Tenants: n + 2, ContactsPerTenant: 2, Seed: 11})

	var err error
	f.sink, err = sink.New(sink.Config{BouncePatterns: []string{}, DropPatterns: []string{}, DeferPatterns: []string{}}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.sink.Close() })
	srv := httptest.NewServer(f.sink.Handler())
	t.Cleanup(srv.Close)
	mailer, err := mail.NewSender(mail.Config{APIKey: "SG.test", BaseURL: srv.URL, FromEmail: "notices@provider.example", Timeout: 10 * time.Second}, nil)
	require.NoError(t, err)
	secret, err := f.st.AckSecret(ctx, "")
	require.NoError(t, err)
	f.acts = &activities.Activities{Store: f.st, Mail: mailer, Logger: zap.NewNop(), Now: time.Now, PublicURL: publicURL,
		AckSecret: secret, AuditKeys: keys}

	person := func(name, role string) string {
		_, k, err := f.st.CreateAPIKey(ctx, name, role, "test")
		require.NoError(t, err)
		return k.Actor()
	}
	f.actor = person("rita", "responder")
	alice, bob := person("alice", "approver"), person("bob", "approver")

	inc, _, err := f.st.CreateIncident(ctx, "", store.Declaration{Title: "Device database exposure", Severity: "high",
		Summary: "A leaked service credential gave read access to the device database.", AwareAt: time.Now().Add(-2 * time.Hour),
		DataCategories: dataCategories}, f.actor, time.Now())
	require.NoError(t, err)
	f.id = inc.ID
	p, err := activities.ProposeDraft(ctx, f.st, f.id, draftJSON(t, inc), f.actor, activities.DraftOptions{Sender: sender})
	require.NoError(t, err)
	require.Empty(t, p.Untranslated)
	f.hash = p.Hash
	_, err = f.acts.SaveDraft(ctx, activities.DraftActivityInput{IncidentID: f.id, ContentHash: f.hash, Actor: f.actor})
	require.NoError(t, err)

	// The scope names the tenants and every service they use, so that each tenant's facts
	// list its own services; the spare tenants are left out.
	var ids, spare, services []string
	require.NoError(t, f.st.Pool().QueryRow(ctx, `SELECT array_agg(id ORDER BY id) FROM (SELECT id FROM tenants ORDER BY id LIMIT $1) t`, n).Scan(&ids))
	require.NoError(t, f.st.Pool().QueryRow(ctx, `SELECT array_agg(id ORDER BY id) FROM tenants WHERE id <> ALL ($1)`, ids).Scan(&spare))
	require.NoError(t, f.st.Pool().QueryRow(ctx, `SELECT array_agg(DISTINCT s ORDER BY s) FROM tenants, unnest(services) s WHERE id = ANY ($1)`,
		ids).Scan(&services))
	f.tenants = ids
	scope, err := f.st.ResolveScope(ctx, f.id, store.ScopeCriteria{Services: services, TenantIDs: ids, Exclude: spare}, f.actor)
	require.NoError(t, err)
	require.Equal(t, n, scope.Total)
	impacts := make([]store.Impact, len(ids))
	for i, id := range ids {
		impacts[i] = store.Impact{TenantID: id, DataSubjects: int64(100*i + 17), Records: int64(1000*i + 1234)}
		tn, err := f.st.GetTenant(ctx, id)
		require.NoError(t, err)
		f.facts[id] = notice.TenantFacts{Services: tn.Services, DataSubjects: impacts[i].DataSubjects, Records: impacts[i].Records}
	}
	_, err = f.st.ImportImpact(ctx, f.id, impacts, f.actor)
	require.NoError(t, err)
	for _, a := range []string{alice, bob} {
		_, err := f.st.Approve(ctx, f.id, f.hash, scope.Version, a)
		require.NoError(t, err)
	}
	_, _, err = f.st.Release(ctx, f.id, f.hash, scope.Version, f.actor)
	require.NoError(t, err)

	// The activities run in an activity context, as a worker runs them.
	var suite testsuite.WorkflowTestSuite
	f.env = suite.NewTestActivityEnvironment()
	f.env.RegisterActivity(f.acts)
	f.send(t, 1, store.RoundInitial, 1, scope.Version)

	if o.update {
		p, err := activities.ProposeDraft(ctx, f.st, f.id, updateJSON(t, inc), f.actor,
			activities.DraftOptions{NextPhase: true, Kind: notice.PhaseUpdate, Sender: sender})
		require.NoError(t, err)
		require.Equal(t, notice.Phase{Number: 2, Kind: notice.PhaseUpdate}, p.Phase)
		f.updateHash = p.Hash
		_, err = f.acts.SaveDraft(ctx, activities.DraftActivityInput{IncidentID: f.id, ContentHash: f.updateHash, Actor: f.actor})
		require.NoError(t, err)
		for _, a := range []string{alice, bob} {
			_, err := f.st.Approve(ctx, f.id, f.updateHash, scope.Version, a)
			require.NoError(t, err)
		}
		phase, err := f.st.OpenDraftPhase(ctx, f.id, f.updateHash, alice)
		require.NoError(t, err)
		require.Equal(t, 2, phase)
		_, _, err = f.st.Release(ctx, f.id, f.updateHash, scope.Version, f.actor)
		require.NoError(t, err)
		f.send(t, 2, store.RoundFollowup, 2, scope.Version)
	}

	// SendGrid's events, as its webhook would bring them: every message delivered but the
	// first tenant's primary contact's, which bounced.
	f.acked, f.bounced = ids[0], ids[len(ids)-1]
	var bouncedNotice int64
	require.NoError(t, f.st.Pool().QueryRow(ctx, `SELECT n.id FROM notices n JOIN contacts c ON c.id = n.contact_id
		WHERE n.incident_id = $1 AND n.tenant_id = $2 ORDER BY c.kind DESC, n.id LIMIT 1`, f.id, f.bounced).Scan(&bouncedNotice))
	var events []store.DeliveryEvent
	for i, m := range f.messages(t) {
		nid, err := strconv.ParseInt(m.CustomArgs["notice_id"], 10, 64)
		require.NoError(t, err)
		ev := store.DeliveryEvent{SGEventID: fmt.Sprintf("ev-%d", i), NoticeID: nid, Event: "delivered", OccurredAt: time.Now(), SGMessageID: m.SGMessageID}
		if nid == bouncedNotice {
			ev.Event, ev.Reason = "bounce", "550 5.1.1 mailbox unknown"
		}
		events = append(events, ev)
	}
	_, err = f.st.ApplyDeliveryEvents(ctx, events)
	require.NoError(t, err)
	_, err = f.st.Acknowledge(ctx, f.id, f.acked, "link", "customer")
	require.NoError(t, err)
	_, err = f.env.ExecuteActivity(f.acts.CloseIncident, activities.CloseInput{IncidentID: f.id, Reason: "all tenants notified", Actor: f.actor})
	require.NoError(t, err)
	return f
}

// send plans pass (round) as kind for phase and sends every page, as a notify pass does.
func (f *notified) send(t *testing.T, pass int, kind string, phase, scopeVersion int) {
	t.Helper()
	var pages int
	for {
		v, err := f.env.ExecuteActivity(f.acts.PlanStep, activities.PlanStepInput{IncidentID: f.id, Pass: pass, Kind: kind, Phase: phase,
			ScopeVersion: scopeVersion, Chunk: 500, PageSize: 100, TokenTTL: 72 * time.Hour})
		require.NoError(t, err)
		var out activities.PlanStepResult
		require.NoError(t, v.Get(&out))
		pages = out.Pages
		if out.Done {
			break
		}
	}
	for p := range pages {
		_, err := f.env.ExecuteActivity(f.acts.SendPage, activities.SendPageInput{IncidentID: f.id, Round: pass, Page: p})
		require.NoError(t, err)
	}
}

// draftFields are the fields of a complete initial notice for inc. The declaration's title,
// awareness time and data categories are left out: the service states them from it.
func draftFields(inc store.Incident) notice.Fields {
	return notice.Fields{
		Reference:             inc.ID,
		Nature:                "Unauthorised access to a device-management database through a leaked service credential.",
		DataSubjectCategories: []string{"employees of the tenant"},
		ApproxDataSubjects:    1200, ApproxRecords: 5400,
		Contact:            notice.ContactPoint{Name: "Privacy Office", Role: "DPO", Email: "privacy@provider.example"},
		LikelyConsequences: "Targeted phishing against affected users is possible.",
		MeasuresTaken:      "The credential was revoked and access logs were reviewed.",
		MeasuresProposed:   "Rotate device enrolment tokens; watch for phishing.",
	}
}

// englishFallback sends the English text to every other locale: the fixture has no
// translations.
var englishFallback = []string{"de", "es", "fr", "it"}

// draftJSON is a complete initial notice draft for inc (its sender is stamped when
// proposed). An incident declared without data categories gets the fixture's.
func draftJSON(t testing.TB, inc store.Incident) []byte {
	t.Helper()
	fields := draftFields(inc)
	if len(inc.DataCategories) == 0 {
		fields.DataCategories = dataCategories
	}
	raw, err := json.Marshal(notice.Draft{Fields: fields, EnglishFallback: englishFallback})
	require.NoError(t, err)
	return raw
}

// updateJSON is the update notice (phase 2) that follows draftJSON's.
func updateJSON(t testing.TB, inc store.Incident) []byte {
	t.Helper()
	fields := draftFields(inc)
	fields.WhatsNew = "The access logs show the credential was used twice, from one address."
	fields.MeasuresTaken = "The credential was revoked, access logs were reviewed and the address was blocked."
	raw, err := json.Marshal(notice.Draft{Fields: fields, EnglishFallback: englishFallback})
	require.NoError(t, err)
	return raw
}

// messages returns every message the sink received.
func (f *notified) messages(t *testing.T) []sink.Message {
	t.Helper()
	return f.sink.Messages(sink.Query{Limit: sink.MaxListLimit}).Messages
}

// export writes a pack of the incident (one tenant's when tenant is not empty).
func (f *notified) export(t *testing.T, tenant string, keys *evidence.Keys) []byte {
	t.Helper()
	var buf bytes.Buffer
	_, err := evidence.WritePack(context.Background(), f.st, &buf, evidence.PackOptions{IncidentID: f.id, TenantID: tenant,
		Actor: f.actor, PublicURL: publicURL, Keys: keys})
	require.NoError(t, err)
	return buf.Bytes()
}

// files returns a pack's files by name.
func files(t *testing.T, pack []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(pack), int64(len(pack)))
	require.NoError(t, err)
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		require.NoError(t, err)
		raw, err := io.ReadAll(rc)
		require.NoError(t, err)
		require.NoError(t, rc.Close())
		out[f.Name] = raw
	}
	return out
}

// extraFile is a file rezip adds at the end.
type extraFile struct {
	name    string
	content []byte
}

// rezip rebuilds a pack with each file changed (or left out) by edit, and extra added.
func rezip(t *testing.T, pack []byte, edit func(name string, raw []byte) ([]byte, bool), extra ...extraFile) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(pack), int64(len(pack)))
	require.NoError(t, err)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		rc, err := f.Open()
		require.NoError(t, err)
		raw, err := io.ReadAll(rc)
		require.NoError(t, err)
		require.NoError(t, rc.Close())
		raw, keep := edit(f.Name, raw)
		if !keep {
			continue
		}
		w, err := zw.Create(f.Name)
		require.NoError(t, err)
		_, err = w.Write(raw)
		require.NoError(t, err)
	}
	for _, e := range extra {
		w, err := zw.Create(e.name)
		require.NoError(t, err)
		_, err = w.Write(e.content)
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func verify(t *testing.T, pack []byte, keys *evidence.Keys) evidence.PackReport {
	t.Helper()
	rep, err := evidence.VerifyPack(bytes.NewReader(pack), int64(len(pack)), keys)
	require.NoError(t, err)
	return rep
}

// verifier trusts only the public key pub, as `breachflow evidence verify --public-key` does.
func verifier(t *testing.T, pub string) *evidence.Keys {
	t.Helper()
	k, err := evidence.LoadKeys("", pub)
	require.NoError(t, err)
	return k
}
