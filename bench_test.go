package push

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Benchmarks (go test -run '^$' -bench . -benchmem). Speed and memory
// targets are read from these, never asserted by timed tests. Every
// benchmark is bounded: subscriber counts are fixed and every wait has a
// deadline.

// bnHub returns a Hub that is shut down when b ends.
func bnHub(b *testing.B, opts Options) *Hub {
	b.Helper()
	opts.Logger = fzDiscardLogger
	h := New(opts)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			b.Error(err)
		}
	})
	return h
}

// bnFanout runs n in-process subscribers of one channel, each looping on
// Next, and tells the benchmark when all of them have received a message.
type bnFanout struct {
	remaining atomic.Int64
	done      chan struct{} // the last subscriber of a round sends here
	timer     *time.Timer   // bounds each wait, reused so it does not count as allocs/op
	n         int64
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// bnSubscribe subscribes n times to channel (synchronously, so every
// subscription exists before the first publish) and starts the loops.
func bnSubscribe(b *testing.B, h *Hub, channel string, n int) *bnFanout {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &bnFanout{n: int64(n), cancel: cancel, done: make(chan struct{}, 1), timer: time.NewTimer(time.Hour)}
	f.timer.Stop()
	for i := 0; i < n; i++ {
		sub, err := h.Subscribe(ctx, []string{channel}, "")
		if err != nil {
			b.Fatal(err)
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer sub.Close()
			for {
				if _, err := sub.Next(ctx); err != nil {
					return
				}
				if f.remaining.Add(-1) == 0 {
					f.done <- struct{}{}
				}
			}
		}()
	}
	b.Cleanup(f.stop)
	return f
}

// arm prepares a round: call it before the publish.
func (f *bnFanout) arm() { f.remaining.Store(f.n) }

// wait returns when every subscriber has received the round's message.
func (f *bnFanout) wait(b *testing.B) {
	if f.n == 0 {
		return
	}
	f.timer.Reset(30 * time.Second)
	defer f.timer.Stop()
	select {
	case <-f.done:
	case <-f.timer.C:
		b.Fatalf("fan-out: %d of %d subscribers still waiting after 30s", f.remaining.Load(), f.n)
	}
}

func (f *bnFanout) stop() {
	f.cancel()
	f.wg.Wait()
}

// BenchmarkHubPublish measures the publisher's cost of Hub.Publish (ns/op,
// timed around the call alone) with 0, 1 and 10,000 in-process subscribers
// waiting on the channel. Between publishes the benchmark waits, untimed,
// until every subscriber has received the message, so each publish finds
// them waiting again; fanout-ns/op is the whole round (publish until the
// last subscriber has the message). allocs/op counts the whole process:
// publisher and subscribers.
func BenchmarkHubPublish(b *testing.B) {
	for _, n := range []int{0, 1, 10000} {
		b.Run("waiting="+strconv.Itoa(n), func(b *testing.B) {
			h := bnHub(b, Options{})
			f := bnSubscribe(b, h, "bench", n)
			ctx := context.Background()
			data := bytes.Repeat([]byte("x"), 64)
			var publishing time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				f.arm()
				t0 := time.Now()
				if _, _, err := h.Publish(ctx, "bench", &Message{Data: data}); err != nil {
					b.Fatal(err)
				}
				publishing += time.Since(t0)
				f.wait(b)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "fanout-ns/op")
			b.ReportMetric(float64(publishing.Nanoseconds())/float64(b.N), "ns/op")
		})
	}
}

// BenchmarkHubFanout measures one fan-out to 10,000 waiting in-process
// subscribers: ns/op is the time from Publish until the last of them has
// the message from Next; ns/delivery divides it by the subscribers.
func BenchmarkHubFanout(b *testing.B) {
	const n = 10000
	h := bnHub(b, Options{})
	f := bnSubscribe(b, h, "bench", n)
	ctx := context.Background()
	data := bytes.Repeat([]byte("x"), 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f.arm()
		if _, _, err := h.Publish(ctx, "bench", &Message{Data: data}); err != nil {
			b.Fatal(err)
		}
		f.wait(b)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/delivery")
}

// BenchmarkPublishHandler measures a POST to the publisher handler (no
// subscriber: 202 with plain-text channel info), without the network.
func BenchmarkPublishHandler(b *testing.B) {
	h := bnHub(b, Options{})
	handler := h.PublishHandler()
	data := bytes.Repeat([]byte("x"), 64)
	body := bytes.NewReader(data)
	r := httptest.NewRequest(http.MethodPost, "/pub?id=bench", io.NopCloser(body))
	r.Header.Set("Content-Type", "text/plain")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		body.Reset(data)
		r.ContentLength = int64(len(data))
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		if w.Code != http.StatusAccepted {
			b.Fatalf("status %d %q", w.Code, w.Body)
		}
	}
}

