package notice

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Rendered is a notice rendered for one locale; per-recipient values are SendGrid
// substitution tags until Substitutions (or RenderFor) fills them in.
type Rendered struct {
	// Locale is the supported locale code the notice was rendered in.
	Locale string `json:"locale"`
	// Subject is the subject line; it may hold text substitution tags.
	Subject string `json:"subject"`
	// Text is the plain-text body; it holds text substitution tags.
	Text string `json:"text"`
	// HTML is the HTML body; it holds the _html substitution tags.
	HTML string `json:"html"`
}

// Render validates the draft and renders it in the supported locale closest to locale,
// leaving substitution tags where per-recipient values go. Equal drafts render to
// byte-identical output.
func Render(d Draft, locale string) (Rendered, error) {
	if err := Validate(d); err != nil {
		return Rendered{}, err
	}
	loc := NormalizeLocale(locale)
	p, err := parsedFor(d, loc)
	if err != nil {
		return Rendered{}, err
	}
	// The sentinels that mark placeholders are derived from the content itself, so no
	// field can contain them and the output stays deterministic.
	return execute(p, d, loc, ContentHash(d)[:16])
}

// RenderFor renders the draft for one recipient with every substitution applied, as the
// recipient will read it.
func RenderFor(d Draft, r Recipient) (Rendered, error) {
	if err := r.Validate(); err != nil {
		return Rendered{}, err
	}
	out, err := Render(d, r.Locale)
	if err != nil {
		return Rendered{}, err
	}
	subs := Substitutions(r)
	pairs := make([]string, 0, 2*len(subs))
	for _, tag := range tags {
		pairs = append(pairs, tag, subs[tag])
	}
	rep := strings.NewReplacer(pairs...)
	out.Subject = rep.Replace(out.Subject)
	out.Text = rep.Replace(out.Text)
	out.HTML = rep.Replace(out.HTML)
	return out, nil
}

// renderError tells which template part failed to execute.
type renderError struct {
	part string
	err  error
}

// Error returns the underlying execution error's message.
func (e *renderError) Error() string { return e.err.Error() }

// Unwrap exposes the underlying execution error.
func (e *renderError) Unwrap() error { return e.err }

func partOf(err error) string {
	var re *renderError
	if errors.As(err, &re) {
		return re.part
	}
	return ""
}

// placeholder is one per-recipient value: its TemplateData field and its text and HTML tags.
type placeholder struct {
	name     string
	textTag  string
	htmlTag  string
	setField func(v *TemplateData, s string)
}

var placeholderList = []placeholder{
	{"tenantname", TagTenantName, TagTenantNameHTML, func(v *TemplateData, s string) { v.TenantName = s }},
	{"ackurl", TagAckURL, TagAckURLHTML, func(v *TemplateData, s string) { v.AckURL = s }},
	{"deadline", TagDeadline, TagDeadlineHTML, func(v *TemplateData, s string) { v.Deadline = s }},
	{"tenantfacts", TagTenantFacts, TagTenantFactsHTML, func(v *TemplateData, s string) { v.TenantFacts = s }},
}

// execute runs one locale's templates over the draft. Placeholders render as alphanumeric
// sentinels that survive every html/template context unchanged; anything in the output
// that could be read as a substitution tag is then neutralised, and only then are the
// sentinels swapped for the real tags.
func execute(p *parsedTemplate, d Draft, loc, nonce string) (Rendered, error) {
	data := templateData(d, loc)
	textPairs := make([]string, 0, 2*len(placeholderList))
	htmlPairs := make([]string, 0, 2*len(placeholderList))
	for _, ph := range placeholderList {
		sentinel := "Q" + nonce + "Q" + ph.name + "Q"
		ph.setField(&data, sentinel)
		textPairs = append(textPairs, sentinel, ph.textTag)
		htmlPairs = append(htmlPairs, sentinel, ph.htmlTag)
	}
	textRep, htmlRep := strings.NewReplacer(textPairs...), strings.NewReplacer(htmlPairs...)

	var subject, text, html bytes.Buffer
	if err := p.subject.Execute(&subject, data); err != nil {
		return Rendered{}, &renderError{PartSubject, fmt.Errorf("render %s subject: %w", loc, err)}
	}
	if err := p.text.Execute(&text, data); err != nil {
		return Rendered{}, &renderError{PartText, fmt.Errorf("render %s text: %w", loc, err)}
	}
	if err := p.html.Execute(&html, data); err != nil {
		return Rendered{}, &renderError{PartHTML, fmt.Errorf("render %s html: %w", loc, err)}
	}
	return Rendered{
		Locale:  loc,
		Subject: textRep.Replace(neutralise(strings.Join(strings.Fields(subject.String()), " "))),
		Text:    textRep.Replace(neutralise(tidyText(text.String()))),
		HTML:    htmlRep.Replace(neutralise(html.String())),
	}, nil
}

