package redisstore

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushhub/push"
	"github.com/stretchr/testify/require"
)

// TestRedisRestart: Redis is killed and restarted on the same port while
// long-poll subscribers are held on two nodes and publishers on both nodes
// keep publishing (retrying while they get 503). Every message whose publish
// was acknowledged reaches every subscriber, in order. Redis runs with
// appendfsync always, so what it acknowledged survives the kill.
func TestRedisRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test skipped with -short")
	}
	const walkers, perPublisher = 20, 150
	r := startRedis(t, "--appendonly", "yes", "--appendfsync", "always")
	a := newNode(t, r, "fault:", push.Options{MessageBufferLength: 1000})
	b := newNode(t, r, "fault:", push.Options{MessageBufferLength: 1000})
	nodes := []*node{a, b}
	ctx := testCtx(t, 3*time.Minute)
	c := newClient(t)
	const ch = "fault"
	_, err := a.hub.CreateChannel(ctx, ch)
	require.NoError(t, err)

	results := make([][]string, walkers)
	var wg sync.WaitGroup
	for i := 0; i < walkers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// After an error a walker tries the other node.
			w := &walker{c: c, nodes: []*node{nodes[i%2], nodes[(i+1)%2]}, ch: ch}
			done := 0
			for done < 2 {
				m, err := w.next(ctx)
				if err != nil {
					t.Errorf("walker %d: %v", i, err)
					return
				}
				if strings.HasSuffix(m, "/done") {
					done++
				}
			}
			results[i] = w.got
		}()
	}
	waitSubscribers(t, a.store, ch, walkers)

	var acked atomic.Int64
	enough := make(chan struct{}) // closed when 60 publishes were acknowledged
	failed := make(chan struct{}) // closed at the first refused publish
	var enoughOnce, failedOnce sync.Once
	ackedMsgs := make([][]string, 2)
	var pwg sync.WaitGroup
	for p := 0; p < 2; p++ {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			send := func(body string) bool {
				for ctx.Err() == nil {
					status, err := publishHTTP(ctx, c, nodes[p], ch, body)
					if err == nil && status < 300 {
						ackedMsgs[p] = append(ackedMsgs[p], body)
						if acked.Add(1) >= 60 {
							enoughOnce.Do(func() { close(enough) })
						}
						return true
					}
					if err == nil && status != http.StatusServiceUnavailable {
						t.Errorf("publisher %d: status %d", p, status)
						return false
					}
					failedOnce.Do(func() { close(failed) })
					tm := time.NewTimer(10 * time.Millisecond)
					select {
					case <-ctx.Done():
					case <-tm.C:
					}
				}
				t.Errorf("publisher %d: %v", p, ctx.Err())
				return false
			}
			for i := 0; i < perPublisher; i++ {
				if !send(fmt.Sprintf("%d/%04d", p, i)) {
					return
				}
			}
			send(fmt.Sprintf("%d/done", p))
		}()
	}

	select {
	case <-enough:
	case <-ctx.Done():
		t.Fatal("publishers did not get going")
	}
	r.Kill()
	select {
	case <-failed:
	case <-ctx.Done():
		t.Fatal("no publish failed while Redis was down")
	}
	// While Redis is down, the Go API fails fast with ErrStoreUnavailable.
	_, _, err = b.hub.Publish(ctx, ch, &push.Message{Data: []byte("x")})
	require.ErrorIs(t, err, push.ErrStoreUnavailable)
	r.Restart()

	pwg.Wait()
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("%d publishes acknowledged across the restart", acked.Load())
	for i, got := range results {
		have := map[string]bool{}
		last := make([]string, 2)
		for _, m := range got {
			have[m] = true
			p := 0
			if strings.HasPrefix(m, "1/") {
				p = 1
			}
			// A publish retried after a lost answer may be stored twice:
			// repeats are allowed, going back is not.
			require.GreaterOrEqual(t, m, last[p], "walker %d: publisher %d's messages out of order", i, p)
			last[p] = m
		}
		for p := range ackedMsgs {
			for _, m := range ackedMsgs[p] {
				require.True(t, have[m], "walker %d never got acknowledged message %s", i, m)
			}
		}
	}
}

