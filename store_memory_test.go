package push

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// MemoryStore behaviour that HTTP tests cannot reach in reasonable time:
// ring trimming (B1), TTL (B2), channel timeout (B3) and id monotonicity
// (I1), driven by the store's replaceable clock and sweep().

var specT0 = time.Unix(1_700_000_000, 0)

func specStorePublish(t *testing.T, s *MemoryStore, ch, body string, cfg ChannelConfig) *Message {
	t.Helper()
	m, _, err := s.Publish(context.Background(), ch, &Message{Data: []byte(body)}, cfg)
	require.NoError(t, err)
	return m
}

func specBodies(b MessageBatch) []string {
	var out []string
	for _, m := range b.Messages {
		out = append(out, string(m.Data))
	}
	return out
}

func specStoreRead(t *testing.T, s *MemoryStore, ch string, after MessageID, limit int) MessageBatch {
	t.Helper()
	b, err := s.Messages(context.Background(), ch, after, limit)
	require.NoError(t, err)
	return b
}

// B1: the ring keeps the newest BufferLength messages, in order, across
// wrap-around and changes of length.
func TestSpecMemoryStoreRing(t *testing.T) {
	clock := newSpecClock(specT0)
	s := specNewMemoryStore(t, clock.Now)
	cfg := ChannelConfig{BufferLength: 3}
	var ids []MessageID
	for i := range 10 {
		ids = append(ids, specStorePublish(t, s, "r", fmt.Sprintf("m%d", i), cfg).ID)
	}
	for i, id := range ids {
		require.Equal(t, MessageID{Time: specT0.Unix(), Tag: int64(i)}, id)
	}
	b := specStoreRead(t, s, "r", MessageID{}, 100)
	require.Equal(t, []string{"m7", "m8", "m9"}, specBodies(b))
	require.Equal(t, ids[9], b.Last)
	require.True(t, b.Missed, "messages before m7 were dropped")

	b = specStoreRead(t, s, "r", ids[7], 100)
	require.Equal(t, []string{"m8", "m9"}, specBodies(b))
	require.False(t, b.Missed)
	b = specStoreRead(t, s, "r", ids[2], 100)
	require.Equal(t, []string{"m7", "m8", "m9"}, specBodies(b), "older than the buffer: from the oldest (I4)")
	require.True(t, b.Missed)
	b = specStoreRead(t, s, "r", ids[9], 100)
	require.Empty(t, b.Messages)
	require.Equal(t, []string{"m7", "m8"}, specBodies(specStoreRead(t, s, "r", MessageID{}, 2)), "limit")

	info, err := s.ChannelInfo(context.Background(), "r")
	require.NoError(t, err)
	require.Equal(t, 3, info.Messages)
	require.Equal(t, ids[9], info.LastMessageID)

	// Shrinking keeps the newest; growing keeps everything after.
	specStorePublish(t, s, "r", "m10", ChannelConfig{BufferLength: 2})
	require.Equal(t, []string{"m9", "m10"}, specBodies(specStoreRead(t, s, "r", MessageID{}, 100)))
	for i := 11; i < 15; i++ {
		specStorePublish(t, s, "r", fmt.Sprintf("m%d", i), ChannelConfig{BufferLength: 5})
	}
	require.Equal(t, []string{"m10", "m11", "m12", "m13", "m14"}, specBodies(specStoreRead(t, s, "r", MessageID{}, 100)))

	st, err := s.Stats(context.Background())
	require.NoError(t, err)
	require.Equal(t, StoreStats{Channels: 1, Messages: 5}, st)
}

// B1, I1: with no buffer, nothing is stored but ids still increase.
func TestSpecMemoryStoreNoBuffer(t *testing.T) {
	clock := newSpecClock(specT0)
	s := specNewMemoryStore(t, clock.Now)
	cfg := ChannelConfig{}
	a := specStorePublish(t, s, "z", "a", cfg)
	b := specStorePublish(t, s, "z", "b", cfg)
	require.Equal(t, 1, b.ID.Compare(a.ID))
	batch := specStoreRead(t, s, "z", MessageID{}, 10)
	require.Empty(t, batch.Messages)
	require.Equal(t, b.ID, batch.Last)
	info, err := s.ChannelInfo(context.Background(), "z")
	require.NoError(t, err)
	require.Equal(t, 0, info.Messages)
	require.Equal(t, b.ID, info.LastMessageID)
}

