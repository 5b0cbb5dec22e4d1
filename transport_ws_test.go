package push

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// trEnv is a Hub served over loopback with its publisher at /pub and
// subscriber at /sub.
type trEnv struct {
	t     *testing.T
	hub   *Hub
	srv   *httptest.Server
	ended chan trEnd // streaming subscribers that ended
}

type trEnd struct {
	t   Transport
	err error
}

// trStart serves a Hub with opts. Cleanup shuts the Hub down first (ending
// every subscriber), then the server.
func trStart(t *testing.T, opts Options) *trEnv {
	t.Helper()
	return trStartWith(t, opts, nil)
}

// trStartWith is trStart with a hook that may change the server before it
// starts (e.g. its listener).
func trStartWith(t *testing.T, opts Options, prepare func(*httptest.Server)) *trEnv {
	t.Helper()
	e := &trEnv{t: t, hub: New(opts), ended: make(chan trEnd, 100)}
	e.hub.streamEnded = func(tr Transport, err error) { e.ended <- trEnd{tr, err} }
	mux := http.NewServeMux()
	mux.Handle("/pub", e.hub.PublishHandler())
	mux.Handle("/sub", e.hub.SubscribeHandler())
	e.srv = httptest.NewUnstartedServer(mux)
	if prepare != nil {
		prepare(e.srv)
	}
	if e.srv.TLS != nil { // prepare asked for TLS
		e.srv.StartTLS()
	} else {
		e.srv.Start()
	}
	t.Cleanup(e.srv.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, e.hub.Shutdown(ctx))
	})
	return e
}

// publish publishes data with content type ct to channel and returns the
// stored message.
func (e *trEnv) publish(channel, data, ct string) *Message {
	e.t.Helper()
	m, _, err := e.hub.Publish(context.Background(), channel, &Message{Data: []byte(data), ContentType: ct})
	require.NoError(e.t, err)
	return m
}

// waitEnded waits for a streaming subscriber to end and returns why.
func (e *trEnv) waitEnded() trEnd {
	e.t.Helper()
	select {
	case end := <-e.ended:
		return end
	case <-time.After(10 * time.Second):
		e.t.Fatal("no streaming subscriber ended within 10s")
	}
	return trEnd{}
}

// waitSubscribers waits until the Hub counts n open subscriptions. There
// is no event for "the server has subscribed this connection" on the
// client side of a WebSocket or stream, so this polls the counter.
func (e *trEnv) waitSubscribers(n int) {
	e.t.Helper()
	require.Eventually(e.t, func() bool {
		st, err := e.hub.Stats(context.Background())
		return err == nil && st.Subscribers == n
	}, 10*time.Second, time.Millisecond, "want %d subscribers", n)
}

// subURL returns the subscriber URL for channels with extra query args.
func (e *trEnv) subURL(scheme string, channels []string, extra url.Values) string {
	q := url.Values{"id": channels}
	for k, v := range extra {
		q[k] = v
	}
	u := strings.Replace(e.srv.URL, "http", scheme, 1)
	return u + "/sub?" + q.Encode()
}

// dial opens a WebSocket subscriber.
func (e *trEnv) dial(channels []string, extra url.Values, hdr http.Header, protocols ...string) *websocket.Conn {
	e.t.Helper()
	c, err := e.tryDial(channels, extra, hdr, protocols...)
	require.NoError(e.t, err)
	return c
}

func (e *trEnv) tryDial(channels []string, extra url.Values, hdr http.Header, protocols ...string) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, e.subURL("ws", channels, extra), &websocket.DialOptions{
		HTTPClient: e.srv.Client(), HTTPHeader: hdr, Subprotocols: protocols})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("status %d: %w", resp.StatusCode, err)
		}
		return nil, err
	}
	e.t.Cleanup(func() { c.CloseNow() })
	return c, nil
}

