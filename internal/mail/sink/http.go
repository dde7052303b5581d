package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.uber.org/zap"
)

func (s *Sink) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v3/mail/send", s.handleSend)
	mux.HandleFunc("GET /sink/messages", s.handleList)
	mux.HandleFunc("DELETE /sink/messages", s.handleClear)
	mux.HandleFunc("GET /sink/messages/{seq}", s.handleGet)
	mux.HandleFunc("GET /sink/faults", s.handleGetFaults)
	mux.HandleFunc("POST /sink/faults", s.handleSetFaults)
	mux.HandleFunc("GET /sink/stats", s.handleStats)
	mux.HandleFunc("GET /sink/public-key", s.handlePublicKey)
	mux.HandleFunc("POST /sink/flush", s.handleFlush)
	mux.HandleFunc("GET /sink/{$}", s.handleMailbox)
	mux.HandleFunc("GET /sink/view/{seq}", s.handleView)
	mux.HandleFunc("GET /sink", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/sink/", http.StatusFound)
	})
	return mux
}

// Messages lists stored messages.
func (s *Sink) Messages(q Query) MessageList { return s.store.list(q) }

// Message returns the stored message with this seq, if it is still stored.
func (s *Sink) Message(seq uint64) (Message, bool) { return s.store.get(seq) }

// Reset forgets every stored message; counters and seqs carry on.
func (s *Sink) Reset() { s.store.clear() }

// Faults returns the faults in force.
func (s *Sink) Faults() Faults { return s.faults.get() }

// SetFaults replaces the faults in force.
func (s *Sink) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	s.faults.set(f, 0)
	return nil
}

// FlushWebhooks posts every event queued so far and returns once they are posted (or given up).
// Without a WebhookURL it returns at once.
func (s *Sink) FlushWebhooks(ctx context.Context) error {
	if s.hook == nil {
		return nil
	}
	return s.hook.flush(ctx)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeBadRequest(w http.ResponseWriter, field, msg string) {
	writeJSON(w, http.StatusBadRequest, struct {
		Errors []apiError `json:"errors"`
	}{[]apiError{fieldError(field, msg, "")}})
}

func parseQuery(v url.Values) (Query, error) {
	q := Query{To: v.Get("to"), MessageID: v.Get("message_id")}
	var err error
	if s := v.Get("after"); s != "" {
		if q.After, err = strconv.ParseUint(s, 10, 64); err != nil {
			return q, errors.New("after must be a message seq")
		}
	}
	for _, f := range []struct {
		name string
		dst  *int
	}{{"offset", &q.Offset}, {"limit", &q.Limit}} {
		if s := v.Get(f.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return q, fmt.Errorf("%s must be a non-negative integer", f.name)
			}
			*f.dst = n
		}
	}
	switch v.Get("order") {
	case "", "oldest":
	case "newest":
		q.Newest = true
	default:
		return q, errors.New("order must be oldest or newest")
	}
	return q, nil
}

// handleList is GET /sink/messages?to=&message_id=&after=&offset=&limit=&order=.
func (s *Sink) handleList(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.Query())
	if err != nil {
		writeBadRequest(w, "query", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, s.store.list(q))
}

func (s *Sink) handleGet(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil {
		writeBadRequest(w, "seq", "seq must be a message seq")
		return
	}
	m, ok := s.store.get(seq)
	if !ok {
		writeJSON(w, http.StatusNotFound, struct {
			Errors []apiError `json:"errors"`
		}{[]apiError{plainError("message not stored")}})
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// handleClear is DELETE /sink/messages.
func (s *Sink) handleClear(w http.ResponseWriter, _ *http.Request) {
	n := s.store.clear()
	s.log.Info("mail sink cleared", zap.Int("messages", n))
	writeJSON(w, http.StatusOK, struct {
		Deleted int `json:"deleted"`
	}{n})
}

func (s *Sink) handleGetFaults(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.faults.get())
}

// handleSetFaults is POST /sink/faults: the body replaces the faults in force ({} clears them).
// Besides the Faults fields it takes outage_seconds (an outage from now on) and seed.
func (s *Sink) handleSetFaults(w http.ResponseWriter, r *http.Request) {
	var u faultsUpdate
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&u); err != nil {
		writeBadRequest(w, "body", "faults must be a JSON object of known fields: "+err.Error())
		return
	}
	if u.OutageSeconds < 0 {
		writeBadRequest(w, "outage_seconds", "outage_seconds must not be negative")
		return
	}
	if u.OutageSeconds > 0 {
		u.OutageUntil = time.Now().Add(time.Duration(u.OutageSeconds * float64(time.Second)))
	}
	if err := u.Faults.validate(); err != nil {
		writeBadRequest(w, "faults", err.Error())
		return
	}
	s.faults.set(u.Faults, u.Seed)
	s.log.Info("mail sink faults set",
		zap.Float64("rate_limit_share", u.RateLimitShare),
		zap.Int("rate_limit_reset_seconds", u.RateLimitResetSeconds),
		zap.Float64("server_error_share", u.ServerErrorShare),
		zap.Int("latency_ms", u.LatencyMillis),
		zap.Time("outage_until", u.OutageUntil))
	writeJSON(w, http.StatusOK, u.Faults)
}

func (s *Sink) handleStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

func (s *Sink) handlePublicKey(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, s.pub+"\n")
}

func (s *Sink) handleFlush(w http.ResponseWriter, r *http.Request) {
	if err := s.FlushWebhooks(r.Context()); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, struct {
			Errors []apiError `json:"errors"`
		}{[]apiError{plainError(err.Error())}})
		return
	}
	writeJSON(w, http.StatusOK, s.Stats())
}
