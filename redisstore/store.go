package redisstore

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushhub/push"
	"github.com/redis/go-redis/v9"
)

// Options configure a Store. The zero value connects to redis://127.0.0.1:6379/0.
type Options struct {
	// URL locates the Redis server: redis://[[user]:password@]host:port/db,
	// or rediss://... for TLS. Empty: redis://127.0.0.1:6379/0.
	URL string

	// ClusterURL, if set, makes the store use a Redis Cluster instead of
	// URL, given in go-redis's cluster URL form:
	// redis://[[user]:password@]host:port?addr=host:port&addr=host:port
	// (rediss:// for TLS). Every key of the store then carries the hash
	// tag {KeyPrefix}, so all of them live in one hash slot: the cluster
	// gives failover to a replica and redirections, not more capacity for
	// one store.
	ClusterURL string

	// KeyPrefix starts every key and the notification channel, so several
	// applications can share one Redis. Empty: "push:".
	KeyPrefix string

	// NodeID names this process among the nodes sharing the Redis, for the
	// subscriber counts. Empty: a random id. Two live stores must not share
	// one NodeID.
	NodeID string

	// TLSConfig, if set, is the TLS configuration for a rediss:// URL (for
	// example with RootCAs for a private CA). Nil: the system's roots and
	// the host of the URL.
	TLSConfig *tls.Config

	// DialTimeout bounds connecting to Redis. 0 means 2 seconds.
	DialTimeout time.Duration

	// Timeout bounds each command once connected (read and write). 0 means
	// 3 seconds.
	Timeout time.Duration

	// NodeTTL is how long the subscriber counts of this node stay valid
	// without a heartbeat: a node that crashed stops counting after it. The
	// node beats every NodeTTL/3. 0 means 15 seconds.
	NodeTTL time.Duration

	// Logger receives the store's logs (lost connections). Nil:
	// slog.Default().
	Logger *slog.Logger
}

