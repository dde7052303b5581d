package notice_test

import (
	"html"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/notice"
)

// italianDraft returns validDraft with a complete Italian translation.
func italianDraft() notice.Draft {
	d := validDraft()
	d.Translations = map[string]notice.Translation{"it": translationFor(d.Fields, "it")}
	return d
}

func TestRenderUsesTheLocalesTranslation(t *testing.T) {
	t.Parallel()
	d := italianDraft()
	d.EnglishFallback = []string{"de"}
	require.NoError(t, notice.Validate(d))

	it, err := notice.RenderFor(d, recipient("it-IT"))
	require.NoError(t, err)
	require.Equal(t, "Notifica di violazione dei dati personali: "+italianText["title"]+" [INC-2026-0042]", it.Subject)
	require.Contains(t, it.Text, italianText["nature"])
	require.Contains(t, it.Text, "   - Indirizzi e-mail aziendali\n")
	require.Contains(t, it.Text, italianText["measures_proposed"])
	for _, line := range strings.Split(italianText["nature"], "\n") {
		require.Contains(t, it.HTML, "<p>"+html.EscapeString(line)+"</p>")
	}
	require.Contains(t, it.HTML, "<li>"+html.EscapeString("Utenti finali dell'applicazione del cliente")+"</li>")
	en := validDraft().Fields
	for _, english := range []string{en.Title, en.LikelyConsequences, en.MeasuresTaken, en.DataCategories[1]} {
		require.NotContains(t, it.Text, english)
		require.NotContains(t, it.HTML, html.EscapeString(english))
	}
	require.Contains(t, it.Text, en.Contact.Email, "what is not translated stays as given")

	// German has no translation but an explicit English fallback: the German template
	// carries the English text.
	de, err := notice.RenderFor(d, recipient("de-DE"))
	require.NoError(t, err)
	require.Equal(t, "Meldung einer Verletzung des Schutzes personenbezogener Daten: "+en.Title+" [INC-2026-0042]", de.Subject)
	require.Contains(t, de.Text, en.Nature)
	require.NotContains(t, de.Text, italianText["title"])

	// English never reads a translation.
	english, err := notice.Render(d, "en")
	require.NoError(t, err)
	require.Contains(t, english.Subject, en.Title)
	require.NotContains(t, english.Text, italianText["nature"])
}

func TestUntranslated(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		translations []string
		fallback     []string
		want         []string
	}{
		{"nothing chosen", nil, nil, []string{"de", "es", "fr", "it"}},
		{"italian translated", []string{"it"}, nil, []string{"de", "es", "fr"}},
		{"german falls back only when listed", []string{"it"}, []string{"de"}, []string{"es", "fr"}},
		{"every locale decided", []string{"it", "fr"}, []string{"es", "de"}, nil},
		{"all in English", nil, []string{"it", "fr", "es", "de"}, nil},
		{"unsupported entries change nothing", []string{"pt"}, []string{"xx", "en"}, []string{"de", "es", "fr", "it"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := validDraft()
			d.EnglishFallback = tt.fallback
			if tt.translations != nil {
				d.Translations = map[string]notice.Translation{}
				for _, loc := range tt.translations {
					d.Translations[loc] = translationFor(d.Fields, loc)
				}
			}
			require.Equal(t, tt.want, notice.Untranslated(d))
		})
	}
}

