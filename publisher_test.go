package push

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// P1: 202 without subscribers, 201 with a held one, who has the message.
func TestSpecPublishAcceptedVsCreated(t *testing.T) {
	e := newSpecEnv(t, Options{})

	r := e.specPublish("p1", []byte("first"), "text/plain")
	require.Equal(t, http.StatusAccepted, r.Status, "no subscriber: 202")
	require.Contains(t, string(r.Body), "active subscribers: 0", "P2: info in the answer")

	// A subscriber at the newest position is held.
	first := e.specPoll(e.specURL("/sub", "p1"), nil)
	require.Equal(t, "first", string(first.Body))
	e.specWaitHeld("p1", 0) // the answered request has let go
	held := e.specPollAsync(e.specURL("/sub", "p1"), specNextHeaders(first))
	e.specWaitHeld("p1", 1)
	specNotYet(t, held)

	r = e.specPublish("p1", []byte("second"), "text/plain")
	require.Equal(t, http.StatusCreated, r.Status, "held subscriber: 201")
	require.Contains(t, string(r.Body), "active subscribers: 1")
	got := specAwait(t, held)
	require.Equal(t, http.StatusOK, got.Status)
	require.Equal(t, "second", string(got.Body))

	// The subscriber has gone: 202 again.
	e.specWaitHeld("p1", 0)
	require.Equal(t, http.StatusAccepted, e.specPublish("p1", []byte("third"), "").Status)
}

// P1: bodies and Content-Type travel byte for byte; none means none.
func TestSpecPublishBodiesByteExact(t *testing.T) {
	binary := make([]byte, 256*4)
	for i := range binary {
		binary[i] = byte(i * 7)
	}
	big := []byte(strings.Repeat("0123456789abcdef", 64<<10/16))
	cases := []struct {
		name string
		body []byte
		ct   string
	}{
		{"empty", []byte{}, ""},
		{"empty-typed", []byte{}, "text/plain"},
		{"binary", binary, "application/octet-stream"},
		{"binary-untyped", binary, ""},
		{"nul-and-crlf", []byte("a\x00b\r\n\r\nc\n"), "text/plain; charset=utf-8"},
		{"utf8", []byte("héllo wörld ☃\n"), "text/plain; charset=UTF-8"},
		{"odd-type", []byte(`{"a":1}`), `Application/Weird+JSON;  Foo="Bar Baz"`},
		{"64KiB", big, "text/csv"},
	}
	e := newSpecEnv(t, Options{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := e.specFor(t)
			ch := "bytes-" + c.name
			// Once held (released by the publish), once fetched from the buffer.
			held := e.specPollAsync(e.specURL("/sub", ch), nil)
			e.specWaitHeld(ch, 1)
			r := e.specPublish(ch, c.body, c.ct)
			require.Equal(t, http.StatusCreated, r.Status)
			live := specAwait(t, held)
			stored := e.specPoll(e.specURL("/sub", ch), nil)
			for _, got := range []specResp{live, stored} {
				require.Equal(t, http.StatusOK, got.Status)
				require.Equal(t, c.body, got.Body, "body byte for byte")
				require.Equal(t, strconv.Itoa(len(c.body)), got.Header.Get("Content-Length"))
				if c.ct == "" {
					require.NotContains(t, got.Header, "Content-Type", "no Content-Type when the publisher sent none")
				} else {
					require.Equal(t, []string{c.ct}, got.Header["Content-Type"], "Content-Type byte for byte")
				}
			}
		})
	}
}

// P1: X-EventSource-Event sets the event name.
func TestSpecPublishEventName(t *testing.T) {
	e := newSpecEnv(t, Options{})
	r := e.specMust(e.specDo(http.MethodPost, e.specURL("/pub", "ev"), []byte("x"),
		http.Header{"X-Eventsource-Event": {"price-update"}}))
	require.Equal(t, http.StatusAccepted, r.Status)

	sub, err := e.hub.Subscribe(t.Context(), []string{"ev"}, "")
	require.NoError(t, err)
	defer sub.Close()
	m, err := sub.Next(t.Context())
	require.NoError(t, err)
	require.Equal(t, "price-update", m.EventName)
	require.Equal(t, "x", string(m.Data))
}