// BenchmarkLongPollBuffered measures a long-poll answered at once with a
// buffered message (the request carries the id of the message before it),
// without the network.
func BenchmarkLongPollBuffered(b *testing.B) {
	h := bnHub(b, Options{})
	ctx := context.Background()
	first, _, err := h.Publish(ctx, "bench", &Message{Data: []byte("first"), ContentType: "text/plain"})
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := h.Publish(ctx, "bench", &Message{Data: bytes.Repeat([]byte("x"), 64), ContentType: "text/plain"}); err != nil {
		b.Fatal(err)
	}
	handler := h.SubscribeHandler()
	r := httptest.NewRequest(http.MethodGet, "/sub?id=bench", nil)
	r.Header.Set("If-Modified-Since", first.Time.UTC().Format(http.TimeFormat))
	r.Header.Set("If-None-Match", strconv.FormatInt(first.ID.Tag, 10))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		if w.Code != http.StatusOK || w.Body.Len() != 64 {
			b.Fatalf("status %d %q", w.Code, w.Body)
		}
	}
}

// BenchmarkLongPollMemory measures the memory one held long-poll costs: it
// opens 2,000 real loopback connections to the subscriber handler, waits
// until the Hub holds all of them, and reports the growth of HeapInuse +
// StackInuse per subscriber (bytes/sub). The figure includes the client
// side of each connection, kept small on purpose (a raw net.Conn that wrote
// its request, no client goroutine). Each op holds and releases all 2,000
// (DELETE answers them 410 and the server closes the connections).
func BenchmarkLongPollMemory(b *testing.B) {
	const n = 2000
	h := bnHub(b, Options{})
	srv := httptest.NewServer(h.SubscribeHandler())
	b.Cleanup(srv.Close) // after the Hub's Shutdown (cleanups run last first)
	addr := srv.Listener.Addr().String()
	req := []byte("GET /sub?id=mem HTTP/1.1\r\nHost: " + addr + "\r\nConnection: close\r\n\r\n")
	ctx := context.Background()
	conns := make([]net.Conn, 0, n)
	var perSub, heapPerSub, stackPerSub, goroutinesPerSub float64
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		goroutines := runtime.NumGoroutine()
		for j := 0; j < n; j++ {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
			if _, err := c.Write(req); err != nil {
				b.Fatal(err)
			}
		}
		bnWaitSubscribers(b, h, n)
		goroutinesPerSub += float64(runtime.NumGoroutine()-goroutines) / n
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap := float64(int64(after.HeapInuse)-int64(before.HeapInuse)) / n
		stack := float64(int64(after.StackInuse)-int64(before.StackInuse)) / n
		perSub += heap + stack
		heapPerSub += heap
		stackPerSub += stack

		if _, err := h.DeleteChannel(ctx, "mem"); err != nil {
			b.Fatal(err)
		}
		for _, c := range conns {
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			head := make([]byte, len("HTTP/1.1 410"))
			if _, err := io.ReadFull(c, head); err != nil || string(head) != "HTTP/1.1 410" {
				b.Fatalf("held long-poll answered %q, %v; want 410", head, err)
			}
			io.Copy(io.Discard, c) // until the server closes it
			c.Close()
		}
		conns = conns[:0]
		bnWaitSubscribers(b, h, 0)
	}
	b.StopTimer()
	b.ReportMetric(perSub/float64(b.N), "bytes/sub")
	b.ReportMetric(heapPerSub/float64(b.N), "heap-bytes/sub")
	b.ReportMetric(stackPerSub/float64(b.N), "stack-bytes/sub")
	b.ReportMetric(goroutinesPerSub/float64(b.N), "goroutines/sub")
}

// bnWaitSubscribers polls the Hub's subscriber count until it is n. There
// is no event for "the server has read this request", so this is a bounded
// poll loop.
func bnWaitSubscribers(b *testing.B, h *Hub, n int) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		st, err := h.Stats(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if st.Subscribers == n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d subscribers after 30s, want %d", st.Subscribers, n)
		}
		<-tick.C
	}
}

