package notice_test

import (
	"encoding/hex"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/notice"
)

func TestContentHashIsStable(t *testing.T) {
	t.Parallel()
	h := notice.ContentHash(validDraft())
	raw, err := hex.DecodeString(h)
	require.NoError(t, err)
	require.Len(t, raw, 32)
	for range 10 {
		require.Equal(t, h, notice.ContentHash(validDraft()))
	}

	// A draft that went through JSON, as it does between the API and the store, hashes alike.
	b, err := json.Marshal(validDraft())
	require.NoError(t, err)
	var decoded notice.Draft
	require.NoError(t, json.Unmarshal(b, &decoded))
	require.Equal(t, h, notice.ContentHash(decoded))

	// So does a draft using every part.
	b, err = json.Marshal(translatedDraft())
	require.NoError(t, err)
	decoded = notice.Draft{}
	require.NoError(t, json.Unmarshal(b, &decoded))
	require.Equal(t, notice.ContentHash(translatedDraft()), notice.ContentHash(decoded))

	// The same instant in another time zone is the same content.
	zoned := validDraft()
	zoned.Fields.AwareAt = zoned.Fields.AwareAt.In(time.FixedZone("CET", 3600))
	require.Equal(t, h, notice.ContentHash(zoned))
}

func TestContentHashIgnoresMapOrder(t *testing.T) {
	t.Parallel()
	overrides := []struct {
		loc  string
		tmpl notice.Template
	}{
		{"it", notice.Template{Subject: "Violazione {{.Reference}}"}},
		{"de", notice.Template{Text: bodyTemplate()}},
		{"fr", notice.Template{HTML: bodyTemplate()}},
		{"es", notice.Template{Subject: "Violación {{.Reference}}", Text: bodyTemplate()}},
		{"en", notice.Template{Subject: "Breach {{.Reference}}"}},
	}
	build := func(order []int) notice.Draft {
		d := validDraft()
		d.Templates = map[string]notice.Template{}
		for _, i := range order {
			d.Templates[overrides[i].loc] = overrides[i].tmpl
		}
		return d
	}
	want := notice.ContentHash(build([]int{0, 1, 2, 3, 4}))
	for _, order := range [][]int{{4, 3, 2, 1, 0}, {2, 0, 4, 1, 3}, {1, 3, 0, 4, 2}} {
		for range 20 {
			require.Equal(t, want, notice.ContentHash(build(order)))
		}
	}
}

func TestContentHashChangesWithEveryField(t *testing.T) {
	t.Parallel()
	changes := map[string]func(f *notice.Fields){
		"reference":               func(f *notice.Fields) { f.Reference = "INC-2026-0043" },
		"title":                   func(f *notice.Fields) { f.Title += "." },
		"aware_at":                func(f *notice.Fields) { f.AwareAt = f.AwareAt.Add(time.Second) },
		"nature":                  func(f *notice.Fields) { f.Nature += " " },
		"data_categories":         func(f *notice.Fields) { f.DataCategories[1] = "Private email addresses" },
		"data_subject_categories": func(f *notice.Fields) { f.DataSubjectCategories = f.DataSubjectCategories[:1] },
		"approx_data_subjects":    func(f *notice.Fields) { f.ApproxDataSubjects++ },
		"approx_records":          func(f *notice.Fields) { f.ApproxRecords-- },
		"contact_point.name":      func(f *notice.Fields) { f.Contact.Name = "John Doe" },
		"contact_point.role":      func(f *notice.Fields) { f.Contact.Role = "" },
		"contact_point.email":     func(f *notice.Fields) { f.Contact.Email = "privacy@provider.example" },
		"contact_point.phone":     func(f *notice.Fields) { f.Contact.Phone = "+39 02 1234 5679" },
		"likely_consequences":     func(f *notice.Fields) { f.LikelyConsequences = "None expected." },
		"measures_taken":          func(f *notice.Fields) { f.MeasuresTaken = strings.ToUpper(f.MeasuresTaken) },
		"measures_proposed":       func(f *notice.Fields) { f.MeasuresProposed += "\n" },
		"additional_information":  func(f *notice.Fields) { f.AdditionalInformation = "More to follow." },
		"whats_new":               func(f *notice.Fields) { f.WhatsNew = "The record count is now known." },
		"not_yet_known":           func(f *notice.Fields) { f.NotYetKnown = []string{"approx_records"} },
	}

	// Every field of Fields and ContactPoint must have a case above, so a field added later
	// cannot silently escape the hash.
	var names []string
	for _, typ := range []reflect.Type{reflect.TypeFor[notice.Fields](), reflect.TypeFor[notice.ContactPoint]()} {
		for f := range typ.Fields() {
			name := strings.Split(f.Tag.Get("json"), ",")[0]
			if f.Type == reflect.TypeFor[notice.ContactPoint]() {
				continue
			}
			if typ == reflect.TypeFor[notice.ContactPoint]() {
				name = "contact_point." + name
			}
			names = append(names, name)
		}
	}
	for _, name := range names {
		require.Contains(t, changes, name, "no hash test for field %s", name)
	}

	base := notice.ContentHash(validDraft())
	seen := map[string]string{base: "base"}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := validDraft()
			change(&d.Fields)
			require.NotEqual(t, base, notice.ContentHash(d))
		})
		d := validDraft()
		change(&d.Fields)
		h := notice.ContentHash(d)
		require.NotContains(t, seen, h, "%s hashes like %s", name, seen[h])
		seen[h] = name
	}
}

