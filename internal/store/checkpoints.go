package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"time"

	"github.com/jackc/pgx/v5"
)

// Checkpoint reasons: what made a checkpoint be taken.
const (
	CheckpointPeriodic = "periodic" // the server's interval
	CheckpointClose    = "close"    // an incident closed
	CheckpointVerify   = "verify"   // a verification found the chain intact
	CheckpointExport   = "export"   // an evidence pack was exported
)

// Checkpoint is a signed statement of the audit chain's head: row Seq has hash Hash. An
// incident checkpoint also signs the digest of that incident's rows up to Seq (see
// IncidentDigest), so its audit excerpt can be proven without the other rows.
type Checkpoint struct {
	ID             int64     `json:"id"`
	Seq            int64     `json:"seq"`
	Hash           string    `json:"hash"` // hex
	IncidentID     string    `json:"incident_id,omitempty"`
	IncidentRows   int64     `json:"incident_rows,omitempty"`
	IncidentDigest string    `json:"incident_digest,omitempty"` // hex
	Reason         string    `json:"reason"`
	TakenAt        time.Time `json:"taken_at"`
	KeyID          string    `json:"key_id"`
	Signature      string    `json:"signature"` // base64 Ed25519 signature
}

// CheckpointSigner signs new checkpoints and checks the signatures of earlier ones (its
// own key's and those of keys it still trusts).
type CheckpointSigner interface {
	SignCheckpoint(c *Checkpoint) error
	VerifyCheckpoint(c Checkpoint) error
}

// ErrChainBroken is matched (errors.Is) by a *ChainError.
var ErrChainBroken = errors.New("audit chain broken")

// ChainError refuses a checkpoint: the chain since the newest checkpoint does not check
// out, or that checkpoint's signature does not verify. Signing the head then would vouch
// for a rewritten chain.
type ChainError struct{ Report AuditReport }

func (e *ChainError) Error() string {
	return fmt.Sprintf("%v at row %d: %s", ErrChainBroken, e.Report.BadSeq, e.Report.Problem)
}

// Is makes errors.Is(err, ErrChainBroken) hold.
func (e *ChainError) Is(target error) bool { return target == ErrChainBroken }

// IncidentDigest accumulates the digest an incident checkpoint signs: SHA-256 over the
// incident's audit rows in order, each written as its sequence number (8 bytes,
// big-endian) followed by its 32-byte hash.
type IncidentDigest struct {
	h    hash.Hash
	rows int64
}

// NewIncidentDigest starts an empty digest.
func NewIncidentDigest() *IncidentDigest { return &IncidentDigest{h: sha256.New()} }

// Add adds the next row.
func (d *IncidentDigest) Add(seq int64, rowHash []byte) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(seq))
	d.h.Write(b[:])
	d.h.Write(rowHash)
	d.rows++
}

// Rows counts the rows added.
func (d *IncidentDigest) Rows() int64 { return d.rows }

// Sum returns the digest in hex.
func (d *IncidentDigest) Sum() string { return hex.EncodeToString(d.h.Sum(nil)) }

// checkpointLock serialises checkpoint takers (the chain's own lock is 7251309).
const checkpointLock = 7251310

const checkpointCols = `id, seq, hash, coalesce(incident_id, ''), incident_rows, incident_digest, reason, taken_at, key_id, signature`

// checkpointRow is a checkpoint as scanned.
type checkpointRow struct {
	id, seq, incidentRows     int64
	hash, incidentDigest      []byte
	incidentID, reason, keyID string
	takenAt                   time.Time
	signature                 []byte
}

func (r checkpointRow) checkpoint() Checkpoint {
	c := Checkpoint{ID: r.id, Seq: r.seq, Hash: hex.EncodeToString(r.hash), IncidentID: r.incidentID, IncidentRows: r.incidentRows,
		Reason: r.reason, TakenAt: r.takenAt.UTC(), KeyID: r.keyID, Signature: base64.StdEncoding.EncodeToString(r.signature)}
	if r.incidentDigest != nil {
		c.IncidentDigest = hex.EncodeToString(r.incidentDigest)
	}
	return c
}

