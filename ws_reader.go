package push

import (
	"encoding/binary"
	"net"
	"strconv"
	"time"
	"unicode/utf8"
)

// wsPeer receives what a wsReader reads from a WebSocket client.
type wsPeer interface {
	// wsPing asks for pong, the answer to a ping, to be written.
	wsPing(pong []byte)
	// wsPong notes a pong.
	wsPong()
	// wsClose asks for reply, a close frame, to be written and the
	// connection to end: the client closed, or broke the protocol.
	wsClose(reply []byte)
	// wsMessage receives a whole data message (only from a collecting
	// reader); data is reused after it returns. False stops reading.
	wsMessage(op byte, data []byte) bool
}

// readWebSocket reads a client's frames from c (after buffered, what came
// with the handshake) into r until c fails or is closed, or r stops.
//
// For a subscriber this is the one goroutine of an idle connection, so it
// keeps its stack small: it blocks in Read from a shallow frame, and the
// parsing is a state machine fed between reads.
func readWebSocket(c net.Conn, buffered []byte, r *wsReader) {
	if len(buffered) > 0 && !r.feed(buffered) {
		return
	}
	for {
		n, err := c.Read(r.buf[:])
		if n > 0 && !r.feed(r.buf[:n]) {
			return
		}
		if err != nil {
			return
		}
	}
}

