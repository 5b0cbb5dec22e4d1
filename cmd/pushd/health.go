package main

import (
	"context"
	"net/http"
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
