package api

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/breachflow/breachflow/activities"
	"github.com/breachflow/breachflow/internal/authz"
	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
)

// NoticePreview is a notice draft as every locale renders it, for the people who approve
// or review it: exactly the subject, text and HTML the send path renders from the stored
// draft with ContentHash, with the sample recipient's values where each recipient's own go.
type NoticePreview struct {
	// IncidentID is the incident the draft belongs to.
	IncidentID string `json:"incident_id"`
	// ContentHash is the draft shown; approving it means approving this hash.
	ContentHash string `json:"content_hash"`
	// CurrentHash is the incident's current draft; it differs from ContentHash when a
	// specific proposed hash was asked for.
	CurrentHash string `json:"current_hash"`
	// PreviousHash is the draft Diff compares with ("" for none).
	PreviousHash string `json:"previous_hash"`
	// SampleRecipient stands in for every recipient's own values.
	SampleRecipient SampleRecipient `json:"sample_recipient"`
	// Locales holds one rendering per supported locale, in notice.Locales order.
	Locales []NoticeLocale `json:"locales"`
	// Diff gathers every locale's changes since PreviousHash, each locale's lines under
	// an "== locale ==" line; nil when there is no previous draft.
	Diff *NoticeDiff `json:"diff"`
	// Phase is the notice phase the draft is for; Sender is who it comes from.
	Phase  notice.Phase  `json:"phase"`
	Sender notice.Sender `json:"sender"`
	// Untranslated lists the locales with neither their own text nor an explicit English
	// fallback: approval is refused until there are none. EnglishFallback lists the
	// locales that read the English text by choice.
	Untranslated    []string `json:"untranslated"`
	EnglishFallback []string `json:"english_fallback"`
	// Reach counts the current scope's tenants with no deliverable contact: they cannot be
	// told whatever is approved.
	Reach *store.Reach `json:"reach,omitempty"`
	// Tenant is the notice exactly as one chosen tenant would receive it (?tenant=).
	Tenant *TenantPreview `json:"tenant,omitempty"`
}

// TenantPreview is a draft rendered for one tenant: in its locale, with its facts.
type TenantPreview struct {
	TenantID string             `json:"tenant_id"`
	Name     string             `json:"name"`
	InScope  bool               `json:"in_scope"`
	Deadline *time.Time         `json:"deadline,omitempty"`
	Facts    notice.TenantFacts `json:"facts"`
	// Notice is the subject, text and HTML it would receive; the acknowledgement link
	// is the sample's (each contact's own secret link goes there).
	Notice NoticeLocale `json:"notice"`
}

// SampleRecipient is the recipient a preview is rendered for.
type SampleRecipient struct {
	// TenantName shows where each recipient's tenant name goes.
	TenantName string `json:"tenant_name"`
	// AckURL shows where each recipient's own secret acknowledgement link goes.
	AckURL string `json:"ack_url"`
	// Deadline shows where each tenant's deadline goes (the incident's awareness time
	// plus 72 hours).
	Deadline time.Time `json:"deadline"`
	// Facts show where each tenant's own facts go: the values of its services,
	// connectors and data regions the scope names, and its numbers from an impact file.
	Facts notice.TenantFacts `json:"facts"`
	// Note says so for a person.
	Note string `json:"note"`
}

// NoticeLocale is one locale of a preview.
type NoticeLocale struct {
	// Locale is the supported locale code.
	Locale string `json:"locale"`
	// Custom names the template parts the draft overrides for this locale.
	Custom []string `json:"custom_parts,omitempty"`
	// Subject, Text and HTML are the parts of the email as sent, but for the sample
	// recipient's values.
	Subject string `json:"subject"`
	Text    string `json:"text"`
	HTML    string `json:"html"`
	// URLs lists every address the HTML part refers to (links, images, styles), in order.
	URLs []string `json:"html_urls"`
	// Error says why the locale does not render; the notice cannot be sent in it either.
	Error string `json:"error,omitempty"`
	// Diff is this locale's changes since the previous draft; nil when there is none.
	Diff *NoticeDiff `json:"diff,omitempty"`
}

// NoticeDiff holds, per part, the lines only in the previous draft ("- ") and only in
// this one ("+ "), in order, each run of changes headed by "@@ -old +new @@" line
// numbers; an empty part is unchanged.
type NoticeDiff struct {
	// Subject, Text and HTML are the changes to each part of the email.
	Subject string `json:"subject"`
	Text    string `json:"text"`
	HTML    string `json:"html"`
}

// Empty reports whether no part changed.
func (d NoticeDiff) Empty() bool { return d.Subject == "" && d.Text == "" && d.HTML == "" }

// Sample recipient values: obviously not a real tenant, and an acknowledgement link that
// reads as what it stands for wherever a template puts it.
const (
	sampleTenantName = "Example Tenant Ltd"
	sampleAckURL     = "https://example.invalid/ack/recipient-secret-token"
	sampleSLA        = 72 * time.Hour
)

