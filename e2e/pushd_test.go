package e2e

import (
	"bufio"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startPushdBinary builds cmd/pushd and runs it on a free loopback port
// with no flag but the address; it returns pushd's base URL.
func startPushdBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pushd")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/pushhub/push/cmd/pushd").CombinedOutput(); err != nil {
		t.Fatalf("building pushd: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	addr := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if line := sc.Text(); strings.Contains(line, `msg="pushd listening"`) {
				for _, f := range strings.Fields(line) {
					if a, ok := strings.CutPrefix(f, "addr="); ok {
						addr <- a
					}
				}
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		cmd.Wait()
	})
	select {
	case a := <-addr:
		return "http://" + a
	case <-done:
		t.Fatal("pushd exited before listening")
	case <-time.After(30 * time.Second):
		t.Fatal("pushd did not log its address within 30s")
	}
	return ""
}

// TestNchanSubscriberPushdDefaults: NchanSubscriber.js over long-poll in
// Chromium against pushd as it starts with no flags. Five messages wait
// when the page subscribes (pushd's default answers them one per answer,
// as Nchan's does), more come live: the page gets each once, in order,
// every one with the id pushd gave it (meta.id is never null).
//
// The page and NchanSubscriber.js come from a test server that passes
// /sub on to pushd, so the page is same-origin and pushd needs no
// -allow-origin.
func TestNchanSubscriberPushdDefaults(t *testing.T) {
	b := startBrowser(t)
	base := startPushdBinary(t)
	target, err := url.Parse(base)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	tr := &http.Transport{}
	proxy.Transport = tr
	t.Cleanup(tr.CloseIdleConnections)
	mux := http.NewServeMux()
	mux.Handle("/sub", proxy)
	mux.Handle("/", staticFiles(t))
	front, _ := serve(t, "127.0.0.1:0", mux)

	pub := &publisher{t: t, url: base + "/pub", channel: "defaults"}
	for i := 1; i <= 5; i++ {
		pub.publish(payload(i))
	}
	q := url.Values{"transport": {"longpoll"}, "url": {"/sub?id=defaults"}}
	p := b.open(t, front.URL+"/page.html?"+q.Encode())
	waitMessages(p, 5)
	for i := 6; i <= 8; i++ {
		pub.publish(payload(i))
		waitMessages(p, i)
	}
	var st pageState
	p.eval("window.state", &st)
	assert.Equal(t, expect("longpoll", pub.sent), st.Messages, "messages the page saw (in order, once each, with pushd's ids)")
	for i, m := range st.Messages {
		assert.NotEmpty(t, m.ID, "message %d has no id", i)
	}
	assert.Equal(t, []string{"longpoll"}, st.Transports[:1])
}
