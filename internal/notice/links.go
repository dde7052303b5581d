package notice

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
)

// A custom template is written by a person and read by thousands of mail clients: any URL
// in it makes each of them fetch or offer that URL, and a placeholder such as {{.AckURL}}
// in it hands every recipient's value to whoever runs the host. CheckLinks inspects what a
// custom template renders to (the same bytes Render produces and SendGrid receives), not
// its source, so links built from string constants, printf or the draft's fields are seen
// as a mail client sees them.
//
// Every URL must be http or https on an allowed host: exact and case-insensitive; an entry
// "*.example.com" allows that domain's subdomains, not the domain itself; a port on an entry
// is ignored. Links that start with {{.AckURL}} are ours; mailto: and relative links are
// allowed; other schemes, event handler attributes and scripts are refused, as is a link
// whose scheme or host would come from a placeholder. Parts left to the defaults, and so
// drafts without custom templates, are not checked.

// maxLinkNesting bounds how deep HTML inside HTML (srcdoc, comments, raw-text elements)
// is followed.
const maxLinkNesting = 4

// tagMarkerLower is the part every substitution tag shares. Render neutralises it in
// everything but the tags it inserts, so any occurrence left in the output is a placeholder.
const tagMarkerLower = "bf_"

var (
	// schemeRe matches a URL scheme at the start of a cleaned URL.
	schemeRe = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.\-]*):`)
	// proseURLRe finds what mail clients turn into links in text: scheme://authority and
	// www.host. It stops at the first '/', so a URL carried in another URL's path or query
	// is found on its own.
	proseURLRe = regexp.MustCompile("(?i)[a-z][a-z0-9+.\\-]*://[^\\s/?#\\\\<>\"'`(){}|,]*|\\bwww\\.[^\\s/?#\\\\<>\"'`(){}|,]*")
	// looseURLRe finds absolute and protocol-relative URLs in CSS and attribute values,
	// where a browser also accepts backslashes for slashes.
	looseURLRe = regexp.MustCompile("(?i)(?:[a-z][a-z0-9+.\\-]*:)?[/\\\\]{2}[^\\s\"'`()<>]*")
	// cssFuncRe finds url(…) in CSS, quoted or not.
	cssFuncRe = regexp.MustCompile(`(?i)url\(\s*("[^"]*"|'[^']*'|[^)]*)`)
	// cssStringRe finds quoted CSS strings, which image-set() and @import load.
	cssStringRe = regexp.MustCompile(`(?s)"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
)

// urlAttrs are the attributes whose whole value is one URL that a mail client may follow
// or load.
var urlAttrs = map[string]bool{
	"href": true, "src": true, "action": true, "formaction": true, "poster": true, "background": true,
	"cite": true, "longdesc": true, "usemap": true, "data": true, "codebase": true, "classid": true,
	"lowsrc": true, "dynsrc": true, "profile": true, "manifest": true, "icon": true,
}

// scriptSchemes run code or read local files wherever a URL is accepted.
var scriptSchemes = map[string]bool{"javascript": true, "vbscript": true, "livescript": true, "file": true}

// CheckLinks refuses, with a *ValidationError, custom templates that link to or load from a host not in allowedHosts.
func CheckLinks(d Draft, allowedHosts []string) error {
	c := newLinkChecker(allowedHosts)
	keys := make([]string, 0, len(d.Templates))
	for k := range d.Templates {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	v := &ValidationError{}
	nonce := ContentHash(d)[:16]
	for _, loc := range keys {
		o := d.Templates[loc]
		if o.Subject == "" && o.Text == "" && o.HTML == "" {
			continue
		}
		p, problems := parseTemplate(loc, effectiveSources(d, loc))
		if len(problems) > 0 {
			v.Invalid = append(v.Invalid, problems...)
			continue
		}
		// The same nonce as Render, so the output is byte for byte what is sent.
		r, err := execute(p, d, loc, nonce)
		if err != nil {
			v.Invalid = append(v.Invalid, Problem{Element: ElementTemplates, Locale: loc, Part: partOf(err), Message: err.Error()})
			continue
		}
		for _, part := range []struct {
			name, custom, rendered string
			check                  func(string)
		}{
			{PartSubject, o.Subject, r.Subject, c.checkProse},
			{PartText, o.Text, r.Text, c.checkProse},
			{PartHTML, o.HTML, r.HTML, func(s string) { c.checkHTML(s, 0) }},
		} {
			if part.custom == "" {
				continue
			}
			part.check(part.rendered)
			for _, msg := range c.take() {
				v.Invalid = append(v.Invalid, Problem{Element: ElementTemplates, Locale: loc, Part: part.name, Message: msg})
			}
		}
	}
	if len(v.Invalid) == 0 {
		return nil
	}
	return v
}

// linkChecker holds the allowed hosts and collects the problems of one template part.
type linkChecker struct {
	hosts    map[string]bool
	suffixes []string
	allowed  string
	problems []string
	seen     map[string]bool
}

func newLinkChecker(allowedHosts []string) *linkChecker {
	c := &linkChecker{hosts: map[string]bool{}, seen: map[string]bool{}}
	var shown []string
	listed := map[string]bool{}
	for _, h := range allowedHosts {
		h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
		if h == "" || listed[h] {
			continue
		}
		listed[h] = true
		shown = append(shown, h)
		if rest, ok := strings.CutPrefix(h, "*."); ok {
			c.suffixes = append(c.suffixes, "."+withoutPort(rest))
		} else {
			c.hosts[withoutPort(h)] = true
		}
	}
	c.allowed = strings.Join(shown, ", ")
	if c.allowed == "" {
		c.allowed = "none"
	}
	return c
}

// withoutPort drops a port from an allowed-host entry; a bare IPv6 address gets brackets.
func withoutPort(h string) string {
	switch {
	case strings.HasPrefix(h, "["):
		if i := strings.IndexByte(h, ']'); i >= 0 {
			return h[:i+1]
		}
	case strings.Count(h, ":") == 1:
		return strings.TrimSuffix(h[:strings.IndexByte(h, ':')], ".")
	case strings.Count(h, ":") > 1:
		return "[" + h + "]"
	}
	return h
}

// refuse records one problem, once.
func (c *linkChecker) refuse(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !c.seen[msg] {
		c.seen[msg] = true
		c.problems = append(c.problems, msg)
	}
}

// take returns the problems collected so far and starts a new list.
func (c *linkChecker) take() []string {
	out := c.problems
	c.problems, c.seen = nil, map[string]bool{}
	return out
}

// allows reports whether host (lower case, without port) is allowed.
func (c *linkChecker) allows(host string) bool {
	if c.hosts[host] {
		return true
	}
	if !validHostName(host) {
		return false
	}
	for _, s := range c.suffixes {
		if strings.HasSuffix(host, s) && len(host) > len(s) {
			return true
		}
	}
	return false
}

// validHostName accepts dotted ASCII names without empty labels.
func validHostName(h string) bool {
	if h == "" {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" {
			return false
		}
		for i := 0; i < len(label); i++ {
			b := label[i]
			if !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-' || b == '_') {
				return false
			}
		}
	}
	return true
}

// cleanURL does what browsers do before parsing: drop tabs and newlines anywhere and
// control characters and spaces at both ends.
func cleanURL(s string) string {
	if strings.ContainsAny(s, "\t\n\r") {
		s = strings.NewReplacer("\t", "", "\n", "", "\r", "").Replace(s)
	}
	return strings.TrimFunc(s, func(r rune) bool { return r <= ' ' })
}

func isSlash(b byte) bool { return b == '/' || b == '\\' }

// checkURL checks one URL as a browser would resolve it.
func (c *linkChecker) checkURL(raw string) {
	u := cleanURL(raw)
	if u == "" {
		return
	}
	lower := strings.ToLower(u)
	if strings.HasPrefix(lower, TagAckURL) || strings.HasPrefix(lower, TagAckURLHTML) {
		// The acknowledgement link is built by us on the public URL.
		return
	}
	var authority string
	if m := schemeRe.FindStringSubmatch(u); m != nil {
		switch scheme := strings.ToLower(m[1]); scheme {
		case "http", "https":
			// Browsers read https:host, https:/host and https:\\host as https://host.
			authority = u[len(m[0]):]
		case "mailto":
			return
		default:
			c.refuse("link with scheme %q is not allowed (only http, https and mailto)", scheme)
			return
		}
	} else {
		head := lower
		if i := strings.IndexAny(head, `/\?#`); i >= 0 {
			head = head[:i]
		}
		if strings.Contains(head, tagMarkerLower) {
			// Substituted later, a placeholder here could supply a scheme such as javascript:.
			c.refuse("link that starts with a placeholder other than {{.AckURL}} is not allowed")
			return
		}
		if len(u) < 2 || !isSlash(u[0]) || !isSlash(u[1]) {
			return // relative: it cannot name a host
		}
		authority = u
	}
	authority = strings.TrimLeft(authority, `/\`)
	if i := strings.IndexAny(authority, `/\?#`); i >= 0 {
		authority = authority[:i]
	}
	if strings.Contains(strings.ToLower(authority), tagMarkerLower) {
		c.refuse("link whose host comes from a placeholder is not allowed")
		return
	}
	host := hostOf(authority)
	if host == "" {
		return // no host: nothing a client could fetch
	}
	if !c.allows(host) {
		c.refuse("link to host %q is not allowed (allowed: %s)", host, c.allowed)
	}
}

