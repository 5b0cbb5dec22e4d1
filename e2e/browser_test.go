package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// nchanJS is the client under test, installed by `npm ci` in this directory.
const nchanJS = "node_modules/nchan/NchanSubscriber.js"

// requirements returns the Chromium binary, or skips the test saying how to
// enable it (fails instead when CI=true: CI must run the browser tests).
func requirements(t *testing.T) string {
	t.Helper()
	var missing []string
	bin := os.Getenv("CHROMIUM")
	if bin == "" {
		bin = "/usr/bin/chromium"
		if _, err := os.Stat(bin); err != nil {
			if p, err := exec.LookPath("chromium"); err == nil {
				bin = p
			}
		}
	}
	if _, err := os.Stat(bin); err != nil {
		missing = append(missing, "Chromium ("+bin+" not found: apt-get install -y --no-install-recommends chromium, or set CHROMIUM)")
	}
	if _, err := os.Stat(nchanJS); err != nil {
		missing = append(missing, "the npm package nchan ("+nchanJS+" not found: cd e2e && npm ci)")
	}
	if len(missing) > 0 {
		msg := "browser test needs " + strings.Join(missing, " and ")
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

// browser is one headless Chromium process; each test page is a tab of it.
type browser struct {
	ctx context.Context // the browser's context: new tabs derive from it

	mu     sync.Mutex
	output bytes.Buffer // Chromium's stdout and stderr
}

func (b *browser) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.output.Write(p)
}

// startBrowser launches headless Chromium for the duration of t, with a
// fresh profile in a temporary directory and its background network use
// (updates, sync, QUIC probes) turned off: the machines that run the tests
// reach loopback only.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	bin := requirements(t)
	profile := t.TempDir() // registered first, so removed after Chromium exited
	b := &browser{}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(profile),
		chromedp.WSURLReadTimeout(20 * time.Second),
		chromedp.CombinedOutput(b),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	var copts []chromedp.ContextOption
	if os.Getenv("E2E_DEBUG") != "" { // logs every DevTools protocol message
		copts = append(copts, chromedp.WithDebugf(func(format string, args ...any) { fmt.Fprintf(b, format+"\n", args...) }))
	}
	bctx, cancelBrowser := chromedp.NewContext(actx, copts...)
	t.Cleanup(func() {
		// Close the browser gracefully (it flushes and releases its profile)
		// and wait for it to exit, so that the profile can be removed.
		if err := chromedp.Cancel(bctx); err != nil {
			t.Logf("closing chromium: %v", err)
		}
		cancelBrowser()
		cancelAlloc()
		if t.Failed() {
			b.mu.Lock()
			t.Logf("chromium output:\n%s", b.output.String())
			b.mu.Unlock()
		}
	})
	// Start the browser now (with the browser's own context: the first Run
	// ties the process to it), so that a broken installation fails here.
	// Chromium that prints no DevTools address within 20s is an error.
	if err := chromedp.Run(bctx); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	b.ctx = bctx
	return b
}

// page is one browser tab.
type page struct {
	t   *testing.T
	ctx context.Context

	mu  sync.Mutex
	log []string // console output and uncaught exceptions
}

// open opens url in a new tab that lives until the end of t. The tab's
// console output is logged when t fails.
func (b *browser) open(t *testing.T, url string) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	p := &page{t: t, ctx: ctx}
	chromedp.ListenTarget(ctx, func(ev any) {
		var line string
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value))
			}
			line = fmt.Sprintf("console.%s %s", ev.Type, strings.Join(args, " "))
		case *runtime.EventExceptionThrown:
			line = "exception: " + ev.ExceptionDetails.Error()
		default:
			return
		}
		p.mu.Lock()
		p.log = append(p.log, line)
		p.mu.Unlock()
	})
	t.Cleanup(func() {
		cancel() // closes the tab
		if t.Failed() {
			p.mu.Lock()
			t.Logf("page %s console:\n%s", url, strings.Join(p.log, "\n"))
			p.mu.Unlock()
		}
	})
	// The first Run creates the tab and ties it to the context it is given:
	// give it the tab's own, not one with a timeout.
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	p.run(chromedp.Navigate(url))
	return p
}

// run runs actions in the tab, failing t on error. A run never takes longer
// than a minute.
func (p *page) run(actions ...chromedp.Action) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		p.t.Fatalf("browser: %v", err)
	}
}

// eval evaluates the JavaScript expression js in the page into res.
func (p *page) eval(js string, res any) {
	p.t.Helper()
	p.run(chromedp.Evaluate(js, res))
}

