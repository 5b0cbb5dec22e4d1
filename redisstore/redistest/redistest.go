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

// Cluster is a Redis Cluster of redis-server processes on loopback ports:
// three masters with one replica each.
type Cluster struct {
	// Nodes are the servers, masters and replicas as redis-cli placed them.
	Nodes []*Server
}

// StartCluster starts six redis-servers in cluster mode, joins them with
// redis-cli --cluster create (3 masters, 1 replica each) and waits until
// every node reports cluster_state:ok and every replica has synchronised
// with its master (else it could not be promoted). They are stopped at the end of the
// test. Without redis-server or redis-cli it skips the test, or fails it
// when CI=true.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		msg := "redis-cli is not installed: Redis Cluster tests need it (apt-get install redis-tools)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	c := &Cluster{}
	args := []string{"redis-cli", "--cluster", "create"}
	for range 6 {
		s := Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000", "--repl-diskless-sync-delay", "0")
		c.Nodes = append(c.Nodes, s)
		args = append(args, fmt.Sprintf("127.0.0.1:%d", s.Port()))
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, s := range c.Nodes {
		for !s.clusterOK() {
			if time.Now().After(deadline) {
				t.Fatalf("the cluster is not ready after 30s (node %d)", s.Port())
			}
			time.Sleep(50 * time.Millisecond) // polling CLUSTER INFO, bounded
		}
	}
	return c
}

// clusterOK reports whether the server says cluster_state:ok and, if it is
// a replica, that its link to its master is up.
func (s *Server) clusterOK() bool {
	out, err := exec.Command("redis-cli", "-p", fmt.Sprint(s.port), "cluster", "info").Output()
	if err != nil || !strings.Contains(string(out), "cluster_state:ok") {
		return false
	}
	out, err = exec.Command("redis-cli", "-p", fmt.Sprint(s.port), "info", "replication").Output()
	return err == nil && (strings.Contains(string(out), "role:master") || strings.Contains(string(out), "master_link_status:up"))
}

// URL is the cluster's address in go-redis's cluster URL form, naming
// every node: redis://127.0.0.1:P1?addr=127.0.0.1:P2&addr=...
func (c *Cluster) URL() string {
	u := fmt.Sprintf("redis://127.0.0.1:%d", c.Nodes[0].port)
	for i, s := range c.Nodes[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += fmt.Sprintf("%saddr=127.0.0.1:%d", sep, s.port)
	}
	return u
}
