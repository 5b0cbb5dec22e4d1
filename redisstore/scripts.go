package redisstore

import "github.com/redis/go-redis/v9"

// Every script gets ARGV[1] = key prefix, ARGV[2] = channel (or node id) and
// builds its keys from them (see the package doc for the key layout). The
// common header defines the helpers; each script is one atomic step.
const luaHeader = `
local P = ARGV[1]
local function ck(c) return P .. 'c:' .. c end   -- channel hash
local function sk(c) return P .. 'm:' .. c end   -- message stream
local function tk(c) return P .. 'i:' .. c end   -- last id tombstone
local function bk(c) return P .. 's:' .. c end   -- subscriber counts per node
local function nk(n) return P .. 'n:' .. n end   -- channels a node counts on
local NODES = P .. 'nodes'                       -- node -> deadline (ms)
local CLOCK = P .. 'clock'                       -- greatest T ever assigned

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function num(v) return tonumber(v) or 0 end

local function split_id(s)
  local i = string.find(s, '-', 1, true)
  return tonumber(string.sub(s, 1, i - 1)), tonumber(string.sub(s, i + 1))
end

local function greater(t1, g1, t2, g2)
  return t1 > t2 or (t1 == t2 and g1 > g2)
end

local function ns(s) return #s .. ':' .. s end

-- drop expired messages from the front of the stream, remembering the
-- newest dropped id
local function trim_expired(c, now)
  local s = sk(c)
  local n = 1 -- usually the first message has not expired: look at it alone
  while true do
    local e = redis.call('XRANGE', s, '-', '+', 'COUNT', n)
    local ids = {}
    for _, ent in ipairs(e) do
      local x = num(ent[2][2])
      if x ~= 0 and x <= now then ids[#ids + 1] = ent[1] else break end
    end
    if #ids == 0 then return end
    local dt, dg = split_id(ids[#ids])
    redis.call('HSET', ck(c), 'dt', dt, 'dg', dg)
    redis.call('XDEL', s, unpack(ids))
    if #ids < #e then return end
    n = 16
  end
end

-- the subscribers of c counted by live nodes; forgets dead nodes' counts
local function live_subs(c, now)
  local all = redis.call('HGETALL', bk(c))
  local n = 0
  for i = 1, #all, 2 do
    local dl = redis.call('ZSCORE', NODES, all[i])
    if dl and tonumber(dl) > now then
      n = n + tonumber(all[i + 1])
    else
      redis.call('HDEL', bk(c), all[i])
    end
  end
  return n
end

-- B3: keys live while subscribers are counted; else until the channel has
-- been idle for its timeout and its newest message has expired
local function apply_expiry(c, now, subs)
  local keys = {ck(c), sk(c), bk(c)}
  local to = num(redis.call('HGET', ck(c), 'to'))
  local at = now + to
  if subs <= 0 and to > 0 then
    local last = redis.call('XREVRANGE', sk(c), '+', '-', 'COUNT', 1)
    if #last > 0 then
      local x = num(last[1][2][2])
      if x == 0 then at = nil elseif x > at then at = x end
    end
  else
    at = nil
  end
  for _, k in ipairs(keys) do
    if at then redis.call('PEXPIREAT', k, at) else redis.call('PERSIST', k) end
  end
end

local function info(c, now)
  local h = redis.call('HMGET', ck(c), 'lt', 'lg', 'lr')
  return {redis.call('XLEN', sk(c)), num(h[3]), live_subs(c, now), num(h[1]), num(h[2])}
end

local function create(c, to)
  if redis.call('EXISTS', ck(c)) == 0 then
    redis.call('HSET', ck(c), 'lt', 0, 'lg', 0, 'to', to)
    return true
  end
  return false
end
`

