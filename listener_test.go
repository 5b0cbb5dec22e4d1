package push

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawClient is one keep-alive HTTP/1.1 connection with no goroutine of
// its own, so that the server's goroutines can be counted.
type rawClient struct {
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, e *specEnv) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return &rawClient{c: c, br: bufio.NewReader(c)}
}

// get sends a GET of path with extra header lines.
func (rc *rawClient) get(t *testing.T, path string, header ...string) {
	t.Helper()
	req := "GET " + path + " HTTP/1.1\r\nHost: x\r\n"
	for _, h := range header {
		req += h + "\r\n"
	}
	_, err := io.WriteString(rc.c, req+"\r\n")
	require.NoError(t, err)
}

// read reads one response.
func (rc *rawClient) read(t *testing.T) (*http.Response, string) {
	t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(specWait))
	resp, err := http.ReadResponse(rc.br, nil)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(body)
}

// publish publishes data to channel through the Hub.
func (e *specEnv) publish(channel, data string) *Message {
	e.t.Helper()
	m, _, err := e.hub.Publish(context.Background(), channel, &Message{Data: []byte(data)})
	require.NoError(e.t, err)
	return m
}

// waitSubscribers waits until the Hub counts n subscriptions.
func waitSubscribers(t *testing.T, h *Hub, n int) {
	t.Helper()
	deadline := time.Now().Add(specWait)
	for {
		st, err := h.Stats(context.Background())
		require.NoError(t, err)
		if st.Subscribers == n {
			return
		}
		require.True(t, time.Now().Before(deadline), "subscribers: %d, want %d", st.Subscribers, n)
		runtime.Gosched()
	}
}

// Long-polls on the Hub's Listener wait without net/http's goroutines (one
// reader goroutine each), are answered when a message comes, and their
// connections are kept alive for the next poll, which resumes after it.
func TestListenerParksLongPolls(t *testing.T) {
	skipHeld(t)
	// 40: answered by the publisher's goroutine; 100: by a sweep, which
	// stops the answered long-polls' readers after its pass.
	for _, n := range []int{40, inlineFanOut + 36} {
		t.Run(strconv.Itoa(n), func(t *testing.T) { testListenerParksLongPolls(t, n) })
	}
}

func testListenerParksLongPolls(t *testing.T, n int) {
	e := newSpecEnv(t, Options{})
	base := runtime.NumGoroutine()
	clients := make([]*rawClient, n)
	for i := range clients {
		clients[i] = dialRaw(t, e)
	}
	for _, c := range clients {
		c.get(t, "/sub?id=park")
	}
	waitSubscribers(t, e.hub, n)
	// The handlers' goroutines end once their long-polls are parked.
	held := 0
	assert.Eventually(t, func() bool {
		held = runtime.NumGoroutine() - base
		return held <= n+4
	}, specWait, time.Millisecond, "a parked long-poll keeps one goroutine (net/http's would keep two)")
	t.Logf("%d held long-polls: %d more goroutines", n, held)

	m1 := e.publish("park", "one")
	for _, c := range clients {
		resp, body := c.read(t)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "one", body)
		assert.Equal(t, m1.ID.String(), etagOf(resp))
		assert.False(t, resp.Close, "the connection is kept alive")
		// The next poll, on the same connection, resumes after m1.
		c.get(t, "/sub?id=park", "If-Modified-Since: "+resp.Header.Get("Last-Modified"), "If-None-Match: "+resp.Header.Get("Etag"))
	}
	waitSubscribers(t, e.hub, n)
	e.publish("park", "two")
	for _, c := range clients {
		resp, body := c.read(t)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "two", body)
	}
}

// etagOf returns the id resp carries (Last-Modified's time with the
// Etag), for comparison with a Message.ID.String().
func etagOf(resp *http.Response) string {
	lm, err := http.ParseTime(resp.Header.Get("Last-Modified"))
	if err != nil {
		return "bad Last-Modified"
	}
	return fmt.Sprintf("%d:%s", lm.Unix(), resp.Header.Get("Etag"))
}

