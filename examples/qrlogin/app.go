package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/pushhub/push"
	"github.com/pushhub/push/pushjs"
	"rsc.io/qr"
)

//go:embed static
var static embed.FS

// Cookies the app sets. browserCookie binds a login to the browser that
// started it; sessionCookie is the logged-in session.
const (
	browserCookie = "qrlogin_browser"
	sessionCookie = "qrlogin_session"
)

// Lifetimes.
const (
	loginTTL    = 2 * time.Minute  // how long a QR code can be used (app.loginTTL)
	exchangeTTL = 30 * time.Second // how long the PC has to redeem the code after the phone confirmed
	forgetAfter = 10 * time.Minute // how long a finished or expired login is remembered, to explain a reused QR
	maxLogins   = 100000           // pending logins kept at most (a bound against floods)
)

type loginState int

const (
	pending   loginState = iota // QR shown, waiting for the phone
	confirmed                   // the phone confirmed; the PC may redeem the code
	denied                      // the phone said no
	done                        // the PC redeemed the code
)

// A login is one QR-code login attempt.
type login struct {
	channel string // push channel the PC page waits on (128-bit random)
	token   string // secret in the QR code's URL (128-bit random, single use)
	browser string // browserCookie value of the PC that started it
	pcAgent string // what the phone is told about the PC
	pcAddr  string
	created time.Time
	expires time.Time
	state   loginState
	user    string // who confirmed
	code    string // one-time code the PC exchanges for its session
}

// app is the QR login web app. Create it with newApp; it is an http.Handler.
type app struct {
	hub      *push.Hub
	mux      *http.ServeMux
	now      func() time.Time // replaced by tests
	loginTTL time.Duration    // how long a QR code can be used; shortened by tests
	// publicURL is the app's URL as a phone reaches it
	// ("https://login.example.com", "http://192.168.1.20:8081"), for the
	// QR code; empty: the scheme and Host of the computer's request, which
	// a phone cannot reach when that is localhost.
	publicURL string

	mu        sync.Mutex
	byChannel map[string]*login
	byToken   map[string]*login
	sessions  map[string]string // sessionCookie value -> user name
	swept     time.Time         // last sweep
}

// newApp returns the app with its own Hub. Close it with hub.Shutdown.
func newApp() *app {
	a := &app{
		now:       time.Now,
		loginTTL:  loginTTL,
		byChannel: make(map[string]*login),
		byToken:   make(map[string]*login),
		sessions:  make(map[string]string),
	}
	a.hub = push.New(push.Options{
		// Only channels the app created (on POST /login) can be
		// subscribed to; a browser cannot conjure channels.
		AuthorizedChannelsOnly: true,
		// Only the browser that started a login may wait on its channel.
		AuthorizeSubscribe: a.authorizeSubscribe,
		// Held long-polls are answered 304 after 30s and re-polled, which
		// keeps proxies from cutting them.
		SubscriberTimeout: 30 * time.Second,
	})
	files, _ := fs.Sub(static, "static")
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", fileHandler(files, "index.html"))
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(files)))
	mux.Handle("GET /static/push.js", pushjs.Handler()) // the browser subscriber
	mux.Handle("GET /sub", a.hub.SubscribeHandler())    // browsers subscribe here; the publisher is not exposed
	mux.HandleFunc("POST /login", a.startLogin)
	mux.HandleFunc("GET /qr/{token}", a.qrImage)
	mux.HandleFunc("GET /m/{token}", a.phonePage)
	mux.HandleFunc("POST /m/{token}", a.phoneAnswer)
	mux.HandleFunc("POST /login/exchange", a.exchange)
	mux.HandleFunc("GET /me", a.me)
	mux.HandleFunc("POST /logout", a.logout)
	a.mux = mux
	return a
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && !sameOrigin(r) {
		http.Error(w, "Cross-origin request refused.", http.StatusForbidden)
		return
	}
	a.mux.ServeHTTP(w, r)
}

