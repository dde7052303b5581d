package api_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkworker "go.temporal.io/sdk/worker"
	"go.uber.org/zap"

	"github.com/breachflow/breachflow/activities"
	"github.com/breachflow/breachflow/internal/evidence"
	"github.com/breachflow/breachflow/internal/mail"
	"github.com/breachflow/breachflow/internal/mail/sink"
	bfworker "github.com/breachflow/breachflow/worker"
	"github.com/breachflow/breachflow/workflows"
)

// auditKeys is a signing key as serve loads it, and its public key as a verifier holds it.
func auditKeys(t *testing.T) (*evidence.Keys, string) {
	t.Helper()
	seed, pub, err := evidence.GenerateKey()
	require.NoError(t, err)
	k, err := evidence.LoadKeys(seed, "")
	require.NoError(t, err)
	return k, pub
}

// newSigningEnv is an apiEnv whose API server and worker hold the audit signing key: the
// worker checkpoints the chain when an incident closes, as serve and worker do when
// BREACHFLOW_AUDIT_SIGNING_KEY is set.
func newSigningEnv(t *testing.T, tenants int) (*apiEnv, *evidence.Keys, string) {
	t.Helper()
	e := newAPIEnv(t, envOptions{Tenants: tenants, Contacts: 1})
	keys, pub := auditKeys(t)
	e.api.AuditKeys = keys
	sk, err := sink.New(sink.Config{}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sk.Close() })
	sinkSrv := httptest.NewServer(sk.Handler())
	t.Cleanup(sinkSrv.Close)
	e.sink = sk
	sender, err := mail.NewSender(mail.Config{APIKey: "SG.test", BaseURL: sinkSrv.URL, FromEmail: "notices@provider.example",
		Timeout: 10 * time.Second}, nil)
	require.NoError(t, err)
	secret, err := e.st.AckSecret(context.Background(), "")
	require.NoError(t, err)
	w := sdkworker.New(e.tc, e.api.TaskQueue, bfworker.Options())
	w.RegisterWorkflow(workflows.IncidentWorkflow)
	w.RegisterWorkflow(workflows.NotifyPassWorkflow)
	w.RegisterActivity(&activities.Activities{Store: e.st, Mail: sender, Logger: zap.NewNop(), Now: time.Now,
		PublicURL: publicURL, AckSecret: secret, AuditKeys: keys})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	return e, keys, pub
}

// closeAndWait closes the incident through the API and waits for the close checkpoint.
func (e *apiEnv) closeAndWait(t *testing.T, id string) {
	t.Helper()
	e.must(t, http.StatusOK, "POST", "/v1/incidents/"+id+"/close", keyResponder, map[string]string{"reason": "all notified"})
	deadline := time.Now().Add(30 * time.Second)
	for e.count(t, `SELECT count(*) FROM audit_checkpoints WHERE incident_id = $1 AND reason = 'close'`, id) == 0 {
		require.True(t, time.Now().Before(deadline), "no checkpoint at close")
		time.Sleep(50 * time.Millisecond)
	}
}

func verifyPack(t *testing.T, pack []byte, pub string) evidence.PackReport {
	t.Helper()
	trust, err := evidence.LoadKeys("", pub)
	require.NoError(t, err)
	rep, err := evidence.VerifyPack(bytes.NewReader(pack), int64(len(pack)), trust)
	require.NoError(t, err)
	return rep
}

// TestEvidenceThroughTheAPI runs an incident to its close through the API and the
// workflow, whose close activity checkpoints the audit chain, then exports its evidence
// (whole, and one tenant's): both packs verify offline with the public key alone.
func TestEvidenceThroughTheAPI(t *testing.T) {
	t.Parallel()
	e, _, pub := newSigningEnv(t, 4)
	id, _ := e.notifyIncident(t, "Evidence incident", 3)
	e.closeAndWait(t, id)

	r := e.must(t, http.StatusOK, "GET", "/v1/incidents/"+id+"/evidence", keyResponder, nil)
	require.Equal(t, "application/zip", r.Header.Get("Content-Type"))
	require.Contains(t, r.Header.Get("Content-Disposition"), id+"-evidence.zip")
	rep := verifyPack(t, r.Body, pub)
	require.True(t, rep.OK, "%v", rep.Problems)
	require.True(t, rep.Signed)
	require.Equal(t, 3, rep.Tenants)
	require.Equal(t, 2, rep.Checkpoints, "the close and the export checkpoints")
	require.Contains(t, rep.CreatedBy, "responder key#")

	tenant := e.tenantIDs(t, 2)[1]
	r = e.must(t, http.StatusOK, "GET", "/v1/incidents/"+id+"/evidence?tenant="+tenant, keyApprover, nil)
	require.Contains(t, r.Header.Get("Content-Disposition"), id+"-"+tenant+"-evidence.zip")
	rep = verifyPack(t, r.Body, pub)
	require.True(t, rep.OK, "%v", rep.Problems)
	require.Equal(t, tenant, rep.TenantID)
	require.Equal(t, 1, rep.Tenants)

	// Each export is audited, by who and for which tenant.
	require.Equal(t, 2, e.count(t, `SELECT count(*) FROM audit_log WHERE incident_id = $1 AND action = 'evidence.exported'`, id))
	require.Equal(t, 1, e.count(t, `SELECT count(*) FROM audit_log WHERE incident_id = $1 AND action = 'evidence.exported' AND detail->>'tenant_id' = $2`, id, tenant))

	// What is not there answers 404, before any byte of a zip.
	outside := e.tenantIDs(t, 4)[3]
	for _, path := range []string{"/v1/incidents/" + id + "/evidence?tenant=" + outside, "/v1/incidents/" + id + "/evidence?tenant=%00",
		"/v1/incidents/INC-NONE-0000/evidence"} {
		r := e.must(t, http.StatusNotFound, "GET", path, keyResponder, nil)
		require.Equal(t, "not_found", r.Err(t).Code, path)
	}
	e.must(t, http.StatusForbidden, "GET", "/v1/incidents/"+id+"/evidence", keyDevicecare, nil)
	e.must(t, http.StatusForbidden, "GET", "/v1/incidents/"+id+"/evidence", keyAdmin, nil)
}

// TestEvidenceUnsignedSaysSo: a server without a signing key still exports, and the pack
// does not verify as signed evidence.
func TestEvidenceUnsignedSaysSo(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, envOptions{})
	id := e.declare(t, declaration("Unsigned evidence", nil))
	r := e.must(t, http.StatusOK, "GET", "/v1/incidents/"+id+"/evidence", keyResponder, nil)
	_, pub := auditKeys(t)
	rep := verifyPack(t, r.Body, pub)
	require.False(t, rep.OK)
	require.Contains(t, rep.Problems, "the pack is not signed (no manifest.sig)")
	require.Zero(t, e.count(t, `SELECT count(*) FROM audit_checkpoints`))
}
