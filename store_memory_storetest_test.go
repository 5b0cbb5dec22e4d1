package push_test

import (
	"testing"

	"github.com/pushhub/push"
	"github.com/pushhub/push/storetest"
)

// TestMemoryStoreConformance runs the store conformance suite on the
// MemoryStore.
func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) push.Store { return push.NewMemoryStore() })
}