// waitFor waits until the JavaScript expression cond is true in the page,
// at most for timeout; then it fails t with what the page's state says
// (evaluated from the expression describe). It evaluates one promise that
// checks cond at once and on every "statechange" event of the page (see
// testdata/page.html), and settles when cond holds or the time is up.
func (p *page) waitFor(cond string, timeout time.Duration, describe string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, timeout+5*time.Second)
	defer cancel()
	js := fmt.Sprintf(`new Promise(function (resolve) {
		var timer;
		function check() {
			if (%s) { settle(true); }
		}
		function settle(ok) {
			clearTimeout(timer);
			window.removeEventListener("statechange", check);
			resolve(ok);
		}
		timer = setTimeout(function () { settle(false); }, %d);
		window.addEventListener("statechange", check);
		check();
	})`, cond, timeout.Milliseconds())
	var ok bool
	err := chromedp.Run(ctx, chromedp.Evaluate(js, &ok, func(ep *runtime.EvaluateParams) *runtime.EvaluateParams {
		return ep.WithAwaitPromise(true)
	}))
	if err != nil || !ok {
		var state string
		p.run(chromedp.Evaluate(describe, &state))
		p.t.Fatalf("page: waited %v for %s (error: %v); page state: %s", timeout, cond, err, state)
	}
}

// cutListener is a net.Listener the test can take down and bring back up,
// like a server whose process or network goes away for a while: down closes
// every connection it accepted (from the server's side, WebSockets and held
// long-polls included) and closes the listening socket, so that connection
// attempts are refused; resume listens again on the same address.
type cutListener struct {
	addr net.Addr

	mu    sync.Mutex
	ln    net.Listener  // nil while down
	ready chan struct{} // closed when ln is set again
	conns map[*trackedConn]struct{}
	done  chan struct{} // closed by Close
	once  sync.Once
}

// listen returns a cutListener on addr (e.g. "127.0.0.1:0").
func listen(t *testing.T, addr string) *cutListener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	ready := make(chan struct{})
	close(ready)
	return &cutListener{addr: ln.Addr(), ln: ln, ready: ready, conns: make(map[*trackedConn]struct{}), done: make(chan struct{})}
}

func (l *cutListener) Addr() net.Addr { return l.addr }

func (l *cutListener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		ln, ready := l.ln, l.ready
		l.mu.Unlock()
		if ln == nil { // down: wait for resume
			select {
			case <-ready:
				continue
			case <-l.done:
				return nil, net.ErrClosed
			}
		}
		c, err := ln.Accept()
		l.mu.Lock()
		current := l.ln == ln
		if err == nil && current {
			tc := &trackedConn{Conn: c, l: l}
			l.conns[tc] = struct{}{}
			l.mu.Unlock()
			return tc, nil
		}
		l.mu.Unlock()
		if err == nil {
			c.Close() // accepted just before down
			continue
		}
		select {
		case <-l.done:
			return nil, net.ErrClosed
		default:
		}
		if !current {
			continue // the socket was closed by down
		}
		return nil, err
	}
}

func (l *cutListener) Close() error {
	l.once.Do(func() { close(l.done) })
	l.mu.Lock()
	ln := l.ln
	l.mu.Unlock()
	if ln != nil {
		return ln.Close()
	}
	return nil
}

// down closes the listening socket and every open connection; it returns
// how many connections it cut.
func (l *cutListener) down() int {
	l.mu.Lock()
	ln := l.ln
	if ln != nil {
		l.ln = nil
		l.ready = make(chan struct{})
	}
	conns := l.conns
	l.conns = make(map[*trackedConn]struct{})
	l.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for c := range conns {
		c.Conn.Close()
	}
	return len(conns)
}

// resume listens again on the same address.
func (l *cutListener) resume(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		return
	}
	ln, err := net.Listen("tcp", l.addr.String())
	if err != nil {
		t.Fatalf("listening again on %s: %v", l.addr, err)
	}
	l.ln = ln
	close(l.ready)
}

type trackedConn struct {
	net.Conn
	l *cutListener
}

func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// serve starts an httptest server for h on a cutListener at addr.
func serve(t *testing.T, addr string, h http.Handler) (*httptest.Server, *cutListener) {
	return serveOn(t, addr, h, nil)
}

// serveOn is serve with the cutListener wrapped by wrap (a Hub's
// Listener), if not nil.
func serveOn(t *testing.T, addr string, h http.Handler, wrap func(net.Listener) net.Listener) (*httptest.Server, *cutListener) {
	t.Helper()
	l := listen(t, addr)
	s := httptest.NewUnstartedServer(h)
	s.Listener.Close()
	s.Listener = l
	if wrap != nil {
		s.Listener = wrap(l)
	}
	s.Start()
	t.Cleanup(func() {
		l.down() // ends held long-polls and hijacked (WebSocket) connections too
		s.Close()
	})
	return s, l
}

// staticFiles serves the test page and NchanSubscriber.js.
func staticFiles(t *testing.T) http.Handler {
	t.Helper()
	pageHTML, err := os.ReadFile(filepath.Join("testdata", "page.html"))
	if err != nil {
		t.Fatal(err)
	}
	js, err := os.ReadFile(nchanJS)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /page.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(pageHTML)
	})
	mux.HandleFunc("GET /NchanSubscriber.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/javascript")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(js)
	})
	return mux
}
