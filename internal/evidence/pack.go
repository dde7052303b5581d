package evidence

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
)

// Format names the layout of an evidence pack.
const Format = "breachflow-evidence-v1"

// Names of the fixed files of a pack. Tenants are in tenants/<id>.json and notice
// drafts in drafts/<content hash>.json.
const (
	ManifestFile    = "manifest.json"
	SignatureFile   = "manifest.sig"
	ReadmeFile      = "README.txt"
	IncidentFile    = "incident.json"
	ExcerptFile     = "audit/excerpt.jsonl"
	CheckpointsFile = "audit/checkpoints.json"
	tenantDir       = "tenants/"
	draftDir        = "drafts/"
)

// Manifest lists every file of a pack with its SHA-256; its signature (manifest.sig)
// covers its exact bytes.
type Manifest struct {
	Format     string    `json:"format"`
	IncidentID string    `json:"incident_id"`
	TenantID   string    `json:"tenant_id,omitempty"` // the one tenant of a tenant's pack
	CreatedAt  time.Time `json:"created_at"`
	CreatedBy  string    `json:"created_by"`
	KeyID      string    `json:"key_id,omitempty"` // the signing key; empty: the pack is not signed
	Tenants    int       `json:"tenants"`
	Audit      AuditInfo `json:"audit"`
	// ExportCheckpointError says why no checkpoint was taken at export (the chain did not
	// check out, for instance).
	ExportCheckpointError string      `json:"export_checkpoint_error,omitempty"`
	Files                 []FileEntry `json:"files"`
}

// AuditInfo summarises a pack's audit excerpt.
type AuditInfo struct {
	Rows     int   `json:"rows"`
	Redacted int   `json:"redacted"` // rows naming another tenant: only their sequence number and hash are shown
	FirstSeq int64 `json:"first_seq"`
	LastSeq  int64 `json:"last_seq"`
	// CoveredThrough is the row of the newest checkpoint in the pack: every excerpt row up
	// to it is proven by that checkpoint's signed digest.
	CoveredThrough int64 `json:"covered_through"`
	Checkpoints    int   `json:"checkpoints"`
}

// FileEntry is one file of a pack.
type FileEntry struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// signatureFile is manifest.sig.
type signatureFile struct {
	KeyID     string `json:"key_id"`
	Signature string `json:"signature"` // base64 Ed25519 signature of manifestDomain followed by manifest.json
}

// PackOptions says which pack to write.
type PackOptions struct {
	IncidentID string
	// TenantID limits the pack to one tenant: its file alone, and the audit rows naming
	// another tenant shown by sequence number and hash only.
	TenantID string
	// Actor is who exports, recorded in the audit trail and the manifest.
	Actor string
	// PublicURL is the base of acknowledgement links, as the notices carried them.
	PublicURL string
	Keys      *Keys
	Now       time.Time
	// Progress is called after each tenant file (to extend a write deadline, say).
	Progress func()
}

// ErrTenantNotInScope is returned for a tenant pack of a tenant the incident never owed
// anything; it matches store.ErrNotFound.
var ErrTenantNotInScope = fmt.Errorf("tenant not in the incident's scope: %w", store.ErrNotFound)

var tenantIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// CheckPack checks that the pack o asks for can be written: the incident exists and, for
// a tenant's pack, the tenant is in its ledger. It returns store.ErrNotFound or
// ErrTenantNotInScope otherwise.
func CheckPack(ctx context.Context, st *store.Store, o PackOptions) error {
	if o.TenantID != "" && !tenantIDRe.MatchString(o.TenantID) {
		return ErrTenantNotInScope
	}
	return st.ReadSnapshot(ctx, func(sn *store.Snapshot) error {
		if _, err := sn.Incident(ctx, o.IncidentID); err != nil {
			return err
		}
		if o.TenantID == "" {
			return nil
		}
		ok, err := sn.InLedger(ctx, o.IncidentID, o.TenantID)
		if err == nil && !ok {
			err = ErrTenantNotInScope
		}
		return err
	})
}

