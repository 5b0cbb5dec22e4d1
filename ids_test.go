package push

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// I2, I3: every id carrier, quoted forms, and which carrier wins.
func TestSpecIDCarriers(t *testing.T) {
	e, clock, sec := specFrozenEnv(t, Options{})
	for i := range 6 {
		e.specPublishOK("ids", fmt.Sprintf("m%d", i)) // ids T:0 .. T:5
	}
	clock.Add(time.Second)
	e.specPublishOK("ids", "m6") // (T+1):0

	T := strconv.FormatInt(sec, 10)
	ims := specHTTPDate(sec)
	cases := []struct {
		name  string
		hdr   http.Header
		query string
		want  string
	}{
		{name: "IMS+INM bare", hdr: http.Header{"If-Modified-Since": {ims}, "If-None-Match": {"3"}}, want: "m4"},
		{name: "IMS+INM quoted", hdr: http.Header{"If-Modified-Since": {ims}, "If-None-Match": {`"3"`}}, want: "m4"},
		{name: "IMS+INM weak", hdr: http.Header{"If-Modified-Since": {ims}, "If-None-Match": {`W/"3"`}}, want: "m4"},
		{name: "IMS alone means tag 0", hdr: http.Header{"If-Modified-Since": {ims}}, want: "m1"},
		{name: "INM alone T:G", hdr: http.Header{"If-None-Match": {T + ":3"}}, want: "m4"},
		{name: "INM alone quoted T:G", hdr: http.Header{"If-None-Match": {`"` + T + `:3"`}}, want: "m4"},
		{name: "Etag request header", hdr: http.Header{"Etag": {T + ":3"}}, want: "m4"},
		{name: "Last-Event-ID", hdr: http.Header{"Last-Event-Id": {T + ":3"}}, want: "m4"},
		{name: "last_event_id escaped", query: "last_event_id=" + url.QueryEscape(T+":3"), want: "m4"},
		{name: "last_event_id raw", query: "last_event_id=" + T + ":3", want: "m4"},
		{name: "across a second", hdr: http.Header{"Last-Event-Id": {T + ":5"}}, want: "m6"},
		{name: "none: oldest", want: "m0"},
		{name: "INM bare tag alone: ignored", hdr: http.Header{"If-None-Match": {"3"}}, want: "m0"},
		{name: "INM quoted bare tag alone: ignored", hdr: http.Header{"If-None-Match": {`"3"`}}, want: "m0"},
		{name: "INM opaque tag alone: ignored", hdr: http.Header{"If-None-Match": {`"abc"`}}, want: "m0"},
		{name: "INM bare tag falls through to Etag", hdr: http.Header{"If-None-Match": {"1"}, "Etag": {T + ":3"}}, want: "m4"},
		{name: "INM bare tag falls through to Last-Event-ID", hdr: http.Header{"If-None-Match": {"1"}, "Last-Event-Id": {T + ":3"}}, want: "m4"},
		{name: "empty IMS: ignored", hdr: http.Header{"If-Modified-Since": {""}}, want: "m0"},
		{name: "empty IMS and bare INM: ignored", hdr: http.Header{"If-Modified-Since": {""}, "If-None-Match": {"3"}}, want: "m0"},
		{name: "empty IMS falls through to INM T:G", hdr: http.Header{"If-Modified-Since": {""}, "If-None-Match": {T + ":3"}}, want: "m4"},

		{name: "IMS beats the rest", hdr: http.Header{
			"If-Modified-Since": {ims}, "If-None-Match": {"1"}, "Etag": {T + ":3"}, "Last-Event-Id": {T + ":4"},
		}, query: "last_event_id=" + T + ":5", want: "m2"},
		{name: "INM alone beats Etag", hdr: http.Header{
			"If-None-Match": {T + ":1"}, "Etag": {T + ":3"}, "Last-Event-Id": {T + ":4"},
		}, want: "m2"},
		{name: "Etag beats Last-Event-ID", hdr: http.Header{"Etag": {T + ":1"}, "Last-Event-Id": {T + ":3"}},
			query: "last_event_id=" + T + ":4", want: "m2"},
		{name: "Last-Event-ID beats the query", hdr: http.Header{"Last-Event-Id": {T + ":1"}},
			query: "last_event_id=" + T + ":3", want: "m2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := e.specFor(t)
			var extra []string
			if c.query != "" {
				extra = append(extra, c.query)
			}
			r := e.specPoll(e.specURL("/sub", "ids", extra...), c.hdr)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			require.Equal(t, c.want, string(r.Body))
		})
	}
}

