package push_test

// A differential test of push.Server's wire behaviour: a kept-alive
// connection to a Server has its publisher and long-poll requests read by
// the Hub itself, which must answer every byte sequence exactly as
// net/http with the handlers mounted does (or give the connection back to
// net/http): the same responses, in the same order, and the connection
// ending the same way.

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushhub/push"
)

// wireCase is a sequence of raw bytes sent, after a complete POST, on one
// connection.
type wireCase struct {
	name string
	// send is written in turn, one Write each.
	send []string
	// halfClose half-closes the connection after send; otherwise the
	// last request of send must end the connection (Connection: close,
	// HTTP/1.0, or an error net/http closes after).
	halfClose bool
	// methods are the methods of the requests answered, in order, where
	// one matters to read its response (HEAD); "" is GET.
	methods []string
}

// wireClose is a last request that ends the connection.
const wireClose = "GET /pub?id=a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

func wirePost(target, body string, headers ...string) string {
	return haReq("POST", target, body, headers...)
}

func wireCases() []wireCase {
	post := wirePost("/pub?id=a", "two")
	big := strings.Repeat("b", 5000)
	cases := []wireCase{
		{name: "pipelined publishes and polls", send: []string{
			post + wirePost("/pub?id=a", "three", "Content-Type: application/json") +
				haReq("GET", "/pub?id=a", "") +
				haReq("GET", "/sub?id=a", "") +
				haReq("GET", "/sub?id=a", "", "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT", "If-None-Match: 0") +
				haReq("GET", "/sub?id=empty", "") +
				haReq("GET", "/sub?id=a&callback=cb", "") +
				haReq("GET", "/pub?id=a", "", "Accept: application/json") +
				haReq("GET", "/pub?id=a", "", "Accept: text/xml") +
				haReq("GET", "/pub?id=nope", "") +
				haReq("OPTIONS", "/pub?id=a", "") +
				haReq("OPTIONS", "/sub?id=a", "") +
				haReq("PUT", "/pub?id=made", "") +
				haReq("DELETE", "/pub?id=made", "") +
				wireClose,
		}},
		{name: "publish and poll in separate writes", send: []string{
			"POST /pub?id=a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n", "\r\n", "tw", "o",
			"GET /sub?id=a HTTP/1.1\r\n", "Host: x\r\nConnection: close\r\n\r\n",
		}},
		{name: "byte by byte", send: strings.Split(post+wireClose, "")},
		{name: "large message", send: []string{wirePost("/pub?id=big", big) + haReq("GET", "/sub?id=big", "") + wireClose}},
		{name: "message over MaxMessageSize", send: []string{wirePost("/pub?id=a", strings.Repeat("x", 9000)) + wireClose}},
		{name: "HEAD", send: []string{haReq("HEAD", "/pub?id=a", "") + haReq("HEAD", "/sub?id=a", "") + wireClose},
			methods: []string{"HEAD", "HEAD"}},
		{name: "Connection close", send: []string{wirePost("/pub?id=a", "two", "Connection: close") + post}},
		{name: "Connection keep-alive, close", send: []string{wirePost("/pub?id=a", "two", "Connection: keep-alive, close") + post}},
		{name: "Connection upgrade without Upgrade", send: []string{wirePost("/pub?id=a", "two", "Connection: upgrade") + wireClose}},
		{name: "bad header line", send: []string{"POST /pub?id=a HTTP/1.1\r\nHost: x\r\nBad Header\r\nContent-Length: 3\r\n\r\ntwo"}},
		{name: "space before colon", send: []string{"POST /pub?id=a HTTP/1.1\r\nHost: x\r\nContent-Length : 3\r\n\r\ntwo"}},
		{name: "obs-fold", send: []string{"POST /pub?id=a HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\nContent-Length: 3\r\n\r\ntwo" + wireClose}},
		{name: "bare LF line ends", send: []string{"POST /pub?id=a HTTP/1.1\nHost: x\nContent-Length: 3\n\ntwo" + wireClose}},
		{name: "bare LF inside a header", send: []string{"POST /pub?id=a HTTP/1.1\r\nHost: x\nContent-Length: 3\r\n\r\ntwo" + wireClose}},
		{name: "NUL in a header value", send: []string{"POST /pub?id=a HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\nContent-Length: 3\r\n\r\ntwo"}},
		{name: "duplicate Content-Length, different", send: []string{"POST /pub?id=a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\ntwo!"}},
		{name: "duplicate Content-Length, same", send: []string{"POST /pub?id=a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\ntwo" + wireClose}},
		{name: "Content-Length list", send: []string{"POST /pub?id=a HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\ntwo" + wireClose}},
		{name: "Content-Length +3", send: []string{"POST /pub?id=a HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\ntwo" + wireClose}},
		{name: "Content-Length 03", send: []string{"POST /pub?id=a HTTP/1.1\r\nHost: x\r\nContent-Length: 03\r\n\r\ntwo" + wireClose}},
		{name: "Content-Length -1", send: []string{"POST /pub?id=a HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\ntwo"}},
		{name: "Content-Length huge", send: []string{"POST /pub?id=a HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\ntwo"}},
		{name: "body longer than Content-Length", send: []string{"POST /pub?id=a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\ntwo-and-more"}, halfClose: true},
		{name: "chunked body", send: []string{"POST /pub?id=a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ntwo\r\n0\r\n\r\n" +
			haReq("GET", "/sub?id=a", "", "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT", "If-None-Match: 0") + wireClose}},
		{name: "chunked body with a trailer", send: []string{"POST /pub?id=a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n3\r\ntwo\r\n0\r\nX-T: 1\r\n\r\n" + wireClose}},
		{name: "chunked and Content-Length", send: []string{"POST /pub?id=a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\ntwo\r\n0\r\n\r\n" + wireClose}},
		{name: "gzip, chunked", send: []string{"POST /pub?id=a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\ntwo\r\n0\r\n\r\n"}},
		{name: "bad chunk size", send: []string{"POST /pub?id=a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\ntwo\r\n0\r\n\r\n"}},
		{name: "Expect 100-continue", send: []string{wirePost("/pub?id=a", "two", "Expect: 100-continue") + wireClose}},
		{name: "Expect 100-continue, body later", send: []string{
			"POST /pub?id=a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n", "two", wireClose}},
		{name: "Expect other", send: []string{wirePost("/pub?id=a", "two", "Expect: something") + wireClose}},
		{name: "HTTP/1.0", send: []string{"POST /pub?id=a HTTP/1.0\r\nContent-Length: 3\r\n\r\ntwo" + post}},
		{name: "HTTP/1.0 keep-alive", send: []string{"POST /pub?id=a HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\ntwo" +
			"GET /sub?id=a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + wireClose}},
		{name: "HTTP/1.2", send: []string{"POST /pub?id=a HTTP/1.2\r\nHost: x\r\nContent-Length: 3\r\n\r\ntwo" + wireClose}},
		{name: "HTTP/2.0", send: []string{"POST /pub?id=a HTTP/2.0\r\nHost: x\r\nContent-Length: 3\r\n\r\ntwo"}},
		{name: "absolute-form target", send: []string{wirePost("http://x/pub?id=a", "two") + wireClose}},
		{name: "absolute-form, other host", send: []string{wirePost("http://elsewhere:99/pub?id=a", "two") + wireClose}},
		{name: "asterisk-form OPTIONS", send: []string{"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n" + wireClose}},
		{name: "lowercase method", send: []string{"post /pub?id=a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\ntwo" + wireClose}},
		{name: "unknown method", send: []string{"PURGE /pub?id=a HTTP/1.1\r\nHost: x\r\n\r\n" + wireClose}},
		{name: "missing Host", send: []string{"POST /pub?id=a HTTP/1.1\r\nContent-Length: 3\r\n\r\ntwo"}},
		{name: "two Hosts", send: []string{"POST /pub?id=a HTTP/1.1\r\nHost: x\r\nHost: y\r\nContent-Length: 3\r\n\r\ntwo"}},
		{name: "empty Host", send: []string{"POST /pub?id=a HTTP/1.1\r\nHost:\r\nContent-Length: 3\r\n\r\ntwo" + wireClose}},
		{name: "Host with a bad byte", send: []string{"POST /pub?id=a HTTP/1.1\r\nHost: x y\r\nContent-Length: 3\r\n\r\ntwo"}},
		{name: "extra space in the request line", send: []string{"POST  /pub?id=a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\ntwo"}},
		// net/http skips empty lines after a POST (RFC 9112 2.2, for old
		// clients that end a body with CRLF); not after other methods.
		{name: "empty line after the first POST", send: []string{"\r\n" + post + wireClose}},
		{name: "empty line after a kept-alive POST", send: []string{post + "\r\n" + post + wireClose}},
		{name: "empty line after a GET", send: []string{haReq("GET", "/sub?id=a", "") + "\r\n" + post + wireClose}},
		{name: "binary garbage", send: []string{"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"}},
		{name: "escaped path", send: []string{wirePost("/p%75b?id=a", "two") + wireClose}},
		{name: "other path", send: []string{wirePost("/pub/x?id=a", "two") + haReq("GET", "/other", "") + wireClose}},
		{name: "fragment", send: []string{wirePost("/pub?id=a#frag", "two") + wireClose}},
		{name: "query oddities", send: []string{wirePost("/pub?id=a&id=b", "two") + wirePost("/pub?id=%zz", "two") +
			wirePost("/pub?id=a;b", "two") + wirePost("/pub?id=a%20b", "two") + wirePost("/pub?x=1", "two") +
			wirePost("/pub?id=", "two") + wirePost("/pub?id=a&callback=c%28", "two") + wirePost("/pub?id=a&callback=cb", "two") + wireClose}},
		{name: "long channel id", send: []string{wirePost("/pub?id="+strings.Repeat("c", 2000), "two") + wireClose}},
		{name: "long header", send: []string{wirePost("/pub?id=a", "two", "X-Long: "+strings.Repeat("h", 10000)) + wireClose}},
		{name: "many headers", send: []string{wirePost("/pub?id=a", "two", slices.Repeat([]string{"X-Many: 1"}, 40)...) + wireClose}},
		{name: "EventSource event header", send: []string{wirePost("/pub?id=a", "two", "X-EventSource-Event: ev", "Content-Type: text/x-custom") +
			haReq("GET", "/sub?id=a", "", "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT", "If-None-Match: 0") + wireClose}},
		{name: "Origin not allowed", send: []string{wirePost("/pub?id=a", "two", "Origin: http://evil.example") +
			haReq("GET", "/sub?id=a", "", "Origin: http://evil.example") + wireClose}},
		{name: "Upgrade header", send: []string{haReq("GET", "/pub?id=a", "", "Upgrade: h2c", "Connection: Upgrade, HTTP2-Settings", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA") + wireClose}},
		{name: "complete request, then half-close", send: []string{post}, halfClose: true},
		// Complete publisher requests, then a half-close: answered. (Not
		// a long-poll: net/http reads the EOF while the handler runs and
		// cancels the request, so whether it is answered is a race.)
		{name: "two pipelined, then half-close", send: []string{post + haReq("GET", "/pub?id=a", "")}, halfClose: true},
	}
	// A kept-alive request cut short by a half-close after n bytes.
	full := wirePost("/pub?id=a", "four", "Content-Type: text/plain")
	for _, n := range []int{0, 1, 2, 3, 4, 9, strings.Index(full, "\r\n"), strings.Index(full, "\r\n") + 2,
		strings.Index(full, "Content-Type") + 5, strings.Index(full, "\r\n\r\n"), strings.Index(full, "\r\n\r\n") + 2,
		strings.Index(full, "\r\n\r\n") + 4, len(full) - 1} {
		cases = append(cases, wireCase{name: fmt.Sprintf("half-close after %d bytes", n), send: []string{full[:n]}, halfClose: true})
	}
	return cases
}

// wireOptions are both Hubs' Options: long-polls are answered at once.
func wireOptions() push.Options {
	return push.Options{IntervalPoll: true, MaxMessageSize: 8000, MaxChannelIDLength: 1500}
}

// wireTranscript sends tc on a new connection to addr, after a complete
// POST, and returns what came back: one line per response, and how the
// connection ended.
func wireTranscript(t *testing.T, addr string, tc wireCase) []string {
	t.Helper()
	c := haDial(t, addr)
	resp, body := c.do("POST", haReq("POST", "/pub?id=a", "one"))
	haWantStatus(t, "first POST", resp, body, http.StatusAccepted)
	for _, s := range tc.send {
		c.c.SetWriteDeadline(time.Now().Add(haWait))
		if _, err := io.WriteString(c.c, s); err != nil {
			t.Logf("write: %v", err) // the server may have closed already
			break
		}
	}
	if tc.halfClose {
		c.closeWrite()
	}
	var out []string
	for i := 0; ; i++ {
		if i > 100 {
			t.Fatal("more than 100 responses")
		}
		method := ""
		if i < len(tc.methods) {
			method = tc.methods[i]
		}
		c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.br.Peek(1); err != nil { // no byte of a next response
			out = append(out, wireEnd(err))
			return out
		}
		resp, body, err := c.tryRead(method, 5*time.Second)
		if err != nil {
			out = append(out, wireEnd(err))
			return out
		}
		out = append(out, wireFormat(resp, body))
	}
}

// wireEnd says how a connection ended.
func wireEnd(err error) string {
	switch {
	case errors.Is(err, io.EOF):
		return "end: closed"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "end: closed in the middle of a response"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "end: still open, nothing more within 5s"
	case errors.Is(err, net.ErrClosed), strings.Contains(err.Error(), "connection reset"):
		return "end: reset"
	}
	return "end: malformed response: " + err.Error()
}

var (
	// What legitimately differs between two Hubs given the same requests:
	// message ids (the publish time's second and the sequence within
	// it), Etag (that sequence), Last-Modified and how long ago a
	// channel was requested.
	wireMessageID = regexp.MustCompile(`\b1[0-9]{9}:[0-9]+\b`)
	wireHTTPDate  = regexp.MustCompile(`[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT`)
	wireEtag      = regexp.MustCompile(`\| Etag: [0-9]+`)
	wireAgo       = regexp.MustCompile(`-?[0-9]+( sec\. ago|</requested>)|("requested": ?|<requested>)-?[0-9]+`)
)

func wireNormalize(s string) string {
	s = wireHTTPDate.ReplaceAllString(s, "<date>")
	s = wireMessageID.ReplaceAllString(s, "<id>")
	s = wireEtag.ReplaceAllString(s, "| Etag: <seq>")
	return wireAgo.ReplaceAllStringFunc(s, func(m string) string {
		return strings.Map(func(r rune) rune {
			if r == '-' || r >= '0' && r <= '9' {
				return 'N'
			}
			return r
		}, m)
	})
}

// wireFormat is a response as a user sees it: status line, headers but
// Date, and body, with times masked.
func wireFormat(resp *http.Response, body string) string {
	var b strings.Builder
	b.WriteString(resp.Proto + " " + resp.Status)
	keys := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		if k != "Date" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " | %s: %s", k, strings.Join(resp.Header[k], ", "))
	}
	if len(resp.TransferEncoding) > 0 {
		fmt.Fprintf(&b, " | (Transfer-Encoding: %s)", strings.Join(resp.TransferEncoding, ", "))
	}
	if resp.Close {
		b.WriteString(" | (close)")
	}
	if body = wireNormalize(body); len(body) > 300 {
		body = fmt.Sprintf("%s... (%d bytes, sha256 %x)", body[:40], len(body), sha256.Sum256([]byte(body)))
	}
	fmt.Fprintf(&b, " | body %q", body)
	return wireNormalize(b.String())
}

// A push.Server answers every byte sequence on a kept-alive connection as
// a plain http.Server with PublishHandler and SubscribeHandler mounted
// does: pipelined requests, malformed ones, odd framings and protocols,
// and clients that half-close in the middle of a request.
func TestServerWireMatchesNetHTTP(t *testing.T) {
	for _, tc := range wireCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srvHub := haNewHub(t, wireOptions())
			srvAddr := haServeServer(t, srvHub, "/pub", "/sub", nil)
			plainHub := haNewHub(t, wireOptions())
			mux := http.NewServeMux()
			mux.Handle("/pub", plainHub.PublishHandler())
			mux.Handle("/sub", plainHub.SubscribeHandler())
			plainAddr := haServePlain(t, plainHub, mux)

			got := wireTranscript(t, srvAddr, tc)
			want := wireTranscript(t, plainAddr, tc)
			if !slices.Equal(got, want) {
				t.Errorf("push.Server and net/http answer differently.\npush.Server:\n\t%s\nnet/http:\n\t%s",
					strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
			} else if testing.Verbose() {
				t.Logf("both:\n\t%s", strings.Join(got, "\n\t"))
			}
		})
	}
}
