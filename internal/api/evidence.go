package api

import (
	"context"
	"io"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/breachflow/breachflow/internal/authz"
	"github.com/breachflow/breachflow/internal/evidence"
	"github.com/breachflow/breachflow/internal/store"
)

// ExportEvidence writes incident id's evidence pack for k to w (one tenant's when tenant
// is not empty): a zip whose manifest, signed with the server's audit key, lists the
// SHA-256 of every file. Nothing is written when the incident or the tenant is unknown
// (store.ErrNotFound). progress is called after each tenant file.
func (s *Server) ExportEvidence(ctx context.Context, k store.APIKey, id, tenant string, w io.Writer, progress func()) (evidence.Manifest, error) {
	if err := authz.Check(k.Roles, authz.EvidenceExport); err != nil {
		return evidence.Manifest{}, err
	}
	inc, err := s.incident(ctx, id)
	if err != nil {
		return evidence.Manifest{}, err
	}
	return evidence.WritePack(ctx, s.Store, w, evidence.PackOptions{IncidentID: inc.ID, TenantID: tenant, Actor: k.Actor(),
		PublicURL: s.PublicURL, Keys: s.AuditKeys, Progress: progress})
}

// zipResponse starts the response on its first write, so that an export refused before
// its first byte still answers with a JSON error.
type zipResponse struct {
	w        http.ResponseWriter
	filename string
	started  bool
}

func (z *zipResponse) Write(p []byte) (int, error) {
	if !z.started {
		z.started = true
		h := z.w.Header()
		h.Set("Content-Type", "application/zip")
		h.Set("Content-Disposition", `attachment; filename="`+z.filename+`"`)
		h.Set("Cache-Control", "no-store")
		z.w.WriteHeader(http.StatusOK)
	}
	return z.w.Write(p)
}

// evidenceWriteWindow is how long each stretch of a pack may take to reach the client:
// the deadline moves on as tenants are written, so a pack of any size streams through a
// server whose write timeout is shorter than the whole export.
const evidenceWriteWindow = time.Minute

func (s *Server) exportEvidence(w http.ResponseWriter, r *http.Request) {
	id, tenant := r.PathValue("id"), r.URL.Query().Get("tenant")
	name := id
	if tenant != "" {
		name += "-" + tenant
	}
	out := &zipResponse{w: w, filename: name + "-evidence.zip"}
	rc := http.NewResponseController(w)
	extend := func() { _ = rc.SetWriteDeadline(time.Now().Add(evidenceWriteWindow)) }
	extend()
	n := 0
	m, err := s.ExportEvidence(r.Context(), caller(r), id, tenant, out, func() {
		if n++; n%100 == 0 {
			extend()
		}
	})
	switch {
	case err != nil && !out.started:
		s.fail(w, r, err)
	case err != nil:
		// The status line is gone; the pack lacks its manifest, so it cannot verify.
		s.Logger.Error("evidence export cut short", zap.String("incident_id", id), zap.Error(err))
	default:
		s.Logger.Info("evidence exported", zap.String("incident_id", id), zap.Int("tenants", m.Tenants), zap.Bool("signed", m.KeyID != ""))
	}
}
