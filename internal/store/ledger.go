package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/breachflow/breachflow/internal/notice"
)

// Phase kinds, as notice_phases stores them: notice's own.
const (
	PhaseInitial = notice.PhaseInitial
	PhaseUpdate  = notice.PhaseUpdate
	PhaseFinal   = notice.PhaseFinal
)

// ErrNotApproved is returned when a content hash lacks two distinct approvers for the
// scope version it would be released or sent under.
var ErrNotApproved = errors.New("not approved by two people for this scope version")

// syncLedger makes the ledger of every phase of incident id follow scope version v:
// tenants new to the scope are owed every phase opened so far (unreleased until the new
// version is approved), and tenants that left it are marked removed: owed nothing more,
// with what they were sent kept. It returns how many tenants phase 1 gained and lost.
func syncLedger(ctx context.Context, tx pgx.Tx, id string, v int, actor string) (added, removed int, err error) {
	if _, err := tx.Exec(ctx, `INSERT INTO notice_phases (incident_id, phase, kind, created_by) VALUES ($1, 1, 'initial', $2)
		ON CONFLICT DO NOTHING`, id, actor); err != nil {
		return 0, 0, fmt.Errorf("open initial phase: %w", err)
	}
	// The version's rows were written in this transaction: plan on statistics that count them.
	if _, err := tx.Exec(ctx, `ANALYZE scope_tenants`); err != nil {
		return 0, 0, fmt.Errorf("analyze: %w", err)
	}
	err = tx.QueryRow(ctx, `
		WITH cur AS (
			SELECT st.tenant_id, st.deadline, st.partner_covered FROM scope_tenants st WHERE st.incident_id = $1 AND st.version = $2
		), phases AS (
			SELECT phase, created_at FROM notice_phases WHERE incident_id = $1
		), gone AS (
			UPDATE ledger l SET removed_at = now(), removed_version = $2
			WHERE l.incident_id = $1 AND l.removed_at IS NULL
			  AND NOT EXISTS (SELECT 1 FROM cur WHERE cur.tenant_id = l.tenant_id)
			RETURNING l.phase
		), back AS (
			-- A tenant back in scope is owed again under the new version, unless it was told.
			UPDATE ledger l SET removed_at = NULL, removed_version = NULL, added_version = $2,
			       deadline = CASE WHEN l.satisfied_at IS NOT NULL THEN l.deadline WHEN l.phase = 1 THEN cur.deadline
			                       ELSE now() + make_interval(hours => t.notice_sla_hours) END,
			       partner_covered = cur.partner_covered,
			       released_at = CASE WHEN l.satisfied_at IS NULL THEN NULL ELSE l.released_at END,
			       content_hash = CASE WHEN l.satisfied_at IS NULL THEN NULL ELSE l.content_hash END,
			       scope_version = CASE WHEN l.satisfied_at IS NULL THEN NULL ELSE l.scope_version END
			FROM cur JOIN tenants t ON t.id = cur.tenant_id
			WHERE l.incident_id = $1 AND l.tenant_id = cur.tenant_id AND l.removed_at IS NOT NULL
			RETURNING l.phase
		), fresh AS (
			INSERT INTO ledger (incident_id, phase, tenant_id, added_version, partner_covered, deadline)
			SELECT $1, p.phase, cur.tenant_id, $2, cur.partner_covered,
			       -- An update phase's clock starts when the tenant is owed it; the initial
			       -- phase's deadline is the snapshot's, so only later phases read tenants.
			       CASE WHEN p.phase = 1 THEN cur.deadline
			            ELSE now() + make_interval(hours => (SELECT t.notice_sla_hours FROM tenants t WHERE t.id = cur.tenant_id)) END
			FROM cur CROSS JOIN phases p
			ON CONFLICT (incident_id, phase, tenant_id) DO NOTHING
			RETURNING phase
		)
		SELECT (SELECT count(*) FROM fresh WHERE phase = 1) + (SELECT count(*) FROM back WHERE phase = 1),
		       (SELECT count(*) FROM gone WHERE phase = 1)`, id, v).Scan(&added, &removed)
	if err != nil {
		return 0, 0, fmt.Errorf("sync ledger: %w", err)
	}
	// Planned notices of removed tenants are not sent.
	if _, err := tx.Exec(ctx, `UPDATE notices n SET status = 'cancelled', status_at = now(), last_error = 'tenant left the scope'
		FROM ledger l WHERE n.incident_id = $1 AND n.status = 'pending' AND l.incident_id = n.incident_id
		  AND l.phase = coalesce(n.phase, 1) AND l.tenant_id = n.tenant_id AND l.removed_at IS NOT NULL`, id); err != nil {
		return 0, 0, fmt.Errorf("cancel removed tenants' notices: %w", err)
	}
	// The pages planned next read these tables: plan them on statistics that include this write.
	if _, err := tx.Exec(ctx, `ANALYZE ledger`); err != nil {
		return 0, 0, fmt.Errorf("analyze: %w", err)
	}
	return added, removed, nil
}

