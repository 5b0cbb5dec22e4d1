package push

import (
	"bufio"
	"context"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pushhub/push/internal/h1"
)

// Tests of the requests a Server's connections have the Hub read itself
// (internal/h1). The spec suite runs through them too (newSpecEnv).

// dpEnv is a Hub served on loopback, with PublishHandler at /pub,
// SubscribeHandler at /sub and a plain handler at /other: by a Server that
// reads the requests for the paths in reads itself ("/pub", "/sub"; its
// Handler serves the rest), or with none, by an http.Server on
// Hub.Listener. It counts the requests net/http handed to the Hub's
// handlers.
type dpEnv struct {
	hub         *Hub
	addr        string
	pubRequests atomic.Int64 // requests for /pub that net/http read
	subRequests atomic.Int64 // requests for /sub that net/http read
	states      chan http.ConnState
}

func newDPEnv(t *testing.T, opts Options, reads ...string) *dpEnv {
	t.Helper()
	opts.Logger = slog.New(slog.DiscardHandler)
	e := &dpEnv{hub: New(opts), states: make(chan http.ConnState, 1000)}
	count := func(path string) {
		if path == "/pub" {
			e.pubRequests.Add(1)
		} else {
			e.subRequests.Add(1)
		}
	}
	mux := http.NewServeMux()
	for path, h := range map[string]http.Handler{"/pub": e.hub.PublishHandler(), "/sub": e.hub.SubscribeHandler()} {
		mux.Handle(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			count(path)
			h.ServeHTTP(w, r)
		}))
	}
	mux.Handle("/other", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "other "+r.Method)
	}))
	connState := func(_ net.Conn, s http.ConnState) {
		select {
		case e.states <- s:
		default:
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	e.addr = ln.Addr().String()
	var stop func()
	if len(reads) == 0 {
		srv := &http.Server{Handler: mux, ConnState: connState, ErrorLog: log.New(io.Discard, "", 0)}
		go srv.Serve(e.hub.Listener(ln))
		stop = func() { srv.Close() }
	} else {
		srv := &Server{Hub: e.hub, Handler: mux, observe: func(r *http.Request) { count(r.URL.Path) }, connState: connState}
		for _, p := range reads {
			switch p {
			case "/pub":
				srv.PublishPath = p
			case "/sub":
				srv.SubscribePath = p
			}
		}
		go srv.Serve(ln)
		stop = func() { srv.Close() }
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), specWait)
		defer cancel()
		require.NoError(t, e.hub.Shutdown(ctx))
		stop()
	})
	return e
}

// dpConn is a raw keep-alive client connection.
type dpConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func (e *dpEnv) dial(t *testing.T) *dpConn {
	t.Helper()
	c, err := net.Dial("tcp", e.addr)
	require.NoError(t, err)
	c.SetDeadline(time.Now().Add(specWait))
	t.Cleanup(func() { c.Close() })
	return &dpConn{t: t, c: c, br: bufio.NewReader(c)}
}

// send writes raw request bytes.
func (d *dpConn) send(raw string) {
	d.t.Helper()
	_, err := io.WriteString(d.c, raw)
	require.NoError(d.t, err)
}

