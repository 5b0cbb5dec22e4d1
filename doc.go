// Package push is an embeddable HTTP pub/sub push ("Comet") server: mount
// its publisher and subscriber handlers in any Go web app, and servers push
// messages to browsers and devices.
//
// It speaks the NHPM push protocol as Nchan extended it, so existing
// clients keep working: POST /pub?id=X publishes, GET /sub?id=X long-polls;
// each message answers with Last-Modified and Etag, which the client sends
// back as If-Modified-Since and If-None-Match to get the next message, never
// a duplicate and never a gap while it is still buffered.
//
// A Hub owns a Store (the in-memory MemoryStore by default) that keeps a
// buffer of recent messages per channel and assigns message ids. Every
// subscriber is a cursor over those buffers (a Subscription); a publish only
// wakes the subscribers, which then read what is newer than their position.
// Go code uses the same operations directly: Hub.Publish, Hub.Subscribe,
// Hub.ChannelInfo, Hub.DeleteChannel, Hub.Stats and Hub.Shutdown.
package push
