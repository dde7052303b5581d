package workflows

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/workflow"

	"github.com/breachflow/breachflow/activities"
	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
)

// incident is the running state of one IncidentWorkflow.
type incident struct {
	in     IncidentInput
	t      Timing
	s      *Status
	mu     workflow.Mutex
	review *reviewState
}

type reviewState struct {
	decided  bool
	openedAt time.Time
	due      time.Time
}

// IncidentWorkflow runs one incident from declaration to closure: assessment, scoping,
// two-person approval of the notice's content hash, the partner gate for the tenants the
// partner covers, notification rounds, acknowledgement tracking with reminders and
// escalation, and closure. Responders drive it with Updates; QueryStatus reports it.
func IncidentWorkflow(ctx workflow.Context, in IncidentInput) (*Status, error) {
	w := &incident{in: in, t: in.Timing.WithDefaults(), mu: workflow.NewMutex(ctx)}
	if in.Resume != nil {
		w.s = in.Resume
	} else {
		w.s = &Status{IncidentID: in.IncidentID, Stage: store.StageDeclared, Approvers: []string{}, Alerts: []string{},
			Rounds: []RoundResult{}, NextRound: 1, NotifiedParts: map[string]bool{}, Partner: PartnerStatus{Name: in.Partner}}
	}
	if in.Resume == nil {
		// Taken before the handlers exist: updates that arrive meanwhile wait for it, so
		// they find the incident in the assessing stage.
		if err := w.mu.Lock(ctx); err != nil {
			return nil, err
		}
	}
	if err := w.register(ctx); err != nil {
		return nil, err
	}
	if in.Resume == nil {
		// A draft supplied with the declaration is checked and hashed now.
		var hash string
		if err := workflow.ExecuteActivity(activityCtx(ctx, time.Minute), acts.SaveDraft,
			activities.DraftActivityInput{IncidentID: in.IncidentID, Actor: "system"}).Get(ctx, &hash); err != nil {
			if !isType(err, activities.ErrTypeInvalidInput) {
				return nil, err
			}
			workflow.GetLogger(ctx).Warn("declared draft refused", "incident_id", in.IncidentID)
		}
		w.s.ContentHash = hash
		err := w.stage(ctx, store.StageAssessing, "system")
		w.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	workflow.Go(ctx, w.deadlineClock)
	err := w.run(ctx)
	if errors.Is(err, errContinue) {
		if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
			return nil, err
		}
		next := in
		next.Resume = w.s
		return nil, workflow.NewContinueAsNewError(ctx, IncidentWorkflow, next)
	}
	if err != nil {
		return nil, err
	}
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return nil, err
	}
	return w.s, nil
}

var errContinue = errors.New("continue as new")

func isType(err error, typ string) bool {
	var appErr interface{ Type() string }
	return errors.As(err, &appErr) && appErr.Type() == typ
}

func (w *incident) act(ctx workflow.Context) workflow.Context { return activityCtx(ctx, time.Minute) }

func (w *incident) stage(ctx workflow.Context, stage, actor string) error {
	if w.s.Stage == stage {
		return nil
	}
	if err := workflow.ExecuteActivity(w.act(ctx), acts.SetStage, activities.StageInput{IncidentID: w.in.IncidentID, Stage: stage, Actor: actor}).Get(ctx, nil); err != nil {
		return err
	}
	w.s.Stage = stage
	return nil
}

func (w *incident) closed() bool { return w.s.Stage == store.StageClosed }

// run is the main line of the lifecycle; every wait also ends when the incident is closed.
func (w *incident) run(ctx workflow.Context) error {
	s := w.s
	if err := workflow.Await(ctx, func() bool { return s.Reportable != nil || w.closed() }); err != nil {
		return err
	}
	if w.closed() {
		return nil
	}
	if !*s.Reportable {
		return nil // closed by the assess handler, documented in the audit log
	}
	for !w.closed() && !w.notificationDone() {
		if err := workflow.Await(ctx, func() bool { return (s.Approved && s.Scope.Version > 0) || w.closed() }); err != nil {
			return err
		}
		if w.closed() {
			return nil
		}
		if err := w.notifyApproved(ctx); err != nil {
			return err
		}
	}
	if w.closed() {
		return nil
	}
	return w.track(ctx)
}

