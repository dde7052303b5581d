package console_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/evidence"
	"github.com/breachflow/breachflow/internal/store"
	"github.com/breachflow/breachflow/internal/testenv"
)

// TestAuditPage: an admin's audit page verifies the chain and lists the checkpoints; it
// says loudly when nothing is signed, and names the checkpoint and rows a rewrite broke.
// Other roles may not open it.
func TestAuditPage(t *testing.T) {
	s := newStack(t, 2)
	ctx := context.Background()
	admin, _, err := s.st.CreateAPIKey(ctx, "ada", "admin", "test")
	require.NoError(t, err)
	for i := range 4 {
		_, err := s.st.AppendAudit(ctx, store.AuditEntry{Actor: "alice", Action: "test.step", Detail: map[string]any{"i": i}})
		require.NoError(t, err)
	}
	b := s.browser(t)
	b.signIn(admin)

	code, body := b.get("/console/audit")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `id="audit-ok"`)
	require.Contains(t, body, "NO AUDIT PUBLIC KEY CONFIGURED")
	require.Contains(t, body, "No checkpoint yet.")

	seed, _, err := evidence.GenerateKey()
	require.NoError(t, err)
	s.api.AuditKeys, err = evidence.LoadKeys(seed, "")
	require.NoError(t, err)
	code, body = b.get("/console/audit")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `id="audit-ok"`)
	require.NotContains(t, body, "NO AUDIT PUBLIC KEY CONFIGURED")
	require.Contains(t, body, "<td>verify</td>", "the verified head was checkpointed")

	// The rehash attack on row 2.
	testenv.RehashAudit(t, s.st, `UPDATE audit_log SET actor = 'mallory' WHERE seq = 2`, 2)
	code, body = b.get("/console/audit")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `id="audit-broken"`)
	require.Contains(t, body, "checkpoint #")
	require.Contains(t, body, `id="audit-suspect"`)
	require.NotContains(t, body, `id="audit-ok"`)

	for _, who := range []string{"rita", "alice", "dc"} {
		rb := s.browser(t)
		rb.signIn(s.keys[who])
		code, _ := rb.get("/console/audit")
		require.Equal(t, http.StatusForbidden, code, who)
	}
}
