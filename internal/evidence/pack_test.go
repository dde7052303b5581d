package evidence_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/evidence"
	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/testenv"
)

// packTenant is what a test reads of a tenant file.
type packTenant struct {
	IncidentID string `json:"incident_id"`
	Tenant     struct {
		ID, Name string
	} `json:"tenant"`
	Obligations []struct {
		Phase       int    `json:"phase"`
		State       string `json:"state"`
		DeadlineMet *bool  `json:"deadline_met"`
		ContentHash string `json:"content_hash"`
	} `json:"obligations"`
	Acknowledgement *struct {
		Via string `json:"via"`
	} `json:"acknowledgement"`
	AckTokenSHA256 string `json:"ack_token_sha256"`
	Contacts       []struct {
		Email   string `json:"email"`
		Notices []struct {
			NoticeID          int64              `json:"notice_id"`
			Phase             *int               `json:"phase"`
			Locale            string             `json:"locale"`
			ContentHash       string             `json:"content_hash"`
			Status            string             `json:"status"`
			ProviderMessageID string             `json:"provider_message_id"`
			Facts             notice.TenantFacts `json:"facts"`
			Events            []struct {
				Event       string `json:"event"`
				SGMessageID string `json:"sg_message_id"`
			} `json:"events"`
			Rendered *struct {
				Subject string `json:"subject"`
				Text    string `json:"text"`
				ReplyTo string `json:"reply_to"`
			} `json:"rendered"`
		} `json:"notices"`
	} `json:"contacts"`
}

var ackLinkRe = regexp.MustCompile(regexp.QuoteMeta(publicURL) + `/ack/([0-9a-f]{64})`)

// TestPackVerifies exports the whole incident: the pack verifies offline with the public
// key alone, and holds per tenant and contact every notice as its recipient read it (the
// sink's subject and text, the link's token replaced by its SHA-256, the tenant's own
// facts, the reply-to address), SendGrid's message id and events, the obligation met or
// not, the acknowledgement, and the audit excerpt covered by the checkpoints taken at
// close and at export.
func TestPackVerifies(t *testing.T) {
	t.Parallel()
	keys, pub := newKeys(t)
	f := notifyIncident(t, 5, keys)
	pack := f.export(t, "", keys)

	rep := verify(t, pack, verifier(t, pub))
	require.True(t, rep.OK, "%v", rep.Problems)
	require.Empty(t, rep.Warnings)
	require.True(t, rep.Signed)
	require.Equal(t, f.id, rep.IncidentID)
	require.Equal(t, 5, rep.Tenants)
	require.Equal(t, 2, rep.Checkpoints, "the close and the export checkpoints")
	require.Zero(t, rep.Redacted)

	fs := files(t, pack)
	lines := strings.Split(strings.TrimSpace(string(fs[evidence.ExcerptFile])), "\n")
	require.Equal(t, rep.AuditRows, len(lines))
	for _, line := range lines {
		var l struct{ Seq int64 }
		require.NoError(t, json.Unmarshal([]byte(line), &l))
		require.LessOrEqual(t, l.Seq, rep.CoveredThrough, "every row is covered")
	}
	require.Contains(t, string(fs[evidence.ExcerptFile]), `"action":"incident.closed"`)
	require.Contains(t, string(fs[evidence.ExcerptFile]), `"action":"evidence.exported"`)
	require.Contains(t, fs, "drafts/"+f.hash+".json")

	sent := map[int64]string{} // notice id → text as the sink received it
	msgID := map[int64]string{}
	subject := map[int64]string{}
	for _, m := range f.messages(t) {
		var nid int64
		require.NoError(t, json.Unmarshal([]byte(m.CustomArgs["notice_id"]), &nid))
		sent[nid], msgID[nid], subject[nid] = m.Text, m.MessageID, m.Subject
		require.NotNil(t, m.ReplyTo)
		require.Equal(t, sender.ReplyTo, m.ReplyTo.Email)
	}
	notices, bounced := 0, 0
	for _, id := range f.tenants {
		var tf packTenant
		require.NoError(t, json.Unmarshal(fs["tenants/"+id+".json"], &tf), id)
		require.Equal(t, id, tf.Tenant.ID)
		require.Len(t, tf.Obligations, 1)
		ob := tf.Obligations[0]
		require.Equal(t, f.hash, ob.ContentHash)
		require.NotNil(t, ob.DeadlineMet, id)
		require.True(t, *ob.DeadlineMet, "%s was notified in time", id)
		require.Equal(t, "delivered", ob.State, "to one contact at least")
		require.Equal(t, id == f.acked, tf.Acknowledgement != nil, id)
		require.Len(t, tf.Contacts, 2, id)
		for _, c := range tf.Contacts {
			require.Len(t, c.Notices, 1)
			n := c.Notices[0]
			notices++
			require.Equal(t, f.hash, n.ContentHash)
			require.NotEmpty(t, n.ProviderMessageID)
			require.Equal(t, msgID[n.NoticeID], n.ProviderMessageID, "SendGrid's X-Message-Id")
			require.Len(t, n.Events, 1)
			require.NotNil(t, n.Rendered, "notice %d", n.NoticeID)
			m := ackLinkRe.FindStringSubmatch(sent[n.NoticeID])
			require.NotNil(t, m, "the sent notice carries its link")
			sum := sha256.Sum256([]byte(m[1]))
			require.Equal(t, hex.EncodeToString(sum[:]), tf.AckTokenSHA256)
			require.Equal(t, strings.ReplaceAll(sent[n.NoticeID], m[1], "REDACTED-sha256-"+tf.AckTokenSHA256), n.Rendered.Text,
				"the pack shows the notice as it was sent, but for the link's token")
			require.Equal(t, subject[n.NoticeID], n.Rendered.Subject)
			require.Equal(t, sender.ReplyTo, n.Rendered.ReplyTo)
			require.Equal(t, f.facts[id], n.Facts, "%s: its own services and numbers, as the notice stated them", id)
			facts, _ := notice.FactsBlock(f.facts[id], n.Locale)
			require.Contains(t, n.Rendered.Text, facts, "%s's notice states its own facts", id)
			require.NotContains(t, string(fs["tenants/"+id+".json"]), m[1], "no acknowledgement token in the pack")
			if n.Status == "bounced" {
				require.Equal(t, f.bounced, id)
				require.Equal(t, "bounce", n.Events[0].Event)
				bounced++
			} else {
				require.Equal(t, "delivered", n.Status)
			}
		}
	}
	require.Equal(t, len(sent), notices, "every notice sent is in the pack")
	require.Equal(t, 1, bounced)
}

