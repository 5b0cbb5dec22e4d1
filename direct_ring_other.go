//go:build !linux

package push

import "context"

// publisherRing: only on Linux (direct_ring_linux.go); kept-alive
// publishers are served by a goroutine each here.
type publisherRing struct{}

func (r *publisherRing) join(d *directConn) bool { return false }

func (r *publisherRing) shutdown(context.Context) {}
