package sink

import (
	"encoding/json"
	"path"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAddressPatternsMatchLikePathMatch(t *testing.T) {
	t.Parallel()
	globs := []string{"*@bounce.invalid", "*@Dropped.Invalid", "exact@example.com", "user?@example.com", "user[0-4]*@example.com", "*", "*@*.invalid", `a\*b@example.com`}
	addrs := []string{"x@bounce.invalid", "X@BOUNCE.INVALID", "x@bounce.invalid.com", "x@dropped.invalid", "exact@example.com", "exact@example.co",
		"user1@example.com", "user12@example.com", "user3x@example.com", "user7@example.com", "a*b@example.com", "a/b@bounce.invalid", "@bounce.invalid"}
	for _, g := range globs {
		p := compilePatterns([]string{g})[0]
		for _, a := range addrs {
			a = lowerASCII(a)
			want, err := path.Match(lowerASCII(g), a)
			require.NoError(t, err)
			require.Equal(t, want, p.match(a), "glob %q address %q", g, a)
		}
	}
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "plain", `quote " backslash \ slash /`, "ctl \x00\x01\x1f\t\n\r", "<html> & more", "é 日本 😀", "bad \xff\xfe utf8", "line\u2028sep\u2029", "\x7f"} {
		want, err := json.Marshal(s)
		require.NoError(t, err)
		require.Equal(t, string(want), string(appendJSONString(nil, s)), "%q", s)
	}
}
