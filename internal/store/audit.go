package store

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"
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
	Rows     int64  `json:"rows"`     // rows checked
	HeadSeq  int64  `json:"head_seq"` // sequence number of the last row
	Head     string `json:"head"`     // hash of the last row; publish it to detect truncation of the tail
	OK       bool   `json:"ok"`       // every row (and every checkpoint, when checked) checked out
	BadSeq   int64  `json:"bad_seq"`  // the first row that does not, when !OK
	Problem  string `json:"problem"`  // what is wrong with it
	Expected int64  `json:"-"`        // the sequence number expected at BadSeq

	// Checkpoints counts the checkpoints checked against the chain (0 when none were).
	Checkpoints int64 `json:"checkpoints"`
	// BadCheckpoint is the id of the checkpoint the chain disagrees with, or whose
	// signature does not verify, when that is the problem.
	BadCheckpoint int64 `json:"bad_checkpoint,omitempty"`
	// SuspectFrom is, for a rewrite a checkpoint exposed, the first row that may have been
	// rewritten: the one after the newest checkpoint that still matched (rows
	// SuspectFrom…BadSeq hold the change).
	SuspectFrom int64 `json:"suspect_from,omitempty"`
	// LastCheckpoint is the newest checkpoint that matched the chain.
	LastCheckpoint *Checkpoint `json:"last_checkpoint,omitempty"`
	// Uncovered counts the rows after LastCheckpoint (every row when there is none): a
	// rewrite of those rows alone is not detectable yet.
	Uncovered int64 `json:"uncovered"`
}

var genesis = make([]byte, sha256.Size)

// chainWalk checks rows of the audit chain one after the other.
type chainWalk struct {
	rep  AuditReport
	prev []byte // the previous row's hash; nil at the start of a segment (no link to check)
	want int64
}

// row checks one row and reports whether it checked out; the first problem stays in w.rep.
func (w *chainWalk) row(seq int64, prevHash, hash, canonical []byte) bool {
	w.rep.Rows++
	sum := sha256.New()
	sum.Write(prevHash)
	sum.Write(canonical)
	switch {
	case seq != w.want:
		w.rep.OK, w.rep.BadSeq, w.rep.Expected = false, seq, w.want
		w.rep.Problem = fmt.Sprintf("row %d is missing (next present row is %d)", w.want, seq)
	case w.prev != nil && !bytes.Equal(prevHash, w.prev):
		w.rep.OK, w.rep.BadSeq = false, seq
		w.rep.Problem = "prev_hash does not match the previous row's hash"
	case !bytes.Equal(sum.Sum(nil), hash):
		w.rep.OK, w.rep.BadSeq = false, seq
		w.rep.Problem = "row content does not match its hash (edited)"
	}
	if !w.rep.OK {
		return false
	}
	w.prev = hash
	w.rep.HeadSeq = seq
	w.want++
	return true
}

