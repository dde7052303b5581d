package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"time"

	"github.com/breachflow/breachflow/activities"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/workflows"
)

// The actions below are what the JSON API and the console both do: one code path per
// responder or partner action, whatever the door.

// Declare validates and stores a declaration and starts (or finds) its workflow.
func (s *Server) Declare(ctx context.Context, key string, d store.Declaration, actor string) (store.Incident, bool, error) {
	if len(d.Notice) > 0 {
		if _, err := activities.ParseDraft(d.Notice); err != nil {
			return store.Incident{}, false, &store.FieldError{Field: "notice", Message: err.Error()}
		}
	}
	inc, created, err := s.Store.CreateIncident(ctx, key, d, actor, time.Now())
	if err != nil {
		return inc, false, err
	}
	// Started on every call, so a declaration whose start failed is started by its retry.
	return inc, created, s.startIncident(ctx, inc)
}

// incidentIDRe is the form of every incident id (the schema checks the same).
var incidentIDRe = regexp.MustCompile(`^INC-[0-9A-Z-]{4,60}$`)

// incident reads the incident a path names. An id that cannot exist is not looked up:
// PostgreSQL would refuse one holding NUL or invalid UTF-8 with an error, not a miss.
func (s *Server) incident(ctx context.Context, id string) (store.Incident, error) {
	if !incidentIDRe.MatchString(id) {
		return store.Incident{}, store.ErrNotFound
	}
	return s.Store.GetIncident(ctx, id)
}

// Update sends a Temporal Update to an incident's workflow and returns the status after it.
func (s *Server) Update(ctx context.Context, id, name string, arg any) (workflows.Status, error) {
	var st workflows.Status
	if _, err := s.incident(ctx, id); err != nil {
		return st, err
	}
	h, err := s.Temporal.UpdateWorkflow(ctx, clientUpdate(id, name, arg))
	if err == nil {
		err = h.Get(ctx, &st)
	}
	return st, updateError(err)
}

// ProposeDraft checks a notice draft, keeps it and makes it the incident's current draft.
func (s *Server) ProposeDraft(ctx context.Context, id string, raw json.RawMessage, actor string) (workflows.Status, error) {
	if _, err := s.incident(ctx, id); err != nil {
		return workflows.Status{}, err
	}
	hash, err := activities.ProposeDraft(ctx, s.Store, id, raw, actor)
	if err != nil {
		return workflows.Status{}, &store.FieldError{Field: "notice", Message: err.Error()}
	}
	return s.Update(ctx, id, workflows.UpdateDraft, workflows.DraftInput{ContentHash: hash, Actor: actor})
}

// ErrOtherPartner is returned when a partner key touches another partner's review.
var ErrOtherPartner = errors.New("another partner's review")

// Decide records a partner's decision on review id for the caller k.
func (s *Server) Decide(ctx context.Context, k store.APIKey, id int64, confirm bool, hash, comment, actor string) (workflows.Status, error) {
	rv, err := s.Store.GetReview(ctx, id)
	if err != nil {
		return workflows.Status{}, err
	}
	if p := partnerOf(k); p != "" && p != rv.Partner {
		return workflows.Status{}, ErrOtherPartner
	}
	if rv.Status != "pending" {
		return workflows.Status{}, &conflictError{msg: "this review was already " + rv.Status}
	}
	return s.Update(ctx, rv.IncidentID, workflows.UpdatePartnerDecision, workflows.PartnerDecisionInput{
		Confirm: confirm, ContentHash: hash, Comment: comment, Actor: actor})
}

type conflictError struct{ msg string }

func (e *conflictError) Error() string { return e.msg }

// statusQueryTimeout bounds the wait for a workflow's status when no worker answers.
const statusQueryTimeout = 3 * time.Second

