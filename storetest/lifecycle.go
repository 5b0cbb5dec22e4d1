package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pushhub/push"
)

func testDeleteChannel(t *testing.T, s push.Store) {
	ctx := ctxFor(t)
	ev := newRecorder(s)
	defer ev.cancel()
	m := publish(t, s, "del", "a", cfg)
	publish(t, s, "del", "b", cfg)
	if _, err := s.AddSubscriber(ctx, "del", cfg, false); err != nil {
		t.Fatal(err)
	}
	ci, err := s.DeleteChannel(ctx, "del")
	if err != nil {
		t.Fatalf("DeleteChannel: %v", err)
	}
	if ci.Messages != 2 || ci.Subscribers != 1 {
		t.Fatalf("DeleteChannel described the channel as %+v, want 2 messages, 1 subscriber", ci)
	}
	if _, err := s.ChannelInfo(ctx, "del"); !errors.Is(err, push.ErrChannelNotFound) {
		t.Fatalf("ChannelInfo after delete: err = %v, want ErrChannelNotFound", err)
	}
	if b := messages(t, s, "del", push.MessageID{}, 10); len(b.Messages) != 0 {
		t.Fatalf("messages survived DeleteChannel: %v", datas(b.Messages))
	}
	if _, err := s.DeleteChannel(ctx, "del"); !errors.Is(err, push.ErrChannelNotFound) {
		t.Fatalf("second DeleteChannel: err = %v, want ErrChannelNotFound", err)
	}
	// The subscriber counted before the delete leaves afterwards.
	if err := s.RemoveSubscriber(ctx, "del"); err != nil {
		t.Fatalf("RemoveSubscriber after delete: %v", err)
	}
	if _, err := s.ChannelInfo(ctx, "del"); !errors.Is(err, push.ErrChannelNotFound) {
		t.Fatalf("RemoveSubscriber after delete brought the channel back: err = %v", err)
	}
	// The notifications: two messages, then the delete.
	got := ev.waitN(t, 3)
	if got[0].Type != push.EventMessage || got[1].Type != push.EventMessage || got[2].Type != push.EventDelete || got[2].Channel != "del" {
		t.Fatalf("events = %v, want message, message, delete of del", got)
	}
	// The channel comes back with greater ids.
	if m2 := publish(t, s, "del", "c", cfg); m2.ID.Compare(m.ID) <= 0 {
		t.Fatalf("id %v after delete is not greater than %v", m2.ID, m.ID)
	} else if b := messages(t, s, "del", push.MessageID{}, 10); !equal(datas(b.Messages), []string{"c"}) {
		t.Fatalf("recreated channel holds %v, want [c]", datas(b.Messages))
	}
}

