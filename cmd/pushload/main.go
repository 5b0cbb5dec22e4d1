// Command pushload puts load on an NHPM/Nchan-style HTTP push server and
// prints one JSON line per run. It is black-box: it knows the server only
// by URL templates for its publisher and subscriber locations, so it loads
// pushd and Nchan alike.
//
//	pushload -mode fanout -transport ws -n 10000 -m 100 \
//	    -pub 'http://127.0.0.1:8080/pub?id={ch}' -sub 'http://127.0.0.1:8080/sub?id={ch}' -pid 1234
//
// Modes:
//
//	idle     N subscribers connect; the server's RSS and PSS growth per
//	         subscriber is read from /proc/<pid>/smaps_rollup (-pid); then one
//	         message is published and the time it takes to reach all N is
//	         measured.
//	fanout   N subscribers; M messages published back to back (or at -rate
//	         per second): delivered, lost, duplicated, deliveries/s, latency
//	         percentiles (from a timestamp in each body).
//	pubrate  C concurrent publishers over many channels for -duration:
//	         publishes/s and round-trip latency percentiles.
//
// Transports: longpoll (echoing Last-Modified and Etag), ws (WebSocket,
// plain frames) and sse (EventSource). Only loopback targets are accepted.
//
// WebSocket subscribers are read in one of two ways (-ws-reader): epoll,
// the default on Linux, does the handshake itself and then reads every
// connection of a process from one event loop with its own epoll instance,
// a read(2) per ready connection and no allocation per message; goroutine
// uses github.com/coder/websocket with a goroutine per connection, which
// costs about twice as much of the load tool's CPU per delivery. The
// fan-out figures depend on the client being cheap (it shares the machine
// with the server), so goroutine is there for comparison and for systems
// other than Linux.
//
// Client sockets come from the source addresses 127.0.0.2-127.0.0.50 so the
// ephemeral ports of one address do not run out. A process may hold at most
// RLIMIT_NOFILE open files (the hard limit is 20,000 on our machines); the
// soft limit is raised to the hard one, and above -per-worker subscribers
// pushload re-executes itself as several worker processes and adds up what
// they report. With -pid, the server's CPU time (utime+stime from
// /proc/<pid>/stat) during the measured phase is reported next to
// pushload's own (getrusage). Every run ends by -timeout.
//
// "pushload report FILE..." reads JSON lines written by bench/compare.sh and
// prints the comparison table with medians.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"
)

type config struct {
	mode, transport    string
	wsReader           string
	pub, sub           string
	pubT               *target
	n, channels        int
	messages           int
	rate               float64
	size               int
	conc               int
	duration           time.Duration
	procs              serverProcs
	timeout            time.Duration
	drain, settle      time.Duration
	settleMax          time.Duration
	src                string
	dialer             *dialer
	perWorker          int
	dialConc           int
	prefix             string
	label, serverLabel string
	cpuprofile         string
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-worker" {
		if err := workerMain(); err != nil {
			fmt.Fprintln(os.Stderr, "pushload worker:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "report" {
		if err := reportMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "pushload report:", err)
			os.Exit(1)
		}
		return
	}
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "pushload:", err)
		os.Exit(2)
	}
	if cfg.cpuprofile != "" {
		f, err := os.Create(cfg.cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "pushload:", err)
			os.Exit(2)
		}
		pprof.StartCPUProfile(f)
		defer f.Close()
	}
	res := run(cfg)
	pprof.StopCPUProfile()
	b, _ := json.Marshal(res)
	fmt.Println(string(b))
	if res.TimedOut {
		os.Exit(3)
	}
}

