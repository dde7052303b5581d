package sink

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// maxDepth bounds nesting in skipped values (encoding/json has a similar limit), so a hostile body cannot
// exhaust the stack.
const maxDepth = 1000

// Mail Send bodies are decoded by hand in one pass: a 1,000-personalization request is some
// 600 KB, and encoding/json's validation pass, skip pass and reflection cost several times more
// than the rest of accepting it. The decoder is strict JSON (RFC 8259, as encoding/json
// accepts it) and maps fields like encoding/json with exact key names: null leaves a field
// empty, a value of the wrong type is an error, unknown fields are validated and skipped, and
// a repeated key's last value wins.

var (
	errSyntax  = errors.New("invalid JSON")
	errTooDeep = errors.New("JSON nested too deeply")
)

// decoder reads one JSON text. Every string it returns points into s, which is the only copy
// of the body, so a stored request costs one allocation for all its text.
type decoder struct {
	s string
	i int

	// Substitutions, custom args and addresses of a request are carved out of a few large
	// arenas instead of thousands of small slices; scratch collects one value at a time.
	strArena    []string
	addrArena   []sgAddress
	strScratch  []string
	addrScratch []sgAddress
}

const arenaChunk = 4096

// keepStrings copies p into the arena and returns the copy.
func (d *decoder) keepStrings(p []string) []string {
	if len(p) == 0 {
		return nil
	}
	if cap(d.strArena)-len(d.strArena) < len(p) {
		d.strArena = make([]string, 0, max(arenaChunk, len(p)))
	}
	start := len(d.strArena)
	d.strArena = append(d.strArena, p...)
	return d.strArena[start:len(d.strArena):len(d.strArena)]
}

// keepAddresses copies a into the arena and returns the copy.
func (d *decoder) keepAddresses(a []sgAddress) []sgAddress {
	if len(a) == 0 {
		return nil
	}
	if cap(d.addrArena)-len(d.addrArena) < len(a) {
		d.addrArena = make([]sgAddress, 0, max(arenaChunk/4, len(a)))
	}
	start := len(d.addrArena)
	d.addrArena = append(d.addrArena, a...)
	return d.addrArena[start:len(d.addrArena):len(d.addrArena)]
}

// decodeRequest parses a Mail Send body.
func decodeRequest(body []byte) (*sgRequest, error) {
	d := &decoder{s: string(body)}
	req := new(sgRequest)
	d.space()
	if err := d.object(func(key string) error { return d.requestField(req, key) }); err != nil {
		return nil, err
	}
	d.space()
	if d.i != len(d.s) {
		return nil, d.fail("data after the top-level value")
	}
	return req, nil
}

func (d *decoder) fail(what string) error {
	return fmt.Errorf("%w at offset %d: %s", errSyntax, d.i, what)
}

func (d *decoder) space() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// null consumes a null literal if one is next.
func (d *decoder) null() bool {
	if len(d.s)-d.i >= 4 && d.s[d.i:d.i+4] == "null" {
		d.i += 4
		return true
	}
	return false
}

// object reads an object, calling field for each key with the decoder at the value, which
// field must consume. A null object is accepted and calls nothing.
func (d *decoder) object(field func(key string) error) error {
	if d.null() {
		return nil
	}
	if d.i >= len(d.s) || d.s[d.i] != '{' {
		return errType
	}
	d.i++
	d.space()
	if d.i < len(d.s) && d.s[d.i] == '}' {
		d.i++
		return nil
	}
	for {
		d.space()
		key, err := d.str()
		if err != nil {
			return err
		}
		d.space()
		if d.i >= len(d.s) || d.s[d.i] != ':' {
			return d.fail("expected ':'")
		}
		d.i++
		d.space()
		if err := field(key); err != nil {
			return err
		}
		d.space()
		if d.i >= len(d.s) {
			return d.fail("unterminated object")
		}
		switch d.s[d.i] {
		case ',':
			d.i++
		case '}':
			d.i++
			return nil
		default:
			return d.fail("expected ',' or '}'")
		}
	}
}

