package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/breachflow/breachflow/internal/mail"
	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
)

// StageInput moves an incident to a stage.
type StageInput struct {
	IncidentID string         `json:"incident_id"`
	Stage      string         `json:"stage"`
	Actor      string         `json:"actor"`
	Detail     map[string]any `json:"detail,omitempty"`
}

// SetStage records a stage change and audits it.
func (a *Activities) SetStage(ctx context.Context, in StageInput) error {
	return classify(a.Store.SetStage(ctx, in.IncidentID, in.Stage, in.Actor, in.Detail))
}

// AssessmentInput is a reportability decision for one incident.
type AssessmentInput struct {
	IncidentID string `json:"incident_id"`
	Reportable bool   `json:"reportable"`
	Rationale  string `json:"rationale"`
	Actor      string `json:"actor"`
}

// RecordAssessment stores the reportability decision.
func (a *Activities) RecordAssessment(ctx context.Context, in AssessmentInput) error {
	return classify(a.Store.RecordAssessment(ctx, in.IncidentID, in.Reportable, in.Rationale, in.Actor))
}

// ScopeActivityInput resolves a scope version.
type ScopeActivityInput struct {
	IncidentID string              `json:"incident_id"`
	Criteria   store.ScopeCriteria `json:"criteria"`
	Actor      string              `json:"actor"`
}

// ScopeResult counts one scope version; no tenant list crosses into a workflow.
type ScopeResult struct {
	Version        int       `json:"version"`
	Total          int       `json:"total"`
	PartnerCovered int       `json:"partner_covered"`
	Added          int       `json:"added"`
	Removed        int       `json:"removed"`
	Earliest       time.Time `json:"earliest_deadline"`
}

// ResolveScope writes a new scope snapshot, makes the ledger follow it and returns its counts.
func (a *Activities) ResolveScope(ctx context.Context, in ScopeActivityInput) (ScopeResult, error) {
	res, err := a.Store.ResolveScope(ctx, in.IncidentID, in.Criteria, in.Actor)
	return ScopeResult{Version: res.Version, Total: res.Total, PartnerCovered: res.PartnerCovered, Added: res.Added,
		Removed: res.Removed, Earliest: res.Earliest}, classify(err)
}

// DraftActivityInput makes a proposed draft the incident's current notice.
type DraftActivityInput struct {
	IncidentID  string `json:"incident_id"`
	ContentHash string `json:"content_hash"` // empty: the draft stored with the declaration
	Actor       string `json:"actor"`
}

// SaveDraft checks the proposed draft with ContentHash (or the one stored with the
// declaration) and makes it current, returning its hash ("" when there is none).
func (a *Activities) SaveDraft(ctx context.Context, in DraftActivityInput) (string, error) {
	var raw []byte
	if in.ContentHash == "" {
		inc, err := a.Store.GetIncident(ctx, in.IncidentID)
		if err != nil {
			return "", classify(err)
		}
		raw = inc.NoticeDraft
		// The declaration's notice was drafted by its declarer, who may not approve it.
		in.Actor = inc.DeclaredBy
	} else {
		var err error
		if raw, err = a.Store.GetDraft(ctx, in.IncidentID, in.ContentHash); err != nil {
			return "", classify(err)
		}
	}
	if len(raw) == 0 {
		return "", nil
	}
	canonical, hash, err := canonicalDraft(raw)
	if err != nil {
		return "", temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidInput, err)
	}
	if in.ContentHash != "" && hash != in.ContentHash {
		return "", temporal.NewNonRetryableApplicationError("stored draft does not match its hash", ErrTypeInvalidInput, nil)
	}
	return hash, classify(a.Store.SaveDraft(ctx, in.IncidentID, canonical, hash, in.Actor))
}

// canonicalDraft validates raw and returns its canonical encoding and content hash.
func canonicalDraft(raw []byte) ([]byte, string, error) {
	d, err := ParseDraft(raw)
	if err != nil {
		return nil, "", err
	}
	canonical, err := json.Marshal(d)
	return canonical, notice.ContentHash(d), err
}

// ParseDraft decodes and validates a notice draft.
func ParseDraft(raw []byte) (notice.Draft, error) {
	var d notice.Draft
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return d, fmt.Errorf("notice draft: %w", err)
	}
	return d, notice.Validate(d)
}

