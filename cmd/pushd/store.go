package main

import (
	"errors"

	"github.com/pushhub/push"
)

// openStore returns the Store pushd uses: nil (the Hub's own MemoryStore)
// when redisURL is empty. The caller closes a non-nil store after shutting
// the Hub down.
//
// Seam: the Redis store (issue 4) replaces this file.
func openStore(redisURL, prefix string) (push.Store, error) {
	if redisURL == "" {
		return nil, nil
	}
	return nil, errors.New("redis support is not built yet: run pushd without -redis to keep channels in memory")
}
