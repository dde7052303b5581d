// Package mail sends incident notices through SendGrid's v3 Mail Send API and verifies the
// events SendGrid posts back through its signed Event Webhook.
package mail

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sendgrid/rest"
	"github.com/sendgrid/sendgrid-go"
	sgmail "github.com/sendgrid/sendgrid-go/helpers/mail"
	"go.uber.org/zap"
)

// DefaultBaseURL is SendGrid's global API host.
const DefaultBaseURL = "https://api.sendgrid.com"

// DefaultTimeout bounds one Mail Send call when Config leaves Timeout zero.
const DefaultTimeout = 30 * time.Second

// sendPath is the Mail Send endpoint.
const sendPath = "/v3/mail/send"

// Config configures a Sender.
type Config struct {
	// APIKey is the SendGrid API key with the mail.send scope.
	APIKey string
	// BaseURL is the API host, e.g. https://api.sendgrid.com or a mail sink; default DefaultBaseURL.
	BaseURL string
	// FromEmail is the verified sender address.
	FromEmail string
	// FromName is the sender's display name; may be empty.
	FromName string
	// Timeout bounds each HTTP call; default DefaultTimeout.
	Timeout time.Duration
}

// Result is the outcome of an accepted page.
type Result struct {
	// MessageID is SendGrid's X-Message-Id; each recipient's sg_message_id in events starts with it.
	MessageID string
}

// Sender sends pages through SendGrid. It is safe for concurrent use.
type Sender struct {
	key    string
	host   string
	from   *sgmail.Email
	client *http.Client
	log    *zap.Logger
	now    func() time.Time
}

// NewSender checks cfg and builds a Sender; a nil logger logs nothing.
func NewSender(cfg Config, log *zap.Logger) (*Sender, error) {
	if strings.TrimSpace(cfg.APIKey) == "" {
		return nil, errors.New("mail: API key is required")
	}
	if !validAddress(cfg.FromEmail) {
		return nil, errors.New("mail: from address is not valid")
	}
	if !headerSafeName(cfg.FromName) {
		return nil, errors.New("mail: from name must be one line of valid UTF-8 without control characters")
	}
	base := strings.TrimRight(strings.TrimSpace(cfg.BaseURL), "/")
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("mail: base URL %q must be an absolute http(s) URL", cfg.BaseURL)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if log == nil {
		log = zap.NewNop()
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	// Activities send pages through a window of concurrent calls; keep their connections warm.
	transport.MaxIdleConnsPerHost = 64
	return &Sender{
		key:    cfg.APIKey,
		host:   base,
		from:   sgmail.NewEmail(cfg.FromName, cfg.FromEmail),
		client: &http.Client{Timeout: timeout, Transport: transport},
		log:    log,
		now:    time.Now,
	}, nil
}

// MarshalPage validates p and encodes it as a Mail Send request body.
func (s *Sender) MarshalPage(p Page) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	m := &sgmail.SGMailV3{
		From:             s.from,
		Subject:          p.Subject,
		Personalizations: make([]*sgmail.Personalization, len(p.Personalizations)),
	}
	if p.ReplyTo != "" {
		m.ReplyTo = sgmail.NewEmail("", p.ReplyTo)
	}
	// SendGrid wants text/plain before text/html.
	if p.Text != "" {
		m.Content = append(m.Content, sgmail.NewContent("text/plain", p.Text))
	}
	if p.HTML != "" {
		m.Content = append(m.Content, sgmail.NewContent("text/html", p.HTML))
	}
	for i, ps := range p.Personalizations {
		name := ps.ToName
		if !headerSafeName(name) {
			// The message still goes out, to the bare address: a notice matters more than
			// the greeting, and a CR or LF here could add headers downstream.
			name = ""
			s.log.Warn("display name with control characters left out",
				zap.Int("personalization", i), zap.String("notice_id", ps.Args.NoticeID))
		}
		m.Personalizations[i] = &sgmail.Personalization{
			To:            []*sgmail.Email{sgmail.NewEmail(name, ps.To)},
			Substitutions: ps.Substitutions,
			CustomArgs:    ps.Args.Map(),
		}
	}
	var buf bytes.Buffer
	buf.Grow(1024 + len(p.Text) + len(p.HTML) + 256*len(p.Personalizations))
	enc := json.NewEncoder(&buf)
	// Content is HTML; escaping <, > and & would only make the body bigger.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("mail: encode page: %w", err)
	}
	return buf.Bytes(), nil
}

// Send sends one page. A page SendGrid should refuse fails with ErrInvalidPage before any call;
// a failed call returns a *SendError. Pass errors through TemporalError at the activity boundary.
func (s *Sender) Send(ctx context.Context, p Page) (Result, error) {
	body, err := s.MarshalPage(p)
	if err != nil {
		return Result{}, err
	}
	req := sendgrid.GetRequest(s.key, sendPath, s.host)
	req.Method = rest.Post
	req.Body = body
	// A rest.Client per call: sendgrid.Client keeps the request body in itself and is not safe to
	// share, while the *http.Client (with its timeout and pooled connections) is.
	client := rest.Client{HTTPClient: s.client}
	start := s.now()
	resp, err := client.SendWithContext(ctx, req)
	elapsed := s.now().Sub(start)
	if err != nil {
		se := &SendError{Retryable: true, Err: err}
		s.log.Warn("sendgrid request failed",
			zap.Int("personalizations", len(p.Personalizations)),
			zap.Duration("elapsed", elapsed),
			zap.Bool("timeout", isTimeout(err)),
			zap.String("error_type", se.Type()))
		return Result{}, se
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		id := http.Header(resp.Headers).Get("X-Message-Id")
		s.log.Debug("sendgrid accepted page",
			zap.String("message_id", id),
			zap.Int("status", resp.StatusCode),
			zap.Int("personalizations", len(p.Personalizations)),
			zap.Duration("elapsed", elapsed))
		return Result{MessageID: id}, nil
	}
	se := newStatusError(resp.StatusCode, http.Header(resp.Headers), resp.Body, s.now())
	s.log.Warn("sendgrid refused page",
		zap.Int("status", se.Status),
		zap.Bool("retryable", se.Retryable),
		zap.Duration("retry_after", se.RetryAfter),
		zap.String("error_type", se.Type()),
		zap.Int("personalizations", len(p.Personalizations)),
		zap.Duration("elapsed", elapsed))
	return Result{}, se
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// headerSafeName reports whether a display name can go into a From or To header as it is:
// valid UTF-8 without CR, LF or any other control character.
func headerSafeName(name string) bool {
	return utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsControl) < 0
}