// ApproveActivityInput approves a content hash for a scope version.
type ApproveActivityInput struct {
	IncidentID   string `json:"incident_id"`
	ContentHash  string `json:"content_hash"`
	ScopeVersion int    `json:"scope_version"`
	Actor        string `json:"actor"`
}

// Approve records an approval and returns the number of distinct approvers of the hash
// for the scope version.
func (a *Activities) Approve(ctx context.Context, in ApproveActivityInput) (int, error) {
	if err := a.untranslated(ctx, in.IncidentID, in.ContentHash); err != nil {
		return 0, err
	}
	n, err := a.Store.Approve(ctx, in.IncidentID, in.ContentHash, in.ScopeVersion, in.Actor)
	return n, classify(err)
}

// ReleaseInput releases what the ledger owes under an approved (hash, scope version).
type ReleaseInput struct {
	IncidentID   string `json:"incident_id"`
	ContentHash  string `json:"content_hash"`
	ScopeVersion int    `json:"scope_version"`
	Actor        string `json:"actor"`
}

// ReleaseResult counts a release.
type ReleaseResult struct {
	Released    int `json:"released"`     // tenant-phases released now
	AwaitReview int `json:"await_review"` // covered tenant-phases still waiting for the partner
}

// Release marks the owed tenant-phases sendable; the database refuses a hash that two
// people did not approve for the version.
func (a *Activities) Release(ctx context.Context, in ReleaseInput) (ReleaseResult, error) {
	n, waiting, err := a.Store.Release(ctx, in.IncidentID, in.ContentHash, in.ScopeVersion, in.Actor)
	return ReleaseResult{Released: n, AwaitReview: waiting}, classify(err)
}

// OpenPhaseInput opens the next notice phase.
type OpenPhaseInput struct {
	IncidentID string `json:"incident_id"`
	Kind       string `json:"kind"`
	Actor      string `json:"actor"`
}

// OpenPhase owes every tenant in scope a new phase and returns its number.
func (a *Activities) OpenPhase(ctx context.Context, in OpenPhaseInput) (int, error) {
	n, err := a.Store.OpenPhase(ctx, in.IncidentID, in.Kind, in.Actor)
	return n, classify(err)
}

// PartnerReviewInput opens a partner review.
type PartnerReviewInput struct {
	IncidentID   string    `json:"incident_id"`
	Partner      string    `json:"partner"`
	ContentHash  string    `json:"content_hash"`
	ScopeVersion int       `json:"scope_version"`
	Covered      int       `json:"covered"`
	DueAt        time.Time `json:"due_at"`
}

// OpenPartnerReview opens the review and emails the partner team a review request.
func (a *Activities) OpenPartnerReview(ctx context.Context, in PartnerReviewInput) (int64, error) {
	r, err := a.Store.OpenPartnerReview(ctx, in.IncidentID, in.Partner, in.ContentHash, in.ScopeVersion, in.Covered, in.DueAt)
	if err != nil {
		return 0, classify(err)
	}
	p, err := a.Store.GetPartner(ctx, in.Partner)
	if err != nil {
		return 0, classify(err)
	}
	subject := fmt.Sprintf("[breachflow] Joint notification review requested: %s", in.IncidentID)
	body := fmt.Sprintf("Incident %s needs your team's review before the notice goes to the %d tenants that also use %s.\n"+
		"Content hash: %s\nPlease confirm or request changes by %s:\n%s/console/partner\n",
		in.IncidentID, in.Covered, p.Service, in.ContentHash, in.DueAt.UTC().Format(time.RFC1123), strings.TrimRight(a.PublicURL, "/"))
	return r.ID, a.partnerEmail(ctx, in.IncidentID, p.TeamEmails, subject, body)
}

// partnerEmail sends the partner team a message; a refusal for good (the key itself, say)
// is raised to the responders instead of failing the review, which stays open in the
// console and the API for the partner to answer.
func (a *Activities) partnerEmail(ctx context.Context, incidentID string, to []string, subject, body string) error {
	err := a.sendPlain(ctx, incidentID, to, subject, body)
	var appErr *temporal.ApplicationError
	if err == nil || !errors.As(err, &appErr) || !appErr.NonRetryable() {
		return err
	}
	a.Logger.Error("partner email refused", zap.String("incident_id", incidentID), zap.Error(err))
	return a.AlertResponders(ctx, AlertInput{IncidentID: incidentID, Kind: "partner_email_failed",
		Message: "the partner team could not be emailed: " + err.Error() + "; its review waits in the console"})
}

