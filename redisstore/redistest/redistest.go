// Package redistest starts a real redis-server on a loopback port for tests
// of code that uses the Redis store (the store's own tests, pushd's).
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Server is a redis-server process on a loopback port with a temporary
// directory.
type Server struct {
	t    testing.TB
	port int
	dir  string
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts a redis-server on a free loopback port, stopped at the end
// of the test; args are more server arguments. Without redis-server
// installed it skips the test, or fails it when CI=true.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		msg := "redis-server is not installed: tests of the Redis store need it (apt-get install redis-server)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{t: t, port: port, dir: t.TempDir(), args: args}
	s.Restart()
	t.Cleanup(s.Kill)
	return s
}

// Port is the server's port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// URL is the server's address as a redis:// URL naming database db.
func (s *Server) URL(db int) string { return fmt.Sprintf("redis://127.0.0.1:%d/%d", s.port, db) }

// Restart starts the server (again, after Kill) on the same port and
// directory, and waits until it answers.
func (s *Server) Restart() {
	s.t.Helper()
	args := append([]string{"--port", fmt.Sprint(s.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--logfile", ""}, s.args...)
	cmd := exec.Command("redis-server", args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	ready := make(chan struct{})
	var log strings.Builder
	var readyOnce atomic.Bool
	done := s.done
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			log.WriteString(line + "\n")
			if strings.Contains(line, "Ready to accept connections") && readyOnce.CompareAndSwap(false, true) {
				close(ready)
			}
		}
		cmd.Wait()
		close(done)
	}()
	select {
	case <-ready:
	case <-done:
		s.t.Fatalf("redis-server exited at start:\n%s", log.String())
	case <-time.After(20 * time.Second):
		s.Kill()
		s.t.Fatal("redis-server did not become ready in 20s")
	}
}

// Kill ends the server at once (SIGKILL) and waits for it.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}
