package store_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
)

// TestLookupAckNamesTheNoticeSent: an acknowledgement link names the reference and title of
// the approved notice last sent to its tenant (the latest phase whose send is still good),
// not the incident's internal title, and nothing before anything was sent.
func TestLookupAckNamesTheNoticeSent(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t, fixtureOpts{})
	f.simple("a", "b")
	f.scope("a", "b")
	draft := func(hash, ref, title string) {
		t.Helper()
		raw, err := json.Marshal(notice.Draft{Fields: notice.Fields{Reference: ref, Title: title}})
		require.NoError(t, err)
		f.exec(`INSERT INTO notice_drafts (incident_id, content_hash, draft, created_by) VALUES ($1, $2, $3, 'alice')`, f.id, hash, raw)
	}
	draft(hashA, " PSIRT-2026-017 ", "Exposure of device identifiers")
	draft(hashB, "PSIRT-2026-017", "Update: exposure of device identifiers and user names")
	f.approveAndRelease(hashA, 1)
	f.planAll(f.pass(1, 1))
	first, err := f.s.ClaimPage(f.ctx, f.id, 1, 0, f.secret, time.Minute)
	require.NoError(t, err)
	require.Len(t, first.Recipients, 2)
	tokens := map[string]string{}
	var ids []int64
	for _, r := range first.Recipients {
		tokens[r.TenantID] = r.Token
		ids = append(ids, r.NoticeID)
	}
	shows := func(tenant string) [2]string {
		t.Helper()
		a, err := f.s.LookupAck(f.ctx, tokens[tenant])
		require.NoError(t, err)
		require.Equal(t, f.id, a.IncidentID)
		require.Equal(t, tenant, a.TenantID)
		require.NotEqual(t, "Credential exposure", a.Title, "the incident's internal title")
		return [2]string{a.Reference, a.Title}
	}

	// Claimed, not yet accepted by SendGrid: nothing was sent to name.
	require.Equal(t, [2]string{"", ""}, shows("a"))
	require.NoError(t, f.s.MarkSent(f.ctx, f.id, ids, "msg-1"))
	initial := [2]string{"PSIRT-2026-017", "Exposure of device identifiers"}
	require.Equal(t, initial, shows("a"))
	require.Equal(t, initial, shows("b"))

	// An update phase under another approved hash: released and planned, the link still
	// names what was sent; once sent to a, a's link names the update and b's does not.
	phase, err := f.s.OpenPhase(f.ctx, f.id, store.PhaseUpdate, "alice")
	require.NoError(t, err)
	f.approve(hashB, 1, "alice", "bob")
	released, _ := f.release(hashB, 1)
	require.Equal(t, 2, released)
	f.planAll(f.pass(2, phase))
	update, err := f.s.ClaimPage(f.ctx, f.id, 2, 0, f.secret, time.Minute)
	require.NoError(t, err)
	require.Len(t, update.Recipients, 2)
	require.Equal(t, initial, shows("a"))
	for _, r := range update.Recipients {
		require.Equal(t, tokens[r.TenantID], r.Token, "one link per tenant")
		if r.TenantID == "a" {
			require.NoError(t, f.s.MarkSent(f.ctx, f.id, []int64{r.NoticeID}, "msg-2"))
		}
	}
	updated := [2]string{"PSIRT-2026-017", "Update: exposure of device identifiers and user names"}
	require.Equal(t, updated, shows("a"))
	require.Equal(t, initial, shows("b"))

	// The update bounced everywhere for a: its link names the notice that reached it.
	f.exec(`UPDATE ledger SET satisfied_at = NULL, bounced_at = now() WHERE incident_id = $1 AND phase = $2 AND tenant_id = 'a'`, f.id, phase)
	require.Equal(t, initial, shows("a"))
}

// A batch records each tenant once with one audit row each, whatever repeats it holds
// and whatever was recorded before; the chain stays whole.
func TestAcknowledgeManyRecordsEachTenantOnce(t *testing.T) {
	t.Parallel()
	f := newLedgerFixture(t, fixtureOpts{})
	f.simple("a", "b", "c")
	f.scope("a", "b", "c")
	recorded, err := f.s.Acknowledge(f.ctx, f.id, "c", "responder", "alice")
	require.NoError(t, err)
	require.True(t, recorded)
	got, err := f.s.AcknowledgeMany(f.ctx, []store.AckRequest{
		{IncidentID: f.id, TenantID: "a", Via: "link", Actor: "customer"},
		{IncidentID: f.id, TenantID: "b", Via: "link", Actor: "customer"},
		{IncidentID: f.id, TenantID: "a", Via: "link", Actor: "customer"}, // the same POST twice
		{IncidentID: f.id, TenantID: "c", Via: "link", Actor: "customer"}, // acknowledged before
	})
	require.NoError(t, err)
	require.Equal(t, []bool{true, true, false, false}, got)
	var acks, audits int
	require.NoError(t, f.s.Pool().QueryRow(f.ctx, `SELECT count(*) FROM acknowledgements WHERE incident_id = $1`, f.id).Scan(&acks))
	require.NoError(t, f.s.Pool().QueryRow(f.ctx, `SELECT count(*) FROM audit_log WHERE incident_id = $1 AND action = 'tenant.acknowledged'`, f.id).Scan(&audits))
	require.Equal(t, 3, acks)
	require.Equal(t, 3, audits)
	var detail string
	require.NoError(t, f.s.Pool().QueryRow(f.ctx, `SELECT detail::text FROM audit_log WHERE incident_id = $1 AND action = 'tenant.acknowledged'
		AND detail->>'tenant_id' = 'b'`, f.id).Scan(&detail))
	require.JSONEq(t, `{"tenant_id":"b","via":"link"}`, detail)
	rep, err := f.s.VerifyAudit(f.ctx)
	require.NoError(t, err)
	require.True(t, rep.OK, "%+v", rep)
	got, err = f.s.AcknowledgeMany(f.ctx, []store.AckRequest{{IncidentID: f.id, TenantID: "b", Via: "link", Actor: "customer"}})
	require.NoError(t, err)
	require.Equal(t, []bool{false}, got)
}
