package push

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// wsMetaProtocol is Nchan's subprotocol: frames carry the id and content
// type before the payload (S7).
const wsMetaProtocol = "ws+meta.nchan"

// wsMissedType is the content type of the ws+meta frame that announces
// missed messages.
const wsMissedType = "application/x-push-missed"

// isWebSocket reports whether r asks for a WebSocket upgrade.
func isWebSocket(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
}

// headerHasToken reports whether the comma-separated header name holds token
// (case-insensitive).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// serveWebSocket upgrades r and streams messages as WebSocket frames (S7):
// the payload alone, or with subprotocol ws+meta.nchan
// "id: T:G\n[content-type: C\n]\n<payload>"; binary frames for
// application/octet-stream, text frames otherwise. Frames from the client
// are read and discarded (pings answered, pongs noted, a close answered).
// Endings: close 1001 "410 Gone" on delete, 1001 "503 Service Unavailable"
// on Shutdown, 1000 "408 Request Timeout" on subscriber timeout, 1000 "409
// Conflict" under the Concurrency policy, 1011 "503 Service Unavailable" on
// store errors. A peer that does not answer a ping within WriteTimeout, or
// does not take a batch of frames within it, is disconnected.
//
// The server side of the protocol is ours rather than coder/websocket's,
// which keeps two goroutines and 8 KiB of buffers per connection: an idle
// subscriber here is a stream (see stream.go) with one small reader
// goroutine. serveWebSocket owns sub.
func (h *Hub) serveWebSocket(w http.ResponseWriter, r *http.Request, sub *Subscription) {
	c, preamble, buffered, proto, ok := wsUpgrade(w, r, wsMetaProtocol)
	if !ok {
		sub.Close()
		return
	}
	f := &wsFramer{sub: sub, meta: proto == wsMetaProtocol, multi: len(sub.channels) > 1}
	s := h.newStream(TransportWebSocket, sub, f)
	s.pingWait = h.opts.WriteTimeout
	if s.pingWait <= 0 {
		s.pingWait = h.opts.PingInterval
	}
	limit := h.opts.WebSocketReadLimit
	s.park(c, preamble, func(s *stream) { readWebSocket(s, buffered, limit) })
}

// WebSocket opcodes and close codes (RFC 6455).
const (
	wsContinuation = 0x0
	wsText         = 0x1
	wsBinary       = 0x2
	wsClose        = 0x8
	wsPing         = 0x9
	wsPong         = 0xA

	wsNormalClosure   = 1000
	wsGoingAway       = 1001
	wsProtocolError   = 1002
	wsPolicyViolation = 1008
	wsMessageTooBig   = 1009
	wsInternalError   = 1011
)

