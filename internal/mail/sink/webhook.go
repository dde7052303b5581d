package sink

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
)

// Event Webhook headers, as SendGrid sends them.
const (
	// SignatureHeader carries the base64 DER ECDSA signature over timestamp + body.
	SignatureHeader = "X-Twilio-Email-Event-Webhook-Signature"
	// TimestampHeader carries the signed unix time.
	TimestampHeader = "X-Twilio-Email-Event-Webhook-Timestamp"
)

// reservedEventKeys are event fields a custom arg must not overwrite when flattened.
var reservedEventKeys = map[string]struct{}{
	"email": {}, "timestamp": {}, "event": {}, "sg_event_id": {}, "sg_message_id": {}, "smtp-id": {},
	"reason": {}, "status": {}, "response": {}, "attempt": {}, "type": {}, "category": {},
	"ip": {}, "tls": {}, "useragent": {}, "url": {}, "asm_group_id": {},
}

// outcome is what happens to one recipient.
type outcome int

const (
	outcomeDelivered outcome = iota
	outcomeDeferred
	outcomeBounced
	outcomeDropped
)

// poster turns accepted requests into signed Event Webhook batches. One goroutine owns the
// batch; Mail Send only hands it pages through a bounded queue and never waits for it.
type poster struct {
	url      string
	key      *ecdsa.PrivateKey
	client   *http.Client
	log      *zap.Logger
	batchMax int
	maxBytes int
	interval time.Duration
	attempts int
	backoff  time.Duration
	timeout  time.Duration
	bounce   []addrPattern
	drop     []addrPattern
	deferred []addrPattern

	queue   chan *storedPage
	flushes chan chan struct{}
	stop    chan struct{}
	done    chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc

	closed atomic.Bool

	batch  []byte
	count  int
	idBase [8]byte
	idSeq  uint64

	events  atomic.Uint64
	batches atomic.Uint64
	failed  atomic.Uint64
	dropped atomic.Uint64
}

func newPoster(cfg Config, key *ecdsa.PrivateKey, log *zap.Logger) (*poster, error) {
	ctx, cancel := context.WithCancel(context.Background())
	p := &poster{
		url:      cfg.WebhookURL,
		key:      key,
		client:   &http.Client{Timeout: cfg.WebhookTimeout},
		log:      log,
		batchMax: cfg.WebhookBatchSize,
		maxBytes: cfg.WebhookBatchBytes,
		interval: cfg.WebhookInterval,
		attempts: cfg.WebhookAttempts,
		backoff:  cfg.WebhookBackoff,
		timeout:  cfg.WebhookTimeout,
		bounce:   compilePatterns(cfg.BouncePatterns),
		drop:     compilePatterns(cfg.DropPatterns),
		deferred: compilePatterns(cfg.DeferPatterns),
		queue:    make(chan *storedPage, cfg.WebhookQueue),
		flushes:  make(chan chan struct{}),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		ctx:      ctx,
		cancel:   cancel,
	}
	if _, err := rand.Read(p.idBase[:]); err != nil {
		cancel()
		return nil, fmt.Errorf("sink: event id prefix: %w", err)
	}
	return p, nil
}

// addrPattern is a case-insensitive address glob (path.Match syntax). The usual shapes,
// "*@domain" and a plain address, skip path.Match, whose '*' costs quadratic time per address.
type addrPattern struct {
	glob   string
	suffix string // set when glob is '*' followed by a literal
	exact  bool   // glob has no metacharacters
}

