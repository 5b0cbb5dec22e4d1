package redisstore

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushhub/push"
	"github.com/pushhub/push/redisstore/redistest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// go-redis probes the address of a server that refused a connection
	// once a second in a goroutine of its own, which ends at its next
	// probe after the client is closed (the cluster failover test kills a
	// node).
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"))
}

// redisServer is the test's redis-server.
type redisServer = redistest.Server

// startRedis starts a redis-server for the test (see package redistest).
func startRedis(t testing.TB, extra ...string) *redisServer { return redistest.Start(t, extra...) }

var prefixes atomic.Int64

// newTestStore returns a Store on r with a fresh key prefix, closed at the
// end of the test.
func newTestStore(t testing.TB, r *redisServer, prefix string) *Store {
	t.Helper()
	if prefix == "" {
		prefix = fmt.Sprintf("t%d:", prefixes.Add(1))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := New(ctx, Options{URL: r.URL(0), KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var _ push.Store = (*Store)(nil)
