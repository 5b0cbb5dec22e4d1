package pushauth_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/pushhub/push"
	"github.com/pushhub/push/pushauth"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// quiet is a logger for tests that expect warnings.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// serveHub serves a Hub with opts on a push.Server over loopback (/pub and
// /sub) and returns its base URL.
func serveHub(t *testing.T, opts push.Options) (*push.Hub, string) {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	hub := push.New(opts)
	srv := &push.Server{Hub: hub, PublishPath: "/pub", SubscribePath: "/sub"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hub.Shutdown(ctx)
		srv.Close()
		<-done
	})
	return hub, "http://" + ln.Addr().String()
}

// client returns an http.Client whose idle connections are closed at the
// end of the test.
func client(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

func get(t *testing.T, c *http.Client, url string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func publish(t *testing.T, c *http.Client, url, body string, hdr ...string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// upstream is a real authorization server on loopback.
type upstream struct {
	*httptest.Server
	mu     sync.Mutex
	seen   []http.Header
	answer func(w http.ResponseWriter, r *http.Request)
}

func newUpstream(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) *upstream {
	u := &upstream{answer: answer}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, r.Header.Clone())
		u.mu.Unlock()
		u.answer(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) requests() []http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]http.Header(nil), u.seen...)
}

// admitAlice admits requests whose cookie is "user=alice", for channels
// starting with "alice-".
func admitAlice(w http.ResponseWriter, r *http.Request) {
	ck, err := r.Cookie("user")
	if err != nil || ck.Value != "alice" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":"log in first"}`)
		return
	}
	for _, ch := range strings.Split(r.Header.Get("X-Push-Channel"), ",") {
		if !strings.HasPrefix(ch, "alice-") {
			http.Error(w, "not your channel: "+ch, http.StatusForbidden)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func TestUpstreamAdmitDenyHeaders(t *testing.T) {
	up := newUpstream(t, admitAlice)
	a := &pushauth.Upstream{URL: up.URL + "/auth?app=1", Logger: quiet}
	_, base := serveHub(t, push.Options{AuthorizeSubscribe: a.AuthorizeSubscribe, IntervalPoll: true})
	c := client(t)

	status, body, _ := get(t, c, base+"/sub?id=alice-1&id=alice-2", "Cookie", "user=alice", "Origin", base,
		"Authorization", "Basic eDp5", "X-Forwarded-For", "203.0.113.9")
	if status != http.StatusNotModified {
		t.Fatalf("admitted interval-poll: %d %q, want 304", status, body)
	}
	seen := up.requests()
	if len(seen) != 1 {
		t.Fatalf("upstream asked %d times, want 1", len(seen))
	}
	h := seen[0]
	for k, want := range map[string]string{
		"Cookie":            "user=alice",
		"Origin":            base,
		"Authorization":     "Basic eDp5",
		"X-Forwarded-For":   "203.0.113.9, 127.0.0.1",
		"X-Original-Uri":    "/sub?id=alice-1&id=alice-2",
		"X-Original-Method": "GET",
		"X-Push-Channel":    "alice-1,alice-2",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("upstream got %s: %q, want %q", k, got, want)
		}
	}

	status, body, hd := get(t, c, base+"/sub?id=alice-1")
	if status != http.StatusUnauthorized || body != `{"error":"log in first"}` || hd.Get("Content-Type") != "application/json" {
		t.Errorf("refused: %d %q %q, want the upstream's 401 JSON", status, body, hd.Get("Content-Type"))
	}
	status, body, _ = get(t, c, base+"/sub?id=bob-1", "Cookie", "user=alice")
	if status != http.StatusForbidden || body != "not your channel: bob-1\n" {
		t.Errorf("refused: %d %q, want the upstream's 403", status, body)
	}
}

// TestUpstreamEveryLongPoll: every long-poll request of a kept-alive
// connection (read by the Server's own reader) asks the upstream, and a
// refusal in between is what the client gets.
func TestUpstreamEveryLongPoll(t *testing.T) {
	var allow atomic.Bool
	allow.Store(true)
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if !allow.Load() {
			http.Error(w, "session over", http.StatusForbidden)
		}
	})
	a := &pushauth.Upstream{URL: up.URL, Logger: quiet}
	_, base := serveHub(t, push.Options{AuthorizeSubscribe: a.AuthorizeSubscribe})
	c := client(t)
	for i := range 3 {
		if st := publish(t, c, base+"/pub?id=x", fmt.Sprint("m", i)); st >= 300 {
			t.Fatal(st)
		}
	}
	// One connection, three long-polls walking the chain.
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	etag, lm := "", ""
	poll := func() (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, base+"/sub?id=x", nil)
		if lm != "" {
			req.Header.Set("If-Modified-Since", lm)
			req.Header.Set("If-None-Match", etag)
		}
		conn.SetDeadline(time.Now().Add(60 * time.Second))
		if err := req.Write(conn); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	for i := range 2 {
		resp, body := poll()
		if resp.StatusCode != 200 || body != fmt.Sprint("m", i) {
			t.Fatalf("poll %d: %d %q", i, resp.StatusCode, body)
		}
		etag, lm = resp.Header.Get("Etag"), resp.Header.Get("Last-Modified")
	}
	allow.Store(false)
	resp, body := poll()
	if resp.StatusCode != http.StatusForbidden || body != "session over\n" {
		t.Fatalf("poll after the upstream refuses: %d %q, want 403", resp.StatusCode, body)
	}
	if n := len(up.requests()); n != 3 {
		t.Errorf("upstream asked %d times for 3 long-polls", n)
	}
}

