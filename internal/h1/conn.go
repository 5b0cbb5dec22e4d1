package h1

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pushhub/push/internal/sock"
)

// Conns is the set of connections accepted by one Hub's listeners, and
// what serving them needs from the Hub. Set its fields before the first
// Listen.
type Conns struct {
	// WriteTimeout bounds a write of answers (0: none).
	WriteTimeout time.Duration
	// RequestTimeout bounds the arrival of a request read here, from its
	// first byte (0: none; an incomplete request then goes back to the
	// http.Server when the connection has been idle for a second).
	RequestTimeout time.Duration
	// RecycleRequests: nothing outside the Hub keeps a request after its
	// answer, so a connection's next request may reuse its memory.
	RecycleRequests bool
	// Ring: kept-alive publishers may be served by the publisher ring
	// (no handler of theirs ever blocks on the network).
	Ring bool
	// NewResponse makes the ResponseWriter of requests read here.
	NewResponse func() Response
	// Log receives the failures of the ring.
	Log *slog.Logger

	m       sync.Map // key (two addresses) → *Conn
	closing atomic.Bool
	ring    publisherRing
}

// A Config says what a listener's connections serve themselves. Requests
// for other paths, and any request the reader leaves to net/http, go to
// the http.Server that accepts from the listener.
type Config struct {
	// PublishPath and SubscribePath are the paths read here ("": none).
	PublishPath, SubscribePath string
	// Publish and Subscribe answer a request for those paths.
	Publish, Subscribe http.Handler
	// IsPoll reports whether a subscriber request is one to answer here:
	// a long-poll (not a stream), which is answered at once or parks.
	IsPoll func(r *http.Request) bool
	// BaseContext is the context of every request read on c.
	BaseContext func(c net.Conn) context.Context
}

// reads reports whether path is read here.
func (cfg *Config) reads(path string) bool {
	return cfg != nil && path != "" && (path == cfg.PublishPath || path == cfg.SubscribePath)
}

// Listen wraps ln: its connections are Conns whose hijacked connections
// can be given back to the http.Server that accepts from it. With cfg,
// the requests for cfg's paths on kept-alive connections are read here;
// without, only net/http reads requests.
func (cs *Conns) Listen(ln net.Listener, cfg *Config) net.Listener {
	l := &listener{Listener: ln, cs: cs, cfg: cfg, accepted: make(chan acceptResult), back: make(chan *Conn),
		done: make(chan struct{})}
	go l.acceptLoop()
	return l
}

// Lookup returns the Conn that r came on, if one of cs's listeners
// accepted it (through any wrapping of r's ResponseWriter): from r's
// context (ConnContext), else by the connection's two addresses, which
// are unique for TCP (a unix socket's are not: its connections are found
// only through ConnContext).
func (cs *Conns) Lookup(r *http.Request) *Conn {
	if c, ok := r.Context().Value(connContextKey{}).(*Conn); ok && c.l.cs == cs {
		return c
	}
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	c, _ := cs.m.Load(connKey(local, r.RemoteAddr))
	hc, _ := c.(*Conn)
	return hc
}

type connContextKey struct{}

// ConnContext is an http.Server's ConnContext that lets Lookup find a
// connection's Conn from its requests' context.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if hc, ok := c.(*Conn); ok {
		return context.WithValue(ctx, connContextKey{}, hc)
	}
	return ctx
}

// Shutdown makes every connection whose requests are read here give up
// waiting for the next one (it goes back to its http.Server), stops
// reading more, and lets the publisher ring's connections go, waiting at
// most until ctx ends.
func (cs *Conns) Shutdown(ctx context.Context) {
	cs.closing.Store(true)
	cs.m.Range(func(_, v any) bool {
		v.(*Conn).interrupt()
		return true
	})
	cs.ring.shutdown(ctx)
}

// aLongTimeAgo is a deadline in the past: it interrupts a blocked Read.
var aLongTimeAgo = time.Unix(1, 0)

type listener struct {
	net.Listener
	cs       *Conns
	cfg      *Config // nil: net/http reads every request
	accepted chan acceptResult
	back     chan *Conn // connections given back
	done     chan struct{}
	close    sync.Once
}

type acceptResult struct {
	c   net.Conn
	err error
}

func (l *listener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			hc := &Conn{Conn: c, l: l}
			if remote := c.RemoteAddr().String(); remote != "" && remote != "@" {
				hc.key = connKey(c.LocalAddr(), remote)
			} else { // a unix socket's: a key of its own, which no address finds
				hc.key = fmt.Sprintf("%p", hc)
			}
			l.cs.m.Store(hc.key, hc)
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
func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.back:
		return c, nil
	case r := <-l.accepted:
		return r.c, r.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close closes the listener, interrupts the connections whose requests
// are read here (they are closed, as idle ones), and closes those given
// back later.
func (l *listener) Close() error {
	err := net.ErrClosed
	l.close.Do(func() {
		close(l.done)
		err = l.Listener.Close()
		l.cs.m.Range(func(_, v any) bool {
			if c := v.(*Conn); c.l == l {
				c.interrupt()
			}
			return true
		})
		l.cs.ring.listenerClosed()
	})
	return err
}

// closed reports whether Close was called.
func (l *listener) closed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// giveBack hands c to the http.Server for its next request.
func (l *listener) giveBack(c *Conn) {
	select {
	case l.back <- c:
	case <-l.done:
		c.Close()
	}
}

// connKey is the key of a connection in Conns: its two ends.
func connKey(local net.Addr, remote string) string {
	if local == nil {
		return remote
	}
	return local.String() + " " + remote
}

// A Conn is a connection accepted by a listener of Conns. It can be given
// back to its http.Server after a hijack, with what was read from it
// meanwhile (a pipelined request) read first.
type Conn struct {
	net.Conn
	l       *listener
	key     string // the key in Conns
	prefix  []byte
	busy    atomic.Bool // its last long-poll was answered soon after its request
	reading atomic.Bool // its requests are read here
	mu      sync.Mutex  // orders interrupt and handOver
	// template is the request that those read here start as: made at the
	// first.
	template *http.Request
	// raw writes the answers of the requests read here and rawRead reads
	// those requests; made at the first, and only used by the
	// connection's one reader.
	raw     *sock.Writer
	rawRead *sock.Reader
	rawDone bool // raw and rawRead were made (nil: none here)
}

// interrupt makes a read of the reader of c return at once, if the reader
// reads c (and has not handed it over to a long-poll).
func (c *Conn) interrupt() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reading.Load() {
		c.SetReadDeadline(aLongTimeAgo)
	}
}

