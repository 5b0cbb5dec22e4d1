package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"
)

// dialer opens client sockets from a rotating set of loopback source
// addresses, so that many thousands of connections to one server port do
// not run out of ephemeral ports (each source address has its own range).
type dialer struct {
	srcs []net.IP
	next atomic.Uint64
	d    net.Dialer
}

// parseSources reads "127.0.0.2-127.0.0.50" (a range in the last octet) or
// a comma-separated list; "" means the kernel chooses.
func parseSources(s string) ([]net.IP, error) {
	if s == "" {
		return nil, nil
	}
	if lo, hi, ok := cut(s, "-"); ok {
		a, b := net.ParseIP(lo).To4(), net.ParseIP(hi).To4()
		if a == nil || b == nil || string(a[:3]) != string(b[:3]) || a[3] > b[3] {
			return nil, fmt.Errorf("-src %q: want a range like 127.0.0.2-127.0.0.50", s)
		}
		var ips []net.IP
		for i := int(a[3]); i <= int(b[3]); i++ {
			ips = append(ips, net.IPv4(a[0], a[1], a[2], byte(i)))
		}
		return checkLoopback(ips, s)
	}
	var ips []net.IP
	for _, f := range bytes.Split([]byte(s), []byte(",")) {
		ip := net.ParseIP(string(bytes.TrimSpace(f)))
		if ip == nil {
			return nil, fmt.Errorf("-src %q: %q is not an IP address", s, f)
		}
		ips = append(ips, ip)
	}
	return checkLoopback(ips, s)
}

func checkLoopback(ips []net.IP, s string) ([]net.IP, error) {
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return nil, fmt.Errorf("-src %q: %v is not a loopback address", s, ip)
		}
	}
	return ips, nil
}

func cut(s, sep string) (string, string, bool) {
	i := bytes.Index([]byte(s), []byte(sep))
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

func newDialer(srcs []net.IP, offset int) *dialer {
	d := &dialer{srcs: srcs, d: net.Dialer{Timeout: 10 * time.Second}}
	d.next.Store(uint64(offset))
	return d
}

func (d *dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	nd := d.d
	if len(d.srcs) > 0 {
		host, _, _ := net.SplitHostPort(addr)
		if ip := net.ParseIP(host); ip == nil || ip.To4() != nil {
			// Only IPv4 targets: an IPv4 source cannot reach ::1.
			nd.LocalAddr = &net.TCPAddr{IP: d.srcs[int(d.next.Add(1)%uint64(len(d.srcs)))]}
		}
	}
	return nd.DialContext(ctx, network, addr)
}

// target is a loopback URL template with {ch} standing for the channel id.
type target struct {
	raw    string
	u      *url.URL
	host   string // host:port to dial
	prefix string // request target before the channel id
	suffix string // request target after the channel id
}

func parseTarget(flagName, tmpl string) (*target, error) {
	if tmpl == "" {
		return nil, fmt.Errorf("%s: a URL template is required, like 'http://127.0.0.1:8080/sub?id={ch}'", flagName)
	}
	u, err := url.Parse(tmpl)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", flagName, err)
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("%s %q: only http:// targets are supported (WebSocket subscribers upgrade from the http URL)", flagName, tmpl)
	}
	host := u.Hostname()
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("%s %q: refusing a non-loopback host; pushload only loads servers on this machine (127.0.0.0/8, ::1, localhost)", flagName, tmpl)
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	rt := u.RequestURI()
	pre, suf, ok := cut(rt, "%7Bch%7D")
	if !ok {
		pre, suf, ok = cut(rt, "{ch}")
	}
	if !ok {
		return nil, fmt.Errorf("%s %q: the template must contain {ch} where the channel id goes", flagName, tmpl)
	}
	return &target{raw: tmpl, u: u, host: net.JoinHostPort(host, port), prefix: pre, suffix: suf}, nil
}

