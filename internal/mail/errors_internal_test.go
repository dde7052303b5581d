package mail

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRedactAddresses(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"no address here": "no address here",
		"Each unique email address in the personalizations array should only be included once. You have included [a.b+c@example.com] more than once.": "Each unique email address in the personalizations array should only be included once. You have included [[redacted]] more than once.",
		"to: x@y.org, cc: <z@w.net>": "to: [redacted], cc: <[redacted]>",
		"trailing @":                 "trailing [redacted]",
		`"q@example.com"`:            `"[redacted]"`,
	}
	for in, want := range tests {
		require.Equal(t, want, redactAddresses(in), in)
	}
}

func TestStatusErrorClassification(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	tests := []struct {
		name       string
		status     int
		header     http.Header
		body       string
		retryable  bool
		retryAfter time.Duration
		errType    string
		messages   int
	}{
		{name: "400", status: 400, body: `{"errors":[{"message":"m1","field":"from.email","help":null},{"message":"m2","field":null}]}`, errType: ErrTypeRejected, messages: 2},
		{name: "401", status: 401, body: `{"errors":[{"field":null,"message":"authorization required"}]}`, errType: ErrTypeUnauthorized, messages: 1},
		{name: "403", status: 403, body: `{"errors":[{"message":"access forbidden"}]}`, errType: ErrTypeUnauthorized, messages: 1},
		{name: "404", status: 404, body: "not found", errType: ErrTypeRejected, messages: 1},
		{name: "408", status: 408, retryable: true, errType: ErrTypeUnavailable},
		{name: "413 plain body", status: 413, body: "Payload Too Large", errType: ErrTypeRejected, messages: 1},
		{name: "429 reset", status: 429, header: hdr("X-RateLimit-Reset", strconv.FormatInt(now.Unix()+42, 10)), retryable: true, retryAfter: 42 * time.Second, errType: ErrTypeRateLimited},
		{name: "429 reset already past", status: 429, header: hdr("X-RateLimit-Reset", strconv.FormatInt(now.Unix()-5, 10)), retryable: true, retryAfter: time.Second, errType: ErrTypeRateLimited},
		{name: "429 retry-after seconds", status: 429, header: hdr("Retry-After", "7"), retryable: true, retryAfter: 7 * time.Second, errType: ErrTypeRateLimited},
		{name: "429 retry-after date", status: 429, header: hdr("Retry-After", now.Add(90*time.Second).UTC().Format(http.TimeFormat)), retryable: true, retryAfter: 90 * time.Second, errType: ErrTypeRateLimited},
		{name: "429 absurd reset is capped", status: 429, header: hdr("X-RateLimit-Reset", "99999999999"), retryable: true, retryAfter: maxRetryAfter, errType: ErrTypeRateLimited},
		{name: "429 nothing to go by", status: 429, retryable: true, errType: ErrTypeRateLimited},
		{name: "500", status: 500, retryable: true, errType: ErrTypeUnavailable},
		{name: "503 retry-after", status: 503, header: hdr("Retry-After", "3"), retryable: true, retryAfter: 3 * time.Second, errType: ErrTypeUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := tc.header
			if h == nil {
				h = http.Header{}
			}
			e := newStatusError(tc.status, h, tc.body, now)
			require.Equal(t, tc.status, e.Status)
			require.Equal(t, tc.retryable, e.Retryable)
			require.Equal(t, tc.retryAfter, e.RetryAfter)
			require.Equal(t, tc.errType, e.Type())
			require.Len(t, e.Errors, tc.messages)
			require.Contains(t, e.Error(), "status "+strconv.Itoa(tc.status))
		})
	}
}

func TestSendErrorText(t *testing.T) {
	t.Parallel()
	e := &SendError{Status: 400, Errors: []APIError{
		{Message: "You have included [x@example.com] more than once.", Field: "personalizations.1.to.0.email"},
		{Message: "The subject is required."},
	}}
	require.Equal(t, "sendgrid: status 400: You have included [[redacted]] more than once. (field personalizations.1.to.0.email); The subject is required.", e.Error())

	cause := errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	ne := &SendError{Retryable: true, Err: cause}
	require.Equal(t, "sendgrid: request failed: dial tcp 127.0.0.1:1: connect: connection refused", ne.Error())
	require.ErrorIs(t, ne, cause)
}

// A send is in doubt when the request may have been taken: no answer after it went out, or
// a timeout answer; never after a refused connection or another answer.
func TestInDoubt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"timeout, no answer", &SendError{Retryable: true, Err: context.DeadlineExceeded}, true},
		{"connection reset", &SendError{Retryable: true, Err: errors.New("read: connection reset by peer")}, true},
		{"connection refused", &SendError{Retryable: true, Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}, false},
		{"408", &SendError{Status: http.StatusRequestTimeout, Retryable: true}, true},
		{"504", &SendError{Status: http.StatusGatewayTimeout, Retryable: true}, true},
		{"500", &SendError{Status: http.StatusInternalServerError, Retryable: true}, false},
		{"429", &SendError{Status: http.StatusTooManyRequests, Retryable: true}, false},
		{"400", &SendError{Status: http.StatusBadRequest}, false},
		{"not a send error", errors.New("boom"), false},
	} {
		require.Equal(t, tc.want, InDoubt(tc.err), tc.name)
	}
}
