package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/workflow"

	"github.com/breachflow/breachflow/activities"
)

// register installs the status query, the delivery-failure signal and every update with
// its validator.
func (w *incident) register(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (*Status, error) { return w.s, nil }); err != nil {
		return err
	}
	updates := []struct {
		name     string
		handler  any
		validate any
	}{
		{UpdateAssess, w.onAssess, w.validateAssess},
		{UpdateScope, w.onScope, w.validateScope},
		{UpdateDraft, w.onDraft, w.validateDraft},
		{UpdateApprove, w.onApprove, w.validateApprove},
		{UpdatePartnerDecision, w.onPartnerDecision, w.validatePartnerDecision},
		{UpdateOverride, w.onOverride, w.validateOverride},
		{UpdateFollowup, w.onFollowup, w.validateFollowup},
		{UpdateRetry, w.onRetry, w.validateRetry},
		{UpdateClose, w.onClose, w.validateClose},
	}
	for _, u := range updates {
		if err := workflow.SetUpdateHandlerWithOptions(ctx, u.name, u.handler, workflow.UpdateHandlerOptions{Validator: u.validate}); err != nil {
			return err
		}
	}
	w.failures = workflow.GetSignalChannel(ctx, SignalDeliveryFailures)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var n int
			if !w.failures.Receive(ctx, &n) {
				return
			}
			w.onDeliveryFailures(ctx)
		}
	})
	return nil
}

// locked runs fn under the lock after re-checking the request with validate, and returns
// the status after it.
func (w *incident) locked(ctx workflow.Context, validate func() error, fn func() error) (*Status, error) {
	if err := w.mu.Lock(ctx); err != nil {
		return nil, err
	}
	defer w.mu.Unlock()
	if err := validate(); err != nil {
		return nil, err
	}
	// Whatever fn changed before it failed, the main line must look again.
	defer w.poke()
	if err := fn(); err != nil {
		return nil, err
	}
	return w.s, nil
}

// inStage refuses unless the incident is in one of stages.
func (w *incident) inStage(stages ...Stage) error {
	if slices.Contains(stages, w.s.Stage) {
		return nil
	}
	return fmt.Errorf("not allowed in stage %s", w.s.Stage)
}

// liveStages are the stages in which the scope may change and approvals be given.
var liveStages = []Stage{StageScoping, StageApproval, StagePartnerReview, StageNotifying, StageTracking}

func (w *incident) validateAssess(_ workflow.Context, in AssessInput) error {
	if err := requireActor(in.Actor); err != nil {
		return err
	}
	if err := checkText("rationale", in.Rationale, true); err != nil {
		return err
	}
	return w.inStage(StageDeclared, StageAssessing)
}

func (w *incident) onAssess(ctx workflow.Context, in AssessInput) (*Status, error) {
	return w.locked(ctx, func() error { return w.validateAssess(ctx, in) }, func() error {
		if err := workflow.ExecuteActivity(w.act(ctx), acts.RecordAssessment, activities.AssessmentInput{
			IncidentID: w.in.IncidentID, Reportable: in.Reportable, Rationale: in.Rationale, Actor: in.Actor}).Get(ctx, nil); err != nil {
			return err
		}
		r := in.Reportable
		w.s.Reportable = &r
		if !r {
			return w.close(ctx, "not reportable: "+in.Rationale, in.Actor)
		}
		return w.setStage(ctx, StageScoping, in.Actor)
	})
}

func (w *incident) validateScope(_ workflow.Context, in ScopeInput) error {
	if err := requireActor(in.Actor); err != nil {
		return err
	}
	if in.Criteria.Empty() {
		return errors.New("scope: no criteria")
	}
	if err := in.Criteria.Validate(); err != nil {
		return err
	}
	return w.inStage(liveStages...)
}

// onScope resolves a new scope version: the ledger owes its new tenants every phase so
// far (sent once the version is approved), stops what is not yet sent to tenants that
// left it, and leaves what was sent alone.
func (w *incident) onScope(ctx workflow.Context, in ScopeInput) (*Status, error) {
	return w.locked(ctx, func() error { return w.validateScope(ctx, in) }, func() error {
		var res activities.ScopeResult
		if err := workflow.ExecuteActivity(w.bulk(ctx), acts.ResolveScope, activities.ScopeActivityInput{
			IncidentID: w.in.IncidentID, Criteria: in.Criteria, Actor: in.Actor}).Get(ctx, &res); err != nil {
			return err
		}
		if res.Total == 0 {
			// The snapshot stays in the audit trail; the incident keeps its scope.
			return fmt.Errorf("scope: no tenant matches these criteria (version %d is empty)", res.Version)
		}
		w.s.Scope = res
		// Approvers approve the notice for a scope version: a new version needs new approvals.
		w.s.Approved, w.s.Approvers = false, []string{}
		if err := w.refreshLedger(ctx); err != nil {
			return err
		}
		if w.s.Ledger.Unreleased > 0 {
			return w.setStage(ctx, StageApproval, in.Actor)
		}
		return nil
	})
}

