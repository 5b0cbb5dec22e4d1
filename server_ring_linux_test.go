package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pushhub/push/internal/h1"

	"github.com/pushhub/push/internal/uring"
)

// Tests of the publisher ring (internal/h1/ring_linux.go). The tests of
// direct_test.go run through it too: their publishers join it after their
// first publish.

// awaitRing waits until n connections have joined the Hub's ring, and
// skips the test where io_uring is not available.
func awaitRing(t *testing.T, h *Hub, n int64) {
	t.Helper()
	require.Eventually(t, func() bool {
		st := h.conns.RingStats()
		if st.Unavailable {
			t.Skip("io_uring is not available here")
		}
		return st.Joined >= n
	}, specWait, time.Millisecond, "connections in the ring")
}

// TestPublisherRingServes: publishers on kept-alive connections, one
// request at a time and pipelined, more connections than the ring's
// submission queue holds entries for, are all answered through the ring
// (net/http reads each connection's first request only), and every
// message reaches a subscriber in its publisher's order. Connections the
// clients close leave the ring and the Hub, the ring's goroutine ends, and
// the next publisher starts it again.
func TestPublisherRingServes(t *testing.T) {
	const conns, rounds = uring.Entries/2 + 50, 6 // two entries a connection per turn
	e := newDPEnv(t, Options{MessageBufferLength: 100}, "/pub")
	sub, err := e.hub.Subscribe(context.Background(), []string{"r0", "r1", "r2"}, "")
	require.NoError(t, err)
	defer sub.Close()

	ds := make([]*dpConn, conns)
	for i := range ds {
		ds[i] = e.dial(t)
		ds[i].send(post("warm", "x"))
		resp, _ := ds[i].read("POST")
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
	}
	awaitRing(t, e.hub, conns)

	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i, d := range ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch := "x" + strconv.Itoa(i)
			if i < 3 {
				ch = "r" + strconv.Itoa(i) // these three are subscribed to
			}
			for round := range rounds {
				// Even rounds one request at a time, odd rounds three in one write.
				batch := 1 + 2*(round%2)
				var raw strings.Builder
				for k := range batch {
					raw.WriteString(post(ch, fmt.Sprintf("%d-%d", round, k)))
				}
				if _, err := io.WriteString(d.c, raw.String()); err != nil {
					errs <- err
					return
				}
				for range batch {
					resp, err := http.ReadResponse(d.br, &http.Request{Method: "POST"})
					if err != nil {
						errs <- err
						return
					}
					body, _ := io.ReadAll(resp.Body)
					if resp.StatusCode/100 != 2 || !strings.Contains(string(body), "queued messages: ") {
						errs <- fmt.Errorf("connection %d: %s %q", i, resp.Status, body)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.EqualValues(t, conns, e.pubRequests.Load(), "requests net/http read for /pub")
	assert.Zero(t, e.hub.conns.RingStats().Left, "connections that left the ring")

	ctx, cancel := context.WithTimeout(context.Background(), specWait)
	defer cancel()
	var want []string
	for round := range rounds {
		for k := range 1 + 2*(round%2) {
			want = append(want, fmt.Sprintf("%d-%d", round, k))
		}
	}
	got := map[string][]string{}
	for range 3 * len(want) {
		m, err := sub.Next(ctx)
		require.NoError(t, err)
		got[m.Channel] = append(got[m.Channel], string(m.Data))
	}
	for _, ch := range []string{"r0", "r1", "r2"} {
		assert.Equal(t, want, got[ch], "channel %s", ch)
	}

	for _, d := range ds {
		d.c.Close()
	}
	require.Eventually(t, func() bool { return e.hub.conns.RingStats().Left == conns }, specWait, time.Millisecond)
	require.Eventually(t, func() bool { return e.hub.conns.Len() == 0 }, specWait, time.Millisecond)
	require.Eventually(t, func() bool {
		return !e.hub.conns.RingStats().Running
	}, specWait, time.Millisecond, "the ring's goroutine ends once it has no connection")

	// The next publisher starts it again.
	d := e.dial(t)
	for i := range 3 {
		d.send(post("again", strconv.Itoa(i)))
		resp, _ := d.read("POST")
		assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	}
	awaitRing(t, e.hub, conns+1)
}

// TestPublisherRingLeaves: requests the ring does not serve itself, a
// long-poll, a request for another path, one larger than the buffer, one
// that asks to close, go to a goroutine of their connection's own (or to
// the http.Server), answered as without the ring.
func TestPublisherRingLeaves(t *testing.T) {
	e := newDPEnv(t, Options{MessageBufferLength: 100}, "/pub", "/sub")
	d := e.dial(t)
	d.send(post("warm", "1"))
	d.read("POST")
	awaitRing(t, e.hub, 1)

	// A long-poll on the publisher's connection waits, and is answered by
	// a publish on another.
	d.send("GET /sub?id=lv HTTP/1.1\r\nHost: x\r\n\r\n")
	require.Eventually(t, func() bool {
		info, err := e.hub.ChannelInfo(context.Background(), "lv")
		return err == nil && info.Subscribers == 1
	}, specWait, time.Millisecond, "the long-poll waits")
	assert.EqualValues(t, 1, e.hub.conns.RingStats().Left)
	other := e.dial(t)
	other.send(post("lv", "2"))
	resp, _ := other.read("POST")
	assert.Equal(t, http.StatusCreated, resp.StatusCode)
	resp, body := d.read("GET")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "2", body)

	// other is in the ring: another path and a publish in one write.
	awaitRing(t, e.hub, 2)
	other.send("GET /other HTTP/1.1\r\nHost: x\r\n\r\n" + post("lv", "3"))
	_, body = other.read("GET")
	assert.Equal(t, "other GET", body)
	resp, _ = other.read("POST")
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)

	// A third connection: a request larger than the ring's buffer.
	big := e.dial(t)
	big.send(post("warm", "4"))
	big.read("POST")
	awaitRing(t, e.hub, 3)
	body4 := strings.Repeat("5", h1.MaxBody+1)
	big.send(post("lv", body4))
	resp, _ = big.read("POST")
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)

	// A fourth: Connection: close, after a publish in the same write.
	cl := e.dial(t)
	cl.send(post("warm", "6"))
	cl.read("POST")
	awaitRing(t, e.hub, 4)
	cl.send(post("lv", "7") + post("lv", "8", "Connection: close\r\n"))
	resp, _ = cl.read("POST")
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	assert.False(t, resp.Close)
	resp, _ = cl.read("POST")
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	assert.True(t, resp.Close)
	_, err := cl.br.ReadByte()
	assert.ErrorIs(t, err, io.EOF)

	sub, err := e.hub.Subscribe(context.Background(), []string{"lv"}, "0:0")
	require.NoError(t, err)
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), specWait)
	defer cancel()
	var got []string
	for range 5 {
		m, err := sub.Next(ctx)
		require.NoError(t, err)
		got = append(got, string(m.Data))
	}
	assert.Equal(t, []string{"2", "3", body4, "7", "8"}, got)
}