// Release marks what incident id owes as releasable under content hash for scope
// version: every owed, unreleased tenant the version included that the partner does not
// cover, and the covered ones
// whose partner review of hash (for a scope that included them) was confirmed or
// overridden. The database refuses unless two distinct people approved hash for version.
// It returns how many rows it released and how many covered rows still wait for the partner.
func (s *Store) Release(ctx context.Context, id, hash string, version int, actor string) (released, waiting int, err error) {
	err = s.WithTx(ctx, func(tx pgx.Tx) error {
		var approvers int
		if err := tx.QueryRow(ctx, `SELECT count(DISTINCT approver) FROM approvals WHERE incident_id = $1 AND content_hash = $2 AND scope_version = $3`,
			id, hash, version).Scan(&approvers); err != nil {
			return err
		}
		if approvers < 2 {
			return fmt.Errorf("%w: release of %s for scope version %d: %w", ErrInvalidInput, hash, version, ErrNotApproved)
		}
		// The phase the hash's draft is for takes it; earlier phases owed to tenants the
		// scope gained since take the hash each was last approved with. A hash without a
		// stored phase (drafts from before phases had their own) is owed by every phase.
		var phase *int
		if err := tx.QueryRow(ctx, `SELECT phase FROM notice_drafts WHERE incident_id = $1 AND content_hash = $2`, id, hash).Scan(&phase); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if phase != nil {
			if _, err := tx.Exec(ctx, `UPDATE notice_phases SET content_hash = $3 WHERE incident_id = $1 AND phase = $2`, id, *phase, hash); err != nil {
				return fmt.Errorf("release: %w", err)
			}
		}
		tag, err := tx.Exec(ctx, `
			UPDATE ledger l SET content_hash = CASE WHEN $4::integer IS NULL OR l.phase = $4 THEN $2 ELSE p.content_hash END,
			       scope_version = $3, released_at = now()
			FROM notice_phases p
			WHERE p.incident_id = l.incident_id AND p.phase = l.phase
			  AND l.incident_id = $1 AND l.released_at IS NULL AND l.removed_at IS NULL AND l.added_version <= $3
			  AND ($4::integer IS NULL OR l.phase = $4 OR (l.phase < $4 AND p.content_hash IS NOT NULL))
			  -- A covered tenant goes through the partner gate for this (hash, version), and an
			  -- earlier phase's notice it takes must itself be one the partner confirmed.
			  AND (NOT l.partner_covered OR (EXISTS (
			        SELECT 1 FROM partner_reviews pr WHERE pr.incident_id = $1 AND pr.content_hash = $2
			          AND pr.status IN ('confirmed', 'overridden') AND pr.scope_version >= l.added_version)
			      AND ($4::integer IS NULL OR l.phase = $4 OR EXISTS (
			        SELECT 1 FROM partner_reviews pr WHERE pr.incident_id = $1 AND pr.content_hash = p.content_hash
			          AND pr.status IN ('confirmed', 'overridden')))))`, id, hash, version, phase)
		if err != nil {
			return fmt.Errorf("release: %w", err)
		}
		released = int(tag.RowsAffected())
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM ledger WHERE incident_id = $1 AND released_at IS NULL AND removed_at IS NULL AND partner_covered`,
			id).Scan(&waiting); err != nil {
			return err
		}
		if released == 0 {
			return nil
		}
		detail := map[string]any{"content_hash": hash, "scope_version": version, "tenant_phases": released, "awaiting_partner": waiting}
		if phase != nil {
			// Earlier phases went to tenants the scope gained with the hash each phase was
			// approved with: name them.
			rows, err := tx.Query(ctx, `SELECT phase, content_hash FROM notice_phases WHERE incident_id = $1 AND phase <= $2 AND content_hash IS NOT NULL
				ORDER BY phase`, id, *phase)
			if err != nil {
				return err
			}
			hashes := map[string]string{}
			for rows.Next() {
				var p int
				var h string
				if err := rows.Scan(&p, &h); err != nil {
					rows.Close()
					return err
				}
				hashes[strconv.Itoa(p)] = h
			}
			if err := rows.Err(); err != nil {
				return err
			}
			detail["phase"], detail["phase_hashes"] = *phase, hashes
		}
		_, err = AppendAudit(ctx, tx, AuditEntry{IncidentID: id, Actor: actor, Action: "notice.released", Detail: detail})
		return err
	})
	return released, waiting, err
}

// OpenPhase opens the next notice phase of incident id: every tenant in scope is owed
// it, unreleased. It returns the phase number.
func (s *Store) OpenPhase(ctx context.Context, id, kind, actor string) (int, error) {
	var phase int
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(phase), 0) + 1 FROM notice_phases WHERE incident_id = $1`, id).Scan(&phase); err != nil {
			return err
		}
		return openPhase(ctx, tx, id, phase, kind, actor)
	})
	return phase, err
}

