// Package h1 holds the connections of a Hub's listeners and, on a listener
// the Hub owns whole (push.Server), reads their HTTP/1.1 requests itself.
//
// # Connections
//
// Conns.Listen wraps a listener: its connections are Conns, registered by
// their two addresses so a handler finds the connection of its request
// (Lookup) whatever wraps its ResponseWriter. A long-poll that has to wait
// hijacks its Conn and parks; KeepReading then reads the client side into
// the Conn's prefix (a pipelined request), and after the answer the
// connection goes back to the listener's http.Server through Accept, which
// reads the prefix first. On an app's listener (no Config) that is all:
// every request is read by net/http and passes the app's handler chain.
//
// # The reader
//
// net/http spends most of a small request's CPU on its own per-request
// work: a request context, a background read that watches for the client
// going away, deadlines set twice, a chunk writer, header parsing into
// fresh maps, and after a long-poll parked, a new goroutine and buffers for
// the connection's next request. On a listener with a Config, a kept-alive
// connection whose request for one of the Config's paths reached its
// handler is taken over (TakeOver: hijacked, as a parked long-poll is), and
// its following requests are read here, as is the next request after a
// parked long-poll's answer. Each is parsed into an *http.Request that
// starts from the Config's BaseContext (nothing of one request reaches the
// next) and answered by the same handlers through a Response, so each
// endpoint's behaviour is one code path whichever side read the request.
// When no hook keeps requests (Conns.RecycleRequests), an answered
// request's memory is reused for the next.
//
// Only the plain cases are read here: an HTTP/1.1 request for one of the
// paths, with a Content-Length body of at most MaxBody bytes and no Expect,
// Upgrade or Transfer-Encoding, and for subscribers a request Config.Direct
// accepts (a long-poll, not a stream). Anything else, a connection idle for
// a second, and a client that ends its side in the middle of a request go
// back to the http.Server with the bytes read so far, and net/http answers
// as it always does (400 for the truncated request). FuzzParse checks that
// every request read here is one net/http reads the same way.
//
// # The publisher ring (Linux)
//
// A publish read by a goroutine costs two system calls, a recvfrom(2) for
// the request and a sendto(2) for the answer. With Conns.Ring (no handler
// can block: the Store is in memory and no hook sees requests), a
// connection that has published joins one goroutine, locked to its thread,
// that serves every such connection through an io_uring (package uring):
// each turn answers every request that came, then hands the kernel, in one
// io_uring_enter(2), the sends of all those answers each linked to the
// receive of its connection's next request, waiting up to 50 µs for a
// batch of requests to come (a batch of one waits up to 1 ms; a batch is
// at most half the connections, and grows by one every eight full turns).
// While in the ring, a socket is out of Go's network poller (sock.Detach),
// so the poller's thread is not woken by every request. Anything unusual
// (another path, Connection: close, a publish that has to keep pace with
// its channel's fan-out, see WaitLater) moves the connection to a
// goroutine of its own, and an idle one goes back to the http.Server.
// Where io_uring is missing or refused the ring is never started.
package h1
