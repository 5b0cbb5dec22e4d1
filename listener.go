package push

import (
	"errors"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Listener wraps ln so that long-poll subscribers on the connections it
// accepts wait without a goroutine: a long-poll that finds nothing to
// answer yet hands its connection over from net/http to the Hub (as a
// WebSocket does), is answered by the Hub when a message comes, and the
// kept-alive connection is then given back to the http.Server through
// Accept, which reads the client's next request as it reads any other. A
// held long-poll then costs a few KiB instead of net/http's two
// goroutines and buffers. Serve the app's handlers with it:
//
//	ln, err := net.Listen("tcp", ":8080")
//	...
//	srv.Serve(hub.Listener(ln))
//
// Every request on these connections is read by the http.Server and goes
// through the app's handler chain. Long-polls on other connections (TLS,
// HTTP/2, HTTP/1.0, other listeners), and those whose request context
// has a deadline, are held by their handler's goroutine, as without
// Listener. Closing the returned listener closes ln.
func (h *Hub) Listener(ln net.Listener) net.Listener { return h.listen(ln, nil) }

// listen wraps ln for Listener, or for srv, whose connections' requests
// for its paths the Hub reads itself.
func (h *Hub) listen(ln net.Listener, srv *Server) *hubListener {
	l := &hubListener{Listener: ln, hub: h, srv: srv, accepted: make(chan acceptResult), back: make(chan *hubConn),
		done: make(chan struct{})}
	go l.acceptLoop()
	return l
}

type hubListener struct {
	net.Listener
	hub      *Hub
	srv      *Server // nil: Hub.Listener's, whose requests only net/http reads
	accepted chan acceptResult
	back     chan *hubConn // connections given back after a parked long-poll
	done     chan struct{}
	close    sync.Once
}

type acceptResult struct {
	c   net.Conn
	err error
}

func (l *hubListener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			hc := &hubConn{Conn: c, l: l, key: connKey(c.LocalAddr(), c.RemoteAddr().String())}
			l.hub.conns.Store(hc.key, hc)
			c = hc
		}
		select {
		case l.accepted <- acceptResult{c, err}:
		case <-l.done:
			if c != nil {
				c.Close()
			}
			return
		}
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				if errors.Is(err, net.ErrClosed) {
					return
				}
			}
		}
	}
}

// Accept returns the next new connection, or one given back.
func (l *hubListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.back:
		return c, nil
	case r := <-l.accepted:
		return r.c, r.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close closes the listener; connections given back later are closed.
func (l *hubListener) Close() error {
	err := net.ErrClosed
	l.close.Do(func() {
		close(l.done)
		err = l.Listener.Close()
	})
	return err
}

// giveBack hands c to the http.Server for its next request.
func (l *hubListener) giveBack(c *hubConn) {
	select {
	case l.back <- c:
	case <-l.done:
		c.Close()
	}
}

// connKey is the key of a connection in Hub.conns: its two ends.
func connKey(local net.Addr, remote string) string {
	if local == nil {
		return remote
	}
	return local.String() + " " + remote
}

// hubConn is a connection accepted by a hubListener. It can be given back
// after a hijack, with what was read from it meanwhile (a pipelined
// request) read first.
type hubConn struct {
	net.Conn
	l      *hubListener
	key    string // the key in Hub.conns
	prefix []byte
	busy   atomic.Bool // its last long-poll was answered within parkAfter
	direct atomic.Bool // the Hub reads its requests (direct.go)
	// template is the request that those read by the Hub start as
	// (direct.go): made at the first.
	template *http.Request
	// raw writes the answers of the requests the Hub reads and rawRead
	// reads those requests (direct.go); made at the first, and only used
	// by the connection's one reader.
	raw     *rawWriter
	rawRead *rawReader
	rawDone bool // raw and rawRead were made (nil: none here)
}

// rawWriter returns c's non-blocking writer, or nil where there is none.
func (c *hubConn) rawWriter() *rawWriter {
	c.makeRaw()
	return c.raw
}

func (c *hubConn) makeRaw() {
	if !c.rawDone {
		c.rawDone = true
		if rc, err := c.SyscallConn(); err == nil {
			c.raw, c.rawRead = newRawWriter(rc), newRawReader(rc)
		}
	}
}

// readDirect reads as Read does, with one system call where it can
// (rawReader).
func (c *hubConn) readDirect(p []byte) (int, error) {
	if c.makeRaw(); len(c.prefix) > 0 || c.rawRead == nil {
		return c.Read(p)
	}
	return c.rawRead.Read(p)
}

func (c *hubConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		if len(c.prefix) == 0 {
			c.prefix = nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

func (c *hubConn) Close() error {
	c.l.hub.conns.CompareAndDelete(c.key, c)
	return c.Conn.Close()
}

// SyscallConn gives the stream non-blocking writes (see stream.go).
func (c *hubConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// CloseWrite half-closes the connection, when it can.
func (c *hubConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// maxPipelined bounds what a client may send while its long-poll is
// parked (a pipelined request); more closes the connection.
const maxPipelined = 64 << 10

// keepRoom is the room readKeep makes for a parked long-poll's next
// request when its first bytes come.
const keepRoom = 1 << 10

// readKeep reads the client side of a parked long-poll: bytes are kept for
// the connection's next request; it returns at the end of the connection,
// or when the stream stops it to give the connection back.
func readKeep(s *stream) {
	c := s.conn.(*hubConn)
	var buf [64]byte // a small stack: this is the parked long-poll's one goroutine
	for {
		// The first bytes go to buf; once something came (the client's
		// next poll, a few hundred bytes), the rest is read into the
		// prefix's room, so that the poll takes one or two reads and not
		// one per 64 bytes.
		p := buf[:]
		if len(c.prefix) > 0 && cap(c.prefix)-len(c.prefix) >= len(buf) {
			p = c.prefix[len(c.prefix):cap(c.prefix)]
		}
		var n int
		var err error
		if c.rawRead != nil { // made when the Hub read a request of c (direct.go)
			n, err = c.rawRead.Read(p)
		} else {
			n, err = c.Conn.Read(p)
		}
		if n > 0 {
			if len(c.prefix)+n > maxPipelined {
				c.prefix = nil
				s.giveBack.Store(false)
				return
			}
			if &p[0] == &buf[0] {
				if c.prefix == nil {
					c.prefix = make([]byte, 0, keepRoom)
				}
				c.prefix = append(c.prefix, buf[:n]...)
			} else {
				c.prefix = c.prefix[:len(c.prefix)+n]
			}
		}
		if err != nil {
			// errors.Is, not errors.As into a net.Error: that costs a
			// reflection per answered long-poll.
			if s.giveBack.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
				c.Conn.SetReadDeadline(time.Time{})
				s.handedBack.Store(true)
				c.l.hub.readNext(c) // or gives it back to the http.Server
			}
			return
		}
	}
}
