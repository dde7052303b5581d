// Package sink is a stand-in for SendGrid: it speaks the v3 Mail Send protocol with SendGrid's
// documented validation, keeps what it accepts for viewing, injects rate limits, errors,
// latency and outages on demand, and posts signed Event Webhook events back, so the real
// client and the real webhook verification run end to end without the internet.
//
// Routes of Handler:
//
//	POST   /v3/mail/send          SendGrid Mail Send: 202 + X-Message-Id, or SendGrid's {"errors":[…]}
//	GET    /sink/messages         stored messages as JSON: ?to= ?message_id= ?after= ?offset= ?limit= ?order=newest
//	GET    /sink/messages/{seq}   one stored message as JSON
//	DELETE /sink/messages         forget stored messages (counters carry on)
//	GET    /sink/faults           faults in force
//	POST   /sink/faults           replace them: {"rate_limit_share","rate_limit_reset_seconds",
//	                              "server_error_share","latency_ms","outage_seconds","seed"}
//	GET    /sink/stats            counters
//	GET    /sink/public-key       webhook verification key, base64 DER as SendGrid shows it
//	POST   /sink/flush            post queued webhook events now and wait for them
//	GET    /sink/                 HTML mailbox; /sink/view/{seq} shows one message
//
// Addresses matching Config.BouncePatterns (default *@bounce.invalid) bounce, DropPatterns
// (*@dropped.invalid) are dropped and DeferPatterns (*@deferred.invalid) are deferred once;
// all others are delivered.
package sink

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Defaults applied by New to zero Config fields.
const (
	// DefaultMaxMessages is how many messages are kept before the oldest are evicted.
	DefaultMaxMessages = 100_000
	// DefaultMaxBodyBytes is SendGrid's 30 MB limit on a Mail Send request.
	DefaultMaxBodyBytes = 30 << 20
	// DefaultRateLimit is the number of requests allowed per RateWindow.
	DefaultRateLimit = 10_000
	// DefaultRateWindow is the rate-limit window.
	DefaultRateWindow = time.Second
	// DefaultWebhookBatchSize is the most events in one webhook post.
	DefaultWebhookBatchSize = 1000
	// DefaultWebhookBatchBytes is the size at which a batch is posted, as SendGrid posts
	// when a batch reaches 768 KB: a post is at most this plus one event (under 64 KiB
	// with the largest custom args), which receivers size their body caps on.
	DefaultWebhookBatchBytes = 768 << 10
	// DefaultWebhookInterval is how long events wait for a batch to fill.
	DefaultWebhookInterval = 100 * time.Millisecond
	// DefaultWebhookQueue is how many accepted requests may wait for the webhook poster.
	DefaultWebhookQueue = 1024
	// DefaultWebhookTimeout bounds one webhook post.
	DefaultWebhookTimeout = 10 * time.Second
	// DefaultWebhookAttempts is how often a batch is posted before it is given up: with
	// the backoff doubling to 10 s, about ten minutes, as SendGrid (which retries for a
	// day) keeps posting through a receiver's outage.
	DefaultWebhookAttempts = 64
	// DefaultWebhookBackoff is the wait before the first retry; it doubles per attempt.
	DefaultWebhookBackoff = 200 * time.Millisecond
)

// Default address patterns that produce failure events.
var (
	// DefaultBouncePatterns produce processed then bounce.
	DefaultBouncePatterns = []string{"*@bounce.invalid"}
	// DefaultDropPatterns produce dropped.
	DefaultDropPatterns = []string{"*@dropped.invalid"}
	// DefaultDeferPatterns produce processed, deferred, then delivered.
	DefaultDeferPatterns = []string{"*@deferred.invalid"}
)

