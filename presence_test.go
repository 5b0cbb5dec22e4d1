package push

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// presenceEnv serves a Hub whose events go to a channel, on a Server over
// loopback.
type presenceEnv struct {
	hub    *Hub
	base   string
	events chan SubscriberEvent
	c      *http.Client
}

func newPresenceEnv(t *testing.T, opts Options) *presenceEnv {
	t.Helper()
	e := &presenceEnv{events: make(chan SubscriberEvent, 100)}
	opts.OnSubscribe = func(ev SubscriberEvent) { ev.Reason = "+"; e.events <- ev }
	opts.OnUnsubscribe = func(ev SubscriberEvent) { e.events <- ev }
	e.hub = New(opts)
	srv := &Server{Hub: e.hub, PublishPath: "/pub", SubscribePath: "/sub"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	tr := &http.Transport{}
	e.c = &http.Client{Transport: tr, Timeout: 60 * time.Second}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e.hub.Shutdown(ctx)
		srv.Close()
		<-done
		tr.CloseIdleConnections()
	})
	e.base = "http://" + ln.Addr().String()
	return e
}

// next returns the next event, within a generous bound.
func (e *presenceEnv) next(t *testing.T) SubscriberEvent {
	t.Helper()
	select {
	case ev := <-e.events:
		return ev
	case <-time.After(30 * time.Second):
		t.Fatal("no event within 30s")
	}
	return SubscriberEvent{}
}

// none checks that no event is reported before the Hub has answered a
// request sent after everything before it.
func (e *presenceEnv) none(t *testing.T) {
	t.Helper()
	select {
	case ev := <-e.events:
		t.Fatalf("unexpected event %+v", ev)
	default:
	}
}

func (e *presenceEnv) publish(t *testing.T, ch, body string) {
	t.Helper()
	resp, err := e.c.Post(e.base+"/pub?id="+ch, "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func TestPresenceStreams(t *testing.T) {
	e := newPresenceEnv(t, Options{})
	for _, tc := range []struct {
		name string
		t    Transport
		hdr  string
	}{
		{"eventsource", TransportEventSource, "text/event-stream"},
		{"multipart", TransportMultipart, "multipart/mixed"},
		{"chunked", TransportChunked, ""},
		{"websocket", TransportWebSocket, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var closeClient func()
			if tc.t == TransportWebSocket {
				ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.base, "http")+"/sub?id=s&id=t", nil)
				if err != nil {
					t.Fatal(err)
				}
				closeClient = func() { ws.Close(websocket.StatusNormalClosure, "") }
			} else {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.base+"/sub?id=s&id=t", nil)
				if tc.hdr != "" {
					req.Header.Set("Accept", tc.hdr)
				} else {
					req.Header.Set("TE", "chunked")
				}
				resp, err := e.c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				closeClient = func() { cancel(); resp.Body.Close() }
			}
			sub := e.next(t)
			if sub.Reason != "+" || sub.Transport != tc.t || strings.Join(sub.Channels, ",") != "s,t" || sub.Key == "" || !strings.HasPrefix(sub.RemoteAddr, "127.0.0.1:") {
				t.Fatalf("subscribe event %+v", sub)
			}
			e.none(t)
			start := time.Now()
			closeClient()
			un := e.next(t)
			if un.Key != sub.Key || un.Reason != "closed" || un.Transport != tc.t || un.Duration <= 0 || un.Duration > time.Since(sub.Time)+time.Second {
				t.Fatalf("unsubscribe event %+v after %+v", un, sub)
			}
			if un.Time.Before(start) {
				t.Errorf("unsubscribe at %v, before the client left at %v", un.Time, start)
			}
		})
	}
}

// poller long-polls over one kept-alive connection, walking its chain.
type poller struct {
	t        *testing.T
	conn     net.Conn
	br       *bufio.Reader
	url      string
	etag, lm string
	cookie   string
}

func (e *presenceEnv) poller(t *testing.T, ch string) *poller {
	c, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &poller{t: t, conn: c, br: bufio.NewReader(c), url: e.base + "/sub?id=" + ch}
}

