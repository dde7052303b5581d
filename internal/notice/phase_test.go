package notice_test

import (
	"html"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/notice"
)

// phaseWords holds, per locale, the notice's name as its subject starts, the labels of
// notice 1, update 2 and final notice 3, the heading of the what's-new section and a
// phrase only the final notice uses.
var phaseWords = map[string]struct {
	name, initial, update, final, changed, finalReport string
}{
	"en": {"Personal data breach notification", "Initial notification", "Update 2", "Final report (notice 3)", "What has changed since our previous notice", "This is our final report on this incident"},
	"it": {"Notifica di violazione dei dati personali", "Notifica iniziale", "Aggiornamento 2", "Relazione finale (notifica 3)", "Che cosa è cambiato rispetto alla nostra notifica precedente", "Questa è la nostra relazione finale su questo incidente"},
	"de": {"Meldung einer Verletzung des Schutzes personenbezogener Daten", "Erstmeldung", "Aktualisierung 2", "Abschlussbericht (Meldung 3)", "Was sich seit unserer vorherigen Meldung geändert hat", "Dies ist unser Abschlussbericht zu diesem Vorfall"},
	"fr": {"Notification de violation de données à caractère personnel", "Notification initiale", "Mise à jour n° 2", "Rapport final (notification n° 3)", "Ce qui a changé depuis notre précédente notification", "Ceci est notre rapport final sur cet incident"},
	"es": {"Notificación de violación de la seguridad de los datos personales", "Notificación inicial", "Actualización n.º 2", "Informe final (notificación n.º 3)", "Qué ha cambiado desde nuestra notificación anterior", "Este es nuestro informe final sobre este incidente"},
}

func TestPhaseOrInitial(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		phase notice.Phase
		want  notice.Phase
	}{
		{"zero reads as initial", notice.Phase{}, notice.Phase{Number: 1, Kind: notice.PhaseInitial}},
		{"explicit initial", notice.Phase{Number: 1, Kind: notice.PhaseInitial}, notice.Phase{Number: 1, Kind: notice.PhaseInitial}},
		{"update kept", notice.Phase{Number: 2, Kind: notice.PhaseUpdate}, notice.Phase{Number: 2, Kind: notice.PhaseUpdate}},
		{"half-set phase kept for validation to refuse", notice.Phase{Number: 2}, notice.Phase{Number: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, notice.Draft{Phase: tt.phase}.PhaseOrInitial())
		})
	}
}

func TestValidatePhases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		draft   func() notice.Draft
		missing []string
		element string
		message string
	}{
		{"zero phase is initial", validDraft, nil, "", ""},
		{"explicit initial", func() notice.Draft {
			d := validDraft()
			d.Phase = notice.Phase{Number: 1, Kind: notice.PhaseInitial}
			return d
		}, nil, "", ""},
		{"update", func() notice.Draft { return updateDraft(2, notice.PhaseUpdate) }, nil, "", ""},
		{"final", func() notice.Draft { return updateDraft(5, notice.PhaseFinal) }, nil, "", ""},
		{"update without whats_new", func() notice.Draft {
			d := updateDraft(2, notice.PhaseUpdate)
			d.Fields.WhatsNew = " \n"
			return d
		}, []string{"whats_new"}, "", ""},
		{"final without whats_new", func() notice.Draft {
			d := updateDraft(3, notice.PhaseFinal)
			d.Fields.WhatsNew = ""
			return d
		}, []string{"whats_new"}, "", ""},
		{"initial with whats_new", func() notice.Draft {
			d := validDraft()
			d.Fields.WhatsNew = "Something changed."
			return d
		}, nil, "whats_new", "must be empty for the initial notice"},
		{"zero phase with whats_new", func() notice.Draft {
			d := updateDraft(2, notice.PhaseUpdate)
			d.Phase = notice.Phase{}
			return d
		}, nil, "whats_new", "must be empty for the initial notice"},
		{"update numbered 1", func() notice.Draft { return updateDraft(1, notice.PhaseUpdate) }, nil, "phase", "notice 1 must be the initial notice"},
		{"final numbered 1", func() notice.Draft { return updateDraft(1, notice.PhaseFinal) }, nil, "phase", "notice 1 must be the initial notice"},
		{"initial numbered 2", func() notice.Draft {
			d := validDraft()
			d.Phase = notice.Phase{Number: 2, Kind: notice.PhaseInitial}
			return d
		}, nil, "phase", "must be number 1, not 2"},
		{"negative number", func() notice.Draft { return updateDraft(-1, notice.PhaseUpdate) }, nil, "phase", "at least 1"},
		{"unknown kind", func() notice.Draft { return updateDraft(2, "interim") }, nil, "phase", `kind "interim"`},
		{"kind left out", func() notice.Draft { return updateDraft(2, "") }, nil, "phase", `kind ""`},
		{"whats_new too long", func() notice.Draft {
			d := updateDraft(2, notice.PhaseUpdate)
			d.Fields.WhatsNew = strings.Repeat("x", notice.MaxTextLen+1)
			return d
		}, nil, "whats_new", "at most 10000"},
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
			require.Contains(t, ve.Error(), "("+tt.element+")")
		})
	}
}