// trRead reads one frame within 10s.
func trRead(t *testing.T, c *websocket.Conn) (websocket.MessageType, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, b, err := c.Read(ctx)
	require.NoError(t, err)
	return typ, string(b)
}

// trReadClose reads until the connection closes and returns the close error.
func trReadClose(t *testing.T, c *websocket.Conn) websocket.CloseError {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			require.True(t, errors.As(err, &ce), "want a close frame, got %v", err)
			return ce
		}
		t.Logf("frame before close: %q", b)
	}
}

func TestTrWSMetaFraming(t *testing.T) {
	e := trStart(t, Options{})
	m1 := e.publish("a", "hello", "text/plain")
	m2 := e.publish("a", "", "")
	m3 := e.publish("a", "\x00\x01\xff", "application/octet-stream")

	c := e.dial([]string{"a"}, nil, nil, wsMetaProtocol)
	assert.Equal(t, wsMetaProtocol, c.Subprotocol())
	typ, got := trRead(t, c)
	assert.Equal(t, websocket.MessageText, typ)
	assert.Equal(t, "id: "+m1.ID.String()+"\ncontent-type: text/plain\n\nhello", got)
	typ, got = trRead(t, c)
	assert.Equal(t, websocket.MessageText, typ)
	assert.Equal(t, "id: "+m2.ID.String()+"\n\n", got, "an empty message is still a frame with its header")
	typ, got = trRead(t, c)
	assert.Equal(t, websocket.MessageBinary, typ)
	assert.Equal(t, "id: "+m3.ID.String()+"\ncontent-type: application/octet-stream\n\n\x00\x01\xff", got)

	// Live: published after the subscriber is connected.
	m4 := e.publish("a", "line1\nline2", "")
	_, got = trRead(t, c)
	assert.Equal(t, "id: "+m4.ID.String()+"\n\nline1\nline2", got)
}

func TestTrWSPlainFraming(t *testing.T) {
	e := trStart(t, Options{})
	e.publish("a", "hello", "text/plain")
	e.publish("a", "\x00\xff", "application/octet-stream")
	c := e.dial([]string{"a"}, nil, nil)
	assert.Equal(t, "", c.Subprotocol())
	typ, got := trRead(t, c)
	assert.Equal(t, websocket.MessageText, typ)
	assert.Equal(t, "hello", got)
	typ, got = trRead(t, c)
	assert.Equal(t, websocket.MessageBinary, typ)
	assert.Equal(t, "\x00\xff", got)
}

// Every id carrier of I3 resumes a WebSocket subscriber after the id.
func TestTrWSResumeCarriers(t *testing.T) {
	e := trStart(t, Options{})
	var ms []*Message
	for i := range 4 {
		ms = append(ms, e.publish("a", fmt.Sprint("m", i), ""))
	}
	from := ms[1].ID
	carriers := map[string]struct {
		q url.Values
		h http.Header
	}{
		"last_event_id": {q: url.Values{"last_event_id": {from.String()}}},
		"Last-Event-ID": {h: http.Header{"Last-Event-Id": {from.String()}}},
		"Etag":          {h: http.Header{"Etag": {from.String()}}},
		"If-None-Match": {h: http.Header{"If-None-Match": {from.String()}}},
		"If-Modified-Since": {h: http.Header{
			"If-Modified-Since": {time.Unix(from.Time, 0).UTC().Format(http.TimeFormat)},
			"If-None-Match":     {fmt.Sprint(from.Tag)}}},
	}
	for name, cr := range carriers {
		t.Run(name, func(t *testing.T) {
			c := e.dial([]string{"a"}, cr.q, cr.h, wsMetaProtocol)
			_, got := trRead(t, c)
			assert.Equal(t, "id: "+ms[2].ID.String()+"\n\nm2", got)
			_, got = trRead(t, c)
			assert.Equal(t, "id: "+ms[3].ID.String()+"\n\nm3", got)
			c.Close(websocket.StatusNormalClosure, "")
		})
	}
}

