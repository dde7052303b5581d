package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/breachflow/breachflow/activities"
	"github.com/breachflow/breachflow/internal/authz"
	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/workflows"
)

// The actions below are what the JSON API and the console both do: one code path per
// responder or partner action, whatever the door.

// Declare validates and stores a declaration by k and starts (or finds) its workflow.
func (s *Server) Declare(ctx context.Context, k store.APIKey, key string, d store.Declaration) (store.Incident, bool, error) {
	if err := authz.Check(k.Roles, authz.IncidentDeclare); err != nil {
		return store.Incident{}, false, err
	}
	if len(d.Notice) > 0 {
		// The declared notice takes the declaration's facts and the configured sender.
		nd, err := activities.PrepareDraft(d.Notice, activities.Declared{Title: d.Title, AwareAt: d.AwareAt.UTC().Truncate(time.Microsecond),
			DataCategories: d.DataCategories}, notice.Phase{}, store.PhaseState{}, s.draftOptions(false, ""))
		if err != nil {
			return store.Incident{}, false, err
		}
		if d.Notice, err = json.Marshal(nd); err != nil {
			return store.Incident{}, false, err
		}
	}
	inc, created, err := s.Store.CreateIncident(ctx, key, d, k.Actor(), time.Now())
	if err != nil {
		return inc, false, err
	}
	// Started on every call, so a declaration whose start failed is started by its retry.
	return inc, created, s.startIncident(ctx, inc)
}

// draftOptions are how drafts are completed here: the configured sender, links only to
// the allowed hosts, and for a follow-up the next phase of kind.
func (s *Server) draftOptions(next bool, kind string) activities.DraftOptions {
	return activities.DraftOptions{NextPhase: next, Kind: kind, Sender: s.Sender,
		Check: func(d notice.Draft) error { return notice.CheckLinks(d, s.linkHosts()) }}
}

