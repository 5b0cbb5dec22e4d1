package push

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
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
// by the Hub's own reader (internal/h1).
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
	ids, err := h.channelIDs(r, true)
	if len(ids) > 1 {
		ids = uniqueIDs(ids) // each channel is authorized and published to once
	}
	publishes := r.Method == http.MethodPost || (r.Method == http.MethodPut && h.opts.PutPublishes)
	resty := h.opts.RestyPush && publishes && (callback != "" || isForm(r))
	if err == nil && len(ids) > 1 && (!publishes || isWebSocket(r)) {
		err = &HTTPError{StatusCode: http.StatusBadRequest,
			Message: "Name one channel: only a POST (publishing) may name several."}
	}
	var until time.Time // EndSubscriptionAt, for a publishing WebSocket
	if err == nil && h.opts.AuthorizePublish != nil {
		ar := r
		if r.Method == http.MethodGet && isWebSocket(r) {
			ar = r.WithContext(context.WithValue(r.Context(), subscriptionEndKey{}, &until))
		}
		for _, id := range ids {
			if aerr := h.opts.AuthorizePublish(ar, id); aerr != nil {
				err = authError(aerr)
				break
			}
		}
	}
	if err != nil {
		if resty {
			answerResty(w, callback, err)
			return
		}
		h.answerPublisher(w, r, callback, 0, ChannelInfo{}, err)
		return
	}
	if len(ids) > 1 {
		h.publishMany(w, r, callback, ids, resty)
		return
	}
	channel := ids[0]
	if r.Method == http.MethodGet && isWebSocket(r) {
		h.servePublishWebSocket(w, r, channel, until)
		return
	}
	ctx := r.Context()
	var info ChannelInfo
	status := http.StatusOK
	switch {
	case publishes:
		var msg *Message
		if msg, err = h.readMessage(w, r); err == nil {
			if _, info, err = h.publish(ctx, channel, msg); err == nil {
				status = http.StatusAccepted
				if info.Subscribers > 0 {
					status = http.StatusCreated
				}
			}
		}
		if h.log.Enabled(ctx, slog.LevelDebug) {
			h.logPublish(r, ids, msg, status, err)
		}
	case r.Method == http.MethodPut:
		info, err = h.store.CreateChannel(ctx, channel, h.cfg)
	case r.Method == http.MethodDelete:
		info, err = h.store.DeleteChannel(ctx, channel)
	default: // GET, HEAD
		info, err = h.store.ChannelInfo(ctx, channel)
	}
	if resty {
		answerResty(w, callback, err)
		return
	}
	h.answerPublisher(w, r, callback, status, info, err)
}

// logPublish writes a publish's debug line.
func (h *Hub) logPublish(r *http.Request, channels []string, msg *Message, status int, err error) {
	n := 0
	if msg != nil {
		n = len(msg.Data)
	}
	if err != nil {
		status = statusOf(err)
		if errors.Is(err, ErrChannelNotFound) {
			status = http.StatusNotFound
		}
		h.log.Debug("push: publish", "channels", channels, "bytes", n, "status", status,
			"remote", r.RemoteAddr, "error", err)
		return
	}
	h.log.Debug("push: publish", "channels", channels, "bytes", n, "status", status, "remote", r.RemoteAddr)
}