// B2: a message older than the TTL is not served.
func TestSpecMemoryStoreTTL(t *testing.T) {
	clock := newSpecClock(specT0)
	s := specNewMemoryStore(t, clock.Now)
	cfg := ChannelConfig{BufferLength: 10, MessageTTL: 10 * time.Second}
	m0 := specStorePublish(t, s, "ttl", "m0", cfg)
	clock.Add(5 * time.Second)
	m1 := specStorePublish(t, s, "ttl", "m1", cfg)

	clock.Set(specT0.Add(10*time.Second - time.Nanosecond))
	require.Equal(t, []string{"m0", "m1"}, specBodies(specStoreRead(t, s, "ttl", MessageID{}, 10)))

	clock.Set(specT0.Add(10 * time.Second))
	b := specStoreRead(t, s, "ttl", MessageID{}, 10)
	require.Equal(t, []string{"m1"}, specBodies(b), "m0 expired")
	b = specStoreRead(t, s, "ttl", m0.ID, 10)
	require.Equal(t, []string{"m1"}, specBodies(b))
	info, err := s.ChannelInfo(context.Background(), "ttl")
	require.NoError(t, err)
	require.Equal(t, 1, info.Messages)

	clock.Add(5 * time.Second)
	b = specStoreRead(t, s, "ttl", MessageID{}, 10)
	require.Empty(t, b.Messages)
	require.Equal(t, m1.ID, b.Last)
	b = specStoreRead(t, s, "ttl", m0.ID, 10)
	require.True(t, b.Missed, "a reader at m0 missed m1")
	info, err = s.ChannelInfo(context.Background(), "ttl")
	require.NoError(t, err)
	require.Equal(t, 0, info.Messages)
	require.Equal(t, m1.ID, info.LastMessageID)

	// TTL 0: forever.
	specStorePublish(t, s, "forever", "x", ChannelConfig{BufferLength: 1})
	clock.Add(1000 * time.Hour)
	require.Equal(t, []string{"x"}, specBodies(specStoreRead(t, s, "forever", MessageID{}, 10)))
}

// B2 over HTTP: an expired message is not served to a new subscriber.
func TestSpecMessageTTLOverHTTP(t *testing.T) {
	clock := newSpecClock(time.Now())
	e := newSpecEnv(t, Options{Store: specNewMemoryStore(t, clock.Now), MessageTTL: time.Minute})
	e.specPublishOK("ttl", "old")
	require.Equal(t, "old", string(e.specPoll(e.specURL("/sub", "ttl"), nil).Body))
	e.specWaitHeld("ttl", 0) // the answered request has let go
	clock.Add(time.Minute)
	held := e.specPollAsync(e.specURL("/sub", "ttl"), nil)
	e.specWaitHeld("ttl", 1)
	specNotYet(t, held)
	e.specPublishOK("ttl", "new")
	r := specAwait(t, held)
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, "new", string(r.Body))
}

