package workflows_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/activities"
	"github.com/breachflow/breachflow/internal/mail/sink"
	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/workflows"
)

// testSender is who the phases test's notices come from.
var testSender = notice.Sender{Organisation: "Provider Cloud SE", Signature: "Provider Cloud Security Office", ReplyTo: "privacy@provider.example"}

// phaseDraft is a phase's notice in English with every other locale falling back to it
// by explicit choice; the title, awareness time and categories come from the declaration.
func phaseDraft(t testing.TB, whatsNew, nature string, unknown ...string) []byte {
	t.Helper()
	f := notice.Fields{Reference: "INC-TEST", Nature: nature, WhatsNew: whatsNew, NotYetKnown: unknown,
		DataSubjectCategories: []string{"employees of the tenant"}, ApproxDataSubjects: 1200, ApproxRecords: 5400,
		Contact:            notice.ContactPoint{Name: "Privacy Office", Role: "DPO", Phone: "+49 30 1234567"},
		LikelyConsequences: "Targeted phishing against affected users is possible.",
		MeasuresTaken:      "The credential was revoked and access logs were reviewed.",
		MeasuresProposed:   "Rotate device enrolment tokens; watch for phishing."}
	for _, el := range unknown {
		switch el {
		case notice.ElementApproxDataSubjects:
			f.ApproxDataSubjects = 0
		case notice.ElementApproxRecords:
			f.ApproxRecords = 0
		case notice.ElementLikelyConsequences:
			f.LikelyConsequences = ""
		}
	}
	raw, err := json.Marshal(notice.Draft{Fields: f, EnglishFallback: []string{"de", "es", "fr", "it"}})
	require.NoError(t, err)
	return raw
}

// propose keeps a draft (the next phase's when next) and makes it current.
func (s *stack) propose(t testing.TB, id string, raw []byte, next bool, kind string) activities.Proposal {
	t.Helper()
	p, err := activities.ProposeDraft(context.Background(), s.st, id, raw, "alice", activities.DraftOptions{NextPhase: next, Kind: kind, Sender: testSender})
	require.NoError(t, err)
	s.update(t, id, workflows.UpdateDraft, workflows.DraftInput{ContentHash: p.Hash, Actor: "alice", Phase: p.Phase.Number,
		Final: p.Phase.Kind == notice.PhaseFinal})
	return p
}

func (s *stack) approveTwice(t testing.TB, id, hash string) {
	t.Helper()
	s.update(t, id, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: hash, Actor: s.approver(t, "carol")})
	s.update(t, id, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: hash, Actor: s.approver(t, "dave")})
}

// received is one message as its recipient saw it, with the phase its round delivered.
type received struct {
	to, subject, text, replyTo string
	phase                      int
}

// receivedByPhase reads every message at the sink and the phase of the round it came in.
func (s *stack) receivedByPhase(t *testing.T, id string) []received {
	t.Helper()
	phaseOf := map[string]int{}
	rows, err := s.st.Pool().Query(context.Background(), `SELECT round, coalesce(phase, 0) FROM notice_rounds WHERE incident_id = $1`, id)
	require.NoError(t, err)
	for rows.Next() {
		var round, phase int
		require.NoError(t, rows.Scan(&round, &phase))
		phaseOf[strconv.Itoa(round)] = phase
	}
	require.NoError(t, rows.Err())
	var out []received
	var after uint64
	for {
		list := s.sink.Messages(sink.Query{After: after, Limit: sink.MaxListLimit})
		for _, m := range list.Messages {
			r := received{subject: m.Subject, text: m.Text, phase: phaseOf[m.CustomArgs["round"]]}
			if m.ReplyTo != nil {
				r.replyTo = m.ReplyTo.Email
			}
			for _, to := range m.To {
				r.to = strings.ToLower(to.Email)
				out = append(out, r)
			}
			after = m.Seq
		}
		if len(list.Messages) < sink.MaxListLimit {
			return out
		}
	}
}

// tenantsOf is the set of tenants of an address → tenant map.
func tenantsOf(contacts map[string]string) map[string]bool {
	out := map[string]bool{}
	for _, tenant := range contacts {
		out[tenant] = true
	}
	return out
}

// contactsOf maps each contact address of the tenants matching where to its tenant.
func (s *stack) contactsOf(t *testing.T, where string) map[string]string {
	t.Helper()
	rows, err := s.st.Pool().Query(context.Background(), `SELECT lower(c.email), c.tenant_id FROM contacts c JOIN tenants t ON t.id = c.tenant_id WHERE `+where)
	require.NoError(t, err)
	out := map[string]string{}
	for rows.Next() {
		var e, tenant string
		require.NoError(t, rows.Scan(&e, &tenant))
		out[e] = tenant
	}
	require.NoError(t, rows.Err())
	return out
}

