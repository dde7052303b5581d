package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/breachflow/breachflow/internal/store"
)

type ctxKey int

const keyCtx ctxKey = iota

// caller returns the API key that authenticated the request.
func caller(r *http.Request) store.APIKey {
	k, _ := r.Context().Value(keyCtx).(store.APIKey)
	return k
}

// auth admits requests whose bearer key has one of roles; failures are logged by key id
// (never the key) and audited.
func (s *Server) auth(h http.HandlerFunc, roles ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r)
		if !ok {
			s.denied(r, "missing bearer key", 0)
			w.Header().Set("WWW-Authenticate", `Bearer realm="breachflow"`)
			writeError(w, http.StatusUnauthorized, Error{Code: "unauthenticated", Message: "send Authorization: Bearer <API key>"})
			return
		}
		k, err := s.Store.Authenticate(r.Context(), token)
		if errors.Is(err, store.ErrInvalidKey) {
			s.denied(r, "unknown or revoked key", 0)
			writeError(w, http.StatusUnauthorized, Error{Code: "unauthenticated", Message: "unknown or revoked API key"})
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if !allowed(k.Role, roles) {
			s.denied(r, "role not allowed", k.ID)
			writeError(w, http.StatusForbidden, Error{Code: "forbidden", Message: "this key's role may not do that"})
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), keyCtx, k)))
	}
}

// bearer returns the request's bearer token; the scheme name is case-insensitive (RFC 7235).
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if len(h) < len("Bearer ") || !strings.EqualFold(h[:len("Bearer ")], "Bearer ") {
		return "", false
	}
	token := h[len("Bearer "):]
	return token, token != ""
}

func allowed(role string, roles []string) bool {
	if role == "admin" || slices.Contains(roles, role) {
		return true
	}
	return strings.HasPrefix(role, "partner:") && slices.Contains(roles, "partner")
}

func (s *Server) denied(r *http.Request, reason string, keyID int64) {
	s.Logger.Warn("access denied", zap.String("path", r.URL.Path), zap.String("reason", reason), zap.Int64("key_id", keyID))
	detail := map[string]any{"method": r.Method, "path": r.URL.Path, "reason": reason}
	if keyID != 0 {
		detail["key_id"] = keyID
	}
	if _, err := s.Store.AppendAudit(r.Context(), store.AuditEntry{Actor: "anonymous", Action: "auth.denied", Detail: detail}); err != nil {
		s.Logger.Error("audit denied access", zap.Error(err))
	}
}
