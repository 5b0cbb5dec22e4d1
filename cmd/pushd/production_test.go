package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/pushhub/push/internal/testcert"
	"github.com/pushhub/push/redisstore/redistest"
)

// tlsClient trusts ca and speaks HTTP/2 when the server offers it.
func tlsClient(ca *testcert.CA) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: ca.Pool},
		ForceAttemptHTTP2: true,
	}}
}

// TestHTTPS: with -tls-cert and -tls-key pushd serves HTTPS on -addr; a
// client trusting the test's CA holds two EventSource subscriptions on one
// HTTP/2 connection and receives both channels' messages; -pub-addr with
// the same pair serves the publisher over HTTPS; after the files are
// replaced, SIGHUP makes new connections get the new certificate.
func TestHTTPS(t *testing.T) {
	ca := testcert.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := ca.WriteFiles(t, dir, 100)
	p := startPushd(t, "-tls-cert", certFile, "-tls-key", keyFile,
		"-pub-addr", "127.0.0.1:0", "-pub-tls-cert", certFile, "-pub-tls-key", keyFile)
	if !strings.HasPrefix(p.base, "https://") {
		t.Fatalf("pushd serves %s, want https", p.base)
	}
	pub := "https://" + logValue(t, p, "pushd publisher listening", "pub-addr")
	c := tlsClient(ca)
	defer c.Transport.(*http.Transport).CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	local := map[string]bool{}
	traced := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		local[i.Conn.LocalAddr().String()] = true // the calls are sequential
	}})
	subscribe := func(channel string) *bufio.Scanner {
		req, _ := http.NewRequestWithContext(traced, "GET", p.base+"/sub?id="+channel, nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
			t.Fatalf("EventSource: %s %s, want HTTP/2.0 200", resp.Proto, resp.Status)
		}
		if serial := resp.TLS.PeerCertificates[0].SerialNumber.Int64(); serial != 100 {
			t.Errorf("certificate serial %d, want 100", serial)
		}
		return bufio.NewScanner(resp.Body)
	}
	a, b := subscribe("a"), subscribe("b")
	for _, ch := range []string{"a", "b"} {
		resp, err := c.Post(pub+"/pub?id="+ch, "text/plain", strings.NewReader("to "+ch))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("publish over HTTPS on -pub-addr: %s", resp.Status)
		}
	}
	for ch, sc := range map[string]*bufio.Scanner{"a": a, "b": b} {
		for sc.Scan() && sc.Text() != "data: to "+ch {
		}
		if sc.Text() != "data: to "+ch {
			t.Fatalf("EventSource of %s ended before its message: %v", ch, sc.Err())
		}
	}
	if len(local) != 1 {
		t.Errorf("the EventSources used %d connections, want 1 (HTTP/2)", len(local))
	}
	resp, err := c.Get(pub + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if v := metricValue(parseMetrics(t, resp), "push_subscribers", "transport", "eventsource"); v != 2 {
		t.Errorf("push_subscribers{transport=eventsource} = %v, want 2", v)
	}

	// Renew the certificate and SIGHUP: a new connection gets it.
	ca.WriteFiles(t, dir, 101)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	logValue(t, p, "pushd: certificate reloaded", "serial")
	fresh := tlsClient(ca)
	resp, err = fresh.Get(p.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	fresh.Transport.(*http.Transport).CloseIdleConnections()
	if serial := resp.TLS.PeerCertificates[0].SerialNumber.Int64(); serial != 101 {
		t.Errorf("after SIGHUP the certificate's serial is %d, want 101", serial)
	}
}

// parseMetrics parses a /metrics answer with Prometheus' text parser.
func parseMetrics(t *testing.T, resp *http.Response) map[string]*dto.MetricFamily {
	t.Helper()
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return mfs
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	return parseMetrics(t, resp)
}

// metricValue is the value of family name's metric with the label pairs
// given, its sample count for a histogram, or -1 if there is none.
func metricValue(mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
next:
	for _, m := range mfs[name].GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				found = found || lp.GetName() == labels[i] && lp.GetValue() == labels[i+1]
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// TestMetrics: /metrics is Prometheus' text format, with push_ metrics,
// the Go runtime's and the process's; the counters move after a publish
// and its delivery; with -pub-addr it is served there only.
func TestMetrics(t *testing.T) {
	p := startPushd(t, "-pub-addr", "127.0.0.1:0")
	pub := "http://" + logValue(t, p, "pushd publisher listening", "pub-addr")
	if a := do(t, "GET", p.base+"/metrics", "", nil); a.status != http.StatusNotFound {
		t.Errorf("/metrics on -addr with -pub-addr set: %d, want 404 (served on -pub-addr only)", a.status)
	}
	before := scrape(t, pub+"/metrics")
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_open_fds",
		"process_resident_memory_bytes", "push_messages_published_total", "push_messages_delivered_total",
		"push_slow_subscribers_dropped_total", "push_websocket_pings_unanswered_total", "push_store_errors_total",
		"push_channels", "push_stored_messages"} {
		if metricValue(before, name) < 0 {
			t.Errorf("/metrics has no %s", name)
		}
	}
	if before["push_publish_duration_seconds"].GetType() != dto.MetricType_HISTOGRAM {
		t.Errorf("push_publish_duration_seconds is not a histogram")
	}
	held := longPoll(p.base+"/sub?id=m", nil)
	waitSubscribers(t, p, 1)
	if v := metricValue(scrape(t, pub+"/metrics"), "push_subscribers", "transport", "longpoll"); v != 1 {
		t.Errorf("push_subscribers{transport=longpoll} = %v with a long-poll held, want 1", v)
	}
	if a := do(t, "POST", pub+"/pub?id=m", "hello", nil); a.status != http.StatusCreated {
		t.Fatalf("publish: %d", a.status)
	}
	if r := <-held; r.err != nil || r.body != "hello" {
		t.Fatalf("long-poll: %+v", r)
	}
	after := scrape(t, pub+"/metrics")
	for name, want := range map[string]float64{
		"push_messages_published_total": 1, "push_messages_delivered_total": 1,
		"push_publish_duration_seconds": 1, "push_channels": 1, "push_stored_messages": 1,
	} {
		if v := metricValue(after, name); v != want {
			t.Errorf("%s = %v after a publish and its delivery, want %v", name, v, want)
		}
	}
}

// TestHealthAndReadyWithRedis: /healthz answers 200 while pushd runs;
// /readyz answers 200 while Redis answers, 503 with the reason while the
// redis-server is stopped, and 200 again once it is back; on -pub-addr
// too. The Redis client's complaints go to pushd's log.
func TestHealthAndReadyWithRedis(t *testing.T) {
	rs := redistest.Start(t)
	p := startPushd(t, "-redis", rs.URL(1), "-pub-addr", "127.0.0.1:0")
	pub := "http://" + logValue(t, p, "pushd publisher listening", "pub-addr")
	for _, base := range []string{p.base, pub} {
		for _, path := range []string{"/healthz", "/readyz"} {
			if a := do(t, "GET", base+path, "", nil); a.status != 200 {
				t.Errorf("%s%s: %d %q, want 200", base, path, a.status, a.body)
			}
		}
	}
	rs.Kill()
	for _, base := range []string{p.base, pub} {
		a := do(t, "GET", base+"/readyz", "", nil)
		if a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, "store does not answer") {
			t.Errorf("%s/readyz with Redis stopped: %d %q, want 503 and the reason", base, a.status, a.body)
		}
		if a := do(t, "GET", base+"/healthz", "", nil); a.status != 200 {
			t.Errorf("%s/healthz with Redis stopped: %d, want 200", base, a.status)
		}
	}
	// The Redis client's own logs go to pushd's log.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.log(), "component=redis-client"); {
		if time.Now().After(deadline) {
			t.Fatalf("no line of the Redis client in pushd's log:\n%s", p.log())
		}
		time.Sleep(5 * time.Millisecond) // the log is read from a pipe: no event to wait on
	}
	rs.Restart()
	// The client reconnects on its next command: the first /readyz after
	// the restart may still find the pool's dead connection.
	deadline := time.Now().Add(20 * time.Second)
	for {
		a := do(t, "GET", p.base+"/readyz", "", nil)
		if a.status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz after Redis restarted: %d %q", a.status, a.body)
		}
		time.Sleep(50 * time.Millisecond) // polling a state that has no event to wait on, bounded
	}
}