func testSubscribers(t *testing.T, s push.Store) {
	ctx := ctxFor(t)
	if _, err := s.AddSubscriber(ctx, "subs", cfg, false); !errors.Is(err, push.ErrChannelNotFound) {
		t.Fatalf("AddSubscriber(create=false) on a missing channel: err = %v, want ErrChannelNotFound", err)
	}
	if _, err := s.ChannelInfo(ctx, "subs"); !errors.Is(err, push.ErrChannelNotFound) {
		t.Fatalf("AddSubscriber(create=false) created the channel (err = %v)", err)
	}
	for i := 1; i <= 3; i++ {
		ci, err := s.AddSubscriber(ctx, "subs", cfg, true)
		if err != nil {
			t.Fatal(err)
		}
		if ci.Subscribers != i {
			t.Fatalf("after %d AddSubscriber, Subscribers = %d", i, ci.Subscribers)
		}
	}
	if _, ci, err := s.Publish(ctx, "subs", &push.Message{Data: []byte("x")}, cfg); err != nil || ci.Subscribers != 3 {
		t.Fatalf("Publish info: %+v, %v; want 3 subscribers", ci, err)
	}
	for i := 2; i >= 0; i-- {
		if err := s.RemoveSubscriber(ctx, "subs"); err != nil {
			t.Fatal(err)
		}
		if ci := info(t, s, "subs"); ci.Subscribers != i {
			t.Fatalf("after RemoveSubscriber, Subscribers = %d, want %d", ci.Subscribers, i)
		}
	}
	// create=false on an existing channel counts.
	if ci, err := s.AddSubscriber(ctx, "subs", cfg, false); err != nil || ci.Subscribers != 1 {
		t.Fatalf("AddSubscriber(create=false) on an existing channel: %+v, %v", ci, err)
	}
	// Concurrent subscribers are all counted.
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.AddSubscriber(ctx, "subs", cfg, true); err != nil {
				t.Error(err)
				return
			}
			if err := s.RemoveSubscriber(ctx, "subs"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ci := info(t, s, "subs"); ci.Subscribers != 1 {
		t.Fatalf("after 20 concurrent add/remove, Subscribers = %d, want 1", ci.Subscribers)
	}
}

func testChannelInfo(t *testing.T, s push.Store) {
	ctx := ctxFor(t)
	ci, err := s.CreateChannel(ctx, "info", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !ci.LastRequested.IsZero() {
		t.Fatalf("LastRequested of a channel nobody asked for = %v, want zero", ci.LastRequested)
	}
	before := time.Now().Add(-2 * time.Second)
	if _, err := s.AddSubscriber(ctx, "info", cfg, false); err != nil {
		t.Fatal(err)
	}
	m1 := publish(t, s, "info", "1", cfg)
	m2 := publish(t, s, "info", "2", cfg)
	ci = info(t, s, "info")
	if ci.Messages != 2 || ci.Subscribers != 1 || ci.LastMessageID != m2.ID {
		t.Fatalf("info = %+v, want 2 messages, 1 subscriber, last %v", ci, m2.ID)
	}
	if ci.LastRequested.Before(before) || ci.LastRequested.After(time.Now().Add(2*time.Second)) {
		t.Fatalf("LastRequested = %v, want about now", ci.LastRequested)
	}
	if m1.ID.Compare(m2.ID) >= 0 {
		t.Fatalf("ids %v, %v not increasing", m1.ID, m2.ID)
	}
	if err := s.RemoveSubscriber(ctx, "info"); err != nil {
		t.Fatal(err)
	}
	if ci2 := info(t, s, "info"); ci2.Subscribers != 0 || !ci2.LastRequested.Equal(ci.LastRequested) {
		t.Fatalf("after the subscriber left: %+v, want 0 subscribers and LastRequested kept", ci2)
	}
}

func testStats(t *testing.T, s push.Store) {
	ctx := ctxFor(t)
	publish(t, s, "st1", "a", cfg)
	publish(t, s, "st1", "b", cfg)
	publish(t, s, "st2", "c", cfg)
	if _, err := s.CreateChannel(ctx, "st3", cfg); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Channels != 3 || st.Messages != 3 {
		t.Fatalf("Stats = %+v, want 3 channels, 3 messages", st)
	}
}

func testConcurrentPublishers(t *testing.T, s push.Store) {
	const publishers, each = 8, 50
	channels := []string{"cc-a", "cc-b"}
	big := push.ChannelConfig{BufferLength: publishers * each}
	ev := newRecorder(s)
	defer ev.cancel()
	ctx := ctxFor(t)
	ids := make([][]*push.Message, publishers)
	var wg sync.WaitGroup
	for p := 0; p < publishers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				ch := channels[i%len(channels)]
				m, _, err := s.Publish(ctx, ch, &push.Message{Data: []byte(fmt.Sprintf("%d/%d", p, i))}, big)
				if err != nil {
					t.Error(err)
					return
				}
				ids[p] = append(ids[p], m)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// Each publisher's own publishes got increasing ids per channel, and no
	// id was handed out twice.
	seen := map[string]string{}
	for p, ms := range ids {
		last := map[string]push.MessageID{}
		for _, m := range ms {
			if m.ID.Compare(last[m.Channel]) <= 0 {
				t.Fatalf("publisher %d: id %v after %v in %s", p, m.ID, last[m.Channel], m.Channel)
			}
			last[m.Channel] = m.ID
			k := m.Channel + " " + m.ID.String()
			if d, dup := seen[k]; dup {
				t.Fatalf("id %s given to %s and %s", k, d, m.Data)
			}
			seen[k] = string(m.Data)
		}
	}
	for _, ch := range channels {
		// The buffer holds all of them, in id order.
		b := messages(t, s, ch, push.MessageID{}, publishers*each)
		if len(b.Messages) != publishers*each/len(channels) {
			t.Fatalf("%s holds %d messages, want %d", ch, len(b.Messages), publishers*each/len(channels))
		}
		for i, m := range b.Messages {
			if i > 0 {
				checkNext(t, b.Messages[i-1].ID, m.ID)
			}
			if seen[ch+" "+m.ID.String()] != string(m.Data) {
				t.Fatalf("%s %v holds %q, publish returned another id for it", ch, m.ID, m.Data)
			}
		}
	}
	// Notifications came for every message, in id (commit) order per channel.
	got := ev.waitN(t, publishers*each)
	last := map[string]push.MessageID{}
	for _, e := range got {
		if e.Type != push.EventMessage || e.Message == nil || e.Message.Channel != e.Channel {
			t.Fatalf("unexpected event %+v", e)
		}
		if e.Message.ID.Compare(last[e.Channel]) <= 0 {
			t.Fatalf("notification of %s %v after %v: not in commit order", e.Channel, e.Message.ID, last[e.Channel])
		}
		last[e.Channel] = e.Message.ID
		if seen[e.Channel+" "+e.Message.ID.String()] != string(e.Message.Data) {
			t.Fatalf("notification %s %v carries %q", e.Channel, e.Message.ID, e.Message.Data)
		}
	}
}

func testWatch(t *testing.T, s push.Store) {
	ev := newRecorder(s)
	defer ev.cancel()
	m, _, err := s.Publish(ctxFor(t), "w", &push.Message{Data: []byte("hi"), ContentType: "text/x", EventName: "e"}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := ev.waitN(t, 1)[0]
	if got.Type != push.EventMessage || got.Channel != "w" || got.Message == nil {
		t.Fatalf("event = %+v, want a message of w", got)
	}
	g := got.Message
	if g.ID != m.ID || string(g.Data) != "hi" || g.ContentType != "text/x" || g.EventName != "e" || g.Channel != "w" {
		t.Fatalf("notified message = %+v, want %+v", g, m)
	}
	// Messages published without a buffer are notified too.
	publish(t, s, "w2", "live", push.ChannelConfig{})
	if got := ev.waitN(t, 2)[1]; got.Channel != "w2" || string(got.Message.Data) != "live" {
		t.Fatalf("event = %+v, want the unbuffered message of w2", got)
	}
}

// testPublishNotifiesFirst: Publish returns only once this store's watchers
// were called with the message (spec P1: the subscribers waiting in this
// process have it when the publisher is answered).
func testPublishNotifiesFirst(t *testing.T, s push.Store) {
	ev := newRecorder(s)
	defer ev.cancel()
	// A store may need a moment to start listening (Redis pub/sub); it
	// is settled once a first publish was notified.
	publish(t, s, "pn", "warm-up", cfg)
	ev.waitN(t, 1)
	for i := range 20 {
		m := publish(t, s, "pn", fmt.Sprint(i), cfg)
		var got bool
		for _, e := range ev.events() {
			if e.Type == push.EventMessage && e.Channel == "pn" && e.Message.ID == m.ID {
				got = true
			}
		}
		if !got {
			t.Fatalf("Publish of %v returned before its watchers were told", m.ID)
		}
	}
}

func testWatchCancel(t *testing.T, s push.Store) {
	a, b := newRecorder(s), newRecorder(s)
	defer b.cancel()
	publish(t, s, "wc", "1", cfg)
	a.waitN(t, 1)
	b.waitN(t, 1)
	a.cancel()
	publish(t, s, "wc", "2", cfg)
	if _, err := s.DeleteChannel(ctxFor(t), "wc"); err != nil {
		t.Fatal(err)
	}
	// b sees both later events; by then a would have seen them too.
	b.waitN(t, 3)
	if n := len(a.events()); n != 1 {
		t.Fatalf("a cancelled watcher got %d events, want 1", n)
	}
}

func testClose(t *testing.T, s push.Store) {
	ctx := ctxFor(t)
	publish(t, s, "c", "x", cfg)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, push.ErrStoreClosed) {
			t.Errorf("%s after Close: err = %v, want ErrStoreClosed", what, err)
		}
	}
	_, _, err := s.Publish(ctx, "c", &push.Message{Data: []byte("y")}, cfg)
	check("Publish", err)
	_, err = s.Messages(ctx, "c", push.MessageID{}, 10)
	check("Messages", err)
	_, err = s.ChannelInfo(ctx, "c")
	check("ChannelInfo", err)
	_, err = s.CreateChannel(ctx, "c", cfg)
	check("CreateChannel", err)
	_, err = s.DeleteChannel(ctx, "c")
	check("DeleteChannel", err)
	_, err = s.AddSubscriber(ctx, "c", cfg, true)
	check("AddSubscriber", err)
	check("RemoveSubscriber", s.RemoveSubscriber(ctx, "c"))
	_, err = s.Stats(ctx)
	check("Stats", err)
}

// recorder collects a Watch's events.
type recorder struct {
	mu     sync.Mutex
	evs    []push.Event
	signal chan struct{} // receives after each event, never blocks the store
	cancel func()
}

func newRecorder(s push.Store) *recorder {
	r := &recorder{signal: make(chan struct{}, 1)}
	r.cancel = s.Watch(func(e push.Event) {
		r.mu.Lock()
		r.evs = append(r.evs, e)
		r.mu.Unlock()
		select {
		case r.signal <- struct{}{}:
		default:
		}
	})
	return r
}

func (r *recorder) events() []push.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]push.Event(nil), r.evs...)
}

// waitN waits until at least n events arrived and returns them, leaving out
// EventReset (a store may send it at any time).
func (r *recorder) waitN(t *testing.T, n int) []push.Event {
	t.Helper()
	timeout := time.NewTimer(waitFor)
	defer timeout.Stop()
	for {
		var evs []push.Event
		for _, e := range r.events() {
			if e.Type != push.EventReset {
				evs = append(evs, e)
			}
		}
		if len(evs) >= n {
			return evs
		}
		select {
		case <-r.signal:
		case <-timeout.C:
			t.Fatalf("got %d events after %v, want %d: %+v", len(evs), waitFor, n, evs)
		}
	}
}
