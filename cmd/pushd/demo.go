package main

import (
	"net/http"
)

// demoHandler serves pushd's page at "/" (that path only; 404 elsewhere).
//
// Seam: the demo page (issue 5) replaces this file; for now it is a
// placeholder that says how to use the server.
func demoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(demoPage))
	})
}

const demoPage = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>pushd</title></head>
<body>
<h1>pushd</h1>
<p>This is a push server. Publish with <code>curl -d hello 'http://HOST/pub?id=CHANNEL'</code>,
subscribe with <code>curl -i 'http://HOST/sub?id=CHANNEL'</code>, see the counters at
<a href="/status">/status</a>.</p>
<p>The interactive demo page is not built yet.</p>
</body>
</html>
`
