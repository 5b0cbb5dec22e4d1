package main

import (
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pushhub/push/examples/internal/browsertest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBrowserQRLogin runs the whole flow in headless Chromium: the PC and
// two phones are separate browser contexts (separate cookie jars), and a
// third context tries to listen in.
func TestBrowserQRLogin(t *testing.T) {
	browser := browsertest.Browser(t)
	available := browsertest.Transports(t)
	for _, transport := range append(available, "auto") {
		t.Run(transport, func(t *testing.T) {
			_, srv := startApp(t, nil)
			pc := browsertest.Context(t, browser)
			phone := browsertest.Context(t, browser)
			phone2 := browsertest.Context(t, browser)
			third := browsertest.Context(t, browser)
			wait := browsertest.Wait

			// The PC shows a QR code; its phone URL is next to it.
			var phoneURL, channel string
			var ok bool
			require.NoError(t, chromedp.Run(pc,
				chromedp.Navigate(srv.URL+"/?transport="+transport),
				chromedp.WaitVisible("#waiting"),
				chromedp.Poll(`document.querySelector("#qr").naturalWidth > 100`, nil, wait...),
				chromedp.AttributeValue("#qr-link", "data-url", &phoneURL, &ok),
				chromedp.Evaluate(`document.body.dataset.channel`, &channel),
				chromedp.Evaluate(`window.notReloaded = true`, nil),
			))
			require.True(t, ok)
			require.Contains(t, phoneURL, srv.URL+"/m/")
			require.NotEmpty(t, channel)
			browsertest.Screenshot(t, pc, "qrlogin-pc-"+transport)
			if transport == "auto" { // the page picks the WebSocket where there is one
				want := "longpoll"
				if slices.Contains(available, "websocket") {
					want = "websocket"
				}
				var used string
				require.NoError(t, chromedp.Run(pc, chromedp.Poll(`document.querySelector("#transport").textContent === "`+want+`"`, nil, wait...),
					chromedp.Text("#transport", &used)))
				assert.Equal(t, want, used)
			}

			// Another browser cannot subscribe to the PC's channel.
			var status int
			require.NoError(t, chromedp.Run(third,
				chromedp.Navigate(srv.URL+"/"),
				chromedp.WaitVisible("#waiting"),
				chromedp.Evaluate(`fetch("/sub?id=`+channel+`").then(r => r.status)`, &status, browsertest.Await),
			))
			assert.Equal(t, 403, status, "a third browser subscribing to the PC's channel")

			// Two phones open the QR's URL; the first confirms.
			var title string
			require.NoError(t, chromedp.Run(phone2,
				chromedp.Navigate(phoneURL),
				chromedp.WaitVisible("#confirm"),
			))
			require.NoError(t, chromedp.Run(phone,
				chromedp.Navigate(phoneURL),
				chromedp.WaitVisible("#confirm"),
			))
			browsertest.Screenshot(t, phone, "qrlogin-phone-"+transport)
			res, err := chromedp.RunResponse(phone, chromedp.Click("#confirm"))
			require.NoError(t, err)
			assert.Equal(t, int64(200), res.Status)
			require.NoError(t, chromedp.Run(phone, chromedp.Text("#title", &title)))
			assert.Equal(t, "Done", title)

			// The PC page becomes logged in, without a reload.
			var heading, user string
			var notReloaded bool
			require.NoError(t, chromedp.Run(pc,
				chromedp.Poll(`!document.querySelector("#loggedin").hidden`, nil, wait...),
				chromedp.WaitVisible("#loggedin"),
				chromedp.Text("#loggedin h1", &heading),
				chromedp.Text("#user", &user),
				chromedp.Evaluate(`window.notReloaded === true`, &notReloaded),
			))
			assert.Contains(t, heading, "logged in")
			assert.Equal(t, "alice", user)
			assert.True(t, notReloaded, "the PC page was reloaded")
			browsertest.Screenshot(t, pc, "qrlogin-pc-loggedin-"+transport)

			// The second phone's confirm, with the same QR, is refused.
			res, err = chromedp.RunResponse(phone2, chromedp.Click("#confirm"))
			require.NoError(t, err)
			assert.Equal(t, int64(410), res.Status)
			var text string
			require.NoError(t, chromedp.Run(phone2, chromedp.Text("#title", &title), chromedp.Text("#text", &text)))
			assert.Equal(t, "QR code already used", title)
			assert.Contains(t, text, "already used")
			browsertest.Screenshot(t, phone2, "qrlogin-phone-reused-"+transport)

			// The session survives a reload: the cookie was set by the app.
			require.NoError(t, chromedp.Run(pc,
				chromedp.Reload(),
				chromedp.WaitVisible("#loggedin"),
				chromedp.Text("#user", &user),
			))
			assert.Equal(t, "alice", user)
		})
	}
}

// TestBrowserQRExpired lets a login expire (the app's lifetime shortened to
// a second): the PC page says so and offers a new code; the phone opening
// the old QR gets a clear page.
func TestBrowserQRExpired(t *testing.T) {
	browser := browsertest.Browser(t)
	a, srv := startApp(t, nil)
	a.loginTTL = time.Second
	pc := browsertest.Context(t, browser)
	phone := browsertest.Context(t, browser)
	wait := browsertest.Wait

	var oldURL, why string
	var ok bool
	require.NoError(t, chromedp.Run(pc,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible("#waiting"),
		chromedp.AttributeValue("#qr-link", "data-url", &oldURL, &ok),
		chromedp.WaitVisible("#expired"),
		chromedp.Text("#expired-why", &why),
	))
	require.True(t, ok)
	assert.Equal(t, "Codes are valid for 1 second.", why)
	browsertest.Screenshot(t, pc, "qrlogin-pc-expired")

	res, err := chromedp.RunResponse(phone, chromedp.Navigate(oldURL))
	require.NoError(t, err)
	assert.Equal(t, int64(410), res.Status)
	var title string
	require.NoError(t, chromedp.Run(phone, chromedp.Text("#title", &title)))
	assert.Equal(t, "QR code expired", title)

	// "Show a new code" starts a new login with a new QR.
	a.mu.Lock()
	a.loginTTL = loginTTL
	a.mu.Unlock()
	var newURL string
	require.NoError(t, chromedp.Run(pc,
		chromedp.Click("#again"),
		chromedp.WaitVisible("#waiting"),
		chromedp.Poll(`document.querySelector("#qr-link").dataset.url !== `+"`"+oldURL+"`", nil, wait...),
		chromedp.AttributeValue("#qr-link", "data-url", &newURL, &ok),
	))
	assert.NotEqual(t, oldURL, newURL)
	res, err = chromedp.RunResponse(phone, chromedp.Navigate(newURL))
	require.NoError(t, err)
	assert.Equal(t, int64(200), res.Status)
}