func TestTrWSDeleteAndShutdown(t *testing.T) {
	e := trStart(t, Options{})
	c := e.dial([]string{"gone"}, nil, nil, wsMetaProtocol)
	other := e.dial([]string{"stays"}, nil, nil)
	e.waitSubscribers(2)

	info, err := e.hub.DeleteChannel(context.Background(), "gone")
	require.NoError(t, err)
	assert.Equal(t, 1, info.Subscribers)
	ce := trReadClose(t, c)
	assert.Equal(t, websocket.StatusGoingAway, ce.Code)
	assert.Equal(t, "410 Gone", ce.Reason)
	assert.ErrorIs(t, e.waitEnded().err, ErrChannelDeleted)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.hub.Shutdown(ctx) }()
	ce = trReadClose(t, other)
	assert.Equal(t, websocket.StatusGoingAway, ce.Code)
	assert.Equal(t, "503 Service Unavailable", ce.Reason)
	require.NoError(t, <-done)
}

func TestTrWSSubscriberTimeout(t *testing.T) {
	e := trStart(t, Options{SubscriberTimeout: 50 * time.Millisecond})
	c := e.dial([]string{"a"}, nil, nil)
	ce := trReadClose(t, c)
	assert.Equal(t, websocket.StatusNormalClosure, ce.Code)
	assert.Equal(t, "408 Request Timeout", ce.Reason)
}

