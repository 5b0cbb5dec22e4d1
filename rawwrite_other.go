//go:build !unix

package push

import (
	"errors"
	"syscall"
)

// errWouldBlock: the connection's send buffer is full.
var errWouldBlock = errors.New("push: the connection cannot take more now")

// rawWriter cannot write without blocking here: every write goes to a
// goroutine of its own.
type rawWriter struct{}

func newRawWriter(syscall.RawConn) *rawWriter { return nil }

func (w *rawWriter) tryWrite(b []byte) (int, error) { return 0, errWouldBlock }

// rawReader: net.Conn.Read is used instead.
type rawReader struct{}

func newRawReader(syscall.RawConn) *rawReader { return nil }

func (r *rawReader) Read(b []byte) (int, error) { return 0, errors.ErrUnsupported }

// rawFD: no batched writes here.
func rawFD(syscall.RawConn) int32 { return -1 }