// Scope returns the incident's current scope version: the latest that matched tenants
// (nil before one did). It reads PostgreSQL only.
func (s *Server) Scope(ctx context.Context, id string) (*store.ScopeVersion, error) {
	inc, err := s.incident(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.latestScope(ctx, inc.ID)
}

func (s *Server) latestScope(ctx context.Context, id string) (*store.ScopeVersion, error) {
	versions, err := s.Store.ScopeVersions(ctx, id)
	if err != nil {
		return nil, err
	}
	// An empty version is refused by the workflow and kept only in the audit trail.
	for i := len(versions) - 1; i >= 0; i-- {
		if versions[i].Tenants > 0 {
			return &versions[i], nil
		}
	}
	return nil, nil
}

// View returns an incident as PostgreSQL holds it (ledger, latest scope version, passes,
// alerts) and, when its workflow answers, the workflow's status.
func (s *Server) View(ctx context.Context, id string) (IncidentView, error) {
	inc, err := s.incident(ctx, id)
	if err != nil {
		return IncidentView{}, err
	}
	v := IncidentView{Incident: inc}
	if v.Ledger, err = s.Store.Ledger(ctx, inc.ID, time.Now(), s.Timing.WithDefaults().ReminderAfter); err != nil {
		return v, err
	}
	if v.Scope, err = s.latestScope(ctx, inc.ID); err != nil {
		return v, err
	}
	if v.Passes, err = s.Store.Rounds(ctx, inc.ID); err != nil {
		return v, err
	}
	if v.Alerts, err = s.Store.Alerts(ctx, inc.ID, 20); err != nil {
		return v, err
	}
	// A query waits for a worker; without one the stored facts are answered alone.
	qctx, cancel := context.WithTimeout(ctx, statusQueryTimeout)
	defer cancel()
	if val, err := s.Temporal.QueryWorkflow(qctx, workflows.IncidentWorkflowID(inc.ID), "", workflows.QueryStatus); err == nil {
		var st workflows.Status
		if val.Get(&st) == nil {
			v.Status = &st
		}
	}
	return v, nil
}

// Reviews lists the pending reviews k may see, each with its draft.
func (s *Server) Reviews(ctx context.Context, k store.APIKey) ([]ReviewView, error) {
	list, err := s.Store.PendingReviews(ctx, partnerOf(k))
	if err != nil {
		return nil, err
	}
	out := make([]ReviewView, 0, len(list))
	for _, rv := range list {
		v := ReviewView{PartnerReview: rv}
		inc, err := s.Store.GetIncident(ctx, rv.IncidentID)
		if err == nil {
			v.Title = inc.Title
		}
		if d, derr := s.Store.GetDraft(ctx, rv.IncidentID, rv.ContentHash); derr == nil {
			v.Draft = d
		} else if err == nil && inc.NoticeHash == rv.ContentHash {
			v.Draft = inc.NoticeDraft // the draft that came with the declaration
		}
		out = append(out, v)
	}
	return out, nil
}

// ErrorFor maps an action's error to the status and body the API answers with; the
// console shows the same message.
func ErrorFor(err error) (int, Error) {
	var fe *store.FieldError
	var rejected *rejectedError
	var conflict *conflictError
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, ErrOtherPartner):
		return http.StatusNotFound, Error{Code: "not_found", Message: "no such resource"}
	case errors.As(err, &fe):
		return http.StatusBadRequest, Error{Code: "invalid", Message: fe.Message, Field: fe.Field}
	case errors.Is(err, store.ErrInvalidInput):
		return http.StatusBadRequest, Error{Code: "invalid", Message: err.Error()}
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge, Error{Code: "too_large", Message: "request body is too large"}
	case errors.Is(err, store.ErrConflict):
		return http.StatusConflict, Error{Code: "conflict", Message: err.Error()}
	case errors.As(err, &conflict):
		return http.StatusConflict, Error{Code: "conflict", Message: conflict.msg}
	case errors.As(err, &rejected):
		return http.StatusUnprocessableEntity, Error{Code: "rejected", Message: rejected.msg}
	}
	return http.StatusInternalServerError, Error{Code: "internal", Message: "internal error"}
}

// Allowed reports whether a key with role may use a route that admits roles (admin may
// use every route; "partner" admits any partner key).
func Allowed(role string, roles ...string) bool { return allowed(role, roles) }

// Responders are the roles that drive incidents.
var Responders = responders
