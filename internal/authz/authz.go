// Package authz is breachflow's one authorization point: every action of the API, the
// console and the CLI is named here with the roles that may take it, and each door asks
// Check for the action itself, never for a route or a path.
package authz

import (
	"errors"
	"slices"
	"strings"
)

// Action is one thing a caller may ask breachflow to do.
type Action string

// The actions, whatever the door.
const (
	KeysManage       Action = "apikeys.manage"
	IncidentDeclare  Action = "incident.declare"
	IncidentRead     Action = "incident.read"
	IncidentAssess   Action = "incident.assess"
	IncidentScope    Action = "incident.scope"
	IncidentDraft    Action = "incident.draft"
	IncidentApprove  Action = "incident.approve"
	IncidentOverride Action = "incident.override"
	IncidentFollowup Action = "incident.followup"
	IncidentRetry    Action = "incident.retry"
	IncidentClose    Action = "incident.close"
	PartnerRead      Action = "partner.read"
	PartnerDecide    Action = "partner.decide"
	EvidenceExport   Action = "evidence.export"
	AuditVerify      Action = "audit.verify"
)

// Roles a key may hold. A partner key holds "partner:<team>" alone.
const (
	RoleAdmin     = "admin"
	RoleResponder = "responder"
	RoleApprover  = "approver"
	// RolePartner stands for any "partner:<team>" role in the matrix.
	RolePartner = "partner"
)

var responders = []string{RoleResponder, RoleApprover}

// matrix is the whole policy. Admin manages keys and nothing else: it approves only if
// the same key is also given the approver role. Approving needs the approver role
// itself; partners act only on their team's reviews.
var matrix = map[Action][]string{
	KeysManage:       {RoleAdmin},
	IncidentDeclare:  responders,
	IncidentRead:     responders,
	IncidentAssess:   responders,
	IncidentScope:    responders,
	IncidentDraft:    responders,
	IncidentApprove:  {RoleApprover},
	IncidentOverride: responders,
	IncidentFollowup: responders,
	IncidentRetry:    responders,
	IncidentClose:    responders,
	PartnerRead:      {RolePartner},
	PartnerDecide:    {RolePartner},
	EvidenceExport:   responders,
	AuditVerify:      {RoleAdmin},
}

// Actions lists every action, for tests and documentation.
func Actions() []Action {
	out := make([]Action, 0, len(matrix))
	for a := range matrix {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// RolesFor returns the roles that may take a.
func RolesFor(a Action) []string { return slices.Clone(matrix[a]) }

// ErrForbidden is returned for an action the caller's roles do not allow.
var ErrForbidden = errors.New("this key's roles may not do that")

// ErrUnknownAction is returned for an action breachflow does not know: refused, never
// guessed.
var ErrUnknownAction = errors.New("unknown action")

// Allows reports whether a key holding roles may take action a.
func Allows(roles []string, a Action) bool {
	allowed, ok := matrix[a]
	if !ok {
		return false
	}
	for _, r := range roles {
		if strings.HasPrefix(r, RolePartner+":") {
			r = RolePartner
		}
		if slices.Contains(allowed, r) {
			return true
		}
	}
	return false
}

// Check returns nil when roles allow a, ErrUnknownAction for an unknown action and
// ErrForbidden otherwise.
func Check(roles []string, a Action) error {
	if _, ok := matrix[a]; !ok {
		return ErrUnknownAction
	}
	if !Allows(roles, a) {
		return ErrForbidden
	}
	return nil
}

// Partner returns the team a partner key acts for, "" for any other key.
func Partner(roles []string) string {
	for _, r := range roles {
		if team, ok := strings.CutPrefix(r, RolePartner+":"); ok {
			return team
		}
	}
	return ""
}
