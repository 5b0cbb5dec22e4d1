package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// startRedis runs a redis-server on a free loopback port for the test and
// returns its URL. Without redis-server it skips (fails under CI=true).
func startRedis(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		msg := "redis-server is not installed: pushd's -redis tests need it (apt-get install redis-server)"
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
	cmd := exec.Command("redis-server", "--port", fmt.Sprint(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir(), "--logfile", "")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		signalled := false
		for sc.Scan() {
			if !signalled && strings.Contains(sc.Text(), "Ready to accept connections") {
				signalled = true
				close(ready)
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		cmd.Wait()
	})
	select {
	case <-ready:
	case <-done:
		t.Fatal("redis-server exited at start")
	case <-time.After(20 * time.Second):
		t.Fatal("redis-server not ready in 20s")
	}
	return fmt.Sprintf("redis://127.0.0.1:%d/1", port)
}

// TestTwoPushdOnRedis: two pushd processes with -redis on one Redis behave as
// one server.
func TestTwoPushdOnRedis(t *testing.T) {
	url := startRedis(t)
	a := startPushd(t, "-redis", url, "-redis-prefix", "two:")
	b := startPushd(t, "-redis", url, "-redis-prefix", "two:")

	// A subscriber held on B gets what is published on A.
	held := longPoll(b.base+"/sub?id=room", nil)
	waitSubscribers(t, b, 1)
	pub := do(t, "POST", a.base+"/pub?id=room", "hello", map[string]string{"Content-Type": "text/plain"})
	if pub.status != http.StatusCreated {
		t.Fatalf("publish on A with a subscriber on B: %d %q, want 201", pub.status, pub.body)
	}
	got := <-held
	if got.err != nil || got.status != 200 || got.body != "hello" {
		t.Fatalf("long-poll on B: %d %q %v, want 200 \"hello\"", got.status, got.body, got.err)
	}

	// It resumes on A from the position B gave it.
	do(t, "POST", b.base+"/pub?id=room", "second", nil)
	next := do(t, "GET", a.base+"/sub?id=room", "", map[string]string{
		"If-Modified-Since": got.header.Get("Last-Modified"), "If-None-Match": got.header.Get("Etag")})
	if next.status != 200 || next.body != "second" {
		t.Fatalf("resume on A: %d %q, want 200 \"second\"", next.status, next.body)
	}

	// DELETE on A ends the subscriber held on B with 410.
	held = longPoll(b.base+"/sub?id=room", map[string]string{
		"If-Modified-Since": next.header.Get("Last-Modified"), "If-None-Match": next.header.Get("Etag")})
	waitSubscribers(t, b, 1)
	if del := do(t, "DELETE", a.base+"/pub?id=room", "", nil); del.status != http.StatusOK {
		t.Fatalf("DELETE on A: %d %q", del.status, del.body)
	}
	if got := <-held; got.err != nil || got.status != http.StatusGone {
		t.Fatalf("long-poll on B after DELETE on A: %d %v, want 410", got.status, got.err)
	}
}

// TestRedisUnreachableExits1: pushd with -redis naming no server refuses to
// start and says why.
func TestRedisUnreachableExits1(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	out, err := exec.Command(binary, "-addr", "127.0.0.1:0", "-redis", fmt.Sprintf("redis://127.0.0.1:%d/0", port)).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("pushd with an unreachable Redis: %v, want exit 1; output:\n%s", err, out)
	}
	if !strings.Contains(string(out), "cannot be reached") {
		t.Fatalf("pushd does not say Redis cannot be reached:\n%s", out)
	}
}
