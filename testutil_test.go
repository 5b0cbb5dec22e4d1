package push

import (
	"bytes"
	"context"
	"flag"
	"hash/maphash"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Helpers of the HTTP conformance suite (spec statements P, S, I, B). Every
// name starts with "spec" so other tests of the package can have their own.

// specWait bounds every wait of the suite on something that should happen
// promptly (a held request's answer, a subscriber being counted).
const specWait = 10 * time.Second

// specEnv is a Hub with its publisher mounted at /pub and its subscriber at
// /sub of one httptest server on loopback.
type specEnv struct {
	t      *testing.T
	hub    *Hub
	srv    *httptest.Server
	client *http.Client
}

// specHeld makes newSpecEnv serve the handlers on a plain http.Server
// instead of a Server, so long-polls are held by their handler's goroutine
// instead of parked, and every request is read by net/http (go test
// -push.held).
var specHeld = flag.Bool("push.held", false, "serve the spec tests on a plain http.Server (long-polls held, not parked)")

// newSpecEnv starts a Hub configured by opts behind a test server. Cleanup
// shuts the Hub down (answering held requests) and then closes the server.
func newSpecEnv(t *testing.T, opts Options) *specEnv {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	hub := New(opts)
	var srv *httptest.Server
	if *specHeld {
		mux := http.NewServeMux()
		mux.Handle("/pub", hub.PublishHandler())
		mux.Handle("/sub", hub.SubscribeHandler())
		srv = httptest.NewUnstartedServer(mux)
	} else {
		// A Server's: keep-alive publishers and long-polls are read by
		// the Hub after their first request (internal/h1), so the suite
		// checks that path's answers too.
		ps := &Server{Hub: hub, PublishPath: "/pub", SubscribePath: "/sub"}
		srv = httptest.NewUnstartedServer(http.HandlerFunc(ps.route))
		ps.once.Do(func() { ps.srv = srv.Config })
		srv.Listener = hub.conns.Listen(srv.Listener, hub.listenConfig(ps))
	}
	srv.Start()
	env := &specEnv{t: t, hub: hub, srv: srv, client: srv.Client()}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), specWait)
		defer cancel()
		err := hub.Shutdown(ctx)
		srv.Close()
		require.NoError(t, err, "Hub.Shutdown")
	})
	return env
}

// specFor returns e reporting to t (a subtest).
func (e *specEnv) specFor(t *testing.T) *specEnv {
	c := *e
	c.t = t
	return &c
}

// specClock is a settable clock for a MemoryStore.
type specClock struct {
	mu sync.Mutex
	t  time.Time
}

func newSpecClock(t time.Time) *specClock { return &specClock{t: t} }