// PartnerNudgeInput reminds a partner of its pending review.
type PartnerNudgeInput struct {
	IncidentID string    `json:"incident_id"`
	Partner    string    `json:"partner"`
	DueAt      time.Time `json:"due_at"`
}

// RemindPartner emails the partner team a reminder of the pending review.
func (a *Activities) RemindPartner(ctx context.Context, in PartnerNudgeInput) error {
	p, err := a.Store.GetPartner(ctx, in.Partner)
	if err != nil {
		return classify(err)
	}
	if _, err := a.Store.AppendAudit(ctx, store.AuditEntry{IncidentID: in.IncidentID, Actor: "system", Action: "partner.reminded",
		Detail: map[string]any{"partner": in.Partner}}); err != nil {
		return err
	}
	subject := fmt.Sprintf("[breachflow] Reminder: joint notification review for %s is due %s", in.IncidentID, in.DueAt.UTC().Format(time.RFC1123))
	return a.partnerEmail(ctx, in.IncidentID, p.TeamEmails, subject, "Your team's review is still pending.\n"+strings.TrimRight(a.PublicURL, "/")+"/console/partner\n")
}

// DecisionInput records the outcome of the pending partner review.
type DecisionInput struct {
	IncidentID string `json:"incident_id"`
	Status     string `json:"status"`
	Comment    string `json:"comment"`
	Actor      string `json:"actor"`
}

// DecidePartner closes the pending partner review.
func (a *Activities) DecidePartner(ctx context.Context, in DecisionInput) error {
	_, err := a.Store.DecidePartnerReview(ctx, in.IncidentID, in.Status, in.Comment, in.Actor)
	if errors.Is(err, store.ErrNotFound) {
		return nil // decided by an earlier attempt
	}
	return classify(err)
}

// AlertInput alerts the responders.
type AlertInput struct {
	IncidentID string         `json:"incident_id"`
	Kind       string         `json:"kind"` // deadline_NN, send_failed, unreachable, partner_silent, activity_failing
	Message    string         `json:"message"`
	Tenants    int            `json:"tenants,omitempty"`
	Detail     map[string]any `json:"detail,omitempty"`
}

// AlertResponders records the alert (shown in status, the console and the API) and
// audits it, then emails the responders. The email is best effort: it may go through
// the very key that is failing, so its failure is recorded on the alert, not raised.
func (a *Activities) AlertResponders(ctx context.Context, in AlertInput) error {
	id, err := a.Store.RaiseAlert(ctx, store.Alert{IncidentID: in.IncidentID, Kind: in.Kind, Message: in.Message, Tenants: in.Tenants, Detail: in.Detail})
	if err != nil {
		return err
	}
	a.Logger.Warn("responders alerted", zap.String("incident_id", in.IncidentID), zap.String("kind", in.Kind), zap.Int("tenants", in.Tenants))
	if len(a.ResponderEmails) == 0 {
		return nil
	}
	if err := a.sendPlain(ctx, in.IncidentID, a.ResponderEmails, "[breachflow] "+in.IncidentID+": "+in.Message,
		in.Message+"\n"+strings.TrimRight(a.PublicURL, "/")+"/console/incidents/"+in.IncidentID+"\n"); err != nil {
		a.Logger.Error("alert email failed", zap.String("incident_id", in.IncidentID), zap.Error(err))
		if rerr := a.Store.AlertEmailFailed(ctx, id, err.Error()); rerr != nil {
			return rerr
		}
	}
	return nil
}

// LedgerInput reads an incident's ledger.
type LedgerInput struct {
	IncidentID    string          `json:"incident_id"`
	ReminderAfter []time.Duration `json:"reminder_after"`
}

// LedgerSummary is what the workflow needs of the ledger, counted in tenants.
type LedgerSummary struct {
	Phases         int        `json:"phases"`
	Tenants        int        `json:"tenants"`
	Acknowledged   int        `json:"acknowledged"`
	Released       int        `json:"released"`
	Unreleased     int        `json:"unreleased"` // owed, waiting for approval or the partner
	Notified       int        `json:"notified"`
	Owed           int        `json:"owed"`
	Plannable      int        `json:"plannable"`
	Failed         int        `json:"failed"`
	Bounced        int        `json:"bounced"`
	Unreachable    int        `json:"unreachable"`
	Late           int        `json:"late"`
	LastError      string     `json:"last_error,omitempty"`
	RemindersDue   int        `json:"reminders_due"`
	NextReminderAt *time.Time `json:"next_reminder_at,omitempty"`
	// PlannablePhases are the phases with tenants owed and released.
	PlannablePhases []int `json:"plannable_phases,omitempty"`
	// FinalDelivered: the latest phase is the final notice and every tenant in scope has
	// been notified of it.
	FinalDelivered bool `json:"final_delivered,omitempty"`
}

