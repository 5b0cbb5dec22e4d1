//go:build unix

package push

import (
	"errors"
	"io"
	"syscall"
	"unsafe"
)

// errWouldBlock: the connection's send buffer is full.
var errWouldBlock = errors.New("push: the connection cannot take more now")

// tryWrite writes b to a non-blocking socket without waiting: it returns
// how much the socket took, and errWouldBlock if that is not all of b.
//
// The write(2) is a raw system call: it cannot block, and a fan-out makes
// thousands of them in a row, each long enough (the loopback's receive
// path runs in it) that the scheduler would otherwise hand the P to another
// thread during many of them, at the cost of a context switch each.
func tryWrite(rc syscall.RawConn, b []byte) (int, error) {
	n := 0
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[n])), uintptr(len(b)-n))
			switch {
			case e == syscall.EINTR:
			case e == syscall.EAGAIN:
				werr = errWouldBlock
				return true
			case e != 0:
				werr = e
				return true
			case int(m) <= 0:
				werr = io.ErrShortWrite
				return true
			default:
				n += int(m)
			}
		}
		return true
	})
	if err == nil {
		err = werr
	}
	return n, err
}
