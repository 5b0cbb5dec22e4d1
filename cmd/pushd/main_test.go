package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pushhub/push"
)

// binary is the pushd executable TestMain builds for the tests that run it.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pushd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "pushd")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building pushd: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// client bounds every request of the tests, so a broken server fails them
// instead of hanging them.
var client = &http.Client{Timeout: 30 * time.Second}

// proc is a running pushd.
type proc struct {
	cmd  *exec.Cmd
	base string // http://127.0.0.1:PORT

	mu     sync.Mutex
	stderr strings.Builder
	done   chan struct{} // closed when stderr is at EOF
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// startPushd runs pushd on a free loopback port with args and waits until it
// logs the address it listens on.
func startPushd(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 2)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.stderr.WriteString(line + "\n")
			p.mu.Unlock()
			if strings.Contains(line, `msg="pushd listening"`) {
				scheme := "http"
				if strings.Contains(line, " scheme=https") {
					scheme = "https"
				}
				for _, f := range strings.Fields(line) {
					if a, ok := strings.CutPrefix(f, "addr="); ok {
						addr <- scheme + "://" + a
					}
				}
			}
			var j struct{ Msg, Addr, Scheme string }
			if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &j) == nil && j.Msg == "pushd listening" {
				addr <- j.Scheme + "://" + j.Addr
			}
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.done
			cmd.Wait()
		}
	})
	select {
	case a := <-addr:
		p.base = a
	case <-p.done:
		t.Fatalf("pushd exited before listening; its log:\n%s", p.log())
	case <-time.After(30 * time.Second):
		t.Fatalf("pushd did not log its address within 30s; its log:\n%s", p.log())
	}
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	<-p.done
	err := p.cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

type answer struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, url, body string, header map[string]string) answer {
	t.Helper()
	a, err := tryDo(method, url, body, header)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func tryDo(method, url, body string, header map[string]string) (answer, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	return answer{resp.StatusCode, resp.Header, string(b)}, nil
}

// longPoll starts a GET in the background; its answer arrives on the chan.
func longPoll(url string, header map[string]string) <-chan answerOrErr {
	ch := make(chan answerOrErr, 1)
	go func() {
		a, err := tryDo("GET", url, "", header)
		ch <- answerOrErr{a, err}
	}()
	return ch
}

type answerOrErr struct {
	answer
	err error
}

// stats reads /status as JSON.
func stats(t *testing.T, p *proc) push.Stats {
	t.Helper()
	a := do(t, "GET", p.base+"/status", "", map[string]string{"Accept": "application/json"})
	var st push.Stats
	if err := json.Unmarshal([]byte(a.body), &st); err != nil {
		t.Fatalf("/status JSON: %v: %q", err, a.body)
	}
	return st
}

// waitSubscribers waits until pushd counts n subscribers. A held long-poll
// has no event the test could wait on, so this polls the observable count,
// bounded in time.
func waitSubscribers(t *testing.T, p *proc, n int) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		got := stats(t, p).Subscribers
		if got == n {
			return
		}
		select {
		case <-deadline:
			t.Fatalf("pushd counts %d subscribers, want %d", got, n)
		case <-tick.C:
		}
	}
}