// poll sends a request and returns its answer's status and body.
func (p *poller) poll() (int, string) {
	req, _ := http.NewRequest(http.MethodGet, p.url, nil)
	if p.lm != "" {
		req.Header.Set("If-Modified-Since", p.lm)
		req.Header.Set("If-None-Match", p.etag)
	}
	if p.cookie != "" {
		req.Header.Set("Cookie", p.cookie)
	}
	p.conn.SetDeadline(time.Now().Add(60 * time.Second))
	if err := req.Write(p.conn); err != nil {
		p.t.Fatal(err)
	}
	resp, err := http.ReadResponse(p.br, req)
	if err != nil {
		p.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if v := resp.Header.Get("Etag"); v != "" {
		p.etag, p.lm = v, resp.Header.Get("Last-Modified")
	}
	return resp.StatusCode, string(b)
}

// TestPresenceLongPoll: a long-poll subscriber is subscribed at its first
// request, stays subscribed while it comes back within the grace period
// (answered with messages, or with 304 by interval-poll), and is gone
// LongPollGrace after its last answer, not before.
func TestPresenceLongPoll(t *testing.T) {
	const grace = 1500 * time.Millisecond
	for _, interval := range []bool{false, true} {
		name := map[bool]string{false: "held", true: "interval"}[interval]
		t.Run(name, func(t *testing.T) {
			e := newPresenceEnv(t, Options{LongPollGrace: grace, IntervalPoll: interval})
			e.publish(t, "lp", "m0")
			p := e.poller(t, "lp")
			p2 := e.poller(t, "lp") // another subscriber at the same position
			var last time.Time      // when the last request was sent: before its answer
			for i := range 4 {
				last = time.Now()
				if interval {
					if st, _ := p.poll(); st != 200 && st != 304 {
						t.Fatalf("poll %d: %d", i, st)
					}
				} else {
					if st, body := p.poll(); st != 200 || body == "" {
						t.Fatalf("poll %d: %d %q", i, st, body)
					}
					e.publish(t, "lp", "m")
				}
				if i == 0 {
					p2.poll()
				}
				if i < 3 {
					// The client takes its time (a third of the grace
					// period) before it polls again.
					time.Sleep(grace / 3)
				}
			}
			subs := map[string]bool{}
			var gone []SubscriberEvent
			for len(gone) < 2 {
				ev := e.next(t)
				if ev.Reason == "+" {
					if ev.Transport != TransportLongPoll || ev.Key == "" {
						t.Fatalf("subscribe event %+v", ev)
					}
					subs[ev.Key] = true
					continue
				}
				if !subs[ev.Key] {
					t.Fatalf("unsubscribe %+v before its subscribe", ev)
				}
				gone = append(gone, ev)
			}
			if len(subs) != 2 {
				t.Fatalf("%d subscribe events for 2 subscribers", len(subs))
			}
			for _, ev := range gone {
				if ev.Reason != "left" {
					t.Errorf("unsubscribe reason %q, want left", ev.Reason)
				}
			}
			// The first poller's unsubscribe is the later one.
			un := gone[1]
			if un.Time.Before(last.Add(grace)) {
				t.Errorf("unsubscribe %v after the last request, before the grace period (%v)", un.Time.Sub(last), grace)
			}
			if un.Duration < 3*(grace/3) {
				t.Errorf("duration %v, want at least the polling time", un.Duration)
			}
			e.none(t)
		})
	}
}

// TestPresenceCookie: with SubscriberCookie, the cookie's value is the key
// and tells long-poll subscribers apart; Shutdown reports the subscribers
// still there.
func TestPresenceCookie(t *testing.T) {
	e := newPresenceEnv(t, Options{SubscriberCookie: "sid", IntervalPoll: true, LongPollGrace: time.Hour})
	a, b := e.poller(t, "c"), e.poller(t, "c")
	a.cookie, b.cookie = "sid=alice", "sid=bob"
	for range 3 {
		a.poll()
		b.poll()
	}
	keys := map[string]bool{}
	for range 2 {
		ev := e.next(t)
		if ev.Reason != "+" {
			t.Fatalf("event %+v", ev)
		}
		keys[ev.Key] = true
	}
	if !keys["alice"] || !keys["bob"] {
		t.Errorf("keys %v, want alice and bob", keys)
	}
	e.none(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e.hub.Shutdown(ctx)
	for range 2 {
		if ev := e.next(t); ev.Reason != "shutdown" || !keys[ev.Key] {
			t.Errorf("at shutdown: %+v", ev)
		}
	}
}
