package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pushhub/push"
)

// readiness answers /healthz and /readyz.
type readiness struct {
	store    push.Store // nil: the memory store, always ready
	stopping atomic.Bool
}

// pinger is a Store that can tell whether its server answers
// (redisstore.Store).
type pinger interface {
	Ping(ctx context.Context) error
}

// healthz answers 200 while the process serves: a liveness probe.
func (rd *readiness) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// readyz answers 200 when pushd can serve subscribers and publishers, and
// 503 with the reason while the store does not answer or once the shutdown
// has begun: a readiness probe, which a load balancer uses to drain the
// node.
func (rd *readiness) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if rd.stopping.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("not ready: pushd is shutting down\n"))
		return
	}
	if p, ok := rd.store.(pinger); ok {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := p.Ping(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ready: the store does not answer: " + err.Error() + "\n"))
			return
		}
	}
	w.Write([]byte("ready\n"))
}

// check is -check: it GETs url and returns 0 if it answers 200, else 1,
// saying why on stderr.
func check(url string, stderr io.Writer) int {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		// The process's own loopback address, whose certificate names the
		// public host: checking that it answers is the point.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
	resp, err := c.Get(url)
	if err != nil {
		fmt.Fprintf(stderr, "pushd -check: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "pushd -check: %s: %s %s\n", url, resp.Status, strings.TrimSpace(string(body)))
		return 1
	}
	return 0
}