func TestTrWSOrigin(t *testing.T) {
	e := trStart(t, Options{})
	_, err := e.tryDial([]string{"a"}, nil, http.Header{"Origin": {"http://evil.example"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "status 403")
	// Same origin is fine.
	u, _ := url.Parse(e.srv.URL)
	c := e.dial([]string{"a"}, nil, http.Header{"Origin": {"http://" + u.Host}})
	c.Close(websocket.StatusNormalClosure, "")

	e2 := trStart(t, Options{AllowedOrigins: []string{"http://*.example"}})
	c = e2.dial([]string{"a"}, nil, http.Header{"Origin": {"http://app.example"}})
	c.Close(websocket.StatusNormalClosure, "")
	_, err = e2.tryDial([]string{"a"}, nil, http.Header{"Origin": {"http://other.test"}})
	assert.ErrorContains(t, err, "status 403")
}

func TestTrWSDisabled(t *testing.T) {
	e := trStart(t, Options{Transports: AllTransports &^ TransportWebSocket})
	_, err := e.tryDial([]string{"a"}, nil, nil)
	assert.ErrorContains(t, err, "status 403")
}

func TestTrWSMissed(t *testing.T) {
	e := trStart(t, Options{MessageBufferLength: 2})
	old := e.publish("a", "m0", "")
	e.publish("a", "m1", "")
	e.publish("a", "m2", "")
	m3 := e.publish("a", "m3", "")
	c := e.dial([]string{"a"}, url.Values{"last_event_id": {old.ID.String()}}, nil, wsMetaProtocol)
	_, got := trRead(t, c)
	assert.Equal(t, "id: "+old.ID.String()+"\ncontent-type: "+wsMissedType+"\n\n", got)
	_, got = trRead(t, c)
	assert.Contains(t, got, "\n\nm2")
	_, got = trRead(t, c)
	assert.Equal(t, "id: "+m3.ID.String()+"\n\nm3", got)
}

// A peer that stops answering pings is dropped.
func TestTrWSPingDropsDeadPeer(t *testing.T) {
	e := trStart(t, Options{PingInterval: 20 * time.Millisecond, WriteTimeout: 50 * time.Millisecond})
	c := e.dial([]string{"a"}, nil, nil) // never read: pongs are not sent
	_ = c
	end := e.waitEnded()
	assert.Equal(t, TransportWebSocket, end.t)
	assert.ErrorContains(t, end.err, "ping")
	st, err := e.hub.Stats(context.Background())
	require.NoError(t, err)
	assert.Equal(t, uint64(1), st.PingTimeouts, "Stats.PingTimeouts")
	assert.Zero(t, st.SlowDropped, "Stats.SlowDropped")
	assert.Zero(t, st.SubscribersByTransport["websocket"], "Stats.SubscribersByTransport after the end")
}

// A live peer gets pings, answers them, stays connected and keeps getting
// messages.
func TestTrWSPingLivePeer(t *testing.T) {
	e := trStart(t, Options{PingInterval: 5 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pings := make(chan struct{}, 100)
	c, _, err := websocket.Dial(ctx, e.subURL("ws", []string{"a"}, nil), &websocket.DialOptions{
		HTTPClient: e.srv.Client(),
		OnPingReceived: func(context.Context, []byte) bool {
			select {
			case pings <- struct{}{}:
			default:
			}
			return true // answer with a pong
		}})
	require.NoError(t, err)
	defer c.CloseNow()
	got := make(chan string, 1)
	go func() { // reads, and so answers pings
		defer close(got)
		if _, b, err := c.Read(ctx); err == nil {
			got <- string(b)
		}
	}()
	for range 3 {
		select {
		case <-pings:
		case <-ctx.Done():
			t.Fatal("no ping from the server")
		}
	}
	e.publish("a", "still here", "")
	assert.Equal(t, "still here", <-got)
}

func TestTrWSPublish(t *testing.T) {
	e := trStart(t, Options{MaxMessageSize: 16})
	sub := e.dial([]string{"a"}, nil, nil, wsMetaProtocol)
	e.waitSubscribers(1)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pu := strings.Replace(e.srv.URL, "http", "ws", 1) + "/pub?id=a"
	pub, _, err := websocket.Dial(ctx, pu, &websocket.DialOptions{HTTPClient: e.srv.Client(),
		HTTPHeader: http.Header{"Accept": {"application/json"}}})
	require.NoError(t, err)
	defer pub.CloseNow()

	require.NoError(t, pub.Write(ctx, websocket.MessageText, []byte("text msg")))
	_, info := trRead(t, pub)
	assert.Contains(t, info, `"subscribers": 1`)
	require.NoError(t, pub.Write(ctx, websocket.MessageBinary, []byte{0, 1, 2}))
	trRead(t, pub)

	_, got := trRead(t, sub)
	assert.Regexp(t, `^id: \d+:\d+\n\ntext msg$`, got)
	typ, got := trRead(t, sub)
	assert.Equal(t, websocket.MessageBinary, typ)
	assert.Regexp(t, "^id: \\d+:\\d+\ncontent-type: application/octet-stream\n\n\x00\x01\x02$", got)

	// A frame over MaxMessageSize closes the publisher with 1009.
	require.NoError(t, pub.Write(ctx, websocket.MessageText, []byte(strings.Repeat("x", 17))))
	ce := trReadClose(t, pub)
	assert.Equal(t, websocket.StatusMessageTooBig, ce.Code)
}

// Hub.Shutdown ends a WebSocket publisher with 1001 "503 Service
// Unavailable", as it ends subscribers.
func TestTrWSPublisherEndsOnShutdown(t *testing.T) {
	e := trStart(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pu := strings.Replace(e.srv.URL, "http", "ws", 1) + "/pub?id=a"
	pub, _, err := websocket.Dial(ctx, pu, &websocket.DialOptions{HTTPClient: e.srv.Client()})
	require.NoError(t, err)
	defer pub.CloseNow()
	require.NoError(t, pub.Write(ctx, websocket.MessageText, []byte("one")))
	trRead(t, pub) // the channel info: the publisher is in its read loop

	require.NoError(t, e.hub.Shutdown(ctx))
	ce := trReadClose(t, pub)
	assert.Equal(t, websocket.StatusGoingAway, ce.Code)
	assert.Equal(t, "503 Service Unavailable", ce.Reason)
}

// trSmallBufListener shrinks the send buffer of accepted connections, so a
// client that stops reading blocks the server's writes quickly.
type trSmallBufListener struct{ net.Listener }

func (l trSmallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(8 << 10)
	}
	return c, err
}

// dialSmallBuf dials a WebSocket subscriber whose socket has a small
// receive buffer, so that the server's writes block soon when it does not
// read (use with trSmallBufListener on the server).
func (e *trEnv) dialSmallBuf(channels []string, q url.Values, protocols ...string) *websocket.Conn {
	e.t.Helper()
	dialer := &net.Dialer{}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetReadBuffer(8 << 10)
		}
		return c, err
	}}
	e.t.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, e.subURL("ws", channels, q),
		&websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}, Subprotocols: protocols})
	require.NoError(e.t, err)
	e.t.Cleanup(func() { c.CloseNow() })
	c.SetReadLimit(1 << 20)
	return c
}

