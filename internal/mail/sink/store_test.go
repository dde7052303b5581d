package sink_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/mail/sink"
)

func send(t *testing.T, base string, r request) string {
	t.Helper()
	resp := postSend(t, base, "Bearer "+testKey, r.body(t))
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, string(b))
	return resp.Header.Get("X-Message-Id")
}

func TestMessagesKeepEachPersonalizationWithItsSubstitutions(t *testing.T) {
	t.Parallel()
	_, srv := startSink(t, sink.Config{})
	id := send(t, srv.URL, validRequest(3).with("custom_args", map[string]any{"batch": "b-7", "round": "0"}))

	var list sink.MessageList
	getJSON(t, srv.URL+"/sink/messages", &list)
	require.Equal(t, 3, list.Total)
	require.Equal(t, 3, list.Stored)
	require.EqualValues(t, 3, list.Accepted)
	require.Len(t, list.Messages, 3)
	for i, m := range list.Messages {
		require.Equal(t, uint64(i+1), m.Seq)
		require.Equal(t, id, m.MessageID)
		require.Equal(t, fmt.Sprintf("%s.%d.0", id, i), m.SGMessageID)
		require.Equal(t, []sink.Address{{Email: fmt.Sprintf("user%d@example.com", i), Name: fmt.Sprintf("User %d", i)}}, m.To)
		require.Equal(t, sink.Address{Email: "notices@breachflow.example.com", Name: "Breachflow"}, m.From)
		require.Equal(t, fmt.Sprintf("Incident notice for User %d", i), m.Subject)
		require.Equal(t, fmt.Sprintf("Hello User %d, acknowledge at https://ack.example.com/%d", i, i), m.Text)
		require.Equal(t, fmt.Sprintf(`<p>Hello User %d, <a href="https://ack.example.com/%d">acknowledge</a></p>`, i, i), m.HTML)
		// Personalization args win over request-level ones.
		require.Equal(t, map[string]string{"notice_id": fmt.Sprintf("n-%d", i), "incident_id": "inc-1", "round": "1", "batch": "b-7"}, m.CustomArgs)
	}

	var one sink.Message
	getJSON(t, srv.URL+"/sink/messages/2", &one)
	require.Equal(t, list.Messages[1], one)
	resp, err := http.Get(srv.URL + "/sink/messages/99")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestSubstitutionsLongestTagFirst(t *testing.T) {
	t.Parallel()
	s, srv := startSink(t, sink.Config{})
	send(t, srv.URL, validRequest(1).with("subject", "-name- / -name_html-").with("personalizations", []any{map[string]any{
		"to":            []any{map[string]any{"email": "a@example.com"}},
		"substitutions": map[string]any{"-name-": "Ann & Co", "-name_html-": "Ann &amp; Co"},
	}}))
	list := s.Messages(sink.Query{})
	require.Equal(t, "Ann & Co / Ann &amp; Co", list.Messages[0].Subject)
}

func TestMessagesFilterAndPaging(t *testing.T) {
	t.Parallel()
	_, srv := startSink(t, sink.Config{})
	send(t, srv.URL, validRequest(10))
	send(t, srv.URL, validRequest(15)) // user0..user9 get a second message

	list := func(q string) sink.MessageList {
		var l sink.MessageList
		getJSON(t, srv.URL+"/sink/messages?"+q, &l)
		return l
	}

	got := list("to=" + url.QueryEscape("USER3@example.com"))
	require.Equal(t, 2, got.Total)
	require.Len(t, got.Messages, 2)
	for _, m := range got.Messages {
		require.Equal(t, "user3@example.com", m.To[0].Email)
	}
	require.Zero(t, list("to=user3@example").Total, "the filter is exact, not a substring")
	require.Equal(t, 1, list("to=user12@example.com").Total)

	page := list("limit=10&offset=20")
	require.Equal(t, 25, page.Total)
	require.EqualValues(t, 25, page.Accepted)
	require.Len(t, page.Messages, 5)
	require.EqualValues(t, 21, page.Messages[0].Seq)
	require.Zero(t, page.NextAfter)

	// Walk the cursor.
	var seqs []uint64
	after := uint64(0)
	for {
		p := list(fmt.Sprintf("limit=7&after=%d", after))
		for _, m := range p.Messages {
			seqs = append(seqs, m.Seq)
		}
		if p.NextAfter == 0 {
			break
		}
		after = p.NextAfter
	}
	require.Len(t, seqs, 25)
	for i, s := range seqs {
		require.EqualValues(t, i+1, s)
	}

	newest := list("order=newest&limit=1")
	require.EqualValues(t, 25, newest.Messages[0].Seq)

	for _, bad := range []string{"limit=x", "offset=-1", "after=abc", "order=sideways"} {
		resp, err := http.Get(srv.URL + "/sink/messages?" + bad)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, bad)
	}
}

