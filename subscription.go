package push

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"net/http"
	"reflect"
	"time"
)

// A Subscription receives the messages of one or more channels in order,
// starting after a position. It is a cursor over the channels' buffers: a
// publish only wakes it, and it reads what is newer than its position, so
// resuming and live delivery are the same path. Every subscriber transport
// (long-poll, JSONP, and the streaming ones) is a framing over a
// Subscription. A Subscription is used by one goroutine at a time; Close it
// when done.
type Subscription struct {
	hub      *Hub
	channels []string
	hcs      []*hubChannel
	seqs     []uint64
	pos      position
	started  []bool      // per channel: the starting position was settled
	from     []MessageID // per channel: its newest id when this subscriber was counted
	epochs   []uint64    // per channel: the epoch of the Hub's window when attached
	states   []*channelState

	pending     []*Message // read but not yet returned, all from channel pendingFrom
	pendingFrom int
	mark        int // channel of the last message returned
	next        int // channel to look at first (round robin)
	limit       int // how many messages to read from the store at once
	missed      bool
	gaps        int    // how many times messages were found missing
	gapFrom     string // the position before the latest gap
	closed      bool
	tr          uint8       // transportIndex of a subscriber handler's subscription; 0: Go's
	dbg         *subDebug   // what the leaving line logs; nil unless the log's level is debug
	until       time.Time   // set by EndSubscriptionAt; zero: none
	onClose     func(error) // presence: called by Close with endErr
	endErr      error       // why the subscription ended (a stream's, or errAnswered)
}

// subDebug is what a subscriber's debug lines say of it.
type subDebug struct {
	remote string
	start  time.Time
}

// oneChannelSubscription is a Subscription to one channel with its
// per-channel slices.
type oneChannelSubscription struct {
	Subscription
	hcs     [1]*hubChannel
	seqs    [1]uint64
	pos     [1]MessageID
	started [1]bool
	states  [1]*channelState
	from    [1]MessageID
	epochs  [1]uint64
}

// Subscribe opens a subscription to channels (at most 255), starting after
// the position from: "" starts at the oldest buffered message of each
// channel; otherwise from is an id seen earlier, Message.ID.String() for a
// single channel or Subscription.Position() for any number. Subscribe counts
// the subscriber on every channel, applying AuthorizedChannelsOnly,
// MaxSubscribersPerChannel and Concurrency. ctx bounds only the setup.
func (h *Hub) Subscribe(ctx context.Context, channels []string, from string) (*Subscription, error) {
	if len(channels) == 0 {
		return nil, errors.New("push: no channel to subscribe to")
	}
	if len(channels) > MaxChannelsPerSubscription {
		return nil, fmt.Errorf("push: %d channels in one subscription, the limit is %d", len(channels), MaxChannelsPerSubscription)
	}
	for _, c := range channels {
		if err := h.ValidateChannelID(c); err != nil {
			return nil, err
		}
	}
	pos := make(position, len(channels))
	if from != "" {
		p, err := parsePosition(from, len(channels))
		if err != nil {
			return nil, err
		}
		pos = p
	}
	return h.subscribe(ctx, channels, pos)
}

func (h *Hub) subscribe(ctx context.Context, channels []string, pos position) (*Subscription, error) {
	if err := h.track(); err != nil {
		return nil, err
	}
	n := len(channels)
	var s *Subscription
	if n == 1 {
		// The common case in one allocation: less memory per subscriber,
		// and what a fan-out reads of it is close together.
		one := &oneChannelSubscription{}
		one.pos[0] = pos[0]
		s = &one.Subscription
		s.hcs, s.seqs, s.pos = one.hcs[:0], one.seqs[:0], one.pos[:]
		s.started, s.states, s.from, s.epochs = one.started[:], one.states[:], one.from[:], one.epochs[:]
	} else {
		s = &Subscription{
			hcs:     make([]*hubChannel, 0, n),
			seqs:    make([]uint64, 0, n),
			pos:     pos,
			started: make([]bool, n),
			states:  make([]*channelState, n),
			from:    make([]MessageID, n),
			epochs:  make([]uint64, n),
		}
	}
	s.hub, s.channels, s.limit = h, channels, 32
	counted := 0
	fail := func(err error) (*Subscription, error) {
		for _, hc := range s.hcs {
			h.removeSubscriber(hc)
		}
		for _, c := range channels[:counted] {
			h.store.RemoveSubscriber(context.WithoutCancel(ctx), c)
		}
		h.untrack()
		return nil, err
	}
	// Attach first, so that every message published from the moment the
	// store counts us reaches our window even when the buffer is disabled.
	for i, c := range channels {
		hc, seq, epoch, err := h.addSubscriber(c)
		if err != nil {
			return fail(err)
		}
		s.hcs = append(s.hcs, hc)
		s.seqs = append(s.seqs, seq)
		s.epochs[i] = epoch
	}
	for i, c := range channels {
		info, err := h.store.AddSubscriber(ctx, c, h.cfg, !h.opts.AuthorizedChannelsOnly)
		if err != nil {
			return fail(err)
		}
		counted++
		s.from[i] = info.LastMessageID
		if max := h.opts.MaxSubscribersPerChannel; max > 0 && info.Subscribers > max {
			return fail(ErrTooManySubscribers)
		}
	}
	if h.opts.Concurrency == Last {
		for i, hc := range s.hcs {
			hc.kickBefore(s.seqs[i])
		}
	}
	return s, nil
}

