//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// defaultWSReader is the -ws-reader used unless told otherwise.
const defaultWSReader = wsReaderEpoll

// wsLoop reads every WebSocket subscriber of a worker on one goroutine,
// from its own epoll instance. The goroutine reader costs the client a
// goroutine wakeup, a scheduler switch and a trip through a buffered reader
// per connection and message; in a fan-out to thousands of subscribers that
// is what bounds the measured latency on a load tool pinned to one core.
// Here a ready connection costs one read(2) into a shared buffer, and the
// frames in it are delivered without allocating.
//
// The epoll descriptor is itself registered in Go's netpoller (os.NewFile
// on a non-blocking descriptor makes it pollable, which newWSLoop checks),
// so while nothing is ready the loop goroutine is parked, not blocking a
// thread in epoll_wait, and the end of the run wakes it with a read
// deadline. This was chosen over a goroutine blocked in epoll_wait with a
// timeout, which holds a thread in a system call and wakes up every so
// often to look at the context.
type wsLoop struct {
	w      *worker
	epfd   int
	ep     *os.File // epfd, in Go's netpoller
	rc     syscall.RawConn
	conns  []atomic.Pointer[wsConn] // by subscriber index, the epoll event's data
	events []syscall.EpollEvent
	buf    []byte // what one read(2) of a connection returns
	err    error  // why the loop failed, if it did
	ending atomic.Bool

	mu     sync.Mutex // orders add with the closing of every connection
	closed bool
}

// wsConn is one subscriber's connection in a wsLoop.
type wsConn struct {
	fd int
	s  *subscriber
	// The start of a frame not yet complete; allocated at the first
	// partial frame, and its capacity reused.
	pending []byte
}

// newWSLoop returns an event loop for w's subscribers; the caller starts
// run on a goroutine of its own.
func newWSLoop(w *worker) (*wsLoop, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	ep := os.NewFile(uintptr(epfd), "epoll")
	// Only a file in the netpoller has deadlines (os.ErrNoDeadline).
	if err := ep.SetReadDeadline(time.Time{}); err != nil {
		ep.Close()
		return nil, fmt.Errorf("epoll descriptor not in Go's netpoller: %w", err)
	}
	rc, err := ep.SyscallConn()
	if err != nil {
		ep.Close()
		return nil, err
	}
	return &wsLoop{w: w, epfd: epfd, ep: ep, rc: rc, conns: make([]atomic.Pointer[wsConn], len(w.subs)),
		events: make([]syscall.EpollEvent, 256), buf: make([]byte, 64<<10)}, nil
}

// run reads the subscribers until the worker's context is done, then
// closes every connection and the epoll descriptor. The caller has added
// it to w.wg.
func (l *wsLoop) run() {
	defer l.w.wg.Done()
	stop := context.AfterFunc(l.w.ctx, func() {
		l.ending.Store(true)
		l.ep.SetReadDeadline(time.Unix(1, 0)) // wakes the loop if parked
	})
	defer stop()
	err := l.rc.Read(l.poll)
	if err == nil {
		err = l.err
	}
	if err != nil && !l.ending.Load() {
		l.w.fail(fmt.Errorf("WebSocket event loop: %w", err))
	}
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	for i := range l.conns {
		if c := l.conns[i].Swap(nil); c != nil {
			syscall.Close(c.fd)
		}
	}
	l.ep.Close()
}

