package redisstore

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pushhub/push"
	"github.com/pushhub/push/internal/wiretest"
	"github.com/stretchr/testify/require"
)

// The streaming transports across nodes (issue 4): subscribers on node B
// over WebSocket (ws+meta.nchan), EventSource and a multipart stream get
// what is published on node A, with the ids A's publisher answered; they
// resume on B from an id A handed out; DELETE on A ends them.
//
// Every read is bounded by the test's context: a subscriber that misses a
// message fails the test at the deadline instead of hanging it.

// event is one message as a streaming subscriber saw it: its id ("T:G")
// and payload.
type event struct{ id, data string }

// publishID POSTs body to channel ch of n asking for the channel info as
// JSON, and returns the status and the last message id the publisher
// answered.
func publishID(ctx context.Context, c *http.Client, n *node, ch, body string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.srv.URL+"/pub?id="+url.QueryEscape(ch), strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", err
	}
	var info struct {
		LastMessageID string `json:"last_message_id"`
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return 0, "", fmt.Errorf("publish answered %d %q: %w", resp.StatusCode, b, err)
	}
	return resp.StatusCode, info.LastMessageID, nil
}

// publishN publishes "msg 1".."msg n" (the third has two lines) to ch on n
// and returns what each publish answered as the channel's last id.
func publishN(ctx context.Context, t *testing.T, c *http.Client, n *node, ch string, from, to int) []event {
	t.Helper()
	var sent []event
	for i := from; i <= to; i++ {
		data := fmt.Sprintf("msg %d", i)
		if i == 3 {
			data = "msg 3\nsecond line"
		}
		status, id, err := publishID(ctx, c, n, ch, data)
		require.NoError(t, err)
		require.Less(t, status, 300, "publish %d", i)
		require.NotEmpty(t, id)
		sent = append(sent, event{id, data})
	}
	return sent
}

// subURL is the subscriber URL of ch on n with scheme (http or ws) and
// extra query args.
func subURL(n *node, scheme, ch string, q url.Values) string {
	v := url.Values{"id": {ch}}
	for k, vs := range q {
		v[k] = vs
	}
	return scheme + strings.TrimPrefix(n.srv.URL, "http") + "/sub?" + v.Encode()
}

// dialMeta opens a ws+meta.nchan WebSocket subscriber to ch on n with
// extra query args; it is closed at the end of the test.
func dialMeta(ctx context.Context, t *testing.T, c *http.Client, n *node, ch string, q url.Values) *websocket.Conn {
	t.Helper()
	conn, resp, err := websocket.Dial(ctx, subURL(n, "ws", ch, q), &websocket.DialOptions{
		HTTPClient: c, Subprotocols: []string{"ws+meta.nchan"}})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	require.NoError(t, err)
	t.Cleanup(func() { conn.CloseNow() })
	require.Equal(t, "ws+meta.nchan", conn.Subprotocol())
	return conn
}

// readMeta reads one ws+meta frame, "id: T:G\n[content-type: C\n]\n<payload>".
func readMeta(ctx context.Context, conn *websocket.Conn) (event, error) {
	_, b, err := conn.Read(ctx)
	if err != nil {
		return event{}, err
	}
	m, err := wiretest.ParseWSMeta(b)
	return event{m.ID, m.Data}, err
}

// stream is an open streaming HTTP answer. Reads are bounded by the
// request's context.
type stream struct {
	resp *http.Response
	br   *bufio.Reader
}

// openStream GETs ch on n with hdr and wants a 200 answer of media type
// mt; the body is closed at the end of the test.
func openStream(ctx context.Context, t *testing.T, c *http.Client, n *node, ch string, hdr http.Header, mt string) *stream {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, subURL(n, "http", ch, nil), nil)
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	require.Equal(t, http.StatusOK, resp.StatusCode)
	got, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	require.NoError(t, err)
	require.Equal(t, mt, got)
	return &stream{resp: resp, br: bufio.NewReader(resp.Body)}
}

// openSSE opens an EventSource subscriber to ch on n, resuming after
// lastEventID unless it is empty.
func openSSE(ctx context.Context, t *testing.T, c *http.Client, n *node, ch, lastEventID string) *stream {
	t.Helper()
	hdr := http.Header{"Accept": {"text/event-stream"}}
	if lastEventID != "" {
		hdr.Set("Last-Event-ID", lastEventID)
	}
	return openStream(ctx, t, c, n, ch, hdr, "text/event-stream")
}

// nextSSE returns the next event of an EventSource stream, or, as end, the
// comment that ends the stream (wiretest.ReadEvent).
func (s *stream) nextSSE() (event, string, error) {
	m, end, err := wiretest.ReadEvent(s.br)
	return event{m.ID, m.Data}, end, err
}