// OpenDraftPhase opens the phase the stored draft with hash is for, once it is approved:
// it must be the next one, and not follow a final phase. Opening it again returns it.
func (s *Store) OpenDraftPhase(ctx context.Context, id, hash, actor string) (int, error) {
	var phase int
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		var kind string
		var p *int
		if err := tx.QueryRow(ctx, `SELECT phase, coalesce(draft -> 'phase' ->> 'kind', '') FROM notice_drafts WHERE incident_id = $1 AND content_hash = $2`,
			id, hash).Scan(&p, &kind); err != nil {
			return notFound(err)
		}
		if p == nil {
			return fmt.Errorf("%w: draft %s names no phase", ErrInvalidInput, hash)
		}
		phase = *p
		var last int
		var lastKind string
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(phase), 0), coalesce((array_agg(kind ORDER BY phase DESC))[1], '')
			FROM notice_phases WHERE incident_id = $1`, id).Scan(&last, &lastKind); err != nil {
			return err
		}
		switch {
		case phase <= last:
			return nil
		case phase != last+1:
			return fmt.Errorf("%w: the draft is for phase %d, but the next phase is %d", ErrInvalidInput, phase, last+1)
		case lastKind == PhaseFinal:
			return fmt.Errorf("%w: phase %d was the final notice; no phase follows it", ErrInvalidInput, last)
		case kind != PhaseUpdate && kind != PhaseFinal:
			return fmt.Errorf("%w: phase %d must be an update or the final notice, not %q", ErrInvalidInput, phase, kind)
		}
		return openPhase(ctx, tx, id, phase, kind, actor)
	})
	return phase, err
}

// openPhase owes every tenant in scope the new phase, unreleased.
func openPhase(ctx context.Context, tx pgx.Tx, id string, phase int, kind, actor string) error {
	if _, err := tx.Exec(ctx, `INSERT INTO notice_phases (incident_id, phase, kind, created_by) VALUES ($1, $2, $3, $4)`,
		id, phase, kind, actor); err != nil {
		return fmt.Errorf("open phase: %w", err)
	}
	var n int
	if err := tx.QueryRow(ctx, `WITH ins AS (
			INSERT INTO ledger (incident_id, phase, tenant_id, added_version, partner_covered, deadline)
			SELECT l.incident_id, $2, l.tenant_id, l.added_version, l.partner_covered, now() + make_interval(hours => t.notice_sla_hours)
			FROM ledger l JOIN tenants t ON t.id = l.tenant_id
			WHERE l.incident_id = $1 AND l.phase = 1 AND l.removed_at IS NULL
			RETURNING 1)
		SELECT count(*) FROM ins`, id, phase).Scan(&n); err != nil {
		return fmt.Errorf("owe phase %d: %w", phase, err)
	}
	if _, err := tx.Exec(ctx, `ANALYZE ledger`); err != nil {
		return err
	}
	_, err := AppendAudit(ctx, tx, AuditEntry{IncidentID: id, Actor: actor, Action: "phase.opened",
		Detail: map[string]any{"phase": phase, "kind": kind, "tenants": n}})
	return err
}

// PhaseCounts counts one phase's ledger in tenants.
type PhaseCounts struct {
	Phase       int        `json:"phase"`
	Kind        string     `json:"kind"`
	Tenants     int        `json:"tenants"`     // in scope
	Released    int        `json:"released"`    // may be sent
	Notified    int        `json:"notified"`    // accepted by SendGrid and not bounced
	Delivered   int        `json:"delivered"`   // a delivery event arrived
	Bounced     int        `json:"bounced"`     // a notice bounced or was dropped and none reached them yet
	Unreachable int        `json:"unreachable"` // no deliverable contact left
	Failed      int        `json:"failed"`      // a send was refused for good and none reached them yet
	Owed        int        `json:"owed"`        // in scope and not notified
	Plannable   int        `json:"plannable"`   // owed and released: a pass would try them
	Met         int        `json:"met"`         // notified by the deadline
	Late        int        `json:"late"`        // notified after the deadline, or owed past it
	Removed     int        `json:"removed"`     // left the scope
	LastError   string     `json:"last_error,omitempty"`
	Earliest    *time.Time `json:"earliest_owed_deadline,omitempty"`
}

// LedgerStats is an incident's progress, counted in tenants, as the ledger holds it.
type LedgerStats struct {
	Phases       []PhaseCounts `json:"phases"`
	Tenants      int           `json:"tenants"` // in scope now
	Acknowledged int           `json:"acknowledged"`
	// RemindersDue counts notified, unacknowledged tenants whose next reminder is due;
	// NextReminderAt is when the next one falls due (nil: none left).
	RemindersDue   int        `json:"reminders_due"`
	NextReminderAt *time.Time `json:"next_reminder_at,omitempty"`
}

// Initial is phase 1's counts (zero before scoping).
func (l LedgerStats) Initial() PhaseCounts {
	if len(l.Phases) == 0 {
		return PhaseCounts{Phase: 1, Kind: PhaseInitial}
	}
	return l.Phases[0]
}

// Ledger counts incident id's ledger at now; reminderAfter is the reminder schedule
// (after the initial notice reached a tenant).
func (s *Store) Ledger(ctx context.Context, id string, now time.Time, reminderAfter []time.Duration) (LedgerStats, error) {
	st := LedgerStats{Phases: []PhaseCounts{}}
	rows, err := s.pool.Query(ctx, `
		SELECT p.phase, p.kind,
		       count(l.tenant_id) FILTER (WHERE l.removed_at IS NULL),
		       count(*) FILTER (WHERE l.removed_at IS NULL AND l.released_at IS NOT NULL),
		       count(*) FILTER (WHERE l.removed_at IS NULL AND l.satisfied_at IS NOT NULL),
		       count(*) FILTER (WHERE l.removed_at IS NULL AND l.delivered_at IS NOT NULL AND l.satisfied_at IS NOT NULL),
		       count(*) FILTER (WHERE l.removed_at IS NULL AND l.satisfied_at IS NULL AND l.bounced_at IS NOT NULL),
		       count(*) FILTER (WHERE l.removed_at IS NULL AND l.satisfied_at IS NULL AND l.unreachable_at IS NOT NULL),
		       count(*) FILTER (WHERE l.removed_at IS NULL AND l.satisfied_at IS NULL AND l.failed_at IS NOT NULL),
		       count(l.tenant_id) FILTER (WHERE l.removed_at IS NULL AND l.satisfied_at IS NULL),
		       count(*) FILTER (WHERE l.removed_at IS NULL AND l.satisfied_at IS NULL AND l.released_at IS NOT NULL),
		       count(*) FILTER (WHERE l.removed_at IS NULL AND l.satisfied_at <= l.deadline),
		       count(*) FILTER (WHERE l.removed_at IS NULL AND (l.satisfied_at > l.deadline OR (l.satisfied_at IS NULL AND l.deadline < $2))),
		       count(*) FILTER (WHERE l.removed_at IS NOT NULL),
		       coalesce(max(l.last_error) FILTER (WHERE l.removed_at IS NULL AND l.satisfied_at IS NULL), ''),
		       min(l.deadline) FILTER (WHERE l.removed_at IS NULL AND l.satisfied_at IS NULL)
		FROM notice_phases p LEFT JOIN ledger l ON l.incident_id = p.incident_id AND l.phase = p.phase
		WHERE p.incident_id = $1 GROUP BY p.phase, p.kind ORDER BY p.phase`, id, now)
	if err != nil {
		return st, err
	}
	st.Phases, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (PhaseCounts, error) {
		var c PhaseCounts
		err := row.Scan(&c.Phase, &c.Kind, &c.Tenants, &c.Released, &c.Notified, &c.Delivered, &c.Bounced, &c.Unreachable, &c.Failed,
			&c.Owed, &c.Plannable, &c.Met, &c.Late, &c.Removed, &c.LastError, &c.Earliest)
		return c, err
	})
	if err != nil {
		return st, err
	}
	secs := reminderSeconds(reminderAfter)
	err = s.pool.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE l.removed_at IS NULL),
		       count(a.tenant_id) FILTER (WHERE l.removed_at IS NULL),
		       count(*) FILTER (WHERE l.removed_at IS NULL AND a.tenant_id IS NULL AND l.satisfied_at IS NOT NULL AND l.reminders < cardinality($3::bigint[])
		                        AND l.satisfied_at + make_interval(secs => ($3::bigint[])[l.reminders + 1]) <= $2),
		       min(l.satisfied_at + make_interval(secs => ($3::bigint[])[l.reminders + 1]))
		           FILTER (WHERE l.removed_at IS NULL AND a.tenant_id IS NULL AND l.satisfied_at IS NOT NULL AND l.reminders < cardinality($3::bigint[]))
		FROM ledger l LEFT JOIN acknowledgements a ON a.incident_id = l.incident_id AND a.tenant_id = l.tenant_id
		WHERE l.incident_id = $1 AND l.phase = 1`, id, now, secs).Scan(&st.Tenants, &st.Acknowledged, &st.RemindersDue, &st.NextReminderAt)
	return st, err
}

