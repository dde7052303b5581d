package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/breachflow/breachflow/internal/authz"
	"github.com/breachflow/breachflow/internal/store"
)

type ctxKey int

const keyCtx ctxKey = iota

// caller returns the API key that authenticated the request.
func caller(r *http.Request) store.APIKey {
	k, _ := r.Context().Value(keyCtx).(store.APIKey)
	return k
}

// auth admits requests whose bearer key may take action; the route's pattern, never its
// raw path, names denials in the audit trail.
func (s *Server) auth(h http.HandlerFunc, action authz.Action, pattern string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r)
		if !ok {
			s.Deny(r, pattern, "missing bearer key", 0)
			w.Header().Set("WWW-Authenticate", `Bearer realm="breachflow"`)
			writeError(w, http.StatusUnauthorized, Error{Code: "unauthenticated", Message: "send Authorization: Bearer <API key>"})
			return
		}
		k, err := s.Store.Authenticate(r.Context(), token)
		if errors.Is(err, store.ErrInvalidKey) {
			s.Deny(r, pattern, "unknown or revoked key", 0)
			writeError(w, http.StatusUnauthorized, Error{Code: "unauthenticated", Message: "unknown or revoked API key"})
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if err := authz.Check(k.Roles, action); err != nil {
			s.Deny(r, pattern, "role not allowed: "+string(action), k.ID)
			writeError(w, http.StatusForbidden, Error{Code: "forbidden", Message: "this key's roles (" + strings.Join(k.Roles, ", ") + ") may not " + string(action)})
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