func TestPublishLongPollResume(t *testing.T) {
	// NHPM walking, one message per answer: pushd's default.
	p := startPushd(t)
	sub := p.base + "/sub?id=news"

	// A subscriber held before anything is published gets the message.
	held := longPoll(sub, nil)
	waitSubscribers(t, p, 1)
	a := do(t, "POST", p.base+"/pub?id=news", "first", map[string]string{"Content-Type": "text/plain"})
	if a.status != http.StatusCreated {
		t.Fatalf("publish with a held subscriber: %d %q, want 201", a.status, a.body)
	}
	if !strings.Contains(a.body, "active subscribers: 1") {
		t.Errorf("publish answer lacks the channel info: %q", a.body)
	}
	got := <-held
	if got.err != nil {
		t.Fatal(got.err)
	}
	if got.status != 200 || got.body != "first" || got.header.Get("Content-Type") != "text/plain" {
		t.Fatalf("long-poll: %d %q %q, want 200 \"first\" text/plain", got.status, got.body, got.header.Get("Content-Type"))
	}
	lm, etag := got.header.Get("Last-Modified"), got.header.Get("Etag")
	if lm == "" || etag == "" {
		t.Fatalf("long-poll answer lacks Last-Modified/Etag: %v", got.header)
	}

	// With nobody listening, the publish is 202 and the message waits in
	// the buffer for the subscriber that resumes with the headers.
	waitSubscribers(t, p, 0)
	a = do(t, "POST", p.base+"/pub?id=news", "second", nil)
	if a.status != http.StatusAccepted {
		t.Fatalf("publish with no subscriber: %d %q, want 202", a.status, a.body)
	}
	next := do(t, "GET", sub, "", map[string]string{"If-Modified-Since": lm, "If-None-Match": etag})
	if next.status != 200 || next.body != "second" {
		t.Fatalf("resume: %d %q, want 200 \"second\"", next.status, next.body)
	}
	if next.header.Get("Etag") == etag && next.header.Get("Last-Modified") == lm {
		t.Errorf("resume answer repeats the old position %s/%s", lm, etag)
	}

	// Starting over without headers walks from the oldest buffered message.
	first := do(t, "GET", sub, "", nil)
	if first.status != 200 || first.body != "first" {
		t.Fatalf("fresh subscriber: %d %q, want the oldest buffered message", first.status, first.body)
	}
}

func TestStatus(t *testing.T) {
	p := startPushd(t)
	for i := range 3 {
		do(t, "POST", p.base+"/pub?id=c", fmt.Sprint("m", i), nil)
	}

	text := do(t, "GET", p.base+"/status", "", nil)
	if text.status != 200 || !strings.HasPrefix(text.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/status: %d %q", text.status, text.header.Get("Content-Type"))
	}
	want := "channels: 1\nmessages: 3\nsubscribers: 0\npublished: 3\ndelivered: 0\n"
	if text.body != want {
		t.Errorf("/status text:\n%s\nwant:\n%s", text.body, want)
	}

	for _, h := range []map[string]string{{"Accept": "application/json"}, {"Accept": "text/html, application/json;q=0.9"}, nil} {
		url := p.base + "/status"
		if h == nil {
			url += "?format=json"
		}
		a := do(t, "GET", url, "", h)
		if a.header.Get("Content-Type") != "application/json" {
			t.Fatalf("/status %v %s: Content-Type %q, want application/json", h, url, a.header.Get("Content-Type"))
		}
		var st push.Stats
		if err := json.Unmarshal([]byte(a.body), &st); err != nil {
			t.Fatalf("/status JSON: %v: %q", err, a.body)
		}
		if st.Channels != 1 || st.Messages != 3 || st.Published != 3 || st.Subscribers != 0 || st.Delivered != 0 ||
			st.PublishLatency.Count != 3 || st.SubscribersByTransport["longpoll"] != 0 {
			t.Errorf("/status JSON = %+v", st)
		}
	}
}

func TestBadFlagExits2(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-concurrency", "everyone"}, "want broadcast, first or last"},
		{[]string{"-timeout-status", "500"}, "want 304 or 408"},
		{[]string{"-buffer", "-1"}, "want a whole number >= 0"},
		{[]string{"-message-ttl", "5"}, "want a Go duration >= 0"},
		{[]string{"-subscriber-timeout", "-1s"}, "want a Go duration >= 0"},
		{[]string{"-put", "replace"}, "want create or publish"},
		{[]string{"-max-message-size", "0"}, "want a whole number of bytes > 0"},
		{[]string{"-max-subscribers", "many"}, "want a whole number >= 0"},
		{[]string{"-log-level", "loud"}, "want debug, info, warn or error"},
		{[]string{"-gc-heap-floor", "32MiB"}, "want a whole number of bytes >= 0"},
		{[]string{"-no-such-flag"}, "flag provided but not defined"},
		{[]string{"stray"}, "pushd takes flags only"},
	} {
		cmd := exec.Command(binary, tc.args...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("pushd %v: %v, want exit status 2; output:\n%s", tc.args, err, out)
			continue
		}
		if !strings.Contains(string(out), tc.want) {
			t.Errorf("pushd %v says %q, want it to say %q", tc.args, out, tc.want)
		}
	}
}

