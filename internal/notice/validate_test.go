package notice_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/notice"
)

// validationError asserts err is a *notice.ValidationError and returns it.
func validationError(t *testing.T, err error) *notice.ValidationError {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, notice.ErrInvalidDraft)
	var ve *notice.ValidationError
	require.True(t, errors.As(err, &ve), "want *notice.ValidationError, got %T", err)
	return ve
}

func TestValidateAcceptsCompleteDraft(t *testing.T) {
	t.Parallel()
	require.NoError(t, notice.Validate(validDraft()))

	phoneOnly := validDraft()
	phoneOnly.Fields.Contact.Email = ""
	require.NoError(t, notice.Validate(phoneOnly))

	emailOnly := validDraft()
	emailOnly.Fields.Contact.Phone = ""
	emailOnly.Fields.Contact.Role = ""
	require.NoError(t, notice.Validate(emailOnly))
}

func TestValidateReportsEachMissingElement(t *testing.T) {
	t.Parallel()
	tests := []struct {
		element string
		blank   func(f *notice.Fields)
	}{
		{"reference", func(f *notice.Fields) { f.Reference = "" }},
		{"title", func(f *notice.Fields) { f.Title = "   " }},
		{"aware_at", func(f *notice.Fields) { f.AwareAt = time.Time{} }},
		{"nature", func(f *notice.Fields) { f.Nature = "\n\t " }},
		{"data_categories", func(f *notice.Fields) { f.DataCategories = nil }},
		{"data_categories", func(f *notice.Fields) { f.DataCategories = []string{"", " "} }},
		{"data_subject_categories", func(f *notice.Fields) { f.DataSubjectCategories = []string{} }},
		{"approx_data_subjects", func(f *notice.Fields) { f.ApproxDataSubjects = 0 }},
		{"approx_records", func(f *notice.Fields) { f.ApproxRecords = 0 }},
		{"contact_point", func(f *notice.Fields) { f.Contact = notice.ContactPoint{} }},
		{"contact_point", func(f *notice.Fields) { f.Contact.Name = "" }},
		{"contact_point", func(f *notice.Fields) { f.Contact.Email, f.Contact.Phone = "", "" }},
		{"likely_consequences", func(f *notice.Fields) { f.LikelyConsequences = "" }},
		{"measures_taken", func(f *notice.Fields) { f.MeasuresTaken = "" }},
		{"measures_proposed", func(f *notice.Fields) { f.MeasuresProposed = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.element, func(t *testing.T) {
			t.Parallel()
			d := validDraft()
			tt.blank(&d.Fields)
			ve := validationError(t, notice.Validate(d))
			require.Equal(t, []string{tt.element}, ve.Missing)
			require.Empty(t, ve.Invalid)
			require.Empty(t, ve.Templates)
			require.Contains(t, ve.Error(), "("+tt.element+")")
		})
	}
}

func TestValidateListsEveryMissingElementAtOnce(t *testing.T) {
	t.Parallel()
	ve := validationError(t, notice.Validate(notice.Draft{}))
	require.Equal(t, append(notice.RequiredElements(), notice.ElementSender), ve.Missing)
	require.Equal(t, []string{
		"reference", "title", "aware_at", "nature", "data_categories", "data_subject_categories",
		"approx_data_subjects", "approx_records", "contact_point", "likely_consequences",
		"measures_taken", "measures_proposed", "sender",
	}, ve.Missing)

	msg := ve.Error()
	require.True(t, strings.HasPrefix(msg, "invalid notice draft: missing "), msg)
	for _, el := range ve.Missing {
		require.Contains(t, msg, "("+el+")")
	}
	require.Contains(t, msg, "likely consequences of the breach (likely_consequences)")

	d := validDraft()
	d.Fields.Nature = ""
	d.Fields.ApproxRecords = 0
	d.Fields.MeasuresTaken = ""
	ve = validationError(t, notice.Validate(d))
	require.Equal(t, []string{"nature", "approx_records", "measures_taken"}, ve.Missing)
	require.Equal(t, ve.Missing, ve.MissingElements())
}

func TestValidateRejectsUnacceptableValues(t *testing.T) {
	t.Parallel()
	manyCategories := make([]string, notice.MaxListItems+1)
	for i := range manyCategories {
		manyCategories[i] = "category"
	}
	tests := []struct {
		name    string
		element string
		change  func(f *notice.Fields)
		message string
	}{
		{"title too long", "title", func(f *notice.Fields) { f.Title = strings.Repeat("é", notice.MaxTitleLen+1) }, "at most 200"},
		{"title on two lines", "title", func(f *notice.Fields) { f.Title = "first\nsecond" }, "single line"},
		{"reference too long", "reference", func(f *notice.Fields) { f.Reference = strings.Repeat("x", notice.MaxReferenceLen+1) }, "at most 100"},
		{"nature too long", "nature", func(f *notice.Fields) { f.Nature = strings.Repeat("x", notice.MaxTextLen+1) }, "at most 10000"},
		{"nature with control character", "nature", func(f *notice.Fields) { f.Nature = "bell\a" }, "control character"},
		{"nature with direction override", "nature", func(f *notice.Fields) { f.Nature = "abc\u202Edef" }, "control character"},
		{"consequences not UTF-8", "likely_consequences", func(f *notice.Fields) { f.LikelyConsequences = "bad \xff" }, "UTF-8"},
		{"too many categories", "data_categories", func(f *notice.Fields) { f.DataCategories = manyCategories }, "at most 50"},
		{"blank category among others", "data_subject_categories", func(f *notice.Fields) { f.DataSubjectCategories = []string{"staff", " "} }, "entry 2 is empty"},
		{"category too long", "data_categories", func(f *notice.Fields) { f.DataCategories = []string{strings.Repeat("x", notice.MaxListItemLen+1)} }, "entry 1"},
		{"negative data subjects", "approx_data_subjects", func(f *notice.Fields) { f.ApproxDataSubjects = -5 }, "positive"},
		{"absurd record count", "approx_records", func(f *notice.Fields) { f.ApproxRecords = notice.MaxCount + 1 }, "at most"},
		{"malformed email", "contact_point", func(f *notice.Fields) { f.Contact.Email = "not-an-email" }, "email"},
		{"email with display name", "contact_point", func(f *notice.Fields) { f.Contact.Email = "Jane <dpo@provider.example>" }, "email"},
		{"phone with letters", "contact_point", func(f *notice.Fields) { f.Contact.Phone = "call me maybe" }, "phone"},
		{"contact name too long", "contact_point", func(f *notice.Fields) { f.Contact.Name = strings.Repeat("x", notice.MaxContactLen+1) }, "name"},
		{"additional information too long", "additional_information", func(f *notice.Fields) { f.AdditionalInformation = strings.Repeat("x", notice.MaxTextLen+1) }, "at most"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := validDraft()
			tt.change(&d.Fields)
			ve := validationError(t, notice.Validate(d))
			require.Empty(t, ve.Missing)
			require.Len(t, ve.Invalid, 1, ve.Error())
			require.Equal(t, tt.element, ve.Invalid[0].Element)
			require.Contains(t, ve.Invalid[0].Message, tt.message)
			require.Contains(t, ve.Error(), "("+tt.element+")")
		})
	}
}

