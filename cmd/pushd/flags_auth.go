package main

import (
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pushhub/push"
	"github.com/pushhub/push/pushauth"
	"github.com/pushhub/push/pushevents"
)

// authConfig is what the authorization flags set.
type authConfig struct {
	SubscribeURL string // -auth-url
	PublishURL   string // -publish-auth-url
	Timeout      time.Duration
	MaxInFlight  int
	SubscribeKey []byte // -subscribe-key
	PublishKey   []byte // -publish-key
	Cookie       string // -token-cookie

	SubscribeEventURL   string // -subscribe-event-url
	UnsubscribeEventURL string // -unsubscribe-event-url
}

// addAuthFlags defines the authorization flags on fs; check validates
// them after parsing.
func addAuthFlags(fs *flag.FlagSet, a *authConfig, o *push.Options) (check func() error) {
	var lpGrace time.Duration
	var subscriberCookie string

	fs.StringVar(&a.SubscribeURL, "auth-url", "", "ask this `URL` before admitting a subscriber (every long-poll request, every stream): a 2xx admits, any other answer is the subscriber's; see docs/auth.md. Empty: everyone is admitted")
	fs.StringVar(&a.PublishURL, "publish-auth-url", "", "ask this `URL` before every publisher request, as -auth-url does for subscribers. Empty: every publisher is allowed")
	a.Timeout = pushauth.DefaultUpstreamTimeout
	fs.Func("auth-timeout", "how long (a `duration`) -auth-url and -publish-auth-url may take to answer before the client gets 503 (default 5s)", func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return errors.New("want a Go duration > 0, like 5s")
		}
		a.Timeout = d
		return nil
	})
	fs.Func("auth-max-in-flight", "most requests (`n`) in flight to each of -auth-url and -publish-auth-url; further ones wait within -auth-timeout (default 256)", func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return errors.New("want a whole number > 0")
		}
		a.MaxInFlight = n
		return nil
	})
	fs.Func("subscribe-key", "HMAC-SHA256 `key` (at least 32 bytes; @file reads it from a file) of the tokens (JWT, HS256) subscribers must present as ?token=, Authorization: Bearer or a cookie; see docs/auth.md. Empty: no token needed", keyFlag(&a.SubscribeKey))
	fs.Func("publish-key", "HMAC-SHA256 `key` of the tokens publishers must present, as -subscribe-key for subscribers; use another key. Empty: no token needed", keyFlag(&a.PublishKey))
	fs.StringVar(&a.Cookie, "token-cookie", pushauth.DefaultTokenCookie, "`name` of the cookie a token may come in")
	fs.StringVar(&a.SubscribeEventURL, "subscribe-event-url", "", "POST a JSON event to this `URL` when a subscriber is admitted (a long-poll subscriber: at its first request); see docs/auth.md. Empty: none")
	fs.StringVar(&a.UnsubscribeEventURL, "unsubscribe-event-url", "", "POST a JSON event to this `URL` when a subscriber is gone (a long-poll subscriber: -longpoll-grace after its last answer). Empty: none")
	fs.Func("longpoll-grace", "how long (a `duration`) a long-poll subscriber has to come back after an answer before it counts as gone (default 10s)", func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return errors.New("want a Go duration > 0, like 10s")
		}
		lpGrace = d
		return nil
	})
	fs.StringVar(&subscriberCookie, "subscriber-cookie", "", "`name` of a cookie (a session cookie) whose value is the subscriber key in events and tells long-poll subscribers apart. Empty: a random key, long-poll subscribers followed by their position")
	return func() error {
		o.LongPollGrace, o.SubscriberCookie = lpGrace, subscriberCookie
		for _, u := range []struct{ flag, url string }{{"-auth-url", a.SubscribeURL}, {"-publish-auth-url", a.PublishURL},
			{"-subscribe-event-url", a.SubscribeEventURL}, {"-unsubscribe-event-url", a.UnsubscribeEventURL}} {
			if u.url == "" {
				continue
			}
			if err := (&pushauth.Upstream{URL: u.url}).Check(); err != nil {
				return fmt.Errorf("%s: %v", u.flag, err)
			}
		}
		if a.SubscribeKey != nil && a.PublishKey != nil && string(a.SubscribeKey) == string(a.PublishKey) {
			return errors.New("-subscribe-key and -publish-key are the same: a subscriber's token would publish; use two keys")
		}
		return nil
	}
}

// keyFlag reads a token key, or with @file the file's content (less
// trailing white space), into k.
func keyFlag(k *[]byte) func(string) error {
	return func(s string) error {
		if name, ok := strings.CutPrefix(s, "@"); ok {
			b, err := os.ReadFile(name)
			if err != nil {
				return err
			}
			s = strings.TrimRight(string(b), " \t\r\n")
		}
		if len(s) < pushauth.MinKeyLength {
			return fmt.Errorf("the key is %d bytes: use at least %d (e.g. openssl rand -hex 32)", len(s), pushauth.MinKeyLength)
		}
		*k = []byte(s)
		return nil
	}
}

// apply sets o's authorization hooks: a token is checked first, then the
// upstream is asked.
func (a *authConfig) apply(o *push.Options) {
	var subs []func(*http.Request, []string) error
	var pubs []func(*http.Request, string) error
	if a.SubscribeKey != nil {
		t := &pushauth.Tokens{Key: a.SubscribeKey, Cookie: a.Cookie}
		subs = append(subs, t.AuthorizeSubscribe)
	}
	if a.PublishKey != nil {
		t := &pushauth.Tokens{Key: a.PublishKey, Cookie: a.Cookie}
		pubs = append(pubs, t.AuthorizePublish)
	}
	if a.SubscribeURL != "" {
		u := &pushauth.Upstream{URL: a.SubscribeURL, Timeout: a.Timeout, MaxInFlight: a.MaxInFlight, Logger: o.Logger}
		subs = append(subs, u.AuthorizeSubscribe)
	}
	if a.PublishURL != "" {
		u := &pushauth.Upstream{URL: a.PublishURL, Timeout: a.Timeout, MaxInFlight: a.MaxInFlight, Logger: o.Logger}
		pubs = append(pubs, u.AuthorizePublish)
	}
	switch len(subs) {
	case 0:
	case 1:
		o.AuthorizeSubscribe = subs[0]
	default:
		o.AuthorizeSubscribe = func(r *http.Request, channels []string) error {
			for _, f := range subs {
				if err := f(r, channels); err != nil {
					return err
				}
			}
			return nil
		}
	}
	switch len(pubs) {
	case 0:
	case 1:
		o.AuthorizePublish = pubs[0]
	default:
		o.AuthorizePublish = func(r *http.Request, channel string) error {
			for _, f := range pubs {
				if err := f(r, channel); err != nil {
					return err
				}
			}
			return nil
		}
	}
}

// events returns the Sender of the event flags, with o's hooks set, or
// nil.
func (a *authConfig) events(o *push.Options) *pushevents.Sender {
	if a.SubscribeEventURL == "" && a.UnsubscribeEventURL == "" {
		return nil
	}
	s := pushevents.New(pushevents.Config{SubscribeURL: a.SubscribeEventURL, UnsubscribeURL: a.UnsubscribeEventURL, Logger: o.Logger})
	if a.SubscribeEventURL != "" {
		o.OnSubscribe = s.Subscribe
	}
	if a.UnsubscribeEventURL != "" {
		o.OnUnsubscribe = s.Unsubscribe
	}
	return s
}
