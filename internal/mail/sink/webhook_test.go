package sink_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/mail"
	"github.com/breachflow/breachflow/internal/mail/sink"
)

// receiver is an Event Webhook endpoint that verifies every post as the API does.
type receiver struct {
	t        *testing.T
	verifier *mail.Verifier
	srv      *httptest.Server

	mu      sync.Mutex
	events  []mail.Event
	posts   int
	largest int // bytes of the largest post
	failing int // answer 500 to this many posts first
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{t: t}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.posts++
	rc.largest = max(rc.largest, len(body))
	if rc.failing > 0 {
		rc.failing--
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	events, err := rc.verifier.Verify(r.Header.Get(mail.SignatureHeader), r.Header.Get(mail.TimestampHeader), body, time.Now(), 0)
	if err != nil {
		rc.t.Errorf("webhook post failed verification: %v", err)
		w.WriteHeader(http.StatusForbidden)
		return
	}
	rc.events = append(rc.events, events...)
	w.WriteHeader(http.StatusOK)
}

func (rc *receiver) snapshot() []mail.Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]mail.Event(nil), rc.events...)
}

func startWithReceiver(t *testing.T, cfg sink.Config) (*sink.Sink, *httptest.Server, *receiver) {
	t.Helper()
	rc := newReceiver(t)
	cfg.WebhookURL = rc.srv.URL
	s, srv := startSink(t, cfg)
	v, err := mail.NewVerifier(s.PublicKey())
	require.NoError(t, err)
	rc.verifier = v
	return s, srv, rc
}

func flush(t *testing.T, s *sink.Sink) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, s.FlushWebhooks(ctx))
}

func TestWebhookPostsSignedEvents(t *testing.T) {
	t.Parallel()
	s, srv, rc := startWithReceiver(t, sink.Config{})
	addrs := []string{"ok@example.com", "gone@bounce.invalid", "Blocked@Dropped.invalid", "slow@deferred.invalid"}
	ps := make([]any, len(addrs))
	for i, a := range addrs {
		ps[i] = map[string]any{
			"to":          []any{map[string]any{"email": a}},
			"custom_args": map[string]any{"notice_id": "notice-" + string(rune('a'+i)), "incident_id": "inc-9", "round": "2"},
		}
	}
	id := send(t, srv.URL, validRequest(1).with("personalizations", ps))
	flush(t, s)

	byEmail := map[string][]mail.EventType{}
	seen := map[string]bool{}
	for _, e := range rc.snapshot() {
		byEmail[e.Email] = append(byEmail[e.Email], e.Event)
		require.False(t, seen[e.SGEventID], "sg_event_id repeats")
		seen[e.SGEventID] = true
		require.Equal(t, id, e.MessageID())
		require.True(t, strings.HasPrefix(e.SGMessageID, id+"."))
		require.Equal(t, "inc-9", e.IncidentID)
		require.Equal(t, 2, e.Round)
		require.WithinDuration(t, time.Now(), e.Time(), time.Minute)
		switch e.Event {
		case mail.EventBounce:
			require.Equal(t, "notice-b", e.NoticeID)
			require.Contains(t, e.Reason, "550")
			require.Equal(t, "bounce", e.BounceType)
		case mail.EventDropped:
			require.Equal(t, "notice-c", e.NoticeID)
			require.NotEmpty(t, e.Reason)
		case mail.EventDeferred:
			require.Equal(t, "notice-d", e.NoticeID)
			require.NotEmpty(t, e.Attempt)
		}
	}
	require.Equal(t, map[string][]mail.EventType{
		"ok@example.com":          {mail.EventProcessed, mail.EventDelivered},
		"gone@bounce.invalid":     {mail.EventProcessed, mail.EventBounce},
		"Blocked@Dropped.invalid": {mail.EventDropped},
		"slow@deferred.invalid":   {mail.EventProcessed, mail.EventDeferred, mail.EventDelivered},
	}, byEmail)

	st := s.Stats()
	require.EqualValues(t, 8, st.WebhookEvents)
	require.Zero(t, st.WebhookFailedEvents)
}

func TestWebhookBatchesAndCustomPatterns(t *testing.T) {
	t.Parallel()
	s, srv, rc := startWithReceiver(t, sink.Config{
		WebhookBatchSize: 100,
		BouncePatterns:   []string{"user1*@example.com"},
		DropPatterns:     []string{},
		DeferPatterns:    []string{},
	})
	send(t, srv.URL, validRequest(250))
	flush(t, s)
	events := rc.snapshot()
	require.Len(t, events, 500)
	bounced := 0
	for _, e := range events {
		if e.Event == mail.EventBounce {
			bounced++
			require.True(t, strings.HasPrefix(e.Email, "user1"))
		}
	}
	// user1, user10..user19, user100..user199
	require.Equal(t, 1+10+100, bounced)
	rc.mu.Lock()
	posts := rc.posts
	rc.mu.Unlock()
	require.GreaterOrEqual(t, posts, 5, "batches of at most 100 events")
}