// B3: a channel with no subscribers and no messages for ChannelTimeout is
// forgotten by the sweep; subscribers and live messages keep it.
func TestSpecMemoryStoreChannelTimeout(t *testing.T) {
	ctx := context.Background()
	clock := newSpecClock(specT0)
	s := specNewMemoryStore(t, clock.Now)
	cfg := ChannelConfig{BufferLength: 5, MessageTTL: 10 * time.Second, ChannelTimeout: 30 * time.Second}
	exists := func(ch string) bool {
		_, err := s.ChannelInfo(ctx, ch)
		if err != nil {
			require.ErrorIs(t, err, ErrChannelNotFound)
		}
		return err == nil
	}

	_, err := s.CreateChannel(ctx, "idle", cfg)
	require.NoError(t, err)
	_, err = s.AddSubscriber(ctx, "watched", cfg, true)
	require.NoError(t, err)
	specStorePublish(t, s, "msg", "x", cfg)                                                               // expires at +10s
	specStorePublish(t, s, "kept", "x", ChannelConfig{BufferLength: 1, ChannelTimeout: 30 * time.Second}) // never expires
	_, err = s.CreateChannel(ctx, "eternal", ChannelConfig{})
	require.NoError(t, err)

	clock.Add(30*time.Second - time.Nanosecond)
	s.sweep()
	for _, ch := range []string{"idle", "watched", "msg", "kept", "eternal"} {
		require.True(t, exists(ch), ch)
	}
	clock.Add(time.Nanosecond)
	s.sweep()
	require.False(t, exists("idle"), "idle for the timeout")
	require.False(t, exists("msg"), "its message expired and it was idle")
	require.True(t, exists("watched"), "has a subscriber")
	require.True(t, exists("kept"), "has a message")
	require.True(t, exists("eternal"), "timeout 0: forever")

	clock.Add(time.Hour)
	s.sweep()
	require.True(t, exists("watched"))
	require.NoError(t, s.RemoveSubscriber(ctx, "watched"))
	clock.Add(29 * time.Second)
	s.sweep()
	require.True(t, exists("watched"), "idle time counts from the last unsubscribe")
	clock.Add(time.Second)
	s.sweep()
	require.False(t, exists("watched"))

	st, err := s.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, StoreStats{Channels: 2, Messages: 1}, st, "memory of forgotten channels returned")
}

// I1: ids never go back: across clock steps back, and across a channel
// deleted or forgotten and coming back, before and after the sweep prunes
// its tombstone.
func TestSpecMemoryStoreIDsMonotonic(t *testing.T) {
	ctx := context.Background()
	clock := newSpecClock(specT0)
	s := specNewMemoryStore(t, clock.Now)
	cfg := ChannelConfig{BufferLength: 2, MessageTTL: 10 * time.Second, ChannelTimeout: 30 * time.Second}
	var last MessageID
	step := func(ch, what string) {
		t.Helper()
		m := specStorePublish(t, s, ch, what, cfg)
		require.Equal(t, 1, m.ID.Compare(last), "%s: %s after %s", what, m.ID, last)
		last = m.ID
	}
	T := specT0.Unix()

	step("i", "first")
	require.Equal(t, MessageID{Time: T, Tag: 0}, last)
	clock.Add(-10 * time.Second)
	step("i", "clock back 10s")
	require.Equal(t, MessageID{Time: T, Tag: 1}, last, "T never decreases")
	clock.Add(-time.Hour)
	step("i", "clock back 1h")
	require.Equal(t, MessageID{Time: T, Tag: 2}, last)
	clock.Set(specT0.Add(time.Second))
	step("i", "clock forward")
	require.Equal(t, MessageID{Time: T + 1, Tag: 0}, last, "first of a new second: tag 0")

	// Deleted and back within the same second.
	_, err := s.DeleteChannel(ctx, "i")
	require.NoError(t, err)
	step("i", "back after delete, same second")
	// Deleted, then the clock steps back.
	_, err = s.DeleteChannel(ctx, "i")
	require.NoError(t, err)
	clock.Add(-time.Minute)
	step("i", "back after delete, clock back")
	// Deleted, tombstone pruned by a later sweep, then the clock steps back.
	_, err = s.DeleteChannel(ctx, "i")
	require.NoError(t, err)
	clock.Set(specT0.Add(10 * time.Second))
	s.sweep()
	clock.Set(specT0.Add(-time.Hour))
	step("i", "back after delete and sweep, clock back")

	// Forgotten by the channel timeout, then back with the clock stepped back.
	clock.Set(specT0.Add(2 * time.Minute))
	step("f", "before forgetting") // a fresh channel: its own ids
	last = MessageID{Time: specT0.Add(2 * time.Minute).Unix()}
	clock.Add(time.Minute)
	s.sweep()
	_, err = s.ChannelInfo(ctx, "f")
	require.ErrorIs(t, err, ErrChannelNotFound, "forgotten")
	clock.Add(-5 * time.Minute)
	step("f", "back after forgetting, clock back")

	// Forgotten, then the clock steps back to exactly the second of its last id.
	clock.Set(specT0.Add(time.Hour))
	last = MessageID{}
	step("g", "g before forgetting")
	clock.Add(time.Minute)
	s.sweep()
	_, err = s.ChannelInfo(ctx, "g")
	require.ErrorIs(t, err, ErrChannelNotFound, "forgotten")
	clock.Set(specT0.Add(time.Hour))
	step("g", "back after forgetting, clock back to the same second")
}

