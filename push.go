package push

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// A Hub relays messages from publishers to subscribers. It owns a Store,
// hands out the HTTP handlers (PublishHandler, SubscribeHandler) and offers
// the same operations to Go code (Publish, Subscribe, ChannelInfo,
// DeleteChannel). Create it with New; end it with Shutdown. A Hub is safe
// for concurrent use.
type Hub struct {
	opts     Options
	cfg      ChannelConfig
	store    Store
	ownStore bool
	unwatch  func()
	log      *slog.Logger
	presence *presence // nil: no OnSubscribe or OnUnsubscribe

	seed   maphash.Seed
	shards [hubShards]hubShard

	closing  atomic.Bool // set once, under mu, by Shutdown
	mu       sync.Mutex
	active   int           // open subscriptions
	drained  chan struct{} // closed when active drops to 0 during Shutdown
	shutdown sync.Once

	// stopping is cancelled when Shutdown starts; connections that are not
	// subscriptions (WebSocket publishers) end with it.
	stopping context.Context
	stop     context.CancelFunc

	// conns are the connections accepted by the Hub's listeners (conn.go).
	conns *hubConns
	// batches make a sweep's writes in batches, where they can.
	batches *sendBatches

	published atomic.Uint64
	delivered atomic.Uint64
	// byTransport counts open subscriptions per transportIndex.
	byTransport  [7]atomic.Int64 // 1 + len(transportNames)
	slowDropped  atomic.Uint64
	pingTimeouts atomic.Uint64
	storeErrors  atomic.Uint64
	publishTime  histogram

	// streamEnded, if set (by in-package tests), is called when a streaming
	// subscriber (WebSocket, EventSource, HTTP stream) ends, with its
	// transport and the reason.
	streamEnded func(t Transport, err error)
}

const hubShards = 64

type hubShard struct {
	mu       sync.RWMutex
	channels map[string]*hubChannel
}

// Errors a subscription ends with, and what subscriber handlers answer.
var (
	// ErrHubClosed: the Hub is shutting down (503).
	ErrHubClosed = errors.New("push: hub is shut down")
	// ErrChannelDeleted: the channel was deleted (410 Gone).
	ErrChannelDeleted = errors.New("push: channel deleted")
	// ErrConflict: the Concurrency policy ended or refused this subscriber
	// (409 Conflict).
	ErrConflict = errors.New("push: another subscriber holds this channel")
	// ErrTooManySubscribers: MaxSubscribersPerChannel reached (403).
	ErrTooManySubscribers = errors.New("push: too many subscribers for this channel")
)

// HTTPError is an error with the HTTP status a handler should answer it
// with. Authorization hooks return it to choose a status other than 403.
type HTTPError struct {
	StatusCode int
	Message    string // the answer's body
	// ContentType is the Content-Type of Message. Empty: text/plain;
	// charset=utf-8.
	ContentType string
}

// Error returns the message.
func (e *HTTPError) Error() string { return e.Message }

// New returns a Hub configured by opts (the zero Options work).
func New(opts Options) *Hub {
	opts, cfg := opts.resolve()
	h := &Hub{opts: opts, cfg: cfg, store: opts.Store, seed: maphash.MakeSeed()}
	h.stopping, h.stop = context.WithCancel(context.Background())
	h.log = opts.Logger
	if h.store == nil {
		h.store = NewMemoryStore()
		h.ownStore = true
	}
	h.initConns()
	if opts.OnSubscribe != nil || opts.OnUnsubscribe != nil {
		h.presence = newPresence(h)
	}
	for i := range h.shards {
		h.shards[i].channels = make(map[string]*hubChannel)
	}
	h.unwatch = h.store.Watch(h.onEvent)
	return h
}

func (h *Hub) shard(channel string) *hubShard {
	return &h.shards[maphash.String(h.seed, channel)%hubShards]
}

// onEvent receives the Store's notifications.
func (h *Hub) onEvent(ev Event) {
	switch ev.Type {
	case EventMessage:
		sh := h.shard(ev.Channel)
		sh.mu.RLock()
		hc := sh.channels[ev.Channel]
		sh.mu.RUnlock()
		if hc != nil {
			hc.append(ev.Message)
		}
	case EventDelete:
		sh := h.shard(ev.Channel)
		sh.mu.Lock()
		hc := sh.channels[ev.Channel]
		delete(sh.channels, ev.Channel) // new subscribers start afresh
		sh.mu.Unlock()
		if hc != nil {
			hc.finish(ErrChannelDeleted)
		}
	case EventReset:
		h.eachChannel(func(hc *hubChannel) { hc.reset() })
	}
}

func (h *Hub) eachChannel(fn func(*hubChannel)) {
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		chans := make([]*hubChannel, 0, len(sh.channels))
		for _, hc := range sh.channels {
			chans = append(chans, hc)
		}
		sh.mu.RUnlock()
		for _, hc := range chans {
			fn(hc)
		}
	}
}

func (h *Hub) isClosing() bool { return h.closing.Load() }

