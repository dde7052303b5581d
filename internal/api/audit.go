package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/breachflow/breachflow/internal/authz"
	"github.com/breachflow/breachflow/internal/evidence"
	"github.com/breachflow/breachflow/internal/store"
)

// VerifyAudit verifies the audit chain and every checkpoint against it for k, checking
// checkpoint signatures with the server's trusted keys; when the chain checks out and
// the server can sign, the verified head is checkpointed.
func (s *Server) VerifyAudit(ctx context.Context, k store.APIKey) (evidence.Verification, error) {
	if err := authz.Check(k.Roles, authz.AuditVerify); err != nil {
		return evidence.Verification{}, err
	}
	return evidence.VerifyAudit(ctx, s.Store, s.AuditKeys, nil, time.Now())
}

// CheckpointList is a page of audit checkpoints, to publish: copies kept elsewhere let a
// later verification (breachflow audit verify --checkpoints) find a rewrite even if the
// stored checkpoints were deleted with it.
type CheckpointList struct {
	Checkpoints []store.Checkpoint `json:"checkpoints"`
	// PublicKeys are the keys the server trusts, by key id (base64 Ed25519).
	PublicKeys map[string]string `json:"public_keys"`
	// Next is the ?after= of the next page; 0 on the last.
	Next int64 `json:"next,omitempty"`
}

// AuditCheckpoints returns up to limit checkpoints with an id above after, oldest first.
func (s *Server) AuditCheckpoints(ctx context.Context, k store.APIKey, after int64, limit int) (CheckpointList, error) {
	if err := authz.Check(k.Roles, authz.AuditVerify); err != nil {
		return CheckpointList{}, err
	}
	cps, err := s.Store.Checkpoints(ctx, after, limit)
	if err != nil {
		return CheckpointList{}, err
	}
	out := CheckpointList{Checkpoints: cps, PublicKeys: s.AuditKeys.PublicKeys()}
	if out.Checkpoints == nil {
		out.Checkpoints = []store.Checkpoint{}
	}
	if len(cps) == limit {
		out.Next = cps[len(cps)-1].ID
	}
	return out, nil
}

func (s *Server) auditVerify(w http.ResponseWriter, r *http.Request) {
	v, err := s.VerifyAudit(r.Context(), caller(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) auditCheckpoints(w http.ResponseWriter, r *http.Request) {
	var after int64
	if v := r.URL.Query().Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			s.fail(w, r, &store.FieldError{Field: "after", Message: "want a checkpoint id"})
			return
		}
		after = n
	}
	limit, err := intParam(r, "limit", 1000, 10000)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out, err := s.AuditCheckpoints(r.Context(), caller(r), after, limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