func (c *specClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *specClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *specClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// specNewMemoryStore returns a MemoryStore whose clock is now, built like
// NewMemoryStore but with the clock set before its sweeper starts (setting
// the field afterwards would race with it). Its sweeper runs hourly, so tests
// call sweep themselves. Cleanup closes it.
func specNewMemoryStore(t *testing.T, now func() time.Time) *MemoryStore {
	t.Helper()
	s := &MemoryStore{
		seed: maphash.MakeSeed(),
		now:  now,
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	for i := range s.shards {
		s.shards[i].channels = make(map[string]*memoryChannel)
		s.shards[i].tombstones = make(map[string]MessageID)
	}
	go s.sweepLoop(time.Hour)
	t.Cleanup(func() { s.Close() })
	return s
}

// specResp is an HTTP answer read in full.
type specResp struct {
	Status int
	Header http.Header
	Body   []byte
	Err    error // the request failed (no answer)
}

// specURL returns path?id=channel&extra..., extra given as "key=value" pairs
// already escaped.
func (e *specEnv) specURL(path, channel string, extra ...string) string {
	q := "id=" + url.QueryEscape(channel)
	for _, x := range extra {
		q += "&" + x
	}
	return e.srv.URL + path + "?" + q
}

// specDo sends one request with body (nil: none) and headers, and reads the answer.
func (e *specEnv) specDo(method, target string, body []byte, hdr http.Header) specResp {
	return specSend(e.t.Context(), e.client, method, target, body, hdr)
}

func specSend(ctx context.Context, c *http.Client, method, target string, body []byte, hdr http.Header) specResp {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return specResp{Err: err}
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	if err != nil {
		return specResp{Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return specResp{Status: resp.StatusCode, Header: resp.Header, Body: b, Err: err}
}

// specMust checks that r is an answer (not a transport error) and returns it.
func (e *specEnv) specMust(r specResp) specResp {
	e.t.Helper()
	require.NoError(e.t, r.Err)
	return r
}

// specPublish POSTs body to channel with Content-Type ct ("" sends none).
func (e *specEnv) specPublish(channel string, body []byte, ct string) specResp {
	e.t.Helper()
	var hdr http.Header
	if ct != "" {
		hdr = http.Header{"Content-Type": {ct}}
	}
	if body == nil {
		body = []byte{}
	}
	return e.specMust(e.specDo(http.MethodPost, e.specURL("/pub", channel), body, hdr))
}

// specPublishOK publishes and requires a 201 or 202.
func (e *specEnv) specPublishOK(channel string, body string) {
	e.t.Helper()
	r := e.specPublish(channel, []byte(body), "text/plain")
	require.Contains(e.t, []int{http.StatusCreated, http.StatusAccepted}, r.Status, "publish: %s", r.Body)
}

// specPoll sends a long-poll GET to target with hdr and waits for the answer.
func (e *specEnv) specPoll(target string, hdr http.Header) specResp {
	e.t.Helper()
	return e.specMust(e.specDo(http.MethodGet, target, nil, hdr))
}

// specPollAsync sends a long-poll GET in its own goroutine; the answer
// arrives on the returned chan.
func (e *specEnv) specPollAsync(target string, hdr http.Header) <-chan specResp {
	ch := make(chan specResp, 1)
	ctx := e.t.Context()
	go func() { ch <- specSend(ctx, e.client, http.MethodGet, target, nil, hdr) }()
	return ch
}

// specAwait waits for an answer from specPollAsync.
func specAwait(t *testing.T, ch <-chan specResp) specResp {
	t.Helper()
	select {
	case r := <-ch:
		require.NoError(t, r.Err)
		return r
	case <-time.After(specWait):
		require.FailNow(t, "no answer to a held request within "+specWait.String())
	}
	return specResp{}
}

// specNotYet requires that no answer has arrived on ch yet.
func specNotYet(t *testing.T, ch <-chan specResp) {
	t.Helper()
	select {
	case r := <-ch:
		require.FailNow(t, "request answered while it should be held", "status %d, body %q, err %v", r.Status, r.Body, r.Err)
	default:
	}
}

// specWaitHeld waits until channel has n subscribers, counted both by the
// store (ChannelInfo, what 201/202 and DELETE report) and by the Hub's
// fan-out (attached, so a publish wakes them and Concurrency applies).
func (e *specEnv) specWaitHeld(channel string, n int) {
	e.t.Helper()
	require.Eventually(e.t, func() bool {
		info, err := e.hub.ChannelInfo(context.Background(), channel)
		return err == nil && info.Subscribers == n && specAttached(e.hub, channel) == n
	}, specWait, time.Millisecond, "waiting for %d subscribers on %q", n, channel)
}

// specAttached is how many subscriptions of hub are attached to channel.
func specAttached(hub *Hub, channel string) int {
	sh := hub.shard(channel)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if hc := sh.channels[channel]; hc != nil {
		return hc.refs
	}
	return 0
}

// specNextHeaders returns the request headers that resume after the message
// (or position) of answer r, as the NHPM client loop does: Last-Modified as
// If-Modified-Since, Etag as If-None-Match.
func specNextHeaders(r specResp) http.Header {
	return http.Header{
		"If-Modified-Since": {r.Header.Get("Last-Modified")},
		"If-None-Match":     {r.Header.Get("Etag")},
	}
}

// specIDOf returns the id "T:G" an answer names: the Unix seconds of its
// Last-Modified, ':', its Etag (how NchanSubscriber.js builds ids, I5).
func specIDOf(t *testing.T, r specResp) string {
	t.Helper()
	lm, err := http.ParseTime(r.Header.Get("Last-Modified"))
	require.NoError(t, err, "Last-Modified %q", r.Header.Get("Last-Modified"))
	etag := r.Header.Get("Etag")
	require.NotEmpty(t, etag, "Etag")
	return strconv.FormatInt(lm.Unix(), 10) + ":" + etag
}

// specHTTPDate is the HTTP-date of Unix second sec.
func specHTTPDate(sec int64) string { return time.Unix(sec, 0).UTC().Format(http.TimeFormat) }

// specInfoLines splits a plain-text channel info body into its CRLF-separated lines.
func specInfoLines(body []byte) []string {
	return strings.Split(strings.TrimRight(string(body), "\r\n"), "\r\n")
}
