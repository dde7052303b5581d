package mail_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/mail"
)

func TestPaging(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n, size int
		want    []int
	}{
		{n: 0, size: 1000, want: []int{}},
		{n: 1, size: 1000, want: []int{1}},
		{n: 1000, size: 1000, want: []int{1000}},
		{n: 1001, size: 1000, want: []int{1000, 1}},
		{n: 2500, size: 1000, want: []int{1000, 1000, 500}},
		{n: 2500, size: 0, want: []int{1000, 1000, 500}},
		{n: 2500, size: 5000, want: []int{1000, 1000, 500}},
		{n: 7, size: 3, want: []int{3, 3, 1}},
	}
	for _, tc := range tests {
		items := make([]int, tc.n)
		for i := range items {
			items[i] = i
		}
		chunks := mail.Chunks(items, tc.size)
		got := []int{}
		next := 0
		for _, c := range chunks {
			got = append(got, len(c))
			for _, v := range c {
				require.Equal(t, next, v, "order kept")
				next++
			}
		}
		require.Equal(t, tc.want, got, "n=%d size=%d", tc.n, tc.size)
		if tc.size == 1000 {
			require.Equal(t, len(tc.want), mail.PageCount(tc.n))
		}
	}

	// Appending to a chunk must not overwrite the next one.
	items := []int{1, 2, 3, 4}
	chunks := mail.Chunks(items, 2)
	_ = append(chunks[0], 99)
	require.Equal(t, []int{3, 4}, chunks[1])

	pages := mail.SplitPage(page(0, 2001), 0)
	require.Len(t, pages, 3)
	for _, p := range pages {
		require.Equal(t, "Security incident at -tenant-", p.Subject)
		require.NotEmpty(t, p.Text)
		require.NotEmpty(t, p.HTML)
		require.NoError(t, p.Validate())
	}
	require.Equal(t, "contact2000@tenant2000.example.com", pages[2].Personalizations[0].To)
}

func TestCustomArgsMap(t *testing.T) {
	t.Parallel()
	require.Equal(t, map[string]string{"notice_id": "n", "incident_id": "i", "round": "3"},
		mail.CustomArgs{NoticeID: "n", IncidentID: "i", Round: 3}.Map())
	require.Equal(t, map[string]string{"notice_id": "n"}, mail.CustomArgs{NoticeID: "n"}.Map())
}
