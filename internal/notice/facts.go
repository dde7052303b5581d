package notice

import (
	"fmt"
	"html"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on the per-tenant facts block. SendGrid caps the substitutions of one
// personalization at 10,000 bytes in all, and the block goes out twice (text and HTML),
// so each list is cut short with "and N more" well before that.
const (
	// MaxFactsListItems bounds the entries shown from each list of TenantFacts.
	MaxFactsListItems = 50
	// MaxFactsItemLen bounds one shown entry, in characters; longer ones are shortened.
	MaxFactsItemLen = 100
	// maxFactsLineBytes bounds one list line of the HTML value, escaped, in bytes.
	maxFactsLineBytes = 800
)

// FactsBlock reads why a tenant is affected in a locale (normalised): one line per
// non-empty list of services, connectors and data regions, then the tenant's own
// approximate numbers when given, or a single line saying nothing was recorded. text is
// plain lines joined by "\n"; html is an HTML fragment with every value escaped. Neither
// can contain a substitution tag.
func FactsBlock(f TenantFacts, locale string) (text, html string) {
	loc := NormalizeLocale(locale)
	w := localeInfos[loc].facts
	var lines []string
	for _, l := range []struct {
		prefix string
		items  []string
	}{
		{w.services, f.Services},
		{w.connectors, f.Connectors},
		{w.regions, f.DataRegions},
	} {
		if line := factsList(l.prefix, l.items, w, loc); line != "" {
			lines = append(lines, line)
		}
	}
	var counts []string
	if f.DataSubjects > 0 {
		counts = append(counts, FormatCount(f.DataSubjects, loc)+" "+plural(f.DataSubjects, w.subject, w.subjects))
	}
	if f.Records > 0 {
		counts = append(counts, FormatCount(f.Records, loc)+" "+plural(f.Records, w.record, w.records))
	}
	if len(counts) > 0 {
		lines = append(lines, w.numbers+strings.Join(counts, w.joinNumbers))
	}
	if len(lines) == 0 {
		none := neutralise(w.none)
		return none, "<p>" + escapeHTML(none) + "</p>"
	}
	var b strings.Builder
	b.WriteString("<ul>")
	for i, l := range lines {
		lines[i] = neutralise(l)
		b.WriteString("<li>" + escapeHTML(lines[i]) + "</li>")
	}
	b.WriteString("</ul>")
	return strings.Join(lines, "\n"), b.String()
}

// factsList renders one list line, or "" when the list has no usable entry.
func factsList(prefix string, items []string, w factsWords, loc string) string {
	var clean []string
	for _, it := range items {
		if it = cleanFact(it); it != "" {
			clean = append(clean, it)
		}
	}
	if len(clean) == 0 {
		return ""
	}
	// Entries are taken while the escaped line stays within budget, so the text and HTML
	// values always show the same entries.
	shown, size := 0, len(escapeHTML(prefix))
	for _, it := range clean {
		n := len(escapeHTML(it)) + 2
		if shown == MaxFactsListItems || (shown > 0 && size+n > maxFactsLineBytes) {
			break
		}
		shown++
		size += n
	}
	line := prefix + strings.Join(clean[:shown], ", ")
	if rest := len(clean) - shown; rest > 0 {
		line += w.and + fmt.Sprintf(w.andMore, FormatCount(int64(rest), loc))
	}
	return line
}

// cleanFact puts one entry on a single line without control or direction characters and
// shortens it to MaxFactsItemLen characters.
func cleanFact(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || isBidiControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > MaxFactsItemLen {
		s = string([]rune(s)[:MaxFactsItemLen-1]) + "…"
	}
	return s
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// escapeHTML escapes s for HTML text the way every _html substitution value is escaped.
func escapeHTML(s string) string {
	return html.EscapeString(s)
}
