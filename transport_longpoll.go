package push

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// serveLongPoll answers with the first message after the subscription's
// position, holding the request until one is published (S2), the subscriber
// timeout (S3), or the subscription ends. In interval-poll mode it answers
// 304 at once when nothing is newer. With callback set it answers JSONP.
//
// A long-poll that has to wait on a connection from the Hub's Listener
// parks (see Listener) at once, unless the connection's last poll was
// answered within parkAfter: a client polling a busy channel would pay for
// a hijack per poll, so its poll waits here first and parks only when it
// has waited parkAfter. Others wait in this goroutine. It owns sub.
func (h *Hub) serveLongPoll(w http.ResponseWriter, r *http.Request, sub *Subscription, callback string) {
	ctx := r.Context()
	start := time.Now()
	m, err := sub.TryNext(ctx)
	if m == nil && err == nil && !h.opts.IntervalPoll {
		hc := h.parkable(r)
		if _, limited := ctx.Deadline(); limited {
			hc = nil // a parked long-poll would outlive the deadline of the app's middleware
		}
		if hc != nil && !hc.busy.Load() && h.parkLongPoll(w, r, sub, callback, start) {
			return
		}
		waitCtx := ctx
		if t := h.opts.SubscriberTimeout; t > 0 {
			var cancel context.CancelFunc
			waitCtx, cancel = context.WithTimeout(ctx, t)
			defer cancel()
		}
		if hc != nil {
			t := time.NewTimer(parkAfter)
			var fired bool
			m, fired, err = sub.nextOr(waitCtx, t.C)
			t.Stop()
			if fired {
				hc.busy.Store(false)
				if h.parkLongPoll(w, r, sub, callback, start) {
					return
				}
				m, err = sub.Next(waitCtx)
			}
		} else {
			m, err = sub.Next(waitCtx)
		}
		if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = nil // our subscriber timeout, not the client's
		}
	}
	defer sub.Close()
	if ctx.Err() != nil {
		return // the client is gone
	}
	h.answerLongPoll(w, sub, callback, m, err)
}

// answerLongPoll answers a long-poll with m, or the end of the
// subscription (err), or the timeout answer (neither).
func (h *Hub) answerLongPoll(w http.ResponseWriter, sub *Subscription, callback string, m *Message, err error) {
	switch {
	case err != nil:
		h.endLongPoll(w, sub, callback, err)
	case m == nil:
		h.timeoutLongPoll(w, sub, callback)
	case callback != "":
		var body []byte
		if len(sub.channels) == 1 {
			body = jsonpMessageBody(m)
		} else {
			body = jsonpBody(m, sub.Position())
		}
		writeJSONP(w, jsonpWrap(callback, body))
	default:
		if h.opts.LongPollCatchUp {
			if more, _ := sub.TryNext(context.Background()); more != nil {
				h.writeCatchUp(w, sub, m, more)
				return
			}
		}
		hd := w.Header()
		if m.ContentType != "" {
			hd.Set("Content-Type", m.ContentType)
		} else {
			hd["Content-Type"] = nil // no sniffing: the message had none
		}
		setPositionHeaders(hd, sub)
		hd.Set("Vary", "If-None-Match, If-Modified-Since")
		hd.Set("Content-Length", strconv.Itoa(len(m.Data)))
		if sub.Missed() {
			hd.Set(missedHeader, "true")
		}
		h.writeAnswer(w, m.Data)
	}
}

// parkAfter: a long-poll answered within parkAfter of its request marks
// its connection busy, and the next long-poll on a busy connection waits
// that long in its handler before it parks.
const parkAfter = 250 * time.Millisecond

// parkable returns the Listener's connection of r if a long-poll of r can
// park: it can be kept alive after the answer.
func (h *Hub) parkable(r *http.Request) *hubConn {
	if r.ProtoMajor != 1 || r.ProtoMinor < 1 || r.Close || r.TLS != nil || r.ContentLength != 0 {
		return nil
	}
	return h.listenerConn(r)
}

// listenerConn returns the connection of r if a Listener of the Hub
// accepted it, else nil.
func (h *Hub) listenerConn(r *http.Request) *hubConn {
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	c, _ := h.conns.Load(connKey(local, r.RemoteAddr))
	hc, _ := c.(*hubConn)
	return hc
}

