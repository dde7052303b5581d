// Package activities holds breachflow's side effects: Postgres reads and writes, SendGrid
// sends and the audit trail. Workflows call them through a nil *Activities method value.
package activities

import (
	"context"
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/breachflow/breachflow/internal/mail"
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
