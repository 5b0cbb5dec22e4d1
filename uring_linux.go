package push

import (
	"errors"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// A minimal io_uring (Linux 6.1 and later, for DEFER_TASKRUN): what the publisher ring
// (direct_ring_linux.go) needs and nothing more. One goroutine, locked to
// its thread, owns a ring: it alone fills submission entries and reaps
// completions (IORING_SETUP_SINGLE_ISSUER), and the kernel completes
// requests only when that goroutine asks for completions
// (IORING_SETUP_DEFER_TASKRUN), so a batch of answers and the reads that
// follow them cost one system call between them.

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

// uringSQE is struct io_uring_sqe, as the operations used here fill it.
type uringSQE struct {
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

// uring is one ring, used by one goroutine at a time.
type uring struct {
	fd                     int
	ring, sqesMem          []byte
	sqHead, sqTail, cqHead *uint32
	cqTail                 *uint32
	sqMask, cqMask         uint32
	sqes                   []uringSQE
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

// errNoURing: io_uring is missing, refused (seccomp, sysctl
// kernel.io_uring_disabled) or too old here.
var errNoURing = errors.New("push: io_uring is not available")

// newURing sets up the publisher ring's ring. The calling goroutine must
// be locked to its thread and stay so for the ring's life.
func newURing() (*uring, error) {
	return setupURing(uringSetupFlags, uringSQEntries, uringCQEntries)
}

// newSendURing sets up a ring for a sweep's writes (sendBatch): any
// thread may submit to it, one at a time, and its sends complete as they
// are submitted (MSG_DONTWAIT), so no completion waits for its thread.
func newSendURing() (*uring, error) {
	return setupURing(uringSetupCQSize|uringSetupSubmitAll, sendBatchSize, 2*sendBatchSize)
}

func setupURing(flags, sqEntries, cqEntries uint32) (*uring, error) {
	var p uringParams
	if unsafe.Sizeof(p) != uringParamsSize || unsafe.Sizeof(uringSQE{}) != uringSQESize || unsafe.Sizeof(uringCQE{}) != uringCQESize {
		return nil, errNoURing // cannot happen: the layouts are the kernel's
	}
	fd, err := uringSetup(&p, flags, sqEntries, cqEntries)
	if err != nil { // older than 6.1 (no DEFER_TASKRUN), or refused
		return nil, errNoURing
	}
	if p.features&uringRequiredFeatures != uringRequiredFeatures {
		syscall.Close(fd)
		return nil, errNoURing
	}
	u := &uring{fd: fd, minTimeout: p.features&uringFeatMinTimeout != 0}
	size := max(int(p.sqOff.array)+int(p.sqEntries)*4, int(p.cqOff.cqes)+int(p.cqEntries)*uringCQESize)
	if u.ring, err = syscall.Mmap(fd, uringOffSQRing, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_POPULATE); err != nil {
		syscall.Close(fd)
		return nil, errNoURing
	}
	if u.sqesMem, err = syscall.Mmap(fd, uringOffSQEs, int(p.sqEntries)*uringSQESize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_POPULATE); err != nil {
		syscall.Munmap(u.ring)
		syscall.Close(fd)
		return nil, errNoURing
	}
	at := func(off uint32) unsafe.Pointer { return unsafe.Pointer(&u.ring[off]) }
	u.sqHead, u.sqTail = (*uint32)(at(p.sqOff.head)), (*uint32)(at(p.sqOff.tail))
	u.cqHead, u.cqTail = (*uint32)(at(p.cqOff.head)), (*uint32)(at(p.cqOff.tail))
	u.sqMask, u.cqMask = *(*uint32)(at(p.sqOff.ringMask)), *(*uint32)(at(p.cqOff.ringMask))
	array := unsafe.Slice((*uint32)(at(p.sqOff.array)), p.sqEntries)
	for i := range array {
		array[i] = uint32(i) // entry i of the ring is SQE i
	}
	u.sqes = unsafe.Slice((*uringSQE)(unsafe.Pointer(&u.sqesMem[0])), p.sqEntries)
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

// close releases the ring; the kernel cancels what is still in flight.
func (u *uring) close() {
	syscall.Munmap(u.sqesMem)
	syscall.Munmap(u.ring)
	syscall.Close(u.fd)
}

// reserve makes room for n submission entries, submitting the ones filled
// so far if there is not: entries linked together (IOSQE_IO_LINK) must be
// submitted together, the kernel ends a chain at the end of a submission.
func (u *uring) reserve(n uint32) {
	for u.sqLocalTail-atomic.LoadUint32(u.sqHead)+n > uint32(len(u.sqes)) {
		head := atomic.LoadUint32(u.sqHead)
		u.enter(0, 0, 0) // SUBMIT_ALL: the kernel takes every entry
		if atomic.LoadUint32(u.sqHead) == head {
			// Refused until completions are reaped (a full
			// completion queue): keep them aside for the caller.
			u.spill()
		}
	}
}

// spill moves the completions there are to u.spilled, where cqRange and
// cqe find them first.
func (u *uring) spill() {
	head, tail := atomic.LoadUint32(u.cqHead), atomic.LoadUint32(u.cqTail)
	for ; head != tail; head++ {
		u.spilled = append(u.spilled, u.cqes[head&u.cqMask])
	}
	atomic.StoreUint32(u.cqHead, head)
}

// sqe returns the next submission entry, cleared, submitting the ones
// filled so far first if the queue is full.
func (u *uring) sqe() *uringSQE {
	u.reserve(1)
	e := &u.sqes[u.sqLocalTail&u.sqMask]
	*e = uringSQE{}
	u.sqLocalTail++
	u.sqPending++
	return e
}

// enter submits the entries filled so far and, if wait > 0, waits until
// at least that many completions are there or timeout (if > 0) passes.
// Only errors that say the ring is broken are returned.
func (u *uring) enter(wait uint32, minWait, timeout time.Duration) error {
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

// next returns the next completion, if there is one: those reserve set
// aside first.
func (u *uring) next() (userData uint64, res int32, ok bool) {
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

// prepRecv reads into b from fd. pollFirst: data is not expected yet, so
// the kernel waits for it without trying first.
func (e *uringSQE) prepRecv(fd int32, b []byte, userData uint64, pollFirst bool) {
	e.opcode, e.fd, e.userData = uringOpRecv, fd, userData
	e.addr, e.len = uint64(uintptr(unsafe.Pointer(&b[0]))), uint32(len(b))
	if pollFirst {
		e.ioprio = uringRecvSendPollFirst
	}
}

// prepSend writes all of b to fd (MSG_WAITALL: a short write is an error).
func (e *uringSQE) prepSend(fd int32, b []byte, userData uint64) {
	e.opcode, e.fd, e.userData = uringOpSend, fd, userData
	e.addr, e.len = uint64(uintptr(unsafe.Pointer(&b[0]))), uint32(len(b))
	e.opFlags = syscall.MSG_NOSIGNAL | syscall.MSG_WAITALL
}

// prepSendNow writes what fd takes of b now (MSG_DONTWAIT: -EAGAIN when
// it takes nothing, as a non-blocking send(2)).
func (e *uringSQE) prepSendNow(fd int32, b []byte, userData uint64) {
	e.prepSend(fd, b, userData)
	e.opFlags = syscall.MSG_NOSIGNAL | syscall.MSG_DONTWAIT
}

// prepRead reads into b from fd (an eventfd).
func (e *uringSQE) prepRead(fd int32, b []byte, userData uint64) {
	e.opcode, e.fd, e.userData = uringOpRead, fd, userData
	e.addr, e.len = uint64(uintptr(unsafe.Pointer(&b[0]))), uint32(len(b))
	e.off = ^uint64(0) // the file's position (none for an eventfd)
}

// prepCancelFD cancels every request on fd.
func (e *uringSQE) prepCancelFD(fd int32, userData uint64) {
	e.opcode, e.fd, e.userData = uringOpAsyncCancel, fd, userData
	e.opFlags = uringAsyncCancelFD | uringAsyncCancelAll
}

// prepNop completes at once (tests).
func (e *uringSQE) prepNop(userData uint64) {
	e.opcode, e.userData = uringOpNop, userData
}
