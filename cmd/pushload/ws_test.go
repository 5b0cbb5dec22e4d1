package main

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestNextWSFrame(t *testing.T) {
	for _, size := range []int{0, 125, 126, 65535, 65536} {
		payload := bytes.Repeat([]byte{'x'}, size)
		f := []byte{0x80 | wsBinary}
		switch {
		case size < 126:
			f = append(f, byte(size))
		case size < 1<<16:
			f = binary.BigEndian.AppendUint16(append(f, 126), uint16(size))
		default:
			f = binary.BigEndian.AppendUint64(append(f, 127), uint64(size))
		}
		f = append(f, payload...)
		for i := 0; i < len(f); i += max(1, len(f)/100) {
			if _, _, _, n, err := nextWSFrame(f[:i]); n != 0 || err != nil {
				t.Fatalf("%d-byte payload, first %d bytes: size %d, %v; want 0, nil", size, i, n, err)
			}
		}
		fin, op, p, n, err := nextWSFrame(append(f, 0x81))
		if !fin || op != wsBinary || !bytes.Equal(p, payload) || n != len(f) || err != nil {
			t.Fatalf("%d-byte payload: %v %d %d bytes, size %d, %v", size, fin, op, len(p), n, err)
		}
	}
	for _, bad := range [][]byte{
		{0x81, 0x81, 1, 2, 3, 4, 'x'},          // masked
		{0xc1, 0x01, 'x'},                      // RSV1 (compression) not negotiated
		{0x89, 126, 0, 126},                    // a ping longer than 125 bytes
		{0x09, 0x00},                           // a fragmented ping
		{0x82, 127, 0, 0, 0, 0, 0x10, 0, 0, 0}, // 256 MiB
	} {
		if _, _, _, _, err := nextWSFrame(bad); err == nil {
			t.Errorf("nextWSFrame(% x) accepted", bad)
		}
	}
}

func TestWSAcceptKey(t *testing.T) {
	// The example of RFC 6455, section 1.3.
	if got := wsAcceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Errorf("wsAcceptKey = %q", got)
	}
}
