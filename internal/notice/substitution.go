package notice

import (
	"errors"
	"fmt"
	"html"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// SendGrid substitution tags in rendered notices. Text tags appear in the subject and
// plain-text body; _html tags appear in the HTML body and carry HTML-escaped values.
const (
	// TagTenantName is the recipient tenant's name, as plain text.
	TagTenantName = "-bf_tenant_name-"
	// TagTenantNameHTML is the recipient tenant's name, HTML-escaped.
	TagTenantNameHTML = "-bf_tenant_name_html-"
	// TagAckURL is the recipient's acknowledgement link, as plain text.
	TagAckURL = "-bf_ack_url-"
	// TagAckURLHTML is the recipient's acknowledgement link, HTML-escaped.
	TagAckURLHTML = "-bf_ack_url_html-"
	// TagDeadline is the tenant's notification deadline, as plain text.
	TagDeadline = "-bf_deadline-"
	// TagDeadlineHTML is the tenant's notification deadline, HTML-escaped.
	TagDeadlineHTML = "-bf_deadline_html-"
	// TagTenantFacts is why the tenant is affected (FactsBlock), as plain lines.
	TagTenantFacts = "-bf_tenant_facts-"
	// TagTenantFactsHTML is why the tenant is affected (FactsBlock), as an HTML fragment.
	TagTenantFactsHTML = "-bf_tenant_facts_html-"
)

// tags lists every substitution tag in a fixed order.
var tags = []string{
	TagTenantName, TagTenantNameHTML, TagAckURL, TagAckURLHTML, TagDeadline, TagDeadlineHTML,
	TagTenantFacts, TagTenantFactsHTML,
}

// Tags returns every substitution tag a rendered notice may contain.
func Tags() []string {
	return append([]string(nil), tags...)
}

// MaxTenantNameLen bounds a recipient tenant's name.
const MaxTenantNameLen = 200

// ErrInvalidRecipient is matched (errors.Is) by errors from Recipient.Validate.
var ErrInvalidRecipient = errors.New("invalid notice recipient")

// Recipient is what differs between the tenants receiving the same rendered notice.
type Recipient struct {
	// TenantName is the tenant's display name.
	TenantName string `json:"tenant_name"`
	// AckURL is the tenant's acknowledgement link (absolute http or https).
	AckURL string `json:"ack_url"`
	// Deadline is the tenant's notification deadline; zero reads as "not specified".
	Deadline time.Time `json:"deadline"`
	// Locale is the tenant's locale, e.g. "it-IT".
	Locale string `json:"locale"`
	// Facts are why this tenant is affected; the notice shows them in its own section.
	Facts TenantFacts `json:"facts"`
}

// TenantFacts are the facts that made one tenant affected: the scope criteria its
// services, connectors and data regions matched, and, where an impact file gave them,
// its own approximate numbers of data subjects and records (0: not given). FactsBlock
// reads them for the notice.
type TenantFacts struct {
	// Services are the tenant's services the incident's scope matched.
	Services []string `json:"services,omitempty"`
	// Connectors are the tenant's connectors the scope matched.
	Connectors []string `json:"connectors,omitempty"`
	// DataRegions are the tenant's data regions the scope matched.
	DataRegions []string `json:"data_regions,omitempty"`
	// DataSubjects is the tenant's approximate number of data subjects concerned; 0: not given.
	DataSubjects int64 `json:"data_subjects,omitempty"`
	// Records is the tenant's approximate number of records concerned; 0: not given.
	Records int64 `json:"records,omitempty"`
}

// Validate checks the recipient's name and acknowledgement link.
func (r Recipient) Validate() error {
	var problems []string
	if strings.TrimSpace(r.TenantName) == "" {
		problems = append(problems, "tenant name is empty")
	} else if msg := checkText(r.TenantName, MaxTenantNameLen, false); msg != "" {
		problems = append(problems, "tenant name "+msg)
	}
	if !validAckURL(r.AckURL) {
		problems = append(problems, "acknowledgement link must be an absolute http or https URL")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidRecipient, strings.Join(problems, "; "))
	}
	return nil
}

func validAckURL(s string) bool {
	if s == "" || !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// Substitutions returns one recipient's SendGrid substitutions for a rendered notice:
// every tag from Tags mapped to its value. Values are neutralised so they never contain a
// tag, and the _html values are HTML-escaped. An unusable acknowledgement link maps to an
// empty value rather than to anything a mail client could follow. The tenant facts are
// read in the recipient's locale.
func Substitutions(r Recipient) map[string]string {
	loc := NormalizeLocale(r.Locale)
	name := neutralise(strings.Join(strings.Fields(r.TenantName), " "))
	deadline := FormatTime(r.Deadline, loc)
	ack := ""
	if validAckURL(r.AckURL) {
		// Percent-encoding the underscore keeps the link working while breaking the marker.
		ack = breakMarkers(r.AckURL, "%5F")
	}
	facts, factsHTML := FactsBlock(r.Facts, loc)
	return map[string]string{
		TagTenantName:      name,
		TagTenantNameHTML:  html.EscapeString(name),
		TagAckURL:          ack,
		TagAckURLHTML:      html.EscapeString(ack),
		TagDeadline:        deadline,
		TagDeadlineHTML:    html.EscapeString(deadline),
		TagTenantFacts:     facts,
		TagTenantFactsHTML: factsHTML,
	}
}