func (w *incident) validateDraft(_ workflow.Context, in DraftInput) error {
	if err := requireActor(in.Actor); err != nil {
		return err
	}
	if !hashRe.MatchString(in.ContentHash) {
		return errors.New("content_hash: want the 64-hex-digit hash of a proposed draft")
	}
	if approved := w.approvedPhase(); in.Phase > 1 && in.Phase > approved {
		// The next phase's notice: drafted once the one before it was approved.
		switch {
		case in.Phase != approved+1:
			return fmt.Errorf("phase %d: the next phase is %d", in.Phase, approved+1)
		case w.s.FinalApproved:
			return fmt.Errorf("phase %d was the final notice; no phase follows it", approved)
		case w.s.Partner.Status == PartnerChangesRequested:
			return errors.New("the partner asked for changes to the current phase's notice: change that draft first")
		case w.s.Partner.Status == PartnerPending:
			// The next phase's review would supersede this one, and the covered tenants
			// would wait for a confirmation of a notice nobody reviews any more.
			return errors.New("the partner has not answered on the current phase's notice yet: wait for its decision, or override it")
		}
		return w.inStage(liveStages...)
	}
	if in.Phase > 0 && in.Phase < w.draftPhase() {
		return fmt.Errorf("phase %d: the current draft is for phase %d", in.Phase, w.draftPhase())
	}
	if w.s.Ledger.Unreleased > 0 && w.inStage(StagePartnerReview, StageNotifying, StageTracking) == nil {
		// Tenants still wait for an approved notice (after the partner asked for changes,
		// say) while others are being sent theirs: what is released keeps its hash.
		return nil
	}
	return w.inStage(StageDeclared, StageAssessing, StageScoping, StageApproval)
}

func (w *incident) onDraft(ctx workflow.Context, in DraftInput) (*Status, error) {
	return w.locked(ctx, func() error { return w.validateDraft(ctx, in) }, func() error {
		var hash string
		if err := workflow.ExecuteActivity(w.act(ctx), acts.SaveDraft, activities.DraftActivityInput{
			IncidentID: w.in.IncidentID, ContentHash: in.ContentHash, Actor: in.Actor}).Get(ctx, &hash); err != nil {
			return err
		}
		if hash != w.s.ContentHash {
			w.s.ContentHash, w.s.Approved, w.s.Approvers = hash, false, []string{}
		}
		if in.Phase > 0 {
			w.s.DraftPhase, w.s.DraftFinal = in.Phase, in.Final
		}
		return nil
	})
}

// draftPhase is the phase the current draft is for.
func (w *incident) draftPhase() int { return max(w.s.DraftPhase, 1) }

// approvedPhase is the latest phase approved; an incident from before phases had their
// own drafts counts every phase it released as approved.
func (w *incident) approvedPhase() int {
	if w.s.ApprovedPhase == 0 && w.s.Ledger.Released > 0 {
		return w.s.Ledger.Phases
	}
	return w.s.ApprovedPhase
}