func TestRenderPhases(t *testing.T) {
	t.Parallel()
	require.Len(t, phaseWords, len(notice.Locales()))
	for _, loc := range notice.Locales() {
		words := phaseWords[loc]
		t.Run(loc, func(t *testing.T) {
			t.Parallel()
			initial, err := notice.Render(validDraft(), loc)
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(initial.Subject, words.name), "an initial subject names no phase: %s", initial.Subject)
			require.Contains(t, initial.Text, words.initial)
			require.Contains(t, initial.HTML, words.initial)
			require.NotContains(t, initial.Text, words.changed)
			require.NotContains(t, initial.HTML, words.changed)
			require.NotContains(t, initial.Text, words.finalReport)

			d := updateDraft(2, notice.PhaseUpdate)
			update, err := notice.Render(d, loc)
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(update.Subject, words.update+" — "+words.name), update.Subject)
			require.Contains(t, update.Subject, d.Fields.Title)
			require.Contains(t, update.Subject, d.Fields.Reference)
			for _, part := range []string{update.Text, update.HTML} {
				require.Contains(t, part, words.update)
				require.Contains(t, part, words.changed)
				require.NotContains(t, part, words.finalReport)
			}
			// The label is near the top and what changed comes before the numbered elements.
			label := strings.Index(update.Text, words.update)
			changed := strings.Index(update.Text, words.changed)
			news := strings.Index(update.Text, "The attacker's address has been traced.\nNo further downloads were found.")
			first := strings.Index(update.Text, "\n1. ")
			require.Less(t, label, strings.Index(update.Text, d.Fields.Reference))
			require.Less(t, changed, news)
			require.Less(t, news, first)
			require.Contains(t, update.HTML, "<p>"+html.EscapeString("The attacker's address has been traced.")+"</p>")
			require.Less(t, strings.Index(update.HTML, words.changed), strings.Index(update.HTML, ">1. "))

			final, err := notice.Render(updateDraft(3, notice.PhaseFinal), loc)
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(final.Subject, words.final+" — "+words.name), final.Subject)
			for _, part := range []string{final.Text, final.HTML} {
				require.Contains(t, part, words.final)
				require.Contains(t, part, words.changed)
				require.Contains(t, part, words.finalReport)
			}
		})
	}
}

func TestRenderZeroPhaseEqualsInitial(t *testing.T) {
	t.Parallel()
	explicit := validDraft()
	explicit.Phase = notice.Phase{Number: 1, Kind: notice.PhaseInitial}
	for _, loc := range notice.Locales() {
		a, err := notice.Render(validDraft(), loc)
		require.NoError(t, err)
		b, err := notice.Render(explicit, loc)
		require.NoError(t, err)
		require.Equal(t, a, b)
	}
	en, err := notice.Render(validDraft(), "en")
	require.NoError(t, err)
	require.Equal(t, "Personal data breach notification: Unauthorised access to a backup storage bucket [INC-2026-0042]", en.Subject)
}

func TestPhaseLabel(t *testing.T) {
	t.Parallel()
	for _, loc := range notice.Locales() {
		w := phaseWords[loc]
		require.Equal(t, w.initial, notice.PhaseLabel(notice.Phase{}, loc))
		require.Equal(t, w.initial, notice.PhaseLabel(notice.Phase{Number: 1, Kind: notice.PhaseInitial}, loc))
		require.Equal(t, w.update, notice.PhaseLabel(notice.Phase{Number: 2, Kind: notice.PhaseUpdate}, loc))
		require.Equal(t, w.final, notice.PhaseLabel(notice.Phase{Number: 3, Kind: notice.PhaseFinal}, loc))
	}
}

func TestCustomTemplatesOfUpdatesMustShowWhatsNew(t *testing.T) {
	t.Parallel()
	d := updateDraft(2, notice.PhaseUpdate)
	d.Templates = map[string]notice.Template{"it": {Text: bodyTemplate()}}
	ve := validationError(t, notice.Validate(d))
	require.Equal(t, []notice.TemplateGap{{Locale: "it", Part: "text", Missing: []string{"whats_new"}}}, ve.Templates)

	d.Templates = map[string]notice.Template{"it": {Text: bodyTemplate() + "{{.WhatsNew}}"}}
	require.NoError(t, notice.Validate(d))

	initial := validDraft()
	initial.Templates = map[string]notice.Template{"it": {Text: bodyTemplate()}}
	require.NoError(t, notice.Validate(initial), "an initial notice has nothing new to show")
}
