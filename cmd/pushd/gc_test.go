package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGCPercentForFloor(t *testing.T) {
	tu := &gcTuner{floor: 32 << 20}
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 700},        // no collection yet: Go's 4 MiB minimum heap, times 8
		{1 << 20, 700},  // below the minimum heap
		{4 << 20, 700},  // next collection at 32 MiB
		{8 << 20, 300},  // at 32 MiB
		{16 << 20, 100}, // at 32 MiB, which is twice the live heap
		{40 << 20, 100}, // above the floor: Go's default
	} {
		assert.Equal(t, c.want, tu.percent(c.live), "live heap %d", c.live)
	}
}

// TestHeapFloorTunesAfterCollection: after a collection the GC percent is
// the one for the floor, and stopping restores the percent found.
func TestHeapFloorTunesAfterCollection(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	tuned := make(chan int, 10)
	tu := startGCTuner(1<<30, func(p int) {
		select {
		case tuned <- p:
		default:
		}
	})
	assert.Equal(t, 100, tu.initial)
	runtime.GC()
	var p int
	select {
	case p = <-tuned:
	case <-time.After(10 * time.Second):
		t.Fatal("no tuning after a collection")
	}
	assert.Greater(t, p, 1000, "a 1 GiB floor over a small test heap")
	sample := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(sample)
	require.Equal(t, metrics.KindUint64, sample[0].Value.Kind())
	assert.EqualValues(t, p, sample[0].Value.Uint64(), "the GC percent in effect")
	tu.stop()
	assert.Equal(t, 100, debug.SetGCPercent(100), "restored by stop")
	// A collection after stop does not tune again.
	runtime.GC()
	runtime.GC()
	assert.Equal(t, 100, debug.SetGCPercent(100))
}
