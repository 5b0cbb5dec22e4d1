package browsertest

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pushhub/push"
	"github.com/pushhub/push/pushjs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBrowserPushdDemo drives pushd's demo page (cmd/pushd/demo) in
// Chromium, served as cmd/pushd serves it: the page at "/", the Hub's
// publisher at /pub and subscriber at /sub.
func TestBrowserPushdDemo(t *testing.T) {
	html, err := os.ReadFile("../../../cmd/pushd/demo/index.html")
	require.NoError(t, err)
	page := bytes.Replace(html, []byte(`<script data-inline="push.js"></script>`), append(append([]byte("<script>\n"), pushjs.Script()...), "</script>"...), 1)

	browser := Browser(t)
	type run struct {
		name, transport string
		opts            push.Options
	}
	var runs []run
	for _, tr := range append(Transports(t), "auto") {
		runs = append(runs, run{tr, tr, push.Options{}})
	}
	// Several waiting messages in one long-poll answer (multipart/mixed).
	runs = append(runs, run{"longpoll-catchup", "longpoll", push.Options{LongPollCatchUp: true}})
	// Without WebSocket on the server, "auto" falls back to long-poll.
	runs = append(runs, run{"auto-without-websocket", "auto", push.Options{Transports: push.AllTransports &^ push.TransportWebSocket}})
	for _, r := range runs {
		transport := r.transport
		t.Run(r.name, func(t *testing.T) {
			hub := push.New(r.opts)
			mux := http.NewServeMux()
			mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				w.Write(page)
			})
			mux.Handle("/pub", hub.PublishHandler())
			mux.Handle("/sub", hub.SubscribeHandler())
			srv := httptest.NewServer(mux)
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				hub.Shutdown(ctx)
				srv.Close()
			})
			wait := Wait
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			for _, m := range []*push.Message{
				{Data: []byte("published before you came")},
				{Data: []byte(`{"second": true}`), ContentType: "application/json"},
				{Data: []byte("third\non two lines")},
			} {
				_, _, err := hub.Publish(ctx, "news", m)
				require.NoError(t, err)
			}
			history := []string{"third\non two lines", `{"second": true}`, "published before you came"} // newest first

			a, b := Context(t, browser), Context(t, browser)
			url := srv.URL + "/?id=news&transport=" + transport
			for _, c := range []context.Context{a, b} {
				var got []string
				require.NoError(t, chromedp.Run(c,
					chromedp.Navigate(url),
					chromedp.Poll(`document.querySelectorAll("#messages li").length >= 3`, nil, wait...),
					chromedp.Evaluate(`[...document.querySelectorAll("#messages li .data")].map(e => e.textContent)`, &got),
				))
				assert.Equal(t, history, got)
			}
			var hints []string
			require.NoError(t, chromedp.Run(a, chromedp.Evaluate(`[$("#curl-pub").textContent, $("#curl-sub").textContent]`, &hints)))
			assert.Equal(t, []string{"curl -d hello '" + srv.URL + "/pub?id=news'", "curl -i '" + srv.URL + "/sub?id=news'"}, hints,
				"the curl hints name the server the page came from")
			if r.name == "longpoll-catchup" { // the three came in one answer: push.js reads each part's id
				var metas []string
				require.NoError(t, chromedp.Run(a, chromedp.Evaluate(`[...document.querySelectorAll("#messages li .meta")].map(e => e.textContent)`, &metas)))
				require.Len(t, metas, 3)
				for _, m := range metas {
					assert.Regexp(t, `id \d+:\d+`, m)
				}
				assert.Contains(t, metas[1], "· application/json")
			}
			var result string
			// (ByQuery: the default BySearch also matches text in the
			// page's inlined script.)
			require.NoError(t, chromedp.Run(a,
				chromedp.SendKeys("#message", "hello from the box", chromedp.ByQuery),
				chromedp.Click("#send", chromedp.ByQuery),
				chromedp.Poll(`document.querySelector("#result").textContent.startsWith("Published")`, nil, wait...),
				chromedp.Text("#result", &result, chromedp.ByQuery),
			))
			assert.Contains(t, result, "subscribers")
			for _, c := range []context.Context{a, b} {
				require.NoError(t, chromedp.Run(c,
					chromedp.Poll(`document.querySelector("#messages li .data").textContent === "hello from the box"`, nil, wait...)))
			}
			_, _, err := hub.Publish(ctx, "news", &push.Message{Data: []byte("<i>from Go</i>"), ContentType: "text/html"})
			require.NoError(t, err)
			var first string
			require.NoError(t, chromedp.Run(b,
				chromedp.Poll(`document.querySelector("#messages li .data").textContent === "<i>from Go</i>"`, nil, wait...),
				chromedp.Text("#messages li .data", &first, chromedp.ByQuery),
			))
			assert.Equal(t, "<i>from Go</i>", first, "shown as text")
			want := transport
			switch r.name {
			case "auto":
				want = "websocket"
			case "auto-without-websocket", "longpoll-catchup":
				want = "longpoll"
			}
			var used string
			require.NoError(t, chromedp.Run(b, chromedp.Text("#used", &used, chromedp.ByQuery)))
			assert.Equal(t, "via "+want, used)
			Screenshot(t, b, "pushd-demo-"+r.name)
		})
	}
}
