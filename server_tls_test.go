package push_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
	"github.com/pushhub/push"
	"github.com/pushhub/push/internal/testcert"
)

// TestServerTLSHTTP2: a Server with TLSConfig serves HTTPS; a client
// verifying the certificate against the test's CA negotiates HTTP/2 and
// holds two EventSource subscriptions on one connection, and both receive
// their channel's message; a publish and a long-poll go over the same
// connection; a WebSocket subscriber is served over HTTP/1.1 on TLS.
func TestServerTLSHTTP2(t *testing.T) {
	ca := testcert.NewCA(t)
	cert := ca.Issue(t, 2)
	hub := haNewHub(t, push.Options{})
	ln := haListen(t)
	haServe(t, hub, &push.Server{Hub: hub, PublishPath: "/pub", SubscribePath: "/sub",
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}, ln)
	base := "https://" + ln.Addr().String()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: haWait}

	var mu sync.Mutex
	conns := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), haWait)
	defer cancel()
	traced := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		mu.Lock()
		conns[i.Conn.LocalAddr().String()] = true
		mu.Unlock()
	}})
	open := func(channel string) *bufio.Scanner {
		req, _ := http.NewRequestWithContext(traced, "GET", base+"/sub?id="+channel, nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
			t.Fatalf("EventSource of %s: %s %s, want HTTP/2.0 200", channel, resp.Proto, resp.Status)
		}
		return bufio.NewScanner(resp.Body)
	}
	a, b := open("a"), open("b")
	for _, ch := range []string{"a", "b"} {
		req, _ := http.NewRequestWithContext(traced, "POST", base+"/pub?id="+ch, strings.NewReader("to "+ch))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || resp.ProtoMajor != 2 {
			t.Fatalf("publish to %s: %s %s, want HTTP/2.0 201", ch, resp.Proto, resp.Status)
		}
	}
	for ch, sc := range map[string]*bufio.Scanner{"a": a, "b": b} {
		for sc.Scan() && sc.Text() != "data: to "+ch {
		}
		if sc.Err() != nil || sc.Text() != "data: to "+ch {
			t.Fatalf("EventSource of %s ended before its message: %v", ch, sc.Err())
		}
	}
	// A long-poll from the start of channel a: answered at once.
	req, _ := http.NewRequestWithContext(traced, "GET", base+"/sub?id=a", nil)
	req.Header.Set("If-Modified-Since", "Thu, 01 Jan 1970 00:00:00 GMT")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("long-poll: %s %s, want HTTP/2.0 200", resp.Proto, resp.Status)
	}
	mu.Lock()
	if len(conns) != 1 {
		t.Errorf("the requests used %d connections, want 1 (HTTP/2)", len(conns))
	}
	mu.Unlock()

	// WebSocket: HTTP/1.1 over TLS (the client offers http/1.1 only).
	ws, wsResp, err := websocket.Dial(ctx, "wss://"+ln.Addr().String()+"/sub?id=c", &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if wsResp.ProtoMajor != 1 {
		t.Errorf("WebSocket over %s, want HTTP/1.1", wsResp.Proto)
	}
	resp, err = client.Post(base+"/pub?id=c", "text/plain", strings.NewReader("ws"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_, got, err := ws.Read(ctx)
	if err != nil || string(got) != "ws" {
		t.Fatalf("WebSocket read %q, %v; want \"ws\"", got, err)
	}
}
