package console

import (
	"net/http"

	"github.com/breachflow/breachflow/internal/evidence"
	"github.com/breachflow/breachflow/internal/store"
)

// auditData is the audit page: the verification just run and the newest checkpoints.
type auditData struct {
	V           evidence.Verification
	Checkpoints []store.Checkpoint
}

// auditNewest is how many checkpoints the page lists.
const auditNewest = 20

// auditPage verifies the audit chain against its checkpoints, as `breachflow audit verify`
// does, and shows the verdict, what could not be checked and the newest checkpoints.
func (c *Console) auditPage(w http.ResponseWriter, r *http.Request) {
	v, err := c.API.VerifyAudit(r.Context(), callerOf(r).key)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	cps, err := c.Store.LatestCheckpoints(r.Context(), auditNewest)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "audit", page{Title: "Audit trail", Data: auditData{V: v, Checkpoints: cps}})
}