// path is the request target for channel ch (ids are plain ASCII here).
func (t *target) path(ch string) string { return t.prefix + ch + t.suffix }

// url is the absolute URL for channel ch.
func (t *target) url(ch string) string {
	return "http://" + t.host + t.path(ch)
}

// httpConn is a minimal HTTP/1.1 client connection: enough for NHPM
// publishers and subscribers, with reusable buffers and no goroutines of its
// own. It is not safe for concurrent use.
type httpConn struct {
	c    net.Conn
	br   *bufio.Reader
	wbuf []byte
	body []byte

	// From the last response.
	status  int
	lastMod []byte
	etag    []byte
	ctype   []byte
	clen    int64
	chunked bool
	closing bool
	// Sec-WebSocket-Accept, from the answer to a WebSocket handshake.
	wsAccept []byte
}

var errProtocol = errors.New("malformed HTTP response")

func dialHTTP(ctx context.Context, d *dialer, host string, bufSize int) (*httpConn, error) {
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl) // no read or write outlives the run
	}
	return &httpConn{c: c, br: bufio.NewReaderSize(c, bufSize)}, nil
}

func (h *httpConn) close() { h.c.Close() }

// writeRequest sends a request; hdrs are complete header lines
// ("Name: value\r\n") already joined.
func (h *httpConn) writeRequest(method, path, host string, hdrs []byte, body []byte) error {
	b := h.wbuf[:0]
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\n"...)
	b = append(b, hdrs...)
	if body != nil || method == "POST" {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	b = append(b, body...)
	h.wbuf = b
	_, err := h.c.Write(b)
	return err
}

// readHeader reads a response's status line and headers.
func (h *httpConn) readHeader() error {
	h.lastMod, h.etag, h.ctype, h.wsAccept = h.lastMod[:0], h.etag[:0], h.ctype[:0], h.wsAccept[:0]
	h.clen, h.chunked, h.closing = -1, false, false
	line, err := h.br.ReadSlice('\n')
	if err != nil {
		return err
	}
	// "HTTP/1.1 200 OK"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return errProtocol
	}
	h.status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return errProtocol
	}
	if line[7] == '0' {
		h.closing = true // HTTP/1.0 closes unless told otherwise
	}
	for {
		line, err = h.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			return nil
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 {
			return errProtocol
		}
		k, v := line[:i], bytes.TrimSpace(line[i+1:])
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			h.clen, err = strconv.ParseInt(string(v), 10, 64)
			if err != nil || h.clen < 0 {
				return errProtocol
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			h.chunked = bytes.Contains(bytes.ToLower(v), []byte("chunked"))
		case bytes.EqualFold(k, []byte("Connection")):
			lv := bytes.ToLower(v)
			if bytes.Contains(lv, []byte("close")) {
				h.closing = true
			} else if bytes.Contains(lv, []byte("keep-alive")) {
				h.closing = false
			}
		case bytes.EqualFold(k, []byte("Last-Modified")):
			h.lastMod = append(h.lastMod, v...)
		case bytes.EqualFold(k, []byte("Etag")):
			h.etag = append(h.etag, v...)
		case bytes.EqualFold(k, []byte("Content-Type")):
			h.ctype = append(h.ctype, v...)
		case bytes.EqualFold(k, []byte("Sec-WebSocket-Accept")):
			h.wsAccept = append(h.wsAccept, v...)
		}
	}
}

