package main

import (
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pushhub/push"
)

func TestFlagsMapToOptions(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want push.Options
	}{
		{nil, push.Options{MessageBufferLength: 10, MessageTTL: time.Hour, ChannelTimeout: 5 * time.Minute}},
		{[]string{"-buffer", "0", "-message-ttl", "0", "-channel-ttl", "0"},
			push.Options{MessageBufferLength: -1, MessageTTL: -1, ChannelTimeout: -1}},
		{[]string{
			"-buffer", "100", "-message-ttl", "90s", "-channel-ttl", "1m", "-subscriber-timeout", "30s",
			"-timeout-status", "408", "-interval-poll", "-concurrency", "last", "-authorized-channels-only",
			"-max-subscribers", "7", "-allow-origin", "https://a.example, https://*.b.example", "-put", "publish",
			"-max-message-size", "4096", "-no-io-uring", "-compat", "resty",
		}, push.Options{
			MessageBufferLength: 100, MessageTTL: 90 * time.Second, ChannelTimeout: time.Minute,
			SubscriberTimeout: 30 * time.Second, TimeoutStatus: 408, IntervalPoll: true,
			Concurrency: push.Last, AuthorizedChannelsOnly: true, MaxSubscribersPerChannel: 7,
			AllowedOrigins: []string{"https://a.example", "https://*.b.example"}, PutPublishes: true,
			MaxMessageSize: 4096, DisableIOURing: true, RestyPush: true,
		}},
	} {
		cfg, err := parseFlags(tc.args, io.Discard)
		if err != nil {
			t.Fatalf("parseFlags(%q): %v", tc.args, err)
		}
		if !reflect.DeepEqual(cfg.Options, tc.want) {
			t.Errorf("parseFlags(%q).Options =\n%+v\nwant\n%+v", tc.args, cfg.Options, tc.want)
		}
	}
	cfg, err := parseFlags([]string{"-addr", ":9999", "-redis", "redis://127.0.0.1:6379/2", "-redis-prefix", "x:"}, io.Discard)
	if err != nil || cfg.Addr != ":9999" || cfg.RedisURL != "redis://127.0.0.1:6379/2" || cfg.RedisPrefix != "x:" {
		t.Errorf("parseFlags: %+v, %v", cfg, err)
	}
}

// TestServerInProcess builds the servers with newServers, as an embedding
// test would, and checks the routes the binary tests do not.
func TestServerInProcess(t *testing.T) {
	cfg, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	hub, s, pubSrv := newServers(cfg, nil)
	if pubSrv != nil {
		t.Fatal("a publisher server without -pub-addr")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Close()
	defer hub.Shutdown(t.Context())
	srv := struct {
		URL    string
		Client func() *http.Client
	}{"http://" + ln.Addr().String(), func() *http.Client { return http.DefaultClient }}

	get := func(path string, accept string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	if code, ct, body := get("/", ""); code != 200 || !strings.HasPrefix(ct, "text/html") || !strings.Contains(body, "pushd") {
		t.Errorf("GET /: %d %q %q", code, ct, body)
	}
	if code, _, _ := get("/nothing-here", ""); code != 404 {
		t.Errorf("GET /nothing-here: %d, want 404", code)
	}
	if code, _, _ := get("/pub?id=none", ""); code != 404 {
		t.Errorf("GET /pub of a missing channel: %d, want 404", code)
	}
	for accept, json := range map[string]bool{
		"":                                 false,
		"text/plain":                       false,
		"application/json":                 true,
		"application/json; charset=utf-8":  true,
		"text/html, application/json;q=0":  false,
		"text/html, application/json;q=.5": true,
	} {
		_, ct, _ := get("/status", accept)
		if got := ct == "application/json"; got != json {
			t.Errorf("/status with Accept %q: Content-Type %q", accept, ct)
		}
	}
	if _, ct, _ := get("/status?format=text", "application/json"); ct == "application/json" {
		t.Errorf("/status?format=text answered JSON")
	}
}
