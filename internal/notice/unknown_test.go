package notice_test

import (
	"html"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/notice"
)

// notYetKnown is each locale's sentence for an element not yet known.
var notYetKnown = map[string]string{
	"en": "Not yet known — we will tell you in a later update.",
	"it": "Non ancora noto — ve lo comunicheremo in un aggiornamento successivo.",
	"de": "Noch nicht bekannt — wir teilen es Ihnen in einer späteren Aktualisierung mit.",
	"fr": "Pas encore connu — nous vous en informerons dans une prochaine mise à jour.",
	"es": "Aún no se conoce — se lo comunicaremos en una actualización posterior.",
}

// unknownDraft returns validDraft with the named elements blanked and marked not yet known.
func unknownDraft(elements ...string) notice.Draft {
	d := validDraft()
	f := &d.Fields
	for _, el := range elements {
		switch el {
		case "data_categories":
			f.DataCategories = nil
		case "data_subject_categories":
			f.DataSubjectCategories = nil
		case "approx_data_subjects":
			f.ApproxDataSubjects = 0
		case "approx_records":
			f.ApproxRecords = 0
		case "likely_consequences":
			f.LikelyConsequences = ""
		case "measures_taken":
			f.MeasuresTaken = ""
		case "measures_proposed":
			f.MeasuresProposed = ""
		}
	}
	f.NotYetKnown = elements
	return d
}

func TestUnknowableElements(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{
		"data_categories", "data_subject_categories", "approx_data_subjects", "approx_records",
		"likely_consequences", "measures_taken", "measures_proposed",
	}, notice.UnknowableElements())
	got := notice.UnknowableElements()
	got[0] = "x"
	require.Equal(t, "data_categories", notice.UnknowableElements()[0], "UnknowableElements must return a copy")
}

func TestValidateNotYetKnown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		draft   func() notice.Draft
		missing []string
		element string
		message string
	}{
		{"initial with unknown numbers", func() notice.Draft { return unknownDraft("approx_data_subjects", "approx_records") }, nil, "", ""},
		{"every unknowable element", func() notice.Draft { return unknownDraft(notice.UnknowableElements()...) }, nil, "", ""},
		{"update with unknowns", func() notice.Draft {
			d := unknownDraft("measures_proposed")
			d.Phase = notice.Phase{Number: 2, Kind: notice.PhaseUpdate}
			d.Fields.WhatsNew = "Consequences are now assessed."
			return d
		}, nil, "", ""},
		{"final with unknowns", func() notice.Draft {
			d := unknownDraft("approx_records", "likely_consequences")
			d.Phase = notice.Phase{Number: 3, Kind: notice.PhaseFinal}
			d.Fields.WhatsNew = "The investigation is closed."
			return d
		}, nil, "not_yet_known", "a final notice must state every element; still marked not yet known: approximate number of personal data records (approx_records), likely consequences of the breach (likely_consequences)"},
		{"value given for an unknown number", func() notice.Draft {
			d := unknownDraft("approx_records")
			d.Fields.ApproxRecords = 10
			return d
		}, nil, "approx_records", "is marked not yet known but has a value"},
		{"value given for an unknown list", func() notice.Draft {
			d := validDraft()
			d.Fields.NotYetKnown = []string{"data_categories"}
			return d
		}, nil, "data_categories", "is marked not yet known but has a value"},
		{"value given for an unknown text", func() notice.Draft {
			d := validDraft()
			d.Fields.NotYetKnown = []string{"measures_taken"}
			return d
		}, nil, "measures_taken", "is marked not yet known but has a value"},
		{"element that must always be known", func() notice.Draft {
			d := validDraft()
			d.Fields.NotYetKnown = []string{"nature"}
			return d
		}, nil, "not_yet_known", `"nature" cannot be marked not yet known`},
		{"unknown element name", func() notice.Draft {
			d := validDraft()
			d.Fields.NotYetKnown = []string{"mood"}
			return d
		}, nil, "not_yet_known", `"mood" cannot be marked`},
		{"named twice", func() notice.Draft { return unknownDraft("approx_records", "approx_records") }, nil, "not_yet_known", "names approx_records twice"},
		{"blank and not marked is still missing", func() notice.Draft {
			d := unknownDraft("approx_records")
			d.Fields.ApproxDataSubjects = 0
			return d
		}, []string{"approx_data_subjects"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := notice.Validate(tt.draft())
			if tt.missing == nil && tt.element == "" {
				require.NoError(t, err)
				return
			}
			ve := validationError(t, err)
			require.Equal(t, tt.missing, ve.Missing)
			if tt.element == "" {
				require.Empty(t, ve.Invalid)
				return
			}
			require.Len(t, ve.Invalid, 1, ve.Error())
			require.Equal(t, tt.element, ve.Invalid[0].Element)
			require.Contains(t, ve.Invalid[0].Message, tt.message)
		})
	}
}

func TestRenderNotYetKnown(t *testing.T) {
	t.Parallel()
	require.Len(t, notYetKnown, len(notice.Locales()))
	for _, loc := range notice.Locales() {
		t.Run(loc, func(t *testing.T) {
			t.Parallel()
			sentence := notYetKnown[loc]
			lang := languages[loc]

			numbers, err := notice.Render(unknownDraft("approx_data_subjects", "approx_records"), loc)
			require.NoError(t, err)
			require.Equal(t, 2, strings.Count(numbers.Text, ": "+sentence+"\n"), numbers.Text)
			require.Equal(t, 2, strings.Count(numbers.HTML, "<p>"+html.EscapeString(sentence)+"</p>"))
			require.NotContains(t, numbers.Text, lang.subjects)
			require.NotContains(t, numbers.Text, lang.records)

			all, err := notice.Render(unknownDraft(notice.UnknowableElements()...), loc)
			require.NoError(t, err)
			require.Equal(t, 7, strings.Count(all.Text, sentence), all.Text)
			require.Equal(t, 2, strings.Count(all.Text, "   - "+sentence+"\n"), "a list holds the sentence as its one entry")
			require.Equal(t, 2, strings.Count(all.HTML, "<li>"+html.EscapeString(sentence)+"</li>"))
			require.Equal(t, 7, strings.Count(all.HTML, html.EscapeString(sentence)))
		})
	}
}

func TestTemplatesCanTestNotYetKnown(t *testing.T) {
	t.Parallel()
	d := unknownDraft("approx_records")
	d.Templates = map[string]notice.Template{"en": {
		Subject: `Breach {{.Reference}}{{if index .NotYetKnown "approx_records"}} (records to follow){{end}}`,
	}}
	r, err := notice.Render(d, "en")
	require.NoError(t, err)
	require.Equal(t, "Breach INC-2026-0042 (records to follow)", r.Subject)

	d.Fields.NotYetKnown, d.Fields.ApproxRecords = nil, 5
	r, err = notice.Render(d, "en")
	require.NoError(t, err)
	require.Equal(t, "Breach INC-2026-0042", r.Subject)
}
