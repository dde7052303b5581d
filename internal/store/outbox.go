package store

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/breachflow/breachflow/internal/notice"
)

// Round kinds.
const (
	RoundInitial    = "initial"
	RoundReminder   = "reminder"
	RoundFollowup   = "followup"
	RoundEscalation = "escalation"
)

// SubjectPrefix is what a round of the kind puts before its notice's subject in the
// locale: reminders (escalated or not) are marked in the recipient's language; a
// follow-up has none, as update and final notices name their phase in their own subject.
func SubjectPrefix(kind, locale string) string {
	if kind == RoundReminder || kind == RoundEscalation {
		return notice.ReminderPrefix(locale)
	}
	return ""
}

// PassPlan describes one notification pass: a phase's notices to the tenants the ledger
// says are owed and released (Phase > 0), or reminders to notified tenants that have not
// acknowledged and whose next reminder is due (Phase 0).
type PassPlan struct {
	IncidentID   string `json:"incident_id"`
	Pass         int    `json:"pass"`
	Kind         string `json:"kind"`
	Phase        int    `json:"phase"`
	ScopeVersion int    `json:"scope_version"`
	// ReminderAfter is the reminder schedule after a tenant was notified; EscalateFrom is
	// the reminder number (1-based) from which alternate contacts get it too (0: never).
	ReminderAfter []time.Duration `json:"reminder_after,omitempty"`
	EscalateFrom  int             `json:"escalate_from,omitempty"`
	// Lane is which of the pass's Lanes this step plans (Lanes 0 or 1: the pass is one
	// lane). A pass keeps the number of lanes it was started with.
	Lane  int `json:"lane,omitempty"`
	Lanes int `json:"lanes,omitempty"`
	// Chunk is how many tenants one planning step covers; PageSize caps a page's recipients.
	Chunk    int `json:"chunk"`
	PageSize int `json:"page_size"`
	// Locales are the supported template locales; a contact's locale outside them gets Fallback.
	Locales  []string `json:"locales"`
	Fallback string   `json:"fallback"`
	// TokenTTL is how long acknowledgement links stay valid.
	TokenTTL time.Duration `json:"token_ttl"`
}

// PassPlanned is where a pass's planning stands after a step.
type PassPlanned struct {
	Pages       int  `json:"pages"`       // the lane's pages planned so far (page numbers Lane + Lanes*k, k < Pages)
	Notices     int  `json:"notices"`     // the lane's notices planned so far
	Tenants     int  `json:"tenants"`     // tenants this step planned notices for
	Unreachable int  `json:"unreachable"` // tenants this step found without a deliverable contact
	Done        bool `json:"done"`        // every owed tenant of the lane has been considered
}

// localeSQL picks a contact's template locale: its own or its tenant's, when supported.
const localeSQL = `CASE WHEN lower(left(coalesce(c.locale, ch.tenant_locale), 2)) = ANY ($5) THEN lower(left(coalesce(c.locale, ch.tenant_locale), 2)) ELSE $6 END`

// laneSQL keeps the ledger rows l of the step's lane: lane $11 of $10 (0 or 1: every row).
const laneSQL = `($10::int <= 1 OR mod(hashtext(l.tenant_id) & 2147483647, $10::int) = $11::int)`

// pageSQL numbers the step's pages from the lane's next one ($9, counted in the lane):
// lane $11 of $10 has pages $11, $11 + $10, … . Rows are grouped by locale and content
// hash, $8 to a page.
const pageSQL = `$11::int + $10::int * ($9 + dense_rank() OVER (ORDER BY locale, content_hash, (rn - 1) / $8) - 1)`

// tenantFactsSQL adds to each tenant of the step's chunk its locale and its facts,
// computed once per tenant rather than once per contact.
const tenantFactsSQL = `told AS MATERIALIZED (
	SELECT ch.*, t.locale AS tenant_locale, ` + factsSQL + ` AS facts
	FROM chunk ch JOIN tenants t ON t.id = ch.tenant_id
	LEFT JOIN tenant_impacts ti ON ti.incident_id = $1 AND ti.tenant_id = ch.tenant_id
	CROSS JOIN (SELECT scope_criteria AS crit FROM incidents WHERE id = $1) sc
)`

// deliverableSQL is a deliverable contact of the tenant ch.tenant_id, primary unless the
// tenant has no deliverable primary left (or the reminder escalates).
const deliverableSQL = `c.undeliverable_at IS NULL AND (c.kind = 'primary' OR %s OR NOT EXISTS (
	SELECT 1 FROM contacts p WHERE p.tenant_id = c.tenant_id AND p.kind = 'primary' AND p.undeliverable_at IS NULL))`

