package push

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// specFrozenEnv is a specEnv whose MemoryStore clock stands still at a whole
// second (returned) until the test moves it.
func specFrozenEnv(t *testing.T, opts Options) (*specEnv, *specClock, int64) {
	t.Helper()
	start := time.Now().Truncate(time.Second)
	clock := newSpecClock(start)
	opts.Store = specNewMemoryStore(t, clock.Now)
	return newSpecEnv(t, opts), clock, start.Unix()
}

// S2: a held request is answered the moment a message is published, in the
// same form as a message fetched from the buffer.
func TestSpecLongPollHoldAndRelease(t *testing.T) {
	e := newSpecEnv(t, Options{})
	held := e.specPollAsync(e.specURL("/sub", "hold"), nil)
	e.specWaitHeld("hold", 1)
	specNotYet(t, held)
	require.Equal(t, http.StatusCreated, e.specPublish("hold", []byte("hello"), "text/x-greeting").Status)
	live := specAwait(t, held)

	stored := e.specPoll(e.specURL("/sub", "hold"), nil)
	for name, r := range map[string]specResp{"released": live, "from buffer": stored} {
		require.Equal(t, http.StatusOK, r.Status, name)
		require.Equal(t, "hello", string(r.Body), name)
		require.Equal(t, "text/x-greeting", r.Header.Get("Content-Type"), name)
		require.Equal(t, "5", r.Header.Get("Content-Length"), name)
		require.Equal(t, "If-None-Match, If-Modified-Since", r.Header.Get("Vary"), name)
		lm, err := http.ParseTime(r.Header.Get("Last-Modified"))
		require.NoError(t, err, name)
		require.InDelta(t, time.Now().Unix(), lm.Unix(), 5, name)
		require.Equal(t, "0", r.Header.Get("Etag"), "%s: first message of its second", name)
	}
	require.Equal(t, live.Header.Get("Last-Modified"), stored.Header.Get("Last-Modified"))
}

// S2: five messages published within one second are walked in order, with
// no skip or repeat; then the walker is held for the next one.
func TestSpecLongPollWalkSameSecond(t *testing.T) {
	e, clock, sec := specFrozenEnv(t, Options{})
	for i := range 5 {
		e.specPublishOK("walk", fmt.Sprintf("m%d", i))
	}
	var hdr http.Header
	for i := range 5 {
		r := e.specPoll(e.specURL("/sub", "walk"), hdr)
		require.Equal(t, http.StatusOK, r.Status, "step %d", i)
		require.Equal(t, fmt.Sprintf("m%d", i), string(r.Body), "step %d", i)
		require.Equal(t, specHTTPDate(sec), r.Header.Get("Last-Modified"), "step %d: same second", i)
		require.Equal(t, strconv.Itoa(i), r.Header.Get("Etag"), "step %d: tag counts up", i)
		hdr = specNextHeaders(r)
	}
	e.specWaitHeld("walk", 0) // the answered request has let go
	held := e.specPollAsync(e.specURL("/sub", "walk"), hdr)
	e.specWaitHeld("walk", 1)
	specNotYet(t, held)
	e.specPublishOK("walk", "m5")
	r := specAwait(t, held)
	require.Equal(t, "m5", string(r.Body))
	require.Equal(t, "5", r.Header.Get("Etag"))

	// The first message of a new second has tag 0.
	clock.Add(time.Second)
	e.specPublishOK("walk", "m6")
	r = e.specPoll(e.specURL("/sub", "walk"), specNextHeaders(r))
	require.Equal(t, "m6", string(r.Body))
	require.Equal(t, specHTTPDate(sec+1), r.Header.Get("Last-Modified"))
	require.Equal(t, "0", r.Header.Get("Etag"))
}

// S2 on the real clock: a burst walked by echoing headers.
func TestSpecLongPollWalkBurst(t *testing.T) {
	e := newSpecEnv(t, Options{MessageBufferLength: 50})
	for i := range 50 {
		e.specPublishOK("burst", strconv.Itoa(i))
	}
	var hdr http.Header
	prev := ""
	for i := range 50 {
		r := e.specPoll(e.specURL("/sub", "burst"), hdr)
		require.Equal(t, http.StatusOK, r.Status)
		require.Equal(t, strconv.Itoa(i), string(r.Body))
		id := specIDOf(t, r)
		if prev != "" {
			a, _ := ParseMessageID(prev)
			b, _ := ParseMessageID(id)
			require.Equal(t, 1, b.Compare(a), "ids increase: %s then %s", prev, id)
		}
		prev = id
		hdr = specNextHeaders(r)
	}
}

