// Package pushjs serves push.js, a small dependency-free browser subscriber
// for push servers (the NHPM/Nchan subscriber protocol): long-poll with
// If-Modified-Since/If-None-Match (reading catch-up answers), EventSource
// and WebSocket (ws+meta.nchan), each resuming from the last id it saw.
// Mount Handler at a path of your app and load it with a script tag; the
// script's first lines document its API (pushSubscribe).
package pushjs

import (
	_ "embed"
	"net/http"
	"strconv"
)

//go:embed push.js
var script []byte

// Script returns the source of push.js (a copy; changing it changes nothing
// served).
func Script() []byte { return append([]byte(nil), script...) }

// Handler serves push.js to GET and HEAD requests, whatever the path.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "Method not allowed: use GET.", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("Content-Length", strconv.Itoa(len(script)))
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		if r.Method == http.MethodGet {
			w.Write(script)
		}
	})
}
