package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The test binary doubles as the worker process when pushload re-executes
// itself.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-worker" {
		if err := workerMain(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestHistogramPercentiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 10000; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	s := h.summary()
	for _, c := range []struct{ got, want float64 }{{s.P50, 5}, {s.P90, 9}, {s.P99, 9.9}, {s.Max, 10}} {
		if c.got < c.want*0.99 || c.got > c.want*1.01 {
			t.Errorf("percentile %.3f ms, want %.3f ms within 1%% (%+v)", c.got, c.want, s)
		}
	}
	var m histogram
	m.merge(h.sparse())
	if m.summary() != s {
		t.Errorf("merged %+v, want %+v", m.summary(), s)
	}
}

func TestParseBody(t *testing.T) {
	b := makeBody(nil, 42, 1700000000123456789, 64)
	if len(b) != 64 {
		t.Fatalf("body is %d bytes, want 64", len(b))
	}
	seq, ts, ok := parseBody(b)
	if !ok || seq != 42 || ts != 1700000000123456789 {
		t.Errorf("parseBody(%q) = %d, %d, %v", b, seq, ts, ok)
	}
	for _, bad := range []string{"", "hello", "1:", ":1:", "1:2"} {
		if _, _, ok := parseBody([]byte(bad)); ok {
			t.Errorf("parseBody(%q) accepted", bad)
		}
	}
}

func TestTargetsAreLoopbackOnly(t *testing.T) {
	for _, u := range []string{"http://10.0.0.1/sub?id={ch}", "http://example.com/sub?id={ch}", "http://127.0.0.1/sub"} {
		if _, err := parseTarget("-sub", u); err == nil {
			t.Errorf("parseTarget(%q) accepted", u)
		}
	}
	tg, err := parseTarget("-sub", "http://localhost:9/s/{ch}?x=1")
	if err != nil || tg.host != "127.0.0.1:9" || tg.path("c") != "/s/c?x=1" {
		t.Errorf("parseTarget: %+v, %v", tg, err)
	}
	if _, err := parseSources("127.0.0.2-127.0.0.50"); err != nil {
		t.Error(err)
	}
	if _, err := parseSources("10.0.0.1"); err == nil {
		t.Error("parseSources accepted a non-loopback source")
	}
}

func TestEachPart(t *testing.T) {
	for _, nl := range []string{"\n", "\r\n"} {
		body := "--B" + nl + nl + "one" + nl + "--B" + nl + "Content-Type: x/y" + nl + nl + "two" + nl + "--B--" + nl
		var got []string
		ok := eachPart([]byte(body), []byte("B"), func(p []byte) { got = append(got, string(p)) })
		if !ok || strings.Join(got, ",") != "one,two" {
			t.Errorf("eachPart(%q) = %q, %v", body, got, ok)
		}
	}
	if b := multipartBoundary([]byte(`multipart/mixed; boundary="xyz"`)); string(b) != "xyz" {
		t.Errorf("boundary %q", b)
	}
}

// fakeServer is a tiny NHPM-style server: POST /pub?id=, GET /sub?id= by
// long-poll (position in Etag; with multi, every waiting message at once as
// multipart/mixed), EventSource or WebSocket.
type fakeServer struct {
	mu    sync.Mutex
	chans map[string]*fakeChan
	multi bool

	// WebSocket only.
	ping       bool         // ping before the first and the second message, waiting for the pong
	pongs      atomic.Int64 // pongs received
	closeAfter int          // if > 0, close the connection instead of sending message closeAfter
	abrupt     bool         // close without a close frame
}

type fakeChan struct {
	msgs    [][]byte
	changed chan struct{}
	subs    int
}

func (f *fakeServer) ch(id string) *fakeChan {
	c := f.chans[id]
	if c == nil {
		c = &fakeChan{changed: make(chan struct{})}
		f.chans[id] = c
	}
	return c
}

