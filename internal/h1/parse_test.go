package h1

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func post(channel, body string, headers ...string) string {
	return "POST /pub?id=" + channel + " HTTP/1.1\r\nHost: x\r\n" + strings.Join(headers, "") +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

func poll(channel string, _ *http.Response, headers ...string) string {
	return "GET /sub?id=" + channel + " HTTP/1.1\r\nHost: x\r\n" + strings.Join(headers, "") + "\r\n"
}

// FuzzParse compares the request reader with net/http's: a
// request the Hub would answer itself must be one that net/http reads the
// same way (method, target, Host, headers, length, body, Connection: close),
// so that no request means one thing to the Hub and another to net/http or
// a proxy in front of it.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		post("a", "hello", "Content-Type: text/plain\r\n"),
		poll("a", nil, "Accept: */*\r\nIf-None-Match: 1:0\r\n"),
		"GET /sub?id=a&callback=cb HTTP/1.1\r\nHost: [::1]:80\r\nConnection: close\r\n\r\n",
		"POST /pub?id=a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
		"POST /pub?id=a HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nx-a: 2\r\n\tfolded\r\nContent-Length: 0\r\n\r\n",
		"GET /sub?id=%zz HTTP/1.1\r\nHost: x\r\nUser-Agent: \x80\xff\r\n\r\n",
		"DELETE /pub?id=a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab" + post("b", "x"),
	} {
		f.Add([]byte(seed))
	}
	cfg := &Config{PublishPath: "/pub", SubscribePath: "/sub", IsPoll: func(r *http.Request) bool {
		return r.Method == http.MethodOptions || (r.Method == http.MethodGet && !strings.Contains(r.Header.Get("Accept"), "text/event-stream"))
	}}
	f.Fuzz(func(t *testing.T, raw []byte) {
		d := &reader{cfg: cfg, template: newTemplate(context.Background(), "192.0.2.1:1234")}
		// The input reuses the memory of an answered request, as on a
		// connection whose requests no hook sees: nothing of it may show.
		prev := post("old", "q", "X-Old: 1\r\nAccept: text/old\r\nConnection: close\r\n")
		_, _, v := d.parse([]byte(prev))
		require.Equal(t, requestServe, v)
		d.spare, d.current = d.current, nil
		r, size, verdict := d.parse(raw)
		if verdict != requestServe {
			return
		}
		require.LessOrEqual(t, size, len(raw))
		want, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw[:size])))
		require.NoError(t, err, "net/http refuses what the Hub would answer: %q", raw[:size])
		assert.Equal(t, want.Method, r.Method)
		assert.Equal(t, want.RequestURI, r.RequestURI)
		assert.Equal(t, want.URL.Path, r.URL.Path)
		assert.Equal(t, want.URL.RawQuery, r.URL.RawQuery)
		assert.Equal(t, want.Host, r.Host)
		assert.Equal(t, want.Header, r.Header)
		assert.Equal(t, want.ContentLength, r.ContentLength)
		assert.Equal(t, want.Close, r.Close)
		wantBody, err := io.ReadAll(want.Body)
		require.NoError(t, err)
		body, _ := io.ReadAll(r.Body)
		assert.Equal(t, wantBody, body)
	})
}