func scanCheckpoint(row pgx.Row) (Checkpoint, error) {
	var r checkpointRow
	err := row.Scan(&r.id, &r.seq, &r.hash, &r.incidentID, &r.incidentRows, &r.incidentDigest, &r.reason, &r.takenAt, &r.keyID, &r.signature)
	return r.checkpoint(), err
}

func collectCheckpoints(rows pgx.Rows, err error) ([]Checkpoint, error) {
	if err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Checkpoint, error) { return scanCheckpoint(row) })
	if err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	return out, nil
}

// TakeCheckpoint signs the chain's current head into a checkpoint, for incidentID too
// when it is not empty (with the digest of its rows). It first checks the chain from the
// newest checkpoint to the head, and that checkpoint's signature, and refuses with a
// *ChainError when either fails. A checkpoint without an incident is not taken again
// when the head has not moved since the newest one, nor an incident's since its newest;
// taken reports whether one was written (the newest is returned otherwise).
func (s *Store) TakeCheckpoint(ctx context.Context, signer CheckpointSigner, incidentID, reason string, at time.Time) (cp Checkpoint, taken bool, err error) {
	err = s.WithTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, checkpointLock); err != nil {
			return fmt.Errorf("lock checkpoints: %w", err)
		}
		var headSeq int64
		var headHash []byte
		err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&headSeq, &headHash)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // an empty chain: nothing to vouch for
		}
		if err != nil {
			return fmt.Errorf("read audit head: %w", err)
		}
		last, err := scanCheckpoint(tx.QueryRow(ctx, `SELECT `+checkpointCols+` FROM audit_checkpoints ORDER BY seq DESC, id DESC LIMIT 1`))
		hasLast := err == nil
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("read newest checkpoint: %w", err)
		}
		if incidentID == "" && hasLast && last.Seq == headSeq {
			cp = last
			return nil
		}
		if incidentID != "" {
			mine, err := scanCheckpoint(tx.QueryRow(ctx, `SELECT `+checkpointCols+` FROM audit_checkpoints WHERE incident_id = $1
				ORDER BY seq DESC, id DESC LIMIT 1`, incidentID))
			if err == nil && mine.Seq == headSeq {
				cp = mine
				return nil
			}
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("read incident checkpoint: %w", err)
			}
		}
		from := int64(1)
		if hasLast && last.Seq > headSeq {
			return &ChainError{Report: AuditReport{BadSeq: last.Seq, BadCheckpoint: last.ID,
				Problem: fmt.Sprintf("checkpoint #%d names row %d, beyond the chain's last row %d: rows were removed", last.ID, last.Seq, headSeq)}}
		}
		if hasLast {
			if err := signer.VerifyCheckpoint(last); err != nil {
				return &ChainError{Report: AuditReport{BadSeq: last.Seq, BadCheckpoint: last.ID,
					Problem: fmt.Sprintf("newest checkpoint #%d does not verify: %v", last.ID, err)}}
			}
			from = last.Seq
		}
		if err := checkSegment(ctx, tx, from, headSeq, last, hasLast); err != nil {
			return err
		}
		cp = Checkpoint{Seq: headSeq, Hash: hex.EncodeToString(headHash), IncidentID: incidentID, Reason: reason,
			TakenAt: at.UTC().Truncate(time.Microsecond)} // as PostgreSQL keeps it, so the signed time reads back the same
		var digest []byte
		if incidentID != "" {
			d, err := digestIncident(ctx, tx, incidentID, headSeq)
			if err != nil {
				return err
			}
			cp.IncidentRows, cp.IncidentDigest = d.Rows(), d.Sum()
			digest, _ = hex.DecodeString(cp.IncidentDigest)
		}
		if err := signer.SignCheckpoint(&cp); err != nil {
			return fmt.Errorf("sign checkpoint: %w", err)
		}
		sig, err := base64.StdEncoding.DecodeString(cp.Signature)
		if err != nil {
			return fmt.Errorf("sign checkpoint: %w", err)
		}
		if err := tx.QueryRow(ctx, `INSERT INTO audit_checkpoints (seq, hash, incident_id, incident_rows, incident_digest, reason, taken_at, key_id, signature)
			VALUES ($1, $2, NULLIF($3, ''), $4, $5, $6, $7, $8, $9) RETURNING id`,
			cp.Seq, headHash, cp.IncidentID, cp.IncidentRows, digest, cp.Reason, cp.TakenAt, cp.KeyID, sig).Scan(&cp.ID); err != nil {
			return fmt.Errorf("store checkpoint: %w", err)
		}
		taken = true
		return nil
	})
	return cp, taken, err
}