// TestUnavailable: with Redis gone every call fails at once with
// ErrStoreUnavailable, and when Redis is back the same store works again.
func TestUnavailable(t *testing.T) {
	r := startRedis(t)
	s := newTestStore(t, r, "")
	ctx := testCtx(t, 30*time.Second)
	cfg := push.ChannelConfig{BufferLength: 10}
	_, _, err := s.Publish(ctx, "u", &push.Message{Data: []byte("1")}, cfg)
	require.NoError(t, err)
	r.Kill()
	start := time.Now()
	_, _, err = s.Publish(ctx, "u", &push.Message{Data: []byte("2")}, cfg)
	require.ErrorIs(t, err, push.ErrStoreUnavailable)
	require.Contains(t, err.Error(), "cannot be reached")
	_, err = s.Messages(ctx, "u", push.MessageID{}, 10)
	require.ErrorIs(t, err, push.ErrStoreUnavailable)
	_, err = s.AddSubscriber(ctx, "u", cfg, true)
	require.ErrorIs(t, err, push.ErrStoreUnavailable)
	t.Logf("three calls failed in %v", time.Since(start))
	r.Restart()
	// Without persistence the data is gone, but the store works again.
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, _, err = s.Publish(ctx, "u", &push.Message{Data: []byte("3")}, cfg)
		if err == nil || time.Now().After(deadline) || !errors.Is(err, push.ErrStoreUnavailable) {
			break
		}
	}
	require.NoError(t, err)
	b, err := s.Messages(ctx, "u", push.MessageID{}, 10)
	require.NoError(t, err)
	require.Len(t, b.Messages, 1)
	require.Equal(t, "3", string(b.Messages[0].Data))
}

// TestNotificationReset: when a node's notification connection is cut, the
// store re-subscribes and sends EventReset, and a subscriber waiting on that
// node still gets the message published meanwhile on another node.
func TestNotificationReset(t *testing.T) {
	a, b := twoNodes(t, push.Options{})
	ctx := testCtx(t, 30*time.Second)
	resets := make(chan struct{}, 10)
	cancel := b.store.Watch(func(e push.Event) {
		if e.Type == push.EventReset {
			resets <- struct{}{}
		}
	})
	defer cancel()
	sub, err := b.hub.Subscribe(ctx, []string{"cut"}, "")
	require.NoError(t, err)
	defer sub.Close()
	got := make(chan *push.Message, 1)
	go func() {
		m, err := sub.Next(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- m
	}()
	// Cut every pub/sub connection (both nodes'), then publish at once.
	n, err := a.store.rdb.ClientKillByFilter(ctx, "TYPE", "pubsub").Result()
	require.NoError(t, err)
	require.EqualValues(t, 2, n, "one notification connection per node")
	m, _, err := a.hub.Publish(ctx, "cut", &push.Message{Data: []byte("during the cut")})
	require.NoError(t, err)
	select {
	case <-resets:
	case <-ctx.Done():
		t.Fatal("no EventReset after the notification connection was cut")
	}
	select {
	case g := <-got:
		require.Equal(t, m.ID, g.ID)
	case <-ctx.Done():
		t.Fatal("the waiting subscriber never got the message")
	}
	// Notifications flow again.
	evs := make(chan push.Event, 10)
	cancel2 := b.store.Watch(func(e push.Event) { evs <- e })
	defer cancel2()
	m2, _, err := a.hub.Publish(ctx, "cut", &push.Message{Data: []byte("after")})
	require.NoError(t, err)
	for {
		select {
		case e := <-evs:
			if e.Type == push.EventMessage {
				require.Equal(t, m2.ID, e.Message.ID)
				return
			}
		case <-ctx.Done():
			t.Fatal("no notification after the reset")
		}
	}
}