// publishMany answers a POST naming several channels (P9): the message is
// stored in each, each with that channel's own id; 201 when any channel
// had a subscriber, else 202; the body holds every channel's info.
// With resty set it answers in resty.push's shape.
func (h *Hub) publishMany(w http.ResponseWriter, r *http.Request, callback string, ids []string, resty bool) {
	msg, err := h.readMessage(w, r)
	var infos []ChannelInfo
	if err == nil {
		infos, err = h.publishEach(r.Context(), ids, msg)
	}
	if err != nil && h.log.Enabled(r.Context(), slog.LevelDebug) {
		h.logPublish(r, ids, msg, 0, err)
	}
	if resty {
		answerResty(w, callback, err)
		return
	}
	if err != nil {
		h.answerPublisher(w, r, callback, 0, ChannelInfo{}, err)
		return
	}
	status := http.StatusAccepted
	for _, info := range infos {
		if info.Subscribers > 0 {
			status = http.StatusCreated
		}
	}
	if h.log.Enabled(r.Context(), slog.LevelDebug) {
		h.logPublish(r, ids, msg, status, err)
	}
	now := time.Now()
	if callback != "" {
		writeJSONP(w, jsonpWrap(callback, formatInfos(ids, infos, infoJSON, now)))
		return
	}
	format, mediaType := negotiateInfo(headerValue(r.Header, "Accept"))
	w.Header()["Content-Type"] = infoContentType[mediaType]
	w.WriteHeader(status)
	w.Write(formatInfos(ids, infos, format, now))
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
	data, err := h.readBody(w, r, max)
	if err != nil {
		return nil, err
	}
	msg := &Message{Data: data, EventName: event, handedOver: true}
	if ct, ok := r.Header["Content-Type"]; ok && len(ct) > 0 {
		msg.ContentType = ct[0]
	}
	if msg.Data == nil {
		msg.Data = []byte{}
	}
	if h.opts.RestyPush && isForm(r) {
		return restyMessage(msg)
	}
	return msg, nil
}

// readBody reads r's body, which must not exceed max bytes (413), within
// Options.RequestTimeout (408, and the connection is closed). A body of
// known length must have been checked against max by the caller. Its
// memory grows with what arrives, not with the Content-Length announced.
func (h *Hub) readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	if r.ContentLength == 0 {
		return []byte{}, nil
	}
	timeout := h.opts.RequestTimeout
	if srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server); ok && srv.ReadTimeout > 0 && srv.ReadTimeout <= timeout {
		timeout = 0 // the server's own deadline, set when the request began, is sooner
	}
	if timeout > 0 && setReadDeadline(w, time.Now().Add(timeout)) {
		defer setReadDeadline(w, time.Time{})
	}
	var data []byte
	var err error
	if n := r.ContentLength; n > 0 {
		// Known length: the buffer ends at exactly n bytes (a stored
		// message keeps it), and grows from bodyChunk as the bytes come.
		data = make([]byte, 0, min(n, bodyChunk))
		for int64(len(data)) < n && err == nil {
			if len(data) == cap(data) {
				grown := make([]byte, len(data), min(n, 2*int64(cap(data))))
				copy(grown, data)
				data = grown
			}
			var m int
			m, err = r.Body.Read(data[len(data):cap(data)])
			data = data[:len(data)+m]
		}
		if int64(len(data)) == n {
			err = nil
		} else if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	} else {
		var buf bytes.Buffer
		_, err = buf.ReadFrom(http.MaxBytesReader(w, r.Body, max))
		data = buf.Bytes()
	}
	if err == nil {
		if data == nil {
			data = []byte{}
		}
		return data, nil
	}
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, &HTTPError{StatusCode: http.StatusRequestEntityTooLarge,
			Message: "Message too large: the limit is " + strconv.FormatInt(max, 10) + " bytes."}
	case errors.Is(err, os.ErrDeadlineExceeded):
		w.Header().Set("Connection", "close")
		return nil, &HTTPError{StatusCode: http.StatusRequestTimeout,
			Message: "Request Timeout: the body did not arrive in time."}
	}
	return nil, &HTTPError{StatusCode: http.StatusBadRequest, Message: "Reading the message body failed: " + err.Error()}
}

// setReadDeadline sets the read deadline of w's connection, if it has
// one; it reports whether it did.
func setReadDeadline(w http.ResponseWriter, t time.Time) bool {
	if d, ok := w.(interface{ SetReadDeadline(time.Time) error }); ok { // no allocation
		return d.SetReadDeadline(t) == nil
	}
	return http.NewResponseController(w).SetReadDeadline(t) == nil
}

// bodyChunk is the most memory a body of known length takes before its
// bytes arrive.
const bodyChunk = 64 << 10

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
	if errors.Is(err, ErrInvalidMessageID) {
		return invalidMessageIDText
	}
	if s := statusOf(err); s != http.StatusBadRequest && s != http.StatusForbidden {
		return http.StatusText(s)
	}
	return err.Error()
}

// uniqueIDs returns ids without repeats, in their first order: a channel
// named twice gets the message once.
func uniqueIDs(ids []string) []string {
	out := ids[:0:0]
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}
