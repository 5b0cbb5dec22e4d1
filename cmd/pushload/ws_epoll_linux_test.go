//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// wsFrame returns a server frame (unmasked) with the given first byte.
func wsFrame(b0 byte, payload []byte) []byte {
	f := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		f = append(f, byte(n))
	case n < 1<<16:
		f = append(f, 126)
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	default:
		f = append(f, 127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	return append(f, payload...)
}

// readClientFrame reads a masked client frame of at most 125 bytes and
// returns its first byte and unmasked payload.
func readClientFrame(r io.Reader) (byte, []byte, error) {
	var h [6]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	if h[1]&0x80 == 0 || h[1]&0x7f > 125 {
		return 0, nil, fmt.Errorf("client frame header % x: want masked, at most 125 bytes", h[:2])
	}
	p := make([]byte, h[1]&0x7f)
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, err
	}
	for i := range p {
		p[i] ^= h[2+i%4]
	}
	return h[0], p, nil
}

// newTestLoop returns a loop (its goroutine not started) for a worker of
// one subscriber expecting messages 0 to messages-1, holding one end of a
// socket pair; the test writes server frames to the other.
func newTestLoop(t *testing.T, messages int) (*wsLoop, *wsConn, int) {
	t.Helper()
	w, err := newWorker(workerConfig{Transport: "ws", WSReader: wsReaderGoroutine, Sub: "http://127.0.0.1:9/sub?id={ch}",
		ChannelPrefix: "c", Channels: 1, Count: 1, Messages: messages, Deadline: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.cancel)
	l, err := newWSLoop(w)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.ep.Close() })
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fds[1]) })
	c := &wsConn{fd: fds[0], s: &w.subs[0]}
	if err := l.add(0, c); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if l.conns[0].Load() != nil {
			syscall.Close(fds[0])
		}
	})
	return l, c, fds[1]
}

func writeAll(t *testing.T, fd int, b []byte) {
	t.Helper()
	if n, err := syscall.Write(fd, b); err != nil || n != len(b) {
		t.Fatalf("write: %d of %d bytes, %v", n, len(b), err)
	}
}

// Frames split anywhere, in every length encoding, are delivered once
// complete, and a partial frame is kept between reads.
func TestWSLoopPartialFrames(t *testing.T) {
	l, c, peer := newTestLoop(t, 4)
	now := time.Now().UnixNano()
	var stream []byte
	for seq, size := range []int{64, 200, 70000, 40} {
		stream = append(stream, wsFrame(0x80|wsText, makeBody(nil, seq, now, size))...)
		if seq == 1 {
			stream = append(stream, wsFrame(0x80|wsPong, []byte("unasked"))...) // ignored
		}
	}
	// Pieces of 1, 2, ..., 20000 bytes: splits inside headers, in 16- and
	// 64-bit lengths and in payloads; the 70000-byte frame goes through a
	// partial frame longer than half the shared buffer.
	for i, k := 0, 1; i < len(stream); i, k = i+k, min(2*k, 20000) {
		writeAll(t, peer, stream[i:min(i+k, len(stream))])
		l.readable(0)
	}
	l.readable(0) // nothing left: EAGAIN
	if got := l.w.delivered.Load(); got != 4 || l.w.bad.Load() != 0 || l.w.complete.Load() != 1 || l.w.errors != 0 {
		t.Fatalf("delivered %d, bad %d, complete %d, errors %d (%s); want 4, 0, 1, 0",
			got, l.w.bad.Load(), l.w.complete.Load(), l.w.errors, l.w.firstError)
	}
	if len(c.pending) != 0 {
		t.Errorf("%d bytes pending after the last frame", len(c.pending))
	}
}

// A ping is answered with a masked pong carrying its payload; a close
// frame is echoed and ends the subscriber with an error that gives the
// status and the reason.
func TestWSLoopPingAndClose(t *testing.T) {
	l, _, peer := newTestLoop(t, 1)
	writeAll(t, peer, wsFrame(0x80|wsPing, []byte("are you there")))
	l.readable(0)
	f := io.Reader(fdReader(peer))
	b0, p, err := readClientFrame(f)
	if err != nil || b0 != 0x80|wsPong || string(p) != "are you there" {
		t.Fatalf("answer to a ping: %#x %q, %v", b0, p, err)
	}
	writeAll(t, peer, wsFrame(0x80|wsClose, append([]byte{0x03, 0xe9}, "bye"...)))
	l.readable(0)
	b0, p, err = readClientFrame(f)
	if err != nil || b0 != 0x80|wsClose || !bytes.Equal(p, []byte{0x03, 0xe9}) {
		t.Fatalf("answer to a close: %#x %q, %v", b0, p, err)
	}
	if l.conns[0].Load() != nil || l.w.errors != 1 || !strings.Contains(l.w.firstError, `status 1001 "bye"`) {
		t.Fatalf("after a close frame: errors %d, %q", l.w.errors, l.w.firstError)
	}
}

