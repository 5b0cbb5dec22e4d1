package push

import (
	"context"
	"errors"
	"time"
)

// A Store keeps channels and their message buffers. It is the one place that
// assigns message ids. A Hub uses exactly one Store; several Hubs (in one
// process or on several machines) may share one Store, and then behave as
// one server: each Hub learns of every change through Watch.
//
// The contract every implementation keeps (package storetest checks it):
//
//   - Concurrency: every method may be called from any number of goroutines
//     at once. Operations on one channel are linearizable: each takes effect
//     at one instant, and ids are assigned in that order.
//   - Ids (spec I1): Publish assigns each message an id strictly greater than
//     every id that channel ever had, even when its buffer is empty or
//     disabled, after the channel was forgotten (B3) and came back, and when
//     the clock steps back (T never decreases).
//   - Buffer (B1, B2): a channel keeps at most ChannelConfig.BufferLength of
//     its newest messages; a message older than ChannelConfig.MessageTTL is
//     never returned by Messages.
//   - Expiry (B3): a channel with no subscribers and no messages for
//     ChannelConfig.ChannelTimeout is forgotten and its memory returned.
//   - Blocking: methods block only for the store's own I/O and honour ctx.
//     None of them waits for subscribers.
//   - Notifications: after a change is committed, the store calls every
//     function registered with Watch: an EventMessage for each published
//     message and an EventDelete for each deleted channel, for one channel in
//     commit order, whichever Hub or process made the change. The functions
//     must not block or call back into the store.
//     A store that may have lost notifications (a Redis connection dropped)
//     sends EventReset, after which Hubs re-read from the store.
//   - Errors: ErrChannelNotFound when a channel does not exist, ErrStoreClosed
//     after Close, ErrStoreUnavailable (possibly wrapped) when the backing
//     service cannot be reached; anything else is a bug or a bad argument.
//   - Close: stops background work and Watch notifications; later calls fail
//     with ErrStoreClosed. Close is idempotent.
type Store interface {
	// Publish stores msg (Data, ContentType, EventName) in channel, creating
	// the channel if needed, and returns the stored message with Channel, ID
	// and Time set, and the channel's info just after (whose Subscribers
	// counts the subscribers of every Hub sharing the store, see
	// AddSubscriber). It returns once the functions registered with this
	// store's Watch were called with the message (so the subscribers waiting
	// in this process have it when the publisher is answered, spec P1), or,
	// if notifications are interrupted, once the message is stored. The
	// caller must not modify msg afterwards.
	Publish(ctx context.Context, channel string, msg *Message, cfg ChannelConfig) (*Message, ChannelInfo, error)

	// Messages returns up to limit buffered messages of channel with ids after
	// the position after, oldest first. See MessageBatch. A channel that does
	// not exist yields an empty batch, not an error.
	Messages(ctx context.Context, channel string, after MessageID, limit int) (MessageBatch, error)

	// ChannelInfo describes channel, or returns ErrChannelNotFound.
	ChannelInfo(ctx context.Context, channel string) (ChannelInfo, error)

	// CreateChannel creates channel if it does not exist, publishing nothing,
	// and describes it.
	CreateChannel(ctx context.Context, channel string, cfg ChannelConfig) (ChannelInfo, error)

	// DeleteChannel removes channel and its buffer, describing it as it was
	// just before, and notifies EventDelete. ErrChannelNotFound if it does
	// not exist. Later ids of a channel of the same name still follow I1.
	DeleteChannel(ctx context.Context, channel string) (ChannelInfo, error)

	// AddSubscriber counts one more subscriber on channel and records that a
	// subscriber asked now (ChannelInfo.LastRequested). With create false and
	// no such channel it returns ErrChannelNotFound and counts nothing;
	// with create true it creates the channel. It returns the channel's info
	// after counting.
	AddSubscriber(ctx context.Context, channel string, cfg ChannelConfig, create bool) (ChannelInfo, error)

	// RemoveSubscriber undoes one AddSubscriber. It is called exactly once
	// for each successful AddSubscriber, also after the channel was deleted.
	RemoveSubscriber(ctx context.Context, channel string) error

	// Watch registers fn to be called for every change (see the contract
	// above) until the returned cancel function is called.
	Watch(fn func(Event)) (cancel func())

	// Stats counts channels and buffered messages.
	Stats(ctx context.Context) (StoreStats, error)

	// Close releases the store.
	Close() error
}

// ChannelConfig carries a Hub's buffer settings to the Store with each call
// that may create or fill a channel, so Hubs sharing a store need no store
// configuration of their own.
type ChannelConfig struct {
	// BufferLength is the most messages kept per channel; 0 keeps none.
	BufferLength int
	// MessageTTL is how long a message is served; 0 means forever.
	MessageTTL time.Duration
	// ChannelTimeout is how long a channel with no subscribers and no
	// messages is kept; 0 means forever.
	ChannelTimeout time.Duration
}

// MessageBatch is the answer to Store.Messages.
type MessageBatch struct {
	// Messages after the asked position, oldest first.
	Messages []*Message
	// Last is the id of the newest message the channel ever had (whether or
	// not it is still buffered), or the zero MessageID.
	Last MessageID
	// Missed is true when messages after the asked position were dropped from
	// the buffer (trimmed or expired) before they could be returned: the
	// reader has a gap.
	Missed bool
}

// ChannelInfo describes a channel (spec P6).
type ChannelInfo struct {
	// Messages is the number of messages buffered now.
	Messages int
	// LastRequested is when a subscriber last asked for the channel; zero if
	// never.
	LastRequested time.Time
	// Subscribers is the number of subscribers connected now, across every
	// Hub sharing the store.
	Subscribers int
	// LastMessageID is the id of the newest message ever published to the
	// channel, or the zero MessageID.
	LastMessageID MessageID
}

// EventType says what changed in a Store.
type EventType int

const (
	// EventMessage: Event.Message was published to Event.Channel.
	EventMessage EventType = iota + 1
	// EventDelete: Event.Channel was deleted.
	EventDelete
	// EventReset: notifications may have been lost (for every channel);
	// readers must re-read what they need from the store.
	EventReset
)

// Event is a change notification from a Store.
type Event struct {
	Type    EventType
	Channel string
	Message *Message
}

// StoreStats counts what a Store holds.
type StoreStats struct {
	Channels int
	Messages int
}

// Errors a Store returns.
var (
	// ErrChannelNotFound: the channel does not exist.
	ErrChannelNotFound = errors.New("push: channel not found")
	// ErrStoreClosed: the store was closed.
	ErrStoreClosed = errors.New("push: store closed")
	// ErrStoreUnavailable: the store's backing service cannot be reached;
	// retry later. Publisher handlers answer it with 503.
	ErrStoreUnavailable = errors.New("push: store unavailable")
)
