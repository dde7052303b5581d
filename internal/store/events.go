package store

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// DeliveryEvent is one SendGrid Event Webhook event as the outbox records it. It carries no
// recipient address: the notice it names already knows its contact.
type DeliveryEvent struct {
	SGEventID   string    // SendGrid's unique event id; repeats are dropped
	NoticeID    int64     // the notice_id custom arg; 0 when absent or not a number
	Event       string    // SendGrid's event name: processed, delivered, deferred, bounce, dropped, …
	OccurredAt  time.Time // when SendGrid says it happened
	SGMessageID string    // per-recipient message id; its part before the first '.' is the X-Message-Id
	Reason      string    // why a bounce or drop happened; may be empty
}

// ApplyResult counts what ApplyDeliveryEvents did with a batch.
type ApplyResult struct {
	Received      int            `json:"received"`               // events in the batch
	Applied       int            `json:"applied"`                // events recorded for the first time
	Duplicates    int            `json:"duplicates"`             // events recorded before (or repeated in the batch)
	Unknown       int            `json:"unknown"`                // events naming no notice of ours; skipped
	Invalid       int            `json:"invalid"`                // events without a usable id, name or time; skipped
	Notices       int            `json:"notices_updated"`        // notices whose status moved forward
	Undeliverable int            `json:"contacts_undeliverable"` // contacts newly marked undeliverable
	Events        map[string]int `json:"events"`                 // applied events by name
	// Reopened counts, per incident, tenant-phases that a bounce or drop left owed again.
	Reopened map[string]int `json:"reopened,omitempty"`
}

// ledgerFromEventsSQL brings the ledger rows of the tenant-phases the batch's notices
// belong to up to date (it runs after the notices moved, so it sees them). Most moves are
// a sent notice delivered or deferred: when every moved notice of a tenant-phase is, and
// the tenant-phase was already notified no later than they were sent, only its first
// delivery can change, and that is all that is written. Any other is recomputed from all
// the tenant-phase's notices: notified is the earliest send still good, a bounce or drop
// with no other good send makes the tenant owed again, and the first delivery is kept.
const ledgerFromEventsSQL = `
WITH touched AS (
    SELECT incident_id, phase, tenant_id,
           bool_and(status IN ('delivered', 'deferred') AND sent_at IS NOT NULL) AS good, min(sent_at) AS sent,
           min(status_at) FILTER (WHERE status = 'delivered') AS delivered
    FROM notices WHERE id = ANY ($1) AND phase IS NOT NULL GROUP BY incident_id, phase, tenant_id
), decided AS (
    SELECT t.incident_id, t.phase, t.tenant_id, t.delivered,
           t.good AND l.satisfied_at IS NOT NULL AND l.satisfied_at <= t.sent AND l.first_sent_at IS NOT NULL
             AND l.failed_at IS NULL AND l.last_error IS NULL AS delivery_only
    FROM touched t JOIN ledger l ON l.incident_id = t.incident_id AND l.phase = t.phase AND l.tenant_id = t.tenant_id
), delivery AS (
    -- Runs whether or not the query reads it, as every data-modifying WITH does.
    UPDATE ledger l SET delivered_at = d.delivered
    FROM decided d WHERE d.delivery_only AND d.delivered IS NOT NULL
      AND l.incident_id = d.incident_id AND l.phase = d.phase AND l.tenant_id = d.tenant_id AND l.delivered_at IS NULL
    RETURNING 1
), agg AS (
    -- Per other touched tenant-phase, its own notices (by index, whatever the table's size).
    SELECT t.incident_id, t.phase, t.tenant_id, x.good, x.first_sent, x.delivered, x.bounced
    FROM decided t CROSS JOIN LATERAL (
        SELECT min(n.sent_at) FILTER (WHERE n.status IN ('sent', 'delivered', 'deferred')) AS good,
               min(n.sent_at) AS first_sent,
               min(n.status_at) FILTER (WHERE n.status = 'delivered') AS delivered,
               max(n.status_at) FILTER (WHERE n.status IN ('bounced', 'dropped')) AS bounced
        FROM notices n WHERE n.incident_id = t.incident_id AND n.tenant_id = t.tenant_id AND n.phase = t.phase) x
    WHERE NOT t.delivery_only
), upd AS (
    UPDATE ledger l SET satisfied_at = a.good, first_sent_at = coalesce(l.first_sent_at, a.first_sent),
           delivered_at = coalesce(l.delivered_at, a.delivered), bounced_at = coalesce(a.bounced, l.bounced_at),
           failed_at = CASE WHEN a.good IS NULL THEN l.failed_at END, last_error = CASE WHEN a.good IS NULL THEN l.last_error END
    FROM agg a WHERE l.incident_id = a.incident_id AND l.phase = a.phase AND l.tenant_id = a.tenant_id
      AND (l.satisfied_at IS DISTINCT FROM a.good OR (l.first_sent_at IS NULL AND a.first_sent IS NOT NULL)
           OR (l.delivered_at IS NULL AND a.delivered IS NOT NULL) OR (a.bounced IS NOT NULL AND l.bounced_at IS DISTINCT FROM a.bounced)
           OR (a.good IS NOT NULL AND (l.failed_at IS NOT NULL OR l.last_error IS NOT NULL)))
    RETURNING l.incident_id, l.satisfied_at IS NULL AND l.removed_at IS NULL AS owed
)
SELECT incident_id, count(*) FROM upd WHERE owed GROUP BY incident_id`