func (w *incident) notificationDone() bool {
	p := w.s.NotifiedParts
	return p["all"] || (p["uncovered"] && p["covered"])
}

// notifyApproved sends what the approval releases: everything when no partner is
// involved; otherwise the uncovered tenants at once and the covered ones after the
// partner confirms (or a responder overrides).
func (w *incident) notifyApproved(ctx workflow.Context) error {
	s := w.s
	partnerNeeded := w.in.Partner != "" && s.Scope.PartnerCovered > 0
	s.Partner.Required = partnerNeeded
	s.Partner.Covered = s.Scope.PartnerCovered
	if !partnerNeeded {
		if err := w.stage(ctx, store.StageNotifying, "system"); err != nil {
			return err
		}
		if err := w.round(ctx, store.RoundInitial, nil, false, false, true); err != nil {
			return err
		}
		s.NotifiedParts["all"] = true
		return nil
	}
	if err := w.stage(ctx, store.StagePartnerReview, "system"); err != nil {
		return err
	}
	hash := s.ContentHash
	due := workflow.Now(ctx).Add(w.t.PartnerResponse)
	w.review = &reviewState{openedAt: workflow.Now(ctx), due: due}
	s.Partner.Status, s.Partner.Comment, s.Partner.Alerted, s.Partner.Reminded = "pending", "", false, 0
	if err := workflow.ExecuteActivity(w.act(ctx), acts.OpenPartnerReview, activities.PartnerReviewInput{
		IncidentID: w.in.IncidentID, Partner: w.in.Partner, ContentHash: hash, ScopeVersion: s.Scope.Version,
		Covered: s.Scope.PartnerCovered, DueAt: due}).Get(ctx, nil); err != nil {
		return err
	}
	if !s.NotifiedParts["uncovered"] && s.Scope.Total > s.Scope.PartnerCovered {
		covered := false
		if err := w.round(ctx, store.RoundInitial, &covered, false, false, true); err != nil {
			return err
		}
	}
	s.NotifiedParts["uncovered"] = true
	if err := w.awaitPartner(ctx); err != nil {
		return err
	}
	if w.closed() {
		return nil
	}
	switch s.Partner.Status {
	case "changes_requested":
		s.Approved, s.Approvers, s.RejectedHash = false, []string{}, s.ContentHash
		return w.stage(ctx, store.StageApproval, "partner")
	case "confirmed", "overridden":
		if err := w.stage(ctx, store.StageNotifying, "system"); err != nil {
			return err
		}
		covered := true
		if err := w.round(ctx, store.RoundInitial, &covered, false, false, true); err != nil {
			return err
		}
		s.NotifiedParts["covered"] = true
	}
	return nil
}

// awaitPartner waits for the partner's decision or a responder's override, reminding the
// partner along the way and alerting the responders at the deadline.
func (w *incident) awaitPartner(ctx workflow.Context) error {
	s, r := w.s, w.review
	for _, frac := range w.t.PartnerReminders {
		at := r.openedAt.Add(time.Duration(frac * float64(w.t.PartnerResponse)))
		ok, err := workflow.AwaitWithTimeout(ctx, at.Sub(workflow.Now(ctx)), func() bool { return r.decided || w.closed() })
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if err := workflow.ExecuteActivity(w.act(ctx), acts.RemindPartner, activities.PartnerNudgeInput{
			IncidentID: w.in.IncidentID, Partner: w.in.Partner, DueAt: r.due}).Get(ctx, nil); err != nil {
			return err
		}
		s.Partner.Reminded++
	}
	ok, err := workflow.AwaitWithTimeout(ctx, r.due.Sub(workflow.Now(ctx)), func() bool { return r.decided || w.closed() })
	if err != nil || ok {
		return err
	}
	if err := w.alert(ctx, "partner_silent", fmt.Sprintf("partner %s has not answered by its deadline; a responder may override with a justification", w.in.Partner)); err != nil {
		return err
	}
	s.Partner.Alerted = true
	return workflow.Await(ctx, func() bool { return r.decided || w.closed() })
}