// parkLongPoll parks a long-poll that has waited since start: the
// connection is hijacked and the long-poll becomes a one-shot stream (see
// stream.go) whose answer is written as net/http would have. It reports
// whether it did; it then owns sub.
func (h *Hub) parkLongPoll(w http.ResponseWriter, r *http.Request, sub *Subscription, callback string, start time.Time) bool {
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	f := &longPollFramer{h: h, sub: sub, callback: callback, header: w.Header().Clone()}
	s := h.newStream(TransportLongPoll, sub, f)
	s.oneShot = true
	s.lastMsg = start // the subscriber timeout counts from the request
	hc, ok := c.(*hubConn)
	s.keepAlive = ok
	if !ok { // not from the Listener after all: the answer closes it
		f.header.Set("Connection", "close")
	}
	read := readDiscard
	if ok {
		if n := brw.Reader.Buffered(); n > 0 {
			b, _ := brw.Reader.Peek(n)
			hc.prefix = append(hc.prefix, b...)
		}
		read = readKeep
	}
	s.park(c, nil, read)
	return true
}

// longPollFramer writes a parked long-poll's answer.
type longPollFramer struct {
	h        *Hub
	sub      *Subscription
	callback string
	header   http.Header // set before it parked (CORS)
}

func (f *longPollFramer) message(b []byte, m *Message) []byte {
	w := &bufferedResponse{header: f.header}
	f.h.answerLongPoll(w, f.sub, f.callback, m, nil)
	return w.appendTo(b)
}

func (f *longPollFramer) end(b []byte, err error) []byte {
	if err == errAnswered {
		return b
	}
	if err == errSubscriberTimeout {
		err = nil // the timeout answer
	}
	w := &bufferedResponse{header: f.header}
	f.h.answerLongPoll(w, f.sub, f.callback, nil, err)
	return w.appendTo(b)
}

func (f *longPollFramer) missed(b []byte) []byte { return b }
func (f *longPollFramer) ping(b []byte) []byte   { return b }

// bufferedResponse is an http.ResponseWriter that collects the answer of a
// parked long-poll, to write it to the hijacked connection.
type bufferedResponse struct {
	header http.Header
	status int
	body   []byte
	head   bool // the answer to a HEAD request: no body, its length kept
}

func (w *bufferedResponse) Header() http.Header { return w.header }

func (w *bufferedResponse) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *bufferedResponse) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.body = append(w.body, p...)
	return len(p), nil
}

// FlushError and SetWriteDeadline make http.ResponseController calls on a
// bufferedResponse cheap no-ops (an unsupported call costs an error built
// with fmt.Errorf): whoever writes the buffered answer flushes it, under
// its own deadline.
func (w *bufferedResponse) FlushError() error                { return nil }
func (w *bufferedResponse) SetWriteDeadline(time.Time) error { return nil }

// SetReadDeadline is a no-op too: a request answered through a
// bufferedResponse was read whole before.
func (w *bufferedResponse) SetReadDeadline(time.Time) error { return nil }

// appendTo appends the answer as an HTTP/1.1 response with a
// Content-Length, so the connection can be kept alive. Like net/http, it
// sniffs the Content-Type of a body that has none (unless the header maps
// Content-Type to nil).
func (w *bufferedResponse) appendTo(b []byte) []byte {
	w.WriteHeader(http.StatusOK)
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(w.status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(w.status)...)
	b = append(b, "\r\nDate: "...)
	b = appendDate(b)
	b = append(b, "\r\n"...)
	body := w.body
	switch {
	case w.status == http.StatusNotModified || w.status == http.StatusNoContent || w.status < 200:
		delete(w.header, "Content-Length")
		body = nil
	case w.head:
		body = nil // a Content-Length set by the handler stays
	default:
		delete(w.header, "Content-Length")
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\n"...)
		if _, ok := w.header["Content-Type"]; !ok && len(body) > 0 {
			w.header.Set("Content-Type", http.DetectContentType(body))
		}
	}
	b = appendHeader(b, w.header)
	b = append(b, "\r\n"...)
	return append(b, body...)
}

// appendDate appends the current time as an HTTP date.
func appendDate(b []byte) []byte { return append(b, httpTime(&lastDate, time.Now().Unix())...) }

// httpTime formats the Unix second sec as an HTTP date, keeping the text
// in last for the next call with the same second.
func httpTime(last *atomic.Pointer[httpDate], sec int64) string {
	if d := last.Load(); d != nil && d.unix == sec {
		return d.text
	}
	d := &httpDate{unix: sec, text: time.Unix(sec, 0).UTC().Format(http.TimeFormat)}
	last.Store(d)
	return d.text
}

type httpDate struct {
	unix int64
	text string
}

// The last Date and Last-Modified texts made: answers mostly ask for the
// current second, and for the newest message's.
var lastDate, lastModified atomic.Pointer[httpDate]

