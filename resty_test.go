package push

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// P10: with RestyPush, a resty.push back end publishes a form's field data
// to two channels and gets cb({"status":1});, a JSONP subscriber of each
// gets cb("<message>"); and on timeout the tips string.
func TestSpecRestyPush(t *testing.T) {
	e := newSpecEnv(t, Options{RestyPush: true, SubscriberTimeout: 200 * time.Millisecond})
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded; charset=UTF-8"}}
	body := []byte(url.Values{"data": {`hello "world" </script>`}}.Encode())

	// A subscriber of channel 2 waiting before the publish.
	held := e.specPollAsync(e.srv.URL+"/sub?id=2&callback=cb", nil)
	e.specWaitHeld("2", 1)
	r := e.specMust(e.specDo(http.MethodPost, e.srv.URL+"/pub?id=1&id=2&callback=cb", body, form))
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, "text/javascript;charset=UTF-8", r.Header.Get("Content-Type"))
	require.Equal(t, `cb({"status":1});`, string(r.Body))

	got := specAwait(t, held)
	require.Equal(t, http.StatusOK, got.Status)
	require.Equal(t, "text/javascript;charset=UTF-8", got.Header.Get("Content-Type"))
	requireRestyString(t, got.Body, "cb", `hello "world" </script>`)
	require.NotContains(t, string(got.Body), "</script>", "escaped for a script")

	// The message is stored as text/plain in both channels.
	for _, ch := range []string{"1", "2"} {
		r = e.specPoll(e.srv.URL+"/sub?id="+ch, nil)
		require.Equal(t, `hello "world" </script>`, string(r.Body), ch)
		require.Equal(t, "text/plain", r.Header.Get("Content-Type"), ch)
	}

	// A JSONP subscriber naming no position waits for the next message
	// (as resty.push's do), and times out with the tips string.
	r = e.specPoll(e.srv.URL+"/sub?id=1&callback=cb", nil)
	require.Equal(t, http.StatusOK, r.Status)
	requireRestyString(t, r.Body, "cb", `{"status":1,"tips":"timeout"}`)

	// Without a callback: {"status":1}; a form without data publishes an
	// empty message.
	r = e.specMust(e.specDo(http.MethodPost, e.srv.URL+"/pub?id=3", []byte("other=1"), form))
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, `{"status":1}`, string(r.Body))
	r = e.specPoll(e.srv.URL+"/sub?id=3", nil)
	require.Equal(t, "", string(r.Body))

	// Failures keep the shape: {"status":0,"tips":...}.
	r = e.specMust(e.specDo(http.MethodPost, e.srv.URL+"/pub?callback=cb", body, form))
	require.Equal(t, http.StatusOK, r.Status, "script tags need 200")
	require.Equal(t, `cb({"status":0,"tips":"No channel id provided."});`, string(r.Body))

	// What is not a form nor JSONP is push's own protocol.
	r = e.specPublish("4", []byte("raw"), "text/plain")
	require.Equal(t, http.StatusAccepted, r.Status)
	require.Contains(t, string(r.Body), "queued messages: 1")
}

// Without RestyPush a form is published as it came, and JSONP answers are
// push's own (S9).
func TestRestyPushOff(t *testing.T) {
	e := newSpecEnv(t, Options{})
	r := e.specMust(e.specDo(http.MethodPost, e.srv.URL+"/pub?id=1&callback=cb", []byte("data=x"),
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}))
	require.True(t, strings.HasPrefix(string(r.Body), `cb({"messages": 1`), "%s", r.Body)
	r = e.specPoll(e.srv.URL+"/sub?id=1", nil)
	require.Equal(t, "data=x", string(r.Body))
}

// requireRestyString checks that body is callback("<want as a JSON string>");.
func requireRestyString(t *testing.T, body []byte, callback, want string) {
	t.Helper()
	s, ok := strings.CutPrefix(string(body), callback+"(")
	require.True(t, ok, "%s", body)
	s, ok = strings.CutSuffix(s, ");")
	require.True(t, ok, "%s", body)
	var got string
	require.NoError(t, json.Unmarshal([]byte(s), &got), "%s: not a JSON string", body)
	require.Equal(t, want, got)
}
