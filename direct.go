package push

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
)

// Requests read by the Hub (Options.ListenerPublishPath and
// ListenerSubscribePath).
//
// net/http spends most of a small request's CPU on its own per-request
// work: a request context, a background read that watches for the client
// going away, deadlines set twice, a chunk writer, header parsing into
// fresh maps, and after a long-poll parked, a new goroutine and buffers
// for the connection's next request. A keep-alive connection from the
// Hub's Listener whose request reached PublishHandler at
// ListenerPublishPath, or SubscribeHandler at ListenerSubscribePath, is
// therefore taken over by the Hub (hijacked, as a parked long-poll is), and
// its following requests are read here, as is the next request after a
// parked long-poll's answer. Each is parsed into an *http.Request and
// answered by the same code as the handlers' (servePublishRequest,
// serveSubscribeRequest) through a bufferedResponse, so each endpoint's
// behaviour is one code path whichever side read the request. A long-poll
// that has to wait parks from here too: the response's Hijack hands the
// connection to the stream. Only the plain cases are read here: an
// HTTP/1.1 request for one of the paths, with a Content-Length body that
// fits the buffer and no Expect, Upgrade or Transfer-Encoding, and for
// subscribers a long-poll or JSONP request. Anything else, and a connection
// idle for directIdle, goes back to the http.Server through the Listener
// with the bytes read so far, and net/http answers it as it always does.

const (
	// directBufferSize bounds one request read here: request line,
	// headers and body.
	directBufferSize = 8 << 10
	// directIdle: a connection that sends nothing for about this long is
	// given back to the http.Server (its idle timeout then applies).
	directIdle = time.Second
)

var directBuffers = sync.Pool{New: func() any { b := make([]byte, directBufferSize); return &b }}

// directConn is a connection whose requests the Hub reads.
type directConn struct {
	h        *Hub
	c        *hubConn
	template *http.Request // context (with the local address) and RemoteAddr of every request
	bufp     *[]byte
	start, n int // unread bytes are buf[start:n]
	next     int // during answer: where the request being answered ends
	out      []byte
	w        directResponse
	body     bodyReader
	parked   bool      // a long-poll took the connection over (Hijack)
	deadline time.Time // the read deadline last set
	// current is the request being answered; spare is an answered one
	// whose memory the next request reuses (see directRequest).
	current, spare *directRequest
	// writeDeadline is the write deadline last set (Options.WriteTimeout).
	writeDeadline time.Time
	// pace is the publisher ring's: see paceLater.
	pace paceLater
	// noRing: the connection left the publisher ring, and does not join
	// it again.
	noRing bool
}

// directResponse is the ResponseWriter of a request read by the Hub. Its
// Hijack hands the connection to a long-poll that parks.
type directResponse struct {
	bufferedResponse
	d *directConn
}

// Hijack flushes the answers written so far and gives up the connection,
// with the bytes after the current request read first.
func (w *directResponse) Hijack() (net.Conn, *bufio.ReadWriter, error) {
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
	d.c.SetDeadline(time.Time{})
	return d.c, hijackedReadWriter, nil
}

