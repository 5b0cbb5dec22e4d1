package sock

import (
	"net"
	"os"
	"syscall"
)

// Detach takes c's socket out of Go's network poller: it returns a
// duplicate of its descriptor and closes c. A ring then reads and writes
// the descriptor without waking the poller's thread; Attach gives it a
// net.Conn again.
func Detach(c net.Conn) (int32, bool) {
	rc := rawConn(c)
	if rc == nil {
		return 0, false
	}
	fd := -1
	if err := rc.Control(func(s uintptr) {
		r, _, e := syscall.RawSyscall(syscall.SYS_FCNTL, s, syscall.F_DUPFD_CLOEXEC, 0)
		if e == 0 {
			fd = int(r)
		}
	}); err != nil || fd < 0 {
		return 0, false
	}
	c.Close()
	return int32(fd), true
}

// Attach returns a net.Conn for descriptor fd, which it takes.
func Attach(fd int32) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "")
	nc, err := net.FileConn(f)
	f.Close()
	return nc, err
}
