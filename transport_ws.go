package push

import (
	"context"
	"errors"
	"io"
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
// are read and discarded. Endings: close 1001 "410 Gone" on delete, 1001
// "503 Service Unavailable" on Shutdown, 1000 "408 Request Timeout" on
// subscriber timeout, 1000 "409 Conflict" under the Concurrency policy,
// 1011 "503 Service Unavailable" on store errors. A peer that does not answer a ping, or does not
// take a frame within WriteTimeout, is disconnected.
func (h *Hub) serveWebSocket(w http.ResponseWriter, r *http.Request, sub *Subscription) {
	cw := &corkingWriter{ResponseWriter: w}
	c, err := websocket.Accept(cw, r, &websocket.AcceptOptions{
		Subprotocols: []string{wsMetaProtocol},
		// The origin was checked by checkOrigin under Options.AllowedOrigins.
		InsecureSkipVerify: true,
	})
	if err != nil {
		return // Accept answered the request
	}
	cw.conn.timeout = h.opts.WriteTimeout
	c.SetReadLimit(h.opts.WebSocketReadLimit)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer cancel()
		for {
			_, rd, err := c.Reader(ctx)
			if err != nil {
				return
			}
			if _, err := io.Copy(io.Discard, rd); err != nil {
				return
			}
		}
	}()
	f := &wsFraming{c: c, conn: cw.conn, ctx: ctx, sub: sub, meta: c.Subprotocol() == wsMetaProtocol,
		multi: len(sub.channels) > 1, timeout: h.opts.WriteTimeout, pingWait: h.opts.WriteTimeout}
	if f.pingWait <= 0 {
		f.pingWait = h.opts.PingInterval
	}
	err = h.pump(ctx, sub, f, nil, 0)
	f.flush()
	if code, reason, ok := wsCloseFor(err); ok && ctx.Err() == nil {
		c.Close(code, reason)
	} else {
		c.CloseNow()
	}
	cancel()
	<-readDone
	h.ended(TransportWebSocket, sub, err)
}

// wsCloseFor returns the close frame for a subscription that ended with err,
// or false when the connection is gone, failed or too slow (it is closed
// without a frame).
func wsCloseFor(err error) (websocket.StatusCode, string, bool) {
	switch {
	case err == nil:
		return 0, "", false
	case errors.Is(err, ErrChannelDeleted):
		return websocket.StatusGoingAway, "410 Gone", true
	case errors.Is(err, ErrHubClosed):
		return websocket.StatusGoingAway, "503 Service Unavailable", true
	case err == errSubscriberTimeout:
		return websocket.StatusNormalClosure, "408 Request Timeout", true
	case errors.Is(err, ErrConflict):
		return websocket.StatusNormalClosure, "409 Conflict", true
	}
	var we *connError
	if errors.As(err, &we) || errors.Is(err, context.Canceled) {
		return 0, "", false // the connection is gone or too slow
	}
	status := statusOf(err) // a store error
	return websocket.StatusInternalError, strconv.Itoa(status) + " " + http.StatusText(status), true
}

type wsFraming struct {
	c        *websocket.Conn
	conn     *corkConn // under c
	ctx      context.Context
	sub      *Subscription
	meta     bool
	multi    bool
	timeout  time.Duration
	pingWait time.Duration
	buf      []byte
}

// write writes one frame into the corked connection (see ws_cork.go); the
// batch goes out, under the write deadline, on flush. The frame only goes
// into a buffer, so it needs no context of its own (a cancellable one would
// cost coder/websocket a context.AfterFunc per frame); closing the
// connection still releases a write waiting for coder/websocket's lock.
func (f *wsFraming) write(typ websocket.MessageType, data []byte) error {
	f.conn.cork()
	return f.c.Write(context.Background(), typ, data)
}

func (f *wsFraming) message(m *Message) error {
	typ := websocket.MessageText
	if m.ContentType == "application/octet-stream" {
		typ = websocket.MessageBinary
	}
	data := m.Data
	switch {
	case !f.meta:
	case !f.multi:
		data = m.encoded(framingWSMeta, buildWSMeta)
	default:
		f.buf = append(f.buf[:0], "id: "...)
		f.buf = append(f.buf, f.sub.Position()...)
		f.buf = append(f.buf, '\n')
		f.buf = append(f.buf, m.encoded(framingWSMetaBody, buildWSMetaBody)...)
		data = f.buf
	}
	return f.write(typ, data)
}

// missed sends, in ws+meta mode, a frame with the position before the gap
// and content type application/x-push-missed, and no payload.
func (f *wsFraming) missed() error {
	if !f.meta {
		return nil
	}
	frame := "id: " + f.sub.gapFrom + "\ncontent-type: " + wsMissedType + "\n\n"
	return f.write(websocket.MessageText, []byte(frame))
}

// flush writes the batch of frames.
func (f *wsFraming) flush() error { return f.conn.uncork() }

// ping sends a ping and waits up to WriteTimeout for the pong (the reader
// goroutine reads it).
func (f *wsFraming) ping() error {
	ctx, cancel := context.WithTimeout(f.ctx, f.pingWait)
	defer cancel()
	return f.c.Ping(ctx)
}

// buildWSMeta is the ws+meta frame of a single-channel message.
func buildWSMeta(m *Message) []byte {
	return withIDLine(m, m.encoded(framingWSMetaBody, buildWSMetaBody))
}

// buildWSMetaBody is a ws+meta frame after its id line.
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
