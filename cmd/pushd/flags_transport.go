package main

import (
	"flag"

	"github.com/pushhub/push"
)

// addTransportFlags defines the flags of the subscriber transports on fs and
// returns a func that applies their parsed values to the Options.
//
// Seam: the transports work (issue 3) replaces this file; for now there are
// no transport flags.
func addTransportFlags(fs *flag.FlagSet) func(*push.Options) {
	return func(*push.Options) {}
}
