package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pushhub/push"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// transports are NchanSubscriber.js's names for the transports it can use.
var transports = []string{"longpoll", "eventsource", "websocket"}

// seen is a message as the page's NchanSubscriber reported it ("" for
// null).
type seen struct {
	Data        string `json:"data"`
	ID          string `json:"id"`
	ContentType string `json:"contentType"`
}

// pageState is window.state of testdata/page.html.
type pageState struct {
	Messages      []seen   `json:"messages"`
	Transports    []string `json:"transports"`
	Connects      int      `json:"connects"`
	Disconnects   int      `json:"disconnects"`
	Errors        []string `json:"errors"`
	LastMessageID *string  `json:"lastMessageId"`
	StartID       *string  `json:"startId"`
}

// describeState is the JavaScript that summarises the page for failures.
const describeState = `JSON.stringify(window.state)`

// sent is a message the test published and the id the publisher gave it.
type sent struct {
	data, contentType, id string
}

// publisher publishes over HTTP to the app's back end (the hub's
// PublishHandler on a server of its own: the browser never reaches it).
type publisher struct {
	t       *testing.T
	url     string // the PublishHandler's URL
	channel string
	sent    []sent
}

// publish posts one message and records the id the channel info reports.
func (p *publisher) publish(data, contentType string) {
	p.t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.url+"?id="+url.QueryEscape(p.channel), strings.NewReader(data))
	require.NoError(p.t, err)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(p.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(p.t, err)
	require.Contains(p.t, []int{http.StatusCreated, http.StatusAccepted}, resp.StatusCode, "publish: %s", body)
	var info struct {
		LastMessageID string `json:"last_message_id"`
	}
	require.NoError(p.t, json.Unmarshal(body, &info), "publish answer %q", body)
	_, err = push.ParseMessageID(info.LastMessageID)
	require.NoError(p.t, err, "publish answer %q", body)
	p.sent = append(p.sent, sent{data: data, contentType: contentType, id: info.LastMessageID})
}

// payload returns the i-th test message: plain ASCII, UTF-8, several lines,
// JSON with its own content type.
func payload(i int) (data, contentType string) {
	switch i % 4 {
	case 1:
		return fmt.Sprintf("message %d: grüße ✓", i), "text/plain; charset=utf-8"
	case 2:
		return fmt.Sprintf("message %d\nsecond line\nthird line", i), "text/plain; charset=utf-8"
	case 3:
		return fmt.Sprintf(`{"message":%d}`, i), "application/json"
	}
	return fmt.Sprintf("message %d", i), "text/plain; charset=utf-8"
}

// env is a hub behind real HTTP servers, as an app would deploy it.
type env struct {
	hub     *push.Hub
	pub     *publisher
	cut     *cutListener // the listener the page's subscriber connects to
	pageURL string       // page.html
	subURL  string       // the subscriber URL the page uses
}

// newEnv starts the servers. Same origin: one server on 127.0.0.1 serves the
// page, NchanSubscriber.js and /sub. Cross-origin: the page and script come
// from a server on 127.0.0.2 (another origin) and /sub lives on 127.0.0.1;
// allowOrigin says whether the hub's AllowedOrigins names the page's origin.
// opts are the hub's other options.
func newEnv(t *testing.T, channel string, crossOrigin, allowOrigin bool, opts push.Options) *env {
	t.Helper()
	e := &env{}
	opts.MessageBufferLength = 100
	var static *httptest.Server
	if crossOrigin {
		static, _ = serve(t, "127.0.0.2:0", staticFiles(t))
		if allowOrigin {
			opts.AllowedOrigins = []string{static.URL}
		}
	}
	// Served as an app serves: through the Hub's Listener, which parks
	// waiting long-polls and gives the connection back to the app's
	// http.Server after the answer.
	e.hub = push.New(opts)
	mux := http.NewServeMux()
	mux.Handle("/sub", e.hub.SubscribeHandler())
	if !crossOrigin {
		mux.Handle("/", staticFiles(t))
	}
	front, cut := serveOn(t, "127.0.0.1:0", mux, e.hub.Listener)
	back := httptest.NewServer(e.hub.PublishHandler())
	t.Cleanup(back.Close)
	t.Cleanup(func() {
		// Runs before the servers close: ends every subscription.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.hub.Shutdown(ctx); err != nil {
			t.Errorf("hub shutdown: %v", err)
		}
	})
	e.cut = cut
	e.pub = &publisher{t: t, url: back.URL, channel: channel}
	if crossOrigin {
		e.pageURL = static.URL + "/page.html"
		e.subURL = front.URL + "/sub?id=" + url.QueryEscape(channel)
	} else {
		e.pageURL = front.URL + "/page.html"
		e.subURL = "/sub?id=" + url.QueryEscape(channel)
	}
	return e
}

