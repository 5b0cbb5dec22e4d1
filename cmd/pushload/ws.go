package main

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
)

// The -ws-reader values: how WebSocket subscribers read their frames.
const (
	wsReaderGoroutine = "goroutine" // github.com/coder/websocket, a goroutine per connection
	wsReaderEpoll     = "epoll"     // one event loop per worker process (Linux)
)

// wsGUID is appended to Sec-WebSocket-Key to compute Sec-WebSocket-Accept
// (RFC 6455, section 1.3).
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// maxWSFrame is the largest frame payload accepted, as for HTTP bodies.
const maxWSFrame = 1 << 24

// WebSocket opcodes (RFC 6455, section 5.2).
const (
	wsContinuation = 0x0
	wsText         = 0x1
	wsBinary       = 0x2
	wsClose        = 0x8
	wsPing         = 0x9
	wsPong         = 0xa
)

var errWSFragmented = errors.New("fragmented WebSocket message (FIN=0): not supported")

// wsAcceptKey returns the Sec-WebSocket-Accept value that answers key.
func wsAcceptKey(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// dialWS connects to the server and performs the WebSocket opening
// handshake for channel ch. It returns the connection and the bytes read
// past the end of the response's headers, which are the start of the
// frames (nil if there are none). The connection carries the run's
// deadline, and the end of the run closes it while the handshake is under
// way.
func (w *worker) dialWS(ch string) (net.Conn, []byte, error) {
	hc, err := dialHTTP(w.ctx, w.dialer, w.sub.host, 512)
	if err != nil {
		return nil, nil, err
	}
	stop := w.closeOnDone(hc.c)
	var k [16]byte
	rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	hdrs := make([]byte, 0, 128)
	hdrs = append(hdrs, "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "...)
	hdrs = append(hdrs, key...)
	hdrs = append(hdrs, "\r\n"...)
	err = hc.writeRequest("GET", w.sub.path(ch), w.sub.host, hdrs, nil)
	if err == nil {
		err = hc.readHeader()
	}
	if err == nil && hc.status != 101 {
		err = fmt.Errorf("WebSocket handshake answered %d", hc.status)
	}
	if want := wsAcceptKey(key); err == nil && string(hc.wsAccept) != want {
		err = fmt.Errorf("WebSocket handshake: Sec-WebSocket-Accept is %q, want %q", hc.wsAccept, want)
	}
	if !stop() && err == nil {
		err = w.ctx.Err() // the end of the run closed the connection
	}
	if err != nil {
		hc.close()
		return nil, nil, err
	}
	var rest []byte
	if n := hc.br.Buffered(); n > 0 {
		b, _ := hc.br.Peek(n)
		rest = append(rest, b...)
	}
	return hc.c, rest, nil
}

// nextWSFrame parses the server-to-client frame at the start of b. It
// returns the frame's FIN bit, opcode and payload, and its size in bytes;
// size is 0 if b holds only part of the frame. Server frames are unmasked,
// and with no extension negotiated the RSV bits are zero.
func nextWSFrame(b []byte) (fin bool, op byte, payload []byte, size int, err error) {
	if len(b) < 2 {
		return false, 0, nil, 0, nil
	}
	fin, op = b[0]&0x80 != 0, b[0]&0x0f
	if b[0]&0x70 != 0 {
		return false, 0, nil, 0, fmt.Errorf("WebSocket frame with RSV bits %#x set", b[0]&0x70)
	}
	if b[1]&0x80 != 0 {
		return false, 0, nil, 0, errors.New("masked WebSocket frame from the server")
	}
	n, h := uint64(b[1]&0x7f), 2
	switch n {
	case 126:
		if len(b) < 4 {
			return false, 0, nil, 0, nil
		}
		n, h = uint64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return false, 0, nil, 0, nil
		}
		n, h = binary.BigEndian.Uint64(b[2:]), 10
	}
	if op >= wsClose && (!fin || n > 125) {
		return false, 0, nil, 0, fmt.Errorf("WebSocket control frame (opcode %d) fragmented or longer than 125 bytes", op)
	}
	if n > maxWSFrame {
		return false, 0, nil, 0, fmt.Errorf("WebSocket frame of %d bytes is too large", n)
	}
	if uint64(len(b)-h) < n {
		return false, 0, nil, 0, nil
	}
	size = h + int(n)
	return fin, op, b[h:size:size], size, nil
}

// wsCloseError describes a close frame's payload: a status code and a
// reason, both optional.
func wsCloseError(payload []byte) error {
	if len(payload) < 2 {
		return errors.New("WebSocket closed by the server")
	}
	return fmt.Errorf("WebSocket closed by the server: status %d %q",
		binary.BigEndian.Uint16(payload), payload[2:])
}
