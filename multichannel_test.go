package push

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// trMsg is a message as a client saw it: its id and payload.
type trMsg struct{ id, data string }

// A trMultiClient subscribes to several channels over one transport,
// starting after id ("" for the start).
type trMultiClient interface {
	next() trMsg
	close()
}

type trWSClient struct {
	t *testing.T
	c *websocket.Conn
}

func (c *trWSClient) next() trMsg {
	_, frame := trRead(c.t, c.c)
	head, data, ok := strings.Cut(frame, "\n\n")
	require.True(c.t, ok, "frame %q", frame)
	id, _, _ := strings.Cut(strings.TrimPrefix(head, "id: "), "\n")
	return trMsg{id, data}
}

func (c *trWSClient) close() { c.c.Close(websocket.StatusNormalClosure, "") }

type trSSEClient struct{ s *trStream }

func (c *trSSEClient) next() trMsg {
	var m trMsg
	var data []string
	for {
		line, err := c.s.br.ReadString('\n')
		require.NoError(c.s.t, err)
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "" && data != nil:
			m.data = strings.Join(data, "\n")
			return m
		case strings.HasPrefix(line, "id: "):
			m.id = line[4:]
		case strings.HasPrefix(line, "data: "):
			data = append(data, line[6:])
		}
	}
}

func (c *trSSEClient) close() { c.s.close() }

type trMultipartClient struct {
	s        *trStream
	boundary string
}

// next reads one part up to the delimiter that follows it.
func (c *trMultipartClient) next() trMsg {
	data, hdr := c.nextPart()
	return trMsg{trJSID(c.s.t, hdr), data}
}

// nextPart reads one part up to the delimiter that follows it and returns
// its body and headers.
func (c *trMultipartClient) nextPart() (string, http.Header) {
	end := "\r\n--" + c.boundary
	var b strings.Builder
	for !strings.HasSuffix(b.String(), end) {
		ch, err := c.s.br.ReadByte()
		require.NoError(c.s.t, err)
		b.WriteByte(ch)
	}
	part := strings.TrimSuffix(b.String(), end)
	head, data, ok := strings.Cut(part, "\r\n\r\n")
	require.True(c.s.t, ok, "part %q", part)
	hdr := http.Header{}
	for _, l := range strings.Split(strings.TrimPrefix(head, "\r\n"), "\r\n") {
		k, v, _ := strings.Cut(l, ": ")
		hdr.Add(k, v)
	}
	return data, hdr
}

func (c *trMultipartClient) close() { c.s.close() }

// trJSID builds an id from Last-Modified and Etag as NchanSubscriber.js
// does: "<Unix seconds of Last-Modified>:<Etag>".
func trJSID(t *testing.T, h http.Header) string {
	lm, err := http.ParseTime(h.Get("Last-Modified"))
	require.NoError(t, err)
	return fmt.Sprintf("%d:%s", lm.Unix(), h.Get("Etag"))
}

// trLongPollClient walks the channels by echoing Last-Modified/Etag.
type trLongPollClient struct {
	e        *trEnv
	channels []string
	hdr      http.Header
}

func (c *trLongPollClient) next() trMsg {
	s := c.e.get(c.channels, nil, c.hdr)
	require.Equal(c.e.t, http.StatusOK, s.resp.StatusCode)
	body := new(strings.Builder)
	_, err := s.br.WriteTo(body)
	require.NoError(c.e.t, err)
	s.close()
	c.hdr = http.Header{"If-Modified-Since": {s.resp.Header.Get("Last-Modified")},
		"If-None-Match": {s.resp.Header.Get("Etag")}}
	return trMsg{trJSID(c.e.t, s.resp.Header), body.String()}
}

func (c *trLongPollClient) close() {}

// trOpen opens a multi-channel client of a transport, resuming after id
// through a different carrier for each transport.
func (e *trEnv) open(transport string, channels []string, id string) trMultiClient {
	e.t.Helper()
	switch transport {
	case "websocket":
		q := url.Values{}
		if id != "" {
			q.Set("last_event_id", id)
		}
		return &trWSClient{e.t, e.dial(channels, q, nil, wsMetaProtocol)}
	case "eventsource":
		h := http.Header{"Accept": {"text/event-stream"}}
		if id != "" {
			h.Set("Last-Event-Id", id)
		}
		s := e.get(channels, nil, h)
		s.expect(": hi\n\n")
		return &trSSEClient{s}
	case "multipart":
		h := http.Header{"Accept": {"multipart/mixed"}}
		if id != "" {
			h.Set("Etag", id) // NchanSubscriber.js's carrier after a reload
		}
		s := e.get(channels, nil, h)
		b := trBoundary(e.t, s.resp.Header.Get("Content-Type"))
		s.expect("--" + b)
		return &trMultipartClient{s, b}
	case "longpoll":
		h := http.Header{}
		if id != "" {
			// The split form: seconds in If-Modified-Since, entries in
			// If-None-Match.
			sec, entries, _ := strings.Cut(id, ":")
			var t int64
			fmt.Sscan(sec, &t)
			h.Set("If-Modified-Since", time.Unix(t, 0).UTC().Format(http.TimeFormat))
			h.Set("If-None-Match", entries)
		}
		return &trLongPollClient{e, channels, h}
	}
	panic(transport)
}