// publishScript: ARGV 3 data, 4 content type, 5 event name, 6 buffer
// length, 7 message TTL ms, 8 channel timeout ms, 9 notification channel,
// 10 the greatest T this node has seen, 11 (optional) the command that
// notifies: PUBLISH, or SPUBLISH on a cluster.
// Returns {T, G, time ms, info...}.
var publishScript = redis.NewScript(luaHeader + `
local c = ARGV[2]
local buflen, ttl, to = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local now = now_ms()
-- the id: T = max(now, every T ever assigned), tag counts within T
local T = math.floor(now / 1000)
local cv = redis.call('GET', CLOCK)
local clock = num(cv)
if T < clock then T = clock end
if not cv then
  -- no clock: a new key prefix, or Redis lost its data (a restart without
  -- persistence); stay above every id this node has seen
  local floor = tonumber(ARGV[10])
  if T <= floor then T = floor + 1 end
end
local h = redis.call('HMGET', ck(c), 'lt', 'lg')
local pt, pg = num(h[1]), num(h[2])
local tomb = redis.call('GET', tk(c))
if tomb then
  local tt, tg = split_id(tomb)
  if greater(tt, tg, pt, pg) then pt, pg = tt, tg end
end
local G = 0
if T <= pt then T, G = pt, pg + 1 end
if T > clock then redis.call('SET', CLOCK, T) end
local id = T .. '-' .. G
-- the tombstone outlives the channel for as long as an id of second T may
-- still be assigned (I1 after delete or expiry)
redis.call('SET', tk(c), id, 'PXAT', (T + 2) * 1000)

create(c, to)
redis.call('HSET', ck(c), 'lt', T, 'lg', G, 'to', to)
trim_expired(c, now)
if buflen > 0 then
  local n = redis.call('XLEN', sk(c))
  if n >= buflen then
    local old = redis.call('XRANGE', sk(c), '-', '+', 'COUNT', n - buflen + 1)
    local dt, dg = split_id(old[#old][1])
    redis.call('HSET', ck(c), 'dt', dt, 'dg', dg)
  end
  local x = 0
  if ttl > 0 then x = now + ttl end
  redis.call('XADD', sk(c), 'MAXLEN', buflen, id, 'x', x, 't', now, 'c', ARGV[4], 'e', ARGV[5], 'd', ARGV[3])
end
local inf = info(c, now)
apply_expiry(c, now, inf[3])
redis.call(ARGV[11] or 'PUBLISH', ARGV[9], 'm' .. ns(c) .. ns(tostring(T)) .. ns(tostring(G)) .. ns(tostring(now)) ..
  ns(ARGV[4]) .. ns(ARGV[5]) .. ns(ARGV[3]))
return {T, G, now, inf[1], inf[2], inf[3], inf[4], inf[5]}
`)

// messagesScript: ARGV 3 after T, 4 after G, 5 limit. Returns {last T,
// last G, missed, entries}.
var messagesScript = redis.NewScript(luaHeader + `
local c = ARGV[2]
local at, ag, limit = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if redis.call('EXISTS', ck(c)) == 0 then return {0, 0, 0, {}} end
local now = now_ms()
trim_expired(c, now)
local h = redis.call('HMGET', ck(c), 'lt', 'lg', 'dt', 'dg')
local missed = 0
if greater(num(h[3]), num(h[4]), at, ag) then missed = 1 end
local start = '-'
if at > 0 or ag > 0 then start = '(' .. ARGV[3] .. '-' .. ARGV[4] end
local out = {}
if limit > 0 then
  local e = redis.call('XRANGE', sk(c), start, '+', 'COUNT', limit)
  for _, ent in ipairs(e) do
    local x = num(ent[2][2])
    if x ~= 0 and x <= now then missed = 1 else out[#out + 1] = ent end
  end
end
return {num(h[1]), num(h[2]), missed, out}
`)

// infoScript returns the channel's info, or false if it does not exist.
var infoScript = redis.NewScript(luaHeader + `
local c = ARGV[2]
if redis.call('EXISTS', ck(c)) == 0 then return false end
local now = now_ms()
trim_expired(c, now)
return info(c, now)
`)

// createScript: ARGV 3 channel timeout ms.
var createScript = redis.NewScript(luaHeader + `
local c = ARGV[2]
local now = now_ms()
create(c, tonumber(ARGV[3]))
redis.call('HSET', ck(c), 'to', tonumber(ARGV[3]))
trim_expired(c, now)
local inf = info(c, now)
apply_expiry(c, now, inf[3])
return inf
`)