// TestWebhookBatchesBySize: events carrying the largest custom args SendGrid accepts are
// posted in batches cut at DefaultWebhookBatchBytes, as SendGrid cuts its batches at 768 KB,
// not in batches of a thousand events (about 9 MB here) that a receiver's cap refuses.
func TestWebhookBatchesBySize(t *testing.T) {
	t.Parallel()
	s, srv, rc := startWithReceiver(t, sink.Config{DropPatterns: []string{}, BouncePatterns: []string{}, DeferPatterns: []string{}})
	ps := pers(1000)
	for i, p := range ps {
		// Just under the 10,000 bytes of custom args a personalization may carry.
		p.(map[string]any)["custom_args"] = map[string]any{"notice_id": fmt.Sprintf("n-%d", i), "pad": strings.Repeat("x", 9900)}
	}
	send(t, srv.URL, validRequest(0).with("personalizations", ps))
	flush(t, s)
	require.Len(t, rc.snapshot(), 2000, "processed and delivered for each")
	rc.mu.Lock()
	posts, largest := rc.posts, rc.largest
	rc.mu.Unlock()
	// One event here is about 10 KB: a batch is cut at the first event that reaches the size.
	require.LessOrEqual(t, largest, sink.DefaultWebhookBatchBytes+12<<10)
	require.GreaterOrEqual(t, posts, 2000*9900/sink.DefaultWebhookBatchBytes)
	require.Zero(t, s.Stats().WebhookFailedEvents)
}

func TestWebhookRetriesFailedPosts(t *testing.T) {
	t.Parallel()
	s, srv, rc := startWithReceiver(t, sink.Config{WebhookBackoff: 10 * time.Millisecond})
	rc.mu.Lock()
	rc.failing = 2
	rc.mu.Unlock()
	send(t, srv.URL, validRequest(3))
	flush(t, s)
	require.Len(t, rc.snapshot(), 6)
	st := s.Stats()
	require.EqualValues(t, 6, st.WebhookEvents)
	require.EqualValues(t, 1, st.WebhookBatches)
}

func TestWebhookGivesUpAfterAttempts(t *testing.T) {
	t.Parallel()
	s, srv, rc := startWithReceiver(t, sink.Config{WebhookAttempts: 2, WebhookBackoff: time.Millisecond})
	rc.mu.Lock()
	rc.failing = 100
	rc.mu.Unlock()
	send(t, srv.URL, validRequest(2))
	flush(t, s)
	st := s.Stats()
	require.EqualValues(t, 4, st.WebhookFailedEvents)
	require.Zero(t, st.WebhookEvents)
}

func TestWebhookPostsOnTimerAndOnClose(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	s, err := sink.New(sink.Config{WebhookURL: rc.srv.URL, WebhookInterval: 20 * time.Millisecond}, nil)
	require.NoError(t, err)
	v, err := mail.NewVerifier(s.PublicKey())
	require.NoError(t, err)
	rc.verifier = v
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	send(t, srv.URL, validRequest(1))
	require.Eventually(t, func() bool { return len(rc.snapshot()) == 2 }, 5*time.Second, 10*time.Millisecond)

	send(t, srv.URL, validRequest(2))
	require.NoError(t, s.Close())
	require.Len(t, rc.snapshot(), 6, "Close posts what is queued")
	require.NoError(t, s.Close(), "Close is idempotent")

	// Mail Send keeps working after Close; events are no longer posted.
	send(t, srv.URL, validRequest(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	require.Error(t, s.FlushWebhooks(ctx))
}

func TestWebhookCloseDoesNotHangOnADeadReceiver(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer dead.Close()
	defer close(block)
	s, err := sink.New(sink.Config{WebhookURL: dead.URL, WebhookTimeout: 200 * time.Millisecond}, nil)
	require.NoError(t, err)
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	send(t, srv.URL, validRequest(1))
	start := time.Now()
	require.NoError(t, s.Close())
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestFixedWebhookKey(t *testing.T) {
	t.Parallel()
	priv, pub, err := sink.GenerateKey()
	require.NoError(t, err)
	s, err := sink.New(sink.Config{WebhookPrivateKeyPEM: priv}, nil)
	require.NoError(t, err)
	require.Equal(t, pub, s.PublicKey())
	_, err = mail.NewVerifier(pub)
	require.NoError(t, err)

	_, err = sink.New(sink.Config{WebhookPrivateKeyPEM: "not a key"}, nil)
	require.Error(t, err)
	_, err = sink.New(sink.Config{WebhookURL: "ftp://example.com"}, nil)
	require.Error(t, err)
	_, err = sink.New(sink.Config{BouncePatterns: []string{"[bad"}}, nil)
	require.Error(t, err)

	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/sink/public-key")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, pub, strings.TrimSpace(string(b)))
}