// noticeChunkSQL plans one step of a phase's pass: the next Chunk tenants (keyset on
// tenant id) owed the phase, released under a (content hash, scope version) that two
// people approved, each to its deliverable contacts that have no live notice of the phase.
const noticeChunkSQL = `
WITH approved AS (
	SELECT content_hash, scope_version FROM approvals WHERE incident_id = $1
	GROUP BY content_hash, scope_version HAVING count(DISTINCT approver) >= 2
), ok AS (
	SELECT content_hash, scope_version FROM approved
	UNION
	-- A tenant the scope gained after this phase is sent the phase's own approved notice
	-- under the approval of a later phase's notice for the tenant's scope version.
	SELECT p.content_hash, a.scope_version FROM approved a
	JOIN notice_drafts d ON d.incident_id = $1 AND d.content_hash = a.content_hash AND d.phase > $3
	JOIN notice_phases p ON p.incident_id = $1 AND p.phase = $3
	WHERE p.content_hash IN (SELECT content_hash FROM approved)
), chunk AS (
	SELECT l.tenant_id, l.content_hash, l.unreachable_at IS NOT NULL AS was_unreachable,
	       EXISTS (SELECT 1 FROM contacts c WHERE c.tenant_id = l.tenant_id AND c.undeliverable_at IS NULL) AS reachable
	FROM ledger l
	WHERE l.incident_id = $1 AND l.phase = $3 AND l.tenant_id > $4
	  AND l.released_at IS NOT NULL AND l.satisfied_at IS NULL AND l.removed_at IS NULL
	  AND EXISTS (SELECT 1 FROM ok WHERE ok.content_hash = l.content_hash AND ok.scope_version = l.scope_version)
	  AND ` + laneSQL + `
	ORDER BY l.tenant_id LIMIT $7
), ` + tenantFactsSQL + `, chosen AS (
	SELECT ch.tenant_id, c.id AS contact_id, ch.content_hash, ` + localeSQL + ` AS locale, ch.facts
	FROM told ch JOIN contacts c ON c.tenant_id = ch.tenant_id
	WHERE ` + "%s" + `
	  AND NOT EXISTS (SELECT 1 FROM notices n WHERE n.incident_id = $1 AND n.phase = $3 AND n.contact_id = c.id
	                  AND n.status NOT IN ('failed', 'cancelled'))
), reach AS (
	-- Only the tenants whose reachability changed are written; it runs whether or not
	-- the query reads it, as every data-modifying WITH does.
	UPDATE ledger l SET unreachable_at = CASE WHEN ch.reachable THEN NULL ELSE now() END
	FROM chunk ch WHERE l.incident_id = $1 AND l.phase = $3 AND l.tenant_id = ch.tenant_id AND ch.reachable = ch.was_unreachable
	RETURNING 1
), ins AS (
	-- A contact whose notice of this phase was refused or cancelled gets that row back,
	-- planned into this pass.
	INSERT INTO notices (incident_id, round, phase, tenant_id, contact_id, locale, content_hash, facts, page)
	SELECT $1, $2, $3, tenant_id, contact_id, locale, content_hash, facts, ` + pageSQL + `
	FROM (SELECT chosen.*, row_number() OVER (PARTITION BY locale, content_hash ORDER BY tenant_id, contact_id) AS rn FROM chosen) x
	ON CONFLICT (incident_id, phase, contact_id) DO UPDATE
	SET round = EXCLUDED.round, page = EXCLUDED.page, locale = EXCLUDED.locale, content_hash = EXCLUDED.content_hash,
	    facts = EXCLUDED.facts, status = 'pending', claimed_at = NULL, status_at = now()
	WHERE notices.status IN ('failed', 'cancelled')
	RETURNING tenant_id, page
)
SELECT (SELECT max(tenant_id) FROM chunk), (SELECT count(*) FROM chunk), (SELECT count(*) FROM ins),
       (SELECT count(DISTINCT tenant_id) FROM ins), (SELECT max(page) FROM ins),
       (SELECT count(*) FROM chunk WHERE NOT reachable), (SELECT coalesce(array_agg(DISTINCT tenant_id), '{}') FROM ins)`