func (w *incident) alert(ctx workflow.Context, kind, msg string) error {
	w.s.Alerts = append(w.s.Alerts, kind)
	return workflow.ExecuteActivity(w.act(ctx), acts.AlertResponders, activities.AlertInput{IncidentID: w.in.IncidentID, Kind: kind, Message: msg}).Get(ctx, nil)
}

// round runs one notification round as a child workflow and records its result.
func (w *incident) round(ctx workflow.Context, kind string, covered *bool, onlyUnacked, alternates, skipNotified bool) error {
	s := w.s
	n := s.NextRound
	s.NextRound++
	in := RoundInput{
		Plan: store.RoundPlan{IncidentID: w.in.IncidentID, Round: n, Kind: kind, ScopeVersion: s.Scope.Version, ContentHash: s.ContentHash,
			PartnerCovered: covered, OnlyUnacked: onlyUnacked, Alternates: alternates, SkipAlreadyNotified: skipNotified,
			PageSize: w.t.PageSize, Locales: notice.Locales(), Fallback: notice.DefaultLocale, TokenTTL: w.t.TokenTTL},
		Window: w.t.Window, PagesPerRun: w.t.PagesPerRun,
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            RoundWorkflowID(w.in.IncidentID, n),
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		ParentClosePolicy:     enums.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
	})
	var res RoundResult
	if err := workflow.ExecuteChildWorkflow(cctx, NotifyRoundWorkflow, in).Get(ctx, &res); err != nil {
		return err
	}
	s.Rounds = append(s.Rounds, res)
	if kind == store.RoundInitial && s.InitialSentAt.IsZero() {
		s.InitialSentAt = workflow.Now(ctx)
	}
	return nil
}

// track reads acknowledgement aggregates on a timer, sends reminder rounds (adding
// alternates from EscalateFromRound on), and closes when every tenant has acknowledged
// or a responder closes.
func (w *incident) track(ctx workflow.Context) error {
	s := w.s
	if err := w.stage(ctx, store.StageTracking, "system"); err != nil {
		return err
	}
	for !w.closed() {
		if err := w.refreshAcks(ctx); err != nil {
			return err
		}
		if s.Acks.Tenants > 0 && s.Acks.Acknowledged >= s.Acks.Tenants {
			return w.close(ctx, "all tenants acknowledged", "system")
		}
		wait := w.t.AckCheckInterval
		if s.Reminders < len(w.t.ReminderAfter) {
			due := s.InitialSentAt.Add(w.t.ReminderAfter[s.Reminders])
			if now := workflow.Now(ctx); !due.After(now) {
				s.Reminders++
				kind := store.RoundReminder
				escalate := s.Reminders >= w.t.EscalateFromRound
				if escalate {
					kind = store.RoundEscalation
				}
				if err := w.round(ctx, kind, nil, true, escalate, false); err != nil {
					return err
				}
				continue
			} else if due.Sub(now) < wait {
				wait = due.Sub(now)
			}
		}
		if workflow.GetInfo(ctx).GetCurrentHistoryLength() > w.t.HistoryLimit {
			return errContinue
		}
		if _, err := workflow.AwaitWithTimeout(ctx, wait, w.closed); err != nil {
			return err
		}
	}
	return nil
}

func (w *incident) refreshAcks(ctx workflow.Context) error {
	return workflow.ExecuteActivity(w.act(ctx), acts.AckStatus, activities.AckStatusInput{IncidentID: w.in.IncidentID, ScopeVersion: w.s.Scope.Version}).Get(ctx, &w.s.Acks)
}