// P2, P3, P6: channel info in the four formats, each with its Content-Type.
func TestSpecChannelInfoFormats(t *testing.T) {
	e := newSpecEnv(t, Options{})
	e.specPublishOK("info", "a")
	e.specPublishOK("info", "b")
	info, err := e.hub.ChannelInfo(t.Context(), "info")
	require.NoError(t, err)
	last := info.LastMessageID.String()
	require.False(t, info.LastMessageID.IsZero())

	plain := "queued messages: 2\r\nlast requested: -1 sec. ago\r\nactive subscribers: 0\r\nlast message id: " + last
	cases := []struct {
		accept, ct string
		check      func(t *testing.T, body []byte)
	}{
		{"", "text/plain", func(t *testing.T, b []byte) {
			require.Equal(t, strings.Split(plain, "\r\n"), specInfoLines(b))
		}},
		{"text/plain", "text/plain", func(t *testing.T, b []byte) {
			require.Equal(t, strings.Split(plain, "\r\n"), specInfoLines(b))
		}},
		{"*/*", "text/plain", func(t *testing.T, b []byte) {
			require.Equal(t, strings.Split(plain, "\r\n"), specInfoLines(b))
		}},
		{"application/json", "application/json", specCheckJSONInfo(2, -1, 0, last)},
		{"text/json", "text/json", specCheckJSONInfo(2, -1, 0, last)},
		{"text/html;q=0.9, application/json;q=0.8", "application/json", specCheckJSONInfo(2, -1, 0, last)},
		{"application/xml", "application/xml", specCheckXMLInfo(2, -1, 0, last)},
		{"text/xml", "text/xml", specCheckXMLInfo(2, -1, 0, last)},
		{"application/json;q=0.5, text/xml", "text/xml", specCheckXMLInfo(2, -1, 0, last)},
		{"application/yaml", "application/yaml", specCheckYAMLInfo(2, -1, 0, last)},
		{"text/yaml", "text/yaml", specCheckYAMLInfo(2, -1, 0, last)},
	}
	for _, c := range cases {
		t.Run(c.accept, func(t *testing.T) {
			e := e.specFor(t)
			r := e.specMust(e.specDo(http.MethodGet, e.specURL("/pub", "info"), nil, http.Header{"Accept": {c.accept}}))
			require.Equal(t, http.StatusOK, r.Status)
			require.Equal(t, c.ct, r.Header.Get("Content-Type"))
			c.check(t, r.Body)
		})
	}

	// After a subscriber asked, "requested" counts seconds (>= 0), and a
	// subscriber to several channels counts once in each.
	require.Equal(t, "a", string(e.specPoll(e.specURL("/sub", "info"), nil).Body))
	e.specWaitHeld("info", 0) // the answered request has let go
	held := e.specPollAsync(e.srv.URL+"/sub?id=info&id=other", http.Header{"Last-Event-ID": {last + ",-"}})
	e.specWaitHeld("info", 1)
	e.specWaitHeld("other", 1)
	for _, ch := range []string{"info", "other"} {
		r := e.specMust(e.specDo(http.MethodGet, e.specURL("/pub", ch), nil, http.Header{"Accept": {"application/json"}}))
		require.Equal(t, http.StatusOK, r.Status)
		var v map[string]any
		require.NoError(t, json.Unmarshal(r.Body, &v), "%s", r.Body)
		require.EqualValues(t, 1, v["subscribers"], ch)
		require.GreaterOrEqual(t, v["requested"], 0.0, ch)
	}
	_, err = e.hub.DeleteChannel(t.Context(), "other")
	require.NoError(t, err)
	require.Equal(t, http.StatusGone, specAwait(t, held).Status)
}

func specCheckJSONInfo(msgs, requested, subs int, last string) func(*testing.T, []byte) {
	return func(t *testing.T, b []byte) {
		var v map[string]any
		require.NoError(t, json.Unmarshal(b, &v), "%s", b)
		require.Equal(t, map[string]any{
			"messages": float64(msgs), "requested": float64(requested),
			"subscribers": float64(subs), "last_message_id": last,
		}, v)
	}
}

