package push

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Options configure a Hub. The zero value is a working configuration: every
// field documents what its zero value means.
type Options struct {
	// Store keeps channels and messages. Nil: a new MemoryStore that the Hub
	// owns and closes on Shutdown. A Store passed in is not closed by the Hub.
	Store Store

	// MessageBufferLength is the most messages kept per channel (B1).
	// 0 means 10; a negative value keeps none (messages reach only the
	// subscribers connected at the time).
	MessageBufferLength int

	// MessageTTL is how long a message stays available (B2). 0 means one
	// hour; a negative value means forever.
	MessageTTL time.Duration

	// ChannelTimeout is how long a channel with no subscribers and no
	// messages is kept before it is forgotten and its memory returned (B3).
	// 0 means five minutes; a negative value means forever.
	ChannelTimeout time.Duration

	// SubscriberTimeout is how long a long-poll request is held waiting for
	// a message before it is answered with TimeoutStatus (S3); a WebSocket,
	// EventSource or HTTP stream that gets no message for this long is
	// ended (close 1000 "408 Request Timeout", ":408: Request Timeout").
	// 0 means forever.
	SubscriberTimeout time.Duration

	// TimeoutStatus is the status of a timed-out long-poll: 0 means 304 Not
	// Modified (NHPM); http.StatusRequestTimeout (408) is Nchan's choice.
	TimeoutStatus int

	// IntervalPoll answers a long-poll at once with 304 when no newer
	// message exists, instead of holding it (S3). False: hold.
	IntervalPoll bool

	// Concurrency says what happens when several subscribers ask for one
	// channel (S4). Zero: Broadcast.
	Concurrency Concurrency

	// MaxSubscribersPerChannel refuses further subscribers of a channel with
	// 403 once it has this many (S4). 0 means unlimited.
	MaxSubscribersPerChannel int

	// AuthorizedChannelsOnly refuses (403) subscribers of a channel that was
	// never published to or created with PUT (S5). False: subscribing
	// creates the channel.
	AuthorizedChannelsOnly bool

	// PutPublishes makes PUT on the publisher publish exactly like POST (P4).
	// False: PUT creates the channel and publishes nothing.
	PutPublishes bool

	// MaxMessageSize is the largest message body the publisher accepts; a
	// larger one gets 413 (P8). 0 means 1 MiB.
	MaxMessageSize int64

	// MaxChannelIDLength is the longest channel id accepted, in bytes (P7).
	// 0 means 1024.
	MaxChannelIDLength int

	// ChannelIDs extracts the channel ids from a subscriber request
	// (SubscribeHandler). Nil: every "id" query argument (?id=a&id=b).
	// Returning no ids answers 404 "No channel id provided."; a returned
	// error answers 400 with its text (or the status of an *HTTPError).
	// It does not steer the publisher: see PublisherChannelIDs.
	ChannelIDs func(r *http.Request) ([]string, error)

	// PublisherChannelIDs extracts the channel ids from a publisher request
	// (PublishHandler), answered as for ChannelIDs. Nil: every "id" query
	// argument, whatever ChannelIDs does, so subscribers may take their
	// channel from a route (/events/{room}) while the publisher stays at
	// /pub?id=room. An app that names channels the same way on both sets
	// both fields to one function.
	PublisherChannelIDs func(r *http.Request) ([]string, error)

	// AllowedOrigins lists the origins allowed to make cross-origin requests
	// (S11), as "https://example.com" or patterns like "https://*.example.com";
	// "*" allows every origin. Empty: CORS is off and requests from other
	// origins (an Origin header naming another host) get 403.
	AllowedOrigins []string

	// AuthorizePublish, if set, is called before every publisher request
	// (GET, POST, PUT, DELETE) with the channel id. A non-nil error refuses
	// the request: with the status of an *HTTPError it carries, else 403
	// with the error's text. Nil: every publisher request is allowed (mount
	// the publisher where only your back end can reach it).
	AuthorizePublish func(r *http.Request, channel string) error

	// AuthorizeSubscribe, if set, is called before every subscriber request
	// with its channel ids; errors are answered as for AuthorizePublish. Nil:
	// every subscriber is allowed.
	AuthorizeSubscribe func(r *http.Request, channels []string) error

	// OnSubscribe, if set, is called when a subscriber is admitted: a
	// WebSocket, EventSource or HTTP stream when it starts, a long-poll
	// subscriber at its first request (see LongPollGrace). It is called in
	// the request's goroutine and must not block: queue the event
	// (pushevents does). Nil: no subscribe events.
	OnSubscribe func(SubscriberEvent)

	// OnUnsubscribe, if set, is called when a subscriber is gone: a stream
	// when it ends, a long-poll subscriber when it has not come back within
	// LongPollGrace of its last answer, with the same Key as its OnSubscribe
	// event, after it. For long-poll subscribers it is called with a lock
	// of the Hub's held (their events stay in order): it must not block
	// nor call the Hub; queue the event (pushevents does). Nil: no
	// unsubscribe events.
	OnUnsubscribe func(SubscriberEvent)

	// LongPollGrace is how long after its last answer a long-poll
	// subscriber has to send its next request before it counts as gone
	// (OnUnsubscribe, Reason "left"). A request continues a subscriber when
	// it carries the position of that subscriber's last answer (its
	// Etag/Last-Modified or ?last_event_id=) for the same channels, or with
	// SubscriberCookie, the same cookie value. 0 means DefaultLongPollGrace
	// (10s): longer than a client's re-poll delay, including an
	// interval-poll client's interval.
	LongPollGrace time.Duration

	// SubscriberCookie names a cookie whose value is a subscriber's Key in
	// OnSubscribe and OnUnsubscribe events (a session cookie, say), and
	// tells long-poll subscribers apart: requests with the same value for
	// the same channels are one subscriber. Empty, or the cookie missing:
	// a random Key, and long-poll subscribers are followed by their
	// position (subscribers at the same position and address are told
	// apart only by count).
	SubscriberCookie string

	// Logger receives the Hub's logs. Nil: slog.Default().
	Logger *slog.Logger

	// Transports selects the transports SubscribeHandler serves (S1). Zero:
	// all of them. A request for a disabled EventSource or HTTP stream falls
	// through to the next transport in the order of S1 (in the end
	// long-poll); a WebSocket upgrade or JSONP request for a disabled
	// transport, or a long-poll when long-poll is disabled, gets 403.
	Transports Transport

	// PingInterval is how often idle WebSocket subscribers get a ping frame
	// (a peer that has not answered by the next ping is dropped) and idle
	// EventSource subscribers a comment line, so proxies do not cut idle
	// streams. 0 means DefaultPingInterval (30s, below nginx's 60s
	// proxy_read_timeout); a negative value sends no pings.
	PingInterval time.Duration

	// WriteTimeout bounds every write to a subscriber (one long-poll answer,
	// one batch of stream messages, one batch of WebSocket frames; a
	// WebSocket write gets between half of it and all of it, as its deadline
	// is renewed only when half spent). A subscriber that does not drain its
	// connection in time is disconnected; it can resume from its last id. 0 means DefaultWriteTimeout (10s); negative: no
	// deadline (not recommended: a stuck client then holds a goroutine).
	WriteTimeout time.Duration

	// LongPollCatchUp answers a long-poll that finds more than one message
	// waiting with all of them at once (up to 100 messages or 1 MiB), as one
	// multipart/mixed answer whose Last-Modified/Etag are those of the last
	// part, so a long-poll client keeps up with a fast channel. NchanSubscriber.js
	// parses it. False: one message per answer (NHPM).
	LongPollCatchUp bool

	// RestyPush speaks OpenResty resty.push's dialect to its clients, so
	// their pages and back ends work unchanged (P10): a publisher POST
	// whose body is a form (application/x-www-form-urlencoded) publishes
	// its field "data" as a text/plain message, and a POST that is a form
	// or has ?callback= is answered {"status":1} (callback({"status":1});
	// with ?callback=), Content-Type text/javascript;charset=UTF-8, or on
	// failure {"status":0,"tips":"why"}. A JSONP subscriber gets
	// callback("<the message as a JSON string>"); and on SubscriberTimeout
	// callback("{\"status\":1,\"tips\":\"timeout\"}"); and one that names no
	// position waits for the next message instead of starting at the
	// oldest buffered one. False: push's own protocol (S9, P1-P9).
	RestyPush bool

	// WebSocketReadLimit is the largest WebSocket message read from a
	// client, in bytes; a larger one closes the connection with 1009. 0
	// means MaxMessageSize.
	WebSocketReadLimit int64

	// RequestTimeout bounds how long a client may take to send a request.
	// PublishHandler reads a body within it (the http.Server's own
	// ReadTimeout, if sooner, applies instead); a Server gives a request's
	// header that long too, and a request the Hub reads itself that long
	// from its first byte. A body that does not arrive in time is answered
	// 408 Request Timeout and its connection closed; a late header closes
	// the connection, as net/http does. 0 means DefaultRequestTimeout;
	// negative: no limit.
	RequestTimeout time.Duration

	// DisableIOURing keeps the Hub from using io_uring(7) on Linux, where
	// it otherwise serves a Server's kept-alive publishers and makes a
	// fan-out's writes in batches through it when the kernel allows.
	// Without io_uring the Hub behaves the same, at more CPU per publish.
	// Set it under a seccomp filter that kills the process on
	// io_uring_setup(2) instead of failing the call.
	DisableIOURing bool
}

