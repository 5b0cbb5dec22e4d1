package uring

import (
	"errors"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

const (
	sysIOURingSetup = 425
	sysIOURingEnter = 426

	uringSetupCQSize       = 1 << 3
	uringSetupSubmitAll    = 1 << 7
	uringSetupSingleIssuer = 1 << 12
	uringSetupDeferTaskrun = 1 << 13
	uringFeatSingleMmap    = 1 << 0
	uringFeatNoDrop        = 1 << 1
	uringFeatExtArg        = 1 << 8
	uringFeatMinTimeout    = 1 << 15
	uringEnterGetEvents    = 1 << 0
	uringEnterExtArg       = 1 << 3
	uringOffSQRing         = 0
	uringOffSQEs           = 0x10000000
	uringOpNop             = 0
	uringOpRead            = 22
	uringOpSend            = 26
	uringOpRecv            = 27
	uringOpAsyncCancel     = 14
	uringSQELink           = 1 << 2
	uringRecvSendPollFirst = 1 << 0
	uringAsyncCancelAll    = 1 << 0
	uringAsyncCancelFD     = 1 << 1
	uringSQESize           = 64
	uringCQESize           = 16
	uringSQEntries         = 512
	uringCQEntries         = 8192
	uringEnterExtArgSize   = 24
	uringParamsSize        = 120
	uringRequiredFeatures  = uringFeatSingleMmap | uringFeatNoDrop | uringFeatExtArg
	uringSetupFlags        = uringSetupCQSize | uringSetupSubmitAll | uringSetupSingleIssuer | uringSetupDeferTaskrun
)

// uringParams is struct io_uring_params.
type uringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFD uint32
	resv                                                                   [3]uint32
	sqOff                                                                  struct {
		head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
		userAddr                                                        uint64
	}
	cqOff struct {
		head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
		userAddr                                                        uint64
	}
}

// SQE is struct io_uring_sqe, as the operations used here fill it.
type SQE struct {
	opcode   uint8
	flags    uint8
	ioprio   uint16
	fd       int32
	off      uint64
	addr     uint64
	len      uint32
	opFlags  uint32
	userData uint64
	bufIndex uint16
	_        uint16
	_        int32
	_        [2]uint64
}

// uringCQE is struct io_uring_cqe.
type uringCQE struct {
	userData uint64
	res      int32
	flags    uint32
}

// uringGetEventsArg is struct io_uring_getevents_arg.
type uringGetEventsArg struct {
	sigmask   uint64
	sigmaskSz uint32
	minWait   uint32
	ts        uint64
}

// Ring is one ring, used by one goroutine at a time.
type Ring struct {
	fd                     int
	ring, sqesMem          []byte
	sqHead, sqTail, cqHead *uint32
	cqTail                 *uint32
	sqMask, cqMask         uint32
	sqes                   []SQE
	cqes                   []uringCQE
	sqPending              uint32 // entries filled and not yet submitted
	sqLocalTail            uint32
	minTimeout             bool       // the kernel takes a minimum wait (6.12)
	spilled                []uringCQE // completions reaped by reserve, read first
	spillRead              int
	// The arguments of a waiting io_uring_enter: here, on the heap,
	// where the kernel may read them.
	timeout syscall.Timespec
	arg     uringGetEventsArg
}

// ErrUnavailable: io_uring is missing, refused (seccomp, sysctl
// kernel.io_uring_disabled) or too old here.
var ErrUnavailable = errors.New("io_uring is not available")

// New sets up a ring that one goroutine, locked to its thread for the
// ring's life, alone submits to and reaps (SINGLE_ISSUER, DEFER_TASKRUN).
func New() (*Ring, error) {
	return setup(uringSetupFlags, uringSQEntries, uringCQEntries)
}

// NewSend sets up a ring of entries submission entries for sends that
// complete as they are submitted (PrepSendNow): any thread may submit to
// it, one at a time, and no completion waits for its thread.
func NewSend(entries uint32) (*Ring, error) {
	return setup(uringSetupCQSize|uringSetupSubmitAll, entries, 2*entries)
}

