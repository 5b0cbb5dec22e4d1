package push

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// A Server serves a Hub's publisher and subscriber on listeners it owns
// whole. Because no middleware of an app stands between the network and
// the Hub there, the Server reads the kept-alive connections' publisher
// and long-poll requests itself, at a fraction of net/http's cost per
// request; every request still gets a context of its own (from the
// server's, with its own RemoteAddr) and passes AuthorizePublish and
// AuthorizeSubscribe. Requests for other paths go to Handler.
//
// pushd serves with a Server. An app that wants this for its back-end
// publishers gives the Hub a listener of its own (an internal port or a
// unix socket) and keeps its public routes on its own http.Server:
//
//	go (&push.Server{Hub: hub, PublishPath: "/pub"}).Serve(internalLn)
//	mux.Handle("/sub", hub.SubscribeHandler()) // behind the app's middleware
//
// The zero Server serves nothing but Handler; set Hub and a path.
type Server struct {
	// Hub is the Hub served.
	Hub *Hub
	// PublishPath is the URL path of the publisher (for example "/pub").
	// Empty: the Server serves no publisher.
	PublishPath string
	// SubscribePath is the URL path of the subscriber (for example
	// "/sub"). Empty: the Server serves no subscriber.
	SubscribePath string
	// Handler serves every other request. Nil: 404 Not Found.
	Handler http.Handler
	// TLSConfig, if set, makes the Server serve HTTPS with it: HTTP/2 is
	// offered by ALPN unless NextProtos says otherwise, so EventSource,
	// long-poll and HTTP stream subscribers of a browser share one
	// connection; WebSocket stays on HTTP/1.1. Set Certificates or
	// GetCertificate (which can reload a renewed certificate). The Hub
	// reads and parks no request of a TLS connection itself: net/http
	// reads them, and held long-polls wait on their handler's goroutine.
	TLSConfig *tls.Config

	// observe, if set (by in-package tests), sees every request for
	// PublishPath or SubscribePath that net/http read.
	observe func(r *http.Request)
	// connState, if set (by in-package tests), is the http.Server's
	// ConnState.
	connState func(net.Conn, http.ConnState)

	once sync.Once
	srv  *http.Server
}

// serverIdleTimeout is how long a Server keeps an idle kept-alive
// connection.
const serverIdleTimeout = 2 * time.Minute

func (s *Server) init() {
	s.once.Do(func() {
		s.srv = &http.Server{
			Handler:     http.HandlerFunc(s.route),
			IdleTimeout: serverIdleTimeout,
			ConnState:   s.connState,
			ConnContext: connContext,
		}
		if h := s.Hub; h != nil {
			s.srv.ErrorLog = slog.NewLogLogger(h.log.Handler(), slog.LevelWarn)
			// A held long-poll may last for ever: the request's deadline
			// covers its header here and its body in the handlers.
			if t := h.opts.RequestTimeout; t > 0 {
				s.srv.ReadHeaderTimeout = t
			}
		}
	})
}

// Serve accepts connections on ln and serves them until Shutdown or Close;
// it then returns http.ErrServerClosed. Serve may be called for several
// listeners. Closing ln ends Serve with the error Accept returned.
func (s *Server) Serve(ln net.Listener) error {
	if s.Hub == nil {
		return errors.New("push: Server.Hub is nil: set it to the Hub to serve")
	}
	if s.PublishPath != "" && s.PublishPath == s.SubscribePath {
		return errors.New("push: Server.PublishPath and SubscribePath are both " + s.PublishPath + ": give them different paths")
	}
	s.init()
	ln = s.Hub.conns.Listen(ln, s.Hub.listenConfig(s))
	if s.TLSConfig != nil {
		// Outside the Hub's wrapper, so that net/http sees a *tls.Conn:
		// it then does the handshake, ALPN and HTTP/2.
		cfg := s.TLSConfig.Clone()
		if len(cfg.NextProtos) == 0 {
			cfg.NextProtos = []string{"h2", "http/1.1"}
		}
		ln = tls.NewListener(ln, cfg)
	}
	return s.srv.Serve(ln)
}

// Shutdown stops accepting connections and closes idle ones, then waits
// for the requests in progress to end, or for ctx. Shut the Hub down
// first, so held long-polls are answered rather than cut.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	return s.srv.Shutdown(ctx)
}

// Close closes the listeners and the connections the Server reads or
// that wait for their next request, at once. As with http.Server,
// connections handed over to subscribers (streams, parked long-polls) are
// not closed: Hub.Shutdown ends them first (a parked long-poll's
// connection then closes after its answer).
func (s *Server) Close() error {
	s.init()
	return s.srv.Close()
}

// route sends a request net/http read to the publisher, the subscriber or
// Handler.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case p == s.PublishPath && p != "":
		if s.observe != nil {
			s.observe(r)
		}
		s.Hub.servePublish(w, r)
	case p == s.SubscribePath && p != "":
		if s.observe != nil {
			s.observe(r)
		}
		s.Hub.serveSubscribe(w, r)
	case s.Handler != nil:
		s.Handler.ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

// baseContext is the context every request read by the Hub on c starts
// from: the server's, with the connection's local address, as net/http
// gives its requests.
func (s *Server) baseContext(c net.Conn) context.Context {
	ctx := context.WithValue(context.Background(), http.ServerContextKey, s.srv)
	return context.WithValue(ctx, http.LocalAddrContextKey, c.LocalAddr())
}
