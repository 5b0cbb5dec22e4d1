// Command wsidle measures what one idle WebSocket server connection costs
// in memory with each way of reading it: coder/websocket (a Conn and a
// goroutine blocked in Conn.Read), gobwas/ws (a goroutine blocked in
// ws.ReadHeader on the raw connection), and push's own reader (a goroutine
// blocked in net.Conn.Read into a 128-byte buffer, as readWebSocket is),
// each minus a baseline of the same connections held with no goroutine.
// Clients are raw sockets in this process (the same for every variant, so
// they cancel out in the difference).
//
//	GOWORK=off go run . -n 5000
//
// The figures and the choice they support are in ws_reader.go.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/gobwas/ws"
)

func main() {
	n := flag.Int("n", 5000, "connections per variant")
	variant := flag.String("variant", "", "measure only this variant, in a process of its own: baseline, coder, gobwas or push (empty: run each in a child process and print the table)")
	flag.Parse()
	handlers := map[string]http.HandlerFunc{"baseline": baselineHandler, "coder": coderHandler, "gobwas": gobwasHandler, "push": ownHandler}
	if *variant != "" {
		h, ok := handlers[*variant]
		if !ok {
			log.Fatalf("unknown variant %q: want baseline, coder, gobwas or push", *variant)
		}
		fmt.Println(measure(*n, *variant, h))
		return
	}
	// Each variant in a fresh process, so none sees the heap another left.
	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	run := func(v string) float64 {
		out, err := exec.Command(self, "-n", strconv.Itoa(*n), "-variant", v).Output()
		if err != nil {
			log.Fatalf("%s: %v", v, err)
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		if err != nil {
			log.Fatalf("%s: %q", v, out)
		}
		return f
	}
	base := run("baseline")
	for _, v := range []struct{ flag, name string }{
		{"coder", "coder/websocket"}, {"gobwas", "gobwas/ws"}, {"push", "push's reader"},
	} {
		fmt.Printf("%-16s %6.0f bytes per idle connection above the baseline (%d connections)\n", v.name, (run(v.flag)-base)/float64(*n), *n)
	}
}

var held sync.WaitGroup

// baseline: hijack and keep the connection, no goroutine.
var keep []net.Conn
var keepMu sync.Mutex

func baselineHandler(w http.ResponseWriter, r *http.Request) {
	c, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+accept(r)+"\r\n\r\n")
	keepMu.Lock()
	keep = append(keep, c)
	keepMu.Unlock()
	held.Done()
}

func coderHandler(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	held.Done()
	// An idle subscriber reads its client's pings and close: a goroutine
	// of its own blocks in Read, and the handler returns.
	go c.Read(context.Background())
}

func gobwasHandler(w http.ResponseWriter, r *http.Request) {
	c, _, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		return
	}
	held.Done()
	go ws.ReadHeader(c) // blocks, in a goroutine of its own
}

func ownHandler(w http.ResponseWriter, r *http.Request) {
	c, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+accept(r)+"\r\n\r\n")
	held.Done()
	go func() { // as readWebSocket: a small struct, a blocking Read
		var st struct{ buf [128]byte }
		c.Read(st.buf[:])
	}()
}

func accept(r *http.Request) string {
	sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// measure opens n connections to a server running h (nil: the baseline)
// and returns the heap and stacks in use once they are all held.
func measure(n int, name string, h http.HandlerFunc) uint64 {
	if h == nil {
		h = baselineHandler
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	held.Add(n)
	clients := make([]net.Conn, 0, n)
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			log.Fatal(err)
		}
		var key [16]byte
		rand.Read(key[:])
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
			base64.StdEncoding.EncodeToString(key[:]))
		resp, err := http.ReadResponse(bufio.NewReaderSize(c, 512), nil)
		if err != nil || resp.StatusCode != 101 {
			log.Fatalf("%s: handshake: %v", name, err)
		}
		clients = append(clients, c)
	}
	held.Wait()
	time.Sleep(200 * time.Millisecond) // the last handlers reach their Read
	var ms runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	inUse := ms.HeapInuse + ms.StackInuse
	for _, c := range clients {
		c.Close()
	}
	srv.Close()
	keepMu.Lock()
	for _, c := range keep {
		c.Close()
	}
	keep = nil
	keepMu.Unlock()
	time.Sleep(200 * time.Millisecond)
	runtime.GC()
	return inUse
}
