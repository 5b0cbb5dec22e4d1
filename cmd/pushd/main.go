// Command pushd is a standalone push server built on the push library.
//
// It serves the publisher at /pub, the subscriber at /sub (the channel comes
// from ?id=), the Hub's counters at /status (and for Prometheus at
// /metrics), and health checks at /healthz and /readyz:
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
	"crypto/tls"
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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/pushhub/push"
	"github.com/pushhub/push/pushmetrics"
)

// config is everything the command line sets.
type config struct {
	Addr            string
	PubAddr         string // the publisher's own address; "": on Addr
	Options         push.Options
	Auth            authConfig // applied to Options by newServers
	RedisURL        string
	RedisClusterURL string
	RedisPrefix     string
	LogLevel        slog.Level
	LogFormat       string // text or json
	TLSCert         string // -addr serves HTTPS with this certificate and TLSKey
	TLSKey          string
	PubTLSCert      string // -pub-addr serves HTTPS with this certificate and PubTLSKey
	PubTLSKey       string
	Version         bool   // print the version and exit
	Check           string // GET this URL, exit 0 on 200 (a container's health check)
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
	if cfg.Version {
		fmt.Fprint(os.Stdout, versionText())
		return 0
	}
	if cfg.Check != "" {
		return check(cfg.Check, stderr)
	}
	log := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	cfg.Options.Logger = log
	logRedisTo(log)
	defer heapFloor(cfg.GCHeapFloor)()

	var certs []*certificate
	var tlsConfig, pubTLSConfig *tls.Config
	for _, p := range []struct {
		cert, key string
		to        **tls.Config
	}{{cfg.TLSCert, cfg.TLSKey, &tlsConfig}, {cfg.PubTLSCert, cfg.PubTLSKey, &pubTLSConfig}} {
		if p.cert == "" {
			continue
		}
		c, err := loadCertificate(p.cert, p.key)
		if err != nil {
			log.Error("pushd: cannot serve HTTPS", "error", err)
			return 1
		}
		certs = append(certs, c)
		*p.to = c.config()
	}

	store, err := openStore(cfg.RedisURL, cfg.RedisClusterURL, cfg.RedisPrefix, log)
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
	ready := &readiness{store: store}
	hub, srv, pubSrv := newServers(cfg, ready)
	srv.TLSConfig = tlsConfig
	if pubSrv != nil {
		pubSrv.TLSConfig = pubTLSConfig
	}

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
	if len(certs) > 0 {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for {
				select {
				case <-hup:
					reloadAll(certs, log)
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	served := make(chan error, 2)
	go func() { served <- srv.Serve(ln) }()
	servers := 1
	scheme := func(c *tls.Config) string {
		if c != nil {
			return "https"
		}
		return "http"
	}
	if pubSrv != nil {
		servers++
		go func() { served <- pubSrv.Serve(pubLn) }()
		log.Info("pushd listening", "addr", ln.Addr().String(), "scheme", scheme(tlsConfig), "sub", "/sub?id=CHANNEL")
		log.Info("pushd publisher listening", "pub-addr", pubLn.Addr().String(), "scheme", scheme(pubTLSConfig),
			"pub", "/pub?id=CHANNEL", "status", "/status", "metrics", "/metrics")
	} else {
		log.Info("pushd listening", "addr", ln.Addr().String(), "scheme", scheme(tlsConfig),
			"pub", "/pub?id=CHANNEL", "sub", "/sub?id=CHANNEL", "status", "/status", "metrics", "/metrics")
	}

	select {
	case err := <-served:
		log.Error("pushd: server failed", "error", err)
		ready.stopping.Store(true)
		hub.Shutdown(context.Background())
		srv.Close()
		if pubSrv != nil {
			pubSrv.Close()
		}
		return 1
	case <-ctx.Done():
	}
	stop()                     // a second signal kills the process at once
	ready.stopping.Store(true) // /readyz answers 503 from now on
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
// srv on cfg.Addr (/sub, /status, /healthz, /readyz and the demo page at
// /, and /pub and /metrics unless cfg.PubAddr is set), and with
// cfg.PubAddr, pubSrv (/pub, /status, /metrics, /healthz and /readyz). ready answers
// the health checks (nil: a readiness of the memory store).
// cfg.Options.Store is used as given (nil: memory); the caller shuts the
// Hub down and closes a store it opened.
func newServers(cfg config, ready *readiness) (hub *push.Hub, srv, pubSrv *push.Server) {
	cfg.Auth.apply(&cfg.Options)
	hub = push.New(cfg.Options)
	if ready == nil {
		ready = &readiness{}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(pushmetrics.NewCollector(hub),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	log := cfg.Options.Logger
	if log == nil {
		log = slog.Default()
	}
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	})
	common := func(mux *http.ServeMux) *http.ServeMux {
		mux.Handle("/status", statusHandler(hub))
		mux.HandleFunc("GET /healthz", ready.healthz)
		mux.HandleFunc("GET /readyz", ready.readyz)
		return mux
	}
	mux := common(http.NewServeMux())
	mux.Handle("/", demoHandler())
	srv = &push.Server{Hub: hub, SubscribePath: "/sub", Handler: mux}
	if cfg.PubAddr == "" {
		srv.PublishPath = "/pub"
		mux.Handle("GET /metrics", metrics)
		return hub, srv, nil
	}
	// With a publisher listener, /metrics is served there only: the
	// public address does not show the node's figures.
	pubMux := common(http.NewServeMux())
	pubMux.Handle("GET /metrics", metrics)
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
