// Package workflows holds breachflow's deterministic workflow code and the types, names
// and IDs that cross into it. Histories carry IDs and counts only, never tenant lists,
// contacts or other personal data.
package workflows

import (
	"strconv"
	"time"

	"github.com/breachflow/breachflow/activities"
	"github.com/breachflow/breachflow/internal/store"
)

// TaskQueue is the default task queue.
const TaskQueue = "breachflow"

// Update, signal, query and workflow names.
const (
	UpdateAssess          = "assess"
	UpdateScope           = "scope"
	UpdateDraft           = "draft"
	UpdateApprove         = "approve"
	UpdatePartnerDecision = "partner-decision"
	UpdateOverride        = "override"
	UpdateFollowup        = "followup"
	UpdateRetry           = "retry"
	UpdateClose           = "close"
	QueryStatus           = "status"
	// SignalDeliveryFailures tells an incident that bounces or drops left tenants owed
	// again; the webhook sends at most one per incident per batch, and the workflow
	// coalesces them into one pass.
	SignalDeliveryFailures = "delivery-failures"
)

// IncidentWorkflowID is the workflow ID of an incident's IncidentWorkflow.
func IncidentWorkflowID(incidentID string) string { return "incident/" + incidentID }

// PassWorkflowID is the workflow ID of one notification pass.
func PassWorkflowID(incidentID string, pass int) string {
	return "incident/" + incidentID + "/pass/" + strconv.Itoa(pass)
}

// Stage is where an incident is in its lifecycle.
type Stage string

// Stages, as PostgreSQL stores them.
const (
	StageDeclared      Stage = store.StageDeclared
	StageAssessing     Stage = store.StageAssessing
	StageScoping       Stage = store.StageScoping
	StageApproval      Stage = store.StageApproval
	StagePartnerReview Stage = store.StagePartnerReview
	StageNotifying     Stage = store.StageNotifying
	StageTracking      Stage = store.StageTracking
	StageClosed        Stage = store.StageClosed
)

// PartnerStatus is the state of the partner's review of a (content hash, scope version).
type PartnerStatus string

// Partner review states.
const (
	PartnerNone             PartnerStatus = ""
	PartnerPending          PartnerStatus = "pending"
	PartnerConfirmed        PartnerStatus = "confirmed"
	PartnerChangesRequested PartnerStatus = "changes_requested"
	PartnerOverridden       PartnerStatus = "overridden"
)

// Timing holds every duration and size of the lifecycle; zero values take the defaults.
type Timing struct {
	AckCheckInterval  time.Duration   `json:"ack_check_interval"`  // how often the ledger is reconciled when nothing else wakes the incident
	ReminderAfter     []time.Duration `json:"reminder_after"`      // after a tenant was notified, per reminder
	ReminderCoalesce  time.Duration   `json:"reminder_coalesce"`   // at most one reminder pass per this interval, for all tenants then due
	EscalateFromRound int             `json:"escalate_from_round"` // reminder number (1-based) from which alternates get it too
	PartnerResponse   time.Duration   `json:"partner_response"`    // the partner's response deadline
	PartnerReminders  []float64       `json:"partner_reminders"`   // fractions of PartnerResponse at which to remind the partner
	DeadlineAlerts    []float64       `json:"deadline_alerts"`     // fractions of each tenant's time to its deadline (100 % is always alerted)
	FailureCoalesce   time.Duration   `json:"failure_coalesce"`    // after a bounce or drop, wait this long for more before trying next contacts
	RetryAfter        []time.Duration `json:"retry_after"`         // automatic retries of tenants a pass left owed; then every AckCheckInterval
	PlanChunk         int             `json:"plan_chunk"`          // tenants per planning step of a pass
	PlanLanes         int             `json:"plan_lanes"`          // planning steps of a pass that run at the same time
	PageSize          int             `json:"page_size"`           // recipients per SendGrid request
	Window            int             `json:"window"`              // concurrent send activities per pass
	PagesPerRun       int             `json:"pages_per_run"`       // pages before a pass continues as new
	TokenTTL          time.Duration   `json:"token_ttl"`           // acknowledgement link lifetime
	HistoryLimit      int             `json:"history_limit"`       // events before IncidentWorkflow continues as new
}

