package push

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A SubscriberEvent tells Options.OnSubscribe and Options.OnUnsubscribe
// about a subscriber.
type SubscriberEvent struct {
	// Channels are the subscriber's channel ids.
	Channels []string
	// Transport is the subscriber's transport (TransportLongPoll for
	// long-poll and interval-poll, TransportJSONP, ...).
	Transport Transport
	// RemoteAddr is the subscriber's address, as http.Request.RemoteAddr.
	RemoteAddr string
	// Key identifies the subscriber: the same in its subscribe and its
	// unsubscribe event. With Options.SubscriberCookie it is that cookie's
	// value (so a back end can correlate it with its session); else a
	// random id.
	Key string
	// Time is when the event happened.
	Time time.Time
	// Reason says why the subscriber is gone (unsubscribe events only):
	// "closed" (the client closed its connection, or it broke), "left" (a
	// long-poll subscriber that did not come back within
	// Options.LongPollGrace), "timeout" (Options.SubscriberTimeout),
	// "expired" (EndSubscriptionAt), "deleted" (a channel was deleted),
	// "conflict" (Options.Concurrency), "shutdown" (Hub.Shutdown) or
	// "error".
	Reason string
	// Duration is how long the subscriber was subscribed (unsubscribe
	// events only): for a long-poll subscriber, from its first request to
	// its last answer.
	Duration time.Duration
}

// DefaultLongPollGrace is the default of Options.LongPollGrace.
const DefaultLongPollGrace = 10 * time.Second

// presence tracks subscribers for OnSubscribe and OnUnsubscribe: streams
// from their admission to their end, long-poll subscribers from their first
// request to LongPollGrace after their last answer.
type presence struct {
	h     *Hub
	grace time.Duration

	mu     sync.Mutex
	all    map[*lpSubscriber]struct{} // every long-poll subscriber
	byKey  map[string]*lpSubscriber   // SubscriberCookie and channels: the subscriber
	chains map[string]*waiting        // channels and the position sent last: subscribers waiting for their next request
	closed bool
}

// lpSubscriber is a long-poll subscriber between requests or in one.
type lpSubscriber struct {
	ev     SubscriberEvent // the subscribe event
	active int             // requests in flight
	last   time.Time       // its last answer
	chain  string          // its key in presence.chains while waiting; "": none
	ip     string          // its address's IP, while waiting
	idx    int             // its index in its waiting list, while waiting
	byKey  string          // its key in presence.byKey; "": none
	timer  *time.Timer
	gen    int // counts the timer's settings
}

// waiting are the long-poll subscribers waiting for their next request at
// one position, by the IP of their address: one is taken and put back in
// constant time, however many there are (all of a proxy's clients share
// its IP).
type waiting struct {
	byIP map[string][]*lpSubscriber
	n    int
}

// chain puts s among the subscribers waiting at chain.
func (p *presence) chain(s *lpSubscriber, chain string) {
	w := p.chains[chain]
	if w == nil {
		w = &waiting{byIP: map[string][]*lpSubscriber{}}
		p.chains[chain] = w
	}
	s.chain, s.ip = chain, remoteIP(s.ev.RemoteAddr)
	l := w.byIP[s.ip]
	s.idx = len(l)
	w.byIP[s.ip] = append(l, s)
	w.n++
}

func newPresence(h *Hub) *presence {
	g := h.opts.LongPollGrace
	if g <= 0 {
		g = DefaultLongPollGrace
	}
	return &presence{h: h, grace: g, all: map[*lpSubscriber]struct{}{}, byKey: map[string]*lpSubscriber{}, chains: map[string]*waiting{}}
}

// newKey returns a random subscriber key.
func newKey() string {
	return strconv.FormatUint(rand.Uint64(), 36) + strconv.FormatUint(rand.Uint64(), 36)
}

// chainKey is the key of a long-poll subscriber's next request: its
// channels and the position it will send.
func chainKey(channels []string, pos position) string {
	var b strings.Builder
	for _, c := range channels {
		b.WriteString(c)
		b.WriteByte(0)
	}
	for _, id := range pos {
		b.WriteString(id.String())
		b.WriteByte(',')
	}
	return b.String()
}

func remoteIP(addr string) string {
	if ip, _, err := net.SplitHostPort(addr); err == nil {
		return ip
	}
	return addr
}

// subscribed reports a new subscriber of sub, admitted for r, and arranges
// for its unsubscribe event.
func (p *presence) subscribed(r *http.Request, t Transport, sub *Subscription) {
	now := time.Now()
	ev := SubscriberEvent{Channels: sub.channels, Transport: t, RemoteAddr: r.RemoteAddr, Time: now}
	if t != TransportLongPoll && t != TransportJSONP {
		ev.Key = p.cookieKey(r)
		if ev.Key == "" {
			ev.Key = newKey()
		}
		p.emit(true, ev)
		sub.onClose = func(err error) {
			end := time.Now()
			u := ev
			u.Time, u.Reason, u.Duration = end, reasonOf(err), end.Sub(ev.Time)
			p.emit(false, u)
		}
		return
	}
	p.longPoll(r, ev, sub)
}