func specCheckXMLInfo(msgs, requested, subs int, last string) func(*testing.T, []byte) {
	return func(t *testing.T, b []byte) {
		s := string(b)
		require.True(t, strings.HasPrefix(s, "<?xml "), "XML prolog: %q", s)
		for _, want := range []string{
			"<channel>", "</channel>",
			"<messages>" + strconv.Itoa(msgs) + "</messages>",
			"<requested>" + strconv.Itoa(requested) + "</requested>",
			"<subscribers>" + strconv.Itoa(subs) + "</subscribers>",
			"<last_message_id>" + last + "</last_message_id>",
		} {
			require.Contains(t, s, want)
		}
	}
}

func specCheckYAMLInfo(msgs, requested, subs int, last string) func(*testing.T, []byte) {
	return func(t *testing.T, b []byte) {
		lines := specInfoLines(b)
		require.Equal(t, "---", lines[0], "%q", b)
		require.ElementsMatch(t, []string{
			"messages: " + strconv.Itoa(msgs), "requested: " + strconv.Itoa(requested),
			"subscribers: " + strconv.Itoa(subs), `last_message_id: "` + last + `"`,
		}, lines[1:])
	}
}

// P3: GET of a channel that does not exist: 404 with an empty body.
func TestSpecPublisherGetMissing(t *testing.T) {
	e := newSpecEnv(t, Options{})
	for _, accept := range []string{"", "application/json"} {
		r := e.specMust(e.specDo(http.MethodGet, e.specURL("/pub", "nope"), nil, http.Header{"Accept": {accept}}))
		require.Equal(t, http.StatusNotFound, r.Status)
		require.Empty(t, r.Body)
	}
	// DELETE of an unknown channel: 404 too.
	r := e.specMust(e.specDo(http.MethodDelete, e.specURL("/pub", "nope"), nil, nil))
	require.Equal(t, http.StatusNotFound, r.Status)
}

// P4: PUT creates and publishes nothing; with PutPublishes it is a POST.
func TestSpecPublisherPut(t *testing.T) {
	t.Run("create", func(t *testing.T) {
		e := newSpecEnv(t, Options{})
		r := e.specMust(e.specDo(http.MethodPut, e.specURL("/pub", "made"), []byte("ignored"), nil))
		require.Equal(t, http.StatusOK, r.Status)
		require.Equal(t, "queued messages: 0", specInfoLines(r.Body)[0])
		r = e.specMust(e.specDo(http.MethodGet, e.specURL("/pub", "made"), nil, nil))
		require.Equal(t, http.StatusOK, r.Status, "PUT created the channel")
		require.Equal(t, "queued messages: 0", specInfoLines(r.Body)[0], "PUT published nothing")

		// A subscriber finds nothing and is held until a real publish.
		held := e.specPollAsync(e.specURL("/sub", "made"), nil)
		e.specWaitHeld("made", 1)
		specNotYet(t, held)
		require.Equal(t, http.StatusCreated, e.specPublish("made", []byte("real"), "").Status)
		require.Equal(t, "real", string(specAwait(t, held).Body))
	})
	t.Run("publish", func(t *testing.T) {
		e := newSpecEnv(t, Options{PutPublishes: true})
		r := e.specMust(e.specDo(http.MethodPut, e.specURL("/pub", "put"), []byte("one"),
			http.Header{"Content-Type": {"text/x-one"}}))
		require.Equal(t, http.StatusAccepted, r.Status)
		require.Equal(t, "queued messages: 1", specInfoLines(r.Body)[0])

		first := e.specPoll(e.specURL("/sub", "put"), nil)
		require.Equal(t, "one", string(first.Body))
		require.Equal(t, "text/x-one", first.Header.Get("Content-Type"))
		e.specWaitHeld("put", 0) // the answered request has let go
		held := e.specPollAsync(e.specURL("/sub", "put"), specNextHeaders(first))
		e.specWaitHeld("put", 1)
		r = e.specMust(e.specDo(http.MethodPut, e.specURL("/pub", "put"), []byte("two"), nil))
		require.Equal(t, http.StatusCreated, r.Status)
		require.Equal(t, "two", string(specAwait(t, held).Body))
	})
}

