// Package uring is a minimal io_uring(7) for Linux 6.1 and later: what the
// Hub's publisher ring and its batched sends need and nothing more, by raw
// system calls (no cgo).
//
// A Ring from New is owned by one goroutine locked to its thread: it alone
// fills submission entries and reaps completions (IORING_SETUP_SINGLE_ISSUER),
// and the kernel completes requests only when that goroutine asks for
// completions (IORING_SETUP_DEFER_TASKRUN), so a batch of answers and the
// reads that follow them cost one io_uring_enter(2) between them. Enter's
// minimum wait (Linux 6.12, IORING_FEAT_MIN_TIMEOUT) lets a caller gather a
// batch of completions for a bounded time. A Ring from NewSend takes sends
// that complete as they are submitted (MSG_DONTWAIT), from any thread, one
// at a time.
//
// Where io_uring is missing or refused (a kernel before 6.1, a seccomp
// profile, sysctl kernel.io_uring_disabled), New and NewSend return an
// error and the caller does without. Under a seccomp filter that kills the
// process on io_uring_setup(2) instead of failing it, do not call them at
// all. On other systems the package is empty.
package uring