// TestPackShowsFollowupsAsSent: after an update notice, each tenant's file holds both
// phases' obligations and, per contact, the initial and the update notice each exactly as
// the sink received it: the update's subject names its phase itself, with no prefix put
// before it, and both drafts are in the pack.
func TestPackShowsFollowupsAsSent(t *testing.T) {
	t.Parallel()
	keys, pub := newKeys(t)
	f := notifyIncidentWith(t, 3, keys, fixtureOptions{update: true})
	pack := f.export(t, "", keys)
	rep := verify(t, pack, verifier(t, pub))
	require.True(t, rep.OK, "%v", rep.Problems)
	fs := files(t, pack)
	require.Contains(t, fs, "drafts/"+f.hash+".json")
	require.Contains(t, fs, "drafts/"+f.updateHash+".json")

	type sentMsg struct{ subject, text string }
	sent := map[int64]sentMsg{}
	for _, m := range f.messages(t) {
		nid, err := strconv.ParseInt(m.CustomArgs["notice_id"], 10, 64)
		require.NoError(t, err)
		sent[nid] = sentMsg{m.Subject, m.Text}
	}
	updates := 0
	for _, id := range f.tenants {
		var tf packTenant
		require.NoError(t, json.Unmarshal(fs["tenants/"+id+".json"], &tf), id)
		require.Len(t, tf.Obligations, 2, id)
		require.Equal(t, f.updateHash, tf.Obligations[1].ContentHash)
		for _, c := range tf.Contacts {
			require.Len(t, c.Notices, 2, "%s: the initial notice and the update", c.Email)
			for _, n := range c.Notices {
				require.NotNil(t, n.Rendered, "notice %d", n.NoticeID)
				s, ok := sent[n.NoticeID]
				require.True(t, ok, "notice %d was sent", n.NoticeID)
				require.Equal(t, s.subject, n.Rendered.Subject, "notice %d: the subject as sent", n.NoticeID)
				token := ackLinkRe.FindStringSubmatch(s.text)
				require.NotNil(t, token)
				require.Equal(t, strings.ReplaceAll(s.text, token[1], "REDACTED-sha256-"+tf.AckTokenSHA256), n.Rendered.Text)
				if n.ContentHash == f.updateHash {
					updates++
					require.Equal(t, 2, *n.Phase)
					require.NotContains(t, n.Rendered.Subject, "[Update]")
					require.True(t, strings.HasPrefix(n.Rendered.Subject, notice.PhaseLabel(notice.Phase{Number: 2, Kind: notice.PhaseUpdate}, n.Locale)+" — "),
						"%q names its phase", n.Rendered.Subject)
				}
			}
		}
	}
	require.Equal(t, 2*len(f.tenants), updates, "every contact got the update")
}

