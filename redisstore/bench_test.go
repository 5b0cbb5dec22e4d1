package redisstore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pushhub/push"
	"github.com/pushhub/push/redisstore/redistest"
)

// The benchmarks run the same Hub workload on the memory store, on the
// Redis store and on the Redis store on a Redis Cluster (3 masters, 3
// replicas, started by the benchmark):
//
//	go test -run '^$' -bench . -benchtime 2000x ./redisstore

func benchStores(b *testing.B, fn func(b *testing.B, newStore func() push.Store)) {
	b.Run("store=memory", func(b *testing.B) {
		fn(b, func() push.Store {
			s := push.NewMemoryStore()
			b.Cleanup(func() { s.Close() })
			return s
		})
	})
	b.Run("store=redis", func(b *testing.B) {
		r := startRedis(b)
		fn(b, func() push.Store { return newTestStore(b, r, "") })
	})
	b.Run("store=redis-cluster", func(b *testing.B) {
		c := redistest.StartCluster(b)
		fn(b, func() push.Store { return newClusterStore(b, c, "") })
	})
}

func benchHub(b *testing.B, s push.Store) *push.Hub {
	h := push.New(push.Options{Store: s})
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h.Shutdown(ctx)
	})
	return h
}

// BenchmarkPublish: Hub.Publish from 8 goroutines per CPU to 100 channels.
func BenchmarkPublish(b *testing.B) {
	benchStores(b, func(b *testing.B, newStore func() push.Store) {
		h := benchHub(b, newStore())
		ctx := context.Background()
		data := make([]byte, 100)
		b.SetParallelism(8)
		b.ResetTimer()
		var mu sync.Mutex
		n := 0
		b.RunParallel(func(pb *testing.PB) {
			mu.Lock()
			ch := fmt.Sprintf("bench-%d", n%100)
			n++
			mu.Unlock()
			for pb.Next() {
				if _, _, err := h.Publish(ctx, ch, &push.Message{Data: data}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
}

// BenchmarkFanout: one message at a time to a channel with 1,000 in-process
// subscribers; an operation ends when every subscriber has it.
func BenchmarkFanout(b *testing.B) {
	const subscribers = 1000
	benchStores(b, func(b *testing.B, newStore func() push.Store) {
		h := benchHub(b, newStore())
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		got := make(chan struct{}, subscribers)
		var wg sync.WaitGroup
		defer wg.Wait()
		defer cancel()
		for i := 0; i < subscribers; i++ {
			sub, err := h.Subscribe(ctx, []string{"fan"}, "")
			if err != nil {
				b.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer sub.Close()
				for {
					if _, err := sub.Next(ctx); err != nil {
						return
					}
					got <- struct{}{}
				}
			}()
		}
		data := make([]byte, 100)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, _, err := h.Publish(ctx, "fan", &push.Message{Data: data}); err != nil {
				b.Fatal(err)
			}
			for j := 0; j < subscribers; j++ {
				<-got
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)*subscribers/b.Elapsed().Seconds(), "deliveries/s")
	})
}
