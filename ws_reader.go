package push

import (
	"errors"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// The frames a client sends are read with gobwas/ws: its frame header
// reader and checks (RFC 6455 5.2-5.5: masking, reserved bits and opcodes,
// control frames, continuations), its unmasking, its streaming UTF-8
// check (8.1) and its close code rules (7.4). The Hub writes its own
// frames (transport_ws.go): a message is framed once and the bytes shared
// by every subscriber.
//
// Why gobwas/ws and not coder/websocket (the design card's choice): what
// an idle subscriber costs. bench/wsidle holds 5,000 idle server
// connections each way and counts the bytes per connection above the same
// sockets held with no goroutine (2026-12-07, this machine, two runs):
//
//	coder/websocket  15,150  (a Conn, its buffers and goroutine, blocked in Conn.Read)
//	gobwas/ws         2,590  (one goroutine blocked in ws.ReadHeader)
//	hand-written      2,710  (the reader this one replaced: a goroutine blocked in Read)
//
// The target is an idle WebSocket subscriber at 0.8x Nchan's memory or
// less. bench/compare.sh -only idle-ws -no-warmup -r 3 (10,000
// subscribers, PSS per subscriber, median of 3; Nchan 10.2 KiB in every
// run; shared machine, so figures move by a few percent):
//
//	before (hand-written reader, a5868ec)            7.04 KiB  0.69x
//	hand-written, with the UTF-8 and close fixes     7.13 KiB  0.70x
//	gobwas/ws, idle goroutine blocked in ReadHeader  8.63 KiB  0.85x (missed)
//	gobwas/ws, idle goroutine blocked in read (now)  7.35 KiB  0.72x
//
// coder/websocket alone would cost more than pushd's whole subscriber.
// gobwas/ws meets the target once the idle goroutine waits in a shallow
// Read of its own (read, below) rather than deep in ws.ReadHeader: the
// collector shrinks a parked goroutine's stack to what it uses.

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
func readWebSocket(c net.Conn, buffered []byte, r *wsReader) {
	r.pre = buffered
	r.read(c)
}

// wsReader reads the frames a client sends: pings, pongs and closes go to
// peer; data messages are discarded or, with collect, handed to peer
// whole. Text messages are checked as UTF-8 either way (1007); a message
// over limit bytes closes the connection with 1009, a protocol error with
// 1002.
//
// For a subscriber its goroutine is the one goroutine of an idle
// connection, so between frames it blocks in Read from its shallowest
// frame (read), into its own small buffer: the garbage collector then
// shrinks the goroutine's stack back to the minimum, whatever depth
// ws.ReadHeader and the payload reads needed.
type wsReader struct {
	peer    wsPeer
	limit   int64
	collect bool

	src  io.Reader // the connection
	pre  []byte    // what came with the handshake, read first
	in   []byte    // bytes read ahead into raw, not parsed yet
	err  error     // the error that came with them
	raw  [64]byte
	out  []byte // payload bytes, unmasked (allocated by the first payload)
	ctl  []byte // a control frame's payload
	data []byte // the data message, when collecting

	frame  io.LimitedReader    // the payload of the frame being read
	cipher wsutil.CipherReader // frame, unmasked
	utf8   wsutil.UTF8Reader   // cipher, checked (text messages)

	state   ws.State
	msgOp   ws.OpCode
	size    int64
	closing bool
	stopped bool // the reader asked for a close or the peer said stop
}

// read reads frames from src until it fails or the reader stops; it
// reports false when the reader stopped (a close was asked for, or the
// peer said stop).
func (r *wsReader) read(src io.Reader) bool {
	r.src, r.state = src, ws.StateServerSide
	for {
		if len(r.pre) == 0 && len(r.in) == 0 && r.err == nil {
			n, err := src.Read(r.raw[:]) // idle: block here
			r.in, r.err = r.raw[:n], err
		}
		if !r.frameIn() {
			return !r.stopped
		}
	}
}

// Read reads what the connection sent: first pre, then what was read
// ahead, then the connection.
func (r *wsReader) Read(p []byte) (int, error) {
	switch {
	case len(r.pre) > 0:
		n := copy(p, r.pre)
		r.pre = r.pre[n:]
		return n, nil
	case len(r.in) > 0:
		n := copy(p, r.in)
		r.in = r.in[n:]
		return n, nil
	case r.err != nil:
		return 0, r.err
	}
	return r.src.Read(p)
}

// frameIn reads one frame and acts on it; false: stop reading.
func (r *wsReader) frameIn() bool {
	h, err := ws.ReadHeader(r)
	if err != nil {
		if errors.Is(err, ws.ErrHeaderLengthMSB) || errors.Is(err, ws.ErrHeaderLengthUnexpected) {
			return r.fail(wsProtocolError, "bad frame length")
		}
		return false
	}
	if err := ws.CheckHeader(h, r.state); err != nil {
		return r.fail(wsProtocolError, err.Error())
	}
	control := h.OpCode.IsControl()
	if !control {
		if h.OpCode != ws.OpContinuation {
			r.msgOp, r.size, r.data = h.OpCode, 0, r.data[:0]
			r.utf8.Reset(&r.cipher)
		}
		r.state = r.state.Clear(ws.StateFragmented)
		if !h.Fin {
			r.state = r.state.Set(ws.StateFragmented)
		}
		if r.size += h.Length; r.limit > 0 && r.size > r.limit {
			return r.fail(wsMessageTooBig, "message too big")
		}
	}
	r.ctl = r.ctl[:0]
	if h.Length > 0 {
		if r.out == nil {
			r.out = make([]byte, 512)
		}
		r.frame = io.LimitedReader{R: r, N: h.Length}
		r.cipher.Reset(&r.frame, h.Mask)
		payload := io.Reader(&r.cipher)
		if !control && r.msgOp == ws.OpText {
			payload = &r.utf8
		}
		for r.frame.N > 0 {
			n, err := payload.Read(r.out)
			switch {
			case control:
				r.ctl = append(r.ctl, r.out[:n]...)
			case r.collect:
				r.data = append(r.data, r.out[:n]...)
			}
			if errors.Is(err, wsutil.ErrInvalidUTF8) {
				return r.fail(wsInvalidPayload, "invalid UTF-8 in a text message")
			}
			if err != nil && r.frame.N > 0 {
				return false // the connection ended inside a frame
			}
		}
	}
	switch h.OpCode {
	case ws.OpPing:
		f := appendWSHeader(make([]byte, 0, 2+len(r.ctl)), wsPong, len(r.ctl))
		r.peer.wsPing(append(f, r.ctl...))
	case ws.OpPong:
		r.peer.wsPong()
	case ws.OpClose:
		if !r.closing {
			r.closing = true
			r.peer.wsClose(closeReply(r.ctl))
		}
	default: // data
		if !h.Fin {
			return true
		}
		if r.msgOp == ws.OpText && !r.utf8.Valid() {
			return r.fail(wsInvalidPayload, "a text message ends inside a UTF-8 character")
		}
		// Nothing counts after a close (RFC 6455 5.5.1).
		if r.collect && !r.closing && !r.peer.wsMessage(byte(r.msgOp), r.data) {
			r.stopped = true
			return false
		}
	}
	return true
}

// closeReply is the close frame that answers a client's close frame with
// payload p (RFC 6455 5.5.1, 7.4), by gobwas/ws's rules: none, an empty
// one; a valid code with a UTF-8 reason, that code; a one-byte payload or
// a code no endpoint may send (0-999, 1004-1006, 1012-2999), 1002; a
// reason that is not UTF-8, 1007.
func closeReply(p []byte) []byte {
	switch {
	case len(p) == 0:
		return appendWSHeader(nil, wsClose, 0)
	case len(p) == 1:
		return appendWSClose(nil, wsProtocolError, "a close payload of one byte")
	}
	code, reason := ws.ParseCloseFrameDataUnsafe(p)
	switch err := ws.CheckCloseFrameData(code, reason); {
	case err == ws.ErrProtocolInvalidUTF8:
		return appendWSClose(nil, wsInvalidPayload, "close reason is not UTF-8")
	case err != nil:
		return appendWSClose(nil, wsProtocolError, "close code "+strconv.Itoa(int(code))+": "+err.Error())
	}
	return appendWSClose(nil, int(code), "")
}

// fail asks for a close with code and reason; the reader stops.
func (r *wsReader) fail(code int, reason string) bool {
	r.peer.wsClose(appendWSClose(nil, code, reason))
	r.stopped = true
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
