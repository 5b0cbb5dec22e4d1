// Command pushd is a standalone push server built on the push library.
//
// It serves the publisher at /pub, the subscriber at /sub (the channel comes
// from ?id=) and the Hub's counters at /status:
//
//	go run ./cmd/pushd -addr localhost:8080
//	curl -d 'hello' 'http://localhost:8080/pub?id=news'
//	curl -i 'http://localhost:8080/sub?id=news'
//
// With -pub-addr the publisher (and /status) is served on a listener of its
// own, for the back end only, and -addr answers /pub with 404:
//
//	pushd -addr :8080 -pub-addr unix:/run/pushd/pub.sock
//
// Run it with -h for the flags. SIGINT or SIGTERM shut it down gracefully:
// held subscribers are answered (503, with their position so they can
// resume), then the HTTP server stops.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pushhub/push"
)

// config is everything the command line sets.
type config struct {
	Addr            string
	PubAddr         string // the publisher's own address; "": on Addr
	Options         push.Options
	Auth            authConfig // applied to Options by newServers
	RedisURL        string
	RedisPrefix     string
	LogLevel        slog.Level
	ShutdownTimeout time.Duration
	PprofAddr       string // net/http/pprof on this loopback address; "" off
	GCHeapFloor     uint64 // heap size below which Go does not collect; 0: Go's default
}

func main() {
	atLeastTwoPs()
	os.Exit(run(os.Args[1:], os.Stderr))
}

// atLeastTwoPs runs Go code on two Ps even when the process may use one CPU
// (taskset, a one-core container), unless GOMAXPROCS says otherwise. A
// sweep writing a message to thousands of subscribers keeps its P busy for
// a hundred milliseconds; with one P, a publish or a new subscriber waiting
// on the network would be read only when Go preempts the sweep and polls
// the network, 10-20 ms later, and the Hub could not pace a fast publisher
// to its subscribers. With a second P its thread waits in the network
// poller and the kernel runs it at once. The CPU used does not change.
// The cost, measured on one core (BENCHMARKS.md): the tail latency of busy
// publishers and of long-polls re-polling during a sweep is higher than
// with one P; a pushd serving mostly long-polls on one core may do better
// with GOMAXPROCS=1.
func atLeastTwoPs() {
	if os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
}