// readBody reads a whole (non-streaming) response body into h.body.
func (h *httpConn) readBody() error {
	h.body = h.body[:0]
	switch {
	case h.status == 204 || h.status == 304 || h.status/100 == 1:
		return nil
	case h.chunked:
		for {
			n, err := h.chunkSize()
			if err != nil {
				return err
			}
			if n == 0 {
				// Trailers, then the blank line.
				for {
					line, err := h.br.ReadSlice('\n')
					if err != nil {
						return err
					}
					if len(bytes.TrimRight(line, "\r\n")) == 0 {
						return nil
					}
				}
			}
			if err := h.appendBody(n); err != nil {
				return err
			}
			if _, err := h.br.Discard(2); err != nil { // CRLF after the data
				return err
			}
		}
	case h.clen >= 0:
		return h.appendBody(h.clen)
	default:
		// Body until the connection closes.
		h.closing = true
		for {
			if len(h.body) == cap(h.body) {
				h.body = append(h.body, 0)[:len(h.body)]
			}
			n, err := h.br.Read(h.body[len(h.body):cap(h.body)])
			h.body = h.body[:len(h.body)+n]
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
}

func (h *httpConn) appendBody(n int64) error {
	if n > 1<<24 {
		return fmt.Errorf("response body of %d bytes is too large", n)
	}
	start := len(h.body)
	need := start + int(n)
	if need > cap(h.body) {
		nb := make([]byte, start, need)
		copy(nb, h.body)
		h.body = nb
	}
	h.body = h.body[:need]
	_, err := io.ReadFull(h.br, h.body[start:])
	return err
}

// chunkSize reads one chunk-size line.
func (h *httpConn) chunkSize() (int64, error) {
	line, err := h.br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	line = bytes.TrimRight(line, "\r\n")
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
	if err != nil || n < 0 {
		return 0, errProtocol
	}
	return n, nil
}

// streamReader returns a reader over a streaming body (EventSource): chunked
// or until the connection closes.
func (h *httpConn) streamReader() io.Reader {
	if h.chunked {
		return &chunkReader{h: h}
	}
	if h.clen >= 0 {
		return io.LimitReader(h.br, h.clen)
	}
	return h.br
}

type chunkReader struct {
	h    *httpConn
	left int64
	done bool
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.done {
		return 0, io.EOF
	}
	if r.left == 0 {
		n, err := r.h.chunkSize()
		if err != nil {
			return 0, err
		}
		if n == 0 {
			r.done = true
			return 0, io.EOF
		}
		r.left = n
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.h.br.Read(p)
	r.left -= int64(n)
	if r.left == 0 && err == nil {
		_, err = r.h.br.Discard(2)
	}
	return n, err
}

// multipartBoundary returns the boundary of a multipart/mixed content type,
// or nil.
func multipartBoundary(ctype []byte) []byte {
	if len(ctype) < 15 || !bytes.EqualFold(ctype[:15], []byte("multipart/mixed")) {
		return nil
	}
	i := bytes.Index(bytes.ToLower(ctype), []byte("boundary="))
	if i < 0 {
		return nil
	}
	b := ctype[i+9:]
	if j := bytes.IndexByte(b, ';'); j >= 0 {
		b = b[:j]
	}
	return bytes.Trim(bytes.TrimSpace(b), `"`)
}

// eachPart calls fn with the payload of every part of a multipart body
// (lines ending in CRLF or LF alone) and reports whether the body was well
// formed.
func eachPart(body, boundary []byte, fn func([]byte)) bool {
	delim := append([]byte("--"), boundary...)
	i := bytes.Index(body, delim)
	if i < 0 {
		return false
	}
	rest := body[i+len(delim):]
	nl := append([]byte("\n"), delim...)
	for {
		if bytes.HasPrefix(rest, []byte("--")) {
			return true // the closing delimiter
		}
		j := bytes.IndexByte(rest, '\n')
		if j < 0 {
			return false
		}
		rest = rest[j+1:]
		for { // part headers, up to a blank line
			j = bytes.IndexByte(rest, '\n')
			if j < 0 {
				return false
			}
			line := bytes.TrimRight(rest[:j], "\r")
			rest = rest[j+1:]
			if len(line) == 0 {
				break
			}
		}
		j = bytes.Index(rest, nl)
		if j < 0 {
			return false
		}
		fn(bytes.TrimSuffix(rest[:j], []byte("\r")))
		rest = rest[j+len(nl):]
	}
}
