package push_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"

	"github.com/pushhub/push"
)

// Mount the publisher and subscriber handlers in an existing ServeMux,
// publish with a POST, and long-poll for messages, resuming with the
// Last-Modified and Etag headers of the previous answer, as NHPM clients do.
func ExampleHub_PublishHandler() {
	hub := push.New(push.Options{})
	mux := http.NewServeMux()
	mux.Handle("/pub", hub.PublishHandler()) // keep this one private
	mux.Handle("/sub", hub.SubscribeHandler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	// Shut the Hub down first: held long-polls get an answer, not a reset.
	defer hub.Shutdown(context.Background())

	res, err := http.Post(srv.URL+"/pub?id=news", "text/plain", strings.NewReader("hello"))
	if err != nil {
		panic(err)
	}
	res.Body.Close()
	fmt.Println("publish:", res.Status)

	// The first long-poll gets the oldest buffered message at once.
	res, err = http.Get(srv.URL + "/sub?id=news")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Println("subscribe:", res.Status, res.Header.Get("Content-Type"), string(body))

	// Echo Last-Modified and Etag to get the next message.
	lastModified, etag := res.Header.Get("Last-Modified"), res.Header.Get("Etag")
	res, err = http.Post(srv.URL+"/pub?id=news", "text/plain", strings.NewReader("world"))
	if err != nil {
		panic(err)
	}
	res.Body.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/sub?id=news", nil)
	req.Header.Set("If-Modified-Since", lastModified)
	req.Header.Set("If-None-Match", etag)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	fmt.Println("resume:", res.Status, string(body))
	// Output:
	// publish: 202 Accepted
	// subscribe: 200 OK text/plain hello
	// resume: 200 OK world
}

// Publish from Go code: the stored message carries its id, and the count
// says how many subscribers were waiting on the channel.
func ExampleHub_Publish() {
	hub := push.New(push.Options{})
	defer hub.Shutdown(context.Background())
	ctx := context.Background()

	msg, waiting, err := hub.Publish(ctx, "news", &push.Message{Data: []byte("hello"), ContentType: "text/plain"})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s: %q (%s), %d subscribers waiting, first of its second: %v\n",
		msg.Channel, msg.Data, msg.ContentType, waiting, msg.ID.Tag == 0)

	info, err := hub.ChannelInfo(ctx, "news")
	if err != nil {
		panic(err)
	}
	fmt.Println("buffered:", info.Messages, "last id is this one:", info.LastMessageID == msg.ID)
	// Output:
	// news: "hello" (text/plain), 0 subscribers waiting, first of its second: true
	// buffered: 1 last id is this one: true
}

// An in-process subscription ranges over a channel's messages in order:
// the buffered ones first, then each new one as it is published.
func ExampleHub_Subscribe() {
	hub := push.New(push.Options{})
	defer hub.Shutdown(context.Background())
	ctx := context.Background()

	hub.Publish(ctx, "news", &push.Message{Data: []byte("buffered")})
	sub, err := hub.Subscribe(ctx, []string{"news"}, "")
	if err != nil {
		panic(err)
	}
	defer sub.Close()

	published := make(chan struct{})
	go func() {
		defer close(published)
		for _, s := range []string{"live 1", "live 2"} {
			hub.Publish(ctx, "news", &push.Message{Data: []byte(s)})
		}
	}()
	defer func() { <-published }()
	n := 0
	for m, err := range sub.Messages(ctx) {
		if err != nil {
			panic(err)
		}
		fmt.Println(string(m.Data))
		if n++; n == 3 {
			break
		}
	}
	// Output:
	// buffered
	// live 1
	// live 2
}

// Position is where a subscription stands; a later subscription from it
// resumes with the next message, without loss or repeat.
func ExampleSubscription_Position() {
	hub := push.New(push.Options{})
	defer hub.Shutdown(context.Background())
	ctx := context.Background()

	for _, s := range []string{"one", "two"} {
		hub.Publish(ctx, "news", &push.Message{Data: []byte(s)})
	}
	sub, err := hub.Subscribe(ctx, []string{"news"}, "")
	if err != nil {
		panic(err)
	}
	m, err := sub.Next(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("read:", string(m.Data))
	from := sub.Position() // "T:G" of "one"; save it anywhere
	sub.Close()

	hub.Publish(ctx, "news", &push.Message{Data: []byte("three")})
	sub, err = hub.Subscribe(ctx, []string{"news"}, from)
	if err != nil {
		panic(err)
	}
	defer sub.Close()
	for range 2 {
		m, err := sub.Next(ctx)
		if err != nil {
			panic(err)
		}
		fmt.Println("resumed:", string(m.Data))
	}
	// Output:
	// read: one
	// resumed: two
	// resumed: three
}

// Serve the Hub through its Listener: a long-poll that has to wait hands its
// connection to the Hub, which answers it when a message comes and gives the
// kept-alive connection back to the http.Server for the next request.
func ExampleHub_Listener() {
	hub := push.New(push.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := &http.Server{Handler: hub.SubscribeHandler()}
	go srv.Serve(hub.Listener(ln))
	defer srv.Close()
	defer hub.Shutdown(context.Background())

	// A page waits for its QR-code login on a channel of its own.
	answer := make(chan string)
	go func() {
		res, err := http.Get("http://" + ln.Addr().String() + "/?id=login-4f2a")
		if err != nil {
			answer <- err.Error()
			return
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		answer <- res.Status + ": " + string(body)
	}()
	// The phone confirms; the app's back end publishes once the page waits.
	for {
		if info, err := hub.ChannelInfo(context.Background(), "login-4f2a"); err == nil && info.Subscribers == 1 {
			break
		}
		runtime.Gosched()
	}
	hub.Publish(context.Background(), "login-4f2a", &push.Message{Data: []byte("logged in")})
	fmt.Println(<-answer)
	// Output: 200 OK: logged in
}

// The publisher on a listener of its own, for the back end only (an
// internal port or a unix socket), served by a Server: the Hub reads a
// kept-alive publisher's requests itself, without net/http's per-request
// work. Subscribers stay on the app's own server, behind its middleware.
func ExampleServer() {
	hub := push.New(push.Options{
		AuthorizePublish: func(r *http.Request, channel string) error {
			if r.Header.Get("Authorization") != "Bearer back-end" {
				return errors.New("publishers must authenticate")
			}
			return nil
		},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0") // internal
	if err != nil {
		panic(err)
	}
	srv := &push.Server{Hub: hub, PublishPath: "/pub"}
	go srv.Serve(ln)
	defer srv.Close()
	defer hub.Shutdown(context.Background())

	client := &http.Client{} // keeps its connection alive between requests
	for i, auth := range []string{"Bearer back-end", "Bearer back-end", "Bearer guess"} {
		req, _ := http.NewRequest("POST", "http://"+ln.Addr().String()+"/pub?id=dashboard",
			strings.NewReader("tick "+strconv.Itoa(i)))
		req.Header.Set("Authorization", auth)
		res, err := client.Do(req)
		if err != nil {
			panic(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		fmt.Println(res.Status)
	}
	// Output:
	// 202 Accepted
	// 202 Accepted
	// 403 Forbidden
}