// after waits until channel id has a message at index i or later.
func (f *fakeServer) after(ctx context.Context, id string, i int) [][]byte {
	for {
		f.mu.Lock()
		c := f.ch(id)
		msgs, changed := c.msgs, c.changed
		f.mu.Unlock()
		if len(msgs) > i {
			return msgs[i:]
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		}
	}
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	if r.URL.Path == "/pub" {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		c := f.ch(id)
		if r.Method == "POST" {
			c.msgs = append(c.msgs, body)
			close(c.changed)
			c.changed = make(chan struct{})
		}
		subs := c.subs
		f.mu.Unlock()
		fmt.Fprintf(w, `{"subscribers": %d}`, subs)
		return
	}
	f.mu.Lock()
	f.ch(id).subs++
	f.mu.Unlock()
	defer func() { f.mu.Lock(); f.ch(id).subs--; f.mu.Unlock() }()
	next := 0
	if e := r.Header.Get("If-None-Match"); e != "" {
		next, _ = strconv.Atoi(e)
	}
	switch {
	case r.Header.Get("Upgrade") != "":
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := c.CloseRead(r.Context())
		for {
			msgs := f.after(ctx, id, next)
			if msgs == nil {
				return
			}
			for _, m := range msgs {
				if f.closeAfter > 0 && next == f.closeAfter {
					if !f.abrupt {
						c.Close(websocket.StatusGoingAway, "kicked")
					}
					return
				}
				if f.ping && next < 2 {
					// Before the second message too, so that the
					// subscriber answers before it has the last one
					// and stops.
					if c.Ping(ctx) != nil {
						return
					}
					f.pongs.Add(1)
				}
				if c.Write(ctx, websocket.MessageText, m) != nil {
					return
				}
				next++
			}
		}
	case r.Header.Get("Accept") == "text/event-stream":
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, ": hi\n\n")
		w.(http.Flusher).Flush()
		for {
			msgs := f.after(r.Context(), id, next)
			if msgs == nil {
				return
			}
			for _, m := range msgs {
				next++
				fmt.Fprintf(w, "id: %d\ndata: %s\n\n", next, m)
			}
			w.(http.Flusher).Flush()
		}
	default:
		msgs := f.after(r.Context(), id, next)
		if msgs == nil {
			return
		}
		if !f.multi || len(msgs) == 1 {
			w.Header().Set("Etag", strconv.Itoa(next+1))
			w.Write(msgs[0])
			return
		}
		w.Header().Set("Etag", strconv.Itoa(next+len(msgs)))
		w.Header().Set("Content-Type", "multipart/mixed; boundary=XX")
		for _, m := range msgs {
			fmt.Fprintf(w, "--XX\r\n\r\n%s\r\n", m)
		}
		io.WriteString(w, "--XX--\r\n")
	}
}

// wsReaders are the -ws-reader values this system has.
func wsReaders() []string {
	if runtime.GOOS == "linux" {
		return []string{wsReaderEpoll, wsReaderGoroutine}
	}
	return []string{wsReaderGoroutine}
}

func TestFanoutEveryTransport(t *testing.T) {
	type testCase struct {
		transport string
		reader    string // -ws-reader
		multi     bool
		perWorker int
		rate      float64
	}
	cases := []testCase{
		{"longpoll", "", false, 1000, 0},
		{"longpoll", "", true, 1000, 0},
		{"sse", "", false, 1000, 0},
	}
	for _, r := range wsReaders() {
		cases = append(cases,
			testCase{"ws", r, false, 1000, 0},
			testCase{"ws", r, false, 7, 200}) // three worker processes
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/reader=%s/multi=%v/perWorker=%d", tc.transport, tc.reader, tc.multi, tc.perWorker), func(t *testing.T) {
			fs := &fakeServer{chans: map[string]*fakeChan{}, multi: tc.multi, ping: tc.transport == "ws"}
			srv := httptest.NewServer(fs)
			defer srv.Close()
			args := []string{"-mode", "fanout", "-transport", tc.transport, "-n", "20", "-m", "10",
				"-pub", srv.URL + "/pub?id={ch}", "-sub", srv.URL + "/sub?id={ch}", "-timeout", "20s",
				"-drain", "2s", "-settle", "0s", "-per-worker", strconv.Itoa(tc.perWorker),
				"-rate", strconv.FormatFloat(tc.rate, 'f', -1, 64), "-pid", strconv.Itoa(os.Getpid())}
			if tc.reader != "" {
				args = append(args, "-ws-reader", tc.reader)
			}
			cfg, err := parseFlags(args)
			if err != nil {
				t.Fatal(err)
			}
			res := run(cfg)
			if res.Connected != 20 || res.Published != 10 || res.Delivered != 200 || res.Lost != 0 ||
				res.Dup != 0 || res.Bad != 0 || res.SubErrors != 0 || res.TimedOut || res.ServerSubs < 20 ||
				res.WSReader != tc.reader {
				t.Fatalf("result %+v", res)
			}
			if res.Latency.N != 200 || res.DeliveriesPerS <= 0 || res.Mem == nil {
				t.Errorf("figures missing: %+v", res)
			}
			if fs.ping {
				// Two pings per subscriber, each answered before the
				// subscriber could have stopped.
				if n := fs.pongs.Load(); n != 40 {
					t.Errorf("the server got %d pongs, want 40", n)
				}
			}
		})
	}
}

