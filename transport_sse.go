package push

import (
	"errors"
	"net/http"
	"strconv"
)

// serveEventSource streams messages as Server-Sent Events (S6): a comment
// at once, then per message "id: T:G", "event: name" if the message has
// one, one "data: " line per payload line and a blank line. Idle streams get
// a comment every PingInterval. The end is a comment ":<code>: <reason>"
// (":410: 410 Gone" on delete, ":408: Request Timeout" on subscriber
// timeout, ":503: Service Unavailable" on shutdown), then end of stream.
// Missed messages (see SubscribeHandler) are announced by an event named
// "missed" (no id, empty data), which EventSource.onmessage does not see.
func (h *Hub) serveEventSource(w http.ResponseWriter, r *http.Request, sub *Subscription) {
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream; charset=utf-8")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	f := &sseFraming{httpStream: newHTTPStream(w, h.opts.WriteTimeout), sub: sub, multi: len(sub.channels) > 1}
	err := f.write([]byte(": hi\n\n"))
	if err == nil {
		err = f.flush()
	}
	if err == nil {
		err = h.pump(r.Context(), sub, f, nil, 0)
	}
	var end []byte
	var we *connError
	if err != nil && r.Context().Err() == nil && !errors.As(err, &we) {
		status := statusOf(err)
		if status == http.StatusGone {
			end = []byte(":410: 410 Gone\n\n")
		} else {
			end = []byte(":" + strconv.Itoa(status) + ": " + http.StatusText(status) + "\n\n")
		}
	}
	f.finish(end)
	h.ended(TransportEventSource, sub, err)
}

type sseFraming struct {
	httpStream
	sub   *Subscription
	multi bool
	buf   []byte
}

func (f *sseFraming) message(m *Message) error {
	if !f.multi {
		return f.write(m.encoded(framingEventSource, buildEventSource))
	}
	f.buf = append(f.buf[:0], "id: "...)
	f.buf = append(f.buf, f.sub.Position()...)
	f.buf = append(f.buf, '\n')
	if err := f.write(f.buf); err != nil {
		return err
	}
	return f.write(m.encoded(framingEventSourceBody, buildEventSourceBody))
}

var (
	sseMissed = []byte("event: missed\ndata: \n\n")
	ssePing   = []byte(": ping\n\n")
)

func (f *sseFraming) missed() error { return f.write(sseMissed) }

func (f *sseFraming) ping() error {
	if err := f.write(ssePing); err != nil {
		return err
	}
	return f.flush()
}

// buildEventSource is the whole event of a single-channel message.
func buildEventSource(m *Message) []byte {
	return withIDLine(m, m.encoded(framingEventSourceBody, buildEventSourceBody))
}

// withIDLine returns "id: T:G\n" followed by body: the EventSource and
// ws+meta framings of a single-channel message.
func withIDLine(m *Message, body []byte) []byte {
	b := make([]byte, 0, 28+len(body))
	b = append(b, "id: "...)
	b = m.ID.appendText(b)
	b = append(b, '\n')
	return append(b, body...)
}

// buildEventSourceBody is an event after its id line: the event line if
// any, one data line per payload line (lines end at \r\n, \n or \r, as
// EventSource parses them), and the blank line.
func buildEventSourceBody(m *Message) []byte {
	b := make([]byte, 0, 16+len(m.EventName)+len(m.Data)+len(m.Data)/8)
	if m.EventName != "" {
		b = append(b, "event: "...)
		b = append(b, m.EventName...)
		b = append(b, '\n')
	}
	d := m.Data
	for {
		i := 0
		for i < len(d) && d[i] != '\n' && d[i] != '\r' {
			i++
		}
		b = append(b, "data: "...)
		b = append(b, d[:i]...)
		b = append(b, '\n')
		if i == len(d) {
			break
		}
		if d[i] == '\r' && i+1 < len(d) && d[i+1] == '\n' {
			i++
		}
		d = d[i+1:]
	}
	return append(b, '\n')
}
