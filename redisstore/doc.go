// Package redisstore is a push.Store kept in Redis, so that several Hubs
// (several processes or machines behind a load balancer) behave as one
// server: publish on any node, subscribe on any node, resume on any node from
// an id another node handed out, DELETE on one node ends subscribers on all.
//
//	store, err := redisstore.New(ctx, redisstore.Options{URL: "redis://10.0.0.5:6379/0"})
//	...
//	hub := push.New(push.Options{Store: store})
//	...
//	hub.Shutdown(ctx)
//	store.Close()
//
// # How it works
//
// Every change is one Lua script, so it is atomic: a publish takes its id
// from Redis's own clock (TIME) as T = max(now, the greatest T ever
// assigned, kept in the key <prefix>clock), with a tag counting up within a
// second; appends the message to the channel's buffer trimmed to its length
// (B1) with its expiry time (B2); sets the channel's key expiry (B3); and
// PUBLISHes the message on the store's notification channel — all in one
// step, so no node can see a message that is not stored or miss one that is,
// and every node sees one channel's messages in commit order. The last id of
// a channel is also kept in a tombstone key that outlives the channel until
// its second has passed, so a channel deleted or forgotten and published to
// again at once still gets greater ids (I1).
//
// Each node holds one Redis subscription, to the notification channel
// <prefix>events, not one per client. Notifications carry the message, so
// nodes do not read it back. If that connection drops, go-redis reconnects
// and re-subscribes; the store then sends push.EventReset and the Hubs
// re-read by position from the buffers: nothing stored is lost.
//
// Subscriber counts are kept per node (a hash per channel: node -> count),
// and a node is counted only while its heartbeat (every NodeTTL/3) keeps it
// in <prefix>nodes: a crashed node's counts disappear after NodeTTL, and
// channels it alone kept alive start to expire. Each node also remembers its
// own counts and writes them back after Redis was unreachable or restarted.
//
// Redis should keep what it acknowledged: run it with appendonly yes
// (appendfsync always for no loss at all on a crash) and maxmemory-policy
// noeviction. If it restarts empty anyway, buffers are lost, but ids still
// increase (each node stays above the greatest id it has seen) and nodes
// write back the subscriber counts of the channels they hold.
//
// When Redis cannot be reached, calls fail at once with an error wrapping
// push.ErrStoreUnavailable (publishers answer 503); subscribers already
// waiting stay waiting. When Redis is back, everything continues without a
// restart.
//
// # Why a Stream
//
// A channel's buffer is a Redis Stream whose entry ids are the message ids
// ("T-G" for "T:G"). Against a list plus a hash: reading "the messages after
// id X" is XRANGE with an exclusive start, O(log N) to find the place, where
// a list has no index by id; trimming to the buffer length is part of XADD
// (MAXLEN); an entry holds the whole message, so there is no second key to
// keep in step; and Redis itself refuses an id that is not greater than the
// last, a second guard for I1.
//
// # Keys
//
// For channel c: <prefix>c:c (hash: last id, newest dropped id, last
// requested, channel timeout), <prefix>m:c (stream), <prefix>s:c (hash:
// subscribers per node), <prefix>i:c (tombstone). Per node n: <prefix>n:n
// (set of channels it counts on). The scripts build key names from the
// prefix.
//
// # Redis Cluster
//
// With Options.ClusterURL the store uses a Redis Cluster: the prefix
// becomes the hash tag {<prefix>}, so every key of the store is in one hash
// slot and every script runs on that slot's master (the cluster adds
// failover, not capacity), and notifications use sharded pub/sub
// (SPUBLISH, SSUBSCRIBE) on {<prefix>}events. Each publish is followed by WAIT 1 on the same
// connection, so it is acknowledged once a replica has it and survives a
// failover; if no replica answers within a second it is acknowledged from
// the master alone and publishes stop waiting for 5 seconds.
package redisstore