// I1 under concurrency: publishers racing on one channel get distinct,
// increasing ids in the order the store commits them.
func TestSpecMemoryStoreConcurrentIDs(t *testing.T) {
	s := specNewMemoryStore(t, time.Now)
	cfg := ChannelConfig{BufferLength: 1000}
	var wg sync.WaitGroup
	for p := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 100 {
				s.Publish(context.Background(), "c", &Message{Data: []byte(fmt.Sprintf("%d-%d", p, n))}, cfg)
			}
		}()
	}
	wg.Wait()
	b := specStoreRead(t, s, "c", MessageID{}, 1000)
	require.Len(t, b.Messages, 800)
	for i := 1; i < len(b.Messages); i++ {
		require.Equal(t, 1, b.Messages[i].ID.Compare(b.Messages[i-1].ID))
	}
}

// Watch delivers every change in commit order; Close ends everything.
func TestSpecMemoryStoreWatchAndClose(t *testing.T) {
	ctx := context.Background()
	s := specNewMemoryStore(t, time.Now)
	var mu sync.Mutex
	var events []string
	cancel := s.Watch(func(ev Event) {
		mu.Lock()
		defer mu.Unlock()
		switch ev.Type {
		case EventMessage:
			events = append(events, "msg "+ev.Channel+" "+string(ev.Message.Data))
		case EventDelete:
			events = append(events, "del "+ev.Channel)
		}
	})
	cfg := ChannelConfig{BufferLength: 1}
	specStorePublish(t, s, "w", "1", cfg)
	specStorePublish(t, s, "w", "2", cfg)
	_, err := s.DeleteChannel(ctx, "w")
	require.NoError(t, err)
	cancel()
	specStorePublish(t, s, "w", "3", cfg)
	mu.Lock()
	require.Equal(t, []string{"msg w 1", "msg w 2", "del w"}, events)
	mu.Unlock()

	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "Close is idempotent")
	_, _, err = s.Publish(ctx, "w", &Message{}, cfg)
	require.ErrorIs(t, err, ErrStoreClosed)
	_, err = s.Messages(ctx, "w", MessageID{}, 1)
	require.ErrorIs(t, err, ErrStoreClosed)
	_, err = s.ChannelInfo(ctx, "w")
	require.ErrorIs(t, err, ErrStoreClosed)
}

// Watchers registered by several Watch calls all see each change until
// their cancel, in registration order; Close clears them.
func TestMemoryStoreWatchersCancelAndClose(t *testing.T) {
	s := NewMemoryStore()
	var got []string
	cancelA := s.Watch(func(ev Event) { got = append(got, "a:"+ev.Channel) })
	s.Watch(func(ev Event) { got = append(got, "b:"+ev.Channel) })
	ctx := context.Background()
	_, _, err := s.Publish(ctx, "x", &Message{}, ChannelConfig{BufferLength: 1})
	require.NoError(t, err)
	cancelA()
	_, _, err = s.Publish(ctx, "y", &Message{}, ChannelConfig{BufferLength: 1})
	require.NoError(t, err)
	require.Equal(t, []string{"a:x", "b:x", "b:y"}, got)
	require.NoError(t, s.Close())
	require.Empty(t, *s.watchers.list.Load())
}
