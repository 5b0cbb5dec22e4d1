// Command pprofd is pushd's hub with net/http/pprof mounted, for profiling
// the hot paths under bench/compare.sh's loads (pushd itself has no pprof
// endpoint). It serves /pub and /sub like pushd, with the library's default
// options except the buffer, and /debug/pprof/ on the same loopback port.
//
//	go build -o /tmp/pprofd ./bench/pprofd
//	taskset -c 0 /tmp/pprofd -addr 127.0.0.1:18082 -buffer 20 &
//	go tool pprof -seconds 10 http://127.0.0.1:18082/debug/pprof/profile
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"

	"github.com/pushhub/push"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18082", "loopback `host:port` to listen on")
	buffer := flag.Int("buffer", 20, "messages kept per channel")
	rate := flag.Int("memprofilerate", 0, "runtime.MemProfileRate (1 records every allocation); 0 keeps Go's default")
	flag.Parse()
	if *rate > 0 {
		runtime.MemProfileRate = *rate
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		log.Fatalf("pprofd: -addr %q: want a loopback address (it serves pprof)", *addr)
	}
	h := push.New(push.Options{MessageBufferLength: *buffer})
	mux := http.NewServeMux()
	mux.Handle("/pub", h.PublishHandler())
	mux.Handle("/sub", h.SubscribeHandler())
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Fatal(http.ListenAndServe(*addr, mux))
}