func setup(flags, sqEntries, cqEntries uint32) (*Ring, error) {
	var p uringParams
	if unsafe.Sizeof(p) != uringParamsSize || unsafe.Sizeof(SQE{}) != uringSQESize || unsafe.Sizeof(uringCQE{}) != uringCQESize {
		return nil, ErrUnavailable // cannot happen: the layouts are the kernel's
	}
	fd, err := uringSetup(&p, flags, sqEntries, cqEntries)
	if err != nil { // older than 6.1 (no DEFER_TASKRUN), or refused
		return nil, ErrUnavailable
	}
	if p.features&uringRequiredFeatures != uringRequiredFeatures {
		syscall.Close(fd)
		return nil, ErrUnavailable
	}
	u := &Ring{fd: fd, minTimeout: p.features&uringFeatMinTimeout != 0}
	size := max(int(p.sqOff.array)+int(p.sqEntries)*4, int(p.cqOff.cqes)+int(p.cqEntries)*uringCQESize)
	if u.ring, err = syscall.Mmap(fd, uringOffSQRing, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_POPULATE); err != nil {
		syscall.Close(fd)
		return nil, ErrUnavailable
	}
	if u.sqesMem, err = syscall.Mmap(fd, uringOffSQEs, int(p.sqEntries)*uringSQESize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_POPULATE); err != nil {
		syscall.Munmap(u.ring)
		syscall.Close(fd)
		return nil, ErrUnavailable
	}
	at := func(off uint32) unsafe.Pointer { return unsafe.Pointer(&u.ring[off]) }
	u.sqHead, u.sqTail = (*uint32)(at(p.sqOff.head)), (*uint32)(at(p.sqOff.tail))
	u.cqHead, u.cqTail = (*uint32)(at(p.cqOff.head)), (*uint32)(at(p.cqOff.tail))
	u.sqMask, u.cqMask = *(*uint32)(at(p.sqOff.ringMask)), *(*uint32)(at(p.cqOff.ringMask))
	array := unsafe.Slice((*uint32)(at(p.sqOff.array)), p.sqEntries)
	for i := range array {
		array[i] = uint32(i) // entry i of the ring is SQE i
	}
	u.sqes = unsafe.Slice((*SQE)(unsafe.Pointer(&u.sqesMem[0])), p.sqEntries)
	u.cqes = unsafe.Slice((*uringCQE)(at(p.cqOff.cqes)), p.cqEntries)
	u.sqLocalTail = atomic.LoadUint32(u.sqTail)
	return u, nil
}