// Store is a push.Store kept in Redis, shared by any number of Hubs in any
// number of processes. Create it with New; Close it after the Hubs using it
// have shut down.
type Store struct {
	rdb     redis.UniversalClient
	addr    string   // where Redis is, for errors
	keys    []string // KEYS of every script: the routing key on a cluster, else none
	psMu    sync.Mutex
	ps      *redis.PubSub // the notification subscription; guarded by psMu
	prefix  string
	events  string // notification channel
	node    string
	ttl     time.Duration
	timeout time.Duration // Options.Timeout

	// soloUntil (Unix ns): until then, publishes on a cluster do not wait
	// for a replica (the last wait was in vain).
	soloUntil atomic.Int64
	log       *slog.Logger

	watchers push.Watchers
	echoes   echoWaiters // publishes waiting for their own notification

	// counts are this node's subscribers per channel, the truth that
	// resync writes back to Redis after a failure. countMu is held for
	// reading by every count change (Redis call and local update together)
	// and for writing by resync.
	countMu  sync.RWMutex
	localMu  sync.Mutex
	counts   map[string]*nodeCount
	dirty    atomic.Bool // a count change may not have reached Redis
	resyncCh chan struct{}

	// maxT is the greatest id time this node has assigned or been told of.
	maxT atomic.Int64

	closed atomic.Bool
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// nodeCount is what this node knows of a channel it counts subscribers on.
type nodeCount struct {
	n       int   // subscribers
	timeout int64 // channel timeout (ms), to create the channel again
}

// local returns the count of channel, creating it; localMu must be held.
func (s *Store) local(channel string, cfg push.ChannelConfig) *nodeCount {
	lc := s.counts[channel]
	if lc == nil {
		lc = &nodeCount{}
		s.counts[channel] = lc
	}
	lc.timeout = ms(cfg.ChannelTimeout)
	return lc
}

// New connects to Redis, subscribes to the store's notifications and
// returns the Store. It fails if Redis cannot be reached within ctx.
func New(ctx context.Context, opts Options) (*Store, error) {
	var (
		rdb  redis.UniversalClient
		addr string
	)
	prefix := opts.KeyPrefix
	if prefix == "" {
		prefix = "push:"
	}
	var keys []string
	if opts.ClusterURL != "" {
		co, err := redis.ParseClusterURL(opts.ClusterURL)
		if err != nil {
			return nil, fmt.Errorf("redisstore: bad cluster URL (want redis://host:port?addr=host:port&addr=host:port): %w", err)
		}
		if co.TLSConfig != nil && opts.TLSConfig != nil {
			co.TLSConfig = withServerName(opts.TLSConfig, co.TLSConfig.ServerName)
		}
		co.DialTimeout = orDefault(opts.DialTimeout, 2*time.Second)
		co.ReadTimeout = orDefault(opts.Timeout, 3*time.Second)
		co.WriteTimeout = co.ReadTimeout
		co.MaxRetries = -1
		co.DialerRetries = 1
		co.ContextTimeoutEnabled = true
		co.DisableIdentity = true
		rdb, addr = redis.NewClusterClient(co), "cluster "+strings.Join(co.Addrs, ",")
		// One hash slot for every key, and a key naming it so that the
		// client sends each script to the slot's master.
		prefix = "{" + prefix + "}"
		keys = []string{prefix + "clock"}
	} else {
		url := opts.URL
		if url == "" {
			url = "redis://127.0.0.1:6379/0"
		}
		ro, err := redis.ParseURL(url)
		if err != nil {
			return nil, fmt.Errorf("redisstore: bad URL (want redis://[:password@]host:port/db or rediss://...): %w", err)
		}
		if ro.TLSConfig != nil && opts.TLSConfig != nil {
			ro.TLSConfig = withServerName(opts.TLSConfig, ro.TLSConfig.ServerName)
		}
		ro.DialTimeout = orDefault(opts.DialTimeout, 2*time.Second)
		ro.ReadTimeout = orDefault(opts.Timeout, 3*time.Second)
		ro.WriteTimeout = ro.ReadTimeout
		// No retries: a publish whose answer was lost must not be stored twice;
		// the caller (a publisher answered 503) decides.
		ro.MaxRetries = -1
		ro.DialerRetries = 1 // fail fast when Redis is down
		ro.ContextTimeoutEnabled = true
		ro.DisableIdentity = true
		rdb, addr = redis.NewClient(ro), ro.Addr
	}
	s := &Store{
		rdb:      rdb,
		addr:     addr,
		keys:     keys,
		prefix:   prefix,
		node:     opts.NodeID,
		ttl:      orDefault(opts.NodeTTL, 15*time.Second),
		timeout:  opts.Timeout,
		log:      opts.Logger,
		counts:   make(map[string]*nodeCount),
		resyncCh: make(chan struct{}, 1),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if s.node == "" {
		var b [8]byte
		rand.Read(b[:])
		s.node = hex.EncodeToString(b[:])
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.events = s.prefix + "events"
	if err := s.beat(ctx); err != nil {
		s.cancel()
		s.rdb.Close()
		return nil, s.wrap(ctx, "connect", err)
	}
	ps := s.subscribe(ctx)
	if _, err := ps.Receive(ctx); err != nil { // the confirmation
		ps.Close()
		s.cancel()
		s.rdb.Close()
		return nil, s.wrap(ctx, "subscribe", err)
	}
	s.echoes.listening.Store(true)
	s.ps = ps
	s.wg.Add(2)
	go s.listen()
	go s.heartbeat()
	return s, nil
}

// subscribe subscribes to the notification channel: with SSUBSCRIBE on a
// cluster (sharded pub/sub: only the nodes of the store's slot carry the
// notifications), else SUBSCRIBE.
func (s *Store) subscribe(ctx context.Context) *redis.PubSub {
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		return cc.SSubscribe(ctx, s.events)
	}
	return s.rdb.Subscribe(ctx, s.events)
}

// seen records id time t in maxT.
func (s *Store) seen(t int64) {
	for {
		old := s.maxT.Load()
		if t <= old || s.maxT.CompareAndSwap(old, t) {
			return
		}
	}
}

// withServerName returns a copy of tc naming the server host unless tc
// names one.
func withServerName(tc *tls.Config, host string) *tls.Config {
	tc = tc.Clone()
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	return tc
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// wrap turns a Redis error into the store's error: ErrStoreClosed after
// Close, the context's error if ctx ended, ErrStoreUnavailable (wrapped, with
// what failed) when Redis cannot be reached or is not ready.
func (s *Store) wrap(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	if s.closed.Load() {
		return push.ErrStoreClosed
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var re redis.Error
	if errors.As(err, &re) && !unavailableReply(re.Error()) {
		return fmt.Errorf("redisstore: %s: %w", op, err) // a bug: the reply was an error
	}
	return fmt.Errorf("redisstore: %s: Redis at %s cannot be reached (%v): %w", op, s.addr, err, push.ErrStoreUnavailable)
}

func unavailableReply(msg string) bool {
	// MOVED and ASK reach here only from a publish sent to a master that
	// has just lost the slot (see publishCluster): nothing was run.
	for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "MOVED", "ASK"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

func (s *Store) run(ctx context.Context, op string, script *redis.Script, args ...any) (any, error) {
	if s.closed.Load() {
		return nil, push.ErrStoreClosed
	}
	v, err := script.Run(ctx, s.rdb, s.keys, args...).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil // the script returned false
	}
	if err != nil {
		return nil, s.wrap(ctx, op, err)
	}
	return v, nil
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

// Publish implements push.Store.
func (s *Store) Publish(ctx context.Context, channel string, msg *push.Message, cfg push.ChannelConfig) (*push.Message, push.ChannelInfo, error) {
	echo := s.echoes.register(channel)
	args := []any{s.prefix, channel, msg.Data, msg.ContentType, msg.EventName,
		cfg.BufferLength, ms(cfg.MessageTTL), ms(cfg.ChannelTimeout), s.events, s.maxT.Load()}
	var v any
	var err error
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		v, err = s.publishCluster(ctx, cc, append(args, "SPUBLISH"))
	} else {
		v, err = s.run(ctx, "publish", publishScript, args...)
	}
	if err != nil {
		s.echoes.forget(channel, echo)
		return nil, push.ChannelInfo{}, err
	}
	r, ok := v.([]any)
	if !ok || len(r) != 8 {
		return nil, push.ChannelInfo{}, fmt.Errorf("redisstore: publish: unexpected reply %v", v)
	}
	stored := &push.Message{
		Channel:     channel,
		ID:          push.MessageID{Time: toInt(r[0]), Tag: toInt(r[1])},
		Time:        time.UnixMilli(toInt(r[2])),
		Data:        msg.Data,
		ContentType: msg.ContentType,
		EventName:   msg.EventName,
	}
	s.seen(stored.ID.Time)
	s.echoes.wait(ctx, channel, echo, stored.ID) // see echo.go
	return stored, parseInfo(r[3:]), nil
}

// replicaWait bounds how long a publish on a Redis Cluster waits for a
// replica to have it (WAIT); after a wait in vain, publishes do not wait
// for soloFor.
const (
	replicaWait = time.Second
	soloFor     = 5 * time.Second
)

// publishCluster runs the publish script on the master of the store's slot
// followed by WAIT 1 on the same connection, so that a publish is
// acknowledged once a replica has it too: a failover that promotes that
// replica keeps it. If no replica has it within replicaWait, the publish is
// acknowledged anyway (it is stored on the master) and the next publishes
// for soloFor do not wait.
func (s *Store) publishCluster(ctx context.Context, cc *redis.ClusterClient, args []any) (any, error) {
	if s.closed.Load() {
		return nil, push.ErrStoreClosed
	}
	master, err := cc.MasterForKey(ctx, s.keys[0])
	if err != nil {
		return nil, s.wrap(ctx, "publish", err)
	}
	wait := time.Now().UnixNano() >= s.soloUntil.Load()
	var ev, acks *redis.Cmd
	for try := 0; ; try++ {
		pipe := master.Pipeline()
		ev = publishScript.EvalSha(ctx, pipe, s.keys, args...)
		if wait {
			acks = pipe.Do(ctx, "WAIT", 1, ms(replicaWait))
		}
		pipe.Exec(ctx) //nolint:errcheck // the script's own error is what counts
		err = ev.Err()
		if err != nil && try == 0 && redis.HasErrorPrefix(err, "NOSCRIPT") {
			if err = publishScript.Load(ctx, master).Err(); err == nil {
				continue
			}
		}
		break
	}
	if err == nil && wait {
		if n, werr := acks.Int(); werr == nil && n == 0 {
			s.soloUntil.Store(time.Now().Add(soloFor).UnixNano())
			s.log.Warn("redisstore: no replica of the Redis Cluster master has the last publish; publishing without waiting for replicas for a while", "master", master.Options().Addr)
		}
	}
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		// The slot may have moved (a failover): learn where it is now,
		// for the next call.
		cc.ReloadState(ctx)
		return nil, s.wrap(ctx, "publish", err)
	}
	return ev.Val(), nil
}

func toInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

// parseInfo reads {messages, last requested ms, subscribers, last T, last G}.
func parseInfo(r []any) push.ChannelInfo {
	if len(r) < 5 {
		return push.ChannelInfo{}
	}
	ci := push.ChannelInfo{
		Messages:      int(toInt(r[0])),
		Subscribers:   int(toInt(r[2])),
		LastMessageID: push.MessageID{Time: toInt(r[3]), Tag: toInt(r[4])},
	}
	if lr := toInt(r[1]); lr > 0 {
		ci.LastRequested = time.UnixMilli(lr)
	}
	return ci
}

func infoReply(v any) (push.ChannelInfo, error) {
	if v == nil {
		return push.ChannelInfo{}, push.ErrChannelNotFound
	}
	r, ok := v.([]any)
	if !ok {
		return push.ChannelInfo{}, fmt.Errorf("redisstore: unexpected reply %v", v)
	}
	return parseInfo(r), nil
}

// Messages implements push.Store.
func (s *Store) Messages(ctx context.Context, channel string, after push.MessageID, limit int) (push.MessageBatch, error) {
	v, err := s.run(ctx, "read messages", messagesScript, s.prefix, channel, after.Time, after.Tag, limit)
	if err != nil {
		return push.MessageBatch{}, err
	}
	r, ok := v.([]any)
	if !ok || len(r) != 4 {
		return push.MessageBatch{}, fmt.Errorf("redisstore: read messages: unexpected reply %v", v)
	}
	b := push.MessageBatch{
		Last:   push.MessageID{Time: toInt(r[0]), Tag: toInt(r[1])},
		Missed: toInt(r[2]) == 1,
	}
	entries, _ := r[3].([]any)
	for _, e := range entries {
		m, err := parseEntry(channel, e)
		if err != nil {
			return push.MessageBatch{}, err
		}
		b.Messages = append(b.Messages, m)
	}
	return b, nil
}

// parseEntry reads a stream entry {id, {x, exp, t, ms, c, ct, e, ev, d, data}}.
func parseEntry(channel string, e any) (*push.Message, error) {
	ent, ok := e.([]any)
	if !ok || len(ent) != 2 {
		return nil, fmt.Errorf("redisstore: bad stream entry %v", e)
	}
	id, _ := ent[0].(string)
	t, g, ok := strings.Cut(id, "-")
	f, _ := ent[1].([]any)
	if !ok || len(f) != 10 {
		return nil, fmt.Errorf("redisstore: bad stream entry %v", e)
	}
	str := func(v any) string { x, _ := v.(string); return x }
	return &push.Message{
		Channel:     channel,
		ID:          push.MessageID{Time: toInt(t), Tag: toInt(g)},
		Time:        time.UnixMilli(toInt(f[3])),
		ContentType: str(f[5]),
		EventName:   str(f[7]),
		Data:        []byte(str(f[9])),
	}, nil
}

// ChannelInfo implements push.Store.
func (s *Store) ChannelInfo(ctx context.Context, channel string) (push.ChannelInfo, error) {
	v, err := s.run(ctx, "channel info", infoScript, s.prefix, channel)
	if err != nil {
		return push.ChannelInfo{}, err
	}
	return infoReply(v)
}

// CreateChannel implements push.Store.
func (s *Store) CreateChannel(ctx context.Context, channel string, cfg push.ChannelConfig) (push.ChannelInfo, error) {
	v, err := s.run(ctx, "create channel", createScript, s.prefix, channel, ms(cfg.ChannelTimeout))
	if err != nil {
		return push.ChannelInfo{}, err
	}
	return infoReply(v)
}

// DeleteChannel implements push.Store. Every node's Watch functions get
// EventDelete.
func (s *Store) DeleteChannel(ctx context.Context, channel string) (push.ChannelInfo, error) {
	args := []any{s.prefix, channel, s.events}
	if _, ok := s.rdb.(*redis.ClusterClient); ok {
		args = append(args, "SPUBLISH")
	}
	v, err := s.run(ctx, "delete channel", deleteScript, args...)
	if err != nil {
		return push.ChannelInfo{}, err
	}
	return infoReply(v)
}

// AddSubscriber implements push.Store. The count is kept per node, so the
// counts of a node that stops (or crashes) disappear after Options.NodeTTL.
func (s *Store) AddSubscriber(ctx context.Context, channel string, cfg push.ChannelConfig, create bool) (push.ChannelInfo, error) {
	c := "0"
	if create {
		c = "1"
	}
	s.countMu.RLock()
	defer s.countMu.RUnlock()
	v, err := s.run(ctx, "add subscriber", addSubScript, s.prefix, channel, s.node, c, ms(cfg.ChannelTimeout))
	if err != nil {
		if errors.Is(err, push.ErrStoreUnavailable) || ctx.Err() != nil {
			// It may have been counted: have resync write the true count.
			s.localMu.Lock()
			s.local(channel, cfg)
			s.localMu.Unlock()
			s.dirty.Store(true)
		}
		return push.ChannelInfo{}, err
	}
	if v == nil {
		return push.ChannelInfo{}, push.ErrChannelNotFound
	}
	s.localMu.Lock()
	s.local(channel, cfg).n++
	s.localMu.Unlock()
	return infoReply(v)
}

// RemoveSubscriber implements push.Store. When Redis cannot be reached the
// count is corrected once it can.
func (s *Store) RemoveSubscriber(ctx context.Context, channel string) error {
	if s.closed.Load() {
		return push.ErrStoreClosed
	}
	s.countMu.RLock()
	defer s.countMu.RUnlock()
	s.localMu.Lock()
	lc := s.counts[channel]
	if lc == nil {
		lc = &nodeCount{}
		s.counts[channel] = lc
	}
	lc.n = max(lc.n-1, 0) // the entry is deleted at 0 once Redis agrees
	n := lc.n
	s.localMu.Unlock()
	_, err := s.run(ctx, "remove subscriber", removeSubScript, s.prefix, channel, s.node)
	if err != nil {
		s.dirty.Store(true)
		s.kickResync()
		return err
	}
	if n <= 0 {
		s.localMu.Lock()
		if lc := s.counts[channel]; lc != nil && lc.n == 0 {
			delete(s.counts, channel)
		}
		s.localMu.Unlock()
	}
	return nil
}

// Stats implements push.Store. It scans the keys of the prefix, so it is
// meant for monitoring, not for every request.
func (s *Store) Stats(ctx context.Context) (push.StoreStats, error) {
	if s.closed.Load() {
		return push.StoreStats{}, push.ErrStoreClosed
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		var st push.StoreStats
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			one, err := s.stats(ctx, c)
			mu.Lock()
			st.Channels += one.Channels
			st.Messages += one.Messages
			mu.Unlock()
			return err
		})
		if err != nil {
			return push.StoreStats{}, s.wrap(ctx, "stats", err)
		}
		return st, nil
	}
	st, err := s.stats(ctx, s.rdb.(*redis.Client))
	if err != nil {
		return push.StoreStats{}, s.wrap(ctx, "stats", err)
	}
	return st, nil
}

// stats counts the channels and messages of the store on one server.
func (s *Store) stats(ctx context.Context, c *redis.Client) (push.StoreStats, error) {
	var st push.StoreStats
	var cursor uint64
	match := globEscape(s.prefix) + "c:*"
	for {
		keys, next, err := c.Scan(ctx, cursor, match, 1000).Result()
		if err != nil {
			return push.StoreStats{}, err
		}
		st.Channels += len(keys)
		if len(keys) > 0 {
			pipe := c.Pipeline()
			cmds := make([]*redis.IntCmd, len(keys))
			for i, k := range keys {
				cmds[i] = pipe.XLen(ctx, s.prefix+"m:"+strings.TrimPrefix(k, s.prefix+"c:"))
			}
			if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
				return push.StoreStats{}, err
			}
			for _, c := range cmds {
				st.Messages += int(c.Val())
			}
		}
		if cursor = next; cursor == 0 {
			return st, nil
		}
	}
}

func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Ping reports whether Redis answers: nil, ErrStoreClosed after Close, or
// an error wrapping push.ErrStoreUnavailable that says which server did not
// answer and why. pushd's /readyz answers with it.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return push.ErrStoreClosed
	}
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redisstore: Redis at %s does not answer (%v): %w", s.addr, err, push.ErrStoreUnavailable)
	}
	return nil
}

// Close implements push.Store: it stops notifications, removes this node's
// subscriber counts (best effort) and closes the connections.
func (s *Store) Close() error {
	s.once.Do(func() {
		s.closed.Store(true)
		s.cancel()
		s.psMu.Lock()
		s.ps.Close() // ends a blocked read of listen
		s.psMu.Unlock()
		s.wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		heartbeatScript.Run(ctx, s.rdb, s.keys, s.prefix, s.node, ms(s.ttl), "1")
		s.rdb.Close()
		s.watchers.Clear()
	})
	return nil
}

var _ push.Store = (*Store)(nil)
