package main

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/evidence"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/testenv"
)

// runAudit executes the CLI with args, the audit and evidence commands included, and
// returns what it printed (stdout and stderr together).
func runAudit(t *testing.T, args ...string) (string, error) {
	t.Helper()
	a, root := newApp()
	registered := false
	for _, c := range root.Commands() {
		registered = registered || c.Name() == "evidence"
	}
	if !registered {
		root.AddCommand(a.evidenceCmd())
	}
	var out bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&out)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// keygen runs `breachflow audit keygen` and returns the signing and public keys.
func keygen(t *testing.T) (signing, public string) {
	t.Helper()
	out, err := runAudit(t, "audit", "keygen")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 2, out)
	signing, ok := strings.CutPrefix(lines[0], "BREACHFLOW_AUDIT_SIGNING_KEY=")
	require.True(t, ok, out)
	public, ok = strings.CutPrefix(lines[1], "BREACHFLOW_AUDIT_PUBLIC_KEY=")
	require.True(t, ok, out)
	k, err := evidence.LoadKeys(signing, public)
	require.NoError(t, err)
	require.Len(t, k.TrustedKeyIDs(), 1, "the public key is the signing key's")
	return signing, public
}

// TestAuditVerifyCommand: `breachflow audit verify` on the database says the chain is
// intact and checkpoints its head; after the rehash attack it fails naming the row and
// the checkpoint; a published copy of the checkpoints still catches the rewrite when the
// stored ones were deleted with it; without keys it says loudly what it cannot check.
func TestAuditVerifyCommand(t *testing.T) {
	ctx := context.Background()
	signing, _ := keygen(t)
	dbURL := testenv.DatabaseURL(t)
	st, err := store.Open(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	for i := range 5 {
		_, err := st.AppendAudit(ctx, store.AuditEntry{Actor: "alice", Action: "test.step", Detail: map[string]any{"i": i}})
		require.NoError(t, err)
	}
	t.Setenv("DATABASE_URL", dbURL)
	t.Setenv("BREACHFLOW_LOG_LEVEL", "warn")
	t.Setenv("BREACHFLOW_AUDIT_SIGNING_KEY", signing)

	out, err := runAudit(t, "audit", "verify")
	require.NoError(t, err, out)
	require.Contains(t, out, "audit chain OK: 5 rows")
	require.Contains(t, out, "head checkpointed: #1 at row 5")
	published := filepath.Join(t.TempDir(), "checkpoints.json")
	out, err = runAudit(t, "audit", "checkpoints")
	require.NoError(t, err, out)
	require.NoError(t, os.WriteFile(published, []byte(out), 0o600))
	cps, err := readCheckpoints(published)
	require.NoError(t, err)
	require.Len(t, cps, 1)

	testenv.RehashAudit(t, st, `UPDATE audit_log SET actor = 'mallory' WHERE seq = 3`, 3)
	out, err = runAudit(t, "audit", "verify")
	require.ErrorContains(t, err, "audit chain broken at row 5")
	require.Contains(t, out, "AUDIT CHAIN BROKEN at row 5 (checkpoint #1)")
	require.Contains(t, out, "rows 1 to 5 were rewritten")

	_, err = st.Pool().Exec(ctx, `ALTER TABLE audit_checkpoints DISABLE TRIGGER USER; DELETE FROM audit_checkpoints;
		ALTER TABLE audit_checkpoints ENABLE TRIGGER USER`)
	require.NoError(t, err)
	t.Setenv("BREACHFLOW_AUDIT_SIGNING_KEY", "")
	t.Setenv("BREACHFLOW_AUDIT_PUBLIC_KEY", cpKey(t, signing))
	out, err = runAudit(t, "audit", "verify", "--json")
	require.NoError(t, err, "without checkpoints the rewritten chain passes: %s", out)
	require.Contains(t, out, "NO CHECKPOINT")
	out, err = runAudit(t, "audit", "verify", "--checkpoints", published)
	require.Error(t, err)
	require.Contains(t, out, "published checkpoint #1")

	t.Setenv("BREACHFLOW_AUDIT_PUBLIC_KEY", "")
	out, err = runAudit(t, "audit", "verify")
	require.NoError(t, err)
	require.Contains(t, out, "WARNING: NO AUDIT PUBLIC KEY CONFIGURED")
	require.Contains(t, out, "signatures NOT checked")

	t.Setenv("BREACHFLOW_AUDIT_SIGNING_KEY", "not a key")
	_, err = runAudit(t, "audit", "verify")
	require.ErrorContains(t, err, "BREACHFLOW_AUDIT_SIGNING_KEY")
}

// cpKey is the public key of a signing key.
func cpKey(t *testing.T, signing string) string {
	t.Helper()
	k, err := evidence.LoadKeys(signing, "")
	require.NoError(t, err)
	return k.PublicKeys()[k.KeyID()]
}

// TestEvidenceCommands: `breachflow incident evidence` downloads a pack through the API
// and `breachflow evidence verify` checks it offline with the public key; a changed file
// is reported, and an unknown incident leaves no file behind.
func TestEvidenceCommands(t *testing.T) {
	ctx := context.Background()
	signing, public := keygen(t)
	st := testenv.Store(t)
	keys, err := evidence.LoadKeys(signing, "")
	require.NoError(t, err)
	srv := api.New(st, nil, zap.NewNop())
	srv.AuditKeys = keys
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	key, _, err := st.CreateAPIKey(ctx, "rita", "responder", "test")
	require.NoError(t, err)
	inc, _, err := st.CreateIncident(ctx, "", store.Declaration{Title: "CLI evidence", Severity: "low", AwareAt: time.Now().Add(-time.Hour)},
		"rita", time.Now())
	require.NoError(t, err)
	t.Setenv("BREACHFLOW_URL", hs.URL)
	t.Setenv("BREACHFLOW_API_KEY", key)

	dir := t.TempDir()
	pack := filepath.Join(dir, "pack.zip")
	out, err := runAudit(t, "incident", "evidence", inc.ID, "-o", pack)
	require.NoError(t, err, out)
	require.Contains(t, out, "wrote "+pack)

	out, err = runAudit(t, "evidence", "verify", pack, "--public-key", public)
	require.NoError(t, err, out)
	require.Contains(t, out, pack+": OK")
	require.Contains(t, out, "incident "+inc.ID)
	t.Setenv("BREACHFLOW_AUDIT_PUBLIC_KEY", public)
	out, err = runAudit(t, "evidence", "verify", pack, "--json")
	require.NoError(t, err, out)
	require.Contains(t, out, `"ok": true`)

	changed := filepath.Join(dir, "changed.zip")
	require.NoError(t, os.WriteFile(changed, editZip(t, pack, evidence.IncidentFile), 0o600))
	out, err = runAudit(t, "evidence", "verify", changed)
	require.Error(t, err)
	require.Contains(t, out, "PROBLEM: incident.json does not match its SHA-256 in the manifest (modified)")

	missing := filepath.Join(dir, "missing.zip")
	_, err = runAudit(t, "incident", "evidence", "INC-NONE-0000", "-o", missing)
	require.ErrorContains(t, err, "404")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 2, "nothing left of the refused download")
}

// editZip returns the zip at path with one character of file name changed.
func editZip(t *testing.T, path, name string) []byte {
	t.Helper()
	zr, err := zip.OpenReader(path)
	require.NoError(t, err)
	defer zr.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		rc, err := f.Open()
		require.NoError(t, err)
		raw, err := io.ReadAll(rc)
		require.NoError(t, err)
		require.NoError(t, rc.Close())
		if f.Name == name {
			raw = bytes.Replace(raw, []byte("CLI evidence"), []byte("CLI Evidence"), 1)
		}
		w, err := zw.Create(f.Name)
		require.NoError(t, err)
		_, err = w.Write(raw)
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}
