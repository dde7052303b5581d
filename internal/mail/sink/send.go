package sink

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Limits of SendGrid's Mail Send API.
const (
	maxPersonalizations = 1000
	maxRecipients       = 1000
	maxArgsBytes        = 10000
	maxSubsBytes        = 10000
)

const helpBase = "https://www.twilio.com/docs/sendgrid/api-reference/mail-send/errors#"

// sgAddress is an address object of a Mail Send request.
type sgAddress struct {
	Email string `json:"email"`
	Name  string `json:"name,omitempty"`
}

// sgPersonalization is one entry of personalizations[].
type sgPersonalization struct {
	To            []sgAddress `json:"to"`
	CC            []sgAddress `json:"cc"`
	BCC           []sgAddress `json:"bcc"`
	From          *sgAddress  `json:"from"`
	Subject       string      `json:"subject"`
	Substitutions stringMap   `json:"substitutions"`
	CustomArgs    stringMap   `json:"custom_args"`
	SendAt        int64       `json:"send_at"`
}

type sgContent struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// sgRequest is the part of a Mail Send body the sink validates and keeps; decodeRequest fills
// it (the tags name the wire fields).
type sgRequest struct {
	From             *sgAddress          `json:"from"`
	ReplyTo          *sgAddress          `json:"reply_to"`
	Subject          string              `json:"subject"`
	Personalizations []sgPersonalization `json:"personalizations"`
	Content          []sgContent         `json:"content"`
	TemplateID       string              `json:"template_id"`
	CustomArgs       stringMap           `json:"custom_args"`
	SendAt           int64               `json:"send_at"`
	// Sandbox is mail_settings.sandbox_mode.enable: validate only, answer 200, keep nothing.
	Sandbox bool `json:"-"`
}

// apiError is one entry of SendGrid's error body; field and help are null when not applicable.
type apiError struct {
	Message string  `json:"message"`
	Field   *string `json:"field"`
	Help    *string `json:"help"`
}

func fieldError(field, msg, anchor string) apiError {
	f := field
	var help *string
	if anchor != "" {
		h := helpBase + anchor
		help = &h
	}
	return apiError{Message: msg, Field: &f, Help: help}
}

func plainError(msg string) apiError { return apiError{Message: msg} }

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// handleSend is POST /v3/mail/send.
func (s *Sink) handleSend(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	f := s.faults.get()
	if d := f.latency(); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
		now = time.Now()
	}
	if now.Before(f.OutageUntil) {
		s.reject(w, http.StatusServiceUnavailable, s.limiter.peek(now), plainError("service unavailable"))
		return
	}
	if status, e := s.authorize(r.Header.Get("Authorization")); status != 0 {
		s.reject(w, status, s.limiter.peek(now), e)
		return
	}
	rs, ok := s.limiter.take(now)
	if !ok {
		s.reject(w, http.StatusTooManyRequests, rs, plainError("too many requests"))
		return
	}
	switch s.faults.roll(f) {
	case faultRateLimit:
		rs.remaining = 0
		rs.reset = now.Add(f.resetAfter())
		s.reject(w, http.StatusTooManyRequests, rs, plainError("too many requests"))
		return
	case faultServerError:
		s.reject(w, http.StatusInternalServerError, rs, plainError("internal error"))
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			s.reject(w, http.StatusUnsupportedMediaType, rs, plainError("Content-Type should be application/json."))
			return
		}
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		s.reject(w, http.StatusRequestEntityTooLarge, rs, plainError("The JSON payload you have included in your request is too large."))
		return
	}

	buf := bufPool.Get().(*bytes.Buffer)
	defer func() {
		// Keep the pool from pinning the odd giant body.
		if buf.Cap() <= 4<<20 {
			buf.Reset()
			bufPool.Put(buf)
		}
	}()
	buf.Reset()
	status, e := s.readBody(r, buf)
	if status != 0 {
		s.reject(w, status, rs, e)
		return
	}

	req, err := decodeRequest(buf.Bytes())
	if err != nil {
		s.reject(w, http.StatusBadRequest, rs, plainError("Bad Request"))
		return
	}
	if errs := validate(req); len(errs) > 0 {
		s.reject(w, http.StatusBadRequest, rs, errs...)
		return
	}
	setRateHeaders(w.Header(), rs)
	if req.Sandbox {
		s.sandbox.Add(1)
		w.WriteHeader(http.StatusOK)
		return
	}

	p := newStoredPage(req, s.newMessageID(), now)
	s.store.add(p)
	if s.hook != nil {
		s.hook.enqueue(p)
	}
	s.requests.Add(1)
	if d := time.Duration(f.AnswerDelayMillis) * time.Millisecond; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	w.Header().Set("X-Message-Id", p.id)
	w.WriteHeader(http.StatusAccepted)
	if ce := s.log.Check(zap.DebugLevel, "mail send accepted"); ce != nil {
		ce.Write(zap.String("message_id", p.id), zap.Int("personalizations", len(p.pers)))
	}
}

