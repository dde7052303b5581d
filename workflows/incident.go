package workflows

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/workflow"

	"github.com/breachflow/breachflow/activities"
	"github.com/breachflow/breachflow/internal/store"
)

// Bounds on what the status keeps of lists that grow with time.
const (
	maxPassesKept = 20
	maxAlertsKept = 50
)

// incident is the running state of one IncidentWorkflow. Every handler and the main
// line take mu before they read state they act on, and handlers re-check their request
// after taking it (the validator ran before, on possibly older state).
type incident struct {
	in IncidentInput
	t  Timing
	s  *Status
	r  *Resume
	mu workflow.Mutex
	// wake changes whenever a handler or signal changed something the main line or the
	// deadline clock should look at.
	wake int
	// failures receives the delivery-failure signals.
	failures workflow.ReceiveChannel
}

// IncidentWorkflow runs one incident from declaration to closure. It holds IDs, versions
// and counts; what every tenant is owed lives in the ledger, and the workflow reconciles
// against it: on approval, partner decision or override, scope change, delivery failures
// (coalesced), reminders, a new phase and a manual retry, it releases what the approvals
// allow and runs a notification pass for what is owed and released. Responders drive it
// with Updates; QueryStatus reports it.
func IncidentWorkflow(ctx workflow.Context, in IncidentInput) (*Status, error) {
	w := &incident{in: in, t: in.Timing.WithDefaults(), mu: workflow.NewMutex(ctx)}
	if in.Resume != nil {
		w.r = in.Resume
	} else {
		w.r = &Resume{Status: Status{IncidentID: in.IncidentID, Stage: StageDeclared, Approvers: []string{}, Alerts: []string{},
			Passes: []PassResult{}, NextPass: 1, Partner: PartnerGate{Name: in.Partner}}}
	}
	if w.r.Alerted == nil {
		w.r.Alerted = map[string]int{}
	}
	w.s = &w.r.Status
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
		if err := workflow.ExecuteActivity(w.act(ctx), acts.SaveDraft,
			activities.DraftActivityInput{IncidentID: in.IncidentID, Actor: "system"}).Get(ctx, &hash); err != nil {
			if !isType(err, activities.ErrTypeInvalidInput) {
				return nil, err
			}
			workflow.GetLogger(ctx).Warn("declared draft refused", "incident_id", in.IncidentID)
		}
		w.s.ContentHash = hash
		err := w.setStage(ctx, StageAssessing, "system")
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
		// Signals already delivered to this run but not yet received would be lost.
		var n int
		for w.failures.ReceiveAsync(&n) {
			w.onDeliveryFailures(ctx)
		}
		next := in
		next.Resume = w.r
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

// bulk is for activities whose work grows with the scope (resolving it, releasing or
// counting the ledger): at a million tenants they take more than a minute.
func (w *incident) bulk(ctx workflow.Context) workflow.Context {
	return activityCtx(ctx, 15*time.Minute)
}

// setStage moves the incident to stage: in memory first, so that no validator sees the
// old stage while the activity records it, then in PostgreSQL.
func (w *incident) setStage(ctx workflow.Context, stage Stage, actor string) error {
	if w.s.Stage == stage {
		return nil
	}
	w.s.Stage = stage
	return workflow.ExecuteActivity(w.act(ctx), acts.SetStage, activities.StageInput{IncidentID: w.in.IncidentID, Stage: string(stage), Actor: actor}).Get(ctx, nil)
}

func (w *incident) closed() bool { return w.s.Stage == StageClosed }

func (w *incident) poke() { w.wake++ }

// step is what the main line does next, decided under the lock.
type step int

const (
	stepWait step = iota
	stepNotify
	stepRemind
	stepClose
)

// run is the main line: after a reportable assessment it reconciles the ledger until the
// incident is closed.
func (w *incident) run(ctx workflow.Context) error {
	s := w.s
	if err := workflow.Await(ctx, func() bool { return s.Reportable != nil || w.closed() }); err != nil {
		return err
	}
	if w.closed() || !*s.Reportable {
		return nil // a not-reportable incident was closed by the assess handler, documented in the audit log
	}
	for !w.closed() {
		if err := w.mu.Lock(ctx); err != nil {
			return err
		}
		next, phases, err := w.reconcile(ctx)
		w.mu.Unlock()
		if err != nil {
			return err
		}
		switch next {
		case stepNotify:
			for _, phase := range phases {
				kind := store.RoundInitial
				if phase > 1 {
					kind = store.RoundFollowup
				}
				if err := w.pass(ctx, kind, phase); err != nil {
					return err
				}
			}
			continue
		case stepRemind:
			if err := w.pass(ctx, store.RoundReminder, 0); err != nil {
				return err
			}
			continue
		case stepClose:
			if err := w.mu.Lock(ctx); err != nil {
				return err
			}
			err := w.close(ctx, "all tenants acknowledged", "system")
			w.mu.Unlock()
			return err
		}
		if workflow.GetInfo(ctx).GetCurrentHistoryLength() > w.t.HistoryLimit {
			return errContinue
		}
		if err := w.wait(ctx); err != nil {
			return err
		}
	}
	return nil
}

// reconcile reads the ledger, releases what the approvals and the partner allow, keeps
// the partner review going, sets the stage the ledger implies and says what to do next.
// It runs under the lock.
func (w *incident) reconcile(ctx workflow.Context) (step, []int, error) {
	s, r := w.s, w.r
	if w.closed() {
		return stepWait, nil, nil
	}
	now := workflow.Now(ctx)
	if !r.FailuresAt.IsZero() && !now.Before(r.FailuresAt) {
		r.FailuresAt, r.PassWanted = time.Time{}, true
	}
	if err := w.refreshLedger(ctx); err != nil {
		return stepWait, nil, err
	}
	if s.Scope.Version == 0 {
		return stepWait, nil, w.setStage(ctx, StageScoping, "system")
	}
	if err := w.partnerTimers(ctx, now); err != nil {
		return stepWait, nil, err
	}
	l := s.Ledger
	plannable := len(l.PlannablePhases) > 0
	if plannable && !r.PassWanted && r.RetryAt.IsZero() {
		// Owed and released with no pass asked for (a delivery-failure signal that never
		// came, say): the ledger is the reason enough.
		r.RetryAt = now.Add(w.t.FailureCoalesce)
	}
	retryDue := !r.RetryAt.IsZero() && !now.Before(r.RetryAt)
	var next step
	switch {
	case plannable && (r.PassWanted || retryDue):
		next = stepNotify
	case l.RemindersDue > 0 && !now.Before(r.RemindAt):
		next = stepRemind
		r.RemindAt = now.Add(w.t.ReminderCoalesce)
	case l.Tenants > 0 && l.Acknowledged >= l.Tenants && l.Unreleased == 0 && !plannable:
		return stepClose, nil, nil
	}
	if !plannable {
		r.RetryAt, r.Retries = time.Time{}, 0
	}
	stage := StageTracking
	switch {
	case next == stepNotify || plannable:
		stage = StageNotifying // tenants are owed and released: not yet notified
	case l.Unreleased > 0 && s.Approved && s.Partner.Status == PartnerPending:
		stage = StagePartnerReview
	case l.Unreleased > 0:
		stage = StageApproval
	}
	if err := w.setStage(ctx, stage, "system"); err != nil {
		return stepWait, nil, err
	}
	if next == stepNotify {
		r.PassWanted = false
		return next, slices.Clone(l.PlannablePhases), nil
	}
	return next, nil, nil
}

func (w *incident) refreshLedger(ctx workflow.Context) error {
	// Decoded into a fresh value: decoding over the old one would keep fields the new
	// answer omits (an empty list of plannable phases, say).
	var l activities.LedgerSummary
	if err := workflow.ExecuteActivity(w.bulk(ctx), acts.Ledger, activities.LedgerInput{IncidentID: w.in.IncidentID, ReminderAfter: w.t.ReminderAfter}).
		Get(ctx, &l); err != nil {
		return err
	}
	w.s.Ledger = l
	return nil
}

// release releases what the ledger owes under an approved (hash, scope version) and
// opens a partner review when covered tenants still wait for one of this pair. It runs
// under the lock, from the handler whose approval or decision allows it.
func (w *incident) release(ctx workflow.Context, hash string, version int) error {
	s, r := w.s, w.r
	var res activities.ReleaseResult
	if err := workflow.ExecuteActivity(w.bulk(ctx), acts.Release, activities.ReleaseInput{IncidentID: w.in.IncidentID,
		ContentHash: hash, ScopeVersion: version, Actor: "system"}).Get(ctx, &res); err != nil {
		return err
	}
	// Validators read the ledger's counts: let them see the release at once.
	if err := w.refreshLedger(ctx); err != nil {
		return err
	}
	s.Partner.Covered = res.AwaitReview
	s.Partner.Required = w.in.Partner != "" && res.AwaitReview > 0
	if res.Released > 0 {
		r.PassWanted = true
		if err := w.setStage(ctx, StageNotifying, "system"); err != nil {
			return err
		}
	}
	if !s.Partner.Required || hash != s.ContentHash || version != s.Scope.Version {
		return nil
	}
	if s.Partner.ContentHash == hash && s.Partner.ScopeVersion == version && s.Partner.Status != PartnerNone {
		return nil // this pair is under review, or was decided
	}
	now := workflow.Now(ctx)
	r.Review = &Review{OpenedAt: now, Due: now.Add(w.t.PartnerResponse)}
	s.Partner.Status, s.Partner.ContentHash, s.Partner.ScopeVersion = PartnerPending, hash, version
	s.Partner.Comment, s.Partner.Alerted, s.Partner.Reminded = "", false, 0
	if res.Released == 0 {
		if err := w.setStage(ctx, StagePartnerReview, "system"); err != nil {
			return err
		}
	}
	return workflow.ExecuteActivity(w.act(ctx), acts.OpenPartnerReview, activities.PartnerReviewInput{
		IncidentID: w.in.IncidentID, Partner: w.in.Partner, ContentHash: hash, ScopeVersion: version,
		Covered: res.AwaitReview, DueAt: r.Review.Due}).Get(ctx, nil)
}

// partnerTimers reminds the partner at the configured fractions of its response time and
// alerts the responders at its deadline.
func (w *incident) partnerTimers(ctx workflow.Context, now time.Time) error {
	s, rv := w.s, w.r.Review
	if rv == nil || rv.Decided || s.Partner.Status != PartnerPending {
		return nil
	}
	if s.Partner.Reminded < len(w.t.PartnerReminders) && !now.Before(w.partnerReminderAt(s.Partner.Reminded)) {
		// A reminder that cannot be sent is logged, not fatal: the deadline alert follows.
		if err := workflow.ExecuteActivity(w.act(ctx), acts.RemindPartner, activities.PartnerNudgeInput{
			IncidentID: w.in.IncidentID, Partner: w.in.Partner, DueAt: rv.Due}).Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Error("partner reminder failed", "incident_id", w.in.IncidentID, "error", err)
		}
		s.Partner.Reminded++
	}
	if !s.Partner.Alerted && !now.Before(rv.Due) {
		if err := w.alert(ctx, "partner_silent", s.Partner.Covered,
			fmt.Sprintf("partner %s has not answered by its deadline; %d covered tenants wait; a responder may override with a justification",
				w.in.Partner, s.Partner.Covered)); err != nil {
			return err
		}
		s.Partner.Alerted = true
	}
	return nil
}