func TestTimeoutStatusFlag(t *testing.T) {
	p := startPushd(t, "-subscriber-timeout", "50ms", "-timeout-status", "408")
	a := do(t, "GET", p.base+"/sub?id=quiet", "", nil)
	if a.status != http.StatusRequestTimeout {
		t.Fatalf("timed-out long-poll: %d, want 408", a.status)
	}
}

func TestSIGTERMAnswersHeldLongPoll(t *testing.T) {
	p := startPushd(t)
	held := longPoll(p.base+"/sub?id=waiting", nil)
	waitSubscribers(t, p, 1)

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	got := <-held
	if got.err != nil {
		t.Fatalf("held long-poll was cut instead of answered: %v", got.err)
	}
	if got.status != http.StatusServiceUnavailable || !strings.Contains(got.body, "shutting down") {
		t.Errorf("held long-poll at shutdown: %d %q, want 503 saying the server is shutting down", got.status, got.body)
	}
	if got.header.Get("Retry-After") == "" {
		t.Errorf("shutdown answer lacks Retry-After: %v", got.header)
	}
	if code := p.wait(t); code != 0 {
		t.Errorf("pushd exited %d after SIGTERM, want 0; its log:\n%s", code, p.log())
	}
	if log := p.log(); !strings.Contains(log, "pushd stopped") {
		t.Errorf("pushd's log does not say it stopped:\n%s", log)
	}
}

func TestBufferZeroFlag(t *testing.T) {
	p := startPushd(t, "-buffer", "0")
	do(t, "POST", p.base+"/pub?id=live", "before", nil)
	info := do(t, "GET", p.base+"/pub?id=live", "", nil)
	if !strings.Contains(info.body, "queued messages: 0") {
		t.Fatalf("with -buffer 0 the channel stores messages:\n%s", info.body)
	}

	held := longPoll(p.base+"/sub?id=live", nil)
	waitSubscribers(t, p, 1)
	if a := do(t, "POST", p.base+"/pub?id=live", "now", nil); a.status != http.StatusCreated {
		t.Fatalf("publish to a held subscriber: %d, want 201", a.status)
	}
	got := <-held
	if got.err != nil || got.status != 200 || got.body != "now" {
		t.Fatalf("subscriber with -buffer 0: %+v, want 200 \"now\" (not the earlier message)", got)
	}
}

// TestNHPMWalkDefaults: against pushd with no flags, a classic NHPM client
// (GET, read the body, echo Last-Modified/Etag) that finds five messages
// published within a second gets them one per answer, each once, in order;
// then it is held for the next one.
func TestNHPMWalkDefaults(t *testing.T) {
	p := startPushd(t)
	start := time.Now()
	var want []string
	for i := 1; i <= 5; i++ {
		m := fmt.Sprintf("m%d", i)
		want = append(want, m)
		if a := do(t, "POST", p.base+"/pub?id=walk", m, map[string]string{"Content-Type": "text/plain"}); a.status != http.StatusAccepted {
			t.Fatalf("publish %s: %d %q", m, a.status, a.body)
		}
	}
	t.Logf("5 messages published in %v", time.Since(start))

	var got []string
	hdr := map[string]string{}
	for range want {
		a := do(t, "GET", p.base+"/sub?id=walk", "", hdr)
		if a.status != http.StatusOK {
			t.Fatalf("walk: %d %q", a.status, a.body)
		}
		if ct := a.header.Get("Content-Type"); ct != "text/plain" {
			t.Fatalf("walk: Content-Type %q, want the message's own (one message per answer)", ct)
		}
		got = append(got, a.body)
		hdr = map[string]string{"If-Modified-Since": a.header.Get("Last-Modified"), "If-None-Match": a.header.Get("Etag")}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("walk got %q, want %q", got, want)
	}
	held := longPoll(p.base+"/sub?id=walk", hdr)
	waitSubscribers(t, p, 1)
	do(t, "POST", p.base+"/pub?id=walk", "m6", nil)
	if a := <-held; a.err != nil || a.status != 200 || a.body != "m6" {
		t.Fatalf("held walk: %d %q %v, want 200 \"m6\"", a.status, a.body, a.err)
	}
}