// Channels returns the subscription's channels.
func (s *Subscription) Channels() []string { return s.channels }

// Position returns the id to resume from after the last message Next
// returned: pass it to Hub.Subscribe, or send it in any id carrier of the
// protocol. For a single channel it is that message's "T:G".
func (s *Subscription) Position() string { return formatPosition(s.pos, s.mark) }

// Missed reports whether messages were skipped: the subscription's starting
// position was older than the oldest buffered message, or it fell so far
// behind that messages were dropped before it read them.
func (s *Subscription) Missed() bool { return s.missed }

// Next returns the next message, waiting until one is published, ctx ends
// (ctx.Err()) or the subscription ends: ErrChannelDeleted when one of its
// channels is deleted, ErrConflict under the Concurrency policy, ErrHubClosed
// on Shutdown, or a store error.
func (s *Subscription) Next(ctx context.Context) (*Message, error) {
	m, _, err := s.nextOr(ctx, nil)
	return m, err
}

// TryNext returns the next message if one is available now, or nil.
func (s *Subscription) TryNext(ctx context.Context) (*Message, error) {
	return s.poll(ctx)
}

// Messages returns an iterator over the messages of Next; it stops after
// the first error, which it yields.
func (s *Subscription) Messages(ctx context.Context) iter.Seq2[*Message, error] {
	return func(yield func(*Message, error) bool) {
		for {
			m, err := s.Next(ctx)
			if !yield(m, err) || err != nil {
				return
			}
		}
	}
}

// poll returns the next message available without waiting, or nil. It
// loads each channel's state before reading it, so a publish after the read
// is seen by wait.
func (s *Subscription) poll(ctx context.Context) (*Message, error) {
	if s.closed {
		return nil, errors.New("push: subscription closed")
	}
	if len(s.pending) == 0 {
		n := len(s.hcs)
		for j := 0; j < n; j++ {
			i := (s.next + j) % n
			st := s.hcs[i].state.Load()
			s.states[i] = st
			if st.end != nil {
				return nil, st.end
			}
			if s.seqs[i] < st.kick {
				return nil, ErrConflict
			}
			msgs, err := s.read(ctx, i, st)
			if err != nil {
				return nil, err
			}
			if len(msgs) > 0 {
				s.pending, s.pendingFrom = msgs, i
				s.next = (i + 1) % n
				break
			}
		}
		if len(s.pending) == 0 {
			return nil, nil
		}
	}
	m := s.pending[0]
	s.pending = s.pending[1:]
	s.pos[s.pendingFrom] = m.ID
	s.mark = s.pendingFrom
	s.hub.delivered.Add(1)
	return m, nil
}

// read returns the messages of channel i after the subscription's position,
// from the Hub's window when it covers the position, else from the store.
func (s *Subscription) read(ctx context.Context, i int, st *channelState) ([]*Message, error) {
	at := s.pos[i]
	w := st.window
	if s.started[i] && s.windowCovers(i, st, at) {
		return s.after(w, at), nil
	}
	b, err := s.hub.store.Messages(ctx, s.channels[i], at, s.limit)
	if err != nil {
		return nil, err
	}
	if !s.started[i] {
		s.started[i] = true
		switch {
		case !at.IsZero():
		case len(b.Messages) == 0:
			// Nothing buffered: start after the newest message when we
			// were counted, so the window does not replay what was
			// published before we came, nor lose what came since.
			s.pos[i] = s.from[i]
			at = s.from[i]
		case b.Messages[0].ID.Compare(s.from[i]) > 0 && st.epoch == s.epochs[i] && s.from[i].Compare(st.trimmed) >= 0:
			// What was buffered when we were counted is gone, and so may be
			// some of what came since (a burst before this first read,
			// longer than the buffer): the window has all of that.
			s.pos[i] = s.from[i]
			return s.after(w, s.from[i]), nil
		}
	}
	if b.Missed && !at.IsZero() {
		s.missed = true
		s.gaps++
		s.gapFrom = formatPosition(s.pos, s.mark)
	}
	if len(b.Messages) > 0 {
		return b.Messages, nil
	}
	// Nothing newer is buffered (the buffer may be disabled): what is newer
	// in the window was published live.
	return s.after(w, at), nil
}