// authorize mirrors SendGrid: no or malformed credentials 401, unknown key 401, a key without
// the mail.send scope 403.
func (s *Sink) authorize(h string) (int, apiError) {
	scheme, key, ok := strings.Cut(strings.TrimSpace(h), " ")
	key = strings.TrimSpace(key)
	if !ok || !strings.EqualFold(scheme, "Bearer") || key == "" {
		return http.StatusUnauthorized, plainError("authorization required")
	}
	if _, bad := s.forbidden[key]; bad {
		return http.StatusForbidden, plainError("access forbidden")
	}
	if len(s.keys) > 0 {
		if _, known := s.keys[key]; !known {
			return http.StatusUnauthorized, plainError("The provided authorization grant is invalid, expired, or revoked")
		}
	}
	return 0, apiError{}
}

// readBody reads the (possibly gzip-encoded) body into buf within MaxBodyBytes.
func (s *Sink) readBody(r *http.Request, buf *bytes.Buffer) (int, apiError) {
	var body io.Reader = r.Body
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return http.StatusBadRequest, plainError("Bad Request")
		}
		defer zr.Close()
		body = zr
	default:
		return http.StatusUnsupportedMediaType, plainError("Content-Encoding " + enc + " is not supported.")
	}
	if r.ContentLength > 0 && r.ContentLength <= s.cfg.MaxBodyBytes {
		buf.Grow(int(r.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(body, s.cfg.MaxBodyBytes+1))
	if n > s.cfg.MaxBodyBytes {
		return http.StatusRequestEntityTooLarge, plainError("The JSON payload you have included in your request is too large.")
	}
	if err != nil {
		return http.StatusBadRequest, plainError("Bad Request")
	}
	return 0, apiError{}
}

// reject writes SendGrid's error shape with the rate-limit headers.
func (s *Sink) reject(w http.ResponseWriter, status int, rs rateState, errs ...apiError) {
	s.rejected.Add(1)
	h := w.Header()
	setRateHeaders(h, rs)
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body, _ := json.Marshal(struct {
		Errors []apiError `json:"errors"`
	}{errs})
	_, _ = w.Write(body)
	if ce := s.log.Check(zap.DebugLevel, "mail send refused"); ce != nil {
		ce.Write(zap.Int("status", status), zap.Int("errors", len(errs)))
	}
}

func setRateHeaders(h http.Header, rs rateState) {
	h["X-Ratelimit-Limit"] = []string{strconv.Itoa(rs.limit)}
	h["X-Ratelimit-Remaining"] = []string{strconv.Itoa(max(rs.remaining, 0))}
	// SendGrid reports the reset as whole unix seconds; round up so it is never early.
	reset := rs.reset.Unix()
	if rs.reset.Nanosecond() > 0 {
		reset++
	}
	h["X-Ratelimit-Reset"] = []string{strconv.FormatInt(reset, 10)}
}

// newMessageID returns a 22-character id like SendGrid's X-Message-Id (no dots, so that
// per-recipient ids can extend it).
func (s *Sink) newMessageID() string {
	var b [16]byte
	copy(b[:8], s.idPrefix[:])
	binary.BigEndian.PutUint64(b[8:], s.idSeq.Add(1))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// validate applies SendGrid's documented Mail Send rules and returns every violation found.
func validate(req *sgRequest) []apiError {
	var errs []apiError
	if req.From == nil || req.From.Email == "" {
		errs = append(errs, fieldError("from.email",
			"The from object must be provided for every email send. It is an object that requires the email parameter, but may also contain a name parameter.", "message.from"))
	} else if !validAddress(req.From.Email) {
		errs = append(errs, fieldError("from.email", "The from email does not contain a valid address.", "message.from"))
	}
	if req.ReplyTo != nil && !validAddress(req.ReplyTo.Email) {
		errs = append(errs, fieldError("reply_to.email", "The reply_to email does not contain a valid address.", "message.reply_to"))
	}

	n := len(req.Personalizations)
	switch {
	case n == 0:
		errs = append(errs, fieldError("personalizations",
			"The personalizations field is required and must have at least one personalization.", "message.personalizations"))
	case n > maxPersonalizations:
		errs = append(errs, fieldError("personalizations",
			"The personalization block is limited to 1000 personalizations per API request. You have provided "+
				strconv.Itoa(n)+" personalizations. Please consider splitting this into multiple requests and resending your request.",
			"message.personalizations"))
	}

	if req.TemplateID == "" {
		if strings.TrimSpace(req.Subject) == "" && !everySubject(req.Personalizations) {
			errs = append(errs, fieldError("subject",
				"The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined.",
				"message.subject"))
		}
		if len(req.Content) == 0 {
			errs = append(errs, fieldError("content",
				"Unless a valid template_id is provided, the content parameter is required. There must be at least one defined content block.",
				"message.content"))
		}
	}
	orderReported := false
	for i, c := range req.Content {
		if c.Value == "" {
			errs = append(errs, fieldError("content."+strconv.Itoa(i)+".value",
				"The content value must be a string at least one character in length.", "message.content.value"))
		}
		if strings.TrimSpace(c.Type) == "" {
			errs = append(errs, fieldError("content."+strconv.Itoa(i)+".type",
				"The content type must be provided and be at least one character in length.", "message.content.type"))
		}
		if !orderReported && (strings.EqualFold(c.Type, "text/plain") && i != 0 ||
			strings.EqualFold(c.Type, "text/html") && i != 0 && (i != 1 || !strings.EqualFold(req.Content[0].Type, "text/plain"))) {
			orderReported = true
			errs = append(errs, fieldError("content",
				"If present, text/plain content must be first, followed by text/html, followed by any other content.", "message.content.type"))
		}
	}
	if size := req.CustomArgs.size(); size >= maxArgsBytes {
		errs = append(errs, fieldError("custom_args", "The custom_args must total less than 10,000 bytes.", "message.custom_args"))
	}

	total := 0
	for _, p := range req.Personalizations {
		total += len(p.To) + len(p.CC) + len(p.BCC)
	}
	if total > maxRecipients {
		errs = append(errs, fieldError("personalizations",
			"There is a limit of 1000 total recipients (to + cc + bcc) per request.", "message.recipient-errors"))
	}
	if n == 0 || n > maxPersonalizations || total > maxRecipients {
		// Per-recipient checks of an oversized request only bury the error that matters.
		return errs
	}

	seen := make(map[string]struct{}, total)
	dupReported := false
	for i := range req.Personalizations {
		p := &req.Personalizations[i]
		// Field names are built only for errors: this loop runs a thousand times per request.
		prefix := func() string { return "personalizations." + strconv.Itoa(i) }
		if len(p.To) == 0 {
			errs = append(errs, fieldError(prefix()+".to",
				"The to array is required for all personalization objects, and must have at least one email object with a valid email address.",
				"message.personalizations.to"))
		}
		for _, list := range [...]struct {
			name  string
			addrs []sgAddress
		}{{"to", p.To}, {"cc", p.CC}, {"bcc", p.BCC}} {
			for j, a := range list.addrs {
				field := func() string { return prefix() + "." + list.name + "." + strconv.Itoa(j) + ".email" }
				if !validAddress(a.Email) {
					errs = append(errs, fieldError(field(), "Does not contain a valid address.", "message.personalizations."+list.name))
					continue
				}
				key := lowerASCII(a.Email)
				if _, dup := seen[key]; dup {
					if !dupReported {
						errs = append(errs, fieldError(field(),
							"Each unique email address in the personalizations array should only be included once. You have included "+
								a.Email+" more than once.", "message.recipient-errors"))
						dupReported = true
					}
					continue
				}
				seen[key] = struct{}{}
			}
		}
		if p.From != nil && !validAddress(p.From.Email) {
			errs = append(errs, fieldError(prefix()+".from.email", "The from email does not contain a valid address.", "message.from"))
		}
		if p.CustomArgs.size()+req.CustomArgs.size() >= maxArgsBytes {
			errs = append(errs, fieldError(prefix()+".custom_args",
				"The custom_args must total less than 10,000 bytes.", "message.personalizations.custom_args"))
		}
		if p.Substitutions.size() >= maxSubsBytes {
			errs = append(errs, fieldError(prefix()+".substitutions",
				"The substitutions of a personalization must total less than 10,000 bytes.", "message.personalizations.substitutions"))
		}
		if len(errs) >= 50 {
			break
		}
	}
	return errs
}

func everySubject(ps []sgPersonalization) bool {
	if len(ps) == 0 {
		return false
	}
	for _, p := range ps {
		if strings.TrimSpace(p.Subject) == "" {
			return false
		}
	}
	return true
}

// validAddress accepts what SendGrid accepts in practice: local@domain, with a dotted domain of
// non-empty labels and no spaces or special characters outside the local part's usual set.
func validAddress(s string) bool {
	if len(s) < 3 || len(s) > 320 {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at > 64 || at == len(s)-1 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == '(' || c == ')' || c == '[' || c == ']' ||
			c == ',' || c == ';' || c == ':' || c == '\\' || c == '"' || (c == '@' && i != at) {
			return false
		}
	}
	domain := s[at+1:]
	if strings.IndexByte(domain, '.') < 0 {
		return false
	}
	prev := byte('.')
	for i := 0; i < len(domain); i++ {
		c := domain[i]
		if c == '.' && prev == '.' {
			return false
		}
		prev = c
	}
	return prev != '.'
}

// lowerASCII lower-cases without allocating when there is nothing to change.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}