// bodyTemplate returns a text or HTML body template that shows every required element
// except those named in omit.
func bodyTemplate(omit ...string) string {
	fields := []struct{ element, action string }{
		{"reference", "{{.Reference}}"},
		{"title", "{{.Title}}"},
		{"aware_at", "{{.AwareAt}}"},
		{"nature", "{{.Nature}}"},
		{"data_categories", "{{range .DataCategories}}{{.}}; {{end}}"},
		{"data_subject_categories", "{{range $i, $c := .DataSubjectCategories}}{{$c}}; {{end}}"},
		{"approx_data_subjects", "{{.ApproxDataSubjects}}"},
		{"approx_records", "{{$.ApproxRecords}}"},
		{"contact_point", "{{with .Contact}}{{.Name}} {{.Email}}{{end}}"},
		{"likely_consequences", "{{.LikelyConsequences}}"},
		{"measures_taken", "{{if .MeasuresTaken}}{{.MeasuresTaken}}{{end}}"},
		{"measures_proposed", "{{.MeasuresProposed | printf \"%s\"}}"},
		{"ack_url", `<a href="{{.AckURL}}">ack</a>`},
	}
	var b strings.Builder
	b.WriteString("<p>{{.TenantName}} {{.Deadline}}</p>\n")
	for _, f := range fields {
		skip := false
		for _, o := range omit {
			skip = skip || o == f.element
		}
		if !skip {
			b.WriteString("<p>" + f.action + "</p>\n")
		}
	}
	return b.String()
}

func TestValidateAcceptsCompleteCustomTemplates(t *testing.T) {
	t.Parallel()
	d := validDraft()
	d.Templates = map[string]notice.Template{
		"it": {Subject: "Violazione {{.Reference}}", Text: bodyTemplate(), HTML: bodyTemplate()},
		"de": {HTML: bodyTemplate()},
	}
	require.NoError(t, notice.Validate(d))

	for _, loc := range notice.Locales() {
		for _, d := range []notice.Draft{validDraft(), updateDraft(2, notice.PhaseUpdate), updateDraft(4, notice.PhaseFinal)} {
			d.Templates = map[string]notice.Template{loc: notice.DefaultTemplate(loc)}
			require.NoError(t, notice.Validate(d), "the default %s templates must pass the rules custom ones do", loc)
		}
	}
}

