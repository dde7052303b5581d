package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/breachflow/breachflow/internal/authz"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/workflows"
)

// route is one authenticated JSON route; the table drives both the mux and the OpenAPI
// document, so the two cannot drift apart.
type route struct {
	Method, Path, Summary string
	Action                authz.Action
	Body                  any // example request body type, nil for none
	Handler               http.HandlerFunc
}

// Route is one authenticated JSON API route and the action it takes.
type Route struct {
	Method, Path string
	Action       authz.Action
}

// Routes lists the JSON API's authenticated routes.
func Routes() []Route {
	var out []Route
	for _, rt := range (&Server{}).apiRoutes() {
		out = append(out, Route{Method: rt.Method, Path: rt.Path, Action: rt.Action})
	}
	return out
}

func (s *Server) apiRoutes() []route {
	return []route{
		{"GET", "/v1/apikeys", "List API keys", authz.KeysManage, nil, s.listAPIKeys},
		{"POST", "/v1/apikeys", "Create an API key (shown once)", authz.KeysManage, apiKeyBody{}, s.createAPIKey},
		{"DELETE", "/v1/apikeys/{id}", "Revoke an API key", authz.KeysManage, nil, s.revokeAPIKey},
		{"POST", "/v1/incidents", "Declare an incident (Idempotency-Key header)", authz.IncidentDeclare, store.Declaration{}, s.declare},
		{"GET", "/v1/incidents", "List incidents (?stage=&limit=&before=)", authz.IncidentRead, nil, s.listIncidents},
		{"GET", "/v1/incidents/{id}", "An incident: stored facts and workflow status", authz.IncidentRead, nil, s.getIncident},
		{"POST", "/v1/incidents/{id}/assessment", "Record the reportability decision", authz.IncidentAssess, assessBody{}, s.assess},
		{"POST", "/v1/incidents/{id}/scope", "Set or revise the scope criteria", authz.IncidentScope, store.ScopeCriteria{}, s.scope},
		{"POST", "/v1/incidents/{id}/draft", "Propose the notice draft", authz.IncidentDraft, json.RawMessage(nil), s.draft},
		{"GET", "/v1/incidents/{id}/notice", "The current draft as each locale renders it (subject, text, HTML), with the changes since the previous draft, untranslated locales, tenants with no deliverable contact, and (?tenant=) the notice exactly as one tenant would receive it", authz.IncidentRead, nil, s.noticePreview},
		{"POST", "/v1/incidents/{id}/approval", "Approve the draft's content hash", authz.IncidentApprove, approveBody{}, s.approve},
		{"POST", "/v1/incidents/{id}/override", "Release the partner gate with a justification", authz.IncidentOverride, overrideBody{}, s.override},
		{"GET", "/v1/incidents/{id}/scope/versions", "Every scope version with its counts", authz.IncidentRead, nil, s.scopeVersions},
		{"GET", "/v1/incidents/{id}/scope/diff", "Tenants added and removed between two scope versions (?from=&to=&limit=)", authz.IncidentRead, nil, s.scopeDiff},
		{"GET", "/v1/incidents/{id}/tenants", "The ledger, one line per tenant (?phase=&open=true&limit=)", authz.IncidentRead, nil, s.tenantLedger},
		{"POST", "/v1/incidents/{id}/followup", "Propose the next notice phase: an update or the final notice, with what is new; two approvals send it to every tenant in scope", authz.IncidentFollowup, followupBody{}, s.followup},
		{"POST", "/v1/incidents/{id}/impact", "Import per-tenant impact (approximate data subjects and records), shown in each tenant's notice", authz.IncidentDraft, impactBody{}, s.importImpact},
		{"POST", "/v1/incidents/{id}/retry", "Send now what the ledger says is still owed", authz.IncidentRetry, struct{}{}, s.retry},
		{"POST", "/v1/incidents/{id}/close", "Close the incident", authz.IncidentClose, closeBody{}, s.closeIncident},
		{"GET", "/v1/partner/reviews", "The caller's pending partner reviews", authz.PartnerRead, nil, s.partnerReviews},
		{"GET", "/v1/partner/reviews/{id}/notice", "The notice under review as each locale renders it, with the changes since the previous review", authz.PartnerRead, nil, s.reviewNotice},
		{"POST", "/v1/partner/reviews/{id}/decision", "Confirm or request changes", authz.PartnerDecide, decisionBody{}, s.partnerDecision},
		{"GET", "/v1/incidents/{id}/evidence", "The evidence pack: a zip with a signed manifest, per tenant every notice, delivery and acknowledgement, and the audit excerpt with its checkpoints (?tenant=); each export is audited and checkpointed", authz.EvidenceExport, nil, s.exportEvidence},
		{"GET", "/v1/audit/verify", "Verify the audit chain against its signed checkpoints and name the first bad row; an intact head is checkpointed", authz.AuditVerify, nil, s.auditVerify},
		{"GET", "/v1/audit/checkpoints", "The signed audit checkpoints, to publish (?after=&limit=)", authz.AuditVerify, nil, s.auditCheckpoints},
	}
}