// ErrNoDraft is matched by the error of a preview of an incident without a checked draft.
var ErrNoDraft = errors.New("no notice draft")

// ErrUnknownDraft is matched by the error of a preview of a hash no stored draft has.
var ErrUnknownDraft = errors.New("unknown notice draft")

// previewError is a refused preview with a message for a person; it matches its sentinel
// and the store error that gives its status.
type previewError struct {
	sentinel, status error
	msg              string
}

func (e *previewError) Error() string { return e.msg }

func (e *previewError) Is(target error) bool { return target == e.sentinel || target == e.status }

var contentHashRe = regexp.MustCompile(`^[0-9a-f]{64}$`)

// NoticePreview renders for k the incident's draft with hash (the current draft when
// hash is empty) in every locale, with the changes since the draft it replaced: the audit
// log's notice.drafted record, or for a hash never made current the current draft.
func (s *Server) NoticePreview(ctx context.Context, k store.APIKey, id, hash, tenant string) (NoticePreview, error) {
	if err := authz.Check(k.Roles, authz.IncidentRead); err != nil {
		return NoticePreview{}, err
	}
	inc, err := s.incident(ctx, id)
	if err != nil {
		return NoticePreview{}, err
	}
	if hash == "" {
		if hash = inc.NoticeHash; hash == "" {
			msg := "the incident has no notice draft yet: propose one"
			if len(inc.NoticeDraft) > 0 {
				msg = "the draft declared with the incident has not been checked yet, or was refused: reload, or propose a draft"
			}
			return NoticePreview{}, &previewError{ErrNoDraft, store.ErrConflict, msg}
		}
	} else if !contentHashRe.MatchString(hash) {
		return NoticePreview{}, &store.FieldError{Field: "hash", Message: "want the 64-hex-digit content hash of a proposed draft"}
	}
	prev, ok, err := s.Store.DraftReplaced(ctx, inc.ID, hash)
	if err != nil {
		return NoticePreview{}, err
	}
	switch {
	case ok:
	case hash != inc.NoticeHash && inc.NoticeHash != "":
		prev = inc.NoticeHash // what making it current would replace
	default:
		if prev, err = s.Store.DraftProposedBefore(ctx, inc.ID, hash); err != nil {
			return NoticePreview{}, err
		}
	}
	p, cur, err := s.compare(ctx, inc, hash, prev)
	if err != nil {
		return p, err
	}
	reach, err := s.Store.ScopeReach(ctx, inc.ID)
	if err != nil {
		return p, err
	}
	p.Reach = &reach
	if tenant == "" {
		return p, nil
	}
	t, err := s.Store.PreviewTenant(ctx, inc.ID, tenant)
	if errors.Is(err, store.ErrUnknownTenant) {
		return p, &store.FieldError{Field: "tenant", Message: "no tenant " + strconv.Quote(tenant)}
	}
	if err != nil {
		return p, err
	}
	tp := &TenantPreview{TenantID: t.TenantID, Name: t.Name, InScope: t.InScope, Facts: t.Facts}
	deadline := p.SampleRecipient.Deadline
	if t.InScope {
		tp.Deadline, deadline = &t.Deadline, t.Deadline
	}
	if cur.bad != nil {
		return p, cur.bad
	}
	tp.Notice = renderLocale(cur.d, notice.Recipient{TenantName: t.Name, AckURL: sampleAckURL, Deadline: deadline, Locale: t.Locale, Facts: t.Facts})
	p.Tenant = tp
	return p, nil
}

// storedDraft is a stored draft as the send path reads it: decoded, validated and checked
// against its hash; bad says why it would not be sent (its preview shows that instead).
type storedDraft struct {
	d   notice.Draft
	bad error
}

// loadDraft reads the stored draft with hash and checks it as the send path does.
func (s *Server) loadDraft(ctx context.Context, incidentID, hash string) (storedDraft, error) {
	raw, err := s.Store.GetDraft(ctx, incidentID, hash)
	if errors.Is(err, store.ErrNotFound) {
		return storedDraft{}, &previewError{ErrUnknownDraft, store.ErrNotFound, "no draft with content hash " + hash + " was proposed for this incident"}
	}
	if err != nil {
		return storedDraft{}, fmt.Errorf("read draft %s: %w", hash, err)
	}
	d, bad := activities.ParseDraft(raw)
	if bad == nil && notice.ContentHash(d) != hash {
		bad = errors.New("the stored draft does not match its content hash")
	}
	return storedDraft{d: d, bad: bad}, nil
}

