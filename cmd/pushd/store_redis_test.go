package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pushhub/push/internal/wiretest"
	"github.com/pushhub/push/redisstore/redistest"
)

// startRedis runs a redis-server on a free loopback port for the test and
// returns its URL (database 1). Without redis-server it skips (fails under
// CI=true).
func startRedis(t *testing.T) string { return redistest.Start(t).URL(1) }

// TestTwoPushdOnRedis: two pushd processes with -redis on one Redis behave as
// one server.
func TestTwoPushdOnRedis(t *testing.T) {
	testTwoPushd(t, "-redis", startRedis(t), "-redis-prefix", "two:")
}

// TestTwoPushdOnRedisCluster: the same with -redis-cluster on a Redis
// Cluster of 3 masters and 3 replicas.
func TestTwoPushdOnRedisCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 6-node Redis Cluster")
	}
	testTwoPushd(t, "-redis-cluster", redistest.StartCluster(t).URL(), "-redis-prefix", "two:")
}

// testTwoPushd: two pushd started with args behave as one server.
func testTwoPushd(t *testing.T, args ...string) {
	a := startPushd(t, args...)
	b := startPushd(t, args...)

	// A subscriber held on B gets what is published on A.
	held := longPoll(b.base+"/sub?id=room", nil)
	waitSubscribers(t, b, 1)
	pub := do(t, "POST", a.base+"/pub?id=room", "hello", map[string]string{"Content-Type": "text/plain"})
	if pub.status != http.StatusCreated {
		t.Fatalf("publish on A with a subscriber on B: %d %q, want 201", pub.status, pub.body)
	}
	got := <-held
	if got.err != nil || got.status != 200 || got.body != "hello" {
		t.Fatalf("long-poll on B: %d %q %v, want 200 \"hello\"", got.status, got.body, got.err)
	}

	// It resumes on A from the position B gave it.
	do(t, "POST", b.base+"/pub?id=room", "second", nil)
	next := do(t, "GET", a.base+"/sub?id=room", "", map[string]string{
		"If-Modified-Since": got.header.Get("Last-Modified"), "If-None-Match": got.header.Get("Etag")})
	if next.status != 200 || next.body != "second" {
		t.Fatalf("resume on A: %d %q, want 200 \"second\"", next.status, next.body)
	}

	// DELETE on A ends the subscriber held on B with 410.
	held = longPoll(b.base+"/sub?id=room", map[string]string{
		"If-Modified-Since": next.header.Get("Last-Modified"), "If-None-Match": next.header.Get("Etag")})
	waitSubscribers(t, b, 1)
	if del := do(t, "DELETE", a.base+"/pub?id=room", "", nil); del.status != http.StatusOK {
		t.Fatalf("DELETE on A: %d %q", del.status, del.body)
	}
	if got := <-held; got.err != nil || got.status != http.StatusGone {
		t.Fatalf("long-poll on B after DELETE on A: %d %v, want 410", got.status, got.err)
	}
}

