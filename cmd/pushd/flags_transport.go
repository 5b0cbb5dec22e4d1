package main

import (
	"errors"
	"flag"
	"time"

	"github.com/pushhub/push"
)

// addTransportFlags defines the flags of the subscriber transports on fs and
// returns a func that applies their parsed values to the Options.
func addTransportFlags(fs *flag.FlagSet) func(*push.Options) {
	// Flags left alone leave the Options at their zero values, which mean
	// the library's defaults.
	var transports push.Transport
	varFlag(fs, "transports", "all", "comma-separated `list` of subscriber transports to serve: websocket, eventsource, longpoll, jsonp, multipart, chunked, or all", func(s string) error {
		t, err := push.ParseTransports(s)
		if err != nil {
			return err
		}
		transports = t
		return nil
	})
	var ping time.Duration
	varFlag(fs, "ping-interval", "30s", "how often (a `duration`) idle WebSocket and EventSource subscribers are pinged, so proxies keep the connection and dead peers are dropped; 0 sends no pings", func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			return errors.New("want a Go duration >= 0, like 30s")
		}
		ping = d
		if d == 0 {
			ping = -1 // Options: negative is off
		}
		return nil
	})
	var writeTimeout time.Duration
	varFlag(fs, "write-timeout", "10s", "how long (a `duration`) a subscriber may take to accept one write before it is disconnected (it can resume from its last id)", func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return errors.New("want a Go duration > 0, like 10s")
		}
		writeTimeout = d
		return nil
	})
	catchUp := fs.Bool("longpoll-catchup", false, "answer a long-poll that finds several messages waiting with all of them at once, as one multipart/mixed answer (NchanSubscriber.js and push.js read it; NHPM clients, curl and resty.push pages do not); off: one message per answer, as NHPM and Nchan's default")
	return func(o *push.Options) {
		o.Transports = transports
		o.PingInterval = ping
		o.WriteTimeout = writeTimeout
		o.LongPollCatchUp = *catchUp
	}
}
