package push

import (
	"context"
	"hash/maphash"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

const memoryShards = 64

// MemoryStore is the in-process Store, the default of a Hub. Channels are
// spread over shards by a hash of their id, so publishes to different
// channels do not contend; each channel keeps its messages in a ring buffer.
// A background sweeper drops expired messages and forgets idle channels
// (B2, B3). Create it with NewMemoryStore; Close stops the sweeper.
type MemoryStore struct {
	seed   maphash.Seed
	shards [memoryShards]memoryShard

	watchers Watchers

	now    func() time.Time // the clock; tests replace it
	closed atomic.Bool
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

type memoryShard struct {
	mu       sync.RWMutex
	channels map[string]*memoryChannel
	// tombstones keep the last id of channels deleted or forgotten within
	// the current second, so a channel that comes back at once still gets
	// increasing ids (I1). floor is the greatest id of the channels of this
	// shard forgotten without a tombstone (or whose tombstone was pruned).
	// Every new channel takes it as its floor: that matters only once the
	// clock has stepped back to floor's second or before (otherwise the first
	// id is newer anyway, with tag 0), and then its ids stay above any id the
	// channel had in an earlier life.
	tombstones map[string]MessageID
	floor      MessageID
}

type memoryChannel struct {
	mu            sync.Mutex
	buf           []memoryEntry // a ring buffer, len = capacity
	head, count   int
	last          MessageID // newest id ever assigned in this channel
	floor         MessageID // ids must also be greater than this (see memoryShard)
	lastDropped   MessageID // newest id dropped from the buffer by trim or TTL
	subscribers   int
	lastRequested time.Time
	lastActive    time.Time // last publish, subscribe or unsubscribe
	timeout       time.Duration
	deleted       bool
}

type memoryEntry struct {
	msg     *Message
	expires time.Time // zero: never
}

// NewMemoryStore returns an empty MemoryStore with its sweeper running.
func NewMemoryStore() *MemoryStore {
	s := &MemoryStore{
		seed: maphash.MakeSeed(),
		now:  time.Now,
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	for i := range s.shards {
		s.shards[i].channels = make(map[string]*memoryChannel)
		s.shards[i].tombstones = make(map[string]MessageID)
	}
	go s.sweepLoop(time.Second)
	return s
}

func (s *MemoryStore) shard(channel string) *memoryShard {
	return &s.shards[maphash.String(s.seed, channel)%memoryShards]
}

// lookup returns the channel, creating it if create is set, with its mutex
// held. It returns nil if the channel does not exist and create is false.
func (s *MemoryStore) lookup(channel string, create bool, now time.Time) *memoryChannel {
	sh := s.shard(channel)
	for {
		sh.mu.RLock()
		ch := sh.channels[channel]
		sh.mu.RUnlock()
		if ch == nil {
			if !create {
				return nil
			}
			sh.mu.Lock()
			ch = sh.channels[channel]
			if ch == nil {
				ch = &memoryChannel{lastActive: now}
				if t, ok := sh.tombstones[channel]; ok {
					ch.floor = t
				}
				if sh.floor.Compare(ch.floor) > 0 {
					ch.floor = sh.floor
				}
				sh.channels[channel] = ch
			}
			sh.mu.Unlock()
		}
		ch.mu.Lock()
		if !ch.deleted {
			return ch
		}
		ch.mu.Unlock() // deleted under our feet: look again
	}
}

// remove forgets ch (its mutex and the shard's held), keeping its last id
// for I1.
func (sh *memoryShard) remove(channel string, ch *memoryChannel, now time.Time) {
	ch.deleted = true
	delete(sh.channels, channel)
	last := ch.last
	if ch.floor.Compare(last) > 0 {
		last = ch.floor
	}
	if last.Time >= now.Unix() {
		sh.tombstones[channel] = last
	} else {
		sh.raiseFloor(last)
	}
}

// raiseFloor records the last id of a channel forgotten without a tombstone.
func (sh *memoryShard) raiseFloor(last MessageID) {
	if last.Compare(sh.floor) > 0 {
		sh.floor = last
	}
}

func (s *MemoryStore) notify(ev Event) { s.watchers.Notify(ev) }

// Publish implements Store.
func (s *MemoryStore) Publish(ctx context.Context, channel string, msg *Message, cfg ChannelConfig) (*Message, ChannelInfo, error) {
	if s.closed.Load() {
		return nil, ChannelInfo{}, ErrStoreClosed
	}
	now := s.now()
	ch := s.lookup(channel, true, now)
	defer ch.mu.Unlock()

	id := MessageID{Time: now.Unix()}
	prev := ch.last
	if ch.floor.Compare(prev) > 0 {
		prev = ch.floor
	}
	if id.Time <= prev.Time { // same second, or the clock stepped back
		id = MessageID{Time: prev.Time, Tag: prev.Tag + 1}
	}
	stored := msg
	if msg.handedOver {
		msg.handedOver = false
	} else {
		stored = &Message{Data: msg.Data, ContentType: msg.ContentType, EventName: msg.EventName}
	}
	stored.Channel, stored.ID, stored.Time = channel, id, now
	ch.last = id
	ch.lastActive = now
	ch.timeout = cfg.ChannelTimeout
	ch.expire(now)
	if cfg.BufferLength > 0 {
		var exp time.Time
		if cfg.MessageTTL > 0 {
			exp = now.Add(cfg.MessageTTL)
		}
		ch.push(memoryEntry{msg: stored, expires: exp}, cfg.BufferLength)
	}
	s.notify(Event{Type: EventMessage, Channel: channel, Message: stored})
	return stored, ch.info(now), nil
}

// push appends e, dropping the oldest entries beyond capacity n.
func (ch *memoryChannel) push(e memoryEntry, n int) {
	if len(ch.buf) != n {
		ch.resize(n)
	}
	if ch.count == n {
		ch.dropOldest()
	}
	ch.buf[(ch.head+ch.count)%n] = e
	ch.count++
}

// resize gives the buffer capacity n, keeping the newest entries.
func (ch *memoryChannel) resize(n int) {
	for ch.count > n {
		ch.dropOldest()
	}
	buf := make([]memoryEntry, n)
	for i := 0; i < ch.count; i++ {
		buf[i] = ch.at(i)
	}
	ch.buf, ch.head = buf, 0
}

func (ch *memoryChannel) at(i int) memoryEntry { return ch.buf[(ch.head+i)%len(ch.buf)] }

func (ch *memoryChannel) dropOldest() {
	e := &ch.buf[ch.head]
	ch.lastDropped = e.msg.ID
	*e = memoryEntry{}
	ch.head = (ch.head + 1) % len(ch.buf)
	ch.count--
}

// expire drops expired messages from the front of the buffer. Messages
// further back that expired (when the TTL was changed) are skipped on read.
func (ch *memoryChannel) expire(now time.Time) {
	for ch.count > 0 {
		e := ch.at(0)
		if e.expires.IsZero() || now.Before(e.expires) {
			break
		}
		ch.dropOldest()
	}
	if ch.count == 0 && len(ch.buf) > 0 {
		ch.buf, ch.head = nil, 0 // return the memory of an empty buffer
	}
}

// Messages implements Store.
func (s *MemoryStore) Messages(ctx context.Context, channel string, after MessageID, limit int) (MessageBatch, error) {
	if s.closed.Load() {
		return MessageBatch{}, ErrStoreClosed
	}
	now := s.now()
	ch := s.lookup(channel, false, now)
	if ch == nil {
		return MessageBatch{}, nil
	}
	defer ch.mu.Unlock()
	ch.expire(now)
	b := MessageBatch{Last: ch.last, Missed: ch.lastDropped.Compare(after) > 0}
	// The first entry newer than after.
	i := sort.Search(ch.count, func(i int) bool { return ch.at(i).msg.ID.Compare(after) > 0 })
	if n := min(ch.count-i, limit); n > 0 {
		b.Messages = make([]*Message, 0, n)
	}
	for ; i < ch.count && len(b.Messages) < limit; i++ {
		e := ch.at(i)
		if !e.expires.IsZero() && !now.Before(e.expires) {
			b.Missed = true
			continue
		}
		b.Messages = append(b.Messages, e.msg)
	}
	return b, nil
}

func (ch *memoryChannel) info(now time.Time) ChannelInfo {
	ch.expire(now)
	return ChannelInfo{
		Messages:      ch.count,
		LastRequested: ch.lastRequested,
		Subscribers:   ch.subscribers,
		LastMessageID: ch.last,
	}
}

// ChannelInfo implements Store.
func (s *MemoryStore) ChannelInfo(ctx context.Context, channel string) (ChannelInfo, error) {
	if s.closed.Load() {
		return ChannelInfo{}, ErrStoreClosed
	}
	now := s.now()
	ch := s.lookup(channel, false, now)
	if ch == nil {
		return ChannelInfo{}, ErrChannelNotFound
	}
	defer ch.mu.Unlock()
	return ch.info(now), nil
}

// CreateChannel implements Store.
func (s *MemoryStore) CreateChannel(ctx context.Context, channel string, cfg ChannelConfig) (ChannelInfo, error) {
	if s.closed.Load() {
		return ChannelInfo{}, ErrStoreClosed
	}
	now := s.now()
	ch := s.lookup(channel, true, now)
	defer ch.mu.Unlock()
	ch.lastActive = now
	ch.timeout = cfg.ChannelTimeout
	return ch.info(now), nil
}

// DeleteChannel implements Store.
func (s *MemoryStore) DeleteChannel(ctx context.Context, channel string) (ChannelInfo, error) {
	if s.closed.Load() {
		return ChannelInfo{}, ErrStoreClosed
	}
	now := s.now()
	sh := s.shard(channel)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ch := sh.channels[channel]
	if ch == nil {
		return ChannelInfo{}, ErrChannelNotFound
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	info := ch.info(now)
	sh.remove(channel, ch, now)
	s.notify(Event{Type: EventDelete, Channel: channel})
	return info, nil
}

// AddSubscriber implements Store.
func (s *MemoryStore) AddSubscriber(ctx context.Context, channel string, cfg ChannelConfig, create bool) (ChannelInfo, error) {
	if s.closed.Load() {
		return ChannelInfo{}, ErrStoreClosed
	}
	now := s.now()
	ch := s.lookup(channel, create, now)
	if ch == nil {
		return ChannelInfo{}, ErrChannelNotFound
	}
	defer ch.mu.Unlock()
	ch.subscribers++
	ch.lastRequested = now
	ch.lastActive = now
	if create {
		ch.timeout = cfg.ChannelTimeout
	}
	return ch.info(now), nil
}

// RemoveSubscriber implements Store.
func (s *MemoryStore) RemoveSubscriber(ctx context.Context, channel string) error {
	if s.closed.Load() {
		return ErrStoreClosed
	}
	now := s.now()
	ch := s.lookup(channel, false, now)
	if ch == nil {
		return nil // deleted meanwhile
	}
	defer ch.mu.Unlock()
	if ch.subscribers > 0 {
		ch.subscribers--
	}
	ch.lastActive = now
	return nil
}

// Watch implements Store.
func (s *MemoryStore) Watch(fn func(Event)) (cancel func()) { return s.watchers.Add(fn) }

// Stats implements Store.
func (s *MemoryStore) Stats(ctx context.Context) (StoreStats, error) {
	if s.closed.Load() {
		return StoreStats{}, ErrStoreClosed
	}
	var st StoreStats
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		st.Channels += len(sh.channels)
		for _, ch := range sh.channels {
			ch.mu.Lock()
			st.Messages += ch.count
			ch.mu.Unlock()
		}
		sh.mu.RUnlock()
	}
	return st, nil
}

// Close implements Store: it stops the sweeper and notifications.
func (s *MemoryStore) Close() error {
	s.once.Do(func() {
		s.closed.Store(true)
		close(s.stop)
		<-s.done
		s.watchers.Clear()
	})
	return nil
}

func (s *MemoryStore) sweepLoop(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sweep()
		}
	}
}

// sweep drops expired messages, forgets idle channels (B3) and prunes
// tombstones that can no longer matter.
func (s *MemoryStore) sweep() {
	now := s.now()
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for name, ch := range sh.channels {
			ch.mu.Lock()
			ch.expire(now)
			if ch.subscribers == 0 && ch.count == 0 && ch.timeout > 0 && now.Sub(ch.lastActive) >= ch.timeout {
				sh.remove(name, ch, now)
			}
			ch.mu.Unlock()
		}
		for name, id := range sh.tombstones {
			if id.Time < now.Unix() {
				delete(sh.tombstones, name)
				sh.raiseFloor(id)
			}
		}
		sh.mu.Unlock()
	}
}

var _ Store = (*MemoryStore)(nil)
