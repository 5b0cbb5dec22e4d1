package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pushhub/push/pushauth"
)

// TestAuthURL: pushd -auth-url and -publish-auth-url ask a real upstream
// and pass its refusals on.
func TestAuthURL(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Cookie") != "session=ok" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"login":"/login"}`)
			return
		}
		if r.URL.Path == "/pub-auth" && r.Header.Get("X-Original-Method") != "POST" {
			http.Error(w, "POST only", http.StatusForbidden)
		}
	}))
	defer up.Close()
	p := startPushd(t, "-auth-url", up.URL+"/sub-auth", "-publish-auth-url", up.URL+"/pub-auth", "-interval-poll")
	ok := map[string]string{"Cookie": "session=ok"}
	if a := do(t, "GET", p.base+"/sub?id=a", "", nil); a.status != 401 || a.body != `{"login":"/login"}` || a.header.Get("Content-Type") != "application/json" {
		t.Errorf("refused subscriber: %d %q %q", a.status, a.body, a.header.Get("Content-Type"))
	}
	if a := do(t, "GET", p.base+"/sub?id=a", "", ok); a.status != 304 {
		t.Errorf("admitted subscriber: %d %q, want 304", a.status, a.body)
	}
	if a := do(t, "POST", p.base+"/pub?id=a", "hi", ok); a.status != 202 {
		t.Errorf("admitted publisher: %d %q, want 202", a.status, a.body)
	}
	if a := do(t, "DELETE", p.base+"/pub?id=a", "", ok); a.status != 403 {
		t.Errorf("refused publisher: %d %q, want 403", a.status, a.body)
	}
}

// TestTokenKeys: pushd -subscribe-key and -publish-key, with a key from a
// file; bad keys are refused at start with exit status 2.
func TestTokenKeys(t *testing.T) {
	subKey := "subscribe-key-subscribe-key-0123"
	pubKey := "publish-key-publish-key-01234567"
	file := filepath.Join(t.TempDir(), "pub.key")
	if err := os.WriteFile(file, []byte(pubKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startPushd(t, "-subscribe-key", subKey, "-publish-key", "@"+file, "-interval-poll")
	exp := time.Now().Add(time.Hour)
	st, _ := pushauth.Mint([]byte(subKey), pushauth.Claims{Channels: []string{"a"}, Expires: exp})
	pt, _ := pushauth.Mint([]byte(pubKey), pushauth.Claims{Prefix: "a", Expires: exp})
	if a := do(t, "GET", p.base+"/sub?id=a", "", nil); a.status != 401 {
		t.Errorf("no token: %d, want 401", a.status)
	}
	if a := do(t, "GET", p.base+"/sub?id=a&token="+st, "", nil); a.status != 304 {
		t.Errorf("token: %d %q, want 304", a.status, a.body)
	}
	if a := do(t, "POST", p.base+"/pub?id=a", "x", map[string]string{"Authorization": "Bearer " + st}); a.status != 401 {
		t.Errorf("subscriber token on the publisher: %d, want 401", a.status)
	}
	if a := do(t, "POST", p.base+"/pub?id=a", "x", map[string]string{"Authorization": "Bearer " + pt}); a.status != 202 {
		t.Errorf("publisher token: %d %q, want 202", a.status, a.body)
	}

	for _, args := range [][]string{
		{"-subscribe-key", "short"},
		{"-subscribe-key", subKey, "-publish-key", subKey},
		{"-auth-url", "localhost:9/auth"},
	} {
		var stderr bytes.Buffer
		cmd := exec.Command(binary, args...)
		cmd.Stderr = &stderr
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Errorf("%v: %v, want exit status 2", args, err)
		}
		if !strings.Contains(stderr.String(), "pushd") {
			t.Errorf("%v: stderr %q", args, stderr.String())
		}
	}
}

// TestEventURLs: pushd posts subscribe and unsubscribe events, a long-poll
// subscriber's after -longpoll-grace.
func TestEventURLs(t *testing.T) {
	got := make(chan map[string]any, 10)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev map[string]any
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			t.Error(err)
		}
		ev["path"] = r.URL.Path
		got <- ev
	}))
	defer up.Close()
	p := startPushd(t, "-subscribe-event-url", up.URL+"/on", "-unsubscribe-event-url", up.URL+"/off",
		"-longpoll-grace", "1s", "-interval-poll", "-subscriber-cookie", "sid")
	asked := time.Now()
	if a := do(t, "GET", p.base+"/sub?id=a", "", map[string]string{"Cookie": "sid=s1"}); a.status != 304 {
		t.Fatalf("poll: %d", a.status)
	}
	next := func() map[string]any {
		select {
		case ev := <-got:
			return ev
		case <-time.After(30 * time.Second):
			t.Fatal("no event within 30s")
		}
		return nil
	}
	on := next()
	if on["path"] != "/on" || on["event"] != "subscribe" || on["key"] != "s1" || on["channel"] != "a" || on["transport"] != "longpoll" {
		t.Errorf("subscribe event %v", on)
	}
	off := next()
	if off["path"] != "/off" || off["event"] != "unsubscribe" || off["key"] != "s1" || off["reason"] != "left" {
		t.Errorf("unsubscribe event %v", off)
	}
	if time.Since(asked) < time.Second {
		t.Errorf("unsubscribe within %v, before -longpoll-grace", time.Since(asked))
	}
}
