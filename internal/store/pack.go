package store

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/breachflow/breachflow/internal/notice"
)

// Snapshot is one read-only, repeatable-read view of the database: every file of an
// evidence pack read through it agrees with every other, however long the pack takes to
// write and whatever the workflows do meanwhile.
type Snapshot struct{ tx pgx.Tx }

// ReadSnapshot runs fn on a snapshot, ended when fn returns.
func (s *Store) ReadSnapshot(ctx context.Context, fn func(*Snapshot) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly},
		func(tx pgx.Tx) error { return fn(&Snapshot{tx: tx}) })
}

// Incident returns one incident.
func (sn *Snapshot) Incident(ctx context.Context, id string) (Incident, error) {
	return scanIncident(sn.tx.QueryRow(ctx, `SELECT `+incidentCols+` FROM incidents WHERE id = $1`, id))
}

// Drafts returns every draft proposed for the incident, by content hash: a handful,
// read before the tenants so that no query runs while their rows stream.
func (sn *Snapshot) Drafts(ctx context.Context, id string) (map[string]json.RawMessage, error) {
	rows, err := sn.tx.Query(ctx, `SELECT content_hash, draft FROM notice_drafts WHERE incident_id = $1`, id)
	if err != nil {
		return nil, fmt.Errorf("read drafts: %w", err)
	}
	defer rows.Close()
	out := map[string]json.RawMessage{}
	for rows.Next() {
		var h string
		var raw json.RawMessage
		if err := rows.Scan(&h, &raw); err != nil {
			return nil, err
		}
		out[h] = raw
	}
	return out, rows.Err()
}

// InLedger reports whether the incident's ledger holds tenant (in any phase, removed or not).
func (sn *Snapshot) InLedger(ctx context.Context, id, tenant string) (bool, error) {
	var ok bool
	err := sn.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM ledger WHERE incident_id = $1 AND tenant_id = $2)`, id, tenant).Scan(&ok)
	return ok, err
}

// PackPhase is one notice phase of an incident.
type PackPhase struct {
	Phase     int       `json:"phase"`
	Kind      string    `json:"kind"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

// Phases returns the incident's notice phases in order.
func (sn *Snapshot) Phases(ctx context.Context, id string) ([]PackPhase, error) {
	rows, err := sn.tx.Query(ctx, `SELECT phase, kind, created_by, created_at FROM notice_phases WHERE incident_id = $1 ORDER BY phase`, id)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (PackPhase, error) {
		var p PackPhase
		err := row.Scan(&p.Phase, &p.Kind, &p.CreatedBy, &p.CreatedAt)
		return p, err
	})
}

// PackApproval is one approval of a content hash for a scope version.
type PackApproval struct {
	ContentHash  string    `json:"content_hash"`
	ScopeVersion int       `json:"scope_version"`
	Approver     string    `json:"approver"`
	ApprovedAt   time.Time `json:"approved_at"`
}

// Approvals returns the incident's approvals in the order they were given.
func (sn *Snapshot) Approvals(ctx context.Context, id string) ([]PackApproval, error) {
	rows, err := sn.tx.Query(ctx, `SELECT content_hash, scope_version, approver, approved_at FROM approvals WHERE incident_id = $1
		ORDER BY approved_at, approver`, id)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (PackApproval, error) {
		var a PackApproval
		err := row.Scan(&a.ContentHash, &a.ScopeVersion, &a.Approver, &a.ApprovedAt)
		return a, err
	})
}

// Reviews returns the incident's partner reviews in order.
func (sn *Snapshot) Reviews(ctx context.Context, id string) ([]PartnerReview, error) {
	rows, err := sn.tx.Query(ctx, `SELECT `+reviewCols+` FROM partner_reviews WHERE incident_id = $1 ORDER BY id`, id)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (PartnerReview, error) { return scanReview(row) })
}

// PackTenant is everything an evidence pack holds about one tenant of an incident.
type PackTenant struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	Country        string `json:"country"`
	Locale         string `json:"locale"`
	NoticeSLAHours int    `json:"notice_sla_hours"`
	// Obligations are the tenant's ledger rows, one per notice phase.
	Obligations []PackObligation `json:"obligations"`
	// Notices are the tenant's notices (every phase and reminder) by contact, then id.
	Notices         []PackNotice `json:"-"`
	AcknowledgedAt  *time.Time   `json:"-"`
	AcknowledgedVia string       `json:"-"`
	AcknowledgedBy  string       `json:"-"`
	// AckTokenHash is the hex SHA-256 of the tenant's acknowledgement token ("" when none
	// was issued): a recipient can match the link it received, which is not kept.
	AckTokenHash string `json:"-"`
}

