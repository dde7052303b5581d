package api

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits are request rates (per second) and bursts. A zero burst takes the rate and burst
// of DefaultLimits for that bucket.
type Limits struct {
	// PerAddress and PerKey bound the JSON API per client address and per API key.
	PerAddress, PerKey     rate.Limit
	AddressBurst, KeyBurst int
	// Ack bounds, per address, the acknowledgement requests that look their link up in the
	// database, found or not: it keeps a flood of well-formed links off PostgreSQL.
	Ack      rate.Limit
	AckBurst int
	// AckBad bounds, per address, the links looked up and not found. While it lasts they
	// get the 404 page; once it is spent they get 429, and links that are found still work.
	AckBad      rate.Limit
	AckBadBurst int
	// Webhook bounds SendGrid Event Webhook posts per address.
	Webhook      rate.Limit
	WebhookBurst int
}

// DefaultLimits suit a responder team, customers following links and SendGrid's posts.
//
// Acknowledgement links: a contact opens the page, maybe reloads it or opens it in a second
// tab, and posts once; several contacts of a tenant, or several tenants behind one office
// address, follow theirs within minutes. Thirty lookups at once and one a second after
// that is far more than people do and nothing for PostgreSQL (a primary-key probe each).
// Links that are not found are mistyped or truncated ones, expired ones, or guesses: ten
// at once and one a minute after that answer a person's mistakes with the 404 page and
// tell a script to go away, without costing the customer with a good link anything.
//
// Event Webhook: SendGrid posts a batch per sending server every 30 seconds or as soon as
// it holds 768 KB, and a large notification fans out over many of its servers, each from
// its own address. A burst of 50 and 20 posts a second per address is an order of magnitude
// above what one of its servers posts during a million-recipient pass (a few hundred
// messages a second is a batch every second or two); SendGrid retries anything but a 2xx
// for 24 hours, so a post refused with 429 comes back later rather than being lost. The
// limit is checked before the body is read or its signature verified, so an unauthenticated
// sender costs at most 20 capped bodies a second per address.
var DefaultLimits = Limits{PerAddress: 20, AddressBurst: 60, PerKey: 50, KeyBurst: 100,
	Ack: 1, AckBurst: 30, AckBad: 1.0 / 60, AckBadBurst: 10, Webhook: 20, WebhookBurst: 50}

// Limiter keeps one token bucket per client address, per API key, and per address for
// acknowledgement lookups, unknown acknowledgement links and webhook posts.
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

// NewLimiter builds a Limiter; zero bursts take DefaultLimits' values.
func NewLimiter(l Limits) *Limiter {
	d := DefaultLimits
	for _, b := range []struct {
		r      *rate.Limit
		burst  *int
		dr     rate.Limit
		dburst int
	}{
		{&l.PerAddress, &l.AddressBurst, d.PerAddress, d.AddressBurst},
		{&l.PerKey, &l.KeyBurst, d.PerKey, d.KeyBurst},
		{&l.Ack, &l.AckBurst, d.Ack, d.AckBurst},
		{&l.AckBad, &l.AckBadBurst, d.AckBad, d.AckBadBurst},
		{&l.Webhook, &l.WebhookBurst, d.Webhook, d.WebhookBurst},
	} {
		if *b.burst == 0 {
			*b.r, *b.burst = b.dr, b.dburst
		}
	}
	return &Limiter{limits: l, buckets: map[string]*bucket{}}
}

// allow reports whether the bucket named key (created with rate r and burst b) has a
// token, taking it, and otherwise how long until it will have one.
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

// clientAddr is the address limits and denials are counted by: the trusted proxy's
// header when one is configured, otherwise the TCP peer.
func (s *Server) clientAddr(r *http.Request) string {
	if s.ClientHeader != "" {
		if v := r.Header.Values(s.ClientHeader); len(v) > 0 {
			// The proxy appends the address it saw: the last entry is the one to trust.
			parts := strings.Split(v[len(v)-1], ",")
			if a := strings.TrimSpace(parts[len(parts)-1]); a != "" {
				return a
			}
		}
	}
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
			if ok, wait := s.Limits.allow("addr:"+s.clientAddr(r), lim.PerAddress, lim.AddressBurst); !ok {
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

// limitedAck guards the acknowledgement pages. A valid link must keep working for a
// customer whatever else comes from their address, and a flood of made-up links must not
// reach PostgreSQL; the server cannot tell a valid link from a made-up one without looking
// it up, so the order is:
//
//  1. A malformed token (not 64 lowercase hex digits) goes on to the 404 page without a
//     lookup and without spending anything: it costs nothing to refuse.
//  2. Every lookup spends the address's Ack bucket first, before the query, so concurrent
//     requests cannot overshoot it. This is what keeps the database safe: however a client
//     mixes good and bad links, it gets at most AckBurst lookups at once and Ack a second.
//     It is generous, so only a sustained flood empties it.
//  3. A link not found spends the address's AckBad bucket (ackNotFound): the first
//     AckBadBurst misses get the 404 page, later ones 429. A link found never looks at
//     AckBad, so a customer whose own typos, mail scanner or colleague spent it still gets
//     in with the right link.
//
// The price of step 2 is that a client flooding from the customer's own address (its NAT,
// or its entry of the trusted proxy's header) can keep that address's lookups refused
// while it floods; bad links alone cannot, as they run out of AckBad long before Ack.
func (s *Server) limitedAck(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.Limits != nil && tokenRe.MatchString(r.PathValue("token")) {
			lim := s.Limits.limits
			if ok, wait := s.Limits.allow("ack:"+s.clientAddr(r), lim.Ack, lim.AckBurst); !ok {
				tooMany(w, wait)
				return
			}
		}
		h(w, r)
	}
}

// ackNotFound counts a link looked up and not found against the client's address; false
// means the address has used up its AckBad bucket and the 429 is written.
func (s *Server) ackNotFound(w http.ResponseWriter, r *http.Request) bool {
	if s.Limits == nil {
		return true
	}
	lim := s.Limits.limits
	if ok, wait := s.Limits.allow("ackbad:"+s.clientAddr(r), lim.AckBad, lim.AckBadBurst); !ok {
		tooMany(w, wait)
		return false
	}
	return true
}

// webhookAllowed applies the per-address limit of the Event Webhook; false means the 429
// is written.
func (s *Server) webhookAllowed(w http.ResponseWriter, r *http.Request) bool {
	if s.Limits == nil {
		return true
	}
	lim := s.Limits.limits
	if ok, wait := s.Limits.allow("hook:"+s.clientAddr(r), lim.Webhook, lim.WebhookBurst); !ok {
		tooMany(w, wait)
		return false
	}
	return true
}
