package mail

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sendgrid/sendgrid-go/helpers/eventwebhook"
)

// Header names of SendGrid's signed Event Webhook.
const (
	// SignatureHeader carries the base64 DER ECDSA signature.
	SignatureHeader = eventwebhook.VerificationHTTPHeader
	// TimestampHeader carries the unix time that is signed along with the body.
	TimestampHeader = eventwebhook.TimestampHTTPHeader
)

// DefaultMaxEventAge is how old a signed webhook timestamp may be when maxAge is zero.
const DefaultMaxEventAge = 5 * time.Minute

// MaxEventClockSkew is how far in the future a webhook timestamp may be.
const MaxEventClockSkew = time.Minute

// Errors of webhook verification; each rejection wraps exactly one of them.
var (
	// ErrInvalidPublicKey is a verification key that is not a base64 DER ECDSA P-256 public key.
	ErrInvalidPublicKey = errors.New("mail: invalid event webhook public key")
	// ErrMissingSignature is a request without the signature header.
	ErrMissingSignature = errors.New("mail: event webhook signature missing")
	// ErrMissingTimestamp is a request without the timestamp header.
	ErrMissingTimestamp = errors.New("mail: event webhook timestamp missing")
	// ErrInvalidTimestamp is a timestamp header that is not unix seconds.
	ErrInvalidTimestamp = errors.New("mail: event webhook timestamp invalid")
	// ErrInvalidSignature is a signature that is malformed or does not match body and timestamp.
	ErrInvalidSignature = errors.New("mail: event webhook signature invalid")
	// ErrStaleTimestamp is a correctly signed request older than the allowed age (a replay).
	ErrStaleTimestamp = errors.New("mail: event webhook timestamp too old")
	// ErrFutureTimestamp is a correctly signed request dated further ahead than MaxEventClockSkew.
	ErrFutureTimestamp = errors.New("mail: event webhook timestamp in the future")
	// ErrMalformedEvents is a correctly signed body that is not a JSON array of events.
	ErrMalformedEvents = errors.New("mail: event webhook body malformed")
)

// EventType is SendGrid's event name.
type EventType string

// SendGrid's delivery and engagement events.
const (
	// EventProcessed means SendGrid accepted the message for delivery.
	EventProcessed EventType = "processed"
	// EventDelivered means the receiving server accepted the message.
	EventDelivered EventType = "delivered"
	// EventDeferred means the receiving server asked SendGrid to try again later.
	EventDeferred EventType = "deferred"
	// EventBounce means the receiving server refused the message permanently.
	EventBounce EventType = "bounce"
	// EventDropped means SendGrid did not send the message (suppressed or invalid).
	EventDropped EventType = "dropped"
	// EventOpen means the recipient opened the message.
	EventOpen EventType = "open"
	// EventClick means the recipient followed a tracked link.
	EventClick EventType = "click"
	// EventSpamReport means the recipient marked the message as spam.
	EventSpamReport EventType = "spamreport"
	// EventUnsubscribe means the recipient unsubscribed.
	EventUnsubscribe EventType = "unsubscribe"
)

// Event is one event of SendGrid's Event Webhook, with the custom args SendGrid flattens into it.
type Event struct {
	// Email is the recipient; treat as PII: store it, never log it.
	Email string `json:"email"`
	// Timestamp is the event time in unix seconds.
	Timestamp int64 `json:"timestamp"`
	// Event is the event type.
	Event EventType `json:"event"`
	// SGEventID is unique per event; use it to drop duplicates (SendGrid posts at least once).
	SGEventID string `json:"sg_event_id"`
	// SGMessageID identifies the message per recipient; it starts with the X-Message-Id.
	SGMessageID string `json:"sg_message_id"`
	// Reason explains bounce and dropped events.
	Reason string `json:"reason,omitempty"`
	// Status is the SMTP enhanced status of a bounce.
	Status string `json:"status,omitempty"`
	// Response is the receiving server's answer for delivered and deferred events.
	Response string `json:"response,omitempty"`
	// Attempt counts delivery attempts of a deferred event.
	Attempt string `json:"attempt,omitempty"`
	// BounceType is "bounce" or "blocked" for bounce events.
	BounceType string `json:"type,omitempty"`
	// NoticeID is the notice_id custom arg.
	NoticeID string `json:"notice_id,omitempty"`
	// IncidentID is the incident_id custom arg.
	IncidentID string `json:"incident_id,omitempty"`
	// Round is the round custom arg (SendGrid sends it as a string).
	Round int `json:"round,omitempty"`
}