func TestUpstreamSlowAndDown(t *testing.T) {
	release := make(chan struct{})
	slow := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	a := &pushauth.Upstream{URL: slow.URL, Timeout: 300 * time.Millisecond, Logger: logger}
	_, base := serveHub(t, push.Options{AuthorizeSubscribe: a.AuthorizeSubscribe, AuthorizePublish: a.AuthorizePublish})
	c := client(t)
	start := time.Now()
	status, body, _ := get(t, c, base+"/sub?id=a")
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "authorization server did not answer") {
		t.Errorf("slow upstream: %d %q, want 503", status, body)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 30*time.Second {
		t.Errorf("answered after %v, want the timeout (300ms)", d)
	}
	if st := publish(t, c, base+"/pub?id=a", "x"); st != http.StatusServiceUnavailable {
		t.Errorf("publisher with a slow upstream: %d, want 503", st)
	}
	if !strings.Contains(logs.String(), "did not answer") {
		t.Errorf("no log line for the timeout: %q", logs.String())
	}

	// Down: a port nothing listens on.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	down := &pushauth.Upstream{URL: "http://" + addr + "/auth", Logger: quiet}
	_, base2 := serveHub(t, push.Options{AuthorizeSubscribe: down.AuthorizeSubscribe})
	if status, body, _ := get(t, c, base2+"/sub?id=a"); status != http.StatusServiceUnavailable {
		t.Errorf("upstream down: %d %q, want 503", status, body)
	}
}

func TestUpstreamBadAnswers(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("X-Push-Channel") {
		case "huge":
			w.WriteHeader(http.StatusForbidden)
			w.Write(make([]byte, pushauth.MaxUpstreamBody+1))
		case "redirect":
			http.Redirect(w, r, "/login", http.StatusFound)
		case "cut":
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte("short"))
			panic(http.ErrAbortHandler)
		}
	})
	a := &pushauth.Upstream{URL: up.URL, Logger: quiet}
	hub, base := serveHub(t, push.Options{AuthorizeSubscribe: a.AuthorizeSubscribe, IntervalPoll: true})
	c := client(t)
	if st, _, _ := get(t, c, base+"/sub?id=huge"); st != http.StatusBadGateway {
		t.Errorf("oversized refusal: %d, want 502", st)
	}
	if st, _, _ := get(t, c, base+"/sub?id=redirect"); st != http.StatusFound {
		t.Errorf("redirect: %d, want the upstream's 302 passed on", st)
	}
	if st, _, _ := get(t, c, base+"/sub?id=cut"); st != http.StatusServiceUnavailable {
		t.Errorf("cut answer: %d, want 503", st)
	}
	// Nothing else changed: no channel was created by refused subscribers.
	if st, _ := hub.Stats(context.Background()); st.Channels != 0 {
		n := st.Channels
		t.Errorf("%d channels after refused subscribers", n)
	}
	if st, _, _ := get(t, c, base+"/sub?id=ok"); st != http.StatusNotModified {
		t.Errorf("admitted after bad answers: %d", st)
	}
}