// TestReadyzWhileShuttingDown: once the shutdown has begun /readyz
// answers 503, /healthz still 200.
func TestReadyzWhileShuttingDown(t *testing.T) {
	rd := &readiness{}
	for _, tc := range []struct {
		stopping bool
		path     string
		want     int
	}{{false, "/readyz", 200}, {true, "/readyz", 503}, {true, "/healthz", 200}} {
		rd.stopping.Store(tc.stopping)
		w := httptest.NewRecorder()
		h := rd.readyz
		if tc.path == "/healthz" {
			h = rd.healthz
		}
		h(w, httptest.NewRequest("GET", tc.path, nil))
		if w.Code != tc.want {
			t.Errorf("stopping=%v %s: %d %q, want %d", tc.stopping, tc.path, w.Code, w.Body, tc.want)
		}
	}
}

// TestEnvConfig: every flag can come from PUSHD_<NAME>; the command line
// wins; a bad value names its variable.
func TestEnvConfig(t *testing.T) {
	t.Setenv("PUSHD_ADDR", "127.0.0.1:1")
	t.Setenv("PUSHD_MAX_MESSAGE_SIZE", "4096")
	t.Setenv("PUSHD_NO_IO_URING", "true")
	t.Setenv("PUSHD_LOG_FORMAT", "json")
	t.Setenv("PUSHD_BUFFER", "3")
	cfg, err := parseFlags([]string{"-addr", "127.0.0.1:2", "-buffer", "5"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:2" || cfg.Options.MessageBufferLength != 5 {
		t.Errorf("the command line does not win: addr %q buffer %d", cfg.Addr, cfg.Options.MessageBufferLength)
	}
	if cfg.Options.MaxMessageSize != 4096 || !cfg.Options.DisableIOURing || cfg.LogFormat != "json" {
		t.Errorf("environment not applied: %+v", cfg)
	}

	t.Setenv("PUSHD_WRITE_TIMEOUT", "soon")
	var out bytes.Buffer
	if _, err := parseFlags(nil, &out); err == nil || !strings.Contains(out.String(), "PUSHD_WRITE_TIMEOUT") {
		t.Errorf("a bad PUSHD_WRITE_TIMEOUT: %v, %q", err, out.String())
	}
	os.Unsetenv("PUSHD_WRITE_TIMEOUT")

	// The binary: its publisher listener from the environment alone, JSON
	// logs from PUSHD_LOG_FORMAT.
	t.Setenv("PUSHD_PUB_ADDR", "127.0.0.1:0")
	p := startPushd(t)
	pub := logValue(t, p, "pushd publisher listening", "pub-addr")
	if a := do(t, "POST", "http://"+pub+"/pub?id=e", "x", nil); a.status != http.StatusAccepted {
		t.Errorf("publish on PUSHD_PUB_ADDR's listener: %d", a.status)
	}
}

// TestHelpShowsEachDefaultOnce: -h prints every flag's default once,
// from the flag.
func TestHelpShowsEachDefaultOnce(t *testing.T) {
	var out bytes.Buffer
	if _, err := parseFlags([]string{"-h"}, &out); err == nil {
		t.Fatal("-h: no flag.ErrHelp")
	}
	for _, entry := range strings.Split(out.String(), "\n  -")[1:] {
		if n := strings.Count(entry, "(default"); n > 1 {
			t.Errorf("-h shows %d defaults for -%s", n, entry)
		}
	}
	for _, want := range []string{"(default 30s)", "(default 10)", "(default 1h0m0s)", "(default text)", "(default 1048576)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h does not say %s", want)
		}
	}
}