// A fragmented message is an error that says so.
func TestWSLoopFragmented(t *testing.T) {
	l, _, peer := newTestLoop(t, 1)
	writeAll(t, peer, wsFrame(wsText, makeBody(nil, 0, time.Now().UnixNano(), 64)))
	l.readable(0)
	if l.w.errors != 1 || !strings.Contains(l.w.firstError, "fragmented") || l.w.delivered.Load() != 0 {
		t.Fatalf("errors %d, %q, delivered %d", l.w.errors, l.w.firstError, l.w.delivered.Load())
	}
}

// Reading and delivering a message allocates nothing.
func TestWSLoopNoAllocation(t *testing.T) {
	l, _, peer := newTestLoop(t, 1)
	frames := bytes.Repeat(wsFrame(0x80|wsText, makeBody(nil, 0, time.Now().UnixNano(), 64)), 3)
	allocs := testing.AllocsPerRun(100, func() {
		syscall.Write(peer, frames[:100]) // one frame and part of the next
		l.readable(0)
		syscall.Write(peer, frames[100:])
		l.readable(0)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per 3 messages", allocs)
	}
	if l.w.delivered.Load() != 303 || l.w.errors != 0 {
		t.Errorf("delivered %d, errors %d (%s)", l.w.delivered.Load(), l.w.errors, l.w.firstError)
	}
}

type fdReader int

func (fd fdReader) Read(p []byte) (int, error) {
	for {
		n, err := syscall.Read(int(fd), p)
		if err == syscall.EAGAIN {
			// The peer of a test loop's socket pair: the loop has
			// written already, or never will.
			return 0, errors.New("nothing to read")
		}
		if err == syscall.EINTR {
			continue
		}
		if n == 0 && err == nil {
			return 0, io.EOF
		}
		return max(n, 0), err
	}
}

// Frames sent together with the handshake's answer are not lost: the
// message is delivered and the ping answered before the connection goes to
// the loop, which then reads the rest. A wrong Sec-WebSocket-Accept fails
// the handshake.
func TestWSEpollHandshake(t *testing.T) {
	for _, badAccept := range []bool{false, true} {
		t.Run(fmt.Sprintf("badAccept=%v", badAccept), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			w, err := newWorker(workerConfig{Transport: "ws", WSReader: wsReaderEpoll,
				Sub: "http://" + ln.Addr().String() + "/sub?id={ch}", ChannelPrefix: "c", Channels: 1, Count: 1,
				Messages: 2, DialConcurrency: 1, Deadline: time.Now().Add(20 * time.Second), Drain: Duration(20 * time.Second)})
			if err != nil {
				t.Fatal(err)
			}
			defer w.cancel()
			served := make(chan error, 1)
			go func() { served <- scriptedWSServer(ln, badAccept) }()
			ready := w.connect()
			if badAccept {
				if ready.Connected != 0 || !strings.Contains(ready.FirstError, "Sec-WebSocket-Accept") {
					t.Fatalf("ready %+v", ready)
				}
				<-served // the client hung up
				w.cancel()
				w.wg.Wait()
				return
			}
			if ready.Connected != 1 {
				t.Fatalf("ready %+v", ready)
			}
			if err := <-served; err != nil {
				t.Fatal(err)
			}
			r := w.finish(finishMsg{Published: 2})
			if r.Delivered != 2 || r.Distinct != 2 || r.Complete != 1 || r.Errors != 1 ||
				!strings.Contains(r.FirstError, "status 1000") {
				t.Fatalf("result %+v", r)
			}
		})
	}
}

// scriptedWSServer accepts one WebSocket connection and sends message 0
// and a ping in the same write as the 101 answer, reads the pong, sends
// message 1 and a close frame, and reads the echo of the close and the end
// of the connection.
func scriptedWSServer(ln net.Listener, badAccept bool) error {
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second)) // a client that does not answer fails the test
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return err
	}
	accept := wsAcceptKey(req.Header.Get("Sec-WebSocket-Key"))
	if badAccept {
		accept = wsAcceptKey("something else")
	}
	if req.Header.Get("Sec-WebSocket-Version") != "13" || !strings.EqualFold(req.Header.Get("Upgrade"), "websocket") {
		return fmt.Errorf("handshake request %v", req.Header)
	}
	out := []byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + "\r\n\r\n")
	out = append(out, wsFrame(0x80|wsText, makeBody(nil, 0, time.Now().UnixNano(), 64))...)
	out = append(out, wsFrame(0x80|wsPing, []byte("p"))...)
	if _, err := c.Write(out); err != nil {
		return err
	}
	if b0, p, err := readClientFrame(br); err != nil || b0 != 0x80|wsPong || string(p) != "p" {
		return fmt.Errorf("answer to a ping: %#x %q, %v", b0, p, err)
	}
	out = wsFrame(0x80|wsBinary, makeBody(nil, 1, time.Now().UnixNano(), 64))
	out = append(out, wsFrame(0x80|wsClose, []byte{0x03, 0xe8})...)
	if _, err := c.Write(out); err != nil {
		return err
	}
	if b0, p, err := readClientFrame(br); err != nil || b0 != 0x80|wsClose || !bytes.Equal(p, []byte{0x03, 0xe8}) {
		return fmt.Errorf("answer to a close: %#x %q, %v", b0, p, err)
	}
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		return fmt.Errorf("after the close: %d bytes, %v; want EOF", n, err)
	}
	return nil
}