// A subscriber that falls behind by more than the buffer (and the Hub's
// window of recent messages) is told it missed messages, in order, before
// the first message after the gap; the publisher never waited for it.
func TestTrWSMissedWhileBehind(t *testing.T) {
	const size = 16 << 10
	// More than the window can hold even after a subscriber took a full
	// window of pending messages just before blocking: a gap is certain.
	const n = 3*windowBytes/size + 40
	e := trStartWith(t, Options{MessageBufferLength: 4, PingInterval: -1},
		func(s *httptest.Server) { s.Listener = trSmallBufListener{s.Listener} })
	// Start from a known position. (A subscriber of a new, empty channel
	// has the zero position, "from the oldest buffered", and is not told.)
	start := e.publish("a", "start", "")
	c := e.dialSmallBuf([]string{"a"}, url.Values{"last_event_id": {start.ID.String()}}, wsMetaProtocol)
	e.waitSubscribers(1)
	payload := strings.Repeat("x", size)
	var ids []string
	for range n {
		ids = append(ids, e.publish("a", payload, "").ID.String())
	}
	index := map[string]int{start.ID.String(): -1}
	for i, id := range ids {
		index[id] = i
	}
	// Read up to the newest message. Every jump over messages must come
	// right after a missed frame naming the position before the jump, and
	// every missed frame must be followed by a jump.
	prev, gapAnnounced, gaps := -1, false, 0
	for prev != n-1 {
		_, frame := trRead(t, c)
		head, _, _ := strings.Cut(frame, "\n\n")
		id, rest, _ := strings.Cut(strings.TrimPrefix(head, "id: "), "\n")
		if rest == "content-type: "+wsMissedType {
			require.False(t, gapAnnounced, "two missed frames in a row")
			require.Equal(t, prev, index[id], "the missed frame names the last position")
			gapAnnounced = true
			continue
		}
		i, ok := index[id]
		require.True(t, ok, "unknown id %s", id)
		require.Greater(t, i, prev, "in order, no repeats")
		if i == prev+1 {
			require.False(t, gapAnnounced, "a missed frame without a gap (at %d)", i)
		} else {
			require.True(t, gapAnnounced, "a silent jump from %d to %d", prev, i)
			gaps++
		}
		gapAnnounced = false
		prev = i
	}
	assert.Positive(t, gaps, "the subscriber fell behind the buffer")
}

