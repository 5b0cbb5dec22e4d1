//go:build unix

package push

import (
	"errors"
	"io"
	"syscall"
)

// errWouldBlock: the connection's send buffer is full.
var errWouldBlock = errors.New("push: the connection cannot take more now")

// tryWrite writes b to a non-blocking socket without waiting: it returns
// how much the socket took, and errWouldBlock if that is not all of b.
func tryWrite(rc syscall.RawConn, b []byte) (int, error) {
	n := 0
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, err := syscall.Write(int(fd), b[n:])
			if m > 0 {
				n += m
			}
			switch {
			case err == syscall.EINTR:
			case err == syscall.EAGAIN:
				werr = errWouldBlock
				return true
			case err != nil:
				werr = err
				return true
			case m <= 0:
				werr = io.ErrShortWrite
				return true
			}
		}
		return true
	})
	if err == nil {
		err = werr
	}
	return n, err
}