// authorizeSubscribe is the Hub's AuthorizeSubscribe hook: one channel, a
// pending login's, asked for by the browser that started it.
func (a *app) authorizeSubscribe(r *http.Request, channels []string) error {
	forbidden := &push.HTTPError{StatusCode: http.StatusForbidden, Message: "Not your login."}
	if len(channels) != 1 {
		return forbidden
	}
	c, err := r.Cookie(browserCookie)
	if err != nil {
		return forbidden
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.byChannel[channels[0]]
	if l == nil || !equal(l.browser, c.Value) || l.state == done || a.now().After(l.expires) {
		return forbidden
	}
	return nil
}

// startLogin (POST /login) creates a login for this browser and answers
// what the page needs to show the QR code and wait.
func (a *app) startLogin(w http.ResponseWriter, r *http.Request) {
	browser := ""
	if c, err := r.Cookie(browserCookie); err == nil && len(c.Value) == 32 {
		browser = c.Value
	} else {
		browser = randomID()
		http.SetCookie(w, &http.Cookie{Name: browserCookie, Value: browser, Path: "/",
			HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
	}
	now := a.now()
	l := &login{
		channel: "login-" + randomID(),
		token:   randomID(),
		browser: browser,
		pcAgent: r.UserAgent(),
		pcAddr:  r.RemoteAddr,
		created: now,
	}
	a.mu.Lock()
	ttl := a.loginTTL
	l.expires = now.Add(ttl)
	a.sweep(now)
	full := len(a.byChannel) >= maxLogins
	if !full {
		a.byChannel[l.channel] = l
		a.byToken[l.token] = l
	}
	a.mu.Unlock()
	if full {
		http.Error(w, "Too many logins in progress; try again in a minute.", http.StatusServiceUnavailable)
		return
	}
	if _, err := a.hub.CreateChannel(r.Context(), l.channel); err != nil {
		a.mu.Lock()
		delete(a.byChannel, l.channel)
		delete(a.byToken, l.token)
		a.mu.Unlock()
		http.Error(w, "Cannot start a login: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, map[string]any{
		"channel":   l.channel,
		"qr":        "/qr/" + l.token,
		"url":       a.phoneURL(r, l.token),
		"expiresIn": ttl.Seconds(),
	})
}

// phoneURL is the URL a phone opens for the login with token: under
// publicURL when set, else under the scheme and host the computer used.
func (a *app) phoneURL(r *http.Request, token string) string {
	base := strings.TrimSuffix(a.publicURL, "/")
	if base == "" {
		base = "http://" + r.Host
		if r.TLS != nil {
			base = "https://" + r.Host
		}
	}
	return base + "/m/" + token
}

// sweep forgets logins long past their expiry, at most once a minute.
// a.mu is held.
func (a *app) sweep(now time.Time) {
	if now.Sub(a.swept) < time.Minute {
		return
	}
	a.swept = now
	for id, l := range a.byChannel {
		if now.Sub(l.expires) > forgetAfter {
			delete(a.byChannel, id)
			delete(a.byToken, l.token)
		}
	}
}

// qrImage (GET /qr/{token}) draws the QR code of a login's phone URL, for
// the browser that started it only.
func (a *app) qrImage(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(browserCookie)
	a.mu.Lock()
	l := a.byToken[r.PathValue("token")]
	ok := l != nil && err == nil && equal(l.browser, c.Value)
	a.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	code, err := qr.Encode(a.phoneURL(r, l.token), qr.M)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	code.Scale = 6
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(code.PNG())
}

// refusal says why a QR token cannot be used (status, title, text), or
// returns status 0 when it can. a.mu is held.
func (a *app) refusal(l *login) (int, string, string) {
	switch {
	case l == nil:
		return http.StatusNotFound, "Unknown QR code",
			"This login QR code is not valid. Open the login page on your computer and scan the code shown there."
	case l.state != pending:
		return http.StatusGone, "QR code already used",
			"This QR code was already used. Each code logs in once; reload the login page on your computer for a new one."
	case a.now().After(l.expires):
		return http.StatusGone, "QR code expired",
			"This QR code has expired (codes are valid for 2 minutes). Reload the login page on your computer for a new one."
	}
	return 0, "", ""
}

// phonePage (GET /m/{token}) asks the phone's user to confirm.
func (a *app) phonePage(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	l := a.byToken[r.PathValue("token")]
	status, title, text := a.refusal(l)
	var data map[string]any
	if status == 0 {
		data = map[string]any{
			"Confirm": true,
			"Agent":   l.pcAgent,
			"Addr":    l.pcAddr,
			"Age":     a.now().Sub(l.created).Round(time.Second).String(),
			"Left":    l.expires.Sub(a.now()).Round(time.Second).String(),
		}
	}
	a.mu.Unlock()
	if status != 0 {
		a.page(w, status, title, text, nil)
		return
	}
	a.page(w, http.StatusOK, "Log in on your computer?", "", data)
}

var userName = regexp.MustCompile(`^[\p{L}\p{N}_.-]{1,32}$`)

// phoneAnswer (POST /m/{token}) takes the phone's answer: it marks the
// login used and publishes the outcome on the login's channel. A confirm
// carries a one-time code, not a credential: only the browser holding the
// login's browser cookie can redeem it.
func (a *app) phoneAnswer(w http.ResponseWriter, r *http.Request) {
	// In a real app the phone is already signed in and the user comes from
	// its session; this demo lets the phone's user type a name.
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	user := strings.TrimSpace(r.PostFormValue("user"))
	confirm := r.PostFormValue("answer") == "confirm"
	if confirm && !userName.MatchString(user) {
		http.Error(w, "A user name is 1 to 32 letters, digits, '.', '_' or '-'.", http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	l := a.byToken[r.PathValue("token")]
	if status, title, text := a.refusal(l); status != 0 {
		a.mu.Unlock()
		a.page(w, status, title, text, nil)
		return
	}
	msg := map[string]string{"event": "denied"}
	expires := l.expires
	if confirm {
		l.state = confirmed
		l.user = user
		l.code = randomID()
		l.expires = a.now().Add(exchangeTTL)
		msg = map[string]string{"event": "confirmed", "code": l.code}
	} else {
		l.state = denied
	}
	channel := l.channel
	a.mu.Unlock()

	data, _ := json.Marshal(msg)
	if _, _, err := a.hub.Publish(r.Context(), channel, &push.Message{Data: data, ContentType: "application/json"}); err != nil {
		a.mu.Lock() // the computer was not told: the QR code stays usable
		l.state, l.user, l.code, l.expires = pending, "", "", expires
		a.mu.Unlock()
		a.page(w, http.StatusServiceUnavailable, "Try again", "The computer could not be told: "+err.Error(), nil)
		return
	}
	if confirm {
		a.page(w, http.StatusOK, "Done", "You are now logged in on your computer as "+user+".", nil)
	} else {
		a.page(w, http.StatusOK, "Cancelled", "The login was refused. Nobody was logged in.", nil)
	}
}

// exchange (POST /login/exchange, JSON {"channel", "code"}) turns a
// confirmed login's one-time code into a session cookie, for the browser
// that started the login only, once.
func (a *app) exchange(w http.ResponseWriter, r *http.Request) {
	var req struct{ Channel, Code string }
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		http.Error(w, "Send JSON {\"channel\": ..., \"code\": ...}.", http.StatusBadRequest)
		return
	}
	c, err := r.Cookie(browserCookie)
	a.mu.Lock()
	l := a.byChannel[req.Channel]
	ok := l != nil && err == nil && equal(l.browser, c.Value) && l.state == confirmed &&
		equal(l.code, req.Code) && !a.now().After(l.expires)
	var session, user string
	if ok {
		l.state = done
		l.code = ""
		user = l.user
		session = randomID()
		a.sessions[session] = user
	}
	a.mu.Unlock()
	if !ok {
		http.Error(w, "This login cannot be completed (wrong browser, code already used or expired). Start again.", http.StatusForbidden)
		return
	}
	// The channel has served its purpose: delete it and its message.
	a.hub.DeleteChannel(context.WithoutCancel(r.Context()), req.Channel)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: session, Path: "/",
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
	writeJSON(w, map[string]string{"user": user})
}

// me (GET /me) answers the logged-in user, or 401.
func (a *app) me(w http.ResponseWriter, r *http.Request) {
	if user := a.user(r); user != "" {
		writeJSON(w, map[string]string{"user": user})
		return
	}
	http.Error(w, "Not logged in.", http.StatusUnauthorized)
}

func (a *app) user(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return ""
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sessions[c.Value]
}

// logout (POST /logout) ends the session.
func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		a.mu.Lock()
		delete(a.sessions, c.Value)
		a.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Path: "/", MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}

var pageTemplate = template.Must(template.ParseFS(static, "static/phone.html"))

// page writes the phone page: a message, or the confirm form when
// data["Confirm"] is set.
func (a *app) page(w http.ResponseWriter, status int, title, text string, data map[string]any) {
	if data == nil {
		data = map[string]any{}
	}
	data["Title"], data["Text"] = title, text
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	pageTemplate.Execute(w, data)
}

// randomID returns 128 random bits as 32 hex digits.
func randomID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// equal compares secrets in constant time.
func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// sameOrigin refuses cross-site form posts: a present Origin must name this host.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(v)
}

// fileHandler serves one file of fsys.
func fileHandler(fsys fs.FS, name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		http.ServeFileFS(w, r, fsys, name)
	})
}
