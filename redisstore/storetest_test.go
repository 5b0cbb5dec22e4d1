package redisstore

import (
	"testing"

	"github.com/pushhub/push"
	"github.com/pushhub/push/storetest"
)

func TestConformance(t *testing.T) {
	r := startRedis(t)
	storetest.Run(t, func(t *testing.T) push.Store { return newTestStore(t, r, "") })
}
