package evidence

import (
	"archive/zip"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/breachflow/breachflow/internal/notice"
	"github.com/breachflow/breachflow/internal/store"
)

// PackReport is the outcome of verifying an evidence pack offline.
type PackReport struct {
	OK         bool      `json:"ok"`
	IncidentID string    `json:"incident_id"`
	TenantID   string    `json:"tenant_id,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	CreatedBy  string    `json:"created_by"`
	KeyID      string    `json:"key_id,omitempty"`
	// Signed is true when the manifest's signature verified with a trusted key.
	Signed bool `json:"signed"`
	Files  int  `json:"files"`
	// Tenants counts the tenant files.
	Tenants int `json:"tenants"`
	// AuditRows counts the excerpt's rows; Redacted those shown by hash only.
	AuditRows int `json:"audit_rows"`
	Redacted  int `json:"redacted"`
	// Checkpoints counts the checkpoints whose signature and digest verified;
	// CoveredThrough is the newest one's row.
	Checkpoints    int   `json:"checkpoints"`
	CoveredThrough int64 `json:"covered_through"`
	// Problems are what does not check out; the pack verifies only without any.
	Problems []string `json:"problems,omitempty"`
	// Warnings are what could not be checked.
	Warnings []string `json:"warnings,omitempty"`
}

func (r *PackReport) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

func (r *PackReport) warn(format string, args ...any) {
	r.Warnings = append(r.Warnings, fmt.Sprintf(format, args...))
}

// maxFile bounds what is read of one file of a pack into memory (manifest, excerpt
// lines, a tenant's file); files are hashed as streams whatever their size.
const maxFile = 256 << 20

// VerifyPack verifies the evidence pack in r offline, trusting keys' public keys: the
// manifest's signature; that every file is listed with its SHA-256 and size and nothing
// else is in the zip; that each draft hashes to its name; that each audit row's hash
// covers its canonical bytes, which say what the row shows, and links to the row before
// where they are consecutive; that each checkpoint's signature verifies and its digest
// is that of the excerpt's rows up to it; and that the checkpoints cover the excerpt. An
// error is returned only when r is not a readable zip.
func VerifyPack(r io.ReaderAt, size int64, keys *Keys) (PackReport, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return PackReport{}, fmt.Errorf("not a zip: %w", err)
	}
	rep := &PackReport{}
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		if _, dup := files[f.Name]; dup {
			rep.problem("%s appears twice in the zip (a file was added)", f.Name)
			continue
		}
		files[f.Name] = f
	}
	mf := files[ManifestFile]
	if mf == nil {
		rep.problem("no %s: not an evidence pack, or one cut short", ManifestFile)
		return *rep, nil
	}
	rawManifest, err := readAll(mf)
	if err != nil {
		rep.problem("%s: %v", ManifestFile, err)
		return *rep, nil
	}
	var m Manifest
	if err := json.Unmarshal(rawManifest, &m); err != nil {
		rep.problem("%s does not decode: %v", ManifestFile, err)
		return *rep, nil
	}
	if m.Format != Format {
		rep.problem("format %q: this verifier reads %s", m.Format, Format)
		return *rep, nil
	}
	rep.IncidentID, rep.TenantID, rep.CreatedAt, rep.CreatedBy, rep.KeyID = m.IncidentID, m.TenantID, m.CreatedAt, m.CreatedBy, m.KeyID
	verifySignature(rep, files[SignatureFile], rawManifest, keys)
	if m.ExportCheckpointError != "" {
		rep.problem("no checkpoint could be taken at export: %s", m.ExportCheckpointError)
	}

	listed := map[string]FileEntry{}
	for _, e := range m.Files {
		if _, dup := listed[e.Name]; dup {
			rep.problem("%s is listed twice in the manifest", e.Name)
		}
		listed[e.Name] = e
	}
	for _, e := range m.Files {
		f := files[e.Name]
		if f == nil {
			rep.problem("%s is in the manifest but not in the zip (removed)", e.Name)
			continue
		}
		sum, n, err := hashFile(f)
		switch {
		case err != nil:
			rep.problem("%s: %v", e.Name, err)
		case sum != e.SHA256 || n != e.Size:
			rep.problem("%s does not match its SHA-256 in the manifest (modified)", e.Name)
		}
		rep.Files++
	}
	for name := range files {
		if _, ok := listed[name]; !ok && name != ManifestFile && name != SignatureFile {
			rep.problem("%s is not in the manifest (added)", name)
		}
	}

	drafts := checkDrafts(rep, files, m)
	checkTenants(rep, files, m, drafts)
	rows := checkExcerpt(rep, files[ExcerptFile], m)
	checkCheckpoints(rep, files[CheckpointsFile], m, rows, keys)
	for _, name := range []string{IncidentFile, ExcerptFile, CheckpointsFile} {
		if _, ok := listed[name]; !ok {
			rep.problem("%s is missing from the manifest", name)
		}
	}
	slices.Sort(rep.Problems)
	rep.Problems = slices.Compact(rep.Problems)
	rep.OK = len(rep.Problems) == 0
	return *rep, nil
}

func verifySignature(rep *PackReport, sf *zip.File, manifest []byte, keys *Keys) {
	if sf == nil {
		rep.problem("the pack is not signed (no %s)", SignatureFile)
		return
	}
	raw, err := readAll(sf)
	if err != nil {
		rep.problem("%s: %v", SignatureFile, err)
		return
	}
	var s signatureFile
	if err := json.Unmarshal(raw, &s); err != nil {
		rep.problem("%s does not decode: %v", SignatureFile, err)
		return
	}
	sig, err := base64.StdEncoding.DecodeString(s.Signature)
	if err != nil {
		rep.problem("%s: signature is not base64", SignatureFile)
		return
	}
	if !keys.CanVerify() {
		rep.problem("no public key to verify the signature with (--public-key or BREACHFLOW_AUDIT_PUBLIC_KEY)")
		return
	}
	if s.KeyID != rep.KeyID {
		rep.problem("%s names key %s, the manifest key %s", SignatureFile, s.KeyID, rep.KeyID)
	}
	if err := keys.verify(s.KeyID, append([]byte(manifestDomain), manifest...), sig); err != nil {
		rep.problem("manifest signature: %v", err)
		return
	}
	rep.Signed = true
}

func readAll(f *zip.File) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, maxFile+1))
	if err == nil && len(raw) > maxFile {
		err = errors.New("too large")
	}
	return raw, err
}

func hashFile(f *zip.File) (string, int64, error) {
	rc, err := f.Open()
	if err != nil {
		return "", 0, err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc) // the zip reader checks each file's CRC too
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// checkDrafts checks that each draft hashes to its name and returns the hashes present.
func checkDrafts(rep *PackReport, files map[string]*zip.File, m Manifest) map[string]bool {
	present := map[string]bool{}
	for _, e := range m.Files {
		h, ok := strings.CutPrefix(e.Name, draftDir)
		if !ok || files[e.Name] == nil {
			continue
		}
		h = strings.TrimSuffix(h, ".json")
		present[h] = true
		raw, err := readAll(files[e.Name])
		if err != nil {
			rep.problem("%s: %v", e.Name, err)
			continue
		}
		var d notice.Draft
		if err := json.Unmarshal(raw, &d); err != nil {
			rep.problem("%s does not decode: %v", e.Name, err)
			continue
		}
		if got := notice.ContentHash(d); got != h {
			// The hash covers the templates of the version that computed it: another
			// version's templates hash differently. The manifest still proves the file.
			rep.warn("%s hashes to %s with this version's templates, not to its name", e.Name, got)
		}
	}
	return present
}

// checkTenants checks each tenant file's incident, that a tenant's pack holds only its
// tenant, and that every notice's draft is in the pack.
func checkTenants(rep *PackReport, files map[string]*zip.File, m Manifest, drafts map[string]bool) {
	for _, e := range m.Files {
		name, ok := strings.CutPrefix(e.Name, tenantDir)
		if !ok || files[e.Name] == nil {
			continue
		}
		rep.Tenants++
		raw, err := readAll(files[e.Name])
		if err != nil {
			rep.problem("%s: %v", e.Name, err)
			continue
		}
		var t tenantFile
		if err := json.Unmarshal(raw, &t); err != nil {
			rep.problem("%s does not decode: %v", e.Name, err)
			continue
		}
		if t.IncidentID != m.IncidentID || t.Tenant.ID+".json" != name {
			rep.problem("%s: holds tenant %s of incident %s", e.Name, t.Tenant.ID, t.IncidentID)
		}
		if m.TenantID != "" && t.Tenant.ID != m.TenantID {
			rep.problem("%s: a pack for tenant %s holds another tenant", e.Name, m.TenantID)
		}
		for _, c := range t.Contacts {
			for _, n := range c.Notices {
				if n.ContentHash != "" && !drafts[n.ContentHash] {
					rep.problem("%s: notice %d carries content %s, whose draft is not in the pack", e.Name, n.NoticeID, n.ContentHash)
				}
			}
		}
	}
	if rep.Tenants != m.Tenants {
		rep.problem("the manifest counts %d tenants, the pack holds %d", m.Tenants, rep.Tenants)
	}
}

// excerptRow is what a verified excerpt row contributes to the checkpoints' digests.
type excerptRow struct {
	seq  int64
	hash []byte
}

// checkExcerpt checks every row of the audit excerpt and returns the rows in order.
func checkExcerpt(rep *PackReport, f *zip.File, m Manifest) []excerptRow {
	if f == nil {
		return nil
	}
	rc, err := f.Open()
	if err != nil {
		rep.problem("%s: %v", ExcerptFile, err)
		return nil
	}
	defer rc.Close()
	var rows []excerptRow
	var prev *excerptLine
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 0, 64<<10), maxFile)
	for n := 1; sc.Scan(); n++ {
		var l excerptLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			rep.problem("%s line %d does not decode: %v", ExcerptFile, n, err)
			return rows
		}
		hash, err := hex.DecodeString(l.Hash)
		if err != nil || len(hash) != sha256.Size {
			rep.problem("%s: row %d: hash is not 32 bytes of hex", ExcerptFile, l.Seq)
			return rows
		}
		if prev != nil && l.Seq <= prev.Seq {
			rep.problem("%s: row %d comes after row %d", ExcerptFile, l.Seq, prev.Seq)
		}
		rep.AuditRows++
		rows = append(rows, excerptRow{seq: l.Seq, hash: hash})
		if l.Redacted != "" {
			if m.TenantID == "" {
				rep.problem("%s: row %d is redacted in a pack of every tenant", ExcerptFile, l.Seq)
			}
			rep.Redacted++
			prev = &l
			continue
		}
		if msg := checkRow(l, m.IncidentID); msg != "" {
			rep.problem("%s: row %d: %s", ExcerptFile, l.Seq, msg)
		}
		if prev != nil && l.Seq == prev.Seq+1 && l.PrevHash != prev.Hash {
			rep.problem("%s: row %d does not link to row %d (prev_hash)", ExcerptFile, l.Seq, prev.Seq)
		}
		prev = &l
	}
	if err := sc.Err(); err != nil {
		rep.problem("%s: %v", ExcerptFile, err)
	}
	if rep.AuditRows != m.Audit.Rows || rep.Redacted != m.Audit.Redacted {
		rep.problem("the manifest counts %d audit rows (%d redacted), the excerpt holds %d (%d)", m.Audit.Rows, m.Audit.Redacted, rep.AuditRows, rep.Redacted)
	}
	return rows
}

// checkRow checks that a row's hash covers its canonical bytes and that they say what
// the row shows; it returns what is wrong, or "".
func checkRow(l excerptLine, incident string) string {
	prev, err := hex.DecodeString(l.PrevHash)
	if err != nil || len(prev) != sha256.Size {
		return "prev_hash is not 32 bytes of hex"
	}
	sum := sha256.New()
	sum.Write(prev)
	sum.Write([]byte(l.Canonical))
	if hex.EncodeToString(sum.Sum(nil)) != l.Hash {
		return "its content does not match its hash (edited)"
	}
	dec := json.NewDecoder(strings.NewReader(l.Canonical))
	dec.UseNumber()
	var c []any
	if err := dec.Decode(&c); err != nil || len(c) != 6 {
		return "canonical bytes are not the 6-element array the chain hashes"
	}
	var detail any
	dd := json.NewDecoder(bytes.NewReader(l.Detail))
	dd.UseNumber()
	if err := dd.Decode(&detail); err != nil {
		return "detail does not decode"
	}
	var at int64
	if l.At != nil {
		at = l.At.UnixMicro()
	}
	inc, _ := c[2].(string)
	switch {
	case fmt.Sprint(c[0]) != fmt.Sprint(l.Seq):
		return "canonical bytes name another row"
	case fmt.Sprint(c[1]) != fmt.Sprint(at):
		return "its time is not the one its hash covers"
	case inc != l.IncidentID || l.IncidentID != incident:
		return "it is not a row of incident " + incident
	case c[3] != l.Actor || c[4] != l.Action:
		return "its actor or action is not the one its hash covers"
	case !reflect.DeepEqual(c[5], detail):
		return "its detail is not the one its hash covers"
	}
	return ""
}

// checkCheckpoints checks each checkpoint's signature and digest against the excerpt, and
// that they cover it.
func checkCheckpoints(rep *PackReport, f *zip.File, m Manifest, rows []excerptRow, keys *Keys) {
	if f == nil {
		return
	}
	raw, err := readAll(f)
	if err != nil {
		rep.problem("%s: %v", CheckpointsFile, err)
		return
	}
	var cps []store.Checkpoint
	if err := json.Unmarshal(raw, &cps); err != nil {
		rep.problem("%s does not decode: %v", CheckpointsFile, err)
		return
	}
	if len(cps) != m.Audit.Checkpoints {
		rep.problem("the manifest counts %d checkpoints, the pack holds %d", m.Audit.Checkpoints, len(cps))
	}
	for _, c := range cps {
		if err := keys.VerifyCheckpoint(c); err != nil {
			rep.problem("checkpoint #%d (row %d): %v", c.ID, c.Seq, err)
			continue
		}
		if c.IncidentID != m.IncidentID {
			rep.problem("checkpoint #%d is of incident %q, not %s", c.ID, c.IncidentID, m.IncidentID)
			continue
		}
		d := store.NewIncidentDigest()
		for _, r := range rows {
			if r.seq > c.Seq {
				break
			}
			d.Add(r.seq, r.hash)
			if r.seq == c.Seq && hex.EncodeToString(r.hash) != c.Hash {
				rep.problem("checkpoint #%d signed another hash for row %d", c.ID, c.Seq)
			}
		}
		if d.Rows() != c.IncidentRows || d.Sum() != c.IncidentDigest {
			rep.problem("checkpoint #%d (row %d, taken %s) signed %d rows of the incident up to row %d; the excerpt's %d rows up to it differ "+
				"(rows edited, removed or added)", c.ID, c.Seq, c.TakenAt.Format(time.RFC3339), c.IncidentRows, c.Seq, d.Rows())
			continue
		}
		rep.Checkpoints++
		rep.CoveredThrough = max(rep.CoveredThrough, c.Seq)
	}
	switch {
	case len(rows) == 0:
	case rep.Checkpoints == 0:
		rep.problem("no valid checkpoint covers the audit excerpt")
	case rows[len(rows)-1].seq > rep.CoveredThrough:
		rep.warn("audit rows after row %d are covered by no checkpoint", rep.CoveredThrough)
	}
}
