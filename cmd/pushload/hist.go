package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// A histogram of durations in microseconds, log-linear: values below 64 µs
// are exact, larger ones fall in buckets 1/64 of their power of two wide
// (under 0.8% error). Add is safe for concurrent use without locks.
const (
	histSubBits = 6
	histSub     = 1 << histSubBits
	histBuckets = histSub * 40 // up to 2^40 µs, far beyond any run
)

type histogram struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	max    atomic.Int64
}

func histIndex(us int64) int {
	if us < 0 {
		us = 0
	}
	v := uint64(us)
	if v < histSub {
		return int(v)
	}
	e := bits.Len64(v) - histSubBits - 1 // >= 0; v>>e is in [64, 128)
	i := e*histSub + int(v>>uint(e))
	if i >= histBuckets {
		i = histBuckets - 1
	}
	return i
}

// histValue is the middle of bucket i, in microseconds.
func histValue(i int) int64 {
	if i < histSub {
		return int64(i)
	}
	e := i/histSub - 1
	m := int64(i%histSub + histSub)
	lo := m << uint(e)
	return lo + (int64(1)<<uint(e))/2
}

func (h *histogram) add(d time.Duration) {
	us := d.Microseconds()
	h.counts[histIndex(us)].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			return
		}
	}
}

// sparse is the histogram in a form that travels as JSON between processes.
type sparse struct {
	Index []int    `json:"i,omitempty"`
	Count []uint64 `json:"c,omitempty"`
	Max   int64    `json:"max"`
}

func (h *histogram) sparse() sparse {
	var s sparse
	for i := range h.counts {
		if c := h.counts[i].Load(); c > 0 {
			s.Index = append(s.Index, i)
			s.Count = append(s.Count, c)
		}
	}
	s.Max = h.max.Load()
	return s
}

func (h *histogram) merge(s sparse) {
	for k, i := range s.Index {
		if i >= 0 && i < histBuckets {
			h.counts[i].Add(s.Count[k])
			h.n.Add(s.Count[k])
		}
	}
	for {
		m := h.max.Load()
		if s.Max <= m || h.max.CompareAndSwap(m, s.Max) {
			return
		}
	}
}

// Latency is the summary printed in the JSON line, in milliseconds.
type Latency struct {
	N   uint64  `json:"n"`
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

func (h *histogram) summary() Latency {
	n := h.n.Load()
	l := Latency{N: n, Max: float64(h.max.Load()) / 1000}
	if n == 0 {
		return Latency{}
	}
	q := func(p float64) float64 {
		rank := uint64(p*float64(n) + 0.5)
		if rank < 1 {
			rank = 1
		}
		var seen uint64
		for i := range h.counts {
			seen += h.counts[i].Load()
			if seen >= rank {
				v := float64(histValue(i)) / 1000
				if v > l.Max {
					v = l.Max
				}
				return v
			}
		}
		return l.Max
	}
	l.P50, l.P90, l.P99 = q(0.50), q(0.90), q(0.99)
	return l
}
