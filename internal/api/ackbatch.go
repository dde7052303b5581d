package api

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/breachflow/breachflow/internal/store"
)

// maxAckBatch bounds the acknowledgements one transaction records.
const maxAckBatch = 500

// ackBatchTimeout bounds one batch's transaction; it serves several requests, so it
// runs on a context of its own rather than on any one request's.
const ackBatchTimeout = 30 * time.Second

// ackBatcher records acknowledgements in group commits: a POST waits for the transaction
// that records it, as before, but the POSTs that arrive while one transaction runs are
// recorded together by the next. Every acknowledgement appends to the audit chain, whose
// lock is held to the end of each transaction, so one transaction per acknowledgement
// would commit them one at a time.
type ackBatcher struct {
	st      *store.Store
	mu      sync.Mutex
	pending []*ackCall
	running bool
}

type ackCall struct {
	req      store.AckRequest
	recorded bool
	err      error
	done     chan struct{}
}

// acknowledge records req and reports whether this call recorded it; it returns when
// the transaction holding it has committed (or failed), or when ctx ends first.
func (b *ackBatcher) acknowledge(ctx context.Context, req store.AckRequest) (bool, error) {
	c := &ackCall{req: req, done: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, c)
	lead := !b.running
	b.running = true
	b.mu.Unlock()
	if lead {
		b.drain()
	}
	select {
	case <-c.done:
		return c.recorded, c.err
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// drain records one batch, then hands what arrived meanwhile to a goroutine of its own,
// so that no caller waits for batches after its own.
func (b *ackBatcher) drain() {
	b.mu.Lock()
	batch := b.pending[:min(len(b.pending), maxAckBatch)]
	b.pending = b.pending[len(batch):]
	b.mu.Unlock()

	// Whatever happens below (a panic included), every caller of the batch is answered
	// and the next batch gets a leader.
	err := errAckNotRecorded
	var recorded []bool
	defer func() {
		for i, c := range batch {
			if err != nil {
				c.err = err
			} else {
				c.recorded = recorded[i]
			}
			close(c.done)
		}
		b.mu.Lock()
		more := len(b.pending) > 0
		b.running = more
		b.mu.Unlock()
		if more {
			go b.drain()
		}
	}()
	reqs := make([]store.AckRequest, len(batch))
	for i, c := range batch {
		reqs[i] = c.req
	}
	ctx, cancel := context.WithTimeout(context.Background(), ackBatchTimeout)
	defer cancel()
	recorded, err = b.st.AcknowledgeMany(ctx, reqs)
}

// errAckNotRecorded answers the callers of a batch that ended without an answer.
var errAckNotRecorded = errors.New("acknowledgement not recorded")
