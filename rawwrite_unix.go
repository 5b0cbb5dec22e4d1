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

// rawWriter writes to a non-blocking socket without waiting. A stream keeps
// one, so a write allocates nothing (a closure passed to RawConn.Write
// would escape, with what it captures).
type rawWriter struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool // w.write, bound once
	b   []byte
	n   int
	err error
}

func newRawWriter(rc syscall.RawConn) *rawWriter {
	w := &rawWriter{rc: rc}
	w.fn = w.write
	return w
}

// tryWrite writes b and returns how much the socket took, and
// errWouldBlock if that is not all of b.
//
// The write(2) is a raw system call: it cannot block, and a fan-out makes
// thousands of them in a row, each long enough (the loopback's receive
// path runs in it) that the scheduler would otherwise hand the P to another
// thread during many of them, at the cost of a context switch each.
func (w *rawWriter) tryWrite(b []byte) (int, error) {
	w.b, w.n, w.err = b, 0, nil
	err := w.rc.Write(w.fn)
	n := w.n
	if err == nil {
		err = w.err
	}
	w.b, w.err = nil, nil
	return n, err
}

func (w *rawWriter) write(fd uintptr) bool {
	for w.n < len(w.b) {
		m, _, e := syscall.RawSyscall6(sysSend, fd, uintptr(unsafe.Pointer(&w.b[w.n])), uintptr(len(w.b)-w.n), sendFlags, 0, 0)
		switch {
		case e == syscall.EINTR:
		case e == syscall.EAGAIN:
			w.err = errWouldBlock
			return true
		case e != 0:
			w.err = e
			return true
		case int(m) <= 0:
			w.err = io.ErrShortWrite
			return true
		default:
			w.n += int(m)
		}
	}
	return true
}

// rawReader reads from a socket with one system call per read, waiting in
// the network poller (and under the connection's read deadline) when
// there is nothing to read. It skips the layers of net.Conn.Read (and, on
// Linux, the file layer of read(2), with recvfrom(2)), which a connection
// that answers a request per read pays for each request.
type rawReader struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool // r.read, bound once
	b   []byte
	n   int
	err error
}

func newRawReader(rc syscall.RawConn) *rawReader {
	r := &rawReader{rc: rc}
	r.fn = r.read
	return r
}

// Read reads into b as net.Conn.Read does: at least one byte, or an error
// (io.EOF when the peer has closed its side).
func (r *rawReader) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	r.b, r.n, r.err = b, 0, nil
	err := r.rc.Read(r.fn)
	n := r.n
	if err == nil {
		err = r.err
	}
	r.b, r.err = nil, nil
	return n, err
}

func (r *rawReader) read(fd uintptr) bool {
	for {
		m, _, e := syscall.RawSyscall6(sysRecv, fd, uintptr(unsafe.Pointer(&r.b[0])), uintptr(len(r.b)), 0, 0, 0)
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			return false // wait until readable
		case e != 0:
			r.err = e
		case m == 0:
			r.err = io.EOF
		default:
			r.n = int(m)
		}
		return true
	}
}

// rawFD returns rc's descriptor, or -1. A stream's batched writes
// (sendBatch) use it while the stream is theirs: its connection is not
// closed meanwhile.
func rawFD(rc syscall.RawConn) int32 {
	fd := int32(-1)
	rc.Control(func(s uintptr) { fd = int32(s) })
	return fd
}