func parseFlags(args []string) (*config, error) {
	fs := flag.NewFlagSet("pushload", flag.ContinueOnError)
	c := &config{}
	var pids string
	fs.StringVar(&c.mode, "mode", "fanout", "idle, fanout or pubrate")
	fs.StringVar(&c.transport, "transport", "longpoll", "subscriber transport: longpoll, ws or sse")
	fs.StringVar(&c.wsReader, "ws-reader", defaultWSReader, "how WebSocket subscribers are read: epoll (one event loop per process; Linux) or goroutine (coder/websocket, a goroutine per connection)")
	fs.StringVar(&c.pub, "pub", "http://127.0.0.1:8080/pub?id={ch}", "publisher URL template; {ch} is the channel id")
	fs.StringVar(&c.sub, "sub", "http://127.0.0.1:8080/sub?id={ch}", "subscriber URL template; {ch} is the channel id")
	fs.IntVar(&c.n, "n", 1000, "subscribers (idle, fanout)")
	fs.IntVar(&c.channels, "channels", 0, "channels; subscribers are spread over them and each message goes to each (default 1, pubrate 1000)")
	fs.IntVar(&c.messages, "m", 100, "messages per channel (fanout; idle publishes 1)")
	fs.Float64Var(&c.rate, "rate", 0, "messages per second (fanout); 0: back to back")
	fs.IntVar(&c.size, "size", 64, "message body size in bytes (at least 40: it carries a sequence number and a timestamp)")
	fs.IntVar(&c.conc, "c", 50, "concurrent publishers (pubrate)")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long to publish (pubrate)")
	fs.StringVar(&pids, "pid", "", "server process ids, comma-separated, for memory and CPU figures (for nginx: the worker)")
	fs.DurationVar(&c.timeout, "timeout", 2*time.Minute, "the whole run ends after this long, finished or not")
	fs.DurationVar(&c.drain, "drain", 3*time.Second, "after publishing, stop waiting once nothing arrived for this long")
	fs.DurationVar(&c.settle, "settle", time.Second, "pause after the server counts every subscriber, before measuring")
	fs.DurationVar(&c.settleMax, "settle-max", 30*time.Second, "longest wait for the server to count every subscriber")
	fs.StringVar(&c.src, "src", "127.0.0.2-127.0.0.50", "client source addresses (a range in the last octet, or a list); empty: kernel's choice")
	fs.IntVar(&c.perWorker, "per-worker", 15000, "most subscribers per process; more start worker processes")
	fs.IntVar(&c.dialConc, "dial-concurrency", 64, "connections being opened at once")
	fs.StringVar(&c.prefix, "prefix", "", "channel id prefix (default: random per run, so runs do not see each other's messages)")
	fs.StringVar(&c.label, "label", "", "free text copied into the JSON line")
	fs.StringVar(&c.serverLabel, "server", "", "free text naming the server, copied into the JSON line")
	fs.StringVar(&c.cpuprofile, "cpuprofile", "", "write pushload's own CPU profile (this process only) to this file")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch c.transport {
	case "longpoll", "lp", "long-poll":
		c.transport = "longpoll"
	case "ws", "websocket":
		c.transport = "ws"
	case "sse", "eventsource":
		c.transport = "sse"
	default:
		return nil, fmt.Errorf("-transport %q: want longpoll, ws or sse", c.transport)
	}
	switch c.wsReader {
	case wsReaderGoroutine:
	case wsReaderEpoll:
		if runtime.GOOS != "linux" {
			return nil, fmt.Errorf("-ws-reader %s: only on Linux", c.wsReader)
		}
	default:
		return nil, fmt.Errorf("-ws-reader %q: want epoll or goroutine", c.wsReader)
	}
	var err error
	if c.pubT, err = parseTarget("-pub", c.pub); err != nil {
		return nil, err
	}
	switch c.mode {
	case "idle":
		c.messages = 1
	case "fanout":
		if c.messages < 1 {
			return nil, errors.New("-m: at least 1 message")
		}
	case "pubrate":
		if c.conc < 1 {
			return nil, errors.New("-c: at least 1 publisher")
		}
	default:
		return nil, fmt.Errorf("-mode %q: want idle, fanout or pubrate", c.mode)
	}
	if c.mode != "pubrate" {
		if _, err := parseTarget("-sub", c.sub); err != nil {
			return nil, err
		}
		if c.n < 1 {
			return nil, errors.New("-n: at least 1 subscriber")
		}
	}
	if c.channels <= 0 {
		c.channels = 1
		if c.mode == "pubrate" {
			c.channels = 1000
		}
	}
	if c.size < 40 {
		return nil, errors.New("-size: at least 40 bytes")
	}
	if c.perWorker < 1 {
		return nil, errors.New("-per-worker: at least 1")
	}
	if c.procs, err = parsePids(pids); err != nil {
		return nil, err
	}
	srcs, err := parseSources(c.src)
	if err != nil {
		return nil, err
	}
	c.dialer = newDialer(srcs, 0)
	if c.prefix == "" {
		var b [4]byte
		rand.Read(b[:])
		c.prefix = "load-" + hex.EncodeToString(b[:]) + "-"
	}
	if strings.ContainsAny(c.prefix, "&#?/ %") {
		return nil, fmt.Errorf("-prefix %q: use letters, digits, '-' and '_'", c.prefix)
	}
	return c, nil
}

func run(cfg *config) *Result {
	limit := raiseFileLimit()
	start := time.Now()
	res := &Result{Mode: cfg.mode, Server: cfg.serverLabel, Label: cfg.label, Start: start.UTC().Format(time.RFC3339),
		Pub: cfg.pub, N: cfg.n, Channels: cfg.channels, Messages: cfg.messages}
	if cfg.mode != "pubrate" {
		res.Transport, res.Sub = cfg.transport, cfg.sub
		if cfg.transport == "ws" {
			res.WSReader = cfg.wsReader
		}
		if per := min(cfg.n, cfg.perWorker); uint64(per)+64 > limit {
			res.err("warning: %d subscribers per process but the open-files limit is %d; lower -per-worker", per, limit)
		}
	} else {
		res.N = 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	if cfg.mode == "pubrate" {
		runPubrate(ctx, cfg, res)
	} else {
		runSubscribers(ctx, cfg, res)
	}
	res.TimedOut = ctx.Err() != nil
	res.ElapsedS = time.Since(start).Seconds()
	return res
}
