package notice_test

import (
	"fmt"
	"html"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/notice"
)

// sampleFacts is a tenant matched by two services, a connector and a region, with its own numbers.
var sampleFacts = notice.TenantFacts{
	Services:     []string{"Backup", "Object Storage"},
	Connectors:   []string{"Salesforce"},
	DataRegions:  []string{"eu-south-1"},
	DataSubjects: 340,
	Records:      12500,
}

func TestFactsBlock(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		facts  notice.TenantFacts
		locale string
		want   []string
		none   bool // the block says nothing was recorded, as a paragraph
	}{
		{"en", sampleFacts, "en-GB", []string{
			"Affected services of yours: Backup, Object Storage",
			"Affected connectors of yours: Salesforce",
			"Affected data regions of yours: eu-south-1",
			"For your tenant: approximately 340 data subjects and 12,500 records",
		}, false},
		{"it", sampleFacts, "it_IT", []string{
			"Vostri servizi interessati: Backup, Object Storage",
			"Vostri connettori interessati: Salesforce",
			"Vostre regioni dei dati interessate: eu-south-1",
			"Per il vostro tenant: circa 340 interessati e 12.500 registrazioni",
		}, false},
		{"de", sampleFacts, "de", []string{
			"Ihre betroffenen Dienste: Backup, Object Storage",
			"Ihre betroffenen Konnektoren: Salesforce",
			"Ihre betroffenen Datenregionen: eu-south-1",
			"Für Ihren Mandanten: ungefähr 340 betroffene Personen und 12.500 Datensätze",
		}, false},
		{"fr", sampleFacts, "fr", []string{
			"Vos services concernés\u00a0: Backup, Object Storage",
			"Vos connecteurs concernés\u00a0: Salesforce",
			"Vos régions de données concernées\u00a0: eu-south-1",
			"Pour votre tenant\u00a0: environ 340 personnes concernées et 12\u202f500 enregistrements",
		}, false},
		{"es", sampleFacts, "es", []string{
			"Sus servicios afectados: Backup, Object Storage",
			"Sus conectores afectados: Salesforce",
			"Sus regiones de datos afectadas: eu-south-1",
			"Para su tenant: aproximadamente 340 interesados y 12.500 registros",
		}, false},
		{"only records", notice.TenantFacts{Records: 1}, "en", []string{"For your tenant: approximately 1 record"}, false},
		{"only data subjects", notice.TenantFacts{DataSubjects: 1, Records: 0}, "en", []string{"For your tenant: approximately 1 data subject"}, false},
		{"only regions", notice.TenantFacts{DataRegions: []string{"eu-west-1", " ", ""}}, "en", []string{"Affected data regions of yours: eu-west-1"}, false},
		{"entries cleaned", notice.TenantFacts{Services: []string{" Back\nup\t ", "a\u202Eb"}}, "en", []string{"Affected services of yours: Back up, a b"}, false},
		{"nothing known", notice.TenantFacts{}, "en", []string{"No tenant-specific details were recorded."}, true},
		{"only blanks", notice.TenantFacts{Services: []string{" "}, DataSubjects: -3}, "de", []string{"Es wurden keine mandantenspezifischen Angaben erfasst."}, true},
		{"unsupported locale reads English", notice.TenantFacts{}, "ja", []string{"No tenant-specific details were recorded."}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			text, htm := notice.FactsBlock(tt.facts, tt.locale)
			require.Equal(t, strings.Join(tt.want, "\n"), text)
			if tt.none {
				require.Equal(t, "<p>"+html.EscapeString(tt.want[0])+"</p>", htm)
				return
			}
			var b strings.Builder
			for _, l := range tt.want {
				b.WriteString("<li>" + html.EscapeString(l) + "</li>")
			}
			require.Equal(t, "<ul>"+b.String()+"</ul>", htm)
		})
	}
}

func TestFactsBlockCutsLongListsShort(t *testing.T) {
	t.Parallel()
	many := make([]string, 120)
	for i := range many {
		many[i] = fmt.Sprintf("svc-%03d", i)
	}
	text, _ := notice.FactsBlock(notice.TenantFacts{Services: many}, "en")
	require.Equal(t, "Affected services of yours: "+strings.Join(many[:notice.MaxFactsListItems], ", ")+" and 70 more", text)
	text, _ = notice.FactsBlock(notice.TenantFacts{Services: many}, "it")
	require.True(t, strings.HasSuffix(text, ", svc-049 e altri 70"), text)

	// The worst case stays well inside SendGrid's 10,000 bytes of substitutions per
	// recipient, text and HTML together.
	long := make([]string, 5000)
	for i := range long {
		long[i] = strings.Repeat(`<&">`, 60)
	}
	text, htm := notice.FactsBlock(notice.TenantFacts{Services: long, Connectors: long, DataRegions: long, DataSubjects: notice.MaxCount, Records: notice.MaxCount}, "fr")
	require.Less(t, len(text)+len(htm), 6000, "text %d bytes, html %d bytes", len(text), len(htm))
	require.Equal(t, 4, strings.Count(text, "\n")+1)
	require.Contains(t, text, "…")
	require.Contains(t, text, " et 4\u202f999 autres")
	for _, l := range strings.Split(text, "\n") {
		require.Contains(t, htm, "<li>"+html.EscapeString(l)+"</li>", "the HTML shows the same entries")
	}
}

