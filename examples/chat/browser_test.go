package main

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pushhub/push/examples/internal/browsertest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBrowserChat runs the chat in headless Chromium: alice and bob are
// separate browser contexts in one room, alice also has a second tab, and
// carol joins late.
func TestBrowserChat(t *testing.T) {
	browser := browsertest.Browser(t)
	for _, transport := range append(browsertest.Transports(t), "auto") {
		t.Run(transport, func(t *testing.T) {
			_, srv := startApp(t, nil)
			page := srv.URL + "/?room=test&transport=" + transport
			wait := browsertest.Wait

			join := func(ctx context.Context, nick string) {
				t.Helper()
				require.NoError(t, chromedp.Run(ctx,
					chromedp.Navigate(page),
					chromedp.WaitVisible("#join-form"),
					chromedp.SendKeys("#nick", nick),
				))
				browsertest.Screenshot(t, ctx, "chat-join-"+nick+"-"+transport)
				require.NoError(t, chromedp.Run(ctx,
					chromedp.Click("#join-button"),
					chromedp.WaitVisible("#chat"),
				))
			}
			say := func(ctx context.Context, text string) {
				t.Helper()
				require.NoError(t, chromedp.Run(ctx,
					chromedp.SendKeys("#text", text),
					chromedp.Click("#send"),
					chromedp.Poll(`document.querySelector("#text").value === ""`, nil, wait...), // accepted
				))
			}
			// sees waits until the page lists n messages and returns them as
			// "nick: text".
			sees := func(ctx context.Context, n int) []string {
				t.Helper()
				var got []string
				require.NoError(t, chromedp.Run(ctx,
					chromedp.Poll(`document.querySelectorAll("#messages li").length >= `+strconv.Itoa(n), nil, wait...),
					chromedp.Evaluate(`[...document.querySelectorAll("#messages li")].map(li =>
						li.querySelector(".nick").textContent + ": " + li.querySelector(".text").textContent)`, &got),
				))
				return got
			}

			alice := browsertest.Context(t, browser)
			bob := browsertest.Context(t, browser)
			join(alice, "alice")
			// The count is right as soon as the page has joined, not at
			// the next refresh five seconds later.
			soon := []chromedp.PollOption{chromedp.WithPollingTimeout(2 * time.Second), chromedp.WithPollingInterval(20 * time.Millisecond)}
			require.NoError(t, chromedp.Run(alice,
				chromedp.Poll(`document.querySelector("#members").dataset.count === "1"`, nil, soon...)), "alice alone")
			join(bob, "bob")
			require.NoError(t, chromedp.Run(bob,
				chromedp.Poll(`document.querySelector("#members").dataset.count === "2"`, nil, soon...)), "bob joins alice")

			say(alice, "hello from alice")
			assert.Equal(t, []string{"alice: hello from alice"}, sees(bob, 1))
			say(bob, "hi alice, <b>this</b> is text")
			want := []string{"alice: hello from alice", "bob: hi alice, <b>this</b> is text"}
			assert.Equal(t, want, sees(alice, 2))

			var bold int
			require.NoError(t, chromedp.Run(alice, chromedp.Evaluate(`document.querySelectorAll("#messages b").length`, &bold)))
			assert.Zero(t, bold, "a message's HTML must show as text")

			// A second tab of alice's joins by itself (nickname remembered),
			// gets the history, and receives new messages like the first.
			alice2 := browsertest.Tab(t, alice)
			require.NoError(t, chromedp.Run(alice2, chromedp.Navigate(page), chromedp.WaitVisible("#chat")))
			assert.Equal(t, want, sees(alice2, 2))
			say(alice2, "typing from my other tab")
			want = append(want, "alice: typing from my other tab")
			assert.Equal(t, want, sees(alice, 3))
			assert.Equal(t, want, sees(bob, 3))
			assert.Equal(t, want, sees(alice2, 3))

			// The member count (channel info) reaches the three pages.
			require.NoError(t, chromedp.Run(bob,
				chromedp.Poll(`+document.querySelector("#members").dataset.count >= 3`, nil, wait...)))

			// carol joins late and sees the history.
			carol := browsertest.Context(t, browser)
			join(carol, "carol")
			assert.Equal(t, want, sees(carol, 3))
			browsertest.Screenshot(t, alice, "chat-alice-"+transport)

			// Sending too fast is refused with a message on the page.
			var limited bool
			require.NoError(t, chromedp.Run(carol, chromedp.Evaluate(`(async () => {
				for (let i = 0; i < 8; i++) {
					const r = await fetch("/rooms/test/messages", {method: "POST", headers: {"Content-Type": "application/json"},
						body: JSON.stringify({nick: "carol", text: "flood " + i})});
					if (r.status === 429) return true;
				}
				return false;
			})()`, &limited, browsertest.Await)))
			require.True(t, limited, "the app never answered 429")
			var errText string
			require.NoError(t, chromedp.Run(carol,
				chromedp.SendKeys("#text", "one more"),
				chromedp.Click("#send"),
				chromedp.WaitVisible("#error"),
				chromedp.Text("#error", &errText),
			))
			assert.Contains(t, errText, "too fast")
			browsertest.Screenshot(t, carol, "chat-carol-"+transport)
		})
	}
}
