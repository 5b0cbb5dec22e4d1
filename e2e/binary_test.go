package e2e

import (
	"encoding/hex"
	"testing"

	"github.com/pushhub/push"
	"github.com/stretchr/testify/assert"
)

// TestNchanSubscriberBinaryWebSocket: a message published as
// application/octet-stream reaches NchanSubscriber.js as a binary
// ws+meta.nchan frame (S7) whose header the client parses and whose payload
// is every byte value unchanged; text messages around it are unaffected.
// Every message arrives exactly once (see below for the order).
func TestNchanSubscriberBinaryWebSocket(t *testing.T) {
	b := startBrowser(t)
	e := newEnv(t, "e2e-binary", false, false, push.Options{})
	bin := make([]byte, 256)
	for i := range bin {
		bin[i] = byte(255 - i) // starts with 0xff: not UTF-8
	}
	e.pub.publish("before", "text/plain")
	e.pub.publish(string(bin), "application/octet-stream")
	p := e.open(t, b, "websocket")
	waitMessages(p, 2)
	e.pub.publish(string(bin[:3]), "application/octet-stream") // live
	e.pub.publish("after", "text/plain")
	waitMessages(p, 4)

	var st pageState
	p.eval("window.state", &st)
	want := expect("websocket", e.pub.sent)
	for i, s := range e.pub.sent {
		if s.contentType == "application/octet-stream" {
			want[i].Data = "binary:" + hex.EncodeToString([]byte(s.data))
		}
	}
	// NchanSubscriber.js 1.0.10 emits a binary frame only after reading
	// its header with a FileReader, so a text frame that arrives right
	// after it can be emitted first (the frames arrive in order, as their
	// ids show). Hence: every message once, in any order.
	assert.ElementsMatch(t, want, st.Messages)
}

// TestNchanSubscriberImageWebSocket: a message published as image/png (its
// bytes are not UTF-8) reaches NchanSubscriber.js over WebSocket, plain and
// ws+meta.nchan alike, in a binary frame, and the connection stays: a text
// frame that is not UTF-8 would make Chromium fail the connection (RFC 6455
// 8.1) and the client reconnect and fail again.
func TestNchanSubscriberImageWebSocket(t *testing.T) {
	b := startBrowser(t)
	e := newEnv(t, "e2e-png", false, false, push.Options{})
	png := "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
	e.pub.publish("before", "text/plain")
	p := e.open(t, b, "websocket")
	waitMessages(p, 1)
	e.pub.publish(png, "image/png") // live
	waitMessages(p, 2)
	e.pub.publish("after", "text/plain")
	waitMessages(p, 3)

	var st pageState
	p.eval("window.state", &st)
	want := expect("websocket", e.pub.sent)
	want[1].Data = "binary:" + hex.EncodeToString([]byte(png))
	assert.ElementsMatch(t, want, st.Messages)
	assert.Equal(t, 1, st.Connects, "the page reconnected: %+v", st)
	assert.Zero(t, st.Disconnects, "the connection failed: %+v", st)
	assert.Empty(t, st.Errors)
}
