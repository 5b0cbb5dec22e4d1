package push

import (
	"sync/atomic"
	"time"
)

// A Histogram is a snapshot of durations counted in buckets, as Prometheus
// histograms count them.
type Histogram struct {
	// Bounds are the buckets' upper bounds in seconds, in increasing order.
	Bounds []float64 `json:"bounds"`
	// Counts[i] is how many durations were at most Bounds[i] (cumulative).
	Counts []uint64 `json:"counts"`
	// Count is how many durations were counted, Sum their total in seconds.
	Count uint64  `json:"count"`
	Sum   float64 `json:"sum"`
}

// publishLatencyBounds are the buckets of Stats.PublishLatency, in seconds:
// from 50µs (a memory store) to 2.5s (a publisher paced by a slow fan-out
// or a struggling Redis).
var publishLatencyBounds = [...]float64{
	0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
}

// histogram counts durations in the buckets publishLatencyBounds, with
// atomics: observe is a handful of uncontended adds.
type histogram struct {
	counts [len(publishLatencyBounds) + 1]atomic.Uint64 // per bucket (not cumulative); the last is +Inf
	count  atomic.Uint64
	sumNs  atomic.Uint64
}

func (h *histogram) observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(publishLatencyBounds) && s > publishLatencyBounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNs.Add(uint64(max(d, 0)))
	h.count.Add(1)
}

func (h *histogram) snapshot() Histogram {
	s := Histogram{
		Bounds: append([]float64(nil), publishLatencyBounds[:]...),
		Counts: make([]uint64, len(publishLatencyBounds)),
	}
	var c uint64
	for i := range publishLatencyBounds {
		c += h.counts[i].Load()
		s.Counts[i] = c
	}
	s.Count = c + h.counts[len(publishLatencyBounds)].Load()
	s.Sum = float64(h.sumNs.Load()) / 1e9
	return s
}

// transportIndex numbers the transports of transportNames from 1 for the
// Hub's per-transport counters; 0 is a subscription made in Go.
func transportIndex(t Transport) uint8 {
	for i, n := range transportNames {
		if n.t == t {
			return uint8(i + 1)
		}
	}
	return 0
}