func TestMessagesEvictOldest(t *testing.T) {
	t.Parallel()
	s, srv := startSink(t, sink.Config{MaxMessages: 5})
	send(t, srv.URL, validRequest(3))
	send(t, srv.URL, validRequest(4))
	list := s.Messages(sink.Query{})
	require.Equal(t, 5, list.Stored)
	require.EqualValues(t, 7, list.Accepted)
	var seqs []uint64
	for _, m := range list.Messages {
		seqs = append(seqs, m.Seq)
	}
	require.Equal(t, []uint64{3, 4, 5, 6, 7}, seqs)
	require.Equal(t, "user2@example.com", list.Messages[0].To[0].Email)
	_, ok := s.Message(2)
	require.False(t, ok)
}

func TestDeleteMessages(t *testing.T) {
	t.Parallel()
	_, srv := startSink(t, sink.Config{})
	send(t, srv.URL, validRequest(4))
	resp := doJSON(t, http.MethodDelete, srv.URL+"/sink/messages", nil)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	var list sink.MessageList
	getJSON(t, srv.URL+"/sink/messages", &list)
	require.Zero(t, list.Total)
	require.Zero(t, list.Stored)
	require.EqualValues(t, 4, list.Accepted, "the accepted counter survives a clear")

	send(t, srv.URL, validRequest(1))
	getJSON(t, srv.URL+"/sink/messages", &list)
	require.Len(t, list.Messages, 1)
	require.EqualValues(t, 5, list.Messages[0].Seq, "seqs do not repeat after a clear")
}

func TestMailboxPagesEscape(t *testing.T) {
	t.Parallel()
	_, srv := startSink(t, sink.Config{})
	send(t, srv.URL, validRequest(1).
		with("subject", `<script>alert("subject")</script> for -name-`).
		with("content", []any{
			map[string]any{"type": "text/plain", "value": "plain"},
			map[string]any{"type": "text/html", "value": `<p onclick="x()">Hi</p><script>alert("body")</script>`},
		}))

	get := func(path string) (*http.Response, string) {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		return resp, string(b)
	}

	resp, page := get("/sink/")
	require.Contains(t, resp.Header.Get("Content-Type"), "text/html")
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'none'")
	require.Contains(t, page, "&lt;script&gt;alert(&#34;subject&#34;)&lt;/script&gt; for User 0")
	require.NotContains(t, page, "<script>")
	require.Contains(t, page, "user0@example.com")

	_, view := get("/sink/view/1")
	require.NotContains(t, view, "<script>")
	require.Contains(t, view, `<iframe sandbox=""`)
	require.Contains(t, view, `srcdoc="&lt;p onclick=&#34;x()&#34;&gt;Hi&lt;/p&gt;&lt;script&gt;`)
	require.NotContains(t, strings.SplitN(view, "srcdoc", 2)[0], "allow-scripts")

	_, filtered := get("/sink/?to=nobody@example.com")
	require.Contains(t, filtered, "No messages.")

	resp, err := http.Get(srv.URL + "/sink/view/42")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}
