package push

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// specJSONP checks the form of a JSONP answer (S9: always 200, script
// headers) and returns the object passed to callback.
func specJSONP(t *testing.T, r specResp, callback string) map[string]any {
	t.Helper()
	require.Equal(t, http.StatusOK, r.Status, "every JSONP answer is 200: %s", r.Body)
	require.Equal(t, "application/javascript", r.Header.Get("Content-Type"))
	require.Equal(t, "nosniff", r.Header.Get("X-Content-Type-Options"))
	s := string(r.Body)
	require.True(t, strings.HasPrefix(s, callback+"(") && strings.HasSuffix(s, ");"), "%s", s)
	var v map[string]any
	require.NoError(t, json.Unmarshal([]byte(s[len(callback)+1:len(s)-2]), &v), "%s", s)
	return v
}

// S9: the message object, byte for byte, with and without content_type.
func TestSpecJSONPMessage(t *testing.T) {
	e, _, sec := specFrozenEnv(t, Options{})
	T := strconv.FormatInt(sec, 10)
	e.specPublish("j", []byte("hello"), "text/plain")
	e.specPublish("j", []byte("x"), "")

	r := e.specPoll(e.specURL("/sub", "j", "callback=cb"), nil)
	specJSONP(t, r, "cb")
	require.Equal(t, `cb({"id":"`+T+`:0","channel":"j","content_type":"text/plain","data":"hello"});`, string(r.Body))

	r = e.specPoll(e.specURL("/sub", "j", "callback=my.ns$_cb", "last_event_id="+T+":0"), nil)
	specJSONP(t, r, "my.ns$_cb")
	require.Equal(t, `my.ns$_cb({"id":"`+T+`:1","channel":"j","data":"x"});`, string(r.Body),
		"content_type omitted when the message has none")

	// A payload that would break out of a script is escaped, and decodes back.
	payload := "</script><script>alert(\"x\")</script>\u2028\u2029 & 'q'"
	e.specPublish("j", []byte(payload), "text/html")
	r = e.specPoll(e.specURL("/sub", "j", "callback=cb", "last_event_id="+T+":1"), nil)
	v := specJSONP(t, r, "cb")
	require.Equal(t, payload, v["data"])
	require.NotContains(t, string(r.Body), "</script>")
	require.NotContains(t, string(r.Body), "\u2028")
}

// S9: a held JSONP request is released by a publish; a client resumes with
// the id it got (?last_event_id=).
func TestSpecJSONPHeldAndResume(t *testing.T) {
	e := newSpecEnv(t, Options{})
	held := e.specPollAsync(e.specURL("/sub", "jh", "callback=cb"), nil)
	e.specWaitHeld("jh", 1)
	specNotYet(t, held)
	require.Equal(t, http.StatusCreated, e.specPublish("jh", []byte("one"), "").Status)
	v := specJSONP(t, specAwait(t, held), "cb")
	require.Equal(t, "one", v["data"])
	require.Equal(t, "jh", v["channel"])
	id := v["id"].(string)

	e.specPublishOK("jh", "two")
	v = specJSONP(t, e.specPoll(e.specURL("/sub", "jh", "callback=cb", "last_event_id="+url.QueryEscape(id)), nil), "cb")
	require.Equal(t, "two", v["data"])
}

// S9: timeouts and errors are 200 with objects script-tag clients can act on.
func TestSpecJSONPTimeoutAndErrors(t *testing.T) {
	e, _, sec := specFrozenEnv(t, Options{SubscriberTimeout: 50 * time.Millisecond})
	T := strconv.FormatInt(sec, 10)
	e.specPublishOK("jt", "m0")

	r := e.specPoll(e.specURL("/sub", "jt", "callback=cb", "last_event_id="+T+":0"), nil)
	specJSONP(t, r, "cb")
	require.Equal(t, `cb({"id":"`+T+`:0","status":"timeout"});`, string(r.Body))

	// Deleted while held: 410 as an error object.
	d := newSpecEnv(t, Options{})
	held := d.specPollAsync(d.specURL("/sub", "gone", "callback=cb"), nil)
	d.specWaitHeld("gone", 1)
	require.Equal(t, http.StatusOK, d.specMust(d.specDo(http.MethodDelete, d.specURL("/pub", "gone"), nil, nil)).Status)
	r = specAwait(t, held)
	specJSONP(t, r, "cb")
	require.Equal(t, `cb({"status":"error","code":410,"error":"Gone"});`, string(r.Body))

	// A bad id: still 200, code 400.
	r = e.specPoll(e.specURL("/sub", "jt", "callback=cb", "last_event_id=nope"), nil)
	v := specJSONP(t, r, "cb")
	require.Equal(t, map[string]any{"status": "error", "code": 400.0, "error": "Message ID invalid"}, v)

	// Conflict under Concurrency first.
	f := newSpecEnv(t, Options{Concurrency: First})
	held = f.specPollAsync(f.specURL("/sub", "first", "callback=cb"), nil)
	f.specWaitHeld("first", 1)
	v = specJSONP(t, f.specPoll(f.specURL("/sub", "first", "callback=cb"), nil), "cb")
	require.Equal(t, "error", v["status"])
	require.EqualValues(t, 409, v["code"])
	f.specPublishOK("first", "x")
	specAwait(t, held)
}

