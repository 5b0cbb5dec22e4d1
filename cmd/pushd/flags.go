package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
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
		LogFormat:       "text",
		ShutdownTimeout: 10 * time.Second,
		GCHeapFloor:     defaultHeapFloor,
	}
	o := &cfg.Options
	fs := flag.NewFlagSet("pushd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	usage := func() {
		fmt.Fprintf(stderr, "Usage: pushd [flags]\n\n"+
			"A push server: POST /pub?id=CHANNEL publishes, GET /sub?id=CHANNEL subscribes,\n"+
			"GET /status shows counters (JSON with ?format=json), GET /metrics Prometheus metrics,\n"+
			"GET /healthz and /readyz the health of the process and its store.\n"+
			"Durations are Go durations (2s, 5m, 1h). Every flag can also be set by an environment\n"+
			"variable, PUSHD_ and the flag's name in upper case with _ for - (PUSHD_ADDR, PUSHD_REDIS,\n"+
			"PUSHD_NO_IO_URING=true); the command line wins.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.Usage = func() {} // Parse reports the bad flag; the hint follows below

	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "`host:port` to listen on (port 0 picks a free port; the log says which), or unix:/path")
	fs.StringVar(&cfg.PubAddr, "pub-addr", "", "serve the publisher (/pub, /status and /metrics) on this `host:port` or unix:/path of its own, for the back end only; -addr then answers /pub with 404. Empty: the publisher is on -addr")
	varFlag(fs, "request-timeout", push.DefaultRequestTimeout.String(), "how long (a `duration`) a client may take to send a whole request, headers and body; slower ones get 408 or are closed; 0: no limit", func(s string) error {
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

	buffer := push.DefaultMessageBufferLength
	varFlag(fs, "buffer", strconv.Itoa(buffer), "`n` messages kept per channel for subscribers that come later; 0 stores none (live delivery only)", func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return errors.New("want a whole number >= 0")
		}
		buffer = n
		return nil
	})
	messageTTL := push.DefaultMessageTTL
	varFlag(fs, "message-ttl", messageTTL.String(), "how long (a `duration`) a message stays available; 0 means forever", durationFlag(&messageTTL))
	channelTTL := push.DefaultChannelTimeout
	varFlag(fs, "channel-ttl", channelTTL.String(), "how long (a `duration`) a channel with no subscribers and no messages is kept; 0 means forever", durationFlag(&channelTTL))
	varFlag(fs, "subscriber-timeout", "0s", "how long (a `duration`) a long-poll is held before it is answered with -timeout-status; 0 means forever", durationFlag(&o.SubscriberTimeout))
	varFlag(fs, "timeout-status", "304", "`status` of a timed-out long-poll: 304 or 408", func(s string) error {
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
	varFlag(fs, "concurrency", "broadcast", "`policy` for several subscribers of one channel: broadcast (all get every message), first (a new one gets 409 while one is held) or last (a new one ends the earlier ones with 409)", func(s string) error {
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
	varFlag(fs, "max-subscribers", "0", "most subscribers (`n`) per channel, beyond which they get 403; 0 means unlimited", func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return errors.New("want a whole number >= 0")
		}
		o.MaxSubscribersPerChannel = n
		return nil
	})
	varFlag(fs, "allow-origin", "", "comma-separated `origins` allowed to make cross-origin requests (https://a.example, https://*.example.com, or *); empty: CORS off", func(s string) error {
		o.AllowedOrigins = nil
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				o.AllowedOrigins = append(o.AllowedOrigins, p)
			}
		}
		return nil
	})
	varFlag(fs, "compat", "none", "client `dialect` spoken besides push's own protocol: none, or resty (OpenResty resty.push: a form's field data is the message, publishes answer {\"status\":1}, JSONP subscribers get cb(\"<message>\"); see docs/resty.md)", func(s string) error {
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
	varFlag(fs, "put", "create", "what PUT on /pub does (`mode`): create (create the channel, publish nothing) or publish (like POST)", func(s string) error {
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
	varFlag(fs, "max-message-size", strconv.Itoa(push.DefaultMaxMessageSize), "largest message body in `bytes`; larger ones get 413", func(s string) error {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return errors.New("want a whole number of bytes > 0")
		}
		o.MaxMessageSize = n
		return nil
	})
	fs.StringVar(&cfg.RedisURL, "redis", "", "Redis `URL` (redis://host:port/db) to keep channels in, shared by several pushd; empty: in memory")
	fs.StringVar(&cfg.RedisClusterURL, "redis-cluster", "", "Redis Cluster `URL` (redis://host:port?addr=host:port&addr=host:port) to keep channels in, instead of -redis")
	fs.StringVar(&cfg.RedisPrefix, "redis-prefix", "push:", "prefix of every Redis key pushd uses")
	varFlag(fs, "log-level", "info", "`level` of the logs: debug, info, warn or error", func(s string) error {
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
	varFlag(fs, "shutdown-timeout", cfg.ShutdownTimeout.String(), "how long (a `duration`) a graceful shutdown may take before connections are cut", func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return errors.New("want a Go duration > 0, like 10s")
		}
		cfg.ShutdownTimeout = d
		return nil
	})
	fs.BoolVar(&o.DisableIOURing, "no-io-uring", false, "use no io_uring: serve kept-alive publishers with a goroutine each instead of one io_uring, and write to a large channel's subscribers with a system call each instead of 256 per io_uring_enter (Linux 6.1+; pushd does without by itself where io_uring is missing or refused)")
	fs.StringVar(&cfg.PprofAddr, "pprof", "", "loopback `host:port` to serve net/http/pprof on (/debug/pprof/), for profiling; empty: off")
	varFlag(fs, "gc-heap-floor", strconv.FormatUint(cfg.GCHeapFloor, 10), "heap size in `bytes` below which Go does not collect garbage (above it Go collects as GOGC=100 does); trades at most that much memory for the CPU a small, busy heap spends on collections; 0 or a GOGC environment variable: Go's default", func(s string) error {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return errors.New("want a whole number of bytes >= 0")
		}
		cfg.GCHeapFloor = n
		return nil
	})
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "certificate `file` (PEM, with its chain) to serve HTTPS, with HTTP/2, on -addr; reread on SIGHUP; empty: plain HTTP")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "private key `file` (PEM) of -tls-cert")
	fs.StringVar(&cfg.PubTLSCert, "pub-tls-cert", "", "certificate `file` to serve HTTPS on -pub-addr (it may be -tls-cert's); empty: plain HTTP there")
	fs.StringVar(&cfg.PubTLSKey, "pub-tls-key", "", "private key `file` of -pub-tls-cert")
	varFlag(fs, "log-format", "text", "`format` of the logs on stderr: text (key=value) or json (one object a line)", func(s string) error {
		switch s {
		case "text", "json":
			cfg.LogFormat = s
			return nil
		}
		return errors.New("want text or json")
	})
	fs.BoolVar(&cfg.Version, "version", false, "print pushd's version and VCS revision, and exit")
	fs.StringVar(&cfg.Check, "check", "", "GET this `URL` (such as http://127.0.0.1:8080/healthz), exit 0 on 200 and 1 otherwise, and serve nothing: a health check for images without curl (https is not verified: meant for the process's own loopback address)")
	applyTransport := addTransportFlags(fs)
	checkAuth := addAuthFlags(fs, &cfg.Auth, o)
	envErr := setFromEnv(fs, os.LookupEnv)

	if envErr != nil {
		fmt.Fprintf(stderr, "pushd: %v\nRun 'pushd -h' to see every flag.\n", envErr)
		return cfg, envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage()
		} else {
			fmt.Fprintln(stderr, "Run 'pushd -h' to see every flag.")
		}
		return cfg, err
	}
	for _, p := range [][3]string{{"tls", cfg.TLSCert, cfg.TLSKey}, {"pub-tls", cfg.PubTLSCert, cfg.PubTLSKey}} {
		if (p[1] == "") != (p[2] == "") {
			fmt.Fprintf(stderr, "pushd: -%s-cert and -%s-key go together: give both, or neither for plain HTTP.\n", p[0], p[0])
			return cfg, errors.New("incomplete TLS flags")
		}
	}
	if cfg.PubTLSCert != "" && cfg.PubAddr == "" {
		fmt.Fprintln(stderr, "pushd: -pub-tls-cert needs -pub-addr: without it the publisher is on -addr, which -tls-cert covers.")
		return cfg, errors.New("-pub-tls-cert without -pub-addr")
	}
	if cfg.RedisURL != "" && cfg.RedisClusterURL != "" {
		fmt.Fprintln(stderr, "pushd: give -redis (one Redis server) or -redis-cluster (a Redis Cluster), not both.")
		return cfg, errors.New("-redis with -redis-cluster")
	}
	if err := checkAuth(); err != nil {
		fmt.Fprintf(stderr, "pushd: %v\n", err)
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

// value is a flag.Value that parses with set and whose String is the text
// it was last set from, so that -h prints each flag's default from the flag
// itself.
type value struct {
	text string
	set  func(string) error
}

func (v *value) String() string {
	if v == nil {
		return ""
	}
	return v.text
}

func (v *value) Set(s string) error {
	if err := v.set(s); err != nil {
		return err
	}
	v.text = s
	return nil
}

// varFlag defines flag name on fs, parsed by set, whose default (shown by
// -h) is def.
func varFlag(fs *flag.FlagSet, name, def, usage string, set func(string) error) {
	fs.Var(&value{text: def, set: set}, name, usage)
}

// envName is the environment variable of flag name: PUSHD_ and the name in
// upper case with _ for -.
func envName(name string) string {
	return "PUSHD_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// setFromEnv sets every flag of fs whose environment variable (envName) is
// set, before the command line is parsed, which then wins. -version and
// -check, which make pushd do something else than serve, are left to the
// command line.
func setFromEnv(fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "version" || f.Name == "check" {
			return
		}
		if v, ok := lookup(envName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("invalid value %q for %s (flag -%s): %v", v, envName(f.Name), f.Name, err))
			}
		}
	})
	return errors.Join(errs...)
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
