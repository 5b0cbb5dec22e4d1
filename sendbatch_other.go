//go:build !linux

package push

// sendBatch: only on Linux (sendbatch_linux.go); a sweep's streams write
// with a system call each here.
type sendBatch struct{}

type sendRings struct{}

func (h *Hub) sendBatch() *sendBatch { return nil } // h may be nil

func (h *Hub) closeSendRings() {}

func (b *sendBatch) add(s *stream, p []byte) {}

func (b *sendBatch) done() {}
