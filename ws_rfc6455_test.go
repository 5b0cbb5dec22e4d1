package push

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The WebSocket side of the Hub against the case list of the Autobahn
// testsuite (sections 1-7 and 9), over real loopback sockets with a raw
// client that can send what a library would refuse to. Autobahn tests an
// echo server; here the echo is the Hub's own: a message sent on a
// publishing connection (/pub) comes back on a subscribing one (/sub) of
// the same channel, so every case checks both the reader (a client's
// frames) and the writer (the frames a subscriber gets). The cases that
// need no echo (pings, closes, protocol errors) run against both
// endpoints: the publisher's reader keeps messages, the subscriber's
// discards them but checks them the same way.

// rfcConn is a raw WebSocket client connection.
type rfcConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

// rfcDial opens a WebSocket to path?id=channel on e's server.
func rfcDial(t *testing.T, e *trEnv, path, channel string) *rfcConn {
	t.Helper()
	c, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	var key [16]byte
	rand.Read(key[:])
	fmt.Fprintf(c, "GET %s?id=%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
		path, channel, e.srv.Listener.Addr(), base64.StdEncoding.EncodeToString(key[:]))
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	return &rfcConn{t: t, c: c, br: br}
}

// send writes raw bytes.
func (c *rfcConn) send(b []byte) {
	c.t.Helper()
	c.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.c.Write(b)
	require.NoError(c.t, err)
}

// rfcFrame is a frame the server sent.
type rfcFrame struct {
	fin     bool
	op      byte
	payload []byte
}

