package push

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"time"
)

// coder/websocket flushes every frame to the connection: one write system
// call per message. A subscriber that is behind gets a batch of messages at
// once, so its connection is "corked" for the batch: the frames collect in
// a buffer and go out in one write when the batch is flushed. The write
// deadline then applies to that one write. Frames written while uncorked
// (pings, pongs, the close frame) go straight through.

// corkConn is the hijacked connection of a WebSocket subscriber.
type corkConn struct {
	net.Conn
	timeout time.Duration // the write timeout; 0: none

	mu       sync.Mutex
	corked   bool
	buf      *[]byte
	deadline time.Time // the write deadline set on Conn
}

// armDeadline makes sure the next write has at least half the write
// timeout, setting a new deadline only when the one set is that close: a
// deadline costs timer work, and most subscribers write many times within
// one timeout.
func (c *corkConn) armDeadline() {
	if c.timeout <= 0 {
		return
	}
	now := time.Now()
	if now.Add(c.timeout / 2).After(c.deadline) {
		c.deadline = now.Add(c.timeout)
		c.Conn.SetWriteDeadline(c.deadline)
	}
}

var corkBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// Write buffers p while the connection is corked, else writes it.
func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		c.armDeadline()
		return c.Conn.Write(p)
	}
	*c.buf = append(*c.buf, p...)
	return len(p), nil
}

// cork starts collecting writes.
func (c *corkConn) cork() {
	c.mu.Lock()
	if !c.corked {
		c.corked = true
		c.buf = corkBufs.Get().(*[]byte)
	}
	c.mu.Unlock()
}

// uncork writes what was collected, under the write deadline, and lets
// later writes through.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return nil
	}
	c.corked = false
	b := c.buf
	c.buf = nil
	defer func() {
		if cap(*b) <= 256<<10 { // do not keep a huge batch's buffer alive
			*b = (*b)[:0]
			corkBufs.Put(b)
		}
	}()
	if len(*b) == 0 {
		return nil
	}
	c.armDeadline()
	_, err := c.Conn.Write(*b)
	return err
}

// corkingWriter hands websocket.Accept a corkConn when it hijacks the
// connection.
type corkingWriter struct {
	http.ResponseWriter
	conn *corkConn
}

// Hijack hijacks the connection and wraps it in a corkConn, which the
// returned bufio.Writer writes to.
func (w *corkingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		c.Close()
		return nil, nil, err
	}
	w.conn = &corkConn{Conn: c}
	brw.Writer.Reset(w.conn)
	return w.conn, brw, nil
}
