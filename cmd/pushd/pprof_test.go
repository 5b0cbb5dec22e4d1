package main

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

func TestPprofFlagServesOnLoopbackOnly(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, addr := range []string{"0.0.0.0:0", "example.com:6060", "6060"} {
		if _, stop, err := startPprof(addr, log); err == nil {
			stop()
			t.Errorf("startPprof(%q) accepted a non-loopback address", addr)
		}
	}
	cfg, err := parseFlags([]string{"-pprof", "127.0.0.1:6060"}, io.Discard)
	if err != nil || cfg.PprofAddr != "127.0.0.1:6060" {
		t.Fatalf("parseFlags -pprof: %q, %v", cfg.PprofAddr, err)
	}

	addr, stop, err := startPprof("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get("http://" + addr + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "goroutine") {
		t.Fatalf("GET /debug/pprof/: %d %.200s", resp.StatusCode, b)
	}
}