// read reads one frame (the server's are never masked).
func (c *rfcConn) read() (rfcFrame, error) {
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return rfcFrame{}, err
	}
	if h[1]&0x80 != 0 {
		return rfcFrame{}, fmt.Errorf("a masked frame from the server")
	}
	if h[0]&0x70 != 0 {
		return rfcFrame{}, fmt.Errorf("RSV bits from the server")
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(c.br, l[:]); err != nil {
			return rfcFrame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(c.br, l[:]); err != nil {
			return rfcFrame{}, err
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	p := make([]byte, n)
	_, err := io.ReadFull(c.br, p)
	return rfcFrame{h[0]&0x80 != 0, h[0] & 0x0F, p}, err
}

// next reads the next data frame, answering nothing and skipping the
// server's pings.
func (c *rfcConn) next() rfcFrame {
	c.t.Helper()
	for {
		f, err := c.read()
		require.NoError(c.t, err)
		if f.op != wsPing {
			return f
		}
	}
}

// closed reads until the server's close frame and requires its code
// (0: none in the frame) and then the end of the connection.
func (c *rfcConn) closed(code int) {
	c.t.Helper()
	for {
		f, err := c.read()
		require.NoError(c.t, err, "no close frame")
		if f.op != wsClose {
			continue
		}
		got := 0
		if len(f.payload) >= 2 {
			got = int(binary.BigEndian.Uint16(f.payload))
		}
		require.Equal(c.t, code, got, "close code (reason %q)", f.payload[min(2, len(f.payload)):])
		break
	}
	// Our half of the closing handshake; the server may have closed
	// already, which it may (RFC 6455 7.1.1).
	c.c.Write(clientFrame(true, wsClose, ""))
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.br.ReadByte()
	require.ErrorIs(c.t, err, io.EOF, "the server keeps the connection after the close")
}

// rfcEcho is a publishing and a subscribing connection on one channel.
type rfcEcho struct {
	e        *trEnv
	pub, sub *rfcConn
	channel  string
}

func newRFCEcho(t *testing.T, e *trEnv, channel string) *rfcEcho {
	sub := rfcDial(t, e, "/sub", channel)
	e.waitSubscribers(1)
	return &rfcEcho{e: e, pub: rfcDial(t, e, "/pub", channel), sub: sub, channel: channel}
}

// echo sends the frames on the publisher and requires the message back
// on the subscriber with opcode op, and the publisher's channel info.
func (r *rfcEcho) echo(t *testing.T, frames []byte, op byte, want []byte) {
	t.Helper()
	r.pub.send(frames)
	info := r.pub.next()
	require.Equal(t, byte(wsText), info.op)
	require.Contains(t, string(info.payload), "queued messages")
	f := r.sub.next()
	require.True(t, f.fin)
	require.Equal(t, op, f.op)
	require.True(t, bytes.Equal(want, f.payload), "echoed %d bytes, want %d", len(f.payload), len(want))
}

// fragments is payload in frames of size bytes (the first with op).
func fragments(op byte, payload string, size int) []byte {
	var b []byte
	for i := 0; ; i += size {
		end := min(i+size, len(payload))
		fop := byte(wsContinuation)
		if i == 0 {
			fop = op
		}
		b = append(b, clientFrame(end == len(payload), fop, payload[i:end])...)
		if end == len(payload) {
			return b
		}
	}
}

// Sections 1 (framing), 5 (fragmentation) and 9 (limits and performance,
// scaled to the 1 MiB default message size): text and binary messages of
// every length class, whole, in fragments, with control frames between
// fragments, and sent byte by byte.
func TestRFC6455Echo(t *testing.T) {
	e := trStart(t, Options{PingInterval: -1, MessageBufferLength: -1})
	r := newRFCEcho(t, e, "echo")
	lengths := []int{0, 1, 125, 126, 127, 128, 65535, 65536, 1 << 20}
	for _, n := range lengths {
		text := strings.Repeat("*", n)
		r.echo(t, clientFrame(true, wsText, text), wsText, []byte(text))   // 1.1.x
		bin := bytes.Repeat([]byte{0xfe}, n)                               // not UTF-8
		r.echo(t, clientFrame(true, wsBinary, string(bin)), wsBinary, bin) // 1.2.x
		r.echo(t, fragments(wsText, text, 64<<10), wsText, []byte(text))   // 9.3.x-ish
		r.echo(t, fragments(wsBinary, string(bin), 997), wsBinary, bin)    // 9.4.x-ish
	}
	// 1.1.7/1.2.7: sent in pieces of one byte.
	r.pub.c.(*net.TCPConn).SetNoDelay(true)
	for _, b := range clientFrame(true, wsText, "chopped") {
		r.pub.send([]byte{b})
	}
	require.Contains(t, string(r.pub.next().payload), "queued messages")
	require.Equal(t, "chopped", string(r.sub.next().payload))

	// 5.x: fragments with pings and pongs between them; 5.3-5.5: one-byte
	// fragments; 5.19/5.20: a fragmented message across writes.
	var in []byte
	in = append(in, clientFrame(false, wsText, "frag")...)
	in = append(in, clientFrame(true, wsPing, "between")...)
	in = append(in, clientFrame(false, wsContinuation, "men")...)
	in = append(in, clientFrame(true, wsPong, "unsolicited")...)
	in = append(in, clientFrame(true, wsContinuation, "ted")...)
	r.pub.send(in)
	pong := r.pub.next()
	require.Equal(t, byte(wsPong), pong.op)
	require.Equal(t, "between", string(pong.payload))
	require.Contains(t, string(r.pub.next().payload), "queued messages")
	require.Equal(t, "fragmented", string(r.sub.next().payload))
	r.echo(t, fragments(wsText, "one byte at a time", 1), wsText, []byte("one byte at a time"))
	r.echo(t, clientFrame(true, wsText, ""), wsText, nil) // 1.1.1 again, after fragments
}

// Section 6: UTF-8. Valid text, split across fragments at every byte, is
// relayed as text; a message published over HTTP that is not UTF-8 (an
// image) goes to WebSocket subscribers in a binary frame.
func TestRFC6455UTF8Valid(t *testing.T) {
	e := trStart(t, Options{PingInterval: -1, MessageBufferLength: -1})
	r := newRFCEcho(t, e, "utf8")
	for _, s := range []string{
		"Hello-µ@ßöäüàá-UTF-8!!",                       // 6.2.1
		"κόσμε",                                        // 6.3.1... 6.4 valid part
		"\u0080\u07ff\u0800\ufffd\U00010000\U0010ffff", // 6.5-6.8 boundaries
		"\ud7ff\ue000\uffef",                           // around the surrogates
	} {
		r.echo(t, clientFrame(true, wsText, s), wsText, []byte(s))
		for size := 1; size <= 4; size++ { // 6.2.2-6.2.4: split inside characters
			r.echo(t, fragments(wsText, s, size), wsText, []byte(s))
		}
	}
	png := "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
	e.publish("utf8", png, "image/png")
	f := r.sub.next()
	require.Equal(t, byte(wsBinary), f.op, "a message that is not UTF-8 goes in a binary frame")
	require.Equal(t, png, string(f.payload))
	e.publish("utf8", "plain", "application/octet-stream")
	require.Equal(t, byte(wsBinary), r.sub.next().op, "octet-stream stays binary")
	e.publish("utf8", "text", "text/plain")
	require.Equal(t, byte(wsText), r.sub.next().op)
}

// Section 6 (invalid UTF-8) and 7.5.1: a text message or a close reason
// that is not UTF-8 closes the connection with 1007, on either endpoint,
// whole or split across frames; the publisher publishes nothing.
func TestRFC6455UTF8Invalid(t *testing.T) {
	e := trStart(t, Options{PingInterval: -1})
	bad := []string{
		"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64", // 6.3.1 surrogate
		"\xc0\xaf",         // 6.8 overlong
		"\xe0\x80\xaf",     // overlong
		"\xf4\x90\x80\x80", // above U+10FFFF
		"\xed\xa0\x80",     // 6.14 surrogate half
		"\xff",             // 6.10
		"\xce",             // a message ending inside a character
		"ok\xfe\xfftail",
	}
	for i, s := range bad {
		for _, path := range []string{"/pub", "/sub"} {
			for _, size := range []int{0, 1, 2} {
				t.Run(fmt.Sprintf("%d%s/%d", i, path, size), func(t *testing.T) {
					ch := fmt.Sprintf("bad%d", i)
					c := rfcDial(t, e, path, ch)
					if size == 0 {
						c.send(clientFrame(true, wsText, s))
					} else {
						c.send(fragments(wsText, s, size))
					}
					c.closed(wsInvalidPayload)
				})
			}
		}
		info, err := e.hub.ChannelInfo(t.Context(), fmt.Sprintf("bad%d", i))
		if err == nil {
			require.Zero(t, info.Messages, "invalid text was published")
		}
	}
	c := rfcDial(t, e, "/sub", "reason")
	c.send(clientFrame(true, wsClose, "\x03\xe8\xff\xfe")) // 7.5.1
	c.closed(wsInvalidPayload)
}

// Section 2 (pings and pongs), 3 (reserved bits), 4 (opcodes) and 5
// (fragmentation errors) on both endpoints.
func TestRFC6455Protocol(t *testing.T) {
	e := trStart(t, Options{PingInterval: -1})
	rsv := func(bit byte, op byte, p string) []byte {
		f := clientFrame(true, op, p)
		f[0] |= bit
		return f
	}
	for _, path := range []string{"/pub", "/sub"} {
		t.Run(path+"/pings", func(t *testing.T) {
			c := rfcDial(t, e, path, "pings")
			for _, p := range []string{"", "Hello, world!", strings.Repeat("\xfe", 125)} { // 2.1-2.4
				c.send(clientFrame(true, wsPing, p))
				f := c.next()
				require.Equal(t, byte(wsPong), f.op)
				require.Equal(t, p, string(f.payload))
			}
			c.send(clientFrame(true, wsPong, "unsolicited")) // 2.7, 2.8
			var ten []byte
			for i := range 10 { // 2.10, 2.11
				ten = append(ten, clientFrame(true, wsPing, fmt.Sprint(i))...)
			}
			c.send(ten)
			// Every ping answered in order, or (RFC 6455 5.5.3, as a
			// subscriber's connection does) the ones not yet answered
			// only by the pong of the latest.
			for i := 0; i < 10; {
				f := c.next()
				require.Equal(t, byte(wsPong), f.op)
				var got int
				fmt.Sscan(string(f.payload), &got)
				require.GreaterOrEqual(t, got, i, "pongs out of order")
				i = got + 1
			}
			c.send(clientFrame(true, wsPing, strings.Repeat("x", 126))) // 2.5
			c.closed(wsProtocolError)
		})
		for name, in := range map[string][]byte{
			"3.1 RSV1":                     rsv(0x40, wsText, "x"),
			"3.2 RSV2":                     rsv(0x20, wsText, "x"),
			"3.4 RSV1+RSV2 on a ping":      rsv(0x60, wsPing, ""),
			"3.7 RSV on a close":           rsv(0x70, wsClose, ""),
			"4.1.1 opcode 3":               clientFrame(true, 3, ""),
			"4.1.5 opcode 7":               clientFrame(true, 7, "x"),
			"4.2.1 opcode 11":              clientFrame(true, 11, ""),
			"4.2.5 opcode 15":              clientFrame(true, 15, "x"),
			"5.1 fragmented ping":          clientFrame(false, wsPing, "a"),
			"5.2 fragmented pong":          clientFrame(false, wsPong, "a"),
			"5.9 lone continuation":        clientFrame(true, wsContinuation, "x"),
			"5.10 unfinished continuation": clientFrame(false, wsContinuation, "x"),
			"5.18 text inside a text":      append(clientFrame(false, wsText, "a"), clientFrame(true, wsText, "b")...),
			"unmasked":                     func() []byte { f := clientFrame(true, wsText, "x"); f[1] &^= 0x80; return f }(),
		} {
			t.Run(path+"/"+name, func(t *testing.T) {
				c := rfcDial(t, e, path, "protocol")
				c.send(in)
				c.closed(wsProtocolError)
			})
		}
	}
	info, err := e.hub.ChannelInfo(t.Context(), "protocol")
	if err == nil {
		require.Zero(t, info.Messages, "a frame that broke the protocol was published")
	}
}

// Section 7: the closing handshake. An empty close is answered with an
// empty one, a valid code with that code, a one-byte payload and every
// code no endpoint may send with 1002 (1005 and 999 are never echoed);
// frames after a close are ignored.
func TestRFC6455Close(t *testing.T) {
	e := trStart(t, Options{PingInterval: -1})
	closeWith := func(code int, reason string) string {
		return string(binary.BigEndian.AppendUint16(nil, uint16(code))) + reason
	}
	for _, path := range []string{"/pub", "/sub"} {
		t.Run(path+"/7.1.1 empty", func(t *testing.T) {
			c := rfcDial(t, e, path, "close")
			c.send(clientFrame(true, wsClose, ""))
			c.closed(0)
		})
		t.Run(path+"/7.3.2 one byte", func(t *testing.T) {
			c := rfcDial(t, e, path, "close")
			c.send(clientFrame(true, wsClose, "\x03"))
			c.closed(wsProtocolError)
		})
		t.Run(path+"/7.1.3 data after close", func(t *testing.T) {
			c := rfcDial(t, e, path, "after")
			c.send(append(clientFrame(true, wsClose, closeWith(1000, "")), clientFrame(true, wsText, "late")...))
			c.closed(1000)
		})
		t.Run(path+"/7.3.6 long reason", func(t *testing.T) {
			c := rfcDial(t, e, path, "close")
			c.send(clientFrame(true, wsClose, closeWith(1000, strings.Repeat("*", 123))))
			c.closed(1000)
		})
		for _, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999} { // 7.7.x
			t.Run(fmt.Sprintf("%s/7.7 %d", path, code), func(t *testing.T) {
				c := rfcDial(t, e, path, "close")
				c.send(clientFrame(true, wsClose, closeWith(code, "bye")))
				c.closed(code)
			})
		}
		// 7.9.x. gobwas/ws's rules, which the reader takes: 1012-1014
		// (registered with IANA after RFC 6455) count as undefined, as in
		// Autobahn's 7.9 list; codes from 5000 up, which RFC 6455 leaves
		// undefined (Autobahn's informational 7.13), are echoed.
		for _, code := range []int{0, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999} {
			t.Run(fmt.Sprintf("%s/7.9 %d", path, code), func(t *testing.T) {
				c := rfcDial(t, e, path, "close")
				c.send(clientFrame(true, wsClose, closeWith(code, "")))
				c.closed(wsProtocolError)
			})
		}
	}
	info, err := e.hub.ChannelInfo(t.Context(), "after")
	if err == nil {
		require.Zero(t, info.Messages, "a frame after the close was published")
	}
}