func (w *incident) close(ctx workflow.Context, reason, actor string) error {
	if err := workflow.ExecuteActivity(w.act(ctx), acts.CloseIncident, activities.CloseInput{IncidentID: w.in.IncidentID, Reason: reason, Actor: actor}).Get(ctx, nil); err != nil {
		return err
	}
	w.s.Stage, w.s.CloseReason = store.StageClosed, reason
	return nil
}

// deadlineClock alerts the responders at fractions of the time from awareness to the
// earliest tenant deadline while initial notices are not yet all out.
func (w *incident) deadlineClock(ctx workflow.Context) {
	s := w.s
	if err := workflow.Await(ctx, func() bool { return s.Scope.Version > 0 || w.closed() }); err != nil || w.closed() {
		return
	}
	earliest := s.Scope.Earliest
	span := earliest.Sub(w.in.AwareAt)
	for _, frac := range w.t.DeadlineAlerts {
		at := w.in.AwareAt.Add(time.Duration(frac * float64(span)))
		if d := at.Sub(workflow.Now(ctx)); d > 0 {
			if err := workflow.Sleep(ctx, d); err != nil {
				return
			}
		} else {
			continue // that point had passed before the scope was known
		}
		if w.closed() || w.notificationDone() {
			return
		}
		msg := fmt.Sprintf("%d%% of the time to the earliest tenant deadline (%s) has passed and notices are not all out",
			int(frac*100), earliest.UTC().Format(time.RFC3339))
		if err := w.alert(ctx, fmt.Sprintf("deadline_%d", int(frac*100)), msg); err != nil {
			workflow.GetLogger(ctx).Error("deadline alert failed", "incident_id", w.in.IncidentID, "error", err)
		}
	}
}

var hashRe = regexp.MustCompile(`^[0-9a-f]{64}$`)

// checkText refuses free text that PostgreSQL cannot store (NUL, invalid UTF-8) here,
// before an activity would retry on it forever, and text over 10,000 characters.
func checkText(field, v string, required bool) error {
	switch {
	case required && strings.TrimSpace(v) == "":
		return fmt.Errorf("%s: required, at most 10000 characters", field)
	case !utf8.ValidString(v) || strings.ContainsRune(v, 0):
		return fmt.Errorf("%s: contains characters that cannot be stored (NUL or invalid UTF-8)", field)
	case utf8.RuneCountInString(v) > 10000:
		return fmt.Errorf("%s: at most 10000 characters", field)
	}
	return nil
}

func requireActor(actor string) error {
	if strings.TrimSpace(actor) == "" {
		return errors.New("actor is required")
	}
	return nil
}

