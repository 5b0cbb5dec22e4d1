package h1

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pushhub/push/internal/sock"
	"github.com/pushhub/push/internal/uring"
)

// The publisher ring: see the package doc.

// publisherRing is the Hub's ring; its goroutine runs while it has
// connections.
type publisherRing struct {
	mu          sync.Mutex
	running     bool
	unavailable bool          // io_uring is missing or refused here
	incoming    []*ringSlot   // joined, not yet taken by the goroutine
	wakeFD      int           // eventfd: wakes the goroutine
	done        chan struct{} // closed when the goroutine ends
	closing     bool          // Shutdown: take no more, let all go
	// wakeBuf is where the goroutine reads wakeFD: the Hub's, so that a
	// read the kernel finishes after the goroutine ended writes to live
	// memory.
	wakeBuf [8]byte
	// joined and left count the connections that joined and left the
	// ring (tests).
	joined, left atomic.Int64
}

// Tags of a request's user data (the low bits; the rest is a slot).
const (
	ringTagWake = iota
	ringTagCancel
	ringTagRecv
	ringTagSend
	ringTagBits = 2
)

// ringScan is how often the ring looks for idle connections.
const ringScan = 250 * time.Millisecond

// A turn of the ring waits up to ringBatchWait for a batch of requests
// (adapt) before it takes what came; a batch is at most ringMaxBatch.
const (
	ringBatchWait = 50 * time.Microsecond
	ringLoneWait  = time.Millisecond
	ringMaxBatch  = 64
	ringProbe     = 8
)

// ringSlot is a connection in the ring.
type ringSlot struct {
	d        *reader
	fd       int32
	pending  int       // completions still to come
	sending  bool      // a send is in flight
	since    time.Time // when that send was made
	deadline time.Time // after it, waiting for a request gives the connection back
	failed   bool      // a send failed: the connection closes
	idle     bool      // cancelled for idleness or Shutdown: it goes back to the http.Server
	leave    bool      // leaves for a goroutine of its own once pending is 0
	cancel   bool      // a cancel was asked
	// cancelAfterSend: the cancel is made once the send in flight is
	// done.
	cancelAfterSend bool
}

// ringLoop is the state of a running ring's goroutine.
type ringLoop struct {
	r     *publisherRing
	cs    *Conns
	u     *uring.Ring
	slots []*ringSlot
	free  []int
	live  int
	now   time.Time // read once a turn
	batch uint32    // the requests a turn waits for (adapt)
	full  int       // turns in a row whose batch filled
	sends uint32    // sends asked for since the last turn
}

// join hands d to the ring, if it may use it: it reports whether the ring
// took d. d has just answered a publish and has nothing buffered.
func (r *publisherRing) join(d *reader) bool {
	cs := d.cs
	if d.noRing || !cs.Ring || len(d.c.prefix) > 0 || d.pace.wait != nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.unavailable || r.closing || cs.closing.Load() {
		return false
	}
	if !r.running {
		if !r.start(cs) {
			return false
		}
	}
	fd, ok := sock.Detach(d.c.Conn) // d.c stays in cs: attach makes another
	if !ok {
		return false
	}
	// Requests read in the ring carry the pace (WaitLater).
	ctx := context.WithValue(d.c.requestTemplate().Context(), paceKey{}, &d.pace)
	d.template = newTemplate(ctx, d.template.RemoteAddr)
	d.pace.on = true
	r.incoming = append(r.incoming, &ringSlot{d: d, fd: fd, deadline: d.deadline})
	r.joined.Add(1)
	r.wake()
	return true
}

// start starts the ring's goroutine (r.mu held) and reports whether its
// io_uring could be set up.
func (r *publisherRing) start(cs *Conns) bool {
	efd, _, e := syscall.RawSyscall(syscall.SYS_EVENTFD2, 0, syscall.O_CLOEXEC, 0)
	if e != 0 {
		return false
	}
	ready := make(chan bool)
	r.wakeFD, r.done = int(efd), make(chan struct{})
	go r.run(cs, ready)
	if !<-ready {
		syscall.Close(r.wakeFD)
		r.unavailable = true
		return false
	}
	r.running = true
	return true
}

// listenerClosed makes the ring let the connections of a closed listener
// go.
func (r *publisherRing) listenerClosed() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running {
		r.wake()
	}
}