// multipart is a multipart/mixed stream after its first delimiter.
type multipart struct {
	*stream
	delim string // "\r\n--" + boundary
}

// openMultipart opens a multipart stream subscriber to ch on n with extra
// headers and reads its first delimiter.
func openMultipart(ctx context.Context, t *testing.T, c *http.Client, n *node, ch string, hdr http.Header) *multipart {
	t.Helper()
	h := http.Header{"Accept": {"multipart/mixed"}}
	for k, v := range hdr {
		h[k] = v
	}
	s := openStream(ctx, t, c, n, ch, h, "multipart/mixed")
	_, params, _ := mime.ParseMediaType(s.resp.Header.Get("Content-Type"))
	b := params["boundary"]
	require.NotEmpty(t, b)
	first := make([]byte, len(b)+2)
	_, err := io.ReadFull(s.br, first)
	require.NoError(t, err)
	require.Equal(t, "--"+b, string(first))
	return &multipart{stream: s, delim: "\r\n--" + b}
}

// next returns the next part's id (Last-Modified seconds and Etag) and
// payload, or io.EOF after the closing delimiter. A part is complete once
// the delimiter after it arrived, which the server sends at once (S8).
func (m *multipart) next() (event, error) {
	p, err := m.br.Peek(2)
	if err != nil {
		return event{}, err
	}
	if string(p) == "--" {
		rest, err := io.ReadAll(m.br)
		if err != nil {
			return event{}, err
		}
		if string(rest) != "--\r\n" {
			return event{}, fmt.Errorf("multipart end %q, want %q", rest, "--\r\n")
		}
		return event{}, io.EOF
	}
	var part []byte
	for !strings.HasSuffix(string(part), m.delim) {
		c, err := m.br.ReadByte()
		if err != nil {
			return event{}, fmt.Errorf("multipart part %q: %w", part, err)
		}
		part = append(part, c)
	}
	text := strings.TrimSuffix(strings.TrimPrefix(string(part), "\r\n"), m.delim)
	head, data, ok := strings.Cut(text, "\r\n\r\n")
	if !ok {
		return event{}, fmt.Errorf("multipart part without headers: %q", part)
	}
	hd := http.Header{}
	for _, line := range strings.Split(head, "\r\n") {
		k, v, _ := strings.Cut(line, ": ")
		hd.Add(k, v)
	}
	lm, err := http.ParseTime(hd.Get("Last-Modified"))
	if err != nil {
		return event{}, fmt.Errorf("multipart part %q: %w", part, err)
	}
	return event{fmt.Sprintf("%d:%s", lm.Unix(), hd.Get("Etag")), data}, nil
}

// TestMultiNodeTransports: a WebSocket (ws+meta.nchan), an EventSource and
// a multipart stream subscriber on node B get every message published on
// node A, in order, with the ids A's publisher answered.
func TestMultiNodeTransports(t *testing.T) {
	a, b := twoNodes(t, push.Options{MessageBufferLength: 100})
	ctx := testCtx(t, 30*time.Second)
	c := newClient(t)
	const ch = "live"

	ws := dialMeta(ctx, t, c, b, ch, nil)
	sse := openSSE(ctx, t, c, b, ch, "")
	mp := openMultipart(ctx, t, c, b, ch, nil)
	// B subscribed (and counted the subscribers in Redis) before the
	// WebSocket handshake and the stream headers: A sees all three.
	info, err := a.hub.ChannelInfo(ctx, ch)
	require.NoError(t, err)
	require.Equal(t, 3, info.Subscribers, "node B's subscribers as node A counts them")

	const n = 20
	sent := publishN(ctx, t, c, a, ch, 1, n)
	for i, want := range sent {
		got, err := readMeta(ctx, ws)
		require.NoError(t, err, "WebSocket on B, message %d", i+1)
		require.Equal(t, want, got, "WebSocket on B, message %d", i+1)

		got, end, err := sse.nextSSE()
		require.NoError(t, err, "EventSource on B, message %d", i+1)
		require.Empty(t, end)
		require.Equal(t, want, got, "EventSource on B, message %d", i+1)

		got, err = mp.next()
		require.NoError(t, err, "multipart on B, message %d", i+1)
		require.Equal(t, want, got, "multipart on B, message %d", i+1)
	}

	// A's channel info names the last of them, as each publish did.
	info, err = a.hub.ChannelInfo(ctx, ch)
	require.NoError(t, err)
	require.Equal(t, sent[n-1].id, info.LastMessageID.String())
	require.Equal(t, n, info.Messages)
}