func (w *incident) validateApprove(_ workflow.Context, in ApproveInput) error {
	s := w.s
	if err := requireActor(in.Actor); err != nil {
		return err
	}
	if err := w.inStage(liveStages...); err != nil {
		return err
	}
	switch {
	case s.Scope.Version == 0:
		return errors.New("there is no scope to approve the notice for yet")
	case s.ContentHash == "":
		return errors.New("there is no notice draft to approve yet")
	case in.ContentHash != s.ContentHash && in.ContentHash == s.ApprovedHash && w.draftPhase() > w.approvedPhase():
		// While the next phase's draft waits, the latest approved phase's notice may be
		// approved for the current scope version: tenants the scope gained get the phases
		// sent so far without waiting for the next one.
		if s.Ledger.Unreleased == 0 {
			return errors.New("every tenant in scope has the approved phases released already: approve the current draft")
		}
		return nil
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
}

// onApprove records an approval of the current (hash, scope version); the second
// distinct approver, as PostgreSQL counts them, releases what the ledger owes.
func (w *incident) onApprove(ctx workflow.Context, in ApproveInput) (*Status, error) {
	return w.locked(ctx, func() error { return w.validateApprove(ctx, in) }, func() error {
		s := w.s
		var n int
		if err := workflow.ExecuteActivity(w.act(ctx), acts.Approve, activities.ApproveActivityInput{
			IncidentID: w.in.IncidentID, ContentHash: in.ContentHash, ScopeVersion: s.Scope.Version, Actor: in.Actor}).Get(ctx, &n); err != nil {
			return err
		}
		if in.ContentHash != s.ContentHash {
			// The latest approved phase's notice, for the current scope version (see
			// validateApprove): PostgreSQL counts its approvers for that version.
			if n < 2 {
				return nil
			}
			return w.release(ctx, in.ContentHash, s.Scope.Version)
		}
		s.Approvers = append(s.Approvers, in.Actor)
		s.Approved = n >= 2
		if !s.Approved {
			return nil
		}
		return w.approved(ctx, in.Actor)
	})
}

// approved opens the phase the approved draft is for, when it is a new one, and releases
// what the ledger owes under it. A retry runs it again when it failed half way.
func (w *incident) approved(ctx workflow.Context, actor string) error {
	s := w.s
	if p := w.draftPhase(); p > w.approvedPhase() {
		if p > 1 {
			// Every tenant in scope is owed the new phase from its approval.
			var phase int
			if err := workflow.ExecuteActivity(w.bulk(ctx), acts.OpenDraftPhase, activities.OpenDraftPhaseInput{
				IncidentID: w.in.IncidentID, ContentHash: s.ContentHash, Actor: actor}).Get(ctx, &phase); err != nil {
				return err
			}
			s.Phases = phase
		}
		s.ApprovedPhase, s.FinalApproved = p, s.DraftFinal
	}
	if w.draftPhase() == w.approvedPhase() {
		s.ApprovedHash = s.ContentHash
	}
	return w.release(ctx, s.ContentHash, s.Scope.Version)
}

// pendingReview refuses unless a partner review is waiting for a decision.
func (w *incident) pendingReview() error {
	if w.r.Review == nil || w.r.Review.Decided || w.s.Partner.Status != PartnerPending {
		return errors.New("no partner review is pending")
	}
	return nil
}

func (w *incident) validatePartnerDecision(_ workflow.Context, in PartnerDecisionInput) error {
	if err := requireActor(in.Actor); err != nil {
		return err
	}
	if err := w.pendingReview(); err != nil {
		return err
	}
	if in.ContentHash != w.s.Partner.ContentHash {
		return fmt.Errorf("content_hash %q is not the draft under review (%s)", in.ContentHash, w.s.Partner.ContentHash)
	}
	if !in.Confirm && strings.TrimSpace(in.Comment) == "" {
		return errors.New("comment: say what should change")
	}
	return checkText("comment", in.Comment, false)
}

func (w *incident) onPartnerDecision(ctx workflow.Context, in PartnerDecisionInput) (*Status, error) {
	return w.locked(ctx, func() error { return w.validatePartnerDecision(ctx, in) }, func() error {
		status := PartnerChangesRequested
		if in.Confirm {
			status = PartnerConfirmed
		}
		return w.decide(ctx, status, in.Comment, in.Actor)
	})
}

func (w *incident) validateOverride(_ workflow.Context, in OverrideInput) error {
	if err := requireActor(in.Actor); err != nil {
		return err
	}
	if err := w.pendingReview(); err != nil {
		return err
	}
	return checkText("justification", in.Justification, true)
}

func (w *incident) onOverride(ctx workflow.Context, in OverrideInput) (*Status, error) {
	return w.locked(ctx, func() error { return w.validateOverride(ctx, in) }, func() error {
		return w.decide(ctx, PartnerOverridden, in.Justification, in.Actor)
	})
}

// decide records the partner gate's outcome: a confirmation or override releases the
// covered tenants of the reviewed (hash, version); a request for changes sends the notice
// back to drafting and approval.
func (w *incident) decide(ctx workflow.Context, status PartnerStatus, comment, actor string) error {
	s := w.s
	if err := workflow.ExecuteActivity(w.act(ctx), acts.DecidePartner, activities.DecisionInput{
		IncidentID: w.in.IncidentID, Status: string(status), Comment: comment, Actor: actor}).Get(ctx, nil); err != nil {
		return err
	}
	w.r.Review.Decided = true
	s.Partner.Status, s.Partner.Comment = status, comment
	if status == PartnerChangesRequested {
		if s.ContentHash == s.Partner.ContentHash {
			s.Approved, s.Approvers, s.RejectedHash = false, []string{}, s.ContentHash
		}
		return w.setStage(ctx, StageApproval, actor)
	}
	return w.release(ctx, s.Partner.ContentHash, s.Partner.ScopeVersion)
}

// errFollowupIsADraft refuses the old follow-up: it sent the approved notice again, and
// now that every phase has its own draft that could not say what changed.
var errFollowupIsADraft = errors.New("a follow-up is the next phase's own notice draft, saying what changed: propose it (breachflow incident followup ID -f FILE) and approve it")

func (w *incident) validateFollowup(_ workflow.Context, in FollowupInput) error {
	if err := requireActor(in.Actor); err != nil {
		return err
	}
	return errFollowupIsADraft
}

// followupApplies is the check the follow-up passed when it was accepted; its handler
// re-checks it under the lock, so replays of histories that took it run as they did.
func (w *incident) followupApplies(in FollowupInput) error {
	if err := requireActor(in.Actor); err != nil {
		return err
	}
	if err := w.inStage(StageNotifying, StageTracking); err != nil {
		return err
	}
	if !w.s.Approved {
		return errors.New("the current notice is not approved for the current scope version: approve it first")
	}
	return nil
}

// onFollowup opens an update phase carrying the current approved notice: every tenant in
// scope is owed it once, and a pass sends it. Its validator refuses it now; the replays of
// histories that took it still run it.
func (w *incident) onFollowup(ctx workflow.Context, in FollowupInput) (*Status, error) {
	return w.locked(ctx, func() error { return w.followupApplies(in) }, func() error {
		var phase int
		if err := workflow.ExecuteActivity(w.bulk(ctx), acts.OpenPhase, activities.OpenPhaseInput{
			IncidentID: w.in.IncidentID, Kind: "update", Actor: in.Actor}).Get(ctx, &phase); err != nil {
			return err
		}
		w.s.Phases = phase
		// The phase it opened carries the approved notice: it counts as approved.
		w.s.ApprovedPhase = max(w.s.ApprovedPhase, phase)
		return w.release(ctx, w.s.ContentHash, w.s.Scope.Version)
	})
}

func (w *incident) validateRetry(_ workflow.Context, in RetryInput) error {
	if err := requireActor(in.Actor); err != nil {
		return err
	}
	return w.inStage(StageApproval, StagePartnerReview, StageNotifying, StageTracking)
}

// onRetry asks for a pass now for everything owed and released (after a refused key was
// fixed, say); what was sent is not sent again.
func (w *incident) onRetry(ctx workflow.Context, in RetryInput) (*Status, error) {
	return w.locked(ctx, func() error { return w.validateRetry(ctx, in) }, func() error {
		if w.s.Approved && w.draftPhase() > w.approvedPhase() {
			// The approval's phase did not open (a failure after the second approval).
			if err := w.approved(ctx, in.Actor); err != nil {
				return err
			}
		}
		w.r.PassWanted = true
		return workflow.ExecuteActivity(w.act(ctx), acts.Audit, activities.AuditInput{IncidentID: w.in.IncidentID, Actor: in.Actor,
			Action: "notice.retry_requested"}).Get(ctx, nil)
	})
}

// onDeliveryFailures coalesces bounce and drop reports: one pass after FailureCoalesce,
// however many arrive meanwhile.
func (w *incident) onDeliveryFailures(ctx workflow.Context) {
	if w.closed() || !w.r.FailuresAt.IsZero() {
		return
	}
	w.r.FailuresAt = workflow.Now(ctx).Add(w.t.FailureCoalesce)
	w.poke()
}

func (w *incident) validateClose(_ workflow.Context, in CloseInput) error {
	if err := requireActor(in.Actor); err != nil {
		return err
	}
	if w.closed() {
		return errors.New("already closed")
	}
	l := w.s.Ledger
	allAcked := l.Tenants > 0 && l.Acknowledged >= l.Tenants
	if strings.TrimSpace(in.Reason) == "" && !allAcked && !l.FinalDelivered {
		return errors.New("reason: required until every tenant has acknowledged or has been sent the final notice")
	}
	return checkText("reason", in.Reason, false)
}

func (w *incident) onClose(ctx workflow.Context, in CloseInput) (*Status, error) {
	return w.locked(ctx, func() error { return w.validateClose(ctx, in) }, func() error {
		reason := in.Reason
		switch {
		case reason != "":
		case w.s.Ledger.Tenants > 0 && w.s.Ledger.Acknowledged >= w.s.Ledger.Tenants:
			reason = "all tenants acknowledged"
		default:
			reason = "final notice sent to every tenant in scope"
		}
		return w.close(ctx, reason, in.Actor)
	})
}