// array reads an array, calling elem with the decoder at each element. A null array is
// accepted and calls nothing.
func (d *decoder) array(elem func() error) error {
	if d.null() {
		return nil
	}
	if d.i >= len(d.s) || d.s[d.i] != '[' {
		return errType
	}
	d.i++
	d.space()
	if d.i < len(d.s) && d.s[d.i] == ']' {
		d.i++
		return nil
	}
	for {
		d.space()
		if err := elem(); err != nil {
			return err
		}
		d.space()
		if d.i >= len(d.s) {
			return d.fail("unterminated array")
		}
		switch d.s[d.i] {
		case ',':
			d.i++
		case ']':
			d.i++
			return nil
		default:
			return d.fail("expected ',' or ']'")
		}
	}
}

// errType is a value of the wrong type for its field; like a syntax error it ends decoding.
var errType = errors.New("value of the wrong type")

// str reads a string. One without escapes or invalid UTF-8 is a substring of the body; the
// rare others go through encoding/json, which also replaces invalid UTF-8.
func (d *decoder) str() (string, error) {
	if d.i >= len(d.s) || d.s[d.i] != '"' {
		return "", errType
	}
	start := d.i + 1
	simple := true
	for j := start; j < len(d.s); j++ {
		c := d.s[j]
		switch {
		case c == '"':
			d.i = j + 1
			if simple {
				return d.s[start:j], nil
			}
			var out string
			if err := json.Unmarshal([]byte(d.s[start-1:j+1]), &out); err != nil {
				return "", d.fail("invalid string")
			}
			return out, nil
		case c == '\\':
			simple = false
			j++
			if j >= len(d.s) {
				return "", d.fail("unterminated string")
			}
			switch d.s[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(d.s) || !isHex4(d.s[j+1:j+5]) {
					return "", d.fail("invalid \\u escape")
				}
				j += 4
			default:
				return "", d.fail("invalid escape")
			}
		case c < 0x20:
			return "", d.fail("control character in string")
		case c >= utf8.RuneSelf && simple:
			r, size := utf8.DecodeRuneInString(d.s[j:])
			if r == utf8.RuneError && size == 1 {
				simple = false
			} else {
				j += size - 1
			}
		}
	}
	return "", d.fail("unterminated string")
}

