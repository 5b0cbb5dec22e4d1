package push

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
)

const subscriberAllow = "GET, OPTIONS"

// missedHeader is the response header that says messages were missed.
const missedHeader = "X-Push-Missed"

// SubscribeHandler returns the subscriber endpoint. It answers GET requests
// for one or more channels (?id=a&id=b, or Options.ChannelIDs), starting
// after the position the request carries (If-Modified-Since/If-None-Match,
// Etag, Last-Event-ID or ?last_event_id=). The transport is chosen per
// request, in this order (S1): a WebSocket upgrade; Accept:
// text/event-stream (EventSource); ?callback= (JSONP); Accept:
// multipart/mixed (multipart stream); TE: chunked (newline-separated
// stream); otherwise long-poll. Options.Transports can disable any of them.
//
// # Several channels
//
// A subscription to n channels (at most 255) has one compound id,
// "T:E1,E2,...,En": one entry per channel in request order, each "G" (tag
// G at second T), "t.G" (second t, tag G), or "-" (no position yet), the
// entry of the channel that produced the message in brackets, e.g.
// "1700000000:[3],-". It travels in every id carrier: Last-Modified (T) with
// Etag ("E1,...,En"), Etag or If-None-Match alone, Last-Event-ID,
// ?last_event_id=, the EventSource and ws+meta id lines and the JSONP "id".
// Sending it back resumes every channel after its entry. Deleting any of
// the channels ends the subscription.
//
// # Missed messages
//
// When a subscriber resumes from a position older than the oldest message
// still buffered, or falls so far behind that messages were dropped before
// it read them, it is told instead of silently skipping ahead:
//
//   - long-poll answers (not JSONP) and the response headers of the
//     multipart and chunked streams: the header "X-Push-Missed: true"
//     (exposed to allowed cross-origin scripts);
//   - a multipart stream that falls behind later: the header
//     "X-Push-Missed: true" in the first part after the gap;
//   - EventSource: an event named "missed" with empty data and no id,
//     before the first message after the gap (EventSource.onmessage, and so
//     NchanSubscriber.js, ignores named events; listen with
//     addEventListener("missed", ...));
//   - WebSocket with ws+meta.nchan: a frame "id: <position before the
//     gap>\ncontent-type: application/x-push-missed\n\n" with no payload,
//     before the first message after the gap (NchanSubscriber.js passes it
//     on as an empty message whose meta["content-type"] is
//     application/x-push-missed); plain WebSocket frames carry payloads
//     only and get no signal;
//   - Go: Subscription.Missed.
func (h *Hub) SubscribeHandler() http.Handler { return http.HandlerFunc(h.serveSubscribe) }

func (h *Hub) serveSubscribe(w http.ResponseWriter, r *http.Request) {
	if h.takeOver(w, r) {
		return
	}
	h.serveSubscribeRequest(w, r)
}

