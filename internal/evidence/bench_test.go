package evidence_test

import (
	"context"
	"io"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/activities"
	"github.com/breachflow/breachflow/internal/evidence"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/tenants"
	"github.com/breachflow/breachflow/internal/testenv"
)

// BenchmarkWritePack writes the pack of an incident whose every tenant (100,000, or
// BREACHFLOW_BENCH_TENANTS) was sent one notice with a delivery event, written set-based
// rather than sent, and reports the pack's size and the heap in use at its end:
//
//	go test ./internal/evidence -run '^$' -bench WritePack -benchtime 1x
func BenchmarkWritePack(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("BREACHFLOW_BENCH_TENANTS")); err == nil && v > 0 {
		n = v
	}
	ctx := context.Background()
	st := testenv.Store(b)
	testenv.Tenants(b, st, tenants.Options{Tenants: n, ContactsPerTenant: 1, Seed: 5})
	keys, _ := newKeys(b)
	inc, _, err := st.CreateIncident(ctx, "", store.Declaration{Title: "Bench", Severity: "high", AwareAt: time.Now().Add(-time.Hour)}, "bench", time.Now())
	require.NoError(b, err)
	p, err := activities.ProposeDraft(ctx, st, inc.ID, draftJSON(b, inc), "bench", activities.DraftOptions{Sender: sender})
	require.NoError(b, err)
	hash := p.Hash
	for _, sql := range []string{
		`INSERT INTO notice_phases (incident_id, phase, kind, created_by) SELECT $1, 1, 'initial', 'bench' WHERE $2 <> ''`,
		`INSERT INTO ledger (incident_id, phase, tenant_id, added_version, deadline, content_hash, scope_version, released_at, first_sent_at, satisfied_at, delivered_at)
			SELECT $1, 1, id, 1, now() + interval '3 days', $2, 1, now(), now(), now(), now() FROM tenants`,
		`INSERT INTO notice_rounds (incident_id, round, kind, scope_version, content_hash, phase) VALUES ($1, 1, 'initial', 1, $2, 1)`,
		`INSERT INTO notices (incident_id, round, tenant_id, contact_id, page, locale, status, provider_message_id, sent_at, status_at, phase, content_hash)
			SELECT $1, 1, c.tenant_id, c.id, 0, 'en', 'delivered', 'msg-' || c.id, now(), now(), 1, $2 FROM contacts c`,
		`INSERT INTO delivery_events (sg_event_id, notice_id, event, occurred_at, sg_message_id)
			SELECT 'ev-' || id, id, 'delivered', now(), 'msg-' || id FROM notices WHERE incident_id = $1 AND $2 <> ''`,
		`INSERT INTO ack_tokens (token_hash, nonce, incident_id, tenant_id, expires_at)
			SELECT sha256(convert_to(id || $2, 'UTF8')), '\x00000000000000000000000000000000', $1, id, now() + interval '3 days' FROM tenants`,
	} {
		_, err = st.Pool().Exec(ctx, sql, inc.ID, hash)
		require.NoError(b, err)
	}
	_, err = st.Pool().Exec(ctx, `ANALYZE`)
	require.NoError(b, err)
	b.ResetTimer()
	for range b.N {
		var size countWriter
		var peak heapPeak
		m, err := evidence.WritePack(ctx, st, &size, evidence.PackOptions{IncidentID: inc.ID, Actor: "bench", PublicURL: publicURL, Keys: keys,
			Progress: func() { peak.sample() }})
		require.NoError(b, err)
		require.Equal(b, n, m.Tenants)
		b.ReportMetric(float64(peak.max)/1e6, "MB-peak-live-heap")
		b.ReportMetric(float64(size)/1e6, "MB/pack")
	}
}

// heapPeak samples the live heap (after a collection) every 10,000 tenants.
type heapPeak struct {
	n   int
	max uint64
}

func (h *heapPeak) sample() {
	if h.n++; h.n%10000 != 0 {
		return
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h.max = max(h.max, ms.HeapAlloc)
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}

var _ io.Writer = (*countWriter)(nil)