// I4, B1: a position older than the buffer resumes at the oldest buffered
// message; the buffer keeps the newest MessageBufferLength messages.
func TestSpecLongPollOlderThanBuffer(t *testing.T) {
	e, clock, sec := specFrozenEnv(t, Options{MessageBufferLength: 3})
	for i := range 6 {
		e.specPublishOK("old", fmt.Sprintf("m%d", i))
		clock.Add(time.Second)
	}
	r := e.specMust(e.specDo(http.MethodGet, e.specURL("/pub", "old"), nil, nil))
	require.Equal(t, "queued messages: 3", specInfoLines(r.Body)[0])

	starts := map[string]http.Header{
		"no position":     nil,
		"year 2000":       {"If-Modified-Since": {"Sat, 01 Jan 2000 00:00:00 GMT"}, "If-None-Match": {"0"}},
		"trimmed message": {"If-Modified-Since": {specHTTPDate(sec)}, "If-None-Match": {"0"}},
		"trimmed by id":   {"Last-Event-ID": {strconv.FormatInt(sec+1, 10) + ":0"}},
		"zero id":         {"Last-Event-ID": {"0:0"}},
	}
	for name, hdr := range starts {
		t.Run(name, func(t *testing.T) {
			e := e.specFor(t)
			var got []string
			for range 3 {
				r := e.specPoll(e.specURL("/sub", "old"), hdr)
				require.Equal(t, http.StatusOK, r.Status)
				got = append(got, string(r.Body))
				hdr = specNextHeaders(r)
			}
			require.Equal(t, []string{"m3", "m4", "m5"}, got)
		})
	}
}

// B1: with the buffer disabled, messages reach only the subscribers held at
// the time, and ids still increase.
func TestSpecLongPollBufferDisabled(t *testing.T) {
	e := newSpecEnv(t, Options{MessageBufferLength: -1})
	require.Equal(t, http.StatusAccepted, e.specPublish("live", []byte("nobody"), "").Status)
	info1, err := e.hub.ChannelInfo(t.Context(), "live")
	require.NoError(t, err)
	require.Equal(t, 0, info1.Messages)

	held := e.specPollAsync(e.specURL("/sub", "live"), nil)
	e.specWaitHeld("live", 1)
	specNotYet(t, held)
	require.Equal(t, http.StatusCreated, e.specPublish("live", []byte("somebody"), "").Status)
	r := specAwait(t, held)
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, "somebody", string(r.Body))
	id, err := ParseMessageID(specIDOf(t, r))
	require.NoError(t, err)
	require.Equal(t, 1, id.Compare(info1.LastMessageID), "I1: ids increase with no buffer")
}

// S3: a held request times out with 304 (or 408) and its position.
func TestSpecSubscriberTimeout(t *testing.T) {
	for _, status := range []int{0, http.StatusRequestTimeout} {
		want := status
		if want == 0 {
			want = http.StatusNotModified
		}
		t.Run(strconv.Itoa(want), func(t *testing.T) {
			e := newSpecEnv(t, Options{SubscriberTimeout: 50 * time.Millisecond, TimeoutStatus: status})
			e.specPublishOK("to", "m0")
			first := e.specPoll(e.specURL("/sub", "to"), nil)
			require.Equal(t, http.StatusOK, first.Status)
			r := e.specPoll(e.specURL("/sub", "to"), specNextHeaders(first))
			require.Equal(t, want, r.Status)
			require.Empty(t, r.Body)
			require.Equal(t, first.Header.Get("Last-Modified"), r.Header.Get("Last-Modified"), "position kept")
			require.Equal(t, first.Header.Get("Etag"), r.Header.Get("Etag"), "position kept")

			// Resuming with the timeout's headers gets the next message.
			e.specPublishOK("to", "m1")
			r = e.specPoll(e.specURL("/sub", "to"), specNextHeaders(r))
			require.Equal(t, http.StatusOK, r.Status)
			require.Equal(t, "m1", string(r.Body))
		})
	}
}

