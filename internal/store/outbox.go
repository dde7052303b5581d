package store

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Round kinds.
const (
	RoundInitial    = "initial"
	RoundReminder   = "reminder"
	RoundFollowup   = "followup"
	RoundEscalation = "escalation"
)

// RoundPlan describes one notification round to plan.
type RoundPlan struct {
	IncidentID   string `json:"incident_id"`
	Round        int    `json:"round"`
	Kind         string `json:"kind"`
	ScopeVersion int    `json:"scope_version"`
	ContentHash  string `json:"content_hash"`
	// PartnerCovered, when set, limits the round to tenants the partner covers (true)
	// or does not cover (false).
	PartnerCovered *bool `json:"partner_covered,omitempty"`
	// OnlyUnacked leaves out tenants that have acknowledged.
	OnlyUnacked bool `json:"only_unacked,omitempty"`
	// Alternates also notifies alternate contacts (escalation); otherwise alternates are
	// used only where a tenant has no deliverable primary.
	Alternates bool `json:"alternates,omitempty"`
	// SkipAlreadyNotified leaves out tenants already sent a notice of this kind in an
	// earlier round (the initial notice goes out once per tenant, whatever the partner split).
	SkipAlreadyNotified bool `json:"skip_already_notified,omitempty"`
	PageSize            int  `json:"page_size"`
	// Locales are the supported template locales; a contact's locale outside them gets Fallback.
	Locales  []string `json:"locales"`
	Fallback string   `json:"fallback"`
	// TokenTTL is how long acknowledgement links stay valid.
	TokenTTL time.Duration `json:"token_ttl"`
}

// RoundPlanned counts a planned round.
type RoundPlanned struct {
	Notices int `json:"notices"`
	Tenants int `json:"tenants"`
	Pages   int `json:"pages"`
}

