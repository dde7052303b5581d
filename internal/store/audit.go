package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Querier is what both a pool and a transaction offer.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// AuditEntry is one event to append to the audit log.
type AuditEntry struct {
	IncidentID string         // empty for events not tied to an incident
	Actor      string         // who did it: an API key name, "system", "customer"
	Action     string         // a stable verb such as "incident.declared"
	Detail     map[string]any // IDs and counts; never email addresses
}

// AuditRecord is a stored audit row.
type AuditRecord struct {
	Seq        int64          `json:"seq"`
	At         time.Time      `json:"at"`
	IncidentID string         `json:"incident_id,omitempty"`
	Actor      string         `json:"actor"`
	Action     string         `json:"action"`
	Detail     map[string]any `json:"detail"`
	Hash       string         `json:"hash"`
}

// AppendAudit appends e to the audit log through q (the pool or a transaction, so an
// audit row commits with the change it records).
func AppendAudit(ctx context.Context, q Querier, e AuditEntry) (int64, error) {
	detail := e.Detail
	if detail == nil {
		detail = map[string]any{}
	}
	raw, err := json.Marshal(detail)
	if err != nil {
		return 0, fmt.Errorf("encode audit detail: %w", err)
	}
	var seq int64
	err = q.QueryRow(ctx, `INSERT INTO audit_log (incident_id, actor, action, detail)
		VALUES (NULLIF($1, ''), $2, $3, $4) RETURNING seq`, e.IncidentID, e.Actor, e.Action, raw).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("append audit %s: %w", e.Action, err)
	}
	return seq, nil
}

// AppendAudit appends e to the audit log in its own transaction.
func (s *Store) AppendAudit(ctx context.Context, e AuditEntry) (int64, error) {
	return AppendAudit(ctx, s.pool, e)
}

// AuditTrail returns an incident's audit rows in order.
func (s *Store) AuditTrail(ctx context.Context, incidentID string) ([]AuditRecord, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, at, coalesce(incident_id, ''), actor, action, detail, hash
		FROM audit_log WHERE incident_id = $1 ORDER BY seq`, incidentID)
	if err != nil {
		return nil, fmt.Errorf("read audit trail: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (AuditRecord, error) {
		var r AuditRecord
		var hash []byte
		err := row.Scan(&r.Seq, &r.At, &r.IncidentID, &r.Actor, &r.Action, &r.Detail, &hash)
		r.Hash = hex.EncodeToString(hash)
		return r, err
	})
}

// AuditReport is the outcome of verifying the audit chain.
type AuditReport struct {
	Rows     int64  `json:"rows"`    // rows checked
	Head     string `json:"head"`    // hash of the last row; publish it to detect truncation of the tail
	OK       bool   `json:"ok"`      // every row checked out
	BadSeq   int64  `json:"bad_seq"` // the first row that does not, when !OK
	Problem  string `json:"problem"` // what is wrong with it
	Expected int64  `json:"-"`       // the sequence number expected at BadSeq
}

var genesis = make([]byte, sha256.Size)

// VerifyAudit recomputes every hash of the audit chain in order and reports the first row
// that was edited, removed or inserted out of turn.
func (s *Store) VerifyAudit(ctx context.Context) (AuditReport, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, prev_hash, hash,
			audit_canonical(seq, at, incident_id, actor, action, detail)
		FROM audit_log ORDER BY seq`)
	if err != nil {
		return AuditReport{}, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	rep := AuditReport{OK: true}
	prev := genesis
	want := int64(1)
	for rows.Next() {
		var seq int64
		var prevHash, hash, canonical []byte
		if err := rows.Scan(&seq, &prevHash, &hash, &canonical); err != nil {
			return AuditReport{}, fmt.Errorf("scan audit row: %w", err)
		}
		rep.Rows++
		sum := sha256.New()
		sum.Write(prevHash)
		sum.Write(canonical)
		switch {
		case seq != want:
			rep.OK, rep.BadSeq, rep.Expected = false, seq, want
			rep.Problem = fmt.Sprintf("row %d is missing (next present row is %d)", want, seq)
		case !bytes.Equal(prevHash, prev):
			rep.OK, rep.BadSeq = false, seq
			rep.Problem = "prev_hash does not match the previous row's hash"
		case !bytes.Equal(sum.Sum(nil), hash):
			rep.OK, rep.BadSeq = false, seq
			rep.Problem = "row content does not match its hash (edited)"
		}
		if !rep.OK {
			return rep, nil
		}
		prev = hash
		want++
	}
	if err := rows.Err(); err != nil {
		return AuditReport{}, fmt.Errorf("read audit log: %w", err)
	}
	rep.Head = hex.EncodeToString(prev)
	return rep, nil
}