// handOver is the reader giving c up to a long-poll that parks: its
// deadlines go, and no interrupt reaches c after.
func (c *Conn) handOver() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reading.Store(false)
	c.SetDeadline(time.Time{})
}

// Busy reports what SetBusy said last.
func (c *Conn) Busy() bool { return c.busy.Load() }

// SetBusy records whether the connection's last long-poll was answered
// soon after its request (its next one then waits before it parks).
func (c *Conn) SetBusy(b bool) { c.busy.Store(b) }

// Unread puts b back, to be read before the connection's next bytes (what
// a bufio.Reader had read ahead before a hijack).
func (c *Conn) Unread(b []byte) { c.prefix = append(c.prefix, b...) }

// Forget takes c out of Conns: it will serve no HTTP request again (a
// stream's connection).
func (c *Conn) Forget() { c.l.cs.m.CompareAndDelete(c.key, c) }

// rawWriter returns c's non-blocking writer, or nil where there is none.
func (c *Conn) rawWriter() *sock.Writer {
	c.makeRaw()
	return c.raw
}

func (c *Conn) makeRaw() {
	if !c.rawDone {
		c.rawDone = true
		c.raw, c.rawRead = sock.NewWriter(c), sock.NewReader(c)
	}
}

// readRaw reads as Read does, with one system call where it can.
func (c *Conn) readRaw(p []byte) (int, error) {
	if c.makeRaw(); len(c.prefix) > 0 || c.rawRead == nil {
		return c.Read(p)
	}
	return c.rawRead.Read(p)
}

// Read reads what Unread put back first.
func (c *Conn) Read(p []byte) (int, error) {
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

// Close closes the connection and forgets it.
func (c *Conn) Close() error {
	c.Forget()
	return c.Conn.Close()
}

// SyscallConn gives non-blocking writes (package sock).
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// CloseWrite half-closes the connection, when it can.
func (c *Conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// maxPipelined bounds what a client may send while its long-poll is
// parked (a pipelined request); more closes the connection.
const maxPipelined = 64 << 10

// keepRoom is the room KeepReading makes for a parked long-poll's next
// request when its first bytes come.
const keepRoom = 1 << 10

// KeepReading reads the client side of c while a long-poll is parked on
// it, keeping the bytes for the connection's next request. It returns at
// the end of the connection, or when its read deadline passes while
// answered reports true: c then goes on to its next request (read here on
// a listener with a Config, else by the http.Server); handedBack is called
// first, and KeepReading then reports true.
func (c *Conn) KeepReading(answered func() bool, handedBack func()) bool {
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
		if c.rawRead != nil { // made when a request of c was read here
			n, err = c.rawRead.Read(p)
		} else {
			n, err = c.Conn.Read(p)
		}
		if n > 0 {
			if len(c.prefix)+n > maxPipelined {
				c.prefix = nil
				return false
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
			if errors.Is(err, os.ErrDeadlineExceeded) && answered() {
				c.Conn.SetReadDeadline(time.Time{})
				handedBack()
				c.readNext()
				return true
			}
			return false
		}
	}
}

// readNext reads the next request of c, whose parked long-poll was
// answered, if its listener serves subscribers here; else it gives c back
// to the http.Server.
func (c *Conn) readNext() {
	cfg := c.l.cfg
	if cfg == nil || cfg.SubscribePath == "" || c.l.cs.closing.Load() || c.l.closed() || len(c.prefix) > bufferSize {
		c.l.giveBack(c) // closes it once the listener is closed
		return
	}
	d := newReader(c)
	d.n = copy(*d.bufp, c.prefix)
	c.prefix = nil
	if !d.serve(nil) {
		readers.Put(d)
	}
}

// requestTemplate returns the request every request read on c starts as:
// the listener's base context, and c's remote address. Nothing of one
// request (its context values, its deadline) reaches the next.
func (c *Conn) requestTemplate() *http.Request {
	if c.template == nil {
		c.template = newTemplate(c.l.cfg.BaseContext(c), c.RemoteAddr().String())
	}
	return c.template
}

// newTemplate returns a request template with ctx and remoteAddr; no
// ServeMux pattern.
func newTemplate(ctx context.Context, remoteAddr string) *http.Request {
	return (&http.Request{Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, RemoteAddr: remoteAddr}).WithContext(ctx)
}

// Len counts the connections held: accepted by a listener of cs and not
// closed, forgotten or given up.
func (cs *Conns) Len() int {
	n := 0
	cs.m.Range(func(any, any) bool { n++; return true })
	return n
}
