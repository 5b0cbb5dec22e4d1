// Command chat is a chat with rooms on github.com/pushhub/push.
//
//	go run ./examples/chat            # then open http://localhost:8082/ in two tabs
//
// Each room is a push channel. The page subscribes to its room through the
// Hub's SubscribeHandler (GET /sub?room=name): it first receives the room's
// last messages from the channel buffer, then new ones as they are sent.
// Messages are sent to the app (POST /rooms/{room}/messages), which checks
// the nickname and length, rate-limits each browser and calls hub.Publish.
// See examples/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"
)

func main() {
	addr := flag.String("addr", "localhost:8082", "address to listen on (host:port)")
	flag.Parse()

	a := newApp()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("chat: open http://%s/ in a few browser tabs\n", ln.Addr())

	srv := &http.Server{Handler: a, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a.hub.Shutdown(shut) // ends held subscribers first, so that the server can drain
		srv.Shutdown(shut)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