// WritePack writes the evidence pack of o to w as a zip, streaming: each tenant's file is
// written as its row arrives, so memory does not grow with the tenants but for one
// manifest line each. The export is audited first and, when keys can sign, the head is
// checkpointed for the incident so that the excerpt is covered; the pack is then read
// from one snapshot. The manifest comes last: a pack cut short never verifies.
func WritePack(ctx context.Context, st *store.Store, w io.Writer, o PackOptions) (Manifest, error) {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	o.Now = o.Now.UTC().Truncate(time.Second)
	if err := CheckPack(ctx, st, o); err != nil {
		return Manifest{}, err
	}
	detail := map[string]any{"scope": "all"}
	if o.TenantID != "" {
		detail = map[string]any{"scope": "tenant", "tenant_id": o.TenantID}
	}
	if _, err := st.AppendAudit(ctx, store.AuditEntry{IncidentID: o.IncidentID, Actor: o.Actor, Action: "evidence.exported", Detail: detail}); err != nil {
		return Manifest{}, err
	}
	m := Manifest{Format: Format, IncidentID: o.IncidentID, TenantID: o.TenantID, CreatedAt: o.Now, CreatedBy: o.Actor, KeyID: o.Keys.KeyID()}
	if _, _, err := Checkpoint(ctx, st, o.Keys, o.IncidentID, store.CheckpointExport, o.Now); err != nil {
		if !errors.Is(err, store.ErrChainBroken) {
			return Manifest{}, err
		}
		// The pack is still written: what it holds shows the damage to whoever verifies it.
		m.ExportCheckpointError = err.Error()
	}
	pw := &packWriter{zw: zip.NewWriter(w), m: &m, now: o.Now}
	err := st.ReadSnapshot(ctx, func(sn *store.Snapshot) error {
		b := &builder{ctx: ctx, st: st, sn: sn, o: o, pw: pw, renders: map[string]notice.Rendered{}, drafts: map[string]notice.Draft{}}
		return b.build()
	})
	if err != nil {
		return m, err
	}
	if err := pw.finish(o.Keys); err != nil {
		return m, err
	}
	return m, nil
}

// packWriter writes a pack's files into the zip, hashing each into the manifest.
type packWriter struct {
	zw  *zip.Writer
	m   *Manifest
	now time.Time
}

// countingHash hashes and counts what is written through it.
type countingHash struct {
	h hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

// file writes one file through fn and lists it in the manifest.
func (pw *packWriter) file(name string, fn func(io.Writer) error) error {
	fw, err := pw.zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: pw.now})
	if err != nil {
		return err
	}
	ch := &countingHash{h: sha256.New()}
	if err := fn(io.MultiWriter(fw, ch)); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	pw.m.Files = append(pw.m.Files, FileEntry{Name: name, SHA256: hex.EncodeToString(ch.h.Sum(nil)), Size: ch.n})
	return nil
}

// jsonFile writes v as an indented JSON file.
func (pw *packWriter) jsonFile(name string, v any) error {
	return pw.file(name, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	})
}

// finish writes the manifest and its signature and closes the zip.
func (pw *packWriter) finish(keys *Keys) error {
	raw, err := json.MarshalIndent(pw.m, "", "  ")
	if err != nil {
		return err
	}
	raw = append(raw, '\n')
	fw, err := pw.zw.CreateHeader(&zip.FileHeader{Name: ManifestFile, Method: zip.Deflate, Modified: pw.now})
	if err != nil {
		return err
	}
	if _, err := fw.Write(raw); err != nil {
		return err
	}
	if keys.CanSign() {
		id, sig, err := keys.sign(append([]byte(manifestDomain), raw...))
		if err != nil {
			return err
		}
		fw, err := pw.zw.CreateHeader(&zip.FileHeader{Name: SignatureFile, Method: zip.Store, Modified: pw.now})
		if err != nil {
			return err
		}
		if err := json.NewEncoder(fw).Encode(signatureFile{KeyID: id, Signature: base64.StdEncoding.EncodeToString(sig)}); err != nil {
			return err
		}
	}
	return pw.zw.Close()
}

// builder reads one snapshot into a pack.
type builder struct {
	ctx context.Context
	st  *store.Store
	sn  *store.Snapshot
	o   PackOptions
	pw  *packWriter

	stored     map[string]json.RawMessage // every stored draft of the incident, by content hash
	renders    map[string]notice.Rendered // by content hash and locale
	drafts     map[string]notice.Draft    // the drafts used, decoded, by content hash
	used       []string                   // content hashes to write, in first-use order
	draftError map[string]string
}