func TestContentHashHasNoAmbiguousEncodings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		a, b func(f *notice.Fields)
	}{
		{
			"text moved between fields",
			func(f *notice.Fields) { f.MeasuresTaken, f.MeasuresProposed = "ab", "c" },
			func(f *notice.Fields) { f.MeasuresTaken, f.MeasuresProposed = "a", "bc" },
		},
		{
			"list items split differently",
			func(f *notice.Fields) { f.DataCategories = []string{"a, b"} },
			func(f *notice.Fields) { f.DataCategories = []string{"a", " b"} },
		},
		{
			"item moved between lists",
			func(f *notice.Fields) { f.DataCategories, f.DataSubjectCategories = []string{"x", "y"}, []string{"z"} },
			func(f *notice.Fields) { f.DataCategories, f.DataSubjectCategories = []string{"x"}, []string{"y", "z"} },
		},
		{
			"list order",
			func(f *notice.Fields) { f.DataCategories = []string{"x", "y"} },
			func(f *notice.Fields) { f.DataCategories = []string{"y", "x"} },
		},
		{
			"counts swapped",
			func(f *notice.Fields) { f.ApproxDataSubjects, f.ApproxRecords = 10, 20 },
			func(f *notice.Fields) { f.ApproxDataSubjects, f.ApproxRecords = 20, 10 },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, b := validDraft(), validDraft()
			tt.a(&a.Fields)
			tt.b(&b.Fields)
			require.NotEqual(t, notice.ContentHash(a), notice.ContentHash(b))
		})
	}
}

func TestContentHashChangesWithEveryTemplate(t *testing.T) {
	t.Parallel()
	base := notice.ContentHash(validDraft())
	seen := map[string]bool{base: true}
	for _, loc := range notice.Locales() {
		def := notice.DefaultTemplate(loc)
		for _, part := range []string{notice.PartSubject, notice.PartText, notice.PartHTML} {
			t.Run(loc+"/"+part, func(t *testing.T) {
				d := validDraft()
				tmpl := notice.Template{}
				switch part {
				case notice.PartSubject:
					tmpl.Subject = def.Subject + " "
				case notice.PartText:
					tmpl.Text = strings.Replace(def.Text, "\n\n", "\n\n\n", 1)
				case notice.PartHTML:
					tmpl.HTML = def.HTML + "\n"
				}
				d.Templates = map[string]notice.Template{loc: tmpl}
				h := notice.ContentHash(d)
				require.NotEqual(t, base, h)
				require.False(t, seen[h], "two template changes hash alike")
				seen[h] = true
			})
		}
	}

	// An override identical to the default is the same content and hashes alike.
	same := validDraft()
	same.Templates = map[string]notice.Template{"fr": notice.DefaultTemplate("fr")}
	require.Equal(t, base, notice.ContentHash(same))

	// An override for a locale that never renders is still part of what was approved.
	stray := validDraft()
	stray.Templates = map[string]notice.Template{"pt": {Subject: "x"}}
	require.NotEqual(t, base, notice.ContentHash(stray))
}

// translatedDraft returns validDraft with translations for every other locale and an
// update phase, so that each part of the draft has a value a change can alter.
func translatedDraft() notice.Draft {
	d := validDraft()
	d.Phase = notice.Phase{Number: 2, Kind: notice.PhaseUpdate}
	d.Fields.WhatsNew = "The record count is now known."
	d.Fields.AdditionalInformation = "A forensic report will follow."
	d.Translations = map[string]notice.Translation{}
	for _, loc := range []string{"de", "es", "fr", "it"} {
		d.Translations[loc] = translationFor(d.Fields, loc)
	}
	d.Sender = notice.Sender{Organisation: "Example Cloud S.r.l.", Signature: "Security Team", ReplyTo: "privacy@provider.example"}
	return d
}