// windowCovers reports whether st's window holds every message of channel
// i after at. It does when at is at or after the window's oldest message;
// and, since the window was collecting before this subscriber was counted,
// when at is at or after the channel's newest message at that time (from)
// and nothing after at was trimmed, as long as no reset intervened.
func (s *Subscription) windowCovers(i int, st *channelState, at MessageID) bool {
	if len(st.window) > 0 && at.Compare(st.window[0].ID) >= 0 {
		return true
	}
	return st.epoch == s.epochs[i] && at.Compare(s.from[i]) >= 0 && at.Compare(st.trimmed) >= 0
}

// after returns the messages of window w newer than at and not expired.
func (s *Subscription) after(w []*Message, at MessageID) []*Message {
	i := len(w)
	for i > 0 && w[i-1].ID.Compare(at) > 0 {
		i--
	}
	ttl := s.hub.cfg.MessageTTL
	if ttl > 0 && i < len(w) {
		t := now()
		for i < len(w) && w[i].expired(ttl, t) {
			i++
		}
	}
	return w[i:]
}

// wait blocks until any channel's state loaded by the last poll changes
// (false, nil), c fires (true, nil; a nil c never does) or ctx ends.
func (s *Subscription) wait(ctx context.Context, c <-chan time.Time) (bool, error) {
	if len(s.states) == 1 {
		select {
		case <-s.states[0].changed:
			return false, nil
		case <-c:
			return true, nil
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	cases := make([]reflect.SelectCase, 0, len(s.states)+2)
	cases = append(cases,
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c)})
	for _, st := range s.states {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(st.changed)})
	}
	switch i, _, _ := reflect.Select(cases); i {
	case 0:
		return false, ctx.Err()
	case 1:
		return true, nil
	}
	return false, nil
}

// nextOr is Next that also returns (nil, true, nil) when c fires before a
// message is available. Streaming transports use it to wake for pings and
// timeouts without a goroutine or a context per wait.
func (s *Subscription) nextOr(ctx context.Context, c <-chan time.Time) (*Message, bool, error) {
	for {
		m, err := s.poll(ctx)
		if m != nil || err != nil {
			return m, false, err
		}
		if fired, err := s.wait(ctx, c); fired || err != nil {
			return nil, fired, err
		}
	}
}

// Close ends the subscription and uncounts it from its channels.
func (s *Subscription) Close() {
	if s.closed {
		return
	}
	s.closed = true
	for i, hc := range s.hcs {
		s.hub.removeSubscriber(hc)
		s.hub.store.RemoveSubscriber(context.Background(), s.channels[i])
	}
	if f := s.onClose; f != nil { // before untrack: Shutdown waits for it
		s.onClose = nil
		f(s.endErr)
	}
	s.hub.untrack()
	if s.tr != 0 {
		s.hub.byTransport[s.tr].Add(-1)
	}
	if d := s.dbg; d != nil {
		why := "answered"
		if s.endErr != nil && s.endErr != errAnswered {
			why = s.endErr.Error()
		}
		s.hub.log.Debug("push: subscriber left", "transport", transportNames[s.tr-1].name,
			"channels", s.channels, "remote", d.remote, "duration", time.Since(d.start), "why", why)
	}
}

// joined counts s as a subscriber of transport t, and logs it at the debug
// level.
func (s *Subscription) joined(t Transport, r *http.Request) {
	s.tr = transportIndex(t)
	if s.tr == 0 {
		return
	}
	s.hub.byTransport[s.tr].Add(1)
	if s.hub.log.Enabled(r.Context(), slog.LevelDebug) {
		s.dbg = &subDebug{remote: r.RemoteAddr, start: time.Now()}
		s.hub.log.Debug("push: subscriber joined", "transport", t.String(),
			"channels", s.channels, "remote", r.RemoteAddr)
	}
}