// hostOf returns the lower-case host of a URL authority, without user information and port.
func hostOf(authority string) string {
	h := authority
	if i := strings.LastIndexByte(h, '@'); i >= 0 {
		h = h[i+1:]
	}
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i >= 0 {
			h = h[:i+1]
		}
	} else if i := strings.IndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	if strings.Contains(h, "%") {
		if dec, err := url.PathUnescape(h); err == nil {
			h = dec
		}
	}
	// Trailing punctuation ends a sentence in text, not a host.
	return strings.ToLower(strings.TrimRight(h, ".,;!"))
}

// checkProse checks the links a mail client would make of plain text.
func (c *linkChecker) checkProse(s string) {
	for _, m := range proseURLRe.FindAllString(s, -1) {
		if strings.HasPrefix(strings.ToLower(m), "www.") {
			m = "http://" + m
		}
		c.checkURL(m)
	}
}

// checkLoose checks absolute and protocol-relative URLs and url(…) anywhere in s.
func (c *linkChecker) checkLoose(s string) {
	for _, m := range looseURLRe.FindAllString(s, -1) {
		c.checkURL(m)
	}
	for _, m := range cssFuncRe.FindAllStringSubmatch(s, -1) {
		c.checkURL(unquote(m[1]))
	}
}

// checkCSS checks a style sheet or style attribute as a browser reads it: strings are
// found before escapes are decoded, everything else after.
func (c *linkChecker) checkCSS(css string) {
	for _, m := range cssStringRe.FindAllString(css, -1) {
		if v := cssUnescape(m[1 : len(m)-1]); looksLikeURL(v) {
			c.checkURL(v)
		}
	}
	if strings.Contains(css, `\`) {
		css = cssUnescape(css)
	}
	c.checkLoose(css)
	c.checkProse(css)
}

// looksLikeURL tells a CSS string that a browser would load from one that is only text.
func looksLikeURL(s string) bool {
	u := cleanURL(s)
	if len(u) >= 2 && isSlash(u[0]) && isSlash(u[1]) {
		return true
	}
	m := schemeRe.FindStringSubmatch(u)
	if m == nil {
		return false
	}
	scheme := strings.ToLower(m[1])
	return scheme == "http" || scheme == "https" || scheme == "data" || scheme == "ftp" || scheme == "blob" || scriptSchemes[scheme]
}

func unquote(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}

// cssUnescape decodes CSS escapes: a backslash and up to six hex digits (and one following
// space), or a backslash and any other character.
func cssUnescape(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			i++
			continue
		}
		j := i + 1
		for j < len(s) && j-i <= 6 && isHex(s[j]) {
			j++
		}
		if j == i+1 {
			if s[j] != '\n' { // an escaped newline continues a string
				b.WriteByte(s[j])
			}
			i = j + 1
			continue
		}
		n, _ := strconv.ParseUint(s[i+1:j], 16, 32)
		r := rune(n)
		if r == 0 || !utf8.ValidRune(r) {
			r = utf8.RuneError
		}
		b.WriteRune(r)
		if j < len(s) && unicode.IsSpace(rune(s[j])) {
			j++
		}
		i = j
	}
	return b.String()
}

func isHex(b byte) bool {
	return b >= '0' && b <= '9' || b >= 'a' && b <= 'f' || b >= 'A' && b <= 'F'
}

// srcsetURLs returns the URL of every image candidate in a srcset value.
func srcsetURLs(v string) []string {
	var out []string
	i := 0
	for i < len(v) {
		for i < len(v) && (v[i] == ',' || unicode.IsSpace(rune(v[i]))) {
			i++
		}
		start := i
		for i < len(v) && !unicode.IsSpace(rune(v[i])) {
			i++
		}
		if start == i {
			break
		}
		u := v[start:i]
		if trimmed := strings.TrimRight(u, ","); trimmed != u {
			out = append(out, trimmed)
			continue
		}
		out = append(out, u)
		// Skip the descriptors up to the comma that ends the candidate.
		for depth := 0; i < len(v); {
			ch := v[i]
			i++
			if ch == '(' {
				depth++
			} else if ch == ')' && depth > 0 {
				depth--
			} else if ch == ',' && depth == 0 {
				break
			}
		}
	}
	return out
}

// refreshURL returns the URL of a <meta http-equiv=refresh> content value, or "".
func refreshURL(content string) string {
	s := strings.TrimLeft(content, " \t\n\f\r0123456789.")
	s = strings.TrimLeft(s, " \t\n\f\r")
	if s != "" && (s[0] == ';' || s[0] == ',') {
		s = strings.TrimLeft(s[1:], " \t\n\f\r")
	}
	if len(s) >= 3 && strings.EqualFold(s[:3], "url") {
		if rest := strings.TrimLeft(s[3:], " \t\n\f\r"); strings.HasPrefix(rest, "=") {
			s = strings.TrimLeft(rest[1:], " \t\n\f\r")
		}
	}
	if s != "" && (s[0] == '"' || s[0] == '\'') {
		if i := strings.IndexByte(s[1:], s[0]); i >= 0 {
			return s[1 : i+1]
		}
		return s[1:]
	}
	return s
}

// checkHTML checks every place an HTML body can carry a URL.
func (c *linkChecker) checkHTML(s string, depth int) {
	if depth > maxLinkNesting {
		c.refuse("HTML nested more than %d levels deep cannot be checked", maxLinkNesting)
		return
	}
	z := html.NewTokenizer(strings.NewReader(s))
	raw := "" // the raw-text element whose content comes next
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return // io.EOF: a strings.Reader fails in no other way
		case html.TextToken:
			text := string(z.Text())
			switch raw {
			case "style":
				c.checkCSS(text)
			case "", "script":
				c.checkProse(text)
			default:
				// Sanitisers that do not run scripts read noscript, iframe, xmp and the
				// like as markup.
				c.checkHTML(text, depth+1)
			}
		case html.CommentToken:
			// Outlook reads conditional comments ([if mso]) as markup.
			c.checkHTML(string(z.Text()), depth+1)
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			c.checkTag(tok, depth)
			raw = ""
			if tt == html.StartTagToken {
				raw = tok.Data
			}
			continue
		}
		raw = ""
	}
}

// checkTag checks one start tag and its attributes.
func (c *linkChecker) checkTag(tok html.Token, depth int) {
	if tok.Data == "script" {
		c.refuse("scripts are not allowed")
	}
	refresh := false
	if tok.Data == "meta" {
		for _, a := range tok.Attr {
			refresh = refresh || (a.Key == "http-equiv" && strings.EqualFold(strings.TrimSpace(a.Val), "refresh"))
		}
	}
	for _, a := range tok.Attr {
		key := strings.ToLower(a.Key)
		switch {
		case strings.HasPrefix(key, "on"):
			c.refuse("event handler attribute %q is not allowed", key)
			continue
		case key == "xmlns" || strings.HasPrefix(key, "xmlns:"):
			continue // a namespace name, never fetched
		case key == "style":
			c.checkCSS(a.Val)
		case key == "srcdoc":
			c.checkHTML(a.Val, depth+1)
		case key == "srcset" || key == "imagesrcset":
			for _, u := range srcsetURLs(a.Val) {
				c.checkURL(u)
			}
		case key == "ping" || key == "archive":
			for _, u := range strings.FieldsFunc(a.Val, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
				c.checkURL(u)
			}
		case urlAttrs[key] || strings.HasSuffix(key, ":href"):
			c.checkURL(a.Val)
		case refresh && key == "content":
			c.checkURL(refreshURL(a.Val))
		default:
			// SVG animations and presentation attributes (fill="url(…)") take URLs too.
			if m := schemeRe.FindStringSubmatch(cleanURL(a.Val)); m != nil && scriptSchemes[strings.ToLower(m[1])] {
				c.checkURL(a.Val)
			}
		}
		if key != "style" { // checkCSS read it, escapes decoded
			c.checkLoose(a.Val)
			c.checkProse(a.Val)
		}
	}
}