// wake makes the ring's goroutine look at incoming, closing and closed
// listeners (r.mu held).
func (r *publisherRing) wake() {
	one := [8]byte{1}
	syscall.Write(r.wakeFD, one[:])
}

// shutdown lets every connection of the ring go (back to the http.Server)
// and waits, at most until ctx ends, for the goroutine to end.
func (r *publisherRing) shutdown(ctx context.Context) {
	r.mu.Lock()
	r.closing = true
	running, done := r.running, r.done
	if running {
		r.wake()
	}
	r.mu.Unlock()
	if running {
		select {
		case <-done:
		case <-ctx.Done():
		}
	}
}

// run is the ring's goroutine.
func (r *publisherRing) run(cs *Conns, ready chan<- bool) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	u, err := uring.New()
	if err != nil {
		ready <- false
		return
	}
	ready <- true
	l := &ringLoop{r: r, cs: cs, u: u, batch: 1}
	l.armWake()
	l.loop()
	u.Close()
}

func (l *ringLoop) armWake() {
	l.u.SQE().PrepRead(int32(l.r.wakeFD), l.r.wakeBuf[:], ringTagWake)
}

// loop runs until the ring has no connections and none came for a scan,
// or Shutdown let them all go.
func (l *ringLoop) loop() {
	nextScan := time.Now().Add(ringScan)
	emptyScans := 0
	for {
		// The sends of this turn complete as they are submitted (unless
		// a socket is full), and the kernel counts their completions:
		// the batch is of requests. The minimum wait bounds how long a
		// send that does not complete (a client that does not read)
		// holds the others up; for a batch of one it is long, so that a
		// lone publisher's next request wakes the ring when it comes
		// and not the timer before it. Without a minimum wait the
		// kernel would wait for all of them until ringScan: wait for
		// any one.
		wait, minWait := l.sends+l.batch, ringBatchWait
		if l.batch <= 1 {
			minWait = ringLoneWait
		}
		if !l.u.MinTimeout() {
			wait = 1
		}
		l.sends = 0
		err := l.u.Enter(wait, minWait, ringScan)
		if err != nil {
			// Cannot happen (EFAULT, EBADF: a bug; EBADR: completions
			// lost). Let every connection go once the completions
			// there are have been read, and take no more.
			l.cs.Log.Error("push: io_uring_enter failed; publishers go back to goroutines", "err", err)
			l.r.mu.Lock()
			l.r.unavailable = true
			l.r.mu.Unlock()
		}
		woken := false
		l.now = time.Now()
		requests := uint32(0)
		for {
			ud, res, ok := l.u.Next()
			if !ok {
				break
			}
			slot := int(ud >> ringTagBits)
			switch ud & (1<<ringTagBits - 1) {
			case ringTagWake:
				woken = true
			case ringTagRecv:
				requests++
				l.received(slot, res)
			case ringTagSend:
				l.sent(slot, res)
			}
		}
		l.adapt(requests)
		if woken {
			l.takeIncoming()
		}
		if err != nil {
			l.cancelAll()
			time.Sleep(10 * time.Millisecond) // not a busy loop if it persists
		}
		if !l.now.Before(nextScan) {
			nextScan = l.now.Add(ringScan)
			l.scan(l.now)
			if l.live == 0 {
				emptyScans++
			} else {
				emptyScans = 0
			}
		}
		if l.live == 0 && (emptyScans >= 2 || l.closing()) && l.stop() {
			return
		}
	}
}

// adapt sets how many requests the next turn waits for (at most
// ringBatchWait) from got, those of this turn: down to got when the wait
// ran out first, up to got when more came, and one more every ringProbe
// turns that filled, up to half the connections there are.
//
// Each request that comes while the ring is waiting for the batch to fill
// costs its sender no wake-up of the ring's thread, and the ring one turn
// for the lot. The half keeps the pipeline going: waiting for every
// connection would leave the ring idle while the clients answer. A lone
// publisher among idle connections waits for the batch once every
// ringProbe publishes.
func (l *ringLoop) adapt(got uint32) {
	if !l.u.MinTimeout() {
		l.batch = 1 // the kernel cannot wait for more than one at most so long
		return
	}
	if got < l.batch {
		l.batch, l.full = max(got, 1), 0
		return
	}
	l.batch = max(l.batch, got)
	if l.full++; l.full >= ringProbe {
		l.full = 0
		l.batch++
	}
	l.batch = min(l.batch, max(uint32(l.live)/2, 1), ringMaxBatch)
}

