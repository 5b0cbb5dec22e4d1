// Command qrlogin logs a computer in by scanning a QR code with a phone,
// the flow push servers were built for, on github.com/pushhub/push.
//
//	go run ./examples/qrlogin            # then open http://localhost:8081/
//	go run ./examples/qrlogin -addr 0.0.0.0:8081 -public-url http://192.168.1.20:8081
//	                                     # reachable from a phone on your LAN
//
// The QR code holds a URL the phone opens: under -public-url, the app's
// address as the phone reaches it (your computer's LAN address, or the
// public https URL of a deployment behind a proxy). Without it the code
// names the host the computer's browser used, which a phone cannot reach
// when that is localhost.
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
	"net/url"
	"os"
	"os/signal"
	"time"
)

func main() {
	addr := flag.String("addr", "localhost:8081", "address to listen on (host:port)")
	publicURL := flag.String("public-url", "", "the app's URL as a phone reaches it, for the QR code (http://192.168.1.20:8081, https://login.example.com); empty: the host the computer's browser used")
	flag.Parse()
	if *publicURL != "" {
		u, err := url.Parse(*publicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			log.Fatalf("qrlogin: -public-url %q: want an absolute http or https URL, like http://192.168.1.20:8081", *publicURL)
		}
	}

	a := newApp()
	a.publicURL = *publicURL
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("qrlogin: open http://%s/ on your computer and scan the code with your phone\n", ln.Addr())
	if *publicURL == "" {
		fmt.Println("qrlogin: the QR code names the host your computer's browser uses; if that is localhost, a phone cannot reach it: pass -public-url http://<this machine's LAN address>:<port>")
	}

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
