package sink

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Paging limits of GET /sink/messages.
const (
	// DefaultListLimit is the page size when a query gives none.
	DefaultListLimit = 100
	// MaxListLimit is the largest page a query may ask for.
	MaxListLimit = 10_000
)

// storedPage is an accepted request, kept once and shared by its messages; messages are
// rendered from it when read, so accepting costs no per-message copies.
type storedPage struct {
	id         string
	at         time.Time
	from       sgAddress
	replyTo    *sgAddress
	subject    string
	text       string
	html       string
	templateID string
	sendAt     int64
	args       stringMap
	pers       []sgPersonalization
}

func newStoredPage(req *sgRequest, id string, at time.Time) *storedPage {
	p := &storedPage{
		id:         id,
		at:         at,
		subject:    req.Subject,
		templateID: req.TemplateID,
		sendAt:     req.SendAt,
		args:       req.CustomArgs,
		pers:       req.Personalizations,
	}
	if req.From != nil {
		p.from = *req.From
	}
	p.replyTo = req.ReplyTo
	for _, c := range req.Content {
		switch {
		case p.text == "" && strings.EqualFold(c.Type, "text/plain"):
			p.text = c.Value
		case p.html == "" && strings.EqualFold(c.Type, "text/html"):
			p.html = c.Value
		}
	}
	return p
}

// sgMessageID is the per-recipient id used in events: the X-Message-Id extended with the
// personalization and recipient positions, as SendGrid extends it with its own suffix.
func sgMessageID(id string, pers, rcpt int) string {
	return id + "." + strconv.Itoa(pers) + "." + strconv.Itoa(rcpt)
}

// argPairs merges request-level and personalization custom_args as key/value pairs, the
// personalization's winning.
func (p *storedPage) argPairs(i int) []string {
	own := p.pers[i].CustomArgs
	if p.args.len() == 0 {
		return own.pairs
	}
	out := make([]string, 0, len(p.args.pairs)+len(own.pairs))
	for k := 0; k+1 < len(p.args.pairs); k += 2 {
		if _, overridden := own.get(p.args.pairs[k]); !overridden {
			out = append(out, p.args.pairs[k], p.args.pairs[k+1])
		}
	}
	return append(out, own.pairs...)
}

func pairsToMap(pairs []string) map[string]string {
	return stringMap{pairs: pairs}.toMap()
}

// Address is an email address with an optional name.
type Address struct {
	// Email is the address.
	Email string `json:"email"`
	// Name is the display name, if any.
	Name string `json:"name,omitempty"`
}

// Message is one stored personalization with its substitutions applied.
type Message struct {
	// Seq orders messages; it never repeats and serves as the list cursor.
	Seq uint64 `json:"seq"`
	// MessageID is the X-Message-Id of the request that carried the message.
	MessageID string `json:"message_id"`
	// SGMessageID is the sg_message_id of the first to recipient in its events.
	SGMessageID string `json:"sg_message_id"`
	// AcceptedAt is when the sink accepted the request.
	AcceptedAt time.Time `json:"accepted_at"`
	// From is the sender.
	From Address `json:"from"`
	// ReplyTo is where replies go, when the request said.
	ReplyTo *Address `json:"reply_to,omitempty"`
	// To are the to recipients.
	To []Address `json:"to"`
	// CC are the cc recipients.
	CC []Address `json:"cc,omitempty"`
	// BCC are the bcc recipients.
	BCC []Address `json:"bcc,omitempty"`
	// Subject is the rendered subject.
	Subject string `json:"subject"`
	// Text is the rendered text/plain content.
	Text string `json:"text,omitempty"`
	// HTML is the rendered text/html content.
	HTML string `json:"html,omitempty"`
	// Substitutions are the personalization's substitutions as sent.
	Substitutions map[string]string `json:"substitutions,omitempty"`
	// CustomArgs are the request's and personalization's custom_args merged.
	CustomArgs map[string]string `json:"custom_args,omitempty"`
	// TemplateID is the requested template, if any (not rendered).
	TemplateID string `json:"template_id,omitempty"`
	// SendAt is the requested send time in unix seconds, if any.
	SendAt int64 `json:"send_at,omitempty"`
}

func (p *storedPage) message(i int, seq uint64) Message {
	ps := &p.pers[i]
	m := Message{
		Seq:           seq,
		MessageID:     p.id,
		SGMessageID:   sgMessageID(p.id, i, 0),
		AcceptedAt:    p.at,
		From:          Address(p.from),
		ReplyTo:       (*Address)(p.replyTo),
		To:            addresses(ps.To),
		CC:            addresses(ps.CC),
		BCC:           addresses(ps.BCC),
		Subject:       cmp.Or(ps.Subject, p.subject),
		Text:          p.text,
		HTML:          p.html,
		Substitutions: ps.Substitutions.toMap(),
		CustomArgs:    pairsToMap(p.argPairs(i)),
		TemplateID:    p.templateID,
		SendAt:        cmp.Or(ps.SendAt, p.sendAt),
	}
	if ps.From != nil {
		m.From = Address(*ps.From)
	}
	if ps.Substitutions.len() > 0 {
		r := replacer(ps.Substitutions)
		m.Subject = r.Replace(m.Subject)
		m.Text = r.Replace(m.Text)
		m.HTML = r.Replace(m.HTML)
	}
	return m
}