// reminderChunkSQL plans one step of a reminder pass: the next Chunk notified tenants
// that have not acknowledged and whose next reminder is due, each to its deliverable
// primary contacts (and alternates from the escalation reminder on), with the latest
// phase's notice the tenant was sent.
const reminderChunkSQL = `
WITH chunk AS (
	-- A reminder carries the latest phase's notice that reached the tenant.
	SELECT l.tenant_id, coalesce((SELECT lp.content_hash FROM ledger lp WHERE lp.incident_id = $1 AND lp.tenant_id = l.tenant_id
	                                AND lp.satisfied_at IS NOT NULL AND lp.removed_at IS NULL ORDER BY lp.phase DESC LIMIT 1),
	                              l.content_hash) AS content_hash,
	       l.reminders + 1 AS reminder FROM ledger l
	WHERE l.incident_id = $1 AND l.phase = 1 AND l.tenant_id > $4 AND $3 = 0
	  AND l.satisfied_at IS NOT NULL AND l.removed_at IS NULL AND l.reminders < cardinality($12::bigint[])
	  AND l.satisfied_at + make_interval(secs => ($12::bigint[])[l.reminders + 1]) <= now()
	  AND NOT EXISTS (SELECT 1 FROM acknowledgements a WHERE a.incident_id = $1 AND a.tenant_id = l.tenant_id)
	  AND ` + laneSQL + `
	ORDER BY l.tenant_id LIMIT $7
), ` + tenantFactsSQL + `, chosen AS (
	SELECT ch.tenant_id, c.id AS contact_id, ch.content_hash, ` + localeSQL + ` AS locale, ch.facts
	FROM told ch JOIN contacts c ON c.tenant_id = ch.tenant_id
	WHERE ` + "%s" + `
), counted AS (
	-- Runs whether or not the query reads it, as every data-modifying WITH does.
	UPDATE ledger l SET reminders = ch.reminder, last_reminded_at = now()
	FROM chunk ch WHERE l.incident_id = $1 AND l.phase = 1 AND l.tenant_id = ch.tenant_id
	RETURNING 1
), ins AS (
	INSERT INTO notices (incident_id, round, phase, tenant_id, contact_id, locale, content_hash, facts, page)
	SELECT $1, $2, NULL, tenant_id, contact_id, locale, content_hash, facts, ` + pageSQL + `
	FROM (SELECT chosen.*, row_number() OVER (PARTITION BY locale, content_hash ORDER BY tenant_id, contact_id) AS rn FROM chosen) x
	ON CONFLICT DO NOTHING
	RETURNING tenant_id, page
)
SELECT (SELECT max(tenant_id) FROM chunk), (SELECT count(*) FROM chunk), (SELECT count(*) FROM ins),
       (SELECT count(DISTINCT tenant_id) FROM ins), (SELECT max(page) FROM ins), 0,
       (SELECT coalesce(array_agg(DISTINCT tenant_id), '{}') FROM ins)`

var (
	noticeChunk   = fmt.Sprintf(noticeChunkSQL, fmt.Sprintf(deliverableSQL, "false"))
	reminderChunk = fmt.Sprintf(reminderChunkSQL, fmt.Sprintf(deliverableSQL, "($13 > 0 AND ch.reminder >= $13)"))
)

// MaxPlanLanes is the most lanes a pass is planned in.
const MaxPlanLanes = 16

