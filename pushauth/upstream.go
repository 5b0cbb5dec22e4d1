// Package pushauth authorizes the subscribers and publishers of a push Hub
// without Go code in the back end: by asking an upstream HTTP server
// (Upstream, pushd's -auth-url and -publish-auth-url), or by checking
// tokens the back end signed (Tokens, pushd's -subscribe-key and
// -publish-key; Mint signs them). Their methods are push.Options hooks:
//
//	up := &pushauth.Upstream{URL: "http://127.0.0.1:8080/push-auth"}
//	hub := push.New(push.Options{AuthorizeSubscribe: up.AuthorizeSubscribe})
//
// See docs/auth.md for the protocol and the token claims.
package pushauth

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pushhub/push"
)

// Defaults of the Upstream fields whose zero value stands for a default.
const (
	DefaultUpstreamTimeout     = 5 * time.Second
	DefaultUpstreamMaxInFlight = 256
	// MaxUpstreamBody is the largest refusal body passed on from the
	// upstream; a longer one makes the answer 502 Bad Gateway.
	MaxUpstreamBody = 64 << 10
)

// An Upstream authorizes requests by asking an HTTP server: for each
// request it sends a GET to URL carrying the request's Cookie,
// Authorization and Origin headers, its client's address (appended to
// X-Forwarded-For), X-Original-URI and X-Original-Method, and X-Push-Channel
// (the channel ids, joined by commas). A 2xx answer admits the request; any
// other answer is what the client gets (its status, Content-Type and body,
// the body up to MaxUpstreamBody). No answer within Timeout, or no
// connection, answers 503 Service Unavailable and logs why.
//
// Connections to the upstream are kept alive and reused. An Upstream's
// methods may be called from many goroutines; set its fields before the
// first call and do not change them after; do not copy an Upstream.
type Upstream struct {
	// URL is the upstream's address, as http://host:port/path. A query
	// is kept.
	URL string
	// Timeout bounds each request, from the wait for a slot (MaxInFlight)
	// to the end of the answer. 0 means DefaultUpstreamTimeout.
	Timeout time.Duration
	// MaxInFlight bounds the requests in flight to the upstream; further
	// ones wait (within Timeout) for one to end. 0 means
	// DefaultUpstreamMaxInFlight.
	MaxInFlight int
	// Client sends the requests. Nil: a client of its own whose transport
	// keeps up to MaxInFlight idle connections to the upstream. Redirects
	// are not followed either way: a 3xx answer is passed on.
	Client *http.Client
	// Logger receives a line for each request the upstream did not answer.
	// Nil: slog.Default().
	Logger *slog.Logger

	once   sync.Once
	sem    chan struct{}
	client *http.Client
	err    error
}

// AuthorizeSubscribe is a push.Options.AuthorizeSubscribe hook that asks
// the upstream.
func (u *Upstream) AuthorizeSubscribe(r *http.Request, channels []string) error {
	return u.Authorize(r, channels)
}

// AuthorizePublish is a push.Options.AuthorizePublish hook that asks the
// upstream.
func (u *Upstream) AuthorizePublish(r *http.Request, channel string) error {
	return u.Authorize(r, []string{channel})
}

// Check reports whether URL is an absolute http or https URL, with an
// error that says what to fix.
func (u *Upstream) Check() error {
	if !strings.HasPrefix(u.URL, "http://") && !strings.HasPrefix(u.URL, "https://") {
		return fmt.Errorf("pushauth: upstream URL %q: give an absolute http:// or https:// URL", u.URL)
	}
	_, err := http.NewRequest(http.MethodGet, u.URL, nil)
	if err != nil {
		return fmt.Errorf("pushauth: upstream URL %q: %v", u.URL, err)
	}
	return nil
}

func (u *Upstream) setup() {
	n := u.MaxInFlight
	if n <= 0 {
		n = DefaultUpstreamMaxInFlight
	}
	u.sem = make(chan struct{}, n)
	c := u.Client
	if c == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns = n
		tr.MaxIdleConnsPerHost = n
		c = &http.Client{Transport: tr}
	}
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	u.client = &cc
	u.err = u.Check()
}

// unavailable is the answer when the upstream cannot be asked.
var unavailable = &push.HTTPError{StatusCode: http.StatusServiceUnavailable,
	Message: "Service Unavailable: the authorization server did not answer; retry later."}

// Authorize asks the upstream about r, a request for channels. It returns
// nil if the upstream admits it, else a *push.HTTPError with the
// upstream's answer (or 503, or 502 for an answer too long to pass on).
func (u *Upstream) Authorize(r *http.Request, channels []string) error {
	u.once.Do(u.setup)
	log := u.Logger
	if log == nil {
		log = slog.Default()
	}
	if u.err != nil {
		log.Error("push: authorization upstream misconfigured", "error", u.err)
		return unavailable
	}
	timeout := u.Timeout
	if timeout <= 0 {
		timeout = DefaultUpstreamTimeout
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	select {
	case u.sem <- struct{}{}:
		defer func() { <-u.sem }()
	case <-ctx.Done():
		if r.Context().Err() == nil {
			log.Warn("push: authorization upstream: too many requests in flight; answered 503",
				"url", u.URL, "max_in_flight", cap(u.sem), "timeout", timeout)
		}
		return unavailable
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.URL, nil)
	if err != nil {
		log.Error("push: authorization upstream misconfigured", "error", err)
		return unavailable
	}
	hd := req.Header
	for _, k := range []string{"Cookie", "Authorization", "Origin"} {
		if v := r.Header.Values(k); len(v) > 0 {
			hd[k] = v
		}
	}
	xff := r.Header.Values("X-Forwarded-For")
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		xff = append(xff[:len(xff):len(xff)], ip)
	}
	if len(xff) > 0 {
		hd.Set("X-Forwarded-For", strings.Join(xff, ", "))
	}
	hd.Set("X-Original-URI", r.URL.RequestURI())
	hd.Set("X-Original-Method", r.Method)
	hd.Set("X-Push-Channel", strings.Join(channels, ","))
	resp, err := u.client.Do(req)
	if err != nil {
		if r.Context().Err() == nil {
			log.Warn("push: authorization upstream did not answer; answered 503", "url", u.URL, "error", err)
		}
		return unavailable
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		io.Copy(io.Discard, io.LimitReader(resp.Body, MaxUpstreamBody)) // for the connection's reuse
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxUpstreamBody+1))
	switch {
	case err != nil:
		log.Warn("push: authorization upstream: reading its answer failed; answered 503", "url", u.URL, "error", err)
		return unavailable
	case len(body) > MaxUpstreamBody:
		log.Warn("push: authorization upstream: refusal body over the limit; answered 502", "url", u.URL, "limit", MaxUpstreamBody)
		return &push.HTTPError{StatusCode: http.StatusBadGateway,
			Message: "Bad Gateway: the authorization server's answer is too long."}
	case resp.StatusCode < 200:
		log.Warn("push: authorization upstream: informational status as a final answer; answered 502", "url", u.URL, "status", resp.StatusCode)
		return &push.HTTPError{StatusCode: http.StatusBadGateway, Message: "Bad Gateway: the authorization server's answer is invalid."}
	}
	return &push.HTTPError{StatusCode: resp.StatusCode, Message: string(body), ContentType: resp.Header.Get("Content-Type")}
}
