package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/breachflow/breachflow/internal/store"
)

// Ack shape: one acknowledgement for each of at most AckMaxTenants tenants, posted by
// AckClients concurrent clients, client c taking tenants c, c+AckClients, …; a client's
// 1st, (AckRepeatEvery+1)th, … post is posted again once answered, as a second click on
// the button would (answered, not recorded again).
const (
	AckMaxTenants  = 20_000
	AckClients     = 50
	AckRepeatEvery = 10
)

// AckFigures are what the acknowledgement POSTs measured.
type AckFigures struct {
	// Tenants acknowledged once each, plus Repeats of links already acknowledged, by
	// Clients concurrent clients, in Elapsed.
	Tenants, Repeats, Clients int
	Elapsed                   time.Duration
	// PerSecond is every POST (first and repeated) over Elapsed; P50 and P99 are their
	// latencies.
	PerSecond float64
	P50, P99  time.Duration
	// Recorded is the acknowledgements the incident has afterwards: one per tenant and one
	// audit row each (the run fails otherwise).
	Recorded int
}

// ackLink is a tenant's acknowledgement link.
type ackLink struct {
	tenantID, token string
}

// acks posts one acknowledgement per tenant of the incident (at most AckMaxTenants) to
// POST /ack/{token}, as the page's button does, from AckClients concurrent clients with
// repeats among them, and checks from acknowledgements and the audit log that each tenant
// was recorded exactly once.
func (r *run) acks(ctx context.Context, apiURL string, secret []byte, incidentID string) (AckFigures, error) {
	f := AckFigures{Clients: AckClients}
	r.phase.Store("ack POSTs: reading tokens")
	rows, err := r.st.Pool().Query(ctx, `SELECT tenant_id, nonce FROM ack_tokens WHERE incident_id = $1 AND expires_at > now()
		ORDER BY tenant_id LIMIT $2`, incidentID, AckMaxTenants)
	if err != nil {
		return f, fmt.Errorf("acks: tokens: %w", err)
	}
	links, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ackLink, error) {
		var l ackLink
		var nonce []byte
		err := row.Scan(&l.tenantID, &nonce)
		l.token = store.AckToken(secret, incidentID, l.tenantID, nonce)
		return l, err
	})
	if err != nil {
		return f, fmt.Errorf("acks: tokens: %w", err)
	}
	if len(links) == 0 {
		return f, fmt.Errorf("acks: the incident has no acknowledgement tokens")
	}
	var before int
	if err := r.st.Pool().QueryRow(ctx, `SELECT count(*) FROM acknowledgements WHERE incident_id = $1`, incidentID).Scan(&before); err != nil {
		return f, fmt.Errorf("acks: count acknowledgements: %w", err)
	}
	if before != 0 {
		return f, fmt.Errorf("acks: the incident already has %d acknowledgements", before)
	}
	f.Tenants = len(links)

	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: AckClients}}
	defer hc.CloseIdleConnections()
	r.phase.Store("ack POSTs")
	step := r.startStep("acks", len(links))
	defer r.endStep()
	latencies := make([][]time.Duration, AckClients)
	repeats := make([]int, AckClients)
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for c := range AckClients {
		g.Go(func() error {
			for k, i := 0, c; i < len(links); k, i = k+1, i+AckClients {
				d, err := postAck(gctx, hc, apiURL, links[i].token)
				if err != nil {
					return fmt.Errorf("acks: tenant %s: %w", links[i].tenantID, err)
				}
				latencies[c] = append(latencies[c], d)
				step.Add(1)
				if k%AckRepeatEvery != 0 {
					continue
				}
				if d, err = postAck(gctx, hc, apiURL, links[i].token); err != nil {
					return fmt.Errorf("acks: tenant %s again: %w", links[i].tenantID, err)
				}
				latencies[c] = append(latencies[c], d)
				repeats[c]++
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return f, err
	}
	f.Elapsed = time.Since(start)
	all := slices.Concat(latencies...)
	for _, n := range repeats {
		f.Repeats += n
	}
	if len(all) != f.Tenants+f.Repeats {
		return f, fmt.Errorf("acks: %d latencies for %d POSTs", len(all), f.Tenants+f.Repeats)
	}
	slices.Sort(all)
	f.P50, f.P99 = percentile(all, 50), percentile(all, 99)
	if f.Elapsed > 0 {
		f.PerSecond = float64(len(all)) / f.Elapsed.Seconds()
	}

	r.phase.Store("ack POSTs: checking")
	ids := make([]string, len(links))
	for i, l := range links {
		ids[i] = l.tenantID
	}
	var recorded, distinct, posted, audited int
	if err := r.st.Pool().QueryRow(ctx, `SELECT count(*), count(DISTINCT tenant_id), count(*) FILTER (WHERE tenant_id = ANY ($2) AND via = 'link'),
			(SELECT count(*) FROM audit_log WHERE incident_id = $1 AND action = 'tenant.acknowledged')
		FROM acknowledgements WHERE incident_id = $1`, incidentID, ids).Scan(&recorded, &distinct, &posted, &audited); err != nil {
		return f, fmt.Errorf("acks: count acknowledgements: %w", err)
	}
	if recorded != f.Tenants || distinct != f.Tenants || posted != f.Tenants || audited != f.Tenants {
		return f, fmt.Errorf("acks: %d tenants acknowledged (%d repeats): %d acknowledgements of %d tenants, %d of them the posted ones by link, %d audit rows",
			f.Tenants, f.Repeats, recorded, distinct, posted, audited)
	}
	f.Recorded = recorded
	return f, nil
}

// postAck posts an acknowledgement as the page's form does (an empty form) and returns
// the time to the whole answer, which must be the page saying it is acknowledged.
func postAck(ctx context.Context, hc *http.Client, apiURL, token string) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, apiURL+"/ack/"+token, http.NoBody)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	page, err := io.ReadAll(resp.Body)
	d := time.Since(start)
	if err != nil {
		return d, err
	}
	if resp.StatusCode != http.StatusOK {
		return d, fmt.Errorf("POST /ack/…: %d", resp.StatusCode)
	}
	// The acknowledged page, in the tenant's language, first time or again.
	if !bytes.Contains(page, []byte(`<p role="status">`)) {
		return d, fmt.Errorf("POST /ack/…: the page does not say it is acknowledged")
	}
	return d, nil
}

// percentile is the p-th percentile of sorted (nearest rank).
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (len(sorted)*p + 99) / 100
	return sorted[max(rank, 1)-1]
}
