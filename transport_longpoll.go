package push

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"
)

// serveLongPoll answers with the first message after the subscription's
// position, holding the request until one is published (S2), the subscriber
// timeout (S3), or the subscription ends. In interval-poll mode it answers
// 304 at once when nothing is newer. With callback set it answers JSONP.
//
// A long-poll that has to wait on a connection from the Hub's Listener
// parks (see Listener) at once, unless the connection's last poll was
// answered within parkAfter: a client polling a busy channel would pay for
// a hijack per poll, so its poll waits here first and parks only when it
// has waited parkAfter. Others wait in this goroutine. It owns sub.
func (h *Hub) serveLongPoll(w http.ResponseWriter, r *http.Request, sub *Subscription, callback string) {
	ctx := r.Context()
	start := time.Now()
	m, err := sub.TryNext(ctx)
	if m == nil && err == nil && !h.opts.IntervalPoll {
		hc := h.parkable(r)
		if hc != nil && !hc.Busy() && h.parkLongPoll(w, r, sub, callback, start) {
			return
		}
		waitCtx := ctx
		if t := h.opts.SubscriberTimeout; t > 0 {
			var cancel context.CancelFunc
			waitCtx, cancel = context.WithTimeout(ctx, t)
			defer cancel()
		}
		if !sub.until.IsZero() { // EndSubscriptionAt: answered as a timeout
			var cancel context.CancelFunc
			waitCtx, cancel = context.WithDeadline(waitCtx, sub.until)
			defer cancel()
		}
		if hc != nil {
			t := time.NewTimer(parkAfter)
			var fired bool
			m, fired, err = sub.nextOr(waitCtx, t.C)
			t.Stop()
			if fired {
				hc.SetBusy(false)
				if h.parkLongPoll(w, r, sub, callback, start) {
					return
				}
				m, err = sub.Next(waitCtx)
			}
		} else {
			m, err = sub.Next(waitCtx)
		}
		if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = nil // our subscriber timeout, not the client's
		}
	}
	sub.endErr = err
	defer sub.Close()
	if ctx.Err() != nil {
		return // the client is gone
	}
	h.answerLongPoll(w, sub, callback, m, err)
}

// answerLongPoll answers a long-poll with m, or the end of the
// subscription (err), or the timeout answer (neither).
func (h *Hub) answerLongPoll(w http.ResponseWriter, sub *Subscription, callback string, m *Message, err error) {
	switch {
	case err != nil:
		h.endLongPoll(w, sub, callback, err)
	case m == nil:
		h.timeoutLongPoll(w, sub, callback)
	case callback != "" && h.opts.RestyPush:
		writeResty(w, http.StatusOK, restyString(callback, m.Data))
	case callback != "":
		var body []byte
		if len(sub.channels) == 1 {
			body = jsonpMessageBody(m)
		} else {
			body = jsonpBody(m, sub.Position())
		}
		writeJSONP(w, jsonpWrap(callback, body))
	default:
		if h.opts.LongPollCatchUp {
			if more, _ := sub.TryNext(context.Background()); more != nil {
				h.writeCatchUp(w, sub, m, more)
				return
			}
		}
		hd := w.Header()
		if m.ContentType != "" {
			hd.Set("Content-Type", m.ContentType)
		} else {
			hd["Content-Type"] = nil // no sniffing: the message had none
		}
		setPositionHeaders(hd, sub)
		hd.Set("Vary", "If-None-Match, If-Modified-Since")
		hd.Set("Content-Length", strconv.Itoa(len(m.Data)))
		if sub.Missed() {
			hd.Set(missedHeader, "true")
		}
		h.writeAnswer(w, m.Data)
	}
}

// parkAfter: a long-poll answered within parkAfter of its request marks
// its connection busy, and the next long-poll on a busy connection waits
// that long in its handler before it parks.
const parkAfter = 250 * time.Millisecond

// parkLongPoll parks a long-poll that has waited since start: the
// connection is hijacked and the long-poll becomes a one-shot stream (see
// stream.go) whose answer is written as net/http would have. It reports
// whether it did; it then owns sub.
func (h *Hub) parkLongPoll(w http.ResponseWriter, r *http.Request, sub *Subscription, callback string, start time.Time) bool {
	f := &longPollFramer{h: h, sub: sub, callback: callback, header: w.Header().Clone()}
	return h.parkOneShot(w, sub, f, start)
}

// longPollFramer writes a parked long-poll's answer.
type longPollFramer struct {
	h        *Hub
	sub      *Subscription
	callback string
	header   http.Header // set before it parked (CORS)
}

func (f *longPollFramer) message(b []byte, m *Message) []byte {
	w := &bufferedResponse{header: f.header}
	f.h.answerLongPoll(w, f.sub, f.callback, m, nil)
	return w.AppendTo(b)
}

func (f *longPollFramer) end(b []byte, err error) []byte {
	if err == errAnswered {
		return b
	}
	if err == errSubscriberTimeout {
		err = nil // the timeout answer
	}
	w := &bufferedResponse{header: f.header}
	f.h.answerLongPoll(w, f.sub, f.callback, nil, err)
	return w.AppendTo(b)
}

func (f *longPollFramer) missed(b []byte) []byte { return b }
func (f *longPollFramer) ping(b []byte) []byte   { return b }

// writeAnswer writes a 200 long-poll answer with body under the write
// deadline, flushes it, and clears the deadline (the connection may be
// kept alive for the next poll).
func (h *Hub) writeAnswer(w http.ResponseWriter, body []byte) {
	rc := http.NewResponseController(w)
	if h.opts.WriteTimeout > 0 {
		rc.SetWriteDeadline(time.Now().Add(h.opts.WriteTimeout))
	}
	w.WriteHeader(http.StatusOK)
	w.Write(body)
	if h.opts.WriteTimeout > 0 {
		rc.Flush()
		rc.SetWriteDeadline(time.Time{})
	}
}