// PlanStep plans the next step of one lane of a pass: it creates the pass and the lane on
// their first call, writes the outbox rows of up to Chunk of the lane's tenants with one
// statement, and creates their acknowledgement tokens (hashes only). The lane's keyset
// cursor lives in its row, so a step retried after its answer was lost plans the next
// tenants and the pages it reports cover both. Lanes hold only their own rows while they
// plan, so a pass's lanes plan at the same time; the step that finds every lane done
// records the pass as planned.
func (s *Store) PlanStep(ctx context.Context, p PassPlan, secret []byte) (PassPlanned, error) {
	var out PassPlanned
	lanes := max(p.Lanes, 1)
	switch {
	case p.PageSize < 1 || p.PageSize > 1000:
		return out, fieldErr("page_size", "1 to 1000")
	case p.Chunk < 1:
		return out, fieldErr("chunk", "at least 1")
	case p.Phase < 0 || (p.Phase == 0 && len(p.ReminderAfter) == 0):
		return out, fieldErr("phase", "a phase number, or 0 with a reminder schedule")
	case lanes > MaxPlanLanes:
		return out, fieldErr("lanes", "1 to %d", MaxPlanLanes)
	case p.Lane < 0 || p.Lane >= lanes:
		return out, fieldErr("lane", "0 to %d", lanes-1)
	}
	var phase any
	if p.Phase > 0 {
		phase = p.Phase
	}
	// The pass's row, on its own: a lane's first step does not wait for another's.
	if _, err := s.pool.Exec(ctx, `INSERT INTO notice_rounds (incident_id, round, kind, scope_version, phase, lanes)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`, p.IncidentID, p.Pass, p.Kind, p.ScopeVersion, phase, lanes); err != nil {
		return out, fmt.Errorf("start pass: %w", err)
	}
	total := 0 // the pass's notices, set by the step that finds every lane done
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		// A step's rows are sorted into pages in memory, not on disk.
		if _, err := tx.Exec(ctx, `SET LOCAL work_mem = '64MB'`); err != nil {
			return err
		}
		var passLanes int
		if err := tx.QueryRow(ctx, `SELECT lanes FROM notice_rounds WHERE incident_id = $1 AND round = $2`, p.IncidentID, p.Pass).Scan(&passLanes); err != nil {
			return notFound(err)
		}
		if passLanes != lanes {
			return fieldErr("lanes", "%d, as pass %d was started with", passLanes, p.Pass)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO notice_plan_lanes (incident_id, round, lane) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			p.IncidentID, p.Pass, p.Lane); err != nil {
			return fmt.Errorf("start lane: %w", err)
		}
		var cursor string
		if err := tx.QueryRow(ctx, `SELECT plan_cursor, planned_done, pages, planned FROM notice_plan_lanes
			WHERE incident_id = $1 AND round = $2 AND lane = $3 FOR UPDATE`,
			p.IncidentID, p.Pass, p.Lane).Scan(&cursor, &out.Done, &out.Pages, &out.Notices); err != nil {
			return notFound(err)
		}
		if out.Done {
			return nil
		}
		q := noticeChunk
		args := []any{p.IncidentID, p.Pass, p.Phase, cursor, p.Locales, p.Fallback, p.Chunk, p.PageSize, out.Pages, lanes, p.Lane}
		if p.Phase == 0 {
			q = reminderChunk
			args = append(args, reminderSeconds(p.ReminderAfter), p.EscalateFrom)
		}
		var last *string
		var considered, notices int
		var maxPage *int
		var tenants []string
		if err := tx.QueryRow(ctx, q, args...).Scan(&last, &considered, &notices, &out.Tenants, &maxPage, &out.Unreachable, &tenants); err != nil {
			return fmt.Errorf("plan pass %d: %w", p.Pass, err)
		}
		if maxPage != nil {
			out.Pages = (*maxPage-p.Lane)/lanes + 1
		}
		out.Notices += notices
		out.Done = considered < p.Chunk
		if last != nil {
			cursor = *last
		}
		if err := ackTokens(ctx, tx, p.IncidentID, tenants, secret, p.TokenTTL); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE notice_plan_lanes SET plan_cursor = $4, planned_done = $5, pages = $6, planned = $7
			WHERE incident_id = $1 AND round = $2 AND lane = $3`, p.IncidentID, p.Pass, p.Lane, cursor, out.Done, out.Pages, out.Notices); err != nil {
			return err
		}
		if !out.Done {
			return nil
		}
		// The lanes that finish take the pass's row in turn: the last of them sees every
		// other lane done and records the pass as planned, once.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM notice_rounds WHERE incident_id = $1 AND round = $2 FOR NO KEY UPDATE`, p.IncidentID, p.Pass); err != nil {
			return err
		}
		var done, passNotices, pages int
		if err := tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE planned_done), coalesce(sum(planned), 0), coalesce(sum(pages), 0)
			FROM notice_plan_lanes WHERE incident_id = $1 AND round = $2`, p.IncidentID, p.Pass).Scan(&done, &passNotices, &pages); err != nil {
			return err
		}
		if done < lanes {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE notice_rounds SET planned = $3 WHERE incident_id = $1 AND round = $2`, p.IncidentID, p.Pass, passNotices); err != nil {
			return err
		}
		_, err := AppendAudit(ctx, tx, AuditEntry{IncidentID: p.IncidentID, Actor: "system", Action: "pass.planned", Detail: map[string]any{
			"pass": p.Pass, "kind": p.Kind, "phase": p.Phase, "notices": passNotices, "pages": pages, "lanes": lanes}})
		total = passNotices
		return err
	})
	if err == nil && total >= analyzeAfter {
		// The pages' claims and the ledger's counts read the outbox next: plan them on
		// statistics that include this pass rather than on autovacuum's timing.
		if _, err = s.pool.Exec(ctx, `ANALYZE notices, ack_tokens`); err != nil {
			err = fmt.Errorf("analyze the outbox: %w", err)
		}
	}
	return out, err
}