// replacer applies substitutions longest tag first, so that a tag that is a prefix of another
// never wins and the result does not depend on map order.
func replacer(subs stringMap) *strings.Replacer {
	idx := make([]int, 0, subs.len())
	for k := 0; k+1 < len(subs.pairs); k += 2 {
		if subs.pairs[k] != "" {
			idx = append(idx, k)
		}
	}
	slices.SortFunc(idx, func(a, b int) int {
		ka, kb := subs.pairs[a], subs.pairs[b]
		if c := cmp.Compare(len(kb), len(ka)); c != 0 {
			return c
		}
		return strings.Compare(ka, kb)
	})
	pairs := make([]string, 0, 2*len(idx))
	for _, k := range idx {
		pairs = append(pairs, subs.pairs[k], subs.pairs[k+1])
	}
	return strings.NewReplacer(pairs...)
}

func addresses(in []sgAddress) []Address {
	if len(in) == 0 {
		return nil
	}
	out := make([]Address, len(in))
	for i, a := range in {
		out[i] = Address(a)
	}
	return out
}

// slot is one stored message: a personalization of a stored page.
type slot struct {
	page *storedPage
	idx  int32
}

// store is a ring of the most recent messages.
type store struct {
	mu       sync.RWMutex
	slots    []slot
	head     int    // position of the oldest message
	n        int    // messages stored
	next     uint64 // seq of the next message; seqs start at 1
	accepted uint64
}

func newStore(capacity int) *store {
	return &store{slots: make([]slot, capacity), next: 1}
}

func (st *store) add(p *storedPage) {
	capacity := len(st.slots)
	st.mu.Lock()
	defer st.mu.Unlock()
	for i := range p.pers {
		if st.n == capacity {
			st.slots[st.head] = slot{page: p, idx: int32(i)}
			st.head++
			if st.head == capacity {
				st.head = 0
			}
		} else {
			pos := st.head + st.n
			if pos >= capacity {
				pos -= capacity
			}
			st.slots[pos] = slot{page: p, idx: int32(i)}
			st.n++
		}
	}
	st.next += uint64(len(p.pers))
	st.accepted += uint64(len(p.pers))
}

func (st *store) counts() (accepted uint64, stored int) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.accepted, st.n
}

func (st *store) clear() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	n := st.n
	clear(st.slots)
	st.head, st.n = 0, 0
	return n
}

// at returns the k-th oldest message with its seq; the lock must be held.
func (st *store) at(k int) (slot, uint64) {
	pos := st.head + k
	if pos >= len(st.slots) {
		pos -= len(st.slots)
	}
	return st.slots[pos], st.next - uint64(st.n) + uint64(k)
}

func (st *store) get(seq uint64) (Message, bool) {
	st.mu.RLock()
	first := st.next - uint64(st.n)
	if seq < first || seq >= st.next {
		st.mu.RUnlock()
		return Message{}, false
	}
	sl, _ := st.at(int(seq - first))
	st.mu.RUnlock()
	return sl.page.message(int(sl.idx), seq), true
}

// Query selects stored messages.
type Query struct {
	// To keeps messages with this to, cc or bcc address (exact, case-insensitive).
	To string
	// MessageID keeps messages of the request with this X-Message-Id.
	MessageID string
	// After keeps messages with a greater Seq (a cursor; with Newest, a smaller Seq).
	After uint64
	// Offset skips this many matching messages.
	Offset int
	// Limit is the page size: DefaultListLimit if zero, at most MaxListLimit.
	Limit int
	// Newest lists newest first instead of oldest first.
	Newest bool
}

// MessageList is one page of a Query.
type MessageList struct {
	// Total is the number of stored messages matching the query's filters (not its paging).
	Total int `json:"total"`
	// Stored is the number of messages stored.
	Stored int `json:"stored"`
	// Accepted is the number of personalizations accepted since the sink started.
	Accepted uint64 `json:"accepted"`
	// Offset echoes the query's offset.
	Offset int `json:"offset"`
	// Limit is the page size used.
	Limit int `json:"limit"`
	// NextAfter is the cursor for the next page, 0 when this page is the last.
	NextAfter uint64 `json:"next_after,omitempty"`
	// Messages are the page's messages.
	Messages []Message `json:"messages"`
}

type listHit struct {
	slot
	seq uint64
}

func (st *store) list(q Query) MessageList {
	if q.Limit <= 0 {
		q.Limit = DefaultListLimit
	}
	q.Limit = min(q.Limit, MaxListLimit)
	q.Offset = max(q.Offset, 0)
	out := MessageList{Offset: q.Offset, Limit: q.Limit}
	hits := make([]listHit, 0, min(q.Limit, 1024))
	more := false

	st.mu.RLock()
	out.Stored, out.Accepted = st.n, st.accepted
	for i := 0; i < st.n; i++ {
		k := i
		if q.Newest {
			k = st.n - 1 - i
		}
		sl, seq := st.at(k)
		if q.After > 0 && (!q.Newest && seq <= q.After || q.Newest && seq >= q.After) {
			continue
		}
		if q.MessageID != "" && sl.page.id != q.MessageID {
			continue
		}
		if q.To != "" && !sl.page.hasRecipient(int(sl.idx), q.To) {
			continue
		}
		out.Total++
		if out.Total <= q.Offset {
			continue
		}
		if len(hits) < q.Limit {
			hits = append(hits, listHit{sl, seq})
		} else {
			more = true
		}
	}
	st.mu.RUnlock()

	// Render outside the lock: stored pages never change.
	out.Messages = make([]Message, len(hits))
	for i, h := range hits {
		out.Messages[i] = h.page.message(int(h.idx), h.seq)
	}
	if more && len(hits) > 0 {
		out.NextAfter = hits[len(hits)-1].seq
	}
	return out
}

func (p *storedPage) hasRecipient(i int, addr string) bool {
	ps := &p.pers[i]
	for _, list := range [...][]sgAddress{ps.To, ps.CC, ps.BCC} {
		for _, a := range list {
			if strings.EqualFold(a.Email, addr) {
				return true
			}
		}
	}
	return false
}