// TestPackTamperingIsDetected changes each file of a pack in turn (the manifest and its
// signature included), removes each, adds one and repeats one: none verifies.
func TestPackTamperingIsDetected(t *testing.T) {
	t.Parallel()
	keys, pub := newKeys(t)
	f := notifyIncident(t, 3, keys)
	pack := f.export(t, "", keys)
	trust := verifier(t, pub)
	require.True(t, verify(t, pack, trust).OK)

	names := make([]string, 0)
	for name := range files(t, pack) {
		names = append(names, name)
	}
	sort.Strings(names)
	require.Contains(t, names, evidence.ManifestFile)
	require.Contains(t, names, evidence.SignatureFile)
	for _, target := range names {
		t.Run("edit "+target, func(t *testing.T) {
			changed := rezip(t, pack, func(name string, raw []byte) ([]byte, bool) {
				if name != target {
					return raw, true
				}
				return tamperWith(t, raw), true
			})
			rep := verify(t, changed, trust)
			require.False(t, rep.OK, "editing %s went unnoticed", target)
			require.NotEmpty(t, rep.Problems)
		})
		t.Run("remove "+target, func(t *testing.T) {
			rep := verify(t, rezip(t, pack, func(name string, raw []byte) ([]byte, bool) { return raw, name != target }), trust)
			require.False(t, rep.OK, "removing %s went unnoticed", target)
		})
	}
	t.Run("add a file", func(t *testing.T) {
		added := appendFile(t, pack, "tenants/t-extra.json", []byte(`{}`))
		require.Contains(t, verify(t, added, trust).Problems, "tenants/t-extra.json is not in the manifest (added)")
	})
	t.Run("repeat a file", func(t *testing.T) {
		repeated := appendFile(t, pack, "tenants/"+f.tenants[0]+".json", []byte(`{}`))
		require.False(t, verify(t, repeated, trust).OK)
	})
	t.Run("another key", func(t *testing.T) {
		_, other := newKeys(t)
		rep := verify(t, pack, verifier(t, other))
		require.False(t, rep.OK)
		require.False(t, rep.Signed)
	})
}

// tamperWith changes one character a reader would care about: a digit in JSON, else a byte.
func tamperWith(t *testing.T, raw []byte) []byte {
	t.Helper()
	out := bytes.Clone(raw)
	for i := len(out) / 2; i < len(out); i++ {
		if out[i] >= '1' && out[i] <= '8' {
			out[i]++
			return out
		}
	}
	require.NotEmpty(t, out)
	out[len(out)/2] ^= 0x01
	return out
}

// appendFile adds a file at the end of a zip, keeping every entry already there.
func appendFile(t *testing.T, pack []byte, name string, content []byte) []byte {
	t.Helper()
	return rezip(t, pack, func(_ string, raw []byte) ([]byte, bool) { return raw, true }, extraFile{name, content})
}

// TestTenantPackHoldsOnlyItsTenant: a tenant's pack verifies and names no other tenant
// anywhere (id, name, contact address): the audit rows about other tenants show only
// their sequence number and hash, and still prove the excerpt against the checkpoints.
func TestTenantPackHoldsOnlyItsTenant(t *testing.T) {
	t.Parallel()
	keys, pub := newKeys(t)
	f := notifyIncident(t, 4, keys)
	ctx := context.Background()
	mine := f.tenants[1] // not the one that acknowledged: that row names another tenant
	pack := f.export(t, mine, keys)

	rep := verify(t, pack, verifier(t, pub))
	require.True(t, rep.OK, "%v", rep.Problems)
	require.Equal(t, mine, rep.TenantID)
	require.Equal(t, 1, rep.Tenants)
	require.Positive(t, rep.Redacted, "the acknowledgement of another tenant is redacted")
	require.Positive(t, rep.Checkpoints)

	fs := files(t, pack)
	require.Contains(t, fs, "tenants/"+mine+".json")
	var others []string
	rows, err := f.st.Pool().Query(ctx, `SELECT t.id, t.name, c.email FROM tenants t JOIN contacts c ON c.tenant_id = t.id
		WHERE t.id <> $1 AND t.name <> (SELECT name FROM tenants WHERE id = $1)`, mine)
	require.NoError(t, err)
	for rows.Next() {
		var id, name, email string
		require.NoError(t, rows.Scan(&id, &name, &email))
		others = append(others, `"`+id+`"`, "/"+id+".json", name, email)
	}
	require.NoError(t, rows.Err())
	require.NotEmpty(t, others)
	for name, raw := range fs {
		for _, o := range others {
			require.NotContains(t, string(raw), o, "%s names another tenant", name)
		}
	}
	var tf packTenant
	require.NoError(t, json.Unmarshal(fs["tenants/"+mine+".json"], &tf))
	require.Equal(t, mine, tf.Tenant.ID)
	require.Len(t, tf.Contacts, 2)

	// The full pack of the same incident shows the row the tenant's pack redacted.
	full := files(t, f.export(t, "", keys))
	require.Contains(t, string(full[evidence.ExcerptFile]), `"action":"tenant.acknowledged"`)
	require.NotContains(t, string(fs[evidence.ExcerptFile]), `"action":"tenant.acknowledged"`)
}