// TestPublisherRingKeepsPace: a publish read by the ring that is ahead of
// its channel's sweep is answered only once the sweep's pass ends, as a
// goroutine's would be; the ring serves the other connections meanwhile.
func TestPublisherRingKeepsPace(t *testing.T) {
	e := newDPEnv(t, Options{}, "/pub")
	sub, err := e.hub.Subscribe(context.Background(), []string{"pace"}, "")
	require.NoError(t, err)
	defer sub.Close()
	d, free := e.dial(t), e.dial(t)
	for _, c := range []*dpConn{d, free} {
		c.send(post("pace", "0"))
		c.read("POST")
	}
	awaitRing(t, e.hub, 2)

	// A sweep of the channel is running, a message behind.
	sh := e.hub.shard("pace")
	sh.mu.RLock()
	hc := sh.channels["pace"]
	sh.mu.RUnlock()
	require.NotNil(t, hc)
	pass := make(chan struct{})
	hc.lmu.Lock()
	hc.sweeping, hc.pass, hc.behind = true, pass, sweepAhead+1
	hc.lmu.Unlock()

	answered := make(chan int, 1)
	d.send(post("pace", "1"))
	go func() {
		resp, err := http.ReadResponse(d.br, &http.Request{Method: "POST"})
		if err != nil {
			answered <- 0
			return
		}
		io.ReadAll(resp.Body)
		answered <- resp.StatusCode
	}()
	// The other connection is served meanwhile (its publish does not
	// wait: the channel "free" has no sweep).
	free.send(post("free", "x"))
	resp, _ := free.read("POST")
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	select {
	case s := <-answered:
		t.Fatalf("answered %d before the sweep's pass ended", s)
	default:
	}
	hc.lmu.Lock()
	hc.sweeping, hc.behind = false, 0
	hc.lmu.Unlock()
	close(pass)
	select {
	case s := <-answered:
		assert.Equal(t, http.StatusCreated, s)
	case <-time.After(specWait):
		t.Fatal("not answered after the pass ended")
	}
	// It left the ring for a goroutine, which serves its next publish.
	assert.EqualValues(t, 1, e.hub.conns.RingStats().Left)
	d.send(post("pace", "2"))
	resp, _ = d.read("POST")
	assert.Equal(t, http.StatusCreated, resp.StatusCode)
}

