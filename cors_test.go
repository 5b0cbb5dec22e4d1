package push

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// specHeaderTokens splits a comma-separated header into lower-case tokens.
func specHeaderTokens(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.ToLower(strings.TrimSpace(p)); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// specRequireCORS checks the headers of an answer to an allowed origin (S11).
func specRequireCORS(t *testing.T, r specResp, origin, what string) {
	t.Helper()
	require.Equal(t, origin, r.Header.Get("Access-Control-Allow-Origin"), what)
	require.Equal(t, "true", r.Header.Get("Access-Control-Allow-Credentials"), what)
	require.ElementsMatch(t, []string{"last-modified", "etag", "content-type", "x-push-missed"},
		specHeaderTokens(r.Header.Get("Access-Control-Expose-Headers")), what)
}

// S11: CORS is off by default: other origins are refused, the server's own
// origin and requests without Origin are served.
func TestSpecCORSOff(t *testing.T) {
	e := newSpecEnv(t, Options{})
	e.specPublishOK("c", "m0")
	for _, origin := range []string{"https://evil.example", "null", "http://localhost:1"} {
		for _, target := range []string{e.specURL("/sub", "c"), e.specURL("/pub", "c")} {
			r := e.specPoll(target, http.Header{"Origin": {origin}})
			require.Equal(t, http.StatusForbidden, r.Status, "%s from %s", target, origin)
			require.Empty(t, r.Header.Get("Access-Control-Allow-Origin"))
		}
		r := e.specMust(e.specDo(http.MethodPost, e.specURL("/pub", "c"), []byte("evil"), http.Header{"Origin": {origin}}))
		require.Equal(t, http.StatusForbidden, r.Status, "cross-origin publish from %s", origin)
	}
	info, err := e.hub.ChannelInfo(t.Context(), "c")
	require.NoError(t, err)
	require.Equal(t, 1, info.Messages, "the refused publishes did not publish")

	// Same origin (the server's own scheme://host:port) is fine.
	r := e.specPoll(e.specURL("/sub", "c"), http.Header{"Origin": {e.srv.URL}})
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, "m0", string(r.Body))
	r = e.specPoll(e.specURL("/sub", "c"), nil)
	require.Equal(t, http.StatusOK, r.Status)
}

// S11: allowed origins get the CORS headers on every answer, preflight
// allows the id headers, other origins get 403.
func TestSpecCORSAllowed(t *testing.T) {
	const origin = "https://app.example"
	e := newSpecEnv(t, Options{
		AllowedOrigins:    []string{origin, "https://*.example.org"},
		SubscriberTimeout: 50 * time.Millisecond,
	})
	hdr := http.Header{"Origin": {origin}}
	e.specPublishOK("c", "m0")

	// 200 with a message.
	r := e.specPoll(e.specURL("/sub", "c"), hdr)
	require.Equal(t, http.StatusOK, r.Status)
	specRequireCORS(t, r, origin, "200")

	// 304 on timeout, with the position.
	next := specNextHeaders(r)
	next.Set("Origin", origin)
	r = e.specPoll(e.specURL("/sub", "c"), next)
	require.Equal(t, http.StatusNotModified, r.Status)
	specRequireCORS(t, r, origin, "304")

	// 410 on delete.
	e.specWaitHeld("c", 0) // the answered request has let go
	held := e.specPollAsync(e.specURL("/sub", "c"), next)
	e.specWaitHeld("c", 1)
	_, err := e.hub.DeleteChannel(t.Context(), "c")
	require.NoError(t, err)
	r = specAwait(t, held)
	require.Equal(t, http.StatusGone, r.Status)
	specRequireCORS(t, r, origin, "410")

	// A pattern.
	r = e.specPoll(e.specURL("/sub", "c2", "callback=cb"), http.Header{"Origin": {"https://news.example.org"}})
	require.Equal(t, http.StatusOK, r.Status)
	specRequireCORS(t, r, "https://news.example.org", "pattern, JSONP")

	// Preflight of a cross-origin long-poll.
	pre := e.specMust(e.specDo(http.MethodOptions, e.specURL("/sub", "c"), nil, http.Header{
		"Origin":                         {origin},
		"Access-Control-Request-Method":  {"GET"},
		"Access-Control-Request-Headers": {"if-modified-since, if-none-match, etag, last-event-id"},
	}))
	require.Equal(t, http.StatusOK, pre.Status)
	require.Equal(t, origin, pre.Header.Get("Access-Control-Allow-Origin"))
	require.Contains(t, specHeaderTokens(pre.Header.Get("Access-Control-Allow-Methods")), "get")
	require.Subset(t, specHeaderTokens(pre.Header.Get("Access-Control-Allow-Headers")),
		[]string{"if-modified-since", "if-none-match", "etag", "last-event-id", "content-type"})

	// Other origins: 403, preflight included.
	for _, bad := range []string{"https://evil.example", "https://app.example.evil.com", "http://app.example", "https://example.org"} {
		r := e.specPoll(e.specURL("/sub", "c"), http.Header{"Origin": {bad}})
		require.Equal(t, http.StatusForbidden, r.Status, bad)
		require.Empty(t, r.Header.Get("Access-Control-Allow-Origin"), bad)
		r = e.specMust(e.specDo(http.MethodOptions, e.specURL("/sub", "c"), nil, http.Header{
			"Origin": {bad}, "Access-Control-Request-Method": {"GET"},
		}))
		require.Equal(t, http.StatusForbidden, r.Status, "preflight from %s", bad)
	}

	// Same origin and no Origin still work with a list configured.
	e.specPublishOK("c3", "x")
	require.Equal(t, http.StatusOK, e.specPoll(e.specURL("/sub", "c3"), http.Header{"Origin": {e.srv.URL}}).Status)
	require.Equal(t, http.StatusOK, e.specPoll(e.specURL("/sub", "c3"), nil).Status)
}
