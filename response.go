package push

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// bufferedResponse is an http.ResponseWriter that keeps its answer in
// memory, to write it to a connection the Hub holds: a parked long-poll's,
// or one whose requests the Hub reads (it is their h1.Response).
type bufferedResponse struct {
	header http.Header
	status int
	body   []byte
	head   bool // the answer to a HEAD request: no body, its length kept
}

func (w *bufferedResponse) Header() http.Header { return w.header }

// Reset empties w for the next request; head: a HEAD request's answer.
func (w *bufferedResponse) Reset(head bool) {
	clear(w.header)
	w.status, w.body, w.head = 0, w.body[:0], head
}

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

// AppendTo appends the answer as an HTTP/1.1 response with a
// Content-Length, so the connection can be kept alive. Like net/http, it
// sniffs the Content-Type of a body that has none (unless the header maps
// Content-Type to nil).
func (w *bufferedResponse) AppendTo(b []byte) []byte {
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
