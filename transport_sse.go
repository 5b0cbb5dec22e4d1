package push

import (
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
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	f := &sseFramer{sub: sub, multi: len(sub.channels) > 1}
	h.serveHTTPStream(w, r, TransportEventSource, sub, f, nil, []byte(": hi\n\n"))
}

type sseFramer struct {
	sub   *Subscription
	multi bool
}

func (f *sseFramer) message(b []byte, m *Message) []byte {
	if !f.multi {
		return append(b, m.encoded(framingEventSource, buildEventSource)...)
	}
	b = append(b, "id: "...)
	b = append(b, f.sub.Position()...)
	b = append(b, '\n')
	return append(b, m.encoded(framingEventSourceBody, buildEventSourceBody)...)
}

func (f *sseFramer) missed(b []byte) []byte { return append(b, "event: missed\ndata: \n\n"...) }
func (f *sseFramer) ping(b []byte) []byte   { return append(b, ": ping\n\n"...) }

// end appends ":<code>: <reason>" (":410: 410 Gone" on delete).
func (f *sseFramer) end(b []byte, err error) []byte {
	if err == nil {
		return b
	}
	status := statusOf(err)
	if status == http.StatusGone {
		return append(b, ":410: 410 Gone\n\n"...)
	}
	return append(b, ":"+strconv.Itoa(status)+": "+http.StatusText(status)+"\n\n"...)
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
