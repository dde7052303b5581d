package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// encoding/json replaces invalid UTF-8 and escaped unpaired surrogates with U+FFFD
// before any handler sees a string, so what a client sent and what is stored (and hashed,
// approved and mailed) would silently differ. The body is therefore checked on its raw
// bytes before it is decoded, for every route that decodes one, json.RawMessage included.

// utf8Fault is the first place in a JSON text that is not valid UTF-8.
type utf8Fault struct {
	// Field is the JSON path of the value holding the fault: object keys joined by ".",
	// array elements named by their array (as nulField does). A fault in a key names the
	// object holding the key.
	Field string
	// Offset is the byte offset of the fault in the text.
	Offset int
	// Key is set for a fault in an object key, Outside for one outside any string.
	Key, Outside bool
	// Escape is the \u escape of an unpaired surrogate; empty for invalid bytes.
	Escape string
}

// Message says what is wrong, without repeating the bytes at fault.
func (f *utf8Fault) Message() string {
	where := "text"
	switch {
	case f.Key:
		where = "a key in this object"
	case f.Outside:
		where = "the body outside strings"
	}
	if f.Escape != "" {
		return fmt.Sprintf("%s is not valid UTF-8: %s is an unpaired surrogate (byte %d)", where, f.Escape, f.Offset)
	}
	return fmt.Sprintf("%s is not valid UTF-8 (byte %d)", where, f.Offset)
}

// jsonFrame is an open object or array; key spans the raw (quoted) current key of an object.
type jsonFrame struct {
	object     bool
	wantKey    bool
	keyStart   int
	keyEnd     int
	hasKeySpan bool
}

// findInvalidUTF8 returns the first fault in data, or nil when every string (key or value)
// and every byte outside strings is valid UTF-8. It does not check JSON syntax beyond what
// it needs to track paths: a malformed body is left to encoding/json to refuse, and still
// has any invalid UTF-8 in it found. Frames keep spans, not paths, so deep nesting costs
// no more than its stack.
func findInvalidUTF8(data []byte) *utf8Fault {
	var stack []jsonFrame
	fault := func(at int, key, outside bool, escape string) *utf8Fault {
		frames := stack
		if n := len(frames); n > 0 && (key || frames[n-1].object && frames[n-1].wantKey) {
			frames = frames[:n-1] // a fault in or instead of a key is its object's
		}
		return &utf8Fault{Field: jsonPath(data, frames), Offset: at, Key: key, Outside: outside, Escape: escape}
	}
	for i := 0; i < len(data); {
		c := data[i]
		switch {
		case c == '{' || c == '[':
			stack = append(stack, jsonFrame{object: c == '{', wantKey: c == '{'})
			i++
		case c == '}' || c == ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			i++
		case c == ',':
			if n := len(stack); n > 0 && stack[n-1].object {
				stack[n-1].wantKey = true
			}
			i++
		case c == '"':
			isKey := false
			if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
				isKey = true
			}
			end, at, escape := scanString(data, i)
			if at >= 0 {
				return fault(at, isKey, false, escape)
			}
			if isKey {
				top := &stack[len(stack)-1]
				top.wantKey, top.keyStart, top.keyEnd, top.hasKeySpan = false, i, end, true
			}
			i = end
		case c < utf8.RuneSelf:
			i++
		default:
			// Non-ASCII outside a string is a syntax error for encoding/json, but it is
			// refused here first when it is not even UTF-8.
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				return fault(i, false, true, "")
			}
			i += size
		}
	}
	return nil
}

// scanString scans the string whose opening quote is at data[start]. It returns the index
// just past the closing quote (len(data) when unterminated) and, for the first invalid
// UTF-8 inside, its offset and, for an unpaired surrogate, the escape; at is -1 when the
// string is valid.
func scanString(data []byte, start int) (end, at int, escape string) {
	for i := start + 1; i < len(data); {
		c := data[i]
		switch {
		case c == '"':
			return i + 1, -1, ""
		case c == '\\':
			if i+1 < len(data) && data[i+1] == 'u' {
				r, ok := hex4(data, i+2)
				if !ok {
					i += 2 // malformed: left to encoding/json
					continue
				}
				switch {
				case r >= 0xD800 && r <= 0xDBFF:
					if i+7 < len(data) && data[i+6] == '\\' && data[i+7] == 'u' {
						if lo, ok := hex4(data, i+8); ok && lo >= 0xDC00 && lo <= 0xDFFF {
							i += 12
							continue
						}
					}
					return 0, i, string(data[i : i+6])
				case r >= 0xDC00 && r <= 0xDFFF:
					return 0, i, string(data[i : i+6])
				}
				i += 6
				continue
			}
			i += 2 // a one-character escape (or a malformed one, left to encoding/json)
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				return 0, i, ""
			}
			i += size
		}
	}
	return len(data), -1, ""
}

// hex4 decodes the four hex digits at data[i:i+4].
func hex4(data []byte, i int) (rune, bool) {
	if i+4 > len(data) {
		return 0, false
	}
	var r rune
	for _, c := range data[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// jsonPath names the value the frames lead to: the current keys of the objects among them.
func jsonPath(data []byte, frames []jsonFrame) string {
	var keys []string
	for _, f := range frames {
		if !f.object || !f.hasKeySpan {
			continue
		}
		var k string
		if err := json.Unmarshal(data[f.keyStart:f.keyEnd], &k); err != nil {
			// A key that does not decode (malformed escape) cannot name anything.
			k = "?"
		}
		keys = append(keys, k)
	}
	return strings.Join(keys, ".")
}
