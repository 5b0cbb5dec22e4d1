package push_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pushhub/push"
)

// TestServerUnixSocket: a Server on a unix socket, whose connections all
// have the same two addresses, answers each connection's requests on that
// connection, including those the Hub reads itself.
func TestServerUnixSocket(t *testing.T) {
	hub := haNewHub(t, push.Options{})
	sock := filepath.Join(t.TempDir(), "pub.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	haServe(t, hub, &push.Server{Hub: hub, PublishPath: "/pub", SubscribePath: "/sub"}, ln)
	var conns []*bufio.ReadWriter
	for range 3 {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(haWait))
		conns = append(conns, bufio.NewReadWriter(bufio.NewReader(c), bufio.NewWriter(c)))
	}
	for round := range 3 { // the second and third are read by the Hub
		for i, rw := range conns {
			rw.WriteString(haReq("POST", "/pub?id=u", "m"))
			if err := rw.Flush(); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(rw.Reader, nil)
			if err != nil {
				t.Fatalf("round %d, connection %d: no answer: %v", round, i, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				t.Errorf("round %d, connection %d: %s, want 202", round, i, resp.Status)
			}
		}
	}
	if got := len(haMessages(t, hub, "u")); got != 9 {
		t.Errorf("%d messages stored, want 9", got)
	}
}

// TestServerPartialPipelinedRequest: part of a request that came with the
// request the Hub took the connection over with, or during a parked
// long-poll, is ended within RequestTimeout, or with none, when the
// connection has been idle (it goes back to net/http, which keeps waiting
// for it, as it does without timeouts).
func TestServerPartialPipelinedRequest(t *testing.T) {
	const partial = "POST /pub?id=a HTTP/1.1\r\nHost: x\r\n"
	for _, tc := range []struct {
		name  string
		setup func(c *haConn, hub *push.Hub)
	}{
		{"after the first request", func(c *haConn, hub *push.Hub) {
			c.send(haReq("GET", "/pub?id=a", "") + partial) // channel info: 404, read by net/http
			resp, _ := c.read("GET")
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET /pub: %s", resp.Status)
			}
		}},
		{"after a parked long-poll", func(c *haConn, hub *push.Hub) {
			c.send(haReq("GET", "/sub?id=b", ""))
			haWaitSubscribers(t, hub, "b", 1)
			c.send(partial)
			haPublish(t, hub, "b", "hi")
			if _, body := c.read("GET"); body != "hi" {
				t.Errorf("long-poll answered %q", body)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hub := haNewHub(t, push.Options{RequestTimeout: 300 * time.Millisecond})
			c := haDial(t, haServeServer(t, hub, "/pub", "/sub", nil))
			tc.setup(c, hub)
			start := time.Now()
			resp, _, err := c.tryRead("POST", haWait)
			switch {
			case err == nil && resp.StatusCode != http.StatusRequestTimeout:
				t.Errorf("partial request answered %s", resp.Status)
			case err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF):
				t.Errorf("partial request still held after %v: %v", time.Since(start).Round(time.Millisecond), err)
			}
		})
	}
}

// TestServerLongPollConnectionClose: a long-poll that asks to close its
// connection, on a connection the Hub reads, ends when its client goes
// away: its subscriber does not stay.
func TestServerLongPollConnectionClose(t *testing.T) {
	hub := haNewHub(t, push.Options{})
	c := haDial(t, haServeServer(t, hub, "/pub", "/sub", nil))
	resp, body := c.do("POST", haReq("POST", "/pub?id=z", "one")) // the Hub reads what follows
	haWantStatus(t, "POST", resp, body, http.StatusAccepted)
	c.send(haReq("GET", "/sub?id=q", "", "Connection: close\r\n"))
	haWaitSubscribers(t, hub, "q", 1)
	c.c.Close()
	deadline := time.Now().Add(haWait)
	for {
		st, err := hub.Stats(context.Background())
		if err == nil && st.Subscribers == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d subscribers %v after the client left", st.Subscribers, haWait)
		}
		runtime.Gosched()
	}
}

// TestServerCloseEndsReadConnections: Server.Close closes the connections
// whose requests the Hub reads, and a parked long-poll's connection after
// its answer: no request is served after Close.
func TestServerCloseEndsReadConnections(t *testing.T) {
	hub := haNewHub(t, push.Options{})
	ln := haListen(t)
	srv := &push.Server{Hub: hub, PublishPath: "/pub", SubscribePath: "/sub"}
	haServe(t, hub, srv, ln)
	publisher := haDial(t, ln.Addr().String())
	resp, body := publisher.do("POST", haReq("POST", "/pub?id=p", "one")) // the Hub reads its next
	haWantStatus(t, "POST", resp, body, http.StatusAccepted)
	poller := haDial(t, ln.Addr().String())
	poller.send(haReq("GET", "/sub?id=w", ""))
	haWaitSubscribers(t, hub, "w", 1)

	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := publisher.tryRead("POST", haWait); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("the publisher's connection after Close: %v, want it closed", err)
	}
	haPublish(t, hub, "w", "two") // answers the parked long-poll
	_, body, err := poller.tryRead("GET", haWait)
	if err != nil || body != "two" {
		t.Fatalf("parked long-poll after Close: %v %q", err, body)
	}
	poller.send(haReq("POST", "/pub?id=p", "three"))
	if resp, _, err := poller.tryRead("POST", haWait); err == nil {
		t.Errorf("a request after Close was answered %s", resp.Status)
	}
	if got := strings.Join(haMessages(t, hub, "p"), ","); got != "one" {
		t.Errorf("messages %q, want one", got)
	}
}

// TestServerMisconfigured: a Server without a Hub or with one path for
// both endpoints says so from Serve; Close and Shutdown of a zero Server
// do nothing.
func TestServerMisconfigured(t *testing.T) {
	ln := haListen(t)
	if err := (&push.Server{}).Serve(ln); err == nil || !strings.Contains(err.Error(), "Hub") {
		t.Errorf("Serve without a Hub: %v", err)
	}
	hub := haNewHub(t, push.Options{})
	err := (&push.Server{Hub: hub, PublishPath: "/x", SubscribePath: "/x"}).Serve(ln)
	if err == nil || !strings.Contains(err.Error(), "different paths") {
		t.Errorf("Serve with one path for both: %v", err)
	}
	var zero push.Server
	if err := zero.Close(); err != nil {
		t.Errorf("zero Server's Close: %v", err)
	}
	if err := zero.Shutdown(context.Background()); err != nil {
		t.Errorf("zero Server's Shutdown: %v", err)
	}
}
