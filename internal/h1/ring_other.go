//go:build !linux

package h1

import "context"

// publisherRing: only on Linux (ring_linux.go); kept-alive publishers are
// served by a goroutine each here.
type publisherRing struct{}

func (r *publisherRing) join(d *reader) bool { return false }

func (r *publisherRing) shutdown(context.Context) {}

func (r *publisherRing) listenerClosed() {}

// RingStats describes the publisher ring.
type RingStats struct {
	Joined, Left int64
	Running      bool
	Unavailable  bool
}

// RingStats reports an unavailable ring here.
func (cs *Conns) RingStats() RingStats { return RingStats{Unavailable: true} }
