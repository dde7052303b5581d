package activities_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/breachflow/breachflow/activities"
	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
)

// The README's example declaration and follow-up are notices approvers can approve as
// they are: complete, every locale with its own text or English by choice.
func TestExampleNoticesAreApprovable(t *testing.T) {
	read := func(path string) []byte {
		raw, err := os.ReadFile(path)
		require.NoError(t, err)
		js, err := yaml.YAMLToJSON(raw)
		require.NoError(t, err)
		return js
	}
	var decl store.Declaration
	require.NoError(t, json.Unmarshal(read("../examples/incident.yaml"), &decl))
	facts := activities.Declared{Title: decl.Title, AwareAt: decl.AwareAt, DataCategories: decl.DataCategories}
	sender := activities.DraftOptions{Sender: notice.Sender{Organisation: "Breachflow Cloud"}}

	initial, err := activities.PrepareDraft(decl.Notice, facts, notice.Phase{}, store.PhaseState{}, sender)
	require.NoError(t, err)
	require.Empty(t, notice.Untranslated(initial))
	require.Equal(t, []string{notice.ElementApproxDataSubjects, notice.ElementApproxRecords}, initial.Fields.NotYetKnown)
	it, err := notice.Render(initial, "it")
	require.NoError(t, err)
	require.Contains(t, it.Subject, "Accesso non autorizzato al database di gestione dei dispositivi")

	next := sender
	next.NextPhase = true
	update, err := activities.PrepareDraft(read("../examples/update.yaml"), facts, initial.PhaseOrInitial(),
		store.PhaseState{Opened: 1, Approved: 1, ApprovedKind: notice.PhaseInitial}, next)
	require.NoError(t, err)
	require.Equal(t, notice.Phase{Number: 2, Kind: notice.PhaseUpdate}, update.Phase)
	require.Empty(t, notice.Untranslated(update))
	de, err := notice.Render(update, "de")
	require.NoError(t, err)
	require.Contains(t, de.Text, "Ursache gefunden")

	final := next
	final.Kind = notice.PhaseFinal
	_, err = activities.PrepareDraft(read("../examples/update.yaml"), facts, update.Phase,
		store.PhaseState{Opened: 2, Approved: 2, ApprovedKind: notice.PhaseUpdate}, final)
	require.NoError(t, err, "the update's content can close the incident as its final notice")
}