// PackObligation is one ledger row: what the tenant was owed for a phase and what became
// of it.
type PackObligation struct {
	Phase          int        `json:"phase"`
	Kind           string     `json:"kind"`
	State          string     `json:"state"`
	OwedSince      time.Time  `json:"owed_since"`
	AddedVersion   int        `json:"added_version"`
	PartnerCovered bool       `json:"partner_covered"`
	Deadline       time.Time  `json:"deadline"`
	DeadlineMet    *bool      `json:"deadline_met"`
	ContentHash    string     `json:"content_hash,omitempty"`
	ScopeVersion   *int       `json:"scope_version,omitempty"`
	ReleasedAt     *time.Time `json:"released_at,omitempty"`
	FirstSentAt    *time.Time `json:"first_sent_at,omitempty"`
	NotifiedAt     *time.Time `json:"notified_at,omitempty"`
	DeliveredAt    *time.Time `json:"delivered_at,omitempty"`
	BouncedAt      *time.Time `json:"bounced_at,omitempty"`
	UnreachableAt  *time.Time `json:"unreachable_at,omitempty"`
	FailedAt       *time.Time `json:"failed_at,omitempty"`
	LastError      string     `json:"last_error,omitempty"`
	RemovedAt      *time.Time `json:"removed_at,omitempty"`
	RemovedVersion *int       `json:"removed_version,omitempty"`
	Reminders      int        `json:"reminders"`
	LastRemindedAt *time.Time `json:"last_reminded_at,omitempty"`
}

// PackNotice is one notice to one contact, with its delivery events.
type PackNotice struct {
	ID                int64      `json:"notice_id"`
	Round             int        `json:"round"`
	RoundKind         string     `json:"round_kind"`
	Phase             *int       `json:"phase"`
	ContactID         int64      `json:"contact_id"`
	Email             string     `json:"email"`
	ContactName       string     `json:"contact_name"`
	ContactRole       string     `json:"contact_role"`
	ContactKind       string     `json:"contact_kind"`
	Locale            string     `json:"locale"`
	ContentHash       string     `json:"content_hash"`
	Status            string     `json:"status"`
	Attempts          int        `json:"attempts"`
	PossibleDuplicate bool       `json:"possible_duplicate"`
	ProviderMessageID string     `json:"provider_message_id"`
	LastError         string     `json:"last_error"`
	ClaimedAt         *time.Time `json:"claimed_at"`
	SentAt            *time.Time `json:"sent_at"`
	StatusAt          *time.Time `json:"status_at"`
	Deadline          *time.Time `json:"deadline"` // the tenant's deadline for the notice's phase, as the notice states it
	// Facts are why the tenant is affected, as the notice states them (frozen when planned).
	Facts  notice.TenantFacts `json:"facts"`
	Events []PackEvent        `json:"events"`
}

// PackEvent is one SendGrid delivery event of a notice.
type PackEvent struct {
	SGEventID   string    `json:"sg_event_id"`
	Event       string    `json:"event"`
	OccurredAt  time.Time `json:"occurred_at"`
	ReceivedAt  time.Time `json:"received_at"`
	SGMessageID string    `json:"sg_message_id"`
	Reason      string    `json:"reason"`
}

// packTenantsSQL reads one row per tenant of the incident's ledger, in tenant order, each
// with its ledger rows and notices (with their events) aggregated: a pack is written
// tenant by tenant as the rows arrive, whatever the number of tenants.
const packTenantsSQL = `
SELECT t.id, t.name, t.country, t.locale, t.notice_sla_hours,
	coalesce((SELECT jsonb_agg(jsonb_build_object(
			'phase', l.phase, 'kind', p.kind, 'state', ` + stateSQL + `, 'owed_since', l.owed_since,
			'added_version', l.added_version, 'partner_covered', l.partner_covered, 'deadline', l.deadline,
			'deadline_met', CASE WHEN l.satisfied_at IS NOT NULL THEN l.satisfied_at <= l.deadline WHEN l.deadline < $3 THEN false END,
			'content_hash', l.content_hash, 'scope_version', l.scope_version, 'released_at', l.released_at,
			'first_sent_at', l.first_sent_at, 'notified_at', l.satisfied_at, 'delivered_at', l.delivered_at,
			'bounced_at', l.bounced_at, 'unreachable_at', l.unreachable_at, 'failed_at', l.failed_at, 'last_error', l.last_error,
			'removed_at', l.removed_at, 'removed_version', l.removed_version, 'reminders', l.reminders,
			'last_reminded_at', l.last_reminded_at) ORDER BY l.phase)
		FROM ledger l JOIN notice_phases p ON p.incident_id = l.incident_id AND p.phase = l.phase
		WHERE l.incident_id = $1 AND l.tenant_id = t.id), '[]'),
	coalesce((SELECT jsonb_agg(jsonb_build_object(
			'notice_id', n.id, 'round', n.round, 'round_kind', r.kind, 'phase', n.phase, 'contact_id', n.contact_id,
			'email', c.email, 'contact_name', c.name, 'contact_role', c.role, 'contact_kind', c.kind, 'locale', n.locale,
			'content_hash', coalesce(n.content_hash, r.content_hash, ''), 'status', n.status, 'attempts', n.attempts,
			'possible_duplicate', n.possible_duplicate, 'provider_message_id', coalesce(n.provider_message_id, ''),
			'last_error', coalesce(n.last_error, ''), 'claimed_at', n.claimed_at, 'sent_at', n.sent_at, 'status_at', n.status_at,
			'deadline', nl.deadline, 'facts', coalesce(n.facts, '{}'),
			'events', coalesce((SELECT jsonb_agg(jsonb_build_object('sg_event_id', e.sg_event_id, 'event', e.event,
					'occurred_at', e.occurred_at, 'received_at', e.received_at, 'sg_message_id', coalesce(e.sg_message_id, ''),
					'reason', coalesce(e.reason, '')) ORDER BY e.occurred_at, e.sg_event_id)
				FROM delivery_events e WHERE e.notice_id = n.id), '[]')) ORDER BY n.contact_id, n.id)
		FROM notices n
		JOIN notice_rounds r ON r.incident_id = n.incident_id AND r.round = n.round
		JOIN contacts c ON c.id = n.contact_id
		LEFT JOIN ledger nl ON nl.incident_id = n.incident_id AND nl.phase = coalesce(n.phase, 1) AND nl.tenant_id = n.tenant_id
		WHERE n.incident_id = $1 AND n.tenant_id = t.id), '[]'),
	a.acknowledged_at, coalesce(a.via, ''), coalesce(a.actor, ''), tok.token_hash
FROM (SELECT DISTINCT tenant_id FROM ledger WHERE incident_id = $1 AND ($2 = '' OR tenant_id = $2)) lt
JOIN tenants t ON t.id = lt.tenant_id
LEFT JOIN acknowledgements a ON a.incident_id = $1 AND a.tenant_id = t.id
LEFT JOIN ack_tokens tok ON tok.incident_id = $1 AND tok.tenant_id = t.id
ORDER BY t.id`