type apiKeyBody struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

type assessBody struct {
	Reportable *bool  `json:"reportable"`
	Rationale  string `json:"rationale"`
}

type approveBody struct {
	ContentHash string `json:"content_hash"`
}

type overrideBody struct {
	Justification string `json:"justification"`
}

type closeBody struct {
	Reason string `json:"reason"`
}

type decisionBody struct {
	Decision    string `json:"decision"` // confirm or request_changes
	ContentHash string `json:"content_hash"`
	Comment     string `json:"comment"`
}

// rejectedError is an update the workflow refused (a validator or a failed handler).
type rejectedError struct{ msg string }

func (e *rejectedError) Error() string { return e.msg }

func (s *Server) declare(w http.ResponseWriter, r *http.Request) {
	var d store.Declaration
	if err := decode(w, r, &d); err != nil {
		// The only value of a declaration that parses itself is aware_at, a time.
		if errors.As(err, new(*time.ParseError)) || strings.Contains(err.Error(), "Time.UnmarshalJSON") {
			err = &store.FieldError{Field: "aware_at", Message: "want an RFC 3339 time such as 2026-11-30T08:00:00Z"}
		}
		s.fail(w, r, err)
		return
	}
	inc, created, err := s.Declare(r.Context(), caller(r), r.Header.Get("Idempotency-Key"), d)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	writeJSON(w, code, map[string]any{"incident": inc})
}

func (s *Server) startIncident(ctx context.Context, inc store.Incident) error {
	timing := s.Timing
	if inc.Partner != "" && timing.PartnerResponse == 0 {
		p, err := s.Store.GetPartner(ctx, inc.Partner)
		if err != nil {
			return err
		}
		timing.PartnerResponse = time.Duration(p.ResponseDeadlineHours) * time.Hour
	}
	_, err := s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                    workflows.IncidentWorkflowID(inc.ID),
		TaskQueue:             s.TaskQueue,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	}, workflows.IncidentWorkflow, workflows.IncidentInput{IncidentID: inc.ID, AwareAt: inc.AwareAt, Partner: inc.Partner, Timing: timing})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil
	}
	return err
}

func (s *Server) listIncidents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	stage := q.Get("stage")
	if stage != "" && !validStage(stage) {
		writeError(w, http.StatusBadRequest, Error{Code: "invalid", Message: "unknown stage", Field: "stage"})
		return
	}
	limit := 50
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			writeError(w, http.StatusBadRequest, Error{Code: "invalid", Message: "want 1 to 500", Field: "limit"})
			return
		}
		limit = n
	}
	var before time.Time
	if v := q.Get("before"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, Error{Code: "invalid", Message: "want an RFC 3339 time (the created_at of the last incident seen)", Field: "before"})
			return
		}
		before = t
	}
	list, err := s.Store.ListIncidents(r.Context(), stage, limit, before)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := map[string]any{"incidents": list}
	if len(list) == limit {
		out["next_before"] = list[len(list)-1].CreatedAt.Format(time.RFC3339Nano)
	}
	writeJSON(w, http.StatusOK, out)
}

func validStage(s string) bool {
	switch s {
	case store.StageDeclared, store.StageAssessing, store.StageScoping, store.StageApproval, store.StagePartnerReview,
		store.StageNotifying, store.StageTracking, store.StageClosed:
		return true
	}
	return false
}

