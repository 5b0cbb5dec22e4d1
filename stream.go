package push

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Streaming transports (WebSocket, EventSource, multipart and chunked HTTP
// streams) share one mechanism, the stream: a Subscription, a framer that
// appends each message in the transport's wire format to an output buffer,
// and the connection the buffer is written to. They differ only in framing
// and in what they read from the client.
//
// A stream has no goroutine of its own while it waits. It is registered as
// a listener on each of its channels; a publish (or a delete, a shutdown...)
// wakes the channel's listeners, and whoever wakes a stream first runs it:
// it reads what is newer than the subscription's position from the Hub's
// window, appends the frames and writes them. The write is non-blocking:
// a subscriber that keeps up takes the whole batch at once, in one system
// call made by the publishing goroutine (so a publish is answered once its
// subscribers have the message, as NHPM's P1 says, and a publisher that
// sends back to back is paced by the fan-out). A subscriber whose socket is
// full gets a goroutine that writes the rest under the write deadline and
// runs the stream until it has caught up; one that takes longer than
// WriteTimeout is dropped and can resume from its last id. Nothing is queued
// per subscriber: one that is behind reads from the channel's buffer.
//
// A hijacked connection ("parked") keeps, while idle, only a small
// goroutine blocked reading from the client (WebSocket control frames, or
// the end of the connection), a few hundred bytes of state and the
// Subscription. A response that cannot be hijacked (HTTP/2, a recorder)
// is "held": the handler's goroutine runs the stream and writes through the
// ResponseWriter.

// Batch limits: a subscriber that is behind gets at most this much written
// at once.
const (
	streamBatchMessages = 64
	streamBatchBytes    = 256 << 10
)

// closeWait is how long a stream that ended waits for the client to close
// its side (a WebSocket's closing handshake) before the connection is cut.
const closeWait = 5 * time.Second

// errSubscriberTimeout ends a stream that got no message for
// Options.SubscriberTimeout.
var errSubscriberTimeout = &HTTPError{StatusCode: http.StatusRequestTimeout, Message: "Request Timeout"}

// errAuthorizationExpired ends a stream at the time an AuthorizeSubscribe
// hook set with EndSubscriptionAt.
var errAuthorizationExpired = &HTTPError{StatusCode: http.StatusUnauthorized, Message: "Unauthorized: the authorization expired; get a new one and subscribe again."}

// errPeerGone ends a stream whose client closed the connection.
var errPeerGone = errors.New("push: the subscriber closed the connection")

// connError is a failed write (or unanswered ping) to the client: the
// connection is broken or too slow, so no ending can be sent.
type connError struct{ err error }

func (e *connError) Error() string { return "push: writing to the subscriber: " + e.err.Error() }
func (e *connError) Unwrap() error { return e.err }

// A framer appends one subscription's messages in one wire format.
type framer interface {
	// message appends m, the message the subscription just returned (its
	// Position is m's position).
	message(b []byte, m *Message) []byte
	// missed appends the signal that messages were dropped before the next.
	missed(b []byte) []byte
	// ping appends a keep-alive, or nothing if the framing has none.
	ping(b []byte) []byte
	// end appends what tells the client the stream ended with err, if
	// anything.
	end(b []byte, err error) []byte
}

// Events posted to a stream by its reader and its timer.
const (
	evGone      uint32 = 1 << iota // the client closed or broke the connection
	evPong                         // a WebSocket ping to answer (stream.pongFrame)
	evPeerClose                    // a WebSocket close to answer (stream.closeFrame), then end
	evTimer                        // the timer fired
)

type stream struct {
	hub *Hub
	sub *Subscription
	f   framer
	t   Transport

	// The connection: parked (conn set; raw for non-blocking writes when
	// the connection allows them) or held (w set).
	conn    net.Conn
	raw     *rawWriter // nil: no non-blocking writes (TLS)
	fd      int32      // conn's descriptor, for a sweep's batched writes; -1: none
	batch   *sendBatch // set by wakeBatched for the next step
	chunked bool       // parked HTTP/1.1 stream: the body goes in chunks
	w       http.ResponseWriter
	rc      *http.ResponseController
	signal  chan struct{} // held: wakes the handler's goroutine
	done    chan struct{} // held: closed when the stream has ended
	closers atomic.Int32  // parked: the reader and release; the last closes conn

	slots []int // per channel: the stream's index in the hubChannel's listeners
	slot1 [1]int

	running atomic.Bool   // someone runs the stream
	dirty   atomic.Bool   // woken: run (again)
	events  atomic.Uint32 // ev* flags

	// Set by the WebSocket reader.
	lastPong   atomic.Int64 // UnixNano of the last pong
	pongFrame  atomic.Pointer[[]byte]
	closeFrame atomic.Pointer[[]byte]

	// Owned by whoever runs the stream.
	first     *Message // taken before the headers were written
	gaps      int      // sub.gaps the client knows about
	out       *[]byte  // frames not yet written; nil while idle
	lastWrite time.Time
	lastMsg   time.Time
	pingSent  time.Time     // WebSocket: a ping awaits its pong
	pingWait  time.Duration // WebSocket: how long a pong may take
	timed     bool          // pings or a subscriber timeout: keep lastWrite, lastMsg
	timer     *time.Timer
	until     time.Time // EndSubscriptionAt; zero: none
	finished  bool

	// A long-poll: one answer, then the connection goes back to the
	// http.Server (keepAlive) or is closed.
	oneShot    bool
	answered   bool
	keepAlive  bool
	returnConn atomic.Bool  // the reader is to return the connection to its server
	handedBack atomic.Bool  // it did
	handBack   atomic.Int32 // handBackNow, or a fan-out pass defers it (see fanOut)
}

// The states of stream.handBack.
const (
	handBackNow   = iota // an answered long-poll's reader is stopped at once
	handBackDefer        // a fan-out pass is running: stop it after the pass
	handBackDue          // answered during the pass: the pass stops it
)

// stopReader stops the reader of an answered long-poll, which then gives
// the connection back (readKeep).
func (s *stream) stopReader() { s.conn.SetReadDeadline(time.Now()) }

// errAnswered ends a long-poll stream that was answered.
var errAnswered = errors.New("push: long-poll answered")

// newStream returns a stream of sub in framing f. Call park or hold next.
func (h *Hub) newStream(t Transport, sub *Subscription, f framer) *stream {
	now := time.Now()
	s := &stream{hub: h, sub: sub, f: f, t: t, gaps: sub.gaps, lastWrite: now, lastMsg: now, fd: -1}
	if len(sub.hcs) == 1 {
		s.slots = s.slot1[:]
	} else {
		s.slots = make([]int, len(sub.hcs))
	}
	s.until = sub.until
	s.timed = h.opts.PingInterval > 0 || h.opts.SubscriberTimeout > 0 || !s.until.IsZero()
	s.running.Store(true) // start runs it first
	return s
}

// park starts the stream on c, a hijacked connection, after writing
// preamble (the response headers and what the framing starts with). read
// reads the client's side of c until c fails or is closed; it runs in a
// goroutine of its own. The stream owns sub and c from then on.
func (s *stream) park(c net.Conn, preamble []byte, read func(*stream)) {
	s.conn = c
	if !s.oneShot {
		forgetConn(c)
	}
	s.raw, s.fd = connWriter(c)
	s.closers.Store(2)
	if err := s.writeBlocking(preamble); err != nil {
		c.Close()
		s.sub.Close()
		s.hub.ended(s.t, s.sub, &connError{err})
		return
	}
	go func() {
		read(s)
		if s.handedBack.Load() {
			return // the connection is the http.Server's again
		}
		s.post(evGone)
		if s.closers.Add(-1) == 0 {
			c.Close()
		}
	}()
	s.start()
}

// holdOn makes w, a response that cannot be hijacked, the stream's
// connection.
func (s *stream) holdOn(w http.ResponseWriter) {
	s.w, s.rc = w, http.NewResponseController(w)
}

// hold runs the stream, on the ResponseWriter given to holdOn, in the
// calling goroutine until it ends or ctx (the request's) ends.
func (s *stream) hold(ctx context.Context) {
	s.signal = make(chan struct{}, 1)
	s.done = make(chan struct{})
	stop := context.AfterFunc(ctx, func() { s.post(evGone) })
	defer stop()
	s.start()
	for {
		select {
		case <-s.done:
			return
		case <-s.signal:
			if s.running.CompareAndSwap(false, true) {
				s.run(true)
			}
		}
	}
}

// start listens to the subscription's channels and runs the stream once,
// for what is available now.
func (s *stream) start() {
	s.dirty.Store(true)
	for i, hc := range s.sub.hcs {
		hc.listen(s, i)
	}
	s.schedule()
	s.run(true)
}

// wake runs the stream (or, when held, signals its goroutine). The Hub
// calls it when a channel of the stream changes; the reader and the timer
// call it through post.
func (s *stream) wake() {
	s.dirty.Store(true)
	if s.signal != nil {
		select {
		case s.signal <- struct{}{}:
		default:
		}
		return
	}
	if s.running.CompareAndSwap(false, true) {
		s.run(false)
	}
}

// wakeBatched is wake for a sweep's worker: the stream's write, if it
// makes one now, goes into b, which makes it with the others (and then
// runs the stream on).
func (s *stream) wakeBatched(b *sendBatch) {
	if s.signal != nil || s.fd < 0 {
		s.wake()
		return
	}
	s.dirty.Store(true)
	if s.running.CompareAndSwap(false, true) {
		s.batch = b
		s.run(false)
	}
}

// post records events and wakes the stream.
func (s *stream) post(ev uint32) {
	s.events.Or(ev)
	s.wake()
}

// postAsync is post for a connection's reader: the stream runs, if it has
// to, in a goroutine of its own, so the reader's stack stays small.
func (s *stream) postAsync(ev uint32) {
	s.events.Or(ev)
	s.dirty.Store(true)
	if s.signal != nil {
		s.wake()
	} else if s.running.CompareAndSwap(false, true) {
		go s.run(true)
	}
}

// run runs the stream while it is dirty; the caller has set running. With
// mayBlock false (a publisher's fan-out), a write the connection cannot
// take at once is handed to a new goroutine, which then owns the stream.
func (s *stream) run(mayBlock bool) {
	for s.dirty.Load() {
		s.dirty.Store(false)
		if s.step(mayBlock) || s.finished {
			return // handed off, or ended: running stays set
		}
		s.running.Store(false)
		if !s.dirty.Load() || !s.running.CompareAndSwap(false, true) {
			return
		}
	}
	// Not dirty after all (another runner took the wake-up): a batch set
	// by wakeBatched was not used, and must not be by a later step.
	s.batch = nil
	s.running.Store(false)
}

// step answers the reader's events, writes the messages available now and
// handles the timer. It reports whether it handed the stream to another
// goroutine.
func (s *stream) step(mayBlock bool) bool {
	b := s.batch // for this step's first write only
	s.batch = nil
	ev := s.events.Swap(0)
	switch {
	case ev&evPeerClose != 0:
		s.finish(nil, mayBlock)
		return false
	case ev&evGone != 0:
		s.finish(errPeerGone, mayBlock)
		return false
	}
	if s.oneShot {
		return s.stepOnce(ev, mayBlock, b)
	}
	if ev&evPong != 0 {
		if p := s.pongFrame.Swap(nil); p != nil {
			s.append(*p)
		}
	}
	for {
		n, size := 0, 0
		for n < streamBatchMessages && size < streamBatchBytes {
			m := s.first
			s.first = nil
			if m == nil {
				var err error
				if m, err = s.sub.TryNext(context.Background()); err != nil {
					s.finish(err, mayBlock)
					return false
				}
				if m == nil {
					break
				}
			}
			s.ensureOut()
			if s.sub.gaps != s.gaps {
				s.gaps = s.sub.gaps
				*s.out = s.f.missed(*s.out)
			}
			*s.out = s.f.message(*s.out, m)
			n++
			size += len(m.Data)
		}
		more := n == streamBatchMessages || size >= streamBatchBytes // the batch is full
		if n > 0 && s.timed {
			s.lastMsg = time.Now()
		}
		if ev&evTimer != 0 && !more {
			ev &^= evTimer
			if err := s.tick(); err != nil {
				s.finish(err, mayBlock)
				return false
			}
			s.schedule()
		}
		if !s.pending() {
			break
		}
		if handed, err := s.flush(mayBlock, b); handed {
			s.events.Or(ev & evTimer) // not handled yet: the new owner does it
			return true
		} else if err != nil {
			s.finish(&connError{err}, mayBlock)
			return false
		}
		if !more {
			break
		}
	}
	s.idle()
	return false
}

// stepOnce is step for a long-poll: the first message, or the end of the
// subscription or the subscriber timeout, is answered, and then the stream
// finishes.
func (s *stream) stepOnce(ev uint32, mayBlock bool, b *sendBatch) bool {
	if !s.answered {
		m, err := s.sub.TryNext(context.Background())
		if m == nil && err == nil && ev&evTimer != 0 {
			if err = s.tick(); err == nil {
				s.schedule()
			}
		}
		switch {
		case m != nil:
			s.ensureOut()
			*s.out = s.f.message(*s.out, m)
		case err != nil:
			s.sub.endErr = err
			s.ensureOut()
			*s.out = s.f.end(*s.out, err)
		default:
			s.idle()
			return false
		}
		s.answered = true
	}
	// Nothing is pending when a goroutine given the answer to write (the
	// socket took only part of it, or has no non-blocking write) has
	// written it and runs the stream on.
	if s.pending() {
		if handed, err := s.flush(mayBlock, b); handed {
			return true
		} else if err != nil {
			s.finish(&connError{err}, mayBlock)
			return false
		}
	}
	setBusy(s.conn, time.Since(s.lastMsg) < parkAfter) // lastMsg: the request's start
	s.finish(errAnswered, mayBlock)
	return false
}

// tick handles the timer: the subscriber timeout, the pong of a WebSocket
// ping, and pings.
func (s *stream) tick() error {
	now := time.Now()
	ping, idle := s.hub.opts.PingInterval, s.hub.opts.SubscriberTimeout
	if idle > 0 && now.Sub(s.lastMsg) >= idle {
		return errSubscriberTimeout
	}
	if !s.until.IsZero() && !now.Before(s.until) {
		if s.oneShot {
			return errSubscriberTimeout // a long-poll's next request is authorized again
		}
		return errAuthorizationExpired
	}
	if !s.pingSent.IsZero() {
		if s.lastPong.Load() >= s.pingSent.UnixNano() {
			s.pingSent = time.Time{}
		} else if now.Sub(s.pingSent) >= s.pingWait {
			s.hub.pingTimeouts.Add(1)
			return &connError{errors.New("ping: no pong within " + s.pingWait.String())}
		}
	}
	if ping > 0 && now.Sub(s.lastWrite) >= ping {
		if p := s.f.ping(nil); len(p) > 0 {
			s.append(p)
			if s.pingWait > 0 && s.pingSent.IsZero() {
				s.pingSent = now
			}
		}
	}
	return nil
}

// schedule sets the timer for the next ping, pong check or subscriber
// timeout. Writes do not move it: when it fires early, tick finds nothing
// due and schedule sets it again.
func (s *stream) schedule() {
	ping, idle := s.hub.opts.PingInterval, s.hub.opts.SubscriberTimeout
	var at time.Time
	earliest := func(t time.Time) {
		if at.IsZero() || t.Before(at) {
			at = t
		}
	}
	if ping > 0 {
		earliest(s.lastWrite.Add(ping))
	}
	if idle > 0 {
		earliest(s.lastMsg.Add(idle))
	}
	if !s.pingSent.IsZero() {
		earliest(s.pingSent.Add(s.pingWait))
	}
	if !s.until.IsZero() {
		earliest(s.until)
	}
	if at.IsZero() {
		return
	}
	d := max(time.Until(at), time.Millisecond)
	if s.timer == nil {
		s.timer = time.AfterFunc(d, func() { s.post(evTimer) })
	} else {
		s.timer.Reset(d)
	}
}
