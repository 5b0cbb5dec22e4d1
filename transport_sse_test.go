package push

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// trStream is an open streaming HTTP response.
type trStream struct {
	t    *testing.T
	resp *http.Response
	br   *bufio.Reader
}

// get opens a subscriber request with the given headers; the body is read
// with a 10s bound on the whole request.
func (e *trEnv) get(channels []string, extra url.Values, hdr http.Header) *trStream {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.subURL("http", channels, extra), nil)
	require.NoError(e.t, err)
	for k, v := range hdr {
		req.Header[k] = v
	}
	client := *e.srv.Client()
	client.Timeout = 10 * time.Second
	resp, err := client.Do(req)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { resp.Body.Close() })
	return &trStream{t: e.t, resp: resp, br: bufio.NewReader(resp.Body)}
}

// expect reads exactly len(want) bytes and compares them with want.
func (s *trStream) expect(want string) {
	s.t.Helper()
	buf := make([]byte, len(want))
	_, err := io.ReadFull(s.br, buf)
	require.NoError(s.t, err, "reading %q", want)
	require.Equal(s.t, want, string(buf))
}

// expectEOF reads the rest and wants it to be exactly rest, then the end.
func (s *trStream) expectEOF(rest string) {
	s.t.Helper()
	b, err := io.ReadAll(s.br)
	require.NoError(s.t, err)
	require.Equal(s.t, rest, string(b))
}

func (s *trStream) close() { s.resp.Body.Close() }

var trSSEHeader = http.Header{"Accept": {"text/event-stream"}}

func TestTrSSEFraming(t *testing.T) {
	e := trStart(t, Options{})
	m1 := e.publish("a", "one line", "text/plain")
	s := e.get([]string{"a"}, nil, trSSEHeader)
	require.Equal(t, http.StatusOK, s.resp.StatusCode)
	assert.Equal(t, "text/event-stream; charset=utf-8", s.resp.Header.Get("Content-Type"))
	assert.Empty(t, s.resp.Header.Get("Content-Length"))
	s.expect(": hi\n\n")
	s.expect("id: " + m1.ID.String() + "\ndata: one line\n\n")

	// Live messages: a 2-line payload, CRLF and CR line ends, an event name,
	// an empty payload and a trailing newline.
	m2 := e.publish("a", "line 1\nline 2", "")
	s.expect("id: " + m2.ID.String() + "\ndata: line 1\ndata: line 2\n\n")
	m3 := e.publish("a", "a\r\nb\rc", "")
	s.expect("id: " + m3.ID.String() + "\ndata: a\ndata: b\ndata: c\n\n")
	m4, _, err := e.hub.Publish(context.Background(), "a", &Message{Data: []byte("named"), EventName: "greeting"})
	require.NoError(t, err)
	s.expect("id: " + m4.ID.String() + "\nevent: greeting\ndata: named\n\n")
	m5 := e.publish("a", "", "")
	s.expect("id: " + m5.ID.String() + "\ndata: \n\n")
	m6 := e.publish("a", "end\n", "")
	s.expect("id: " + m6.ID.String() + "\ndata: end\ndata: \n\n")
}

// The event name comes from the publisher's X-EventSource-Event header.
func TestTrSSEEventNameFromPublisher(t *testing.T) {
	e := trStart(t, Options{})
	s := e.get([]string{"a"}, nil, trSSEHeader)
	s.expect(": hi\n\n")
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/pub?id=a", strings.NewReader("x"))
	req.Header.Set("X-EventSource-Event", "ping-event")
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusCreated, resp.StatusCode)
	line, err := s.br.ReadString('\n')
	require.NoError(t, err)
	assert.Regexp(t, `^id: \d+:0\n$`, line)
	s.expect("event: ping-event\ndata: x\n\n")
}

func TestTrSSEResumeCarriers(t *testing.T) {
	e := trStart(t, Options{})
	var ms []*Message
	for i := range 4 {
		ms = append(ms, e.publish("a", fmt.Sprint("m", i), ""))
	}
	from := ms[1].ID.String()
	cases := map[string]struct {
		q url.Values
		h http.Header
	}{
		"Last-Event-ID": {h: http.Header{"Last-Event-Id": {from}}},
		"last_event_id": {q: url.Values{"last_event_id": {from}}},
		"Etag":          {h: http.Header{"Etag": {from}}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			h := c.h.Clone()
			if h == nil {
				h = http.Header{}
			}
			h.Set("Accept", "text/event-stream")
			s := e.get([]string{"a"}, c.q, h)
			s.expect(": hi\n\n")
			s.expect("id: " + ms[2].ID.String() + "\ndata: m2\n\n")
			s.expect("id: " + ms[3].ID.String() + "\ndata: m3\n\n")
			s.close()
		})
	}
}

func TestTrSSEDelete(t *testing.T) {
	e := trStart(t, Options{})
	s := e.get([]string{"a"}, nil, trSSEHeader)
	s.expect(": hi\n\n")
	_, err := e.hub.DeleteChannel(context.Background(), "a")
	require.NoError(t, err)
	s.expectEOF(":410: 410 Gone\n\n")
}

