// Package workflows holds breachflow's deterministic workflow code and the types, names
// and IDs that cross into it. Histories carry IDs and counts only, never tenant lists,
// contacts or other personal data.
package workflows

import (
	"strconv"
	"time"

	"github.com/breachflow/breachflow/internal/store"
)

// TaskQueue is the default task queue.
const TaskQueue = "breachflow"

// Update, query and workflow names.
const (
	UpdateAssess          = "assess"
	UpdateScope           = "scope"
	UpdateDraft           = "draft"
	UpdateApprove         = "approve"
	UpdatePartnerDecision = "partner-decision"
	UpdateOverride        = "override"
	UpdateFollowup        = "followup"
	UpdateClose           = "close"
	QueryStatus           = "status"
)

// IncidentWorkflowID is the workflow ID of an incident's IncidentWorkflow.
func IncidentWorkflowID(incidentID string) string { return "incident/" + incidentID }

// RoundWorkflowID is the workflow ID of one notification round.
func RoundWorkflowID(incidentID string, round int) string {
	return "incident/" + incidentID + "/round/" + strconv.Itoa(round)
}

// Timing holds every duration and size of the lifecycle; zero values take the defaults.
type Timing struct {
	AckCheckInterval  time.Duration   `json:"ack_check_interval"`
	ReminderAfter     []time.Duration `json:"reminder_after"`      // after the initial notice, per reminder round
	EscalateFromRound int             `json:"escalate_from_round"` // reminder number (1-based) from which alternates are added
	PartnerResponse   time.Duration   `json:"partner_response"`    // the partner's response deadline
	PartnerReminders  []float64       `json:"partner_reminders"`   // fractions of PartnerResponse at which to remind the partner
	DeadlineAlerts    []float64       `json:"deadline_alerts"`     // fractions of the time to the earliest deadline
	PageSize          int             `json:"page_size"`           // recipients per SendGrid request
	Window            int             `json:"window"`              // concurrent send activities per round
	PagesPerRun       int             `json:"pages_per_run"`       // pages before a round continues as new
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
	Resume *Status `json:"resume,omitempty"`
}

// Status is what the status query returns and what continue-as-new carries.
type Status struct {
	IncidentID    string            `json:"incident_id"`
	Stage         string            `json:"stage"`
	Reportable    *bool             `json:"reportable,omitempty"`
	Scope         store.ScopeResult `json:"scope"`
	ContentHash   string            `json:"content_hash,omitempty"`
	RejectedHash  string            `json:"rejected_hash,omitempty"`
	Approvers     []string          `json:"approvers"`
	Approved      bool              `json:"approved"`
	Partner       PartnerStatus     `json:"partner"`
	Rounds        []RoundResult     `json:"rounds"`
	Acks          store.AckStats    `json:"acks"`
	InitialSentAt time.Time         `json:"initial_sent_at,omitempty"`
	Reminders     int               `json:"reminders"`
	Alerts        []string          `json:"alerts"`
	CloseReason   string            `json:"close_reason,omitempty"`
	NextRound     int               `json:"next_round"`
	Followups     int               `json:"followups"`
	NotifiedParts map[string]bool   `json:"notified_parts"` // "uncovered", "covered", "all"
}

// PartnerStatus is the state of the partner gate.
type PartnerStatus struct {
	Name     string `json:"name,omitempty"`
	Required bool   `json:"required"`
	Covered  int    `json:"covered"`
	Status   string `json:"status,omitempty"` // pending, confirmed, changes_requested, overridden
	Comment  string `json:"comment,omitempty"`
	Alerted  bool   `json:"alerted"`
	Reminded int    `json:"reminded"`
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
}

// ApproveInput approves the draft with ContentHash.
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

// FollowupInput sends the current notice again as an update to every tenant in scope.
type FollowupInput struct {
	Actor string `json:"actor"`
}

// CloseInput closes the incident.
type CloseInput struct {
	Reason string `json:"reason"`
	Actor  string `json:"actor"`
}

// RoundInput starts (or continues) a NotifyRoundWorkflow.
type RoundInput struct {
	Plan        store.RoundPlan `json:"plan"`
	Window      int             `json:"window"`
	PagesPerRun int             `json:"pages_per_run"`
	// Continuation state.
	Planned  *store.RoundPlanned `json:"planned,omitempty"`
	NextPage int                 `json:"next_page"`
	Sent     int                 `json:"sent"`
	Failed   int                 `json:"failed"`
	Runs     int                 `json:"runs"`
}

// RoundResult summarises a finished round.
type RoundResult struct {
	Round   int    `json:"round"`
	Kind    string `json:"kind"`
	Planned int    `json:"planned"`
	Tenants int    `json:"tenants"`
	Pages   int    `json:"pages"`
	Sent    int    `json:"sent"`
	Failed  int    `json:"failed"`
	Runs    int    `json:"runs"`
}
