package notice

import (
	"errors"
	"fmt"
	"net/mail"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Length limits a draft must respect; lengths count characters (runes) unless noted.
const (
	// MaxReferenceLen bounds Fields.Reference.
	MaxReferenceLen = 100
	// MaxTitleLen bounds Fields.Title.
	MaxTitleLen = 200
	// MaxTextLen bounds each free-text field (nature, consequences, measures, additional information).
	MaxTextLen = 10000
	// MaxListItems bounds the number of data or data-subject categories.
	MaxListItems = 50
	// MaxListItemLen bounds one category.
	MaxListItemLen = 200
	// MaxContactLen bounds the contact point's name and role.
	MaxContactLen = 200
	// MaxEmailLen bounds the contact point's email address.
	MaxEmailLen = 254
	// MaxPhoneLen bounds the contact point's phone number.
	MaxPhoneLen = 40
	// MaxCount bounds the approximate numbers of data subjects and records.
	MaxCount = 10_000_000_000_000
	// MaxSubjectTemplateLen bounds a subject template source, in bytes.
	MaxSubjectTemplateLen = 1 << 10
	// MaxTextTemplateLen bounds a text body template source, in bytes.
	MaxTextTemplateLen = 64 << 10
	// MaxHTMLTemplateLen bounds an HTML body template source, in bytes.
	MaxHTMLTemplateLen = 256 << 10
	// MaxSubjectLen bounds a rendered subject line.
	MaxSubjectLen = 400
	// MaxOrganisationLen bounds Sender.Organisation.
	MaxOrganisationLen = 200
	// MaxSignatureLen bounds Sender.Signature.
	MaxSignatureLen = 500
)

// ErrInvalidDraft is matched (errors.Is) by every *ValidationError.
var ErrInvalidDraft = errors.New("invalid notice draft")

// ValidationError lists everything wrong with a draft at once.
type ValidationError struct {
	// Missing names the required elements absent from the draft, in RequiredElements
	// order, then ElementWhatsNew (update and final notices) and ElementSender.
	Missing []string
	// Templates lists custom templates that leave out required elements or placeholders.
	Templates []TemplateGap
	// Invalid lists values that are present but unacceptable.
	Invalid []Problem
}

// TemplateGap is a custom template part that does not show some required elements.
type TemplateGap struct {
	// Locale is the override's locale code.
	Locale string
	// Part is PartText or PartHTML.
	Part string
	// Missing names the elements the template never refers to.
	Missing []string
}

// Problem is one present but unacceptable value.
type Problem struct {
	// Element is the stable element name, or ElementTemplates for template problems.
	Element string
	// Locale is set for template problems and for problems with a translation or an
	// EnglishFallback entry (then Element names the translated element, or is
	// ElementTranslations or ElementEnglishFallback).
	Locale string
	// Part is set for template problems (PartSubject, PartText, PartHTML).
	Part string
	// Message says what is wrong, for a person.
	Message string
}

// Error reads the whole list of problems for a person.
func (e *ValidationError) Error() string {
	var parts []string
	if len(e.Missing) > 0 {
		parts = append(parts, "missing "+describe(e.Missing))
	}
	for _, g := range e.Templates {
		parts = append(parts, fmt.Sprintf("the %s %s template leaves out %s", localeName(g.Locale), partName(g.Part), describe(g.Missing)))
	}
	for _, p := range e.Invalid {
		switch {
		case p.Element == ElementTemplates && p.Locale != "" && p.Part != "":
			parts = append(parts, fmt.Sprintf("the %s %s template: %s", localeName(p.Locale), partName(p.Part), p.Message))
		case p.Element == ElementTemplates && p.Locale != "":
			parts = append(parts, fmt.Sprintf("templates for %q: %s", p.Locale, p.Message))
		case p.Locale != "":
			parts = append(parts, fmt.Sprintf("%s (%s) for %s: %s", elementLabels[p.Element], p.Element, localeName(p.Locale), p.Message))
		default:
			parts = append(parts, fmt.Sprintf("%s (%s): %s", elementLabels[p.Element], p.Element, p.Message))
		}
	}
	return ErrInvalidDraft.Error() + ": " + strings.Join(parts, "; ")
}

// Is lets errors.Is(err, ErrInvalidDraft) match.
func (e *ValidationError) Is(target error) bool {
	return target == ErrInvalidDraft
}

// MissingElements returns every missing element name, from the fields and from custom
// templates, without duplicates.
func (e *ValidationError) MissingElements() []string {
	seen := map[string]bool{}
	var out []string
	add := func(names []string) {
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	add(e.Missing)
	for _, g := range e.Templates {
		add(g.Missing)
	}
	return out
}

func describe(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = fmt.Sprintf("%s (%s)", elementLabels[n], n)
	}
	return strings.Join(out, ", ")
}

func localeName(loc string) string {
	if info, ok := localeInfos[loc]; ok {
		return info.name + " (" + loc + ")"
	}
	return fmt.Sprintf("%q", loc)
}

func partName(part string) string {
	switch part {
	case PartSubject:
		return "subject"
	case PartText:
		return "plain-text"
	case PartHTML:
		return "HTML"
	}
	return part
}

// Validate checks that a draft carries every Art. 33(3) element within limits, or marks
// it not yet known where Art. 33(4) allows; that its phase, translations, English
// fallbacks and sender are consistent; and that any custom templates parse, render and
// show every required element and the acknowledgement link. It returns a
// *ValidationError listing every problem, or nil. Locales left without a translation or
// an English fallback are not a validation problem; see Untranslated.
func Validate(d Draft) error {
	v := &ValidationError{}
	missing := map[string]bool{}
	invalid := func(el, format string, args ...any) {
		v.Invalid = append(v.Invalid, Problem{Element: el, Message: fmt.Sprintf(format, args...)})
	}
	unknown := validateUnknowns(d, invalid)
	validateFields(d.Fields, unknown, missing, invalid)
	validatePhase(d, missing, invalid)
	validateSender(d.Sender, missing, invalid)
	validateTranslations(d, unknown, v)
	validateFallback(d, v)
	for _, el := range missingOrder {
		if missing[el] {
			v.Missing = append(v.Missing, el)
		}
	}
	validateTemplates(d, v)
	if len(v.Missing) == 0 && len(v.Templates) == 0 && len(v.Invalid) == 0 {
		return nil
	}
	return v
}

// Untranslated returns, sorted, the supported locales other than English that have
// neither a translation nor an EnglishFallback entry: their recipients would read the
// English free text without anyone having chosen that.
func Untranslated(d Draft) []string {
	fallback := map[string]bool{}
	for _, loc := range d.EnglishFallback {
		fallback[loc] = true
	}
	var out []string
	for _, loc := range locales {
		if loc == DefaultLocale || fallback[loc] {
			continue
		}
		if _, ok := d.Translations[loc]; !ok {
			out = append(out, loc)
		}
	}
	return out
}

// validateUnknowns checks Fields.NotYetKnown and returns the acceptable entries as a set.
func validateUnknowns(d Draft, invalid func(el, format string, args ...any)) map[string]bool {
	unknown := map[string]bool{}
	var named []string
	for _, el := range d.Fields.NotYetKnown {
		switch {
		case !isUnknowable(el):
			invalid(ElementNotYetKnown, "%q cannot be marked not yet known; only %s can", el, strings.Join(unknowableElements, ", "))
		case unknown[el]:
			invalid(ElementNotYetKnown, "names %s twice", el)
		default:
			unknown[el] = true
			named = append(named, el)
		}
	}
	if len(named) > 0 && d.PhaseOrInitial().Kind == PhaseFinal {
		invalid(ElementNotYetKnown, "a final notice must state every element; still marked not yet known: %s", describe(named))
	}
	return unknown
}

func validateFields(f Fields, unknown, missing map[string]bool, invalid func(el, format string, args ...any)) {
	// stated reports whether an element has a value; a value is refused for an element
	// marked not yet known, and its absence is then not missing.
	stated := func(el string, has bool) bool {
		if unknown[el] {
			if has {
				invalid(el, "is marked not yet known but has a value")
			}
			return false
		}
		if !has {
			missing[el] = true
		}
		return has
	}
	line := func(el, s string, maxLen int) {
		if !stated(el, strings.TrimSpace(s) != "") {
			return
		}
		if msg := checkText(s, maxLen, false); msg != "" {
			invalid(el, "%s", msg)
		}
	}
	text := func(el, s string, required bool) {
		if required {
			if !stated(el, strings.TrimSpace(s) != "") {
				return
			}
		} else if strings.TrimSpace(s) == "" {
			return
		}
		if msg := checkText(s, MaxTextLen, true); msg != "" {
			invalid(el, "%s", msg)
		}
	}
	list := func(el string, items []string) {
		if !stated(el, len(tidyList(items)) > 0) {
			return
		}
		if len(items) > MaxListItems {
			invalid(el, "has %d entries; at most %d are allowed", len(items), MaxListItems)
		}
		for i, it := range items {
			if strings.TrimSpace(it) == "" {
				invalid(el, "entry %d is empty", i+1)
				continue
			}
			if msg := checkText(it, MaxListItemLen, false); msg != "" {
				invalid(el, "entry %d %s", i+1, msg)
			}
		}
	}
	count := func(el string, n int64) {
		if !stated(el, n != 0) {
			return
		}
		switch {
		case n < 0:
			invalid(el, "must be a positive number, not %d", n)
		case n > MaxCount:
			invalid(el, "must be at most %d", int64(MaxCount))
		}
	}

	line(ElementReference, f.Reference, MaxReferenceLen)
	line(ElementTitle, f.Title, MaxTitleLen)
	if f.AwareAt.IsZero() {
		missing[ElementAwareAt] = true
	}
	text(ElementNature, f.Nature, true)
	list(ElementDataCategories, f.DataCategories)
	list(ElementDataSubjectCategories, f.DataSubjectCategories)
	count(ElementApproxDataSubjects, f.ApproxDataSubjects)
	count(ElementApproxRecords, f.ApproxRecords)
	validateContact(f.Contact, missing, invalid)
	text(ElementLikelyConsequences, f.LikelyConsequences, true)
	text(ElementMeasuresTaken, f.MeasuresTaken, true)
	text(ElementMeasuresProposed, f.MeasuresProposed, true)
	text(ElementAdditionalInformation, f.AdditionalInformation, false)
}

// validatePhase checks the phase and what it requires of Fields.WhatsNew.
func validatePhase(d Draft, missing map[string]bool, invalid func(el, format string, args ...any)) {
	p := d.PhaseOrInitial()
	if p.Number < 1 {
		invalid(ElementPhase, "number must be at least 1, not %d", p.Number)
	}
	switch p.Kind {
	case PhaseInitial:
		if p.Number > 1 {
			invalid(ElementPhase, "the initial notice must be number 1, not %d", p.Number)
		}
	case PhaseUpdate, PhaseFinal:
		if p.Number == 1 {
			invalid(ElementPhase, "notice 1 must be the initial notice; an %s is number 2 or later", p.Kind)
		}
	default:
		invalid(ElementPhase, "kind %q must be one of %s, %s, %s", p.Kind, PhaseInitial, PhaseUpdate, PhaseFinal)
	}

	whatsNew := d.Fields.WhatsNew
	if strings.TrimSpace(whatsNew) == "" {
		if p.Kind == PhaseUpdate || p.Kind == PhaseFinal {
			missing[ElementWhatsNew] = true
		}
		return
	}
	if p.Kind == PhaseInitial {
		invalid(ElementWhatsNew, "must be empty for the initial notice, which has no previous notice")
		return
	}
	if msg := checkText(whatsNew, MaxTextLen, true); msg != "" {
		invalid(ElementWhatsNew, "%s", msg)
	}
}

func validateSender(s Sender, missing map[string]bool, invalid func(el, format string, args ...any)) {
	const el = ElementSender
	if strings.TrimSpace(s.Organisation) == "" {
		missing[el] = true
	} else if msg := checkText(s.Organisation, MaxOrganisationLen, false); msg != "" {
		invalid(el, "organisation %s", msg)
	}
	if s.Signature != "" {
		if msg := checkText(s.Signature, MaxSignatureLen, true); msg != "" {
			invalid(el, "signature %s", msg)
		}
	}
	if s.ReplyTo != "" {
		// The address goes into a mail header as given, so it must already be bare.
		if msg := checkText(s.ReplyTo, MaxEmailLen, false); msg != "" {
			invalid(el, "reply-to %s", msg)
		} else if !plainAddress(s.ReplyTo) {
			invalid(el, "reply-to %q is not a plain email address", s.ReplyTo)
		}
	}
}

// otherLocales lists the supported locales a translation or fallback may name.
func otherLocales() string {
	var out []string
	for _, loc := range locales {
		if loc != DefaultLocale {
			out = append(out, loc)
		}
	}
	return strings.Join(out, ", ")
}

// validateTranslations checks that each translation gives exactly the free text the
// English states, under the same rules.
func validateTranslations(d Draft, unknown map[string]bool, v *ValidationError) {
	keys := make([]string, 0, len(d.Translations))
	for k := range d.Translations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	f := d.Fields
	for _, loc := range keys {
		if !IsSupported(loc) || loc == DefaultLocale {
			v.Invalid = append(v.Invalid, Problem{Element: ElementTranslations, Locale: loc,
				Message: "is not a supported locale other than en; use one of " + otherLocales()})
			continue
		}
		tr := d.Translations[loc]
		problem := func(el, format string, args ...any) {
			v.Invalid = append(v.Invalid, Problem{Element: el, Locale: loc, Message: fmt.Sprintf(format, args...)})
		}
		// wanted reports whether the translation must give el, and refuses text the
		// English does not state.
		wanted := func(el string, english, has bool) bool {
			want := english && !unknown[el]
			switch {
			case want && !has:
				problem(el, "is missing from the translation")
			case !want && has && unknown[el]:
				problem(el, "is marked not yet known, so the translation must leave it out")
			case !want && has:
				problem(el, "is left out in English, so the translation must leave it out too")
			}
			return want && has
		}
		text := func(el, english, translated string, maxLen int, multiline bool) {
			if !wanted(el, strings.TrimSpace(english) != "", strings.TrimSpace(translated) != "") {
				return
			}
			if msg := checkText(translated, maxLen, multiline); msg != "" {
				problem(el, "%s", msg)
			}
		}
		list := func(el string, english, translated []string) {
			want := len(tidyList(english))
			if !wanted(el, want > 0, len(translated) > 0) {
				return
			}
			if len(translated) != want {
				problem(el, "has %d entries; the English has %d", len(translated), want)
			}
			for i, it := range translated {
				if strings.TrimSpace(it) == "" {
					problem(el, "entry %d is empty", i+1)
					continue
				}
				if msg := checkText(it, MaxListItemLen, false); msg != "" {
					problem(el, "entry %d %s", i+1, msg)
				}
			}
		}
		text(ElementTitle, f.Title, tr.Title, MaxTitleLen, false)
		text(ElementWhatsNew, f.WhatsNew, tr.WhatsNew, MaxTextLen, true)
		text(ElementNature, f.Nature, tr.Nature, MaxTextLen, true)
		list(ElementDataCategories, f.DataCategories, tr.DataCategories)
		list(ElementDataSubjectCategories, f.DataSubjectCategories, tr.DataSubjectCategories)
		text(ElementLikelyConsequences, f.LikelyConsequences, tr.LikelyConsequences, MaxTextLen, true)
		text(ElementMeasuresTaken, f.MeasuresTaken, tr.MeasuresTaken, MaxTextLen, true)
		text(ElementMeasuresProposed, f.MeasuresProposed, tr.MeasuresProposed, MaxTextLen, true)
		text(ElementAdditionalInformation, f.AdditionalInformation, tr.AdditionalInformation, MaxTextLen, true)
	}
}

// validateFallback checks that EnglishFallback names each other locale at most once and
// only when it has no translation.
func validateFallback(d Draft, v *ValidationError) {
	seen := map[string]bool{}
	for _, loc := range d.EnglishFallback {
		msg := ""
		_, translated := d.Translations[loc]
		switch {
		case !IsSupported(loc) || loc == DefaultLocale:
			msg = "is not a supported locale other than en; use one of " + otherLocales()
		case seen[loc]:
			msg = "is listed twice"
		case translated:
			msg = "has a translation too; a locale is either translated or sent with the English text"
		}
		seen[loc] = true
		if msg != "" {
			v.Invalid = append(v.Invalid, Problem{Element: ElementEnglishFallback, Locale: loc, Message: msg})
		}
	}
}

// plainAddress reports whether s is one bare email address, as a mail header takes it.
func plainAddress(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && a.Name == ""
}

func validateContact(c ContactPoint, missing map[string]bool, invalid func(el, format string, args ...any)) {
	const el = ElementContactPoint
	email, phone := strings.TrimSpace(c.Email), strings.TrimSpace(c.Phone)
	if strings.TrimSpace(c.Name) == "" || (email == "" && phone == "") {
		missing[el] = true
	}
	if c.Name != "" {
		if msg := checkText(c.Name, MaxContactLen, false); msg != "" {
			invalid(el, "name %s", msg)
		}
	}
	if c.Role != "" {
		if msg := checkText(c.Role, MaxContactLen, false); msg != "" {
			invalid(el, "role %s", msg)
		}
	}
	if email != "" {
		if msg := checkText(c.Email, MaxEmailLen, false); msg != "" {
			invalid(el, "email %s", msg)
		} else if !plainAddress(email) {
			invalid(el, "email %q is not a plain email address", email)
		}
	}
	if phone != "" {
		if msg := checkText(c.Phone, MaxPhoneLen, false); msg != "" {
			invalid(el, "phone %s", msg)
		} else if !validPhone(phone) {
			invalid(el, "phone %q may contain only digits, spaces and + ( ) - . /", phone)
		}
	}
}

func validPhone(s string) bool {
	digits := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case strings.ContainsRune(" +()-./", r):
		default:
			return false
		}
	}
	return digits >= 3
}

