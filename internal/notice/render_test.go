package notice_test

import (
	"html"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/notice"
)

// languages holds, per locale, a phrase only that language's notice uses and the way it
// writes the sample draft's counts and awareness time.
var languages = map[string]struct {
	phrase, subjects, records, awareAt string
}{
	"en": {"personal data breach", "1,200", "2,500,000", "2 March 2026, 14:05 UTC"},
	"it": {"violazione dei dati personali", "1.200", "2.500.000", "2 marzo 2026, ore 14:05 UTC"},
	"de": {"Verletzung des Schutzes personenbezogener Daten", "1.200", "2.500.000", "2. März 2026, 14:05 Uhr UTC"},
	"fr": {"violation de données à caractère personnel", "1\u202f200", "2\u202f500\u202f000", "2 mars 2026 à 14:05 UTC"},
	"es": {"violación de la seguridad de los datos personales", "1.200", "2.500.000", "2 de marzo de 2026, 14:05 UTC"},
}

func TestRenderEachLocale(t *testing.T) {
	t.Parallel()
	require.Len(t, languages, len(notice.Locales()))
	for _, loc := range notice.Locales() {
		t.Run(loc, func(t *testing.T) {
			t.Parallel()
			lang := languages[loc]
			d := validDraft()
			d.Fields.AdditionalInformation = "A forensic report will follow."
			r, err := notice.Render(d, loc)
			require.NoError(t, err)
			require.Equal(t, loc, r.Locale)
			require.NotEmpty(t, r.Subject)
			require.NotEmpty(t, r.Text)
			require.NotEmpty(t, r.HTML)
			require.NotContains(t, r.Subject, "\n")

			require.Contains(t, strings.ToLower(r.Subject), strings.ToLower(lang.phrase))
			require.Contains(t, r.Subject, d.Fields.Title)
			require.Contains(t, r.Subject, d.Fields.Reference)
			require.Contains(t, strings.ToLower(r.Text), strings.ToLower(lang.phrase))
			require.Contains(t, strings.ToLower(r.HTML), strings.ToLower(lang.phrase))
			require.Contains(t, r.HTML, `<html lang="`+loc+`">`)
			for other, ol := range languages {
				if other != loc {
					require.NotContains(t, strings.ToLower(r.Text), strings.ToLower(ol.phrase), "%s notice reads like %s", loc, other)
				}
			}

			f := d.Fields
			wantText := []string{
				f.Reference, f.Title, lang.awareAt, f.Nature, f.LikelyConsequences, f.MeasuresTaken,
				f.MeasuresProposed, f.AdditionalInformation, lang.subjects, lang.records,
				f.Contact.Name, f.Contact.Role, f.Contact.Email, f.Contact.Phone,
			}
			wantText = append(wantText, f.DataCategories...)
			wantText = append(wantText, f.DataSubjectCategories...)
			for _, want := range wantText {
				require.Contains(t, r.Text, want)
			}
			for _, line := range strings.Split(f.Nature, "\n") {
				require.Contains(t, r.HTML, "<p>"+html.EscapeString(line)+"</p>")
			}
			for _, want := range []string{f.Title, f.LikelyConsequences, f.MeasuresTaken, f.MeasuresProposed, lang.records, f.Contact.Email, "&#43;39 02 1234 5678"} {
				require.Contains(t, r.HTML, want)
			}
			require.Contains(t, r.HTML, "<li>"+html.EscapeString(f.DataSubjectCategories[1])+"</li>")

			for _, tag := range []string{notice.TagTenantName, notice.TagAckURL, notice.TagDeadline, notice.TagTenantFacts} {
				require.Contains(t, r.Text, tag)
				require.NotContains(t, r.HTML, tag)
			}
			for _, tag := range []string{notice.TagTenantNameHTML, notice.TagAckURLHTML, notice.TagDeadlineHTML, notice.TagTenantFactsHTML} {
				require.Contains(t, r.HTML, tag)
				require.NotContains(t, r.Text, tag)
			}
			require.Contains(t, r.HTML, `href="`+notice.TagAckURLHTML+`"`)
		})
	}
}

