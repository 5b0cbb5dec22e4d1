//go:build !linux

package sock

import "log/slog"

// BatchSize is how many writes one Batch makes at a time.
const BatchSize = 256

// A Batch gathers writes: only on Linux; Batches.Get returns nil here.
type Batch struct{}

// Batches keeps Batches: none here.
type Batches struct {
	Disabled bool
	Log      *slog.Logger
}

// Get returns nil here.
func (p *Batches) Get() *Batch { return nil }

// Writes returns 0 here.
func (p *Batches) Writes() int64 { return 0 }

// Unavailable reports true here.
func (p *Batches) Unavailable() bool { return true }

// Close does nothing here.
func (p *Batches) Close() {}

// A Sender is a writer whose writes a Batch makes.
type Sender interface {
	BatchCopied()
	BatchSent(rest []byte, err error)
}

// Add is not called on a nil Batch.
func (b *Batch) Add(fd int32, p []byte, s Sender) {}

// Done does nothing (nil).
func (b *Batch) Done() {}
