package push

import (
	"errors"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
)

// errNoChannelID is answered 404 "No channel id provided." (P7).
var errNoChannelID = &HTTPError{StatusCode: http.StatusNotFound, Message: "No channel id provided."}

// channelIDs returns the validated channel ids of r, a subscriber request
// (Options.ChannelIDs) or a publisher request (Options.PublisherChannelIDs).
func (h *Hub) channelIDs(r *http.Request, publisher bool) ([]string, error) {
	var ids []string
	extract := h.opts.ChannelIDs
	if publisher {
		extract = h.opts.PublisherChannelIDs
	}
	if extract != nil {
		var err error
		if ids, err = extract(r); err != nil {
			var he *HTTPError
			if errors.As(err, &he) {
				return nil, err
			}
			return nil, &HTTPError{StatusCode: http.StatusBadRequest, Message: err.Error()}
		}
	} else {
		ids = queryValues(r.URL.RawQuery, "id")
	}
	if len(ids) == 0 || (len(ids) == 1 && ids[0] == "") {
		return nil, errNoChannelID
	}
	if len(ids) > MaxChannelsPerSubscription {
		return nil, &HTTPError{StatusCode: http.StatusForbidden,
			Message: "Too many channels: one request may name at most " + strconv.Itoa(MaxChannelsPerSubscription) + "."}
	}
	for _, id := range ids {
		if err := h.ValidateChannelID(id); err != nil {
			return nil, &HTTPError{StatusCode: http.StatusBadRequest, Message: err.Error()}
		}
	}
	return ids, nil
}

// requestPosition reads the subscriber's position from the first id carrier
// present (I3): If-Modified-Since (+ If-None-Match for the tag),
// If-None-Match alone in "T:G" form, an Etag request header, Last-Event-ID,
// ?last_event_id=. No carrier: the zero position (oldest buffered message).
// As Nchan does, an empty If-Modified-Since and an If-None-Match alone
// without a colon (a bare tag, as caches and browsers send) name no
// position and are passed over.
func requestPosition(r *http.Request, n int) (position, error) {
	if ims := r.Header.Get("If-Modified-Since"); ims != "" {
		t, err := http.ParseTime(ims)
		if err != nil {
			return nil, ErrInvalidMessageID
		}
		sec := t.Unix()
		if sec < 0 {
			return nil, ErrInvalidMessageID
		}
		inm := unquoteETag(r.Header.Get("If-None-Match"))
		if inm == "" {
			pos := make(position, n)
			for i := range pos {
				pos[i] = MessageID{Time: sec}
			}
			return pos, nil
		}
		return parseEntries(sec, inm, n)
	}
	inm := unquoteETag(r.Header.Get("If-None-Match"))
	if !strings.Contains(inm, ":") {
		inm = "" // a bare tag alone names no position
	}
	for _, v := range []string{
		inm,
		unquoteETag(r.Header.Get("Etag")),
		r.Header.Get("Last-Event-ID"),
		lastEventIDArg(r.URL.RawQuery),
	} {
		if v != "" {
			return parsePosition(strings.TrimSpace(v), n)
		}
	}
	return make(position, n), nil
}

// unquoteETag reads "3", W/"3" and 3 alike (I2).
func unquoteETag(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "W/")
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	return s
}

// validCallback reports whether name is an acceptable JSONP callback name:
// ^[A-Za-z_$][A-Za-z0-9_$.]{0,63}$ (S9).
func validCallback(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c == '_', c == '$':
		case i > 0 && (c >= '0' && c <= '9' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// corsResult says what the origin policy decided for a request.
type corsResult int

const (
	originNone    corsResult = iota // no Origin header, or the server's own
	originAllowed                   // a cross-origin request that is allowed
	originRefused                   // a cross-origin request that is not
)

// checkOrigin applies the origin policy (S11).
func (h *Hub) checkOrigin(r *http.Request) corsResult {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return originNone
	}
	for _, pattern := range h.opts.AllowedOrigins {
		if pattern == "*" || pattern == origin {
			return originAllowed
		}
		if ok, _ := path.Match(pattern, origin); ok {
			return originAllowed
		}
	}
	if u, err := url.Parse(origin); err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host) {
		return originNone // same origin
	}
	return originRefused
}

// writeError answers err with its status and text.
func writeError(w http.ResponseWriter, err error) {
	status := statusOf(err)
	msg := err.Error()
	var he *HTTPError
	if !errors.As(err, &he) && status >= 500 {
		msg = http.StatusText(status)
	}
	if status == http.StatusBadRequest && errors.Is(err, ErrInvalidMessageID) {
		msg = invalidMessageIDText
	}
	if he != nil && he.ContentType != "" {
		hd := w.Header()
		hd.Set("Content-Type", he.ContentType)
		hd.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(status)
		w.Write([]byte(msg))
		return
	}
	writeText(w, status, msg)
}

func writeText(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if msg != "" {
		w.Write([]byte(msg))
	}
}

// authError turns an authorization hook's error into an *HTTPError: its own
// if it carries one, else 403 with its text.
func authError(err error) error {
	var he *HTTPError
	if errors.As(err, &he) {
		return he
	}
	return &HTTPError{StatusCode: http.StatusForbidden, Message: err.Error()}
}

// queryValues returns the values of key in the raw query, as
// url.ParseQuery would (pairs holding a semicolon or a bad escape are
// skipped), without building the whole map: nil if key is absent.
func queryValues(raw, key string) []string {
	var vs []string
	for {
		v, rest, ok := nextQueryValue(raw, key)
		if !ok {
			return vs
		}
		vs, raw = append(vs, v), rest
	}
}

// queryValue returns the first value of key in the raw query and whether
// key is present, as url.Values.Get and a map lookup would.
func queryValue(raw, key string) (string, bool) {
	v, _, ok := nextQueryValue(raw, key)
	return v, ok
}

// nextQueryValue finds the next value of key in the raw query; rest is
// the query after it.
func nextQueryValue(raw, key string) (value, rest string, ok bool) {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(k, "%+") {
			if uk, err := url.QueryUnescape(k); err != nil || uk != key {
				continue
			}
		} else if k != key {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			var err error
			if v, err = url.QueryUnescape(v); err != nil {
				continue
			}
		}
		return v, raw, true
	}
	return "", "", false
}

// headerValue is hd.Get(key) for a key already in canonical form: no
// canonicalization (which allocates for keys like X-EventSource-Event).
func headerValue(hd http.Header, key string) string {
	if vs := hd[key]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// lastEventIDArg is the ?last_event_id= argument, or "".
func lastEventIDArg(rawQuery string) string {
	v, _ := queryValue(rawQuery, "last_event_id")
	return v
}
