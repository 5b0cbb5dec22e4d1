// Package pyqrlogin tests app.py, the QR-code login with a Python back end
// and pushd, in headless Chromium.
package pyqrlogin

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pushhub/push/examples/internal/browsertest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// byQuery makes selectors CSS selectors: chromedp's default search also
// matches the page script's text.
var byQuery = chromedp.ByQuery

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// start runs a command until the test ends and returns the first line of
// its output that contains want.
func start(t *testing.T, want string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	out, err := cmd.StderrPipe()
	require.NoError(t, err)
	cmd.Stdout = cmd.Stderr
	require.NoError(t, cmd.Start())
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		found := false
		for sc.Scan() {
			if !found && strings.Contains(sc.Text(), want) {
				found = true
				lines <- sc.Text()
			}
		}
		close(lines)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	select {
	case line, ok := <-lines:
		require.True(t, ok, "%s exited before saying %q", name, want)
		return line
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not say %q within 60s", name, want)
	}
	return ""
}

// setup builds pushd, starts it with -pub-addr and token keys, and starts
// app.py; it returns the app's URL.
func setup(t *testing.T) string {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found")
	}
	dir := t.TempDir()
	pushd := filepath.Join(dir, "pushd")
	build := exec.Command("go", "build", "-o", pushd, ".")
	build.Dir = "../../cmd/pushd"
	out, err := build.CombinedOutput()
	require.NoError(t, err, "building pushd: %s", out)
	keys := map[string]string{}
	for _, k := range []string{"sub.key", "pub.key"} {
		b := make([]byte, 32)
		rand.Read(b)
		keys[k] = filepath.Join(dir, k)
		require.NoError(t, os.WriteFile(keys[k], []byte(hex.EncodeToString(b)+"\n"), 0o600))
	}
	pub, sub, app := freeAddr(t), freeAddr(t), freeAddr(t)
	start(t, "pushd publisher listening", pushd, "-addr", sub, "-pub-addr", pub,
		"-subscribe-key", "@"+keys["sub.key"], "-publish-key", "@"+keys["pub.key"],
		"-allow-origin", "http://"+app)
	start(t, "listening on", python, "app.py", "--addr", app, "--pushd", "http://"+sub, "--pushd-pub", "http://"+pub,
		"--sub-key-file", keys["sub.key"], "--pub-key-file", keys["pub.key"])
	return "http://" + app
}

// TestBrowserPyQRLogin runs the flow in headless Chromium: the PC waits
// (over EventSource, then long-poll), a phone confirms, a second phone's
// confirm is refused, and a third browser is refused the PC's channel.
func TestBrowserPyQRLogin(t *testing.T) {
	browser := browsertest.Browser(t)
	base := setup(t)
	wait := browsertest.Wait
	for _, transport := range []string{"eventsource", "longpoll"} {
		t.Run(transport, func(t *testing.T) {
			pc := browsertest.Context(t, browser)
			phone := browsertest.Context(t, browser)
			phone2 := browsertest.Context(t, browser)
			third := browsertest.Context(t, browser)

			var phoneURL, channel string
			var ok bool
			require.NoError(t, chromedp.Run(pc,
				chromedp.Navigate(base+"/?transport="+transport),
				chromedp.WaitVisible("#waiting", byQuery),
				chromedp.Poll(`document.body.dataset.subscribed === "1"`, nil, wait...),
				chromedp.AttributeValue("#phone-link", "href", &phoneURL, &ok, byQuery),
				chromedp.Evaluate(`document.body.dataset.channel`, &channel),
				chromedp.Evaluate(`window.notReloaded = true`, nil),
			))
			require.True(t, ok)
			require.Contains(t, phoneURL, base+"/m/")
			browsertest.Screenshot(t, pc, "pyqrlogin-pc-"+transport)

			// A third browser: refused the PC's channel without a token
			// (401) and with its own page's token (403).
			var cfgPushd string
			var noToken, ownToken int
			require.NoError(t, chromedp.Run(third,
				chromedp.Navigate(base+"/"),
				chromedp.WaitVisible("#waiting", byQuery),
				chromedp.Evaluate(`cfg.pushd`, &cfgPushd),
				chromedp.Evaluate(`fetch(cfg.pushd + "/sub?id=`+channel+`").then(r => r.status)`, &noToken, browsertest.Await),
				chromedp.Evaluate(`fetch(cfg.pushd + "/sub?id=`+channel+`&token=" + cfg.token).then(r => r.status)`, &ownToken, browsertest.Await),
			))
			assert.Equal(t, 401, noToken, "a third browser without a token")
			assert.Equal(t, 403, ownToken, "a third browser with its own token")

			// Two phones open the link; the first confirms.
			require.NoError(t, chromedp.Run(phone2, chromedp.Navigate(phoneURL), chromedp.WaitVisible("#confirm", byQuery)))
			require.NoError(t, chromedp.Run(phone, chromedp.Navigate(phoneURL), chromedp.WaitVisible("#confirm", byQuery)))
			res, err := chromedp.RunResponse(phone, chromedp.Click("#confirm", byQuery))
			require.NoError(t, err)
			assert.Equal(t, int64(200), res.Status)
			var title string
			require.NoError(t, chromedp.Run(phone, chromedp.Text("#title", &title, byQuery)))
			assert.Equal(t, "Done", title)

			// The PC page is logged in without a reload.
			var user string
			var notReloaded bool
			require.NoError(t, chromedp.Run(pc,
				chromedp.Poll(`!document.querySelector("#loggedin").hidden`, nil, wait...),
				chromedp.Text("#user", &user, byQuery),
				chromedp.Evaluate(`window.notReloaded === true`, &notReloaded),
			))
			assert.Equal(t, "alice", user)
			assert.True(t, notReloaded)
			browsertest.Screenshot(t, pc, "pyqrlogin-pc-loggedin-"+transport)

			// The second phone's confirm is refused.
			res, err = chromedp.RunResponse(phone2, chromedp.Click("#confirm", byQuery))
			require.NoError(t, err)
			assert.Equal(t, int64(410), res.Status)
			require.NoError(t, chromedp.Run(phone2, chromedp.Text("#title", &title, byQuery)))
			assert.Equal(t, "QR code already used", title)

			// The session cookie works.
			var me string
			require.NoError(t, chromedp.Run(pc, chromedp.Evaluate(`fetch("/me").then(r => r.text())`, &me, browsertest.Await)))
			assert.Contains(t, me, `"alice"`)
		})
	}
}