// register installs the query and every update with its validator. Handlers that run
// activities hold the mutex so they apply one at a time.
func (w *incident) register(ctx workflow.Context) error {
	s := w.s
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (*Status, error) { return s, nil }); err != nil {
		return err
	}
	before := func(stages ...string) error {
		if slices.Contains(stages, s.Stage) {
			return nil
		}
		return fmt.Errorf("not allowed in stage %s", s.Stage)
	}
	handlers := []struct {
		name     string
		handler  any
		validate any
	}{
		{UpdateAssess, func(ctx workflow.Context, in AssessInput) (*Status, error) {
			return w.locked(ctx, func() error {
				if err := workflow.ExecuteActivity(w.act(ctx), acts.RecordAssessment, activities.AssessmentInput{
					IncidentID: w.in.IncidentID, Reportable: in.Reportable, Rationale: in.Rationale, Actor: in.Actor}).Get(ctx, nil); err != nil {
					return err
				}
				r := in.Reportable
				s.Reportable = &r
				if !r {
					return w.close(ctx, "not reportable: "+in.Rationale, in.Actor)
				}
				return w.stage(ctx, store.StageScoping, in.Actor)
			})
		}, func(ctx workflow.Context, in AssessInput) error {
			if err := requireActor(in.Actor); err != nil {
				return err
			}
			if err := checkText("rationale", in.Rationale, true); err != nil {
				return err
			}
			return before(store.StageDeclared, store.StageAssessing)
		}},
		{UpdateScope, func(ctx workflow.Context, in ScopeInput) (*Status, error) {
			return w.locked(ctx, func() error {
				var res store.ScopeResult
				if err := workflow.ExecuteActivity(w.act(ctx), acts.ResolveScope, activities.ScopeActivityInput{
					IncidentID: w.in.IncidentID, Criteria: in.Criteria, Actor: in.Actor}).Get(ctx, &res); err != nil {
					return err
				}
				if res.Total == 0 {
					// The snapshot stays in the audit trail; the incident keeps its scope.
					return fmt.Errorf("scope: no tenant matches these criteria (version %d is empty)", res.Version)
				}
				s.Scope = res
				// Approvers approve the notice for a scope: a new scope needs new approvals.
				s.Approved, s.Approvers = false, []string{}
				return w.stage(ctx, store.StageApproval, in.Actor)
			})
		}, func(ctx workflow.Context, in ScopeInput) error {
			if err := requireActor(in.Actor); err != nil {
				return err
			}
			if in.Criteria.Empty() {
				return errors.New("scope: no criteria")
			}
			if err := in.Criteria.Validate(); err != nil {
				return err
			}
			return before(store.StageScoping, store.StageApproval)
		}},
		{UpdateDraft, func(ctx workflow.Context, in DraftInput) (*Status, error) {
			return w.locked(ctx, func() error {
				var hash string
				if err := workflow.ExecuteActivity(w.act(ctx), acts.SaveDraft, activities.DraftActivityInput{
					IncidentID: w.in.IncidentID, ContentHash: in.ContentHash, Actor: in.Actor}).Get(ctx, &hash); err != nil {
					return err
				}
				if hash != s.ContentHash {
					s.ContentHash, s.Approved, s.Approvers = hash, false, []string{}
				}
				return nil
			})
		}, func(ctx workflow.Context, in DraftInput) error {
			if err := requireActor(in.Actor); err != nil {
				return err
			}
			if !hashRe.MatchString(in.ContentHash) {
				return errors.New("content_hash: want the 64-hex-digit hash of a proposed draft")
			}
			return before(store.StageDeclared, store.StageAssessing, store.StageScoping, store.StageApproval)
		}},
		{UpdateApprove, func(ctx workflow.Context, in ApproveInput) (*Status, error) {
			return w.locked(ctx, func() error {
				var n int
				if err := workflow.ExecuteActivity(w.act(ctx), acts.Approve, activities.ApproveActivityInput{
					IncidentID: w.in.IncidentID, ContentHash: in.ContentHash, Actor: in.Actor}).Get(ctx, &n); err != nil {
					return err
				}
				if in.ContentHash == s.ContentHash && !slices.Contains(s.Approvers, in.Actor) {
					s.Approvers = append(s.Approvers, in.Actor)
				}
				s.Approved = len(s.Approvers) >= 2
				return nil
			})
		}, func(ctx workflow.Context, in ApproveInput) error {
			if err := requireActor(in.Actor); err != nil {
				return err
			}
			if err := before(store.StageApproval); err != nil {
				return err
			}
			switch {
			case s.ContentHash == "":
				return errors.New("there is no notice draft to approve yet")
			case in.ContentHash != s.ContentHash:
				return fmt.Errorf("content_hash %q is not the current draft's (%s)", in.ContentHash, s.ContentHash)
			case in.ContentHash == s.RejectedHash:
				return errors.New("the partner asked for changes to this draft: change the draft first")
			case slices.Contains(s.Approvers, in.Actor):
				return fmt.Errorf("%s has already approved this draft; a second, different approver is needed", in.Actor)
			case s.Approved:
				return errors.New("already approved by two people")
			}
			return nil
		}},
		{UpdatePartnerDecision, func(ctx workflow.Context, in PartnerDecisionInput) (*Status, error) {
			return w.locked(ctx, func() error {
				status := "changes_requested"
				if in.Confirm {
					status = "confirmed"
				}
				return w.decide(ctx, status, in.Comment, in.Actor)
			})
		}, func(ctx workflow.Context, in PartnerDecisionInput) error {
			if err := requireActor(in.Actor); err != nil {
				return err
			}
			if s.Stage != store.StagePartnerReview || w.review == nil || w.review.decided {
				return errors.New("no partner review is pending")
			}
			if in.ContentHash != s.ContentHash {
				return fmt.Errorf("content_hash %q is not the draft under review (%s)", in.ContentHash, s.ContentHash)
			}
			if !in.Confirm && strings.TrimSpace(in.Comment) == "" {
				return errors.New("comment: say what should change")
			}
			if err := checkText("comment", in.Comment, false); err != nil {
				return err
			}
			return nil
		}},
		{UpdateOverride, func(ctx workflow.Context, in OverrideInput) (*Status, error) {
			return w.locked(ctx, func() error { return w.decide(ctx, "overridden", in.Justification, in.Actor) })
		}, func(ctx workflow.Context, in OverrideInput) error {
			if err := requireActor(in.Actor); err != nil {
				return err
			}
			if s.Stage != store.StagePartnerReview || w.review == nil || w.review.decided {
				return errors.New("no partner review is pending")
			}
			if err := checkText("justification", in.Justification, true); err != nil {
				return err
			}
			return nil
		}},
		{UpdateFollowup, func(ctx workflow.Context, in FollowupInput) (*Status, error) {
			return w.locked(ctx, func() error {
				s.Followups++
				return w.round(ctx, store.RoundFollowup, nil, false, false, false)
			})
		}, func(ctx workflow.Context, in FollowupInput) error {
			if err := requireActor(in.Actor); err != nil {
				return err
			}
			return before(store.StageTracking)
		}},
		{UpdateClose, func(ctx workflow.Context, in CloseInput) (*Status, error) {
			return w.locked(ctx, func() error {
				if w.closed() {
					return nil
				}
				reason := in.Reason
				if reason == "" {
					reason = "all tenants acknowledged"
				}
				return w.close(ctx, reason, in.Actor)
			})
		}, func(ctx workflow.Context, in CloseInput) error {
			if err := requireActor(in.Actor); err != nil {
				return err
			}
			if w.closed() {
				return errors.New("already closed")
			}
			allAcked := s.Acks.Tenants > 0 && s.Acks.Acknowledged >= s.Acks.Tenants
			if strings.TrimSpace(in.Reason) == "" && !allAcked {
				return errors.New("reason: required while tenants have not all acknowledged")
			}
			if err := checkText("reason", in.Reason, false); err != nil {
				return err
			}
			return nil
		}},
	}
	for _, h := range handlers {
		if err := workflow.SetUpdateHandlerWithOptions(ctx, h.name, h.handler, workflow.UpdateHandlerOptions{Validator: h.validate}); err != nil {
			return err
		}
	}
	return nil
}

func (w *incident) decide(ctx workflow.Context, status, comment, actor string) error {
	if w.review == nil || w.review.decided {
		return errors.New("no partner review is pending")
	}
	if err := workflow.ExecuteActivity(w.act(ctx), acts.DecidePartner, activities.DecisionInput{
		IncidentID: w.in.IncidentID, Status: status, Comment: comment, Actor: actor}).Get(ctx, nil); err != nil {
		return err
	}
	w.review.decided = true
	w.s.Partner.Status, w.s.Partner.Comment = status, comment
	return nil
}

// locked runs fn under the handler mutex and returns the status after it.
func (w *incident) locked(ctx workflow.Context, fn func() error) (*Status, error) {
	if err := w.mu.Lock(ctx); err != nil {
		return nil, err
	}
	defer w.mu.Unlock()
	if err := fn(); err != nil {
		return nil, err
	}
	return w.s, nil
}