// TestVersion: -version prints the module's version and path, and the VCS
// revision when the build recorded it (a build with -buildvcs=true in a git
// checkout, outside a go.work workspace).
func TestVersion(t *testing.T) {
	out, err := exec.Command(binary, "-version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "pushd ") || !strings.Contains(string(out), "github.com/pushhub/push/cmd/pushd") ||
		!strings.Contains(string(out), "revision ") {
		t.Errorf("-version: %q", out)
	}
	// What go install github.com/pushhub/push/cmd/pushd@v0.1.0 records,
	// from a git checkout (the go command stamps no VCS information in a
	// go.work workspace, where the tests run).
	got := formatVersion(&debug.BuildInfo{
		Main: debug.Module{Path: "github.com/pushhub/push/cmd/pushd", Version: "v0.1.0"},
		Deps: []*debug.Module{{Path: "github.com/pushhub/push", Version: "v0.1.0"}},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"},
			{Key: "vcs.time", Value: "2026-12-07T23:00:00Z"}, {Key: "vcs.modified", Value: "true"}},
	})
	for _, want := range []string{"pushd v0.1.0 (github.com/pushhub/push/cmd/pushd)\n", "push v0.1.0\n",
		"revision 0123abcd 2026-12-07T23:00:00Z (modified)\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("formatVersion = %q, want it to have %q", got, want)
		}
	}
}