// IncidentView is what GET /v1/incidents/{id} answers. Everything but Status is read
// from PostgreSQL, so it outlives the workflow; Status is what the workflow holds, when
// it answers.
type IncidentView struct {
	Incident store.Incident      `json:"incident"`
	Ledger   store.LedgerStats   `json:"ledger"`
	Scope    *store.ScopeVersion `json:"scope,omitempty"` // the latest version
	Passes   []store.RoundCounts `json:"passes"`
	Alerts   []store.Alert       `json:"alerts"`
	Status   *workflows.Status   `json:"status,omitempty"`
}

func (s *Server) getIncident(w http.ResponseWriter, r *http.Request) {
	v, err := s.View(r.Context(), caller(r), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// do takes the action in names on the incident the path names and answers with the
// status.
func (s *Server) do(w http.ResponseWriter, r *http.Request, in any) {
	st, err := s.Do(r.Context(), caller(r), r.PathValue("id"), in)
	s.answerStatus(w, r, st, err)
}

func (s *Server) answerStatus(w http.ResponseWriter, r *http.Request, st workflows.Status, err error) {
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": st})
}

// updateError tells a refused update (4xx, with the workflow's reason) from a failure.
// errClosed refuses a change to an incident whose workflow has finished.
var errClosed = fmt.Errorf("%w: the incident's workflow has finished (closed incidents take no more changes)", store.ErrConflict)

func updateError(err error) error {
	var appErr *temporal.ApplicationError
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &appErr):
		msg := appErr.Error()
		var inner *temporal.ApplicationError
		if errors.As(appErr.Unwrap(), &inner) {
			msg = inner.Error()
		}
		return &rejectedError{msg: msg}
	case errors.As(err, &notFound):
		return errClosed
	}
	return err
}

