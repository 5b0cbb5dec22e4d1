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