func reminderSeconds(after []time.Duration) []int64 {
	secs := make([]int64, len(after))
	for i, d := range after {
		secs[i] = int64(d / time.Second)
	}
	return secs
}

// RiskLevel counts owed tenants that have used at least Fraction of the time from the
// start of their clock (awareness for the initial notice) to their deadline.
type RiskLevel struct {
	Fraction float64    `json:"fraction"`
	Tenants  int        `json:"tenants"`
	Earliest *time.Time `json:"earliest_deadline,omitempty"`
}

// DeadlineRisk counts, for each fraction, the owed tenant-phases at or past it at now,
// and returns when the next owed tenant-phase crosses any fraction (nil: never).
func (s *Store) DeadlineRisk(ctx context.Context, id string, fractions []float64, now time.Time) ([]RiskLevel, *time.Time, error) {
	rows, err := s.pool.Query(ctx, `
		WITH owed AS (
			SELECT l.deadline, CASE WHEN l.phase = 1 THEN least(i.aware_at, l.owed_since) ELSE l.owed_since END AS start
			FROM ledger l JOIN incidents i ON i.id = l.incident_id
			WHERE l.incident_id = $1 AND l.removed_at IS NULL AND l.satisfied_at IS NULL)
		SELECT f, count(*) FILTER (WHERE start + (deadline - start) * f <= $3),
		       min(deadline) FILTER (WHERE start + (deadline - start) * f <= $3),
		       min(start + (deadline - start) * f) FILTER (WHERE start + (deadline - start) * f > $3)
		FROM unnest($2::float8[]) AS lv (f) LEFT JOIN owed ON true
		GROUP BY f ORDER BY f`, id, fractions, now)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var out []RiskLevel
	var next *time.Time
	for rows.Next() {
		var r RiskLevel
		var at *time.Time
		if err := rows.Scan(&r.Fraction, &r.Tenants, &r.Earliest, &at); err != nil {
			return nil, nil, err
		}
		if at != nil && (next == nil || at.Before(*next)) {
			next = at
		}
		out = append(out, r)
	}
	return out, next, rows.Err()
}

