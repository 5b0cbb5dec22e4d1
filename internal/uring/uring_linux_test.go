package uring

import (
	"runtime"
	"syscall"
	"testing"
	"time"
)

const (
	tagOther = iota
	tagSend
	tagRecv
)

// TestLinkedPairOneSubmission: a send and the receive linked to it
// are submitted together even when the submission queue fills between
// them, so the receive waits for the send: here one that cannot complete
// (the peer reads nothing).
func TestLinkedPairOneSubmission(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	u, err := New()
	if err != nil {
		t.Skip("io_uring is not available here")
	}
	defer u.Close()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fds[0])
	defer syscall.Close(fds[1])
	if err := syscall.SetNonblock(fds[0], true); err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 64<<10)
	for { // fill the socket: the send below waits
		if _, err := syscall.Write(fds[0], junk); err != nil {
			break
		}
	}
	if err := syscall.SetNonblock(fds[0], false); err != nil {
		t.Fatal(err)
	}
	_, err = syscall.Write(fds[1], []byte("request")) // what the receive would read at once
	if err != nil {
		t.Fatal(err)
	}

	for range len(u.sqes) - 1 {
		u.SQE().PrepNop(tagOther)
	}
	u.Reserve(2)
	out, in := []byte("answer"), make([]byte, 64)
	e := u.SQE()
	e.PrepSend(int32(fds[0]), out, tagSend)
	e.Link()
	u.SQE().PrepRecv(int32(fds[0]), in, tagRecv, false)
	if err := u.Enter(0, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := u.Enter(uint32(len(u.sqes)-1), 0, time.Second); err != nil { // the nops
		t.Fatal(err)
	}
	for {
		ud, res, ok := u.Next()
		if !ok {
			break
		}
		if ud != tagOther {
			t.Fatalf("completion %d (result %d) while the send waits", ud, res)
		}
	}
	runtime.KeepAlive(out)
	runtime.KeepAlive(in)
}
