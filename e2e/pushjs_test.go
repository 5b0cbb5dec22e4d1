package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/pushhub/push"
	"github.com/pushhub/push/pushjs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pushjsPage subscribes with push.js to ?url= over ?transport= and records
// what it sees in window.state (the same "statechange" events as
// page.html, so waitFor works).
const pushjsPage = `<!doctype html><meta charset="utf-8"><script src="push.js"></script><script>
"use strict";
const q = new URLSearchParams(location.search);
const state = window.state = {messages: [], missed: [], states: [], pending: 0};
function changed() { window.dispatchEvent(new Event("statechange")); }
window.sub = pushSubscribe(q.get("url"), {
  transport: q.get("transport"),
  credentials: q.get("credentials") === "1",
  onmessage(data, meta) { state.messages.push({data: data, id: meta.id || null}); changed(); },
  onmissed(meta) { state.missed.push(meta.id || null); changed(); },
  onstate(s) { state.states.push(s); changed(); },
});
</script>`

// TestPushJSMissedAndIDs: push.js tells the page when messages were lost
// while it could not reach the server (the buffer holds two; five were
// published during the cut), over each transport, and every message it
// hands over has the id the publisher got, those of a long-poll catch-up
// answer too.
func TestPushJSMissedAndIDs(t *testing.T) {
	b := startBrowser(t)
	for _, transport := range []string{"longpoll", "longpoll-catchup", "eventsource", "websocket"} {
		t.Run(transport, func(t *testing.T) {
			opts := push.Options{MessageBufferLength: 2}
			if transport == "longpoll-catchup" {
				transport, opts.LongPollCatchUp = "longpoll", true
			}
			hub := push.New(opts)
			mux := http.NewServeMux()
			mux.Handle("/sub", hub.SubscribeHandler())
			mux.Handle("/push.js", pushjs.Handler())
			mux.HandleFunc("/page.html", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				w.Write([]byte(pushjsPage))
			})
			front, cut := serveOn(t, "127.0.0.1:0", mux, hub.Listener)
			back := httptest.NewServer(hub.PublishHandler())
			t.Cleanup(back.Close)
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				hub.Shutdown(ctx)
			})
			pub := &publisher{t: t, url: back.URL, channel: "pjs"}
			pub.publish("m1", "text/plain")
			pub.publish("m2", "text/plain") // both wait: one catch-up answer
			p := b.open(t, front.URL+"/page.html?transport="+transport+"&url=/sub%3Fid%3Dpjs")
			p.waitFor("window.state.messages.length >= 2", 20*time.Second, describeState)

			require.Positive(t, cut.down())
			for i := 3; i <= 7; i++ {
				pub.publish(fmt.Sprintf("m%d", i), "text/plain")
			}
			p.waitFor(`window.state.states.indexOf("retrying") >= 0`, 20*time.Second, describeState)
			cut.resume(t)
			p.waitFor("window.state.messages.length >= 4 && window.state.missed.length >= 1", 20*time.Second, describeState)
			pub.publish("m8", "text/plain")
			p.waitFor("window.state.messages.length >= 5", 20*time.Second, describeState)

			var st struct {
				Messages []struct{ Data, ID string }
				Missed   []*string
			}
			p.eval("window.state", &st)
			var got []string
			for i, m := range st.Messages {
				got = append(got, m.Data)
				assert.NotEmpty(t, m.ID, "message %d has no id", i)
			}
			assert.Equal(t, []string{"m1", "m2", "m6", "m7", "m8"}, got, "m3-m5 fell off the two-message buffer")
			want := map[string]string{}
			for _, s := range pub.sent {
				want[s.data] = s.id
			}
			for _, m := range st.Messages {
				assert.Equal(t, want[m.Data], m.ID, "id of %s", m.Data)
			}
			assert.Len(t, st.Missed, 1, "one gap, told once")
		})
	}
}