// closing reports whether Shutdown has begun.
func (l *ringLoop) closing() bool {
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	return l.r.closing
}

// stop ends the loop if no connection is waiting to join.
func (l *ringLoop) stop() bool {
	l.r.mu.Lock()
	defer l.r.mu.Unlock()
	if len(l.r.incoming) > 0 {
		return false
	}
	// The goroutine ends: join starts another for the next connection.
	syscall.Close(l.r.wakeFD)
	l.r.running = false
	close(l.r.done)
	return true
}

// takeIncoming takes the connections that joined, and lets every
// connection go if Shutdown has begun.
func (l *ringLoop) takeIncoming() {
	l.armWake()
	l.r.mu.Lock()
	in, closing := l.r.incoming, l.r.closing
	l.r.incoming = nil
	l.r.mu.Unlock()
	now := l.now
	for _, s := range in {
		if s.deadline.IsZero() || s.deadline.Sub(now) < idleAfter*3/4 {
			s.deadline = now.Add(idleAfter)
		}
		var i int
		if n := len(l.free); n > 0 {
			i, l.free = l.free[n-1], l.free[:n-1]
			l.slots[i] = s
		} else {
			i = len(l.slots)
			l.slots = append(l.slots, s)
		}
		l.live++
		l.recv(i, s, true)
	}
	for _, s := range l.slots {
		if s != nil && (closing || s.d.c.l.closed()) {
			l.letGo(s) // Shutdown, or its listener was closed
		}
	}
}

// cancelAll lets every connection go back to the http.Server.
func (l *ringLoop) cancelAll() {
	for _, s := range l.slots {
		if s != nil {
			l.letGo(s)
		}
	}
}

// letGo cancels the wait of connection s for its next request, so that it
// leaves the ring for the http.Server: at once, or once its answer in
// flight is sent (a stored publish's answer is not cut short).
func (l *ringLoop) letGo(s *ringSlot) {
	if s.cancel {
		return
	}
	s.cancel, s.idle = true, true
	if s.sending {
		s.cancelAfterSend = true
		return
	}
	l.u.SQE().PrepCancelFD(s.fd, ringTagCancel)
}

// scan lets the connections idle past their deadline go, and closes those
// whose answer has waited longer than WriteTimeout to be sent.
func (l *ringLoop) scan(now time.Time) {
	wt := l.cs.WriteTimeout
	for _, s := range l.slots {
		switch {
		case s == nil || s.failed:
		case s.sending && wt > 0 && now.Sub(s.since) > wt && (!s.cancel || s.cancelAfterSend):
			s.failed, s.cancel, s.cancelAfterSend = true, true, false
			l.u.SQE().PrepCancelFD(s.fd, ringTagCancel)
		case !s.sending && now.After(s.deadline):
			l.letGo(s)
		}
	}
}

// recv asks for the connection's next bytes. pollFirst: none are
// expected before the client has read the answer just sent.
func (l *ringLoop) recv(i int, s *ringSlot, pollFirst bool) {
	buf := *s.d.bufp
	l.u.SQE().PrepRecv(s.fd, buf[s.d.n:], uint64(i)<<ringTagBits|ringTagRecv, pollFirst)
	s.pending++
}

// sent is the completion of a send.
func (l *ringLoop) sent(i int, res int32) {
	s := l.slots[i]
	s.sending = false
	s.pending--
	if res < 0 || int(res) != len(s.d.out) {
		s.failed = true // the linked receive is cancelled
	} else {
		s.d.out = s.d.out[:0]
		if s.cancelAfterSend {
			s.cancelAfterSend = false
			l.u.SQE().PrepCancelFD(s.fd, ringTagCancel)
		}
	}
	l.settle(i, s)
}