func (p *presence) cookieKey(r *http.Request) string {
	if name := p.h.opts.SubscriberCookie; name != "" {
		if c, err := r.Cookie(name); err == nil && c.Value != "" {
			return c.Value
		}
	}
	return ""
}

// longPoll finds the long-poll subscriber that r continues, or reports a
// new one.
func (p *presence) longPoll(r *http.Request, ev SubscriberEvent, sub *Subscription) {
	ck := p.cookieKey(r)
	var byKey string
	if ck != "" {
		byKey = ck + "\x00" + strings.Join(sub.channels, "\x00")
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	var s *lpSubscriber
	if byKey != "" {
		s = p.byKey[byKey]
	} else {
		if w := p.chains[chainKey(sub.channels, sub.pos)]; w != nil {
			// Subscribers at the same position are told apart by address
			// only: take one from r's address if there is one.
			l := w.byIP[remoteIP(r.RemoteAddr)]
			if len(l) == 0 {
				for _, l = range w.byIP {
					break
				}
			}
			s = l[len(l)-1]
			p.unchain(s)
		}
	}
	isNew := s == nil
	if isNew {
		ev.Key = ck
		if ev.Key == "" {
			ev.Key = newKey()
		}
		s = &lpSubscriber{ev: ev, byKey: byKey}
		p.all[s] = struct{}{}
		if byKey != "" {
			p.byKey[byKey] = s
		}
	}
	s.active++
	s.gen++ // a timer set before does nothing
	if s.timer != nil {
		s.timer.Stop()
	}
	p.mu.Unlock()
	if isNew {
		p.emit(true, ev)
	}
	sub.onClose = func(err error) { p.answered(s, sub, err) }
}

// unchain removes s from the subscribers waiting for their next request.
func (p *presence) unchain(s *lpSubscriber) {
	if s.chain == "" {
		return
	}
	w := p.chains[s.chain]
	l := w.byIP[s.ip]
	last := len(l) - 1
	if s.idx != last {
		l[s.idx] = l[last]
		l[s.idx].idx = s.idx
	}
	l[last] = nil
	if l = l[:last]; len(l) == 0 {
		delete(w.byIP, s.ip)
	} else {
		w.byIP[s.ip] = l
	}
	if w.n--; w.n == 0 {
		delete(p.chains, s.chain)
	}
	s.chain = ""
}

// answered is called when a request of s ends.
func (p *presence) answered(s *lpSubscriber, sub *Subscription, err error) {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	s.active--
	s.last = now
	if s.active > 0 || p.closed {
		return
	}
	if reason := reasonOf(err); reason == "deleted" || reason == "conflict" || reason == "shutdown" {
		// Ended for good: no next request to wait for.
		p.forget(s)
		p.emitUnsubscribe(s, reason)
		return
	}
	if s.byKey == "" {
		p.chain(s, chainKey(sub.channels, sub.pos))
	}
	s.gen++
	gen := s.gen
	if s.timer == nil {
		s.timer = time.AfterFunc(p.grace, func() { p.expire(s, gen) })
	} else {
		s.timer.Stop()
		s.timer = time.AfterFunc(p.grace, func() { p.expire(s, gen) })
	}
}

// expire ends s if it has not come back since its timer was set.
func (p *presence) expire(s *lpSubscriber, gen int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.gen != gen || s.active > 0 || p.closed {
		return
	}
	p.forget(s)
	p.emitUnsubscribe(s, "left")
}

func (p *presence) forget(s *lpSubscriber) {
	delete(p.all, s)
	p.unchain(s)
	if s.byKey != "" && p.byKey[s.byKey] == s {
		delete(p.byKey, s.byKey)
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	s.gen++
}

// emitUnsubscribe reports s gone; p.mu is held, so that events of one
// subscriber are reported in order.
func (p *presence) emitUnsubscribe(s *lpSubscriber, reason string) {
	u := s.ev
	u.Time, u.Reason, u.Duration = time.Now(), reason, s.last.Sub(s.ev.Time)
	p.emit(false, u)
}

// close reports every long-poll subscriber gone ("shutdown").
func (p *presence) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	for s := range p.all {
		if s.timer != nil {
			s.timer.Stop()
		}
		if s.last.IsZero() {
			s.last = time.Now()
		}
		p.emitUnsubscribe(s, "shutdown")
	}
	p.all, p.byKey, p.chains = nil, nil, nil
}

func (p *presence) emit(subscribe bool, ev SubscriberEvent) {
	f := p.h.opts.OnUnsubscribe
	if subscribe {
		f = p.h.opts.OnSubscribe
	}
	if f != nil {
		f(ev)
	}
}

// reasonOf names the reason a subscription ended with err.
func reasonOf(err error) string {
	var ce *connError
	switch {
	case err == nil, err == errPeerGone, err == errAnswered, errors.As(err, &ce), errors.Is(err, context.Canceled):
		return "closed"
	case err == errSubscriberTimeout:
		return "timeout"
	case err == errAuthorizationExpired:
		return "expired"
	case errors.Is(err, ErrChannelDeleted):
		return "deleted"
	case errors.Is(err, ErrConflict):
		return "conflict"
	case errors.Is(err, ErrHubClosed):
		return "shutdown"
	}
	return "error"
}