// Ledger summarises the incident's ledger over every phase.
func (a *Activities) Ledger(ctx context.Context, in LedgerInput) (LedgerSummary, error) {
	st, err := a.Store.Ledger(ctx, in.IncidentID, a.now(), in.ReminderAfter)
	if err != nil {
		return LedgerSummary{}, classify(err)
	}
	out := LedgerSummary{Phases: len(st.Phases), Tenants: st.Tenants, Acknowledged: st.Acknowledged, RemindersDue: st.RemindersDue,
		NextReminderAt: st.NextReminderAt}
	for _, p := range st.Phases {
		out.Released += p.Released
		out.Unreleased += p.Tenants - p.Released
		if p.Plannable > 0 {
			out.PlannablePhases = append(out.PlannablePhases, p.Phase)
		}
		out.Notified += p.Notified
		out.Owed += p.Owed
		out.Plannable += p.Plannable
		out.Failed += p.Failed
		out.Bounced += p.Bounced
		out.Unreachable += p.Unreachable
		out.Late += p.Late
		if out.LastError == "" {
			out.LastError = p.LastError
		}
	}
	if n := len(st.Phases); n > 0 {
		last := st.Phases[n-1]
		out.FinalDelivered = last.Kind == store.PhaseFinal && last.Tenants > 0 && last.Owed == 0
	}
	return out, nil
}

// DeadlineRiskInput asks which owed tenants have used which share of their time.
type DeadlineRiskInput struct {
	IncidentID string    `json:"incident_id"`
	Fractions  []float64 `json:"fractions"`
}

// RiskCount is how many owed tenant-phases are at or past one fraction of their time.
type RiskCount struct {
	Fraction float64    `json:"fraction"`
	Tenants  int        `json:"tenants"`
	Earliest *time.Time `json:"earliest_deadline,omitempty"`
}

// DeadlineRiskResult counts tenants at risk and says when to look again.
type DeadlineRiskResult struct {
	Levels []RiskCount `json:"levels"`
	Next   *time.Time  `json:"next,omitempty"`
}

// DeadlineRisk counts owed tenant-phases per fraction of the time to their deadline.
func (a *Activities) DeadlineRisk(ctx context.Context, in DeadlineRiskInput) (DeadlineRiskResult, error) {
	levels, next, err := a.Store.DeadlineRisk(ctx, in.IncidentID, in.Fractions, a.now())
	if err != nil {
		return DeadlineRiskResult{}, classify(err)
	}
	out := DeadlineRiskResult{Next: next}
	for _, l := range levels {
		out.Levels = append(out.Levels, RiskCount{Fraction: l.Fraction, Tenants: l.Tenants, Earliest: l.Earliest})
	}
	return out, nil
}

// CloseInput closes an incident.
type CloseInput struct {
	IncidentID string `json:"incident_id"`
	Reason     string `json:"reason"`
	Actor      string `json:"actor"`
}

// CloseIncident marks the incident closed and checkpoints the audit chain for it.
func (a *Activities) CloseIncident(ctx context.Context, in CloseInput) error {
	if err := a.Store.CloseIncident(ctx, in.IncidentID, in.Reason, in.Actor); err != nil {
		return classify(err)
	}
	return a.checkpointClose(ctx, in.IncidentID)
}

func (a *Activities) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// sendPlain mails a short internal message (partner team, responders) to each address.
func (a *Activities) sendPlain(ctx context.Context, incidentID string, to []string, subject, body string) error {
	if a.Mail == nil || len(to) == 0 {
		return nil
	}
	p := mail.Page{Subject: subject, Text: body}
	for _, addr := range to {
		p.Personalizations = append(p.Personalizations, mail.Personalization{To: addr, Args: mail.CustomArgs{IncidentID: incidentID}})
	}
	_, err := a.Mail.Send(ctx, p)
	return mail.TemporalError(err)
}
