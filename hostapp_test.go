package push_test

// Tests of a Hub served inside a host app, as a user of the library sees
// it over real loopback TCP connections: every request on a connection
// from hub.Listener goes through the app's handler chain (middleware,
// request context), however the connection's earlier requests went; a
// push.Server reads kept-alive requests itself, each from a fresh
// context; publisher bodies are read under Options.RequestTimeout with
// memory that follows the bytes received.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushhub/push"
)

// haWait bounds every wait of these tests for something that should
// happen at once.
const haWait = 10 * time.Second

// haToken is the token haAuth wants.
const haToken = "Bearer s3cret"

// haAuth is an app's token middleware: 401 without the token.
func haAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != haToken {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// haNewHub returns a Hub shut down at the end of the test.
func haNewHub(t testing.TB, opts push.Options) *push.Hub {
	t.Helper()
	h := push.New(opts)
	t.Cleanup(func() { haShutdownHub(h) })
	return h
}

func haShutdownHub(h *push.Hub) {
	ctx, cancel := context.WithTimeout(context.Background(), haWait)
	defer cancel()
	h.Shutdown(ctx)
}

func haListen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// haServeApp serves handler with an http.Server on hub.Listener, as an app
// embedding the Hub does, and returns its address. At the end of the test
// the Hub is shut down, then the server closed.
func haServeApp(t testing.TB, hub *push.Hub, handler http.Handler) string {
	t.Helper()
	ln := haListen(t)
	haServe(t, hub, &http.Server{Handler: handler, ReadHeaderTimeout: haWait}, hub.Listener(ln))
	return ln.Addr().String()
}

// haServePlain serves handler with a plain http.Server (no hub.Listener).
func haServePlain(t testing.TB, hub *push.Hub, handler http.Handler) string {
	t.Helper()
	ln := haListen(t)
	haServe(t, hub, &http.Server{Handler: handler, ReadHeaderTimeout: haWait}, ln)
	return ln.Addr().String()
}

// haServeServer serves hub with a push.Server (publisher at pub, subscriber
// at sub, other paths to handler) and returns its address.
func haServeServer(t testing.TB, hub *push.Hub, pub, sub string, handler http.Handler) string {
	t.Helper()
	ln := haListen(t)
	haServe(t, hub, &push.Server{Hub: hub, PublishPath: pub, SubscribePath: sub, Handler: handler}, ln)
	return ln.Addr().String()
}

// haServe serves ln with srv (an http.Server or a push.Server) until the
// test ends, when it shuts hub down and closes srv. Close can be called
// before: the cleanup then only waits for Serve to return.
func haServe(t testing.TB, hub *push.Hub, srv interface {
	Serve(net.Listener) error
	Close() error
}, ln net.Listener) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		haShutdownHub(hub)
		srv.Close()
		<-done
	})
}

// haConn is one client connection speaking raw HTTP/1.1.
type haConn struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func haDial(t testing.TB, addr string) *haConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &haConn{t: t, c: c, br: bufio.NewReader(c)}
}

// send writes raw bytes.
func (c *haConn) send(raw string) {
	c.t.Helper()
	c.c.SetWriteDeadline(time.Now().Add(haWait))
	if _, err := io.WriteString(c.c, raw); err != nil {
		c.t.Fatalf("writing the request: %v", err)
	}
}

// closeWrite half-closes the connection: the server reads EOF.
func (c *haConn) closeWrite() {
	c.t.Helper()
	if err := c.c.(*net.TCPConn).CloseWrite(); err != nil {
		c.t.Fatal(err)
	}
}

// read reads one response to a request of method ("" for GET) and its
// body; the test fails if none comes within haWait.
func (c *haConn) read(method string) (*http.Response, string) {
	c.t.Helper()
	resp, body, err := c.tryRead(method, haWait)
	if err != nil {
		c.t.Fatalf("reading the response: %v", err)
	}
	return resp, body
}

// tryRead reads one response within d.
func (c *haConn) tryRead(method string, d time.Duration) (*http.Response, string, error) {
	c.c.SetReadDeadline(time.Now().Add(d))
	var req *http.Request
	if method != "" {
		req = &http.Request{Method: method}
	}
	resp, err := http.ReadResponse(c.br, req)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), err
}

// do sends raw and reads its response.
func (c *haConn) do(method, raw string) (*http.Response, string) {
	c.t.Helper()
	c.send(raw)
	return c.read(method)
}