// VerifyAudit recomputes every hash of the audit chain in order and reports the first row
// that was edited, removed or inserted out of turn. It does not read the checkpoints: a
// rewrite that recomputed every later hash passes it (VerifyAuditCheckpoints does not).
func (s *Store) VerifyAudit(ctx context.Context) (AuditReport, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, prev_hash, hash,
			audit_canonical(seq, at, incident_id, actor, action, detail)
		FROM audit_log ORDER BY seq`)
	if err != nil {
		return AuditReport{}, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	w := chainWalk{rep: AuditReport{OK: true}, prev: genesis, want: 1}
	for rows.Next() {
		var seq int64
		var prevHash, hash, canonical []byte
		if err := rows.Scan(&seq, &prevHash, &hash, &canonical); err != nil {
			return AuditReport{}, fmt.Errorf("scan audit row: %w", err)
		}
		if !w.row(seq, prevHash, hash, canonical) {
			return w.rep, nil
		}
	}
	if err := rows.Err(); err != nil {
		return AuditReport{}, fmt.Errorf("read audit log: %w", err)
	}
	w.rep.Head = hex.EncodeToString(w.prev)
	w.rep.Uncovered = w.rep.Rows
	return w.rep, nil
}

// CheckpointCheck checks a checkpoint's signature, returning why it does not verify.
type CheckpointCheck func(Checkpoint) error

// VerifyAuditCheckpoints verifies the chain as VerifyAudit does and, in the same pass
// and snapshot, every stored checkpoint and every published one (copies kept outside the
// database, which deleting the stored ones cannot remove) against it: each must verify
// with check (nil checks no signature) and name a row whose hash is the one it signed. A
// row edited with every later hash recomputed passes the plain chain check but not the
// first checkpoint after it: the report names that checkpoint, the row it names and the
// first row that may have changed.
func (s *Store) VerifyAuditCheckpoints(ctx context.Context, check CheckpointCheck, published []Checkpoint) (AuditReport, error) {
	published = slices.Clone(published)
	slices.SortStableFunc(published, func(a, b Checkpoint) int { return cmp.Compare(a.Seq, b.Seq) })
	// One statement, so one snapshot: every checkpoint it sees names rows it sees too.
	rows, err := s.pool.Query(ctx, `SELECT a.seq, a.prev_hash, a.hash,
			audit_canonical(a.seq, a.at, a.incident_id, a.actor, a.action, a.detail),
			c.id, coalesce(c.seq, 0), c.hash, coalesce(c.incident_id, ''), coalesce(c.incident_rows, 0), c.incident_digest,
			coalesce(c.reason, ''), coalesce(c.taken_at, 'epoch'), coalesce(c.key_id, ''), c.signature
		FROM audit_log a FULL JOIN audit_checkpoints c ON c.seq = a.seq
		ORDER BY coalesce(a.seq, c.seq), c.id`)
	if err != nil {
		return AuditReport{}, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	w := chainWalk{rep: AuditReport{OK: true}, prev: genesis, want: 1}
	var last int64 // the last chain row walked
	var lastGood *Checkpoint
	// checkAgainst checks checkpoint cp (a published copy when pub) against the row it
	// names (hash nil: not in the chain).
	checkAgainst := func(cp Checkpoint, hash []byte, pub bool) bool {
		w.rep.Checkpoints++
		fail := func(problem string) bool {
			w.rep.OK, w.rep.BadSeq, w.rep.BadCheckpoint, w.rep.Problem = false, cp.Seq, cp.ID, problem
			return false
		}
		name := fmt.Sprintf("checkpoint #%d", cp.ID)
		if pub {
			name = "published " + name
		}
		if check != nil {
			if err := check(cp); err != nil {
				return fail(fmt.Sprintf("%s (row %d, taken %s): %v", name, cp.Seq, cp.TakenAt.UTC().Format(time.RFC3339), err))
			}
		}
		if hash == nil {
			return fail(fmt.Sprintf("%s (taken %s) names row %d, which is not in the chain: rows were removed",
				name, cp.TakenAt.UTC().Format(time.RFC3339), cp.Seq))
		}
		if !sameHash(hash, cp.Hash) {
			w.rep.SuspectFrom = 1
			if lastGood != nil {
				w.rep.SuspectFrom = lastGood.Seq + 1
			}
			return fail(fmt.Sprintf("row %d's hash differs from the one %s signed at %s: the chain was rewritten "+
				"(every later hash recomputed) in rows %d to %d", cp.Seq, name, cp.TakenAt.UTC().Format(time.RFC3339), w.rep.SuspectFrom, cp.Seq))
		}
		if lastGood == nil || cp.Seq >= lastGood.Seq {
			lastGood = &cp
		}
		return true
	}
	// flushPublished checks the published checkpoints of rows before seq, which the chain
	// does not hold.
	flushPublished := func(seq int64) bool {
		for len(published) > 0 && published[0].Seq < seq {
			if !checkAgainst(published[0], nil, true) {
				return false
			}
			published = published[1:]
		}
		return true
	}
	for rows.Next() {
		var seq *int64
		var prevHash, hash, canonical []byte
		var cid *int64
		var c checkpointRow
		if err := rows.Scan(&seq, &prevHash, &hash, &canonical, &cid, &c.seq, &c.hash, &c.incidentID, &c.incidentRows,
			&c.incidentDigest, &c.reason, &c.takenAt, &c.keyID, &c.signature); err != nil {
			return AuditReport{}, fmt.Errorf("scan audit row: %w", err)
		}
		if seq != nil && *seq != last {
			if !w.row(*seq, prevHash, hash, canonical) || !flushPublished(*seq) {
				return w.rep, nil
			}
			for len(published) > 0 && published[0].Seq == *seq {
				if !checkAgainst(published[0], hash, true) {
					return w.rep, nil
				}
				published = published[1:]
			}
			last = *seq
		}
		if cid == nil {
			continue
		}
		c.id = *cid
		if seq == nil {
			hash = nil
		}
		if !checkAgainst(c.checkpoint(), hash, false) {
			return w.rep, nil
		}
	}
	if err := rows.Err(); err != nil {
		return AuditReport{}, fmt.Errorf("read audit log: %w", err)
	}
	if !flushPublished(math.MaxInt64) {
		return w.rep, nil
	}
	w.rep.Head = hex.EncodeToString(w.prev)
	w.rep.LastCheckpoint = lastGood
	w.rep.Uncovered = w.rep.Rows
	if lastGood != nil {
		w.rep.Uncovered = w.rep.HeadSeq - lastGood.Seq
	}
	return w.rep, nil
}