func (w *incident) partnerReminderAt(i int) time.Time {
	return w.r.Review.OpenedAt.Add(time.Duration(w.t.PartnerReminders[i] * float64(w.t.PartnerResponse)))
}

// wait sleeps until a handler or signal changes something, or until the next thing due:
// coalesced delivery failures, an automatic retry, a reminder, a partner timer, or the
// periodic reconciliation.
func (w *incident) wait(ctx workflow.Context) error {
	s, r := w.s, w.r
	now := workflow.Now(ctx)
	d := w.t.AckCheckInterval
	due := func(at time.Time) {
		if !at.IsZero() && at.Sub(now) < d {
			d = max(at.Sub(now), 0)
		}
	}
	due(r.FailuresAt)
	due(r.RetryAt)
	if s.Ledger.RemindersDue > 0 {
		due(r.RemindAt)
	} else if s.Ledger.NextReminderAt != nil {
		due(later(*s.Ledger.NextReminderAt, r.RemindAt))
	}
	if rv := r.Review; rv != nil && !rv.Decided && s.Partner.Status == PartnerPending {
		if s.Partner.Reminded < len(w.t.PartnerReminders) {
			due(w.partnerReminderAt(s.Partner.Reminded))
		}
		if !s.Partner.Alerted {
			due(rv.Due)
		}
	}
	// A floor: the ledger counts on the database's clock, this on the workflow's; a small
	// skew must not turn the loop into a busy one.
	d = max(d, time.Second)
	seen := w.wake
	_, err := workflow.AwaitWithTimeout(ctx, d, func() bool { return w.wake != seen || w.closed() })
	return err
}

