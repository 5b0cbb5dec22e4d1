package push

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/pushhub/push/internal/h1"
	"github.com/pushhub/push/internal/sock"
)

// The Hub's connections: where the engine meets the machinery of
// internal/h1 (connections the Hub holds, and on a Server the requests it
// reads itself) and internal/sock (raw and batched socket writes).

// The machinery's types as the engine names them.
type (
	hubConns    = h1.Conns     // the connections of the Hub's listeners
	sendBatches = sock.Batches // the batches a fan-out's writes go in
	sendBatch   = sock.Batch   // one fan-out worker's batch of writes
	rawWriter   = sock.Writer  // a connection's non-blocking writer
)

// errWouldBlock: a non-blocking write found the socket full.
var errWouldBlock = sock.ErrWouldBlock

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
func (h *Hub) Listener(ln net.Listener) net.Listener { return h.conns.Listen(ln, nil) }

// initConns sets up the Hub's connections and batched writes.
func (h *Hub) initConns() {
	_, inMemory := h.store.(*MemoryStore)
	// When no hook sees requests, nothing outside the Hub keeps one after
	// its answer; with a Store in memory too, no publish waits on the
	// network, and the publisher ring may serve publishers.
	noHooks := h.opts.ChannelIDs == nil && h.opts.PublisherChannelIDs == nil && h.opts.AuthorizePublish == nil && h.opts.AuthorizeSubscribe == nil
	h.conns = &hubConns{
		WriteTimeout:    max(h.opts.WriteTimeout, 0),
		RequestTimeout:  max(h.opts.RequestTimeout, 0),
		RecycleRequests: noHooks,
		Ring:            noHooks && inMemory && !h.opts.DisableIOURing,
		NewResponse:     func() h1.Response { return &bufferedResponse{header: make(http.Header)} },
		Log:             h.log,
	}
	h.batches = &sendBatches{Disabled: h.opts.DisableIOURing, Log: h.log}
}

// listenConfig is what a Server's connections read themselves.
func (h *Hub) listenConfig(s *Server) *h1.Config {
	return &h1.Config{
		PublishPath:   s.PublishPath,
		SubscribePath: s.SubscribePath,
		Publish:       http.HandlerFunc(h.servePublishRequest),
		Subscribe:     http.HandlerFunc(h.serveSubscribeRequest),
		IsPoll:        h.isPoll,
		BaseContext:   s.baseContext,
	}
}

// takeOver serves r, and the following requests on its connection, if r
// came on a Server's connection for one of its paths and is one the Hub
// may read the next of: it reports whether it did (and r is answered).
func (h *Hub) takeOver(w http.ResponseWriter, r *http.Request) bool {
	c := h.conns.Eligible(w, r)
	if c == nil {
		return false
	}
	var body []byte
	if r.ContentLength > 0 {
		var err error
		if body, err = h.readBody(w, r, r.ContentLength); err != nil {
			writeError(w, err)
			return true
		}
	}
	return c.TakeOver(w, r, body)
}

// isPoll reports whether subscriber request r is one the Hub's own reader
// answers: a long-poll or JSONP request that can park (or its CORS
// preflight). A long-poll that asks to close cannot park, and waits in a
// goroutine that net/http tells when the client leaves.
func (h *Hub) isPoll(r *http.Request) bool {
	if r.Method == http.MethodOptions {
		return true
	}
	t := h.pickTransport(r)
	return r.Method == http.MethodGet && !r.Close && (t == TransportLongPoll || t == TransportJSONP)
}

// parkable returns the connection of r if a long-poll of r can park: a
// Listener's, which can be kept alive after the answer.
func (h *Hub) parkable(r *http.Request) *h1.Conn {
	if r.ProtoMajor != 1 || r.ProtoMinor < 1 || r.Close || r.TLS != nil || r.ContentLength != 0 {
		return nil
	}
	if _, limited := r.Context().Deadline(); limited {
		return nil // a parked long-poll would outlive the deadline of the app's middleware
	}
	return h.conns.Lookup(r)
}

// parkOneShot hijacks the connection of w and parks a one-shot stream of
// sub on it, framed by f, that has waited since start. It reports whether
// it did; it then owns sub.
func (h *Hub) parkOneShot(w http.ResponseWriter, sub *Subscription, f *longPollFramer, start time.Time) bool {
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	s := h.newStream(TransportLongPoll, sub, f)
	s.oneShot = true
	s.lastMsg = start // the subscriber timeout counts from the request
	hc, ok := c.(*h1.Conn)
	s.keepAlive = ok
	if !ok { // not from a Listener after all: the answer closes it
		f.header.Set("Connection", "close")
	}
	read := readDiscard
	if ok {
		if n := brw.Reader.Buffered(); n > 0 {
			b, _ := brw.Reader.Peek(n)
			hc.Unread(b)
		}
		read = readKeep
	}
	s.park(c, nil, read)
	return true
}

// readKeep reads the client side of a parked long-poll: bytes are kept for
// the connection's next request; it returns at the end of the connection,
// or when the stream stops it to give the connection back.
func readKeep(s *stream) {
	s.conn.(*h1.Conn).KeepReading(s.returnConn.Load, func() { s.handedBack.Store(true) })
}

// connContext is a Server's ConnContext: a request finds its connection
// from its context.
func connContext(ctx context.Context, c net.Conn) context.Context {
	return h1.ConnContext(ctx, c)
}

// forgetConn takes c, a stream's connection, out of the Hub's
// connections: it will not serve HTTP again.
func forgetConn(c net.Conn) {
	if hc, ok := c.(*h1.Conn); ok {
		hc.Forget()
	}
}

// setBusy records on c, a long-poll's connection, whether its answer came
// soon after its request.
func setBusy(c net.Conn, busy bool) {
	if hc, ok := c.(*h1.Conn); ok {
		hc.SetBusy(busy)
	}
}

// connWriter returns the non-blocking writer of c, and its descriptor for
// batched writes (-1: none).
func connWriter(c net.Conn) (*rawWriter, int32) {
	w := sock.NewWriter(c)
	if w == nil {
		return nil, -1
	}
	return w, w.FD()
}

// keepPaceLater is for a publish read by the publisher ring that has to
// wait for its channel's sweep: the ring's connection waits later (see
// h1.WaitLater).
var keepPaceLater = h1.WaitLater