// S3: interval-poll answers 304 at once, echoing the request's position.
func TestSpecIntervalPoll(t *testing.T) {
	e := newSpecEnv(t, Options{IntervalPoll: true})
	r := e.specPoll(e.specURL("/sub", "ip"), nil)
	require.Equal(t, http.StatusNotModified, r.Status, "empty channel")

	e.specPublishOK("ip", "m0")
	first := e.specPoll(e.specURL("/sub", "ip"), nil)
	require.Equal(t, http.StatusOK, first.Status)
	require.Equal(t, "m0", string(first.Body))

	for name, hdr := range map[string]http.Header{
		"at newest": specNextHeaders(first),
		"ahead":     {"If-Modified-Since": {specHTTPDate(time.Now().Unix() + 100)}, "If-None-Match": {"7"}},
	} {
		r := e.specPoll(e.specURL("/sub", "ip"), hdr)
		require.Equal(t, http.StatusNotModified, r.Status, name)
		require.Equal(t, hdr.Get("If-Modified-Since"), r.Header.Get("Last-Modified"), name)
		require.Equal(t, hdr.Get("If-None-Match"), r.Header.Get("Etag"), name)
	}
	e.specWaitHeld("ip", 0) // nobody is held
}

// S4: broadcast, first and last.
func TestSpecConcurrencyBroadcast(t *testing.T) {
	e := newSpecEnv(t, Options{})
	var held []<-chan specResp
	for range 3 {
		held = append(held, e.specPollAsync(e.specURL("/sub", "b"), nil))
	}
	e.specWaitHeld("b", 3)
	r := e.specPublish("b", []byte("all"), "")
	require.Equal(t, http.StatusCreated, r.Status)
	require.Contains(t, string(r.Body), "active subscribers: 3")
	for _, h := range held {
		require.Equal(t, "all", string(specAwait(t, h).Body))
	}
}

func TestSpecConcurrencyFirst(t *testing.T) {
	e := newSpecEnv(t, Options{Concurrency: First})
	a := e.specPollAsync(e.specURL("/sub", "f"), nil)
	e.specWaitHeld("f", 1)
	b := e.specPoll(e.specURL("/sub", "f"), nil)
	require.Equal(t, http.StatusConflict, b.Status, "a newcomer is refused while one is held")
	specNotYet(t, a)
	e.specPublishOK("f", "to-a")
	r := specAwait(t, a)
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, "to-a", string(r.Body))

	// Once the first has gone, another may hold the channel.
	e.specWaitHeld("f", 0)
	c := e.specPollAsync(e.specURL("/sub", "f"), specNextHeaders(r))
	e.specWaitHeld("f", 1)
	e.specPublishOK("f", "to-c")
	require.Equal(t, "to-c", string(specAwait(t, c).Body))
}

func TestSpecConcurrencyLast(t *testing.T) {
	e := newSpecEnv(t, Options{Concurrency: Last})
	a := e.specPollAsync(e.specURL("/sub", "l"), nil)
	e.specWaitHeld("l", 1)
	b := e.specPollAsync(e.specURL("/sub", "l"), nil)
	ra := specAwait(t, a)
	require.Equal(t, http.StatusConflict, ra.Status, "the earlier subscriber is ended")
	e.specWaitHeld("l", 1)
	specNotYet(t, b)
	e.specPublishOK("l", "to-b")
	rb := specAwait(t, b)
	require.Equal(t, http.StatusOK, rb.Status)
	require.Equal(t, "to-b", string(rb.Body))
}

