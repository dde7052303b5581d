package activities

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
)

// DraftOptions say where a proposed draft goes and what the service stamps into it.
type DraftOptions struct {
	// NextPhase places the draft in the phase after the latest approved one (a follow-up);
	// otherwise it replaces the current draft of the current phase.
	NextPhase bool
	// Kind is the next phase's kind: notice.PhaseUpdate (the default) or notice.PhaseFinal.
	Kind string
	// Sender is who notices come from, for a draft that names no sender of its own.
	Sender notice.Sender
	// Check, when set, is one more check of the completed draft (its links, say).
	Check func(notice.Draft) error
}

// Declared are the declaration's facts every notice of the incident states: the draft
// takes them from here, so no copy of them can drift.
type Declared struct {
	Title          string
	AwareAt        time.Time
	DataCategories []string
}

// Proposal is a proposed draft as kept: its content hash and its phase.
type Proposal struct {
	Hash  string       `json:"content_hash"`
	Phase notice.Phase `json:"phase"`
	// Untranslated lists the locales with neither their own text nor an explicit English
	// fallback; approval is refused while any remain.
	Untranslated []string `json:"untranslated,omitempty"`
}

// PrepareDraft decodes a proposed draft and completes it: the declaration's title,
// awareness time and data categories, the phase (the current one, or the next for a
// follow-up) and the configured sender. A draft that gives one of the declaration's facts
// differently, or names another phase, is refused. The result is validated.
func PrepareDraft(raw []byte, decl Declared, current notice.Phase, phases store.PhaseState, opts DraftOptions) (notice.Draft, error) {
	var d notice.Draft
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return d, &store.FieldError{Field: "notice", Message: "notice draft: " + err.Error()}
	}
	if err := fromDeclaration(&d.Fields, decl); err != nil {
		return d, err
	}
	if err := placePhase(&d, current, phases, opts); err != nil {
		return d, err
	}
	if d.Sender == (notice.Sender{}) {
		d.Sender = opts.Sender
	}
	err := notice.Validate(d)
	if err == nil && opts.Check != nil {
		err = opts.Check(d)
	}
	if err != nil {
		return d, &store.FieldError{Field: "notice", Message: err.Error()}
	}
	return d, nil
}

// fromDeclaration fills the declaration's facts into f and refuses a differing copy.
func fromDeclaration(f *notice.Fields, decl Declared) error {
	differs := func(field, want string) error {
		return &store.FieldError{Field: "notice.fields." + field,
			Message: fmt.Sprintf("the notice states the incident's %s from its declaration (%s); leave it out of the draft", strings.ReplaceAll(field, "_", " "), want)}
	}
	if t := strings.TrimSpace(f.Title); t != "" && t != strings.TrimSpace(decl.Title) {
		return differs(notice.ElementTitle, fmt.Sprintf("%q", decl.Title))
	}
	if !f.AwareAt.IsZero() && !f.AwareAt.Equal(decl.AwareAt) {
		return differs(notice.ElementAwareAt, decl.AwareAt.UTC().Format(time.RFC3339))
	}
	// A declaration that names no categories leaves them to the notice.
	if len(f.DataCategories) > 0 && len(decl.DataCategories) > 0 && !slices.Equal(f.DataCategories, decl.DataCategories) {
		return differs(notice.ElementDataCategories, fmt.Sprintf("%q", decl.DataCategories))
	}
	f.Title, f.AwareAt = decl.Title, decl.AwareAt.UTC()
	if len(decl.DataCategories) > 0 && !slices.Contains(f.NotYetKnown, notice.ElementDataCategories) {
		f.DataCategories = slices.Clone(decl.DataCategories)
	}
	return nil
}