// The done-when of phased notices: initial (numbers not yet known) → update (root cause,
// numbers) → final, over a scope that grows between phases. Every tenant receives each
// phase once — the late ones the earlier phases too —, every notice names its phase and
// what changed, and each approval is for its own phase's hash.
func TestPhasesTellEachTenantEveryPhaseOnce(t *testing.T) {
	s := newStack(t, 150, 1)
	ctx := context.Background()
	id, _ := s.declare(t, "", workflows.Timing{AckCheckInterval: 200 * time.Millisecond})
	s.update(t, id, workflows.UpdateAssess, workflows.AssessInput{Reportable: true, Rationale: "controllers' users exposed", Actor: "alice"})

	// Phase 1: numbers not yet known.
	p1 := s.propose(t, id, phaseDraft(t, "", "A leaked credential gave read access to the device database.",
		notice.ElementApproxDataSubjects, notice.ElementApproxRecords), false, "")
	require.Equal(t, notice.Phase{Number: 1, Kind: notice.PhaseInitial}, p1.Phase)
	s.update(t, id, workflows.UpdateScope, workflows.ScopeInput{Criteria: store.ScopeCriteria{Countries: []string{"DE"}}, Actor: "alice"})
	// A follow-up cannot be drafted before the initial notice is approved.
	_, err := activities.ProposeDraft(ctx, s.st, id, phaseDraft(t, "more", "x"), "alice", activities.DraftOptions{NextPhase: true, Sender: testSender})
	require.ErrorContains(t, err, "not approved yet")
	s.approveTwice(t, id, p1.Hash)
	s.waitFor(t, id, "initial notice sent", time.Minute, func(st workflows.Status) bool {
		return st.Stage == workflows.StageTracking && st.ApprovedPhase == 1
	})

	// Phase 2, drafted while the scope grows: the FR tenants are late.
	p2 := s.propose(t, id, phaseDraft(t, "Root cause found: a build server leaked the credential. Numbers are now known.",
		"A credential leaked from a build server gave read access to the device database."), true, "")
	require.Equal(t, notice.Phase{Number: 2, Kind: notice.PhaseUpdate}, p2.Phase)
	s.update(t, id, workflows.UpdateScope, workflows.ScopeInput{Criteria: store.ScopeCriteria{Countries: []string{"DE", "FR"}}, Actor: "alice"})
	de, fr := s.contactsOf(t, `t.country = 'DE'`), s.contactsOf(t, `t.country = 'FR'`)
	// While phase 2's draft waits, phase 1's approved notice is approved for the wider
	// scope: the late FR tenants are told phase 1 without waiting for phase 2.
	s.approveTwice(t, id, p1.Hash)
	s.waitFor(t, id, "phase 1 to the late tenants", time.Minute, func(st workflows.Status) bool {
		return st.Ledger.Notified == len(tenantsOf(de))+len(tenantsOf(fr)) && len(st.Ledger.PlannablePhases) == 0
	})
	require.Equal(t, 1, s.status(t, id).ApprovedPhase, "phase 2 still waits for its approvals")
	s.approveTwice(t, id, p2.Hash)
	s.waitFor(t, id, "update sent", time.Minute, func(st workflows.Status) bool {
		return st.Stage == workflows.StageTracking && st.Phases == 2 && len(st.Ledger.PlannablePhases) == 0
	})

	// Phase 3, final, with the scope growing once more (IT) before its approval.
	_, err = activities.ProposeDraft(ctx, s.st, id, phaseDraft(t, "final", "x", notice.ElementApproxRecords), "alice",
		activities.DraftOptions{NextPhase: true, Kind: notice.PhaseFinal, Sender: testSender})
	require.ErrorContains(t, err, "not_yet_known", "a final notice states every element")
	p3 := s.propose(t, id, phaseDraft(t, "Final report: the investigation is closed; no further access was found.",
		"A credential leaked from a build server gave read access to the device database for 95 minutes."), true, notice.PhaseFinal)
	require.Equal(t, notice.Phase{Number: 3, Kind: notice.PhaseFinal}, p3.Phase)
	s.update(t, id, workflows.UpdateScope, workflows.ScopeInput{Criteria: store.ScopeCriteria{Countries: []string{"DE", "FR", "IT"}}, Actor: "alice"})
	require.ErrorContains(t, s.tryUpdate(id, workflows.UpdateClose, workflows.CloseInput{Actor: "alice"}), "reason: required")
	s.approveTwice(t, id, p3.Hash)
	it := s.contactsOf(t, `t.country = 'IT'`)
	st := s.waitFor(t, id, "final sent", time.Minute, func(st workflows.Status) bool {
		return st.Stage == workflows.StageTracking && st.Phases == 3 && st.Ledger.FinalDelivered
	})
	require.True(t, st.FinalApproved)
	_, err = activities.ProposeDraft(ctx, s.st, id, phaseDraft(t, "more", "x"), "alice", activities.DraftOptions{NextPhase: true, Sender: testSender})
	require.ErrorContains(t, err, "final notice; no phase follows")

	// What every recipient saw: each phase once, in order, naming its phase and what changed.
	want := map[int]string{1: "", 2: "Root cause found", 3: "Final report: the investigation is closed"}
	got := map[string]map[int]int{}
	for _, m := range s.receivedByPhase(t, id) {
		require.NotZero(t, m.phase, "a notice from a round of no phase: %q", m.subject)
		if got[m.to] == nil {
			got[m.to] = map[int]int{}
		}
		got[m.to][m.phase]++
		require.Equal(t, testSender.ReplyTo, m.replyTo)
		require.Contains(t, m.text, testSender.Signature)
		if w := want[m.phase]; w != "" {
			require.Contains(t, m.text, w, "phase %d to %s says what changed", m.phase, m.to)
		} else {
			require.NotContains(t, m.text, "Root cause found")
		}
		if m.phase == 1 {
			require.True(t, slices.ContainsFunc(notYetKnown, func(w string) bool { return strings.Contains(m.text, w) }),
				"the initial notice to %s says the numbers will follow:\n%s", m.to, m.text)
		}
	}
	all := map[string]string{}
	for _, set := range []map[string]string{de, fr, it} {
		for addr, tenant := range set {
			all[addr] = tenant
		}
	}
	require.NotEmpty(t, de)
	require.NotEmpty(t, fr)
	require.NotEmpty(t, it)
	require.Len(t, got, len(all), "every contact in the final scope, nobody else")
	for addr := range all {
		require.Equal(t, map[int]int{1: 1, 2: 1, 3: 1}, got[addr], "phases received by %s", addr)
	}

	// Each phase was approved for its own hash, and the ledger sent each phase's.
	rows, err := s.st.Pool().Query(ctx, `SELECT d.phase, count(DISTINCT a.approver) FROM approvals a
		JOIN notice_drafts d ON d.incident_id = a.incident_id AND d.content_hash = a.content_hash
		WHERE a.incident_id = $1 GROUP BY d.phase, a.content_hash ORDER BY d.phase`, id)
	require.NoError(t, err)
	approvedPhases := []int{}
	for rows.Next() {
		var phase, n int
		require.NoError(t, rows.Scan(&phase, &n))
		require.GreaterOrEqual(t, n, 2)
		approvedPhases = append(approvedPhases, phase)
	}
	require.NoError(t, rows.Err())
	require.Subset(t, approvedPhases, []int{1, 2, 3})
	for phase, hash := range map[int]string{1: p1.Hash, 2: p2.Hash, 3: p3.Hash} {
		var other int
		require.NoError(t, s.st.Pool().QueryRow(ctx, `SELECT count(*) FROM ledger WHERE incident_id = $1 AND phase = $2
			AND removed_at IS NULL AND content_hash IS DISTINCT FROM $3`, id, phase, hash).Scan(&other))
		require.Zero(t, other, "phase %d rows carry another hash", phase)
	}

	// The final notice reached everyone: closing needs no reason.
	s.update(t, id, workflows.UpdateClose, workflows.CloseInput{Actor: "alice"})
	require.Equal(t, "final notice sent to every tenant in scope", s.status(t, id).CloseReason)
	s.checkHistories(t, id, 4096, historiesDir(t))
}