// TestPublisherRingStuckClient: a publisher that sends without reading
// its answers, until the socket holds no more, has its connection closed
// once the answer waiting to be sent is older than WriteTimeout.
func TestPublisherRingStuckClient(t *testing.T) {
	e := newDPEnv(t, Options{WriteTimeout: 200 * time.Millisecond}, "/pub")
	d := e.dial(t)
	require.NoError(t, d.c.(*net.TCPConn).SetReadBuffer(4096))
	d.send(post("stuck", "1"))
	d.read("POST")
	awaitRing(t, e.hub, 1)

	raw := strings.Repeat(post("stuck", strings.Repeat("x", 1000)), 64)
	var err error
	for sent := 0; err == nil && sent < 1<<30; sent += len(raw) {
		_, err = io.WriteString(d.c, raw) // fails once the Hub has closed the connection
	}
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the connection was not closed: %v", err)
	require.Eventually(t, func() bool { return e.hub.conns.Len() == 0 }, specWait, time.Millisecond)
	assert.EqualValues(t, 1, e.hub.conns.RingStats().Left)
}

// TestPublisherRingIdle: a connection idle in the ring goes back to the
// http.Server after directIdle (ConnState sees it anew), and its next
// publish is taken over again.
func TestPublisherRingIdle(t *testing.T) {
	e := newDPEnv(t, Options{}, "/pub")
	d := e.dial(t)
	d.send(post("idle", "1"))
	d.read("POST")
	waitConnState(t, e.states, http.StateHijacked)
	awaitRing(t, e.hub, 1)
	waitConnState(t, e.states, http.StateNew) // given back
	assert.EqualValues(t, 1, e.hub.conns.RingStats().Left)
	d.send(post("idle", "2"))
	resp, _ := d.read("POST")
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	awaitRing(t, e.hub, 2)
	assert.EqualValues(t, 2, e.pubRequests.Load())
}

// TestPublisherRingOff: with DisableIOURing, and when a hook sees
// requests, publishers stay on their goroutines.
func TestPublisherRingOff(t *testing.T) {
	for name, opts := range map[string]Options{
		"DisableIOURing":   {DisableIOURing: true},
		"AuthorizePublish": {AuthorizePublish: func(*http.Request, string) error { return nil }},
	} {
		t.Run(name, func(t *testing.T) {
			e := newDPEnv(t, opts, "/pub")
			d := e.dial(t)
			for i := range 5 {
				d.send(post("off", strconv.Itoa(i)))
				resp, _ := d.read("POST")
				assert.Equal(t, http.StatusAccepted, resp.StatusCode)
			}
			assert.EqualValues(t, 1, e.pubRequests.Load(), "read by the Hub")
			assert.Zero(t, e.hub.conns.RingStats().Joined, "connections in the ring")
		})
	}
}

// TestDirectPublishersPipelinedThenOther: a publish and a request for
// another path in one write get their answers in order, whether the ring
// or a goroutine reads them (the publish's answer was once dropped when
// the connection went back to the http.Server).
func TestDirectPublishersPipelinedThenOther(t *testing.T) {
	for name, off := range map[string]bool{"ring": false, "goroutine": true} {
		t.Run(name, func(t *testing.T) {
			e := newDPEnv(t, Options{DisableIOURing: off}, "/pub")
			d := e.dial(t)
			d.send(post("po", "1"))
			d.read("POST")
			d.send(post("po", "2") + "GET /other HTTP/1.1\r\nHost: x\r\n\r\n" + post("po", "3"))
			resp, _ := d.read("POST")
			assert.Equal(t, http.StatusAccepted, resp.StatusCode)
			_, body := d.read("GET")
			assert.Equal(t, "other GET", body)
			resp, _ = d.read("POST")
			assert.Equal(t, http.StatusAccepted, resp.StatusCode)
		})
	}
}

// TestPublisherRingLeftThenIdle: a connection that left the ring for a
// goroutine (here for a CORS preflight of the subscriber path) is given
// back to the http.Server once idle, as one that never joined.
func TestPublisherRingLeftThenIdle(t *testing.T) {
	e := newDPEnv(t, Options{}, "/pub", "/sub")
	d := e.dial(t)
	d.send(post("li", "1"))
	d.read("POST")
	waitConnState(t, e.states, http.StateHijacked)
	awaitRing(t, e.hub, 1)
	d.send("OPTIONS /sub?id=li HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, _ := d.read("OPTIONS")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.EqualValues(t, 1, e.hub.conns.RingStats().Left)
	waitConnState(t, e.states, http.StateNew) // given back after directIdle
}