// ValidateChannelID reports why id is not an acceptable channel id, or nil.
// Ids are non-empty, valid UTF-8 without control characters, and at most
// MaxChannelIDLength bytes long (P7). They are never truncated.
func (h *Hub) ValidateChannelID(id string) error {
	switch {
	case id == "":
		return errors.New("channel id is empty")
	case len(id) > h.opts.MaxChannelIDLength:
		return fmt.Errorf("channel id is too long: %d bytes, the limit is %d", len(id), h.opts.MaxChannelIDLength)
	case !utf8.ValidString(id):
		return errors.New("channel id is not valid UTF-8")
	case strings.IndexFunc(id, isControl) >= 0:
		return errors.New("channel id contains control characters")
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || (r >= 0x7f && r < 0xa0) }

// Publish stores msg in channel and wakes the channel's subscribers. It
// returns the stored message (with its ID) and how many subscribers the
// channel had when it was published (across every Hub sharing the store).
// msg supplies Data, ContentType and EventName and must not be modified
// afterwards. Publish returns once the message is stored and handed to this
// Hub's subscribers: the calling goroutine writes it to the streaming
// subscribers of a channel that has at most 64 (a non-blocking write each)
// and leaves a larger channel's to a sweep goroutine. A publisher that is
// more than one message ahead of that sweep waits for the sweep's pass to
// end (at most a second), so a fast publisher is paced by the fan-out.
// Publish never waits for a subscriber to read.
func (h *Hub) Publish(ctx context.Context, channel string, msg *Message) (*Message, int, error) {
	stored, info, err := h.publish(ctx, channel, msg)
	return stored, info.Subscribers, err
}

// PublishEach stores msg in each of channels, as Publish does, each
// message with that channel's own ID (P9). It returns the stored messages,
// one per channel in the order given, and the number of subscribers the
// channels had, summed (a subscriber of two of them counts twice). Every
// channel id is checked before anything is published; a channel named
// twice gets the message once; if the store fails
// on one channel, the messages stored before it are returned with the
// error and the later channels are not published to.
func (h *Hub) PublishEach(ctx context.Context, channels []string, msg *Message) ([]*Message, int, error) {
	for _, ch := range channels {
		if err := h.ValidateChannelID(ch); err != nil {
			return nil, 0, fmt.Errorf("push: channel %q: %w", ch, err)
		}
	}
	channels = uniqueIDs(channels)
	stored := make([]*Message, 0, len(channels))
	subscribers := 0
	for _, ch := range channels {
		m, info, err := h.publish(ctx, ch, msg)
		if err != nil {
			return stored, subscribers, err
		}
		stored = append(stored, m)
		subscribers += info.Subscribers
	}
	return stored, subscribers, nil
}

// publishEach publishes msg to every channel (ids already validated) and
// returns their infos, stopping at the first error.
func (h *Hub) publishEach(ctx context.Context, channels []string, msg *Message) ([]ChannelInfo, error) {
	infos := make([]ChannelInfo, 0, len(channels))
	for _, ch := range channels {
		_, info, err := h.publish(ctx, ch, msg)
		if err != nil {
			return infos, err
		}
		infos = append(infos, info)
	}
	return infos, nil
}

func (h *Hub) publish(ctx context.Context, channel string, msg *Message) (*Message, ChannelInfo, error) {
	if err := h.ValidateChannelID(channel); err != nil {
		return nil, ChannelInfo{}, err
	}
	if h.isClosing() {
		return nil, ChannelInfo{}, ErrHubClosed
	}
	if int64(len(msg.Data)) > h.opts.MaxMessageSize {
		return nil, ChannelInfo{}, fmt.Errorf("push: message of %d bytes exceeds MaxMessageSize %d", len(msg.Data), h.opts.MaxMessageSize)
	}
	start := time.Now()
	stored, info, err := h.store.Publish(ctx, channel, msg, h.cfg)
	if err != nil {
		if storeFailed(err) {
			h.storeErrors.Add(1)
		}
		return nil, ChannelInfo{}, err
	}
	h.published.Add(1)
	sh := h.shard(channel)
	sh.mu.RLock()
	hc := sh.channels[channel]
	sh.mu.RUnlock()
	if hc != nil {
		hc.keepPace(ctx)
	}
	h.publishTime.observe(time.Since(start))
	return stored, info, nil
}

// ChannelInfo describes channel, or returns ErrChannelNotFound.
func (h *Hub) ChannelInfo(ctx context.Context, channel string) (ChannelInfo, error) {
	return h.store.ChannelInfo(ctx, channel)
}

// CreateChannel creates channel without publishing (as PUT does) and
// describes it.
func (h *Hub) CreateChannel(ctx context.Context, channel string) (ChannelInfo, error) {
	if err := h.ValidateChannelID(channel); err != nil {
		return ChannelInfo{}, err
	}
	return h.store.CreateChannel(ctx, channel, h.cfg)
}

// DeleteChannel deletes channel and its messages and ends every subscriber
// of it, on every Hub sharing the store (P5). It returns the channel as it
// was just before, or ErrChannelNotFound.
func (h *Hub) DeleteChannel(ctx context.Context, channel string) (ChannelInfo, error) {
	return h.store.DeleteChannel(ctx, channel)
}

// Stats is a snapshot of a Hub's counters.
type Stats struct {
	// Channels and Messages count what the store holds.
	Channels int `json:"channels"`
	Messages int `json:"messages"`
	// Subscribers counts the subscriptions open on this Hub now.
	Subscribers int `json:"subscribers"`
	// Published counts messages published through this Hub since New.
	Published uint64 `json:"published"`
	// Delivered counts messages handed to this Hub's subscribers since New.
	Delivered uint64 `json:"delivered"`
	// SubscribersByTransport counts the subscriptions open now through the
	// subscriber handler, by transport name ("websocket", "eventsource",
	// "longpoll", "jsonp", "multipart", "chunked"); every name is present.
	// Subscriptions made with Hub.Subscribe count in Subscribers only.
	SubscribersByTransport map[string]int `json:"subscribers_by_transport"`
	// SlowDropped counts the streaming subscribers disconnected because
	// writing to them took longer than Options.WriteTimeout, since New.
	SlowDropped uint64 `json:"slow_dropped"`
	// PingTimeouts counts the WebSocket subscribers disconnected because
	// they did not answer a ping in time, since New.
	PingTimeouts uint64 `json:"ping_timeouts"`
	// StoreErrors counts the publishes, subscribes and subscriptions that
	// failed on an error of the Store (Redis unreachable, for one), since
	// New.
	StoreErrors uint64 `json:"store_errors"`
	// PublishLatency counts how long the Hub's publishes took, from the
	// store's call to the hand-over to this Hub's subscribers (pacing by a
	// slow fan-out included), since New.
	PublishLatency Histogram `json:"publish_latency"`
}

// Stats returns the Hub's counters. When the store fails to count its
// channels and messages, Stats returns the error together with the Hub's
// own counters (Channels and Messages are then 0).
func (h *Hub) Stats(ctx context.Context) (Stats, error) {
	st, err := h.store.Stats(ctx)
	h.mu.Lock()
	active := h.active
	h.mu.Unlock()
	byTransport := make(map[string]int, len(transportNames))
	for i, n := range transportNames {
		byTransport[n.name] = int(h.byTransport[i+1].Load())
	}
	return Stats{
		Channels:               st.Channels,
		Messages:               st.Messages,
		Subscribers:            active,
		Published:              h.published.Load(),
		Delivered:              h.delivered.Load(),
		SubscribersByTransport: byTransport,
		SlowDropped:            h.slowDropped.Load(),
		PingTimeouts:           h.pingTimeouts.Load(),
		StoreErrors:            h.storeErrors.Load(),
		PublishLatency:         h.publishTime.snapshot(),
	}, err
}

// storeFailed reports whether err is the Store's failure rather than an
// answer (not found, conflict, closing) or the caller's cancellation.
func storeFailed(err error) bool {
	return statusOf(err) >= 500 && !errors.Is(err, ErrHubClosed) && !errors.Is(err, context.Canceled)
}

// Shutdown ends every subscription (long-poll requests are answered 503 with
// their position, so clients resume elsewhere), refuses new ones, waits until
// all subscribers have let go or ctx ends, then stops watching the store and
// closes it if the Hub created it. Shut the Hub down before the http.Server
// that serves its handlers, so held requests are answered rather than cut.
func (h *Hub) Shutdown(ctx context.Context) error {
	var err error
	h.shutdown.Do(func() {
		h.mu.Lock()
		h.closing.Store(true)
		h.stop()
		var drained chan struct{}
		if h.active > 0 {
			drained = make(chan struct{})
			h.drained = drained
		}
		h.mu.Unlock()
		// The Hub's reader stops reading before the answers below can
		// send a long-poll's connection back to it.
		h.conns.Shutdown(ctx)
		h.eachChannel(func(hc *hubChannel) { hc.finish(ErrHubClosed) })
		if drained != nil {
			select {
			case <-drained:
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
		if h.presence != nil {
			h.presence.close()
		}
		h.unwatch()
		h.batches.Close()
		if h.ownStore {
			h.store.Close()
		}
	})
	return err
}

// track counts an open subscription; untrack undoes it.
func (h *Hub) track() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing.Load() {
		return ErrHubClosed
	}
	h.active++
	return nil
}

func (h *Hub) untrack() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.active--
	if h.active == 0 && h.drained != nil {
		close(h.drained)
		h.drained = nil
	}
}

// statusOf maps an error to the HTTP status a handler answers it with.
func statusOf(err error) int {
	var he *HTTPError
	switch {
	case errors.As(err, &he):
		return he.StatusCode
	case errors.Is(err, ErrChannelDeleted):
		return http.StatusGone
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrTooManySubscribers), errors.Is(err, ErrChannelNotFound):
		return http.StatusForbidden
	case errors.Is(err, ErrHubClosed), errors.Is(err, ErrStoreUnavailable), errors.Is(err, ErrStoreClosed):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrInvalidMessageID):
		return http.StatusBadRequest
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// now is the Hub's clock for TTL checks of its window.
var now = time.Now
