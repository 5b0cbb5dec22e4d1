package redisstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pushhub/push"
	"github.com/pushhub/push/redisstore/redistest"
	"github.com/pushhub/push/storetest"
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
