package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/pushhub/push/internal/sock"
)

const (
	// bufferSize bounds one request read here: request line,
	// headers and body.
	bufferSize = 8 << 10
	// idleAfter: a connection that sends nothing for about this long is
	// given back to the http.Server (its idle timeout then applies).
	idleAfter = time.Second
)

var buffers = sync.Pool{New: func() any { b := make([]byte, bufferSize); return &b }}

// reader is a connection whose requests are read here.
type reader struct {
	cs       *Conns
	cfg      *Config
	c        *Conn
	template *http.Request // context (with the local address) and RemoteAddr of every request
	bufp     *[]byte
	start, n int // unread bytes are buf[start:n]
	next     int // during answer: where the request being answered ends
	out      []byte
	w        response
	body     bodyReader
	parked   bool      // a long-poll took the connection over (Hijack)
	deadline time.Time // the read deadline last set
	// current is the request being answered; spare is an answered one
	// whose memory the next request reuses (see request).
	current, spare *request
	// writeDeadline is the write deadline last set (Conns.WriteTimeout).
	writeDeadline time.Time
	// pace is the publisher ring's: see WaitLater.
	pace pace
	// noRing: the connection left the publisher ring, and does not join
	// it again.
	noRing bool
	// begun is when the pending part of a request began to arrive; timed:
	// the read deadline is its (Conns.RequestTimeout), not the idle one.
	begun time.Time
	timed bool
	// crlf is how many CR or LF bytes may still be skipped before the
	// next request: net/http skips up to four after a POST, for old
	// clients that end a body with a CRLF.
	crlf int
}

// A Response is what the Hub answers a request read here with: an
// http.ResponseWriter that keeps the answer, to be written with others.
type Response interface {
	http.ResponseWriter
	// Reset empties the response for the next request (head: a HEAD
	// request's, whose body is not written).
	Reset(head bool)
	// AppendTo appends the answer as an HTTP/1.1 response.
	AppendTo(b []byte) []byte
}

// response is the ResponseWriter of a request read here. Its Hijack
// hands the connection to a long-poll that parks.
type response struct {
	Response
	d *reader
}

// FlushError, SetWriteDeadline and SetReadDeadline make
// http.ResponseController calls cheap no-ops (an unsupported call costs
// an error built with fmt.Errorf): the request was read whole, and the
// reader writes the answer under its own deadline.
func (w *response) FlushError() error                { return nil }
func (w *response) SetWriteDeadline(time.Time) error { return nil }
func (w *response) SetReadDeadline(time.Time) error  { return nil }

// Hijack flushes the answers written so far and gives up the connection,
// with the bytes after the current request read first.
func (w *response) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	d := w.d
	if d.parked || !d.flush() {
		return nil, nil, errors.New("push: connection unusable")
	}
	if rest := (*d.bufp)[d.next:d.n]; len(rest) > 0 {
		d.c.prefix = append(append([]byte(nil), rest...), d.c.prefix...)
	}
	d.parked = true
	d.release()
	// The deadlines were this reader's: the parked long-poll's reader
	// waits for as long as the client keeps its connection.
	d.c.handOver()
	return d.c, hijackedReadWriter, nil
}

// hijackedReadWriter is what response.Hijack returns with the
// connection: nothing buffered (the unread bytes are the connection's
// prefix). Its callers only ask how much it holds, so one serves all.
var hijackedReadWriter = bufio.NewReadWriter(bufio.NewReaderSize(eofReader{}, 16), bufio.NewWriterSize(io.Discard, 16))

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// Eligible returns the connection of r if r, read by net/http, is one
// whose connection the reader here may take over: a plain HTTP/1.1
// request for a path its listener's Config reads, with a body of at most
// MaxBody bytes. Requests on a listener without a Config (an app's) are
// never taken over: every one goes through the app's handler chain.
func (cs *Conns) Eligible(w http.ResponseWriter, r *http.Request) *Conn {
	if _, ok := w.(*response); ok || r.URL.RawPath != "" ||
		r.ProtoMajor != 1 || r.ProtoMinor != 1 || r.Close || r.TLS != nil ||
		len(r.TransferEncoding) > 0 || r.ContentLength < 0 || r.ContentLength > MaxBody ||
		r.Header.Get("Expect") != "" || r.Header.Get("Upgrade") != "" || cs.closing.Load() {
		return nil
	}
	c := cs.Lookup(r)
	if c == nil || !c.l.cfg.reads(r.URL.Path) || c.l.closed() ||
		(r.URL.Path == c.l.cfg.SubscribePath && !c.l.cfg.IsPoll(r)) {
		return nil
	}
	return c
}

