package push

import (
	"context"
	"errors"
	"os"
	"strconv"
	"sync"
	"time"
)

// A stream's output: its buffer, the writes to its connection, and its end.

// chunkReserve is the room kept at the start of a chunked output for the
// chunk's size line.
const chunkReserve = 10

var outBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// ensureOut gives the stream an output buffer; an idle stream holds none.
func (s *stream) ensureOut() {
	if s.out == nil {
		s.out = outBufs.Get().(*[]byte)
		if s.chunked {
			*s.out = append(*s.out, make([]byte, chunkReserve)...)
		}
	}
}

// append appends b to the output.
func (s *stream) append(b []byte) {
	s.ensureOut()
	*s.out = append(*s.out, b...)
}

// pending reports whether the output holds something to write.
func (s *stream) pending() bool {
	base := 0
	if s.chunked {
		base = chunkReserve
	}
	return s.out != nil && len(*s.out) > base
}

// idle returns the output buffer to the pool.
func (s *stream) idle() {
	if s.out == nil {
		return
	}
	b := s.out
	s.out = nil
	if cap(*b) <= 1<<20 { // do not keep a huge batch's buffer alive
		*b = (*b)[:0]
		outBufs.Put(b)
	}
}

// seal returns the output as it goes on the wire: in a chunk when chunked.
func (s *stream) seal() []byte {
	b := *s.out
	if !s.chunked {
		return b
	}
	var line [chunkReserve]byte
	l := strconv.AppendUint(line[:0], uint64(len(b)-chunkReserve), 16)
	l = append(l, '\r', '\n')
	start := chunkReserve - len(l)
	copy(b[start:], l)
	*s.out = append(b, '\r', '\n')
	return (*s.out)[start:]
}

// flush writes the output. Without mayBlock it writes what the connection
// takes at once and, if anything is left, hands the stream to a new
// goroutine that writes the rest under the write deadline and goes on
// running the stream (handed is then true). With a batch (and without
// mayBlock), the batch makes that write and then goes on (handed too).
func (s *stream) flush(mayBlock bool, batch *sendBatch) (handed bool, err error) {
	b := s.seal()
	switch {
	case s.w != nil:
		err = s.writeHeld(b)
	case mayBlock:
		err = s.writeBlocking(b)
	case batch != nil && s.fd >= 0:
		batch.Add(s.fd, b, s)
		return true, nil
	default:
		n := 0
		err = errWouldBlock
		if s.raw != nil {
			n, err = s.raw.TryWrite(b)
		}
		if err == errWouldBlock {
			s.writeRest(b[n:])
			return true, nil
		}
	}
	s.idle()
	if err == nil && s.timed {
		s.lastWrite = time.Now()
	}
	return false, err
}

// writeRest hands the stream to a new goroutine that writes rest, what a
// non-blocking write left, under the write deadline, and runs the stream
// on.
func (s *stream) writeRest(rest []byte) {
	go func() {
		err := s.writeBlocking(rest)
		s.idle()
		if err != nil {
			s.finish(&connError{err}, true)
			return
		}
		s.lastWrite = time.Now()
		s.dirty.Store(true)
		s.run(true)
	}()
}

// BatchCopied releases the output buffer, whose bytes a batch copied.
func (s *stream) BatchCopied() { s.idle() }

// BatchSent runs the stream on after a batch made its write: rest is what
// the socket did not take (err: the write failed).
func (s *stream) BatchSent(rest []byte, err error) {
	switch {
	case err != nil:
		s.finish(&connError{err}, false)
	case len(rest) > 0:
		s.writeRest(rest)
	default:
		s.idle()
		if s.timed {
			s.lastWrite = time.Now()
		}
		s.dirty.Store(true)
		s.run(false)
	}
}

// writeBlocking writes b to the parked connection under the write
// deadline.
func (s *stream) writeBlocking(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	t := s.hub.opts.WriteTimeout
	if t > 0 {
		s.conn.SetWriteDeadline(time.Now().Add(t))
	}
	_, err := s.conn.Write(b)
	if t > 0 && err == nil {
		s.conn.SetWriteDeadline(time.Time{}) // non-blocking writes must not see it
	}
	return err
}