// Tenants calls fn for each tenant of the incident's ledger (only tenant, when not
// empty), in tenant order; now decides which deadlines still owed are already missed.
func (sn *Snapshot) Tenants(ctx context.Context, id, tenant string, now time.Time, fn func(PackTenant) error) error {
	rows, err := sn.tx.Query(ctx, packTenantsSQL, id, tenant, now)
	if err != nil {
		return fmt.Errorf("read tenants: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var t PackTenant
		var obligations, notices []byte
		var tokenHash []byte
		if err := rows.Scan(&t.ID, &t.Name, &t.Country, &t.Locale, &t.NoticeSLAHours, &obligations, &notices,
			&t.AcknowledgedAt, &t.AcknowledgedVia, &t.AcknowledgedBy, &tokenHash); err != nil {
			return fmt.Errorf("scan tenant: %w", err)
		}
		if err := json.Unmarshal(obligations, &t.Obligations); err != nil {
			return fmt.Errorf("tenant %s: decode obligations: %w", t.ID, err)
		}
		if err := json.Unmarshal(notices, &t.Notices); err != nil {
			return fmt.Errorf("tenant %s: decode notices: %w", t.ID, err)
		}
		if tokenHash != nil {
			t.AckTokenHash = hex.EncodeToString(tokenHash)
		}
		if err := fn(t); err != nil {
			return err
		}
	}
	return rows.Err()
}

// AuditRow is an audit row with what proves it: the previous row's hash, its own and
// the canonical bytes its hash covers (SHA-256 of PrevHash then Canonical).
type AuditRow struct {
	Seq        int64           `json:"seq"`
	At         time.Time       `json:"at"`
	IncidentID string          `json:"incident_id"`
	Actor      string          `json:"actor"`
	Action     string          `json:"action"`
	Detail     json.RawMessage `json:"detail"`
	PrevHash   string          `json:"prev_hash"` // hex
	Hash       string          `json:"hash"`      // hex
	Canonical  string          `json:"canonical"`
}

// AuditExcerpt calls fn for each audit row of the incident, in order.
func (sn *Snapshot) AuditExcerpt(ctx context.Context, id string, fn func(AuditRow) error) error {
	rows, err := sn.tx.Query(ctx, `SELECT seq, at, coalesce(incident_id, ''), actor, action, detail, prev_hash, hash,
			audit_canonical(seq, at, incident_id, actor, action, detail)
		FROM audit_log WHERE incident_id = $1 ORDER BY seq`, id)
	if err != nil {
		return fmt.Errorf("read audit excerpt: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r AuditRow
		var prev, hash, canonical []byte
		if err := rows.Scan(&r.Seq, &r.At, &r.IncidentID, &r.Actor, &r.Action, &r.Detail, &prev, &hash, &canonical); err != nil {
			return fmt.Errorf("scan audit row: %w", err)
		}
		r.At = r.At.UTC()
		r.PrevHash, r.Hash, r.Canonical = hex.EncodeToString(prev), hex.EncodeToString(hash), string(canonical)
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Checkpoints returns the incident's checkpoints, oldest first.
func (sn *Snapshot) Checkpoints(ctx context.Context, id string) ([]Checkpoint, error) {
	return IncidentCheckpoints(ctx, sn.tx, id)
}