// MaxBody is the largest body of a request read here.
const MaxBody = bufferSize

// TakeOver serves r, whose body (read by the caller) is body, and the
// following requests on its connection c (from Eligible) here. It
// reports whether it did (and r is answered); if not, r's body is body
// again and the caller serves r.
func (c *Conn) TakeOver(w http.ResponseWriter, r *http.Request, body []byte) bool {
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		r.Body = io.NopCloser(bytes.NewReader(body)) // served by net/http after all
		return false
	}
	c, ok := nc.(*Conn)
	if !ok { // cannot happen: only a listener's connections are Eligible
		nc.Close()
		return true
	}
	d := newReader(c)
	if n := brw.Reader.Buffered(); n > 0 { // a pipelined request
		b, _ := brw.Reader.Peek(n)
		d.n = copy(*d.bufp, b)
	}
	d.body.b = body
	r.Body = &d.body
	if !d.serve(r) {
		readers.Put(d)
	}
	return true
}

// readers keeps readers (and their header maps and output buffers)
// between connections.
var readers = sync.Pool{New: func() any {
	d := &reader{}
	d.w.d = d
	return d
}}

func newReader(c *Conn) *reader {
	d := readers.Get().(*reader)
	w, out, spare := d.w.Response, d.out[:0], d.spare
	*d = reader{cs: c.l.cs, cfg: c.l.cfg, c: c, template: c.requestTemplate(), bufp: buffers.Get().(*[]byte), out: out, spare: spare}
	if w == nil {
		w = d.cs.NewResponse()
	}
	d.w.Response, d.w.d = w, d
	return d
}

// serve answers first (if not nil), then reads and answers the following
// requests until the connection ends, is given back, parks, or joins the
// publisher ring. It reports whether the ring took it: the ring then puts
// d back in readers when it is done with it.
//
// Conns.Shutdown interrupts its read, and the connection goes back to the
// http.Server.
func (d *reader) serve(first *http.Request) (inRing bool) {
	d.c.reading.Store(true)
	defer func() {
		if inRing {
			return // d is the ring's
		}
		d.c.reading.Store(false)
		if d.bufp != nil && !d.parked { // a panic (in a hook): net/http logs it, we close
			d.close()
		}
	}()
	published := false // a publisher's request was answered
	if first != nil {
		if d.answer(first, 0); d.parked {
			return false
		}
		published = first.URL.Path == d.cfg.PublishPath
	}
	for {
		buf := *d.bufp
		switch outcome, pub := d.answerBuffered(false); outcome {
		case bufferedParked:
			return false
		case bufferedNotOurs:
			// The answers to the requests before it go first.
			if d.flush() {
				d.giveBack()
			} else {
				d.close()
			}
			return false
		case bufferedClose:
			d.flush()
			d.close()
			return false
		default:
			published = published || pub
		}
		if !d.flush() {
			d.close()
			return false
		}
		if d.start > 0 { // keep the unread bytes at the front
			d.n = copy(buf, buf[d.start:d.n])
			d.start = 0
		}
		if d.n == len(buf) { // a request larger than the buffer
			d.giveBack()
			return false
		}
		if d.n == 0 {
			// Between requests: the idle deadline.
			if d.timed {
				d.timed, d.deadline = false, time.Time{}
			}
			d.begun = time.Time{}
			d.refreshDeadline()
		} else {
			// A request has begun: it has Conns.RequestTimeout in all;
			// without one, the idle deadline (a connection taken over
			// or back from the ring with part of a request has none
			// yet).
			if d.requestDeadline(); d.deadline.IsZero() {
				d.refreshDeadline()
			}
		}
		if d.n == 0 && d.c.l.closed() { // the http.Server closes idle connections
			d.close()
			return false
		}
		if published && d.n == 0 {
			d.c.reading.Store(false)
			if inRing = d.cs.ring.join(d); inRing {
				return true
			}
			if d.c.reading.Store(true); d.stopping() {
				d.c.SetReadDeadline(aLongTimeAgo) // Conns.Shutdown or the listener's Close may have passed it by
			}
			// Let the goroutines that are ready run before reading a
			// publisher's next request: right after an answer its
			// client has seldom sent it yet, and a read that finds
			// nothing costs a system call and a wait in the network
			// poller (BENCHMARKS.md has the figures). Not after a
			// subscriber's poll: among thousands of long-polls, a
			// connection that yields waits behind all of them.
			runtime.Gosched()
		}
		published = false
		m, err := d.c.readRaw(buf[d.n:])
		d.n += m
		if err != nil {
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded) && d.timed && d.n > 0 && !d.stopping(): // not errors.As: it costs a reflection per call
				d.timedOut()
			case errors.Is(err, os.ErrDeadlineExceeded), err == io.EOF && d.n >= 4:
				// A client that went idle goes back to the http.Server,
				// and so does one that ended its side in the middle of a
				// request, which net/http answers 400 (but for the
				// first four bytes: it then closes without an answer).
				d.giveBack()
			default:
				d.close()
			}
			return false
		}
	}
}

