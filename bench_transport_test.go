package push

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The transport benchmarks keep the subscribers' client ends in a child
// process (this test binary, running TestTrClientsHelper), so that the
// server's memory is measured alone and the server and the clients each
// stay under the open-files limit (10,000 subscribers are 10,000 sockets on
// each side).
//
//	go test -run '^$' -bench 'BenchmarkTr' -benchtime 1x .               # idle memory, N=2000
//	go test -run '^$' -bench 'BenchmarkTrFanOut' -benchtime 20x .        # fan-out to 10,000

const (
	trEnvAddr  = "PUSH_TR_CLIENTS_ADDR"
	trEnvN     = "PUSH_TR_CLIENTS_N"
	trEnvKind  = "PUSH_TR_CLIENTS_KIND"
	trIdleSubs = 2000
	trFanOut   = 10000
)

// TestTrClientsHelper is the child process of the benchmarks: it opens N
// raw subscriber connections (kind "websocket" or "eventsource") to addr,
// prints "ready", then for a WebSocket prints "got" each time every
// connection has read one frame. It ends when its stdin closes.
func TestTrClientsHelper(t *testing.T) {
	addr := os.Getenv(trEnvAddr)
	if addr == "" {
		t.Skip("child process of the transport benchmarks")
	}
	n, _ := strconv.Atoi(os.Getenv(trEnvN))
	kind := os.Getenv(trEnvKind)
	conns := make([]net.Conn, n)
	readers := make([]*bufio.Reader, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				c, br, err := trRawSubscribe(addr, kind, "bench")
				if err != nil {
					errs <- err
					return
				}
				conns[i], readers[i] = c, br
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	fmt.Println("ready")

	var got atomic.Int64
	var out sync.Mutex
	var readers2 sync.WaitGroup
	if kind == "websocket" {
		for i := range n {
			readers2.Add(1)
			go func() {
				defer readers2.Done()
				for {
					if err := trReadRawFrame(readers[i]); err != nil {
						return
					}
					if got.Add(1)%int64(n) == 0 {
						out.Lock()
						fmt.Println("got")
						out.Unlock()
					}
				}
			}()
		}
	}
	io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
	readers2.Wait()
}

// trRawSubscribe opens one subscriber with a hand-written request: a
// WebSocket upgrade or an EventSource GET. It returns once the server has
// subscribed it (101 read, or ": hi" read).
func trRawSubscribe(addr, kind, channel string) (net.Conn, *bufio.Reader, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	req := "GET /sub?id=" + channel + " HTTP/1.1\r\nHost: " + addr + "\r\n"
	if kind == "websocket" {
		req += "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	} else {
		req += "Accept: text/event-stream\r\n\r\n"
	}
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, nil, err
	}
	br := bufio.NewReaderSize(c, 256)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	want := http.StatusSwitchingProtocols
	if kind != "websocket" {
		want = http.StatusOK
	}
	if resp.StatusCode != want {
		c.Close()
		return nil, nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	if kind != "websocket" {
		// The chunked body starts with ": hi\n\n"; read up to it.
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				c.Close()
				return nil, nil, err
			}
			if strings.HasPrefix(line, ": hi") {
				break
			}
		}
	}
	return c, br, nil
}

// trReadRawFrame reads one unmasked server frame with a short payload.
func trReadRawFrame(br *bufio.Reader) error {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return err
	}
	n := int(h[1] & 0x7f)
	if n >= 126 {
		return errors.New("long frame")
	}
	_, err := br.Discard(n)
	return err
}

// trChild runs the clients' process against srv and waits for "ready".
type trChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines *bufio.Scanner
}

func trStartChild(b *testing.B, addr, kind string, n int) *trChild {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestTrClientsHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), trEnvAddr+"="+addr, trEnvN+"="+strconv.Itoa(n), trEnvKind+"="+kind)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	c := &trChild{cmd: cmd, stdin: stdin, lines: bufio.NewScanner(stdout)}
	c.wait(b, "ready")
	return c
}

// wait reads the child's output up to the line want.
func (c *trChild) wait(b *testing.B, want string) {
	for c.lines.Scan() {
		if c.lines.Text() == want {
			return
		}
		b.Log("child:", c.lines.Text())
	}
	b.Fatalf("child ended before %q", want)
}

func (c *trChild) stop() {
	c.stdin.Close()
	for c.lines.Scan() {
	}
	c.cmd.Wait()
}

// trBenchServer serves a Hub for a benchmark.
func trBenchServer(b *testing.B, opts Options) (*Hub, *httptest.Server) {
	h := New(opts)
	mux := http.NewServeMux()
	mux.Handle("/sub", h.SubscribeHandler())
	srv := httptest.NewServer(mux)
	return h, srv
}

func trStopServer(h *Hub, srv *httptest.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h.Shutdown(ctx)
	srv.Close()
}