// wsReader parses the frames a client sends (RFC 6455 5): pings, pongs and
// closes go to peer; data messages are discarded or, with collect, handed
// to peer whole; a message over limit bytes closes the connection with
// 1009, a protocol error with 1002.
type wsReader struct {
	peer    wsPeer
	limit   int64
	collect bool
	buf     [128]byte

	hdr       [14]byte // the frame header being read
	hn        int      // bytes of hdr read
	inPayload bool
	remain    int64 // payload bytes left in the frame
	op        byte  // of the frame
	msgOp     byte  // of the message (its first frame)
	fin       bool
	mask      [4]byte
	mpos      int
	ctl       []byte // a control frame's payload
	data      []byte // the data message, when collecting
	size      int64  // the data message's size so far
	inMessage bool
	closing   bool
	pending   [3]byte // the start of a character split across frames or reads
	pn        uint8   // bytes in pending
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

// feed parses p; false: the reader is to stop.
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
			switch {
			case r.op >= wsClose:
				r.ctl = r.unmask(r.ctl, p[:n])
			case r.collect:
				start := len(r.data)
				r.data = r.unmask(r.data, p[:n])
				if r.msgOp == wsText && !r.validUTF8(r.data[start:]) {
					return r.fail(wsInvalidPayload, "invalid UTF-8 in a text message")
				}
			case r.msgOp == wsText:
				// Discarded, but checked: a text message must be UTF-8
				// (RFC 6455 8.1).
				if !r.checkText(p[:n]) {
					return r.fail(wsInvalidPayload, "invalid UTF-8 in a text message")
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

// unmask appends p unmasked to b.
func (r *wsReader) unmask(b, p []byte) []byte {
	for _, c := range p {
		b = append(b, c^r.mask[r.mpos&3])
		r.mpos++
	}
	return b
}

// checkText unmasks masked text bytes p piece by piece into a small
// buffer (p is left as it is) and checks that they continue valid UTF-8.
func (r *wsReader) checkText(p []byte) bool {
	var c [64]byte
	for len(p) > 0 {
		n := copy(c[:], p)
		for i := range n {
			c[i] ^= r.mask[r.mpos&3]
			r.mpos++
		}
		if !r.validUTF8(c[:n]) {
			return false
		}
		p = p[n:]
	}
	return true
}

// validUTF8 checks the next bytes of a text message, which may end inside
// a character (its first bytes are kept for the next call); the message's
// end checks that nothing is left over.
func (r *wsReader) validUTF8(p []byte) bool {
	for r.pn > 0 && len(p) > 0 {
		var c [utf8.UTFMax]byte
		n := copy(c[:], r.pending[:r.pn])
		k := copy(c[n:], p)
		if !utf8.FullRune(c[:n+k]) {
			r.pn = uint8(copy(r.pending[:], c[:n+k]))
			return true
		}
		_, size := utf8.DecodeRune(c[:n+k])
		if size <= n || !utf8.Valid(c[:size]) { // invalid, or not valid with the new bytes
			return false
		}
		p, r.pn = p[size-n:], 0
	}
	if len(p) == 0 {
		return true // pending, if any, waits for more
	}
	// Keep an unfinished character at the end for the next bytes.
	i := len(p)
	for j := len(p) - 1; j >= 0 && j >= len(p)-3; j-- {
		if !utf8.RuneStart(p[j]) {
			continue
		}
		if !utf8.FullRune(p[j:]) {
			i = j
		}
		break
	}
	if !utf8.Valid(p[:i]) {
		return false
	}
	r.pn = uint8(copy(r.pending[:], p[i:]))
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
	case r.op > wsPong:
		return r.fail(wsProtocolError, "unknown opcode")
	case r.op >= wsClose:
		if n > 125 || !r.fin {
			return r.fail(wsProtocolError, "bad control frame")
		}
	case r.op == wsText || r.op == wsBinary:
		if r.inMessage {
			return r.fail(wsProtocolError, "a new message inside a fragmented one")
		}
		r.inMessage, r.size, r.msgOp, r.data = true, 0, r.op, r.data[:0]
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
		r.peer.wsPing(append(f, r.ctl...))
	case wsPong:
		r.peer.wsPong()
	case wsClose:
		if !r.closing {
			r.closing = true
			r.peer.wsClose(closeReply(r.ctl))
		}
	default: // data
		if r.fin {
			r.inMessage = false
			if r.msgOp == wsText && r.pn > 0 {
				r.pn = 0
				return r.fail(wsInvalidPayload, "a text message ends inside a UTF-8 character")
			}
			if r.collect && !r.closing { // nothing counts after a close (RFC 6455 5.5.1)
				return r.peer.wsMessage(r.msgOp, r.data)
			}
		}
	}
	return true
}

// closeReply is the close frame that answers a client's close frame with
// payload p (RFC 6455 5.5.1, 7.4): none, an empty one; a valid code with a
// UTF-8 reason, that code; a one-byte payload or a code no endpoint may
// send (below 1000, 1004-1006, 1015, 1016-2999), 1002; a reason that is not
// UTF-8, 1007.
func closeReply(p []byte) []byte {
	switch {
	case len(p) == 0:
		return appendWSHeader(nil, wsClose, 0)
	case len(p) == 1:
		return appendWSClose(nil, wsProtocolError, "a close payload of one byte")
	}
	code := int(binary.BigEndian.Uint16(p))
	if !validCloseCode(code) {
		return appendWSClose(nil, wsProtocolError, "invalid close code "+strconv.Itoa(code))
	}
	if !utf8.Valid(p[2:]) {
		return appendWSClose(nil, wsInvalidPayload, "close reason is not UTF-8")
	}
	return appendWSClose(nil, code, "")
}

// validCloseCode reports whether an endpoint may send code in a close
// frame (RFC 6455 7.4.1, 7.4.2, and the IANA registry: 1012-1014 are
// registered; 1004, 1005, 1006 and 1015 are reserved, never sent).
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// fail asks for a close with code and reason; the reader stops.
func (r *wsReader) fail(code int, reason string) bool {
	r.peer.wsClose(appendWSClose(nil, code, reason))
	return false
}

// A subscriber's stream is the peer of its reader.

func (s *stream) wsPing(pong []byte) {
	s.pongFrame.Store(&pong)
	s.postAsync(evPong)
}

func (s *stream) wsPong() { s.lastPong.Store(time.Now().UnixNano()) }

func (s *stream) wsClose(reply []byte) {
	s.closeFrame.Store(&reply)
	s.postAsync(evPeerClose)
}

func (s *stream) wsMessage(byte, []byte) bool { return true }
