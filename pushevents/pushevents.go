// Package pushevents posts a Hub's subscribe and unsubscribe events
// (push.Options.OnSubscribe, OnUnsubscribe) to HTTP endpoints of a back
// end, as pushd's -subscribe-event-url and -unsubscribe-event-url do.
//
//	s := pushevents.New(pushevents.Config{SubscribeURL: "http://127.0.0.1:8080/push/subscribed"})
//	defer s.Close(ctx)
//	hub := push.New(push.Options{OnSubscribe: s.Subscribe, OnUnsubscribe: s.Unsubscribe})
//
// Each event is a POST with a JSON body (see Event). Delivery is
// asynchronous, in order for each subscriber (its Key), and retried with
// backoff while the endpoint fails (a connection error, a 5xx or 429) for
// up to Config.RetryFor. Events that cannot be queued (Config.MaxQueued) or
// delivered in time are dropped, logged and counted (Sender.Dropped).
package pushevents

import (
	"bytes"
	"context"
	"encoding/json"
	"hash/maphash"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushhub/push"
)

// Defaults of the Config fields whose zero value stands for a default.
const (
	DefaultMaxQueued = 100000
	DefaultRetryFor  = time.Minute
	DefaultTimeout   = 5 * time.Second
	DefaultWorkers   = 16
)

// Config configures a Sender. The zero value sends nothing.
type Config struct {
	// SubscribeURL receives subscribe events. Empty: none are sent.
	SubscribeURL string
	// UnsubscribeURL receives unsubscribe events. Empty: none are sent.
	UnsubscribeURL string
	// MaxQueued bounds the events waiting to be sent; beyond it new events
	// are dropped. 0 means DefaultMaxQueued.
	MaxQueued int
	// RetryFor is how long an event is retried after it happened before
	// it is dropped. 0 means DefaultRetryFor.
	RetryFor time.Duration
	// Timeout bounds each POST. 0 means DefaultTimeout.
	Timeout time.Duration
	// Workers is how many POSTs may be in flight at once (the events of
	// one subscriber are always sent one after the other). 0 means
	// DefaultWorkers.
	Workers int
	// Client sends the events. Nil: a client of its own that keeps
	// connections alive.
	Client *http.Client
	// Logger receives a line per dropped event. Nil: slog.Default().
	Logger *slog.Logger
}

// Event is the JSON body of a POST.
type Event struct {
	// Event is "subscribe" or "unsubscribe".
	Event string `json:"event"`
	// Channel is the channel ids joined by commas, as X-Push-Channel;
	// Channels lists them.
	Channel  string   `json:"channel"`
	Channels []string `json:"channels"`
	// Transport is "longpoll", "jsonp", "websocket", "eventsource",
	// "multipart" or "chunked".
	Transport string `json:"transport"`
	// Address is the subscriber's IP address and port.
	Address string `json:"address"`
	// Key identifies the subscriber: the same in both its events.
	Key string `json:"key"`
	// Time is when the event happened, RFC 3339 with nanoseconds, UTC.
	Time time.Time `json:"time"`
	// Reason and Duration (seconds) are set in unsubscribe events (see
	// push.SubscriberEvent).
	Reason   string  `json:"reason,omitempty"`
	Duration float64 `json:"duration,omitempty"`
}

// A Sender posts events. Its methods may be called from many goroutines.
type Sender struct {
	cfg    Config
	client *http.Client
	log    *slog.Logger
	seed   maphash.Seed
	shards []*shard

	queued  atomic.Int64
	sent    atomic.Uint64
	dropped atomic.Uint64

	stop   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
}

// shard is one worker's queue: the events of the subscribers whose key
// hashes to it, in order.
type shard struct {
	mu     sync.Mutex
	q      []queued
	wake   chan struct{}
	closed bool
}

type queued struct {
	url  string
	body []byte
	at   time.Time
	key  string
}

// New returns a Sender for cfg and starts its workers; Close stops them.
func New(cfg Config) *Sender {
	if cfg.MaxQueued <= 0 {
		cfg.MaxQueued = DefaultMaxQueued
	}
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = DefaultRetryFor
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	s := &Sender{cfg: cfg, client: cfg.Client, log: cfg.Logger, seed: maphash.MakeSeed()}
	if s.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = cfg.Workers
		s.client = &http.Client{Transport: tr}
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.stop, s.cancel = context.WithCancel(context.Background())
	s.shards = make([]*shard, cfg.Workers)
	for i := range s.shards {
		sh := &shard{wake: make(chan struct{}, 1)}
		s.shards[i] = sh
		s.wg.Add(1)
		go s.work(sh)
	}
	return s
}

