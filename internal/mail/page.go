package mail

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxPersonalizations is SendGrid's limit of personalizations, and of recipients, in one request.
const MaxPersonalizations = 1000

// maxArgLen bounds one custom_args value; SendGrid caps all custom args of a message at 10,000 bytes.
const maxArgLen = 200

// maxSubstitutionBytes is SendGrid's limit on the substitutions of one personalization.
const maxSubstitutionBytes = 10000

// ErrInvalidPage marks a page that must not be sent as it is; retrying cannot help.
var ErrInvalidPage = errors.New("mail: invalid page")

// CustomArgs are the opaque IDs attached to a message and echoed back in its webhook events.
type CustomArgs struct {
	// NoticeID is the outbox row of this message.
	NoticeID string
	// IncidentID is the incident the notice belongs to.
	IncidentID string
	// Round is the notification round; 0 leaves it out.
	Round int
}

// Personalization is one recipient of a page with the values substituted into its copy.
type Personalization struct {
	// To is the recipient's address.
	To string
	// ToName is the recipient's display name; may be empty.
	ToName string
	// Substitutions maps a tag found in the subject or content (e.g. "-name-") to its value.
	Substitutions map[string]string
	// Args are sent as SendGrid custom_args; they hold IDs only.
	Args CustomArgs
}

// Page is one Mail Send request: content shared by up to MaxPersonalizations recipients.
type Page struct {
	// Subject may contain substitution tags.
	Subject string
	// Text is the text/plain body; may contain substitution tags.
	Text string
	// HTML is the text/html body; may contain substitution tags.
	HTML string
	// ReplyTo is where replies go; empty leaves them to the From address.
	ReplyTo string
	// Personalizations are the recipients, one message each.
	Personalizations []Personalization
}

// Validate reports, wrapping ErrInvalidPage, why SendGrid would refuse the page.
// Messages name positions, never addresses, so they are safe to log and to put in workflow history.
func (p Page) Validate() error {
	n := len(p.Personalizations)
	if n == 0 {
		return fmt.Errorf("%w: no personalizations", ErrInvalidPage)
	}
	if n > MaxPersonalizations {
		return fmt.Errorf("%w: %d personalizations, at most %d per request", ErrInvalidPage, n, MaxPersonalizations)
	}
	if strings.TrimSpace(p.Subject) == "" {
		return fmt.Errorf("%w: empty subject", ErrInvalidPage)
	}
	if p.Text == "" && p.HTML == "" {
		return fmt.Errorf("%w: no text or html content", ErrInvalidPage)
	}
	seen := make(map[string]int, n)
	for i, ps := range p.Personalizations {
		if !validAddress(ps.To) {
			return fmt.Errorf("%w: personalization %d: to address is not valid", ErrInvalidPage, i)
		}
		key := strings.ToLower(ps.To)
		if first, dup := seen[key]; dup {
			return fmt.Errorf("%w: personalization %d: same to address as personalization %d", ErrInvalidPage, i, first)
		}
		seen[key] = i
		if err := ps.Args.validate(); err != nil {
			return fmt.Errorf("%w: personalization %d: %w", ErrInvalidPage, i, err)
		}
		size := 0
		for k, v := range ps.Substitutions {
			if k == "" {
				return fmt.Errorf("%w: personalization %d: empty substitution tag", ErrInvalidPage, i)
			}
			size += len(k) + len(v)
		}
		if size >= maxSubstitutionBytes {
			return fmt.Errorf("%w: personalization %d: substitutions of %d bytes, SendGrid allows fewer than %d",
				ErrInvalidPage, i, size, maxSubstitutionBytes)
		}
	}
	return nil
}

func (a CustomArgs) validate() error {
	for _, f := range [...]struct{ name, v string }{{"notice_id", a.NoticeID}, {"incident_id", a.IncidentID}} {
		if len(f.v) > maxArgLen {
			return fmt.Errorf("custom arg %s longer than %d bytes", f.name, maxArgLen)
		}
		// An '@' means an address leaked into what must be an opaque ID.
		if strings.ContainsAny(f.v, "@\r\n") {
			return fmt.Errorf("custom arg %s is not an opaque ID", f.name)
		}
	}
	if a.Round < 0 {
		return errors.New("custom arg round is negative")
	}
	return nil
}

// Map returns the args as SendGrid custom_args, leaving out empty ones.
func (a CustomArgs) Map() map[string]string {
	m := make(map[string]string, 3)
	if a.NoticeID != "" {
		m["notice_id"] = a.NoticeID
	}
	if a.IncidentID != "" {
		m["incident_id"] = a.IncidentID
	}
	if a.Round > 0 {
		m["round"] = strconv.Itoa(a.Round)
	}
	return m
}

// validAddress is a cheap syntactic check; SendGrid's own validation is the authority.
func validAddress(s string) bool {
	if len(s) < 3 || len(s) > 320 {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == 0x7f || strings.IndexByte("<>()[],;:\\\"", c) >= 0 {
			return false
		}
	}
	domain := s[at+1:]
	return !strings.Contains(domain, "..") && domain[0] != '.' && domain[len(domain)-1] != '.'
}

// PageCount is the number of requests needed for n recipients.
func PageCount(n int) int {
	if n <= 0 {
		return 0
	}
	return (n + MaxPersonalizations - 1) / MaxPersonalizations
}

// Chunks splits items into consecutive slices of at most size (MaxPersonalizations when size is
// out of range). The chunks share the backing array of items.
func Chunks[T any](items []T, size int) [][]T {
	if size <= 0 || size > MaxPersonalizations {
		size = MaxPersonalizations
	}
	out := make([][]T, 0, (len(items)+size-1)/size)
	for start := 0; start < len(items); start += size {
		end := min(start+size, len(items))
		out = append(out, items[start:end:end])
	}
	return out
}

// SplitPage splits a page of any number of recipients into pages of at most size recipients
// with the same subject and content.
func SplitPage(p Page, size int) []Page {
	chunks := Chunks(p.Personalizations, size)
	pages := make([]Page, len(chunks))
	for i, c := range chunks {
		pages[i] = Page{Subject: p.Subject, Text: p.Text, HTML: p.HTML, ReplyTo: p.ReplyTo, Personalizations: c}
	}
	return pages
}
