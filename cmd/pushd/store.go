package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/pushhub/push"
	"github.com/pushhub/push/redisstore"
)

// openStore returns the Store for -redis, -redis-cluster and -redis-prefix:
// nil (the Hub's own memory store) when both URLs are "", else a Redis
// store on that server or cluster. The store logs to log. It fails if Redis
// cannot be reached within 10 seconds.
func openStore(redisURL, clusterURL, prefix string, log *slog.Logger) (push.Store, error) {
	if redisURL == "" && clusterURL == "" {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := redisstore.New(ctx, redisstore.Options{URL: redisURL, ClusterURL: clusterURL, KeyPrefix: prefix, Logger: log})
	if err != nil {
		if clusterURL != "" {
			return nil, fmt.Errorf("-redis-cluster %s: %w", clusterURL, err)
		}
		return nil, fmt.Errorf("-redis %s: %w", redisURL, err)
	}
	return s, nil
}