// BenchmarkMemoryStorePublish measures MemoryStore.Publish into a full
// ring buffer of 10, on one channel and (parallel) on one channel per
// goroutine.
func BenchmarkMemoryStorePublish(b *testing.B) {
	cfg := ChannelConfig{BufferLength: 10, MessageTTL: time.Hour, ChannelTimeout: time.Minute}
	msg := &Message{Data: bytes.Repeat([]byte("x"), 64), ContentType: "text/plain"}
	ctx := context.Background()
	b.Run("one-channel", func(b *testing.B) {
		s := NewMemoryStore()
		defer s.Close()
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, _, err := s.Publish(ctx, "bench", msg, cfg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("channel-per-goroutine", func(b *testing.B) {
		s := NewMemoryStore()
		defer s.Close()
		var next atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			channel := fmt.Sprintf("bench-%d", next.Add(1))
			for pb.Next() {
				if _, _, err := s.Publish(ctx, channel, msg, cfg); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkMemoryStoreMessages measures reading from a buffer of 10: all of
// it (from the zero position) and the newest message only.
func BenchmarkMemoryStoreMessages(b *testing.B) {
	cfg := ChannelConfig{BufferLength: 10, MessageTTL: time.Hour, ChannelTimeout: time.Minute}
	ctx := context.Background()
	s := NewMemoryStore()
	defer s.Close()
	var ids []MessageID
	for i := 0; i < 10; i++ {
		m, _, err := s.Publish(ctx, "bench", &Message{Data: []byte(strconv.Itoa(i))}, cfg)
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	for _, c := range []struct {
		name  string
		after MessageID
		want  int
	}{{"all-10", MessageID{}, 10}, {"newest-1", ids[8], 1}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				batch, err := s.Messages(ctx, "bench", c.after, 32)
				if err != nil || len(batch.Messages) != c.want {
					b.Fatalf("%d messages, %v; want %d", len(batch.Messages), err, c.want)
				}
			}
		})
	}
}

// BenchmarkPublishKeepAlive publishes 64-byte messages over one keep-alive
// loopback connection: "net-http" through an http.Server on Hub.Listener,
// which reads every request, "direct" through a Server, which has the Hub
// read them after the first (DisableIOURing: on a goroutine),
// and "ring" lets the publisher ring serve them where there is one. The
// client writes and reads raw bytes with reused buffers, so allocs/op are
// the server's. The client shares the process: its time per op is a round
// trip, and the ring's is longer (two threads woken per publish, where
// "direct" hands the CPU from one goroutine to the other); from another
// process one publisher's round trips take as long either way (pushload
// -c 1), and many publishers cost the ring less (BENCHMARKS.md).
func BenchmarkPublishKeepAlive(b *testing.B) {
	for _, name := range []string{"net-http", "direct", "ring"} {
		b.Run(name, func(b *testing.B) {
			opts := Options{DisableIOURing: name == "direct"} // ring: the publisher ring where there is one
			h := bnHub(b, opts)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			if name == "net-http" {
				mux := http.NewServeMux()
				mux.Handle("/pub", h.PublishHandler())
				srv := &http.Server{Handler: mux}
				go srv.Serve(h.Listener(ln))
				b.Cleanup(func() { srv.Close() })
			} else {
				srv := &Server{Hub: h, PublishPath: "/pub"}
				go srv.Serve(ln)
				b.Cleanup(func() { srv.Close() })
			}
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := []byte("POST /pub?id=bench HTTP/1.1\r\nHost: bench\r\nContent-Type: text/plain\r\nContent-Length: 64\r\n\r\n" +
				strings.Repeat("x", 64))
			buf := make([]byte, 4096)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				if err := bnReadResponse(c, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// bnReadResponse reads one 202 response with a Content-Length from c.
func bnReadResponse(c net.Conn, buf []byte) error {
	n := 0
	for {
		m, err := c.Read(buf[n:])
		if err != nil {
			return err
		}
		n += m
		end := bytes.Index(buf[:n], []byte("\r\n\r\n"))
		if end < 0 {
			continue
		}
		if !bytes.HasPrefix(buf, []byte("HTTP/1.1 202 ")) {
			return fmt.Errorf("answer %q", buf[:n])
		}
		i := bytes.Index(buf[:end], []byte("Content-Length: "))
		if i < 0 {
			return fmt.Errorf("no Content-Length in %q", buf[:end])
		}
		length := 0
		for _, ch := range buf[i+16 : end] {
			if ch < '0' || ch > '9' {
				break
			}
			length = length*10 + int(ch-'0')
		}
		if n >= end+4+length {
			return nil
		}
	}
}
