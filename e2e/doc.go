// Package e2e holds the end-to-end tests of push in a real browser: headless
// Chromium loads NchanSubscriber.js (the npm package nchan, pinned in
// package.json) in a page and receives messages from a push.Hub over
// WebSocket, EventSource and long-poll, same-origin and cross-origin, across
// a cut of the page's connections.
//
// It is a module of its own (github.com/pushhub/push/e2e) so that the push
// module does not depend on the browser driver.
//
// Dependency github.com/chromedp/chromedp: it drives Chromium over the
// DevTools protocol from Go, so that one `go test` command runs the browser
// tests too, with the same httptest servers, hub and assertions as the other
// tests, and no Node test runner next to it. Node/npm is used only to fetch
// the client library under test (`npm ci` in this directory).
//
// To run the tests: install Chromium (Debian: apt-get install chromium) and
// the client (cd e2e && npm ci), then from the repository root
// `go test ./e2e/...`. Without them the tests skip, unless CI=true, where
// they fail. CHROMIUM names another browser binary.
package e2e