// received is the completion of a receive.
func (l *ringLoop) received(i int, res int32) {
	s := l.slots[i]
	s.pending--
	d := s.d
	if res <= 0 || s.failed || s.cancel || d.c.l.closed() {
		if res > 0 { // came just before the cancel: keep it
			d.n += int(res)
		}
		// A client that ended its side in the middle of a request goes
		// on in a goroutine, which gives it to the http.Server (400).
		if (res == 0 && d.n == 0) || (res < 0 && !s.idle) {
			s.failed = true
		}
		s.leave = true
		l.settle(i, s)
		return
	}
	d.n += int(res)
	outcome, _ := d.answerBuffered(true)
	buf := *d.bufp
	if d.start > 0 { // keep the unread bytes at the front
		d.n = copy(buf, buf[d.start:d.n])
		d.start = 0
	}
	if outcome != bufferedRead || d.n == len(buf) {
		s.leave = true
		l.settle(i, s)
		return
	}
	switch {
	case d.n == 0:
		d.begun = time.Time{}
		if s.deadline.Sub(l.now) < idleAfter*3/4 {
			s.deadline = l.now.Add(idleAfter)
		}
	case d.begun.IsZero():
		// A request has begun: it is let go (to be ended by a
		// goroutine) if it is not whole within RequestTimeout.
		d.begun = l.now
		if t := l.cs.RequestTimeout; t > 0 && s.deadline.After(l.now.Add(t)) {
			s.deadline = l.now.Add(t)
		}
	}
	l.u.Reserve(2) // a send and the receive linked to it go in one submission
	if len(d.out) > 0 {
		e := l.u.SQE()
		e.PrepSend(s.fd, d.out, uint64(i)<<ringTagBits|ringTagSend)
		e.Link()
		s.pending++
		l.sends++
		s.sending, s.since = true, l.now
	}
	l.recv(i, s, d.n == 0)
}

// settle lets connection i go once nothing of it is in flight: closed
// after a failure, back to the http.Server when idle, else to a goroutine
// of its own.
func (l *ringLoop) settle(i int, s *ringSlot) {
	if s.pending > 0 || !(s.leave || s.failed) {
		return
	}
	l.slots[i] = nil
	l.free = append(l.free, i)
	l.live--
	l.r.left.Add(1)
	d := s.d
	d.pace.on = false
	d.noRing = true
	if s.failed {
		syscall.Close(int(s.fd))
		d.close()
		readers.Put(d)
		return
	}
	c, err := d.c.attach(s.fd)
	if err != nil {
		d.close()
		readers.Put(d)
		return
	}
	// The new connection has no deadlines yet.
	d.c, d.deadline, d.writeDeadline = c, time.Time{}, time.Time{}
	go d.afterRing(s.idle)
}

// afterRing serves d on a goroutine of its own once the ring let it go:
// it waits for the pace its last publish asked for, if any, then serves
// the connection as serve does (idle: gives it back; with a request begun,
// serve ends it when its RequestTimeout has passed).
func (d *reader) afterRing(idle bool) {
	if pass := d.pace.wait; pass != nil {
		d.pace.wait = nil
		t := time.NewTimer(paceWait)
		select {
		case <-pass:
		case <-t.C:
		}
		t.Stop()
	}
	if idle && (d.n == 0 || d.cs.RequestTimeout <= 0) {
		if d.flush() {
			d.giveBack()
		} else {
			d.close()
		}
	} else if d.serve(nil) {
		return // cannot happen: it left the ring for good
	}
	readers.Put(d)
}

// paceWait bounds how long a connection that left the ring waits for
// the pace its last publish asked for (WaitLater).
const paceWait = time.Second

// attach returns the connection with a net.Conn for descriptor fd again
// (which it takes): a new Conn, which takes c's place in Conns. c itself
// does not change: Shutdown may be reading it.
func (c *Conn) attach(fd int32) (*Conn, error) {
	nc, err := sock.Attach(fd)
	if err != nil {
		return nil, err
	}
	n := &Conn{Conn: nc, l: c.l, key: c.key, template: c.template}
	c.l.cs.m.CompareAndSwap(c.key, c, n)
	return n, nil
}

// RingStats describes the publisher ring.
type RingStats struct {
	Joined, Left int64 // connections that joined and left the ring
	Running      bool  // its goroutine runs
	Unavailable  bool  // io_uring is missing or refused here
}

// RingStats describes the publisher ring of cs.
func (cs *Conns) RingStats() RingStats {
	r := &cs.ring
	r.mu.Lock()
	defer r.mu.Unlock()
	return RingStats{Joined: r.joined.Load(), Left: r.left.Load(), Running: r.running, Unavailable: r.unavailable}
}