// PlanRound writes the round's outbox rows with one INSERT … SELECT (one notice per chosen
// contact of each tenant in scope, paged per locale, at most PageSize to a page) and the
// tenants' acknowledgement tokens (hashes only). Planning the same round twice returns
// what the first planning wrote.
func (s *Store) PlanRound(ctx context.Context, p RoundPlan, secret []byte) (RoundPlanned, error) {
	if p.PageSize < 1 || p.PageSize > 1000 {
		return RoundPlanned{}, fieldErr("page_size", "1 to 1000")
	}
	var out RoundPlanned
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO notice_rounds (incident_id, round, kind, scope_version, content_hash)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`, p.IncidentID, p.Round, p.Kind, p.ScopeVersion, p.ContentHash)
		if err != nil {
			return fmt.Errorf("plan round: %w", err)
		}
		if tag.RowsAffected() == 1 {
			if _, err := tx.Exec(ctx, `
				INSERT INTO notices (incident_id, round, tenant_id, contact_id, locale, page)
				SELECT $1, $2, tenant_id, contact_id, locale,
				       dense_rank() OVER (ORDER BY locale, (rn - 1) / $9) - 1
				FROM (
					SELECT c.tenant_id, c.id AS contact_id, l.locale,
					       row_number() OVER (PARTITION BY l.locale ORDER BY c.tenant_id, c.id) AS rn
					FROM scope_tenants st
					JOIN tenants t ON t.id = st.tenant_id
					JOIN contacts c ON c.tenant_id = st.tenant_id
					CROSS JOIN LATERAL (SELECT CASE WHEN lower(left(coalesce(c.locale, t.locale), 2)) = ANY ($10)
					                                THEN lower(left(coalesce(c.locale, t.locale), 2)) ELSE $11 END AS locale) l
					WHERE st.incident_id = $1 AND st.version = $3
					  AND ($4::boolean IS NULL OR st.partner_covered = $4)
					  AND (NOT $5 OR NOT EXISTS (SELECT 1 FROM acknowledgements a WHERE a.incident_id = $1 AND a.tenant_id = st.tenant_id))
					  AND (NOT $8 OR NOT EXISTS (SELECT 1 FROM notices n JOIN notice_rounds r ON r.incident_id = n.incident_id AND r.round = n.round
					                             WHERE n.incident_id = $1 AND n.tenant_id = st.tenant_id AND r.kind = $7 AND n.round <> $2))
					  AND c.undeliverable_at IS NULL
					  AND (c.kind = 'primary' OR $6 OR NOT EXISTS (
					        SELECT 1 FROM contacts p WHERE p.tenant_id = c.tenant_id AND p.kind = 'primary' AND p.undeliverable_at IS NULL))
				) chosen`,
				p.IncidentID, p.Round, p.ScopeVersion, p.PartnerCovered, p.OnlyUnacked, p.Alternates, p.Kind, p.SkipAlreadyNotified,
				p.PageSize, p.Locales, p.Fallback); err != nil {
				return fmt.Errorf("plan outbox: %w", err)
			}
			if _, err := tx.Exec(ctx, `
				INSERT INTO ack_tokens (token_hash, nonce, incident_id, tenant_id, expires_at)
				SELECT sha256(convert_to(encode(hmac(convert_to($1 || ':' || tenant_id || ':' || encode(nonce, 'hex'), 'UTF8'), $3, 'sha256'), 'hex'), 'UTF8')),
				       nonce, $1, tenant_id, now() + $4::interval
				FROM (SELECT DISTINCT tenant_id FROM notices WHERE incident_id = $1 AND round = $2) n
				CROSS JOIN LATERAL (SELECT uuid_send(gen_random_uuid()) AS nonce, n.tenant_id AS t) r
				ON CONFLICT (incident_id, tenant_id) DO NOTHING`, p.IncidentID, p.Round, secret, p.TokenTTL); err != nil {
				return fmt.Errorf("create acknowledgement tokens: %w", err)
			}
		}
		if err := tx.QueryRow(ctx, `SELECT count(*), count(DISTINCT tenant_id), coalesce(max(page) + 1, 0) FROM notices WHERE incident_id = $1 AND round = $2`,
			p.IncidentID, p.Round).Scan(&out.Notices, &out.Tenants, &out.Pages); err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			if _, err := tx.Exec(ctx, `UPDATE notice_rounds SET planned = $3 WHERE incident_id = $1 AND round = $2`, p.IncidentID, p.Round, out.Notices); err != nil {
				return err
			}
			_, err = AppendAudit(ctx, tx, AuditEntry{IncidentID: p.IncidentID, Actor: "system", Action: "round.planned", Detail: map[string]any{
				"round": p.Round, "kind": p.Kind, "notices": out.Notices, "tenants": out.Tenants, "pages": out.Pages, "content_hash": p.ContentHash}})
		}
		return err
	})
	return out, err
}

// AckToken rebuilds the acknowledgement token of a tenant from its stored nonce.
func AckToken(secret []byte, incidentID, tenantID string, nonce []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(incidentID + ":" + tenantID + ":" + hex.EncodeToString(nonce)))
	return hex.EncodeToString(m.Sum(nil))
}

// Recipient is one notice of a page, with what its message needs. Email is PII: it goes
// to SendGrid and nowhere else.
type Recipient struct {
	NoticeID   int64
	TenantID   string
	TenantName string
	Email      string
	Name       string
	Deadline   time.Time
	Token      string
}

// ClaimedPage is the part of a page still to send.
type ClaimedPage struct {
	Kind        string
	ContentHash string
	Locale      string
	Recipients  []Recipient
	AlreadySent int
}

// ClaimPage marks the page's unsent notices as sending and returns them with what their
// messages need. Notices claimed by an earlier attempt that SendGrid has since reported
// (a webhook event exists) count as sent and are not sent again.
func (s *Store) ClaimPage(ctx context.Context, incidentID string, round, page int, secret []byte) (ClaimedPage, error) {
	var cp ClaimedPage
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT kind, content_hash FROM notice_rounds WHERE incident_id = $1 AND round = $2`, incidentID, round).
			Scan(&cp.Kind, &cp.ContentHash); err != nil {
			return notFound(err)
		}
		if _, err := tx.Exec(ctx, `UPDATE notices n SET status = 'sent', sent_at = coalesce(sent_at, now()), status_at = now()
			WHERE n.incident_id = $1 AND n.round = $2 AND n.page = $3 AND n.status = 'sending'
			  AND EXISTS (SELECT 1 FROM delivery_events e WHERE e.notice_id = n.id)`, incidentID, round, page); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			WITH claimed AS (
				UPDATE notices SET status = 'sending', attempts = attempts + 1, claimed_at = now()
				WHERE incident_id = $1 AND round = $2 AND page = $3 AND status IN ('pending', 'sending')
				RETURNING id, tenant_id, contact_id, locale)
			SELECT cl.id, cl.tenant_id, t.name, c.email, c.name, st.deadline, tok.nonce, cl.locale
			FROM claimed cl
			JOIN notice_rounds r ON r.incident_id = $1 AND r.round = $2
			JOIN tenants t ON t.id = cl.tenant_id
			JOIN contacts c ON c.id = cl.contact_id
			JOIN scope_tenants st ON st.incident_id = $1 AND st.version = r.scope_version AND st.tenant_id = cl.tenant_id
			JOIN ack_tokens tok ON tok.incident_id = $1 AND tok.tenant_id = cl.tenant_id
			ORDER BY cl.id`, incidentID, round, page)
		if err != nil {
			return fmt.Errorf("claim page: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var r Recipient
			var nonce []byte
			if err := rows.Scan(&r.NoticeID, &r.TenantID, &r.TenantName, &r.Email, &r.Name, &r.Deadline, &nonce, &cp.Locale); err != nil {
				return err
			}
			r.Token = AckToken(secret, incidentID, r.TenantID, nonce)
			cp.Recipients = append(cp.Recipients, r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT count(*) FROM notices WHERE incident_id = $1 AND round = $2 AND page = $3 AND status NOT IN ('pending', 'sending')`,
			incidentID, round, page).Scan(&cp.AlreadySent)
	})
	return cp, err
}