func (s *Server) assess(w http.ResponseWriter, r *http.Request) {
	var in assessBody
	if err := decode(w, r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	if in.Reportable == nil {
		writeError(w, http.StatusBadRequest, Error{Code: "invalid", Message: "required: true or false", Field: "reportable"})
		return
	}
	s.do(w, r, workflows.AssessInput{Reportable: *in.Reportable, Rationale: in.Rationale})
}

func (s *Server) scope(w http.ResponseWriter, r *http.Request) {
	var c store.ScopeCriteria
	if err := decode(w, r, &c); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := c.Validate(); err != nil {
		s.fail(w, r, err)
		return
	}
	if c.Empty() {
		s.fail(w, r, &store.FieldError{Field: "scope", Message: "no criteria: name services, connectors, countries, data regions, regimes or tenant ids"})
		return
	}
	s.do(w, r, workflows.ScopeInput{Criteria: c})
}

func (s *Server) draft(w http.ResponseWriter, r *http.Request) {
	var raw json.RawMessage
	if err := decode(w, r, &raw); err != nil {
		s.fail(w, r, err)
		return
	}
	st, err := s.ProposeDraft(r.Context(), caller(r), r.PathValue("id"), raw)
	s.answerStatus(w, r, st, err)
}

func (s *Server) approve(w http.ResponseWriter, r *http.Request) {
	var in approveBody
	if err := decode(w, r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	s.do(w, r, workflows.ApproveInput{ContentHash: in.ContentHash})
}

func (s *Server) override(w http.ResponseWriter, r *http.Request) {
	var in overrideBody
	if err := decode(w, r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	s.do(w, r, workflows.OverrideInput{Justification: in.Justification})
}

// followupBody is the next notice phase: its kind and its draft.
type followupBody struct {
	// Kind is "update" (the default) or "final".
	Kind   string          `json:"kind,omitempty"`
	Notice json.RawMessage `json:"notice"`
}

func (s *Server) followup(w http.ResponseWriter, r *http.Request) {
	var in followupBody
	if err := decode(w, r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	st, err := s.ProposeFollowup(r.Context(), caller(r), r.PathValue("id"), in.Kind, in.Notice)
	s.answerStatus(w, r, st, err)
}

// impactBody is a per-tenant impact import.
type impactBody struct {
	Tenants []store.Impact `json:"tenants"`
}

func (s *Server) importImpact(w http.ResponseWriter, r *http.Request) {
	var in impactBody
	if err := decode(w, r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	n, err := s.ImportImpact(r.Context(), caller(r), r.PathValue("id"), in.Tenants)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"tenants": n})
}

func (s *Server) retry(w http.ResponseWriter, r *http.Request) {
	var in struct{}
	if err := decode(w, r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	s.do(w, r, workflows.RetryInput{})
}

func (s *Server) scopeVersions(w http.ResponseWriter, r *http.Request) {
	inc, err := s.incident(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	list, err := s.Store.ScopeVersions(r.Context(), inc.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"versions": list})
}

// intParam reads a positive integer query parameter; def when absent.
func intParam(r *http.Request, name string, def, maxV int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxV {
		return 0, &store.FieldError{Field: name, Message: fmt.Sprintf("want a whole number from 1 to %d", maxV)}
	}
	return n, nil
}

func (s *Server) scopeDiff(w http.ResponseWriter, r *http.Request) {
	inc, err := s.incident(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	for _, name := range []string{"from", "to"} {
		if r.URL.Query().Get(name) == "" {
			s.fail(w, r, &store.FieldError{Field: name, Message: "required: from and to are two scope version numbers"})
			return
		}
	}
	from, err := intParam(r, "from", 0, 1<<30)
	if err == nil {
		var to, limit int
		if to, err = intParam(r, "to", 0, 1<<30); err == nil {
			if limit, err = intParam(r, "limit", 1000, 100000); err == nil {
				var d store.ScopeDiff
				if d, err = s.Store.DiffScope(r.Context(), inc.ID, from, to, limit); err == nil {
					writeJSON(w, http.StatusOK, d)
					return
				}
			}
		}
	}
	s.fail(w, r, err)
}

func (s *Server) tenantLedger(w http.ResponseWriter, r *http.Request) {
	inc, err := s.incident(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	phase, err := intParam(r, "phase", 1, 1<<20)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	limit, err := intParam(r, "limit", 1000, 100000)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var open bool
	switch r.URL.Query().Get("open") {
	case "", "false":
	case "true":
		open = true
	default:
		s.fail(w, r, &store.FieldError{Field: "open", Message: "want true or false"})
		return
	}
	list := []store.TenantStatus{}
	if err := s.Store.TenantStatuses(r.Context(), inc.ID, phase, open, limit, time.Now(), func(ts store.TenantStatus) error {
		list = append(list, ts)
		return nil
	}); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tenants": list})
}

func (s *Server) closeIncident(w http.ResponseWriter, r *http.Request) {
	var in closeBody
	if err := decode(w, r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	s.do(w, r, workflows.CloseInput{Reason: in.Reason})
}

// ReviewView is a pending review with the draft under review.
type ReviewView struct {
	store.PartnerReview
	Title string          `json:"title"`
	Draft json.RawMessage `json:"draft,omitempty"`
}

func (s *Server) partnerReviews(w http.ResponseWriter, r *http.Request) {
	out, err := s.Reviews(r.Context(), caller(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"reviews": out})
}

func (s *Server) partnerDecision(w http.ResponseWriter, r *http.Request) {
	var in decisionBody
	if err := decode(w, r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	if in.Decision != "confirm" && in.Decision != "request_changes" {
		writeError(w, http.StatusBadRequest, Error{Code: "invalid", Message: "want confirm or request_changes", Field: "decision"})
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		writeError(w, http.StatusBadRequest, Error{Code: "invalid", Message: "review id must be a positive integer", Field: "id"})
		return
	}
	st, err := s.Decide(r.Context(), caller(r), id, in.Decision == "confirm", in.ContentHash, in.Comment)
	if errors.Is(err, ErrOtherPartner) {
		// Another partner's review is answered as if it did not exist.
		s.Deny(r, "POST /v1/partner/reviews/{id}/decision", "another partner's review", caller(r).ID)
	}
	s.answerStatus(w, r, st, err)
}

func clientUpdate(id, name string, arg any) client.UpdateWorkflowOptions {
	return client.UpdateWorkflowOptions{WorkflowID: workflows.IncidentWorkflowID(id), UpdateName: name, Args: []any{arg},
		WaitForStage: client.WorkflowUpdateStageCompleted}
}
