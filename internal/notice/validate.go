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
)

// ErrInvalidDraft is matched (errors.Is) by every *ValidationError.
var ErrInvalidDraft = errors.New("invalid notice draft")

// ValidationError lists everything wrong with a draft at once.
type ValidationError struct {
	// Missing names the required elements absent from the fields, in RequiredElements order.
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
	// Locale is set for template problems.
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
		case p.Locale != "" && p.Part != "":
			parts = append(parts, fmt.Sprintf("the %s %s template: %s", localeName(p.Locale), partName(p.Part), p.Message))
		case p.Locale != "":
			parts = append(parts, fmt.Sprintf("templates for %q: %s", p.Locale, p.Message))
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

// Validate checks that a draft carries every Art. 33(3) element within limits and that any
// custom templates parse, render and show every required element and the acknowledgement
// link. It returns a *ValidationError listing every problem, or nil.
func Validate(d Draft) error {
	v := &ValidationError{}
	validateFields(d.Fields, v)
	validateTemplates(d, v)
	if len(v.Missing) == 0 && len(v.Templates) == 0 && len(v.Invalid) == 0 {
		return nil
	}
	return v
}

func validateFields(f Fields, v *ValidationError) {
	missing := map[string]bool{}
	invalid := func(el, format string, args ...any) {
		v.Invalid = append(v.Invalid, Problem{Element: el, Message: fmt.Sprintf(format, args...)})
	}

	line := func(el, s string, maxLen int) {
		if strings.TrimSpace(s) == "" {
			missing[el] = true
			return
		}
		if msg := checkText(s, maxLen, false); msg != "" {
			invalid(el, "%s", msg)
		}
	}
	text := func(el, s string, required bool) {
		if strings.TrimSpace(s) == "" {
			if required {
				missing[el] = true
			}
			return
		}
		if msg := checkText(s, MaxTextLen, true); msg != "" {
			invalid(el, "%s", msg)
		}
	}
	list := func(el string, items []string) {
		nonBlank := 0
		for _, it := range items {
			if strings.TrimSpace(it) != "" {
				nonBlank++
			}
		}
		if nonBlank == 0 {
			missing[el] = true
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
		switch {
		case n == 0:
			missing[el] = true
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

	for _, el := range requiredElements {
		if missing[el] {
			v.Missing = append(v.Missing, el)
		}
	}
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
		} else if a, err := mail.ParseAddress(email); err != nil || a.Address != email || a.Name != "" {
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

// bodyRequirements are the elements every custom body template must refer to.
var bodyRequirements = append(RequiredElements(), ElementAckURL)

func validateTemplates(d Draft, v *ValidationError) {
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
			if m := missingReferences(textTrees(p.text), bodyRequirements); len(m) > 0 {
				v.Templates = append(v.Templates, TemplateGap{Locale: loc, Part: PartText, Missing: m})
			}
		}
		if o.HTML != "" {
			if m := missingReferences(htmlTrees(p.html), bodyRequirements); len(m) > 0 {
				v.Templates = append(v.Templates, TemplateGap{Locale: loc, Part: PartHTML, Missing: m})
			}
		}
		// Execution catches what parsing cannot: unknown fields, ambiguous HTML contexts.
		r, err := execute(p, d.Fields, loc, "validate")
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
