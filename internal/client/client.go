// Package client is a small HTTP client for breachflow's JSON API, used by the CLI.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Client calls the API at BaseURL with a bearer key.
type Client struct {
	BaseURL string
	Key     string
	HTTP    *http.Client
}

// New returns a client with a sane timeout.
func New(baseURL, key string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Key: key, HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// APIError is an error in the shape the API answers with, {"error":{"code","message",
// "field"}}: an answer of the server (Status set) or an error the CLI found itself
// (Status 0), such as "invalid" input or an "unavailable" server.
type APIError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	// Err is the cause of an error found locally, kept for errors.Is and errors.As.
	Err error `json:"-"`
}

// Errorf returns a local error with code, the field it concerns ("" for none) and a
// message.
func Errorf(code, field, format string, args ...any) *APIError {
	return &APIError{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

func (e *APIError) Error() string {
	switch {
	case e.Status == 0:
		return e.Message
	case e.Field != "":
		return fmt.Sprintf("%s (%d %s, field %s)", e.Message, e.Status, e.Code, e.Field)
	default:
		return fmt.Sprintf("%s (%d %s)", e.Message, e.Status, e.Code)
	}
}

// Unwrap returns the cause of a local error.
func (e *APIError) Unwrap() error { return e.Err }

// Do sends in (when not nil) as JSON and decodes the answer into out (when not nil).
// A server that cannot be reached is an "unavailable" APIError, as is a gateway's 502,
// 503 or 504 without the API's error body.
func (c *Client) Do(ctx context.Context, method, path string, headers map[string]string, in, out any) error {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return &APIError{Code: "invalid", Field: "url", Message: fmt.Sprintf("API URL %q: %v", c.BaseURL, err), Err: err}
	}
	if c.Key != "" {
		req.Header.Set("Authorization", "Bearer "+c.Key)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &APIError{Code: "unavailable", Message: fmt.Sprintf("no answer from the API at %s: %v", c.BaseURL, err), Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return &APIError{Code: "unavailable", Message: fmt.Sprintf("reading the answer of %s: %v", c.BaseURL, err), Err: err}
	}
	if resp.StatusCode >= 300 {
		var env struct {
			Error *APIError `json:"error"`
		}
		if json.Unmarshal(raw, &env) == nil && env.Error != nil && env.Error.Code != "" {
			env.Error.Status = resp.StatusCode
			return env.Error
		}
		code := "http"
		switch resp.StatusCode {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			code = "unavailable"
		case http.StatusNotFound:
			code = "not_found"
		}
		msg := strings.TrimSpace(string(raw))
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		return &APIError{Status: resp.StatusCode, Code: code, Message: msg}
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return &APIError{Code: "internal", Message: fmt.Sprintf("decode the answer of %s: %v", c.BaseURL, err), Err: err}
		}
	}
	return nil
}

// IsStatus reports whether err is an API error with status code.
func IsStatus(err error, code int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == code
}

// IsUnavailable reports whether err says the API could not be reached.
func IsUnavailable(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == "unavailable"
}