// MarkSent records SendGrid's message id for notices it accepted.
func (s *Store) MarkSent(ctx context.Context, ids []int64, messageID string) error {
	_, err := s.pool.Exec(ctx, `UPDATE notices SET status = 'sent', provider_message_id = $2, sent_at = now(), status_at = now(), last_error = NULL
		WHERE id = ANY ($1) AND status IN ('pending', 'sending')`, ids, messageID)
	return err
}

// MarkFailed records a permanent failure for notices SendGrid refused.
func (s *Store) MarkFailed(ctx context.Context, ids []int64, reason string) error {
	_, err := s.pool.Exec(ctx, `UPDATE notices SET status = 'failed', last_error = $2, status_at = now()
		WHERE id = ANY ($1) AND status IN ('pending', 'sending')`, ids, reason)
	return err
}

// RoundCounts tallies one round's notices by status.
type RoundCounts struct {
	Round     int    `json:"round"`
	Kind      string `json:"kind"`
	Planned   int    `json:"planned"`
	Pending   int    `json:"pending"`
	Sent      int    `json:"sent"`
	Delivered int    `json:"delivered"`
	Deferred  int    `json:"deferred"`
	Bounced   int    `json:"bounced"`
	Dropped   int    `json:"dropped"`
	Failed    int    `json:"failed"`
}

// Rounds returns per-round counts for an incident.
func (s *Store) Rounds(ctx context.Context, incidentID string) ([]RoundCounts, error) {
	rows, err := s.pool.Query(ctx, `SELECT r.round, r.kind, count(n.id),
			count(*) FILTER (WHERE n.status IN ('pending', 'sending')),
			count(*) FILTER (WHERE n.status IN ('sent', 'delivered', 'deferred', 'bounced', 'dropped')),
			count(*) FILTER (WHERE n.status = 'delivered'), count(*) FILTER (WHERE n.status = 'deferred'),
			count(*) FILTER (WHERE n.status = 'bounced'), count(*) FILTER (WHERE n.status = 'dropped'),
			count(*) FILTER (WHERE n.status = 'failed')
		FROM notice_rounds r LEFT JOIN notices n ON n.incident_id = r.incident_id AND n.round = r.round
		WHERE r.incident_id = $1 GROUP BY r.round, r.kind ORDER BY r.round`, incidentID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (RoundCounts, error) {
		var c RoundCounts
		err := row.Scan(&c.Round, &c.Kind, &c.Planned, &c.Pending, &c.Sent, &c.Delivered, &c.Deferred, &c.Bounced, &c.Dropped, &c.Failed)
		return c, err
	})
}

// AckSecret returns the secret that derives acknowledgement tokens: configured when set,
// otherwise one generated once and kept in the database.
func (s *Store) AckSecret(ctx context.Context, configured string) ([]byte, error) {
	if configured != "" {
		return []byte(configured), nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	var v []byte
	err := s.pool.QueryRow(ctx, `WITH ins AS (INSERT INTO app_secrets (name, value) VALUES ('ack', $1) ON CONFLICT DO NOTHING RETURNING value)
		SELECT value FROM ins UNION ALL SELECT value FROM app_secrets WHERE name = 'ack' LIMIT 1`, b).Scan(&v)
	return v, err
}
