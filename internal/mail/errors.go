package mail

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
)

// Stable Temporal application error types; retry policies and dashboards match on them.
const (
	// ErrTypeInvalidPage is a page refused before sending; not retryable.
	ErrTypeInvalidPage = "InvalidPage"
	// ErrTypeRejected is a request SendGrid refused (400, 413, other 4xx); not retryable.
	ErrTypeRejected = "SendGridRejected"
	// ErrTypeUnauthorized is a refused API key (401, 403); not retryable.
	ErrTypeUnauthorized = "SendGridUnauthorized"
	// ErrTypeRateLimited is a 429; retryable after the provider's reset time.
	ErrTypeRateLimited = "SendGridRateLimited"
	// ErrTypeUnavailable is a 5xx, a timeout or a network failure; retryable.
	ErrTypeUnavailable = "SendGridUnavailable"
)

// maxRetryAfter caps a provider-supplied delay so a bad header cannot park a send for hours.
const maxRetryAfter = time.Hour

// APIError is one entry of SendGrid's {"errors":[...]} response.
type APIError struct {
	// Message is SendGrid's explanation; it may quote an address, so SendError.Error redacts it.
	Message string `json:"message"`
	// Field is the request field at fault, if any.
	Field string `json:"field,omitempty"`
	// Help links to SendGrid's documentation, if given.
	Help string `json:"help,omitempty"`
}

// SendError is a failed Mail Send call: an error status or no response at all.
type SendError struct {
	// Status is the HTTP status; 0 when no response arrived.
	Status int
	// Errors are the messages SendGrid returned.
	Errors []APIError
	// Retryable tells whether the same request may succeed later.
	Retryable bool
	// RetryAfter is the wait SendGrid asked for (429 reset time), or 0.
	RetryAfter time.Duration
	// Err is the transport error when Status is 0.
	Err error
}

// Error describes the failure with any email address redacted, so it is safe to log and to record.
func (e *SendError) Error() string {
	var b strings.Builder
	b.WriteString("sendgrid: ")
	if e.Status == 0 {
		b.WriteString("request failed")
		if e.Err != nil {
			b.WriteString(": ")
			b.WriteString(e.Err.Error())
		}
		return redactAddresses(b.String())
	}
	b.WriteString("status ")
	b.WriteString(strconv.Itoa(e.Status))
	for i, m := range e.Errors {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(m.Message)
		if m.Field != "" {
			b.WriteString(" (field ")
			b.WriteString(m.Field)
			b.WriteString(")")
		}
	}
	if e.RetryAfter > 0 {
		b.WriteString("; retry after ")
		b.WriteString(e.RetryAfter.String())
	}
	return redactAddresses(b.String())
}

// Unwrap returns the transport error, if any.
func (e *SendError) Unwrap() error { return e.Err }

// Type is the stable Temporal error type for this failure.
func (e *SendError) Type() string {
	switch {
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		return ErrTypeUnauthorized
	case e.Status == http.StatusTooManyRequests:
		return ErrTypeRateLimited
	case e.Retryable:
		return ErrTypeUnavailable
	default:
		return ErrTypeRejected
	}
}

// newStatusError classifies a non-2xx answer.
func newStatusError(status int, header http.Header, body string, now time.Time) *SendError {
	e := &SendError{Status: status}
	var payload struct {
		Errors []APIError `json:"errors"`
	}
	if err := json.Unmarshal([]byte(body), &payload); err == nil {
		e.Errors = payload.Errors
	}
	if len(e.Errors) == 0 && strings.TrimSpace(body) != "" {
		msg := body
		if len(msg) > 512 {
			msg = msg[:512]
		}
		e.Errors = []APIError{{Message: msg}}
	}
	switch {
	case status == http.StatusTooManyRequests:
		e.Retryable = true
		e.RetryAfter = retryAfter(header, now)
	case status >= 500, status == http.StatusRequestTimeout:
		e.Retryable = true
		if header.Get("Retry-After") != "" {
			e.RetryAfter = retryAfter(header, now)
		}
	}
	return e
}

