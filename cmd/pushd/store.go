package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/pushhub/push"
	"github.com/pushhub/push/redisstore"
)

// openStore returns the Store for -redis and -redis-prefix: nil (the Hub's
// own memory store) when redisURL is "", else a Redis store on that server.
// The store logs to log. It fails if Redis cannot be reached within 10 seconds.
func openStore(redisURL, prefix string, log *slog.Logger) (push.Store, error) {
	if redisURL == "" {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := redisstore.New(ctx, redisstore.Options{URL: redisURL, KeyPrefix: prefix, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("-redis %s: %w", redisURL, err)
	}
	return s, nil
}