func TestRenderPicksLocale(t *testing.T) {
	t.Parallel()
	tests := []struct {
		locale, want string
	}{
		{"it-IT", "it"},
		{"it_IT", "it"},
		{"DE-ch", "de"},
		{"fr_BE.UTF-8", "fr"},
		{"es-AR", "es"},
		{"pt-BR", "en"},
		{"", "en"},
	}
	for _, tt := range tests {
		t.Run(tt.locale, func(t *testing.T) {
			t.Parallel()
			r, err := notice.Render(validDraft(), tt.locale)
			require.NoError(t, err)
			require.Equal(t, tt.want, r.Locale)
			require.Contains(t, strings.ToLower(r.Text), strings.ToLower(languages[tt.want].phrase))
		})
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	t.Parallel()
	d := validDraft()
	d.Templates = map[string]notice.Template{"it": {Subject: "Violazione {{.Reference}} {{.TenantName}}"}}
	first, err := notice.Render(d, "it")
	require.NoError(t, err)
	for range 20 {
		again, err := notice.Render(d, "it")
		require.NoError(t, err)
		require.Equal(t, first, again)
	}
	same := validDraft()
	same.Templates = map[string]notice.Template{"it": {Subject: "Violazione {{.Reference}} {{.TenantName}}"}}
	again, err := notice.Render(same, "it")
	require.NoError(t, err)
	require.Equal(t, first, again)
	require.Equal(t, "Violazione INC-2026-0042 "+notice.TagTenantName, first.Subject)
}

func TestRenderUsesCustomTemplates(t *testing.T) {
	t.Parallel()
	d := validDraft()
	d.Templates = map[string]notice.Template{"de": {
		Subject: "Datenpanne {{.Reference}}",
		Text:    "Hallo {{.TenantName}}\n" + bodyTemplate(),
	}}
	r, err := notice.Render(d, "de_DE")
	require.NoError(t, err)
	require.Equal(t, "Datenpanne INC-2026-0042", r.Subject)
	require.True(t, strings.HasPrefix(r.Text, "Hallo "+notice.TagTenantName+"\n"), r.Text)
	require.Contains(t, r.HTML, "Verletzung des Schutzes personenbezogener Daten", "the HTML part keeps the default")

	other, err := notice.Render(d, "en")
	require.NoError(t, err)
	require.Contains(t, other.Subject, "Personal data breach notification")
}

func TestRenderRejectsInvalidDraft(t *testing.T) {
	t.Parallel()
	d := validDraft()
	d.Fields.LikelyConsequences = ""
	_, err := notice.Render(d, "en")
	ve := validationError(t, err)
	require.Equal(t, []string{"likely_consequences"}, ve.Missing)

	_, err = notice.RenderFor(d, recipient("en"))
	require.ErrorIs(t, err, notice.ErrInvalidDraft)
}

func TestRenderEscapesHTMLInFields(t *testing.T) {
	t.Parallel()
	const attack = `<script>alert("x")</script><img src=x onerror=alert(1)>`
	d := updateDraft(2, notice.PhaseUpdate)
	d.Fields.WhatsNew = attack
	d.Sender = notice.Sender{Organisation: "Org " + attack, Signature: "Sig\n" + attack}
	f := &d.Fields
	f.Reference += attack
	f.Title = "Title " + attack
	f.Nature = "Nature " + attack
	f.DataCategories = append(f.DataCategories, attack)
	f.DataSubjectCategories = append(f.DataSubjectCategories, attack)
	f.Contact.Name = "Jane " + attack
	f.Contact.Role = attack
	f.LikelyConsequences = attack
	f.MeasuresTaken = attack
	f.MeasuresProposed = attack
	f.AdditionalInformation = attack
	for _, loc := range notice.Locales() {
		r, err := notice.Render(d, loc)
		require.NoError(t, err)
		require.NotContains(t, r.HTML, "<script")
		require.NotContains(t, r.HTML, "<img")
		require.Contains(t, r.HTML, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;")
		require.GreaterOrEqual(t, strings.Count(r.HTML, "&lt;script&gt;"), 15)
		require.Contains(t, r.Text, attack, "plain text shows the field as written")
	}
}

func TestRenderForEscapesRecipientValuesInHTML(t *testing.T) {
	t.Parallel()
	rcpt := recipient("en")
	rcpt.TenantName = `Evil <script>alert(1)</script> "Corp"`
	r, err := notice.RenderFor(validDraft(), rcpt)
	require.NoError(t, err)
	require.NotContains(t, r.HTML, "<script")
	require.Contains(t, r.HTML, "<strong>Evil &lt;script&gt;alert(1)&lt;/script&gt; &#34;Corp&#34;</strong>")
	require.Contains(t, r.HTML, `href="https://breachflow.example/ack/tok123?r=1&amp;src=mail"`)
	require.Contains(t, r.Text, rcpt.TenantName)
	require.Contains(t, r.Text, "\nhttps://breachflow.example/ack/tok123?r=1&src=mail\n")
}

func TestRenderFor(t *testing.T) {
	t.Parallel()
	for _, loc := range notice.Locales() {
		t.Run(loc, func(t *testing.T) {
			t.Parallel()
			rcpt := recipient(loc + "-XX")
			r, err := notice.RenderFor(validDraft(), rcpt)
			require.NoError(t, err)
			require.Equal(t, loc, r.Locale)
			deadline := notice.FormatTime(rcpt.Deadline, loc)
			require.Contains(t, r.Text, rcpt.TenantName)
			require.Contains(t, r.Text, rcpt.AckURL)
			require.Contains(t, r.Text, deadline)
			require.Contains(t, r.HTML, html.EscapeString(rcpt.TenantName))
			require.Contains(t, r.HTML, html.EscapeString(rcpt.AckURL))
			require.Contains(t, r.HTML, html.EscapeString(deadline))
			for _, tag := range notice.Tags() {
				require.NotContains(t, r.Subject+r.Text+r.HTML, tag)
			}
		})
	}

	bad := recipient("en")
	bad.AckURL = "javascript:alert(1)"
	_, err := notice.RenderFor(validDraft(), bad)
	require.ErrorIs(t, err, notice.ErrInvalidRecipient)
}

func TestFieldsCannotForgeSubstitutionTags(t *testing.T) {
	t.Parallel()
	forged := []string{
		notice.TagAckURL, notice.TagAckURLHTML, notice.TagTenantName, notice.TagTenantNameHTML,
		notice.TagDeadline, notice.TagDeadlineHTML, notice.TagTenantFacts, notice.TagTenantFactsHTML,
		"-BF_ACK_URL-", "-Bf_ack_url_html-",
	}
	// The baseline is an Italian-translated update, so every kind of value renders.
	base := func() notice.Draft {
		d := updateDraft(2, notice.PhaseUpdate)
		d.Translations = map[string]notice.Translation{"it": translationFor(d.Fields, "it")}
		return d
	}
	link := recipient("it").AckURL

	fields := []struct {
		name string
		set  func(d *notice.Draft, s string)
		locs []string // where the value shows: English text only in en, translations only in it
	}{
		{"reference", func(d *notice.Draft, s string) { d.Fields.Reference = "INC" + s[:60] }, []string{"en", "it"}},
		{"title", func(d *notice.Draft, s string) { d.Fields.Title = "Title " + s }, []string{"en"}},
		{"nature", func(d *notice.Draft, s string) { d.Fields.Nature = s + " nature " + s }, []string{"en"}},
		{"data_categories", func(d *notice.Draft, s string) { d.Fields.DataCategories = []string{s, "b"} }, []string{"en"}},
		{"data_subject_categories", func(d *notice.Draft, s string) { d.Fields.DataSubjectCategories = []string{"a" + s, "b"} }, []string{"en"}},
		{"contact_name", func(d *notice.Draft, s string) { d.Fields.Contact.Name = s }, []string{"en", "it"}},
		{"contact_role", func(d *notice.Draft, s string) { d.Fields.Contact.Role = s }, []string{"en", "it"}},
		{"likely_consequences", func(d *notice.Draft, s string) { d.Fields.LikelyConsequences = s }, []string{"en"}},
		{"measures_taken", func(d *notice.Draft, s string) { d.Fields.MeasuresTaken = s }, []string{"en"}},
		{"measures_proposed", func(d *notice.Draft, s string) { d.Fields.MeasuresProposed = s }, []string{"en"}},
		{"whats_new", func(d *notice.Draft, s string) { d.Fields.WhatsNew = s }, []string{"en"}},
		{"sender_organisation", func(d *notice.Draft, s string) { d.Sender.Organisation = s }, []string{"en", "it"}},
		{"sender_signature", func(d *notice.Draft, s string) { d.Sender.Signature = s + "\n" + s }, []string{"en", "it"}},
		{"translated_title", func(d *notice.Draft, s string) { setIT(d, func(tr *notice.Translation) { tr.Title = s }) }, []string{"it"}},
		{"translated_nature", func(d *notice.Draft, s string) { setIT(d, func(tr *notice.Translation) { tr.Nature = s }) }, []string{"it"}},
		{"translated_category", func(d *notice.Draft, s string) {
			setIT(d, func(tr *notice.Translation) { tr.DataCategories[0] = s })
		}, []string{"it"}},
		{"translated_whats_new", func(d *notice.Draft, s string) { setIT(d, func(tr *notice.Translation) { tr.WhatsNew = s }) }, []string{"it"}},
	}
	for _, loc := range []string{"en", "it"} {
		baseline, err := notice.Render(base(), loc)
		require.NoError(t, err)
		baseFor, err := notice.RenderFor(base(), recipient(loc))
		require.NoError(t, err)
		for _, fld := range fields {
			if !slices.Contains(fld.locs, loc) {
				continue
			}
			t.Run(loc+"/"+fld.name, func(t *testing.T) {
				t.Parallel()
				d := base()
				fld.set(&d, strings.Join(forged, " "))
				checkNoForgedTags(t, d, loc, baseline, baseFor, link)
			})
		}
	}
	d := base()
	d.Fields.AdditionalInformation = strings.Join(forged, " ")
	setIT(&d, func(tr *notice.Translation) { tr.AdditionalInformation = strings.Join(forged, " ") })
	for _, loc := range []string{"en", "it"} {
		baseline, err := notice.Render(base(), loc)
		require.NoError(t, err)
		baseFor, err := notice.RenderFor(base(), recipient(loc))
		require.NoError(t, err)
		checkNoForgedTags(t, d, loc, baseline, baseFor, link)
	}
}

// checkNoForgedTags renders d in loc and asserts it holds exactly the tags and links the
// baseline does, while the forged text still reads as written.
func checkNoForgedTags(t *testing.T, d notice.Draft, loc string, baseline, baseFor notice.Rendered, link string) {
	t.Helper()
	r, err := notice.Render(d, loc)
	require.NoError(t, err)
	for _, tag := range notice.Tags() {
		for _, part := range []struct{ got, base string }{
			{r.Subject, baseline.Subject}, {r.Text, baseline.Text}, {r.HTML, baseline.HTML},
		} {
			require.Equal(t, strings.Count(strings.ToLower(part.base), tag), strings.Count(strings.ToLower(part.got), tag), "tag %s", tag)
		}
	}

	final, err := notice.RenderFor(d, recipient(loc))
	require.NoError(t, err)
	require.Equal(t, strings.Count(baseFor.Text, link), strings.Count(final.Text, link))
	require.Equal(t, strings.Count(baseFor.HTML, html.EscapeString(link)), strings.Count(final.HTML, html.EscapeString(link)))
	// The text still reads the same to a person.
	require.Contains(t, strings.ReplaceAll(final.Subject+final.Text, "\u200b", ""), "-bf_ack_url-")
}

func TestFieldsAdjacentToPlaceholdersCannotForgeTags(t *testing.T) {
	t.Parallel()
	d := validDraft()
	d.Fields.Title = "x-bf_tenant_name"
	d.Fields.Reference = "ack_url"
	d.Templates = map[string]notice.Template{"en": {
		Subject: "{{.Title}}{{.TenantName}}{{.Reference}}{{.Deadline}}",
		Text:    bodyTemplate() + "{{.Title}}{{.AckURL}}{{.Reference}}-{{.Title}}-",
	}}
	r, err := notice.Render(d, "en")
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(r.Subject, notice.TagTenantName))
	require.Equal(t, 1, strings.Count(r.Subject, notice.TagDeadline))
	require.Equal(t, 2, strings.Count(r.Text, notice.TagAckURL), "only the two real placeholders")
	require.Equal(t, 1, strings.Count(r.Text, notice.TagTenantName), "only the real placeholder")
}