// A request pipelined behind a parked long-poll is served after its
// answer, on the same connection; it is larger than the parked reader's
// buffers (its 64-byte first read and the room it then makes).
func TestListenerKeepsPipelinedRequest(t *testing.T) {
	skipHeld(t)
	e := newSpecEnv(t, Options{})
	c := dialRaw(t, e)
	c.get(t, "/sub?id=pipe")
	waitSubscribers(t, e.hub, 1)
	c.get(t, "/sub?id=other", "If-None-Match: 0:0", "X-Big: "+strings.Repeat("b", 3000)) // waits behind the first
	e.publish("other", "second")
	e.publish("pipe", "first")
	_, body := c.read(t)
	assert.Equal(t, "first", body)
	_, body = c.read(t)
	assert.Equal(t, "second", body)
}

// A parked long-poll's subscriber timeout answers 304 with the position,
// and a client that goes away releases its subscription.
func TestListenerTimeoutAndLeave(t *testing.T) {
	skipHeld(t)
	e := newSpecEnv(t, Options{SubscriberTimeout: 50 * time.Millisecond})
	c := dialRaw(t, e)
	c.get(t, "/sub?id=t")
	resp, _ := c.read(t)
	assert.Equal(t, http.StatusNotModified, resp.StatusCode)
	c.get(t, "/sub?id=t")
	waitSubscribers(t, e.hub, 1)
	c.c.Close()
	waitSubscribers(t, e.hub, 0)
}

// skipHeld skips a test of Hub.Listener under -push.held.
func skipHeld(t *testing.T) {
	if *specHeld {
		t.Skip("-push.held: the spec tests run without Hub.Listener")
	}
}

// A publisher more than sweepAhead messages ahead of its channel's sweep
// waits for the sweep's pass to end; one within it, or with no sweep, does
// not wait.
func TestPublisherKeepsPaceWithSweep(t *testing.T) {
	hc := &hubChannel{}
	assert.False(t, hc.keepPace(context.Background()), "no sweep")
	pass := make(chan struct{})
	hc.sweeping, hc.pass, hc.behind = true, pass, sweepAhead
	assert.False(t, hc.keepPace(context.Background()), "within sweepAhead")

	hc.behind = sweepAhead + 1
	done := make(chan bool)
	go func() { done <- hc.keepPace(context.Background()) }()
	close(pass) // the pass ends
	assert.True(t, <-done, "ahead of the sweep: waited for the pass")
}

// plainConns hides the accepted connections' SyscallConn, as on systems
// without non-blocking writes (rawwrite_other.go) or behind a wrapper.
type plainConns struct{ net.Listener }

func (l plainConns) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return struct{ net.Conn }{c}, nil
}

// TestListenerParkedAnswerWithoutRawWrite: a parked long-poll whose
// connection has no non-blocking write has its answer written by a
// goroutine, and the connection then serves the next poll (the one-shot
// stream once flushed an answer already written, with no buffer left).
func TestListenerParkedAnswerWithoutRawWrite(t *testing.T) {
	for _, direct := range []bool{false, true} {
		t.Run(map[bool]string{false: "given-back", true: "direct"}[direct], func(t *testing.T) {
			hub := New(Options{Logger: slog.New(slog.DiscardHandler)})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			var srv interface{ Close() error }
			if direct {
				ps := &Server{Hub: hub, SubscribePath: "/sub"}
				srv = ps
				go ps.Serve(plainConns{ln})
			} else {
				hs := &http.Server{Handler: hub.SubscribeHandler()}
				srv = hs
				go hs.Serve(hub.Listener(plainConns{ln}))
			}
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), specWait)
				defer cancel()
				require.NoError(t, hub.Shutdown(ctx))
				srv.Close()
			})
			c, err := net.Dial("tcp", ln.Addr().String())
			require.NoError(t, err)
			defer c.Close()
			c.SetDeadline(time.Now().Add(specWait))
			br := bufio.NewReader(c)
			pos := ""
			for i := range 3 {
				fmt.Fprintf(c, "GET /sub?id=raw HTTP/1.1\r\nHost: x\r\n%s\r\n", pos)
				waitSubscribers(t, hub, 1) // parked
				_, _, err := hub.Publish(context.Background(), "raw", &Message{Data: []byte("m" + strconv.Itoa(i))})
				require.NoError(t, err)
				resp, err := http.ReadResponse(br, nil)
				require.NoError(t, err)
				body, _ := io.ReadAll(resp.Body)
				assert.Equal(t, "m"+strconv.Itoa(i), string(body))
				pos = "If-Modified-Since: " + resp.Header.Get("Last-Modified") + "\r\nIf-None-Match: " + resp.Header.Get("Etag") + "\r\n"
			}
		})
	}
}
