package push

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSweepBatchedWrites: a channel with more subscribers than a publish
// serves itself is served by sweeps whose writes are made in batches
// (internal/sock). Every subscriber gets every message in order: the
// fast ones as they come, and one that reads nothing until the end, whose
// socket takes only part of a write, once it reads (the rest of each write
// went to a goroutine of its own, as without batches), whether the writes
// were copied into the batch's buffer (small ones) or not. With DisableIOURing
// the same holds, with a system call per write.
func TestSweepBatchedWrites(t *testing.T) {
	for _, c := range []struct {
		n, size int
		off     bool
	}{
		{40, 16 << 10, false}, // larger than a batch copies: the stream's buffer is written
		{1000, 200, false},    // copied into the batch's buffer
		{40, 16 << 10, true},
	} {
		t.Run(fmt.Sprintf("%dx%d/DisableIOURing=%v", c.n, c.size, c.off), func(t *testing.T) {
			testSweepBatchedWrites(t, c.n, c.size, c.off)
		})
	}
}

// sweeping reports whether a sweep of channel is running.
func sweeping(h *Hub, channel string) bool {
	sh := h.shard(channel)
	sh.mu.RLock()
	hc := sh.channels[channel]
	sh.mu.RUnlock()
	hc.lmu.Lock()
	defer hc.lmu.Unlock()
	return hc.sweeping
}

func testSweepBatchedWrites(t *testing.T, n, size int, off bool) {
	const fast = inlineFanOut + 16
	e := trStartWith(t, Options{MessageBufferLength: n, PingInterval: -1, DisableIOURing: off},
		func(s *httptest.Server) { s.Listener = trSmallBufListener{s.Listener} })
	e.hub.streamEnded = nil // more streams end than e.ended holds
	slow := e.dialSmallBuf([]string{"a"}, nil)
	conns := make([]*websocket.Conn, fast)
	for i := range conns {
		conns[i] = e.dial([]string{"a"}, nil, nil)
		conns[i].SetReadLimit(1 << 20)
	}
	e.waitSubscribers(fast + 1)

	payload := func(i int) string { return fmt.Sprintf("%04d", i) + strings.Repeat("x", size-4) }
	readAll := func(c *websocket.Conn) error {
		for i := range n {
			_, got, err := c.Read(context.Background())
			if err != nil {
				return fmt.Errorf("message %d: %w", i, err)
			}
			if string(got) != payload(i) {
				return fmt.Errorf("message %d: got %q...", i, got[:min(len(got), 8)])
			}
		}
		return nil
	}
	errs := make(chan error, fast)
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- readAll(c)
		}()
	}
	for i := range n {
		e.publish("a", payload(i), "")
		// Each pass ends before the next publish: a stream's write is
		// then always its batch's (its run after the batch finds
		// nothing new), so the write that first finds the slow socket
		// full is a batched one.
		require.Eventually(t, func() bool { return !sweeping(e.hub, "a") }, specWait, 50*time.Microsecond)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, readAll(slow), "the subscriber that read nothing until the end")
	if off {
		assert.Zero(t, e.hub.batches.Writes(), "writes made in batches")
		return
	}
	if e.hub.batches.Unavailable() {
		t.Skip("io_uring is not available here: the sweeps wrote with a system call each")
	}
	assert.Positive(t, e.hub.batches.Writes(), "writes made in batches")
}