// read reads one response to a request with method.
func (d *dpConn) read(method string) (*http.Response, string) {
	d.t.Helper()
	resp, err := http.ReadResponse(d.br, &http.Request{Method: method})
	require.NoError(d.t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(d.t, err)
	return resp, string(body)
}

func post(channel, body string, headers ...string) string {
	return "POST /pub?id=" + channel + " HTTP/1.1\r\nHost: x\r\n" + strings.Join(headers, "") +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// TestDirectPublishersSkipNetHTTP: after the first request of a
// keep-alive publisher connection, its publishes are read by the Hub (the
// handler wrapped around PublishHandler sees only the first), and each
// publish reaches a subscriber in order.
func TestDirectPublishersSkipNetHTTP(t *testing.T) {
	e := newDPEnv(t, Options{MessageBufferLength: 100}, "/pub")
	sub, err := e.hub.Subscribe(context.Background(), []string{"dp"}, "")
	require.NoError(t, err)
	defer sub.Close()
	d := e.dial(t)
	for i := range 50 {
		d.send(post("dp", "m"+strconv.Itoa(i), "Content-Type: text/plain\r\n"))
		resp, body := d.read("POST")
		require.Equal(t, http.StatusCreated, resp.StatusCode, body)
		assert.Contains(t, body, "active subscribers: 1")
		assert.Equal(t, "text/plain", resp.Header.Get("Content-Type"))
		assert.NotEmpty(t, resp.Header.Get("Date"))
		assert.False(t, resp.Close)
	}
	assert.EqualValues(t, 1, e.pubRequests.Load(), "requests net/http read for /pub")
	ctx, cancel := context.WithTimeout(context.Background(), specWait)
	defer cancel()
	for i := range 50 {
		m, err := sub.Next(ctx)
		require.NoError(t, err)
		assert.Equal(t, "m"+strconv.Itoa(i), string(m.Data))
		assert.Equal(t, "text/plain", m.ContentType)
	}
}

// TestDirectPublishersAnswerAsNetHTTP sends the same requests to a Hub
// whose publishers are read by net/http and to one that reads them itself,
// each on one keep-alive connection, and compares the answers (status,
// headers but Date, body).
func TestDirectPublishersAnswerAsNetHTTP(t *testing.T) {
	requests := []struct{ method, raw string }{
		{"POST", post("a", "first")}, // net/http reads this one on both
		{"POST", post("a", "hello", "Content-Type: text/plain\r\n", "X-EventSource-Event: greet\r\n")},
		{"POST", post("a", "")},
		{"POST", post("a", strings.Repeat("x", 101))}, // over MaxMessageSize: 413
		{"POST", post("bad%20id%00", "x")},
		{"POST", "POST /pub HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx"},
		{"POST", post("a&id=b", "x")},
		{"POST", post("a&callback=cb", "x")},
		{"POST", post("a&callback=alert(1)//", "x")},
		{"GET", "GET /pub?id=a HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"GET", "GET /pub?id=a HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n"},
		{"GET", "GET /pub?id=a HTTP/1.1\r\nHost: x\r\nAccept: text/xml;q=0.5, application/yaml\r\n\r\n"},
		{"HEAD", "HEAD /pub?id=a HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"GET", "GET /pub?id=nothing HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"PUT", "PUT /pub?id=c HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"},
		{"OPTIONS", "OPTIONS /pub?id=c HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"PATCH", "PATCH /pub?id=c HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"},
		{"POST", post("a", "x", "Origin: http://elsewhere.example\r\n")},
		{"POST", post("a", "x", "Origin: http://allowed.example\r\n")},
		{"DELETE", "DELETE /pub?id=c HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"DELETE", "DELETE /pub?id=c HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"POST", post("a", "x", "X-EventSource-Event: a\rb\r\n")}, // net/http's 400, then it closes
	}
	answers := func(direct bool) []string {
		opts := Options{MaxMessageSize: 100, AllowedOrigins: []string{"http://allowed.example"}}
		var reads []string
		if direct {
			reads = []string{"/pub"}
		}
		e := newDPEnv(t, opts, reads...)
		d := e.dial(t)
		var out []string
		for i, r := range requests {
			t.Logf("request %d", i)
			d.send(r.raw)
			resp, body := d.read(r.method)
			var hd []string
			for k, vs := range resp.Header {
				if k != "Date" {
					hd = append(hd, k+": "+strings.Join(vs, ", "))
				}
			}
			sort.Strings(hd)
			body = strings.ReplaceAll(body, "last requested: 0 sec", "last requested: -1 sec") // timing
			out = append(out, r.method+" "+resp.Status+"\n"+strings.Join(hd, "\n")+"\n\n"+body)
		}
		if direct {
			assert.Less(t, e.pubRequests.Load(), int64(len(requests)/2), "most requests were read by the Hub")
		}
		return out
	}
	viaNetHTTP, direct := answers(false), answers(true)
	for i := range requests {
		assert.Equal(t, viaNetHTTP[i], direct[i], "request %d: %q", i, requests[i].raw)
	}
}

// TestDirectPublishersGiveBack: requests the Hub does not read itself go
// back to the http.Server on the same connection, pipelined or not, and
// the connection is taken over again by the next publish.
func TestDirectPublishersGiveBack(t *testing.T) {
	e := newDPEnv(t, Options{MessageBufferLength: 100}, "/pub")
	d := e.dial(t)
	d.send(post("g", "1"))
	resp, _ := d.read("POST")
	require.Equal(t, http.StatusAccepted, resp.StatusCode)

	// Another path, then a publish, in one write.
	d.send("GET /other HTTP/1.1\r\nHost: x\r\n\r\n" + post("g", "2"))
	_, body := d.read("GET")
	assert.Equal(t, "other GET", body)
	resp, _ = d.read("POST")
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)

	// A chunked body, an Expect: 100-continue, a body larger than the
	// Hub reads itself, a header net/http refuses.
	d.send("POST /pub?id=g HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n3\r\n0\r\n\r\n")
	resp, _ = d.read("POST")
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	d.send("POST /pub?id=g HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n")
	resp, _ = d.read("POST")
	assert.Equal(t, http.StatusContinue, resp.StatusCode)
	d.send("4")
	resp, _ = d.read("POST")
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	big := strings.Repeat("5", h1.MaxBody+1)
	d.send(post("g", big))
	resp, _ = d.read("POST")
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	d.send(post("g", "6"))
	resp, _ = d.read("POST")
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	d.send("POST /pub?id=g HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\nContent-Length: 1\r\n\r\n7")
	resp, _ = d.read("POST")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	sub, err := e.hub.Subscribe(context.Background(), []string{"g"}, "")
	require.NoError(t, err)
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), specWait)
	defer cancel()
	var got []string
	for range 6 {
		m, err := sub.Next(ctx)
		require.NoError(t, err)
		got = append(got, string(m.Data))
	}
	assert.Equal(t, []string{"1", "2", "3", "4", big, "6"}, got)
}

// TestDirectPublishersConnectionClose: "Connection: close" is answered
// with the same header and the connection is closed.
func TestDirectPublishersConnectionClose(t *testing.T) {
	e := newDPEnv(t, Options{}, "/pub")
	d := e.dial(t)
	d.send(post("cc", "1"))
	d.read("POST")
	d.send(post("cc", "2", "Connection: close\r\n"))
	resp, _ := d.read("POST")
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	assert.True(t, resp.Close)
	_, err := d.br.ReadByte()
	assert.ErrorIs(t, err, io.EOF)
	assert.EqualValues(t, 1, e.pubRequests.Load())
}

// TestDirectPublishersIdleAndShutdown: an idle taken-over connection goes
// back to the http.Server (ConnState sees it anew), and Hub.Shutdown gives
// back one that waits; goleak (TestMain) checks nothing is left running.
func TestDirectPublishersIdleAndShutdown(t *testing.T) {
	e := newDPEnv(t, Options{}, "/pub")
	waitState := func(want http.ConnState) { t.Helper(); waitConnState(t, e.states, want) }
	d := e.dial(t)
	d.send(post("idle", "1"))
	d.read("POST")
	waitState(http.StateHijacked)
	waitState(http.StateNew) // given back after directIdle
	d.send(post("idle", "2"))
	resp, _ := d.read("POST")
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	waitState(http.StateHijacked)

	ctx, cancel := context.WithTimeout(context.Background(), specWait)
	defer cancel()
	require.NoError(t, e.hub.Shutdown(ctx))
	waitState(http.StateNew) // given back at once
	d.send(post("idle", "3"))
	resp, _ = d.read("POST")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}

// TestDirectPublishersSlowRequest: a request read by the Hub that arrives
// in pieces is answered by the Hub once whole, within RequestTimeout (a
// late one is tested in hostapp_test.go). With no RequestTimeout, the
// connection goes back to the http.Server with what was read once idle,
// and net/http answers the request when it is whole.
func TestDirectPublishersSlowRequest(t *testing.T) {
	for name, c := range map[string]struct {
		timeout     time.Duration
		netHTTPRead int64
	}{"RequestTimeout": {0, 1}, "none": {-1, 2}} {
		t.Run(name, func(t *testing.T) {
			e := newDPEnv(t, Options{RequestTimeout: c.timeout}, "/pub")
			d := e.dial(t)
			d.send(post("slow", "1"))
			d.read("POST")
			waitConnState(t, e.states, http.StateHijacked)
			raw := post("slow", "2")
			d.send(raw[:10])
			if c.timeout < 0 {
				waitConnState(t, e.states, http.StateNew) // given back mid-request
			}
			d.send(raw[10:])
			resp, _ := d.read("POST")
			assert.Equal(t, http.StatusAccepted, resp.StatusCode)
			assert.Equal(t, c.netHTTPRead, e.pubRequests.Load(), "requests net/http read")
		})
	}
}

// TestDirectPublishersPanic: a hook that panics on a request read by the
// Hub closes that connection (net/http logs the panic); nothing is left
// running (goleak in TestMain).
func TestDirectPublishersPanic(t *testing.T) {
	var calls atomic.Int64
	e := newDPEnv(t, Options{AuthorizePublish: func(*http.Request, string) error {
		if calls.Add(1) == 2 {
			panic("hook")
		}
		return nil
	}}, "/pub")
	d := e.dial(t)
	d.send(post("p", "1"))
	resp, _ := d.read("POST")
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	d.send(post("p", "2"))
	_, err := d.br.ReadByte()
	assert.ErrorIs(t, err, io.EOF)
	d2 := e.dial(t)
	d2.send(post("p", "3"))
	resp, _ = d2.read("POST")
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
}

// waitConnState waits for the http.Server to report a connection in state
// want.
func waitConnState(t *testing.T, states <-chan http.ConnState, want http.ConnState) {
	t.Helper()
	timeout := time.After(specWait)
	for {
		select {
		case s := <-states:
			if s == want {
				return
			}
		case <-timeout:
			t.Fatalf("no connection state %v", want)
		}
	}
}

// poll is a long-poll request for channel from the position of resp (nil:
// none).
func poll(channel string, resp *http.Response, headers ...string) string {
	var pos string
	if resp != nil {
		pos = "If-Modified-Since: " + resp.Header.Get("Last-Modified") + "\r\nIf-None-Match: " + resp.Header.Get("Etag") + "\r\n"
	}
	return "GET /sub?id=" + channel + " HTTP/1.1\r\nHost: x\r\n" + pos + strings.Join(headers, "") + "\r\n"
}

// TestDirectLongPolls: one keep-alive connection walks a channel with
// long-polls; after the first, net/http reads none of them: those that
// find a message are answered by the Hub's reader, those that wait park
// and the Hub reads the next one after the answer. Every message arrives
// once, in order.
func TestDirectLongPolls(t *testing.T) {
	e := newDPEnv(t, Options{MessageBufferLength: 100}, "/sub")
	ctx := context.Background()
	for i := range 5 {
		_, _, err := e.hub.Publish(ctx, "lp", &Message{Data: []byte("m" + strconv.Itoa(i))})
		require.NoError(t, err)
	}
	d := e.dial(t)
	var last *http.Response
	for i := range 20 {
		d.send(poll("lp", last))
		if i >= 5 { // nothing buffered: the poll waits, and parks or is held
			waitSubscribers(t, e.hub, 1)
			_, _, err := e.hub.Publish(ctx, "lp", &Message{Data: []byte("m" + strconv.Itoa(i)), ContentType: "text/plain"})
			require.NoError(t, err)
		}
		resp, body := d.read("GET")
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		assert.Equal(t, "m"+strconv.Itoa(i), body)
		last = resp
	}
	assert.EqualValues(t, 1, e.subRequests.Load(), "long-polls net/http read")
}

// TestDirectSubscribersAnswerAsNetHTTP compares the answers of subscriber
// requests read by net/http and by the Hub, on one keep-alive connection
// each (interval-poll, so nothing waits).
func TestDirectSubscribersAnswerAsNetHTTP(t *testing.T) {
	requests := []string{
		poll("s", nil), // net/http reads this one on both
		poll("s", nil),
		"GET /sub?id=s HTTP/1.1\r\nHost: x\r\nIf-None-Match: 1:0\r\n\r\n",
		"GET /sub?id=s HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: junk\r\n\r\n",
		"GET /sub?id=s&callback=cb HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /sub?id=s&callback=1x HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /sub?id=s&id=t HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /sub HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /sub?id=bad%00 HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /sub?id=s HTTP/1.1\r\nHost: x\r\nOrigin: http://elsewhere.example\r\n\r\n",
		"GET /sub?id=s HTTP/1.1\r\nHost: x\r\nOrigin: http://allowed.example\r\n\r\n",
		"OPTIONS /sub?id=s HTTP/1.1\r\nHost: x\r\nOrigin: http://allowed.example\r\n\r\n",
		"DELETE /sub?id=s HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /sub?id=new HTTP/1.1\r\nHost: x\r\n\r\n",
	}
	answers := func(direct bool) []string {
		opts := Options{IntervalPoll: true, AllowedOrigins: []string{"http://allowed.example"}}
		var reads []string
		if direct {
			reads = []string{"/sub"}
		}
		e := newDPEnv(t, opts, reads...)
		e.hub.Publish(context.Background(), "s", &Message{Data: []byte("one"), ContentType: "text/x-one"})
		e.hub.Publish(context.Background(), "s", &Message{Data: []byte("two")})
		d := e.dial(t)
		var out []string
		for _, raw := range requests {
			d.send(raw)
			method, _, _ := strings.Cut(raw, " ")
			resp, body := d.read(method)
			var hd []string
			for k, vs := range resp.Header {
				if k != "Date" && k != "Last-Modified" && k != "Etag" {
					hd = append(hd, k+": "+strings.Join(vs, ", "))
				}
			}
			sort.Strings(hd)
			if _, after, ok := strings.Cut(body, `"id": "`); ok { // JSONP: the id differs
				body = after[strings.Index(after, `"`):]
			}
			out = append(out, method+" "+resp.Status+"\n"+strings.Join(hd, "\n")+"\n\n"+body)
		}
		if direct { // the first, the DELETE (405) and the request after it
			assert.EqualValues(t, 3, e.subRequests.Load(), "requests net/http read")
		}
		return out
	}
	viaNetHTTP, direct := answers(false), answers(true)
	for i := range requests {
		assert.Equal(t, viaNetHTTP[i], direct[i], "request %d: %q", i, requests[i])
	}
}

// TestDirectSubscribersGiveBack: a WebSocket, EventSource or stream
// request on a connection the Hub reads goes back to the http.Server.
func TestDirectSubscribersGiveBack(t *testing.T) {
	e := newDPEnv(t, Options{IntervalPoll: true}, "/pub", "/sub")
	e.hub.Publish(context.Background(), "gb", &Message{Data: []byte("one")})
	d := e.dial(t)
	d.send(poll("gb", nil))
	resp, body := d.read("GET")
	require.Equal(t, "one", body)
	d.send(post("gb", "two")) // a publish on a subscriber's connection is read by the Hub too
	resp2, _ := d.read("POST")
	assert.Equal(t, http.StatusAccepted, resp2.StatusCode)
	d.send(poll("gb", resp, "Accept: text/event-stream\r\n"))
	stream, err := http.ReadResponse(d.br, &http.Request{Method: "GET"})
	require.NoError(t, err)
	assert.Equal(t, "text/event-stream; charset=utf-8", stream.Header.Get("Content-Type"))
	ev, err := wiretestReadSSE(stream.Body)
	require.NoError(t, err)
	assert.Contains(t, ev, "data: two")
	assert.EqualValues(t, 2, e.subRequests.Load(), "requests net/http read")
	assert.EqualValues(t, 0, e.pubRequests.Load())
}

// wiretestReadSSE reads an EventSource stream up to its first event with
// data.
func wiretestReadSSE(r io.Reader) (string, error) {
	br := bufio.NewReader(r)
	var ev strings.Builder
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return ev.String(), err
		}
		ev.WriteString(line)
		if line == "\n" && strings.Contains(ev.String(), "data:") {
			return ev.String(), nil
		}
	}
}