// renderLocale renders d for r in r's locale as r will read it.
func renderLocale(d notice.Draft, r notice.Recipient) NoticeLocale {
	loc := notice.NormalizeLocale(r.Locale)
	nl := NoticeLocale{Locale: loc, Custom: customParts(d, loc)}
	out, err := notice.RenderFor(d, r)
	if err != nil {
		nl.Error = err.Error()
	} else {
		nl.Subject, nl.Text, nl.HTML, nl.URLs = out.Subject, out.Text, out.HTML, htmlURLs(out.HTML)
	}
	return nl
}

// ReviewNotice renders for k's partner team the draft under review id in every locale,
// with the changes since the draft of the incident's previous review.
func (s *Server) ReviewNotice(ctx context.Context, k store.APIKey, id int64) (NoticePreview, error) {
	if err := authz.Check(k.Roles, authz.PartnerRead); err != nil {
		return NoticePreview{}, err
	}
	rv, err := s.Store.GetReview(ctx, id)
	if err != nil {
		return NoticePreview{}, err
	}
	if authz.Partner(k.Roles) != rv.Partner {
		return NoticePreview{}, ErrOtherPartner
	}
	prev, err := s.Store.PreviousReviewHash(ctx, rv.IncidentID, rv.ID)
	if err != nil {
		return NoticePreview{}, err
	}
	inc, err := s.incident(ctx, rv.IncidentID)
	if err != nil {
		return NoticePreview{}, err
	}
	p, _, err := s.compare(ctx, inc, rv.ContentHash, prev)
	return p, err
}

// compare previews the draft with hash against the one with prev, and returns the draft
// it read.
func (s *Server) compare(ctx context.Context, inc store.Incident, hash, prev string) (NoticePreview, storedDraft, error) {
	sample := SampleRecipient{TenantName: sampleTenantName, AckURL: sampleAckURL, Deadline: inc.AwareAt.Add(sampleSLA).UTC(),
		Facts: sampleFacts(inc.Scope),
		Note: "Per-recipient values are samples: each recipient's tenant name, own secret acknowledgement link, deadline " +
			"and facts (its own services, connectors and data regions the scope names, and its numbers from an impact file) " +
			"appear wherever these do."}
	p := NoticePreview{IncidentID: inc.ID, ContentHash: hash, CurrentHash: inc.NoticeHash, SampleRecipient: sample,
		Untranslated: []string{}, EnglishFallback: []string{}}
	cur, err := s.loadDraft(ctx, inc.ID, hash)
	if err != nil {
		return NoticePreview{}, cur, err
	}
	p.Locales = renderDraft(cur, sample)
	if cur.bad == nil {
		p.Phase, p.Sender = cur.d.PhaseOrInitial(), cur.d.Sender
		p.Untranslated = append(p.Untranslated, notice.Untranslated(cur.d)...)
		p.EnglishFallback = append(p.EnglishFallback, cur.d.EnglishFallback...)
	}
	if prev == "" || prev == hash {
		return p, cur, nil
	}
	before, err := s.loadDraft(ctx, inc.ID, prev)
	if errors.Is(err, ErrUnknownDraft) {
		// Nothing to compare with: the preview itself still stands.
		return p, cur, nil
	}
	if err != nil {
		return NoticePreview{}, cur, err
	}
	old := renderDraft(before, sample)
	p.PreviousHash = prev
	var all NoticeDiff
	for i := range p.Locales {
		c, o := &p.Locales[i], old[i]
		if c.Error != "" || o.Error != "" {
			continue
		}
		d := NoticeDiff{Subject: lineDiff(o.Subject, c.Subject), Text: lineDiff(o.Text, c.Text), HTML: lineDiff(o.HTML, c.HTML)}
		c.Diff = &d
		under := func(part string) string {
			if part == "" {
				return ""
			}
			return "== " + c.Locale + " ==\n" + part
		}
		all.Subject += under(d.Subject)
		all.Text += under(d.Text)
		all.HTML += under(d.HTML)
	}
	p.Diff = &all
	return p, cur, nil
}

// renderDraft renders a stored draft in every locale as the send path does, then fills
// in the sample recipient's values as SendGrid fills in each recipient's; a draft the
// send path would refuse shows why in every locale.
func renderDraft(sd storedDraft, sample SampleRecipient) []NoticeLocale {
	out := make([]NoticeLocale, 0, len(notice.Locales()))
	for _, loc := range notice.Locales() {
		if sd.bad != nil {
			out = append(out, NoticeLocale{Locale: loc, Custom: customParts(sd.d, loc), Error: sd.bad.Error()})
			continue
		}
		out = append(out, renderLocale(sd.d, notice.Recipient{TenantName: sample.TenantName, AckURL: sample.AckURL,
			Deadline: sample.Deadline, Locale: loc, Facts: sample.Facts}))
	}
	return out
}

