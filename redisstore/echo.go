package redisstore

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushhub/push"
)

// A publish on this node returns once this node's own watchers were told of
// the message (the Store contract: the Hubs of this process have handed it
// to their waiting subscribers when the publisher gets its answer). The
// notification comes back through the node's one pub/sub subscription, so
// that this node sees every channel's messages in commit order; Publish
// waits for that echo.

// echoWaitLimit bounds the wait for the echo: when the notification
// connection is down the message is stored all the same, and subscribers
// catch up after the EventReset that follows the reconnect.
const echoWaitLimit = time.Second

// echoWaiter waits for the notification of channel's message id.
type echoWaiter struct {
	id    push.MessageID // set once the script returned
	known bool           // id is set
	seen  push.MessageID // the newest id of the channel notified since registering
	done  chan struct{}  // closed when seen >= id, or on reset
}

type echoWaiters struct {
	// listening is true while the notification subscription is up; without
	// it there is no echo to wait for.
	listening atomic.Bool

	mu sync.Mutex
	m  map[string][]*echoWaiter // by channel
}

// register starts waiting for the next message of channel published here,
// before the script runs, so an echo that beats the script's reply counts.
func (e *echoWaiters) register(channel string) *echoWaiter {
	w := &echoWaiter{done: make(chan struct{})}
	e.mu.Lock()
	if e.m == nil {
		e.m = make(map[string][]*echoWaiter)
	}
	e.m[channel] = append(e.m[channel], w)
	e.mu.Unlock()
	return w
}

// wait waits until the echo of id arrived, ctx ends or echoWaitLimit passed,
// then unregisters w.
func (e *echoWaiters) wait(ctx context.Context, channel string, w *echoWaiter, id push.MessageID) {
	if !e.listening.Load() {
		e.forget(channel, w)
		return
	}
	e.mu.Lock()
	w.id, w.known = id, true
	if w.seen.Compare(id) >= 0 {
		closeOnce(w)
	}
	e.mu.Unlock()
	t := time.NewTimer(echoWaitLimit)
	select {
	case <-w.done:
	case <-ctx.Done():
	case <-t.C:
	}
	t.Stop()
	e.forget(channel, w)
}

// forget unregisters w.
func (e *echoWaiters) forget(channel string, w *echoWaiter) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ws := e.m[channel]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(e.m, channel)
	} else {
		e.m[channel] = ws
	}
}

// notified records that the watchers were told of message id of channel.
func (e *echoWaiters) notified(channel string, id push.MessageID) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, w := range e.m[channel] {
		if id.Compare(w.seen) > 0 {
			w.seen = id
		}
		if w.known && w.seen.Compare(w.id) >= 0 {
			closeOnce(w)
		}
	}
}

// reset releases every waiter: notifications may have been lost.
func (e *echoWaiters) reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ws := range e.m {
		for _, w := range ws {
			closeOnce(w)
		}
	}
}

func closeOnce(w *echoWaiter) {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
}
