package push

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var trMultipartHeader = http.Header{"Accept": {"multipart/mixed"}}

// trLastModified is the HTTP date of an id's seconds.
func trLastModified(id MessageID) string {
	return time.Unix(id.Time, 0).UTC().Format(http.TimeFormat)
}

// trBoundary returns the boundary of a multipart Content-Type.
func trBoundary(t *testing.T, ct string) string {
	t.Helper()
	mt, params, err := mime.ParseMediaType(ct)
	require.NoError(t, err)
	require.Equal(t, "multipart/mixed", mt)
	require.NotEmpty(t, params["boundary"])
	return params["boundary"]
}

func TestTrMultipartStream(t *testing.T) {
	e := trStart(t, Options{})
	m1 := e.publish("a", "first", "text/plain")
	s := e.get([]string{"a"}, nil, trMultipartHeader)
	require.Equal(t, http.StatusOK, s.resp.StatusCode)
	b := trBoundary(t, s.resp.Header.Get("Content-Type"))
	// The delimiter at once, then each part followed at once by the next
	// delimiter (S8).
	s.expect("--" + b)
	s.expect("\r\nLast-Modified: " + trLastModified(m1.ID) + "\r\nEtag: " + fmt.Sprint(m1.ID.Tag) +
		"\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--" + b)
	m2 := e.publish("a", "two\r\nlines", "")
	s.expect("\r\nLast-Modified: " + trLastModified(m2.ID) + "\r\nEtag: " + fmt.Sprint(m2.ID.Tag) +
		"\r\n\r\ntwo\r\nlines\r\n--" + b)
	m3 := e.publish("a", "", "")
	s.expect("\r\nLast-Modified: " + trLastModified(m3.ID) + "\r\nEtag: " + fmt.Sprint(m3.ID.Tag) + "\r\n\r\n\r\n--" + b)

	// Delete ends the body with the closing delimiter; the whole body is
	// valid multipart.
	_, err := e.hub.DeleteChannel(context.Background(), "a")
	require.NoError(t, err)
	s.expectEOF("--\r\n")
}

// The whole multipart stream parses with mime/multipart.
func TestTrMultipartParses(t *testing.T) {
	e := trStart(t, Options{})
	e.publish("a", "x", "text/plain")
	e.publish("a", "y\ny", "application/json")
	s := e.get([]string{"a"}, nil, trMultipartHeader)
	b := trBoundary(t, s.resp.Header.Get("Content-Type"))
	e.waitSubscribers(1)
	_, err := e.hub.DeleteChannel(context.Background(), "a")
	require.NoError(t, err)
	mr := multipart.NewReader(s.br, b)
	var got []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		body, err := io.ReadAll(p)
		require.NoError(t, err)
		got = append(got, p.Header.Get("Content-Type")+"|"+string(body))
		assert.NotEmpty(t, p.Header.Get("Last-Modified"))
		assert.NotEmpty(t, p.Header.Get("Etag"))
	}
	assert.Equal(t, []string{"text/plain|x", "application/json|y\ny"}, got)
}

func TestTrMultipartResumeAndMissed(t *testing.T) {
	e := trStart(t, Options{MessageBufferLength: 2})
	old := e.publish("a", "m0", "")
	e.publish("a", "m1", "") // dropped from the buffer of 2
	m2 := e.publish("a", "m2", "")
	e.publish("a", "m3", "")
	s := e.get([]string{"a"}, nil, http.Header{"Accept": {"multipart/mixed"},
		"If-Modified-Since": {trLastModified(old.ID)}, "If-None-Match": {fmt.Sprint(old.ID.Tag)}})
	assert.Equal(t, "true", s.resp.Header.Get(missedHeader))
	b := trBoundary(t, s.resp.Header.Get("Content-Type"))
	s.expect("--" + b + "\r\nLast-Modified: " + trLastModified(m2.ID) + "\r\nEtag: " + fmt.Sprint(m2.ID.Tag) + "\r\n\r\nm2\r\n--" + b)
}

func TestTrChunkedStream(t *testing.T) {
	e := trStart(t, Options{})
	e.publish("a", "one", "text/plain")
	s := e.get([]string{"a"}, nil, http.Header{"TE": {"chunked"}})
	require.Equal(t, http.StatusOK, s.resp.StatusCode)
	assert.Equal(t, []string{"chunked"}, s.resp.TransferEncoding)
	assert.Empty(t, s.resp.Header.Get("Content-Type"), "payloads of any type: no sniffed type")
	s.expect("one\n")
	e.publish("a", "two", "")
	s.expect("two\n")
	e.publish("a", "", "")
	s.expect("\n")
	_, err := e.hub.DeleteChannel(context.Background(), "a")
	require.NoError(t, err)
	s.expectEOF("")
}

// TE with q=0 refuses chunked: the request is a long-poll.
func TestTrChunkedQZero(t *testing.T) {
	e := trStart(t, Options{})
	e.publish("a", "lp", "text/plain")
	s := e.get([]string{"a"}, nil, http.Header{"TE": {"chunked;q=0"}})
	assert.Equal(t, "2", s.resp.Header.Get("Content-Length"))
	s.expectEOF("lp")
}

func TestTrNegotiationDisabled(t *testing.T) {
	e := trStart(t, Options{Transports: TransportEventSource})
	for name, h := range map[string]http.Header{
		"long-poll": nil,
		"multipart": trMultipartHeader,
		"chunked":   {"TE": {"chunked"}},
	} {
		s := e.get([]string{"a"}, nil, h)
		assert.Equal(t, http.StatusForbidden, s.resp.StatusCode, name)
		s.close()
	}
	s := e.get([]string{"a"}, url.Values{"callback": {"cb"}}, nil)
	assert.Equal(t, http.StatusForbidden, s.resp.StatusCode, "jsonp")
	s.close()
	// Multipart disabled: falls through to long-poll.
	e2 := trStart(t, Options{Transports: TransportLongPoll})
	e2.publish("a", "lp", "")
	s = e2.get([]string{"a"}, nil, trMultipartHeader)
	assert.Equal(t, http.StatusOK, s.resp.StatusCode)
	s.expectEOF("lp")
}

