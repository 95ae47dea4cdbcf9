"""Delivery records and the scripts that make them safe with many replicas.

One delivery = one outbox event for one subscription; its id is derived from both, so taking the same
outbox entry twice (a claimed entry of a dead consumer, a crash before XACK) finds the record it made
the first time instead of sending again. A delivery waits in the due set scored by when its next
attempt is due. To attempt it a replica *claims* it in one script: the score moves to a lease expiry
and the record's claim counter goes up; the counter is the token that the result must present. So:

- two replicas never send the same attempt: only one claim succeeds while the lease runs;
- a replica that dies mid-attempt leaves the lease to expire, and another replica retries;
- a late result from an expired lease is discarded (its token is stale).

An outbox entry is acknowledged when its set of open deliveries becomes empty.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from service import keys
from service.webhooks import events
from service.timestamps import iso_time
from service.webhooks.subscriptions import Subscription, guarded

LOG_LENGTH = 1000  # deliveries indexed per subscription
DEAD_LETTER_MAXLEN = 100_000

# KEYS: open set, due, erased events (tombstones), then (delivery, attempts, subscription log) per delivery
# ARGV: now, event id, then (id, subscription id, event id, stream id, type, payload) per delivery.
# An erased user's event (a dispatcher read it before the erasure) gets no delivery: 0, so it is XACKed.
ENQUEUE = """
if redis.call('ZSCORE', KEYS[3], redis.sha1hex(ARGV[2])) then return 0 end
for i = 0, (#KEYS - 3) / 3 - 1 do
  local dlv, log, a = KEYS[4 + 3 * i], KEYS[6 + 3 * i], 3 + 6 * i
  local id = ARGV[a]
  if redis.call('EXISTS', dlv) == 0 then
    redis.call('HSET', dlv, 'id', id, 'subscription_id', ARGV[a + 1], 'event_id', ARGV[a + 2],
      'stream_id', ARGV[a + 3], 'type', ARGV[a + 4], 'payload', ARGV[a + 5], 'status', 'pending',
      'created_at', ARGV[1], 'next_attempt_at', ARGV[1], 'claims', 0, 'base', 0)
    redis.call('ZADD', KEYS[2], ARGV[1], id)
    redis.call('ZADD', log, ARGV[1], id)
    redis.call('ZREMRANGEBYRANK', log, 0, -%d)
    redis.call('SADD', KEYS[1], id)
  elseif redis.call('HGET', dlv, 'status') == 'pending' then
    redis.call('SADD', KEYS[1], id)
  end
end
return redis.call('SCARD', KEYS[1])
""" % (LOG_LENGTH + 1)

# KEYS: due, delivery, attempts, erased events; ARGV: id, now, lease expiry. Returns {claim token, the
# delivery hash (flat), attempts so far}, or nil when not due (or its user was erased). `leased_until`
# tells an erasure that an attempt may be on the wire: it waits for its result before answering.
CLAIM = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return false end
if redis.call('HGET', KEYS[2], 'status') ~= 'pending'
    or redis.call('ZSCORE', KEYS[4], redis.sha1hex(redis.call('HGET', KEYS[2], 'event_id'))) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return false
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[2], 'leased_until', ARGV[3])
local token = redis.call('HINCRBY', KEYS[2], 'claims', 1)
return {token, redis.call('HGETALL', KEYS[2]), redis.call('LLEN', KEYS[3])}
"""

# KEYS: delivery, attempts, due, open set, dead letters, subscription, erased events
# ARGV: id, token, attempt JSON ('' for none), status, next attempt at, now, retention, reason
# Returns -1 for a stale token (or an erased user's event: nothing kept), -2 when still pending, else how
# many deliveries of the event are open.
RECORD = """
if redis.call('HGET', KEYS[1], 'claims') ~= ARGV[2] then return -1 end
redis.call('HDEL', KEYS[1], 'leased_until')
if redis.call('ZSCORE', KEYS[7], redis.sha1hex(redis.call('HGET', KEYS[1], 'event_id'))) then return -1 end
if ARGV[3] ~= '' then redis.call('RPUSH', KEYS[2], ARGV[3]) end
local status = ARGV[4]
if status == 'pending' then
  redis.call('HSET', KEYS[1], 'next_attempt_at', ARGV[5], 'updated_at', ARGV[6])
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
  return -2
end
redis.call('HSET', KEYS[1], 'status', status, 'finished_at', ARGV[6], 'updated_at', ARGV[6], 'reason', ARGV[8])
redis.call('HDEL', KEYS[1], 'next_attempt_at')
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('SREM', KEYS[4], ARGV[1])
if status == 'dead_lettered' then
  local rec = redis.call('HMGET', KEYS[1], 'subscription_id', 'event_id', 'type')
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', %d, '*', 'delivery_id', ARGV[1], 'subscription_id', rec[1],
    'event_id', rec[2], 'type', rec[3], 'reason', ARGV[8])
elseif status == 'disabled' and redis.call('EXISTS', KEYS[6]) == 1 then
  redis.call('HSET', KEYS[6], 'status', 'disabled', 'disabled_reason', ARGV[8])
end
redis.call('EXPIRE', KEYS[1], ARGV[7])
redis.call('EXPIRE', KEYS[2], ARGV[7])
return redis.call('SCARD', KEYS[4])
""" % DEAD_LETTER_MAXLEN

# KEYS: delivery, due; ARGV: id, token, now. An attempt cut short by shutdown is due again at once.
RELEASE = """
if redis.call('HGET', KEYS[1], 'claims') == ARGV[2] and redis.call('HGET', KEYS[1], 'status') == 'pending' then
  redis.call('HDEL', KEYS[1], 'leased_until')
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
  return 1
end
return 0
"""

# KEYS: delivery, attempts, due, subscription; ARGV: id, now. 1 ok, 0 missing, -1 pending, -2 disabled.
REPLAY = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'status') == 'pending' then return -1 end
if redis.call('HGET', KEYS[4], 'status') ~= 'enabled' then return -2 end
redis.call('HSET', KEYS[1], 'status', 'pending', 'base', redis.call('LLEN', KEYS[2]),
  'next_attempt_at', ARGV[2], 'updated_at', ARGV[2], 'reason', '')