// I4: anything else in an id carrier is 400 "Message ID invalid".
func TestSpecIDInvalid(t *testing.T) {
	e := newSpecEnv(t, Options{})
	e.specPublishOK("bad", "m0")
	now := strconv.FormatInt(time.Now().Unix(), 10)
	cases := map[string]struct {
		hdr   http.Header
		query string
	}{
		"IMS not a date":      {hdr: http.Header{"If-Modified-Since": {"yesterday"}}},
		"INM not a number":    {hdr: http.Header{"If-Modified-Since": {specHTTPDate(1)}, "If-None-Match": {"abc"}}},
		"INM negative":        {hdr: http.Header{"If-Modified-Since": {specHTTPDate(1)}, "If-None-Match": {"-1"}}},
		"INM alone, bad T":    {hdr: http.Header{"If-None-Match": {"abc:1"}}},
		"Etag bad tag":        {hdr: http.Header{"Etag": {now + ":x"}}},
		"LEI no colon":        {hdr: http.Header{"Last-Event-Id": {now}}},
		"LEI three parts":     {hdr: http.Header{"Last-Event-Id": {now + ":1:2"}}},
		"LEI negative T":      {hdr: http.Header{"Last-Event-Id": {"-1:0"}}},
		"LEI negative G":      {hdr: http.Header{"Last-Event-Id": {now + ":-2"}}},
		"LEI plus sign":       {hdr: http.Header{"Last-Event-Id": {"+1:0"}}},
		"LEI overflow":        {hdr: http.Header{"Last-Event-Id": {"99999999999999999999999:0"}}},
		"LEI compound for 1":  {hdr: http.Header{"Last-Event-Id": {now + ":1,2"}}},
		"LEI empty parts":     {hdr: http.Header{"Last-Event-Id": {":"}}},
		"query garbage":       {query: "last_event_id=garbage"},
		"query hex":           {query: "last_event_id=0x10:0"},
		"query space in tag":  {query: "last_event_id=" + url.QueryEscape(now+": 1")},
		"query non-ascii dig": {query: "last_event_id=" + url.QueryEscape("١٢:0")},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			e := e.specFor(t)
			var extra []string
			if c.query != "" {
				extra = append(extra, c.query)
			}
			r := e.specPoll(e.specURL("/sub", "bad", extra...), c.hdr)
			require.Equal(t, http.StatusBadRequest, r.Status, "%s", r.Body)
			require.Equal(t, "Message ID invalid", string(r.Body))
			require.True(t, strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain"))
		})
	}
	info, err := e.hub.ChannelInfo(t.Context(), "bad")
	require.NoError(t, err)
	require.Equal(t, 0, info.Subscribers)
}

// I5, S10: a subscription to two channels walks both through the compound
// id in Last-Modified + Etag, and the id "<seconds>:<Etag>" resumes the same
// way through every carrier and in Go (Hub.Subscribe), matching
// Subscription.Position.
func TestSpecCompoundID(t *testing.T) {
	e, clock, _ := specFrozenEnv(t, Options{})
	pub := func(ch, body string) { e.specPublishOK(ch, body) }
	pub("a", "a0")
	pub("b", "b0")
	pub("a", "a1")
	pub("b", "b1")
	pub("b", "b2")
	clock.Add(time.Second)
	pub("a", "a2")
	clock.Add(3 * time.Second)
	pub("b", "b3")

	target := e.srv.URL + "/sub?id=a&id=b"
	goSub, err := e.hub.Subscribe(t.Context(), []string{"a", "b"}, "")
	require.NoError(t, err)
	defer goSub.Close()

	var got []string
	var hdr http.Header
	for step := 0; step < 7; step++ {
		r := e.specPoll(target, hdr)
		require.Equal(t, http.StatusOK, r.Status, "step %d: %s", step, r.Body)
		body := string(r.Body)
		got = append(got, body)
		id := specIDOf(t, r)

		m, err := goSub.Next(t.Context())
		require.NoError(t, err)
		require.Equal(t, body, string(m.Data), "step %d: Go and HTTP walk alike", step)
		require.Equal(t, goSub.Position(), id, "step %d: <Last-Modified>:<Etag> is the position", step)

		hdr = specNextHeaders(r)
		if step == 6 {
			break // nothing newer: a resume would be held
		}
		// Every carrier resumes from id to the same next answer.
		next := e.specPoll(target, hdr)
		for name, alt := range map[string]specResp{
			"INM alone":     e.specPoll(target, http.Header{"If-None-Match": {id}}),
			"Etag":          e.specPoll(target, http.Header{"Etag": {id}}),
			"Last-Event-ID": e.specPoll(target, http.Header{"Last-Event-Id": {id}}),
			"last_event_id": e.specPoll(target+"&last_event_id="+url.QueryEscape(id), nil),
		} {
			require.Equal(t, next.Status, alt.Status, "step %d %s (id %s)", step, name, id)
			require.Equal(t, string(next.Body), string(alt.Body), "step %d %s (id %s)", step, name, id)
		}
		resumed, err := e.hub.Subscribe(t.Context(), []string{"a", "b"}, id)
		require.NoError(t, err)
		m, err = resumed.Next(t.Context())
		resumed.Close()
		require.NoError(t, err)
		require.Equal(t, string(next.Body), string(m.Data), "step %d: Hub.Subscribe from %s", step, id)
	}
	// Every message once, in order per channel.
	var as, bs []string
	for _, g := range got {
		if g[0] == 'a' {
			as = append(as, g)
		} else {
			bs = append(bs, g)
		}
	}
	require.Equal(t, []string{"a0", "a1", "a2"}, as, "all: %v", got)
	require.Equal(t, []string{"b0", "b1", "b2", "b3"}, bs, "all: %v", got)

	// Then the walker is held; a message on either channel releases it.
	e.specWaitHeld("b", 1) // goSub only: the answered requests have let go
	held := e.specPollAsync(target, hdr)
	e.specWaitHeld("b", 2) // the HTTP walker and goSub
	specNotYet(t, held)
	pub("b", "b4")
	r := specAwait(t, held)
	require.Equal(t, "b4", string(r.Body))

	// A single-channel id, or a wrong number of entries, is refused.
	for _, bad := range []string{"5:1", "5:1,2,3", "5:x,1"} {
		r := e.specPoll(target, http.Header{"Last-Event-Id": {bad}})
		require.Equal(t, http.StatusBadRequest, r.Status, bad)
		require.Equal(t, "Message ID invalid", string(r.Body), bad)
	}

	// S10: deleting one channel ends the subscription.
	e.specWaitHeld("a", 1) // goSub only
	held = e.specPollAsync(target, specNextHeaders(r))
	e.specWaitHeld("a", 2)
	_, err = e.hub.DeleteChannel(t.Context(), "a")
	require.NoError(t, err)
	require.Equal(t, http.StatusGone, specAwait(t, held).Status)
}
