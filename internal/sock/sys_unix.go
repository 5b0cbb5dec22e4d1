//go:build unix && !linux

package sock

import "syscall"

// The system calls of Writer and Reader (sendto and recvfrom on
// Linux).
const (
	sysSend   = syscall.SYS_WRITE
	sysRecv   = syscall.SYS_READ
	sendFlags = 0
)