// UnmarshalJSON accepts round as a string, as SendGrid sends custom args, or as a number.
func (e *Event) UnmarshalJSON(data []byte) error {
	type plain Event
	var raw struct {
		plain
		Round json.RawMessage `json:"round"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*e = Event(raw.plain)
	e.Round = 0
	if r := strings.Trim(string(raw.Round), `"`); r != "" && r != "null" {
		n, err := strconv.Atoi(r)
		if err != nil {
			return fmt.Errorf("round %q is not a number", r)
		}
		e.Round = n
	}
	return nil
}

// Time is the event time.
func (e Event) Time() time.Time { return time.Unix(e.Timestamp, 0) }

// MessageID is the X-Message-Id part of SGMessageID, as returned in Result.MessageID.
func (e Event) MessageID() string {
	id, _, _ := strings.Cut(e.SGMessageID, ".")
	return id
}

// Verifier checks signed Event Webhook requests against one public key. It is safe for
// concurrent use.
type Verifier struct {
	key *ecdsa.PublicKey
}

// NewVerifier parses the verification key as SendGrid shows it (base64 of the DER public key).
func NewVerifier(publicKey string) (*Verifier, error) {
	key, err := parsePublicKey(strings.TrimSpace(publicKey))
	if err != nil {
		return nil, err
	}
	return &Verifier{key: key}, nil
}

func parsePublicKey(s string) (key *ecdsa.PublicKey, err error) {
	if s == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidPublicKey)
	}
	// The library asserts the parsed key to *ecdsa.PublicKey unchecked, so a key of another
	// algorithm panics there; turn that into an error.
	defer func() {
		if r := recover(); r != nil {
			key, err = nil, fmt.Errorf("%w: not an ECDSA key", ErrInvalidPublicKey)
		}
	}()
	key, err = eventwebhook.ConvertPublicKeyBase64ToECDSA(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPublicKey, err)
	}
	if key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: not a P-256 key", ErrInvalidPublicKey)
	}
	return key, nil
}

// Verify checks signature and timestamp headers over the raw body and decodes the events. The
// timestamp must lie within maxAge (DefaultMaxEventAge if zero) before now and at most
// MaxEventClockSkew after it.
func (v *Verifier) Verify(signature, timestamp string, body []byte, now time.Time, maxAge time.Duration) ([]Event, error) {
	signature, timestamp = strings.TrimSpace(signature), strings.TrimSpace(timestamp)
	if signature == "" {
		return nil, ErrMissingSignature
	}
	if timestamp == "" {
		return nil, ErrMissingTimestamp
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: %q", ErrInvalidTimestamp, timestamp)
	}
	ok, err := eventwebhook.VerifySignature(v.key, body, signature, timestamp)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSignature, err)
	}
	if !ok {
		return nil, ErrInvalidSignature
	}
	if maxAge <= 0 {
		maxAge = DefaultMaxEventAge
	}
	at := time.Unix(ts, 0)
	if age := now.Sub(at); age > maxAge {
		return nil, fmt.Errorf("%w: signed %s ago", ErrStaleTimestamp, age.Truncate(time.Second))
	}
	if ahead := at.Sub(now); ahead > MaxEventClockSkew {
		return nil, fmt.Errorf("%w: signed %s ahead", ErrFutureTimestamp, ahead.Truncate(time.Second))
	}
	var events []Event
	if err := json.Unmarshal(body, &events); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedEvents, err)
	}
	return events, nil
}

// VerifyEvents verifies one Event Webhook request with publicKey as SendGrid shows it (base64
// DER) and returns its events; see Verifier.Verify. Build a Verifier once to check many requests.
func VerifyEvents(publicKey, signature, timestamp string, body []byte, now time.Time, maxAge time.Duration) ([]Event, error) {
	v, err := NewVerifier(publicKey)
	if err != nil {
		return nil, err
	}
	return v.Verify(signature, timestamp, body, now, maxAge)
}
