package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
// It is 100 on every Linux architecture Go supports.
const clockTick = 100

// serverProcs are the server processes named with -pid (for nginx: the
// worker, optionally with the master). Figures are sums over them.
type serverProcs []int

func parsePids(s string) (serverProcs, error) {
	var p serverProcs
	if s == "" {
		return nil, nil
	}
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("-pid %q: want process ids separated by commas", s)
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", n)); err != nil {
			return nil, fmt.Errorf("-pid: no process %d: %v", n, err)
		}
		p = append(p, n)
	}
	return p, nil
}

// memory is RSS and PSS in bytes from /proc/<pid>/smaps_rollup.
type memory struct{ RSS, PSS int64 }

func (p serverProcs) memory() (memory, error) {
	var m memory
	for _, pid := range p {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		if err != nil {
			return m, err
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 2 {
				continue
			}
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			switch f[0] {
			case "Rss:":
				m.RSS += kb * 1024
			case "Pss:":
				m.PSS += kb * 1024
			}
		}
	}
	return m, nil
}

// cpu is the user+system CPU time the server processes have used so far.
func (p serverProcs) cpu() (time.Duration, error) {
	var ticks int64
	for _, pid := range p {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, err
		}
		// The command name is in parentheses and may hold spaces: fields
		// are counted after the last ')'. utime and stime are fields 14
		// and 15 of the line, so 12 and 13 after the name.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + s
	}
	return time.Duration(ticks) * time.Second / clockTick, nil
}

// selfCPU is the user+system CPU time of this process.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// raiseFileLimit raises the soft limit on open files to the hard limit and
// returns the new soft limit.
func raiseFileLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 1024
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l)
	}
	return l.Cur
}
