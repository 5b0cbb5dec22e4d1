package push

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine is still running when
// they end: every test shuts its Hub down and closes its servers.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