// run is main without os.Exit: it returns the process's exit code, 2 for
// a bad command line.
func run(args []string, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2 // the flag package or parseFlags has said why
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	cfg.Options.Logger = log
	defer heapFloor(cfg.GCHeapFloor)()

	store, err := openStore(cfg.RedisURL, cfg.RedisPrefix)
	if err != nil {
		log.Error("pushd: cannot open the store", "error", err)
		return 1
	}
	if store != nil {
		cfg.Options.Store = store
		defer store.Close()
	}
	if events := cfg.Auth.events(&cfg.Options); events != nil {
		defer func() { // after the Hub's Shutdown: its last events are sent
			ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			defer cancel()
			if err := events.Close(ctx); err != nil {
				log.Warn("pushd: events not sent by the shutdown timeout were dropped", "error", err)
			}
			if n := events.Dropped(); n > 0 {
				log.Warn("pushd: events dropped", "dropped", n, "sent", events.Sent())
			}
		}()
	}
	hub, srv, pubSrv := newServers(cfg)

	ln, err := listen(cfg.Addr)
	if err != nil {
		log.Error("pushd: cannot listen", "addr", cfg.Addr, "error", err)
		hub.Shutdown(context.Background())
		return 1
	}
	var pubLn net.Listener
	if pubSrv != nil {
		if pubLn, err = listen(cfg.PubAddr); err != nil {
			log.Error("pushd: cannot listen", "pub-addr", cfg.PubAddr, "error", err)
			ln.Close()
			hub.Shutdown(context.Background())
			return 1
		}
	}
	if cfg.PprofAddr != "" {
		_, stopPprof, err := startPprof(cfg.PprofAddr, log)
		if err != nil {
			log.Error("pushd: cannot serve pprof", "error", err)
			ln.Close()
			if pubLn != nil {
				pubLn.Close()
			}
			hub.Shutdown(context.Background())
			return 1
		}
		defer stopPprof()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 2)
	go func() { served <- srv.Serve(ln) }()
	servers := 1
	if pubSrv != nil {
		servers++
		go func() { served <- pubSrv.Serve(pubLn) }()
		log.Info("pushd listening", "addr", ln.Addr().String(), "sub", "/sub?id=CHANNEL")
		log.Info("pushd publisher listening", "pub-addr", pubLn.Addr().String(),
			"pub", "/pub?id=CHANNEL", "status", "/status")
	} else {
		log.Info("pushd listening", "addr", ln.Addr().String(),
			"pub", "/pub?id=CHANNEL", "sub", "/sub?id=CHANNEL", "status", "/status")
	}

	select {
	case err := <-served:
		log.Error("pushd: server failed", "error", err)
		hub.Shutdown(context.Background())
		srv.Close()
		if pubSrv != nil {
			pubSrv.Close()
		}
		return 1
	case <-ctx.Done():
	}
	stop() // a second signal kills the process at once
	log.Info("pushd shutting down", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	code := 0
	// The Hub first: it answers held subscribers, so that the HTTP server
	// finds their connections idle instead of cutting them.
	if err := hub.Shutdown(sctx); err != nil {
		log.Warn("pushd: subscribers still held at the shutdown timeout", "error", err)
		code = 1
	}
	for _, s := range []*push.Server{srv, pubSrv} {
		if s == nil {
			continue
		}
		if err := s.Shutdown(sctx); err != nil {
			log.Warn("pushd: connections still open at the shutdown timeout", "error", err)
			s.Close()
			code = 1
		}
	}
	for range servers {
		<-served
	}
	log.Info("pushd stopped")
	return code
}

// newServers builds pushd's Hub from cfg and the Servers that serve it:
// srv on cfg.Addr (/sub, /status and the demo page at /, and /pub unless
// cfg.PubAddr is set), and with cfg.PubAddr, pubSrv (/pub and /status).
// cfg.Options.Store is used as given (nil: memory); the caller shuts the
// Hub down and closes a store it opened.
func newServers(cfg config) (hub *push.Hub, srv, pubSrv *push.Server) {
	cfg.Auth.apply(&cfg.Options)
	hub = push.New(cfg.Options)
	mux := http.NewServeMux()
	mux.Handle("/status", statusHandler(hub))
	mux.Handle("/", demoHandler())
	srv = &push.Server{Hub: hub, SubscribePath: "/sub", Handler: mux}
	if cfg.PubAddr == "" {
		srv.PublishPath = "/pub"
		return hub, srv, nil
	}
	pubMux := http.NewServeMux()
	pubMux.Handle("/status", statusHandler(hub))
	return hub, srv, &push.Server{Hub: hub, PublishPath: "/pub", Handler: pubMux}
}

// listen listens on addr: host:port, or unix:/path for a unix socket
// (a socket file left there by an earlier run is replaced).
func listen(addr string) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix:")
	if !ok {
		return net.Listen("tcp", addr)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(path)
	}
	return net.Listen("unix", path)
}

// statusHandler serves hub.Stats as plain "name: value" lines, or as JSON
// when the Accept header names application/json or the query has
// ?format=json.
func statusHandler(hub *push.Hub) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "Method not allowed: use GET.", http.StatusMethodNotAllowed)
			return
		}
		st, err := hub.Stats(r.Context())
		if err != nil {
			http.Error(w, "Stats unavailable: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Vary", "Accept")
		if wantsJSON(r) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(st)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "channels: %d\nmessages: %d\nsubscribers: %d\npublished: %d\ndelivered: %d\n",
			st.Channels, st.Messages, st.Subscribers, st.Published, st.Delivered)
	})
}

// wantsJSON reports whether r asks for JSON: ?format=json, or an Accept
// header naming application/json with a non-zero quality.
func wantsJSON(r *http.Request) bool {
	switch r.URL.Query().Get("format") {
	case "json":
		return true
	case "text":
		return false
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || mt != "application/json" {
			continue
		}
		if q, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(q, 64); err != nil || f <= 0 {
				continue
			}
		}
		return true
	}
	return false
}
