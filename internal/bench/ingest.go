package bench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/breachflow/breachflow/internal/mail"
	"github.com/breachflow/breachflow/internal/mail/sink"
	"github.com/breachflow/breachflow/internal/store"
)

// Ingest shape: at most IngestMaxEvents events (one per notice), posted by IngestPosters
// concurrent posters in batches the size the sink (like SendGrid) posts.
const (
	IngestMaxEvents  = 300_000
	IngestPosters    = 4
	IngestBatchSize  = sink.DefaultWebhookBatchSize
	IngestBatchBytes = sink.DefaultWebhookBatchBytes
)

// ingestKinds are the events posted, in turn: an engagement event and a repeated
// delivery, both recorded, neither moving a delivered notice (so the run's state holds).
var ingestKinds = [...]mail.EventType{mail.EventOpen, mail.EventDelivered}

// IngestFigures are what the delivery webhook ingest measured.
type IngestFigures struct {
	// Events were posted in Batches by Posters concurrent posters, in Elapsed.
	Events, Batches, Posters int
	Elapsed                  time.Duration
	// Applied is the events the API answered as recorded (each exactly once: the run
	// fails otherwise); PerSecond is Applied over Elapsed.
	Applied   int
	PerSecond float64
	// Replayed is the events of one batch posted again afterwards, all answered as
	// duplicates.
	Replayed int
}

// webhookKey is a signing key of the Event Webhook, shared by the sink and the ingest.
type webhookKey struct {
	priv      *ecdsa.PrivateKey
	private   string // base64 PKCS #8, for sink.Config
	publicKey string // base64 PKIX, as SendGrid shows it, for mail.NewVerifier
}

func newWebhookKey() (webhookKey, error) {
	private, public, err := sink.GenerateKeyBase64()
	if err != nil {
		return webhookKey{}, err
	}
	der, err := base64.StdEncoding.DecodeString(private)
	if err != nil {
		return webhookKey{}, err
	}
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return webhookKey{}, err
	}
	priv, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return webhookKey{}, errors.New("bench: webhook key is not ECDSA")
	}
	return webhookKey{priv: priv, private: private, publicKey: public}, nil
}

// sign returns the signature and timestamp headers of body, as SendGrid signs a post:
// ECDSA P-256 over SHA-256 of the timestamp followed by the body.
func (k webhookKey) sign(body []byte, at time.Time) (sig, ts string, err error) {
	ts = strconv.FormatInt(at.Unix(), 10)
	h := sha256.New()
	h.Write([]byte(ts))
	h.Write(body)
	raw, err := ecdsa.SignASN1(rand.Reader, k.priv, h.Sum(nil))
	if err != nil {
		return "", "", err
	}
	return base64.StdEncoding.EncodeToString(raw), ts, nil
}

// ingestNotice is what an event needs of a notice: ids only, never its address.
type ingestNotice struct {
	id        int64
	round     int
	messageID string
}