// haReq is a raw HTTP/1.1 request; POST and PUT get a Content-Length.
func haReq(method, target, body string, headers ...string) string {
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: x\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	if body != "" || method == http.MethodPost || method == http.MethodPut {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n" + body)
	return b.String()
}

// haWantStatus fails the test unless resp has status want.
func haWantStatus(t testing.TB, what string, resp *http.Response, body string, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("%s: got %s (body %q), want %d %s", what, resp.Status, body, want, http.StatusText(want))
	}
}

// haMessages returns the data of every message buffered in channel.
func haMessages(t testing.TB, hub *push.Hub, channel string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), haWait)
	defer cancel()
	sub, err := hub.Subscribe(ctx, []string{channel}, "")
	if err != nil {
		t.Fatalf("subscribing to %s: %v", channel, err)
	}
	defer sub.Close()
	var got []string
	for range 1000 {
		m, err := sub.TryNext(ctx)
		if err != nil {
			t.Fatalf("reading %s: %v", channel, err)
		}
		if m == nil {
			break
		}
		got = append(got, string(m.Data))
	}
	return got
}

// haNotStored fails the test if channel holds a message with data evil.
func haNotStored(t testing.TB, hub *push.Hub, channel, evil string) {
	t.Helper()
	for _, m := range haMessages(t, hub, channel) {
		if m == evil {
			t.Fatalf("channel %s holds %q, published without authorization", channel, evil)
		}
	}
}

// haPublish publishes data to channel from Go.
func haPublish(t testing.TB, hub *push.Hub, channel, data string) {
	t.Helper()
	if _, _, err := hub.Publish(context.Background(), channel, &push.Message{Data: []byte(data)}); err != nil {
		t.Fatal(err)
	}
}

// haWaitSubscribers waits until channel has n subscribers.
func haWaitSubscribers(t testing.TB, hub *push.Hub, channel string, n int) {
	t.Helper()
	deadline := time.Now().Add(haWait)
	for {
		info, err := hub.ChannelInfo(context.Background(), channel)
		if err == nil && info.Subscribers == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("channel %s: %+v (%v), want %d subscribers", channel, info, err, n)
		}
		runtime.Gosched()
	}
}

// haAuthApp is an app with token middleware on /pub and a public /sub,
// served on hub.Listener.
func haAuthApp(t testing.TB, opts push.Options) (*push.Hub, string) {
	t.Helper()
	hub := haNewHub(t, opts)
	mux := http.NewServeMux()
	mux.Handle("/pub", haAuth(hub.PublishHandler()))
	mux.Handle("/sub", hub.SubscribeHandler())
	return hub, haServeApp(t, hub, mux)
}

