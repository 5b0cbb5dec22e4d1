package push

import (
	"encoding/binary"
	"net"
	"time"
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
				r.data = r.unmask(r.data, p[:n])
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
			if len(r.ctl) >= 2 {
				r.peer.wsClose(appendWSClose(nil, int(binary.BigEndian.Uint16(r.ctl)), ""))
			} else {
				r.peer.wsClose(appendWSHeader(nil, wsClose, 0))
			}
		}
	default: // data
		if r.fin {
			r.inMessage = false
			if r.collect {
				return r.peer.wsMessage(r.msgOp, r.data)
			}
		}
	}
	return true
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
