package mail_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/breachflow/breachflow/internal/mail"
	"github.com/breachflow/breachflow/internal/mail/sink"
)

// signedPost is one Event Webhook request as the sink sent it.
type signedPost struct {
	signature, timestamp string
	body                 []byte
}

// captureWebhook sends a page through the sink and returns the first signed post it makes,
// with the sink's public key.
func captureWebhook(t *testing.T, p mail.Page) (signedPost, string) {
	t.Helper()
	var mu sync.Mutex
	var posts []signedPost
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		mu.Lock()
		posts = append(posts, signedPost{r.Header.Get(mail.SignatureHeader), r.Header.Get(mail.TimestampHeader), body})
		mu.Unlock()
	}))
	t.Cleanup(recv.Close)
	s, srv := startSink(t, sink.Config{WebhookURL: recv.URL})
	_, err := newSender(t, srv.URL, apiKey, 0).Send(context.Background(), p)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.FlushWebhooks(ctx))
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, posts, 1)
	return posts[0], s.PublicKey()
}

func TestVerifyEvents(t *testing.T) {
	t.Parallel()
	p := page(0, 3)
	p.Personalizations[1].To = "gone@bounce.invalid"
	p.Personalizations[2].To = "blocked@dropped.invalid"
	post, key := captureWebhook(t, p)
	ts, err := strconv.ParseInt(post.timestamp, 10, 64)
	require.NoError(t, err)
	signedAt := time.Unix(ts, 0)

	events, err := mail.VerifyEvents(key, post.signature, post.timestamp, post.body, signedAt.Add(time.Second), 0)
	require.NoError(t, err)
	kinds := map[string][]mail.EventType{}
	for _, e := range events {
		kinds[e.NoticeID] = append(kinds[e.NoticeID], e.Event)
		require.Equal(t, "incident-1", e.IncidentID)
		require.Equal(t, 1, e.Round)
		require.NotEmpty(t, e.SGEventID)
	}
	require.Equal(t, map[string][]mail.EventType{
		"notice-0": {mail.EventProcessed, mail.EventDelivered},
		"notice-1": {mail.EventProcessed, mail.EventBounce},
		"notice-2": {mail.EventDropped},
	}, kinds)

	otherKey := func() string {
		_, pub, err := sink.GenerateKey()
		require.NoError(t, err)
		return pub
	}()
	rsaKey := func() string {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		require.NoError(t, err)
		der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		require.NoError(t, err)
		return base64.StdEncoding.EncodeToString(der)
	}()
	tampered := append([]byte(nil), post.body...)
	tampered[len(tampered)/2] ^= 0x01
	shifted := strconv.FormatInt(ts+1, 10)

	tests := []struct {
		name                string
		key, sig, timestamp string
		body                []byte
		now                 time.Time
		maxAge              time.Duration
		want                error
	}{
		{name: "tampered body", key: key, sig: post.signature, timestamp: post.timestamp, body: tampered, now: signedAt, want: mail.ErrInvalidSignature},
		{name: "timestamp not the signed one", key: key, sig: post.signature, timestamp: shifted, body: post.body, now: signedAt, want: mail.ErrInvalidSignature},
		{name: "wrong key", key: otherKey, sig: post.signature, timestamp: post.timestamp, body: post.body, now: signedAt, want: mail.ErrInvalidSignature},
		{name: "signature not base64", key: key, sig: "%%%", timestamp: post.timestamp, body: post.body, now: signedAt, want: mail.ErrInvalidSignature},
		{name: "signature not DER", key: key, sig: base64.StdEncoding.EncodeToString([]byte("nope")), timestamp: post.timestamp, body: post.body, now: signedAt, want: mail.ErrInvalidSignature},
		{name: "missing signature", key: key, timestamp: post.timestamp, body: post.body, now: signedAt, want: mail.ErrMissingSignature},
		{name: "missing timestamp", key: key, sig: post.signature, body: post.body, now: signedAt, want: mail.ErrMissingTimestamp},
		{name: "timestamp not a number", key: key, sig: post.signature, timestamp: "yesterday", body: post.body, now: signedAt, want: mail.ErrInvalidTimestamp},
		{name: "stale timestamp", key: key, sig: post.signature, timestamp: post.timestamp, body: post.body, now: signedAt.Add(5*time.Minute + time.Second), want: mail.ErrStaleTimestamp},
		{name: "stale for a shorter max age", key: key, sig: post.signature, timestamp: post.timestamp, body: post.body, now: signedAt.Add(time.Minute), maxAge: 30 * time.Second, want: mail.ErrStaleTimestamp},
		{name: "timestamp from the future", key: key, sig: post.signature, timestamp: post.timestamp, body: post.body, now: signedAt.Add(-2 * time.Minute), want: mail.ErrFutureTimestamp},
		{name: "key not base64", key: "***", sig: post.signature, timestamp: post.timestamp, body: post.body, now: signedAt, want: mail.ErrInvalidPublicKey},
		{name: "empty key", key: "", sig: post.signature, timestamp: post.timestamp, body: post.body, now: signedAt, want: mail.ErrInvalidPublicKey},
		{name: "RSA key", key: rsaKey, sig: post.signature, timestamp: post.timestamp, body: post.body, now: signedAt, want: mail.ErrInvalidPublicKey},
		{name: "within max age", key: key, sig: post.signature, timestamp: post.timestamp, body: post.body, now: signedAt.Add(5 * time.Minute)},
		{name: "slightly ahead", key: key, sig: post.signature, timestamp: post.timestamp, body: post.body, now: signedAt.Add(-30 * time.Second)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			events, err := mail.VerifyEvents(tc.key, tc.sig, tc.timestamp, tc.body, tc.now, tc.maxAge)
			if tc.want == nil {
				require.NoError(t, err)
				require.Len(t, events, 5)
				return
			}
			require.ErrorIs(t, err, tc.want)
			require.Nil(t, events)
		})
	}
}

