// Package activities holds breachflow's side effects: Postgres reads and writes, SendGrid
// sends and the audit trail. Workflows call them through a nil *Activities method value.
package activities

import (
	"context"
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/breachflow/breachflow/internal/evidence"
	"github.com/breachflow/breachflow/internal/mail"
	"github.com/breachflow/breachflow/internal/metrics"
	"github.com/breachflow/breachflow/internal/store"
)

// Activities holds the dependencies every activity needs.
type Activities struct {
	Store  *store.Store
	Mail   *mail.Sender
	Logger *zap.Logger
	Now    func() time.Time
	// PublicURL is the base of acknowledgement links.
	PublicURL string
	// AckSecret derives acknowledgement tokens.
	AckSecret []byte
	// ResponderEmails receive deadline alerts and partner escalations.
	ResponderEmails []string
	// InDoubtGrace is how long notices whose send got no recorded answer wait for their
	// delivery events before being sent again (zero: DefaultInDoubtGrace).
	InDoubtGrace time.Duration
	// Metrics counts what SendPage does (nil: nothing is counted).
	Metrics *metrics.Worker
	// AuditKeys sign the audit chain's head into a checkpoint when an incident closes
	// (nil, or without a signing key: none is taken).
	AuditKeys *evidence.Keys

	cache renderCache
}

// Error types the retry policies and workflows match on.
const (
	ErrTypeInvalidInput = "InvalidInput"
	ErrTypeNotFound     = "NotFound"
)

// AuditInput is one audit event raised by a workflow.
type AuditInput struct {
	IncidentID string         `json:"incident_id"`
	Actor      string         `json:"actor"`
	Action     string         `json:"action"`
	Detail     map[string]any `json:"detail,omitempty"`
}

// Audit appends an event to the hash-chained audit log.
func (a *Activities) Audit(ctx context.Context, in AuditInput) (int64, error) {
	if in.Actor == "" || in.Action == "" {
		return 0, temporal.NewNonRetryableApplicationError("audit event needs an actor and an action", ErrTypeInvalidInput, nil)
	}
	seq, err := a.Store.AppendAudit(ctx, store.AuditEntry{IncidentID: in.IncidentID, Actor: in.Actor, Action: in.Action, Detail: in.Detail})
	return seq, classify(err)
}

// classify turns domain errors into Temporal application errors with stable types,
// leaving others (database hiccups) to the retry policy.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrInvalidInput):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidInput, err)
	case errors.Is(err, store.ErrNotFound):
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeNotFound, err)
	}
	return err
}

// pageOutcome names how a SendPage attempt ended, for its metrics.
func pageOutcome(res SendPageResult, err error) metrics.PageOutcome {
	var appErr *temporal.ApplicationError
	switch {
	case err == nil && res.Sent == 0:
		return metrics.PageNothingToSend
	case err == nil:
		return metrics.PageSent
	case errors.As(err, &appErr) && appErr.Type() == ErrTypeInDoubt:
		return metrics.PageInDoubt
	case errors.As(err, &appErr) && appErr.NonRetryable():
		return metrics.PageRefused
	}
	return metrics.PageTemporaryError
}

// checkpointClose signs the audit chain's head, with the digest of the incident's rows,
// once the incident is closed. A chain that does not check out alerts the responders
// instead of failing the close: the incident is closed either way, and no retry mends
// the chain.
func (a *Activities) checkpointClose(ctx context.Context, incidentID string) error {
	cp, taken, err := evidence.Checkpoint(ctx, a.Store, a.AuditKeys, incidentID, store.CheckpointClose, a.now())
	switch {
	case errors.Is(err, store.ErrChainBroken):
		a.Logger.Error("audit chain broken: no checkpoint at close", zap.String("incident_id", incidentID), zap.Error(err))
		if aerr := a.AlertResponders(ctx, AlertInput{IncidentID: incidentID, Kind: "audit_chain_broken",
			Message: "The audit trail does not check out, so no checkpoint was signed at close: " + err.Error() +
				". Run `breachflow audit verify`."}); aerr != nil {
			a.Logger.Error("alert about the audit chain", zap.String("incident_id", incidentID), zap.Error(aerr))
		}
		return nil
	case err != nil:
		return err // a database hiccup: the close is retried, and is idempotent
	case taken:
		a.Logger.Info("audit checkpoint at close", zap.String("incident_id", incidentID), zap.Int64("checkpoint", cp.ID), zap.Int64("seq", cp.Seq))
	}
	return nil
}