func trWaitSubscribers(b *testing.B, h *Hub, n int) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if st, _ := h.Stats(context.Background()); st.Subscribers == n {
			return
		}
		time.Sleep(10 * time.Millisecond) // polling a counter, not synchronising a test
	}
	b.Fatalf("not %d subscribers after 60s", n)
}

// trInUse returns the heap and stack bytes in use after a GC.
func trInUse() (heap, stack int64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse), int64(ms.StackInuse)
}

// BenchmarkTrIdleMemory reports the server's memory per idle subscriber
// (heap and stacks in use, after GC) with 2000 subscribers connected.
func BenchmarkTrIdleMemory(b *testing.B) {
	for _, kind := range []string{"websocket", "eventsource"} {
		b.Run(kind, func(b *testing.B) {
			var heap, stack float64
			for range b.N {
				h, srv := trBenchServer(b, Options{})
				heap0, stack0 := trInUse()
				child := trStartChild(b, srv.Listener.Addr().String(), kind, trIdleSubs)
				trWaitSubscribers(b, h, trIdleSubs)
				heap1, stack1 := trInUse()
				heap = float64(heap1-heap0) / trIdleSubs
				stack = float64(stack1-stack0) / trIdleSubs
				child.stop()
				trStopServer(h, srv)
			}
			b.ReportMetric(heap+stack, "bytes/sub")
			b.ReportMetric(heap, "heap-bytes/sub")
			b.ReportMetric(stack, "stack-bytes/sub")
		})
	}
}

// BenchmarkTrFanOutWebSocket publishes one message to a channel with
// 10,000 WebSocket subscribers and reports the time until every subscriber
// has read it (ns/op).
func BenchmarkTrFanOutWebSocket(b *testing.B) {
	h, srv := trBenchServer(b, Options{PingInterval: -1})
	defer trStopServer(h, srv)
	child := trStartChild(b, srv.Listener.Addr().String(), "websocket", trFanOut)
	defer child.stop()
	trWaitSubscribers(b, h, trFanOut)
	msg := []byte("fan-out message")
	var publishing time.Duration
	var each []time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, _, err := h.Publish(context.Background(), "bench", &Message{Data: msg}); err != nil {
			b.Fatal(err)
		}
		publishing += time.Since(start)
		each = append(each, time.Since(start))
		child.wait(b, "got")
	}
	b.StopTimer()
	b.ReportMetric(trFanOut, "subscribers")
	// What the publisher itself waits: the publish call, not the delivery.
	// Waking 10,000 goroutines takes a few ms; the mean also holds the
	// times the publisher was preempted behind them on a busy machine.
	slices.Sort(each)
	b.ReportMetric(float64(publishing.Nanoseconds())/float64(b.N), "publish-ns/op")
	b.ReportMetric(float64(each[len(each)/2].Nanoseconds()), "publish-p50-ns")
}

// BenchmarkStreamFanOut measures the stream path of a publish: Hub.Publish
// to a channel with n WebSocket subscribers on real loopback connections,
// until every client has read the frame (ns/op), per delivery
// (ns/delivery), and the allocations of the whole process per publish: the
// publish itself allocates (the stored message, its cached frame); the
// delivery to each subscriber allocates nothing. The clients read raw bytes
// into a fixed buffer, so they allocate nothing either.
func BenchmarkStreamFanOut(b *testing.B) {
	for _, n := range []int{1, 100, 1000} { // 1000 > inlineFanOut: a sweep
		b.Run("subscribers="+strconv.Itoa(n), func(b *testing.B) {
			h, srv := trBenchServer(b, Options{PingInterval: -1})
			defer trStopServer(h, srv)
			payload := []byte("fan-out message of a few bytes")
			frameLen := 2 + len(payload)
			got := make(chan struct{}, n)
			for range n {
				c := bnDialWebSocket(b, srv.Listener.Addr().String())
				defer c.Close()
				go func() {
					buf := make([]byte, 4096)
					have := 0
					for {
						k, err := c.Read(buf)
						if err != nil {
							return
						}
						for have += k; have >= frameLen; have -= frameLen {
							got <- struct{}{}
						}
					}
				}()
			}
			trWaitSubscribers(b, h, n)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, _, err := h.Publish(context.Background(), "bench", &Message{Data: payload}); err != nil {
					b.Fatal(err)
				}
				for range n {
					<-got
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/delivery")
		})
	}
}

// bnDialWebSocket opens a WebSocket subscription to channel "bench" with a
// raw handshake and returns the connection after the 101 answer.
func bnDialWebSocket(b *testing.B, addr string) net.Conn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	_, err = io.WriteString(c, "GET /sub?id=bench HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	if err != nil {
		b.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		b.Fatalf("handshake: %v %v", resp, err)
	}
	if br.Buffered() > 0 {
		b.Fatal("frames before the first publish")
	}
	return c
}
