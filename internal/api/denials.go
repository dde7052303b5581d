package api

import (
	"context"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/breachflow/breachflow/internal/store"
)

// DefaultDenialWindow is how long denials of one address on one route are counted
// before they are written to the audit trail as one row.
const DefaultDenialWindow = time.Minute

// denials counts refused requests per (address, route pattern, reason, key) and writes
// one audit row per window for each, so a flood of refused requests costs the audit
// trail a row a minute per address and route, whatever their paths hold.
type denials struct {
	mu      sync.Mutex
	pending map[denialKey]int
	armed   bool
}

type denialKey struct {
	addr, route, reason string
	keyID               int64
}

// Deny records a refused request for the audit trail under its route pattern.
func (s *Server) Deny(r *http.Request, pattern, reason string, keyID int64) {
	s.Logger.Warn("access denied", zap.String("route", pattern), zap.String("reason", reason), zap.Int64("key_id", keyID))
	d := &s.denied
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pending == nil {
		d.pending = map[denialKey]int{}
	}
	d.pending[denialKey{addr: s.clientAddr(r), route: pattern, reason: reason, keyID: keyID}]++
	if !d.armed {
		d.armed = true
		window := s.DenialWindow
		if window <= 0 {
			window = DefaultDenialWindow
		}
		time.AfterFunc(window, s.flushDenials)
	}
}

// flushDenials writes what the window counted. It runs outside any request, so it has
// a context of its own.
func (s *Server) flushDenials() {
	d := &s.denied
	d.mu.Lock()
	batch := d.pending
	d.pending, d.armed = nil, false
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for k, n := range batch {
		detail := map[string]any{"route": k.route, "address": k.addr, "reason": k.reason, "count": n}
		if k.keyID != 0 {
			detail["key_id"] = k.keyID
		}
		if _, err := s.Store.AppendAudit(ctx, store.AuditEntry{Actor: "anonymous", Action: "auth.denied", Detail: detail}); err != nil {
			s.Logger.Error("audit denied access", zap.Error(err))
		}
	}
}

// FlushDenials writes the denials counted so far now (tests, shutdown).
func (s *Server) FlushDenials() { s.flushDenials() }

// Sign-in attempts per address: a person mistyping a key gets a few tries a minute.
const (
	signInRate  rate.Limit = 0.1
	signInBurst int        = 5
)

// AllowSignIn reports whether the request's address may try a console sign-in now, and
// otherwise how long until it may.
func (s *Server) AllowSignIn(r *http.Request) (bool, time.Duration) {
	if s.Limits == nil {
		return true, 0
	}
	return s.Limits.allow("signin:"+s.clientAddr(r), signInRate, signInBurst)
}
