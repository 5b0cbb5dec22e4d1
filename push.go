package push

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/pushhub/push/internal/h1"
	"github.com/pushhub/push/internal/sock"
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
	conns *h1.Conns
	// batches make a sweep's writes in batches, where they can.
	batches *sock.Batches

	published atomic.Uint64
	delivered atomic.Uint64

	// streamEnded, if set (by in-package tests), is called when a streaming
	// subscriber (WebSocket, EventSource, HTTP stream) ends, with its
	// transport and the reason.
	streamEnded func(t Transport, err error)
}

const hubShards = 64

// A Hub keeps, per channel with local subscribers, a window of the most
// recent messages (at most windowMessages, and no more than windowBytes of
// payload beyond the newest message), so that a publish is served to them
// without a store read and a subscriber that is briefly behind (a burst
// published back to back) catches up from it even when the store's buffer
// is shorter. A subscriber further behind reads the store's buffer and, if
// it fell off that too, is told it missed messages.
const (
	windowMessages = 1024
	windowBytes    = 1 << 20
)

type hubShard struct {
	mu       sync.RWMutex
	channels map[string]*hubChannel
}

// hubChannel is a channel as seen by the subscribers of this Hub: a window of
// recent messages and a "changed" chan that a publish closes to wake every
// waiter at once.
type hubChannel struct {
	name  string
	mu    sync.Mutex // serialises writers of state
	refs  int        // subscriptions attached; guarded by the shard's mu
	seq   uint64     // last subscriber sequence number; guarded by mu
	state atomic.Pointer[channelState]

	lmu       sync.Mutex
	listeners []listener    // streams to wake on every change
	sweeping  bool          // a goroutine is waking the listeners
	again     bool          // the channel changed during the sweep's pass
	pass      chan struct{} // closed at the end of the sweep's pass
	behind    int           // changes since the pass started
}

// A listener is a stream waiting on a channel: channel i of its
// subscription.
type listener struct {
	s *stream
	i int
}

