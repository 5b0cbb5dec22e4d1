package push

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
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
// The client's frames are read with gobwas/ws (see ws_reader.go for why
// not coder/websocket, with the figures); the Hub writes its own frames,
// encoded once per message and shared by every subscriber: an idle
// subscriber is a stream (see stream.go) with one small reader goroutine.
// serveWebSocket owns sub.
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
	rd := &wsReader{peer: s, limit: h.opts.WebSocketReadLimit}
	s.park(c, preamble, func(s *stream) { readWebSocket(s.conn, buffered, rd) })
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
	wsInvalidPayload  = 1007
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
	var small [16]string
	keys := small[:0]
	for k := range hd {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range hd[k] {
			b = append(b, k...)
			b = append(b, ": "...)
			for i := 0; i < len(v); i++ { // as http.Header.Write: no line breaks
				if c := v[i]; c == '\r' || c == '\n' {
					b = append(b, ' ')
				} else {
					b = append(b, c)
				}
			}
			b = append(b, "\r\n"...)
		}
	}
	return b
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
	case err == errAuthorizationExpired:
		return wsPolicyViolation, "401 Unauthorized", true
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

// wsOpcode is the frame type of m: binary for application/octet-stream
// and for any message that is not valid UTF-8 (a browser fails a
// connection whose text frame is not, RFC 6455 8.1), text otherwise.
// It is worked out once per message.
func wsOpcode(m *Message) byte {
	return m.encoded(framingWSOpcode, func(m *Message) []byte {
		if m.ContentType == "application/octet-stream" || !utf8.Valid(m.Data) || !utf8.ValidString(m.ContentType) {
			return []byte{wsBinary}
		}
		return []byte{wsText}
	})[0]
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

// servePublishWebSocket publishes every message the client sends over a
// WebSocket to channel: a text message as a message without content type,
// a binary one as application/octet-stream. Each publish is answered with a
// text frame holding the channel info (in the format the upgrade request's
// Accept header names). A message larger than MaxMessageSize closes the
// connection with 1009; a failed publish closes it with the error; Shutdown
// closes it with 1001 "503 Service Unavailable".
func (h *Hub) servePublishWebSocket(w http.ResponseWriter, r *http.Request, channel string, until time.Time) {
	c, preamble, buffered, _, ok := wsUpgrade(w, r)
	if !ok {
		return
	}
	defer c.Close()
	p := &wsPublisher{hub: h, conn: c, ctx: r.Context(), channel: channel}
	p.format, _ = negotiateInfo(r.Header.Get("Accept"))
	if p.write(preamble) != nil {
		return
	}
	defer context.AfterFunc(h.stopping, func() {
		p.close(appendWSClose(nil, wsGoingAway, "503 Service Unavailable"))
	})()
	if !until.IsZero() { // the authorization ends (EndSubscriptionAt)
		t := time.AfterFunc(time.Until(until), func() {
			p.close(appendWSClose(nil, wsPolicyViolation, "401 Unauthorized"))
		})
		defer t.Stop()
	}
	readWebSocket(c, buffered, &wsReader{peer: p, limit: h.opts.MaxMessageSize, collect: true})
}

// wsPublisher is the peer of a publishing client's reader.
type wsPublisher struct {
	hub     *Hub
	conn    net.Conn
	ctx     context.Context
	channel string
	format  infoFormat

	mu     sync.Mutex // serialises writes
	closed bool       // a close frame was written
}

// write writes b under the write timeout, unless the connection is
// closing.
func (p *wsPublisher) write(b []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return net.ErrClosed
	}
	if t := p.hub.opts.WriteTimeout; t > 0 {
		p.conn.SetWriteDeadline(time.Now().Add(t))
	}
	_, err := p.conn.Write(b)
	return err
}

// close writes the close frame f (once) and half-closes the connection;
// the reader then reads until the client closes its side, or closeWait.
func (p *wsPublisher) close(f []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	p.conn.SetWriteDeadline(time.Now().Add(closeWait))
	p.conn.Write(f)
	if cw, ok := p.conn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		p.conn.SetReadDeadline(time.Now().Add(closeWait))
	} else {
		p.conn.Close()
	}
}

func (p *wsPublisher) wsPing(pong []byte) { p.write(pong) }
func (p *wsPublisher) wsPong()            {}
func (p *wsPublisher) wsClose(reply []byte) {
	p.close(reply)
	p.conn.Close() // the client closed first: nothing more to read
}

func (p *wsPublisher) wsMessage(op byte, data []byte) bool {
	msg := &Message{Data: append([]byte{}, data...)}
	if op == wsBinary {
		msg.ContentType = "application/octet-stream"
	}
	_, info, err := p.hub.publish(p.ctx, p.channel, msg)
	if err != nil {
		status := statusOf(err)
		code := wsPolicyViolation
		switch {
		case errors.Is(err, ErrHubClosed):
			code = wsGoingAway
		case status >= 500:
			code = wsInternalError
		}
		p.close(appendWSClose(nil, code, strconv.Itoa(status)+" "+http.StatusText(status)))
		return true // read the client's close
	}
	info1 := formatInfo(info, p.format, time.Now())
	f := appendWSHeader(make([]byte, 0, 10+len(info1)), wsText, len(info1))
	return p.write(append(f, info1...)) == nil
}