// sampleFacts stands in for a tenant's facts: the first values the scope names.
func sampleFacts(c store.ScopeCriteria) notice.TenantFacts {
	first := func(v []string) []string { return slices.Clone(v[:min(len(v), 2)]) }
	return notice.TenantFacts{Services: first(c.Services), Connectors: first(c.Connectors), DataRegions: first(c.DataRegions),
		DataSubjects: 120, Records: 480}
}

// customParts names the template parts a draft overrides for a locale.
func customParts(d notice.Draft, loc string) []string {
	t, ok := d.Templates[loc]
	if !ok {
		return nil
	}
	var out []string
	for _, p := range []struct{ name, src string }{{notice.PartSubject, t.Subject}, {notice.PartText, t.Text}, {notice.PartHTML, t.HTML}} {
		if p.src != "" {
			out = append(out, p.name)
		}
	}
	return out
}

// urlAttrRe finds the attributes and CSS references that make a mail client follow or
// fetch an address.
var urlAttrRe = regexp.MustCompile(`(?i)(?:\b(?:href|src|srcset|background|action|formaction|poster|data|cite|longdesc|lowsrc|dynsrc|xlink:href)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+))|url\(\s*("[^"]*"|'[^']*'|[^)]*)\s*\)`)

// htmlURLs lists the addresses an HTML part refers to, unescaped, in order, once each.
func htmlURLs(s string) []string {
	out := []string{}
	for _, m := range urlAttrRe.FindAllStringSubmatch(s, -1) {
		v := m[1]
		if v == "" {
			v = m[2]
		}
		v = strings.TrimSpace(html.UnescapeString(strings.Trim(v, `"'`)))
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// maxDiffCells bounds the table the line diff fills; beyond it, the changed middle of the
// two texts is shown as removed and added whole.
const maxDiffCells = 1 << 20

// lineDiff lists, in order, the lines only in old ("- ") and only in cur ("+ "), each run
// of changes headed by its first line numbers; "" when the texts are equal.
func lineDiff(old, cur string) string {
	if old == cur {
		return ""
	}
	a, b := strings.Split(old, "\n"), strings.Split(cur, "\n")
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	am, bm := a[pre:len(a)-suf], b[pre:len(b)-suf]
	n, m := len(am), len(bm)

	// keep[i][j]: the length of the longest common subsequence of am[i:] and bm[j:].
	var keep [][]int32
	if n*m <= maxDiffCells {
		keep = make([][]int32, n+1)
		for i := range keep {
			keep[i] = make([]int32, m+1)
		}
		for i := n - 1; i >= 0; i-- {
			for j := m - 1; j >= 0; j-- {
				if am[i] == bm[j] {
					keep[i][j] = keep[i+1][j+1] + 1
				} else {
					keep[i][j] = max(keep[i+1][j], keep[i][j+1])
				}
			}
		}
	}
	var out strings.Builder
	inRun := false
	i, j := 0, 0
	change := func(sign, line string) {
		if !inRun {
			out.WriteString("@@ -" + strconv.Itoa(pre+i+1) + " +" + strconv.Itoa(pre+j+1) + " @@\n")
			inRun = true
		}
		out.WriteString(sign + line + "\n")
	}
	for i < n || j < m {
		switch {
		case keep != nil && i < n && j < m && am[i] == bm[j]:
			i, j, inRun = i+1, j+1, false
		case i < n && (j == m || keep == nil || keep[i+1][j] >= keep[i][j+1]):
			change("- ", am[i])
			i++
		default:
			change("+ ", bm[j])
			j++
		}
	}
	return out.String()
}

// noticePreview answers what each locale of the incident's current draft (or of the
// proposed draft ?hash= names) renders to, and what changed since the previous draft.
func (s *Server) noticePreview(w http.ResponseWriter, r *http.Request) {
	p, err := s.NoticePreview(r.Context(), caller(r), r.PathValue("id"), r.URL.Query().Get("hash"), r.URL.Query().Get("tenant"))
	s.answerPreview(w, r, p, err)
}

func (s *Server) reviewNotice(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		writeError(w, http.StatusBadRequest, Error{Code: "invalid", Message: "review id must be a positive integer", Field: "id"})
		return
	}
	p, err := s.ReviewNotice(r.Context(), caller(r), id)
	s.answerPreview(w, r, p, err)
}

func (s *Server) answerPreview(w http.ResponseWriter, r *http.Request, p NoticePreview, err error) {
	var pe *previewError
	switch {
	case errors.As(err, &pe) && errors.Is(err, ErrUnknownDraft):
		writeError(w, http.StatusNotFound, Error{Code: "not_found", Message: pe.msg, Field: "hash"})
	case errors.As(err, &pe):
		writeError(w, http.StatusConflict, Error{Code: "no_draft", Message: pe.msg})
	case err != nil:
		s.fail(w, r, err)
	default:
		writeJSON(w, http.StatusOK, p)
	}
}
