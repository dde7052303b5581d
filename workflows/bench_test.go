package workflows_test

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/workflows"
)

// BenchmarkNotifyIncident runs one incident on the real stack (PostgreSQL, in-process
// Temporal, the SendGrid client against the sink) over BREACHFLOW_BENCH_TENANTS tenants
// (default 100,000) × 3 contacts, and reports the time from the second approval to the
// first and to the last notice accepted by the sink. Run it with -benchtime=1x.
func BenchmarkNotifyIncident(b *testing.B) {
	n := 100_000
	if v := os.Getenv("BREACHFLOW_BENCH_TENANTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("BREACHFLOW_BENCH_TENANTS=%q: want a positive number", v)
		}
	}
	const perTenant = 3
	for range b.N {
		b.StopTimer()
		s := newStackWith(b, stackOptions{Tenants: n, Contacts: perTenant, MaxMessages: 1000})
		id, _ := s.declare(b, "", workflows.Timing{AckCheckInterval: time.Hour})
		b.StartTimer()
		s.approveNotice(b, id, store.ScopeCriteria{Services: allServices})
		approved := time.Now()
		var first time.Duration
		want := uint64(n * perTenant)
		deadline := approved.Add(30 * time.Minute)
		for {
			got := s.sink.Stats().Accepted
			if got > 0 && first == 0 {
				first = time.Since(approved)
			}
			if got >= want {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("only %d of %d notices accepted after 30 minutes", got, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
		last := time.Since(approved)
		b.StopTimer()
		largest := s.checkHistories(b, id, 4096, "")
		b.ReportMetric(first.Seconds(), "s-to-first")
		b.ReportMetric(last.Seconds(), "s-to-last")
		b.ReportMetric(float64(want)/last.Seconds(), "notices/s")
		b.ReportMetric(float64(largest), "max-history-events")
		b.Logf("%d tenants × %d contacts: second approval → first notice accepted %s, → last %s (%.0f notices/s); largest history %d events",
			n, perTenant, first.Round(time.Millisecond), last.Round(time.Millisecond), float64(want)/last.Seconds(), largest)
		s.stopWorker()
	}
}