// setPositionHeaders sets Last-Modified and Etag to the subscription's
// position (I2).
func setPositionHeaders(hd http.Header, sub *Subscription) {
	sec, etag := splitPosition(sub.pos, sub.mark)
	hd["Last-Modified"] = []string{httpTime(&lastModified, sec)}
	hd["Etag"] = []string{etag}
}

// timeoutLongPoll answers a long-poll that found nothing newer in time: the
// TimeoutStatus (304 by default) with the position, so the client re-polls
// from where it was.
func (h *Hub) timeoutLongPoll(w http.ResponseWriter, sub *Subscription, callback string) {
	if callback != "" && h.opts.RestyPush {
		writeResty(w, http.StatusOK, restyString(callback, []byte(restyTimeout)))
		return
	}
	if callback != "" {
		writeJSONP(w, jsonpTimeout(callback, sub.Position()))
		return
	}
	setPositionHeaders(w.Header(), sub)
	w.WriteHeader(h.opts.TimeoutStatus)
}

// endLongPoll answers a long-poll whose subscription ended: 410 Gone on
// delete (empty body), 409 on conflict, 503 on shutdown, each with the
// position so the client can resume.
func (h *Hub) endLongPoll(w http.ResponseWriter, sub *Subscription, callback string, err error) {
	status := statusOf(err)
	if callback != "" {
		writeJSONP(w, jsonpError(callback, status, http.StatusText(status)))
		return
	}
	hd := w.Header()
	setPositionHeaders(hd, sub)
	switch status {
	case http.StatusGone:
		w.WriteHeader(status)
	case http.StatusServiceUnavailable:
		hd.Set("Retry-After", "1")
		msg := "Service Unavailable: the message store cannot be reached; retry."
		if errors.Is(err, ErrHubClosed) {
			msg = "Service Unavailable: the server is shutting down; resume from your last id."
		}
		writeText(w, status, msg)
	default:
		if status >= 500 {
			h.log.Warn("push: long-poll failed", "channels", sub.channels, "error", err)
		}
		writeError(w, err)
	}
}

// Catch-up limits: at most this much in one long-poll answer.
const (
	catchUpMessages = 100
	catchUpBytes    = 1 << 20
)

// writeCatchUp answers a long-poll that found several messages waiting
// with all of them (Options.LongPollCatchUp), as multipart/mixed:
// "--B\n", then per message (one channel) "Last-Modified: D\nEtag: G\n"
// lines with the message's id, an optional "Content-Type: C\n" line, "\n",
// the payload, "\n--B\n"..., ending "--B--\n". Last-Modified/Etag are the
// position after the last part. Lines end in LF alone because
// NchanSubscriber.js's parser keeps a CR at the end of each payload
// otherwise; Go's mime/multipart reads both.
func (h *Hub) writeCatchUp(w http.ResponseWriter, sub *Subscription, first, second *Message) {
	msgs := []*Message{first, second}
	size := len(first.Data) + len(second.Data)
	for len(msgs) < catchUpMessages && size < catchUpBytes {
		m, err := sub.TryNext(context.Background())
		if m == nil || err != nil {
			break
		}
		msgs = append(msgs, m)
		size += len(m.Data)
	}
	boundary := newBoundary()
	body := make([]byte, 0, size+len(msgs)*(len(boundary)+90))
	single := len(sub.channels) == 1
	for _, m := range msgs {
		body = append(body, "--"...)
		body = append(body, boundary...)
		body = append(body, '\n')
		if single {
			body = append(body, m.encoded(framingLongPollPartID, buildLongPollPartID)...)
		} else {
			body = append(body, m.encoded(framingLongPollPart, buildLongPollPart)...)
		}
	}
	body = append(body, "--"...)
	body = append(body, boundary...)
	body = append(body, "--\n"...)
	hd := w.Header()
	hd.Set("Content-Type", "multipart/mixed; boundary="+boundary)
	setPositionHeaders(hd, sub)
	hd.Set("Vary", "If-None-Match, If-Modified-Since")
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	if sub.Missed() {
		hd.Set(missedHeader, "true")
	}
	h.writeAnswer(w, body)
}

// buildLongPollPartID is a catch-up part of a single-channel subscription
// after its delimiter line: "Last-Modified: D\nEtag: G\n", then the part
// as buildLongPollPart writes it, so a client can tell every part's id
// (push.js does). Content-Type stays the last header line, the one
// NchanSubscriber.js reads.
func buildLongPollPartID(m *Message) []byte {
	b := make([]byte, 0, 64+len(m.ContentType)+len(m.Data))
	b = append(b, "Last-Modified: "...)
	b = time.Unix(m.ID.Time, 0).UTC().AppendFormat(b, http.TimeFormat)
	b = append(b, "\nEtag: "...)
	b = strconv.AppendInt(b, m.ID.Tag, 10)
	b = append(b, '\n')
	return append(b, m.encoded(framingLongPollPart, buildLongPollPart)...)
}

// buildLongPollPart is a catch-up part after its delimiter line.
func buildLongPollPart(m *Message) []byte {
	b := make([]byte, 0, 20+len(m.ContentType)+len(m.Data))
	if m.ContentType != "" {
		b = append(b, "Content-Type: "...)
		b = append(b, m.ContentType...)
		b = append(b, '\n')
	}
	b = append(b, '\n')
	b = append(b, m.Data...)
	return append(b, '\n')
}