func (b *builder) build() error {
	ctx := b.ctx
	inc, err := b.sn.Incident(ctx, b.o.IncidentID)
	if err != nil {
		return err
	}
	if err := b.pw.file(ReadmeFile, func(w io.Writer) error { _, err := io.WriteString(w, readme(b.o)); return err }); err != nil {
		return err
	}
	if err := b.incident(inc); err != nil {
		return err
	}
	if b.stored, err = b.sn.Drafts(ctx, inc.ID); err != nil {
		return err
	}
	if inc.NoticeHash != "" && b.o.TenantID == "" {
		b.useDraft(inc.NoticeHash)
	}
	err = b.sn.Tenants(ctx, b.o.IncidentID, b.o.TenantID, b.o.Now, func(t store.PackTenant) error {
		f, err := b.tenantFile(t)
		if err != nil {
			return err
		}
		if err := b.pw.jsonFile(tenantDir+t.ID+".json", f); err != nil {
			return err
		}
		b.pw.m.Tenants++
		if b.o.Progress != nil {
			b.o.Progress()
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, h := range b.used {
		raw, ok := b.stored[h]
		if !ok {
			continue // named by a notice, never stored: the verifier reports the gap
		}
		if err := b.pw.file(draftDir+h+".json", func(w io.Writer) error { _, err := w.Write(raw); return err }); err != nil {
			return err
		}
	}
	if err := b.excerpt(); err != nil {
		return err
	}
	cps, err := b.sn.Checkpoints(ctx, b.o.IncidentID)
	if err != nil {
		return err
	}
	if cps == nil {
		cps = []store.Checkpoint{}
	}
	b.pw.m.Audit.Checkpoints = len(cps)
	for _, c := range cps {
		b.pw.m.Audit.CoveredThrough = max(b.pw.m.Audit.CoveredThrough, c.Seq)
	}
	return b.pw.jsonFile(CheckpointsFile, cps)
}

// incidentFile is incident.json.
type incidentFile struct {
	ID             string               `json:"id"`
	Title          string               `json:"title"`
	Summary        string               `json:"summary"`
	Severity       string               `json:"severity"`
	AwareAt        time.Time            `json:"aware_at"`
	DataCategories []string             `json:"data_categories"`
	Scope          store.ScopeCriteria  `json:"scope"`
	Partner        string               `json:"partner,omitempty"`
	Reportable     *bool                `json:"reportable"`
	Rationale      string               `json:"rationale"`
	NoticeHash     string               `json:"notice_hash,omitempty"`
	Stage          string               `json:"stage"`
	ClosedReason   string               `json:"closed_reason,omitempty"`
	DeclaredBy     string               `json:"declared_by"`
	CreatedAt      time.Time            `json:"created_at"`
	Phases         []store.PackPhase    `json:"phases"`
	Approvals      []store.PackApproval `json:"approvals"`
	PartnerReviews []reviewOut          `json:"partner_reviews"`
}

type reviewOut struct {
	ID           int64      `json:"id"`
	Partner      string     `json:"partner"`
	ContentHash  string     `json:"content_hash"`
	ScopeVersion int        `json:"scope_version"`
	Status       string     `json:"status"`
	Comment      string     `json:"comment,omitempty"`
	DecidedBy    string     `json:"decided_by,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	DueAt        time.Time  `json:"due_at"`
	DecidedAt    *time.Time `json:"decided_at,omitempty"`
	// CoveredTenants counts the tenants the partner covers; left out of a tenant's pack.
	CoveredTenants *int `json:"covered_tenants,omitempty"`
}

func (b *builder) incident(inc store.Incident) error {
	ctx := b.ctx
	phases, err := b.sn.Phases(ctx, inc.ID)
	if err != nil {
		return err
	}
	approvals, err := b.sn.Approvals(ctx, inc.ID)
	if err != nil {
		return err
	}
	reviews, err := b.sn.Reviews(ctx, inc.ID)
	if err != nil {
		return err
	}
	f := incidentFile{ID: inc.ID, Title: inc.Title, Summary: inc.Summary, Severity: inc.Severity, AwareAt: inc.AwareAt.UTC(),
		DataCategories: inc.DataCategories, Scope: inc.Scope, Partner: inc.Partner, Reportable: inc.Reportable, Rationale: inc.Rationale,
		NoticeHash: inc.NoticeHash, Stage: inc.Stage, ClosedReason: inc.ClosedReason, DeclaredBy: inc.DeclaredBy, CreatedAt: inc.CreatedAt.UTC(),
		Phases: nonNil(phases), Approvals: nonNil(approvals), PartnerReviews: []reviewOut{}}
	if b.o.TenantID != "" {
		// The criteria may name other tenants: a tenant's pack says only whether it was named.
		f.Scope.TenantIDs = onlyTenant(f.Scope.TenantIDs, b.o.TenantID)
		f.Scope.Exclude = onlyTenant(f.Scope.Exclude, b.o.TenantID)
	}
	for _, r := range reviews {
		out := reviewOut{ID: r.ID, Partner: r.Partner, ContentHash: r.ContentHash, ScopeVersion: r.ScopeVersion, Status: r.Status,
			Comment: r.Comment, DecidedBy: r.DecidedBy, CreatedAt: r.CreatedAt.UTC(), DueAt: r.DueAt.UTC(), DecidedAt: r.DecidedAt}
		if b.o.TenantID == "" {
			out.CoveredTenants = &r.CoveredTenants
		}
		f.PartnerReviews = append(f.PartnerReviews, out)
	}
	return b.pw.jsonFile(IncidentFile, f)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func onlyTenant(ids []string, tenant string) []string {
	if slices.Contains(ids, tenant) {
		return []string{tenant}
	}
	return nil
}

// tenantFile is tenants/<id>.json: what the tenant was owed, every notice to each of its
// contacts as rendered, SendGrid's message ids and events, and its acknowledgement.
type tenantFile struct {
	IncidentID      string                 `json:"incident_id"`
	Tenant          tenantOut              `json:"tenant"`
	Obligations     []store.PackObligation `json:"obligations"`
	Acknowledgement *ackOut                `json:"acknowledgement"`
	// AckTokenSHA256 is the SHA-256 of the tenant's acknowledgement token: the links in
	// the notices are shown with it in place of the token, which stays a secret.
	AckTokenSHA256 string       `json:"ack_token_sha256,omitempty"`
	Contacts       []contactOut `json:"contacts"`
}

type tenantOut struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	Country        string `json:"country"`
	Locale         string `json:"locale"`
	NoticeSLAHours int    `json:"notice_sla_hours"`
}

type ackOut struct {
	At  time.Time `json:"at"`
	Via string    `json:"via"`
	By  string    `json:"by"`
}

type contactOut struct {
	ContactID int64       `json:"contact_id"`
	Email     string      `json:"email"`
	Name      string      `json:"name"`
	Role      string      `json:"role"`
	Kind      string      `json:"kind"`
	Notices   []noticeOut `json:"notices"`
}

type noticeOut struct {
	NoticeID          int64             `json:"notice_id"`
	Round             int               `json:"round"`
	RoundKind         string            `json:"round_kind"`
	Phase             *int              `json:"phase"`
	Locale            string            `json:"locale"`
	ContentHash       string            `json:"content_hash"`
	Status            string            `json:"status"`
	Attempts          int               `json:"attempts"`
	PossibleDuplicate bool              `json:"possible_duplicate"`
	ProviderMessageID string            `json:"provider_message_id"`
	LastError         string            `json:"last_error,omitempty"`
	ClaimedAt         *time.Time        `json:"claimed_at"`
	SentAt            *time.Time        `json:"sent_at"`
	StatusAt          *time.Time        `json:"status_at"`
	Events            []store.PackEvent `json:"events"`
	// Facts are why the tenant is affected, as this notice stated them in their own section.
	Facts       notice.TenantFacts `json:"facts"`
	Rendered    *renderedOut       `json:"rendered,omitempty"`
	RenderError string             `json:"render_error,omitempty"`
}

// renderedOut is a notice as its recipient read it: the stored draft under its content
// hash, rendered in the notice's locale with the tenant's values, its facts among them
// (the acknowledgement link's token replaced by its SHA-256), and where replies went.
type renderedOut struct {
	Subject string `json:"subject"`
	Text    string `json:"text"`
	ReplyTo string `json:"reply_to,omitempty"`
}

func (b *builder) tenantFile(t store.PackTenant) (tenantFile, error) {
	f := tenantFile{IncidentID: b.o.IncidentID, Tenant: tenantOut{ID: t.ID, Name: t.Name, Country: t.Country, Locale: t.Locale,
		NoticeSLAHours: t.NoticeSLAHours}, Obligations: nonNil(t.Obligations), AckTokenSHA256: t.AckTokenHash, Contacts: []contactOut{}}
	if t.AcknowledgedAt != nil {
		f.Acknowledgement = &ackOut{At: t.AcknowledgedAt.UTC(), Via: t.AcknowledgedVia, By: t.AcknowledgedBy}
	}
	for _, o := range t.Obligations {
		if o.ContentHash != "" {
			b.useDraft(o.ContentHash)
		}
	}
	ackURL := ""
	if t.AckTokenHash != "" {
		ackURL = strings.TrimRight(b.o.PublicURL, "/") + "/ack/REDACTED-sha256-" + t.AckTokenHash
	}
	for _, n := range t.Notices {
		if len(f.Contacts) == 0 || f.Contacts[len(f.Contacts)-1].ContactID != n.ContactID {
			f.Contacts = append(f.Contacts, contactOut{ContactID: n.ContactID, Email: n.Email, Name: n.ContactName, Role: n.ContactRole,
				Kind: n.ContactKind, Notices: []noticeOut{}})
		}
		out := noticeOut{NoticeID: n.ID, Round: n.Round, RoundKind: n.RoundKind, Phase: n.Phase, Locale: n.Locale, ContentHash: n.ContentHash,
			Status: n.Status, Attempts: n.Attempts, PossibleDuplicate: n.PossibleDuplicate, ProviderMessageID: n.ProviderMessageID,
			LastError: n.LastError, ClaimedAt: n.ClaimedAt, SentAt: n.SentAt, StatusAt: n.StatusAt, Events: nonNil(n.Events), Facts: n.Facts}
		if n.ContentHash != "" {
			var deadline time.Time
			if n.Deadline != nil {
				deadline = *n.Deadline
			}
			r, err := b.render(n.ContentHash, n.Locale, notice.Recipient{TenantName: t.Name, AckURL: ackURL, Deadline: deadline, Locale: n.Locale,
				Facts: n.Facts})
			if err != nil {
				out.RenderError = err.Error()
			} else {
				r.Subject = store.SubjectPrefix(n.RoundKind, n.Locale) + r.Subject
				out.Rendered = &r
			}
		}
		c := &f.Contacts[len(f.Contacts)-1]
		c.Notices = append(c.Notices, out)
	}
	return f, nil
}

// useDraft marks the draft under hash for the pack.
func (b *builder) useDraft(hash string) {
	if _, ok := b.drafts[hash]; ok {
		return
	}
	if b.draftError == nil {
		b.draftError = map[string]string{}
	}
	if _, ok := b.draftError[hash]; ok {
		return
	}
	b.used = append(b.used, hash)
	raw, ok := b.stored[hash]
	if !ok {
		b.draftError[hash] = "no stored draft under this content hash"
		return
	}
	var d notice.Draft
	if err := json.Unmarshal(raw, &d); err != nil {
		b.draftError[hash] = "stored draft does not decode: " + err.Error()
		return
	}
	b.drafts[hash] = d
}

// renderCacheMax bounds the rendered notices kept: a handful of drafts times the locales.
const renderCacheMax = 256

// render renders the draft under hash in locale with r's values, as SendPage does.
func (b *builder) render(hash, locale string, r notice.Recipient) (renderedOut, error) {
	b.useDraft(hash)
	if msg, ok := b.draftError[hash]; ok {
		return renderedOut{}, errors.New(msg)
	}
	key := hash + "/" + locale
	rendered, ok := b.renders[key]
	if !ok {
		var err error
		if rendered, err = notice.Render(b.drafts[hash], locale); err != nil {
			return renderedOut{}, err
		}
		if len(b.renders) >= renderCacheMax {
			clear(b.renders)
		}
		b.renders[key] = rendered
	}
	subs := notice.Substitutions(r)
	pairs := make([]string, 0, 2*len(subs))
	for _, tag := range notice.Tags() {
		pairs = append(pairs, tag, subs[tag])
	}
	rep := strings.NewReplacer(pairs...)
	return renderedOut{Subject: rep.Replace(rendered.Subject), Text: rep.Replace(rendered.Text), ReplyTo: b.drafts[hash].Sender.ReplyTo}, nil
}

// excerptLine is one line of audit/excerpt.jsonl: a whole row, or for a row naming
// another tenant in a tenant's pack, its sequence number and hash only.
type excerptLine struct {
	Seq        int64           `json:"seq"`
	At         *time.Time      `json:"at,omitempty"`
	IncidentID string          `json:"incident_id,omitempty"`
	Actor      string          `json:"actor,omitempty"`
	Action     string          `json:"action,omitempty"`
	Detail     json.RawMessage `json:"detail,omitempty"`
	PrevHash   string          `json:"prev_hash,omitempty"`
	Hash       string          `json:"hash"`
	Canonical  string          `json:"canonical,omitempty"`
	Redacted   string          `json:"redacted,omitempty"`
}

const redactedOtherTenant = "names another tenant"

func (b *builder) excerpt() error {
	a := &b.pw.m.Audit
	return b.pw.file(ExcerptFile, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		return b.sn.AuditExcerpt(b.ctx, b.o.IncidentID, func(r store.AuditRow) error {
			if a.Rows == 0 {
				a.FirstSeq = r.Seq
			}
			a.Rows++
			a.LastSeq = r.Seq
			line := excerptLine{Seq: r.Seq, At: &r.At, IncidentID: r.IncidentID, Actor: r.Actor, Action: r.Action, Detail: r.Detail,
				PrevHash: r.PrevHash, Hash: r.Hash, Canonical: r.Canonical}
			if b.o.TenantID != "" && namesOtherTenant(r.Detail, b.o.TenantID) {
				line = excerptLine{Seq: r.Seq, Hash: r.Hash, Redacted: redactedOtherTenant}
				a.Redacted++
			}
			return enc.Encode(line)
		})
	})
}

// namesOtherTenant reports whether an audit detail names a tenant other than tenant.
func namesOtherTenant(detail json.RawMessage, tenant string) bool {
	var m map[string]any
	if json.Unmarshal(detail, &m) != nil {
		return true // unreadable: not shown in a tenant's pack
	}
	for _, k := range []string{"tenant_id", "tenant"} {
		if v, ok := m[k]; ok && v != tenant {
			return true
		}
	}
	if v, ok := m["tenant_ids"].([]any); ok {
		for _, id := range v {
			if id != tenant {
				return true
			}
		}
	}
	return false
}

func readme(o PackOptions) string {
	who := "every tenant in its scope"
	if o.TenantID != "" {
		who = "tenant " + o.TenantID + " only"
	}
	signed := "It is signed with key " + o.Keys.KeyID() + "."
	if !o.Keys.CanSign() {
		signed = "IT IS NOT SIGNED: no audit signing key was configured; its hashes show accidental damage only."
	}
	return fmt.Sprintf(`breachflow evidence pack (%s)

Incident %s, for %s, exported %s by %s.
%s

  manifest.json          every other file with its SHA-256 and size
  manifest.sig           the Ed25519 signature of manifest.json (key id and base64 signature)
  incident.json          the incident, its notice phases, approvals and partner reviews
  tenants/<id>.json      per tenant: what it was owed per phase (deadline, met or late),
                         every notice to each contact as rendered with the facts it stated,
                         SendGrid message ids and delivery events, and its acknowledgement
  drafts/<hash>.json     each notice draft, under its content hash
  audit/excerpt.jsonl    the incident's audit rows, each with the canonical bytes its hash covers
  audit/checkpoints.json signed checkpoints of the audit chain covering the excerpt

Verify it offline:
  breachflow evidence verify FILE --public-key BASE64   (or BREACHFLOW_AUDIT_PUBLIC_KEY)
`, Format, o.IncidentID, who, o.Now.Format(time.RFC3339), o.Actor, signed)
}
