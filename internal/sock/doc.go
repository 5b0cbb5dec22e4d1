// Package sock makes the Hub's socket writes and reads cheap: one system
// call each, without waiting, and on Linux many at once through io_uring.
//
// A Writer writes what a non-blocking socket takes now (sendto(2) with
// MSG_NOSIGNAL on Linux) and says ErrWouldBlock when the socket is full,
// so the caller hands the rest to a goroutine that may wait. The system
// call is raw: a fan-out makes thousands in a row, each long enough on
// loopback that the scheduler would otherwise hand the P to another thread
// during many of them. A Reader reads with one recvfrom(2), waiting in the
// network poller under the connection's read deadline.
//
// A Batch (Linux) gathers such writes to up to BatchSize sockets and makes
// them with one io_uring_enter(2) (sends with MSG_DONTWAIT complete as they
// are submitted); each Sender then goes on as after its own write. Writes
// of at most 512 bytes are copied into the batch's 64 KiB buffer so the
// senders' buffers are released at once. Batches keeps up to 16 rings; a
// fan-out beyond that, or where io_uring is missing or refused, gets no
// Batch and writes with a system call each.
//
// Detach and Attach (Linux) take a socket out of Go's network poller and
// back, for a ring that reads and writes descriptors itself.
package sock
