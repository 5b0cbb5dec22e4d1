package push

import (
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A sweep's writes through an io_uring (uring_linux.go): a fan-out
// worker gathers the writes of up to sendBatchSize streams (a frame or a
// batch of frames for each), and one io_uring_enter(2) makes them all,
// instead of a sendto(2) each. Each is the non-blocking write the stream
// would have made itself: what the socket takes at once is written, and a
// stream whose socket takes less goes on as it would have (the rest is
// written by a goroutine under the write deadline).

// sendBatchSize is how many writes one io_uring_enter makes.
const sendBatchSize = 256

// maxSendRings bounds the rings a Hub keeps for batches: one per sweep
// worker running at once, and sweeps beyond that many write with a system
// call each.
const maxSendRings = 16

// errSendLost: a batched write whose completion never came.
var errSendLost = errors.New("push: a batched write was lost (io_uring failed)")

// sendBatch is a fan-out worker's batch of writes.
type sendBatch struct {
	h       *Hub
	u       *uring
	items   []batchedWrite
	buf     []byte
	results [sendBatchSize]int32
	got     [sendBatchSize]bool
}

type batchedWrite struct {
	s      *stream
	b      []byte
	copied bool // b is in the batch's buf
}

// A write of at most sendBatchCopy bytes is copied into the batch's own
// buffer (sendBatchBuffer bytes), and the stream's output buffer released
// at once: a batch then holds one buffer instead of hundreds.
const (
	sendBatchCopy   = 512
	sendBatchBuffer = 64 << 10
)

// sendRings keeps a Hub's sendBatches (and their rings) between sweeps.
type sendRings struct {
	mu          sync.Mutex
	free        []*sendBatch
	unavailable bool         // io_uring is missing or refused here
	closed      bool         // Shutdown: rings are closed when given back
	made        int          // rings made and not closed
	writes      atomic.Int64 // writes made in batches (tests)
}

// sendBatch returns a batch for a fan-out worker, or nil where io_uring is
// not available (or h is nil).
func (h *Hub) sendBatch() *sendBatch {
	if h == nil || h.opts.DisableIOURing {
		return nil
	}
	r := &h.sendRings
	r.mu.Lock()
	if n := len(r.free); n > 0 {
		b := r.free[n-1]
		r.free = r.free[:n-1]
		r.mu.Unlock()
		return b
	}
	if r.unavailable || r.closed || r.made >= maxSendRings {
		r.mu.Unlock()
		return nil // more sweeps at once than that: the rest write as before
	}
	r.made++
	r.mu.Unlock()
	u, err := newSendURing()
	if err != nil {
		r.mu.Lock()
		r.unavailable = true
		r.made--
		r.mu.Unlock()
		return nil
	}
	return &sendBatch{h: h, u: u, items: make([]batchedWrite, 0, sendBatchSize), buf: make([]byte, 0, sendBatchBuffer)}
}

// done makes the batch's writes and gives the batch back to the Hub (nil:
// nothing to do).
func (b *sendBatch) done() {
	if b == nil {
		return
	}
	b.flush()
	r := &b.h.sendRings
	r.mu.Lock()
	if r.closed {
		r.made--
		r.mu.Unlock()
		b.u.close()
		return
	}
	r.free = append(r.free, b)
	r.mu.Unlock()
}

// closeSendRings closes the rings kept (Shutdown); those in use are closed
// when given back.
func (h *Hub) closeSendRings() {
	r := &h.sendRings
	r.mu.Lock()
	r.closed = true
	free := r.free
	r.free = nil
	r.made -= len(free)
	r.mu.Unlock()
	for _, b := range free {
		b.u.close()
	}
}

// add takes s's write of p (s is the batch's until the write is made),
// making the batch's writes when it is full.
func (b *sendBatch) add(s *stream, p []byte) {
	copied := len(p) <= sendBatchCopy && len(b.buf)+len(p) <= cap(b.buf)
	if copied {
		start := len(b.buf)
		b.buf = append(b.buf, p...)
		p = b.buf[start:len(b.buf):len(b.buf)]
		s.idle()
	}
	b.items = append(b.items, batchedWrite{s, p, copied})
	if len(b.items) == sendBatchSize {
		b.flush()
	}
}

// flush makes the writes gathered and lets each stream go on.
func (b *sendBatch) flush() {
	if len(b.items) == 0 {
		return
	}
	for i, it := range b.items {
		b.u.sqe().prepSendNow(it.s.fd, it.b, uint64(i))
	}
	b.h.sendRings.writes.Add(int64(len(b.items)))
	// Every send completes as it is submitted; the timeout only bounds
	// a wait that cannot happen.
	if err := b.u.enter(uint32(len(b.items)), 0, time.Second); err != nil {
		b.h.log.Error("push: io_uring_enter failed; sweeps write with a system call each", "err", err)
		b.h.sendRings.mu.Lock()
		b.h.sendRings.unavailable, b.h.sendRings.closed = true, true // this ring is closed when given back
		b.h.sendRings.mu.Unlock()
	}
	clear(b.got[:])
	for {
		ud, res, ok := b.u.next()
		if !ok {
			break
		}
		if int(ud) < len(b.items) {
			b.results[ud], b.got[ud] = res, true
		}
	}
	items := b.items
	b.items = b.items[:0]
	for i, it := range items {
		items[i] = batchedWrite{}
		res := b.results[i]
		n := 0
		switch {
		case !b.got[i]:
			// No completion (the ring is broken): whether the write was
			// made is unknown, so the stream ends rather than write
			// twice; its client resumes from its last id.
			it.s.written(nil, errSendLost)
			continue
		case res >= 0:
			n = int(res)
		case syscall.Errno(-res) != syscall.EAGAIN:
			it.s.written(nil, syscall.Errno(-res))
			continue
		}
		rest := it.b[n:]
		if it.copied && len(rest) > 0 {
			rest = append([]byte(nil), rest...) // the batch's buffer is reused
		}
		it.s.written(rest, nil)
	}
	b.buf = b.buf[:0]
}