// TestJSONLogs: with -log-format json every line of the log is a JSON
// object; at the debug level a subscriber's joining and leaving (with
// transport, channels, remote address, duration and why) and a publish
// (channels, bytes, status) have a line each.
func TestJSONLogs(t *testing.T) {
	p := startPushd(t, "-log-format", "json", "-log-level", "debug")
	held := longPoll(p.base+"/sub?id=j", nil)
	waitSubscribers(t, p, 1)
	do(t, "POST", p.base+"/pub?id=j", "hello", nil)
	<-held
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", p.base+"/sub?id=j", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	waitSubscribers(t, p, 1)
	resp.Body.Close()
	waitSubscribers(t, p, 0)
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	seen := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(p.log()), "\n") {
		var j map[string]any
		if err := json.Unmarshal([]byte(line), &j); err != nil {
			t.Fatalf("a log line is not JSON: %v: %q", err, line)
		}
		msg, _ := j["msg"].(string)
		switch msg {
		case "push: subscriber joined":
			if j["transport"] == nil || j["channels"] == nil || j["remote"] == nil {
				t.Errorf("join line lacks a field: %q", line)
			}
		case "push: subscriber left":
			if j["transport"] == nil || j["channels"] == nil || j["remote"] == nil || j["duration"] == nil || j["why"] == nil {
				t.Errorf("leave line lacks a field: %q", line)
			}
		case "push: publish":
			if j["bytes"] != 5.0 || j["status"] != 201.0 {
				t.Errorf("publish line: %q, want bytes 5 and status 201", line)
			}
		}
		seen[msg]++
	}
	for msg, want := range map[string]int{"push: subscriber joined": 2, "push: subscriber left": 2, "push: publish": 1} {
		if seen[msg] != want {
			t.Errorf("%d lines %q, want %d; the log:\n%s", seen[msg], msg, want, p.log())
		}
	}
}

// TestCheckFlag: pushd -check URL exits 0 when URL answers 200 (the
// Dockerfile's HEALTHCHECK), 1 otherwise, over HTTPS too.
func TestCheckFlag(t *testing.T) {
	ca := testcert.NewCA(t)
	certFile, keyFile := ca.WriteFiles(t, t.TempDir(), 7)
	for _, args := range [][]string{nil, {"-tls-cert", certFile, "-tls-key", keyFile}} {
		p := startPushd(t, args...)
		for path, want := range map[string]int{"/healthz": 0, "/readyz": 0, "/nothing-here": 1} {
			err := exec.Command(binary, "-check", p.base+path).Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != want {
				t.Errorf("pushd -check %s%s: exit %d, want %d", p.base, path, code, want)
			}
		}
	}
}