// retryAfter reads SendGrid's X-RateLimit-Reset (unix seconds) or a standard Retry-After.
func retryAfter(h http.Header, now time.Time) time.Duration {
	var d time.Duration
	if v := strings.TrimSpace(h.Get("X-RateLimit-Reset")); v != "" {
		if secs, err := strconv.ParseFloat(v, 64); err == nil && secs > 0 {
			if ahead := secs - float64(now.Unix()); ahead > maxRetryAfter.Seconds() {
				d = maxRetryAfter
			} else {
				whole := math.Floor(secs)
				d = time.Unix(int64(whole), int64((secs-whole)*1e9)).Sub(now)
			}
			if d < time.Second {
				// The reset is in whole seconds, so "now" may already be past it: wait a beat.
				d = time.Second
			}
		}
	}
	if d == 0 {
		if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
			if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
				d = time.Duration(secs) * time.Second
			} else if t, err := http.ParseTime(v); err == nil {
				d = t.Sub(now)
			}
		}
	}
	return min(max(d, 0), maxRetryAfter)
}

// TemporalError converts a Send error into a Temporal application error whose type the retry
// policy can see: InvalidPage, SendGridRejected and SendGridUnauthorized are non-retryable;
// SendGridRateLimited carries the provider's reset as NextRetryDelay; SendGridUnavailable is
// retryable. The original error stays reachable through errors.As. Other errors, and
// application errors already, are returned unchanged; nil stays nil.
func TemporalError(err error) error {
	if err == nil {
		return nil
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return err
	}
	if errors.Is(err, ErrInvalidPage) {
		return temporal.NewApplicationErrorWithOptions("mail page refused before sending", ErrTypeInvalidPage,
			temporal.ApplicationErrorOptions{NonRetryable: true, Cause: err})
	}
	var se *SendError
	if !errors.As(err, &se) {
		return err
	}
	opts := temporal.ApplicationErrorOptions{NonRetryable: !se.Retryable, Cause: err}
	if se.Retryable && se.RetryAfter > 0 {
		opts.NextRetryDelay = se.RetryAfter
	}
	msg := "sendgrid request failed"
	if se.Status != 0 {
		msg = fmt.Sprintf("sendgrid answered %d", se.Status)
	}
	return temporal.NewApplicationErrorWithOptions(msg, se.Type(), opts)
}

// redactAddresses replaces anything shaped like an email address with a placeholder; SendGrid
// quotes offending addresses in its messages and those must not reach logs or workflow history.
func redactAddresses(s string) string {
	if strings.IndexByte(s, '@') < 0 {
		return s
	}
	const stop = " \t\r\n[]<>()\",;:'{}"
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); i++ {
		if s[i] != '@' || i < last {
			continue
		}
		start := i
		for start > last && strings.IndexByte(stop, s[start-1]) < 0 {
			start--
		}
		end := i + 1
		for end < len(s) && strings.IndexByte(stop, s[end]) < 0 {
			end++
		}
		b.WriteString(s[last:start])
		b.WriteString("[redacted]")
		last = end
		i = end - 1
	}
	b.WriteString(s[last:])
	return b.String()
}

// InDoubt reports whether a failed send may still have reached SendGrid: the request
// went out and no answer came back (a timeout, a reset connection), or the answer was a
// timeout (408, 504). A refused connection or any other HTTP answer is not in doubt:
// SendGrid did not take the request, or said what it did with it.
func InDoubt(err error) bool {
	var se *SendError
	if !errors.As(err, &se) {
		return false
	}
	// A timeout answered by SendGrid's edge (or a gateway before it) does not say the
	// request was not taken.
	if se.Status == http.StatusRequestTimeout || se.Status == http.StatusGatewayTimeout {
		return true
	}
	if se.Status != 0 || se.Err == nil {
		return false
	}
	var op *net.OpError
	if errors.As(se.Err, &op) && op.Op == "dial" {
		return false
	}
	var dns *net.DNSError
	return !errors.As(se.Err, &dns)
}