// ackTokens gives tenants an acknowledgement token each. The token is derived here, in
// Go: the secret never travels to PostgreSQL, which keeps only each token's SHA-256 and
// nonce. A token already made stays (links already sent keep working); its lifetime
// extends to this pass's.
func ackTokens(ctx context.Context, tx pgx.Tx, incidentID string, tenants []string, secret []byte, ttl time.Duration) error {
	if len(tenants) == 0 {
		return nil
	}
	nonces := make([][]byte, len(tenants))
	hashes := make([][]byte, len(tenants))
	buf := make([]byte, 16*len(tenants))
	if _, err := rand.Read(buf); err != nil {
		return err
	}
	for i, t := range tenants {
		nonces[i] = buf[16*i : 16*i+16]
		hashes[i] = HashKey(AckToken(secret, incidentID, t, nonces[i]))
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO ack_tokens (token_hash, nonce, incident_id, tenant_id, expires_at)
		SELECT h, n, $1, t, now() + $5::interval FROM unnest($2::text[], $3::bytea[], $4::bytea[]) AS u (t, n, h)
		ON CONFLICT (incident_id, tenant_id) DO UPDATE SET expires_at = greatest(ack_tokens.expires_at, EXCLUDED.expires_at)`,
		incidentID, tenants, nonces, hashes, ttl); err != nil {
		return fmt.Errorf("create acknowledgement tokens: %w", err)
	}
	return nil
}

// analyzeAfter is the size of a pass from which its planning refreshes the outbox's
// planner statistics.
const analyzeAfter = 10_000

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
	Facts      notice.TenantFacts
}

// ClaimedPage is the part of a page still to send.
type ClaimedPage struct {
	Kind        string
	Phase       int
	ContentHash string
	Locale      string
	Recipients  []Recipient
	AlreadySent int
	// InDoubt counts notices an earlier attempt may have sent without recording
	// SendGrid's answer, still within the grace window: neither sent again nor settled
	// yet. SettleBy is when the last of them leaves the window.
	InDoubt  int
	SettleBy time.Time
	// Resent counts the claimed notices that were in doubt past the window: sent again,
	// each recorded as a possible duplicate.
	Resent int
	// Ref names the claim this attempt holds on the page (Claim 0: none, nothing to send).
	Ref PageRef
}

// PageRef names one attempt's claim on a page.
type PageRef struct {
	IncidentID string
	Round      int
	Page       int
	Claim      int
}

// ClaimPage claims the page for this attempt and returns its unsent notices with what
// their messages need. The claim is one row per page (notice_pages), cleared by
// SettlePage once SendGrid's answer to everything sent is recorded. Notices of tenants
// that left the scope are cancelled. A notice an earlier attempt may have sent without
// recording the answer is in doubt: one the attempt marked 'sending' (it saw the answer
// lost), or any unsent notice of a page whose claim was left behind after a request had
// started (the attempt died). Within grace of that request it is left alone (counted in
// InDoubt) for its delivery events to settle — they move it forward as they arrive —;
// past it, it is claimed again and marked a possible duplicate. While a left request is
// within its window the attempt sends nothing of the page.
func (s *Store) ClaimPage(ctx context.Context, incidentID string, round, page int, secret []byte, grace time.Duration) (ClaimedPage, error) {
	var cp ClaimedPage
	err := s.WithTx(ctx, func(tx pgx.Tx) error {
		var phase *int
		if err := tx.QueryRow(ctx, `SELECT kind, phase FROM notice_rounds WHERE incident_id = $1 AND round = $2`, incidentID, round).
			Scan(&cp.Kind, &phase); err != nil {
			return notFound(err)
		}
		if phase != nil {
			cp.Phase = *phase
		}
		// Take the page's row (locked until commit) and see whether a claim was left with
		// a request started: when SendGrid may have had the page's unsent notices.
		var attempts int
		var left *time.Time
		var now time.Time
		if err := tx.QueryRow(ctx, `INSERT INTO notice_pages AS p (incident_id, round, page) VALUES ($1, $2, $3)
			ON CONFLICT (incident_id, round, page) DO UPDATE SET attempts = p.attempts + 1
			RETURNING p.attempts, p.requested_at, now()`, incidentID, round, page).Scan(&attempts, &left, &now); err != nil {
			return fmt.Errorf("claim page: %w", err)
		}
		// What is the tenant's (name, deadline, token) is read once per tenant, not once
		// per contact.
		rows, err := tx.Query(ctx, `
			WITH pg AS MATERIALIZED (
				SELECT n.id, n.status, n.claimed_at, n.tenant_id, n.contact_id, n.phase, n.locale, n.content_hash, n.facts
				FROM notices n WHERE n.incident_id = $1 AND n.round = $2 AND n.page = $3 AND n.status IN ('pending', 'sending')
			), ten AS MATERIALIZED (
				SELECT x.tenant_id, t.name, l.deadline, l.removed_at IS NOT NULL AS removed, tok.nonce
				FROM (SELECT DISTINCT tenant_id, coalesce(phase, 1) AS phase FROM pg) x
				JOIN tenants t ON t.id = x.tenant_id
				JOIN ledger l ON l.incident_id = $1 AND l.phase = x.phase AND l.tenant_id = x.tenant_id
				JOIN ack_tokens tok ON tok.incident_id = $1 AND tok.tenant_id = x.tenant_id
			)
			SELECT pg.id, pg.status, pg.claimed_at, pg.tenant_id, ten.name, c.email, c.name, ten.deadline, ten.removed,
			       ten.nonce, pg.locale, pg.content_hash,
			       (pg.status = 'sending' OR $4) AND EXISTS (SELECT 1 FROM delivery_events e WHERE e.notice_id = pg.id),
			       coalesce(pg.facts, '{}')
			FROM pg JOIN ten ON ten.tenant_id = pg.tenant_id JOIN contacts c ON c.id = pg.contact_id
			ORDER BY pg.id`, incidentID, round, page, left != nil)
		if err != nil {
			return fmt.Errorf("claim page: %w", err)
		}
		var cancel, reported, resend []int64
		candidate := map[int64]bool{} // the resends among cp.Recipients
		for rows.Next() {
			var r Recipient
			var status, locale, hash string
			var claimedAt *time.Time
			var removed, hasEvents bool
			var nonce []byte
			if err := rows.Scan(&r.NoticeID, &status, &claimedAt, &r.TenantID, &r.TenantName, &r.Email, &r.Name, &r.Deadline, &removed,
				&nonce, &locale, &hash, &hasEvents, &r.Facts); err != nil {
				rows.Close()
				return err
			}
			switch {
			case hasEvents:
				// SendGrid reported it: the lost answer's send went through.
				reported = append(reported, r.NoticeID)
				continue
			case removed:
				cancel = append(cancel, r.NoticeID)
				continue
			}
			// When the notice may have gone out, if at all: the later of the page's left
			// request and its own lost one. So while the left request's window lasts,
			// nothing of the page goes out (this attempt's claim would end that doubt).
			doubt := left
			if status == "sending" {
				var own time.Time // never recorded: long past
				if claimedAt != nil {
					own = *claimedAt
				}
				if doubt == nil || own.After(*doubt) {
					doubt = &own
				}
			}
			if doubt != nil {
				if by := doubt.Add(grace); by.After(now) {
					cp.InDoubt++
					if by.After(cp.SettleBy) {
						cp.SettleBy = by
					}
					continue
				}
				resend = append(resend, r.NoticeID)
				candidate[r.NoticeID] = true
			}
			cp.Locale, cp.ContentHash = locale, hash
			if n := len(cp.Recipients); n > 0 && cp.Recipients[n-1].TenantID == r.TenantID {
				r.Token = cp.Recipients[n-1].Token // rows come in id order: a tenant's contacts are adjacent
			} else {
				r.Token = AckToken(secret, incidentID, r.TenantID, nonce)
			}
			cp.Recipients = append(cp.Recipients, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("claim page: %w", err)
		}
		if len(reported) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE notices SET status = 'sent', sent_at = coalesce(sent_at, now()), status_at = now()
				WHERE id = ANY ($1) AND status IN ('pending', 'sending')`, reported); err != nil {
				return fmt.Errorf("notices SendGrid reported: %w", err)
			}
			if err := ledgerSent(ctx, tx, incidentID, reported); err != nil {
				return err
			}
		}
		if len(cancel) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE notices SET status = 'cancelled', status_at = now(), last_error = 'tenant left the scope'
				WHERE id = ANY ($1) AND status IN ('pending', 'sending')`, cancel); err != nil {
				return fmt.Errorf("cancel notices of tenants that left the scope: %w", err)
			}
		}
		if len(resend) > 0 {
			// The lost attempt counts as one; the resend is recorded as a possible duplicate.
			// One whose events moved it on meanwhile is not sent again.
			rows, err := tx.Query(ctx, `UPDATE notices SET status = 'pending', claimed_at = NULL, possible_duplicate = true,
				attempts = attempts + 1, status_at = now() WHERE id = ANY ($1) AND status IN ('pending', 'sending') RETURNING id`, resend)
			if err != nil {
				return fmt.Errorf("notices in doubt: %w", err)
			}
			still, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				return fmt.Errorf("notices in doubt: %w", err)
			}
			if len(still) < len(resend) {
				moved := candidate // what is left of it once the still-unsent are taken out
				for _, id := range still {
					delete(moved, id)
				}
				cp.Recipients = slices.DeleteFunc(cp.Recipients, func(r Recipient) bool { return moved[r.NoticeID] })
			}
			cp.Resent = len(still)
		}
		if cp.Resent > 0 {
			if _, err := AppendAudit(ctx, tx, AuditEntry{IncidentID: incidentID, Actor: "system", Action: "notice.possible_duplicate",
				Detail: map[string]any{"pass": round, "page": page, "notices": cp.Resent, "grace_seconds": grace.Seconds()}}); err != nil {
				return err
			}
		}
		cp.Ref = PageRef{IncidentID: incidentID, Round: round, Page: page}
		if len(cp.Recipients) > 0 {
			// This attempt holds the page now; the left request's doubt is over (its
			// notices are reported, or sent again here as possible duplicates).
			cp.Ref.Claim = attempts
			if _, err := tx.Exec(ctx, `UPDATE notice_pages SET claim = $4, claimed_at = now(), requested_at = NULL
				WHERE incident_id = $1 AND round = $2 AND page = $3`, incidentID, round, page, attempts); err != nil {
				return fmt.Errorf("claim page: %w", err)
			}
		}
		if attempts == 1 {
			return nil
		}
		return tx.QueryRow(ctx, `SELECT count(*) FROM notices WHERE incident_id = $1 AND round = $2 AND page = $3 AND status NOT IN ('pending', 'sending', 'cancelled')`,
			incidentID, round, page).Scan(&cp.AlreadySent)
	})
	return cp, err
}

// SettlePage clears the claim ref holds once SendGrid's answer to everything the attempt
// sent is recorded: the page's unsent notices are no longer in doubt. A claim another
// attempt has taken since stays.
func (s *Store) SettlePage(ctx context.Context, ref PageRef) error {
	if ref.Claim == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `UPDATE notice_pages SET claim = NULL, claimed_at = NULL, requested_at = NULL
		WHERE incident_id = $1 AND round = $2 AND page = $3 AND claim = $4`, ref.IncidentID, ref.Round, ref.Page, ref.Claim)
	if err != nil {
		return fmt.Errorf("settle page %d of pass %d: %w", ref.Page, ref.Round, err)
	}
	return nil
}

// ErrClaimLost is returned by StartRequest when another attempt has claimed the page.
var ErrClaimLost = errors.New("the page is claimed by another attempt")

// StartRequest records, before the first request of ref's attempt goes out, that SendGrid
// may have the page's unsent notices from now on: a claim left behind after this is doubt,
// one left before it is not.
func (s *Store) StartRequest(ctx context.Context, ref PageRef) error {
	tag, err := s.pool.Exec(ctx, `UPDATE notice_pages SET requested_at = coalesce(requested_at, now())
		WHERE incident_id = $1 AND round = $2 AND page = $3 AND claim = $4`, ref.IncidentID, ref.Round, ref.Page, ref.Claim)
	if err != nil {
		return fmt.Errorf("start request of page %d of pass %d: %w", ref.Page, ref.Round, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("page %d of pass %d: %w", ref.Page, ref.Round, ErrClaimLost)
	}
	return nil
}

// MarkInDoubt records that SendGrid may have the notices ids though its answer was lost
// (a timeout, a dropped connection): they stay unsent, in doubt from now until their
// delivery events or the grace window settle them.
func (s *Store) MarkInDoubt(ctx context.Context, ids []int64, reason string) error {
	_, err := s.pool.Exec(ctx, `UPDATE notices SET status = 'sending', claimed_at = now(), attempts = attempts + 1, last_error = $2, status_at = now()
		WHERE id = ANY ($1) AND status IN ('pending', 'sending')`, ids, reason)
	return err
}

// ledgerSent records in the ledger that the notices ids reached SendGrid: their
// tenants' phases are notified (unless a bounce says otherwise later).
func ledgerSent(ctx context.Context, q Querier, incidentID string, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := q.Exec(ctx, `UPDATE ledger l SET first_sent_at = coalesce(l.first_sent_at, x.sent_at), satisfied_at = coalesce(l.satisfied_at, x.sent_at),
			failed_at = NULL, last_error = NULL, unreachable_at = NULL
		FROM (SELECT phase, tenant_id, min(sent_at) AS sent_at FROM notices
		      WHERE id = ANY ($2) AND phase IS NOT NULL AND status IN ('sent', 'delivered', 'deferred') GROUP BY phase, tenant_id) x
		WHERE l.incident_id = $1 AND l.phase = x.phase AND l.tenant_id = x.tenant_id
		  AND (l.first_sent_at IS NULL OR l.satisfied_at IS NULL OR l.failed_at IS NOT NULL OR l.last_error IS NOT NULL OR l.unreachable_at IS NOT NULL)`,
		incidentID, ids)
	if err != nil {
		return fmt.Errorf("ledger: record sent: %w", err)
	}
	return nil
}

// MarkSent records SendGrid's message id for notices it accepted, and their tenants as
// notified in the ledger.
func (s *Store) MarkSent(ctx context.Context, incidentID string, ids []int64, messageID string) error {
	return s.WithTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE notices SET status = 'sent', provider_message_id = $2, sent_at = now(), status_at = now(), last_error = NULL,
				attempts = attempts + 1
			WHERE id = ANY ($1) AND status IN ('pending', 'sending')`, ids, messageID); err != nil {
			return err
		}
		return ledgerSent(ctx, tx, incidentID, ids)
	})
}

