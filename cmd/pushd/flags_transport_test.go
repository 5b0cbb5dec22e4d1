package main

import (
	"flag"
	"io"
	"testing"
	"time"

	"github.com/pushhub/push"
)

func TestTransportFlags(t *testing.T) {
	parse := func(args ...string) (push.Options, error) {
		fs := flag.NewFlagSet("pushd", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		apply := addTransportFlags(fs)
		var o push.Options
		err := fs.Parse(args)
		if err == nil {
			apply(&o)
		}
		return o, err
	}
	o, err := parse()
	if err != nil {
		t.Fatal(err)
	}
	if o.Transports != 0 || o.PingInterval != 0 || o.WriteTimeout != 0 || o.LongPollCatchUp {
		t.Errorf("defaults: got %+v", o)
	}
	o, err = parse("-transports", "websocket,longpoll", "-ping-interval", "0", "-write-timeout", "3s", "-longpoll-catchup")
	if err != nil {
		t.Fatal(err)
	}
	if o.Transports != push.TransportWebSocket|push.TransportLongPoll || o.PingInterval >= 0 ||
		o.WriteTimeout != 3*time.Second || !o.LongPollCatchUp {
		t.Errorf("set: got %+v", o)
	}
	for _, bad := range [][]string{{"-transports", "carrier-pigeon"}, {"-ping-interval", "-1s"}, {"-write-timeout", "0"}} {
		if _, err := parse(bad...); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
