// Package storetest is a conformance suite for implementations of
// push.Store. A store package runs it from a test:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) push.Store {
//			return mystore.New(...) // a fresh, empty store
//		})
//	}
//
// The suite checks the contract documented on push.Store: id assignment and
// monotonicity (spec I1), ordering, buffer trimming (B1), message TTL (B2),
// channel expiry (B3), channel life cycle, subscriber counts, concurrent
// publishers and Watch notifications. Expiry is tested with short real
// timeouts (about a second) and bounded waits on observable state, so a run
// takes a few seconds. Notifications may arrive asynchronously (a store
// backed by a server delivers them from another goroutine); the suite waits
// for them with a deadline.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pushhub/push"
)

// waitFor bounds every wait of the suite for something asynchronous.
const waitFor = 15 * time.Second

// Run runs the conformance suite against the stores newStore returns. Each
// call of newStore must return a new, empty store (for a shared server, use a
// fresh key prefix). The suite closes every store it gets; newStore may also
// register its own cleanup with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) push.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s push.Store)
	}{
		{"IDs", testIDs},
		{"IDsAfterDelete", testIDsAfterDelete},
		{"Ordering", testOrdering},
		{"MessagesLimit", testMessagesLimit},
		{"MessagesMissingChannel", testMessagesMissingChannel},
		{"Trim", testTrim},
		{"NoBuffer", testNoBuffer},
		{"MessageTTL", testMessageTTL},
		{"ChannelExpiry", testChannelExpiry},
		{"CreateChannel", testCreateChannel},
		{"DeleteChannel", testDeleteChannel},
		{"Subscribers", testSubscribers},
		{"ChannelInfo", testChannelInfo},
		{"Stats", testStats},
		{"ConcurrentPublishers", testConcurrentPublishers},
		{"Watch", testWatch},
		{"PublishNotifiesFirst", testPublishNotifiesFirst},
		{"WatchCancel", testWatchCancel},
		{"Close", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

// cfg is a buffer configuration without expiry.
var cfg = push.ChannelConfig{BufferLength: 100}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

func publish(t *testing.T, s push.Store, channel, data string, c push.ChannelConfig) *push.Message {
	t.Helper()
	m, _, err := s.Publish(ctxFor(t), channel, &push.Message{Data: []byte(data), ContentType: "text/plain"}, c)
	if err != nil {
		t.Fatalf("Publish(%q, %q): %v", channel, data, err)
	}
	return m
}

func messages(t *testing.T, s push.Store, channel string, after push.MessageID, limit int) push.MessageBatch {
	t.Helper()
	b, err := s.Messages(ctxFor(t), channel, after, limit)
	if err != nil {
		t.Fatalf("Messages(%q, %v, %d): %v", channel, after, limit, err)
	}
	return b
}

func info(t *testing.T, s push.Store, channel string) push.ChannelInfo {
	t.Helper()
	ci, err := s.ChannelInfo(ctxFor(t), channel)
	if err != nil {
		t.Fatalf("ChannelInfo(%q): %v", channel, err)
	}
	return ci
}

func datas(ms []*push.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m.Data)
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkNext fails unless next is a correct successor of prev: a greater id,
// with tag 0 in a new second and tag prev+1 within the same second.
func checkNext(t *testing.T, prev, next push.MessageID) {
	t.Helper()
	if next.Compare(prev) <= 0 {
		t.Fatalf("id %v after %v: ids must strictly increase (I1)", next, prev)
	}
	if next.Time == prev.Time && next.Tag != prev.Tag+1 {
		t.Fatalf("id %v after %v: same-second tags must count up by one", next, prev)
	}
	if next.Time > prev.Time && next.Tag != 0 {
		t.Fatalf("id %v after %v: the first id of a second must have tag 0", next, prev)
	}
}

func testIDs(t *testing.T, s push.Store) {
	before := time.Now()
	var prev push.MessageID
	for i := 0; i < 20; i++ {
		m := publish(t, s, "ids", fmt.Sprint(i), cfg)
		if m.Channel != "ids" || string(m.Data) != fmt.Sprint(i) || m.ContentType != "text/plain" {
			t.Fatalf("Publish returned %+v, want channel ids, data %d, text/plain", m, i)
		}
		if d := time.Unix(m.ID.Time, 0).Sub(before); d < -5*time.Second || d > waitFor {
			t.Fatalf("id %v is not near the current time %v", m.ID, before.Unix())
		}
		if m.Time.IsZero() || m.Time.Unix() > m.ID.Time {
			t.Fatalf("message time %v does not fit id %v", m.Time, m.ID)
		}
		if i == 0 {
			if m.ID.Tag != 0 {
				t.Fatalf("first id of a new channel is %v, want tag 0", m.ID)
			}
		} else {
			checkNext(t, prev, m.ID)
		}
		prev = m.ID
	}
	// Another channel counts its own tags.
	if m := publish(t, s, "ids-other", "x", cfg); m.ID.Tag != 0 {
		t.Fatalf("first id of another channel is %v, want tag 0", m.ID)
	}
}

func testIDsAfterDelete(t *testing.T, s push.Store) {
	ctx := ctxFor(t)
	var prev push.MessageID
	for i := 0; i < 5; i++ {
		m := publish(t, s, "again", fmt.Sprint(i), cfg)
		if m.ID.Compare(prev) <= 0 {
			t.Fatalf("after delete and recreate: id %v is not greater than %v (I1)", m.ID, prev)
		}
		prev = m.ID
		if _, err := s.DeleteChannel(ctx, "again"); err != nil {
			t.Fatalf("DeleteChannel: %v", err)
		}
	}
	// Also with the buffer disabled: ids never repeat.
	for i := 0; i < 5; i++ {
		m := publish(t, s, "again", fmt.Sprint(i), push.ChannelConfig{})
		if m.ID.Compare(prev) <= 0 {
			t.Fatalf("without buffer: id %v is not greater than %v (I1)", m.ID, prev)
		}
		prev = m.ID
	}
}

func testOrdering(t *testing.T, s push.Store) {
	var want []string
	var ids []push.MessageID
	for i := 0; i < 30; i++ {
		d := fmt.Sprintf("m%02d", i)
		want = append(want, d)
		ids = append(ids, publish(t, s, "order", d, cfg).ID)
	}
	b := messages(t, s, "order", push.MessageID{}, 100)
	if got := datas(b.Messages); !equal(got, want) {
		t.Fatalf("Messages from the start = %v, want %v", got, want)
	}
	if b.Last != ids[len(ids)-1] || b.Missed {
		t.Fatalf("batch Last=%v Missed=%v, want Last=%v Missed=false", b.Last, b.Missed, ids[len(ids)-1])
	}
	for i, m := range b.Messages {
		if m.ID != ids[i] || m.Channel != "order" || m.ContentType != "text/plain" {
			t.Fatalf("message %d = %+v, want id %v in channel order", i, m, ids[i])
		}
	}
	// Reading after each id returns exactly the rest.
	for i, id := range ids {
		b := messages(t, s, "order", id, 100)
		if got := datas(b.Messages); !equal(got, want[i+1:]) {
			t.Fatalf("Messages after %v = %v, want %v", id, got, want[i+1:])
		}
		if b.Missed {
			t.Fatalf("Messages after %v: Missed with nothing dropped", id)
		}
	}
	// An id between two messages (a tag that was never assigned) reads on
	// from the next greater id.
	last := ids[len(ids)-1]
	if b := messages(t, s, "order", push.MessageID{Time: last.Time, Tag: last.Tag + 5}, 100); len(b.Messages) != 0 {
		t.Fatalf("Messages after a future id returned %v", datas(b.Messages))
	}
	// Binary-safe payloads and message fields survive.
	data := []byte{0, 1, 2, 255, '\n', ':', '"'}
	m, _, err := s.Publish(ctxFor(t), "order", &push.Message{Data: data, ContentType: "application/octet-stream", EventName: "ev"}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b = messages(t, s, "order", last, 10)
	if len(b.Messages) != 1 || string(b.Messages[0].Data) != string(data) || b.Messages[0].EventName != "ev" ||
		b.Messages[0].ContentType != "application/octet-stream" || b.Messages[0].ID != m.ID {
		t.Fatalf("binary message read back as %+v, want %+v", b.Messages, m)
	}
	if got, want := b.Messages[0].Time.UnixMilli()/1000, m.Time.UnixMilli()/1000; got != want {
		t.Fatalf("message time read back as %v, published as %v", b.Messages[0].Time, m.Time)
	}
}

func testMessagesLimit(t *testing.T, s push.Store) {
	for i := 0; i < 5; i++ {
		publish(t, s, "limit", fmt.Sprint(i), cfg)
	}
	b := messages(t, s, "limit", push.MessageID{}, 2)
	if got := datas(b.Messages); !equal(got, []string{"0", "1"}) {
		t.Fatalf("first page = %v, want [0 1]", got)
	}
	b = messages(t, s, "limit", b.Messages[1].ID, 2)
	if got := datas(b.Messages); !equal(got, []string{"2", "3"}) {
		t.Fatalf("second page = %v, want [2 3]", got)
	}
	b = messages(t, s, "limit", b.Messages[1].ID, 2)
	if got := datas(b.Messages); !equal(got, []string{"4"}) {
		t.Fatalf("third page = %v, want [4]", got)
	}
}

func testMessagesMissingChannel(t *testing.T, s push.Store) {
	b := messages(t, s, "nothing-here", push.MessageID{}, 10)
	if len(b.Messages) != 0 || !b.Last.IsZero() || b.Missed {
		t.Fatalf("Messages of a missing channel = %+v, want an empty batch", b)
	}
	if _, err := s.ChannelInfo(ctxFor(t), "nothing-here"); !errors.Is(err, push.ErrChannelNotFound) {
		t.Fatalf("ChannelInfo of a missing channel: err = %v, want ErrChannelNotFound", err)
	}
}

func testTrim(t *testing.T, s push.Store) {
	c := push.ChannelConfig{BufferLength: 3}
	var ids []push.MessageID
	for i := 0; i < 5; i++ {
		m, ci, err := s.Publish(ctxFor(t), "trim", &push.Message{Data: []byte(fmt.Sprint(i))}, c)
		if err != nil {
			t.Fatal(err)
		}
		if want := min(i+1, 3); ci.Messages != want {
			t.Fatalf("after publish %d, info.Messages = %d, want %d", i, ci.Messages, want)
		}
		ids = append(ids, m.ID)
	}
	b := messages(t, s, "trim", push.MessageID{}, 10)
	if got := datas(b.Messages); !equal(got, []string{"2", "3", "4"}) {
		t.Fatalf("buffer of 3 after 5 publishes holds %v, want [2 3 4] (B1)", got)
	}
	if !b.Missed {
		t.Fatal("reading from the start after trimming: Missed = false, want true")
	}
	if b.Last != ids[4] {
		t.Fatalf("Last = %v, want %v", b.Last, ids[4])
	}
	if b := messages(t, s, "trim", ids[0], 10); !b.Missed || !equal(datas(b.Messages), []string{"2", "3", "4"}) {
		t.Fatalf("after %v (message 1 dropped): %v Missed=%v, want [2 3 4] Missed=true", ids[0], datas(b.Messages), b.Missed)
	}
	if b := messages(t, s, "trim", ids[1], 10); b.Missed || !equal(datas(b.Messages), []string{"2", "3", "4"}) {
		t.Fatalf("after %v (nothing after it dropped): %v Missed=%v, want [2 3 4] Missed=false", ids[1], datas(b.Messages), b.Missed)
	}
	if ci := info(t, s, "trim"); ci.Messages != 3 || ci.LastMessageID != ids[4] {
		t.Fatalf("info = %+v, want 3 messages, last %v", ci, ids[4])
	}
}

func testNoBuffer(t *testing.T, s push.Store) {
	m, ci, err := s.Publish(ctxFor(t), "nobuf", &push.Message{Data: []byte("x")}, push.ChannelConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if ci.Messages != 0 || ci.LastMessageID != m.ID {
		t.Fatalf("info after unbuffered publish = %+v, want 0 messages and last id %v", ci, m.ID)
	}
	b := messages(t, s, "nobuf", push.MessageID{}, 10)
	if len(b.Messages) != 0 || b.Last != m.ID {
		t.Fatalf("Messages with the buffer disabled = %+v, want none with Last %v", b, m.ID)
	}
}

// eventually polls cond until it holds or the suite's wait bound passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", waitFor, what)
		}
		<-tick.C
	}
}

func testMessageTTL(t *testing.T, s push.Store) {
	short := push.ChannelConfig{BufferLength: 10, MessageTTL: 1500 * time.Millisecond}
	m1 := publish(t, s, "ttl", "old", short)
	published := time.Now()
	b := messages(t, s, "ttl", push.MessageID{}, 10)
	if time.Since(published) < short.MessageTTL && len(b.Messages) != 1 {
		t.Fatalf("a fresh message is not served: %+v", b)
	}
	eventually(t, "the message to expire (B2)", func() bool {
		return len(messages(t, s, "ttl", push.MessageID{}, 10).Messages) == 0
	})
	if since := time.Since(published); since < short.MessageTTL-100*time.Millisecond {
		t.Fatalf("message expired after %v, its TTL is %v", since, short.MessageTTL)
	}
	b = messages(t, s, "ttl", push.MessageID{}, 10)
	if !b.Missed || b.Last != m1.ID {
		t.Fatalf("after expiry: Missed=%v Last=%v, want Missed=true Last=%v", b.Missed, b.Last, m1.ID)
	}
	m2 := publish(t, s, "ttl", "new", push.ChannelConfig{BufferLength: 10})
	if m2.ID.Compare(m1.ID) <= 0 {
		t.Fatalf("id %v after expired %v (I1)", m2.ID, m1.ID)
	}
	b = messages(t, s, "ttl", m1.ID, 10)
	if !equal(datas(b.Messages), []string{"new"}) || b.Missed {
		t.Fatalf("after the expired message: %v Missed=%v, want [new] Missed=false", datas(b.Messages), b.Missed)
	}
}

func testChannelExpiry(t *testing.T, s push.Store) {
	ctx := ctxFor(t)
	c := push.ChannelConfig{BufferLength: 10, MessageTTL: time.Second, ChannelTimeout: time.Second}
	// kept has a subscriber; idle has none; withmsg has a message that
	// expires; created was made by CreateChannel.
	if _, err := s.AddSubscriber(ctx, "kept", c, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateChannel(ctx, "created", c); err != nil {
		t.Fatal(err)
	}
	last := publish(t, s, "withmsg", "m", c).ID
	if _, err := s.AddSubscriber(ctx, "idle", c, true); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveSubscriber(ctx, "idle"); err != nil {
		t.Fatal(err)
	}
	gone := func(ch string) func() bool {
		return func() bool {
			_, err := s.ChannelInfo(ctx, ch)
			if err != nil && !errors.Is(err, push.ErrChannelNotFound) {
				t.Fatalf("ChannelInfo(%q): %v", ch, err)
			}
			return err != nil
		}
	}
	eventually(t, "an idle channel to be forgotten (B3)", gone("idle"))
	eventually(t, "a created channel to be forgotten (B3)", gone("created"))
	eventually(t, "a channel whose message expired to be forgotten (B3)", gone("withmsg"))
	// kept was created before idle, and is still there: its subscriber keeps it.
	ci, err := s.ChannelInfo(ctx, "kept")
	if err != nil {
		t.Fatalf("a channel with a subscriber was forgotten: %v", err)
	}
	if ci.Subscribers != 1 {
		t.Fatalf("kept has %d subscribers, want 1", ci.Subscribers)
	}
	if err := s.RemoveSubscriber(ctx, "kept"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a channel to be forgotten after its last subscriber left", gone("kept"))
	// A forgotten channel that comes back still gets greater ids (I1).
	if m := publish(t, s, "withmsg", "again", c); m.ID.Compare(last) <= 0 {
		t.Fatalf("id %v after the channel was forgotten is not greater than %v (I1)", m.ID, last)
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Channels != 1 {
		t.Fatalf("Stats after expiry = %+v, want 1 channel", st)
	}
}

func testCreateChannel(t *testing.T, s push.Store) {
	ctx := ctxFor(t)
	ci, err := s.CreateChannel(ctx, "made", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if ci.Messages != 0 || ci.Subscribers != 0 || !ci.LastMessageID.IsZero() {
		t.Fatalf("new channel info = %+v, want empty", ci)
	}
	if _, err := s.ChannelInfo(ctx, "made"); err != nil {
		t.Fatalf("ChannelInfo after CreateChannel: %v", err)
	}
	m := publish(t, s, "made", "x", cfg)
	// Creating an existing channel changes nothing.
	ci, err = s.CreateChannel(ctx, "made", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if ci.Messages != 1 || ci.LastMessageID != m.ID {
		t.Fatalf("CreateChannel on an existing channel = %+v, want 1 message, last %v", ci, m.ID)
	}
	// create=false subscribers may now count on it.
	if _, err := s.AddSubscriber(ctx, "made", cfg, false); err != nil {
		t.Fatalf("AddSubscriber(create=false) on a created channel: %v", err)
	}
	if err := s.RemoveSubscriber(ctx, "made"); err != nil {
		t.Fatal(err)
	}
}
