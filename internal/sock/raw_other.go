//go:build !unix

package sock

import "errors"

// ErrWouldBlock: the connection's send buffer is full.
var ErrWouldBlock = errors.New("the connection cannot take more now")

// Writer cannot write without blocking here: NewWriter returns nil.
type Writer struct{}

// NewWriter returns nil here: every write goes through net.Conn.Write.
func NewWriter(any) *Writer { return nil }

// TryWrite is not called on a nil Writer.
func (w *Writer) TryWrite(b []byte) (int, error) { return 0, ErrWouldBlock }

// FD returns -1: no batched writes here.
func (w *Writer) FD() int32 { return -1 }

// Reader: NewReader returns nil here, and net.Conn.Read is used instead.
type Reader struct{}

// NewReader returns nil here.
func NewReader(any) *Reader { return nil }

// Read is not called on a nil Reader.
func (r *Reader) Read(b []byte) (int, error) { return 0, errors.ErrUnsupported }