// checkSegment checks the chain from row from (the newest checkpoint's, whose hash it
// must still have) to row to.
func checkSegment(ctx context.Context, tx pgx.Tx, from, to int64, last Checkpoint, hasLast bool) error {
	rows, err := tx.Query(ctx, `SELECT seq, prev_hash, hash, audit_canonical(seq, at, incident_id, actor, action, detail)
		FROM audit_log WHERE seq BETWEEN $1 AND $2 ORDER BY seq`, from, to)
	if err != nil {
		return fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	w := chainWalk{rep: AuditReport{OK: true}, want: from}
	if !hasLast {
		w.prev = genesis
	}
	for rows.Next() {
		var seq int64
		var prevHash, hash, canonical []byte
		if err := rows.Scan(&seq, &prevHash, &hash, &canonical); err != nil {
			return fmt.Errorf("scan audit row: %w", err)
		}
		if hasLast && seq == last.Seq && !sameHash(hash, last.Hash) {
			return &ChainError{Report: AuditReport{BadSeq: seq, BadCheckpoint: last.ID,
				Problem: fmt.Sprintf("row %d's hash differs from the one checkpoint #%d signed: the chain was rewritten", seq, last.ID)}}
		}
		if !w.row(seq, prevHash, hash, canonical) {
			return &ChainError{Report: w.rep}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read audit log: %w", err)
	}
	if w.want != to+1 {
		return &ChainError{Report: AuditReport{BadSeq: w.want, Problem: fmt.Sprintf("row %d is missing", w.want)}}
	}
	return nil
}

// digestIncident computes the digest of incident id's rows up to row upTo.
func digestIncident(ctx context.Context, q Querier, id string, upTo int64) (*IncidentDigest, error) {
	rows, err := q.Query(ctx, `SELECT seq, hash FROM audit_log WHERE incident_id = $1 AND seq <= $2 ORDER BY seq`, id, upTo)
	if err != nil {
		return nil, fmt.Errorf("read incident audit rows: %w", err)
	}
	defer rows.Close()
	d := NewIncidentDigest()
	for rows.Next() {
		var seq int64
		var h []byte
		if err := rows.Scan(&seq, &h); err != nil {
			return nil, err
		}
		d.Add(seq, h)
	}
	return d, rows.Err()
}

// Checkpoints returns up to limit checkpoints with an id above after, oldest first.
func (s *Store) Checkpoints(ctx context.Context, after int64, limit int) ([]Checkpoint, error) {
	return collectCheckpoints(s.pool.Query(ctx, `SELECT `+checkpointCols+` FROM audit_checkpoints WHERE id > $1 ORDER BY id LIMIT $2`, after, limit))
}

// LatestCheckpoints returns the newest limit checkpoints, newest first.
func (s *Store) LatestCheckpoints(ctx context.Context, limit int) ([]Checkpoint, error) {
	return collectCheckpoints(s.pool.Query(ctx, `SELECT `+checkpointCols+` FROM audit_checkpoints ORDER BY id DESC LIMIT $1`, limit))
}

// IncidentCheckpoints returns incident id's checkpoints through q, oldest first.
func IncidentCheckpoints(ctx context.Context, q Querier, id string) ([]Checkpoint, error) {
	return collectCheckpoints(q.Query(ctx, `SELECT `+checkpointCols+` FROM audit_checkpoints WHERE incident_id = $1 ORDER BY seq, id`, id))
}

// sameHash reports whether a row hash equals a checkpoint's hex hash.
func sameHash(h []byte, hexHash string) bool {
	want, err := hex.DecodeString(hexHash)
	return err == nil && bytes.Equal(h, want)
}