func compilePatterns(globs []string) []addrPattern {
	out := make([]addrPattern, len(globs))
	for i, g := range globs {
		g = lowerASCII(g)
		out[i] = addrPattern{glob: g}
		switch {
		case !strings.ContainsAny(g, `*?[\`):
			out[i].exact = true
		case g[0] == '*' && !strings.ContainsAny(g[1:], `*?[\`):
			out[i].suffix = g[1:]
		}
	}
	return out
}

func (p addrPattern) match(addr string) bool {
	switch {
	case p.exact:
		return addr == p.glob
	case p.suffix != "":
		return strings.HasSuffix(addr, p.suffix) && !strings.Contains(addr[:len(addr)-len(p.suffix)], "/")
	default:
		ok, _ := path.Match(p.glob, addr)
		return ok
	}
}

// enqueue hands a page to the poster, or drops its events if the queue is full.
func (p *poster) enqueue(page *storedPage) {
	if p.closed.Load() {
		return
	}
	select {
	case p.queue <- page:
	default:
		p.dropped.Add(uint64(len(page.pers)))
		p.log.Warn("webhook queue full, events dropped",
			zap.String("message_id", page.id), zap.Int("personalizations", len(page.pers)))
	}
}

// flush posts everything queued so far and returns when done, or when ctx ends.
func (p *poster) flush(ctx context.Context) error {
	ack := make(chan struct{})
	select {
	case p.flushes <- ack:
	case <-p.done:
		return errors.New("sink: webhook poster closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ack:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *poster) close() {
	p.closed.Store(true)
	close(p.stop)
	t := time.NewTimer(p.timeout)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		// The receiver is slow or gone: abort the posts in flight.
		p.cancel()
		<-p.done
	}
	p.cancel()
}

func (p *poster) run() {
	defer close(p.done)
	ticker := time.NewTicker(p.interval)
	defer ticker.Stop()
	for {
		select {
		case page := <-p.queue:
			p.add(page)
		case <-ticker.C:
			p.post()
		case ack := <-p.flushes:
			p.drain()
			p.post()
			close(ack)
		case <-p.stop:
			p.drain()
			p.post()
			return
		}
	}
}

func (p *poster) drain() {
	for {
		select {
		case page := <-p.queue:
			p.add(page)
		default:
			return
		}
	}
}

// add appends the page's events, posting whenever the batch is full (by count or size).
func (p *poster) add(page *storedPage) {
	ts := page.at.Unix()
	for i := range page.pers {
		ps := &page.pers[i]
		args := page.argPairs(i)
		j := 0
		for _, list := range [...][]sgAddress{ps.To, ps.CC, ps.BCC} {
			for _, a := range list {
				msgID := sgMessageID(page.id, i, j)
				j++
				switch p.outcome(a.Email) {
				case outcomeDropped:
					p.event(a.Email, ts, "dropped", msgID, args, "reason", "Bounced Address")
				case outcomeBounced:
					p.event(a.Email, ts, "processed", msgID, args)
					p.event(a.Email, ts, "bounce", msgID, args,
						"reason", "550 5.1.1 The email account that you tried to reach does not exist.",
						"status", "5.1.1", "type", "bounce")
				case outcomeDeferred:
					p.event(a.Email, ts, "processed", msgID, args)
					p.event(a.Email, ts, "deferred", msgID, args,
						"response", "451 4.7.1 Please try again later", "attempt", "1")
					p.event(a.Email, ts, "delivered", msgID, args, "response", "250 OK")
				default:
					p.event(a.Email, ts, "processed", msgID, args)
					p.event(a.Email, ts, "delivered", msgID, args, "response", "250 OK")
				}
			}
		}
	}
}

func (p *poster) outcome(addr string) outcome {
	addr = lowerASCII(addr)
	switch {
	case matchAny(p.drop, addr):
		return outcomeDropped
	case matchAny(p.bounce, addr):
		return outcomeBounced
	case matchAny(p.deferred, addr):
		return outcomeDeferred
	default:
		return outcomeDelivered
	}
}

func matchAny(patterns []addrPattern, s string) bool {
	for _, p := range patterns {
		if p.match(s) {
			return true
		}
	}
	return false
}

// event appends one event object to the batch: SendGrid's fields, extra key/value pairs, then
// the custom args flattened into the object as SendGrid does.
func (p *poster) event(email string, ts int64, kind, msgID string, args []string, extra ...string) {
	b := p.batch
	if p.count == 0 {
		b = append(b[:0], '[')
	} else {
		b = append(b, ',')
	}
	b = append(b, `{"email":`...)
	b = appendJSONString(b, email)
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, `,"event":`...)
	b = appendJSONString(b, kind)
	b = append(b, `,"sg_event_id":"`...)
	b = p.appendEventID(b)
	b = append(b, `","sg_message_id":`...)
	b = appendJSONString(b, msgID)
	// Message ids are base64url, digits and dots: nothing to escape.
	b = append(b, `,"smtp-id":"<`...)
	b = append(b, msgID...)
	b = append(b, `@sink.invalid>"`...)
	for k := 0; k+1 < len(extra); k += 2 {
		b = append(b, ',')
		b = appendJSONString(b, extra[k])
		b = append(b, ':')
		b = appendJSONString(b, extra[k+1])
	}
	for k := 0; k+1 < len(args); k += 2 {
		if _, reserved := reservedEventKeys[args[k]]; reserved {
			continue
		}
		b = append(b, ',')
		b = appendJSONString(b, args[k])
		b = append(b, ':')
		b = appendJSONString(b, args[k+1])
	}
	b = append(b, '}')
	p.batch = b
	p.count++
	// Like SendGrid, post once the batch holds its count or its size: a post is never more
	// than maxBytes plus the event that reached it (and the closing bracket).
	if p.count >= p.batchMax || len(p.batch) >= p.maxBytes {
		p.post()
	}
}

// appendEventID appends a unique 22-character sg_event_id.
func (p *poster) appendEventID(b []byte) []byte {
	var raw [16]byte
	copy(raw[:8], p.idBase[:])
	p.idSeq++
	binary.BigEndian.PutUint64(raw[8:], p.idSeq)
	return base64.RawURLEncoding.AppendEncode(b, raw[:])
}

// maxWebhookBackoff caps the wait between two posts of a batch.
const maxWebhookBackoff = 10 * time.Second

// post sends the batch, retrying with backoff, then starts a new one either way.
func (p *poster) post() {
	if p.count == 0 {
		return
	}
	body := append(p.batch, ']')
	n := p.count
	// A fresh buffer: the transport may still read a request body after Do returns.
	p.batch, p.count = make([]byte, 0, cap(body)), 0
	backoff := p.backoff
	var err error
	for attempt := 1; attempt <= p.attempts; attempt++ {
		if err = p.send(body); err == nil {
			p.events.Add(uint64(n))
			p.batches.Add(1)
			return
		}
		if attempt == p.attempts || p.ctx.Err() != nil {
			break
		}
		p.log.Warn("webhook post failed, retrying",
			zap.Int("attempt", attempt), zap.Int("events", n), zap.Error(err))
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-p.ctx.Done():
			t.Stop()
		}
		backoff = min(2*backoff, maxWebhookBackoff)
	}
	p.failed.Add(uint64(n))
	p.log.Error("webhook batch given up", zap.Int("events", n), zap.Error(err))
}

// send signs and posts one body. The timestamp is taken per attempt so a retried batch is not
// refused as stale.
func (p *poster) send(body []byte) error {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	h := sha256.New()
	h.Write([]byte(ts))
	h.Write(body)
	sig, err := ecdsa.SignASN1(rand.Reader, p.key, h.Sum(nil))
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	req, err := http.NewRequestWithContext(p.ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "SendGrid Event API")
	req.Header.Set(SignatureHeader, base64.StdEncoding.EncodeToString(sig))
	req.Header.Set(TimestampHeader, ts)
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook answered %d", resp.StatusCode)
	}
	return nil
}

// appendJSONString appends s as a JSON string, escaping as encoding/json does (including <, >
// and &) and replacing invalid UTF-8.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
