//go:build !unix

package push

import (
	"errors"
	"syscall"
)

// errWouldBlock: the connection's send buffer is full.
var errWouldBlock = errors.New("push: the connection cannot take more now")

// tryWrite cannot write without blocking here: every write goes to a
// goroutine of its own.
func tryWrite(rc syscall.RawConn, b []byte) (int, error) { return 0, errWouldBlock }