// deleteScript: ARGV 3 notification channel, 4 (optional) the command that
// notifies. Returns the info before, or
// false.
var deleteScript = redis.NewScript(luaHeader + `
local c = ARGV[2]
if redis.call('EXISTS', ck(c)) == 0 then return false end
local now = now_ms()
trim_expired(c, now)
local inf = info(c, now)
for _, node in ipairs(redis.call('HKEYS', bk(c))) do redis.call('SREM', nk(node), c) end
redis.call('DEL', ck(c), sk(c), bk(c))
redis.call(ARGV[4] or 'PUBLISH', ARGV[3], 'd' .. ns(c))
return inf
`)

// addSubScript: ARGV 3 node, 4 create (0/1), 5 channel timeout ms. Returns the info, or false if the channel does not exist and
// create is 0.
var addSubScript = redis.NewScript(luaHeader + `
local c, node = ARGV[2], ARGV[3]
local now = now_ms()
if ARGV[4] == '1' then
  create(c, tonumber(ARGV[5]))
  redis.call('HSET', ck(c), 'to', tonumber(ARGV[5]))
elseif redis.call('EXISTS', ck(c)) == 0 then
  return false
end
redis.call('HINCRBY', bk(c), node, 1)
redis.call('SADD', nk(node), c)
redis.call('HSET', ck(c), 'lr', now)
trim_expired(c, now)
local inf = info(c, now)
apply_expiry(c, now, inf[3])
return inf
`)

// removeSubScript: ARGV 3 node.
var removeSubScript = redis.NewScript(luaHeader + `
local c, node = ARGV[2], ARGV[3]
if redis.call('EXISTS', ck(c)) == 0 then return 0 end
local now = now_ms()
if redis.call('HINCRBY', bk(c), node, -1) <= 0 then
  redis.call('HDEL', bk(c), node)
  redis.call('SREM', nk(node), c)
end
apply_expiry(c, now, live_subs(c, now))
return 1
`)

// syncScript sets a node's counts to what it knows: ARGV 2 node, 3 node TTL
// ms, then channel, count, channel timeout ms triples. A channel that is
// gone (Redis lost its data) while it has subscribers is created again.
var syncScript = redis.NewScript(luaHeader + `
local node = ARGV[2]
local now = now_ms()
redis.call('ZADD', NODES, now + tonumber(ARGV[3]), node)
for i = 4, #ARGV, 3 do
  local c, n = ARGV[i], tonumber(ARGV[i + 1])
  if n > 0 then create(c, tonumber(ARGV[i + 2])) end
  if redis.call('EXISTS', ck(c)) == 1 then
    if n > 0 then
      redis.call('HSET', bk(c), node, n)
      redis.call('SADD', nk(node), c)
    else
      redis.call('HDEL', bk(c), node)
      redis.call('SREM', nk(node), c)
    end
    apply_expiry(c, now, live_subs(c, now))
  end
end
return 1
`)

// heartbeatScript keeps node ARGV[2] alive for ARGV[3] ms and lets the
// channels counted only by dead nodes expire (at most 100 dead nodes, 1000
// channels each, per beat). ARGV[4] = '1' marks the node itself dead
// (Close). It returns 1 if the node was alive, 0 if its counts may have been
// forgotten (it was dead or unknown): then the node writes them again.
var heartbeatScript = redis.NewScript(luaHeader + `
local node = ARGV[2]
local now = now_ms()
local prev = redis.call('ZSCORE', NODES, node)
local alive = 0
if prev and tonumber(prev) > now then alive = 1 end
local dead = redis.call('ZRANGEBYSCORE', NODES, '-inf', now, 'LIMIT', 0, 100)
if ARGV[4] == '1' then
  redis.call('ZADD', NODES, 0, node)
  dead[#dead + 1] = node
else
  redis.call('ZADD', NODES, now + tonumber(ARGV[3]), node)
end
for _, d in ipairs(dead) do
  if d ~= node or ARGV[4] == '1' then
    local chans = redis.call('SRANDMEMBER', nk(d), 1000)
    for _, c in ipairs(chans) do
      redis.call('SREM', nk(d), c)
      redis.call('HDEL', bk(c), d)
      if redis.call('EXISTS', ck(c)) == 1 then apply_expiry(c, now, live_subs(c, now)) end
    end
    if redis.call('SCARD', nk(d)) == 0 then redis.call('ZREM', NODES, d) end
  end
end
return alive
`)