// Problem 1. A request for another path (/sub) on a kept-alive connection
// must not make the connection's next publisher request skip the app's
// middleware: whatever came before on the connection (an OPTIONS, a
// long-poll answered at once, a JSONP poll, a parked long-poll's answer),
// an unauthenticated POST or DELETE on /pub gets the middleware's 401 and
// changes nothing.
func TestHostAppMiddlewareAfterOtherPath(t *testing.T) {
	type step func(t *testing.T, hub *push.Hub, c *haConn)
	cases := []struct {
		name   string
		before step
	}{
		{"OPTIONS", func(t *testing.T, hub *push.Hub, c *haConn) {
			resp, body := c.do("OPTIONS", haReq("OPTIONS", "/sub?id=x", ""))
			if resp.StatusCode >= 300 {
				t.Fatalf("OPTIONS /sub: %s %q", resp.Status, body)
			}
		}},
		{"long-poll answer", func(t *testing.T, hub *push.Hub, c *haConn) {
			haPublish(t, hub, "x", "waiting")
			resp, body := c.do("", haReq("GET", "/sub?id=x", ""))
			haWantStatus(t, "GET /sub", resp, body, http.StatusOK)
			if body != "waiting" {
				t.Fatalf("GET /sub: %q, want %q", body, "waiting")
			}
		}},
		{"JSONP", func(t *testing.T, hub *push.Hub, c *haConn) {
			haPublish(t, hub, "x", "waiting")
			resp, body := c.do("", haReq("GET", "/sub?id=x&callback=cb", ""))
			haWantStatus(t, "GET /sub JSONP", resp, body, http.StatusOK)
			if !strings.HasPrefix(body, "cb(") {
				t.Fatalf("GET /sub JSONP: %q, want a call of cb", body)
			}
		}},
		{"parked long-poll answer", func(t *testing.T, hub *push.Hub, c *haConn) {
			c.send(haReq("GET", "/sub?id=park", ""))
			haWaitSubscribers(t, hub, "park", 1)
			haPublish(t, hub, "park", "hello")
			resp, body := c.read("")
			haWantStatus(t, "parked GET /sub", resp, body, http.StatusOK)
			if body != "hello" {
				t.Fatalf("parked GET /sub: %q, want %q", body, "hello")
			}
			if resp.Close {
				t.Fatal("the parked long-poll's answer closes the connection: nothing left to test")
			}
			// The next request on the connection is a DELETE of c1.
			resp, body = c.do("DELETE", haReq("DELETE", "/pub?id=c1", ""))
			haWantStatus(t, "DELETE /pub without token after a parked long-poll", resp, body, http.StatusUnauthorized)
			if _, err := hub.ChannelInfo(context.Background(), "c1"); err != nil {
				t.Fatalf("c1 after an unauthorized DELETE: %v", err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hub, addr := haAuthApp(t, push.Options{})
			haPublish(t, hub, "c1", "good")
			c := haDial(t, addr)
			tc.before(t, hub, c)
			resp, body := c.do("POST", haReq("POST", "/pub?id=c1", "evil"))
			haWantStatus(t, "POST /pub without token after "+tc.name, resp, body, http.StatusUnauthorized)
			haNotStored(t, hub, "c1", "evil")
			if got := haMessages(t, hub, "c1"); len(got) != 1 || got[0] != "good" {
				t.Fatalf("c1 holds %q, want only \"good\"", got)
			}
		})
	}
}

// Problem 2. An authorized request does not unlock the connection for the
// next: on one connection, behind a reverse proxy that pools its upstream
// connection, and with ServeMux method patterns.
func TestHostAppAuthorizedRequestDoesNotUnlock(t *testing.T) {
	t.Run("same connection", func(t *testing.T) {
		hub, addr := haAuthApp(t, push.Options{})
		c := haDial(t, addr)
		resp, body := c.do("POST", haReq("POST", "/pub?id=c1", "good", "Authorization: "+haToken))
		haWantStatus(t, "POST /pub with token", resp, body, http.StatusAccepted)
		resp, body = c.do("POST", haReq("POST", "/pub?id=c1", "evil"))
		haWantStatus(t, "POST /pub without token after one with", resp, body, http.StatusUnauthorized)
		haNotStored(t, hub, "c1", "evil")
	})

	t.Run("reverse proxy", func(t *testing.T) {
		hub := haNewHub(t, push.Options{})
		mux := http.NewServeMux()
		mux.Handle("/pub", haAuth(hub.PublishHandler()))
		mux.Handle("/sub", hub.SubscribeHandler())
		// The app counts the connections it accepts: the test is only
		// meaningful if both clients' requests share one.
		var upstreamConns atomic.Int32
		ln := haListen(t)
		app := &http.Server{Handler: mux, ReadHeaderTimeout: haWait, ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				upstreamConns.Add(1)
			}
		}}
		appDone := make(chan struct{})
		go func() {
			defer close(appDone)
			app.Serve(hub.Listener(ln))
		}()
		target, _ := url.Parse("http://" + ln.Addr().String())
		tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1, IdleConnTimeout: haWait}
		proxy := httputil.NewSingleHostReverseProxy(target)
		proxy.Transport = tr
		addr := haServePlain(t, hub, proxy)
		t.Cleanup(func() {
			tr.CloseIdleConnections()
			haShutdownHub(hub)
			app.Close()
			<-appDone
		})

		a := haDial(t, addr)
		resp, body := a.do("POST", haReq("POST", "/pub?id=c1", "good", "Authorization: "+haToken))
		haWantStatus(t, "client A: POST /pub with token", resp, body, http.StatusAccepted)
		b := haDial(t, addr)
		resp, body = b.do("POST", haReq("POST", "/pub?id=c1", "evil"))
		haWantStatus(t, "client B: POST /pub without token", resp, body, http.StatusUnauthorized)
		haNotStored(t, hub, "c1", "evil")
		if n := upstreamConns.Load(); n != 1 {
			t.Fatalf("the proxy opened %d upstream connections, want 1 shared by both clients", n)
		}
	})

	t.Run("method patterns", func(t *testing.T) {
		hub := haNewHub(t, push.Options{})
		mux := http.NewServeMux()
		mux.Handle("GET /pub", hub.PublishHandler())
		mux.Handle("DELETE /pub", haAuth(hub.PublishHandler()))
		addr := haServeApp(t, hub, mux)
		haPublish(t, hub, "c1", "good")
		c := haDial(t, addr)
		resp, body := c.do("", haReq("GET", "/pub?id=c1", ""))
		haWantStatus(t, "GET /pub (public)", resp, body, http.StatusOK)
		resp, body = c.do("DELETE", haReq("DELETE", "/pub?id=c1", ""))
		haWantStatus(t, "DELETE /pub without token after a GET", resp, body, http.StatusUnauthorized)
		if _, err := hub.ChannelInfo(context.Background(), "c1"); err != nil {
			t.Fatalf("c1 after an unauthorized DELETE: %v", err)
		}
	})
}