func TestContentHashChangesWithEveryDraftPart(t *testing.T) {
	t.Parallel()
	changes := map[string]func(d *notice.Draft){
		"phase.number": func(d *notice.Draft) { d.Phase.Number = 3 },
		"phase.kind":   func(d *notice.Draft) { d.Phase.Kind = notice.PhaseFinal },
		"fallback":     func(d *notice.Draft) { delete(d.Translations, "es"); d.EnglishFallback = []string{"es"} },
		"no fallback":  func(d *notice.Draft) { delete(d.Translations, "es") },
		"translation added for an unsupported locale": func(d *notice.Draft) {
			d.Translations["pt"] = notice.Translation{Title: "x"}
		},
		"sender.organisation": func(d *notice.Draft) { d.Sender.Organisation = "Example Cloud GmbH" },
		"sender.signature":    func(d *notice.Draft) { d.Sender.Signature = "" },
		"sender.reply_to":     func(d *notice.Draft) { d.Sender.ReplyTo = "dpo@provider.example" },
	}
	// Every field of Translation, changed in each locale alone.
	edits := map[string]func(tr *notice.Translation){
		"title":                   func(tr *notice.Translation) { tr.Title += "." },
		"nature":                  func(tr *notice.Translation) { tr.Nature += " " },
		"data_categories":         func(tr *notice.Translation) { tr.DataCategories[0] += "!" },
		"data_subject_categories": func(tr *notice.Translation) { tr.DataSubjectCategories[1] += "!" },
		"likely_consequences":     func(tr *notice.Translation) { tr.LikelyConsequences += "!" },
		"measures_taken":          func(tr *notice.Translation) { tr.MeasuresTaken += "!" },
		"measures_proposed":       func(tr *notice.Translation) { tr.MeasuresProposed += "!" },
		"additional_information":  func(tr *notice.Translation) { tr.AdditionalInformation += "!" },
		"whats_new":               func(tr *notice.Translation) { tr.WhatsNew += "!" },
	}
	for f := range reflect.TypeFor[notice.Translation]().Fields() {
		name := strings.Split(f.Tag.Get("json"), ",")[0]
		require.Contains(t, edits, name, "no hash test for translation field %s", name)
	}
	for f := range reflect.TypeFor[notice.Sender]().Fields() {
		name := "sender." + strings.Split(f.Tag.Get("json"), ",")[0]
		require.Contains(t, changes, name, "no hash test for field %s", name)
	}
	for _, loc := range []string{"de", "es", "fr", "it"} {
		for name, edit := range edits {
			changes["translations."+loc+"."+name] = func(d *notice.Draft) {
				tr := d.Translations[loc]
				edit(&tr)
				d.Translations[loc] = tr
			}
		}
	}

	base := notice.ContentHash(translatedDraft())
	seen := map[string]string{base: "base"}
	for name, change := range changes {
		d := translatedDraft()
		change(&d)
		h := notice.ContentHash(d)
		require.NotContains(t, seen, h, "%s hashes like %s", name, seen[h])
		seen[h] = name
	}
}

func TestContentHashReadsPhasesAndListsCanonically(t *testing.T) {
	t.Parallel()
	zero := validDraft()
	explicit := validDraft()
	explicit.Phase = notice.Phase{Number: 1, Kind: notice.PhaseInitial}
	require.Equal(t, notice.ContentHash(zero), notice.ContentHash(explicit), "the zero phase is the initial one")

	a, b := validDraft(), validDraft()
	a.Fields.ApproxRecords, b.Fields.ApproxRecords = 0, 0
	a.Fields.ApproxDataSubjects, b.Fields.ApproxDataSubjects = 0, 0
	a.Fields.NotYetKnown = []string{"approx_records", "approx_data_subjects"}
	b.Fields.NotYetKnown = []string{"approx_data_subjects", "approx_records"}
	require.Equal(t, notice.ContentHash(a), notice.ContentHash(b), "NotYetKnown order does not change the notice")

	a, b = validDraft(), validDraft()
	a.EnglishFallback = []string{"de", "it"}
	b.EnglishFallback = []string{"it", "de"}
	require.Equal(t, notice.ContentHash(a), notice.ContentHash(b), "EnglishFallback order does not change the notice")

	// Translations built in different orders, with different map histories, hash alike.
	build := func(order []string, churn bool) notice.Draft {
		d := translatedDraft()
		all := d.Translations
		d.Translations = map[string]notice.Translation{}
		if churn {
			for i := range 64 {
				d.Translations[strings.Repeat("x", i+1)] = notice.Translation{}
			}
			for i := range 64 {
				delete(d.Translations, strings.Repeat("x", i+1))
			}
		}
		for _, loc := range order {
			d.Translations[loc] = all[loc]
		}
		return d
	}
	want := notice.ContentHash(translatedDraft())
	for _, order := range [][]string{{"de", "es", "fr", "it"}, {"it", "fr", "es", "de"}, {"fr", "de", "it", "es"}} {
		for _, churn := range []bool{false, true} {
			for range 10 {
				require.Equal(t, want, notice.ContentHash(build(order, churn)))
			}
		}
	}
}
