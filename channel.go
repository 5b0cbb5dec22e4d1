package push

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// A channel as the subscribers of one Hub see it: a window of its recent
// messages, the streams listening to it, and how a change wakes them (in
// the publishing goroutine, or in a sweep for a large channel).

// A Hub keeps, per channel with local subscribers, a window of the most
// recent messages (at most windowMessages, and no more than windowBytes of
// payload beyond the newest message), so that a publish is served to them
// without a store read and a subscriber that is briefly behind (a burst
// published back to back) catches up from it even when the store's buffer
// is shorter. A subscriber further behind reads the store's buffer and, if
// it fell off that too, is told it missed messages.
const (
	windowMessages = 1024
	windowBytes    = 1 << 20
)

// hubChannel is a channel as seen by the subscribers of this Hub: a window of
// recent messages and a "changed" chan that a publish closes to wake every
// waiter at once.
type hubChannel struct {
	name  string
	mu    sync.Mutex // serialises writers of state
	refs  int        // subscriptions attached; guarded by the shard's mu
	seq   uint64     // last subscriber sequence number; guarded by mu
	state atomic.Pointer[channelState]

	lmu       sync.Mutex
	listeners []listener    // streams to wake on every change
	sweeping  bool          // a goroutine is waking the listeners
	again     bool          // the channel changed during the sweep's pass
	pass      chan struct{} // closed at the end of the sweep's pass
	behind    int           // changes since the pass started
}

// A listener is a stream waiting on a channel: channel i of its
// subscription.
type listener struct {
	s *stream
	i int
}

// channelState is immutable once published through hubChannel.state.
type channelState struct {
	window     []*Message    // recent messages, oldest first, contiguous
	windowSize int           // payload bytes in window
	trimmed    MessageID     // the newest message dropped from window
	epoch      uint64        // counts resets: windows of different epochs are unrelated
	changed    chan struct{} // closed when a newer state exists
	end        error         // non-nil: every subscriber ends with it
	kick       uint64        // subscribers with a lower sequence end with ErrConflict
}

// update publishes a new state of hc, made by change from a copy of the
// current one, and wakes every waiter. change returns false to keep the
// current state. An ended state never changes.
func (hc *hubChannel) update(change func(n *channelState) bool) {
	hc.mu.Lock()
	old := hc.state.Load()
	n := *old
	if old.end != nil || !change(&n) {
		hc.mu.Unlock()
		return
	}
	n.changed = make(chan struct{})
	hc.state.Store(&n)
	close(old.changed)
	hc.mu.Unlock()
	hc.wake()
}

// listen adds stream s, for channel i of its subscription, to the streams
// woken on every change.
func (hc *hubChannel) listen(s *stream, i int) {
	hc.lmu.Lock()
	s.slots[i] = len(hc.listeners)
	hc.listeners = append(hc.listeners, listener{s, i})
	hc.lmu.Unlock()
}

// unlisten undoes listen.
func (hc *hubChannel) unlisten(s *stream, i int) {
	hc.lmu.Lock()
	j, last := s.slots[i], len(hc.listeners)-1
	if j != last {
		moved := hc.listeners[last]
		hc.listeners[j] = moved
		moved.s.slots[moved.i] = j
	}
	hc.listeners[last] = listener{}
	hc.listeners = hc.listeners[:last]
	if cap(hc.listeners) > 64 && len(hc.listeners) < cap(hc.listeners)/4 {
		hc.listeners = append([]listener(nil), hc.listeners...) // give memory back
	}
	hc.lmu.Unlock()
}

// A channel with at most inlineFanOut listening streams is served by the
// publishing goroutine itself: the publish is answered once they have the
// message, at the lowest latency. A larger one is served by a sweep, a
// goroutine that wakes every stream and, if the channel changed meanwhile,
// sweeps again: a publisher sending back to back is not held up by the
// fan-out, and a stream woken once for several messages writes them in one
// system call, which is what makes a busy channel cheap per delivery.
const inlineFanOut = 64

// fanOutChunk is how many streams one goroutine of a sweep wakes at a
// time.
const fanOutChunk = 128

// wake runs every listening stream, or has a sweep do it.
func (hc *hubChannel) wake() {
	hc.lmu.Lock()
	switch n := len(hc.listeners); {
	case n == 0:
		hc.lmu.Unlock()
		return
	case hc.sweeping:
		hc.again = true
		hc.behind++
		hc.lmu.Unlock()
		return
	case n > inlineFanOut:
		hc.sweeping, hc.again = true, true
		hc.lmu.Unlock()
		go hc.sweep()
		return
	}
	var small [inlineFanOut]listener
	ls := append(small[:0], hc.listeners...)
	hc.lmu.Unlock()
	fanOut(ls, false)
}

var listenerBufs = sync.Pool{New: func() any { return new([]listener) }}

// sweep wakes every listening stream until the channel stops changing:
// with one goroutine per CPU the process may use.
func (hc *hubChannel) sweep() {
	bp := listenerBufs.Get().(*[]listener)
	defer listenerBufs.Put(bp)
	for {
		hc.lmu.Lock()
		if !hc.again {
			hc.sweeping = false
			hc.lmu.Unlock()
			return
		}
		hc.again, hc.behind = false, 0
		pass := make(chan struct{})
		hc.pass = pass
		ls := append((*bp)[:0], hc.listeners...)
		hc.lmu.Unlock()
		fanOut(ls, true)
		close(pass)
		clear(ls)
		*bp = ls[:0]
	}
}