// requestDeadline sets the read deadline of a request that has begun to
// arrive (when its bytes began, if the ring saw them first): it must be
// whole within Conns.RequestTimeout. Without one, the idle deadline stays,
// and a request still incomplete then goes back to the http.Server.
func (d *reader) requestDeadline() {
	if d.timed || d.cs.RequestTimeout <= 0 {
		return
	}
	if d.begun.IsZero() {
		d.begun = time.Now()
	}
	d.timed = true
	d.deadline = d.begun.Add(d.cs.RequestTimeout)
	d.c.SetReadDeadline(d.deadline)
	if d.stopping() { // Conns.Shutdown or the listener's Close may have passed it by
		d.c.SetReadDeadline(aLongTimeAgo)
	}
}

// stopping reports whether the Hub is shutting down or the listener was
// closed: reads are interrupted, and the connection goes back (to be
// closed with the listener).
func (d *reader) stopping() bool { return d.cs.closing.Load() || d.c.l.closed() }

// timedOut ends a connection whose request did not arrive within
// Conns.RequestTimeout as net/http does: silently while its header is
// incomplete, else (the body is late) with 408, as the handlers answer a
// late body.
func (d *reader) timedOut() {
	if bytes.Contains((*d.bufp)[d.start:d.n], crlfcrlf) {
		msg := "Request Timeout: the request did not arrive within " + d.cs.RequestTimeout.String() + "."
		d.out = append(d.out, "HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: "...)
		d.out = strconv.AppendInt(d.out, int64(len(msg)), 10)
		d.out = append(d.out, "\r\n\r\n"...)
		d.out = append(d.out, msg...)
		d.flush()
	}
	d.close()
}

// The outcomes of reader.answerBuffered.
const (
	bufferedRead      = iota // no complete request left: read more
	bufferedParked           // a long-poll parked with the connection
	bufferedNotOurs          // give the connection to the http.Server
	bufferedClose            // a request asked to close: flush, then close
	bufferedLeaveRing        // for the ring: leave the rest to a goroutine
)

// answerBuffered answers the complete requests at the front of the
// buffer, appending their answers to d.out; published reports whether one
// was a publisher's.
//
// inRing (the publisher ring): stop before a request that is not a
// publisher's or that asks to close, and after a publish that has to keep
// pace with its channel's sweep, and report bufferedLeaveRing: a
// goroutine of the connection's own serves what is left.
func (d *reader) answerBuffered(inRing bool) (outcome int, published bool) {
	buf := *d.bufp
	for {
		for d.crlf > 0 && d.start < d.n && (buf[d.start] == '\r' || buf[d.start] == '\n') {
			d.start++
			d.crlf--
		}
		if d.start < d.n {
			d.crlf = 0
		}
		r, size, verdict := d.parse(buf[d.start:d.n])
		switch verdict {
		case requestIncomplete:
			return bufferedRead, published
		case requestNotOurs:
			if inRing {
				return bufferedLeaveRing, published
			}
			return bufferedNotOurs, published
		}
		isPublish := r.URL.Path == d.cfg.PublishPath
		if inRing && (!isPublish || r.Close) {
			d.spare, d.current = d.current, nil // parsed again by the goroutine
			return bufferedLeaveRing, published
		}
		if d.answer(r, d.start+size); d.parked {
			return bufferedParked, published
		}
		d.start += size
		published = published || isPublish
		if r.Close {
			return bufferedClose, published
		}
		if d.pace.wait != nil {
			return bufferedLeaveRing, published
		}
	}
}