// notYetKnown is how each locale's notice says an element will follow.
var notYetKnown = []string{"Not yet known", "Noch nicht bekannt", "Non ancora noto", "Pas encore connu", "Aún no se conoce"}

// A draft whose locales have neither their own text nor an explicit English fallback
// cannot be approved: the refusal names them, and nothing is released.
func TestUntranslatedDraftIsNotApproved(t *testing.T) {
	s := newStack(t, 20, 1)
	id, _ := s.declare(t, "", workflows.Timing{})
	s.update(t, id, workflows.UpdateAssess, workflows.AssessInput{Reportable: true, Rationale: "exposed", Actor: "alice"})
	var d notice.Draft
	require.NoError(t, json.Unmarshal(phaseDraft(t, "", "A leaked credential gave read access."), &d))
	d.EnglishFallback = []string{"de"}
	d.Translations = map[string]notice.Translation{"it": {Title: "Esposizione del database dei dispositivi",
		Nature: "Una credenziale trapelata ha consentito l'accesso in lettura.", DataSubjectCategories: []string{"dipendenti del cliente"},
		LikelyConsequences: "Possibile phishing mirato.", MeasuresTaken: "La credenziale è stata revocata.",
		MeasuresProposed: "Ruotare i token di registrazione.", DataCategories: []string{"identificativi dei dispositivi"}}}
	raw, err := json.Marshal(d)
	require.NoError(t, err)
	p := s.propose(t, id, raw, false, "")
	require.Equal(t, []string{"es", "fr"}, p.Untranslated)
	s.update(t, id, workflows.UpdateScope, workflows.ScopeInput{Criteria: store.ScopeCriteria{Countries: []string{"DE", "IT"}}, Actor: "alice"})
	err = s.tryUpdate(id, workflows.UpdateApprove, workflows.ApproveInput{ContentHash: p.Hash, Actor: s.approver(t, "carol")})
	require.ErrorContains(t, err, "no text in es, fr")
	var n int
	require.NoError(t, s.st.Pool().QueryRow(context.Background(), `SELECT count(*) FROM approvals WHERE incident_id = $1`, id).Scan(&n))
	require.Zero(t, n)
	require.Empty(t, s.status(t, id).Approvers)
}