// A publisher may run sweepAhead messages ahead of its channel's sweep:
// a publish that finds more waits for the sweep's pass to end (at most
// sweepWait). A subscriber reached late in a pass gets everything published
// meanwhile in one write, which is what makes a busy channel cheap per
// delivery; the bound keeps what a fast publisher queues, and so the latency
// of its messages, to about one pass.
const (
	sweepAhead = 1
	sweepWait  = time.Second
)

// keepPace makes a publisher that is more than sweepAhead messages ahead
// of the channel's sweep wait for its pass to end (or ctx, or sweepWait).
// It reports whether it had to wait.
func (hc *hubChannel) keepPace(ctx context.Context) bool {
	hc.lmu.Lock()
	if !hc.sweeping || hc.behind <= sweepAhead {
		hc.lmu.Unlock()
		return false
	}
	pass := hc.pass
	hc.lmu.Unlock()
	if keepPaceLater(ctx, pass) { // the publisher ring's: it waits in a goroutine
		return true
	}
	waitPass(ctx, pass)
	return true
}

// waitPass waits for a sweep's pass to end, at most sweepWait.
func waitPass(ctx context.Context, pass <-chan struct{}) {
	t := time.NewTimer(sweepWait)
	defer t.Stop()
	select {
	case <-pass:
	case <-t.C:
	case <-ctx.Done():
	}
}

// fanOut wakes the streams of ls. batched (a sweep's): their writes are
// made in batches (sendBatch), where the system has io_uring.
//
// A long-poll answered in the pass gives its connection back to its
// reader (which then reads the client's next poll) only once the pass is
// over, so that the pass's writes are not interleaved with that work on
// the same CPU.
func fanOut(ls []listener, batched bool) {
	for _, l := range ls {
		if l.s.oneShot {
			l.s.handBack.Store(handBackDefer)
		}
	}
	defer func() {
		for _, l := range ls {
			if l.s.oneShot && l.s.handBack.Swap(handBackNow) == handBackDue {
				l.s.stopReader()
			}
		}
	}()
	var batches *sendBatches // nil: no batches
	if batched && len(ls) > 0 {
		batches = ls[0].s.hub.batches
	}
	workers := min(runtime.NumCPU(), runtime.GOMAXPROCS(0), (len(ls)+fanOutChunk-1)/fanOutChunk)
	if workers <= 1 {
		b := batches.Get()
		wakeEach(ls, b)
		b.Done()
		return
	}
	var next atomic.Int64
	work := func() {
		b := batches.Get()
		for {
			end := int(next.Add(fanOutChunk))
			start := end - fanOutChunk
			if start >= len(ls) {
				break
			}
			wakeEach(ls[start:min(end, len(ls))], b)
		}
		b.Done()
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
}

// wakeEach wakes the streams of ls, their writes gathered in b if not nil.
func wakeEach(ls []listener, b *sendBatch) {
	for _, l := range ls {
		if b != nil {
			l.s.wakeBatched(b)
		} else {
			l.s.wake()
		}
	}
}

func (hc *hubChannel) append(m *Message) {
	hc.update(func(n *channelState) bool {
		w := n.window
		if len(w) > 0 && w[len(w)-1].ID.Compare(m.ID) >= 0 {
			return false // already seen
		}
		n.windowSize += len(m.Data)
		for len(w) > 0 && (len(w) >= windowMessages || n.windowSize > windowBytes) {
			n.windowSize -= len(w[0].Data)
			n.trimmed = w[0].ID
			w = w[1:]
		}
		// Appending never changes the elements an older state can see: they
		// are below its length, and only the newest state is appended to.
		n.window = append(w, m)
		return true
	})
}

func (hc *hubChannel) finish(err error) {
	hc.update(func(n *channelState) bool { n.end = err; return true })
}

// reset forgets the window: notifications may have been lost, so it may
// have holes. Subscribers attached before read the store instead.
func (hc *hubChannel) reset() {
	hc.update(func(n *channelState) bool {
		n.window, n.windowSize, n.trimmed = nil, 0, MessageID{}
		n.epoch++
		return true
	})
}

// addSubscriber adds a subscriber to the Hub's view of channel, refusing it under
// Concurrency First. It returns the channel and the subscriber's sequence
// number, and the epoch of its window. From then on the window collects
// every message, until a reset starts a new epoch.
func (h *Hub) addSubscriber(channel string) (*hubChannel, uint64, uint64, error) {
	sh := h.shard(channel)
	sh.mu.Lock()
	if h.isClosing() {
		sh.mu.Unlock()
		return nil, 0, 0, ErrHubClosed
	}
	hc := sh.channels[channel]
	if hc == nil {
		hc = &hubChannel{name: channel}
		hc.state.Store(&channelState{changed: make(chan struct{})})
		sh.channels[channel] = hc
	}
	if h.opts.Concurrency == First && hc.refs > 0 {
		sh.mu.Unlock()
		return nil, 0, 0, ErrConflict
	}
	hc.refs++
	sh.mu.Unlock()

	hc.mu.Lock()
	hc.seq++
	seq := hc.seq
	epoch := hc.state.Load().epoch
	hc.mu.Unlock()
	return hc, seq, epoch, nil
}

// kickBefore ends every subscriber of hc added before the one with
// sequence number seq (Concurrency Last).
func (hc *hubChannel) kickBefore(seq uint64) {
	hc.update(func(n *channelState) bool { n.kick = seq; return true })
}

// removeSubscriber undoes addSubscriber; the channel is forgotten with its
// last subscriber.
func (h *Hub) removeSubscriber(hc *hubChannel) {
	sh := h.shard(hc.name)
	sh.mu.Lock()
	hc.refs--
	if hc.refs == 0 && sh.channels[hc.name] == hc {
		delete(sh.channels, hc.name)
	}
	sh.mu.Unlock()
}
