package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pushhub/push"
)

// parseFlags reads the command line into a config. Errors (already
// reported on stderr with the usage) mean exit status 2; flag.ErrHelp means
// -h was asked for.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	cfg := config{
		Addr:            "localhost:8080",
		LogLevel:        slog.LevelInfo,
		ShutdownTimeout: 10 * time.Second,
		GCHeapFloor:     defaultHeapFloor,
	}
	o := &cfg.Options
	fs := flag.NewFlagSet("pushd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	usage := func() {
		fmt.Fprintf(stderr, "Usage: pushd [flags]\n\n"+
			"A push server: POST /pub?id=CHANNEL publishes, GET /sub?id=CHANNEL subscribes,\n"+
			"GET /status shows counters (JSON with ?format=json). Durations are Go durations (2s, 5m, 1h).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.Usage = func() {} // Parse reports the bad flag; the hint follows below

	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "`host:port` to listen on (port 0 picks a free port; the log says which), or unix:/path")
	fs.StringVar(&cfg.PubAddr, "pub-addr", "", "serve the publisher (/pub, and /status) on this `host:port` or unix:/path of its own, for the back end only; -addr then answers /pub with 404. Empty: the publisher is on -addr")
	fs.Func("request-timeout", "how long (a `duration`) a client may take to send a whole request, headers and body; slower ones get 408 or are closed; 0: no limit (default 30s)", func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return errors.New("want a Go duration >= 0, like 30s")
		}
		o.RequestTimeout = d
		if d == 0 {
			o.RequestTimeout = -1
		}
		return nil
	})

	buffer := 10
	fs.Func("buffer", "`n` messages kept per channel for subscribers that come later; 0 stores none (live delivery only) (default 10)", func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return errors.New("want a whole number >= 0")
		}
		buffer = n
		return nil
	})
	messageTTL := push.DefaultMessageTTL
	fs.Func("message-ttl", "how long (a `duration`) a message stays available; 0 means forever (default 1h0m0s)", durationFlag(&messageTTL))
	channelTTL := push.DefaultChannelTimeout
	fs.Func("channel-ttl", "how long (a `duration`) a channel with no subscribers and no messages is kept; 0 means forever (default 5m0s)", durationFlag(&channelTTL))
	fs.Func("subscriber-timeout", "how long (a `duration`) a long-poll is held before it is answered with -timeout-status; 0 means forever (default 0s)", durationFlag(&o.SubscriberTimeout))
	fs.Func("timeout-status", "`status` of a timed-out long-poll: 304 or 408 (default 304)", func(s string) error {
		switch s {
		case "304":
			o.TimeoutStatus = http.StatusNotModified
		case "408":
			o.TimeoutStatus = http.StatusRequestTimeout
		default:
			return errors.New("want 304 or 408")
		}
		return nil
	})
	fs.BoolVar(&o.IntervalPoll, "interval-poll", false, "answer a long-poll at once with 304 when nothing is newer, instead of holding it")
	fs.Func("concurrency", "`policy` for several subscribers of one channel: broadcast (all get every message), first (a new one gets 409 while one is held) or last (a new one ends the earlier ones with 409) (default broadcast)", func(s string) error {
		switch s {
		case "broadcast":
			o.Concurrency = push.Broadcast
		case "first":
			o.Concurrency = push.First
		case "last":
			o.Concurrency = push.Last
		default:
			return errors.New("want broadcast, first or last")
		}
		return nil
	})
	fs.BoolVar(&o.AuthorizedChannelsOnly, "authorized-channels-only", false, "refuse (403) subscribers of channels never published to or created with PUT")
	fs.Func("max-subscribers", "most subscribers (`n`) per channel, beyond which they get 403; 0 means unlimited (default 0)", func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return errors.New("want a whole number >= 0")
		}
		o.MaxSubscribersPerChannel = n
		return nil
	})
	fs.Func("allow-origin", "comma-separated `origins` allowed to make cross-origin requests (https://a.example, https://*.example.com, or *); empty: CORS off", func(s string) error {
		o.AllowedOrigins = nil
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				o.AllowedOrigins = append(o.AllowedOrigins, p)
			}
		}
		return nil
	})
	fs.Func("compat", "client `dialect` spoken besides push's own protocol: none, or resty (OpenResty resty.push: a form's field data is the message, publishes answer {\"status\":1}, JSONP subscribers get cb(\"<message>\"); see docs/resty.md) (default none)", func(s string) error {
		switch s {
		case "none":
			o.RestyPush = false
		case "resty":
			o.RestyPush = true
		default:
			return errors.New("want none or resty")
		}
		return nil
	})
	fs.Func("put", "what PUT on /pub does (`mode`): create (create the channel, publish nothing) or publish (like POST) (default create)", func(s string) error {
		switch s {
		case "create":
			o.PutPublishes = false
		case "publish":
			o.PutPublishes = true
		default:
			return errors.New("want create or publish")
		}
		return nil
	})
	fs.Func("max-message-size", "largest message body in `bytes`; larger ones get 413 (default 1048576)", func(s string) error {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return errors.New("want a whole number of bytes > 0")
		}
		o.MaxMessageSize = n
		return nil
	})
	fs.StringVar(&cfg.RedisURL, "redis", "", "Redis `URL` (redis://host:port/db) to keep channels in, shared by several pushd; empty: in memory")
	fs.StringVar(&cfg.RedisPrefix, "redis-prefix", "push:", "prefix of every Redis key pushd uses")
	fs.Func("log-level", "`level` of the logs: debug, info, warn or error (default info)", func(s string) error {
		switch s {
		case "debug":
			cfg.LogLevel = slog.LevelDebug
		case "info":
			cfg.LogLevel = slog.LevelInfo
		case "warn":
			cfg.LogLevel = slog.LevelWarn
		case "error":
			cfg.LogLevel = slog.LevelError
		default:
			return errors.New("want debug, info, warn or error")
		}
		return nil
	})
	fs.Func("shutdown-timeout", "how long (a `duration`) a graceful shutdown may take before connections are cut (default 10s)", func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return errors.New("want a Go duration > 0, like 10s")
		}
		cfg.ShutdownTimeout = d
		return nil
	})
	fs.BoolVar(&o.DisableIOURing, "no-io-uring", false, "use no io_uring: serve kept-alive publishers with a goroutine each instead of one io_uring, and write to a large channel's subscribers with a system call each instead of 256 per io_uring_enter (Linux 6.1+; pushd does without by itself where io_uring is missing or refused)")
	fs.StringVar(&cfg.PprofAddr, "pprof", "", "loopback `host:port` to serve net/http/pprof on (/debug/pprof/), for profiling; empty: off")
	fs.Func("gc-heap-floor", "heap size in `bytes` below which Go does not collect garbage (above it Go collects as GOGC=100 does); trades at most that much memory for the CPU a small, busy heap spends on collections; 0 or a GOGC environment variable: Go's default (default 33554432)", func(s string) error {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return errors.New("want a whole number of bytes >= 0")
		}
		cfg.GCHeapFloor = n
		return nil
	})
	applyTransport := addTransportFlags(fs)

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage()
		} else {
			fmt.Fprintln(stderr, "Run 'pushd -h' to see every flag.")
		}
		return cfg, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pushd: unexpected argument %q: pushd takes flags only. Run 'pushd -h' to see every flag.\n", fs.Arg(0))
		return cfg, errors.New("unexpected arguments")
	}

	// The flags say 0 for "none" or "forever"; Options say it with -1 and
	// keep 0 for the default.
	o.MessageBufferLength = buffer
	if buffer == 0 {
		o.MessageBufferLength = -1
	}
	o.MessageTTL = messageTTL
	if messageTTL == 0 {
		o.MessageTTL = -1
	}
	o.ChannelTimeout = channelTTL
	if channelTTL == 0 {
		o.ChannelTimeout = -1
	}
	applyTransport(o)
	return cfg, nil
}

// durationFlag parses a non-negative Go duration into d.
func durationFlag(d *time.Duration) func(string) error {
	return func(s string) error {
		v, err := time.ParseDuration(s)
		if err != nil || v < 0 {
			return errors.New("want a Go duration >= 0, like 30s, 5m or 1h")
		}
		*d = v
		return nil
	}
}
