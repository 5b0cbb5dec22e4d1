//go:build unix && !linux

package push

import "syscall"

// The system calls of rawWriter and rawReader (sendto and recvfrom on
// Linux).
const (
	sysSend   = syscall.SYS_WRITE
	sysRecv   = syscall.SYS_READ
	sendFlags = 0
)