// hijackedReadWriter is what directResponse.Hijack returns with the
// connection: nothing buffered (the unread bytes are the connection's
// prefix). Its callers only ask how much it holds, so one serves all.
var hijackedReadWriter = bufio.NewReadWriter(bufio.NewReaderSize(eofReader{}, 16), bufio.NewWriterSize(io.Discard, 16))

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// takeOver serves r, and the following requests on its connection, if r
// is a request for one of the Listener paths that may be read by the Hub:
// it reports whether it did (and r is answered).
func (h *Hub) takeOver(w http.ResponseWriter, r *http.Request) bool {
	if _, ok := w.(*directResponse); ok || r.URL.RawPath != "" ||
		r.ProtoMajor != 1 || r.ProtoMinor != 1 || r.Close || r.TLS != nil ||
		len(r.TransferEncoding) > 0 || r.ContentLength < 0 || r.ContentLength > directBufferSize ||
		r.Header.Get("Expect") != "" || r.Header.Get("Upgrade") != "" || h.isClosing() {
		return false
	}
	// Only a Server's connections: on an app's (Hub.Listener) every
	// request goes through the app's handler chain.
	hc := h.listenerConn(r)
	if hc == nil || hc.l.srv == nil || !hc.l.srv.reads(r.URL.Path) ||
		(r.URL.Path == hc.l.srv.SubscribePath && !h.directSubscriber(r)) {
		return false
	}
	var data []byte
	if r.ContentLength > 0 {
		var err error
		if data, err = h.readBody(w, r, r.ContentLength); err != nil {
			writeError(w, err)
			return true
		}
	}
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		r.Body = io.NopCloser(bytes.NewReader(data)) // served by net/http after all
		return false
	}
	hc, ok := c.(*hubConn)
	if !ok { // cannot happen: the connection was found among the Listener's
		c.Close()
		return true
	}
	d := h.newDirectConn(hc, hc.requestTemplate())
	if n := brw.Reader.Buffered(); n > 0 { // a pipelined request
		b, _ := brw.Reader.Peek(n)
		d.n = copy(*d.bufp, b)
	}
	d.body.b = data
	r.Body = &d.body
	if !d.serve(r) {
		directConns.Put(d)
	}
	return true
}

// directSubscriber reports whether subscriber request r is one the Hub
// answers itself: a long-poll or JSONP request (or its CORS preflight).
func (h *Hub) directSubscriber(r *http.Request) bool {
	if r.Method == http.MethodOptions {
		return true
	}
	t := h.pickTransport(r)
	return r.Method == http.MethodGet && (t == TransportLongPoll || t == TransportJSONP)
}

// directConns keeps directConns (and their header maps and output
// buffers) between connections.
var directConns = sync.Pool{New: func() any {
	d := &directConn{}
	d.w.header = make(http.Header)
	d.w.d = d
	return d
}}

func (h *Hub) newDirectConn(c *hubConn, template *http.Request) *directConn {
	d := directConns.Get().(*directConn)
	hd, out, spare := d.w.header, d.out[:0], d.spare
	*d = directConn{h: h, c: c, template: template, bufp: directBuffers.Get().(*[]byte), out: out, spare: spare}
	d.w.header, d.w.d = hd, d
	return d
}

// readNext reads the next request of c, a connection whose parked
// long-poll was answered, if c is a Server's that serves subscribers
// (else it gives c back to the http.Server).
func (h *Hub) readNext(c *hubConn) {
	if c.l.srv == nil || c.l.srv.SubscribePath == "" || h.isClosing() || len(c.prefix) > directBufferSize {
		c.l.giveBack(c)
		return
	}
	d := h.newDirectConn(c, c.requestTemplate())
	d.n = copy(*d.bufp, c.prefix)
	c.prefix = nil
	if !d.serve(nil) {
		directConns.Put(d)
	}
}

// requestTemplate returns the request every request the Hub reads on c
// starts as: the Server's base context with c's local address, and c's
// remote address. Nothing of one request (its context values, its
// deadline) reaches the next.
func (c *hubConn) requestTemplate() *http.Request {
	if c.template == nil {
		c.template = newTemplate(c.l.srv.baseContext(c), c.RemoteAddr().String())
	}
	return c.template
}

// newTemplate returns a request template with ctx and remoteAddr; no
// ServeMux pattern.
func newTemplate(ctx context.Context, remoteAddr string) *http.Request {
	return (&http.Request{Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, RemoteAddr: remoteAddr}).WithContext(ctx)
}

// interruptDirect makes every connection whose requests the Hub reads
// give up waiting for the next one (Shutdown); those that start later see
// isClosing.
func (h *Hub) interruptDirect() {
	h.conns.Range(func(_, v any) bool {
		if c := v.(*hubConn); c.direct.Load() {
			c.SetReadDeadline(aLongTimeAgo)
		}
		return true
	})
}

// aLongTimeAgo is a deadline in the past: it interrupts a blocked Read.
var aLongTimeAgo = time.Unix(1, 0)