// writeHeld writes b through the ResponseWriter and flushes it, under the
// write deadline.
func (s *stream) writeHeld(b []byte) error {
	if t := s.hub.opts.WriteTimeout; t > 0 {
		s.rc.SetWriteDeadline(time.Now().Add(t))
	}
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	return s.rc.Flush()
}

// finish ends the stream with err: it writes the framing's ending (if the
// connection still works), and releases everything. A parked stream does
// both in a goroutine of its own: the ending may have to wait for the
// connection, and sub.Close for the store.
func (s *stream) finish(err error, mayBlock bool) {
	s.finished = true
	var ce *connError
	announce := !errors.As(err, &ce) && err != errPeerGone
	var end []byte
	if announce {
		if err == nil {
			if p := s.closeFrame.Load(); p != nil {
				s.append(*p)
			}
		} else if e := s.f.end(nil, err); len(e) > 0 {
			s.append(e)
		}
		if s.pending() {
			end = s.seal()
		}
		if s.chunked {
			end = append(end, "0\r\n\r\n"...)
		}
	}
	if s.w != nil {
		if len(end) > 0 {
			s.writeHeld(end)
		}
		s.idle()
		s.release(err, announce)
		return
	}
	go func() {
		if len(end) > 0 {
			s.writeBlocking(end)
		}
		s.idle()
		s.release(err, announce)
	}()
}

// release lets go of everything the stream holds: its place in the
// channels' listeners, the timer, the subscription and the connection. A
// connection whose stream announced its end is half-closed, and closed when
// the client closes its side (or after closeWait); others are closed.
func (s *stream) release(err error, announced bool) {
	for i, hc := range s.sub.hcs {
		hc.unlisten(s, i)
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	if s.sub.endErr == nil {
		s.sub.endErr = err
		if err == nil && !s.oneShot {
			s.sub.endErr = errPeerGone // a WebSocket client's close
		}
	}
	s.sub.Close()
	if s.conn != nil {
		cw, ok := s.conn.(interface{ CloseWrite() error })
		if s.oneShot && err == errAnswered && s.keepAlive {
			s.returnConn.Store(true)
			if !s.handBack.CompareAndSwap(handBackDefer, handBackDue) {
				s.stopReader()
			}
		} else if announced && ok && cw.CloseWrite() == nil {
			s.conn.SetReadDeadline(time.Now().Add(closeWait))
		} else {
			s.conn.Close()
		}
		if s.closers.Add(-1) == 0 {
			s.conn.Close()
		}
	}
	if s.done != nil {
		close(s.done)
	}
	if !s.oneShot {
		s.hub.ended(s.t, s.sub, err)
	}
}

// ended reports the end of a streaming subscriber to the log and the test
// hook.
func (h *Hub) ended(t Transport, sub *Subscription, err error) {
	var we *connError
	switch {
	case err == nil, err == errPeerGone, errors.Is(err, context.Canceled), errors.Is(err, ErrChannelDeleted),
		errors.Is(err, ErrHubClosed), errors.Is(err, ErrConflict), err == errSubscriberTimeout, err == errAuthorizationExpired:
	case errors.As(err, &we) && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded)):
		h.slowDropped.Add(1)
		h.log.Info("push: slow subscriber dropped: a write took longer than the write timeout; it can resume from its last id",
			"transport", t.String(), "channels", sub.channels, "position", sub.Position(), "error", err)
	case errors.As(err, &we):
		h.log.Debug("push: subscriber connection ended", "transport", t.String(), "channels", sub.channels, "error", err)
	default:
		if storeFailed(err) {
			h.storeErrors.Add(1)
		}
		h.log.Warn("push: subscriber ended by an error", "transport", t.String(), "channels", sub.channels, "error", err)
	}
	if h.streamEnded != nil {
		h.streamEnded(t, err)
	}
}