// serveSubscribeRequest answers one subscriber request, read by net/http
// or by the Hub's own reader (internal/h1).
func (h *Hub) serveSubscribeRequest(w http.ResponseWriter, r *http.Request) {
	cors := h.checkOrigin(r)
	if cors == originRefused {
		writeText(w, http.StatusForbidden, "Origin not allowed.")
		return
	}
	if cors == originAllowed {
		setCORS(w, r, "Last-Modified, Etag, Content-Type, X-Push-Missed")
	}
	switch r.Method {
	case http.MethodGet:
	case http.MethodOptions:
		hd := w.Header()
		hd.Set("Allow", subscriberAllow)
		hd.Set("Access-Control-Allow-Methods", subscriberAllow)
		hd.Set("Access-Control-Allow-Headers", "If-Modified-Since, If-None-Match, Etag, Last-Event-ID, Content-Type")
		hd.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusOK)
		return
	default:
		w.Header().Set("Allow", subscriberAllow)
		writeText(w, http.StatusMethodNotAllowed, "Method not allowed: subscribers use GET.")
		return
	}

	transport := h.pickTransport(r)
	if transport == 0 {
		writeText(w, http.StatusForbidden, "Transport not enabled on this server.")
		return
	}
	callback := ""
	if transport == TransportJSONP {
		callback, _ = queryValue(r.URL.RawQuery, "callback")
		if !validCallback(callback) {
			writeText(w, http.StatusBadRequest, "Invalid JSONP callback name.")
			return
		}
	}
	fail := func(err error) {
		if callback != "" {
			writeJSONP(w, jsonpError(callback, statusOf(err), errorText(err)))
			return
		}
		writeError(w, err)
	}
	channels, err := h.channelIDs(r, false)
	if err != nil {
		fail(err)
		return
	}
	pos, err := requestPosition(r, len(channels))
	if err != nil {
		fail(err)
		return
	}
	var until time.Time // EndSubscriptionAt
	if h.opts.AuthorizeSubscribe != nil {
		ar := r.WithContext(context.WithValue(r.Context(), subscriptionEndKey{}, &until))
		if err := h.opts.AuthorizeSubscribe(ar, channels); err != nil {
			fail(authError(err))
			return
		}
		if !until.IsZero() && !time.Now().Before(until) {
			fail(errAuthorizationExpired)
			return
		}
	}
	if h.opts.RestyPush && transport == TransportJSONP && pos.isZero() {
		// After the authorization: the store is read for admitted
		// subscribers only.
		if pos, err = h.newestPosition(r.Context(), channels); err != nil {
			fail(err)
			return
		}
	}
	sub, err := h.subscribe(r.Context(), channels, pos)
	if err != nil {
		if errors.Is(err, ErrHubClosed) && transport == TransportEventSource {
			// A browser's EventSource gives up for good on a non-200
			// answer; an ended 200 stream makes it reconnect (to another
			// server, or this one restarted) with its Last-Event-ID.
			w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
			w.WriteHeader(http.StatusOK)
			w.Write([]byte("retry: 1000\n:503: Service Unavailable\n\n"))
			return
		}
		if storeFailed(err) {
			h.storeErrors.Add(1)
		}
		if statusOf(err) >= 500 && !errors.Is(err, ErrHubClosed) {
			h.log.Warn("push: subscribe failed", "channels", channels, "error", err)
		}
		fail(err)
		return
	}
	sub.joined(transport, r)
	sub.until = until
	if h.presence != nil {
		h.presence.subscribed(r, transport, sub)
	}
	switch transport { // the streaming transports own sub
	case TransportWebSocket:
		h.serveWebSocket(w, r, sub)
	case TransportEventSource:
		h.serveEventSource(w, r, sub)
	case TransportMultipart:
		h.serveMultipart(w, r, sub)
	case TransportChunked:
		h.serveChunked(w, r, sub)
	default:
		h.serveLongPoll(w, r, sub, callback)
	}
}

// pickTransport chooses the transport for r among the enabled ones (S1), or
// returns 0 when the request gets 403.
func (h *Hub) pickTransport(r *http.Request) Transport {
	on := h.opts.Transports
	if isWebSocket(r) {
		return on & TransportWebSocket
	}
	accept := r.Header.Values("Accept")
	if on&TransportEventSource != 0 && acceptsMedia(accept, "text/event-stream") {
		return TransportEventSource
	}
	if _, ok := queryValue(r.URL.RawQuery, "callback"); ok {
		return on & TransportJSONP
	}
	if on&TransportMultipart != 0 && acceptsMedia(accept, "multipart/mixed") {
		return TransportMultipart
	}
	if on&TransportChunked != 0 && teChunked(r.Header.Values("TE")) {
		return TransportChunked
	}
	return on & TransportLongPoll
}

// acceptsMedia reports whether the Accept values name media type mt with
// a quality above 0.
func acceptsMedia(accept []string, mt string) bool {
	return listHas(accept, mt)
}

// teChunked reports whether TE names chunked with a quality above 0.
func teChunked(te []string) bool { return listHas(te, "chunked") }

// listHas reports whether a comma-separated header list holds item (its
// parameters ignored) with q > 0.
func listHas(values []string, item string) bool {
	for _, v := range values {
		for _, e := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(e, ";")
			if !strings.EqualFold(strings.TrimSpace(name), item) {
				continue
			}
			zero := false
			for _, p := range strings.Split(params, ";") {
				k, val, _ := strings.Cut(p, "=")
				if strings.EqualFold(strings.TrimSpace(k), "q") {
					val = strings.TrimSpace(val)
					zero = strings.Trim(val, "0.") == "" && val != ""
				}
			}
			if !zero {
				return true
			}
		}
	}
	return false
}

// setCORS marks an answer to an allowed cross-origin request (S11).
func setCORS(w http.ResponseWriter, r *http.Request, expose string) {
	hd := w.Header()
	hd.Set("Access-Control-Allow-Origin", r.Header.Get("Origin"))
	hd.Set("Access-Control-Allow-Credentials", "true")
	hd.Add("Vary", "Origin")
	if expose != "" {
		hd.Set("Access-Control-Expose-Headers", expose)
	}
}