// Bounds of delivery_events' CHECK constraints; an event outside them is skipped rather than
// failing its whole batch, which SendGrid would otherwise post again and again.
const (
	maxSGEventIDLen = 200
	maxEventNameLen = 40
)

// applyEventsSQL records a batch and moves the notices it concerns in one statement, so only
// the events inserted now (not repeats) touch notices and contacts. A notice's status moves
// only to a higher rank; bounced and dropped share the top rank and so are final. Failed
// counts as unsent: a send that timed out may have been accepted after all, and SendGrid's
// events are the authority on what happened to it.
const applyEventsSQL = `
WITH outcome (event, status, rank) AS (
    VALUES ('processed', 'sent', 1), ('deferred', 'deferred', 2), ('delivered', 'delivered', 3),
           ('bounce', 'bounced', 4), ('dropped', 'dropped', 4)
), known AS (
    SELECT e.sg_event_id, e.notice_id, e.event, e.occurred_at,
           nullif(e.sg_message_id, '') AS sg_message_id, nullif(e.reason, '') AS reason
    FROM unnest($1::text[], $2::bigint[], $3::text[], $4::timestamptz[], $5::text[], $6::text[])
         AS e (sg_event_id, notice_id, event, occurred_at, sg_message_id, reason)
    JOIN notices n ON n.id = e.notice_id
), fresh AS (
    INSERT INTO delivery_events (sg_event_id, notice_id, event, occurred_at, sg_message_id, reason)
    SELECT DISTINCT ON (sg_event_id) sg_event_id, notice_id, event, occurred_at, sg_message_id, reason
    FROM known
    ORDER BY sg_event_id
    ON CONFLICT (sg_event_id) DO NOTHING
    RETURNING notice_id, event, occurred_at, sg_message_id, reason
), best AS (
    SELECT DISTINCT ON (f.notice_id) f.notice_id, o.status, o.rank, f.occurred_at,
           nullif(split_part(f.sg_message_id, '.', 1), '') AS message_id
    FROM fresh f JOIN outcome o ON o.event = f.event
    ORDER BY f.notice_id, o.rank DESC, f.occurred_at DESC
), moved AS (
    UPDATE notices n
    SET status = b.status,
        status_at = b.occurred_at,
        sent_at = coalesce(n.sent_at, b.occurred_at),
        provider_message_id = coalesce(nullif(n.provider_message_id, ''), b.message_id)
    FROM best b
    WHERE n.id = b.notice_id
      AND b.rank > CASE n.status WHEN 'sent' THEN 1 WHEN 'deferred' THEN 2 WHEN 'delivered' THEN 3
                                 WHEN 'bounced' THEN 4 WHEN 'dropped' THEN 4 ELSE 0 END
    RETURNING n.id
), failure AS (
    SELECT DISTINCT ON (n.contact_id) n.contact_id, f.occurred_at, coalesce(f.reason, f.event) AS reason
    FROM fresh f JOIN notices n ON n.id = f.notice_id
    WHERE f.event IN ('bounce', 'dropped')
    ORDER BY n.contact_id, f.occurred_at
), marked AS (
    UPDATE contacts c
    SET undeliverable_at = x.occurred_at, undeliverable_reason = x.reason, updated_at = now()
    FROM failure x
    WHERE c.id = x.contact_id AND c.undeliverable_at IS NULL
    RETURNING c.id
)
SELECT (SELECT count(*) FROM known),
       (SELECT count(*) FROM fresh),
       (SELECT coalesce(array_agg(id), '{}') FROM moved),
       (SELECT count(*) FROM marked),
       (SELECT coalesce(jsonb_object_agg(event, n), '{}') FROM (SELECT event, count(*) AS n FROM fresh GROUP BY event) t)`

