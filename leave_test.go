package push

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
)

// hubChannelCount is how many channels the Hub holds subscriber state for.
func hubChannelCount(h *Hub) int {
	n := 0
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		n += len(sh.channels)
		sh.mu.RUnlock()
	}
	return n
}

// After subscribers of every transport vanish (clients that close their
// connections without a word), the Hub keeps no state for their channels,
// the store counts no subscriber, and once idle for ChannelTimeout the
// channels themselves are forgotten: memory returns to where it was.
// goleak (TestMain) checks the goroutines.
func TestSubscribersLeaveNothingBehind(t *testing.T) {
	clock := newSpecClock(time.Unix(1_800_000_000, 0))
	store := specNewMemoryStore(t, clock.Now)
	env := newSpecEnv(t, Options{Store: store, ChannelTimeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	const perTransport = 20
	kinds := []string{"longpoll", "eventsource", "multipart", "websocket"}
	errs := make(chan error, perTransport*len(kinds))
	connected := make(chan struct{}, perTransport*len(kinds)) // streams whose headers came back
	for _, kind := range kinds {
		for i := 0; i < perTransport; i++ {
			channel := fmt.Sprintf("%s-%d", kind, i)
			url := env.srv.URL + "/sub?id=" + channel
			go func() {
				if kind == "websocket" {
					c, _, err := websocket.Dial(ctx, strings.Replace(url, "http", "ws", 1), nil)
					if err == nil {
						connected <- struct{}{}
						<-ctx.Done()
						c.CloseNow()
					}
					errs <- err
					return
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				switch kind {
				case "eventsource":
					req.Header.Set("Accept", "text/event-stream")
				case "multipart":
					req.Header.Set("Accept", "multipart/mixed")
				}
				resp, err := env.client.Do(req)
				if err == nil {
					connected <- struct{}{}
					<-ctx.Done()
					resp.Body.Close()
					err = nil
				} else if ctx.Err() != nil {
					err = nil // the long-poll was cut while held
				}
				errs <- err
			}()
		}
	}
	total := perTransport * len(kinds)
	for range total - perTransport { // every stream (long-polls stay held)
		select {
		case <-connected:
		case err := <-errs:
			t.Fatalf("a subscriber failed to connect: %v", err)
		case <-time.After(specWait):
			t.Fatal("streams did not connect")
		}
	}
	require.Eventually(t, func() bool {
		st, err := env.hub.Stats(context.Background())
		return err == nil && st.Subscribers == total
	}, specWait, 5*time.Millisecond, "every subscriber is connected")
	require.Equal(t, total, hubChannelCount(env.hub))

	cancel() // every client vanishes at once
	for i := 0; i < total; i++ {
		require.NoError(t, <-errs)
	}
	require.Eventually(t, func() bool {
		st, err := env.hub.Stats(context.Background())
		return err == nil && st.Subscribers == 0
	}, specWait, 5*time.Millisecond, "the Hub notices every departure")
	require.Zero(t, hubChannelCount(env.hub), "no per-channel state is left in the Hub")
	env.client.CloseIdleConnections()
	require.Eventually(t, func() bool {
		n := 0
		n = env.hub.conns.Len()
		return n == 0
	}, specWait, 5*time.Millisecond, "the Listener forgets every closed connection")
	for _, kind := range kinds {
		info, err := env.hub.ChannelInfo(context.Background(), kind+"-0")
		require.NoError(t, err)
		require.Zero(t, info.Subscribers, "the store counts no %s subscriber", kind)
	}

	st, err := env.hub.Stats(context.Background())
	require.NoError(t, err)
	require.Equal(t, total, st.Channels, "idle channels are kept until ChannelTimeout")
	clock.Add(time.Minute)
	store.sweep()
	st, err = env.hub.Stats(context.Background())
	require.NoError(t, err)
	require.Zero(t, st.Channels, "idle channels are forgotten after ChannelTimeout")
}
