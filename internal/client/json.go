package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"time"
)

// NullUnsetTimes rewrites a JSON document so that every zero time
// ("0001-01-01T00:00:00Z", Go's unset time.Time) reads null, keeping the order of the
// keys and every other value as it is. The result is compact.
func NullUnsetTimes(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	type level struct {
		object bool
		n      int // tokens written at this level (keys and values, in an object)
	}
	var out bytes.Buffer
	var stack []level
	values := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) && len(stack) == 0 {
			break
		}
		if errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		if err != nil {
			return nil, err
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			out.WriteByte(byte(d))
			continue
		}
		isKey := false
		if len(stack) == 0 {
			if values > 0 {
				out.WriteByte('\n')
			}
			values++
		} else {
			l := &stack[len(stack)-1]
			switch {
			case l.object && l.n%2 == 1:
				out.WriteByte(':')
			case l.n > 0:
				out.WriteByte(',')
			}
			isKey = l.object && l.n%2 == 0
			l.n++
		}
		switch v := tok.(type) {
		case json.Delim:
			out.WriteByte(byte(v))
			stack = append(stack, level{object: v == '{'})
		case string:
			if !isKey && unsetTime(v) {
				out.WriteString("null")
				continue
			}
			b, err := json.Marshal(v)
			if err != nil {
				return nil, err
			}
			out.Write(b)
		case json.Number:
			out.WriteString(v.String())
		case bool:
			if v {
				out.WriteString("true")
			} else {
				out.WriteString("false")
			}
		case nil:
			out.WriteString("null")
		}
	}
	return out.Bytes(), nil
}

// unsetTime reports whether s is a zero time.Time as encoding/json writes it.
func unsetTime(s string) bool {
	if !strings.HasPrefix(s, "0001-01-01T") {
		return false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return err == nil && t.IsZero()
}