// Config configures a Sink. Zero values take the defaults above.
type Config struct {
	// APIKeys are the accepted API keys; empty accepts any non-empty bearer token.
	APIKeys []string
	// ForbiddenKeys are known keys without the mail.send scope: answered 403.
	ForbiddenKeys []string
	// MaxMessages bounds the stored messages (one per personalization); the oldest are evicted.
	MaxMessages int
	// MaxBodyBytes bounds a request body (after gzip decoding); larger ones get 413.
	MaxBodyBytes int64
	// RateLimit is the number of Mail Send requests allowed per RateWindow before 429.
	RateLimit int
	// RateWindow is the fixed window RateLimit applies to.
	RateWindow time.Duration
	// Faults are injected from the start; POST /sink/faults changes them.
	Faults Faults
	// Seed seeds the fault dice, so runs with fractional shares repeat.
	Seed uint64

	// WebhookURL receives signed Event Webhook posts; empty disables them.
	WebhookURL string
	// WebhookPrivateKeyPEM is the ECDSA P-256 signing key (SEC 1 or PKCS #8): the base64
	// of its DER, as keygen prints it, or PEM; empty generates one at start.
	WebhookPrivateKeyPEM string
	// WebhookBatchSize is the most events in one post.
	WebhookBatchSize int
	// WebhookBatchBytes is the size at which a batch is posted whatever its count; keep it
	// well under the receiver's body cap (the API's is 2 MiB).
	WebhookBatchBytes int
	// WebhookInterval is how long events wait for a batch to fill.
	WebhookInterval time.Duration
	// WebhookQueue is how many accepted requests may wait for the poster; beyond it their
	// events are dropped (and counted) rather than slowing Mail Send down.
	WebhookQueue int
	// WebhookTimeout bounds one post, and Close's wait for the last ones.
	WebhookTimeout time.Duration
	// WebhookAttempts is how often a batch is posted before it is given up.
	WebhookAttempts int
	// WebhookBackoff is the wait before the first retry; it doubles per attempt.
	WebhookBackoff time.Duration
	// BouncePatterns are address globs (path.Match, case-insensitive) that bounce; nil means
	// DefaultBouncePatterns, an empty slice none.
	BouncePatterns []string
	// DropPatterns are address globs that are dropped; nil means DefaultDropPatterns.
	DropPatterns []string
	// DeferPatterns are address globs deferred once before delivery; nil means DefaultDeferPatterns.
	DeferPatterns []string
}

// Sink is a SendGrid Mail Send stand-in; see the package documentation.
type Sink struct {
	cfg       Config
	log       *zap.Logger
	keys      map[string]struct{}
	forbidden map[string]struct{}
	store     *store
	faults    *faultState
	limiter   *limiter
	hook      *poster
	priv      *ecdsa.PrivateKey
	pub       string
	handler   http.Handler

	idPrefix [8]byte
	idSeq    atomic.Uint64

	requests atomic.Uint64
	rejected atomic.Uint64
	sandbox  atomic.Uint64

	closeOnce sync.Once
}

// Stats are the sink's counters since it started.
type Stats struct {
	// Requests is the number of Mail Send requests accepted (202).
	Requests uint64 `json:"requests"`
	// Rejected is the number of Mail Send requests answered with an error status.
	Rejected uint64 `json:"rejected"`
	// Sandbox is the number of requests validated in sandbox mode and not stored.
	Sandbox uint64 `json:"sandbox"`
	// Accepted is the number of personalizations ever accepted.
	Accepted uint64 `json:"accepted"`
	// Stored is the number of messages kept now.
	Stored int `json:"stored"`
	// WebhookEvents is the number of events posted successfully.
	WebhookEvents uint64 `json:"webhook_events"`
	// WebhookBatches is the number of successful posts.
	WebhookBatches uint64 `json:"webhook_batches"`
	// WebhookFailedEvents is the number of events given up after all attempts.
	WebhookFailedEvents uint64 `json:"webhook_failed_events"`
	// WebhookDroppedMessages is the number of messages whose events were dropped on a full queue.
	WebhookDroppedMessages uint64 `json:"webhook_dropped_messages"`
	// WebhookQueued is the number of accepted requests waiting for the poster.
	WebhookQueued int `json:"webhook_queued"`
}