// pageURLFor is the page subscribing with transport.
func (e *env) pageURLFor(transport string) string {
	q := url.Values{"transport": {transport}, "url": {e.subURL}}
	return e.pageURL + "?" + q.Encode()
}

// open opens the page subscribing with transport.
func (e *env) open(t *testing.T, b *browser, transport string) *page {
	t.Helper()
	return b.open(t, e.pageURLFor(transport))
}

// waitMessages waits until the page has seen at least n messages.
func waitMessages(p *page, n int) {
	p.t.Helper()
	p.waitFor(fmt.Sprintf("window.state && window.state.messages.length >= %d && window.state.pending == 0", n), 20*time.Second, describeState)
}

// TestNchanSubscriber runs NchanSubscriber.js in Chromium against a hub over
// each transport, same-origin and cross-origin with AllowedOrigins: the page
// gets the buffered messages, then live ones, then the test cuts the page's
// connections and publishes while the page cannot reconnect; once it can,
// the page must have every message exactly once, in order, with the ids the
// publisher reported (for long-poll, built by the client from our
// Last-Modified and Etag headers).
//
// The longpoll-catchup runs turn Options.LongPollCatchUp on: a long-poll
// that finds several messages waiting (the buffered ones when the page
// loads, the ones published during the cut) gets them in one
// multipart/mixed answer, which NchanSubscriber.js splits; it reports the id
// only with the last part of an answer.
func TestNchanSubscriber(t *testing.T) {
	b := startBrowser(t)
	for _, origin := range []string{"same-origin", "cross-origin"} {
		for _, transport := range append(transports, "longpoll-catchup") {
			t.Run(origin+"/"+transport, func(t *testing.T) {
				testResume(t, b, transport, origin == "cross-origin")
			})
		}
	}
}

func testResume(t *testing.T, b *browser, transport string, crossOrigin bool) {
	var opts push.Options
	catchUp := transport == "longpoll-catchup"
	if catchUp {
		transport = "longpoll"
		opts.LongPollCatchUp = true
	}
	e := newEnv(t, "e2e-"+transport, crossOrigin, true, opts)
	next := 0
	publish := func(n int) {
		for range n {
			next++
			e.pub.publish(payload(next))
		}
	}

	publish(2) // buffered before the page subscribes: it starts at the oldest
	p := e.open(t, b, transport)
	waitMessages(p, 2)

	publish(2) // live
	waitMessages(p, 4)

	// Cut: the server drops every connection and refuses new ones until
	// resume, so what is published now is published while the page has no
	// connection to the hub.
	cutConns := e.cut.down()
	require.Positive(t, cutConns, "no connection to cut: is the page subscribed?")
	publish(3)
	p.waitFor("window.state.disconnects >= 1", 20*time.Second, describeState)
	e.cut.resume(t)
	waitMessages(p, 7)

	publish(2) // live again after the resume
	waitMessages(p, 9)
	// A last message: any repeat of an earlier one would arrive before it.
	publish(1)
	waitMessages(p, 10)

	var st pageState
	p.eval("window.state", &st)
	t.Logf("page saw %d messages over %v; %d connects, %d disconnects, errors %q; %d connections cut",
		len(st.Messages), st.Transports, st.Connects, st.Disconnects, st.Errors, cutConns)

	want := expect(transport, e.pub.sent)
	if catchUp {
		// Only the last part of a multipart answer carries an id.
		idless := 0
		for i := range st.Messages {
			if i < len(want) && st.Messages[i].ID == "" {
				want[i].ID = ""
				idless++
			}
		}
		assert.Positive(t, idless, "no multipart/mixed catch-up answer reached the page")
	}
	assert.Equal(t, want, st.Messages, "messages the page saw (in order, once each, with our ids)")
	require.NotEmpty(t, st.Transports)
	for _, tr := range st.Transports {
		assert.Equal(t, transport, tr, "NchanSubscriber.js used another transport")
	}
	assert.GreaterOrEqual(t, st.Connects, 2, "the page should have connected again after the cut")
	if assert.NotNil(t, st.LastMessageID) {
		assert.Equal(t, e.pub.sent[len(e.pub.sent)-1].id, *st.LastMessageID, "NchanSubscriber lastMessageId")
	}
}