redis.call('HDEL', KEYS[1], 'finished_at')
redis.call('HINCRBY', KEYS[1], 'replays', 1)
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[2])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return 1
"""


# A delivery made without the outbox (a test event) names a stream id of its own: nothing to acknowledge.
DIRECT_PREFIX = "direct:"


def from_outbox(stream_id: str) -> bool:
    return not stream_id.startswith(DIRECT_PREFIX)


# KEYS: erased events, due, the event's open set, then (delivery, attempts, subscription log) per delivery
# ARGV: event id, now, tombstone cutoff, then the delivery ids. Tombstones the event (its SHA-1: the
# tombstone names no event of the user in clear; no delivery of it
# is created, claimed or recorded from now on), deletes its deliveries but those with an attempt on the
# wire (leased), and returns how many are on the wire: the erasure calls again until none is.
FORGET = """
redis.call('ZADD', KEYS[1], ARGV[2], redis.sha1hex(ARGV[1]))
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local busy = 0
for i = 0, (#KEYS - 3) / 3 - 1 do
  local dlv, id = KEYS[4 + 3 * i], ARGV[4 + i]
  local leased = redis.call('HGET', dlv, 'leased_until')
  if leased and tonumber(leased) > tonumber(ARGV[2]) then
    busy = busy + 1
  else
    redis.call('DEL', dlv, KEYS[5 + 3 * i])
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZREM', KEYS[6 + 3 * i], id)
  end
end
if busy == 0 then redis.call('DEL', KEYS[3]) end
return busy
"""


def delivery_id(sub_id: str, event_id: str) -> str:
    return "dlv_" + hashlib.sha256(f"{sub_id}|{event_id}".encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Claimed:
    """A delivery this replica holds the lease on, with what the attempt needs."""

    id: str
    token: int
    record: dict[str, str]
    attempts_so_far: int

    @property
    def round_attempt(self) -> int:
        """1 for the first attempt since creation or the last replay."""
        return self.attempts_so_far - int(self.record.get("base", "0")) + 1


class Deliveries:
    def __init__(self, redis: aioredis.Redis, *, retention_seconds: int) -> None:
        self.redis = redis
        self.retention = retention_seconds
        self._enqueue = redis.register_script(ENQUEUE)
        self._claim = redis.register_script(CLAIM)
        self._record = redis.register_script(RECORD)
        self._release = redis.register_script(RELEASE)
        self._replay = redis.register_script(REPLAY)
        self._forget = redis.register_script(FORGET)

    async def enqueue(self, stream_id: str, event: dict[str, Any], payload: str, subs: list[Subscription]) -> int:
        """Create (once) a delivery per subscription; how many of this event's deliveries are open."""
        keys_ = [keys.event_open(stream_id), keys.deliveries_due(), keys.erased_events()]
        args = [repr(time.time()), event["id"]]
        for sub in subs:
            did = delivery_id(sub.id, event["id"])
            keys_ += [keys.delivery(did), keys.delivery_attempts(did), keys.webhook_deliveries(sub.id)]
            args += [did, sub.id, event["id"], stream_id, event["type"], payload]
        return int(await guarded(self._enqueue(keys=keys_, args=args)))

    async def enqueue_direct(self, event: dict[str, Any], subs: list[Subscription]) -> int:
        """Deliver an event that is not in the outbox (a test event) to ``subs``."""
        return await self.enqueue(DIRECT_PREFIX + event["id"], event, events.body(event), subs)

    async def due(self, now: float, limit: int) -> list[str]:
        ids = await guarded(self.redis.zrangebyscore(keys.deliveries_due(), "-inf", now, start=0, num=limit))
        return [raw.decode() for raw in ids]

    async def claim(self, did: str, now: float, lease_until: float) -> Claimed | None:
        # one round trip: the script answers the token, the record and how many attempts it has
        reply = await guarded(self._claim(keys=[keys.deliveries_due(), keys.delivery(did), keys.delivery_attempts(did),
                                                keys.erased_events()],
                                          args=[did, repr(now), repr(lease_until)]))
        if reply is None:
            return None
        token, flat, count = reply
        record = {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}
        return Claimed(did, int(token), record, int(count))

    async def record(self, claimed: Claimed, attempt: dict[str, Any] | None, status: str,
                     next_at: float = 0.0, reason: str = "") -> int:
        """Store an attempt's result; -1 stale token, -2 still pending, else open deliveries left."""
        rec = claimed.record
        return int(await guarded(self._record(
            keys=[keys.delivery(claimed.id), keys.delivery_attempts(claimed.id), keys.deliveries_due(),
                  keys.event_open(rec["stream_id"]), keys.dead_letters(), keys.webhook(rec["subscription_id"]),
                  keys.erased_events()],
            args=[claimed.id, claimed.token, json.dumps(attempt) if attempt else "", status, repr(next_at),
                  repr(time.time()), self.retention, reason])))

    async def release(self, claimed: Claimed) -> None:
        await self._release(keys=[keys.delivery(claimed.id), keys.deliveries_due()],
                            args=[claimed.id, claimed.token, repr(time.time())])

    async def forget_event(self, stream_id: str, event_id: str, sub_ids: list[str], *,
                           tombstone_seconds: float) -> int:
        """Erasure: tombstone one event and delete every delivery of it (payloads carry the user's
        data), open or done; returns how many still have an attempt on the wire (call again)."""
        dids = [delivery_id(sub_id, event_id) for sub_id in sub_ids]
        keys_ = [keys.erased_events(), keys.deliveries_due(), keys.event_open(stream_id)]
        for sub_id, did in zip(sub_ids, dids):
            keys_ += [keys.delivery(did), keys.delivery_attempts(did), keys.webhook_deliveries(sub_id)]
        now = time.time()
        return int(await guarded(self._forget(keys=keys_, args=[event_id, repr(now), repr(now - tombstone_seconds), *dids])))

    async def replay(self, sub_id: str, did: str) -> int:
        return int(await guarded(self._replay(
            keys=[keys.delivery(did), keys.delivery_attempts(did), keys.deliveries_due(), keys.webhook(sub_id)],
            args=[did, repr(time.time())])))

    async def log(self, sub_id: str, limit: int, only: str | None = None) -> list[dict[str, Any]]:
        """Newest first: each delivery with its attempts."""
        if only is not None:
            ids = [only] if await guarded(self.redis.zscore(keys.webhook_deliveries(sub_id), only)) is not None else []
        else:
            newest = await guarded(self.redis.zrevrange(keys.webhook_deliveries(sub_id), 0, limit - 1))
            ids = [raw.decode() for raw in newest]
        async with self.redis.pipeline(transaction=False) as pipe:
            for did in ids:
                pipe.hgetall(keys.delivery(did))
                pipe.lrange(keys.delivery_attempts(did), 0, -1)
            rows = await guarded(pipe.execute()) if ids else []
        views = []
        for raw, attempts in zip(rows[::2], rows[1::2]):
            if raw:  # a finished record past its retention is gone
                views.append(_view({k.decode(): v.decode() for k, v in raw.items()}, attempts))
        return views


def _view(rec: dict[str, str], attempts: list[bytes]) -> dict[str, Any]:
    def stamp(name: str) -> str | None:
        return iso_time(float(rec[name])) if rec.get(name) else None

    return {"id": rec["id"], "webhook_id": rec["event_id"], "event_id": rec["event_id"], "type": rec["type"],
            "status": rec["status"], "reason": rec.get("reason") or None, "created_at": stamp("created_at"),
            "next_attempt_at": stamp("next_attempt_at") if rec["status"] == "pending" else None,
            "finished_at": stamp("finished_at"), "replays": int(rec.get("replays", "0")),
            "attempts": [json.loads(a) for a in attempts]}