// ingest posts one fresh event per notice of the incident (at most IngestMaxEvents) to
// the API's Event Webhook and checks, from the answers and delivery_events, that each
// was applied exactly once; then it posts the first batch again and checks that nothing
// of it is applied twice. The posters build their batches as they go, as the sink does,
// so that the events never sit in memory all at once.
func (r *run) ingest(ctx context.Context, apiURL string, key webhookKey, incidentID string) (IngestFigures, error) {
	f := IngestFigures{Posters: IngestPosters}
	r.phase.Store("webhook ingest: reading notice ids")
	rows, err := r.st.Pool().Query(ctx, `SELECT id, round, coalesce(provider_message_id, '') FROM notices
		WHERE incident_id = $1 ORDER BY id LIMIT $2`, incidentID, IngestMaxEvents)
	if err != nil {
		return f, fmt.Errorf("ingest: notice ids: %w", err)
	}
	notices, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ingestNotice, error) {
		var n ingestNotice
		err := row.Scan(&n.id, &n.round, &n.messageID)
		return n, err
	})
	if err != nil {
		return f, fmt.Errorf("ingest: notice ids: %w", err)
	}
	if len(notices) == 0 {
		return f, errors.New("ingest: the incident has no notices")
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	ev := eventBuilder{notices: notices, incidentID: incidentID, prefix: "bench-" + hex.EncodeToString(b) + "-", at: time.Now().Unix()}
	f.Events = len(notices)

	hc := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: IngestPosters}}
	defer hc.CloseIdleConnections()
	url := apiURL + "/v1/webhooks/sendgrid"
	r.phase.Store("webhook ingest")
	step := r.startStep("events", len(notices))
	defer r.endStep()
	var applied, duplicates, unknown, invalid, received, batches atomic.Int64
	kinds := make([]map[string]int, IngestPosters)
	var chunks atomic.Int64
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	for p := range IngestPosters {
		kinds[p] = map[string]int{}
		g.Go(func() error {
			size := 64 << 10
			for {
				from := int(chunks.Add(1)-1) * IngestBatchSize
				if from >= len(notices) {
					return nil
				}
				end := min(from+IngestBatchSize, len(notices))
				for from < end {
					// A fresh buffer per post: the transport may still read a body after Do returns.
					buf, n := ev.batch(make([]byte, 0, size), from, end)
					size = cap(buf)
					res, err := postEvents(gctx, hc, url, key, buf)
					if err != nil {
						return fmt.Errorf("ingest: events %d-%d: %w", from, from+n-1, err)
					}
					if res.Received != n {
						return fmt.Errorf("ingest: a batch of %d events: the API received %d", n, res.Received)
					}
					applied.Add(int64(res.Applied))
					duplicates.Add(int64(res.Duplicates))
					unknown.Add(int64(res.Unknown))
					invalid.Add(int64(res.Invalid))
					received.Add(int64(res.Received))
					batches.Add(1)
					for k, c := range res.Events {
						kinds[p][k] += c
					}
					step.Add(int64(n))
					from += n
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return f, err
	}
	f.Elapsed = time.Since(start)
	f.Applied, f.Batches = int(applied.Load()), int(batches.Load())
	if f.Elapsed > 0 {
		f.PerSecond = float64(f.Applied) / f.Elapsed.Seconds()
	}

	r.phase.Store("webhook ingest: checking")
	if f.Applied != f.Events || duplicates.Load() != 0 || unknown.Load() != 0 || invalid.Load() != 0 || received.Load() != int64(f.Events) {
		return f, fmt.Errorf("ingest: %d events posted, the API received %d and applied %d (%d duplicates, %d unknown, %d invalid)",
			f.Events, received.Load(), f.Applied, duplicates.Load(), unknown.Load(), invalid.Load())
	}
	byKind := map[string]int{}
	for _, m := range kinds {
		for k, n := range m {
			byKind[k] += n
		}
	}
	for i, k := range ingestKinds {
		if want := (f.Events + len(ingestKinds) - 1 - i) / len(ingestKinds); byKind[string(k)] != want {
			return f, fmt.Errorf("ingest: %d %s events posted, the API applied %d (%v)", want, k, byKind[string(k)], byKind)
		}
	}
	if err := r.countEvents(ctx, ev.prefix, f.Events); err != nil {
		return f, err
	}
	// SendGrid posts at least once: a batch that comes again must change nothing.
	body, n := ev.batch(nil, 0, min(IngestBatchSize, len(notices)))
	res, err := postEvents(ctx, hc, url, key, body)
	if err != nil {
		return f, fmt.Errorf("ingest: replayed batch: %w", err)
	}
	if res.Applied != 0 || res.Duplicates != n {
		return f, fmt.Errorf("ingest: replayed batch of %d events: %d applied, %d duplicates", n, res.Applied, res.Duplicates)
	}
	f.Replayed = res.Duplicates
	if err := r.countEvents(ctx, ev.prefix, f.Events); err != nil {
		return f, err
	}
	return f, nil
}

// countEvents checks that delivery_events holds want events whose ids start with prefix.
func (r *run) countEvents(ctx context.Context, prefix string, want int) error {
	var n int
	if err := r.st.Pool().QueryRow(ctx, `SELECT count(*) FROM delivery_events WHERE starts_with(sg_event_id, $1)`, prefix).Scan(&n); err != nil {
		return fmt.Errorf("ingest: count delivery events: %w", err)
	}
	if n != want {
		return fmt.Errorf("ingest: %d events posted, delivery_events holds %d of them", want, n)
	}
	return nil
}

// eventBuilder writes the notices' events as the sink does. Event i has the fresh
// sg_event_id prefix+i, the kind ingestKinds[i mod len], the notice's message id, and the
// custom args flattened into it as SendGrid sends them (strings).
type eventBuilder struct {
	notices    []ingestNotice
	incidentID string
	prefix     string
	at         int64
}

// batch appends to buf a JSON array of the events from..end-1, closed early once it
// reaches IngestBatchBytes, and returns it and how many events it holds.
func (e eventBuilder) batch(buf []byte, from, end int) ([]byte, int) {
	buf = append(buf, '[')
	i := from
	for ; i < end && len(buf) < IngestBatchBytes; i++ {
		if i > from {
			buf = append(buf, ',')
		}
		nt := e.notices[i]
		kind := ingestKinds[i%len(ingestKinds)]
		id := strconv.FormatInt(nt.id, 10)
		msgID := nt.messageID
		if msgID == "" {
			msgID = "bench"
		}
		msgID += ".filter0001.bench." + strconv.Itoa(i)
		// The address is made up: the notices' own are not read.
		buf = append(buf, `{"email":"recipient-`...)
		buf = append(buf, id...)
		buf = append(buf, `@bench.invalid","timestamp":`...)
		buf = strconv.AppendInt(buf, e.at, 10)
		buf = append(buf, `,"event":"`...)
		buf = append(buf, kind...)
		buf = append(buf, `","sg_event_id":`...)
		buf = appendJSONString(buf, e.prefix+strconv.Itoa(i))
		buf = append(buf, `,"sg_message_id":`...)
		buf = appendJSONString(buf, msgID)
		buf = append(buf, `,"smtp-id":`...)
		buf = appendJSONString(buf, "<"+msgID+"@bench.invalid>")
		if kind == mail.EventOpen {
			buf = append(buf, `,"useragent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64)","ip":"192.0.2.10","sg_machine_open":false`...)
		} else {
			buf = append(buf, `,"response":"250 OK","ip":"192.0.2.10","tls":1`...)
		}
		buf = append(buf, `,"notice_id":"`...)
		buf = append(buf, id...)
		buf = append(buf, `","incident_id":`...)
		buf = appendJSONString(buf, e.incidentID)
		buf = append(buf, `,"round":"`...)
		buf = strconv.AppendInt(buf, int64(nt.round), 10)
		buf = append(buf, `"}`...)
	}
	return append(buf, ']'), i - from
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	raw, _ := json.Marshal(s) // a string always encodes
	return append(b, raw...)
}

// postEvents signs and posts one batch and returns the API's account of it.
func postEvents(ctx context.Context, hc *http.Client, url string, key webhookKey, body []byte) (store.ApplyResult, error) {
	var res store.ApplyResult
	sig, ts, err := key.sign(body, time.Now())
	if err != nil {
		return res, fmt.Errorf("sign: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return res, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "SendGrid Event API")
	req.Header.Set(mail.SignatureHeader, sig)
	req.Header.Set(mail.TimestampHeader, ts)
	resp, err := hc.Do(req)
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return res, err
	}
	if resp.StatusCode != http.StatusOK {
		return res, fmt.Errorf("POST %s: %d %s", url, resp.StatusCode, bytes.TrimSpace(answer))
	}
	if err := json.Unmarshal(answer, &res); err != nil {
		return res, fmt.Errorf("POST %s: answer: %w", url, err)
	}
	return res, nil
}