// Transport is a set of subscriber transports, for Options.Transports.
// The zero value means every transport.
type Transport uint

// The subscriber transports of S1.
const (
	TransportLongPoll    Transport = 1 << iota // long-poll and interval-poll (S2, S3)
	TransportJSONP                             // ?callback= long-poll (S9)
	TransportWebSocket                         // plain and ws+meta.nchan (S7)
	TransportEventSource                       // text/event-stream (S6)
	TransportMultipart                         // multipart/mixed HTTP stream (S8)
	TransportChunked                           // TE: chunked newline stream (S8)

	// AllTransports is every transport.
	AllTransports = TransportLongPoll | TransportJSONP | TransportWebSocket |
		TransportEventSource | TransportMultipart | TransportChunked
)

// transportNames are the names Transport.String and ParseTransports use.
var transportNames = []struct {
	t    Transport
	name string
}{
	{TransportWebSocket, "websocket"},
	{TransportEventSource, "eventsource"},
	{TransportLongPoll, "longpoll"},
	{TransportJSONP, "jsonp"},
	{TransportMultipart, "multipart"},
	{TransportChunked, "chunked"},
}

// String returns the transports as a comma-separated list of names
// ("websocket,eventsource,longpoll,jsonp,multipart,chunked"); the zero
// value is "all".
func (t Transport) String() string {
	if t == 0 || t&AllTransports == AllTransports {
		return "all"
	}
	var names []string
	for _, n := range transportNames {
		if t&n.t != 0 {
			names = append(names, n.name)
		}
	}
	return strings.Join(names, ",")
}