// WithDefaults fills zero values.
func (t Timing) WithDefaults() Timing {
	if t.AckCheckInterval <= 0 {
		t.AckCheckInterval = time.Hour
	}
	if t.ReminderAfter == nil {
		t.ReminderAfter = []time.Duration{48 * time.Hour, 96 * time.Hour, 168 * time.Hour}
	}
	if t.ReminderCoalesce <= 0 {
		t.ReminderCoalesce = 15 * time.Minute
	}
	if t.EscalateFromRound <= 0 {
		t.EscalateFromRound = 2
	}
	if t.PartnerResponse <= 0 {
		t.PartnerResponse = 24 * time.Hour
	}
	if t.PartnerReminders == nil {
		t.PartnerReminders = []float64{0.5, 0.9}
	}
	if t.DeadlineAlerts == nil {
		t.DeadlineAlerts = []float64{0.5, 0.75, 0.9}
	}
	if t.FailureCoalesce <= 0 {
		t.FailureCoalesce = time.Minute
	}
	if t.RetryAfter == nil {
		t.RetryAfter = []time.Duration{5 * time.Minute, 15 * time.Minute}
	}
	if t.PlanChunk <= 0 {
		t.PlanChunk = 5000
	}
	if t.PlanLanes <= 0 || t.PlanLanes > store.MaxPlanLanes {
		t.PlanLanes = 2
	}
	if t.PageSize <= 0 || t.PageSize > 1000 {
		t.PageSize = 1000
	}
	if t.Window <= 0 {
		t.Window = 4
	}
	if t.PagesPerRun <= 0 {
		t.PagesPerRun = 200
	}
	if t.TokenTTL <= 0 {
		t.TokenTTL = 30 * 24 * time.Hour
	}
	if t.HistoryLimit <= 0 {
		t.HistoryLimit = 3000
	}
	return t
}

// IncidentInput starts an IncidentWorkflow. The declaration itself is in PostgreSQL.
type IncidentInput struct {
	IncidentID string    `json:"incident_id"`
	AwareAt    time.Time `json:"aware_at"`
	Partner    string    `json:"partner,omitempty"`
	Timing     Timing    `json:"timing"`
	// Resume carries the state across continue-as-new.
	Resume *Resume `json:"resume,omitempty"`
}

// Resume is the state an IncidentWorkflow carries across continue-as-new.
type Resume struct {
	Status Status `json:"status"`
	// Review is the partner review in progress, if any.
	Review *Review `json:"review,omitempty"`
	// PassWanted: something was released or a retry was asked for. FailuresAt: when
	// coalesced delivery failures are due a pass. RetryAt: the next automatic retry of
	// tenants a pass left owed.
	PassWanted bool      `json:"pass_wanted"`
	FailuresAt time.Time `json:"failures_at"`
	RetryAt    time.Time `json:"retry_at"`
	Retries    int       `json:"retries"`
	// RemindAt is the earliest time of the next reminder pass.
	RemindAt time.Time `json:"remind_at"`
	// Alerted counts the tenants last alerted per deadline percentage and per kind, so
	// an alert repeats only when more tenants are concerned.
	Alerted map[string]int `json:"alerted"`
}

// Review is a partner review in progress.
type Review struct {
	OpenedAt time.Time `json:"opened_at"`
	Due      time.Time `json:"due"`
	Decided  bool      `json:"decided"`
}

// PartnerGate is the state of the partner gate.
type PartnerGate struct {
	Name         string        `json:"name,omitempty"`
	Required     bool          `json:"required"`
	Covered      int           `json:"covered"` // covered tenant-phases waiting for the partner
	Status       PartnerStatus `json:"status,omitempty"`
	ContentHash  string        `json:"content_hash,omitempty"`
	ScopeVersion int           `json:"scope_version,omitempty"`
	Comment      string        `json:"comment,omitempty"`
	Alerted      bool          `json:"alerted"`
	Reminded     int           `json:"reminded"`
}

