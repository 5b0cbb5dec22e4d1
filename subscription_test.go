package push

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// publishOnCountStore publishes to a channel right after counting a
// subscriber on it, before the Hub gets the answer: the moment a message
// could slip between counting and delivery.
type publishOnCountStore struct {
	*MemoryStore
	cfg ChannelConfig
}

func (s publishOnCountStore) AddSubscriber(ctx context.Context, channel string, cfg ChannelConfig, create bool) (ChannelInfo, error) {
	info, err := s.MemoryStore.AddSubscriber(ctx, channel, cfg, create)
	if err == nil {
		_, _, err = s.MemoryStore.Publish(ctx, channel, &Message{Data: []byte("just after counting")}, s.cfg)
	}
	return info, err
}

func TestSubscribeGetsMessagePublishedRightAfterCounting(t *testing.T) {
	mem := NewMemoryStore()
	defer mem.Close()
	// Buffer disabled: the message exists only as a live delivery.
	hub := New(Options{Store: publishOnCountStore{MemoryStore: mem}, MessageBufferLength: -1})
	defer hub.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := hub.Subscribe(ctx, []string{"c"}, "")
	require.NoError(t, err)
	defer sub.Close()
	m, err := sub.Next(ctx)
	require.NoError(t, err, "the message published once we were counted must reach us")
	require.Equal(t, "just after counting", string(m.Data))
}

// A burst published back to back, longer than the store's buffer, reaches a
// subscriber that was waiting for it whole: the Hub's window of recent
// messages serves it. (Nchan keeps such bursts in per-subscriber queues.)
func TestBurstLongerThanBufferReachesWaitingSubscriber(t *testing.T) {
	hub := New(Options{MessageBufferLength: 20})
	defer hub.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	sub, err := hub.Subscribe(ctx, []string{"burst"}, "")
	require.NoError(t, err)
	defer sub.Close()
	m, err := sub.TryNext(ctx) // settles the position: nothing yet
	require.NoError(t, err)
	require.Nil(t, m)

	const burst = 500
	for i := range burst {
		_, _, err := hub.Publish(ctx, "burst", &Message{Data: fmt.Appendf(nil, "%d", i)})
		require.NoError(t, err)
	}
	for i := range burst {
		m, err := sub.Next(ctx)
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint(i), string(m.Data))
	}
	require.False(t, sub.Missed())
}

// A subscriber counted before a burst longer than the buffer, whose first
// read comes after it (a stream still finishing its handshake), gets the
// whole burst from the Hub's window, not only what the buffer still holds.
func TestFirstReadAfterBurstLongerThanBuffer(t *testing.T) {
	h := New(Options{MessageBufferLength: 10})
	defer h.Shutdown(context.Background())
	ctx := context.Background()
	h.Publish(ctx, "burst", &Message{Data: []byte("before")}) // buffered when counted: not replayed
	sub, err := h.Subscribe(ctx, []string{"burst"}, "")
	require.NoError(t, err)
	defer sub.Close()
	for i := range 50 {
		_, _, err := h.Publish(ctx, "burst", &Message{Data: []byte(fmt.Sprint("m", i))})
		require.NoError(t, err)
	}
	for i := range 50 {
		m, err := sub.TryNext(ctx)
		require.NoError(t, err)
		require.NotNil(t, m, "message %d", i)
		require.Equal(t, fmt.Sprint("m", i), string(m.Data))
	}
	require.False(t, sub.Missed())
}

// TestPublishLeavesCallersMessage: Hub.Publish stores a copy of the
// caller's message (the Hub's own publisher requests hand theirs over), so
// one Message may be published to several channels and is not changed.
func TestPublishLeavesCallersMessage(t *testing.T) {
	h := New(Options{})
	defer h.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg := &Message{Data: []byte("both"), ContentType: "text/plain"}
	a, _, err := h.Publish(ctx, "a", msg)
	require.NoError(t, err)
	b, _, err := h.Publish(ctx, "b", msg)
	require.NoError(t, err)
	require.Equal(t, "", msg.Channel, "the caller's message")
	require.Zero(t, msg.ID, "the caller's message")
	require.True(t, msg.Time.IsZero(), "the caller's message")
	require.NotSame(t, msg, a)
	require.Equal(t, "a", a.Channel)
	require.Equal(t, "b", b.Channel)
	for _, ch := range []string{"a", "b"} {
		sub, err := h.Subscribe(ctx, []string{ch}, "")
		require.NoError(t, err)
		m, err := sub.Next(ctx)
		require.NoError(t, err)
		require.Equal(t, ch, m.Channel)
		require.Equal(t, "both", string(m.Data))
		sub.Close()
	}
}