// pass runs one notification pass as a child workflow and records its outcome. A pass
// that leaves tenants owed (refused pages, no deliverable contact) alerts the responders
// and schedules an automatic retry; the tenants stay owed in the ledger.
func (w *incident) pass(ctx workflow.Context, kind string, phase int) error {
	s, r := w.s, w.r
	n := s.NextPass
	s.NextPass++
	in := PassInput{Plan: activities.PlanStepInput{IncidentID: w.in.IncidentID, Pass: n, Kind: kind, Phase: phase, ScopeVersion: s.Scope.Version,
		Chunk: w.t.PlanChunk, PageSize: w.t.PageSize, TokenTTL: w.t.TokenTTL},
		Lanes: w.t.PlanLanes, Window: w.t.Window, PagesPerRun: w.t.PagesPerRun}
	if phase == 0 {
		in.Plan.ReminderAfter, in.Plan.EscalateFrom = w.t.ReminderAfter, w.t.EscalateFromRound
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            PassWorkflowID(w.in.IncidentID, n),
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		ParentClosePolicy:     enums.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
	})
	f := workflow.ExecuteChildWorkflow(cctx, NotifyPassWorkflow, in)
	if err := workflow.Await(ctx, func() bool { return f.IsReady() || w.closed() }); err != nil {
		return err
	}
	if w.closed() && !f.IsReady() {
		return nil // the pass is cancelled when the incident's workflow ends
	}
	var res PassResult
	if err := f.Get(ctx, &res); err != nil {
		res = PassResult{Pass: n, Kind: kind, Phase: phase, Error: err.Error()}
	}
	s.Passes = append(s.Passes, res)
	if len(s.Passes) > maxPassesKept {
		s.Passes = s.Passes[len(s.Passes)-maxPassesKept:]
	}
	if err := w.mu.Lock(ctx); err != nil {
		return err
	}
	defer w.mu.Unlock()
	if err := w.refreshLedger(ctx); err != nil {
		return err
	}
	l := s.Ledger
	if res.Error != "" {
		s.LastError = res.Error
	}
	if phase == 0 {
		return nil
	}
	if l.Failed > 0 && (res.FailedPages > 0 || res.Error != "") {
		msg := fmt.Sprintf("%d tenants were not notified: %s; they stay owed and will be retried (or run: breachflow incident retry %s)",
			l.Failed, firstLine(coalesce(res.Error, l.LastError)), w.in.IncidentID)
		if err := w.alert(ctx, "send_failed", l.Failed, msg); err != nil {
			return err
		}
	}
	if l.Unreachable > r.Alerted["unreachable"] {
		msg := fmt.Sprintf("%d tenants have no deliverable contact left and cannot be notified until their contacts are fixed", l.Unreachable)
		if err := w.alert(ctx, "unreachable", l.Unreachable, msg); err != nil {
			return err
		}
	}
	r.Alerted["unreachable"] = l.Unreachable
	if len(l.PlannablePhases) > 0 {
		wait := w.t.AckCheckInterval
		if r.Retries < len(w.t.RetryAfter) {
			wait = w.t.RetryAfter[r.Retries]
		}
		r.Retries++
		r.RetryAt = workflow.Now(ctx).Add(wait)
	} else {
		r.RetryAt, r.Retries = time.Time{}, 0
	}
	return nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if utf8.RuneCountInString(s) > 300 {
		s = string([]rune(s)[:300]) + "…"
	}
	return s
}

