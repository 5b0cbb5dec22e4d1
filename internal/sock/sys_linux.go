package sock

import "syscall"

// The system calls of Writer and Reader: on sockets, sendto(2) and
// recvfrom(2) skip read(2) and write(2)'s file layer, and MSG_NOSIGNAL
// makes a write to a connection the peer has reset fail with EPIPE
// without raising SIGPIPE.
const (
	sysSend   = syscall.SYS_SENDTO
	sysRecv   = syscall.SYS_RECVFROM
	sendFlags = syscall.MSG_NOSIGNAL
)
