"""The alert outbox: events are written with the user's state, then relayed to one stream.

A user's keys and the outbox stream live in different Redis Cluster slots, and a script may only
touch one slot. So the atomic advance script appends the event to the user's own ``pending`` list
(same slot as the state: the event exists if and only if the step that caused it was written), and
the relay then moves it to the outbox stream (``XADD``) that the webhook dispatchers consume.

If a process dies between the two, the event waits in ``pending``. Before every write that carries
an event the writer *marks* the user (a sorted set scored by time); a sweeper in every replica
relays the pending events of users marked more than ``grace`` seconds ago — no request is still in
flight for them then — and unmarks users with nothing pending, only if no newer mark arrived.
Delivery is at least once: a crash after ``XADD`` and before the trim can relay an event twice;
its ``id`` (the webhook-id) stays the same, so receivers can drop the repeat.

The relay also lists each event as an alert across users (service/alerts/index.py); an event
recorded by a backfill is listed there and never enters the stream: it is history, not news.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid

import redis.asyncio as aioredis

from service import keys
from service.alerts.index import AlertIndex

log = logging.getLogger("emodrift.outbox")

# KEYS: marks; ARGV: user, score seen. Unmark only if no request re-marked the user since.
UNMARK = """
local seen = redis.call('ZSCORE', KEYS[1], ARGV[1])
if seen and tonumber(seen) == tonumber(ARGV[2]) then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
"""
# KEYS: pending; ARGV: the first event read, how many were read. Trims only what this relay read:
# a concurrent relay of the same user that trimmed first (and a newer event behind) is left alone.
TRIM_RELAYED = """
if redis.call('LINDEX', KEYS[1], 0) == ARGV[1] then return redis.call('LTRIM', KEYS[1], ARGV[2], -1) end
return 0
"""
# KEYS: lock; ARGV: this sweeper's token. Release only our own lock (it may have expired and moved on).
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# KEYS: the user's event refs; ARGV: cutoff (ms), retention (s), refs... Appends "<stream id> <event id>"
# refs and drops those from before the cutoff (a stream id starts with its time in ms): erasure must
# find every event whose deliveries may still exist, so the list is trimmed by age, never by count.
APPEND_REFS = """
redis.call('RPUSH', KEYS[1], unpack(ARGV, 3))
local cutoff = tonumber(ARGV[1])
while true do
  local head = redis.call('LINDEX', KEYS[1], 0)
  local ms = head and tonumber(string.match(head, '^(%d+)-'))
  if not ms or ms >= cutoff then break end
  redis.call('LPOP', KEYS[1])
end
return redis.call('EXPIRE', KEYS[1], ARGV[2])
"""


class Outbox:
    def __init__(self, redis: aioredis.Redis, *, stream: str, maxlen: int, retention_seconds: int,
                 grace_seconds: float = 30.0) -> None:
        self.redis = redis
        self.stream = stream
        self.maxlen = maxlen
        self.retention = retention_seconds
        self.grace = grace_seconds
        self._unmark = redis.register_script(UNMARK)
        self._append_refs = redis.register_script(APPEND_REFS)
        self._trim = redis.register_script(TRIM_RELAYED)
        self._release = redis.register_script(RELEASE)
        self.alerts = AlertIndex(redis, retention_seconds=retention_seconds)

    async def mark(self, user_id: str) -> None:
        await self.redis.zadd(keys.relay_marks(), {user_id: time.time()})

    async def relay(self, user_id: str) -> list[str]:
        """Move the user's pending events to the outbox stream, oldest first, and list them as alerts;
        returns the stream ids. A backfilled alert is listed but never sent (no stream entry)."""
        pending = await self.redis.lrange(keys.pending_events(user_id), 0, -1)
        if not pending:
            return []
        events = [json.loads(event) for event in pending]
        live = [(raw, event) for raw, event in zip(pending, events) if not event.get("backfill")]
        async with self.redis.pipeline(transaction=False) as pipe:  # one round trip for every event
            for raw, _ in live:
                pipe.xadd(self.stream, {"event": raw}, maxlen=self.maxlen, approximate=True)
            for event in events:
                AlertIndex.add(pipe, user_id, event)
            # who is drifting now follows the latest event; scored by time so users who expire while
            # drifting age out of the count (see drifting())
            if events[-1]["type"] == "drift.started":
                pipe.zadd(keys.drifting_users(), {user_id: time.time()})
            else:
                pipe.zrem(keys.drifting_users(), user_id)
            replies = await pipe.execute()
        ids = [sid.decode() if isinstance(sid, bytes) else sid for sid in replies[: len(live)]]
        refs = [f"{sid} {event['id']}" for sid, (_, event) in zip(ids, live)]
        await self._trim(keys=[keys.pending_events(user_id)], args=[pending[0], len(pending)])
        if refs:
            # kept as long as the user's other keys: longer than any delivery made from these events
            cutoff_ms = int((time.time() - self.retention) * 1000)
            await self._append_refs(keys=[keys.user_events(user_id)], args=[cutoff_ms, self.retention, *refs])
        await self.alerts.expire_old(time.time())
        return ids

    async def sweep(self, now: float | None = None) -> int:
        """Relay what crashed writers left behind; one replica at a time. Returns events relayed."""
        now = time.time() if now is None else now
        token = uuid.uuid4().hex
        if not await self.redis.set(keys.relay_lock(), token, nx=True, px=int(self.grace * 1000)):
            return 0
        relayed = 0
        try:
            stale = await self.redis.zrangebyscore(keys.relay_marks(), "-inf", now - self.grace, withscores=True,
                                                   start=0, num=1000)
            for raw_user, score in stale:
                user_id = raw_user.decode()
                moved = await self.relay(user_id)
                if moved:
                    log.warning("relayed %d event(s) a writer left pending", len(moved))
                relayed += len(moved)
                # repr round-trips the float exactly, so the script can tell a newer mark apart
                await self._unmark(keys=[keys.relay_marks()], args=[user_id, repr(float(score))])
        finally:
            await self._release(keys=[keys.relay_lock()], args=[token])
        return relayed

    async def run_sweeper(self, interval: float) -> None:
        """Forever: sweep every ``interval`` seconds (a task of the app's lifespan)."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except Exception:  # Redis away for a while: try again next round
                log.warning("outbox sweep failed", exc_info=True)

    async def event_refs(self, user_id: str) -> list[tuple[str, str]]:
        """(stream id, event id) of the user's relayed events within the retention period."""
        raw = await self.redis.lrange(keys.user_events(user_id), 0, -1)
        return [tuple(item.decode().split(" ", 1)) for item in raw]  # type: ignore[misc]

    async def forget(self, user_id: str) -> int:
        """Erasure: remove the user's relayed events from the stream. Returns how many were removed."""
        ids = [stream_id for stream_id, _ in await self.event_refs(user_id)]
        removed = int(await self.redis.xdel(self.stream, *ids)) if ids else 0
        await self.redis.zrem(keys.relay_marks(), user_id)
        await self.redis.zrem(keys.drifting_users(), user_id)
        return removed

    async def drifting(self) -> int:
        """How many users are drifting now, across every replica: those whose latest event started a
        drift within the retention period (a user who stops posting expires with their state)."""
        return int(await self.redis.zcount(keys.drifting_users(), time.time() - self.retention, "+inf"))