func coalesce(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (w *incident) alert(ctx workflow.Context, kind string, tenants int, msg string) error {
	w.s.Alerts = append(w.s.Alerts, kind)
	if len(w.s.Alerts) > maxAlertsKept {
		w.s.Alerts = w.s.Alerts[len(w.s.Alerts)-maxAlertsKept:]
	}
	return workflow.ExecuteActivity(w.act(ctx), acts.AlertResponders, activities.AlertInput{IncidentID: w.in.IncidentID, Kind: kind,
		Tenants: tenants, Message: msg}).Get(ctx, nil)
}

func (w *incident) close(ctx workflow.Context, reason, actor string) error {
	if err := workflow.ExecuteActivity(w.act(ctx), acts.CloseIncident, activities.CloseInput{IncidentID: w.in.IncidentID, Reason: reason, Actor: actor}).Get(ctx, nil); err != nil {
		return err
	}
	w.s.Stage, w.s.CloseReason = StageClosed, reason
	w.poke()
	return nil
}

// riskFractions are the configured alert points plus 100 %, ascending and distinct.
func (w *incident) riskFractions() []float64 {
	fs := append(slices.Clone(w.t.DeadlineAlerts), 1)
	slices.Sort(fs)
	return slices.Compact(fs)
}

// deadlineClock alerts the responders, per tenant, when owed tenants pass a fraction of
// the time to their deadline, naming how many; a point already passed (even at scoping)
// alerts at once. An alert repeats only when more tenants have reached its point.
func (w *incident) deadlineClock(ctx workflow.Context) {
	s, r := w.s, w.r
	fractions := w.riskFractions()
	for !w.closed() {
		if err := workflow.Await(ctx, func() bool { return s.Scope.Version > 0 || w.closed() }); err != nil || w.closed() {
			return
		}
		seen := w.wake
		var res activities.DeadlineRiskResult
		if err := workflow.ExecuteActivity(w.bulk(ctx), acts.DeadlineRisk, activities.DeadlineRiskInput{IncidentID: w.in.IncidentID,
			Fractions: fractions}).Get(ctx, &res); err != nil {
			workflow.GetLogger(ctx).Error("deadline check failed", "incident_id", w.in.IncidentID, "error", err)
			if workflow.Sleep(ctx, time.Minute) != nil {
				return
			}
			continue
		}
		higher := 0
		for i := len(res.Levels) - 1; i >= 0; i-- {
			lv := res.Levels[i]
			pct := int(math.Round(lv.Fraction * 100))
			key := "deadline_" + strconv.Itoa(pct)
			if lv.Tenants > r.Alerted[key] && lv.Tenants > higher && !w.closed() {
				if err := w.alert(ctx, key, lv.Tenants, riskMessage(pct, lv)); err != nil {
					workflow.GetLogger(ctx).Error("deadline alert failed", "incident_id", w.in.IncidentID, "error", err)
				}
			}
			r.Alerted[key] = lv.Tenants
			higher = max(higher, lv.Tenants)
		}
		d := w.t.AckCheckInterval
		if res.Next != nil {
			d = max(res.Next.Sub(workflow.Now(ctx)), time.Second)
		}
		if _, err := workflow.AwaitWithTimeout(ctx, d, func() bool { return w.wake != seen || w.closed() }); err != nil {
			return
		}
	}
}

func riskMessage(pct int, lv activities.RiskCount) string {
	earliest := ""
	if lv.Earliest != nil {
		earliest = " (earliest deadline " + lv.Earliest.UTC().Format(time.RFC3339) + ")"
	}
	if pct >= 100 {
		return fmt.Sprintf("%d tenants are past their notification deadline and still not notified%s", lv.Tenants, earliest)
	}
	return fmt.Sprintf("%d tenants have used %d%% of the time to their deadline and are not notified yet%s", lv.Tenants, pct, earliest)
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