// Subscribe queues a subscribe event: a push.Options.OnSubscribe hook.
func (s *Sender) Subscribe(ev push.SubscriberEvent) { s.enqueue(s.cfg.SubscribeURL, "subscribe", ev) }

// Unsubscribe queues an unsubscribe event: a push.Options.OnUnsubscribe
// hook.
func (s *Sender) Unsubscribe(ev push.SubscriberEvent) {
	s.enqueue(s.cfg.UnsubscribeURL, "unsubscribe", ev)
}

// Sent returns how many events were delivered.
func (s *Sender) Sent() uint64 { return s.sent.Load() }

// Dropped returns how many events were dropped: not queued (the queue
// full, or the Sender closed) or not delivered within RetryFor.
func (s *Sender) Dropped() uint64 { return s.dropped.Load() }

func (s *Sender) enqueue(url, kind string, ev push.SubscriberEvent) {
	if url == "" {
		return
	}
	body, _ := json.Marshal(Event{
		Event: kind, Channel: strings.Join(ev.Channels, ","), Channels: ev.Channels,
		Transport: ev.Transport.String(), Address: ev.RemoteAddr, Key: ev.Key, Time: ev.Time.UTC(),
		Reason: ev.Reason, Duration: ev.Duration.Seconds(),
	})
	if s.queued.Add(1) > int64(s.cfg.MaxQueued) {
		s.queued.Add(-1)
		s.drop(kind, ev.Key, "the queue is full (MaxQueued)")
		return
	}
	sh := s.shards[maphash.String(s.seed, ev.Key)%uint64(len(s.shards))]
	sh.mu.Lock()
	if sh.closed {
		sh.mu.Unlock()
		s.queued.Add(-1)
		s.drop(kind, ev.Key, "the sender is closed")
		return
	}
	sh.q = append(sh.q, queued{url: url, body: body, at: ev.Time, key: ev.Key})
	sh.mu.Unlock()
	select {
	case sh.wake <- struct{}{}:
	default:
	}
}

func (s *Sender) drop(kind, key, why string) {
	n := s.dropped.Add(1)
	s.log.Warn("push: event dropped", "event", kind, "key", key, "why", why, "dropped", n)
}

// work sends sh's events in order until Close.
func (s *Sender) work(sh *shard) {
	defer s.wg.Done()
	for {
		sh.mu.Lock()
		if len(sh.q) == 0 {
			closed := sh.closed
			sh.mu.Unlock()
			if closed {
				return
			}
			<-sh.wake
			continue
		}
		e := sh.q[0]
		sh.mu.Unlock()
		s.deliver(e)
		sh.mu.Lock()
		sh.q[0] = queued{}
		sh.q = sh.q[1:]
		if len(sh.q) == 0 {
			sh.q = nil
		}
		sh.mu.Unlock()
		s.queued.Add(-1)
	}
}

// deliver posts e, retrying with backoff until RetryFor after the event.
func (s *Sender) deliver(e queued) {
	backoff := 100 * time.Millisecond
	deadline := e.at.Add(s.cfg.RetryFor)
	for {
		retry, why := s.post(e)
		if !retry {
			if why == "" {
				s.sent.Add(1)
			} else {
				s.drop(eventKind(e.body), e.key, why)
			}
			return
		}
		wait := backoff
		if left := time.Until(deadline); left < wait {
			s.drop(eventKind(e.body), e.key, "not delivered within RetryFor: "+why)
			return
		}
		select {
		case <-time.After(wait):
		case <-s.stop.Done():
			s.drop(eventKind(e.body), e.key, "the sender was closed: "+why)
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// post sends e once. It reports whether to retry and, if it failed, why.
func (s *Sender) post(e queued) (retry bool, why string) {
	ctx, cancel := context.WithTimeout(s.stop, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(e.body))
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return true, err.Error()
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, ""
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout:
		return true, resp.Status
	}
	return false, "refused: " + resp.Status
}

func eventKind(body []byte) string {
	if bytes.HasPrefix(body, []byte(`{"event":"subscribe"`)) {
		return "subscribe"
	}
	return "unsubscribe"
}

// Close sends the events queued and stops the Sender; events queued after
// it are dropped. When ctx ends first, the events not yet sent are dropped
// and Close returns ctx.Err().
func (s *Sender) Close(ctx context.Context) error {
	if s.closed.Swap(true) {
		return nil
	}
	for _, sh := range s.shards {
		sh.mu.Lock()
		sh.closed = true
		sh.mu.Unlock()
		select {
		case sh.wake <- struct{}{}:
		default:
		}
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		s.cancel()
		<-done
	}
	s.cancel()
	if tr, ok := s.client.Transport.(*http.Transport); ok && s.cfg.Client == nil {
		tr.CloseIdleConnections()
	}
	return err
}