// poll is called by the netpoller whenever the epoll descriptor may be
// readable: it handles ready connections until none is, and reports
// whether the loop is over.
func (l *wsLoop) poll(uintptr) bool {
	for !l.ending.Load() {
		n, errno := epollWaitNow(l.epfd, l.events)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			l.err = os.NewSyscallError("epoll_pwait", errno)
			return true
		}
		if n == 0 {
			return false // park until the epoll descriptor is readable
		}
		drained := n < len(l.events)
		for _, ev := range l.events[:n] {
			ended := ev.Events&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0
			drained = l.readable(int(ev.Fd)) && !ended && drained
		}
		if drained {
			// Every ready connection was reported and read to its end
			// (one that has seen the server's FIN or an error stays
			// readable, and is not counted). Whatever arrives from now
			// on wakes the epoll descriptor in the netpoller (the
			// level-triggered entries requeued by epoll_wait do not,
			// but they have nothing left), so the loop can wait there:
			// the scheduler then polls the network for the other
			// goroutines too, such as the publisher's.
			return false
		}
		// More is ready: carry on, letting the other goroutines run in
		// between (the scheduler prefers runnable goroutines to the
		// network, which it polls when none is left).
		runtime.Gosched()
	}
	return true
}

// readable reads subscriber i's connection once and delivers the frames
// that are complete. It reports whether the read left nothing in the
// socket. The registration is level-triggered, so bytes left there are
// reported by the next epoll_wait.
func (l *wsLoop) readable(i int) (drained bool) {
	c := l.conns[i].Load()
	if c == nil {
		return true // ended earlier in this round
	}
	var data, into []byte
	grown := false // data is c.pending
	if p := len(c.pending); p <= len(l.buf)/2 {
		// The usual case (p == 0), or a partial frame that is moved to the
		// front of the shared buffer and completed there.
		copy(l.buf, c.pending)
		into = l.buf[p:]
	} else {
		// A frame larger than half the buffer: it grows in c.pending.
		into, grown = l.buf, true
	}
	n, errno := readNow(c.fd, into)
	switch {
	case errno == syscall.EAGAIN:
		return true
	case errno == syscall.EINTR:
		return false
	case errno != 0:
		l.end(i, c, os.NewSyscallError("read", errno))
		return true
	case n == 0:
		l.end(i, c, errors.New("WebSocket connection closed by the server without a close frame"))
		return true
	case grown:
		c.pending = append(c.pending, l.buf[:n]...)
		data = c.pending
	default:
		data = l.buf[:len(c.pending)+n]
	}
	rest, err := c.frames(l.w, data)
	if err != nil {
		l.end(i, c, err)
		return true
	}
	switch {
	case len(rest) == 0 && cap(c.pending) > 4<<10:
		c.pending = nil // do not hold on to a large frame's buffer
	case len(rest) == 0:
		c.pending = c.pending[:0]
	case grown:
		c.pending = c.pending[:copy(c.pending, rest)]
	default:
		c.pending = append(c.pending[:0], rest...)
	}
	return n < len(into)
}

// readNow is read(2) on a non-blocking descriptor. Like epollWaitNow it is
// a raw system call: a call that cannot block needs none of the
// scheduler's bookkeeping, and entering a system call the usual way wakes
// the runtime's sysmon thread if the process was idle, after which sysmon
// wakes up every 20µs for a while. The loop returns from idle thousands of
// times a second, on the one core of the load tool.
func readNow(fd int, p []byte) (int, syscall.Errno) {
	r, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(r), e
}

// epollWaitNow is epoll_wait(2) with a timeout of 0, as a raw system call.
func epollWaitNow(epfd int, events []syscall.EpollEvent) (int, syscall.Errno) {
	r, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])),
		uintptr(len(events)), 0, 0, 0)
	return int(r), e
}

// frames delivers the messages in the complete frames at the start of b,
// answers pings, and returns the bytes of a partial frame at its end. An
// error (a close frame among them) ends the subscriber.
func (c *wsConn) frames(w *worker, b []byte) ([]byte, error) {
	for len(b) > 0 {
		fin, op, payload, size, err := nextWSFrame(b)
		if err != nil {
			return nil, err
		}
		if size == 0 {
			break
		}
		b = b[size:]
		switch op {
		case wsText, wsBinary:
			if !fin {
				return nil, errWSFragmented
			}
			w.deliver(c.s, payload)
		case wsContinuation:
			return nil, errWSFragmented
		case wsPing:
			if err := c.writeControl(wsPong, payload); err != nil {
				return nil, err
			}
		case wsPong:
		case wsClose:
			// Echo the status code, as the closing handshake asks; the
			// connection is closed right after, whatever the outcome.
			c.writeControl(wsClose, payload[:min(len(payload), 2)])
			return nil, wsCloseError(payload)
		default:
			return nil, fmt.Errorf("WebSocket frame with unknown opcode %d", op)
		}
	}
	return b, nil
}