// templateData prepares the draft for templates in one locale: the locale's translation
// when there is one, the English text otherwise, and the not-yet-known sentence in place
// of every element so marked.
func templateData(d Draft, loc string) TemplateData {
	f := d.Fields
	info := localeInfos[loc]
	phase := d.PhaseOrInitial()
	text := Translation{
		Title:                 f.Title,
		Nature:                f.Nature,
		DataCategories:        f.DataCategories,
		DataSubjectCategories: f.DataSubjectCategories,
		LikelyConsequences:    f.LikelyConsequences,
		MeasuresTaken:         f.MeasuresTaken,
		MeasuresProposed:      f.MeasuresProposed,
		AdditionalInformation: f.AdditionalInformation,
		WhatsNew:              f.WhatsNew,
	}
	if tr, ok := d.Translations[loc]; ok && loc != DefaultLocale {
		text = tr
	}
	data := TemplateData{
		Locale:                loc,
		PhaseNumber:           phase.Number,
		PhaseKind:             phase.Kind,
		PhaseLabel:            PhaseLabel(phase, loc),
		Reference:             strings.TrimSpace(f.Reference),
		Title:                 strings.TrimSpace(text.Title),
		AwareAt:               FormatTime(f.AwareAt, loc),
		WhatsNew:              tidyField(text.WhatsNew),
		Nature:                tidyField(text.Nature),
		DataCategories:        tidyList(text.DataCategories),
		DataSubjectCategories: tidyList(text.DataSubjectCategories),
		ApproxDataSubjects:    FormatCount(f.ApproxDataSubjects, loc),
		ApproxRecords:         FormatCount(f.ApproxRecords, loc),
		Contact: ContactPoint{
			Name:  strings.TrimSpace(f.Contact.Name),
			Role:  strings.TrimSpace(f.Contact.Role),
			Email: strings.TrimSpace(f.Contact.Email),
			Phone: strings.TrimSpace(f.Contact.Phone),
		},
		LikelyConsequences:    tidyField(text.LikelyConsequences),
		MeasuresTaken:         tidyField(text.MeasuresTaken),
		MeasuresProposed:      tidyField(text.MeasuresProposed),
		AdditionalInformation: tidyField(text.AdditionalInformation),
		NotYetKnown:           map[string]bool{},
		Sender: Sender{
			Organisation: strings.Join(strings.Fields(d.Sender.Organisation), " "),
			Signature:    tidyField(d.Sender.Signature),
			ReplyTo:      strings.TrimSpace(d.Sender.ReplyTo),
		},
	}
	for _, el := range f.NotYetKnown {
		if !isUnknowable(el) {
			continue
		}
		data.NotYetKnown[el] = true
		unknown := info.notYetKnown
		switch el {
		case ElementDataCategories:
			data.DataCategories = []string{unknown}
		case ElementDataSubjectCategories:
			data.DataSubjectCategories = []string{unknown}
		case ElementApproxDataSubjects:
			data.ApproxDataSubjects = unknown
		case ElementApproxRecords:
			data.ApproxRecords = unknown
		case ElementLikelyConsequences:
			data.LikelyConsequences = unknown
		case ElementMeasuresTaken:
			data.MeasuresTaken = unknown
		case ElementMeasuresProposed:
			data.MeasuresProposed = unknown
		}
	}
	return data
}

func tidyField(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.TrimSpace(s)
}

func tidyList(items []string) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		if it = strings.TrimSpace(it); it != "" {
			out = append(out, it)
		}
	}
	return out
}

// tidyText trims trailing blanks from every line, keeps at most one blank line in a row
// and ends the text with a single newline.
func tidyText(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	var b strings.Builder
	blank := true
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimRight(l, " \t")
		if l == "" {
			if !blank {
				b.WriteString("\n")
			}
			blank = true
			continue
		}
		b.WriteString(l)
		b.WriteString("\n")
		blank = false
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}

// neutralise breaks every tag marker with a zero-width space, so text that merely looks
// like a substitution tag reads the same but is never substituted.
func neutralise(s string) string {
	return breakMarkers(s, "\u200b_")
}

// breakMarkers replaces the underscore of every tag marker ("bf_" in any letter case)
// in s with with. It runs for every recipient of every page, so it looks for the
// underscore first and allocates only when a marker is there.
func breakMarkers(s, with string) string {
	var b strings.Builder
	last := 0
	for i := 2; i < len(s); i++ {
		if s[i] != '_' || s[i-2]|0x20 != 'b' || s[i-1]|0x20 != 'f' {
			continue
		}
		if last == 0 {
			b.Grow(len(s) + len(with))
		}
		b.WriteString(s[last:i])
		b.WriteString(with)
		last = i + 1
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}
