package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushhub/push"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNchanSubscriberRestart: a rolling restart of the server. A second hub
// on the same store takes over new requests, then the first shuts down: its
// subscribers end the way Shutdown ends them (long-poll 503 with the
// position, WebSocket close, end of the EventSource stream). Messages are
// published through the second hub before it serves any subscriber; the page
// reconnects by itself and must get them exactly once, in order.
func TestNchanSubscriberRestart(t *testing.T) {
	b := startBrowser(t)
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			testRestart(t, b, transport)
		})
	}
}

func testRestart(t *testing.T, b *browser, transport string) {
	channel := "e2e-restart-" + transport
	store := push.NewMemoryStore()
	t.Cleanup(func() { store.Close() })
	newHub := func() *push.Hub {
		h := push.New(push.Options{Store: store, MessageBufferLength: 100})
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := h.Shutdown(ctx); err != nil {
				t.Errorf("hub shutdown: %v", err)
			}
		})
		return h
	}

	// The load balancer: requests go to the hub in service; gate, when not
	// nil, holds subscribers until it is closed.
	type backend struct {
		hub  *push.Hub
		gate chan struct{}
		// waiting counts requests in this backend's handler that have not
		// answered yet (a held long-poll).
		waiting atomic.Int32
	}
	var current atomic.Pointer[backend]
	current.Store(&backend{hub: newHub()})
	mux := http.NewServeMux()
	mux.Handle("/", staticFiles(t))
	mux.HandleFunc("/sub", func(w http.ResponseWriter, r *http.Request) {
		be := current.Load()
		if be.gate != nil {
			select {
			case <-be.gate:
			case <-r.Context().Done():
				return
			}
		}
		be.waiting.Add(1)
		hw := &headerWatch{ResponseWriter: w, done: func() { be.waiting.Add(-1) }}
		defer hw.answered()
		be.hub.SubscribeHandler().ServeHTTP(hw, r)
	})
	front, _ := serve(t, "127.0.0.1:0", mux)
	back := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		current.Load().hub.PublishHandler().ServeHTTP(w, r)
	}))
	t.Cleanup(back.Close)

	pub := &publisher{t: t, url: back.URL, channel: channel}
	next := 0
	publish := func(n int) {
		for range n {
			next++
			pub.publish(payload(next))
		}
	}

	publish(2)
	q := url.Values{"transport": {transport}, "url": {"/sub?id=" + url.QueryEscape(channel)}}
	p := b.open(t, front.URL+"/page.html?"+q.Encode())
	waitMessages(p, 2)
	publish(2)
	waitMessages(p, 4)

	// Restart: the new hub takes the traffic (subscribers held at the gate),
	// the old one shuts down and ends its subscribers. First make sure the
	// page is subscribed to the old hub (a long-poll client is not, between
	// two requests).
	// The store's count alone is not enough for long-poll: the request that
	// answered the last message counts until it returns, while the next one
	// may already be on its way to the new hub.
	oldBackend := current.Load()
	old := oldBackend.hub
	require.Eventually(t, func() bool {
		info, err := old.ChannelInfo(context.Background(), channel)
		subscribed := err == nil && info.Subscribers == 1
		if transport == "longpoll" {
			return subscribed && oldBackend.waiting.Load() == 1
		}
		return subscribed
	}, 10*time.Second, 5*time.Millisecond, "the page is not subscribed")
	gate := make(chan struct{})
	current.Store(&backend{hub: newHub(), gate: gate})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, old.Shutdown(ctx))
	publish(3) // through the new hub, while the page has no subscription
	p.waitFor("window.state.disconnects + window.state.errors.length >= 1", 20*time.Second, describeState)
	close(gate)
	waitMessages(p, 7)
	publish(2)
	waitMessages(p, 9)
	publish(1) // any repeat would arrive before this one
	waitMessages(p, 10)

	var st pageState
	p.eval("window.state", &st)
	t.Logf("page saw %d messages over %v; %d connects, %d disconnects, errors %q",
		len(st.Messages), st.Transports, st.Connects, st.Disconnects, st.Errors)
	assert.Equal(t, expect(transport, pub.sent), st.Messages, "messages the page saw (in order, once each, with our ids)")
	for _, tr := range st.Transports {
		assert.Equal(t, transport, tr, "NchanSubscriber.js used another transport")
	}
}

// headerWatch calls done once, when the response's header is written or
// the handler returns, whichever comes first.
type headerWatch struct {
	http.ResponseWriter
	once sync.Once
	done func()
}

func (w *headerWatch) answered() { w.once.Do(w.done) }

func (w *headerWatch) WriteHeader(code int) {
	w.answered()
	w.ResponseWriter.WriteHeader(code)
}

func (w *headerWatch) Write(b []byte) (int, error) {
	w.answered()
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController (flushes, deadlines, hijacking for
// WebSocket) reach the real ResponseWriter.
func (w *headerWatch) Unwrap() http.ResponseWriter { return w.ResponseWriter }