// channelState is immutable once published through hubChannel.state.
type channelState struct {
	window     []*Message    // recent messages, oldest first, contiguous
	windowSize int           // payload bytes in window
	trimmed    MessageID     // the newest message dropped from window
	epoch      uint64        // counts resets: windows of different epochs are unrelated
	changed    chan struct{} // closed when a newer state exists
	end        error         // non-nil: every subscriber ends with it
	kick       uint64        // subscribers with a lower sequence end with ErrConflict
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
	Message    string
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

// update publishes a new state of hc, made by change from a copy of the
// current one, and wakes every waiter. change returns false to keep the
// current state. An ended state never changes.
func (hc *hubChannel) update(change func(n *channelState) bool) {
	hc.mu.Lock()
	old := hc.state.Load()
	n := *old
	if old.end != nil || !change(&n) {
		hc.mu.Unlock()
		return
	}
	n.changed = make(chan struct{})
	hc.state.Store(&n)
	close(old.changed)
	hc.mu.Unlock()
	hc.wake()
}

// listen adds stream s, for channel i of its subscription, to the streams
// woken on every change.
func (hc *hubChannel) listen(s *stream, i int) {
	hc.lmu.Lock()
	s.slots[i] = len(hc.listeners)
	hc.listeners = append(hc.listeners, listener{s, i})
	hc.lmu.Unlock()
}

// unlisten undoes listen.
func (hc *hubChannel) unlisten(s *stream, i int) {
	hc.lmu.Lock()
	j, last := s.slots[i], len(hc.listeners)-1
	if j != last {
		moved := hc.listeners[last]
		hc.listeners[j] = moved
		moved.s.slots[moved.i] = j
	}
	hc.listeners[last] = listener{}
	hc.listeners = hc.listeners[:last]
	if cap(hc.listeners) > 64 && len(hc.listeners) < cap(hc.listeners)/4 {
		hc.listeners = append([]listener(nil), hc.listeners...) // give memory back
	}
	hc.lmu.Unlock()
}

// A channel with at most inlineFanOut listening streams is served by the
// publishing goroutine itself: the publish is answered once they have the
// message, at the lowest latency. A larger one is served by a sweep, a
// goroutine that wakes every stream and, if the channel changed meanwhile,
// sweeps again: a publisher sending back to back is not held up by the
// fan-out, and a stream woken once for several messages writes them in one
// system call, which is what makes a busy channel cheap per delivery.
const inlineFanOut = 64

// fanOutChunk is how many streams one goroutine of a sweep wakes at a
// time.
const fanOutChunk = 128

// wake runs every listening stream, or has a sweep do it.
func (hc *hubChannel) wake() {
	hc.lmu.Lock()
	switch n := len(hc.listeners); {
	case n == 0:
		hc.lmu.Unlock()
		return
	case hc.sweeping:
		hc.again = true
		hc.behind++
		hc.lmu.Unlock()
		return
	case n > inlineFanOut:
		hc.sweeping, hc.again = true, true
		hc.lmu.Unlock()
		go hc.sweep()
		return
	}
	var small [inlineFanOut]listener
	ls := append(small[:0], hc.listeners...)
	hc.lmu.Unlock()
	fanOut(ls, false)
}

var listenerBufs = sync.Pool{New: func() any { return new([]listener) }}

// sweep wakes every listening stream until the channel stops changing:
// with one goroutine per CPU the process may use.
func (hc *hubChannel) sweep() {
	bp := listenerBufs.Get().(*[]listener)
	defer listenerBufs.Put(bp)
	for {
		hc.lmu.Lock()
		if !hc.again {
			hc.sweeping = false
			hc.lmu.Unlock()
			return
		}
		hc.again, hc.behind = false, 0
		pass := make(chan struct{})
		hc.pass = pass
		ls := append((*bp)[:0], hc.listeners...)
		hc.lmu.Unlock()
		fanOut(ls, true)
		close(pass)
		clear(ls)
		*bp = ls[:0]
	}
}

// A publisher may run sweepAhead messages ahead of its channel's sweep:
// a publish that finds more waits for the sweep's pass to end (at most
// sweepWait). A subscriber reached late in a pass gets everything published
// meanwhile in one write, which is what makes a busy channel cheap per
// delivery; the bound keeps what a fast publisher queues, and so the latency
// of its messages, to about one pass.
const (
	sweepAhead = 1
	sweepWait  = time.Second
)

// keepPace makes a publisher that is more than sweepAhead messages ahead
// of the channel's sweep wait for its pass to end (or ctx, or sweepWait).
// It reports whether it had to wait.
func (hc *hubChannel) keepPace(ctx context.Context) bool {
	hc.lmu.Lock()
	if !hc.sweeping || hc.behind <= sweepAhead {
		hc.lmu.Unlock()
		return false
	}
	pass := hc.pass
	hc.lmu.Unlock()
	if keepPaceLater(ctx, pass) { // the publisher ring's: it waits in a goroutine
		return true
	}
	waitPass(ctx, pass)
	return true
}

// waitPass waits for a sweep's pass to end, at most sweepWait.
func waitPass(ctx context.Context, pass <-chan struct{}) {
	t := time.NewTimer(sweepWait)
	defer t.Stop()
	select {
	case <-pass:
	case <-t.C:
	case <-ctx.Done():
	}
}

// fanOut wakes the streams of ls. batched (a sweep's): their writes are
// made in batches (sock.Batch), where the system has io_uring.
//
// A long-poll answered in the pass gives its connection back to its
// reader (which then reads the client's next poll) only once the pass is
// over, so that the pass's writes are not interleaved with that work on
// the same CPU.
func fanOut(ls []listener, batched bool) {
	for _, l := range ls {
		if l.s.oneShot {
			l.s.handBack.Store(handBackDefer)
		}
	}
	defer func() {
		for _, l := range ls {
			if l.s.oneShot && l.s.handBack.Swap(handBackNow) == handBackDue {
				l.s.stopReader()
			}
		}
	}()
	var batches *sock.Batches // nil: no batches
	if batched && len(ls) > 0 {
		batches = ls[0].s.hub.batches
	}
	workers := min(runtime.NumCPU(), runtime.GOMAXPROCS(0), (len(ls)+fanOutChunk-1)/fanOutChunk)
	if workers <= 1 {
		b := batches.Get()
		wakeEach(ls, b)
		b.Done()
		return
	}
	var next atomic.Int64
	work := func() {
		b := batches.Get()
		for {
			end := int(next.Add(fanOutChunk))
			start := end - fanOutChunk
			if start >= len(ls) {
				break
			}
			wakeEach(ls[start:min(end, len(ls))], b)
		}
		b.Done()
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
}

// wakeEach wakes the streams of ls, their writes gathered in b if not nil.
func wakeEach(ls []listener, b *sock.Batch) {
	for _, l := range ls {
		if b != nil {
			l.s.wakeBatched(b)
		} else {
			l.s.wake()
		}
	}
}

func (hc *hubChannel) append(m *Message) {
	hc.update(func(n *channelState) bool {
		w := n.window
		if len(w) > 0 && w[len(w)-1].ID.Compare(m.ID) >= 0 {
			return false // already seen
		}
		n.windowSize += len(m.Data)
		for len(w) > 0 && (len(w) >= windowMessages || n.windowSize > windowBytes) {
			n.windowSize -= len(w[0].Data)
			n.trimmed = w[0].ID
			w = w[1:]
		}
		// Appending never changes the elements an older state can see: they
		// are below its length, and only the newest state is appended to.
		n.window = append(w, m)
		return true
	})
}

func (hc *hubChannel) finish(err error) {
	hc.update(func(n *channelState) bool { n.end = err; return true })
}

// reset forgets the window: notifications may have been lost, so it may
// have holes. Subscribers attached before read the store instead.
func (hc *hubChannel) reset() {
	hc.update(func(n *channelState) bool {
		n.window, n.windowSize, n.trimmed = nil, 0, MessageID{}
		n.epoch++
		return true
	})
}

// attach adds a subscriber to the Hub's view of channel, refusing it under
// Concurrency First. It returns the channel and the subscriber's sequence
// number, and the epoch of its window. From then on the window collects
// every message, until a reset starts a new epoch.
func (h *Hub) attach(channel string) (*hubChannel, uint64, uint64, error) {
	sh := h.shard(channel)
	sh.mu.Lock()
	if h.isClosing() {
		sh.mu.Unlock()
		return nil, 0, 0, ErrHubClosed
	}
	hc := sh.channels[channel]
	if hc == nil {
		hc = &hubChannel{name: channel}
		hc.state.Store(&channelState{changed: make(chan struct{})})
		sh.channels[channel] = hc
	}
	if h.opts.Concurrency == First && hc.refs > 0 {
		sh.mu.Unlock()
		return nil, 0, 0, ErrConflict
	}
	hc.refs++
	sh.mu.Unlock()

	hc.mu.Lock()
	hc.seq++
	seq := hc.seq
	epoch := hc.state.Load().epoch
	hc.mu.Unlock()
	return hc, seq, epoch, nil
}

// takeOver ends every subscriber of hc attached before the one with
// sequence number seq (Concurrency Last).
func (hc *hubChannel) takeOver(seq uint64) {
	hc.update(func(n *channelState) bool { n.kick = seq; return true })
}

func (h *Hub) detach(hc *hubChannel) {
	sh := h.shard(hc.name)
	sh.mu.Lock()
	hc.refs--
	if hc.refs == 0 && sh.channels[hc.name] == hc {
		delete(sh.channels, hc.name)
	}
	sh.mu.Unlock()
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
	stored, info, err := h.store.Publish(ctx, channel, msg, h.cfg)
	if err != nil {
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
}

// Stats returns the Hub's counters.
func (h *Hub) Stats(ctx context.Context) (Stats, error) {
	st, err := h.store.Stats(ctx)
	if err != nil {
		return Stats{}, err
	}
	h.mu.Lock()
	active := h.active
	h.mu.Unlock()
	return Stats{
		Channels:    st.Channels,
		Messages:    st.Messages,
		Subscribers: active,
		Published:   h.published.Load(),
		Delivered:   h.delivered.Load(),
	}, nil
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
		h.eachChannel(func(hc *hubChannel) { hc.finish(ErrHubClosed) })
		h.conns.Shutdown(ctx)
		if drained != nil {
			select {
			case <-drained:
			case <-ctx.Done():
				err = ctx.Err()
			}
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