// TestDirectLongPollParksLong: a long-poll read by the Hub that parks
// waits longer than the Hub's reader would have waited for a request
// (directIdle): the reader's deadline does not follow the connection.
func TestDirectLongPollParksLong(t *testing.T) {
	const readerIdle = time.Second // how long the Hub's reader waits for a request
	e := newDPEnv(t, Options{}, "/sub")
	d := e.dial(t)
	d.send(poll("long", nil, "If-None-Match: 1:0\r\n")) // parks (net/http read it)
	waitSubscribers(t, e.hub, 1)
	e.hub.Publish(context.Background(), "long", &Message{Data: []byte("one")})
	resp, body := d.read("GET")
	require.Equal(t, "one", body)
	d.send(poll("long", resp)) // read by the Hub; parks
	waitSubscribers(t, e.hub, 1)
	<-time.After(readerIdle + readerIdle/2) // the elapsed time is what is tested
	e.hub.Publish(context.Background(), "long", &Message{Data: []byte("two")})
	_, body = d.read("GET")
	assert.Equal(t, "two", body)
	assert.EqualValues(t, 1, e.subRequests.Load())
}

// FuzzQueryValues: the query scan of the handlers gives what
// url.ParseQuery gives for the key.
func FuzzQueryValues(f *testing.F) {
	for _, seed := range [][2]string{{"id=a&id=b", "id"}, {"i%64=x+y&callback=cb", "id"}, {"id=%zz&id=ok;x&id", "id"},
		{"callback=&callback=b", "callback"}, {"a=1&&=2&id=%41", "id"}} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, raw, key string) {
		want := url.Values{}
		if q, err := url.ParseQuery(raw); err == nil || q != nil {
			want = q
		}
		got := queryValues(raw, key)
		require.Equal(t, want[key], got, "query %q, key %q", raw, key)
		v, ok := queryValue(raw, key)
		_, wantOK := want[key]
		require.Equal(t, wantOK, ok)
		require.Equal(t, want.Get(key), v)
	})
}

// TestDirectRequestsKeptByHooks: the Hub reuses an answered request's
// memory for the next request on the connection only when no hook sees
// requests. A hook that keeps the requests it is given (which net/http
// allows) finds each as it was.
func TestDirectRequestsKeptByHooks(t *testing.T) {
	var mu sync.Mutex
	var kept []*http.Request
	e := newDPEnv(t, Options{AuthorizePublish: func(r *http.Request, channel string) error {
		mu.Lock()
		defer mu.Unlock()
		kept = append(kept, r)
		return nil
	}}, "/pub")
	d := e.dial(t)
	for i := range 5 {
		d.send(post("kept"+strconv.Itoa(i), "m", "X-N: "+strconv.Itoa(i)+"\r\n"))
		resp, body := d.read("POST")
		require.Equal(t, http.StatusAccepted, resp.StatusCode, body)
	}
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, kept, 5)
	for i, r := range kept {
		assert.Equal(t, "id=kept"+strconv.Itoa(i), r.URL.RawQuery, "request %d", i)
		assert.Equal(t, strconv.Itoa(i), r.Header.Get("X-N"), "request %d", i)
	}
	assert.EqualValues(t, 1, e.pubRequests.Load(), "requests net/http read for /pub")
}
