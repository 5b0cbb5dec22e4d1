// Package browsertest starts a real headless Chromium for the examples'
// end-to-end tests, driven with github.com/chromedp/chromedp.
//
// Chromium is found at $CHROMIUM (if set), else /usr/bin/chromium or on $PATH as
// chromium / chromium-browser / google-chrome. Without one, tests are skipped
// with a message saying how to install it, unless CI=true, where they fail.
package browsertest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
	"github.com/pushhub/push"
)

// Timeout bounds a whole browser test.
const Timeout = 2 * time.Minute

// executable returns the Chromium binary to use, or "".
func executable() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return ""
		}
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Browser starts a headless Chromium with a fresh profile and returns a
// context for it; it is closed when the test ends.
func Browser(t *testing.T) context.Context {
	t.Helper()
	exe := executable()
	if exe == "" {
		msg := "headless Chromium not found: install it (Debian: apt-get install -y --no-install-recommends chromium) or set CHROMIUM=/path/to/chrome"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		// Several windows are driven at once: none may be throttled for
		// being in the background.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.WindowSize(1000, 800),
	)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		// Close the browser gracefully first, so that its held requests
		// end before the test's servers close.
		chromedp.Cancel(browser)
		cancelBrowser()
	})
	if err := chromedp.Run(browser); err != nil {
		t.Fatalf("starting %s: %v", exe, err)
	}
	return browser
}

// Context returns a new browser context (a separate cookie jar and cache,
// like another device) in browser, with one tab.
func Context(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	// Headless Chromium refuses a new tab in a new browser context that has
	// no window, so create the context and a window for it here rather
	// than with chromedp.WithNewBrowserContext.
	var tid target.ID
	var bid cdp.BrowserContextID
	err := chromedp.Run(browser, chromedp.ActionFunc(func(ctx context.Context) error {
		exec := cdp.WithExecutor(ctx, chromedp.FromContext(ctx).Browser)
		var err error
		if bid, err = target.CreateBrowserContext().WithDisposeOnDetach(true).Do(exec); err != nil {
			return err
		}
		tid, err = target.CreateTarget("about:blank").WithBrowserContextID(bid).WithNewWindow(true).Do(exec)
		return err
	}))
	if err != nil {
		t.Fatalf("new browser context: %v", err)
	}
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithTargetID(tid))
	t.Cleanup(func() {
		cancel()
		chromedp.Run(browser, chromedp.ActionFunc(func(ctx context.Context) error {
			return target.DisposeBrowserContext(bid).Do(cdp.WithExecutor(ctx, chromedp.FromContext(ctx).Browser))
		}))
	})
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("attaching to the new browser context: %v", err)
	}
	return ctx
}

// Tab returns a new tab (in a window of its own) in the browser context of
// ctx (one made by Context): it shares cookies and storage with ctx's tab.
func Tab(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	c := chromedp.FromContext(ctx)
	var tid target.ID
	err := chromedp.Run(ctx, chromedp.ActionFunc(func(ctx context.Context) error {
		exec := cdp.WithExecutor(ctx, c.Browser)
		info, err := target.GetTargetInfo().WithTargetID(c.Target.TargetID).Do(exec)
		if err != nil {
			return err
		}
		// A window of its own, not a background tab: background tabs get
		// no animation frames, which chromedp.Poll waits on.
		tid, err = target.CreateTarget("about:blank").WithBrowserContextID(info.BrowserContextID).WithNewWindow(true).Do(exec)
		return err
	}))
	if err != nil {
		t.Fatalf("new tab: %v", err)
	}
	tab, cancel := chromedp.NewContext(ctx, chromedp.WithTargetID(tid))
	t.Cleanup(cancel)
	if err := chromedp.Run(tab); err != nil {
		t.Fatalf("attaching to the new tab: %v", err)
	}
	return tab
}

// Await makes chromedp.Evaluate wait for the promise the expression returns.
func Await(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }

// Screenshot saves a screenshot of the tab as $SCREENSHOTS/name.png when the
// SCREENSHOTS environment variable names a directory (for looking at the
// pages during development); otherwise it does nothing.
func Screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("SCREENSHOTS")
	if dir == "" {
		return
	}
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	name = strings.ReplaceAll(name, "/", "_")
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Error(err)
	}
}

// Transports lists the subscriber transports the push library in this
// build serves: "longpoll" always, "eventsource" and "websocket" once they
// exist. It asks a throw-away Hub over loopback.
func Transports(t *testing.T) []string {
	t.Helper()
	hub := push.New(push.Options{})
	srv := httptest.NewServer(hub.SubscribeHandler())
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hub.Shutdown(ctx)
		srv.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, _, err := hub.Publish(ctx, "probe", &push.Message{Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	probe := func(h http.Header) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/?id=probe", nil)
		for k, v := range h {
			req.Header[k] = v
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	list := []string{"longpoll"}
	if res := probe(http.Header{"Accept": {"text/event-stream"}}); strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		list = append(list, "eventsource")
	}
	if res := probe(http.Header{
		"Connection":            {"Upgrade"},
		"Upgrade":               {"websocket"},
		"Sec-Websocket-Version": {"13"},
		"Sec-Websocket-Key":     {"dGhlIHNhbXBsZSBub25jZQ=="},
	}); res.StatusCode == http.StatusSwitchingProtocols {
		list = append(list, "websocket")
	}
	return list
}

// Wait are the options for chromedp.Poll in these tests: give up after 20s,
// and poll on a timer rather than on animation frames, which a page that is
// not in front may not get.
var Wait = []chromedp.PollOption{
	chromedp.WithPollingTimeout(20 * time.Second),
	chromedp.WithPollingInterval(20 * time.Millisecond),
}
