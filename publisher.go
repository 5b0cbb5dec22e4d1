package push

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const publisherAllow = "GET, POST, PUT, DELETE, OPTIONS"

// PublishHandler returns the publisher endpoint (spec P1-P8): POST publishes
// the body to the channel, PUT creates it (or publishes, with PutPublishes),
// GET describes it, DELETE deletes it and ends its subscribers. Every 2xx
// answer carries the channel info, as plain text or in the JSON, XML or
// YAML form the Accept header names. A WebSocket upgrade (GET) opens a
// publishing connection: every frame the client sends is published as one
// message (binary frames as application/octet-stream) and answered with a
// text frame holding the channel info; Hub.Shutdown does not close these
// connections, the next publish on them fails. Mount it where only trusted
// publishers can reach it, or set Options.AuthorizePublish.
func (h *Hub) PublishHandler() http.Handler { return http.HandlerFunc(h.servePublish) }

func (h *Hub) servePublish(w http.ResponseWriter, r *http.Request) {
	if h.takeOver(w, r) {
		return
	}
	h.servePublishRequest(w, r)
}

// servePublishRequest answers one publisher request, read by net/http or
// by a directConn.
func (h *Hub) servePublishRequest(w http.ResponseWriter, r *http.Request) {
	cors := h.checkOrigin(r)
	if cors == originRefused {
		writeText(w, http.StatusForbidden, "Origin not allowed.")
		return
	}
	if cors == originAllowed {
		setCORS(w, r, "")
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete:
	case http.MethodOptions:
		w.Header().Set("Allow", publisherAllow)
		w.Header().Set("Access-Control-Allow-Methods", publisherAllow)
		w.Header().Set("Access-Control-Allow-Headers", "Content-Type, X-EventSource-Event, Accept")
		w.WriteHeader(http.StatusOK)
		return
	default:
		w.Header().Set("Allow", publisherAllow)
		writeText(w, http.StatusMethodNotAllowed, "Method not allowed: use "+publisherAllow+".")
		return
	}
	callback, ok := queryValue(r.URL.RawQuery, "callback")
	if ok && !validCallback(callback) {
		writeText(w, http.StatusBadRequest, "Invalid JSONP callback name.")
		return
	}
	ids, err := h.channelIDs(r)
	if err == nil && len(ids) > 1 {
		err = &HTTPError{StatusCode: http.StatusBadRequest, Message: "Publish to one channel at a time."}
	}
	if err == nil && h.opts.AuthorizePublish != nil {
		if aerr := h.opts.AuthorizePublish(r, ids[0]); aerr != nil {
			err = authError(aerr)
		}
	}
	if err != nil {
		h.answerPublisher(w, r, callback, 0, ChannelInfo{}, err)
		return
	}
	channel := ids[0]
	if r.Method == http.MethodGet && isWebSocket(r) {
		h.servePublishWebSocket(w, r, channel)
		return
	}
	ctx := r.Context()
	var info ChannelInfo
	status := http.StatusOK
	switch {
	case r.Method == http.MethodPost || (r.Method == http.MethodPut && h.opts.PutPublishes):
		var msg *Message
		if msg, err = h.readMessage(w, r); err == nil {
			if _, info, err = h.publish(ctx, channel, msg); err == nil {
				status = http.StatusAccepted
				if info.Subscribers > 0 {
					status = http.StatusCreated
				}
			}
		}
	case r.Method == http.MethodPut:
		info, err = h.store.CreateChannel(ctx, channel, h.cfg)
	case r.Method == http.MethodDelete:
		info, err = h.store.DeleteChannel(ctx, channel)
	default: // GET, HEAD
		info, err = h.store.ChannelInfo(ctx, channel)
	}
	h.answerPublisher(w, r, callback, status, info, err)
}

// readMessage reads the request body as a message, enforcing MaxMessageSize.
func (h *Hub) readMessage(w http.ResponseWriter, r *http.Request) (*Message, error) {
	max := h.opts.MaxMessageSize
	tooLarge := func() error {
		return &HTTPError{StatusCode: http.StatusRequestEntityTooLarge,
			Message: "Message too large: the limit is " + strconv.FormatInt(max, 10) + " bytes."}
	}
	if r.ContentLength > max {
		return nil, tooLarge()
	}
	event := headerValue(r.Header, "X-Eventsource-Event")
	if strings.ContainsAny(event, "\r\n") {
		return nil, &HTTPError{StatusCode: http.StatusBadRequest, Message: "X-EventSource-Event must be one line."}
	}
	var data []byte
	var err error
	if r.ContentLength > 0 {
		// Known length: one exact allocation. bytes.Buffer.ReadFrom would
		// grow to at least 512 bytes, which the stored message then keeps.
		data = make([]byte, r.ContentLength)
		_, err = io.ReadFull(r.Body, data)
	} else {
		var buf bytes.Buffer
		_, err = buf.ReadFrom(http.MaxBytesReader(w, r.Body, max))
		data = buf.Bytes()
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge()
		}
		return nil, &HTTPError{StatusCode: http.StatusBadRequest, Message: "Reading the message body failed: " + err.Error()}
	}
	msg := &Message{Data: data, EventName: event, handedOver: true}
	if ct, ok := r.Header["Content-Type"]; ok && len(ct) > 0 {
		msg.ContentType = ct[0]
	}
	if msg.Data == nil {
		msg.Data = []byte{}
	}
	return msg, nil
}

// answerPublisher writes the publisher's answer: the channel info on
// success, an error otherwise (404 with an empty body for a channel that
// does not exist), all as JSONP when callback is set.
func (h *Hub) answerPublisher(w http.ResponseWriter, r *http.Request, callback string, status int, info ChannelInfo, err error) {
	if callback != "" {
		var body []byte
		switch {
		case errors.Is(err, ErrChannelNotFound): // 404 as without JSONP (P3)
			body = jsonpError(callback, http.StatusNotFound, http.StatusText(http.StatusNotFound))
		case err != nil:
			body = jsonpError(callback, statusOf(err), errorText(err))
		default:
			body = jsonpWrap(callback, formatInfo(info, infoJSON, time.Now()))
		}
		writeJSONP(w, body)
		return
	}
	if err != nil {
		if errors.Is(err, ErrChannelNotFound) {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if statusOf(err) >= 500 {
			h.log.Warn("push: publisher request failed", "method", r.Method, "error", err)
		}
		writeError(w, err)
		return
	}
	format, mediaType := negotiateInfo(headerValue(r.Header, "Accept"))
	body := formatInfo(info, format, time.Now())
	hd := w.Header()
	hd["Content-Type"] = infoContentType[mediaType]
	if r.Method == http.MethodHead { // else the server counts the body
		hd.Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// errorText is the text an error is answered with.
func errorText(err error) string {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Message
	}
	if s := statusOf(err); s != http.StatusBadRequest && s != http.StatusForbidden {
		return http.StatusText(s)
	}
	return err.Error()
}