// Long-poll catch-up: several waiting messages come in one multipart/mixed
// answer; one waiting message is a plain answer.
func TestTrLongPollCatchUp(t *testing.T) {
	e := trStart(t, Options{LongPollCatchUp: true})
	m1 := e.publish("a", "one", "text/plain")
	m2 := e.publish("a", "", "")
	m3 := e.publish("a", "three\nlines\n", "application/json")
	s := e.get([]string{"a"}, nil, nil)
	require.Equal(t, http.StatusOK, s.resp.StatusCode)
	ct := s.resp.Header.Get("Content-Type")
	b := trBoundary(t, ct)
	assert.Regexp(t, `^multipart/mixed; boundary=[0-9a-z]+$`, ct, "NchanSubscriber.js reads the boundary unquoted")
	assert.Equal(t, trLastModified(m3.ID), s.resp.Header.Get("Last-Modified"))
	assert.Equal(t, fmt.Sprint(m3.ID.Tag), s.resp.Header.Get("Etag"))
	// Each part has its own id: Last-Modified and Etag, before the
	// Content-Type (the one header line NchanSubscriber.js reads).
	id := func(m *Message) string {
		return "Last-Modified: " + trLastModified(m.ID) + "\nEtag: " + fmt.Sprint(m.ID.Tag) + "\n"
	}
	want := "--" + b + "\n" + id(m1) + "Content-Type: text/plain\n\none\n" +
		"--" + b + "\n" + id(m2) + "\n\n" +
		"--" + b + "\n" + id(m3) + "Content-Type: application/json\n\nthree\nlines\n\n" +
		"--" + b + "--\n"
	s.expectEOF(want)

	// The answer parses with mime/multipart.
	mr := multipart.NewReader(strings.NewReader(want), b)
	var bodies, ids []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		body, _ := io.ReadAll(p)
		bodies = append(bodies, string(body))
		ids = append(ids, p.Header.Get("Etag"))
	}
	assert.Equal(t, []string{"one", "", "three\nlines\n"}, bodies)
	assert.Equal(t, []string{fmt.Sprint(m1.ID.Tag), fmt.Sprint(m2.ID.Tag), fmt.Sprint(m3.ID.Tag)}, ids)

	// Resuming from the answer's headers: one message waiting is sent plainly.
	m4 := e.publish("a", "four", "")
	s = e.get([]string{"a"}, nil, http.Header{"If-Modified-Since": {s.resp.Header.Get("Last-Modified")},
		"If-None-Match": {s.resp.Header.Get("Etag")}})
	assert.Equal(t, fmt.Sprint(m4.ID.Tag), s.resp.Header.Get("Etag"))
	assert.Empty(t, s.resp.Header.Get("Content-Type"))
	s.expectEOF("four")
}

// A multipart subscriber that falls behind the buffer gets the header
// X-Push-Missed: true in the first part after every jump, never a silent
// jump, and the publisher never waited for it.
func TestTrMultipartMissedWhileBehind(t *testing.T) {
	const size = 16 << 10
	// More than the window can hold even after a subscriber took a full
	// window of pending messages just before blocking: a gap is certain.
	const n = 3*windowBytes/size + 40
	e := trStartWith(t, Options{MessageBufferLength: 4, PingInterval: -1},
		func(s *httptest.Server) { s.Listener = trSmallBufListener{s.Listener} })
	start := e.publish("a", "start", "")
	c, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(8 << 10)
	// A bound for a hung test, not a timing: through these tiny buffers the
	// transfer crawls (TCP window updates), more so under -race and load.
	c.SetReadDeadline(time.Now().Add(time.Minute))
	_, err = io.WriteString(c, "GET /sub?id=a&last_event_id="+url.QueryEscape(start.ID.String())+
		" HTTP/1.1\r\nHost: x\r\nAccept: multipart/mixed\r\n\r\n")
	require.NoError(t, err)
	e.waitSubscribers(1)
	payload := strings.Repeat("x", size)
	index := map[string]int{fmt.Sprint(start.ID.Tag): -1}
	for i := range n {
		m := e.publish("a", payload, "")
		index[trLastModified(m.ID)+"|"+fmt.Sprint(m.ID.Tag)] = i
	}

	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err) // the body ends with the connection (c.Close)
	mc := &trMultipartClient{s: &trStream{t: t, resp: resp, br: bufio.NewReader(resp.Body)},
		boundary: trBoundary(t, resp.Header.Get("Content-Type"))}
	mc.s.expect("--" + mc.boundary)
	prev, gaps := -1, 0
	for prev != n-1 {
		part, hdr := mc.nextPart()
		i, ok := index[hdr.Get("Last-Modified")+"|"+hdr.Get("Etag")]
		require.True(t, ok, "unknown part %v", hdr)
		require.Greater(t, i, prev, "in order, no repeats")
		require.Len(t, part, size)
		if i == prev+1 {
			require.Empty(t, hdr.Get(missedHeader), "X-Push-Missed without a gap (at %d)", i)
		} else {
			require.Equal(t, "true", hdr.Get(missedHeader), "a silent jump from %d to %d", prev, i)
			gaps++
		}
		prev = i
	}
	assert.Positive(t, gaps, "the subscriber fell behind the buffer")
}
