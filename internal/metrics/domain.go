package metrics

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/breachflow/breachflow/internal/store"
)

// DefaultScrapeTimeout bounds the queries of one scrape of the domain series.
const DefaultScrapeTimeout = 5 * time.Second

// DefaultNearDeadline is the share of the time from an owed tenant's clock start (the
// awareness time for the initial notice) to its deadline after which it counts as near
// its deadline — the workflow's second deadline alert.
const DefaultNearDeadline = 0.75

// NoticeStatuses are the outbox statuses a notice can have.
var NoticeStatuses = []string{"pending", "sending", "sent", "delivered", "deferred", "bounced", "dropped", "failed", "cancelled"}

// Stages are the stages an incident can be in.
var Stages = []string{store.StageDeclared, store.StageAssessing, store.StageScoping, store.StageApproval, store.StagePartnerReview,
	store.StageNotifying, store.StageTracking, store.StageClosed}

// Querier is what Domain reads PostgreSQL through: a *pgxpool.Pool.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

var (
	incidentsDesc = prometheus.NewDesc("breachflow_incidents",
		"Incidents by stage.", []string{"stage"}, nil)
	noticesDesc = prometheus.NewDesc("breachflow_notices",
		"Notices (outbox rows, one per contact and phase or reminder) of open incidents by status.", []string{"status"}, nil)
	duplicateNoticesDesc = prometheus.NewDesc("breachflow_possible_duplicate_notices",
		"Notices of open incidents sent again after an unanswered send: their recipients may have them twice.", nil, nil)
	acksDesc = prometheus.NewDesc("breachflow_acknowledged_tenants",
		"Tenants that acknowledged an open incident's notice (one per incident and tenant).", nil, nil)
	unreachableDesc = prometheus.NewDesc("breachflow_unreachable_tenants",
		"Tenants still owed a notice of an open incident with no deliverable contact left (one per incident and tenant).", nil, nil)
	owedDesc = prometheus.NewDesc("breachflow_owed_tenants",
		"Tenants still owed a notice of an open incident (one per incident and tenant).", nil, nil)
	atRiskDesc = prometheus.NewDesc("breachflow_tenants_at_risk",
		"Tenants still owed a notice of an open incident whose deadline is past (window=past) or near "+
			"(window=near: most of the time to it used), one per incident and tenant.", []string{"window"}, nil)
	scrapeSuccessDesc = prometheus.NewDesc("breachflow_domain_scrape_success",
		"1 when every query of the domain series answered in time at this scrape; 0 leaves the failed series out.", nil, nil)
	scrapeDurationDesc = prometheus.NewDesc("breachflow_domain_scrape_duration_seconds",
		"How long the queries of the domain series took at this scrape.", nil, nil)
)

// Domain is a prometheus.Collector of the gauges that reflect the truth, read from
// PostgreSQL at every scrape with one aggregate query per family: incidents by stage,
// notices by status, acknowledgements, and owed, unreachable and at-risk tenants of open
// incidents. Reading them at scrape time keeps them right across restarts of any process
// and whichever worker did the work; no label names an incident, tenant or contact.
// Register it on the API's registry.
type Domain struct {
	db  Querier
	log *zap.Logger
	// Timeout bounds all queries of one scrape (zero: DefaultScrapeTimeout).
	Timeout time.Duration
	// Near is the share of the time to a deadline after which an owed tenant is near it
	// (zero: DefaultNearDeadline).
	Near float64
	// Now is the clock deadlines are compared with (nil: time.Now).
	Now func() time.Time
}

// NewDomain returns the collector reading db; a nil logger logs nothing.
func NewDomain(db Querier, log *zap.Logger) *Domain {
	if log == nil {
		log = zap.NewNop()
	}
	return &Domain{db: db, log: log}
}

// Describe sends the descriptors of every domain series.
func (d *Domain) Describe(ch chan<- *prometheus.Desc) {
	for _, desc := range []*prometheus.Desc{incidentsDesc, noticesDesc, duplicateNoticesDesc, acksDesc, unreachableDesc, owedDesc,
		atRiskDesc, scrapeSuccessDesc, scrapeDurationDesc} {
		ch <- desc
	}
}

// Collect runs the queries and sends what answered; a failed query leaves its series out
// (absent, not zero) and sets breachflow_domain_scrape_success to 0.
func (d *Domain) Collect(ch chan<- prometheus.Metric) {
	start := time.Now()
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = DefaultScrapeTimeout
	}
	// Collect is given no context; the scrape's queries are bounded here instead.
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ok := 1.0
	for _, q := range []struct {
		name string
		run  func(context.Context) ([]prometheus.Metric, error)
	}{{"incidents", d.incidents}, {"notices", d.notices}, {"acknowledgements", d.acks}, {"ledger", d.ledger}} {
		ms, err := q.run(ctx)
		if err != nil {
			ok = 0
			d.log.Warn("domain metrics query failed", zap.String("query", q.name), zap.Error(err))
			continue
		}
		for _, m := range ms {
			ch <- m
		}
	}
	ch <- prometheus.MustNewConstMetric(scrapeSuccessDesc, prometheus.GaugeValue, ok)
	ch <- prometheus.MustNewConstMetric(scrapeDurationDesc, prometheus.GaugeValue, time.Since(start).Seconds())
}