type haUserKey struct{}

// Problem 3. The request context is the request's own: AuthorizePublish
// sees the user the middleware put in this request's context, not the
// connection's first request's.
func TestHostAppRequestContextPerRequest(t *testing.T) {
	hub := haNewHub(t, push.Options{
		AuthorizePublish: func(r *http.Request, channel string) error {
			user, _ := r.Context().Value(haUserKey{}).(string)
			if user == "" || !strings.HasPrefix(channel, user+"-") {
				return &push.HTTPError{StatusCode: http.StatusForbidden, Message: "not your channel"}
			}
			return nil
		},
	})
	identify := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := context.WithValue(r.Context(), haUserKey{}, r.Header.Get("X-User"))
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
	mux := http.NewServeMux()
	mux.Handle("/pub", identify(hub.PublishHandler()))
	c := haDial(t, haServeApp(t, hub, mux))
	resp, body := c.do("POST", haReq("POST", "/pub?id=alice-x", "from alice", "X-User: alice"))
	haWantStatus(t, "alice publishes to alice-x", resp, body, http.StatusAccepted)
	resp, body = c.do("POST", haReq("POST", "/pub?id=alice-x", "from bob", "X-User: bob"))
	haWantStatus(t, "bob publishes to alice-x on alice's connection", resp, body, http.StatusForbidden)
	haNotStored(t, hub, "alice-x", "from bob")
}

// Problem 4, on a push.Server: a keep-alive publisher whose requests come
// further apart than RequestTimeout, over more than a second, gets every
// one of them served (idle time between requests is not request time, and
// no request inherits the first one's context).
func TestServerKeepAlivePublisherOutlivesFirstRequest(t *testing.T) {
	hub := haNewHub(t, push.Options{RequestTimeout: 300 * time.Millisecond})
	c := haDial(t, haServeServer(t, hub, "/pub", "/sub", nil))
	start := time.Now()
	for i := range 5 {
		if i > 0 {
			time.Sleep(400 * time.Millisecond) // the spacing is the scenario
		}
		resp, body := c.do("POST", haReq("POST", "/pub?id=ka", fmt.Sprint("m", i)))
		haWantStatus(t, fmt.Sprintf("publish %d at %v", i+1, time.Since(start).Round(time.Millisecond)), resp, body, http.StatusAccepted)
	}
	if got := haMessages(t, hub, "ka"); len(got) != 5 {
		t.Fatalf("ka holds %q, want 5 messages", got)
	}
}

// haSlowPublish sends a POST announcing 60 body bytes and then one byte
// every 100 ms (6 s in all), and reports what the client gets within 5 s:
// the response's status, or 0 with the read error.
func haSlowPublish(t *testing.T, c *haConn, channel string) (int, error) {
	t.Helper()
	c.send("POST /pub?id=" + channel + " HTTP/1.1\r\nHost: x\r\nContent-Length: 60\r\n\r\n")
	return haTrickle(t, c, strings.Repeat("x", 60))
}

// haTrickle sends data one byte every 100 ms and reports what the client
// gets within 5 s: the response's status, or 0 with the read error.
func haTrickle(t *testing.T, c *haConn, data string) (int, error) {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the slow client: the spacing is the scenario
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := range len(data) {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			c.c.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := c.c.Write([]byte{data[i]}); err != nil {
				return
			}
		}
	}()
	defer func() {
		close(stop)
		wg.Wait()
	}()
	resp, body, err := c.tryRead("POST", 5*time.Second)
	if err != nil {
		return 0, err
	}
	t.Logf("slow publisher answered %s %q", resp.Status, body)
	return resp.StatusCode, nil
}