// S4: beyond MaxSubscribersPerChannel, 403.
func TestSpecMaxSubscribers(t *testing.T) {
	e := newSpecEnv(t, Options{MaxSubscribersPerChannel: 2})
	a := e.specPollAsync(e.specURL("/sub", "max"), nil)
	b := e.specPollAsync(e.specURL("/sub", "max"), nil)
	e.specWaitHeld("max", 2)
	r := e.specPoll(e.specURL("/sub", "max"), nil)
	require.Equal(t, http.StatusForbidden, r.Status)
	e.specWaitHeld("max", 2) // the refused one is not counted
	// Another channel is not affected.
	other := e.specPollAsync(e.specURL("/sub", "max2"), nil)
	e.specWaitHeld("max2", 1)

	require.Equal(t, http.StatusCreated, e.specPublish("max", []byte("x"), "").Status)
	require.Equal(t, "x", string(specAwait(t, a).Body))
	require.Equal(t, "x", string(specAwait(t, b).Body))
	e.specPublishOK("max2", "y")
	require.Equal(t, "y", string(specAwait(t, other).Body))
}

// S5: with AuthorizedChannelsOnly, subscribing needs a channel made by POST or PUT.
func TestSpecAuthorizedChannelsOnly(t *testing.T) {
	e := newSpecEnv(t, Options{AuthorizedChannelsOnly: true})
	r := e.specPoll(e.specURL("/sub", "auth"), nil)
	require.Equal(t, http.StatusForbidden, r.Status)
	g := e.specMust(e.specDo(http.MethodGet, e.specURL("/pub", "auth"), nil, nil))
	require.Equal(t, http.StatusNotFound, g.Status, "the refused subscriber created nothing")

	e.specPublishOK("auth", "now ok")
	r = e.specPoll(e.specURL("/sub", "auth"), nil)
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, "now ok", string(r.Body))

	require.Equal(t, http.StatusOK, e.specMust(e.specDo(http.MethodPut, e.specURL("/pub", "put"), nil, nil)).Status)
	held := e.specPollAsync(e.specURL("/sub", "put"), nil)
	e.specWaitHeld("put", 1)
	e.specPublishOK("put", "after put")
	require.Equal(t, "after put", string(specAwait(t, held).Body))

	// Without the option a subscriber creates the channel.
	d := newSpecEnv(t, Options{})
	held = d.specPollAsync(d.specURL("/sub", "fresh"), nil)
	d.specWaitHeld("fresh", 1)
	g = d.specMust(d.specDo(http.MethodGet, d.specURL("/pub", "fresh"), nil, nil))
	require.Equal(t, http.StatusOK, g.Status)
	d.specPublishOK("fresh", "x")
	specAwait(t, held)
}

// S12: the subscriber refuses POST, PUT and DELETE.
func TestSpecSubscriberMethods(t *testing.T) {
	e := newSpecEnv(t, Options{})
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		r := e.specMust(e.specDo(m, e.specURL("/sub", "s12"), []byte("x"), nil))
		require.Equal(t, http.StatusMethodNotAllowed, r.Status, m)
		require.Equal(t, "GET, OPTIONS", r.Header.Get("Allow"), m)
	}
	r := e.specMust(e.specDo(http.MethodOptions, e.specURL("/sub", "s12"), nil, nil))
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, "GET, OPTIONS", r.Header.Get("Allow"))
	_, err := e.hub.ChannelInfo(t.Context(), "s12")
	require.ErrorIs(t, err, ErrChannelNotFound, "nothing was published or created")
}

// B1, P1: with the buffer disabled, a subscription that exists when a
// message is published receives it, even if it had not started waiting yet
// (the publisher counted it).
func TestSpecBufferDisabledSubscribedBeforePublish(t *testing.T) {
	hub := New(Options{MessageBufferLength: -1})
	defer hub.Shutdown(context.Background())
	_, _, err := hub.Publish(t.Context(), "live", &Message{Data: []byte("before")})
	require.NoError(t, err)
	sub, err := hub.Subscribe(t.Context(), []string{"live"}, "")
	require.NoError(t, err)
	defer sub.Close()
	_, n, err := hub.Publish(t.Context(), "live", &Message{Data: []byte("after")})
	require.NoError(t, err)
	require.Equal(t, 1, n, "counted as a subscriber")

	ctx, cancel := context.WithTimeout(t.Context(), specWait)
	defer cancel()
	m, err := sub.Next(ctx)
	require.NoError(t, err, "the message published while subscribed was lost")
	require.Equal(t, "after", string(m.Data))
}
