package h1

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// The verdicts of reader.parse.
const (
	requestIncomplete = iota // read more
	requestServe             // a request to answer here
	requestNotOurs           // give the connection to the http.Server
)

// parse reads the request at the start of b, if it is complete and one to
// serve here; size is its length in b. Its strings are copied from b; its
// body is b's and is read before b is reused.
func (d *reader) parse(b []byte) (r *http.Request, size int, verdict int) {
	if len(b) == 0 {
		return nil, 0, requestIncomplete
	}
	end := bytes.Index(b, crlfcrlf)
	if end < 0 {
		return nil, 0, requestIncomplete
	}
	head := string(b[:end+2]) // every line with its CRLF
	line, rest := cutLine(head)
	method, line, ok1 := cutSpace(line)
	target, proto, ok2 := cutSpace(line)
	if !ok1 || !ok2 || proto != "HTTP/1.1" || len(target) == 0 || target[0] != '/' || !validTarget(target) {
		return nil, 0, requestNotOurs
	}
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodGet, http.MethodHead, http.MethodDelete, http.MethodOptions:
	default:
		return nil, 0, requestNotOurs
	}
	path, query, _ := cutByte(target, '?')
	if !d.cfg.reads(path) {
		return nil, 0, requestNotOurs
	}
	lines := strings.Count(rest, "\n")
	dr := d.spare // the request, its URL, header map and values
	if dr == nil {
		dr = new(request)
	}
	d.spare = nil
	hdr := dr.header
	if hdr == nil {
		hdr = make(http.Header, lines)
		dr.header = hdr
	} else {
		clear(hdr)
	}
	values := dr.values[:]
	if lines > len(values) {
		values = make([]string, lines)
	}
	var host string
	hosts := 0
	contentLength := int64(0)
	lengths := 0
	closeAfter := false
	for i := 0; len(rest) > 0; i++ {
		line, rest = cutLine(rest)
		name, value, ok := cutByte(line, ':')
		if !ok || !validHeaderName(name) {
			return nil, 0, requestNotOurs
		}
		value = trimOWS(value)
		if !validHeaderValue(value) {
			return nil, 0, requestNotOurs
		}
		key := http.CanonicalHeaderKey(name)
		switch key {
		case "Host": // net/http moves it to Request.Host
			if !validHost(value) {
				return nil, 0, requestNotOurs
			}
			host = value
			hosts++
			continue
		case "Content-Length":
			n, ok := parseContentLength(value)
			if !ok {
				return nil, 0, requestNotOurs
			}
			contentLength = n
			lengths++
		case "Connection":
			for t := range strings.SplitSeq(value, ",") {
				t = trimOWS(t)
				switch {
				case t == "":
				case strings.EqualFold(t, "close"):
					closeAfter = true
				case strings.EqualFold(t, "keep-alive"):
				default: // "upgrade", hop-by-hop header names: net/http's
					return nil, 0, requestNotOurs
				}
			}
		case "Transfer-Encoding", "Expect", "Upgrade", "Trailer":
			return nil, 0, requestNotOurs
		}
		if vs, ok := hdr[key]; ok {
			hdr[key] = append(vs, value)
		} else {
			values[i] = value
			hdr[key] = values[i : i+1 : i+1]
		}
	}
	if hosts != 1 || lengths > 1 || contentLength > bufferSize {
		return nil, 0, requestNotOurs
	}
	size = end + 4 + int(contentLength)
	if size > len(b) {
		d.spare = dr // the body is still coming: parsed again then
		return nil, 0, requestIncomplete
	}
	d.current = dr
	r = &dr.r
	*r = *d.template // its context and RemoteAddr
	r.Method = method
	dr.url = url.URL{Path: path, RawQuery: query}
	r.URL = &dr.url
	r.RequestURI = target
	r.Header = hdr
	r.Host = host
	r.ContentLength = contentLength
	r.Close = closeAfter
	r.Form, r.PostForm, r.MultipartForm, r.Trailer, r.TransferEncoding = nil, nil, nil, nil, nil
	d.body.b = b[end+4 : size]
	r.Body = &d.body
	if path == d.cfg.SubscribePath && !d.cfg.IsPoll(r) {
		return nil, 0, requestNotOurs // a streaming subscriber: net/http's
	}
	return r, size, requestServe
}

// request is a request read by a reader, with room for its URL
// and up to eight header values.
//
// When no hook of the Options sees requests (Hub.recycleRequests), an
// answered request's memory is reused by the connection's next request:
// the Hub's own code keeps no request after answering it (a long-poll
// that parks keeps its own). Its strings are never reused: they are copied
// from the connection's buffer for each request.
type request struct {
	r      http.Request
	url    url.URL
	header http.Header
	values [8]string
}

var crlfcrlf = []byte("\r\n\r\n")

// cutLine cuts s after its first CRLF.
func cutLine(s string) (line, rest string) {
	if i := strings.Index(s, "\r\n"); i >= 0 {
		return s[:i], s[i+2:]
	}
	return s, ""
}

func cutSpace(s string) (before, after string, ok bool) { return cutByte(s, ' ') }

func cutByte(s string, c byte) (before, after string, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// validTarget reports whether an origin-form request target has only
// visible ASCII and no fragment (anything else is net/http's to judge).
func validTarget(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	return true
}

// validHost reports whether a Host value is a plain host[:port]: letters,
// digits, '.', '-', ':', '[' and ']' (anything else is net/http's to
// judge).
func validHost(s string) bool { return alnumOr(s, ".-:[]") }

// trimOWS trims spaces and tabs around a header value.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// validHeaderName reports whether s is a token (RFC 9110 5.6.2).
func validHeaderName(s string) bool { return alnumOr(s, "!#$%&'*+-.^_`|~") }

// alnumOr reports whether s is not empty and holds only ASCII letters,
// digits and bytes of extra.
func alnumOr(s, extra string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte(extra, c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHeaderValue reports whether s has no control characters but tabs.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// parseContentLength reads a Content-Length: decimal digits only.
func parseContentLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

// bodyReader is a request body held in memory.
type bodyReader struct{ b []byte }

func (br *bodyReader) Read(p []byte) (int, error) {
	if len(br.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, br.b)
	br.b = br.b[n:]
	return n, nil
}

func (br *bodyReader) Close() error { return nil }