// S9: callback names outside ^[A-Za-z_$][A-Za-z0-9_$.]{0,63}$ are refused
// with 400, on the subscriber and the publisher, and never echoed as script.
func TestSpecJSONPCallbackRefused(t *testing.T) {
	e := newSpecEnv(t, Options{})
	e.specPublishOK("cbx", "m0")
	bad := []string{
		"alert(1)//", "", "1abc", ".a", "a-b", "a b", "a;b", "<script>", "a[0]", "a(1)", "a\u00e9",
		"a\nb", "a/b", strings.Repeat("a", 65),
	}
	for _, name := range bad {
		for _, path := range []string{"/sub", "/pub"} {
			r := e.specMust(e.specDo(http.MethodGet, e.specURL(path, "cbx", "callback="+url.QueryEscape(name)), nil, nil))
			require.Equal(t, http.StatusBadRequest, r.Status, "%s callback %q", path, name)
			require.NotEqual(t, "application/javascript", r.Header.Get("Content-Type"), "%s callback %q", path, name)
			if name != "" {
				require.NotContains(t, string(r.Body), name, "%s callback %q echoed", path, name)
			}
		}
	}
	good := []string{"a", "$", "_", "A.b.c", "jQuery123_456", "$.cb_1", strings.Repeat("a", 64)}
	for _, name := range good {
		r := e.specPoll(e.specURL("/sub", "cbx", "callback="+url.QueryEscape(name)), nil)
		specJSONP(t, r, name)
	}
}

// S9: the publisher answers JSONP with the channel info as JSON.
func TestSpecJSONPPublisher(t *testing.T) {
	e, _, sec := specFrozenEnv(t, Options{})
	r := e.specMust(e.specDo(http.MethodPost, e.specURL("/pub", "jp", "callback=done"), []byte("x"), nil))
	v := specJSONP(t, r, "done")
	require.Equal(t, map[string]any{
		"messages": 1.0, "requested": -1.0, "subscribers": 0.0,
		"last_message_id": strconv.FormatInt(sec, 10) + ":0",
	}, v)
	r = e.specMust(e.specDo(http.MethodGet, e.specURL("/pub", "jp", "callback=done"), nil, nil))
	require.EqualValues(t, 1, specJSONP(t, r, "done")["messages"])

	// A missing channel is an error object with code 404 (P3), still 200.
	r = e.specMust(e.specDo(http.MethodGet, e.specURL("/pub", "missing", "callback=done"), nil, nil))
	v = specJSONP(t, r, "done")
	require.Equal(t, "error", v["status"])
	require.EqualValues(t, 404, v["code"])
}

// S9, I5: JSONP to several channels carries the compound id, which resumes
// through ?last_event_id=.
func TestSpecJSONPCompoundID(t *testing.T) {
	e := newSpecEnv(t, Options{})
	target := e.srv.URL + "/sub?id=a&id=b&callback=cb"
	e.specPublishOK("a", "a0")
	v := specJSONP(t, e.specPoll(target, nil), "cb")
	require.Equal(t, "a0", v["data"])
	require.Equal(t, "a", v["channel"])
	id := v["id"].(string)
	require.Contains(t, id, ",", "a compound id: %s", id)

	e.specPublishOK("b", "b0")
	e.specPublishOK("a", "a1")
	var got []string
	for range 2 {
		v = specJSONP(t, e.specPoll(target+"&last_event_id="+url.QueryEscape(id), nil), "cb")
		got = append(got, v["data"].(string))
		id = v["id"].(string)
	}
	require.ElementsMatch(t, []string{"b0", "a1"}, got)
	e.specWaitHeld("a", 0) // the answered request has let go
	held := e.specPollAsync(target+"&last_event_id="+url.QueryEscape(id), nil)
	e.specWaitHeld("a", 1)
	specNotYet(t, held)
	e.specPublishOK("b", "b1")
	require.Equal(t, "b1", specJSONP(t, specAwait(t, held), "cb")["data"])
}