// ScopeVersion is one stored scope version.
type ScopeVersion struct {
	Version   int           `json:"version"`
	Criteria  ScopeCriteria `json:"criteria"`
	Tenants   int           `json:"tenants"`
	Added     int           `json:"added"`
	Removed   int           `json:"removed"`
	CreatedBy string        `json:"created_by"`
	CreatedAt time.Time     `json:"created_at"`
}

// ScopeVersions lists every scope version of incident id, oldest first.
func (s *Store) ScopeVersions(ctx context.Context, id string) ([]ScopeVersion, error) {
	rows, err := s.pool.Query(ctx, `SELECT version, criteria, tenant_count, added, removed, created_by, created_at
		FROM scope_snapshots WHERE incident_id = $1 ORDER BY version`, id)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (ScopeVersion, error) {
		var v ScopeVersion
		err := row.Scan(&v.Version, &v.Criteria, &v.Tenants, &v.Added, &v.Removed, &v.CreatedBy, &v.CreatedAt)
		return v, err
	})
}

// ScopeDiff is what changed between two scope versions.
type ScopeDiff struct {
	From         int      `json:"from"`
	To           int      `json:"to"`
	AddedCount   int      `json:"added_count"`
	RemovedCount int      `json:"removed_count"`
	Added        []string `json:"added"`   // tenant ids, at most the limit asked for
	Removed      []string `json:"removed"` // tenant ids, at most the limit asked for
}