// ApplyDeliveryEvents records a batch of webhook events in one transaction and moves the
// notices they name forward: sent < deferred < delivered, with bounced and dropped final.
// SendGrid posts at least once, so an event already recorded changes nothing; events naming
// no notice of ours, or without a usable id, name or time, are counted and skipped rather than
// refused, since SendGrid would post a refused batch again. A bounce or drop marks the
// notice's contact undeliverable so later rounds go to the tenant's alternate contact. One
// audit row with counts records each batch that applied anything.
func (s *Store) ApplyDeliveryEvents(ctx context.Context, events []DeliveryEvent) (ApplyResult, error) {
	res := ApplyResult{Received: len(events), Events: map[string]int{}}
	n := len(events)
	ids := make([]string, 0, n)
	notices := make([]int64, 0, n)
	names := make([]string, 0, n)
	times := make([]time.Time, 0, n)
	messages := make([]string, 0, n)
	reasons := make([]string, 0, n)
	for _, e := range events {
		if !validEventText(e.SGEventID, maxSGEventIDLen) || !validEventText(e.Event, maxEventNameLen) ||
			!storable(e.SGMessageID) || !storable(e.Reason) || e.OccurredAt.IsZero() {
			res.Invalid++
			continue
		}
		if e.NoticeID <= 0 {
			res.Unknown++
			continue
		}
		ids = append(ids, e.SGEventID)
		notices = append(notices, e.NoticeID)
		names = append(names, e.Event)
		times = append(times, e.OccurredAt)
		messages = append(messages, e.SGMessageID)
		reasons = append(reasons, e.Reason)
	}
	if len(ids) == 0 {
		return res, nil
	}
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		var known int
		var moved []int64
		if err := tx.QueryRow(ctx, applyEventsSQL, ids, notices, names, times, messages, reasons).
			Scan(&known, &res.Applied, &moved, &res.Undeliverable, &res.Events); err != nil {
			return fmt.Errorf("apply delivery events: %w", err)
		}
		res.Notices = len(moved)
		res.Unknown += len(ids) - known
		res.Duplicates = known - res.Applied
		if res.Applied == 0 {
			return nil
		}
		if err := reopened(ctx, tx, moved, &res); err != nil {
			return err
		}
		_, err := AppendAudit(ctx, tx, AuditEntry{
			Actor:  "sendgrid",
			Action: "delivery.events_applied",
			Detail: map[string]any{
				"received":               res.Received,
				"applied":                res.Applied,
				"duplicates":             res.Duplicates,
				"unknown":                res.Unknown,
				"invalid":                res.Invalid,
				"notices_updated":        res.Notices,
				"contacts_undeliverable": res.Undeliverable,
				"events":                 res.Events,
			},
		})
		return err
	})
	if err != nil {
		return ApplyResult{}, err
	}
	return res, nil
}

// reopened recomputes the ledger of the tenant-phases whose notices the batch moved
// (no other can change) and counts, per incident, those left owed.
func reopened(ctx context.Context, tx pgx.Tx, moved []int64, res *ApplyResult) error {
	if len(moved) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, ledgerFromEventsSQL, moved)
	if err != nil {
		return fmt.Errorf("ledger from delivery events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var inc string
		var n int
		if err := rows.Scan(&inc, &n); err != nil {
			return err
		}
		if res.Reopened == nil {
			res.Reopened = map[string]int{}
		}
		res.Reopened[inc] = n
	}
	return rows.Err()
}

// validEventText reports whether s fits a non-empty text column of at most limit characters.
func validEventText(s string, limit int) bool {
	return s != "" && storable(s) && utf8.RuneCountInString(s) <= limit
}