// placePhase sets the draft's phase: the current draft's for a replacement, the one
// after the latest approved phase for a follow-up.
func placePhase(d *notice.Draft, current notice.Phase, phases store.PhaseState, opts DraftOptions) error {
	refuse := func(format string, args ...any) error {
		return &store.FieldError{Field: "notice.phase", Message: fmt.Sprintf(format, args...)}
	}
	current = notice.Draft{Phase: current}.PhaseOrInitial()
	if !opts.NextPhase {
		if d.Phase.Number != 0 && d.Phase.Number != current.Number {
			return refuse("this draft replaces the draft of phase %d; a new phase is drafted as a follow-up", current.Number)
		}
		if d.Phase.Kind != "" && d.Phase.Kind != current.Kind {
			return refuse("phase %d is the %s notice and stays so; a final notice is drafted as the next phase's follow-up (--final)",
				current.Number, current.Kind)
		}
		d.Phase = current
		return nil
	}
	switch {
	case phases.Approved == 0:
		return refuse("the initial notice is not approved yet: change its draft instead of drafting a follow-up")
	case phases.ApprovedKind == notice.PhaseFinal:
		return refuse("phase %d was the final notice; no phase follows it", phases.Approved)
	case d.Phase.Number != 0 && d.Phase.Number != phases.Approved+1:
		return refuse("the next phase is %d, not %d", phases.Approved+1, d.Phase.Number)
	}
	kind := cmp.Or(opts.Kind, d.Phase.Kind, notice.PhaseUpdate)
	if kind != notice.PhaseUpdate && kind != notice.PhaseFinal {
		return refuse("a follow-up is an %s or the %s notice, not %q", notice.PhaseUpdate, notice.PhaseFinal, kind)
	}
	d.Phase = notice.Phase{Number: phases.Approved + 1, Kind: kind}
	return nil
}

// draftPhase reads the phase a stored draft names (the initial one for none).
func draftPhase(raw []byte) notice.Phase {
	var d notice.Draft
	if len(raw) > 0 && json.Unmarshal(raw, &d) != nil {
		d = notice.Draft{} // a draft that does not decode reads as the initial one
	}
	return d.PhaseOrInitial()
}

// ProposeDraft completes and validates a draft for incident id (see PrepareDraft) and
// keeps it under its content hash for the draft update to select. It runs outside
// workflows (API, console, tests), so the draft never enters a workflow history.
func ProposeDraft(ctx context.Context, st *store.Store, incidentID string, raw []byte, actor string, opts DraftOptions) (Proposal, error) {
	inc, err := st.GetIncident(ctx, incidentID)
	if err != nil {
		return Proposal{}, err
	}
	phases, err := st.Phases(ctx, incidentID)
	if err != nil {
		return Proposal{}, err
	}
	d, err := PrepareDraft(raw, DeclaredOf(inc), draftPhase(inc.NoticeDraft), phases, opts)
	if err != nil {
		return Proposal{}, err
	}
	canonical, err := json.Marshal(d)
	if err != nil {
		return Proposal{}, err
	}
	p := Proposal{Hash: notice.ContentHash(d), Phase: d.Phase, Untranslated: notice.Untranslated(d)}
	return p, st.PutDraft(ctx, incidentID, canonical, p.Hash, actor)
}

// DeclaredOf returns an incident's declared facts.
func DeclaredOf(inc store.Incident) Declared {
	return Declared{Title: inc.Title, AwareAt: inc.AwareAt, DataCategories: inc.DataCategories}
}

// OpenDraftPhaseInput opens the phase an approved draft is for.
type OpenDraftPhaseInput struct {
	IncidentID  string `json:"incident_id"`
	ContentHash string `json:"content_hash"`
	Actor       string `json:"actor"`
}

// OpenDraftPhase owes every tenant in scope the phase the approved draft is for and
// returns its number; the phase must be the next one.
func (a *Activities) OpenDraftPhase(ctx context.Context, in OpenDraftPhaseInput) (int, error) {
	n, err := a.Store.OpenDraftPhase(ctx, in.IncidentID, in.ContentHash, in.Actor)
	return n, classify(err)
}

// untranslated refuses approval of a draft that leaves a locale without its own text
// and without an explicit English fallback.
func (a *Activities) untranslated(ctx context.Context, incidentID, hash string) error {
	raw, err := a.Store.GetDraft(ctx, incidentID, hash)
	if err != nil {
		return classify(err)
	}
	var d notice.Draft
	if err := json.Unmarshal(raw, &d); err != nil {
		return temporal.NewNonRetryableApplicationError("stored draft: "+err.Error(), ErrTypeInvalidInput, err)
	}
	if missing := notice.Untranslated(d); len(missing) > 0 {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
			"the draft has no text in %s: give translations, or list them in english_fallback to send the English text there",
			strings.Join(missing, ", ")), ErrTypeInvalidInput, nil)
	}
	return nil
}