// serve answers first (if not nil), then reads and answers the following
// requests until the connection ends, is given back, parks, or joins the
// publisher ring. It reports whether the ring took it: the ring then puts
// d back in directConns when it is done with it.
//
// Hub.Shutdown interrupts its read (interruptDirect), and the connection
// goes back to the http.Server.
func (d *directConn) serve(first *http.Request) (inRing bool) {
	d.c.direct.Store(true)
	defer func() {
		if inRing {
			return // d is the ring's
		}
		d.c.direct.Store(false)
		if d.bufp != nil && !d.parked { // a panic (in a hook): net/http logs it, we close
			d.close()
		}
	}()
	published := false // a publisher's request was answered
	if first != nil {
		if d.answer(first, 0); d.parked {
			return false
		}
		published = first.URL.Path == d.c.l.srv.PublishPath
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
			// Between requests. A request that has begun is not given
			// more time: a client that sends it slowly is given back to
			// the http.Server, whose own timeouts then apply.
			d.refreshDeadline()
		}
		if published && d.n == 0 {
			d.c.direct.Store(false)
			if inRing = d.h.ring.join(d); inRing {
				return true
			}
			if d.c.direct.Store(true); d.h.isClosing() {
				d.c.SetReadDeadline(aLongTimeAgo) // interruptDirect may have passed it by
			}
			// Let the goroutines that are ready run before reading a
			// publisher's next request: right after an answer its
			// client has seldom sent it yet, and a read that finds
			// nothing costs a system call and a wait in the network
			// poller. Under 50 busy publishers this took the reads from
			// 2.0 per publish to 1.1, and a publish from 8.0 to 7.2 µs
			// of CPU. When nothing else is ready it costs a trip through
			// the scheduler. Not after a subscriber's poll: among
			// thousands of long-polls, a connection that yields waits
			// behind all of them (at 10 messages/s to 10,000 long-polls
			// the p99 went from 350-450 to 430-560 ms).
			runtime.Gosched()
		}
		published = false
		m, err := d.c.readDirect(buf[d.n:])
		d.n += m
		if err != nil {
			// A client that went idle, and one that ended its side in
			// the middle of a request (which net/http answers 400), go
			// back to the http.Server.
			if errors.Is(err, os.ErrDeadlineExceeded) || (err == io.EOF && d.n > d.start) { // not errors.As: it costs a reflection per call
				d.giveBack()
			} else {
				d.close()
			}
			return false
		}
	}
}

// The outcomes of directConn.answerBuffered.
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
func (d *directConn) answerBuffered(inRing bool) (outcome int, published bool) {
	buf := *d.bufp
	for {
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
		isPublish := r.URL.Path == d.c.l.srv.PublishPath
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
		if d.pace.pass != nil {
			return bufferedLeaveRing, published
		}
	}
}

// paceLater lets a publish that has to keep pace with its channel's sweep
// (hubChannel.keepPace) return at once when on is set, with the pass to
// wait for: the publisher ring cannot wait, the goroutine it hands the
// connection to does. A request's context carries it (paceLaterKey).
type paceLater struct {
	on   bool
	pass <-chan struct{}
}

type paceLaterKey struct{}

// refreshDeadline keeps the read deadline about directIdle ahead, setting
// it at most every quarter of that; during Shutdown it stays in the past.
func (d *directConn) refreshDeadline() {
	now := time.Now()
	if d.deadline.Sub(now) > directIdle*3/4 {
		return
	}
	d.deadline = now.Add(directIdle)
	if d.h.isClosing() {
		d.deadline = aLongTimeAgo
	}
	d.c.SetReadDeadline(d.deadline)
	if d.h.isClosing() { // Shutdown's AfterFunc may have run just before
		d.c.SetReadDeadline(aLongTimeAgo)
	}
}