// Status is what the status query returns: what the workflow holds (IDs, versions and
// counts). Who is owed what is in the ledger; Ledger is its latest summary.
type Status struct {
	IncidentID   string                   `json:"incident_id"`
	Stage        Stage                    `json:"stage"`
	Reportable   *bool                    `json:"reportable,omitempty"`
	Scope        activities.ScopeResult   `json:"scope"`
	ContentHash  string                   `json:"content_hash,omitempty"`
	RejectedHash string                   `json:"rejected_hash,omitempty"`
	Approvers    []string                 `json:"approvers"`
	Approved     bool                     `json:"approved"`
	Partner      PartnerGate              `json:"partner"`
	Ledger       activities.LedgerSummary `json:"ledger"`
	Passes       []PassResult             `json:"passes"` // the latest passes, at most maxPassesKept
	NextPass     int                      `json:"next_pass"`
	Phases       int                      `json:"phases"`
	// DraftPhase is the phase the current draft is for (0 reads as 1), DraftFinal says it
	// is the final notice; ApprovedPhase is the latest phase approved and FinalApproved
	// says that phase was the final notice: no phase follows it.
	DraftPhase    int  `json:"draft_phase,omitempty"`
	DraftFinal    bool `json:"draft_final,omitempty"`
	ApprovedPhase int  `json:"approved_phase,omitempty"`
	FinalApproved bool `json:"final_approved,omitempty"`
	// ApprovedHash is the latest approved phase's notice, which may be approved again for
	// a new scope version while the next phase's draft waits.
	ApprovedHash string   `json:"approved_hash,omitempty"`
	Alerts       []string `json:"alerts"` // the latest alert kinds, at most maxAlertsKept
	LastError    string   `json:"last_error,omitempty"`
	CloseReason  string   `json:"close_reason,omitempty"`
}

// AssessInput is the reportability decision.
type AssessInput struct {
	Reportable bool   `json:"reportable"`
	Rationale  string `json:"rationale"`
	Actor      string `json:"actor"`
}

// ScopeInput sets or revises the scope criteria.
type ScopeInput struct {
	Criteria store.ScopeCriteria `json:"criteria"`
	Actor    string              `json:"actor"`
}

// DraftInput makes a proposed draft (stored with activities.ProposeDraft) current.
type DraftInput struct {
	ContentHash string `json:"content_hash"`
	Actor       string `json:"actor"`
	// Phase is the phase the draft is for (0 reads as the current one); Final says it is
	// the final notice.
	Phase int  `json:"phase,omitempty"`
	Final bool `json:"final,omitempty"`
}

// ApproveInput approves the draft with ContentHash for the current scope version.
type ApproveInput struct {
	ContentHash string `json:"content_hash"`
	Actor       string `json:"actor"`
}

// PartnerDecisionInput is the partner team's decision.
type PartnerDecisionInput struct {
	Confirm     bool   `json:"confirm"`
	ContentHash string `json:"content_hash"`
	Comment     string `json:"comment"`
	Actor       string `json:"actor"`
}

// OverrideInput lets a responder release the partner gate.
type OverrideInput struct {
	Justification string `json:"justification"`
	Actor         string `json:"actor"`
}

// FollowupInput opens an update phase carrying the current notice unchanged. It is kept
// for incidents that used it before each phase had its own draft: a follow-up is now a
// draft for the next phase (DraftInput with Phase), approved like any other.
type FollowupInput struct {
	Actor string `json:"actor"`
}

// RetryInput asks for a notification pass now, for every tenant still owed.
type RetryInput struct {
	Actor string `json:"actor"`
}

// CloseInput closes the incident.
type CloseInput struct {
	Reason string `json:"reason"`
	Actor  string `json:"actor"`
}

// PassInput starts (or continues) a NotifyPassWorkflow.
type PassInput struct {
	Plan        activities.PlanStepInput `json:"plan"`
	Window      int                      `json:"window"`
	PagesPerRun int                      `json:"pages_per_run"`
	// Lanes is how many planning lanes the pass is planned in (0: one).
	Lanes int `json:"lanes,omitempty"`
	// Continuation state. Planned totals the lanes' planning and NextPage the pages
	// launched; per lane, LanePlanned is where its planning stands and LaneNext the
	// number of its pages launched.
	Planned     activities.PlanStepResult   `json:"planned"`
	NextPage    int                         `json:"next_page"`
	LanePlanned []activities.PlanStepResult `json:"lane_planned,omitempty"`
	LaneNext    []int                       `json:"lane_next,omitempty"`
	Sent        int                         `json:"sent"`
	FailedPages int                         `json:"failed_pages"`
	Error       string                      `json:"error,omitempty"`
	Runs        int                         `json:"runs"`
}

// PassResult summarises a finished pass.
type PassResult struct {
	Pass        int    `json:"pass"`
	Kind        string `json:"kind"`
	Phase       int    `json:"phase"`
	Notices     int    `json:"notices"`
	Pages       int    `json:"pages"`
	Sent        int    `json:"sent"`
	FailedPages int    `json:"failed_pages"`
	Runs        int    `json:"runs"`
	Error       string `json:"error,omitempty"`
}