// trSplit groups payloads by their channel prefix ("a1" -> a), keeping order.
func trSplit(ms []trMsg) map[string][]string {
	out := map[string][]string{}
	for _, m := range ms {
		out[m.data[:1]] = append(out[m.data[:1]], m.data)
	}
	return out
}

// Several channels on one connection: every transport delivers both
// channels in per-channel order with one compound id, resumes after a
// reconnect with messages published meanwhile to both channels, without
// loss or repeat, and ends when one channel is deleted.
func TestTrMultiChannelResume(t *testing.T) {
	for _, transport := range []string{"websocket", "eventsource", "multipart", "longpoll"} {
		t.Run(transport, func(t *testing.T) {
			e := trStart(t, Options{})
			chans := []string{"a", "b"}
			c := e.open(transport, chans, "")
			if transport != "longpoll" {
				e.waitSubscribers(1)
			}
			e.publish("a", "a1", "")
			e.publish("b", "b1", "")
			e.publish("a", "a2", "")
			var got []trMsg
			for range 3 {
				got = append(got, c.next())
			}
			assert.Equal(t, map[string][]string{"a": {"a1", "a2"}, "b": {"b1"}}, trSplit(got))
			for _, m := range got {
				assert.Regexp(t, `^\d+:(\[?(\d+|-)\]?,?){2}$`, m.id, "compound id")
			}
			last := got[len(got)-1].id
			c.close()
			if transport != "longpoll" {
				e.waitSubscribers(0)
			}

			// Published while disconnected, to both channels.
			e.publish("b", "b2", "")
			e.publish("a", "a3", "")
			e.publish("b", "b3", "")
			c = e.open(transport, chans, last)
			got = nil
			for range 3 {
				got = append(got, c.next())
			}
			assert.Equal(t, map[string][]string{"a": {"a3"}, "b": {"b2", "b3"}}, trSplit(got))
			last = got[len(got)-1].id

			// Live after the resume.
			e.publish("a", "a4", "")
			m := c.next()
			assert.Equal(t, "a4", m.data)
			c.close()

			// Resuming from the newest id waits: nothing is repeated.
			c = e.open(transport, chans, m.id)
			e.publish("b", "b4", "")
			assert.Equal(t, "b4", c.next().data)
			c.close()
			_ = last
		})
	}
}

// The id of a multi-channel message names the source channel in brackets,
// and is the same for long-poll (built from Last-Modified/Etag) and
// ws+meta (I5).
func TestTrMultiChannelIDsAgree(t *testing.T) {
	e := trStart(t, Options{})
	e.publish("a", "a1", "")
	e.publish("b", "b1", "")
	ws := e.open("websocket", []string{"a", "b"}, "")
	lp := e.open("longpoll", []string{"a", "b"}, "")
	for range 2 {
		w, l := ws.next(), lp.next()
		assert.Equal(t, w, l)
	}
	ws.close()
}

// Deleting one of the channels ends a multi-channel subscription.
func TestTrMultiChannelDeleteEnds(t *testing.T) {
	e := trStart(t, Options{})
	ws := e.dial([]string{"a", "b"}, nil, nil, wsMetaProtocol)
	sse := e.get([]string{"a", "b"}, nil, trSSEHeader)
	sse.expect(": hi\n\n")
	e.waitSubscribers(2)
	_, err := e.hub.DeleteChannel(context.Background(), "b")
	require.NoError(t, err)
	ce := trReadClose(t, ws)
	assert.Equal(t, websocket.StatusGoingAway, ce.Code)
	assert.Equal(t, "410 Gone", ce.Reason)
	sse.expectEOF(":410: 410 Gone\n\n")
}

// 255 channels in one subscription work; 256 are refused.
func TestTrMultiChannelLimit(t *testing.T) {
	e := trStart(t, Options{})
	chans := make([]string, MaxChannelsPerSubscription+1)
	for i := range chans {
		chans[i] = fmt.Sprint("c", i)
	}
	_, err := e.tryDial(chans, nil, nil)
	assert.Error(t, err)

	c := &trWSClient{t, e.dial(chans[:MaxChannelsPerSubscription], nil, nil, wsMetaProtocol)}
	e.waitSubscribers(1)
	e.publish("c254", "last", "")
	e.publish("c0", "first", "")
	got := []trMsg{c.next(), c.next()}
	sort.Slice(got, func(i, j int) bool { return got[i].data < got[j].data })
	assert.Equal(t, "first", got[0].data)
	assert.Equal(t, "last", got[1].data)
	entries := strings.Split(strings.SplitN(got[1].id, ":", 2)[1], ",")
	assert.Len(t, entries, MaxChannelsPerSubscription)
}
