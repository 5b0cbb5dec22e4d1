package sock

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pushhub/push/internal/uring"
)

// BatchSize is how many writes one io_uring_enter makes.
const BatchSize = 256

// maxRings bounds the rings Batches keeps: one per batch in use at once;
// Get returns nil beyond that many.
const maxRings = 16

// errSendLost: a batched write whose completion never came.
var errSendLost = errors.New("a batched write was lost (io_uring failed)")

// A Batch gathers non-blocking writes to many sockets and makes them
// BatchSize at a time, with one io_uring_enter(2).
type Batch struct {
	p       *Batches
	u       *uring.Ring
	items   []batchedWrite
	buf     []byte
	results [BatchSize]int32
	got     [BatchSize]bool
}

type batchedWrite struct {
	s      Sender
	fd     int32
	b      []byte
	copied bool // b is in the batch's buf
}

// A write of at most batchCopy bytes is copied into the batch's own
// buffer (batchBuffer bytes), and the sender's buffer released
// at once: a batch then holds one buffer instead of hundreds.
const (
	batchCopy   = 512
	batchBuffer = 64 << 10
)

// Batches keeps Batches (and their rings) between uses. The zero value
// makes Batches where io_uring is available.
type Batches struct {
	// Disabled: Get returns nil (no io_uring).
	Disabled bool
	// Log receives the failure of a ring, after which Get returns nil.
	Log *slog.Logger

	mu          sync.Mutex
	free        []*Batch
	unavailable bool         // io_uring is missing or refused here
	closed      bool         // rings are closed when given back
	made        int          // rings made and not closed
	writes      atomic.Int64 // writes made in batches
}

// Get returns a Batch, or nil where io_uring is not available, when
// Disabled, after Close, or when maxRings are in use (p may be nil).
func (p *Batches) Get() *Batch {
	if p == nil || p.Disabled {
		return nil
	}
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free = p.free[:n-1]
		p.mu.Unlock()
		return b
	}
	if p.unavailable || p.closed || p.made >= maxRings {
		p.mu.Unlock()
		return nil
	}
	p.made++
	p.mu.Unlock()
	u, err := uring.NewSend(BatchSize)
	if err != nil {
		p.mu.Lock()
		p.unavailable = true
		p.made--
		p.mu.Unlock()
		return nil
	}
	return &Batch{p: p, u: u, items: make([]batchedWrite, 0, BatchSize), buf: make([]byte, 0, batchBuffer)}
}

// Writes counts the writes made in batches.
func (p *Batches) Writes() int64 { return p.writes.Load() }

// Unavailable reports whether io_uring turned out missing or refused.
func (p *Batches) Unavailable() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.unavailable
}

// Done makes the batch's writes and gives the batch back (nil: nothing
// to do).
func (b *Batch) Done() {
	if b == nil {
		return
	}
	b.flush()
	p := b.p
	p.mu.Lock()
	if p.closed {
		p.made--
		p.mu.Unlock()
		b.u.Close()
		return
	}
	p.free = append(p.free, b)
	p.mu.Unlock()
}

// Close closes the rings kept; those in use are closed when given back.
func (p *Batches) Close() {
	p.mu.Lock()
	p.closed = true
	free := p.free
	p.free = nil
	p.made -= len(free)
	p.mu.Unlock()
	for _, b := range free {
		b.u.Close()
	}
}

// A Sender is a writer whose writes a Batch makes.
type Sender interface {
	// BatchCopied: the batch copied the write's bytes; the sender's
	// buffer is free.
	BatchCopied()
	// BatchSent: the write was made; rest is what the socket did not
	// take, err a failure.
	BatchSent(rest []byte, err error)
}

// Add takes s's non-blocking write of p to socket fd (fd stays open and s
// is the batch's until s.BatchSent), making the batch's writes when it is
// full.
func (b *Batch) Add(fd int32, p []byte, s Sender) {
	copied := len(p) <= batchCopy && len(b.buf)+len(p) <= cap(b.buf)
	if copied {
		start := len(b.buf)
		b.buf = append(b.buf, p...)
		p = b.buf[start:len(b.buf):len(b.buf)]
		s.BatchCopied()
	}
	b.items = append(b.items, batchedWrite{s, fd, p, copied})
	if len(b.items) == BatchSize {
		b.flush()
	}
}

// flush makes the writes gathered and lets each sender go on.
func (b *Batch) flush() {
	if len(b.items) == 0 {
		return
	}
	for i, it := range b.items {
		b.u.SQE().PrepSendNow(it.fd, it.b, uint64(i))
	}
	b.p.writes.Add(int64(len(b.items)))
	// Every send completes as it is submitted; the timeout only bounds
	// a wait that cannot happen.
	if err := b.u.Enter(uint32(len(b.items)), 0, time.Second); err != nil {
		if b.p.Log != nil {
			b.p.Log.Error("push: io_uring_enter failed; fan-outs write with a system call each", "err", err)
		}
		b.p.mu.Lock()
		b.p.unavailable, b.p.closed = true, true // this ring is closed when given back
		b.p.mu.Unlock()
	}
	clear(b.got[:])
	for {
		ud, res, ok := b.u.Next()
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
			// made is unknown, so the sender ends rather than write
			// twice; its client resumes from its last id.
			it.s.BatchSent(nil, errSendLost)
			continue
		case res >= 0:
			n = int(res)
		case syscall.Errno(-res) != syscall.EAGAIN:
			it.s.BatchSent(nil, syscall.Errno(-res))
			continue
		}
		rest := it.b[n:]
		if it.copied && len(rest) > 0 {
			rest = append([]byte(nil), rest...) // the batch's buffer is reused
		}
		it.s.BatchSent(rest, nil)
	}
	b.buf = b.buf[:0]
}
