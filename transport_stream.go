package push

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"time"
)

// Streaming transports (EventSource, WebSocket, HTTP streams) share one
// loop, pump: it pulls messages from the Subscription by position, hands
// them to a streamFraming in batches, flushes once per batch, and wakes for
// pings and the subscriber timeout. Nothing is queued per subscriber: a
// subscriber that is behind reads from the channel's buffer, so what it may
// have pending is bounded by the buffer, and a publisher never waits for it.

// Batch limits: a subscriber that is behind gets at most this much written
// before one flush.
const (
	streamBatchMessages = 64
	streamBatchBytes    = 256 << 10
)

// errSubscriberTimeout ends a stream that got no message for
// Options.SubscriberTimeout.
var errSubscriberTimeout = &HTTPError{StatusCode: http.StatusRequestTimeout, Message: "Request Timeout"}

// connError is a failed write (or ping) to the client: the connection is
// broken or too slow, so no closing frame or comment can be sent.
type connError struct{ err error }

func (e *connError) Error() string { return "push: writing to the subscriber: " + e.err.Error() }
func (e *connError) Unwrap() error { return e.err }

// failed wraps a framing's error as a connError.
func failed(err error) error {
	if err == nil {
		return nil
	}
	return &connError{err}
}

// A streamFraming writes one subscription's messages in one wire format.
type streamFraming interface {
	// message writes m, the message the subscription just returned (its
	// Position is m's position). It may buffer.
	message(m *Message) error
	// missed tells the client that messages were dropped before the next one.
	missed() error
	// flush sends what was buffered.
	flush() error
	// ping keeps an idle stream alive and checks the peer.
	ping() error
}

// pump writes sub's messages to f until the subscription ends, ctx ends or
// a write fails. first, if not nil, is a message already taken from sub.
// gaps is the count of sub.gaps the client already knows about.
func (h *Hub) pump(ctx context.Context, sub *Subscription, f streamFraming, first *Message, gaps int) error {
	ping, idle := h.opts.PingInterval, h.opts.SubscriberTimeout
	var timer *time.Timer
	var tick <-chan time.Time
	if ping > 0 || idle > 0 {
		timer = time.NewTimer(time.Hour)
		defer timer.Stop()
		tick = timer.C
	}
	lastWrite := time.Now()
	lastMsg := lastWrite
	for {
		n, size := 0, 0
		for n < streamBatchMessages && size < streamBatchBytes {
			m := first
			first = nil
			if m == nil {
				var err error
				if m, err = sub.TryNext(ctx); err != nil {
					if n > 0 {
						if ferr := f.flush(); ferr != nil {
							return failed(ferr)
						}
					}
					return err
				}
				if m == nil {
					break
				}
			}
			if sub.gaps != gaps {
				gaps = sub.gaps
				if err := f.missed(); err != nil {
					return failed(err)
				}
			}
			if err := f.message(m); err != nil {
				return failed(err)
			}
			n++
			size += len(m.Data)
		}
		if n > 0 {
			if err := f.flush(); err != nil {
				return failed(err)
			}
			lastWrite = time.Now()
			lastMsg = lastWrite
			continue // more may be waiting
		}
		if timer != nil {
			now := time.Now()
			d := time.Duration(1<<63 - 1)
			if ping > 0 {
				d = min(d, ping-now.Sub(lastWrite))
			}
			if idle > 0 {
				d = min(d, idle-now.Sub(lastMsg))
			}
			timer.Reset(max(d, 0))
		}
		m, fired, err := sub.nextOr(ctx, tick)
		if err != nil {
			return err
		}
		if m != nil {
			first = m
			continue
		}
		if fired {
			now := time.Now()
			if idle > 0 && now.Sub(lastMsg) >= idle {
				return errSubscriberTimeout
			}
			if ping > 0 && now.Sub(lastWrite) >= ping {
				if err := f.ping(); err != nil {
					return failed(err)
				}
				lastWrite = time.Now()
			}
		}
	}
}

// ended reports the end of a streaming subscriber to the log and the test
// hook.
func (h *Hub) ended(t Transport, sub *Subscription, err error) {
	var we *connError
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, ErrChannelDeleted),
		errors.Is(err, ErrHubClosed), errors.Is(err, ErrConflict), err == errSubscriberTimeout:
	case errors.As(err, &we) && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded)):
		h.log.Info("push: slow subscriber dropped: a write or ping took longer than the write timeout; it can resume from its last id",
			"transport", t.String(), "channels", sub.channels, "position", sub.Position(), "error", err)
	case errors.As(err, &we):
		h.log.Debug("push: subscriber connection ended", "transport", t.String(), "channels", sub.channels, "error", err)
	default:
		h.log.Warn("push: subscriber ended by an error", "transport", t.String(), "channels", sub.channels, "error", err)
	}
	if h.streamEnded != nil {
		h.streamEnded(t, err)
	}
}

// httpStream is the part of the HTTP framings that owns the response: it
// arms the write deadline before a batch and flushes after it.
type httpStream struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func newHTTPStream(w http.ResponseWriter, timeout time.Duration) httpStream {
	return httpStream{w: w, rc: http.NewResponseController(w), timeout: timeout}
}

// write writes b under the write deadline. The deadline is renewed for
// each message, not once per batch, so a client that takes each message in
// time is never cut however far behind it is.
func (s *httpStream) write(b []byte) error {
	if s.timeout > 0 {
		s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
	}
	_, err := s.w.Write(b)
	return err
}

func (s *httpStream) flush() error {
	if s.timeout > 0 {
		s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
	}
	return s.rc.Flush()
}

