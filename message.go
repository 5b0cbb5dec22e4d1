package push

import (
	"sync/atomic"
	"time"
)

// A Message is one published payload. Publishers set Data, ContentType and
// EventName; the Store sets Channel, ID and Time when it stores the message.
// A stored message is shared by every subscriber that receives it and must
// not be modified.
type Message struct {
	// Channel is the channel the message was published to.
	Channel string
	// ID is assigned by the Store on publish (spec I1).
	ID MessageID
	// Time is the publish time as the Store saw it; ID.Time is its Unix seconds.
	Time time.Time
	// Data is the payload, byte for byte as published. It may be empty.
	Data []byte
	// ContentType is the publisher's Content-Type, or "" if it sent none.
	ContentType string
	// EventName is the EventSource event name (publisher header
	// X-EventSource-Event), or "".
	EventName string

	// frames caches the message encoded once per framing, shared read-only
	// by every subscriber of this process that needs it.
	frames [numFramings]atomic.Pointer[[]byte]

	// handedOver marks a message the Hub built from a publisher's request
	// and no one else holds: the memory store keeps this struct instead of
	// a copy.
	handedOver bool
}

// framing names one wire encoding of a message, for the encode-once cache.
type framing int

const (
	framingJSONP framing = iota
	framingEventSource
	framingWSFrame     // a plain WebSocket frame, header included
	framingWSMetaFrame // a ws+meta frame of a single-channel message
	framingMultipartPart
	framingEventSourceBody // without the id line, for compound ids
	framingWSMetaBody      // without the id line, for compound ids
	framingMultipartBody   // without Last-Modified/Etag, for compound ids
	framingLongPollPart    // a part of a long-poll catch-up answer, without its id
	framingLongPollPartID  // the same with Last-Modified and Etag (one channel)
	framingWSOpcode        // one byte: the WebSocket frame type (wsOpcode)
	numFramings
)

// encoded returns m encoded with f, building it at most once per message
// (concurrent first callers may both build it; one result wins and both are
// equal).
func (m *Message) encoded(f framing, build func(*Message) []byte) []byte {
	if p := m.frames[f].Load(); p != nil {
		return *p
	}
	b := build(m)
	if m.frames[f].CompareAndSwap(nil, &b) {
		return b
	}
	return *m.frames[f].Load()
}

// expired reports whether m is older than ttl at now (ttl <= 0: never).
func (m *Message) expired(ttl time.Duration, now time.Time) bool {
	return ttl > 0 && now.Sub(m.Time) >= ttl
}
