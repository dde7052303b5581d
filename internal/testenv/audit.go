package testenv

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/store"
)

// RehashAudit makes the superuser's attack on the audit chain: with the triggers off, it
// runs edit (an UPDATE of row seq, say) and recomputes the hash of row seq and every later
// row with the chain's own canonical function, so that the chain links up again.
func RehashAudit(t testing.TB, st *store.Store, edit string, seq int64) {
	t.Helper()
	_, err := st.Pool().Exec(context.Background(), fmt.Sprintf(`ALTER TABLE audit_log DISABLE TRIGGER USER; %s;
		DO $$ DECLARE r record; prev bytea;
		BEGIN
			SELECT hash INTO prev FROM audit_log WHERE seq = %[2]d - 1;
			prev := coalesce(prev, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea);
			FOR r IN SELECT * FROM audit_log WHERE seq >= %[2]d ORDER BY seq LOOP
				UPDATE audit_log SET prev_hash = prev,
					hash = sha256(prev || audit_canonical(r.seq, r.at, r.incident_id, r.actor, r.action, r.detail))
				WHERE seq = r.seq RETURNING hash INTO prev;
			END LOOP;
		END $$;
		ALTER TABLE audit_log ENABLE TRIGGER USER`, edit, seq))
	require.NoError(t, err)
}