func TestValidateReportsElementsMissingFromCustomTemplates(t *testing.T) {
	t.Parallel()
	omittable := append(notice.RequiredElements(), notice.ElementAckURL)
	for _, el := range omittable {
		for _, part := range []string{notice.PartText, notice.PartHTML} {
			t.Run(el+"/"+part, func(t *testing.T) {
				t.Parallel()
				d := validDraft()
				tmpl := notice.Template{}
				if part == notice.PartText {
					tmpl.Text = bodyTemplate(el)
				} else {
					tmpl.HTML = bodyTemplate(el)
				}
				d.Templates = map[string]notice.Template{"it": tmpl}
				ve := validationError(t, notice.Validate(d))
				require.Empty(t, ve.Missing)
				require.Empty(t, ve.Invalid)
				require.Equal(t, []notice.TemplateGap{{Locale: "it", Part: part, Missing: []string{el}}}, ve.Templates)
				require.Contains(t, ve.Error(), "Italian (it)")
				require.Contains(t, ve.Error(), "("+el+")")
			})
		}
	}
}

func TestValidateReportsEverythingTogether(t *testing.T) {
	t.Parallel()
	d := validDraft()
	d.Fields.LikelyConsequences = ""
	d.Fields.Title = strings.Repeat("x", 300)
	d.Templates = map[string]notice.Template{
		"fr": {Text: bodyTemplate("likely_consequences", "ack_url")},
		"es": {HTML: bodyTemplate("nature")},
		"de": {Subject: "{{.Title"},
	}
	ve := validationError(t, notice.Validate(d))
	require.Equal(t, []string{"likely_consequences"}, ve.Missing)
	require.Equal(t, []notice.TemplateGap{
		{Locale: "es", Part: "html", Missing: []string{"nature"}},
		{Locale: "fr", Part: "text", Missing: []string{"likely_consequences", "ack_url"}},
	}, ve.Templates)
	require.Len(t, ve.Invalid, 2)
	require.Equal(t, "title", ve.Invalid[0].Element)
	require.Equal(t, notice.Problem{Element: "templates", Locale: "de", Part: "subject", Message: ve.Invalid[1].Message}, ve.Invalid[1])
	require.ElementsMatch(t, []string{"likely_consequences", "nature", "ack_url"}, ve.MissingElements())

	msg := ve.Error()
	for _, want := range []string{
		"missing likely consequences of the breach (likely_consequences)",
		"the Spanish (es) HTML template leaves out nature of the breach (nature)",
		"the French (fr) plain-text template leaves out likely consequences of the breach (likely_consequences), acknowledgement link (ack_url)",
		"the German (de) subject template: ",
		"incident title (title): is 300 characters long",
	} {
		require.Contains(t, msg, want)
	}
}

func TestValidateRejectsBrokenCustomTemplates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		locale  string
		tmpl    notice.Template
		part    string
		message string
	}{
		{"unparsable text", "it", notice.Template{Text: "{{.Nature"}, "text", "unclosed action"},
		{"unparsable html", "en", notice.Template{HTML: "{{if .Nature}}"}, "html", "unexpected EOF"},
		{"unknown field", "en", notice.Template{Text: bodyTemplate() + "{{.Secret}}"}, "text", "Secret"},
		{"unknown function", "en", notice.Template{Subject: "{{shout .Title}}"}, "subject", "shout"},
		{"script in html", "en", notice.Template{HTML: bodyTemplate() + "<script>alert(1)</script>"}, "html", "scripts"},
		{"NUL in text", "de", notice.Template{Text: bodyTemplate() + "\x00"}, "text", "NUL"},
		{"subject renders empty", "en", notice.Template{Subject: "{{if false}}x{{end}}   "}, "subject", "empty subject"},
		{"subject too long", "en", notice.Template{Subject: strings.Repeat("{{.Title}} ", 10)}, "subject", "at most 400"},
		{"subject source too long", "en", notice.Template{Subject: strings.Repeat("x", notice.MaxSubjectTemplateLen+1)}, "subject", "bytes long"},
		{"text source too long", "en", notice.Template{Text: strings.Repeat("x", notice.MaxTextTemplateLen+1)}, "text", "bytes long"},
		{"html source too long", "en", notice.Template{HTML: strings.Repeat("x", notice.MaxHTMLTemplateLen+1)}, "html", "bytes long"},
		{"unsupported locale", "pt", notice.Template{Text: bodyTemplate()}, "", "unsupported locale"},
		{"locale must be a plain code", "it-IT", notice.Template{Text: bodyTemplate()}, "", "unsupported locale"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := validDraft()
			d.Templates = map[string]notice.Template{tt.locale: tt.tmpl}
			ve := validationError(t, notice.Validate(d))
			require.Len(t, ve.Invalid, 1, ve.Error())
			p := ve.Invalid[0]
			require.Equal(t, "templates", p.Element)
			require.Equal(t, tt.locale, p.Locale)
			require.Equal(t, tt.part, p.Part)
			require.Contains(t, p.Message, tt.message)
		})
	}
}