// P5: DELETE answers the info from just before (with the subscribers being
// disconnected); held long-polls get 410; the channel is gone.
func TestSpecPublisherDelete(t *testing.T) {
	e := newSpecEnv(t, Options{})
	e.specPublishOK("del", "m1")
	first := e.specPoll(e.specURL("/sub", "del"), nil)
	e.specWaitHeld("del", 0) // the answered request has let go
	held1 := e.specPollAsync(e.specURL("/sub", "del"), specNextHeaders(first))
	held2 := e.specPollAsync(e.specURL("/sub", "del"), specNextHeaders(first))
	e.specWaitHeld("del", 2)

	r := e.specMust(e.specDo(http.MethodDelete, e.specURL("/pub", "del"), nil, http.Header{"Accept": {"application/json"}}))
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, "application/json", r.Header.Get("Content-Type"))
	var v map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &v))
	require.EqualValues(t, 2, v["subscribers"], "subscribers being disconnected")
	require.EqualValues(t, 1, v["messages"])

	for _, h := range []<-chan specResp{held1, held2} {
		got := specAwait(t, h)
		require.Equal(t, http.StatusGone, got.Status)
		require.Empty(t, got.Body)
	}
	r = e.specMust(e.specDo(http.MethodGet, e.specURL("/pub", "del"), nil, nil))
	require.Equal(t, http.StatusNotFound, r.Status, "GET after DELETE")
	r = e.specMust(e.specDo(http.MethodDelete, e.specURL("/pub", "del"), nil, nil))
	require.Equal(t, http.StatusNotFound, r.Status, "second DELETE")

	// The buffer is gone: a new subscriber does not get m1.
	held := e.specPollAsync(e.specURL("/sub", "del"), nil)
	e.specWaitHeld("del", 1)
	specNotYet(t, held)
	e.specPublishOK("del", "m2")
	require.Equal(t, "m2", string(specAwait(t, held).Body))
}

// P7: missing, too long, non-UTF-8 and control-character channel ids, on
// both handlers. Ids are never truncated.
func TestSpecChannelIDs(t *testing.T) {
	e := newSpecEnv(t, Options{MaxChannelIDLength: 16})
	for _, path := range []string{"/pub", "/sub"} {
		for _, target := range []string{e.srv.URL + path, e.srv.URL + path + "?id=", e.srv.URL + path + "?other=x"} {
			r := e.specMust(e.specDo(http.MethodGet, target, nil, nil))
			require.Equal(t, http.StatusNotFound, r.Status, target)
			require.Equal(t, "text/plain", strings.Split(r.Header.Get("Content-Type"), ";")[0], target)
			require.Equal(t, "No channel id provided.", string(r.Body), target)
		}
		r := e.specMust(e.specDo(http.MethodPost, e.srv.URL+path, []byte("x"), nil))
		if path == "/pub" {
			require.Equal(t, http.StatusNotFound, r.Status)
			require.Equal(t, "No channel id provided.", string(r.Body))
		} else {
			require.Equal(t, http.StatusMethodNotAllowed, r.Status)
		}
		bad := []struct{ raw, why string }{
			{strings.Repeat("x", 17), "too long"},
			{"ab%FFcd", "UTF-8"},
			{"ab%C3", "UTF-8"},
			{"a%01b", "control"},
			{"a%0Ab", "control"},
			{"a%7Fb", "control"},
			{"a%C2%85b", "control"}, // U+0085, a C1 control
		}
		for _, b := range bad {
			for _, method := range []string{http.MethodGet, http.MethodPost} {
				if path == "/sub" && method == http.MethodPost {
					continue
				}
				r := e.specMust(e.specDo(method, e.srv.URL+path+"?id="+b.raw, []byte("x"), nil))
				require.Equal(t, http.StatusBadRequest, r.Status, "%s %s?id=%s", method, path, b.raw)
				require.Contains(t, string(r.Body), b.why, "%s %s?id=%s: says why", method, path, b.raw)
			}
		}
	}
	// Not truncated: the 16-byte prefix of the refused id was not created.
	_, err := e.hub.ChannelInfo(t.Context(), strings.Repeat("x", 16))
	require.ErrorIs(t, err, ErrChannelNotFound)
	// Exactly at the limit is fine; non-ASCII UTF-8 is fine.
	require.Equal(t, http.StatusAccepted, e.specPublish(strings.Repeat("x", 16), []byte("ok"), "").Status)
	require.Equal(t, http.StatusAccepted, e.specPublish("ünï/cödé:1", []byte("ok"), "").Status)
	_, err = e.hub.ChannelInfo(t.Context(), "ünï/cödé:1")
	require.NoError(t, err)

	// The default limit is 1024 bytes.
	d := newSpecEnv(t, Options{})
	require.Equal(t, http.StatusAccepted, d.specPublish(strings.Repeat("y", 1024), []byte("ok"), "").Status)
	r := d.specPublish(strings.Repeat("y", 1025), []byte("ok"), "")
	require.Equal(t, http.StatusBadRequest, r.Status)
	require.Contains(t, string(r.Body), "too long")
}