// DiffScope lists the tenants in version to but not from (added) and in from but not to
// (removed), at most limit of each, in tenant order, with the full counts.
func (s *Store) DiffScope(ctx context.Context, id string, from, to, limit int) (ScopeDiff, error) {
	d := ScopeDiff{From: from, To: to, Added: []string{}, Removed: []string{}}
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM scope_snapshots WHERE incident_id = $1 AND version IN ($2, $3)`, id, from, to).Scan(&n); err != nil {
		return d, err
	}
	if n != 2 && !(from == to && n == 1) {
		return d, ErrNotFound
	}
	rows, err := s.pool.Query(ctx, `
		SELECT 'added', tenant_id FROM (SELECT tenant_id FROM scope_tenants WHERE incident_id = $1 AND version = $3
		                                EXCEPT SELECT tenant_id FROM scope_tenants WHERE incident_id = $1 AND version = $2) a
		UNION ALL
		SELECT 'removed', tenant_id FROM (SELECT tenant_id FROM scope_tenants WHERE incident_id = $1 AND version = $2
		                                  EXCEPT SELECT tenant_id FROM scope_tenants WHERE incident_id = $1 AND version = $3) r
		ORDER BY 1, 2`, id, from, to)
	if err != nil {
		return d, err
	}
	defer rows.Close()
	for rows.Next() {
		var kind, tenant string
		if err := rows.Scan(&kind, &tenant); err != nil {
			return d, err
		}
		if kind == "added" {
			d.AddedCount++
			if len(d.Added) < limit {
				d.Added = append(d.Added, tenant)
			}
		} else {
			d.RemovedCount++
			if len(d.Removed) < limit {
				d.Removed = append(d.Removed, tenant)
			}
		}
	}
	return d, rows.Err()
}

// Alert is one alert raised to the responders.
type Alert struct {
	ID         int64          `json:"id"`
	IncidentID string         `json:"incident_id,omitempty"`
	Kind       string         `json:"kind"`
	Message    string         `json:"message"`
	Tenants    int            `json:"tenants"`
	Detail     map[string]any `json:"detail,omitempty"`
	CreatedAt  time.Time      `json:"created_at"`
	EmailError string         `json:"email_error,omitempty"`
}

// RaiseAlert records an alert and its audit row.
func (s *Store) RaiseAlert(ctx context.Context, a Alert) (int64, error) {
	if a.Detail == nil {
		a.Detail = map[string]any{}
	}
	var id int64
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO alerts (incident_id, kind, message, tenants, detail) VALUES (NULLIF($1, ''), $2, $3, $4, $5) RETURNING id`,
			a.IncidentID, a.Kind, a.Message, a.Tenants, a.Detail).Scan(&id); err != nil {
			return fmt.Errorf("record alert: %w", err)
		}
		detail := map[string]any{"alert_id": id, "kind": a.Kind, "message": a.Message, "tenants": a.Tenants}
		for k, v := range a.Detail {
			detail[k] = v
		}
		_, err := AppendAudit(ctx, tx, AuditEntry{IncidentID: a.IncidentID, Actor: "system", Action: "responders.alerted", Detail: detail})
		return err
	})
	return id, err
}

// AlertEmailFailed records why an alert's email could not be sent.
func (s *Store) AlertEmailFailed(ctx context.Context, id int64, reason string) error {
	_, err := s.pool.Exec(ctx, `UPDATE alerts SET email_error = $2 WHERE id = $1`, id, reason)
	return err
}

// Alerts lists the latest limit alerts of incident id, newest first.
func (s *Store) Alerts(ctx context.Context, id string, limit int) ([]Alert, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, coalesce(incident_id, ''), kind, message, tenants, detail, created_at, coalesce(email_error, '')
		FROM alerts WHERE incident_id = $1 ORDER BY id DESC LIMIT $2`, id, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Alert, error) {
		var a Alert
		err := row.Scan(&a.ID, &a.IncidentID, &a.Kind, &a.Message, &a.Tenants, &a.Detail, &a.CreatedAt, &a.EmailError)
		return a, err
	})
}
