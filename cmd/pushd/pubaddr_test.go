package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// logValue waits until p's log has a line with msg and returns the value of
// key in it (text or JSON logs).
func logValue(t *testing.T, p *proc, msg, key string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(p.log(), "\n") {
			var j map[string]any
			if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &j) == nil && j["msg"] == msg {
				if v, ok := j[key]; ok {
					return fmt.Sprint(v)
				}
			}
			if !strings.Contains(line, `msg="`+msg+`"`) {
				continue
			}
			for _, f := range strings.Fields(line) {
				if v, ok := strings.CutPrefix(f, key+"="); ok {
					return v
				}
			}
		}
		select {
		case <-p.done:
			t.Fatalf("pushd exited; its log:\n%s", p.log())
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Fatalf("no %q with %s in pushd's log:\n%s", msg, key, p.log())
	return ""
}

// TestPubAddr: with -pub-addr, the publisher (and /status) is served on its
// own listener, a TCP port or a unix socket, and the main address answers
// publisher requests 404 while it serves subscribers.
func TestPubAddr(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "pub.sock")
	for name, addr := range map[string]string{"tcp": "127.0.0.1:0", "unix": "unix:" + sock} {
		t.Run(name, func(t *testing.T) {
			p := startPushd(t, "-pub-addr", addr)
			pubAddr := logValue(t, p, "pushd publisher listening", "pub-addr")
			pub := &http.Client{Timeout: 30 * time.Second}
			pubBase := "http://" + pubAddr
			if name == "unix" {
				pub.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, "unix", sock)
				}}
				pubBase = "http://pushd"
			}

			if a := do(t, "POST", p.base+"/pub?id=news", "evil", nil); a.status != http.StatusNotFound {
				t.Errorf("POST /pub on -addr: %d %q, want 404", a.status, a.body)
			}
			if a := do(t, "GET", p.base+"/pub?id=news", "", nil); a.status != http.StatusNotFound {
				t.Errorf("GET /pub on -addr: %d, want 404", a.status)
			}
			waiting := longPoll(p.base+"/sub?id=news", nil)
			waitSubscribers(t, p, 1)
			resp, err := pub.Post(pubBase+"/pub?id=news", "text/plain", strings.NewReader("hello"))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Errorf("POST /pub on -pub-addr: %d, want 201", resp.StatusCode)
			}
			got := <-waiting
			if got.err != nil || got.status != 200 || got.body != "hello" {
				t.Errorf("subscriber got %d %q %v, want 200 hello", got.status, got.body, got.err)
			}
			resp, err = pub.Get(pubBase + "/status")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(body), "published: 1") {
				t.Errorf("/status on -pub-addr: %d %q", resp.StatusCode, body)
			}
		})
	}
}

// TestRequestTimeoutFlag: a publisher that sends its body too slowly gets
// 408 once -request-timeout has passed, and its connection is closed.
func TestRequestTimeoutFlag(t *testing.T) {
	p := startPushd(t, "-request-timeout", "300ms")
	c, err := net.Dial("tcp", strings.TrimPrefix(p.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second)) // the test's bound, far beyond the timeout
	if _, err := io.WriteString(c, "POST /pub?id=slow HTTP/1.1\r\nHost: x\r\nContent-Length: 60\r\n\r\nab"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
		t.Errorf("slow body: %d (close %v), want 408 and the connection closed", resp.StatusCode, resp.Close)
	}
}