// finish writes b, flushes and clears the write deadline, so a kept-alive
// connection is not cut later by a deadline set for this stream.
func (s *httpStream) finish(b []byte) {
	if len(b) > 0 {
		s.write(b)
	}
	s.flush()
	s.rc.SetWriteDeadline(time.Time{})
}

// startStream takes the first message before the headers are written, so
// an ended subscription is answered with a plain status (as a long-poll
// is), and a resume that missed messages gets the X-Push-Missed header.
func (h *Hub) startStream(w http.ResponseWriter, r *http.Request, sub *Subscription) (*Message, bool) {
	m, err := sub.TryNext(r.Context())
	if err != nil {
		h.endLongPoll(w, sub, "", err)
		return nil, false
	}
	hd := w.Header()
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	if sub.Missed() {
		hd.Set(missedHeader, "true")
	}
	return m, true
}

// serveMultipart streams messages as the parts of a multipart/mixed answer
// (S8): the headers and the first delimiter at once, then for each message a
// part with Last-Modified, Etag and the message's Content-Type (if any),
// followed at once by the next delimiter; "--" ends the body.
func (h *Hub) serveMultipart(w http.ResponseWriter, r *http.Request, sub *Subscription) {
	first, ok := h.startStream(w, r, sub)
	if !ok {
		return
	}
	f := &multipartFraming{httpStream: newHTTPStream(w, h.opts.WriteTimeout), sub: sub,
		multi: len(sub.channels) > 1, boundary: newBoundary()}
	w.Header().Set("Content-Type", "multipart/mixed; boundary="+f.boundary)
	w.WriteHeader(http.StatusOK)
	f.write([]byte("--" + f.boundary))
	err := f.flush()
	if err == nil {
		err = h.pump(r.Context(), sub, f, first, sub.gaps)
	}
	f.finish([]byte("--\r\n"))
	h.ended(TransportMultipart, sub, err)
}

type multipartFraming struct {
	httpStream
	sub      *Subscription
	multi    bool
	boundary string
	gap      bool
	buf      []byte
}

func (f *multipartFraming) message(m *Message) error {
	if f.gap {
		f.gap = false
		if err := f.write([]byte("\r\n" + missedHeader + ": true")); err != nil {
			return err
		}
	}
	if f.multi {
		sec, etag := splitPosition(f.sub.pos, f.sub.mark)
		f.buf = append(f.buf[:0], "\r\nLast-Modified: "...)
		f.buf = time.Unix(sec, 0).UTC().AppendFormat(f.buf, http.TimeFormat)
		f.buf = append(f.buf, "\r\nEtag: "...)
		f.buf = append(f.buf, etag...)
		if err := f.write(f.buf); err != nil {
			return err
		}
		if err := f.write(m.encoded(framingMultipartBody, buildMultipartBody)); err != nil {
			return err
		}
	} else if err := f.write(m.encoded(framingMultipartPart, buildMultipartPart)); err != nil {
		return err
	}
	return f.write([]byte(f.boundary))
}

func (f *multipartFraming) missed() error { f.gap = true; return nil }
func (f *multipartFraming) ping() error   { return nil }

// buildMultipartPart is a part after its delimiter and up to the next one's
// boundary: "\r\nLast-Modified: D\r\nEtag: G[\r\nContent-Type: C]\r\n\r\n<payload>\r\n--".
func buildMultipartPart(m *Message) []byte {
	b := make([]byte, 0, 64+len(m.ContentType)+len(m.Data))
	b = append(b, "\r\nLast-Modified: "...)
	b = time.Unix(m.ID.Time, 0).UTC().AppendFormat(b, http.TimeFormat)
	b = append(b, "\r\nEtag: "...)
	b = strconv.AppendInt(b, m.ID.Tag, 10)
	return append(b, buildMultipartBody(m)...)
}

// buildMultipartBody is a part from its Content-Type on.
func buildMultipartBody(m *Message) []byte {
	b := make([]byte, 0, 24+len(m.ContentType)+len(m.Data))
	if m.ContentType != "" {
		b = append(b, "\r\nContent-Type: "...)
		b = append(b, m.ContentType...)
	}
	b = append(b, "\r\n\r\n"...)
	b = append(b, m.Data...)
	return append(b, "\r\n--"...)
}

// serveChunked streams each message's payload followed by "\n" (S8, TE:
// chunked). It has no per-message ids or pings.
func (h *Hub) serveChunked(w http.ResponseWriter, r *http.Request, sub *Subscription) {
	first, ok := h.startStream(w, r, sub)
	if !ok {
		return
	}
	w.Header()["Content-Type"] = nil // payloads of any type: no sniffing
	w.WriteHeader(http.StatusOK)
	f := &chunkedFraming{httpStream: newHTTPStream(w, h.opts.WriteTimeout)}
	err := f.flush()
	if err == nil {
		err = h.pump(r.Context(), sub, f, first, sub.gaps)
	}
	f.finish(nil)
	h.ended(TransportChunked, sub, err)
}

type chunkedFraming struct{ httpStream }

var newline = []byte{'\n'}

func (f *chunkedFraming) message(m *Message) error {
	if err := f.write(m.Data); err != nil {
		return err
	}
	return f.write(newline)
}

func (f *chunkedFraming) missed() error { return nil }
func (f *chunkedFraming) ping() error   { return nil }

// newBoundary returns a random multipart boundary.
func newBoundary() string {
	return strconv.FormatUint(rand.Uint64(), 36) + strconv.FormatUint(rand.Uint64(), 36)
}