// pollID long-polls ch on n after pos and returns the answer and the id
// its Last-Modified and Etag name ("T:G").
func pollID(ctx context.Context, t *testing.T, c *http.Client, n *node, ch string, pos position) (poll, string) {
	t.Helper()
	p, err := longPoll(ctx, c, n, ch, pos)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, p.status, "long-poll on %s: %q", ch, p.body)
	lm, err := http.ParseTime(p.pos.lastModified)
	require.NoError(t, err)
	return p, fmt.Sprintf("%d:%s", lm.Unix(), strings.Trim(p.pos.etag, `"`))
}

// TestMultiNodeTransportResume: with an id a long-poll on node A answered,
// a WebSocket (?last_event_id=), an EventSource (Last-Event-ID) and a
// multipart stream (If-Modified-Since/If-None-Match) on node B resume with
// exactly the later messages: none lost, none repeated.
func TestMultiNodeTransportResume(t *testing.T) {
	a, b := twoNodes(t, push.Options{MessageBufferLength: 100})
	ctx := testCtx(t, 30*time.Second)
	c := newClient(t)
	const ch = "resume"
	sent := publishN(ctx, t, c, a, ch, 1, 5)

	// The first two messages from A by long-poll.
	p1, id1 := pollID(ctx, t, c, a, ch, position{})
	require.Equal(t, sent[0], event{id1, p1.body})
	p2, id2 := pollID(ctx, t, c, a, ch, p1.pos)
	require.Equal(t, sent[1], event{id2, p2.body})

	ws := dialMeta(ctx, t, c, b, ch, url.Values{"last_event_id": {id2}})
	sse := openSSE(ctx, t, c, b, ch, id2)
	mp := openMultipart(ctx, t, c, b, ch, http.Header{
		"If-Modified-Since": {p2.pos.lastModified}, "If-None-Match": {p2.pos.etag}})

	// The buffered rest, then two published on A while B's subscribers are
	// held: each comes once, in order, right after the one before it.
	check := func(want []event) {
		t.Helper()
		for _, w := range want {
			got, err := readMeta(ctx, ws)
			require.NoError(t, err)
			require.Equal(t, w, got, "WebSocket resumed on B")
			got, end, err := sse.nextSSE()
			require.NoError(t, err)
			require.Empty(t, end)
			require.Equal(t, w, got, "EventSource resumed on B")
			got, err = mp.next()
			require.NoError(t, err)
			require.Equal(t, w, got, "multipart resumed on B")
		}
	}
	check(sent[2:])
	check(publishN(ctx, t, c, a, ch, 6, 6))
	check(publishN(ctx, t, c, a, ch, 7, 7))
}

// TestMultiNodeTransportDelete: DELETE on node A ends node B's WebSocket
// with 1001 "410 Gone", its EventSource with ":410: 410 Gone" and its
// multipart stream with the closing delimiter (P5).
func TestMultiNodeTransportDelete(t *testing.T) {
	a, b := twoNodes(t, push.Options{})
	ctx := testCtx(t, 30*time.Second)
	c := newClient(t)
	const ch = "doomed"
	sent := publishN(ctx, t, c, a, ch, 1, 1)

	ws := dialMeta(ctx, t, c, b, ch, nil)
	sse := openSSE(ctx, t, c, b, ch, "")
	mp := openMultipart(ctx, t, c, b, ch, nil)
	// Each has the message, so each is live on B when A deletes.
	got, err := readMeta(ctx, ws)
	require.NoError(t, err)
	require.Equal(t, sent[0], got)
	got, _, err = sse.nextSSE()
	require.NoError(t, err)
	require.Equal(t, sent[0], got)
	got, err = mp.next()
	require.NoError(t, err)
	require.Equal(t, sent[0], got)

	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, a.srv.URL+"/pub?id="+ch, nil)
	require.NoError(t, err)
	resp, err := c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	_, err = readMeta(ctx, ws)
	var ce websocket.CloseError
	require.True(t, errors.As(err, &ce), "WebSocket on B after DELETE on A: %v, want a close frame", err)
	require.Equal(t, websocket.StatusGoingAway, ce.Code)
	require.Equal(t, "410 Gone", ce.Reason)

	_, end, err := sse.nextSSE()
	require.NoError(t, err)
	require.Equal(t, ":410: 410 Gone", end)
	_, _, err = sse.nextSSE()
	require.ErrorIs(t, err, io.EOF, "EventSource on B ends after the 410 comment")

	_, err = mp.next()
	require.ErrorIs(t, err, io.EOF, "multipart on B after DELETE on A")
}