func uringSetup(p *uringParams, flags, sqEntries, cqEntries uint32) (int, error) {
	p.flags = flags
	p.cqEntries = cqEntries
	r, _, e := syscall.RawSyscall(sysIOURingSetup, uintptr(sqEntries), uintptr(unsafe.Pointer(p)), 0)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// Close releases the ring; the kernel cancels what is still in flight.
func (u *Ring) Close() {
	syscall.Munmap(u.sqesMem)
	syscall.Munmap(u.ring)
	syscall.Close(u.fd)
}

// Reserve makes room for n submission entries, submitting the ones filled
// so far if there is not: entries linked together (IOSQE_IO_LINK) must be
// submitted together, the kernel ends a chain at the end of a submission.
func (u *Ring) Reserve(n uint32) {
	for u.sqLocalTail-atomic.LoadUint32(u.sqHead)+n > uint32(len(u.sqes)) {
		head := atomic.LoadUint32(u.sqHead)
		u.Enter(0, 0, 0) // SUBMIT_ALL: the kernel takes every entry
		if atomic.LoadUint32(u.sqHead) == head {
			// Refused until completions are reaped (a full
			// completion queue): keep them aside for the caller.
			u.spill()
		}
	}
}

// spill moves the completions there are to u.spilled, where cqRange and
// cqe find them first.
func (u *Ring) spill() {
	head, tail := atomic.LoadUint32(u.cqHead), atomic.LoadUint32(u.cqTail)
	for ; head != tail; head++ {
		u.spilled = append(u.spilled, u.cqes[head&u.cqMask])
	}
	atomic.StoreUint32(u.cqHead, head)
}

// SQE returns the next submission entry, cleared, submitting the ones
// filled so far first if the queue is full.
func (u *Ring) SQE() *SQE {
	u.Reserve(1)
	e := &u.sqes[u.sqLocalTail&u.sqMask]
	*e = SQE{}
	u.sqLocalTail++
	u.sqPending++
	return e
}

// Enter submits the entries filled so far and, if wait > 0, waits until
// at least that many completions are there or timeout (if > 0) passes.
// Only errors that say the ring is broken are returned.
func (u *Ring) Enter(wait uint32, minWait, timeout time.Duration) error {
	atomic.StoreUint32(u.sqTail, u.sqLocalTail)
	flags := uintptr(0)
	var argp, argSize uintptr
	if wait > 0 {
		flags |= uringEnterGetEvents
		if timeout > 0 {
			u.timeout = syscall.NsecToTimespec(int64(timeout))
			u.arg = uringGetEventsArg{ts: uint64(uintptr(unsafe.Pointer(&u.timeout)))}
			if u.minTimeout && minWait > 0 {
				u.arg.minWait = uint32(minWait / time.Microsecond)
			}
			flags |= uringEnterExtArg
			argp, argSize = uintptr(unsafe.Pointer(&u.arg)), uringEnterExtArgSize
		}
	}
	for {
		var e syscall.Errno
		if wait > 0 {
			// It may block: the runtime may give this thread's P to
			// other goroutines meanwhile.
			_, _, e = syscall.Syscall6(sysIOURingEnter, uintptr(u.fd), uintptr(u.sqPending), uintptr(wait), flags, argp, argSize)
		} else {
			_, _, e = syscall.RawSyscall6(sysIOURingEnter, uintptr(u.fd), uintptr(u.sqPending), 0, flags, 0, 0)
		}
		if atomic.LoadUint32(u.sqHead) == u.sqLocalTail {
			u.sqPending = 0 // SUBMIT_ALL: all were taken, even if the wait failed
		}
		switch e {
		case 0, syscall.ETIME:
			return nil
		case syscall.EINTR:
			continue
		case syscall.EBUSY, syscall.EAGAIN:
			// Completions must be reaped before more can be submitted
			// (or the kernel is short of memory): the caller reaps them.
			return nil
		default:
			return e
		}
	}
}

// Next returns the next completion, if there is one: those Reserve set
// aside first.
func (u *Ring) Next() (userData uint64, res int32, ok bool) {
	if u.spillRead < len(u.spilled) {
		c := u.spilled[u.spillRead]
		if u.spillRead++; u.spillRead == len(u.spilled) {
			u.spilled, u.spillRead = u.spilled[:0], 0
		}
		return c.userData, c.res, true
	}
	head := atomic.LoadUint32(u.cqHead)
	if head == atomic.LoadUint32(u.cqTail) {
		return 0, 0, false
	}
	c := u.cqes[head&u.cqMask]
	atomic.StoreUint32(u.cqHead, head+1) // the entry is free for the kernel again
	return c.userData, c.res, true
}

// PrepRecv reads into b from fd. pollFirst: data is not expected yet, so
// the kernel waits for it without trying first.
func (e *SQE) PrepRecv(fd int32, b []byte, userData uint64, pollFirst bool) {
	e.opcode, e.fd, e.userData = uringOpRecv, fd, userData
	e.addr, e.len = uint64(uintptr(unsafe.Pointer(&b[0]))), uint32(len(b))
	if pollFirst {
		e.ioprio = uringRecvSendPollFirst
	}
}

// PrepSend writes all of b to fd (MSG_WAITALL: a short write is an error).
func (e *SQE) PrepSend(fd int32, b []byte, userData uint64) {
	e.opcode, e.fd, e.userData = uringOpSend, fd, userData
	e.addr, e.len = uint64(uintptr(unsafe.Pointer(&b[0]))), uint32(len(b))
	e.opFlags = syscall.MSG_NOSIGNAL | syscall.MSG_WAITALL
}

// PrepSendNow writes what fd takes of b now (MSG_DONTWAIT: -EAGAIN when
// it takes nothing, as a non-blocking send(2)).
func (e *SQE) PrepSendNow(fd int32, b []byte, userData uint64) {
	e.PrepSend(fd, b, userData)
	e.opFlags = syscall.MSG_NOSIGNAL | syscall.MSG_DONTWAIT
}

// PrepRead reads into b from fd (an eventfd).
func (e *SQE) PrepRead(fd int32, b []byte, userData uint64) {
	e.opcode, e.fd, e.userData = uringOpRead, fd, userData
	e.addr, e.len = uint64(uintptr(unsafe.Pointer(&b[0]))), uint32(len(b))
	e.off = ^uint64(0) // the file's position (none for an eventfd)
}

// PrepCancelFD cancels every request on fd.
func (e *SQE) PrepCancelFD(fd int32, userData uint64) {
	e.opcode, e.fd, e.userData = uringOpAsyncCancel, fd, userData
	e.opFlags = uringAsyncCancelFD | uringAsyncCancelAll
}

// Link makes the next entry wait for this one to complete (IOSQE_IO_LINK);
// a failure cancels it. Linked entries must go in one submission
// (Reserve).
func (e *SQE) Link() { e.flags |= uringSQELink }

// MinTimeout reports whether Enter's minWait is honoured (Linux 6.12);
// without it, a wait ends with the first completion.
func (u *Ring) MinTimeout() bool { return u.minTimeout }

// Entries is the size of New's submission queue.
const Entries = uringSQEntries

// PrepNop completes at once (tests).
func (e *SQE) PrepNop(userData uint64) {
	e.opcode, e.userData = uringOpNop, userData
}