// checkText returns why s is unacceptable as notice text, or "".
func checkText(s string, maxLen int, multiline bool) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	if n := utf8.RuneCountInString(s); n > maxLen {
		return fmt.Sprintf("is %d characters long; at most %d are allowed", n, maxLen)
	}
	for _, r := range s {
		if multiline && (r == '\n' || r == '\r' || r == '\t') {
			continue
		}
		if r == '\n' || r == '\r' {
			return "must be a single line"
		}
		if r != '\t' && unicode.IsControl(r) || isBidiControl(r) || r == '\u2028' || r == '\u2029' {
			return fmt.Sprintf("contains the control character %U", r)
		}
	}
	return ""
}

// isBidiControl reports the explicit direction controls that can make text read differently
// from how it is stored.
func isBidiControl(r rune) bool {
	return (r >= '\u202A' && r <= '\u202E') || (r >= '\u2066' && r <= '\u2069')
}

// bodyRequirements are the elements every custom body template must refer to; an update
// or final notice's must also refer to WhatsNew.
var bodyRequirements = append(RequiredElements(), ElementAckURL)

func validateTemplates(d Draft, v *ValidationError) {
	required := bodyRequirements
	if d.PhaseOrInitial().Kind != PhaseInitial {
		required = append(append([]string(nil), bodyRequirements...), ElementWhatsNew)
	}
	keys := make([]string, 0, len(d.Templates))
	for k := range d.Templates {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, loc := range keys {
		o := d.Templates[loc]
		if !IsSupported(loc) {
			v.Invalid = append(v.Invalid, Problem{Element: ElementTemplates, Locale: loc,
				Message: "unsupported locale; use one of " + strings.Join(locales, ", ")})
			continue
		}
		if o.Subject == "" && o.Text == "" && o.HTML == "" {
			continue
		}
		before := len(v.Invalid)
		for _, c := range []struct {
			part, src string
			max       int
		}{
			{PartSubject, o.Subject, MaxSubjectTemplateLen},
			{PartText, o.Text, MaxTextTemplateLen},
			{PartHTML, o.HTML, MaxHTMLTemplateLen},
		} {
			switch {
			case len(c.src) > c.max:
				v.Invalid = append(v.Invalid, Problem{Element: ElementTemplates, Locale: loc, Part: c.part,
					Message: fmt.Sprintf("is %d bytes long; at most %d are allowed", len(c.src), c.max)})
			case !utf8.ValidString(c.src):
				v.Invalid = append(v.Invalid, Problem{Element: ElementTemplates, Locale: loc, Part: c.part, Message: "is not valid UTF-8"})
			case strings.ContainsRune(c.src, 0):
				// Every other field refuses control characters; a template may hold them,
				// but not the one no draft can be stored with.
				v.Invalid = append(v.Invalid, Problem{Element: ElementTemplates, Locale: loc, Part: c.part, Message: "contains a NUL character"})
			case c.part == PartHTML && strings.Contains(strings.ToLower(c.src), "<script"):
				v.Invalid = append(v.Invalid, Problem{Element: ElementTemplates, Locale: loc, Part: c.part, Message: "must not contain scripts"})
			}
		}
		if len(v.Invalid) > before {
			continue
		}
		p, problems := parseTemplate(loc, effectiveSources(d, loc))
		if len(problems) > 0 {
			v.Invalid = append(v.Invalid, problems...)
			continue
		}
		if o.Text != "" {
			if m := missingReferences(textTrees(p.text), required); len(m) > 0 {
				v.Templates = append(v.Templates, TemplateGap{Locale: loc, Part: PartText, Missing: m})
			}
		}
		if o.HTML != "" {
			if m := missingReferences(htmlTrees(p.html), required); len(m) > 0 {
				v.Templates = append(v.Templates, TemplateGap{Locale: loc, Part: PartHTML, Missing: m})
			}
		}
		// Execution catches what parsing cannot: unknown fields, ambiguous HTML contexts.
		r, err := execute(p, d, loc, "validate")
		if err != nil {
			v.Invalid = append(v.Invalid, Problem{Element: ElementTemplates, Locale: loc, Part: partOf(err), Message: err.Error()})
			continue
		}
		if o.Subject != "" {
			switch n := utf8.RuneCountInString(r.Subject); {
			case n == 0:
				v.Invalid = append(v.Invalid, Problem{Element: ElementTemplates, Locale: loc, Part: PartSubject, Message: "renders an empty subject"})
			case n > MaxSubjectLen:
				v.Invalid = append(v.Invalid, Problem{Element: ElementTemplates, Locale: loc, Part: PartSubject,
					Message: fmt.Sprintf("renders a %d-character subject; at most %d are allowed", n, MaxSubjectLen)})
			}
		}
	}
}
