package main

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pushhub/push"
	"github.com/pushhub/push/pushjs"
)

//go:embed static
var static embed.FS

// Limits of the chat.
const (
	historyLength = 50          // messages a room keeps, shown to whoever joins
	maxTextRunes  = 500         // longest message
	maxNickRunes  = 24          // longest nickname
	burst         = 5           // messages a client may send at once...
	refill        = time.Second // ...and then one per refill
)

// clientCookie identifies a browser for rate limiting; it is signed so the
// app keeps no table of clients.
const clientCookie = "chat_client"

var roomName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// app is the chat web app. Create it with newApp; it is an http.Handler.
type app struct {
	hub *push.Hub
	mux *http.ServeMux
	key [32]byte         // signs client cookies
	now func() time.Time // replaced by tests

	mu      sync.Mutex
	buckets map[string]*bucket // rate limit per client
}

// A bucket is a token bucket: tokens left at time at.
type bucket struct {
	tokens float64
	at     time.Time
}

// newApp returns the app with its own Hub. Close it with hub.Shutdown.
func newApp() *app {
	a := &app{now: time.Now, buckets: make(map[string]*bucket)}
	rand.Read(a.key[:])
	a.hub = push.New(push.Options{
		// The last messages of a room are its history: a subscriber that
		// starts without a position gets them first, oldest first.
		MessageBufferLength: historyLength,
		MessageTTL:          24 * time.Hour,
		// Browsers name rooms (?room=lobby), not channels: the app maps a
		// room to its channel, so no other channel is reachable.
		ChannelIDs: roomChannels,
		// Only browsers that loaded the chat page (and got a client
		// cookie) may subscribe.
		AuthorizeSubscribe: a.authorizeSubscribe,
		SubscriberTimeout:  30 * time.Second,
	})
	files, _ := fs.Sub(static, "static")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.index)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(files)))
	mux.Handle("GET /static/push.js", pushjs.Handler()) // the browser subscriber
	mux.Handle("GET /sub", a.hub.SubscribeHandler())    // browsers subscribe here; the publisher is not exposed
	mux.HandleFunc("GET /rooms/{room}", a.roomInfo)
	mux.HandleFunc("POST /rooms/{room}/messages", a.send)
	a.mux = mux
	return a
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// roomChannels is the Hub's ChannelIDs hook: ?room=name, one room.
func roomChannels(r *http.Request) ([]string, error) {
	room := r.URL.Query().Get("room")
	if room == "" {
		return nil, nil // 404 "No channel id provided."
	}
	if !roomName.MatchString(room) {
		return nil, errors.New("a room name is 1 to 32 lower-case letters, digits or '-'")
	}
	return []string{channelOf(room)}, nil
}

func channelOf(room string) string { return "room:" + room }

// authorizeSubscribe is the Hub's AuthorizeSubscribe hook.
func (a *app) authorizeSubscribe(r *http.Request, channels []string) error {
	if a.client(r) == "" {
		return &push.HTTPError{StatusCode: http.StatusForbidden, Message: "Open the chat page first."}
	}
	return nil
}

