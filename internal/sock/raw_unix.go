//go:build unix

package sock

import (
	"errors"
	"io"
	"syscall"
	"unsafe"
)

// ErrWouldBlock: the connection's send buffer is full.
var ErrWouldBlock = errors.New("the connection cannot take more now")

// Writer writes to a non-blocking socket without waiting. Keep one per
// connection: a write then allocates nothing (a closure passed to
// RawConn.Write would escape, with what it captures).
type Writer struct {
	rc  syscall.RawConn
	fd  int32
	fn  func(fd uintptr) bool // w.write, bound once
	b   []byte
	n   int
	err error
}

// NewWriter returns a Writer for c, or nil if c is not a socket it can
// write to directly (TLS, a pipe, a wrapper without SyscallConn).
func NewWriter(c any) *Writer {
	rc := rawConn(c)
	if rc == nil {
		return nil
	}
	w := &Writer{rc: rc, fd: fd(rc)}
	w.fn = w.write
	return w
}

// FD returns the socket's descriptor, for a Batch: valid while the
// connection is open.
func (w *Writer) FD() int32 { return w.fd }

// rawConn returns c's syscall.RawConn, or nil.
func rawConn(c any) syscall.RawConn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// TryWrite writes b and returns how much the socket took, and
// ErrWouldBlock if that is not all of b.
//
// The write(2) is a raw system call: it cannot block, and a fan-out makes
// thousands of them in a row, each long enough (the loopback's receive
// path runs in it) that the scheduler would otherwise hand the P to another
// thread during many of them, at the cost of a context switch each.
func (w *Writer) TryWrite(b []byte) (int, error) {
	w.b, w.n, w.err = b, 0, nil
	err := w.rc.Write(w.fn)
	n := w.n
	if err == nil {
		err = w.err
	}
	w.b, w.err = nil, nil
	return n, err
}

func (w *Writer) write(fd uintptr) bool {
	for w.n < len(w.b) {
		m, _, e := syscall.RawSyscall6(sysSend, fd, uintptr(unsafe.Pointer(&w.b[w.n])), uintptr(len(w.b)-w.n), sendFlags, 0, 0)
		switch {
		case e == syscall.EINTR:
		case e == syscall.EAGAIN:
			w.err = ErrWouldBlock
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

// Reader reads from a socket with one system call per read, waiting in
// the network poller (and under the connection's read deadline) when
// there is nothing to read. It skips the layers of net.Conn.Read (and, on
// Linux, the file layer of read(2), with recvfrom(2)), which a connection
// that answers a request per read pays for each request.
type Reader struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool // r.read, bound once
	b   []byte
	n   int
	err error
}

// NewReader returns a Reader for c, or nil if c is not a socket it can
// read directly.
func NewReader(c any) *Reader {
	rc := rawConn(c)
	if rc == nil {
		return nil
	}
	r := &Reader{rc: rc}
	r.fn = r.read
	return r
}

// Read reads into b as net.Conn.Read does: at least one byte, or an error
// (io.EOF when the peer has closed its side).
func (r *Reader) Read(b []byte) (int, error) {
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

func (r *Reader) read(fd uintptr) bool {
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

// fd returns rc's descriptor, or -1.
func fd(rc syscall.RawConn) int32 {
	fd := int32(-1)
	rc.Control(func(s uintptr) { fd = int32(s) })
	return fd
}