// answer serves one request, which ends at next in the buffer, and
// appends its answer to d.out, unless a long-poll parked with the
// connection.
func (d *directConn) answer(r *http.Request, next int) {
	w := &d.w
	clear(w.header)
	w.status, w.body, w.head = 0, w.body[:0], r.Method == http.MethodHead
	d.next = next
	if r.URL.Path == d.c.l.srv.SubscribePath {
		d.h.serveSubscribeRequest(w, r)
	} else {
		d.h.servePublishRequest(w, r)
	}
	if d.parked {
		d.current = nil // the parked long-poll's now
		return
	}
	if d.current != nil && d.h.recycleRequests {
		d.spare = d.current
	}
	d.current = nil
	if r.Close {
		w.header.Set("Connection", "close")
	}
	d.out = w.appendTo(d.out)
}

// flush writes the answers collected: at once if the socket takes them
// (a raw write, as the fan-out's), else under the write deadline.
func (d *directConn) flush() bool {
	if len(d.out) == 0 {
		return true
	}
	rest := d.out
	if raw := d.c.rawWriter(); raw != nil {
		n, err := raw.tryWrite(rest)
		if err != errWouldBlock {
			d.out = d.out[:0]
			return err == nil
		}
		rest = rest[n:]
	}
	if wt := d.h.opts.WriteTimeout; wt > 0 {
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
func (d *directConn) giveBack() {
	c := d.c
	rest := (*d.bufp)[d.start:d.n]
	if len(rest) > 0 {
		c.prefix = append(append([]byte(nil), rest...), c.prefix...)
	}
	d.release()
	c.SetDeadline(time.Time{})
	c.l.giveBack(c)
}

func (d *directConn) close() {
	d.release()
	d.c.Close()
}

func (d *directConn) release() {
	directBuffers.Put(d.bufp)
	d.bufp = nil
}

// The verdicts of directConn.parse.
const (
	requestIncomplete = iota // read more
	requestServe             // a request to answer here
	requestNotOurs           // give the connection to the http.Server
)

// parse reads the request at the start of b, if it is complete and one to
// serve here; size is its length in b. Its strings are copied from b; its
// body is b's and is read before b is reused.
func (d *directConn) parse(b []byte) (r *http.Request, size int, verdict int) {
	if len(b) == 0 {
		return nil, 0, requestIncomplete
	}
	end := bytes.Index(b, crlfcrlf)
	if end < 0 {
		return nil, 0, requestIncomplete
	}
	head := string(b[:end+2]) // every line with its CRLF
	line, rest := cutLine(head)
	method, line, ok1 := cutSpace(line)
	target, proto, ok2 := cutSpace(line)
	if !ok1 || !ok2 || proto != "HTTP/1.1" || len(target) == 0 || target[0] != '/' || !validTarget(target) {
		return nil, 0, requestNotOurs
	}
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodGet, http.MethodHead, http.MethodDelete, http.MethodOptions:
	default:
		return nil, 0, requestNotOurs
	}
	path, query, _ := cutByte(target, '?')
	if !d.c.l.srv.reads(path) {
		return nil, 0, requestNotOurs
	}
	lines := strings.Count(rest, "\n")
	dr := d.spare // the request, its URL, header map and values
	if dr == nil {
		dr = new(directRequest)
	}
	d.spare = nil
	hdr := dr.header
	if hdr == nil {
		hdr = make(http.Header, lines)
		dr.header = hdr
	} else {
		clear(hdr)
	}
	values := dr.values[:]
	if lines > len(values) {
		values = make([]string, lines)
	}
	var host string
	hosts := 0
	contentLength := int64(0)
	lengths := 0
	closeAfter := false
	for i := 0; len(rest) > 0; i++ {
		line, rest = cutLine(rest)
		name, value, ok := cutByte(line, ':')
		if !ok || !validHeaderName(name) {
			return nil, 0, requestNotOurs
		}
		value = trimOWS(value)
		if !validHeaderValue(value) {
			return nil, 0, requestNotOurs
		}
		key := http.CanonicalHeaderKey(name)
		switch key {
		case "Host": // net/http moves it to Request.Host
			if !validHost(value) {
				return nil, 0, requestNotOurs
			}
			host = value
			hosts++
			continue
		case "Content-Length":
			n, ok := parseContentLength(value)
			if !ok {
				return nil, 0, requestNotOurs
			}
			contentLength = n
			lengths++
		case "Connection":
			for t := range strings.SplitSeq(value, ",") {
				t = trimOWS(t)
				switch {
				case t == "":
				case strings.EqualFold(t, "close"):
					closeAfter = true
				case strings.EqualFold(t, "keep-alive"):
				default: // "upgrade", hop-by-hop header names: net/http's
					return nil, 0, requestNotOurs
				}
			}
		case "Transfer-Encoding", "Expect", "Upgrade", "Trailer":
			return nil, 0, requestNotOurs
		}
		if vs, ok := hdr[key]; ok {
			hdr[key] = append(vs, value)
		} else {
			values[i] = value
			hdr[key] = values[i : i+1 : i+1]
		}
	}
	if hosts != 1 || lengths > 1 || contentLength > directBufferSize {
		return nil, 0, requestNotOurs
	}
	size = end + 4 + int(contentLength)
	if size > len(b) {
		d.spare = dr // the body is still coming: parsed again then
		return nil, 0, requestIncomplete
	}
	d.current = dr
	r = &dr.r
	*r = *d.template // its context and RemoteAddr
	r.Method = method
	dr.url = url.URL{Path: path, RawQuery: query}
	r.URL = &dr.url
	r.RequestURI = target
	r.Header = hdr
	r.Host = host
	r.ContentLength = contentLength
	r.Close = closeAfter
	r.Form, r.PostForm, r.MultipartForm, r.Trailer, r.TransferEncoding = nil, nil, nil, nil, nil
	d.body.b = b[end+4 : size]
	r.Body = &d.body
	if path == d.c.l.srv.SubscribePath && !d.h.directSubscriber(r) {
		return nil, 0, requestNotOurs // a streaming subscriber: net/http's
	}
	return r, size, requestServe
}

// directRequest is a request read by a directConn, with room for its URL
// and up to eight header values.
//
// When no hook of the Options sees requests (Hub.recycleRequests), an
// answered request's memory is reused by the connection's next request:
// the Hub's own code keeps no request after answering it (a long-poll
// that parks keeps its own). Its strings are never reused: they are copied
// from the connection's buffer for each request.
type directRequest struct {
	r      http.Request
	url    url.URL
	header http.Header
	values [8]string
}

var crlfcrlf = []byte("\r\n\r\n")

// cutLine cuts s after its first CRLF.
func cutLine(s string) (line, rest string) {
	if i := strings.Index(s, "\r\n"); i >= 0 {
		return s[:i], s[i+2:]
	}
	return s, ""
}

func cutSpace(s string) (before, after string, ok bool) { return cutByte(s, ' ') }

func cutByte(s string, c byte) (before, after string, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// validTarget reports whether an origin-form request target has only
// visible ASCII and no fragment (anything else is net/http's to judge).
func validTarget(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	return true
}

// validHost reports whether a Host value is a plain host[:port]: letters,
// digits, '.', '-', ':', '[' and ']' (anything else is net/http's to
// judge).
func validHost(s string) bool { return alnumOr(s, ".-:[]") }

// trimOWS trims spaces and tabs around a header value.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// validHeaderName reports whether s is a token (RFC 9110 5.6.2).
func validHeaderName(s string) bool { return alnumOr(s, "!#$%&'*+-.^_`|~") }

// alnumOr reports whether s is not empty and holds only ASCII letters,
// digits and bytes of extra.
func alnumOr(s, extra string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte(extra, c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue reports whether s has no control characters but tabs.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// parseContentLength reads a Content-Length: decimal digits only.
func parseContentLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

// bodyReader is a request body held in memory.
type bodyReader struct{ b []byte }

func (br *bodyReader) Read(p []byte) (int, error) {
	if len(br.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, br.b)
	br.b = br.b[n:]
	return n, nil
}

func (br *bodyReader) Close() error { return nil }