// P8: OPTIONS, 405 with Allow, 413 beyond MaxMessageSize.
func TestSpecPublisherMethods(t *testing.T) {
	e := newSpecEnv(t, Options{})
	const allow = "GET, POST, PUT, DELETE, OPTIONS"
	r := e.specMust(e.specDo(http.MethodOptions, e.specURL("/pub", "m"), nil, nil))
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, allow, r.Header.Get("Allow"))
	for _, m := range []string{http.MethodPatch, "PROPFIND", "BREW"} {
		r := e.specMust(e.specDo(m, e.specURL("/pub", "m"), nil, nil))
		require.Equal(t, http.StatusMethodNotAllowed, r.Status, m)
		require.Equal(t, allow, r.Header.Get("Allow"), m)
	}
	_, err := e.hub.ChannelInfo(t.Context(), "m")
	require.ErrorIs(t, err, ErrChannelNotFound, "refused methods create nothing")
}

func TestSpecPublisherTooLarge(t *testing.T) {
	t.Run("default 1MiB", func(t *testing.T) {
		e := newSpecEnv(t, Options{})
		r := e.specPublish("big", make([]byte, 1<<20+1), "")
		require.Equal(t, http.StatusRequestEntityTooLarge, r.Status)
		_, err := e.hub.ChannelInfo(t.Context(), "big")
		require.ErrorIs(t, err, ErrChannelNotFound, "not published")
		require.Equal(t, http.StatusAccepted, e.specPublish("big", make([]byte, 1<<20), "").Status, "exactly the limit")
	})
	t.Run("configured, chunked", func(t *testing.T) {
		e := newSpecEnv(t, Options{MaxMessageSize: 100})
		e.specPublishOK("small", "fits")
		// Unknown length (chunked): the limit still holds.
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.specURL("/pub", "small"),
			strings.NewReader(strings.Repeat("z", 101)))
		require.NoError(t, err)
		req.ContentLength = -1
		resp, err := e.client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
		r := e.specMust(e.specDo(http.MethodPost, e.specURL("/pub", "small"), make([]byte, 101), nil))
		require.Equal(t, http.StatusRequestEntityTooLarge, r.Status)
		info, err := e.hub.ChannelInfo(t.Context(), "small")
		require.NoError(t, err)
		require.Equal(t, 1, info.Messages, "the large bodies were not published")
	})
}