// A subscriber that stops reading is dropped when a write times out, while
// a fast one gets every message and the publisher never waits.
func TestTrWSSlowReaderDropped(t *testing.T) {
	const n, size = 200, 16 << 10 // 3.2 MB in all
	e := trStartWith(t, Options{MessageBufferLength: n, WriteTimeout: 2 * time.Second, PingInterval: -1},
		func(s *httptest.Server) { s.Listener = trSmallBufListener{s.Listener} })

	slow := e.dialSmallBuf([]string{"a"}, nil)
	fast := e.dial([]string{"a"}, nil, nil)
	fast.SetReadLimit(1 << 20)
	e.waitSubscribers(2)

	payload := strings.Repeat("x", size)
	start := time.Now()
	for range n {
		e.publish("a", payload, "")
	}
	t.Logf("published %d x %d bytes in %v", n, size, time.Since(start))
	for i := range n {
		_, got := trRead(t, fast)
		require.Len(t, got, size, "message %d", i)
	}
	end := e.waitEnded()
	assert.Equal(t, TransportWebSocket, end.t)
	assert.True(t, errors.Is(end.err, context.DeadlineExceeded) || errors.Is(end.err, os.ErrDeadlineExceeded),
		"dropped by the write deadline, got %v", end.err)

	// The slow client finds the connection cut before all messages.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := 0
	for {
		_, _, err := slow.Read(ctx)
		if err != nil {
			break
		}
		got++
	}
	assert.Less(t, got, n)
	t.Logf("slow reader got %d of %d before it was dropped", got, n)
}

// A WebSocket handshake with a version other than 13 or without a key gets
// 400 (note 46 of the research).
func TestTrWSBadHandshake(t *testing.T) {
	e := trStart(t, Options{})
	for name, h := range map[string]http.Header{
		"version 8": {"Sec-Websocket-Version": {"8"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}},
		"no key":    {"Sec-Websocket-Version": {"13"}},
	} {
		req, _ := http.NewRequest(http.MethodGet, e.subURL("http", []string{"a"}, nil), nil)
		req.Header = h
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		resp, err := e.srv.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, name)
	}
}

// Over TLS the connection has no non-blocking write: every batch is
// written by a goroutine of its own, in order.
func TestTrWSOverTLS(t *testing.T) {
	e := trStartWith(t, Options{}, func(s *httptest.Server) { s.TLS = &tls.Config{} })
	c := e.dial([]string{"a"}, nil, nil, wsMetaProtocol)
	e.waitSubscribers(1)
	var want []string
	for i := range 50 {
		m := e.publish("a", fmt.Sprint("m", i), "")
		want = append(want, "id: "+m.ID.String()+"\n\n"+fmt.Sprint("m", i))
	}
	for _, w := range want {
		_, got := trRead(t, c)
		require.Equal(t, w, got)
	}
	e.hub.DeleteChannel(context.Background(), "a")
	ce := trReadClose(t, c)
	assert.Equal(t, websocket.StatusGoingAway, ce.Code)
	assert.Equal(t, "410 Gone", ce.Reason)
}

// A WebSocket publisher whose authorization ends (EndSubscriptionAt in
// AuthorizePublish, as a token's expiry) is closed with 1008 "401
// Unauthorized" then, after publishing until then.
func TestTrWSPublisherAuthorizationEnds(t *testing.T) {
	const lifetime = 300 * time.Millisecond
	e := trStart(t, Options{AuthorizePublish: func(r *http.Request, channel string) error {
		EndSubscriptionAt(r, time.Now().Add(lifetime))
		return nil
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pu := strings.Replace(e.srv.URL, "http", "ws", 1) + "/pub?id=a"
	start := time.Now()
	pub, _, err := websocket.Dial(ctx, pu, &websocket.DialOptions{HTTPClient: e.srv.Client()})
	require.NoError(t, err)
	defer pub.CloseNow()
	require.NoError(t, pub.Write(ctx, websocket.MessageText, []byte("one")))
	trRead(t, pub) // published while authorized

	ce := trReadClose(t, pub)
	assert.Equal(t, websocket.StatusPolicyViolation, ce.Code)
	assert.Equal(t, "401 Unauthorized", ce.Reason)
	assert.GreaterOrEqual(t, time.Since(start), lifetime, "closed before the authorization ended")
	info, err := e.hub.ChannelInfo(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, 1, info.Messages)
}
