package push

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"hash/maphash"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// fzEpoch is the fixed clock of the handler fuzz target's store, so that
// seed corpora can name real ids (1700000000:0 is the first message).
var fzEpoch = time.Unix(1700000000, 0)

// fzNewMemoryStore is NewMemoryStore with a fixed clock set before the
// sweeper starts (assigning MemoryStore.now later would race with it).
func fzNewMemoryStore(clock func() time.Time) *MemoryStore {
	s := &MemoryStore{seed: maphash.MakeSeed(), now: clock, stop: make(chan struct{}), done: make(chan struct{})}
	for i := range s.shards {
		s.shards[i].channels = make(map[string]*memoryChannel)
		s.shards[i].tombstones = make(map[string]MessageID)
	}
	go s.sweepLoop(time.Hour)
	return s
}

// fzHandlerHub returns a Hub whose options come from the bits of flags,
// with channels a (3 messages), b (1 message) and empty (created, no
// message), and a function that shuts it down.
func fzHandlerHub(t *testing.T, flags uint8) (*Hub, func()) {
	store := fzNewMemoryStore(func() time.Time { return fzEpoch })
	opts := Options{
		Store:             store,
		MessageTTL:        -1, // the fixed clock is in the past
		SubscriberTimeout: time.Millisecond,
		Logger:            fzDiscardLogger,
		AuthorizePublish: func(r *http.Request, channel string) error {
			return fzAuthorize([]string{channel})
		},
		AuthorizeSubscribe: func(r *http.Request, channels []string) error {
			return fzAuthorize(channels)
		},
	}
	opts.IntervalPoll = flags&1 != 0
	if flags&2 != 0 {
		opts.TimeoutStatus = http.StatusRequestTimeout
	}
	switch (flags >> 2) & 3 {
	case 1:
		opts.Concurrency = Last
	case 2:
		opts.Concurrency = First
	case 3:
		opts.MaxSubscribersPerChannel = 1
	}
	opts.AuthorizedChannelsOnly = flags&16 != 0
	opts.PutPublishes = flags&32 != 0
	if flags&64 != 0 {
		opts.AllowedOrigins = []string{"http://ok.example", "https://*.example.org"}
	}
	if flags&128 != 0 {
		opts.MaxMessageSize = 16
		opts.MessageBufferLength = -1
		opts.MaxChannelIDLength = 8
	}
	h := New(opts)
	ctx := context.Background()
	for _, p := range []struct{ ch, data, ct string }{
		{"a", "one", "text/plain"}, {"a", "two", ""}, {"a", "three", "application/json"}, {"b", "bee", "text/plain"},
	} {
		if _, _, err := h.Publish(ctx, p.ch, &Message{Data: []byte(p.data), ContentType: p.ct}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.CreateChannel(ctx, "empty"); err != nil {
		t.Fatal(err)
	}
	return h, func() {
		if err := h.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		store.Close()
	}
}

var fzDiscardLogger = slog.New(slog.DiscardHandler)

// fzAuthorize refuses the channel "deny" with 403 and "private" with 401.
func fzAuthorize(channels []string) error {
	for _, c := range channels {
		switch c {
		case "deny":
			return errors.New("this channel is closed")
		case "private":
			return &HTTPError{StatusCode: http.StatusUnauthorized, Message: "log in first"}
		}
	}
	return nil
}

// Statuses the spec allows each handler to answer (503 only on Shutdown).
var (
	fzPublisherStatuses  = []int{200, 201, 202, 400, 401, 403, 404, 405, 413}
	fzSubscriberStatuses = []int{200, 304, 400, 401, 403, 404, 405, 408, 409, 410}
)

// fzToken reports whether s is a valid HTTP token (a method or header name
// a server would accept).
func fzToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// fzRequest builds the request a server would hand a handler: method
// (empty: GET), raw query, header lines "Name: value" separated by "\n",
// body. Parts a server would refuse (bad method or header names, control
// characters) are dropped.
func fzRequest(path, method, rawQuery, headers string, body []byte) *http.Request {
	if !fzToken(method) {
		method = http.MethodGet
	}
	rawQuery = strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f || r == '#' {
			return -1
		}
		return r
	}, rawQuery)
	r := &http.Request{
		Method: method, URL: &url.URL{Path: path, RawQuery: rawQuery}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Host: "example.com", RemoteAddr: "127.0.0.1:1234", RequestURI: path + "?" + rawQuery,
		Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
	}
	for _, line := range strings.Split(headers, "\n") {
		k, v, ok := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		if !ok || !fzToken(k) || strings.ContainsFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
			continue
		}
		r.Header.Add(k, v)
	}
	return r.WithContext(context.Background())
}