func TestPackOfUnknownTenantOrIncident(t *testing.T) {
	t.Parallel()
	keys, _ := newKeys(t)
	f := notifyIncident(t, 2, keys)
	ctx := context.Background()
	outside := f.st // a tenant exists but is not in scope
	var spare string
	require.NoError(t, outside.Pool().QueryRow(ctx, `SELECT id FROM tenants WHERE id <> ALL ($1) LIMIT 1`, f.tenants).Scan(&spare))
	for _, o := range []evidence.PackOptions{
		{IncidentID: f.id, TenantID: spare},
		{IncidentID: f.id, TenantID: "no such tenant"},
		{IncidentID: "INC-NOPE-0000"},
	} {
		var buf bytes.Buffer
		_, err := evidence.WritePack(ctx, f.st, &buf, o)
		require.ErrorIs(t, err, store.ErrNotFound, "%+v", o)
		require.Zero(t, buf.Len(), "nothing is written")
	}
}

// TestPackShowsARewrittenChain: after the close checkpoint, a superuser edits one of the
// incident's audit rows and recomputes every later hash. No checkpoint is signed over it
// at export, and the pack says where the excerpt no longer matches what was signed.
func TestPackShowsARewrittenChain(t *testing.T) {
	t.Parallel()
	keys, pub := newKeys(t)
	f := notifyIncident(t, 2, keys)
	ctx := context.Background()
	var seq int64
	require.NoError(t, f.st.Pool().QueryRow(ctx, `SELECT seq FROM audit_log WHERE incident_id = $1 AND action = 'notice.approved' ORDER BY seq LIMIT 1`,
		f.id).Scan(&seq))
	testenv.RehashAudit(t, f.st, `UPDATE audit_log SET actor = 'mallory#1' WHERE seq = `+itoa(seq), seq)
	plain, err := f.st.VerifyAudit(ctx)
	require.NoError(t, err)
	require.True(t, plain.OK, "the rewritten chain links up")

	var buf bytes.Buffer
	m, err := evidence.WritePack(ctx, f.st, &buf, evidence.PackOptions{IncidentID: f.id, Actor: f.actor, PublicURL: publicURL, Keys: keys})
	require.NoError(t, err, "the pack is still written, to show the damage")
	require.Contains(t, m.ExportCheckpointError, "audit chain broken")
	rep := verify(t, buf.Bytes(), verifier(t, pub))
	require.False(t, rep.OK)
	require.True(t, rep.Signed, "the manifest is genuine: the database is what was changed")
	joined := strings.Join(rep.Problems, "\n")
	require.Contains(t, joined, "no checkpoint could be taken at export")
	require.Contains(t, joined, "rows edited, removed or added", "the close checkpoint's digest no longer matches")
}

// TestPackStreamsTenantByTenant: each tenant's file reaches the writer as it is read, not
// at the end: halfway through the tenants, a good part of the pack has been written.
func TestPackStreamsTenantByTenant(t *testing.T) {
	t.Parallel()
	keys, _ := newKeys(t)
	f := notifyIncident(t, 60, keys)
	var buf bytes.Buffer
	var written []int
	_, err := evidence.WritePack(context.Background(), f.st, &buf, evidence.PackOptions{IncidentID: f.id, Actor: f.actor,
		PublicURL: publicURL, Keys: keys, Progress: func() { written = append(written, buf.Len()) }})
	require.NoError(t, err)
	require.Len(t, written, 60)
	require.Greater(t, written[30], buf.Len()/3, "half the tenants, a third of the pack at least")
	require.Greater(t, written[59], written[30])
}

// TestUnsignedPack: without a signing key the pack is still written, says so, and does
// not verify.
func TestUnsignedPack(t *testing.T) {
	t.Parallel()
	keys, pub := newKeys(t)
	f := notifyIncident(t, 2, keys)
	pack := f.export(t, "", nil)
	fs := files(t, pack)
	require.NotContains(t, fs, evidence.SignatureFile)
	require.Contains(t, string(fs[evidence.ReadmeFile]), "IT IS NOT SIGNED")
	rep := verify(t, pack, verifier(t, pub))
	require.False(t, rep.OK)
	require.Contains(t, rep.Problems, "the pack is not signed (no manifest.sig)")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
