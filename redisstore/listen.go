package redisstore

import (
	"context"
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/pushhub/push"
	"github.com/redis/go-redis/v9"
)

// pingEvery is how long the notification connection may be silent before
// the store pings Redis on it.
const pingEvery = 10 * time.Second

// listen reads the notification channel, the one Redis subscription of this
// node, and calls the watchers. After the connection was lost and is back
// (go-redis re-subscribes), it sends EventReset: notifications may have
// been missed, Hubs re-read by position from the buffers.
func (s *Store) listen() {
	defer s.wg.Done()
	s.psMu.Lock()
	ps := s.ps
	s.psMu.Unlock()
	lost, pinged := false, false
	backoff := 50 * time.Millisecond
	for {
		v, err := ps.ReceiveTimeout(s.ctx, pingEvery)
		if s.ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne net.Error
			if !lost && errors.As(err, &ne) && ne.Timeout() {
				if !pinged && ps.Ping(s.ctx) == nil {
					pinged = true
					continue
				}
				// No answer to a ping: the connection is dead without
				// saying so. Start over on a new one.
				s.log.Warn("redisstore: the notification connection to Redis does not answer; reconnecting")
				if ps = s.resubscribe(); ps == nil {
					return
				}
				lost, pinged = true, false
				s.echoes.listening.Store(false)
				continue
			}
			if !lost {
				s.log.Warn("redisstore: lost the notification connection to Redis; retrying", "error", err)
				lost = true
				s.echoes.listening.Store(false)
				s.echoes.reset()
			}
			s.relearn()
			t := time.NewTimer(backoff)
			select {
			case <-s.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff, pinged = 50*time.Millisecond, false
		switch m := v.(type) {
		case *redis.Subscription:
			subscribed := m.Kind == "subscribe" || m.Kind == "ssubscribe"
			if subscribed {
				s.echoes.listening.Store(true)
			}
			if lost && subscribed {
				lost = false
				s.log.Info("redisstore: notification connection to Redis is back")
				s.kickResync()
				s.notify(push.Event{Type: push.EventReset})
				s.echoes.reset()
			}
		case *redis.Message:
			if ev, ok := decodeEvent(m.Payload); ok {
				if ev.Message != nil {
					s.seen(ev.Message.ID.Time)
				}
				s.notify(ev)
				if ev.Message != nil {
					s.echoes.notified(ev.Channel, ev.Message.ID)
				}
			} else {
				s.log.Error("redisstore: malformed notification", "payload", m.Payload)
			}
		}
	}
}

// resubscribe replaces the notification subscription with a new one, or
// returns nil after Close.
func (s *Store) resubscribe() *redis.PubSub {
	s.psMu.Lock()
	defer s.psMu.Unlock()
	if s.ctx.Err() != nil {
		return nil
	}
	s.ps.Close()
	s.ps = s.subscribe(s.ctx)
	return s.ps
}

// decodeEvent parses what the scripts PUBLISH: "m" then the netstrings
// channel, T, G, time ms, content type, event name, data; or "d" channel.
func decodeEvent(p string) (push.Event, bool) {
	if p == "" {
		return push.Event{}, false
	}
	kind, rest := p[0], p[1:]
	var f []string
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] != ':' {
			i++
		}
		n, err := strconv.Atoi(rest[:i])
		if err != nil || i+1+n > len(rest) {
			return push.Event{}, false
		}
		f = append(f, rest[i+1:i+1+n])
		rest = rest[i+1+n:]
	}
	switch {
	case kind == 'd' && len(f) == 1:
		return push.Event{Type: push.EventDelete, Channel: f[0]}, true
	case kind == 'm' && len(f) == 7:
		t, err1 := strconv.ParseInt(f[1], 10, 64)
		g, err2 := strconv.ParseInt(f[2], 10, 64)
		ms, err3 := strconv.ParseInt(f[3], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return push.Event{}, false
		}
		return push.Event{Type: push.EventMessage, Channel: f[0], Message: &push.Message{
			Channel:     f[0],
			ID:          push.MessageID{Time: t, Tag: g},
			Time:        time.UnixMilli(ms),
			ContentType: f[4],
			EventName:   f[5],
			Data:        []byte(f[6]),
		}}, true
	}
	return push.Event{}, false
}

func (s *Store) notify(ev push.Event) { s.watchers.Notify(ev) }

// Watch implements push.Store. fn is called from the store's notification
// goroutine, for changes made by any node, once Redis has committed them.
func (s *Store) Watch(fn func(push.Event)) (cancel func()) { return s.watchers.Add(fn) }

func (s *Store) kickResync() {
	select {
	case s.resyncCh <- struct{}{}:
	default:
	}
}

// heartbeat keeps this node's subscriber counts alive, and writes them back
// to Redis after a failure (or a Redis restart that lost them).
func (s *Store) heartbeat() {
	defer s.wg.Done()
	t := time.NewTicker(s.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.resyncCh:
			s.dirty.Store(true)
		}
		ctx, cancel := context.WithTimeout(s.ctx, s.ttl/3)
		var err error
		if s.dirty.Load() {
			err = s.resync(ctx)
		} else {
			err = s.beat(ctx)
		}
		cancel()
		if err != nil {
			s.dirty.Store(true)
			s.relearn()
		}
	}
}

// relearn has a cluster client learn again which nodes serve which slots,
// after a failure that may have been a failover; go-redis learns it by
// itself only from redirections or after a while.
func (s *Store) relearn() {
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		ctx, cancel := context.WithTimeout(s.ctx, orDefault(s.timeout, 3*time.Second))
		cc.ReloadState(ctx)
		cancel()
	}
}

// beat renews this node's deadline; if the node had been taken for dead
// (its counts may be gone), it marks the counts for resync.
func (s *Store) beat(ctx context.Context) error {
	alive, err := heartbeatScript.Run(ctx, s.rdb, s.keys, s.prefix, s.node, ms(s.ttl), "0").Int()
	if err == nil && alive == 0 {
		s.dirty.Store(true)
	}
	return err
}

// resync writes this node's counts to Redis.
func (s *Store) resync(ctx context.Context) error {
	s.countMu.Lock()
	defer s.countMu.Unlock()
	s.dirty.Store(false)
	s.localMu.Lock()
	args := []any{s.prefix, s.node, ms(s.ttl)}
	for c, lc := range s.counts {
		args = append(args, c, lc.n, lc.timeout)
	}
	s.localMu.Unlock()
	const chunk = 3 * 500
	for i := 3; ; i += chunk {
		end := min(i+chunk, len(args))
		part := append(args[:3:3], args[i:end]...)
		if err := syncScript.Run(ctx, s.rdb, s.keys, part...).Err(); err != nil {
			s.dirty.Store(true)
			return err
		}
		if end == len(args) {
			break
		}
	}
	s.localMu.Lock()
	for c, lc := range s.counts {
		if lc.n == 0 {
			delete(s.counts, c)
		}
	}
	s.localMu.Unlock()
	return s.beat(ctx)
}
