package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/api"
	"github.com/breachflow/breachflow/internal/evidence"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/testenv"
)

// rehash edits audit row seq as a superuser would, with the triggers off, and recomputes
// the hash of it and every later row with the chain's own canonical function.
func (e *apiEnv) rehash(t *testing.T, edit string, seq int64) {
	t.Helper()
	testenv.RehashAudit(t, e.st, edit, seq)
}

// TestAuditVerifyThroughTheAPI: an admin verifies the chain (and a checkpoint of the
// verified head is signed), reads the checkpoints to publish them, and after the rehash
// attack is told which checkpoint and rows disagree, while the plain chain still links.
func TestAuditVerifyThroughTheAPI(t *testing.T) {
	t.Parallel()
	e, keys, _ := newSigningEnv(t, 3)
	id, _ := e.notifyIncident(t, "Audited incident", 2)
	e.closeAndWait(t, id)

	var v evidence.Verification
	e.must(t, http.StatusOK, "GET", "/v1/audit/verify", keyAdmin, nil).JSON(t, &v)
	require.True(t, v.OK, v.Problem)
	require.True(t, v.Signed)
	require.Positive(t, v.Checkpoints)
	require.NotNil(t, v.Checkpoint, "a checkpoint covers the verified head")
	require.Equal(t, v.HeadSeq, v.Checkpoint.Seq)
	require.Empty(t, v.Warnings)
	for _, key := range []string{keyResponder, keyApprover, keyDevicecare} {
		e.must(t, http.StatusForbidden, "GET", "/v1/audit/verify", key, nil)
	}

	var list api.CheckpointList
	e.must(t, http.StatusOK, "GET", "/v1/audit/checkpoints", keyAdmin, nil).JSON(t, &list)
	require.NotEmpty(t, list.Checkpoints)
	require.Equal(t, *v.Checkpoint, list.Checkpoints[len(list.Checkpoints)-1])
	require.Equal(t, map[string]string{keys.KeyID(): keys.PublicKeys()[keys.KeyID()]}, list.PublicKeys)
	for _, cp := range list.Checkpoints {
		require.NoError(t, keys.VerifyCheckpoint(cp), "published checkpoints verify with the published key")
	}
	var page api.CheckpointList
	var plain store.AuditReport
	_, err := e.st.AppendAudit(context.Background(), store.AuditEntry{IncidentID: id, Actor: "test", Action: "test.more"})
	require.NoError(t, err)
	_, taken, err := e.st.TakeCheckpoint(context.Background(), keys, id, store.CheckpointExport, time.Now())
	require.NoError(t, err)
	require.True(t, taken)
	e.must(t, http.StatusOK, "GET", "/v1/audit/checkpoints?limit=1", keyAdmin, nil).JSON(t, &page)
	require.Len(t, page.Checkpoints, 1)
	require.Equal(t, page.Checkpoints[0].ID, page.Next)
	var rest api.CheckpointList
	e.must(t, http.StatusOK, "GET", fmt.Sprintf("/v1/audit/checkpoints?after=%d", page.Next), keyAdmin, nil).JSON(t, &rest)
	require.Len(t, rest.Checkpoints, len(list.Checkpoints))
	require.Zero(t, rest.Next, "the last page")
	require.Equal(t, "after", e.must(t, http.StatusBadRequest, "GET", "/v1/audit/checkpoints?after=x", keyAdmin, nil).Err(t).Field)

	// The attack: the first approval of the incident rewritten, every later hash recomputed.
	var seq int64
	require.NoError(t, e.st.Pool().QueryRow(context.Background(), `SELECT min(seq) FROM audit_log WHERE incident_id = $1 AND action = 'notice.approved'`,
		id).Scan(&seq))
	e.rehash(t, fmt.Sprintf(`UPDATE audit_log SET detail = detail || '{"person": "mallory"}' WHERE seq = %d`, seq), seq)
	plain, err = e.st.VerifyAudit(context.Background())
	require.NoError(t, err)
	require.True(t, plain.OK, "the rewritten chain links up")

	var bad evidence.Verification
	e.must(t, http.StatusOK, "GET", "/v1/audit/verify", keyAdmin, nil).JSON(t, &bad)
	require.False(t, bad.OK)
	require.Positive(t, bad.BadCheckpoint)
	require.GreaterOrEqual(t, bad.BadSeq, seq)
	require.LessOrEqual(t, bad.SuspectFrom, seq, "the rewritten row lies in the range named")
	require.Contains(t, bad.Problem, fmt.Sprintf("checkpoint #%d", bad.BadCheckpoint))
	require.Nil(t, bad.Checkpoint, "nothing is signed over a rewritten chain")
	require.True(t, strings.Contains(bad.Problem, "rewritten"), bad.Problem)
}
