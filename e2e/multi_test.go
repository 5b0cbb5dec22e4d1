package e2e

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pushhub/push"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNchanSubscriberMultiChannel: one NchanSubscriber.js subscription to two
// channels (/sub?id=a&id=b) over each transport, across a cut during which
// both channels get messages. The page must see every message of both
// channels once, in each channel's order, and each id NchanSubscriber.js
// reports must be the compound id of docs/protocol.md (T:E1,E2 with the source
// channel's entry in brackets) for the position after that message: that id
// is what the client resumes from.
func TestNchanSubscriberMultiChannel(t *testing.T) {
	b := startBrowser(t)
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			channels := []string{"e2e-multi-a-" + transport, "e2e-multi-b-" + transport}
			e := newEnv(t, channels[0], false, false, push.Options{})
			q := url.Values{}
			for _, c := range channels {
				q.Add("id", c)
			}
			e.subURL = "/sub?" + q.Encode()
			pubs := []*publisher{e.pub, {t: t, url: e.pub.url, channel: channels[1]}}
			n := 0
			publish := func(ch int) {
				n++
				pubs[ch].publish(fmt.Sprintf("%s: message %d", channels[ch], n), "text/plain")
			}

			publish(0)
			publish(1)
			p := e.open(t, b, transport)
			waitMessages(p, 2)
			publish(1)
			publish(0)
			waitMessages(p, 4)

			cut := e.cut.down()
			require.Positive(t, cut)
			publish(0)
			publish(1)
			publish(1)
			p.waitFor("window.state.disconnects >= 1", 20*time.Second, describeState)
			e.cut.resume(t)
			waitMessages(p, 7)
			publish(0) // any repeat would arrive before this one
			waitMessages(p, 8)

			var st pageState
			p.eval("window.state", &st)
			t.Logf("page saw %+v", st.Messages)
			require.Len(t, st.Messages, 8)

			// Per channel: every message once, in order.
			for ch, pub := range pubs {
				var want, got []string
				for _, s := range pub.sent {
					want = append(want, s.data)
				}
				for _, m := range st.Messages {
					if strings.HasPrefix(m.Data, channels[ch]+":") {
						got = append(got, m.Data)
					}
				}
				assert.Equal(t, want, got, "messages of %s", channels[ch])
			}

			// The compound id after each message, from the ids of the
			// messages as the publisher reported them.
			ids := map[string]string{}
			for _, pub := range pubs {
				for _, s := range pub.sent {
					ids[s.data] = s.id
				}
			}
			pos := make([]string, len(channels)) // last id seen per channel
			for i, m := range st.Messages {
				src := 0
				if strings.HasPrefix(m.Data, channels[1]+":") {
					src = 1
				}
				pos[src] = ids[m.Data]
				assert.Equal(t, compoundID(pos, src), m.ID, "id of message %d (%q)", i, m.Data)
			}
		})
	}
}

// compoundID is the id of a several-channel position (docs/protocol.md): T:E1,E2
// where T is the time of the source channel's id, each entry is G when the
// channel's time is T, t.G otherwise, - for no position; the source
// channel's entry in brackets.
func compoundID(pos []string, src int) string {
	t := strings.SplitN(pos[src], ":", 2)[0]
	var entries []string
	for i, id := range pos {
		var e string
		switch {
		case id == "":
			e = "-"
		default:
			tg := strings.SplitN(id, ":", 2)
			if tg[0] == t {
				e = tg[1]
			} else {
				e = tg[0] + "." + tg[1]
			}
		}
		if i == src {
			e = "[" + e + "]"
		}
		entries = append(entries, e)
	}
	return t + ":" + strings.Join(entries, ",")
}