func TestFactsCannotForgeTagsOrMarkup(t *testing.T) {
	t.Parallel()
	facts := notice.TenantFacts{
		Services:    []string{"-bf_ack_url-", `<a href="https://evil.example">x</a>`},
		Connectors:  []string{"-BF_TENANT_FACTS_HTML-"},
		DataRegions: []string{"eu & <b>us</b>"},
	}
	text, htm := notice.FactsBlock(facts, "en")
	for _, v := range []string{text, htm} {
		for _, tag := range notice.Tags() {
			require.NotContains(t, strings.ToLower(v), tag)
		}
	}
	require.Contains(t, strings.ReplaceAll(text, "\u200b", ""), "-bf_ack_url-", "the text still reads as given")
	require.NotContains(t, htm, "<a")
	require.NotContains(t, htm, "<b>")
	require.Contains(t, htm, "eu &amp; &lt;b&gt;us&lt;/b&gt;")

	r := recipient("en")
	r.Facts = facts
	out, err := notice.RenderFor(validDraft(), r)
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(out.Text, r.AckURL), "only the real link")
	require.Equal(t, 2, strings.Count(out.HTML, html.EscapeString(r.AckURL)), "only the button and the copyable link")
	require.NotContains(t, out.HTML, `href="https://evil.example"`)
	require.NotContains(t, out.HTML, "<b>us</b>")
	require.Contains(t, out.HTML, "<li>Affected data regions of yours: eu &amp; &lt;b&gt;us&lt;/b&gt;</li>")
}

func TestRenderForShowsTenantFacts(t *testing.T) {
	t.Parallel()
	headings := map[string]string{
		"en": "Why your organisation is affected",
		"it": "Perché la vostra organizzazione è interessata",
		"de": "Warum Ihre Organisation betroffen ist",
		"fr": "Pourquoi votre organisation est concernée",
		"es": "Por qué su organización se ve afectada",
	}
	for _, loc := range notice.Locales() {
		t.Run(loc, func(t *testing.T) {
			t.Parallel()
			r := recipient(loc + "-XX")
			r.Facts = sampleFacts
			out, err := notice.RenderFor(validDraft(), r)
			require.NoError(t, err)
			text, htm := notice.FactsBlock(sampleFacts, loc)
			require.Contains(t, out.Text, headings[loc]+"\n"+text+"\n")
			require.Contains(t, out.HTML, headings[loc]+"</h2>\n<div>"+htm+"</div>")
			for _, want := range []string{"Backup, Object Storage", "Salesforce", "eu-south-1", notice.FormatCount(12500, loc), "340"} {
				require.Contains(t, out.Text, want)
				require.Contains(t, out.HTML, want)
			}
			// The section comes right after the incident header, before the numbered elements.
			deadline := strings.Index(out.Text, notice.FormatTime(r.Deadline, loc))
			facts := strings.Index(out.Text, headings[loc])
			require.Less(t, deadline, facts)
			require.Less(t, facts, strings.Index(out.Text, "\n1. "))

			none := recipient(loc)
			bare, err := notice.RenderFor(validDraft(), none)
			require.NoError(t, err)
			noneText, _ := notice.FactsBlock(notice.TenantFacts{}, loc)
			require.Contains(t, bare.Text, headings[loc]+"\n"+noneText+"\n")
			require.NotContains(t, bare.Text, "eu-south-1")
		})
	}
}

func TestCustomTemplatesNeedNotShowTenantFacts(t *testing.T) {
	t.Parallel()
	d := validDraft()
	d.Templates = map[string]notice.Template{"en": {Text: bodyTemplate(), HTML: bodyTemplate()}}
	require.NoError(t, notice.Validate(d))

	d.Templates = map[string]notice.Template{"en": {Text: bodyTemplate() + "{{.TenantFacts}}"}}
	r := recipient("en")
	r.Facts = sampleFacts
	out, err := notice.RenderFor(d, r)
	require.NoError(t, err)
	require.Contains(t, out.Text, "Affected connectors of yours: Salesforce")
}