// writeControl writes a control frame of at most 125 bytes, masked as
// every client frame must be.
func (c *wsConn) writeControl(op byte, payload []byte) error {
	var f [2 + 4 + 125]byte
	f[0] = 0x80 | op
	f[1] = 0x80 | byte(len(payload))
	key := rand.Uint32()
	f[2], f[3], f[4], f[5] = byte(key>>24), byte(key>>16), byte(key>>8), byte(key)
	for j, b := range payload {
		f[6+j] = b ^ f[2+j%4]
	}
	n := 6 + len(payload)
	m, err := syscall.Write(c.fd, f[:n])
	switch {
	case err == syscall.EAGAIN:
		// The send buffer is full: the subscriber sends nothing but
		// control frames, so the server has stopped reading. A pong
		// dropped here at worst makes the server drop the subscriber,
		// which then shows as an error.
		return nil
	case err != nil:
		return os.NewSyscallError("write", err)
	case m < n:
		return fmt.Errorf("WebSocket control frame: wrote %d of %d bytes", m, n)
	}
	return nil
}

// end reports err unless the run is ending, and closes subscriber i's
// connection (the server sees the close after the report).
func (l *wsLoop) end(i int, c *wsConn, err error) {
	if err = l.w.stopped(err); err != nil {
		l.w.fail(err)
	}
	l.conns[i].Store(nil)
	syscall.Close(c.fd) // which also takes it out of the epoll set
}

// subscribe connects subscriber i, calls up(nil) once its handshake
// succeeded, and hands its connection over to the loop. It returns when
// the loop has it; the loop reports later failures through w.fail.
func (l *wsLoop) subscribe(i int, up func(error)) error {
	w := l.w
	s := &w.subs[i]
	conn, rest, err := w.dialWS(s.ch)
	if err != nil {
		return w.stopped(err)
	}
	fd, err := detachFD(conn)
	if err != nil {
		return w.stopped(err)
	}
	up(nil)
	c := &wsConn{fd: fd, s: s}
	if len(rest) > 0 {
		// Frames that came with the handshake's answer. This goroutine
		// still owns c; add passes it to the loop.
		if c.pending, err = c.frames(w, rest); err != nil {
			syscall.Close(fd)
			return w.stopped(err)
		}
	}
	return w.stopped(l.add(i, c))
}

// add registers subscriber i's connection in the epoll set,
// level-triggered, with i as the event's data. It closes the connection if
// the loop is over.
func (l *wsLoop) add(i int, c *wsConn) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		syscall.Close(c.fd)
		return net.ErrClosed
	}
	l.conns[i].Store(c)
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(i)}
	if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		l.conns[i].Store(nil)
		syscall.Close(c.fd)
		return os.NewSyscallError("epoll_ctl", err)
	}
	return nil
}

// detachFD returns a duplicate of c's socket descriptor and closes c, which
// takes the original descriptor out of Go's netpoller. The duplicate shares
// the original's open file description, so it is non-blocking too. It is
// made with F_DUPFD_CLOEXEC rather than dup(2), so that it is not inherited
// by worker processes started later.
func detachFD(c net.Conn) (int, error) {
	defer c.Close()
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("%T has no file descriptor", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var dupErr error
	if err := rc.Control(func(s uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, s, syscall.F_DUPFD_CLOEXEC, 0)
		if e != 0 {
			dupErr = os.NewSyscallError("fcntl", e)
			return
		}
		fd = int(r)
	}); err != nil {
		return -1, err
	}
	return fd, dupErr
}
