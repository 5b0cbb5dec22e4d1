package redisstore

// A Hub on the Redis store inside a host app, over real loopback TCP: the
// Redis store honours the request context, so a request that ran under
// another request's context (its deadline, or its cancellation when
// answered) would fail where the user expects it to succeed.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pushhub/push"
)

// haConn is one client connection speaking raw HTTP/1.1.
type haConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func haDial(t *testing.T, addr string) *haConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &haConn{t: t, c: c, br: bufio.NewReader(c)}
}

// do sends a request and reads its response.
func (c *haConn) do(method, target, body string) (*http.Response, string) {
	c.t.Helper()
	req := method + " " + target + " HTTP/1.1\r\nHost: x\r\n"
	if method == http.MethodPost {
		req += fmt.Sprintf("Content-Length: %d\r\n", len(body))
	}
	c.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.c, req+"\r\n"+body); err != nil {
		c.t.Fatalf("writing %s %s: %v", method, target, err)
	}
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		c.t.Fatalf("reading the answer to %s %s: %v", method, target, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		c.t.Fatalf("reading the answer to %s %s: %v", method, target, err)
	}
	return resp, string(b)
}

// haHub is a Hub on a Redis store of its own.
func haHub(t *testing.T, opts push.Options) *push.Hub {
	t.Helper()
	opts.Store = newTestStore(t, startRedis(t), "")
	return push.New(opts)
}

// haServe serves on a loopback listener with serve, and at the end of the
// test shuts the Hub down, then stops the server with stop.
func haServe(t *testing.T, hub *push.Hub, serve func(net.Listener) error, stop func() error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		serve(ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hub.Shutdown(ctx)
		stop()
		<-done
	})
	return ln.Addr().String()
}

// Problem 4. An app whose middleware gives each request a 1 s deadline
// (as chi's middleware.Timeout does) serves a publisher that keeps its
// connection alive and publishes every 0.3 s: every publish runs under its
// own deadline and succeeds, however long the connection lives.
func TestHostAppPerRequestDeadlineRedis(t *testing.T) {
	hub := haHub(t, push.Options{})
	timeout := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), time.Second)
			defer cancel()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
	mux := http.NewServeMux()
	mux.Handle("/pub", timeout(hub.PublishHandler()))
	mux.Handle("/sub", timeout(hub.SubscribeHandler()))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	addr := haServe(t, hub, func(ln net.Listener) error { return srv.Serve(hub.Listener(ln)) }, srv.Close)

	c := haDial(t, addr)
	start := time.Now()
	for i := range 6 {
		if i > 0 {
			time.Sleep(300 * time.Millisecond) // the spacing is the scenario
		}
		resp, body := c.do(http.MethodPost, "/pub?id=deadline", fmt.Sprint("m", i))
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("publish %d, %v after the connection's first: %s %q; want 202 Accepted",
				i+1, time.Since(start).Round(time.Millisecond), resp.Status, body)
		}
	}
	resp, body := c.do(http.MethodGet, "/sub?id=deadline", "")
	if resp.StatusCode != http.StatusOK || body != "m0" {
		t.Fatalf("long-poll after the publishes: %s %q; want 200 OK \"m0\"", resp.Status, body)
	}
}

// Problem 4, on a push.Server (no middleware): a kept-alive connection's
// publishes and long-polls, read by the Hub itself, keep succeeding for
// longer than a second and across gaps longer than RequestTimeout: none
// runs under an earlier request's context, ended when it was answered.
func TestServerKeepAliveRedis(t *testing.T) {
	hub := haHub(t, push.Options{RequestTimeout: 300 * time.Millisecond})
	srv := &push.Server{Hub: hub, PublishPath: "/pub", SubscribePath: "/sub"}
	addr := haServe(t, hub, srv.Serve, srv.Close)

	c := haDial(t, addr)
	start := time.Now()
	var want []string
	for i := range 5 {
		if i > 0 {
			time.Sleep(400 * time.Millisecond) // the spacing is the scenario
		}
		data := fmt.Sprint("m", i)
		want = append(want, data)
		resp, body := c.do(http.MethodPost, "/pub?id=ka", data)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("publish %d, %v after the connection's first: %s %q; want 202 Accepted",
				i+1, time.Since(start).Round(time.Millisecond), resp.Status, body)
		}
		resp, body = c.do(http.MethodGet, "/pub?id=ka", "")
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, fmt.Sprintf("queued messages: %d", i+1)) {
			t.Fatalf("channel info after publish %d: %s %q", i+1, resp.Status, body)
		}
		resp, body = c.do(http.MethodGet, "/sub?id=ka", "")
		if resp.StatusCode != http.StatusOK || body != "m0" {
			t.Fatalf("long-poll after publish %d: %s %q; want 200 OK \"m0\"", i+1, resp.Status, body)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := hub.Subscribe(ctx, []string{"ka"}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for _, w := range want {
		m, err := sub.TryNext(ctx)
		if err != nil || m == nil || string(m.Data) != w {
			t.Fatalf("stored messages: got %v (%v), want %q", m, err, w)
		}
	}
}
