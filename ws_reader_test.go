package push

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
)

// wsTestPeer records what a wsReader reports.
type wsTestPeer struct {
	pings    [][]byte
	pongs    int
	closes   [][]byte
	messages []string
	ops      []byte
}

func (p *wsTestPeer) wsPing(pong []byte)   { p.pings = append(p.pings, pong) }
func (p *wsTestPeer) wsPong()              { p.pongs++ }
func (p *wsTestPeer) wsClose(reply []byte) { p.closes = append(p.closes, reply) }
func (p *wsTestPeer) wsMessage(op byte, data []byte) bool {
	p.ops = append(p.ops, op)
	p.messages = append(p.messages, string(data))
	return true
}

// clientFrame is a masked frame as a client sends it.
func clientFrame(fin bool, op byte, payload string) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xFFFF:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = binary.BigEndian.AppendUint64(append(b, 0x80|127), uint64(n))
	}
	mask := [4]byte{0x12, 0x34, 0x56, 0x78}
	b = append(b, mask[:]...)
	for i := range len(payload) {
		b = append(b, payload[i]^mask[i&3])
	}
	return b
}

// feedAll reads in with r in pieces of step bytes (all at once when 0);
// false: the reader stopped (it asked for a close, or the peer said stop).
func feedAll(r *wsReader, in []byte, step int) bool {
	var src io.Reader = bytes.NewReader(in)
	if step > 0 {
		src = &chunkReader{in: in, step: step}
	}
	return r.read(src)
}

// chunkReader hands out in at most step bytes per Read.
type chunkReader struct {
	in   []byte
	step int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.in) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.step)], c.in)
	c.in = c.in[n:]
	return n, nil
}

// Frames split anywhere parse the same: fragmented messages with control
// frames between their fragments, extended lengths, pings answered with
// their payload, and a close echoed with its code.
func TestWSReaderFrames(t *testing.T) {
	big := string(make([]byte, 70000))
	var in []byte
	in = append(in, clientFrame(false, wsText, "hel")...)
	in = append(in, clientFrame(true, wsPing, "p1")...)
	in = append(in, clientFrame(true, wsContinuation, "lo")...)
	in = append(in, clientFrame(true, wsBinary, string(make([]byte, 300)))...)
	in = append(in, clientFrame(true, wsText, big)...)
	in = append(in, clientFrame(true, wsPong, "")...)
	in = append(in, clientFrame(true, wsClose, "\x03\xe8bye")...)
	for _, step := range []int{0, 1, 3, 127} {
		p := &wsTestPeer{}
		r := &wsReader{peer: p, collect: true, limit: 1 << 20}
		assert.True(t, feedAll(r, in, step), "step %d", step)
		assert.Equal(t, []string{"hello", string(make([]byte, 300)), big}, p.messages, "step %d", step)
		assert.Equal(t, []byte{wsText, wsBinary, wsText}, p.ops)
		assert.Equal(t, [][]byte{{0x8A, 2, 'p', '1'}}, p.pings)
		assert.Equal(t, 1, p.pongs)
		assert.Equal(t, [][]byte{{0x88, 2, 0x03, 0xe8}}, p.closes)
	}
}

// A subscriber's reader discards data; what breaks the protocol or the
// read limit is closed with 1002 or 1009 and stops the reader.
func TestWSReaderRefuses(t *testing.T) {
	unmasked := clientFrame(true, wsText, "x")
	unmasked[1] &^= 0x80
	rsv := clientFrame(true, wsText, "x")
	rsv[0] |= 0x40
	for name, c := range map[string]struct {
		in   []byte
		code uint16
	}{
		"unmasked":          {unmasked, wsProtocolError},
		"extension bits":    {rsv, wsProtocolError},
		"long control":      {clientFrame(true, wsPing, string(make([]byte, 126))), wsProtocolError},
		"fragmented ping":   {clientFrame(false, wsPing, ""), wsProtocolError},
		"lone continuation": {clientFrame(true, wsContinuation, "x"), wsProtocolError},
		"unknown opcode":    {clientFrame(true, 3, "x"), wsProtocolError},
		"new message inside": {append(clientFrame(false, wsText, "a"), clientFrame(true, wsText, "b")...),
			wsProtocolError},
		"too big":           {clientFrame(true, wsBinary, string(make([]byte, 101))), wsMessageTooBig},
		"too big in pieces": {append(clientFrame(false, wsText, string(make([]byte, 60))), clientFrame(true, wsContinuation, string(make([]byte, 60)))...), wsMessageTooBig},
	} {
		p := &wsTestPeer{}
		r := &wsReader{peer: p, limit: 100}
		assert.False(t, feedAll(r, c.in, 0), name)
		if assert.Len(t, p.closes, 1, name) {
			assert.Equal(t, c.code, binary.BigEndian.Uint16(p.closes[0][2:4]), name)
		}
		assert.Empty(t, p.messages, name)
	}
}

// FuzzWSReader feeds arbitrary bytes in arbitrary pieces: the reader never
// panics, never hands over a message over its limit, and stops for good
// once it has asked for a close.
func FuzzWSReader(f *testing.F) {
	f.Add(clientFrame(true, wsText, "hello"), uint8(1))
	f.Add(append(clientFrame(false, wsBinary, "a"), clientFrame(true, wsContinuation, "b")...), uint8(0))
	f.Add(clientFrame(true, wsClose, "\x03\xe8"), uint8(2))
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		p := &wsTestPeer{}
		r := &wsReader{peer: p, collect: true, limit: 64}
		ok := feedAll(r, in, int(step))
		for _, m := range p.messages {
			if len(m) > 64 {
				t.Fatalf("a message of %d bytes passed the limit of 64", len(m))
			}
		}
		if !ok && len(p.closes) == 0 {
			t.Fatal("the reader stopped without asking for a close")
		}
	})
}

// The streaming UTF-8 check agrees with utf8.Valid however a text message
// is split into frames, for valid and invalid sequences alike; a publisher
// gets only the valid ones, the others close with 1007.
func TestWSReaderUTF8Splits(t *testing.T) {
	for _, s := range []string{
		"", "a", "µ", "€", "𝄞", "a€b𝄞c", "\xff", "\xce", "\xe2\x82", "\xf0\x9d\x84", "\xc0\xaf",
		"\xed\xa0\x80", "\xf4\x90\x80\x80", "ok\xe2\x82", "€\x80", "\xe2\x82\xe2\x82\xac", "a\xf0\x9d\x84\x9e\xf0",
	} {
		for cut1 := 0; cut1 <= len(s); cut1++ {
			for cut2 := cut1; cut2 <= len(s); cut2++ {
				in := clientFrame(false, wsText, s[:cut1])
				in = append(in, clientFrame(false, wsContinuation, s[cut1:cut2])...)
				in = append(in, clientFrame(true, wsContinuation, s[cut2:])...)
				for _, step := range []int{0, 1} {
					p := &wsTestPeer{}
					r := &wsReader{peer: p, collect: true}
					ok := feedAll(r, in, step)
					assert.Equal(t, utf8.ValidString(s), ok, "%q cut at %d and %d", s, cut1, cut2)
					if ok {
						assert.Equal(t, []string{s}, p.messages)
					} else if assert.Len(t, p.closes, 1) {
						assert.Equal(t, uint16(wsInvalidPayload), binary.BigEndian.Uint16(p.closes[0][2:4]))
						assert.Empty(t, p.messages)
					}
				}
			}
		}
	}
}
