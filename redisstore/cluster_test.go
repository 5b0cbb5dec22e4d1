package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushhub/push"
	"github.com/pushhub/push/redisstore/redistest"
	"github.com/pushhub/push/storetest"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// newClusterStore returns a Store on cluster c with a fresh key prefix,
// closed at the end of the test.
func newClusterStore(t testing.TB, c *redistest.Cluster, prefix string) *Store {
	t.Helper()
	if prefix == "" {
		prefix = fmt.Sprintf("t%d:", prefixes.Add(1))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := New(ctx, Options{ClusterURL: c.URL(), KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestConformanceCluster runs the conformance suite on a real Redis
// Cluster of 3 masters and 3 replicas.
func TestConformanceCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 6-node Redis Cluster")
	}
	c := redistest.StartCluster(t)
	storetest.Run(t, func(t *testing.T) push.Store { return newClusterStore(t, c, "") })
}

// TestClusterFailover: publishes go on while the master holding the
// store's slot is killed. Publishes fail (unavailable) until a replica is
// promoted, then succeed again; a subscriber on another node gets every
// acknowledged publish, in increasing id order.
func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 6-node Redis Cluster")
	}
	c := redistest.StartCluster(t)
	ctx := testCtx(t, 90*time.Second)
	const prefix = "fo:"
	pubHub := clusterHub(t, c, prefix)
	subHub := clusterHub(t, c, prefix)
	sub, err := subHub.Subscribe(ctx, []string{"x"}, "")
	require.NoError(t, err)
	defer sub.Close()

	// The master of the store's slot.
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{fmt.Sprintf("127.0.0.1:%d", c.Nodes[0].Port())}})
	defer cc.Close()
	m, err := cc.MasterForKey(ctx, "{"+prefix+"}clock")
	require.NoError(t, err)
	var master *redistest.Server
	for _, n := range c.Nodes {
		if m.Options().Addr == fmt.Sprintf("127.0.0.1:%d", n.Port()) {
			master = n
		}
	}
	require.NotNil(t, master, "master %s among the nodes", m.Options().Addr)

	var (
		mu      sync.Mutex
		acked   []push.MessageID
		killed  atomic.Bool
		after   atomic.Int64 // acknowledged since the kill
		failed  atomic.Int64 // publishes refused
		pubDone = make(chan error, 1)
	)
	go func() {
		for i := 0; ; i++ {
			if ctx.Err() != nil {
				pubDone <- ctx.Err()
				return
			}
			msg, _, err := pubHub.Publish(ctx, "x", &push.Message{Data: []byte(fmt.Sprint(i))})
			if err != nil {
				if !errors.Is(err, push.ErrStoreUnavailable) {
					pubDone <- err
					return
				}
				failed.Add(1)
				time.Sleep(5 * time.Millisecond) // a publisher's pause before it tries again, not a synchronisation
				continue
			}
			mu.Lock()
			if n := len(acked); n > 0 && acked[n-1].Compare(msg.ID) >= 0 {
				mu.Unlock()
				pubDone <- fmt.Errorf("id %v after %v", msg.ID, acked[n-1])
				return
			}
			acked = append(acked, msg.ID)
			mu.Unlock()
			if killed.Load() && after.Add(1) >= 50 {
				pubDone <- nil
				return
			}
		}
	}()
	acks := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	require.Eventually(t, func() bool { return acks() >= 50 }, 30*time.Second, 5*time.Millisecond)
	master.Kill()
	killed.Store(true)
	require.NoError(t, <-pubDone)
	master.Restart() // it comes back as a replica
	t.Logf("%d publishes acknowledged, %d refused during the failover", acks(), failed.Load())

	mu.Lock()
	want := append([]push.MessageID(nil), acked...)
	mu.Unlock()
	var got []push.MessageID
	for len(got) == 0 || got[len(got)-1].Compare(want[len(want)-1]) < 0 {
		m, err := sub.Next(ctx)
		if errors.Is(err, push.ErrStoreUnavailable) {
			continue // the subscription keeps its position
		}
		require.NoError(t, err)
		if n := len(got); n > 0 {
			require.True(t, got[n-1].Compare(m.ID) < 0, "id %v after %v", m.ID, got[n-1])
		}
		got = append(got, m.ID)
	}
	seen := make(map[push.MessageID]bool, len(got))
	for _, id := range got {
		seen[id] = true
	}
	for _, id := range want {
		require.True(t, seen[id], "acknowledged publish %v not received (missed: %v)", id, sub.Missed())
	}
	require.False(t, sub.Missed())
}

// clusterHub returns a Hub on a store on cluster c, shut down at the end of
// the test.
func clusterHub(t *testing.T, c *redistest.Cluster, prefix string) *push.Hub {
	h := push.New(push.Options{Store: newClusterStore(t, c, prefix), MessageBufferLength: 100000})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		h.Shutdown(ctx)
	})
	return h
}

// TestClusterBadURLAndUnreachable: a malformed cluster URL is refused with
// a clear error; a cluster that refuses connections is unavailable.
func TestClusterBadURLAndUnreachable(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	_, err := New(ctx, Options{ClusterURL: "http://127.0.0.1:1"})
	require.ErrorContains(t, err, "bad cluster URL")

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	_, err = New(ctx, Options{ClusterURL: "redis://" + addr})
	require.ErrorIs(t, err, push.ErrStoreUnavailable)
	require.ErrorContains(t, err, addr)
}