func TestValidateTranslations(t *testing.T) {
	t.Parallel()
	type problem struct{ element, locale, message string }
	tests := []struct {
		name   string
		change func(d *notice.Draft)
		want   []problem
	}{
		{"complete italian", func(*notice.Draft) {}, nil},
		{"every locale", func(d *notice.Draft) {
			for _, loc := range []string{"de", "es", "fr"} {
				d.Translations[loc] = translationFor(d.Fields, loc)
			}
		}, nil},
		{"with the optional texts", func(d *notice.Draft) {
			d.Phase = notice.Phase{Number: 2, Kind: notice.PhaseUpdate}
			d.Fields.WhatsNew = "News."
			d.Fields.AdditionalInformation = "More."
			d.Translations["it"] = translationFor(d.Fields, "it")
		}, nil},
		{"english locale", func(d *notice.Draft) { d.Translations["en"] = translationFor(d.Fields, "en") },
			[]problem{{"translations", "en", "not a supported locale other than en"}}},
		{"unsupported locale", func(d *notice.Draft) { d.Translations["it-IT"] = translationFor(d.Fields, "it") },
			[]problem{{"translations", "it-IT", "not a supported locale other than en"}}},
		{"missing nature", func(d *notice.Draft) { setIT(d, func(tr *notice.Translation) { tr.Nature = " " }) },
			[]problem{{"nature", "it", "is missing from the translation"}}},
		{"missing several", func(d *notice.Draft) {
			setIT(d, func(tr *notice.Translation) { tr.Title, tr.MeasuresTaken, tr.DataSubjectCategories = "", "", nil })
		}, []problem{
			{"title", "it", "is missing from the translation"},
			{"data_subject_categories", "it", "is missing from the translation"},
			{"measures_taken", "it", "is missing from the translation"},
		}},
		{"missing whats_new of an update", func(d *notice.Draft) {
			d.Phase = notice.Phase{Number: 2, Kind: notice.PhaseUpdate}
			d.Fields.WhatsNew = "News."
		}, []problem{{"whats_new", "it", "is missing from the translation"}}},
		{"missing additional information", func(d *notice.Draft) { d.Fields.AdditionalInformation = "More." },
			[]problem{{"additional_information", "it", "is missing from the translation"}}},
		{"text the english leaves out", func(d *notice.Draft) {
			setIT(d, func(tr *notice.Translation) { tr.AdditionalInformation = "Altro." })
		}, []problem{{"additional_information", "it", "is left out in English"}}},
		{"text for an element not yet known", func(d *notice.Draft) {
			d.Fields.ApproxRecords = 0
			d.Fields.MeasuresProposed = ""
			d.Fields.NotYetKnown = []string{"approx_records", "measures_proposed"}
		}, []problem{{"measures_proposed", "it", "is marked not yet known"}}},
		{"list shorter than the english", func(d *notice.Draft) {
			setIT(d, func(tr *notice.Translation) { tr.DataCategories = tr.DataCategories[:1] })
		}, []problem{{"data_categories", "it", "has 1 entries; the English has 2"}}},
		{"blank list entry", func(d *notice.Draft) {
			setIT(d, func(tr *notice.Translation) { tr.DataCategories[1] = " " })
		}, []problem{{"data_categories", "it", "entry 2 is empty"}}},
		{"title on two lines", func(d *notice.Draft) {
			setIT(d, func(tr *notice.Translation) { tr.Title = "uno\ndue" })
		}, []problem{{"title", "it", "single line"}}},
		{"title too long", func(d *notice.Draft) {
			setIT(d, func(tr *notice.Translation) { tr.Title = strings.Repeat("è", notice.MaxTitleLen+1) })
		}, []problem{{"title", "it", "at most 200"}}},
		{"nature with direction override", func(d *notice.Draft) {
			setIT(d, func(tr *notice.Translation) { tr.Nature = "abc\u202Edef" })
		}, []problem{{"nature", "it", "control character"}}},
		{"consequences not UTF-8", func(d *notice.Draft) {
			setIT(d, func(tr *notice.Translation) { tr.LikelyConsequences = "bad \xff" })
		}, []problem{{"likely_consequences", "it", "UTF-8"}}},
		{"list entry too long", func(d *notice.Draft) {
			setIT(d, func(tr *notice.Translation) { tr.DataCategories[0] = strings.Repeat("x", notice.MaxListItemLen+1) })
		}, []problem{{"data_categories", "it", "entry 1"}}},
		{"fallback with a translation", func(d *notice.Draft) { d.EnglishFallback = []string{"it"} },
			[]problem{{"english_fallback", "it", "has a translation too"}}},
		{"fallback for english", func(d *notice.Draft) { d.EnglishFallback = []string{"en"} },
			[]problem{{"english_fallback", "en", "not a supported locale other than en"}}},
		{"fallback for an unsupported locale", func(d *notice.Draft) { d.EnglishFallback = []string{"pt"} },
			[]problem{{"english_fallback", "pt", "not a supported locale other than en"}}},
		{"fallback listed twice", func(d *notice.Draft) { d.EnglishFallback = []string{"de", "de"} },
			[]problem{{"english_fallback", "de", "is listed twice"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := italianDraft()
			tt.change(&d)
			err := notice.Validate(d)
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			ve := validationError(t, err)
			require.Empty(t, ve.Missing)
			require.Empty(t, ve.Templates)
			var got []problem
			for _, p := range ve.Invalid {
				got = append(got, problem{p.Element, p.Locale, p.Message})
			}
			require.Len(t, got, len(tt.want), ve.Error())
			for i, w := range tt.want {
				require.Equal(t, w.element, got[i].element, ve.Error())
				require.Equal(t, w.locale, got[i].locale)
				require.Contains(t, got[i].message, w.message)
			}
		})
	}
}

func TestValidationErrorNamesTheTranslation(t *testing.T) {
	t.Parallel()
	d := italianDraft()
	setIT(&d, func(tr *notice.Translation) { tr.Nature = "" })
	ve := validationError(t, notice.Validate(d))
	require.Contains(t, ve.Error(), "nature of the breach (nature) for Italian (it): is missing from the translation")
}

// setIT changes the draft's Italian translation.
func setIT(d *notice.Draft, change func(tr *notice.Translation)) {
	tr := d.Translations["it"]
	change(&tr)
	d.Translations["it"] = tr
}

func TestRenderTranslatedDraftIsDeterministic(t *testing.T) {
	t.Parallel()
	first := translatedDraft()
	again := translatedDraft()
	again.Translations = map[string]notice.Translation{}
	for _, loc := range []string{"it", "fr", "es", "de"} {
		again.Translations[loc] = translationFor(again.Fields, loc)
	}
	for _, loc := range notice.Locales() {
		a, err := notice.Render(first, loc)
		require.NoError(t, err)
		b, err := notice.Render(again, loc)
		require.NoError(t, err)
		require.Equal(t, a, b)
		if loc != "en" {
			require.Contains(t, a.Subject, first.Translations[loc].Title)
			require.Contains(t, a.Text, first.Translations[loc].WhatsNew)
		}
	}
}