// countBy runs a query of (label, count) rows and returns a gauge per known label value,
// zero for those without rows, so that every series exists from the start.
func (d *Domain) countBy(ctx context.Context, desc *prometheus.Desc, known []string, sql string) ([]prometheus.Metric, error) {
	rows, err := d.db.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	counts := map[string]int64{}
	for _, k := range known {
		counts[k] = 0
	}
	var key string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&key, &n}, func() error {
		counts[key] = n
		return nil
	}); err != nil {
		return nil, err
	}
	out := make([]prometheus.Metric, 0, len(counts))
	for k, n := range counts {
		out = append(out, prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(n), k))
	}
	return out, nil
}

func (d *Domain) incidents(ctx context.Context) ([]prometheus.Metric, error) {
	ms, err := d.countBy(ctx, incidentsDesc, Stages, `SELECT stage, count(*) FROM incidents GROUP BY stage`)
	if err != nil {
		return nil, fmt.Errorf("incidents by stage: %w", err)
	}
	return ms, nil
}

func (d *Domain) notices(ctx context.Context) ([]prometheus.Metric, error) {
	rows, err := d.db.Query(ctx, `
		SELECT n.status, count(*), count(*) FILTER (WHERE n.possible_duplicate)
		FROM notices n JOIN incidents i ON i.id = n.incident_id
		WHERE i.stage <> 'closed'
		GROUP BY n.status`)
	if err != nil {
		return nil, fmt.Errorf("notices by status: %w", err)
	}
	counts := map[string]int64{}
	for _, s := range NoticeStatuses {
		counts[s] = 0
	}
	var status string
	var n, dup, dups int64
	if _, err := pgx.ForEachRow(rows, []any{&status, &n, &dup}, func() error {
		counts[status] = n
		dups += dup
		return nil
	}); err != nil {
		return nil, fmt.Errorf("notices by status: %w", err)
	}
	out := make([]prometheus.Metric, 0, len(counts)+1)
	for s, n := range counts {
		out = append(out, prometheus.MustNewConstMetric(noticesDesc, prometheus.GaugeValue, float64(n), s))
	}
	return append(out, prometheus.MustNewConstMetric(duplicateNoticesDesc, prometheus.GaugeValue, float64(dups))), nil
}

func (d *Domain) acks(ctx context.Context) ([]prometheus.Metric, error) {
	var n int64
	if err := d.db.QueryRow(ctx, `
		SELECT count(*) FROM acknowledgements a JOIN incidents i ON i.id = a.incident_id
		WHERE i.stage <> 'closed'`).Scan(&n); err != nil {
		return nil, fmt.Errorf("acknowledgements: %w", err)
	}
	return []prometheus.Metric{prometheus.MustNewConstMetric(acksDesc, prometheus.GaugeValue, float64(n))}, nil
}

// ledger counts owed tenants, and those unreachable, past or near their deadline, in one
// pass over the owed rows of open incidents. A tenant owed in several phases counts once,
// in the worst window it is in.
func (d *Domain) ledger(ctx context.Context) ([]prometheus.Metric, error) {
	near := d.Near
	if near <= 0 || near > 1 {
		near = DefaultNearDeadline
	}
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	var owed, unreachable, past, nearing int64
	if err := d.db.QueryRow(ctx, `
		WITH owed AS (
			SELECT bool_or(l.unreachable_at IS NOT NULL) AS unreachable,
			       bool_or(l.deadline <= $1::timestamptz) AS past,
			       bool_or(s.start + (l.deadline - s.start) * $2::float8 <= $1::timestamptz) AS near
			FROM ledger l JOIN incidents i ON i.id = l.incident_id
			CROSS JOIN LATERAL (SELECT CASE WHEN l.phase = 1 THEN least(i.aware_at, l.owed_since) ELSE l.owed_since END AS start) s
			WHERE i.stage <> 'closed' AND l.removed_at IS NULL AND l.satisfied_at IS NULL
			GROUP BY l.incident_id, l.tenant_id)
		SELECT count(*), count(*) FILTER (WHERE unreachable), count(*) FILTER (WHERE past),
		       count(*) FILTER (WHERE near AND NOT past)
		FROM owed`, now(), near).Scan(&owed, &unreachable, &past, &nearing); err != nil {
		return nil, fmt.Errorf("owed tenants: %w", err)
	}
	return []prometheus.Metric{
		prometheus.MustNewConstMetric(owedDesc, prometheus.GaugeValue, float64(owed)),
		prometheus.MustNewConstMetric(unreachableDesc, prometheus.GaugeValue, float64(unreachable)),
		prometheus.MustNewConstMetric(atRiskDesc, prometheus.GaugeValue, float64(past), "past"),
		prometheus.MustNewConstMetric(atRiskDesc, prometheus.GaugeValue, float64(nearing), "near"),
	}, nil
}
