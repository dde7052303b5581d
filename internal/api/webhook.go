package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/breachflow/breachflow/internal/mail"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/workflows"
)

// MaxWebhookBody bounds one Event Webhook post. SendGrid posts a batch when it reaches
// 768 KB (or every 30 seconds), so a batch is 768 KB plus the last event at most; an event
// is a few hundred bytes and at worst about 64 KB (10,000 bytes of custom args, escaped).
// Two MiB is more than twice any batch SendGrid sends, and the built-in sink (which batches
// by the same 768 KiB) stays under it; it is also what an unauthenticated post may make the
// server buffer before its signature is checked, instead of the 8 MiB it used to be.
const MaxWebhookBody = 2 << 20

// maxEventLead is how far after its arrival an event may be dated before its date is ignored.
const maxEventLead = 24 * time.Hour

// sendgridWebhook receives SendGrid's signed Event Webhook. The signature authenticates the
// post, so it takes no API key; a post that fails verification writes nothing. Events are
// applied idempotently: SendGrid posts at least once and retries anything but a 2xx.
// Before anything is read, a post is counted against its address's limit and refused when
// its declared length is over MaxWebhookBody; a body that does not declare it is read up to
// the cap and no further.
func (s *Server) sendgridWebhook(w http.ResponseWriter, r *http.Request) {
	if !s.webhookAllowed(w, r) {
		return
	}
	if s.Webhook == nil {
		writeError(w, http.StatusServiceUnavailable, Error{Code: "webhook_not_configured",
			Message: "the SendGrid Event Webhook verification key is not configured"})
		return
	}
	if r.ContentLength > MaxWebhookBody {
		s.fail(w, r, errTooLarge)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWebhookBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.fail(w, r, errTooLarge)
			return
		}
		writeError(w, http.StatusBadRequest, Error{Code: "invalid", Message: "could not read the request body"})
		return
	}
	now := time.Now()
	events, err := s.Webhook.Verify(r.Header.Get(mail.SignatureHeader), r.Header.Get(mail.TimestampHeader),
		body, now, mail.DefaultMaxEventAge)
	if err != nil {
		code, e := webhookRejection(err)
		s.Logger.Warn("sendgrid webhook rejected", zap.String("code", e.Code), zap.Int("status", code),
			zap.Int("bytes", len(body)), zap.Error(err))
		writeError(w, code, e)
		return
	}
	res, err := s.Store.ApplyDeliveryEvents(r.Context(), deliveryEvents(events, now))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.Logger.Info("sendgrid events applied",
		zap.Int("received", res.Received),
		zap.Int("applied", res.Applied),
		zap.Int("duplicates", res.Duplicates),
		zap.Int("unknown", res.Unknown),
		zap.Int("invalid", res.Invalid),
		zap.Int("notices_updated", res.Notices),
		zap.Int("contacts_undeliverable", res.Undeliverable),
		zap.Any("events", res.Events))
	s.signalReopened(r.Context(), res.Reopened)
	writeJSON(w, http.StatusOK, res)
}

// webhookRejection maps a verification error to its status and body. The messages name the
// check that failed and nothing of the post.
func webhookRejection(err error) (int, Error) {
	switch {
	case errors.Is(err, mail.ErrMissingSignature):
		return http.StatusUnauthorized, Error{Code: "unauthenticated", Message: "missing " + mail.SignatureHeader + " header", Field: mail.SignatureHeader}
	case errors.Is(err, mail.ErrMissingTimestamp):
		return http.StatusUnauthorized, Error{Code: "unauthenticated", Message: "missing " + mail.TimestampHeader + " header", Field: mail.TimestampHeader}
	case errors.Is(err, mail.ErrInvalidTimestamp):
		return http.StatusBadRequest, Error{Code: "invalid", Message: "timestamp header must be unix seconds", Field: mail.TimestampHeader}
	case errors.Is(err, mail.ErrStaleTimestamp):
		return http.StatusUnauthorized, Error{Code: "stale_signature", Message: "signed timestamp is too old", Field: mail.TimestampHeader}
	case errors.Is(err, mail.ErrFutureTimestamp):
		return http.StatusUnauthorized, Error{Code: "stale_signature", Message: "signed timestamp is in the future", Field: mail.TimestampHeader}
	case errors.Is(err, mail.ErrMalformedEvents):
		return http.StatusBadRequest, Error{Code: "invalid", Message: "body must be a JSON array of events"}
	default:
		return http.StatusUnauthorized, Error{Code: "invalid_signature", Message: "signature does not match body and timestamp", Field: mail.SignatureHeader}
	}
}

// deliveryEvents keeps what the outbox records of each event; the recipient address is left
// behind. A notice_id that is not a positive number becomes 0, which the store skips as unknown.
func deliveryEvents(events []mail.Event, received time.Time) []store.DeliveryEvent {
	out := make([]store.DeliveryEvent, len(events))
	for i, e := range events {
		notice, err := strconv.ParseInt(e.NoticeID, 10, 64)
		if err != nil {
			notice = 0
		}
		// An event SendGrid did not date, or dated beyond any clock skew, happened when it
		// arrived as far as anyone can tell.
		at := received
		if t := e.Time(); e.Timestamp > 0 && t.Before(received.Add(maxEventLead)) {
			at = t
		}
		out[i] = store.DeliveryEvent{
			SGEventID:   e.SGEventID,
			NoticeID:    notice,
			Event:       string(e.Event),
			OccurredAt:  at,
			SGMessageID: e.SGMessageID,
			Reason:      e.Reason,
		}
	}
	return out
}

// signalReopened tells each incident whose tenants a bounce or drop left owed again, once
// per batch: the workflow coalesces the signals into one pass to the next contacts. A
// signal that fails is logged, not retried: the workflow also reconciles the ledger on
// its own schedule, and SendGrid must not post the batch again.
func (s *Server) signalReopened(ctx context.Context, reopened map[string]int) {
	if s.Temporal == nil {
		return // a server without Temporal (the webhook alone): the workflows' own reconciliation finds them
	}
	for id, n := range reopened {
		if err := s.Temporal.SignalWorkflow(ctx, workflows.IncidentWorkflowID(id), "", workflows.SignalDeliveryFailures, n); err != nil {
			s.Logger.Warn("signal delivery failures", zap.String("incident_id", id), zap.Int("tenants", n), zap.Error(err))
		}
	}
}
