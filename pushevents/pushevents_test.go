package pushevents_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushhub/push"
	"github.com/pushhub/push/pushevents"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// receiver is a back end's event endpoint on loopback.
type receiver struct {
	mu     sync.Mutex
	events []pushevents.Event
	got    chan struct{}
	fail   atomic.Int32 // answer 503 to this many more requests
	srv    *http.Server
	ln     net.Listener
	done   chan struct{}
}

func newReceiver(t *testing.T, addr string) *receiver {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{got: make(chan struct{}, 1000), ln: ln, done: make(chan struct{})}
	r.srv = &http.Server{Handler: r}
	go func() { defer close(r.done); r.srv.Serve(ln) }()
	t.Cleanup(r.close)
	return r
}

func (r *receiver) close() {
	r.srv.Close()
	<-r.done
}

func (r *receiver) url() string { return "http://" + r.ln.Addr().String() }

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if r.fail.Add(-1) >= 0 {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	var ev pushevents.Event
	if err := json.NewDecoder(req.Body).Decode(&ev); err != nil || req.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "bad event", http.StatusBadRequest)
		return
	}
	if !strings.HasSuffix(req.URL.Path, "/"+ev.Event) {
		http.Error(w, "wrong endpoint", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	r.got <- struct{}{}
}

// wait returns the events once there are n.
func (r *receiver) wait(t *testing.T, n int) []pushevents.Event {
	t.Helper()
	for {
		r.mu.Lock()
		if len(r.events) >= n {
			evs := append([]pushevents.Event(nil), r.events...)
			r.mu.Unlock()
			return evs
		}
		r.mu.Unlock()
		select {
		case <-r.got:
		case <-time.After(30 * time.Second):
			t.Fatalf("fewer than %d events within 30s", n)
		}
	}
}

func ev(key string, i int) push.SubscriberEvent {
	return push.SubscriberEvent{Channels: []string{"c", fmt.Sprint(i)}, Transport: push.TransportWebSocket,
		RemoteAddr: "127.0.0.1:1234", Key: key, Time: time.Now()}
}

// TestOrderAndRetry: the events of each subscriber arrive in order, across
// an outage of the endpoint (503s, then no listener at all), and none is
// lost.
func TestOrderAndRetry(t *testing.T) {
	r := newReceiver(t, "127.0.0.1:0")
	addr := r.ln.Addr().String()
	s := pushevents.New(pushevents.Config{SubscribeURL: r.url() + "/subscribe", UnsubscribeURL: r.url() + "/unsubscribe",
		Logger: quiet, Workers: 4})
	r.fail.Store(5)
	const subscribers, each = 10, 6
	for i := range each {
		for k := range subscribers {
			e := ev(fmt.Sprint("k", k), i)
			if i%2 == 0 {
				s.Subscribe(e)
			} else {
				e.Reason, e.Duration = "closed", time.Second
				s.Unsubscribe(e)
			}
		}
		if i == 2 {
			// An outage: nobody listens for a moment.
			r.close()
			r2 := newReceiver(t, addr)
			r2.mu.Lock()
			r2.events = r.events
			r2.mu.Unlock()
			r = r2
		}
	}
	evs := r.wait(t, subscribers*each)
	s.Close(context.Background())
	next := map[string]int{}
	for _, e := range evs {
		i := next[e.Key]
		if e.Channel != fmt.Sprint("c,", i) || (i%2 == 0) != (e.Event == "subscribe") {
			t.Fatalf("subscriber %s: event %d is %+v", e.Key, i, e)
		}
		if e.Event == "unsubscribe" && (e.Reason != "closed" || e.Duration != 1) {
			t.Errorf("unsubscribe %+v", e)
		}
		if e.Transport != "websocket" || e.Address != "127.0.0.1:1234" {
			t.Errorf("event %+v", e)
		}
		next[e.Key]++
	}
	if len(evs) != subscribers*each || s.Dropped() != 0 || s.Sent() != subscribers*each {
		t.Errorf("%d events received, %d sent, %d dropped; want %d, none dropped", len(evs), s.Sent(), s.Dropped(), subscribers*each)
	}
}

// TestDrops: events beyond MaxQueued, or not delivered within RetryFor,
// are dropped and counted.
func TestDrops(t *testing.T) {
	r := newReceiver(t, "127.0.0.1:0")
	r.fail.Store(1 << 30)
	s := pushevents.New(pushevents.Config{SubscribeURL: r.url() + "/subscribe", Logger: quiet,
		MaxQueued: 3, RetryFor: 500 * time.Millisecond, Workers: 1})
	for i := range 5 {
		s.Subscribe(ev("k", i))
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.Dropped() != 5 || s.Sent() != 0 {
		t.Errorf("dropped %d, sent %d; want 5 dropped (2 over the queue, 3 out of time)", s.Dropped(), s.Sent())
	}
	s.Subscribe(ev("k", 9))
	if s.Dropped() != 6 {
		t.Errorf("an event after Close was not dropped")
	}
}

// TestHub: a Hub's events reach the endpoint through the Sender.
func TestHub(t *testing.T) {
	r := newReceiver(t, "127.0.0.1:0")
	s := pushevents.New(pushevents.Config{SubscribeURL: r.url() + "/subscribe", UnsubscribeURL: r.url() + "/unsubscribe", Logger: quiet})
	hub := push.New(push.Options{OnSubscribe: s.Subscribe, OnUnsubscribe: s.Unsubscribe, Logger: quiet})
	srv := &push.Server{Hub: hub, SubscribePath: "/sub"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ln.Addr().String()+"/sub?id=a", nil)
	req.Header.Set("Accept", "text/event-stream")
	tr := &http.Transport{}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.wait(t, 1)
	cancel()
	resp.Body.Close()
	evs := r.wait(t, 2)
	if evs[0].Event != "subscribe" || evs[1].Event != "unsubscribe" || evs[0].Key != evs[1].Key || evs[1].Reason != "closed" || evs[0].Transport != "eventsource" {
		t.Errorf("events %+v", evs)
	}
	hub.Shutdown(context.Background())
	srv.Close()
	<-done
	tr.CloseIdleConnections()
	s.Close(context.Background())
}