func TestVerifyRejectsMalformedSignedBody(t *testing.T) {
	t.Parallel()
	privPEM, pub, err := sink.GenerateKey()
	require.NoError(t, err)
	block, _ := pem.Decode([]byte(privPEM))
	require.NotNil(t, block)
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	require.NoError(t, err)
	now := time.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(`{"not":"an array"}`)
	digest := sha256.Sum256(append([]byte(ts), body...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.(*ecdsa.PrivateKey), digest[:])
	require.NoError(t, err)

	v, err := mail.NewVerifier(pub)
	require.NoError(t, err)
	_, err = v.Verify(base64.StdEncoding.EncodeToString(sig), ts, body, now, 0)
	require.ErrorIs(t, err, mail.ErrMalformedEvents)
}

func TestEventDecoding(t *testing.T) {
	t.Parallel()
	var events []mail.Event
	require.NoError(t, json.Unmarshal([]byte(`[
		{"email":"a@example.com","timestamp":1700000000,"event":"delivered","sg_event_id":"e1","sg_message_id":"abc.filter0001.1","notice_id":"n1","incident_id":"i1","round":"3","response":"250 OK","category":["x"]},
		{"email":"b@example.com","timestamp":1700000001,"event":"bounce","sg_event_id":"e2","sg_message_id":"def","round":2,"reason":"550","status":"5.1.1","type":"blocked"},
		{"email":"c@example.com","timestamp":1700000002,"event":"open","sg_event_id":"e3","sg_message_id":"ghi","round":null}
	]`), &events))
	require.Equal(t, mail.Event{
		Email: "a@example.com", Timestamp: 1700000000, Event: mail.EventDelivered, SGEventID: "e1", SGMessageID: "abc.filter0001.1",
		NoticeID: "n1", IncidentID: "i1", Round: 3, Response: "250 OK",
	}, events[0])
	require.Equal(t, "abc", events[0].MessageID())
	require.Equal(t, time.Unix(1700000000, 0), events[0].Time())
	require.Equal(t, 2, events[1].Round)
	require.Equal(t, "blocked", events[1].BounceType)
	require.Equal(t, "def", events[1].MessageID())
	require.Zero(t, events[2].Round)

	var bad []mail.Event
	require.Error(t, json.Unmarshal([]byte(`[{"round":"two"}]`), &bad))
}