func FuzzHandlers(f *testing.F) {
	lm := fzEpoch.UTC().Format(http.TimeFormat)
	type seed struct {
		pub                    bool
		flags                  uint8
		method, query, headers string
		body                   string
	}
	for _, s := range []seed{
		{false, 0, "GET", "id=a", "", ""},
		{false, 0, "GET", "id=a", "If-Modified-Since: " + lm + "\nIf-None-Match: 0", ""},
		{false, 0, "GET", "id=a", "If-Modified-Since: " + lm + "\nIf-None-Match: 2", ""},
		{false, 1, "GET", "id=a&id=b", "Last-Event-ID: 1700000000:[0],-", ""},
		{false, 0, "GET", "id=a&last_event_id=1700000000:1", "", ""},
		{false, 0, "GET", "id=a&callback=cb", "Etag: 1700000000:0", ""},
		{false, 0, "GET", "id=a&callback=alert(1)//", "", ""},
		{false, 0, "GET", "id=a&callback=", "", ""},
		{false, 2, "GET", "id=empty", "", ""},
		{false, 16, "GET", "id=nope", "", ""},
		{false, 0, "GET", "id=a", "If-None-Match: garbage", ""},
		{false, 0, "GET", "id=a&callback=cb", "If-None-Match: garbage", ""},
		{false, 64, "GET", "id=a", "Origin: http://evil.example", ""},
		{false, 64, "OPTIONS", "id=a", "Origin: https://x.example.org", ""},
		{false, 0, "POST", "id=a", "", "x"},
		{false, 0, "GET", "", "", ""},
		{false, 0, "GET", "id=%00", "", ""},
		{false, 0, "GET", "id=private", "", ""},
		{false, 0, "GET", "id=deny&callback=cb", "", ""},
		{true, 0, "POST", "id=a", "Content-Type: text/plain\nAccept: application/json", "hello"},
		{true, 0, "POST", "id=new", "X-EventSource-Event: ping", ""},
		{true, 128, "POST", "id=a", "", "this body is longer than sixteen bytes"},
		{true, 0, "PUT", "id=c", "Accept: text/xml", ""},
		{true, 32, "PUT", "id=c", "Accept: text/yaml", "put body"},
		{true, 0, "GET", "id=a&callback=cb", "", ""},
		{true, 0, "GET", "id=missing", "", ""},
		{true, 0, "HEAD", "id=a", "", ""},
		{true, 0, "DELETE", "id=b", "", ""},
		{true, 0, "PATCH", "id=a", "", ""},
		{true, 0, "POST", "id=a&id=b", "", "two"},
		{true, 64, "POST", "id=a", "Origin: http://evil.example", "x"},
		{true, 0, "OPTIONS", "", "", ""},
	} {
		f.Add(s.pub, s.flags, s.method, s.query, s.headers, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, pub bool, flags uint8, method, rawQuery, headers string, body []byte) {
		h, done := fzHandlerHub(t, flags)
		defer done()
		path, handler, allowed, allow := "/sub", h.SubscribeHandler(), fzSubscriberStatuses, subscriberAllow
		if pub {
			path, handler, allowed, allow = "/pub", h.PublishHandler(), fzPublisherStatuses, publisherAllow
		}
		r := fzRequest(path, method, rawQuery, headers, body)
		// A recorder cannot be hijacked (WebSocket) and a stream never ends
		// on its own: keep to the transports that answer once (long-poll,
		// JSONP). The streaming ones are tested over real connections.
		r.Header.Del("Upgrade")
		if !pub {
			r.Header.Del("Accept")
			r.Header.Del("Te")
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		r = r.WithContext(ctx)
		// What the request carries, read before the handler consumes it.
		q := r.URL.Query()
		callback, hasCallback := q.Get("callback"), q.Has("callback")
		ids, idsErr := h.channelIDs(r, pub)
		reqPos, posErr := requestPosition(r, max(len(ids), 1))
		originOK := h.checkOrigin(r) != originRefused

		w := &fzOnceWriter{httptest.NewRecorder(), cancel}
		handler.ServeHTTP(w, r)
		res := w.Result()
		status, got := res.StatusCode, w.Body.Bytes()
		if status >= 500 || !slices.Contains(allowed, status) {
			t.Fatalf("%s %s?%s answered %d %q; allowed: %v", r.Method, path, rawQuery, status, got, allowed)
		}
		if status == http.StatusMethodNotAllowed && res.Header.Get("Allow") != allow {
			t.Fatalf("405 with Allow %q, want %q", res.Header.Get("Allow"), allow)
		}
		if res.Header.Get("Content-Type") == "application/javascript" {
			fzCheckJSONP(t, status, callback, got)
		}
		if !originOK || (r.Method != http.MethodGet && (!pub || r.Method == http.MethodOptions)) {
			return // refused before reading the request, or a preflight
		}
		if pub {
			fzCheckPublisher(t, h, r, status, got, body, ids)
			return
		}
		if hasCallback && validCallback(callback) {
			if status != http.StatusOK {
				t.Fatalf("JSONP subscriber answered %d; S9 says always 200", status)
			}
			return
		}
		if idsErr == nil && posErr != nil && !hasCallback {
			if status != http.StatusBadRequest || string(got) != "Message ID invalid" {
				t.Fatalf("invalid position answered %d %q; want 400 Message ID invalid", status, got)
			}
		}
		if status == http.StatusOK || status == http.StatusNotModified || status == http.StatusRequestTimeout {
			fzCheckAnswerPosition(t, res, reqPos, len(ids), status == http.StatusOK)
		}
	})
}

// fzOnceWriter is a recorder that ends the request (cancels its context)
// once an answer has begun, so a handler that would hold a stream open
// returns instead of hanging the fuzzer. Long-poll and JSONP answers are
// written whole all the same: they check the context before they start.
type fzOnceWriter struct {
	*httptest.ResponseRecorder
	cancel context.CancelFunc
}

func (w *fzOnceWriter) WriteHeader(code int) {
	w.ResponseRecorder.WriteHeader(code)
	w.cancel()
}

func (w *fzOnceWriter) Flush() {
	w.ResponseRecorder.Flush()
	w.cancel()
}

// fzCheckJSONP checks a JSONP answer (S9): 200, "callback(<JSON>);", and
// nothing that could end the script element it runs in.
func fzCheckJSONP(t *testing.T, status int, callback string, body []byte) {
	t.Helper()
	if status != http.StatusOK {
		t.Fatalf("JSONP answer with status %d", status)
	}
	inner, ok := bytes.CutPrefix(body, []byte(callback+"("))
	if ok {
		inner, ok = bytes.CutSuffix(inner, []byte(");"))
	}
	if !ok || !json.Valid(inner) {
		t.Fatalf("JSONP body %q is not %s(<JSON>);", body, callback)
	}
	if bytes.ContainsAny(body, "<>") || bytes.Contains(body, []byte("\u2028")) || bytes.Contains(body, []byte("\u2029")) {
		t.Fatalf("JSONP body %q holds characters that can end a script", body)
	}
}

// fzCheckPublisher checks a publisher answer: channel info on 2xx in the
// negotiated type, and a POST's body and Content-Type stored byte for byte.
func fzCheckPublisher(t *testing.T, h *Hub, r *http.Request, status int, got, body []byte, ids []string) {
	t.Helper()
	if r.URL.Query().Has("callback") || status >= 300 {
		return
	}
	if _, want := negotiateInfo(r.Header.Get("Accept")); r.Method != http.MethodHead && len(got) == 0 {
		t.Fatalf("%s answered %d with no channel info (want %s)", r.Method, status, want)
	}
	published := status == http.StatusCreated || status == http.StatusAccepted
	if published != (r.Method == http.MethodPost || (r.Method == http.MethodPut && h.opts.PutPublishes)) {
		t.Fatalf("%s answered %d", r.Method, status)
	}
	if !published || h.cfg.BufferLength == 0 {
		return
	}
	b, err := h.store.Messages(context.Background(), ids[0], MessageID{}, 100)
	if err != nil || len(b.Messages) == 0 {
		t.Fatalf("published to %q, yet the buffer holds %v, %v", ids[0], b.Messages, err)
	}
	m := b.Messages[len(b.Messages)-1]
	wantCT := ""
	if v := r.Header.Values("Content-Type"); len(v) > 0 {
		wantCT = v[0]
	}
	if !bytes.Equal(m.Data, body) || m.ContentType != wantCT || m.EventName != r.Header.Get("X-EventSource-Event") {
		t.Fatalf("stored %q (%q, event %q), published %q (%q)", m.Data, m.ContentType, m.EventName, body, wantCT)
	}
}

// fzCheckAnswerPosition checks the Last-Modified/Etag of a long-poll answer:
// they parse as a position for n channels, no entry is older than the
// request's, and a 200 moved at least one entry forward.
func fzCheckAnswerPosition(t *testing.T, res *http.Response, reqPos position, n int, moved bool) {
	t.Helper()
	lm, etag := res.Header.Get("Last-Modified"), res.Header.Get("Etag")
	if lm == "" || etag == "" {
		t.Fatalf("%d without Last-Modified/Etag: %v", res.StatusCode, res.Header)
	}
	pos, err := requestPosition(fzRequestWithPosition(lm, etag, "", "", ""), n)
	if err != nil {
		t.Fatalf("answer's Last-Modified %q Etag %q do not read back: %v", lm, etag, err)
	}
	forward := false
	for i := range pos {
		switch pos[i].Compare(reqPos[i]) {
		case -1:
			t.Fatalf("answer position %v is behind the request's %v", pos, reqPos)
		case 1:
			forward = true
		}
	}
	if moved && !forward {
		t.Fatalf("200 answer position %v did not move past %v", pos, reqPos)
	}
}
