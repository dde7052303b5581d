package notice

import (
	"math/rand/v2"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// breakMarkers does what the case-insensitive pattern bf_ replaced by its first two
// letters and the replacement would, on strings made of the letters that matter.
func TestBreakMarkersMatchesThePattern(t *testing.T) {
	marker := regexp.MustCompile(`(?i)bf_`)
	reference := func(s, with string) string {
		return marker.ReplaceAllStringFunc(s, func(m string) string { return m[:2] + with })
	}
	for _, s := range []string{"", "bf_", "BF_", "bF_x", "xbf_bf_", "bbf__", "b_f_", "-bf_tenant_name-", "Ünïcødé bf_ ok", "bf", "_bf"} {
		require.Equal(t, reference(s, "%5F"), breakMarkers(s, "%5F"), s)
	}
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("bBfF_x\u00e9")
	for range 20000 {
		b := make([]byte, r.IntN(12))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		s := string(b)
		require.Equal(t, reference(s, "\u200b_"), breakMarkers(s, "\u200b_"), "%q", s)
	}
}