func isHex4(s string) bool {
	for i := 0; i < 4; i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// optStr reads a string or null.
func (d *decoder) optStr() (string, error) {
	if d.null() {
		return "", nil
	}
	return d.str()
}

// number reads a JSON number token.
func (d *decoder) number() (string, error) {
	start := d.i
	if d.i < len(d.s) && d.s[d.i] == '-' {
		d.i++
	}
	switch {
	case d.i < len(d.s) && d.s[d.i] == '0':
		d.i++
	case d.i < len(d.s) && '1' <= d.s[d.i] && d.s[d.i] <= '9':
		d.digits()
	default:
		return "", d.fail("invalid number")
	}
	if d.i < len(d.s) && d.s[d.i] == '.' {
		d.i++
		if d.digits() == 0 {
			return "", d.fail("invalid number")
		}
	}
	if d.i < len(d.s) && (d.s[d.i] == 'e' || d.s[d.i] == 'E') {
		d.i++
		if d.i < len(d.s) && (d.s[d.i] == '+' || d.s[d.i] == '-') {
			d.i++
		}
		if d.digits() == 0 {
			return "", d.fail("invalid number")
		}
	}
	return d.s[start:d.i], nil
}

func (d *decoder) digits() int {
	start := d.i
	for d.i < len(d.s) && '0' <= d.s[d.i] && d.s[d.i] <= '9' {
		d.i++
	}
	return d.i - start
}

// int64 reads an integer or null.
func (d *decoder) int64() (int64, error) {
	if d.null() {
		return 0, nil
	}
	if d.i < len(d.s) && (d.s[d.i] == '-' || '0' <= d.s[d.i] && d.s[d.i] <= '9') {
		tok, err := d.number()
		if err != nil {
			return 0, err
		}
		n, err := strconv.ParseInt(tok, 10, 64)
		if err != nil {
			return 0, errType
		}
		return n, nil
	}
	return 0, errType
}

// bool reads true, false or null.
func (d *decoder) bool() (bool, error) {
	switch {
	case d.null():
		return false, nil
	case len(d.s)-d.i >= 4 && d.s[d.i:d.i+4] == "true":
		d.i += 4
		return true, nil
	case len(d.s)-d.i >= 5 && d.s[d.i:d.i+5] == "false":
		d.i += 5
		return false, nil
	}
	return false, errType
}

// skip validates and passes over any value.
func (d *decoder) skip(depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	if d.i >= len(d.s) {
		return d.fail("unexpected end")
	}
	switch c := d.s[d.i]; {
	case c == '{':
		return d.object(func(string) error { return d.skip(depth + 1) })
	case c == '[':
		return d.array(func() error { return d.skip(depth + 1) })
	case c == '"':
		_, err := d.str()
		return err
	case c == '-' || '0' <= c && c <= '9':
		_, err := d.number()
		return err
	case d.null():
		return nil
	case len(d.s)-d.i >= 4 && d.s[d.i:d.i+4] == "true":
		d.i += 4
		return nil
	case len(d.s)-d.i >= 5 && d.s[d.i:d.i+5] == "false":
		d.i += 5
		return nil
	}
	return d.fail("expected a value")
}

func (d *decoder) requestField(req *sgRequest, key string) error {
	var err error
	switch key {
	case "from":
		req.From, err = d.addressPtr()
	case "reply_to":
		req.ReplyTo, err = d.addressPtr()
	case "subject":
		req.Subject, err = d.optStr()
	case "template_id":
		req.TemplateID, err = d.optStr()
	case "send_at":
		req.SendAt, err = d.int64()
	case "custom_args":
		err = d.stringMap(&req.CustomArgs)
	case "content":
		req.Content = req.Content[:0]
		err = d.array(func() error {
			var c sgContent
			if err := d.object(func(k string) error {
				var err error
				switch k {
				case "type":
					c.Type, err = d.optStr()
				case "value":
					c.Value, err = d.optStr()
				default:
					err = d.skip(0)
				}
				return err
			}); err != nil {
				return err
			}
			req.Content = append(req.Content, c)
			return nil
		})
	case "personalizations":
		req.Personalizations = req.Personalizations[:0]
		err = d.array(func() error {
			req.Personalizations = append(req.Personalizations, sgPersonalization{})
			ps := &req.Personalizations[len(req.Personalizations)-1]
			return d.object(func(k string) error { return d.personalizationField(ps, k) })
		})
	case "mail_settings":
		err = d.object(func(k string) error {
			if k != "sandbox_mode" {
				return d.skip(0)
			}
			return d.object(func(k string) error {
				if k != "enable" {
					return d.skip(0)
				}
				on, err := d.bool()
				req.Sandbox = on
				return err
			})
		})
	default:
		return d.skip(0)
	}
	return err
}

func (d *decoder) personalizationField(ps *sgPersonalization, key string) error {
	var err error
	switch key {
	case "to":
		ps.To, err = d.addresses()
	case "cc":
		ps.CC, err = d.addresses()
	case "bcc":
		ps.BCC, err = d.addresses()
	case "from":
		ps.From, err = d.addressPtr()
	case "subject":
		ps.Subject, err = d.optStr()
	case "substitutions":
		err = d.stringMap(&ps.Substitutions)
	case "custom_args":
		err = d.stringMap(&ps.CustomArgs)
	case "send_at":
		ps.SendAt, err = d.int64()
	default:
		return d.skip(0)
	}
	return err
}

func (d *decoder) address(a *sgAddress) error {
	return d.object(func(k string) error {
		var err error
		switch k {
		case "email":
			a.Email, err = d.optStr()
		case "name":
			a.Name, err = d.optStr()
		default:
			err = d.skip(0)
		}
		return err
	})
}

func (d *decoder) addressPtr() (*sgAddress, error) {
	if d.null() {
		return nil, nil
	}
	a := new(sgAddress)
	if err := d.address(a); err != nil {
		return nil, err
	}
	return a, nil
}

func (d *decoder) addresses() ([]sgAddress, error) {
	dst := d.addrScratch[:0]
	err := d.array(func() error {
		dst = append(dst, sgAddress{})
		return d.address(&dst[len(dst)-1])
	})
	d.addrScratch = dst
	return d.keepAddresses(dst), err
}

// stringMap reads an object of string values into m; a repeated key's last value wins.
func (d *decoder) stringMap(m *stringMap) error {
	if d.null() {
		return nil
	}
	pairs := d.strScratch[:0]
	err := d.object(func(k string) error {
		v, err := d.optStr()
		if err != nil {
			return err
		}
		pairs = append(pairs, k, v)
		return nil
	})
	d.strScratch = pairs
	m.pairs = d.keepStrings(dedupe(pairs))
	return err
}