// TestNchanSubscriberOriginRefused: without AllowedOrigins a page from
// another origin gets nothing over any transport (S11): the browser reports
// the refusal to NchanSubscriber.js and no message reaches the page.
func TestNchanSubscriberOriginRefused(t *testing.T) {
	b := startBrowser(t)
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			e := newEnv(t, "e2e-refused-"+transport, true, false, push.Options{})
			e.pub.publish(payload(1))
			p := e.open(t, b, transport)
			p.waitFor("window.state && window.state.disconnects + window.state.errors.length >= 1", 20*time.Second, describeState)
			var st pageState
			p.eval("window.state", &st)
			assert.Empty(t, st.Messages, "a refused cross-origin page must not receive messages")
			t.Logf("page state: %d disconnects, errors %q", st.Disconnects, st.Errors)
		})
	}
}

// TestNchanSubscriberReload: with reconnect: "persist" NchanSubscriber.js
// keeps the last id in localStorage; a page loaded again later resumes from
// it (long-poll sends it as a request header Etag: T:G, WebSocket and
// EventSource as ?last_event_id=T:G) and gets exactly the messages published
// while no page was open, not the buffer again.
func TestNchanSubscriberReload(t *testing.T) {
	b := startBrowser(t)
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			e := newEnv(t, "e2e-reload-"+transport, false, false, push.Options{})
			pageURL := e.pageURLFor(transport) + "&reconnect=persist"
			next := 0
			publish := func(n int) {
				for range n {
					next++
					e.pub.publish(payload(next))
				}
			}
			publish(2)
			p := b.open(t, pageURL)
			waitMessages(p, 2)
			p.run(chromedp.Navigate("about:blank")) // the page unloads
			// No connection is left: every subscriber has gone.
			requireNoSubscribers(t, e, "e2e-reload-"+transport)

			publish(3) // while no page is open
			p.run(chromedp.Navigate(pageURL))
			waitMessages(p, 3)
			publish(1) // any repeat would arrive before this one
			waitMessages(p, 4)

			var st pageState
			p.eval("window.state", &st)
			if assert.NotNil(t, st.StartID, "the reloaded page had no stored id") {
				assert.Equal(t, e.pub.sent[1].id, *st.StartID, "stored id")
			}
			assert.Equal(t, expect(transport, e.pub.sent[2:]), st.Messages, "messages the reloaded page saw")
		})
	}
}

// requireNoSubscribers waits (bounded) until the hub counts no subscriber of
// channel: there is no event for "the browser closed its connection".
func requireNoSubscribers(t *testing.T, e *env, channel string) {
	t.Helper()
	require.Eventually(t, func() bool {
		info, err := e.hub.ChannelInfo(context.Background(), channel)
		return err == nil && info.Subscribers == 0
	}, 10*time.Second, 10*time.Millisecond, "the page's subscriber connection did not end")
}

// expect is what the page should report for the messages sent, over
// transport.
func expect(transport string, sent []sent) []seen {
	want := make([]seen, len(sent))
	for i, s := range sent {
		want[i] = seen{Data: s.data, ID: s.id}
		if transport != "eventsource" { // NchanSubscriber.js's EventSource reports no content type
			want[i].ContentType = s.contentType
		}
	}
	return want
}