// TestIDCarriersDefaults: pushd with no flags passes over a bare
// If-None-Match alone and an empty If-Modified-Since (as Nchan does),
// starting at the oldest message instead of answering 400.
func TestIDCarriersDefaults(t *testing.T) {
	p := startPushd(t)
	do(t, "POST", p.base+"/pub?id=c", "first", nil)
	do(t, "POST", p.base+"/pub?id=c", "second", nil)
	for _, hdr := range []map[string]string{
		{"If-None-Match": "3"},
		{"If-None-Match": `"3"`},
		{"If-None-Match": `W/"abc"`},
		{"If-Modified-Since": ""},
		{"If-Modified-Since": "", "If-None-Match": "1"},
	} {
		if a := do(t, "GET", p.base+"/sub?id=c", "", hdr); a.status != 200 || a.body != "first" {
			t.Errorf("%q: %d %q, want 200 \"first\"", hdr, a.status, a.body)
		}
	}
	// What the bare tag falls through to still counts.
	first := do(t, "GET", p.base+"/sub?id=c", "", nil)
	lm, err := http.ParseTime(first.header.Get("Last-Modified"))
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("%d:%s", lm.Unix(), first.header.Get("Etag"))
	if a := do(t, "GET", p.base+"/sub?id=c", "", map[string]string{"If-None-Match": "7", "Last-Event-ID": id}); a.status != 200 || a.body != "second" {
		t.Errorf("bare If-None-Match + Last-Event-ID: %d %q, want 200 \"second\"", a.status, a.body)
	}
}

// TestRestyCompat: resty.push's calls against pushd -compat resty: a form
// POST with field data to two channels answers cb({"status":1});, a JSONP
// subscriber gets cb("<message>"); and on timeout the tips string. Then
// examples/resty_client.py, the runnable client the docs show, makes the
// same calls (skipped without python3).
func TestRestyCompat(t *testing.T) {
	p := startPushd(t, "-compat", "resty", "-subscriber-timeout", "300ms")
	held := longPoll(p.base+"/sub?id=2&callback=cb", nil)
	waitSubscribers(t, p, 1)
	a := do(t, "POST", p.base+"/pub?id=1&id=2&callback=cb", "data=hi+there%21",
		map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if a.status != 200 || a.body != `cb({"status":1});` || a.header.Get("Content-Type") != "text/javascript;charset=UTF-8" {
		t.Fatalf("publish: %d %q %q", a.status, a.body, a.header.Get("Content-Type"))
	}
	if got := <-held; got.err != nil || got.body != `cb("hi there!");` {
		t.Fatalf("JSONP subscriber: %q %v", got.body, got.err)
	}
	if got := do(t, "GET", p.base+"/sub?id=1&callback=cb", "", nil); got.body != `cb("{\"status\":1,\"tips\":\"timeout\"}");` {
		t.Fatalf("timeout: %q", got.body)
	}

	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found: examples/resty_client.py not run")
	}
	out, err := exec.Command(python, "../../examples/resty_client.py", p.base, "5", "6").CombinedOutput()
	if err != nil {
		t.Fatalf("resty_client.py: %v\n%s", err, out)
	}
	want := "publish: text/javascript;charset=UTF-8 cb({\"status\":1});\n" +
		"subscribe: text/javascript;charset=UTF-8 \"hello from resty.push\"\n" +
		"subscribe again: text/javascript;charset=UTF-8 \"{\\\"status\\\":1,\\\"tips\\\":\\\"timeout\\\"}\"\n"
	if string(out) != want {
		t.Errorf("resty_client.py printed\n%s\nwant\n%s", out, want)
	}
}