// haWantSlowRefused fails the test unless a slow publisher got 408 or saw
// its connection closed (not a timeout of the test's own 5 s bound).
func haWantSlowRefused(t *testing.T, status int, err error, elapsed time.Duration) {
	t.Helper()
	switch {
	case err == nil && status == http.StatusRequestTimeout:
	case err != nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		strings.Contains(err.Error(), "connection reset")):
		t.Logf("slow publisher: connection closed (%v)", err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatalf("a publisher sending 1 byte every 100 ms was still being read after %v (RequestTimeout 300ms)", elapsed.Round(time.Millisecond))
	default:
		t.Fatalf("slow publisher: status %d, error %v; want 408 Request Timeout or a closed connection", status, err)
	}
}

// Problem 5a. A publisher body that trickles in is cut off after
// RequestTimeout with 408 (or the connection closed), on an app's
// http.Server with hub.Listener.
func TestHostAppSlowPublisherBodyTimesOut(t *testing.T) {
	hub := haNewHub(t, push.Options{RequestTimeout: 300 * time.Millisecond})
	mux := http.NewServeMux()
	mux.Handle("/pub", hub.PublishHandler())
	c := haDial(t, haServeApp(t, hub, mux))
	start := time.Now()
	status, err := haSlowPublish(t, c, "slow")
	haWantSlowRefused(t, status, err, time.Since(start))
	if _, err := hub.ChannelInfo(context.Background(), "slow"); !errors.Is(err, push.ErrChannelNotFound) {
		t.Fatalf("channel slow after a timed-out publish: %v, want ErrChannelNotFound", err)
	}
}

// Problem 5b. The same on a push.Server, for the connection's first
// request and for a kept-alive one (read by the Hub itself).
func TestServerSlowPublisherBodyTimesOut(t *testing.T) {
	for _, first := range []bool{true, false} {
		name := "kept-alive request"
		if first {
			name = "first request"
		}
		t.Run(name, func(t *testing.T) {
			hub := haNewHub(t, push.Options{RequestTimeout: 300 * time.Millisecond})
			c := haDial(t, haServeServer(t, hub, "/pub", "/sub", nil))
			if !first {
				resp, body := c.do("POST", haReq("POST", "/pub?id=fast", "quick"))
				haWantStatus(t, "first POST", resp, body, http.StatusAccepted)
			}
			start := time.Now()
			status, err := haSlowPublish(t, c, "slow")
			haWantSlowRefused(t, status, err, time.Since(start))
			if _, err := hub.ChannelInfo(context.Background(), "slow"); !errors.Is(err, push.ErrChannelNotFound) {
				t.Fatalf("channel slow after a timed-out publish: %v, want ErrChannelNotFound", err)
			}
		})
	}
}

// Options.RequestTimeout on a Server bounds "the whole request, headers
// and body": a request sent 1 byte every 100 ms ends (answered or closed)
// within RequestTimeout and a margin, whether it is the connection's first
// (read by net/http) or a kept-alive one (read by the Hub).
func TestServerRequestTimeoutBoundsWholeRequest(t *testing.T) {
	const timeout, margin = 300 * time.Millisecond, 700 * time.Millisecond
	for _, first := range []bool{true, false} {
		for _, part := range []string{"headers", "body"} {
			name := "kept-alive request, slow " + part
			if first {
				name = "first request, slow " + part
			}
			t.Run(name, func(t *testing.T) {
				hub := haNewHub(t, push.Options{RequestTimeout: timeout})
				c := haDial(t, haServeServer(t, hub, "/pub", "/sub", nil))
				if !first {
					resp, body := c.do("POST", haReq("POST", "/pub?id=fast", "quick"))
					haWantStatus(t, "first POST", resp, body, http.StatusAccepted)
				}
				req := "POST /pub?id=slow HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("p", 60) + "\r\nContent-Length: 60\r\n\r\n"
				start := time.Now()
				var status int
				var err error
				if part == "headers" {
					status, err = haTrickle(t, c, req+strings.Repeat("x", 60))
				} else {
					c.send(req)
					status, err = haTrickle(t, c, strings.Repeat("x", 60))
				}
				elapsed := time.Since(start)
				if errors.Is(err, os.ErrDeadlineExceeded) || status/100 == 2 {
					t.Fatalf("a request sent 1 byte every 100 ms: status %d, %v after %v; want it refused", status, err, elapsed)
				}
				if elapsed > timeout+margin {
					t.Fatalf("a request sent 1 byte every 100 ms ended after %v (status %d, %v); RequestTimeout is %v",
						elapsed.Round(time.Millisecond), status, err, timeout)
				}
			})
		}
	}
}

// haFirstRead wraps a request body to count the requests whose handler
// has started reading the body.
type haFirstRead struct {
	io.ReadCloser
	once    sync.Once
	started *atomic.Int32
}