// index serves the page and gives the browser a client cookie.
func (a *app) index(w http.ResponseWriter, r *http.Request) {
	if a.client(r) == "" {
		var b [16]byte
		rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		http.SetCookie(w, &http.Cookie{Name: clientCookie, Value: id + "." + a.sign(id), Path: "/",
			HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
	}
	w.Header().Set("Cache-Control", "no-store")
	http.ServeFileFS(w, r, static, "static/index.html")
}

func (a *app) sign(id string) string {
	m := hmac.New(sha256.New, a.key[:])
	m.Write([]byte(id))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// client returns the request's client id if its cookie is genuine, or "".
func (a *app) client(r *http.Request) string {
	c, err := r.Cookie(clientCookie)
	if err != nil {
		return ""
	}
	id, sig, ok := strings.Cut(c.Value, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(a.sign(id))) {
		return ""
	}
	return id
}

// roomInfo (GET /rooms/{room}) answers {"room", "members", "messages"}:
// members is how many subscribers the room's channel has now.
func (a *app) roomInfo(w http.ResponseWriter, r *http.Request) {
	room := r.PathValue("room")
	if !roomName.MatchString(room) {
		http.Error(w, "No such room.", http.StatusNotFound)
		return
	}
	info, err := a.hub.ChannelInfo(r.Context(), channelOf(room))
	if err != nil && !errors.Is(err, push.ErrChannelNotFound) {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"room": room, "members": info.Subscribers, "messages": info.Messages})
}

// A chatMessage is what the app publishes to a room, as JSON.
type chatMessage struct {
	Nick    string    `json:"nick"`
	Text    string    `json:"text"`
	Time    time.Time `json:"time"`
	Members int       `json:"members"` // subscribers of the room when it was sent
}

// send (POST /rooms/{room}/messages, JSON {"nick", "text"}) validates a
// message, applies the sender's rate limit and publishes it to the room.
func (a *app) send(w http.ResponseWriter, r *http.Request) {
	if o := r.Header.Get("Origin"); o != "" {
		if u, err := url.Parse(o); err != nil || u.Host != r.Host {
			http.Error(w, "Cross-origin request refused.", http.StatusForbidden)
			return
		}
	}
	client := a.client(r)
	if client == "" {
		http.Error(w, "Open the chat page first.", http.StatusForbidden)
		return
	}
	room := r.PathValue("room")
	if !roomName.MatchString(room) {
		http.Error(w, "A room name is 1 to 32 lower-case letters, digits or '-'.", http.StatusNotFound)
		return
	}
	var req struct{ Nick, Text string }
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<10)).Decode(&req); err != nil {
		http.Error(w, `Send JSON {"nick": ..., "text": ...}.`, http.StatusBadRequest)
		return
	}
	nick, text := strings.TrimSpace(req.Nick), strings.TrimSpace(req.Text)
	if msg := checkNick(nick); msg != "" {
		http.Error(w, msg, http.StatusBadRequest)
		return
	}
	if msg := checkText(text); msg != "" {
		http.Error(w, msg, http.StatusBadRequest)
		return
	}
	if wait := a.take(client); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		http.Error(w, "You are sending too fast; wait a moment.", http.StatusTooManyRequests)
		return
	}
	members := 0
	if info, err := a.hub.ChannelInfo(r.Context(), channelOf(room)); err == nil {
		members = info.Subscribers
	}
	data, _ := json.Marshal(chatMessage{Nick: nick, Text: text, Time: a.now().UTC().Truncate(time.Second), Members: members})
	m, _, err := a.hub.Publish(r.Context(), channelOf(room), &push.Message{Data: data, ContentType: "application/json"})
	if err != nil {
		http.Error(w, "Cannot send: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"id": m.ID.String()})
}

func checkNick(nick string) string {
	n := utf8.RuneCountInString(nick)
	if n == 0 || n > maxNickRunes || strings.IndexFunc(nick, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != ' ' && r != '_' && r != '-'
	}) >= 0 {
		return "A nickname is 1 to 24 letters, digits, spaces, '_' or '-'."
	}
	return ""
}

func checkText(text string) string {
	n := utf8.RuneCountInString(text)
	switch {
	case n == 0:
		return "The message is empty."
	case n > maxTextRunes:
		return "The message is too long: " + strconv.Itoa(n) + " characters, the limit is " + strconv.Itoa(maxTextRunes) + "."
	case !utf8.ValidString(text) || strings.IndexFunc(text, unicode.IsControl) >= 0:
		return "The message holds control characters."
	}
	return ""
}

// take spends one of client's tokens, or says how long until one is back.
func (a *app) take(client string) time.Duration {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.buckets) > 10000 { // forget full buckets: they are as good as new
		for id, b := range a.buckets {
			if now.Sub(b.at) >= burst*refill {
				delete(a.buckets, id)
			}
		}
	}
	b := a.buckets[client]
	if b == nil {
		b = &bucket{tokens: burst, at: now}
		a.buckets[client] = b
	}
	b.tokens = min(burst, b.tokens+float64(now.Sub(b.at))/float64(refill))
	b.at = now
	if b.tokens < 1 {
		return time.Duration((1 - b.tokens) * float64(refill))
	}
	b.tokens--
	return 0
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
