// Package tenants reads, checks and generates the tenant and contact CSV files that
// `breachflow tenants import` and `tenants generate` work with.
package tenants

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/breachflow/breachflow/internal/store"
)

// TenantHeader is the header row of tenants.csv. List columns separate values with ';'.
var TenantHeader = []string{"id", "name", "country", "locale", "services", "connectors", "data_regions", "regimes", "notice_sla_hours"}

// ContactHeader is the header row of contacts.csv.
var ContactHeader = []string{"tenant_id", "email", "name", "role", "locale", "kind"}

var (
	idPattern     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	countryRe     = regexp.MustCompile(`^[A-Z]{2}$`)
	localeRe      = regexp.MustCompile(`^[a-z]{2}(-[A-Z]{2})?$`)
	listItemRe    = regexp.MustCompile(`^[a-z0-9][a-z0-9._:-]{0,63}$`)
	maxBadReports = 1000
)

// ReadTenants parses and checks tenants.csv. Every bad row is reported with its line;
// when any is bad the rows are not returned.
func ReadTenants(r io.Reader, file string) ([]store.Tenant, error) {
	var out []store.Tenant
	seen := map[string]int{}
	bad, err := readCSV(r, file, TenantHeader, func(line int, rec []string) string {
		t := store.Tenant{ID: rec[0], Name: strings.TrimSpace(rec[1]), Country: rec[2], Locale: rec[3], Line: line}
		switch {
		case !idPattern.MatchString(t.ID):
			return fmt.Sprintf("id %q: want 1-64 letters, digits, '_', '.', '-'", t.ID)
		case t.Name == "" || len(t.Name) > 200:
			return "name: required, at most 200 characters"
		case !countryRe.MatchString(t.Country):
			return fmt.Sprintf("country %q: want an ISO 3166-1 alpha-2 code such as DE", t.Country)
		case !localeRe.MatchString(t.Locale):
			return fmt.Sprintf("locale %q: want a tag such as en or it-IT", t.Locale)
		}
		if msg := textProblem(t.Name); msg != "" {
			return "name: " + msg
		}
		lists := []*[]string{&t.Services, &t.Connectors, &t.DataRegions, &t.Regimes}
		for i, col := range []int{4, 5, 6, 7} {
			items, msg := splitList(rec[col])
			if msg != "" {
				return TenantHeader[col] + ": " + msg
			}
			*lists[i] = items
		}
		sla, err := strconv.Atoi(rec[8])
		if err != nil || sla < 1 || sla > 8760 {
			return fmt.Sprintf("notice_sla_hours %q: want a whole number of hours from 1 to 8760", rec[8])
		}
		t.NoticeSLAHours = sla
		if first, dup := seen[t.ID]; dup {
			return fmt.Sprintf("tenant %q already on line %d", t.ID, first)
		}
		seen[t.ID] = line
		out = append(out, t)
		return ""
	})
	if err != nil {
		return nil, err
	}
	if len(bad) > 0 {
		return nil, &store.ImportError{Rows: bad}
	}
	return out, nil
}

// ReadContacts parses and checks contacts.csv the same way.
func ReadContacts(r io.Reader, file string) ([]store.Contact, error) {
	var out []store.Contact
	seen := map[string]int{}
	bad, err := readCSV(r, file, ContactHeader, func(line int, rec []string) string {
		c := store.Contact{TenantID: rec[0], Email: strings.TrimSpace(rec[1]), Name: strings.TrimSpace(rec[2]),
			Role: strings.TrimSpace(rec[3]), Locale: rec[4], Kind: rec[5], Line: line}
		switch {
		case !idPattern.MatchString(c.TenantID):
			return fmt.Sprintf("tenant_id %q: want 1-64 letters, digits, '_', '.', '-'", c.TenantID)
		case !ValidEmail(c.Email):
			return "email: not a valid address"
		case len(c.Name) > 200:
			return "name: at most 200 characters"
		case len(c.Role) > 100:
			return "role: at most 100 characters"
		case c.Locale != "" && !localeRe.MatchString(c.Locale):
			return fmt.Sprintf("locale %q: want a tag such as en or it-IT, or empty", c.Locale)
		case c.Kind != "primary" && c.Kind != "alternate":
			return fmt.Sprintf("kind %q: want primary or alternate", c.Kind)
		}
		for _, f := range [...]struct{ name, v string }{{"name", c.Name}, {"role", c.Role}} {
			if msg := textProblem(f.v); msg != "" {
				return f.name + ": " + msg
			}
		}
		key := c.TenantID + "\x00" + strings.ToLower(c.Email)
		if first, dup := seen[key]; dup {
			return fmt.Sprintf("the same contact is already on line %d", first)
		}
		seen[key] = line
		out = append(out, c)
		return ""
	})
	if err != nil {
		return nil, err
	}
	if len(bad) > 0 {
		return nil, &store.ImportError{Rows: bad}
	}
	return out, nil
}

// ValidEmail accepts a bare address (no display name, no quoting) of sane length with a
// dotted domain, as the schema's CHECK does. It is hand-written because it runs once per
// imported contact.
func ValidEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	if len(s) > 254 || at < 1 || at > 64 || at == len(s)-1 {
		return false
	}
	for i := 0; i < at; i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),:;<>@[\]`, c) >= 0 {
			return false
		}
	}
	if s[0] == '.' || s[at-1] == '.' || strings.Contains(s[:at], "..") {
		return false
	}
	domain := s[at+1:]
	if !strings.Contains(domain, ".") {
		return false
	}
	for _, label := range strings.Split(domain, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// textProblem says why a name cannot be imported, or "". Names end up in mail headers
// (a contact's display name) and notices (a tenant's name), where a CR or LF could add a
// header and direction controls could make the name read differently from how it is
// stored; the notice package refuses the same characters in tenant names.
func textProblem(s string) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r >= '\u202A' && r <= '\u202E' || r >= '\u2066' && r <= '\u2069' {
			return fmt.Sprintf("contains the control character %U; names must be one line of printable text", r)
		}
	}
	return ""
}

func splitList(s string) ([]string, string) {
	if strings.TrimSpace(s) == "" {
		return []string{}, ""
	}
	parts := strings.Split(s, ";")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if !listItemRe.MatchString(p) {
			return nil, fmt.Sprintf("item %q: want lower-case letters, digits, '.', '_', ':', '-'", p)
		}
		parts[i] = p
	}
	return parts, ""
}

// readCSV checks the header, then calls check for each record with its line number,
// collecting the reasons it gives.
func readCSV(r io.Reader, file string, header []string, check func(line int, rec []string) string) ([]store.RowError, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	head, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: empty file, want header %s", file, strings.Join(header, ","))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if strings.Join(head, ",") != strings.Join(header, ",") {
		return nil, fmt.Errorf("%s:1: header %q, want %q", file, strings.Join(head, ","), strings.Join(header, ","))
	}
	var bad []store.RowError
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return bad, nil
		}
		line, _ := cr.FieldPos(0)
		var reason string
		switch {
		case err != nil:
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.Line
			}
			reason = err.Error()
		case len(rec) != len(header):
			reason = fmt.Sprintf("%d fields, want %d", len(rec), len(header))
		default:
			reason = check(line, rec)
		}
		if reason != "" {
			if len(bad) < maxBadReports {
				bad = append(bad, store.RowError{File: file, Line: line, Reason: reason})
			}
			if err != nil {
				// A quoting error leaves the reader's position unreliable.
				return bad, nil
			}
		}
	}
}