func (b *haFirstRead) Read(p []byte) (int, error) {
	b.once.Do(func() { b.started.Add(1) })
	return b.ReadCloser.Read(p)
}

func haHeapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// Problem 5c. A publisher's body memory grows with the bytes received, not
// with the Content-Length it announces: 40 connections announcing 1 MiB
// and sending 1 byte hold far less than 40 MiB.
func TestHostAppBodyMemoryFollowsBytes(t *testing.T) {
	const conns, announced = 40, 1 << 20
	hub := haNewHub(t, push.Options{MaxMessageSize: 2 << 20})
	var started atomic.Int32
	pub := hub.PublishHandler()
	mux := http.NewServeMux()
	mux.Handle("/pub", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = &haFirstRead{ReadCloser: r.Body, started: &started}
		pub.ServeHTTP(w, r)
	}))
	addr := haServeApp(t, hub, mux)
	cs := make([]*haConn, conns)
	for i := range cs {
		cs[i] = haDial(t, addr)
	}
	before := haHeapInUse()
	for i, c := range cs {
		c.send(fmt.Sprintf("POST /pub?id=big%d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\nx", i, announced))
	}
	deadline := time.Now().Add(haWait)
	for started.Load() < conns {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d publishers are being read after %v", started.Load(), conns, haWait)
		}
		runtime.Gosched()
	}
	after := haHeapInUse()
	growth := int64(after) - int64(before)
	t.Logf("%d bodies announcing %d bytes, 1 received: heap in use grew %.1f MiB", conns, announced, float64(growth)/(1<<20))
	if growth > 10<<20 {
		t.Fatalf("heap in use grew %.1f MiB for %d publishers that sent 1 byte each (announcing 1 MiB): want < 10 MiB",
			float64(growth)/(1<<20), conns)
	}
	runtime.KeepAlive(cs)
}

// haHalfCloseAnswer sends, on a fresh connection to addr, a complete POST
// (read by net/http, so that a push.Server's Hub takes the connection
// over), then rest, then half-closes the connection, and returns what the
// server answered to rest: its status line and body, or that it closed.
func haHalfCloseAnswer(t *testing.T, addr, rest string) string {
	t.Helper()
	c := haDial(t, addr)
	resp, body := c.do("POST", haReq("POST", "/pub?id=a", "one"))
	haWantStatus(t, "first POST", resp, body, http.StatusAccepted)
	c.send(rest)
	c.closeWrite()
	resp, body, err := c.tryRead("POST", haWait)
	switch {
	case err == nil:
		return resp.Proto + " " + resp.Status + " " + fmt.Sprintf("%q", body)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), strings.Contains(err.Error(), "connection reset"):
		return "closed without an answer"
	default:
		t.Fatalf("reading the answer to the truncated request: %v", err)
		return ""
	}
}

// Problem 6. A client that half-closes in the middle of a kept-alive
// request on a push.Server gets what net/http answers: 400 Bad Request
// for truncated headers, and for a truncated body the same answer as a
// plain http.Server with the publisher mounted.
func TestServerHalfCloseMidRequest(t *testing.T) {
	cases := []struct{ name, rest, want string }{
		{"in the headers", "POST /pub?id=a HTTP/1.1\r\nHost: x\r\nContent-Le", "400 Bad Request"},
		{"in the request line", "POST /pub?id=a HTT", "400 Bad Request"},
		{"in the body", "POST /pub?id=a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srvHub := haNewHub(t, push.Options{})
			srvAddr := haServeServer(t, srvHub, "/pub", "/sub", nil)
			plainHub := haNewHub(t, push.Options{})
			mux := http.NewServeMux()
			mux.Handle("/pub", plainHub.PublishHandler())
			plainAddr := haServePlain(t, plainHub, mux)

			got := haHalfCloseAnswer(t, srvAddr, tc.rest)
			want := haHalfCloseAnswer(t, plainAddr, tc.rest)
			t.Logf("push.Server: %s; http.Server: %s", got, want)
			if tc.want != "" && !strings.Contains(want, tc.want) {
				t.Fatalf("the plain http.Server answered %s, the test expects %s", want, tc.want)
			}
			if got != want {
				t.Fatalf("push.Server answered the half-closed request with %s; net/http answers %s", got, want)
			}
			if got := haMessages(t, srvHub, "a"); len(got) != 1 {
				t.Fatalf("a holds %q, want only the first message", got)
			}
		})
	}
}