// linkHosts are the hosts a custom template may link to: the configured ones and the
// host of the public URL (where acknowledgement links point).
func (s *Server) linkHosts() []string {
	hosts := slices.Clone(s.URLHosts)
	if u, err := url.Parse(s.PublicURL); err == nil && u.Hostname() != "" {
		hosts = append(hosts, strings.ToLower(u.Hostname()))
	}
	return hosts
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

// Do takes one incident action for k: the input's type names the action, the key's
// roles are checked for it, and the actor is the key's person, whatever the input said.
func (s *Server) Do(ctx context.Context, k store.APIKey, id string, in any) (workflows.Status, error) {
	actor := k.Actor()
	var name string
	var action authz.Action
	switch v := in.(type) {
	case workflows.AssessInput:
		v.Actor = actor
		in, name, action = v, workflows.UpdateAssess, authz.IncidentAssess
	case workflows.ScopeInput:
		v.Actor = actor
		in, name, action = v, workflows.UpdateScope, authz.IncidentScope
	case workflows.ApproveInput:
		v.Actor = actor
		in, name, action = v, workflows.UpdateApprove, authz.IncidentApprove
	case workflows.OverrideInput:
		v.Actor = actor
		in, name, action = v, workflows.UpdateOverride, authz.IncidentOverride
	case workflows.RetryInput:
		v.Actor = actor
		in, name, action = v, workflows.UpdateRetry, authz.IncidentRetry
	case workflows.CloseInput:
		v.Actor = actor
		in, name, action = v, workflows.UpdateClose, authz.IncidentClose
	default:
		return workflows.Status{}, authz.ErrUnknownAction
	}
	if err := authz.Check(k.Roles, action); err != nil {
		return workflows.Status{}, err
	}
	return s.update(ctx, id, name, in)
}

// update sends a Temporal Update to an incident's workflow and returns the status after it.
func (s *Server) update(ctx context.Context, id, name string, arg any) (workflows.Status, error) {
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

// ProposeDraft checks a notice draft by k, keeps it and makes it the incident's current
// draft, for the current phase.
func (s *Server) ProposeDraft(ctx context.Context, k store.APIKey, id string, raw json.RawMessage) (workflows.Status, error) {
	return s.propose(ctx, k, id, raw, false, "", authz.IncidentDraft)
}

// ProposeFollowup checks k's draft of the incident's next notice phase (kind
// notice.PhaseUpdate or notice.PhaseFinal), keeps it and makes it the current draft; it
// is sent once two people approve it.
func (s *Server) ProposeFollowup(ctx context.Context, k store.APIKey, id, kind string, raw json.RawMessage) (workflows.Status, error) {
	if err := authz.Check(k.Roles, authz.IncidentFollowup); err != nil {
		return workflows.Status{}, err
	}
	if len(raw) == 0 || string(raw) == "null" {
		return workflows.Status{}, &store.FieldError{Field: "notice", Message: "required: a follow-up is the next phase's notice draft (what is new, and every element known so far)"}
	}
	return s.propose(ctx, k, id, raw, true, kind, authz.IncidentFollowup)
}

func (s *Server) propose(ctx context.Context, k store.APIKey, id string, raw json.RawMessage, next bool, kind string, action authz.Action) (workflows.Status, error) {
	if err := authz.Check(k.Roles, action); err != nil {
		return workflows.Status{}, err
	}
	inc, err := s.incident(ctx, id)
	if err != nil {
		return workflows.Status{}, err
	}
	if inc.Stage == store.StageClosed {
		// Refused before anything is stored: a closed incident takes no more drafts.
		return workflows.Status{}, errClosed
	}
	p, err := activities.ProposeDraft(ctx, s.Store, id, raw, k.Actor(), s.draftOptions(next, kind))
	if err != nil {
		return workflows.Status{}, err
	}
	return s.update(ctx, id, workflows.UpdateDraft, workflows.DraftInput{ContentHash: p.Hash, Actor: k.Actor(),
		Phase: p.Phase.Number, Final: p.Phase.Kind == notice.PhaseFinal})
}

// ImportImpact records, for k, each listed tenant's own approximate numbers of data
// subjects and records; every tenant must exist, or nothing is recorded.
func (s *Server) ImportImpact(ctx context.Context, k store.APIKey, id string, rows []store.Impact) (int, error) {
	if err := authz.Check(k.Roles, authz.IncidentDraft); err != nil {
		return 0, err
	}
	inc, err := s.incident(ctx, id)
	if err != nil {
		return 0, err
	}
	if inc.Stage == store.StageClosed {
		return 0, errClosed
	}
	return s.Store.ImportImpact(ctx, id, rows, k.Actor())
}

// ErrOtherPartner is returned when a partner key touches another partner's review.
var ErrOtherPartner = errors.New("another partner's review")

// Decide records the decision of k's partner team on review id. The partner decides as
// its team: the actor names the team and the person whose key it was.
func (s *Server) Decide(ctx context.Context, k store.APIKey, id int64, confirm bool, hash, comment string) (workflows.Status, error) {
	if err := authz.Check(k.Roles, authz.PartnerDecide); err != nil {
		return workflows.Status{}, err
	}
	rv, err := s.Store.GetReview(ctx, id)
	if err != nil {
		return workflows.Status{}, err
	}
	if authz.Partner(k.Roles) != rv.Partner {
		return workflows.Status{}, ErrOtherPartner
	}
	if rv.Status != "pending" {
		return workflows.Status{}, &conflictError{msg: "this review was already " + rv.Status}
	}
	return s.update(ctx, rv.IncidentID, workflows.UpdatePartnerDecision, workflows.PartnerDecisionInput{
		Confirm: confirm, ContentHash: hash, Comment: comment, Actor: "partner:" + rv.Partner + "/" + k.Actor()})
}

type conflictError struct{ msg string }

func (e *conflictError) Error() string { return e.msg }

// statusQueryTimeout bounds the wait for a workflow's status when no worker answers.
const statusQueryTimeout = 3 * time.Second

// Scope returns the incident's current scope version: the latest that matched tenants
// (nil before one did). It reads PostgreSQL only.
func (s *Server) Scope(ctx context.Context, k store.APIKey, id string) (*store.ScopeVersion, error) {
	if err := authz.Check(k.Roles, authz.IncidentRead); err != nil {
		return nil, err
	}
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
func (s *Server) View(ctx context.Context, k store.APIKey, id string) (IncidentView, error) {
	if err := authz.Check(k.Roles, authz.IncidentRead); err != nil {
		return IncidentView{}, err
	}
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
	if err := authz.Check(k.Roles, authz.PartnerRead); err != nil {
		return nil, err
	}
	list, err := s.Store.PendingReviews(ctx, authz.Partner(k.Roles))
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
	case errors.Is(err, authz.ErrForbidden):
		return http.StatusForbidden, Error{Code: "forbidden", Message: err.Error()}
	case errors.Is(err, store.ErrNotFound), errors.Is(err, ErrOtherPartner), errors.Is(err, authz.ErrUnknownAction):
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
