//go:build unix

package sock

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestReaderAsConnRead: a Reader answers as net.Conn.Read does: what
// the peer sent, the read deadline's error, and io.EOF once the peer has
// closed.
func TestReaderAsConnRead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer client.Close()
	server, err := ln.Accept()
	require.NoError(t, err)
	defer server.Close()
	r := NewReader(server)
	require.NotNil(t, r)
	buf := make([]byte, 64)

	done := make(chan struct{})
	go func() {
		defer close(done)
		n, err := r.Read(buf) // waits in the poller: nothing sent yet
		if err != nil || string(buf[:n]) != "hello" {
			t.Errorf("read %q, %v; want hello", buf[:n], err)
		}
	}()
	_, err = client.Write([]byte("hello"))
	require.NoError(t, err)
	<-done

	server.SetReadDeadline(time.Now().Add(-time.Second))
	_, err = r.Read(buf)
	require.True(t, errors.Is(err, os.ErrDeadlineExceeded), "%v", err)
	server.SetReadDeadline(time.Time{})

	_, err = client.Write([]byte("bye"))
	require.NoError(t, err)
	require.NoError(t, client.Close())
	var got []byte
	for {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			require.ErrorIs(t, err, io.EOF)
			break
		}
	}
	require.Equal(t, "bye", string(got))
}