// ParseTransports reads a comma-separated list of transport names (as
// Transport.String writes them; "all" for every transport).
func ParseTransports(s string) (Transport, error) {
	var t Transport
	for _, f := range strings.Split(s, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		if f == "" {
			continue
		}
		if f == "all" {
			t |= AllTransports
			continue
		}
		found := false
		for _, n := range transportNames {
			if n.name == f {
				t |= n.t
				found = true
			}
		}
		if !found {
			return 0, fmt.Errorf("push: unknown transport %q: use websocket, eventsource, longpoll, jsonp, multipart, chunked or all", f)
		}
	}
	if t == 0 {
		return 0, errors.New("push: no transport named: use websocket, eventsource, longpoll, jsonp, multipart, chunked or all")
	}
	return t, nil
}

// Concurrency is the policy for several subscribers of one channel (S4).
// It applies to the subscribers of one Hub.
type Concurrency int

const (
	// Broadcast: every subscriber gets every message (the default).
	Broadcast Concurrency = iota
	// First: while a subscriber is connected, a new one is refused with 409.
	First
	// Last: a new subscriber ends the earlier ones with 409 Conflict.
	Last
)

// String returns "broadcast", "first" or "last".
func (c Concurrency) String() string {
	switch c {
	case First:
		return "first"
	case Last:
		return "last"
	}
	return "broadcast"
}

