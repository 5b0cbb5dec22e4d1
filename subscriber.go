package push

import (
	"net/http"
)

const subscriberAllow = "GET, OPTIONS"

// SubscribeHandler returns the subscriber endpoint. It answers GET requests
// for one or more channels (?id=a&id=b, or Options.ChannelIDs), starting
// after the position the request carries (If-Modified-Since/If-None-Match,
// Etag, Last-Event-ID or ?last_event_id=), as a long-poll, or as JSONP with
// ?callback=name.
func (h *Hub) SubscribeHandler() http.Handler { return http.HandlerFunc(h.serveSubscribe) }

func (h *Hub) serveSubscribe(w http.ResponseWriter, r *http.Request) {
	cors := h.checkOrigin(r)
	if cors == originRefused {
		writeText(w, http.StatusForbidden, "Origin not allowed.")
		return
	}
	if cors == originAllowed {
		setCORS(w, r, "Last-Modified, Etag, Content-Type")
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

	callback := r.URL.Query().Get("callback")
	if _, ok := r.URL.Query()["callback"]; ok && !validCallback(callback) {
		writeText(w, http.StatusBadRequest, "Invalid JSONP callback name.")
		return
	}
	fail := func(err error) {
		if callback != "" {
			writeJSONP(w, jsonpError(callback, statusOf(err), errorText(err)))
			return
		}
		writeError(w, err)
	}
	channels, err := h.channelIDs(r)
	if err != nil {
		fail(err)
		return
	}
	pos, err := requestPosition(r, len(channels))
	if err != nil {
		fail(err)
		return
	}
	if h.opts.AuthorizeSubscribe != nil {
		if err := h.opts.AuthorizeSubscribe(r, channels); err != nil {
			fail(authError(err))
			return
		}
	}
	sub, err := h.subscribe(r.Context(), channels, pos)
	if err != nil {
		if statusOf(err) >= 500 {
			h.log.Warn("push: subscribe failed", "channels", channels, "error", err)
		}
		fail(err)
		return
	}
	defer sub.Close()
	h.serveLongPoll(w, r, sub, callback)
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