func TestTrSSETimeoutAndShutdown(t *testing.T) {
	e := trStart(t, Options{SubscriberTimeout: 30 * time.Millisecond})
	s := e.get([]string{"a"}, nil, trSSEHeader)
	s.expect(": hi\n\n")
	s.expectEOF(":408: Request Timeout\n\n")

	e2 := trStart(t, Options{})
	s = e2.get([]string{"a"}, nil, trSSEHeader)
	s.expect(": hi\n\n")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e2.hub.Shutdown(ctx) }()
	s.expectEOF(":503: Service Unavailable\n\n")
	require.NoError(t, <-done)

	// A browser reconnecting to the hub that is shut down gets an ended 200
	// stream that tells it to retry (a non-200 answer would make its
	// EventSource give up for good).
	s = e2.get([]string{"a"}, nil, trSSEHeader)
	require.Equal(t, http.StatusOK, s.resp.StatusCode)
	require.Equal(t, "text/event-stream; charset=utf-8", s.resp.Header.Get("Content-Type"))
	s.expectEOF("retry: 1000\n:503: Service Unavailable\n\n")
}

func TestTrSSEPing(t *testing.T) {
	e := trStart(t, Options{PingInterval: 5 * time.Millisecond})
	s := e.get([]string{"a"}, nil, trSSEHeader)
	s.expect(": hi\n\n")
	s.expect(": ping\n\n")
	s.expect(": ping\n\n")
}

func TestTrSSEMissed(t *testing.T) {
	e := trStart(t, Options{MessageBufferLength: 2})
	old := e.publish("a", "m0", "")
	e.publish("a", "m1", "") // dropped from the buffer of 2
	m2 := e.publish("a", "m2", "")
	m3 := e.publish("a", "m3", "")
	s := e.get([]string{"a"}, nil, http.Header{"Accept": {"text/event-stream"}, "Last-Event-Id": {old.ID.String()}})
	s.expect(": hi\n\nevent: missed\ndata: \n\n")
	s.expect("id: " + m2.ID.String() + "\ndata: m2\n\n")
	s.expect("id: " + m3.ID.String() + "\ndata: m3\n\n")
	m4 := e.publish("a", "m4", "")
	s.expect("id: " + m4.ID.String() + "\ndata: m4\n\n")
}

func TestTrSSECORS(t *testing.T) {
	e := trStart(t, Options{AllowedOrigins: []string{"http://app.example"}})
	s := e.get([]string{"a"}, nil, http.Header{"Accept": {"text/event-stream"}, "Origin": {"http://app.example"}})
	s.expect(": hi\n\n")
	assert.Equal(t, "http://app.example", s.resp.Header.Get("Access-Control-Allow-Origin"))
	assert.Equal(t, "true", s.resp.Header.Get("Access-Control-Allow-Credentials"))
}

// With EventSource disabled, an EventSource request falls through to
// long-poll.
func TestTrSSEDisabledFallsThrough(t *testing.T) {
	e := trStart(t, Options{Transports: TransportLongPoll})
	m := e.publish("a", "plain", "text/plain")
	s := e.get([]string{"a"}, nil, trSSEHeader)
	assert.Equal(t, "text/plain", s.resp.Header.Get("Content-Type"))
	assert.Equal(t, fmt.Sprint(m.ID.Tag), s.resp.Header.Get("Etag"))
	s.expectEOF("plain")
}

// An EventSource subscriber that stops reading is dropped when a write
// times out; the publisher never waits for it.
func TestTrSSESlowReaderDropped(t *testing.T) {
	e := trStartWith(t, Options{MessageBufferLength: 100, WriteTimeout: 100 * time.Millisecond, PingInterval: -1},
		func(s *httptest.Server) { s.Listener = trSmallBufListener{s.Listener} })
	c, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(8 << 10)
	_, err = io.WriteString(c, "GET /sub?id=a HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
	require.NoError(t, err)
	e.waitSubscribers(1)
	payload := strings.Repeat("x", 16<<10)
	for range 100 { // 1.6 MB, far more than the socket buffers hold
		e.publish("a", payload, "")
	}
	end := e.waitEnded()
	assert.Equal(t, TransportEventSource, end.t)
	assert.ErrorIs(t, end.err, os.ErrDeadlineExceeded)
	st, err := e.hub.Stats(context.Background())
	require.NoError(t, err)
	assert.Equal(t, uint64(1), st.SlowDropped, "Stats.SlowDropped")
	assert.Zero(t, st.PingTimeouts, "Stats.PingTimeouts")
}

// Over HTTP/2 the connection cannot be hijacked: the handler's goroutine
// holds the stream and writes through the ResponseWriter, with the same
// framing, pings and ending.
func TestTrSSEOverHTTP2(t *testing.T) {
	e := trStartWith(t, Options{PingInterval: 20 * time.Millisecond}, func(s *httptest.Server) {
		s.TLS = &tls.Config{}
		s.EnableHTTP2 = true
	})
	s := e.get([]string{"a"}, nil, http.Header{"Accept": {"text/event-stream"}})
	require.Equal(t, 2, s.resp.ProtoMajor)
	s.expect(": hi\n\n")
	s.expect(": ping\n\n")
	m := e.publish("a", "over h2", "")
	s.expect("id: " + m.ID.String() + "\ndata: over h2\n\n")
	e.hub.DeleteChannel(context.Background(), "a")
	s.expectEOF(":410: 410 Gone\n\n")
	end := e.waitEnded()
	assert.Equal(t, TransportEventSource, end.t)
}