// MarkFailed records a permanent failure for notices SendGrid refused; their tenants stay
// owed, marked with the error.
func (s *Store) MarkFailed(ctx context.Context, incidentID string, ids []int64, reason string) error {
	return s.WithTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE notices SET status = 'failed', last_error = $2, status_at = now(), attempts = attempts + 1
			WHERE id = ANY ($1) AND status IN ('pending', 'sending')`, ids, reason); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE ledger l SET failed_at = now(), last_error = $3
			FROM (SELECT DISTINCT phase, tenant_id FROM notices WHERE id = ANY ($2) AND phase IS NOT NULL) x
			WHERE l.incident_id = $1 AND l.phase = x.phase AND l.tenant_id = x.tenant_id AND l.satisfied_at IS NULL`, incidentID, ids, reason)
		return err
	})
}

// ReleaseClaims records the temporary error SendGrid answered for notices an attempt
// claimed and leaves them pending for the next attempt, not in doubt: the attempt then
// settles its page (SettlePage).
func (s *Store) ReleaseClaims(ctx context.Context, ids []int64, reason string) error {
	_, err := s.pool.Exec(ctx, `UPDATE notices SET status = 'pending', claimed_at = NULL, last_error = $2, status_at = now(), attempts = attempts + 1
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
	// PossibleDuplicates counts notices sent again after their first send's answer was
	// lost and no delivery event settled it within the grace window.
	PossibleDuplicates int `json:"possible_duplicates"`
}

// Rounds returns per-round counts for an incident.
func (s *Store) Rounds(ctx context.Context, incidentID string) ([]RoundCounts, error) {
	rows, err := s.pool.Query(ctx, `SELECT r.round, r.kind, count(n.id),
			count(*) FILTER (WHERE n.status IN ('pending', 'sending')),
			count(*) FILTER (WHERE n.status IN ('sent', 'delivered', 'deferred', 'bounced', 'dropped')),
			count(*) FILTER (WHERE n.status = 'delivered'), count(*) FILTER (WHERE n.status = 'deferred'),
			count(*) FILTER (WHERE n.status = 'bounced'), count(*) FILTER (WHERE n.status = 'dropped'),
			count(*) FILTER (WHERE n.status = 'failed'), count(*) FILTER (WHERE n.possible_duplicate)
		FROM notice_rounds r LEFT JOIN notices n ON n.incident_id = r.incident_id AND n.round = r.round
		WHERE r.incident_id = $1 GROUP BY r.round, r.kind ORDER BY r.round`, incidentID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (RoundCounts, error) {
		var c RoundCounts
		err := row.Scan(&c.Round, &c.Kind, &c.Planned, &c.Pending, &c.Sent, &c.Delivered, &c.Deferred, &c.Bounced, &c.Dropped, &c.Failed, &c.PossibleDuplicates)
		return c, err
	})
}

// AckSecret returns the secret that derives acknowledgement tokens: configured when set,
// otherwise one generated once and kept in the database.
func (s *Store) AckSecret(ctx context.Context, configured string) ([]byte, error) {
	if configured != "" {
		return []byte(configured), nil
	}
	// Made by the server itself (gen_random_uuid draws from its strong random source), so
	// the secret is never a statement's parameter, which logs and traces may keep.
	var v []byte
	err := s.pool.QueryRow(ctx, `WITH ins AS (INSERT INTO app_secrets (name, value)
			VALUES ('ack', uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid())) ON CONFLICT DO NOTHING RETURNING value)
		SELECT value FROM ins UNION ALL SELECT value FROM app_secrets WHERE name = 'ack' LIMIT 1`).Scan(&v)
	return v, err
}