// TestUpstreamInFlightBound: no more than MaxInFlight requests reach the
// upstream at once.
func TestUpstreamInFlightBound(t *testing.T) {
	var cur, peak atomic.Int32
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		n := cur.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond) // holds the slot: not synchronisation
		cur.Add(-1)
	})
	a := &pushauth.Upstream{URL: up.URL, MaxInFlight: 3, Timeout: 60 * time.Second, Logger: quiet}
	_, base := serveHub(t, push.Options{AuthorizeSubscribe: a.AuthorizeSubscribe, IntervalPoll: true})
	c := client(t)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st, _, _ := get(t, c, base+"/sub?id=a"); st != http.StatusNotModified {
				t.Errorf("status %d", st)
			}
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > 3 || p < 1 {
		t.Errorf("peak in flight %d, want 1..3", p)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var key = []byte("0123456789abcdef0123456789abcdef")

func mint(t *testing.T, k []byte, c pushauth.Claims) string {
	t.Helper()
	tok, err := pushauth.Mint(k, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestTokens(t *testing.T) {
	subs := &pushauth.Tokens{Key: key}
	pubKey := []byte("publisher-key-publisher-key-0123")
	pubs := &pushauth.Tokens{Key: pubKey}
	hub, base := serveHub(t, push.Options{AuthorizeSubscribe: subs.AuthorizeSubscribe, AuthorizePublish: pubs.AuthorizePublish, IntervalPoll: true})
	c := client(t)
	hour := time.Now().Add(time.Hour)
	good := mint(t, key, pushauth.Claims{Channels: []string{"a", "b"}, Prefix: "login-", Expires: hour})
	expired := mint(t, key, pushauth.Claims{Channels: []string{"a"}, Expires: time.Now().Add(-time.Minute)})
	other := mint(t, []byte("another-key-another-key-another!"), pushauth.Claims{Channels: []string{"a"}, Expires: hour})
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + mint(t, key, pushauth.Claims{Channels: []string{"z"}, Expires: hour})[len(parts[0])+1:]
	tampered = strings.Split(tampered, ".")[0] + "." + strings.Split(tampered, ".")[1] + "." + parts[2]
	none := "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + "."

	for _, tc := range []struct {
		name, url string
		hdr       []string
		status    int
		body      string
	}{
		{"query", "/sub?id=a&token=" + good, nil, 304, ""},
		{"bearer", "/sub?id=a&id=b", []string{"Authorization", "Bearer " + good}, 304, ""},
		{"cookie", "/sub?id=login-42", []string{"Cookie", "push_token=" + good}, 304, ""},
		{"none", "/sub?id=a", nil, 401, "a token is required"},
		{"expired", "/sub?id=a&token=" + expired, nil, 401, "expired"},
		{"wrong channel", "/sub?id=c&token=" + good, nil, 403, "does not grant channel c"},
		{"one of two", "/sub?id=a&id=c&token=" + good, nil, 403, "does not grant channel c"},
		{"wrong key", "/sub?id=a&token=" + other, nil, 401, "signature"},
		{"tampered", "/sub?id=a&token=" + tampered, nil, 401, "signature"},
		{"alg none", "/sub?id=a&token=" + none, nil, 401, "Unauthorized"},
		{"malformed", "/sub?id=a&token=not.a.jwt", nil, 401, "not a JWT"},
		{"oversized", "/sub?id=a&token=" + strings.Repeat("a", pushauth.MaxTokenLength+1), nil, 401, "longer than"},
		{"subscriber token on the publisher", "/pub?id=a", []string{"Authorization", "Bearer " + good}, 401, "signature"},
	} {
		st, body, _ := get(t, c, base+tc.url, tc.hdr...)
		if st != tc.status || !strings.Contains(body, tc.body) {
			t.Errorf("%s: %d %q, want %d %q", tc.name, st, body, tc.status, tc.body)
		}
	}
	// Every transport is refused alike, before it starts.
	for name, hdr := range map[string][]string{
		"eventsource": {"Accept", "text/event-stream"},
		"multipart":   {"Accept", "multipart/mixed"},
		"chunked":     {"TE", "chunked"},
	} {
		for _, q := range []string{"", "&token=" + expired, "&token=" + tampered} {
			if st, body, _ := get(t, c, base+"/sub?id=a"+q, hdr...); st != 401 || !strings.HasPrefix(body, "Unauthorized: ") {
				t.Errorf("%s %q: %d %q, want 401", name, q, st, body)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/sub?id=a&token="+other, &websocket.DialOptions{HTTPClient: c})
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Errorf("websocket with a token of another key: %v %v, want 401", resp, err)
	}
	if st, body, _ := get(t, c, base+"/sub?id=a&callback=cb"); st != 200 || !strings.Contains(body, "401") {
		t.Errorf("jsonp without a token: %d %q, want the 401 in JSONP", st, body)
	}
	if st, _ := hub.Stats(context.Background()); st.Channels != 3 { // a, b and login-42, by the valid subscribers
		t.Errorf("%d channels after refused subscribers, want 3", st.Channels)
	}

	ptok := mint(t, pubKey, pushauth.Claims{Channels: []string{"a"}, Expires: hour})
	if st := publish(t, c, base+"/pub?id=a", "hi", "Authorization", "Bearer "+ptok); st != http.StatusAccepted {
		t.Errorf("publish with a token: %d, want 202", st)
	}
	if st := publish(t, c, base+"/pub?id=b", "hi", "Authorization", "Bearer "+ptok); st != http.StatusForbidden {
		t.Errorf("publish to another channel: %d, want 403", st)
	}
	if st := publish(t, c, base+"/pub?id=a", "hi"); st != http.StatusUnauthorized {
		t.Errorf("publish without a token: %d, want 401", st)
	}
}

func TestMintRefuses(t *testing.T) {
	if _, err := pushauth.Mint([]byte("short"), pushauth.Claims{Channels: []string{"a"}, Expires: time.Now()}); err == nil {
		t.Error("short key accepted")
	}
	if _, err := pushauth.Mint(key, pushauth.Claims{Expires: time.Now()}); err == nil {
		t.Error("no channel accepted")
	}
	if _, err := pushauth.Mint(key, pushauth.Claims{Channels: []string{"a"}}); err == nil {
		t.Error("no expiry accepted")
	}
	tok := mint(t, key, pushauth.Claims{Channels: []string{"a"}, Prefix: "p", Subject: "u1", Expires: time.Unix(2000000000, 0)})
	c, err := (&pushauth.Tokens{Key: key}).Verify(tok)
	if err != nil || c.Subject != "u1" || c.Prefix != "p" || len(c.Channels) != 1 || !c.Expires.Equal(time.Unix(2000000000, 0)) {
		t.Errorf("Verify: %+v %v", c, err)
	}
}

// TestTokenExpiryEndsStreams: a stream ends when its token expires, with
// its transport's ending; a held long-poll is answered as a timeout.
func TestTokenExpiryEndsStreams(t *testing.T) {
	subs := &pushauth.Tokens{Key: key}
	_, base := serveHub(t, push.Options{AuthorizeSubscribe: subs.AuthorizeSubscribe})
	c := client(t)
	exp := time.Now().Add(2 * time.Second)
	tok := mint(t, key, pushauth.Claims{Channels: []string{"a"}, Expires: exp})
	exp = time.Unix(exp.Unix(), 0) // exp is in whole seconds
	url := base + "/sub?id=a&token=" + tok

	type result struct {
		name, got string
		at        time.Time
	}
	results := make(chan result, 4)
	var wg sync.WaitGroup
	run := func(name string, f func() string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := f()
			results <- result{name, got, time.Now()}
		}()
	}
	run("eventsource", func() string {
		_, body, _ := get(t, c, url, "Accept", "text/event-stream")
		return body
	})
	run("multipart", func() string {
		st, body, _ := get(t, c, url, "Accept", "multipart/mixed")
		return fmt.Sprint(st, strings.HasSuffix(body, "--\r\n"))
	})
	run("longpoll", func() string {
		st, _, _ := get(t, c, url)
		return fmt.Sprint(st)
	})
	run("websocket", func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http"), &websocket.DialOptions{HTTPClient: c})
		if err != nil {
			return err.Error()
		}
		defer ws.CloseNow()
		_, _, err = ws.Read(ctx)
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			return fmt.Sprint(int(ce.Code), " ", ce.Reason)
		}
		return fmt.Sprint(err)
	})
	wg.Wait()
	close(results)
	want := map[string]string{
		"eventsource": ":401: Unauthorized\n\n",
		"multipart":   "200 true",
		"longpoll":    "304",
		"websocket":   "1008 401 Unauthorized",
	}
	for r := range results {
		if !strings.HasSuffix(r.got, want[r.name]) {
			t.Errorf("%s ended with %q, want %q", r.name, r.got, want[r.name])
		}
		if r.at.Before(exp) {
			t.Errorf("%s ended %v before the token expired", r.name, exp.Sub(r.at))
		}
	}
	// And the next request is refused.
	if st, body, _ := get(t, c, url); st != http.StatusUnauthorized {
		t.Errorf("after expiry: %d %q, want 401", st, body)
	}
}

// TestTokensWithoutKeyRefuse: Tokens whose Key is missing or too short
// (an app that forgot it, or never called Check) refuse every token, even
// one signed with the same empty key, instead of accepting forgeries.
func TestTokensWithoutKeyRefuse(t *testing.T) {
	forged, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"channels": []string{"a"}, "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte{})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range [][]byte{nil, []byte("short")} {
		tok := &pushauth.Tokens{Key: key}
		r := httptest.NewRequest("GET", "/sub?id=a&token="+forged, nil)
		err := tok.AuthorizeSubscribe(r, []string{"a"})
		var he *push.HTTPError
		if !errors.As(err, &he) || he.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("key %q: %v, want 503", key, err)
		}
	}
}
