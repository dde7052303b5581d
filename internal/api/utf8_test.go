package api

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// TestFindInvalidUTF8 runs the raw-body scanner over valid and invalid JSON texts: every
// invalid sequence, raw or escaped, in a value, a key or outside strings, is found and
// named by its path; valid text (multi-byte, surrogate pairs, U+FFFD itself) passes.
func TestFindInvalidUTF8(t *testing.T) {
	t.Parallel()
	type want struct {
		field         string
		key, outside  bool
		escape, bytes string // bytes: the text the offset points at
	}
	cases := []struct {
		name string
		body string
		want *want // nil: valid
	}{
		{"empty", ``, nil},
		{"ASCII", `{"title":"Leak","n":5,"ok":true,"x":null}`, nil},
		{"multi-byte", `{"title":"Ünïcødé ✓ 漢字 — 😀","tags":["ß","€"]}`, nil},
		{"U+FFFD as sent", `{"title":"\ufffd and ` + "\uFFFD" + `"}`, nil},
		{"surrogate pair", `{"title":"\ud83d\ude00"}`, nil},
		{"surrogate pair upper case", `{"title":"\uD83D\uDE00 ok"}`, nil},
		{"escapes", `{"title":"a\"b\\c\/d\b\f\n\r\t\u0041\u00e9"}`, nil},
		{"escaped quote then bad-looking text", `{"a":"\"","b":"\\u d800"}`, nil},
		{"multi-byte key", `{"ключ":{"名前":"x"}}`, nil},
		{"deep nesting", strings.Repeat(`[`, 5000) + `"ok"` + strings.Repeat(`]`, 5000), nil},

		{"raw bytes in a value", "{\"title\":\"a\xff\xfeb\"}", &want{field: "title", bytes: "\xff"}},
		{"truncated sequence", "{\"title\":\"caf\xc3\"}", &want{field: "title", bytes: "\xc3"}},
		{"overlong encoding", "{\"title\":\"\xc0\xaf\"}", &want{field: "title", bytes: "\xc0"}},
		{"surrogate encoded as bytes", "{\"title\":\"\xed\xa0\x80\"}", &want{field: "title", bytes: "\xed"}},
		{"beyond U+10FFFF", "{\"title\":\"\xf4\x90\x80\x80\"}", &want{field: "title", bytes: "\xf4"}},
		{"lone high surrogate", `{"title":"x\ud800"}`, &want{field: "title", escape: `\ud800`}},
		{"lone low surrogate", `{"title":"\uDC00y"}`, &want{field: "title", escape: `\uDC00`}},
		{"high then not low", `{"title":"\ud800\u0041"}`, &want{field: "title", escape: `\ud800`}},
		{"high then high", `{"title":"\ud800\ud800"}`, &want{field: "title", escape: `\ud800`}},
		{"low then high", `{"title":"\ude00\ud83d"}`, &want{field: "title", escape: `\ude00`}},
		{"high then one-character escape", `{"title":"\ud83d\n"}`, &want{field: "title", escape: `\ud83d`}},
		{"high at the end", `{"title":"\ud83d"}`, &want{field: "title", escape: `\ud83d`}},
		{"second value", "{\"title\":\"ok\",\"summary\":\"\xff\"}", &want{field: "summary", bytes: "\xff"}},
		{"nested object", "{\"notice\":{\"fields\":{\"title\":\"\xfe\"}}}", &want{field: "notice.fields.title", bytes: "\xfe"}},
		{"after a closed object", "{\"notice\":{\"fields\":{\"title\":\"x\"}},\"summary\":\"\xfe\"}", &want{field: "summary", bytes: "\xfe"}},
		{"array element", "{\"scope\":{\"services\":[\"compute\",\"\xff\"]}}", &want{field: "scope.services", bytes: "\xff"}},
		{"array of objects", `{"a":[{"b":"x"},{"c":"\udfff"}]}`, &want{field: "a.c", escape: `\udfff`}},
		{"map key in the path", `{"templates":{"en":{"subject":"\ud800"}}}`, &want{field: "templates.en.subject", escape: `\ud800`}},
		{"escaped key in the path", `{"ti\u0074le":"\ud800"}`, &want{field: "title", escape: `\ud800`}},
		{"top-level string", `"\ud800"`, &want{escape: `\ud800`}},
		{"top-level array", "[\"\xff\"]", &want{bytes: "\xff"}},
		{"bad key at the top", "{\"ti\xfftle\":\"x\"}", &want{key: true, bytes: "\xff"}},
		{"bad key nested", "{\"scope\":{\"serv\xffices\":[]}}", &want{field: "scope", key: true, bytes: "\xff"}},
		{"escaped surrogate in a key", `{"notice":{"\ud800":1}}`, &want{field: "notice", key: true, escape: `\ud800`}},
		{"second key bad", "{\"a\":1,\"\xff\":2}", &want{key: true, bytes: "\xff"}},
		{"outside strings, as a value", "{\"title\":\xff}", &want{field: "title", outside: true, bytes: "\xff"}},
		{"outside strings, in a number", "{\"n\":1\xff}", &want{field: "n", outside: true, bytes: "\xff"}},
		{"outside strings, instead of a key", "{\"a\":1,\xff}", &want{outside: true, bytes: "\xff"}},
		{"outside strings, after the object", "{\"a\":\"x\"}\xff", &want{outside: true, bytes: "\xff"}},
		{"unterminated string", "{\"title\":\"abc\xff", &want{field: "title", bytes: "\xff"}},
		{"malformed JSON still scanned", "{\"a\":,,\"b\":\"\xff\"", &want{field: "b", bytes: "\xff"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := findInvalidUTF8([]byte(tc.body))
			if tc.want == nil {
				require.Nil(t, got)
				// What passes decodes to the same text: nothing was replaced by U+FFFD.
				var v any
				if json.Valid([]byte(tc.body)) {
					require.NoError(t, json.Unmarshal([]byte(tc.body), &v))
					out, err := json.Marshal(v)
					require.NoError(t, err)
					require.Equal(t, strings.Count(tc.body, `\ufffd`)+strings.Count(tc.body, "\uFFFD"),
						strings.Count(string(out), "\uFFFD"), "a U+FFFD appeared in decoding")
				}
				return
			}
			require.NotNil(t, got)
			require.Equal(t, tc.want.field, got.Field)
			require.Equal(t, tc.want.key, got.Key, "key")
			require.Equal(t, tc.want.outside, got.Outside, "outside")
			require.Equal(t, tc.want.escape, got.Escape)
			if tc.want.escape != "" {
				require.Equal(t, tc.want.escape, tc.body[got.Offset:got.Offset+6])
			} else {
				require.True(t, strings.HasPrefix(tc.body[got.Offset:], tc.want.bytes), "offset %d", got.Offset)
			}
			require.Contains(t, got.Message(), "not valid UTF-8")
			require.True(t, utf8.ValidString(got.Message()), "the message quotes no bad bytes")
		})
	}
}

// TestFindInvalidUTF8AgreesWithEncodingJSON: a valid JSON text the scanner passes decodes
// without encoding/json replacing anything, and one it refuses would have been altered.
func TestFindInvalidUTF8AgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	pieces := []string{"a", "é", "漢", "😀", `\u00e9`, `\ud83d\ude00`, `\ud800`, `\udc00`, "\xff", "\xc3", "\xed\xa0\x80", `\"`, `\\`, `\n`}
	for _, a := range pieces {
		for _, b := range pieces {
			body := `{"k":"` + a + b + `"}`
			var v struct{ K string }
			require.NoError(t, json.Unmarshal([]byte(body), &v), body)
			// No piece holds U+FFFD: one in the decoded text is a replacement.
			altered := strings.ContainsRune(v.K, utf8.RuneError)
			require.Equal(t, altered, findInvalidUTF8([]byte(body)) != nil, "%q decoded to %q", body, v.K)
		}
	}
}
