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