// writeAnswer writes a 200 long-poll answer with body under the write
// deadline, flushes it, and clears the deadline (the connection may be
// kept alive for the next poll).
func (h *Hub) writeAnswer(w http.ResponseWriter, body []byte) {
	rc := http.NewResponseController(w)
	if h.opts.WriteTimeout > 0 {
		rc.SetWriteDeadline(time.Now().Add(h.opts.WriteTimeout))
	}
	w.WriteHeader(http.StatusOK)
	w.Write(body)
	if h.opts.WriteTimeout > 0 {
		rc.Flush()
		rc.SetWriteDeadline(time.Time{})
	}
}

// setPositionHeaders sets Last-Modified and Etag to the subscription's
// position (I2).
func setPositionHeaders(hd http.Header, sub *Subscription) {
	sec, etag := splitPosition(sub.pos, sub.mark)
	hd["Last-Modified"] = []string{httpTime(&lastModified, sec)}
	hd["Etag"] = []string{etag}
}

// timeoutLongPoll answers a long-poll that found nothing newer in time: the
// TimeoutStatus (304 by default) with the position, so the client re-polls
// from where it was.
func (h *Hub) timeoutLongPoll(w http.ResponseWriter, sub *Subscription, callback string) {
	if callback != "" {
		writeJSONP(w, jsonpTimeout(callback, sub.Position()))
		return
	}
	setPositionHeaders(w.Header(), sub)
	w.WriteHeader(h.opts.TimeoutStatus)
}

// endLongPoll answers a long-poll whose subscription ended: 410 Gone on
// delete (empty body), 409 on conflict, 503 on shutdown, each with the
// position so the client can resume.
func (h *Hub) endLongPoll(w http.ResponseWriter, sub *Subscription, callback string, err error) {
	status := statusOf(err)
	if callback != "" {
		writeJSONP(w, jsonpError(callback, status, http.StatusText(status)))
		return
	}
	hd := w.Header()
	setPositionHeaders(hd, sub)
	switch status {
	case http.StatusGone:
		w.WriteHeader(status)
	case http.StatusServiceUnavailable:
		hd.Set("Retry-After", "1")
		msg := "Service Unavailable: the message store cannot be reached; retry."
		if errors.Is(err, ErrHubClosed) {
			msg = "Service Unavailable: the server is shutting down; resume from your last id."
		}
		writeText(w, status, msg)
	default:
		if status >= 500 {
			h.log.Warn("push: long-poll failed", "channels", sub.channels, "error", err)
		}
		writeError(w, err)
	}
}

// Catch-up limits: at most this much in one long-poll answer.
const (
	catchUpMessages = 100
	catchUpBytes    = 1 << 20
)

// writeCatchUp answers a long-poll that found several messages waiting
// with all of them (Options.LongPollCatchUp), as multipart/mixed:
// "--B\n", then per message an optional "Content-Type: C\n" line, "\n",
// the payload, "\n--B\n"..., ending "--B--\n". Last-Modified/Etag are the
// position after the last part. Lines end in LF alone because
// NchanSubscriber.js's parser keeps a CR at the end of each payload
// otherwise; Go's mime/multipart reads both.
func (h *Hub) writeCatchUp(w http.ResponseWriter, sub *Subscription, first, second *Message) {
	msgs := []*Message{first, second}
	size := len(first.Data) + len(second.Data)
	for len(msgs) < catchUpMessages && size < catchUpBytes {
		m, err := sub.TryNext(context.Background())
		if m == nil || err != nil {
			break
		}
		msgs = append(msgs, m)
		size += len(m.Data)
	}
	boundary := newBoundary()
	body := make([]byte, 0, size+len(msgs)*(len(boundary)+40))
	for _, m := range msgs {
		body = append(body, "--"...)
		body = append(body, boundary...)
		body = append(body, '\n')
		body = append(body, m.encoded(framingLongPollPart, buildLongPollPart)...)
	}
	body = append(body, "--"...)
	body = append(body, boundary...)
	body = append(body, "--\n"...)
	hd := w.Header()
	hd.Set("Content-Type", "multipart/mixed; boundary="+boundary)
	setPositionHeaders(hd, sub)
	hd.Set("Vary", "If-None-Match, If-Modified-Since")
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	if sub.Missed() {
		hd.Set(missedHeader, "true")
	}
	h.writeAnswer(w, body)
}

// buildLongPollPart is a catch-up part after its delimiter line.
func buildLongPollPart(m *Message) []byte {
	b := make([]byte, 0, 20+len(m.ContentType)+len(m.Data))
	if m.ContentType != "" {
		b = append(b, "Content-Type: "...)
		b = append(b, m.ContentType...)
		b = append(b, '\n')
	}
	b = append(b, '\n')
	b = append(b, m.Data...)
	return append(b, '\n')
}
