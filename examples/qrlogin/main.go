// Command qrlogin logs a computer in by scanning a QR code with a phone,
// the flow push servers were built for, on github.com/pushhub/push.
//
//	go run ./examples/qrlogin            # then open http://localhost:8081/
//	go run ./examples/qrlogin -addr 0.0.0.0:8081   # reachable from a phone on your LAN
//
// The computer's page asks the app for a login (POST /login) and shows a
// QR code of a one-time URL; it waits on the login's push channel through
// the Hub's SubscribeHandler (GET /sub). The phone opens the URL and
// confirms; the app calls hub.Publish on the login's channel with a one-time
// code; the computer's page receives it at once and exchanges it (POST
// /login/exchange) for its session cookie. See examples/README.md.
//
// The QR code is drawn in Go with rsc.io/qr, a small, dependency-free QR
// encoder, so the page needs no JavaScript library and no CDN.
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
	addr := flag.String("addr", "localhost:8081", "address to listen on (host:port)")
	flag.Parse()

	a := newApp()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("qrlogin: open http://%s/ on your computer and scan the code with your phone\n", ln.Addr())

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