// New checks cfg, fills defaults and starts the webhook poster if WebhookURL is set; a nil
// logger logs nothing. Close stops it.
func New(cfg Config, log *zap.Logger) (*Sink, error) {
	if log == nil {
		log = zap.NewNop()
	}
	cfg = withDefaults(cfg)
	if err := cfg.Faults.validate(); err != nil {
		return nil, err
	}
	for _, set := range [][]string{cfg.BouncePatterns, cfg.DropPatterns, cfg.DeferPatterns} {
		for _, p := range set {
			if _, err := path.Match(p, ""); err != nil {
				return nil, fmt.Errorf("sink: address pattern %q: %w", p, err)
			}
		}
	}
	s := &Sink{
		cfg:       cfg,
		log:       log,
		keys:      setOf(cfg.APIKeys),
		forbidden: setOf(cfg.ForbiddenKeys),
		store:     newStore(cfg.MaxMessages),
		faults:    newFaultState(cfg.Faults, cfg.Seed),
		limiter:   &limiter{limit: cfg.RateLimit, window: cfg.RateWindow},
	}
	if _, err := rand.Read(s.idPrefix[:]); err != nil {
		return nil, fmt.Errorf("sink: message id prefix: %w", err)
	}
	var err error
	if cfg.WebhookPrivateKeyPEM != "" {
		s.priv, err = parseWebhookKey(cfg.WebhookPrivateKeyPEM)
	} else {
		s.priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return nil, fmt.Errorf("sink: webhook key: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(&s.priv.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("sink: webhook public key: %w", err)
	}
	s.pub = base64.StdEncoding.EncodeToString(der)
	if cfg.WebhookURL != "" {
		u, err := url.Parse(cfg.WebhookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("sink: webhook URL %q must be an absolute http(s) URL", cfg.WebhookURL)
		}
		s.hook, err = newPoster(cfg, s.priv, log)
		if err != nil {
			return nil, err
		}
		go s.hook.run()
	}
	s.handler = s.routes()
	log.Info("mail sink ready",
		zap.Bool("webhook", s.hook != nil),
		zap.Int("max_messages", cfg.MaxMessages),
		zap.Int("api_keys", len(cfg.APIKeys)))
	return s, nil
}

func withDefaults(cfg Config) Config {
	if cfg.MaxMessages <= 0 {
		cfg.MaxMessages = DefaultMaxMessages
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.RateLimit <= 0 {
		cfg.RateLimit = DefaultRateLimit
	}
	if cfg.RateWindow <= 0 {
		cfg.RateWindow = DefaultRateWindow
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.WebhookBatchSize <= 0 {
		cfg.WebhookBatchSize = DefaultWebhookBatchSize
	}
	if cfg.WebhookBatchBytes <= 0 {
		cfg.WebhookBatchBytes = DefaultWebhookBatchBytes
	}
	if cfg.WebhookInterval <= 0 {
		cfg.WebhookInterval = DefaultWebhookInterval
	}
	if cfg.WebhookQueue <= 0 {
		cfg.WebhookQueue = DefaultWebhookQueue
	}
	if cfg.WebhookTimeout <= 0 {
		cfg.WebhookTimeout = DefaultWebhookTimeout
	}
	if cfg.WebhookAttempts <= 0 {
		cfg.WebhookAttempts = DefaultWebhookAttempts
	}
	if cfg.WebhookBackoff <= 0 {
		cfg.WebhookBackoff = DefaultWebhookBackoff
	}
	if cfg.BouncePatterns == nil {
		cfg.BouncePatterns = DefaultBouncePatterns
	}
	if cfg.DropPatterns == nil {
		cfg.DropPatterns = DefaultDropPatterns
	}
	if cfg.DeferPatterns == nil {
		cfg.DeferPatterns = DefaultDeferPatterns
	}
	return cfg
}

func setOf(items []string) map[string]struct{} {
	m := make(map[string]struct{}, len(items))
	for _, it := range items {
		m[it] = struct{}{}
	}
	return m
}

// Handler serves the Mail Send API and the /sink/ pages.
func (s *Sink) Handler() http.Handler { return s.handler }

// PublicKey is the webhook verification key as SendGrid shows it: base64 of the DER public key.
func (s *Sink) PublicKey() string { return s.pub }

// Stats returns the counters.
func (s *Sink) Stats() Stats {
	st := Stats{
		Requests: s.requests.Load(),
		Rejected: s.rejected.Load(),
		Sandbox:  s.sandbox.Load(),
	}
	st.Accepted, st.Stored = s.store.counts()
	if s.hook != nil {
		st.WebhookEvents = s.hook.events.Load()
		st.WebhookBatches = s.hook.batches.Load()
		st.WebhookFailedEvents = s.hook.failed.Load()
		st.WebhookDroppedMessages = s.hook.dropped.Load()
		st.WebhookQueued = len(s.hook.queue)
	}
	return st
}

// Close stops the webhook poster after it has posted what is queued, waiting at most
// WebhookTimeout for that. Mail Send keeps working but posts no more events. Close is idempotent.
func (s *Sink) Close() error {
	s.closeOnce.Do(func() {
		if s.hook != nil {
			s.hook.close()
		}
	})
	return nil
}

// GenerateKey makes an ECDSA P-256 key pair for the webhook: the private key as PKCS #8 PEM
// (for Config.WebhookPrivateKeyPEM) and the public key as SendGrid shows it.
func GenerateKey() (privatePEM, publicKey string, err error) {
	b64, publicKey, err := GenerateKeyBase64()
	if err != nil {
		return "", "", err
	}
	der, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), publicKey, nil
}

func parsePrivateKey(s string) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, err
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("not an ECDSA P-256 key")
	}
	return ec, nil
}
