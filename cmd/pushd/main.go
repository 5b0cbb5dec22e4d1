package main

import (
	"net/http"

	"github.com/pushhub/push"
)

func main() {
	h := push.New(push.Options{})
	mux := http.NewServeMux()
	mux.Handle("/pub", h.PublishHandler())
	mux.Handle("/sub", h.SubscribeHandler())
	http.ListenAndServe("localhost:8080", mux)
}