// Authorization hooks: an error is a 403 with its text; an *HTTPError its status.
func TestSpecAuthorizeHooks(t *testing.T) {
	var mu sync.Mutex
	var pubCalls, subCalls []string
	e := newSpecEnv(t, Options{
		AuthorizePublish: func(r *http.Request, channel string) error {
			mu.Lock()
			defer mu.Unlock()
			pubCalls = append(pubCalls, r.Method+" "+channel)
			switch channel {
			case "forbidden":
				return errors.New("publishing to forbidden is not allowed")
			case "login":
				return &HTTPError{StatusCode: http.StatusUnauthorized, Message: "log in first"}
			}
			return nil
		},
		AuthorizeSubscribe: func(r *http.Request, channels []string) error {
			mu.Lock()
			defer mu.Unlock()
			subCalls = append(subCalls, strings.Join(channels, "+"))
			switch channels[0] {
			case "forbidden":
				return errors.New("subscribing to forbidden is not allowed")
			case "login":
				return &HTTPError{StatusCode: http.StatusUnauthorized, Message: "log in first"}
			}
			return nil
		},
	})
	for _, method := range []string{http.MethodPost, http.MethodGet, http.MethodPut, http.MethodDelete} {
		r := e.specMust(e.specDo(method, e.specURL("/pub", "forbidden"), []byte("x"), nil))
		require.Equal(t, http.StatusForbidden, r.Status, method)
		require.Equal(t, "publishing to forbidden is not allowed", string(r.Body), method)
		r = e.specMust(e.specDo(method, e.specURL("/pub", "login"), []byte("x"), nil))
		require.Equal(t, http.StatusUnauthorized, r.Status, method)
		require.Equal(t, "log in first", string(r.Body), method)
	}
	_, err := e.hub.ChannelInfo(context.Background(), "forbidden")
	require.ErrorIs(t, err, ErrChannelNotFound)

	r := e.specPoll(e.specURL("/sub", "forbidden"), nil)
	require.Equal(t, http.StatusForbidden, r.Status)
	require.Equal(t, "subscribing to forbidden is not allowed", string(r.Body))
	r = e.specPoll(e.srv.URL+"/sub?id=login&id=x", nil)
	require.Equal(t, http.StatusUnauthorized, r.Status)
	require.Equal(t, "log in first", string(r.Body))

	e.specPublishOK("open", "hello")
	r = e.specPoll(e.specURL("/sub", "open"), nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, "hello", string(r.Body))
	mu.Lock()
	defer mu.Unlock()
	require.Contains(t, pubCalls, "POST open")
	require.Equal(t, []string{"forbidden", "login+x", "open"}, subCalls)
}

// P1: when the 201 is written, every subscriber has been handed the
// message: it is available at once, without waiting.
func TestSpecPublishHandedBeforeAnswer(t *testing.T) {
	t.Run("buffered", func(t *testing.T) { specHandedBeforeAnswer(t, Options{}) })
	t.Run("no buffer", func(t *testing.T) { specHandedBeforeAnswer(t, Options{MessageBufferLength: -1}) })
}

func specHandedBeforeAnswer(t *testing.T, opts Options) {
	e := newSpecEnv(t, opts)
	e.specPublishOK("handed", "before")
	from := "" // with no buffer: nothing to replay
	if opts.MessageBufferLength >= 0 {
		info, err := e.hub.ChannelInfo(t.Context(), "handed")
		require.NoError(t, err)
		from = info.LastMessageID.String()
	}
	var subs []*Subscription
	for range 3 {
		sub, err := e.hub.Subscribe(t.Context(), []string{"handed"}, from)
		require.NoError(t, err)
		defer sub.Close()
		subs = append(subs, sub)
	}
	for i := range 3 {
		body := "m" + strconv.Itoa(i)
		r := e.specPublish("handed", []byte(body), "")
		require.Equal(t, http.StatusCreated, r.Status)
		require.Contains(t, string(r.Body), "active subscribers: 3")
		for _, sub := range subs {
			m, err := sub.TryNext(t.Context())
			require.NoError(t, err)
			require.NotNil(t, m, "message available when the answer was written")
			require.Equal(t, body, string(m.Data))
		}
	}
}

// P6: "requested" is the seconds since a subscriber last asked.
func TestSpecChannelInfoRequested(t *testing.T) {
	clock := newSpecClock(time.Now().Add(-7 * time.Second))
	e := newSpecEnv(t, Options{Store: specNewMemoryStore(t, clock.Now)})
	e.specPublishOK("rq", "x")
	require.Equal(t, http.StatusOK, e.specPoll(e.specURL("/sub", "rq"), nil).Status)
	e.specWaitHeld("rq", 0)
	r := e.specMust(e.specDo(http.MethodGet, e.specURL("/pub", "rq"), nil, http.Header{"Accept": {"text/json"}}))
	var v map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &v), "%s", r.Body)
	require.InDelta(t, 7, v["requested"], 2)
	require.EqualValues(t, 0, v["subscribers"], "the subscriber has gone")
}

