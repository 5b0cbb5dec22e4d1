package main

import (
	"bytes"
	_ "embed"
	"net/http"

	"github.com/pushhub/push/pushjs"
)

// The demo page.
//
//go:embed demo/index.html
var demoHTML []byte

// demoPage is demoHTML with push.js (package pushjs) inlined, so that the
// page is one response at "/" and pushd serves no other path of its own.
var demoPage = inlinePushJS(demoHTML)

// inlinePushJS returns the page html with push.js inlined in place of its
// <script data-inline="push.js"></script> element.
func inlinePushJS(html []byte) []byte {
	return bytes.Replace(html, []byte(`<script data-inline="push.js"></script>`),
		append(append([]byte("<script>\n"), pushjs.Script()...), "</script>"...), 1)
}

// demoHandler serves pushd's demo page at "/" (that path only; 404
// elsewhere): a publish box that POSTs to /pub?id=CHANNEL and a live list of
// the messages of /sub?id=CHANNEL, over the transport the visitor picks.
func demoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "Method not allowed.", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(demoPage)
	})
}