// pace lets a publish that has to keep pace with its channel's fan-out
// return at once when on is set, with what to wait for: the publisher
// ring cannot wait, the goroutine it hands the connection to does. A
// request's context carries it (paceKey).
type pace struct {
	on   bool
	wait <-chan struct{}
}

type paceKey struct{}

// WaitLater is for a handler of a request read here that has to wait for
// wait before its connection's next request is read (a publish that keeps
// pace with its channel's fan-out). If the request came through the
// publisher ring, which cannot wait, it records wait and reports true: the
// connection then leaves the ring for a goroutine of its own, which waits
// (at most a second) before reading on. Otherwise it reports false, and
// the handler waits itself.
func WaitLater(ctx context.Context, wait <-chan struct{}) bool {
	if p, ok := ctx.Value(paceKey{}).(*pace); ok && p.on {
		p.wait = wait
		return true
	}
	return false
}

// refreshDeadline keeps the read deadline about idleAfter ahead, setting
// it at most every quarter of that; during Shutdown it stays in the past.
func (d *reader) refreshDeadline() {
	now := time.Now()
	if d.deadline.Sub(now) > idleAfter*3/4 {
		return
	}
	d.deadline = now.Add(idleAfter)
	if d.stopping() {
		d.deadline = aLongTimeAgo
	}
	d.c.SetReadDeadline(d.deadline)
	if d.stopping() { // Shutdown or Close may have run just before
		d.c.SetReadDeadline(aLongTimeAgo)
	}
}

// answer serves one request, which ends at next in the buffer, and
// appends its answer to d.out, unless a long-poll parked with the
// connection.
func (d *reader) answer(r *http.Request, next int) {
	w := &d.w
	w.Reset(r.Method == http.MethodHead)
	d.next = next
	d.crlf = 0
	if r.Method == http.MethodPost {
		d.crlf = 4
	}
	if r.URL.Path == d.cfg.SubscribePath {
		d.cfg.Subscribe.ServeHTTP(w, r)
	} else {
		d.cfg.Publish.ServeHTTP(w, r)
	}
	if d.parked {
		d.current = nil // the parked long-poll's now
		return
	}
	if d.current != nil && d.cs.RecycleRequests {
		d.spare = d.current
	}
	d.current = nil
	if r.Close {
		w.Header().Set("Connection", "close")
	}
	d.out = w.AppendTo(d.out)
}

// flush writes the answers collected: at once if the socket takes them
// (a raw write, as the fan-out's), else under the write deadline.
func (d *reader) flush() bool {
	if len(d.out) == 0 {
		return true
	}
	rest := d.out
	if raw := d.c.rawWriter(); raw != nil {
		n, err := raw.TryWrite(rest)
		if err != sock.ErrWouldBlock {
			d.out = d.out[:0]
			return err == nil
		}
		rest = rest[n:]
	}
	if wt := d.cs.WriteTimeout; wt > 0 {
		// The deadline is renewed when a quarter of it is spent: each
		// write gets between three quarters of WriteTimeout and all of it.
		if now := time.Now(); d.writeDeadline.Sub(now) < wt*3/4 {
			d.writeDeadline = now.Add(wt)
			d.c.SetWriteDeadline(d.writeDeadline)
		}
	}
	_, err := d.c.Write(rest)
	d.out = d.out[:0]
	return err == nil
}

// giveBack hands the connection to the http.Server with the bytes read
// and not served, for net/http to read first.
func (d *reader) giveBack() {
	c := d.c
	rest := (*d.bufp)[d.start:d.n]
	if len(rest) > 0 {
		c.prefix = append(append([]byte(nil), rest...), c.prefix...)
	}
	d.release()
	c.SetDeadline(time.Time{})
	c.l.giveBack(c)
}

func (d *reader) close() {
	d.release()
	d.c.Close()
}

func (d *reader) release() {
	buffers.Put(d.bufp)
	d.bufp = nil
}
