package api

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits are request rates (per second) and bursts.
type Limits struct {
	PerAddress, PerKey, Ack          rate.Limit
	AddressBurst, KeyBurst, AckBurst int
}

// DefaultLimits suit a responder team and customers following links.
var DefaultLimits = Limits{PerAddress: 20, AddressBurst: 60, PerKey: 50, KeyBurst: 100, Ack: 0.5, AckBurst: 10}

// Limiter keeps one token bucket per client address, per API key and per address on /ack/.
type Limiter struct {
	limits  Limits
	mu      sync.Mutex
	buckets map[string]*bucket
	sweep   time.Time
}

type bucket struct {
	l    *rate.Limiter
	seen time.Time
}

// NewLimiter builds a Limiter.
func NewLimiter(l Limits) *Limiter { return &Limiter{limits: l, buckets: map[string]*bucket{}} }

// allow reports whether the bucket named key (created with rate r and burst b) has a
// token, and otherwise how long until it will.
func (l *Limiter) allow(key string, r rate.Limit, b int) (bool, time.Duration) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.sweep) > time.Minute {
		for k, v := range l.buckets {
			if now.Sub(v.seen) > 10*time.Minute {
				delete(l.buckets, k)
			}
		}
		l.sweep = now
	}
	bk, ok := l.buckets[key]
	if !ok {
		bk = &bucket{l: rate.NewLimiter(r, b)}
		l.buckets[key] = bk
	}
	bk.seen = now
	res := bk.l.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func tooMany(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	writeError(w, http.StatusTooManyRequests, Error{Code: "rate_limited", Message: "too many requests; retry after the Retry-After seconds"})
}

// limited applies the per-address and per-key limits of the JSON API.
func (s *Server) limited(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.Limits != nil {
			lim := s.Limits.limits
			if ok, wait := s.Limits.allow("addr:"+clientAddr(r), lim.PerAddress, lim.AddressBurst); !ok {
				tooMany(w, wait)
				return
			}
			if token, ok := bearer(r); ok {
				sum := sha256.Sum256([]byte(token))
				if ok, wait := s.Limits.allow("key:"+hex.EncodeToString(sum[:8]), lim.PerKey, lim.KeyBurst); !ok {
					tooMany(w, wait)
					return
				}
			}
		}
		h(w, r)
	}
}

// limitedAck applies the tighter per-address limit of the acknowledgement pages.
func (s *Server) limitedAck(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.Limits != nil {
			lim := s.Limits.limits
			if ok, wait := s.Limits.allow("ack:"+clientAddr(r), lim.Ack, lim.AckBurst); !ok {
				tooMany(w, wait)
				return
			}
		}
		h(w, r)
	}
}
