package push

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// HTTP streams (EventSource, multipart/mixed, TE: chunked) are streams (see
// stream.go) over one long response. Over HTTP/1.x the connection is
// hijacked: the response is written as it would be by net/http (chunked
// for HTTP/1.1, "Connection: close"), and the stream parks. Otherwise (HTTP/2)
// the handler's goroutine holds the response.

// serveHTTPStream answers r with a 200 stream of sub in framing f: the
// headers already set on w, Cache-Control: no-cache, and body, the
// framing's start, at once. first, if not nil, is a message already taken
// from sub. It owns sub.
func (h *Hub) serveHTTPStream(w http.ResponseWriter, r *http.Request, t Transport, sub *Subscription, f framer, first *Message, body []byte) {
	hd := w.Header()
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	s := h.newStream(t, sub, f)
	s.first = first
	if r.ProtoMajor == 1 {
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			s.chunked = r.ProtoAtLeast(1, 1)
			b := make([]byte, 0, 512)
			b = append(b, "HTTP/1.1 200 OK\r\nDate: "...)
			b = time.Now().UTC().AppendFormat(b, http.TimeFormat)
			b = append(b, "\r\nConnection: close\r\n"...)
			if s.chunked {
				b = append(b, "Transfer-Encoding: chunked\r\n"...)
			}
			b = appendHeader(b, hd)
			b = append(b, "\r\n"...)
			if s.chunked && len(body) > 0 {
				b = strconv.AppendUint(b, uint64(len(body)), 16)
				b = append(b, "\r\n"...)
				b = append(append(b, body...), "\r\n"...)
			} else {
				b = append(b, body...)
			}
			s.park(c, b, readDiscard)
			return
		}
	}
	w.WriteHeader(http.StatusOK)
	s.holdOn(w)
	if err := s.writeHeld(body); err != nil {
		sub.Close()
		return
	}
	s.hold(r.Context())
}

// readDiscard reads the client side of an HTTP stream, which sends nothing
// more, until the connection ends.
func readDiscard(s *stream) {
	var buf [64]byte
	for {
		if _, err := s.conn.Read(buf[:]); err != nil {
			return
		}
	}
}

// startStream takes the first message before the headers are written, so
// an ended subscription is answered with a plain status (as a long-poll
// is), and a resume that missed messages gets the X-Push-Missed header. On
// false the request was answered and sub closed.
func (h *Hub) startStream(w http.ResponseWriter, r *http.Request, sub *Subscription) (*Message, bool) {
	m, err := sub.TryNext(r.Context())
	if err != nil {
		h.endLongPoll(w, sub, "", err)
		sub.Close()
		return nil, false
	}
	if sub.Missed() {
		w.Header().Set(missedHeader, "true")
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
	f := &multipartFramer{sub: sub, multi: len(sub.channels) > 1, boundary: newBoundary()}
	w.Header().Set("Content-Type", "multipart/mixed; boundary="+f.boundary)
	h.serveHTTPStream(w, r, TransportMultipart, sub, f, first, []byte("--"+f.boundary))
}

type multipartFramer struct {
	sub      *Subscription
	multi    bool
	boundary string
	gap      bool
}

func (f *multipartFramer) message(b []byte, m *Message) []byte {
	if f.gap {
		f.gap = false
		b = append(b, "\r\n"+missedHeader+": true"...)
	}
	if f.multi {
		sec, etag := splitPosition(f.sub.pos, f.sub.mark)
		b = append(b, "\r\nLast-Modified: "...)
		b = time.Unix(sec, 0).UTC().AppendFormat(b, http.TimeFormat)
		b = append(b, "\r\nEtag: "...)
		b = append(b, etag...)
		b = append(b, m.encoded(framingMultipartBody, buildMultipartBody)...)
	} else {
		b = append(b, m.encoded(framingMultipartPart, buildMultipartPart)...)
	}
	return append(b, f.boundary...)
}

func (f *multipartFramer) missed(b []byte) []byte { f.gap = true; return b }
func (f *multipartFramer) ping(b []byte) []byte   { return b }
func (f *multipartFramer) end(b []byte, err error) []byte {
	return append(b, "--\r\n"...)
}

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
	h.serveHTTPStream(w, r, TransportChunked, sub, chunkedFramer{}, first, nil)
}

type chunkedFramer struct{}

func (chunkedFramer) message(b []byte, m *Message) []byte {
	return append(append(b, m.Data...), '\n')
}
func (chunkedFramer) missed(b []byte) []byte         { return b }
func (chunkedFramer) ping(b []byte) []byte           { return b }
func (chunkedFramer) end(b []byte, err error) []byte { return b }

// newBoundary returns a random multipart boundary.
func newBoundary() string {
	return strconv.FormatUint(rand.Uint64(), 36) + strconv.FormatUint(rand.Uint64(), 36)
}