// TestTwoPushdStreamsOnRedis: a WebSocket (ws+meta.nchan) and an
// EventSource subscriber on pushd B get what is published on pushd A, in
// order, with the ids A's publisher answered; an EventSource resumes on B
// from an id A answered; DELETE on A ends both on B.
func TestTwoPushdStreamsOnRedis(t *testing.T) {
	redisURL := startRedis(t)
	a := startPushd(t, "-redis", redisURL, "-redis-prefix", "streams:")
	b := startPushd(t, "-redis", redisURL, "-redis-prefix", "streams:")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	wsURL := "ws" + strings.TrimPrefix(b.base, "http") + "/sub?id=live"
	ws, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{Subprotocols: []string{"ws+meta.nchan"}})
	if err != nil {
		t.Fatalf("WebSocket to B: %v", err)
	}
	if resp.Body != nil {
		resp.Body.Close()
	}
	defer ws.CloseNow()
	if ws.Subprotocol() != "ws+meta.nchan" {
		t.Fatalf("WebSocket to B: subprotocol %q, want ws+meta.nchan", ws.Subprotocol())
	}
	sse := openEventSource(ctx, t, b.base+"/sub?id=live", "")

	// B subscribed (counted in Redis) before the WebSocket handshake and
	// the EventSource headers, so A answers 201: subscribers are waiting.
	// Each answer names the id A stored.
	var sent []streamed
	for i := 1; i <= 5; i++ {
		data := fmt.Sprintf("msg %d", i)
		pub := do(t, "POST", a.base+"/pub?id=live", data, map[string]string{"Content-Type": "text/plain", "Accept": "application/json"})
		var info struct {
			LastMessageID string `json:"last_message_id"`
		}
		if err := json.Unmarshal([]byte(pub.body), &info); err != nil || pub.status != http.StatusCreated || info.LastMessageID == "" {
			t.Fatalf("publish %d on A with subscribers on B: %d %q (%v), want 201 and the channel info", i, pub.status, pub.body, err)
		}
		sent = append(sent, streamed{info.LastMessageID, data})
	}
	for i, want := range sent {
		if got, err := readWSMeta(ctx, ws); err != nil || got != want {
			t.Fatalf("WebSocket on B, message %d: %+v %v, want %+v", i+1, got, err, want)
		}
		if got, end, err := sse.next(); err != nil || got != want {
			t.Fatalf("EventSource on B, message %d: %+v %q %v, want %+v", i+1, got, end, err, want)
		}
	}

	// An EventSource resumes on B after the first id A answered: the rest,
	// once each.
	resumed := openEventSource(ctx, t, b.base+"/sub?id=live", sent[0].id)
	for _, want := range sent[1:] {
		if got, end, err := resumed.next(); err != nil || got != want {
			t.Fatalf("EventSource resumed on B: %+v %q %v, want %+v", got, end, err, want)
		}
	}

	// DELETE on A ends them on B.
	if del := do(t, "DELETE", a.base+"/pub?id=live", "", nil); del.status != http.StatusOK {
		t.Fatalf("DELETE on A: %d %q", del.status, del.body)
	}
	_, err = readWSMeta(ctx, ws)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway || ce.Reason != "410 Gone" {
		t.Fatalf("WebSocket on B after DELETE on A: %v, want close 1001 \"410 Gone\"", err)
	}
	for _, s := range []*eventSource{sse, resumed} {
		if _, end, err := s.next(); err != nil || end != ":410: 410 Gone" {
			t.Fatalf("EventSource on B after DELETE on A: %q %v, want \":410: 410 Gone\"", end, err)
		}
		if _, _, err := s.next(); err != io.EOF {
			t.Fatalf("EventSource on B after the 410 comment: %v, want the end of the stream", err)
		}
	}
}

// streamed is a message as a streaming subscriber saw it: id "T:G" and
// payload.
type streamed struct{ id, data string }

// readWSMeta reads one ws+meta.nchan frame: "id: T:G\n[content-type: C\n]\n<payload>".
func readWSMeta(ctx context.Context, c *websocket.Conn) (streamed, error) {
	_, b, err := c.Read(ctx)
	if err != nil {
		return streamed{}, err
	}
	m, err := wiretest.ParseWSMeta(b)
	return streamed{m.ID, m.Data}, err
}

// eventSource is an open EventSource stream; reads are bounded by the
// request's context.
type eventSource struct{ br *bufio.Reader }

// openEventSource GETs url as an EventSource, resuming after lastEventID
// unless it is empty; the body is closed at the end of the test.
func openEventSource(ctx context.Context, t *testing.T, url, lastEventID string) *eventSource {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("EventSource %s: %d %q", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &eventSource{bufio.NewReader(resp.Body)}
}

// next returns the next event, or, as end, the comment that ends the
// stream (wiretest.ReadEvent).
func (s *eventSource) next() (streamed, string, error) {
	m, end, err := wiretest.ReadEvent(s.br)
	return streamed{m.ID, m.Data}, end, err
}

// TestRedisUnreachableExits1: pushd with -redis naming no server refuses to
// start and says why.
func TestRedisUnreachableExits1(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	out, err := exec.Command(binary, "-addr", "127.0.0.1:0", "-redis", fmt.Sprintf("redis://127.0.0.1:%d/0", port)).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("pushd with an unreachable Redis: %v, want exit 1; output:\n%s", err, out)
	}
	if !strings.Contains(string(out), "cannot be reached") {
		t.Fatalf("pushd does not say Redis cannot be reached:\n%s", out)
	}
}