// Defaults of the Options fields whose zero value stands for a default.
const (
	DefaultMessageBufferLength = 10
	DefaultMessageTTL          = time.Hour
	DefaultChannelTimeout      = 5 * time.Minute
	DefaultMaxMessageSize      = 1 << 20
	DefaultMaxChannelIDLength  = 1024
	DefaultPingInterval        = 30 * time.Second
	DefaultWriteTimeout        = 10 * time.Second
	DefaultRequestTimeout      = 30 * time.Second
	// MaxChannelsPerSubscription is the most channels one subscription may name.
	MaxChannelsPerSubscription = 255
)

// resolve returns o with defaults filled in and the store configuration.
func (o Options) resolve() (Options, ChannelConfig) {
	var cfg ChannelConfig
	switch {
	case o.MessageBufferLength == 0:
		cfg.BufferLength = DefaultMessageBufferLength
	case o.MessageBufferLength > 0:
		cfg.BufferLength = o.MessageBufferLength
	}
	switch {
	case o.MessageTTL == 0:
		cfg.MessageTTL = DefaultMessageTTL
	case o.MessageTTL > 0:
		cfg.MessageTTL = o.MessageTTL
	}
	switch {
	case o.ChannelTimeout == 0:
		cfg.ChannelTimeout = DefaultChannelTimeout
	case o.ChannelTimeout > 0:
		cfg.ChannelTimeout = o.ChannelTimeout
	}
	if o.TimeoutStatus == 0 {
		o.TimeoutStatus = http.StatusNotModified
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	if o.MaxChannelIDLength <= 0 {
		o.MaxChannelIDLength = DefaultMaxChannelIDLength
	}
	if o.Transports == 0 {
		o.Transports = AllTransports
	}
	if o.PingInterval == 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.WebSocketReadLimit <= 0 {
		o.WebSocketReadLimit = o.MaxMessageSize
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, cfg
}

// subscriptionEndKey is the context key of the *time.Time an
// AuthorizeSubscribe hook sets with EndSubscriptionAt.
type subscriptionEndKey struct{}

// EndSubscriptionAt, called by an AuthorizeSubscribe hook with the request
// it was given, ends the subscription the hook admits at t (a token's
// expiry, say). A WebSocket, EventSource or HTTP stream ends at t with the
// transport's ending for 401 Unauthorized (WebSocket close 1008 "401
// Unauthorized", EventSource ":401: Unauthorized"), so the client gets a new
// authorization before it reconnects; a long-poll still held at t is
// answered as a timeout (TimeoutStatus), and its next request goes through
// the hook again. Called by an AuthorizePublish hook for a publisher's
// WebSocket, it closes that connection at t the same way (close 1008 "401
// Unauthorized"). Called twice, the earlier time wins. Outside those hooks
// it does nothing.
func EndSubscriptionAt(r *http.Request, t time.Time) {
	if p, ok := r.Context().Value(subscriptionEndKey{}).(*time.Time); ok && (p.IsZero() || t.Before(*p)) {
		*p = t
	}
}