// A subscriber that the server closes in the middle of the run, with or
// without a close frame, is an error.
func TestWSServerCloses(t *testing.T) {
	for _, reader := range wsReaders() {
		for _, abrupt := range []bool{false, true} {
			t.Run(fmt.Sprintf("reader=%s/abrupt=%v", reader, abrupt), func(t *testing.T) {
				srv := httptest.NewServer(&fakeServer{chans: map[string]*fakeChan{}, closeAfter: 5, abrupt: abrupt})
				defer srv.Close()
				cfg, err := parseFlags([]string{"-mode", "fanout", "-transport", "ws", "-ws-reader", reader,
					"-n", "20", "-m", "10", "-pub", srv.URL + "/pub?id={ch}", "-sub", srv.URL + "/sub?id={ch}",
					"-timeout", "20s", "-drain", "500ms", "-settle", "0s"})
				if err != nil {
					t.Fatal(err)
				}
				res := run(cfg)
				if res.Connected != 20 || res.Published != 10 || res.Delivered != 100 || res.Lost != 100 ||
					res.SubErrors != 20 || res.TimedOut {
					t.Fatalf("result %+v", res)
				}
				if errs := strings.Join(res.Errors, "; "); !abrupt && !strings.Contains(errs, "kicked") {
					t.Errorf("errors %q do not give the close frame's reason", errs)
				}
			})
		}
	}
}

// A server that refuses the WebSocket handshake makes connect errors that
// say its status.
func TestWSHandshakeRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/sub" {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		io.WriteString(w, `{"subscribers": 0}`)
	}))
	defer srv.Close()
	for _, reader := range wsReaders() {
		t.Run("reader="+reader, func(t *testing.T) {
			cfg, err := parseFlags([]string{"-mode", "fanout", "-transport", "ws", "-ws-reader", reader,
				"-n", "3", "-m", "1", "-pub", srv.URL + "/pub?id={ch}", "-sub", srv.URL + "/sub?id={ch}",
				"-timeout", "20s", "-settle", "0s"})
			if err != nil {
				t.Fatal(err)
			}
			res := run(cfg)
			if res.Connected != 0 || res.ConnectErrors != 3 || len(res.Errors) == 0 ||
				!strings.Contains(res.Errors[0], "WebSocket handshake answered 403") {
				t.Fatalf("result %+v", res)
			}
		})
	}
}

func TestPubrate(t *testing.T) {
	srv := httptest.NewServer(&fakeServer{chans: map[string]*fakeChan{}})
	defer srv.Close()
	cfg, err := parseFlags([]string{"-mode", "pubrate", "-c", "4", "-duration", "300ms", "-channels", "10",
		"-pub", srv.URL + "/pub?id={ch}"})
	if err != nil {
		t.Fatal(err)
	}
	res := run(cfg)
	if res.Published == 0 || res.PublishErrors != 0 || res.PublishesPerS <= 0 || res.Latency.N != uint64(res.Published) {
		t.Fatalf("result %+v", res)
	}
}
