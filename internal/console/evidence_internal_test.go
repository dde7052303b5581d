package console

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCSVTextDefusesFormulas(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"Acme GmbH", "Acme GmbH"},
		{"=1+1", "'=1+1"},
		{`=HYPERLINK("https://attacker.invalid")`, `'=HYPERLINK("https://attacker.invalid")`},
		{"+49 30 1234567", "'+49 30 1234567"},
		{"-2+3", "'-2+3"},
		{"@SUM(A1:A9)", "'@SUM(A1:A9)"},
		{"\t=1", "'\t=1"},
		{"\r=1", "'\r=1"},
		{"Ölwerk =1", "Ölwerk =1"},
		{"a=b", "a=b"},
	} {
		require.Equal(t, tc.want, csvText(tc.in), "%q", tc.in)
	}
}
