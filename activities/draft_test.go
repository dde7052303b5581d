package activities_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/activities"
	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
)

func TestPrepareDraftTakesTheDeclarationsFactsAndPlacesThePhase(t *testing.T) {
	aware := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	decl := activities.Declared{Title: "Device database exposure", AwareAt: aware, DataCategories: []string{"device identifiers"}}
	sender := notice.Sender{Organisation: "Provider Cloud SE"}
	base := func(edit func(*notice.Draft)) []byte {
		d := notice.Draft{EnglishFallback: []string{"de", "es", "fr", "it"}, Fields: notice.Fields{Reference: "R-1", Nature: "n",
			DataSubjectCategories: []string{"staff"}, ApproxDataSubjects: 10, ApproxRecords: 10,
			Contact: notice.ContactPoint{Name: "DPO", Phone: "+1 555 0100"}, LikelyConsequences: "c", MeasuresTaken: "m", MeasuresProposed: "p"}}
		if edit != nil {
			edit(&d)
		}
		raw, err := json.Marshal(d)
		require.NoError(t, err)
		return raw
	}
	initial := notice.Phase{Number: 1, Kind: notice.PhaseInitial}
	approved1 := store.PhaseState{Opened: 1, Approved: 1, ApprovedKind: notice.PhaseInitial}
	tests := []struct {
		name    string
		raw     []byte
		current notice.Phase
		phases  store.PhaseState
		opts    activities.DraftOptions
		want    notice.Phase
		field   string // refused on this field
		msg     string
	}{
		{name: "facts come from the declaration", raw: base(nil), want: initial},
		{name: "the same facts may be repeated", raw: base(func(d *notice.Draft) {
			d.Fields.Title, d.Fields.AwareAt, d.Fields.DataCategories = decl.Title, aware, decl.DataCategories
		}), want: initial},
		{name: "another title drifts", raw: base(func(d *notice.Draft) { d.Fields.Title = "Something else" }),
			field: "notice.fields.title", msg: "from its declaration"},
		{name: "another awareness time drifts", raw: base(func(d *notice.Draft) { d.Fields.AwareAt = aware.Add(time.Hour) }),
			field: "notice.fields.aware_at", msg: "2026-11-30T08:00:00Z"},
		{name: "other categories drift", raw: base(func(d *notice.Draft) { d.Fields.DataCategories = []string{"names"} }),
			field: "notice.fields.data_categories"},
		{name: "a replacement keeps the current phase", raw: base(func(d *notice.Draft) { d.Fields.WhatsNew = "w" }),
			current: notice.Phase{Number: 2, Kind: notice.PhaseUpdate}, phases: approved1, want: notice.Phase{Number: 2, Kind: notice.PhaseUpdate}},
		{name: "a replacement keeps its phase's kind", raw: base(func(d *notice.Draft) { d.Fields.WhatsNew = "w"; d.Phase.Kind = notice.PhaseFinal }),
			current: notice.Phase{Number: 2, Kind: notice.PhaseUpdate}, phases: approved1, field: "notice.phase", msg: "--final"},
		{name: "a replacement may not name another phase", raw: base(func(d *notice.Draft) { d.Phase.Number = 3 }),
			field: "notice.phase", msg: "follow-up"},
		{name: "a follow-up is the next phase", raw: base(func(d *notice.Draft) { d.Fields.WhatsNew = "w" }), phases: approved1,
			opts: activities.DraftOptions{NextPhase: true}, want: notice.Phase{Number: 2, Kind: notice.PhaseUpdate}},
		{name: "a final follow-up", raw: base(func(d *notice.Draft) { d.Fields.WhatsNew = "w" }), phases: approved1,
			opts: activities.DraftOptions{NextPhase: true, Kind: notice.PhaseFinal}, want: notice.Phase{Number: 2, Kind: notice.PhaseFinal}},
		{name: "no follow-up before the initial approval", raw: base(func(d *notice.Draft) { d.Fields.WhatsNew = "w" }),
			opts: activities.DraftOptions{NextPhase: true}, field: "notice.phase", msg: "not approved yet"},
		{name: "nothing follows the final notice", raw: base(func(d *notice.Draft) { d.Fields.WhatsNew = "w" }),
			phases: store.PhaseState{Opened: 2, Approved: 2, ApprovedKind: notice.PhaseFinal}, opts: activities.DraftOptions{NextPhase: true},
			field: "notice.phase", msg: "no phase follows"},
		{name: "an update says what is new", raw: base(nil), phases: approved1, opts: activities.DraftOptions{NextPhase: true},
			field: "notice", msg: "whats_new"},
		{name: "unknown fields are refused", raw: []byte(`{"fields":{},"colour":"red"}`), field: "notice", msg: "colour"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Sender = sender
			d, err := activities.PrepareDraft(tc.raw, decl, tc.current, tc.phases, tc.opts)
			if tc.field != "" {
				var fe *store.FieldError
				require.ErrorAs(t, err, &fe)
				require.Equal(t, tc.field, fe.Field)
				require.Contains(t, fe.Message, tc.msg)
				require.ErrorIs(t, err, store.ErrInvalidInput)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, d.Phase)
			require.Equal(t, decl.Title, d.Fields.Title)
			require.True(t, aware.Equal(d.Fields.AwareAt))
			require.Equal(t, decl.DataCategories, d.Fields.DataCategories)
			require.Equal(t, sender, d.Sender)
		})
	}
}
