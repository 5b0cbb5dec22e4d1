package pushauth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/pushhub/push"
)

// MaxTokenLength is the longest token accepted, in bytes.
const MaxTokenLength = 4096

// MinKeyLength is the shortest key Tokens and Mint accept, in bytes: the
// output size of SHA-256, as RFC 7518 asks of HS256 keys.
const MinKeyLength = 32

// DefaultTokenCookie is the cookie Tokens reads when Cookie is empty.
const DefaultTokenCookie = "push_token"

// Claims are what a token grants: the channels named in Channels, and
// those whose id starts with Prefix (if not empty), until Expires. In the
// token (a JWT signed with HS256) they are the claims "channels" (an array
// of strings), "prefix" (a string), "exp" (seconds since 1970, UTC) and
// "sub" (Subject).
type Claims struct {
	Channels []string
	Prefix   string
	Expires  time.Time
	// Subject names the client, for the back end's own use; optional.
	Subject string
}

// allows reports whether c grants channel.
func (c *Claims) allows(channel string) bool {
	if c.Prefix != "" && strings.HasPrefix(channel, c.Prefix) {
		return true
	}
	for _, ch := range c.Channels {
		if ch == channel {
			return true
		}
	}
	return false
}

// jwtClaims is Claims as JSON.
type jwtClaims struct {
	Channels []string `json:"channels,omitempty"`
	Prefix   string   `json:"prefix,omitempty"`
	jwt.RegisteredClaims
}

// Mint returns a token granting c, signed with key (at least MinKeyLength
// bytes). c must name a channel or a prefix and an expiry.
func Mint(key []byte, c Claims) (string, error) {
	if len(key) < MinKeyLength {
		return "", fmt.Errorf("pushauth: the key is %d bytes: use at least %d random bytes", len(key), MinKeyLength)
	}
	if len(c.Channels) == 0 && c.Prefix == "" {
		return "", errors.New("pushauth: the claims grant no channel: set Channels or Prefix")
	}
	if c.Expires.IsZero() {
		return "", errors.New("pushauth: the claims have no expiry: set Expires")
	}
	jc := jwtClaims{Channels: c.Channels, Prefix: c.Prefix}
	jc.ExpiresAt = jwt.NewNumericDate(c.Expires)
	jc.Subject = c.Subject
	return jwt.NewWithClaims(jwt.SigningMethodHS256, jc).SignedString(key)
}

// Tokens authorizes requests that carry a token signed with Key (see
// Claims): in the query argument "token", in Authorization: Bearer, or in
// a cookie, looked for in that order. A request without a valid token
// gets 401 Unauthorized; one whose token does not grant all its channels
// gets 403 Forbidden. Use one key for subscribers and another for
// publishers, so that a subscriber's token cannot publish.
type Tokens struct {
	// Key is the HMAC-SHA256 key, at least MinKeyLength bytes.
	Key []byte
	// Cookie is the name of the cookie holding the token. Empty:
	// DefaultTokenCookie.
	Cookie string
}

// Check reports whether the key is long enough, with an error that says
// what to fix.
func (t *Tokens) Check() error {
	if len(t.Key) < MinKeyLength {
		return fmt.Errorf("pushauth: the token key is %d bytes: use at least %d random bytes (e.g. openssl rand -hex 32)", len(t.Key), MinKeyLength)
	}
	return nil
}

// AuthorizeSubscribe is a push.Options.AuthorizeSubscribe hook: the
// request's token must grant every channel. The subscription ends when the
// token expires (push.EndSubscriptionAt).
func (t *Tokens) AuthorizeSubscribe(r *http.Request, channels []string) error {
	c, err := t.Authorize(r, channels)
	if err != nil {
		return err
	}
	push.EndSubscriptionAt(r, c.Expires)
	return nil
}

// AuthorizePublish is a push.Options.AuthorizePublish hook: the request's
// token must grant the channel. A publishing WebSocket is closed when the
// token expires (push.EndSubscriptionAt).
func (t *Tokens) AuthorizePublish(r *http.Request, channel string) error {
	c, err := t.Authorize(r, []string{channel})
	if err != nil {
		return err
	}
	push.EndSubscriptionAt(r, c.Expires)
	return nil
}

// Authorize returns the claims of r's token if it grants every channel,
// else a *push.HTTPError that says why not.
func (t *Tokens) Authorize(r *http.Request, channels []string) (Claims, error) {
	tok := t.token(r)
	if tok == "" {
		name := t.Cookie
		if name == "" {
			name = DefaultTokenCookie
		}
		return Claims{}, unauthorized("a token is required: send it as ?token=, as Authorization: Bearer or in the " + name + " cookie")
	}
	c, err := t.Verify(tok)
	if err != nil {
		return Claims{}, err
	}
	for _, ch := range channels {
		if !c.allows(ch) {
			return Claims{}, &push.HTTPError{StatusCode: http.StatusForbidden,
				Message: "Forbidden: the token does not grant channel " + ch + "."}
		}
	}
	return c, nil
}

// token returns the token r carries, or "".
func (t *Tokens) token(r *http.Request) string {
	if v := queryToken(r.URL.RawQuery); v != "" {
		return v
	}
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	name := t.Cookie
	if name == "" {
		name = DefaultTokenCookie
	}
	if ck, err := r.Cookie(name); err == nil {
		return ck.Value
	}
	return ""
}

// queryToken returns the first "token" argument of a raw query.
func queryToken(raw string) string {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		if v, ok := strings.CutPrefix(kv, "token="); ok {
			// A JWT is base64url and dots: nothing to unescape, and
			// anything escaped is not a token.
			return v
		}
	}
	return ""
}

var parser = jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithExpirationRequired())

// Verify checks a token's signature and expiry and returns its claims, or
// a *push.HTTPError (401) that says what is wrong.
func (t *Tokens) Verify(token string) (Claims, error) {
	if err := t.Check(); err != nil { // an empty key would let anyone sign
		return Claims{}, &push.HTTPError{StatusCode: http.StatusServiceUnavailable,
			Message: "Tokens cannot be checked: the server's key is missing or too short."}
	}
	if len(token) > MaxTokenLength {
		return Claims{}, unauthorized(fmt.Sprintf("the token is longer than %d bytes", MaxTokenLength))
	}
	var jc jwtClaims
	_, err := parser.ParseWithClaims(token, &jc, func(*jwt.Token) (any, error) { return t.Key, nil })
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired):
		return Claims{}, unauthorized("the token expired: get a new one from the back end")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return Claims{}, unauthorized("the token's signature is not valid (another key, or an altered token)")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return Claims{}, unauthorized("the token has no expiry (exp)")
	case errors.Is(err, jwt.ErrTokenMalformed):
		return Claims{}, unauthorized("the token is not a JWT (header.claims.signature in base64url)")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return Claims{}, unauthorized("the token is not signed with HS256")
	default:
		return Claims{}, unauthorized("the token is not valid: " + err.Error())
	}
	c := Claims{Channels: jc.Channels, Prefix: jc.Prefix, Subject: jc.Subject}
	if jc.ExpiresAt != nil {
		c.Expires = jc.ExpiresAt.Time
	}
	return c, nil
}

func unauthorized(why string) error {
	return &push.HTTPError{StatusCode: http.StatusUnauthorized, Message: "Unauthorized: " + why + "."}
}
