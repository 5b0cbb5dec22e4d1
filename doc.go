// Package push is an embeddable HTTP pub/sub push ("Comet") server: mount its
// publisher and subscriber handlers in any Go web app, and servers push
// messages to browsers and devices over long-poll, WebSocket, EventSource,
// HTTP streams (multipart/mixed or chunked) and JSONP.
//
// It speaks the NHPM push protocol as Nchan extended it, so existing clients
// (and Nchan's browser client, NchanSubscriber.js) keep working: POST
// /pub?id=X publishes, GET /sub?id=X long-polls; each message answers with
// Last-Modified and Etag, which the client sends back as If-Modified-Since and
// If-None-Match to get the next message, never a duplicate and never a gap
// while it is still buffered. Streaming transports carry the same ids.
//
// A Hub owns a Store that keeps a buffer of recent messages per channel and
// assigns message ids: the in-memory MemoryStore by default, or the Redis
// store of package github.com/pushhub/push/redisstore, with which Hubs on
// several machines serve one set of channels. Every subscriber is a cursor
// over those buffers (a Subscription); a publish only wakes the subscribers,
// which then read what is newer than their position, so resuming and live
// delivery are one path and a slow subscriber delays no one. Go code uses the
// same operations directly: Hub.Publish, Hub.Subscribe, Hub.ChannelInfo,
// Hub.DeleteChannel, Hub.Stats and Hub.Shutdown.
//
// An idle subscriber is cheap: a WebSocket, EventSource or HTTP stream takes
// its connection over from net/http and waits with no goroutine but a small
// reader, and a publish writes to it directly (from the publishing goroutine
// for a few subscribers, from a sweep that coalesces publishes for many).
// Long-polls do the same on connections accepted through Hub.Listener,
// which gives each connection back to the app's http.Server after the
// answer. Mounted handlers are plain http.Handlers: every request goes
// through the app's handler chain. A Server, which owns its listeners whole,
// also has the Hub read kept-alive publishers' and long-polls' requests
// itself, without net/http's per-request work. The package's code needs
// only the standard library.
//
// Codes such as S1 or P7 in these docs name clauses of the protocol the
// package implements; docs/protocol.md in the repository lists them.
//
// The browser script of package github.com/pushhub/push/pushjs subscribes
// over any of the transports; cmd/pushd is a standalone server built on this
// package.
package push