// wsUpgrade checks r's WebSocket handshake (RFC 6455 4.2), picking the
// first of protocols the client offers, and hijacks the connection. It
// returns the connection, the 101 answer to write, and what the client sent
// after its request. On a bad handshake it answers the request and returns
// false.
func wsUpgrade(w http.ResponseWriter, r *http.Request, protocols ...string) (net.Conn, []byte, []byte, string, bool) {
	if !headerHasToken(r.Header, "Sec-WebSocket-Version", "13") {
		w.Header().Set("Sec-WebSocket-Version", "13")
		writeText(w, http.StatusBadRequest, "WebSocket version 13 is required (Sec-WebSocket-Version: 13).")
		return nil, nil, nil, "", false
	}
	key := strings.TrimSpace(r.Header.Get("Sec-WebSocket-Key"))
	if k, err := base64.StdEncoding.DecodeString(key); err != nil || len(k) != 16 {
		writeText(w, http.StatusBadRequest, "Bad Sec-WebSocket-Key: it must be 16 random bytes in base64.")
		return nil, nil, nil, "", false
	}
	proto := ""
	for _, p := range protocols {
		if headerHasToken(r.Header, "Sec-WebSocket-Protocol", p) {
			proto = p
			break
		}
	}
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		writeText(w, http.StatusNotImplemented, "WebSocket needs an HTTP/1.1 connection this server can hand over.")
		return nil, nil, nil, "", false
	}
	var buffered []byte
	if n := brw.Reader.Buffered(); n > 0 {
		buffered, _ = brw.Reader.Peek(n)
		buffered = append([]byte(nil), buffered...)
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	b := make([]byte, 0, 256)
	b = append(b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	b = base64.StdEncoding.AppendEncode(b, sum[:])
	if proto != "" {
		b = append(b, "\r\nSec-WebSocket-Protocol: "...)
		b = append(b, proto...)
	}
	b = append(b, "\r\n"...)
	b = appendHeader(b, w.Header())
	b = append(b, "\r\n"...)
	return c, b, buffered, proto, true
}

// appendHeader appends hd in wire format.
func appendHeader(b []byte, hd http.Header) []byte {
	var buf bytes.Buffer
	hd.Write(&buf)
	return append(b, buf.Bytes()...)
}

// appendWSHeader appends the header of an unmasked final frame.
func appendWSHeader(b []byte, op byte, n int) []byte {
	b = append(b, 0x80|op)
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xFFFF:
		return append(b, 126, byte(n>>8), byte(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
}

// appendWSClose appends a close frame with code and reason.
func appendWSClose(b []byte, code int, reason string) []byte {
	b = appendWSHeader(b, wsClose, 2+len(reason))
	b = binary.BigEndian.AppendUint16(b, uint16(code))
	return append(b, reason...)
}

// wsCloseFor returns the close code and reason for a subscription that
// ended with err, or false when the connection is gone, failed or too slow
// (it is closed without a frame).
func wsCloseFor(err error) (int, string, bool) {
	var we *connError
	switch {
	case err == nil, err == errPeerGone, errors.As(err, &we), errors.Is(err, context.Canceled):
		return 0, "", false
	case errors.Is(err, ErrChannelDeleted):
		return wsGoingAway, "410 Gone", true
	case errors.Is(err, ErrHubClosed):
		return wsGoingAway, "503 Service Unavailable", true
	case err == errSubscriberTimeout:
		return wsNormalClosure, "408 Request Timeout", true
	case errors.Is(err, ErrConflict):
		return wsNormalClosure, "409 Conflict", true
	}
	status := statusOf(err) // a store error
	return wsInternalError, strconv.Itoa(status) + " " + http.StatusText(status), true
}

// wsFramer frames messages as WebSocket frames.
type wsFramer struct {
	sub   *Subscription
	meta  bool
	multi bool
}

func wsOpcode(m *Message) byte {
	if m.ContentType == "application/octet-stream" {
		return wsBinary
	}
	return wsText
}

func (f *wsFramer) message(b []byte, m *Message) []byte {
	switch {
	case !f.meta:
		return append(b, m.encoded(framingWSFrame, buildWSFrame)...)
	case !f.multi:
		return append(b, m.encoded(framingWSMetaFrame, buildWSMetaFrame)...)
	}
	pos := f.sub.Position()
	body := m.encoded(framingWSMetaBody, buildWSMetaBody)
	b = appendWSHeader(b, wsOpcode(m), 5+len(pos)+len(body))
	b = append(b, "id: "...)
	b = append(b, pos...)
	b = append(b, '\n')
	return append(b, body...)
}

// missed appends, in ws+meta mode, a frame with the position before the
// gap and content type application/x-push-missed, and no payload.
func (f *wsFramer) missed(b []byte) []byte {
	if !f.meta {
		return b
	}
	const ct = "\ncontent-type: " + wsMissedType + "\n\n"
	b = appendWSHeader(b, wsText, 4+len(f.sub.gapFrom)+len(ct))
	b = append(b, "id: "...)
	b = append(b, f.sub.gapFrom...)
	return append(b, ct...)
}

func (f *wsFramer) ping(b []byte) []byte { return appendWSHeader(b, wsPing, 0) }

func (f *wsFramer) end(b []byte, err error) []byte {
	if code, reason, ok := wsCloseFor(err); ok {
		return appendWSClose(b, code, reason)
	}
	return b
}

// buildWSFrame is the plain frame of a message.
func buildWSFrame(m *Message) []byte {
	b := make([]byte, 0, 10+len(m.Data))
	b = appendWSHeader(b, wsOpcode(m), len(m.Data))
	return append(b, m.Data...)
}

// buildWSMetaFrame is the ws+meta frame of a single-channel message.
func buildWSMetaFrame(m *Message) []byte {
	p := withIDLine(m, m.encoded(framingWSMetaBody, buildWSMetaBody))
	b := make([]byte, 0, 10+len(p))
	b = appendWSHeader(b, wsOpcode(m), len(p))
	return append(b, p...)
}

// buildWSMetaBody is a ws+meta payload after its id line.
func buildWSMetaBody(m *Message) []byte {
	b := make([]byte, 0, 20+len(m.ContentType)+len(m.Data))
	if m.ContentType != "" {
		b = append(b, "content-type: "...)
		b = append(b, m.ContentType...)
		b = append(b, '\n')
	}
	b = append(b, '\n')
	return append(b, m.Data...)
}

// readWebSocket reads the client's frames (RFC 6455 5): data frames are
// discarded (a message over limit bytes closes the connection with 1009),
// pings are answered, pongs noted, a close is answered and ends the
// stream, a protocol error closes with 1002. It returns when the
// connection fails or is closed. It is the one goroutine of an idle
// WebSocket subscriber, so it keeps its stack small: it blocks in Read from
// a shallow frame, and the parsing is a state machine fed between reads.
func readWebSocket(s *stream, buffered []byte, limit int64) {
	r := &wsReader{s: s, limit: limit}
	if len(buffered) > 0 && !r.feed(buffered) {
		return
	}
	for {
		n, err := s.conn.Read(r.buf[:])
		if n > 0 && !r.feed(r.buf[:n]) {
			return
		}
		if err != nil {
			return
		}
	}
}

// wsReader parses the frames a client sends.
type wsReader struct {
	s     *stream
	limit int64
	buf   [128]byte

	hdr       [14]byte // the frame header being read
	hn        int      // bytes of hdr read
	inPayload bool
	remain    int64 // payload bytes left in the frame
	op        byte
	fin       bool
	mask      [4]byte
	mpos      int
	ctl       []byte // a control frame's payload
	size      int64  // the data message's size so far
	inMessage bool
	closing   bool
}

// headerLen is the length of the frame header being read, as far as its
// first two bytes tell (every client frame is masked).
func (r *wsReader) headerLen() int {
	if r.hn < 2 {
		return 2
	}
	switch r.hdr[1] & 0x7F {
	case 126:
		return 2 + 2 + 4
	case 127:
		return 2 + 8 + 4
	}
	return 2 + 4
}

// feed parses p; false: the reader is to stop (a close was posted).
func (r *wsReader) feed(p []byte) bool {
	for len(p) > 0 {
		if !r.inPayload {
			for len(p) > 0 && r.hn < r.headerLen() {
				r.hdr[r.hn] = p[0]
				r.hn++
				p = p[1:]
				if r.hn == 2 && (r.hdr[0]&0x70 != 0 || r.hdr[1]&0x80 == 0) {
					return r.fail(wsProtocolError, "frames from a client must be masked and use no extension")
				}
			}
			if r.hn < r.headerLen() {
				return true
			}
			if !r.startFrame() {
				return false
			}
			if r.remain > 0 {
				r.inPayload = true
				continue
			}
		} else {
			n := int(min(int64(len(p)), r.remain))
			if r.op >= wsClose {
				for _, c := range p[:n] {
					r.ctl = append(r.ctl, c^r.mask[r.mpos&3])
					r.mpos++
				}
			}
			p = p[n:]
			if r.remain -= int64(n); r.remain > 0 {
				return true
			}
			r.inPayload = false
		}
		if !r.endFrame() {
			return false
		}
	}
	return true
}

// startFrame checks the header just read.
func (r *wsReader) startFrame() bool {
	h := r.hdr[:r.hn]
	r.hn = 0
	r.fin, r.op = h[0]&0x80 != 0, h[0]&0x0F
	n := int64(h[1] & 0x7F)
	switch n {
	case 126:
		n = int64(binary.BigEndian.Uint16(h[2:]))
	case 127:
		n = int64(binary.BigEndian.Uint64(h[2:]))
	}
	copy(r.mask[:], h[len(h)-4:])
	r.remain, r.mpos, r.ctl = n, 0, r.ctl[:0]
	switch {
	case n < 0:
		return r.fail(wsProtocolError, "bad frame length")
	case r.op >= wsClose:
		if n > 125 || !r.fin {
			return r.fail(wsProtocolError, "bad control frame")
		}
	case r.op == wsText || r.op == wsBinary:
		if r.inMessage {
			return r.fail(wsProtocolError, "a new message inside a fragmented one")
		}
		r.inMessage, r.size = true, 0
	case r.op == wsContinuation:
		if !r.inMessage {
			return r.fail(wsProtocolError, "a continuation frame outside a message")
		}
	default:
		return r.fail(wsProtocolError, "unknown opcode")
	}
	if r.op < wsClose {
		if r.size += n; r.limit > 0 && r.size > r.limit {
			return r.fail(wsMessageTooBig, "message too big")
		}
	}
	return true
}

// endFrame acts on the frame just read.
func (r *wsReader) endFrame() bool {
	switch r.op {
	case wsPing:
		f := appendWSHeader(make([]byte, 0, 2+len(r.ctl)), wsPong, len(r.ctl))
		f = append(f, r.ctl...)
		r.s.pongFrame.Store(&f)
		r.s.postAsync(evPong)
	case wsPong:
		r.s.lastPong.Store(time.Now().UnixNano())
	case wsClose:
		if !r.closing {
			r.closing = true
			var f []byte
			if len(r.ctl) >= 2 {
				f = appendWSClose(nil, int(binary.BigEndian.Uint16(r.ctl)), "")
			} else {
				f = appendWSHeader(nil, wsClose, 0)
			}
			r.s.closeFrame.Store(&f)
			r.s.postAsync(evPeerClose)
		}
	case wsContinuation, wsText, wsBinary:
		if r.fin {
			r.inMessage = false
		}
	}
	return true
}

// fail posts a close with code and reason; the reader stops.
func (r *wsReader) fail(code int, reason string) bool {
	b := appendWSClose(nil, code, reason)
	r.s.closeFrame.Store(&b)
	r.s.postAsync(evPeerClose)
	return false
}

// servePublishWebSocket publishes every message the client sends over a
// WebSocket to channel: a text frame as a message without content type, a
// binary frame as application/octet-stream. Each publish is answered with a
// text frame holding the channel info (in the format the upgrade request's
// Accept header names). A frame larger than MaxMessageSize closes the
// connection with 1009; a failed publish closes it with the error.
func (h *Hub) servePublishWebSocket(w http.ResponseWriter, r *http.Request, channel string) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(h.opts.MaxMessageSize)
	// Shutdown ends the connection too, with 1001 "503 Service Unavailable"
	// (Close may be called while Read waits; Read then returns).
	defer context.AfterFunc(h.stopping, func() {
		c.Close(websocket.StatusGoingAway, "503 Service Unavailable")
	})()
	ctx := r.Context()
	format, _ := negotiateInfo(r.Header.Get("Accept"))
	for {
		typ, data, err := c.Read(ctx)
		if err != nil {
			return
		}
		msg := &Message{Data: data}
		if msg.Data == nil {
			msg.Data = []byte{}
		}
		if typ == websocket.MessageBinary {
			msg.ContentType = "application/octet-stream"
		}
		_, info, err := h.publish(ctx, channel, msg)
		if err != nil {
			status := statusOf(err)
			code := websocket.StatusPolicyViolation
			switch {
			case errors.Is(err, ErrHubClosed):
				code = websocket.StatusGoingAway
			case status >= 500:
				code = websocket.StatusInternalError
			}
			c.Close(code, strconv.Itoa(status)+" "+http.StatusText(status))
			return
		}
		wctx, cancel := context.WithTimeout(ctx, h.writeTimeout())
		err = c.Write(wctx, websocket.MessageText, formatInfo(info, format, time.Now()))
		cancel()
		if err != nil {
			return
		}
	}
}

// writeTimeout is the deadline for one write; a negative WriteTimeout means
// none (a very long one).
func (h *Hub) writeTimeout() time.Duration {
	if h.opts.WriteTimeout > 0 {
		return h.opts.WriteTimeout
	}
	return 1 << 62
}
