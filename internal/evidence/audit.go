package evidence

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/breachflow/breachflow/internal/store"
)

// Verification is the outcome of verifying the audit chain against its checkpoints.
type Verification struct {
	store.AuditReport
	// Signed is true when checkpoint signatures were checked against trusted keys.
	Signed bool `json:"signed"`
	// TrustedKeys are the ids of the keys whose signatures were accepted.
	TrustedKeys []string `json:"trusted_keys,omitempty"`
	// Warnings say what this verification could not rule out.
	Warnings []string `json:"warnings,omitempty"`
	// Checkpoint is the checkpoint of the verified head (taken by this verification, or
	// already there), when the verifier can sign.
	Checkpoint *store.Checkpoint `json:"checkpoint,omitempty"`
	// CheckpointError says why none was taken although the chain checked out.
	CheckpointError string `json:"checkpoint_error,omitempty"`
}

// VerifyAudit verifies the chain and every checkpoint against it (the stored ones and the
// published copies given), checking signatures with keys' trusted keys, and says loudly
// what it could not check. When the chain checks out and keys can sign, the verified head
// is signed into a new checkpoint.
func VerifyAudit(ctx context.Context, st *store.Store, keys *Keys, published []store.Checkpoint, now time.Time) (Verification, error) {
	var check store.CheckpointCheck
	if keys.CanVerify() {
		check = keys.VerifyCheckpoint
	}
	rep, err := st.VerifyAuditCheckpoints(ctx, check, published)
	if err != nil {
		return Verification{}, err
	}
	v := Verification{AuditReport: rep, Signed: check != nil, TrustedKeys: keys.TrustedKeyIDs()}
	if !v.Signed {
		v.Warnings = append(v.Warnings, "NO AUDIT PUBLIC KEY CONFIGURED (BREACHFLOW_AUDIT_PUBLIC_KEY or BREACHFLOW_AUDIT_SIGNING_KEY): "+
			"checkpoint signatures were not checked, so a rewrite of the chain that also rewrote its checkpoints would pass")
	}
	if !keys.CanSign() {
		v.Warnings = append(v.Warnings, "no audit signing key configured here (BREACHFLOW_AUDIT_SIGNING_KEY): this process takes no checkpoints")
	}
	if !rep.OK {
		return v, nil
	}
	switch {
	case rep.Checkpoints == 0 && rep.Rows > 0:
		v.Warnings = append(v.Warnings, "NO CHECKPOINT: a row edited with every later hash recomputed cannot be detected; "+
			"configure BREACHFLOW_AUDIT_SIGNING_KEY so that checkpoints are signed")
	case rep.Uncovered > 0 && rep.LastCheckpoint != nil:
		v.Warnings = append(v.Warnings, fmt.Sprintf("%d rows after the newest checkpoint (#%d at row %d, taken %s) are not covered by a checkpoint yet",
			rep.Uncovered, rep.LastCheckpoint.ID, rep.LastCheckpoint.Seq, rep.LastCheckpoint.TakenAt.Format(time.RFC3339)))
	}
	if keys.CanSign() && rep.Rows > 0 {
		cp, _, err := st.TakeCheckpoint(ctx, keys, "", store.CheckpointVerify, now)
		switch {
		case err == nil:
			v.Checkpoint = &cp
		case errors.Is(err, store.ErrChainBroken):
			// Rows appended since the walk do not check out: verify again to see them.
			v.CheckpointError = err.Error()
		default:
			return v, err
		}
	}
	return v, nil
}

// Checkpointer signs the chain's head into a checkpoint at an interval, when it moved.
type Checkpointer struct {
	Store  *store.Store
	Keys   *Keys
	Logger *zap.Logger
	// Every is the interval (zero: DefaultCheckpointInterval).
	Every time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// DefaultCheckpointInterval is how often the head is checkpointed when it moved.
const DefaultCheckpointInterval = 10 * time.Minute

// Run checkpoints until ctx ends; without a signing key it logs once and waits for ctx.
// A chain that does not check out is logged as an error at every interval: nothing is
// signed over it.
func (c *Checkpointer) Run(ctx context.Context) error {
	log := c.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if !c.Keys.CanSign() {
		log.Warn("audit checkpoints are not signed: no BREACHFLOW_AUDIT_SIGNING_KEY configured")
		<-ctx.Done()
		return nil
	}
	every := c.Every
	if every <= 0 {
		every = DefaultCheckpointInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		c.once(ctx, log)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// once takes one periodic checkpoint, logging the outcome.
func (c *Checkpointer) once(ctx context.Context, log *zap.Logger) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	cp, taken, err := c.Store.TakeCheckpoint(ctx, c.Keys, "", store.CheckpointPeriodic, now())
	switch {
	case err != nil && ctx.Err() != nil:
	case errors.Is(err, store.ErrChainBroken):
		log.Error("AUDIT CHAIN BROKEN: checkpoint refused", zap.Error(err))
	case err != nil:
		log.Warn("audit checkpoint failed", zap.Error(err))
	case taken:
		log.Debug("audit checkpoint", zap.Int64("checkpoint", cp.ID), zap.Int64("seq", cp.Seq))
	}
}

// Checkpoint signs the head into a checkpoint for incidentID (with the digest of its
// rows) when keys can sign; taken is false when it cannot or the incident's newest
// checkpoint is already at the head.
func Checkpoint(ctx context.Context, st *store.Store, keys *Keys, incidentID, reason string, now time.Time) (store.Checkpoint, bool, error) {
	if !keys.CanSign() {
		return store.Checkpoint{}, false, nil
	}
	return st.TakeCheckpoint(ctx, keys, incidentID, reason, now)
}
