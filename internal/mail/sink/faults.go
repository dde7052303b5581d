package sink

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// maxLatency bounds injected latency so a typo cannot hang a test run.
const maxLatency = time.Minute

// Faults are failures the sink injects into Mail Send. The zero value injects none.
type Faults struct {
	// RateLimitShare is the share (0..1) of requests answered 429.
	RateLimitShare float64 `json:"rate_limit_share"`
	// RateLimitResetSeconds is how far ahead X-RateLimit-Reset points on an injected 429 (default 1).
	RateLimitResetSeconds int `json:"rate_limit_reset_seconds"`
	// ServerErrorShare is the share (0..1) of requests answered 500.
	ServerErrorShare float64 `json:"server_error_share"`
	// LatencyMillis is added before every Mail Send answer.
	LatencyMillis int `json:"latency_ms"`
	// AnswerDelayMillis holds the answer of every accepted request this long after the
	// mail is accepted (and its events queued): a client that gives up or dies meanwhile
	// has sent mail it never heard of, as when SendGrid's answer is lost.
	AnswerDelayMillis int `json:"answer_delay_ms"`
	// OutageUntil answers every Mail Send request 503 until this time.
	OutageUntil time.Time `json:"outage_until,omitzero"`
}

// faultsUpdate is the body of POST /sink/faults: Faults, plus an outage relative to now and a
// new seed for the dice.
type faultsUpdate struct {
	Faults
	OutageSeconds float64 `json:"outage_seconds"`
	Seed          uint64  `json:"seed"`
}

func (f Faults) validate() error {
	switch {
	case f.RateLimitShare < 0 || f.RateLimitShare > 1:
		return errors.New("rate_limit_share must be within 0..1")
	case f.ServerErrorShare < 0 || f.ServerErrorShare > 1:
		return errors.New("server_error_share must be within 0..1")
	case f.RateLimitResetSeconds < 0:
		return errors.New("rate_limit_reset_seconds must not be negative")
	case f.LatencyMillis < 0 || time.Duration(f.LatencyMillis)*time.Millisecond > maxLatency:
		return fmt.Errorf("latency_ms must be within 0..%d", maxLatency.Milliseconds())
	case f.AnswerDelayMillis < 0 || time.Duration(f.AnswerDelayMillis)*time.Millisecond > maxLatency:
		return fmt.Errorf("answer_delay_ms must be within 0..%d", maxLatency.Milliseconds())
	}
	return nil
}

func (f Faults) latency() time.Duration { return time.Duration(f.LatencyMillis) * time.Millisecond }

func (f Faults) resetAfter() time.Duration {
	if f.RateLimitResetSeconds <= 0 {
		return time.Second
	}
	return time.Duration(f.RateLimitResetSeconds) * time.Second
}

// faultState holds the current faults and the dice, seeded so that a sequence of requests
// meets the same faults on every run.
type faultState struct {
	mu  sync.Mutex
	cur Faults
	rng *rand.Rand
}

func newFaultState(f Faults, seed uint64) *faultState {
	return &faultState{cur: f, rng: newRNG(seed)}
}

func newRNG(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

func (fs *faultState) get() Faults {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.cur
}

func (fs *faultState) set(f Faults, seed uint64) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.cur = f
	if seed != 0 {
		fs.rng = newRNG(seed)
	}
}

// fault is what a request meets.
type fault int

const (
	faultNone fault = iota
	faultRateLimit
	faultServerError
)

// roll decides the fault of one request. Shares of 0 and 1 never touch the dice, so tests that
// use them do not depend on the seed.
func (fs *faultState) roll(f Faults) fault {
	if f.RateLimitShare <= 0 && f.ServerErrorShare <= 0 {
		return faultNone
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if hit(fs.rng, f.RateLimitShare) {
		return faultRateLimit
	}
	if hit(fs.rng, f.ServerErrorShare) {
		return faultServerError
	}
	return faultNone
}

func hit(rng *rand.Rand, share float64) bool {
	switch {
	case share <= 0:
		return false
	case share >= 1:
		return true
	default:
		return rng.Float64() < share
	}
}

// limiter is a fixed-window request counter behind the X-RateLimit-* headers.
type limiter struct {
	mu     sync.Mutex
	limit  int
	window time.Duration
	start  time.Time
	used   int
}

// rateState is what the X-RateLimit-* headers report.
type rateState struct {
	limit     int
	remaining int
	reset     time.Time
}

// take counts one request; ok is false when the window is used up.
func (l *limiter) take(now time.Time) (rateState, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll(now)
	ok := l.used < l.limit
	if ok {
		l.used++
	}
	return l.state(), ok
}

// peek reports without counting.
func (l *limiter) peek(now time.Time) rateState {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roll(now)
	return l.state()
}

func (l *limiter) roll(now time.Time) {
	if now.Sub(l.start) >= l.window || now.Before(l.start) {
		l.start = now.Truncate(l.window)
		l.used = 0
	}
}

func (l *limiter) state() rateState {
	return rateState{limit: l.limit, remaining: l.limit - l.used, reset: l.start.Add(l.window)}
}