// P7 with Options.ChannelIDs: the app's extractor decides; its errors are
// 400 with their text (or an *HTTPError's status); no ids is the 404.
func TestSpecCustomChannelIDs(t *testing.T) {
	ids := func(r *http.Request) ([]string, error) {
		switch v := r.Header.Get("X-Channel"); v {
		case "":
			return nil, nil
		case "bad":
			return nil, errors.New("X-Channel names no channel of yours")
		case "login":
			return nil, &HTTPError{StatusCode: http.StatusUnauthorized, Message: "log in first"}
		default:
			return strings.Split(v, " "), nil
		}
	}
	e := newSpecEnv(t, Options{ChannelIDs: ids, PublisherChannelIDs: ids})
	do := func(method, path, channel string, body []byte) specResp {
		return e.specMust(e.specDo(method, e.srv.URL+path+"?id=ignored", body, http.Header{"X-Channel": {channel}}))
	}
	r := do(http.MethodPost, "/pub", "custom", []byte("hi"))
	require.Equal(t, http.StatusAccepted, r.Status)
	_, err := e.hub.ChannelInfo(t.Context(), "ignored")
	require.ErrorIs(t, err, ErrChannelNotFound, "?id= is not read")
	r = do(http.MethodGet, "/sub", "custom", nil)
	require.Equal(t, "hi", string(r.Body))

	for _, path := range []string{"/pub", "/sub"} {
		r = do(http.MethodGet, path, "bad", nil)
		require.Equal(t, http.StatusBadRequest, r.Status, path)
		require.Equal(t, "X-Channel names no channel of yours", string(r.Body), path)
		r = do(http.MethodGet, path, "login", nil)
		require.Equal(t, http.StatusUnauthorized, r.Status, path)
		require.Equal(t, "log in first", string(r.Body), path)
		r = e.specMust(e.specDo(http.MethodGet, e.srv.URL+path+"?id=x", nil, nil))
		require.Equal(t, http.StatusNotFound, r.Status, path)
		require.Equal(t, "No channel id provided.", string(r.Body), path)
		r = do(http.MethodGet, path, "a\xffb", nil)
		require.Equal(t, http.StatusBadRequest, r.Status, "%s: the app's ids are validated too", path)
	}
	r = do(http.MethodPost, "/pub", "two channels", []byte("x"))
	require.Equal(t, http.StatusAccepted, r.Status, "a publish to two channels (P9)")
	r = do(http.MethodGet, "/pub", "two channels", nil)
	require.Equal(t, http.StatusBadRequest, r.Status, "GET names one channel")
}

// Options.ChannelIDs steers subscribers only: an app that takes its
// subscribers' channel from a route keeps its publisher at /pub?id=, and
// PublisherChannelIDs steers the publisher alone.
func TestChannelIDsPerEndpoint(t *testing.T) {
	hub := New(Options{ChannelIDs: func(r *http.Request) ([]string, error) {
		return []string{r.PathValue("room")}, nil
	}})
	t.Cleanup(func() { hub.Shutdown(context.Background()) })
	mux := http.NewServeMux()
	mux.Handle("/pub", hub.PublishHandler())
	mux.Handle("/events/{room}", hub.SubscribeHandler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	res, err := http.Post(srv.URL+"/pub?id=lobby", "text/plain", strings.NewReader("hello"))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusAccepted, res.StatusCode, "the publisher reads ?id= whatever ChannelIDs does")
	res, err = http.Get(srv.URL + "/events/lobby")
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, "hello", string(body))

	// The other way round: the publisher from a header, subscribers by ?id=.
	hub2 := New(Options{PublisherChannelIDs: func(r *http.Request) ([]string, error) {
		return []string{r.Header.Get("X-Room")}, nil
	}})
	t.Cleanup(func() { hub2.Shutdown(context.Background()) })
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/pub" {
			hub2.PublishHandler().ServeHTTP(w, r)
			return
		}
		hub2.SubscribeHandler().ServeHTTP(w, r)
	}))
	t.Cleanup(srv2.Close)
	req, _ := http.NewRequest(http.MethodPost, srv2.URL+"/pub?id=ignored", strings.NewReader("hi"))
	req.Header.Set("X-Room", "r1")
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusAccepted, res.StatusCode)
	res, err = http.Get(srv2.URL + "/sub?id=r1")
	require.NoError(t, err)
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, "hi", string(body))
}
