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

A relay holds the user's *lease* (``keys.relay_lease``, a token with a TTL) from reading ``pending``
to recording the stream ids, and an erasure takes the same lease (service/erasure.py): so an erasure
never runs between a relay's read and its ``XADD``, which let an erased user's alert reach the outbox
after the 204. A relay whose lease ran out meanwhile (a stall past ``lease``) takes back what it added.
Before its ``XADD`` a relay leaves an *in-flight* mark (``keys.relay_inflight``: from when), which its
commit deletes: a relay that died in between leaves it, and the next relay (or an erasure) looks up the
events it had added from that time on, instead of adding them again (or leaving them behind).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid

import redis.asyncio as aioredis

from service import keys, lua, replies
from service.alerts.index import AlertIndex

log = logging.getLogger("emodrift.outbox")
GRACE_SECONDS = 30.0  # a user marked this long ago has no request in flight: the sweeper relays for it

LEASE_POLL_SECONDS = 0.005
CLOCK_SKEW_MS = 60_000  # the in-flight mark is set this much early: stream ids come from Redis' clock


class Outbox:
    def __init__(self, redis: aioredis.Redis, *, stream: str, maxlen: int, retention_seconds: int,
                 grace_seconds: float = GRACE_SECONDS, lease_seconds: float = 5.0, lease_wait_seconds: float = 0.25) -> None:
        self.redis = redis
        self.stream = stream
        self.maxlen = maxlen
        self.retention = retention_seconds
        self.grace = grace_seconds
        self.lease = lease_seconds
        self.lease_wait = lease_wait_seconds
        self._unmark = lua.OUTBOX_UNMARK.bind(redis)
        self._commit = lua.OUTBOX_COMMIT.bind(redis)
        self._release = lua.OUTBOX_RELEASE.bind(redis)
        self.alerts = AlertIndex(redis, retention_seconds=retention_seconds)

    async def mark(self, user_id: str) -> None:
        await self.redis.zadd(keys.relay_marks(), {user_id: time.time()})

    async def take_lease(self, user_id: str, token: str, wait: float, hold: float | None = None) -> bool:
        """Hold the user's relay lease (relays and erasures take turns on it) for ``hold`` seconds (default
        ``lease``); False after ``wait`` s."""
        deadline = time.monotonic() + wait
        ttl_ms = int((self.lease if hold is None else hold) * 1000)
        while not await self.redis.set(keys.relay_lease(user_id), token, nx=True, px=ttl_ms):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(LEASE_POLL_SECONDS)
        return True

    async def drop_lease(self, user_id: str, token: str) -> None:
        await self._release(keys={"lock": keys.relay_lease(user_id)}, args={"token": token})  # 'stale': it expired, not ours

    async def relay(self, user_id: str) -> list[str] | None:
        """Move the user's pending events to the outbox stream, oldest first, and list them as alerts;
        returns the stream ids. A backfilled alert is listed but never sent (no stream entry).

        None when another relay or an erasure held the user's lease throughout ``lease_wait``: the user
        stays marked and the sweeper relays what is left."""
        token = uuid.uuid4().hex
        if not await self.take_lease(user_id, token, self.lease_wait):
            return None
        try:
            return await self._relay_leased(user_id, token)
        finally:
            await self.drop_lease(user_id, token)

    async def _relay_leased(self, user_id: str, token: str) -> list[str] | None:
        pending = await self.redis.lrange(keys.pending_events(user_id), 0, -1)
        if not pending:
            return []
        events = [json.loads(event) for event in pending]
        mark = await self.redis.get(keys.relay_inflight(user_id))
        if mark is None:
            await self.redis.set(keys.relay_inflight(user_id), int(time.time() * 1000) - CLOCK_SKEW_MS,
                                 ex=self.retention)
            added_before: dict[str, str] = {}
        else:  # a relay died between its XADD and its commit: what it added is in the stream already
            added_before = await self.relayed_since(int(mark), {event["id"] for event in events})
        live = [(raw, event) for raw, event in zip(pending, events) if not event.get("backfill")]
        fresh = [raw for raw, event in live if event["id"] not in added_before]
        async with self.redis.pipeline(transaction=False) as pipe:  # one round trip for every event
            for raw in fresh:
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
        added = iter(sid.decode() if isinstance(sid, bytes) else sid for sid in replies[: len(fresh)])
        ids = [added_before[event["id"]] if event["id"] in added_before else next(added) for _, event in live]
        refs = [f"{sid} {event['id']}" for sid, (_, event) in zip(ids, live)]
        # kept as long as the user's other keys: longer than any delivery made from these events
        cutoff_ms = int((time.time() - self.retention) * 1000)
        committed = await self._commit(
            keys={"lease": keys.relay_lease(user_id), "pending": keys.pending_events(user_id),
                  "user_events": keys.user_events(user_id), "relay_inflight": keys.relay_inflight(user_id)},
            args={"token": token, "first_read": pending[0], "read_count": len(pending), "cutoff_ms": cutoff_ms,
                  "retention_seconds": self.retention}, arg_tail=refs)
        if committed.status == "stale":
            # The lease ran out under us (a stall): an erasure may have run since our read. Take back
            # what we added; the events are still pending unless erased, and the next relay sends them.
            log.warning("relay lease lost; %d event(s) taken back from the outbox", len(ids))
            if ids:
                await self.redis.xdel(self.stream, *ids)
            await self.alerts.remove([event["id"] for event in events])
            await self.redis.zrem(keys.drifting_users(), user_id)
            return None
        await self.alerts.expire_old(time.time())
        return ids

    async def relayed_since(self, since_ms: int, event_ids: set[str]) -> dict[str, str]:
        """event id -> stream id of those of ``event_ids`` in the stream from ``since_ms`` on (a read of
        the stream since a relay died: rare, and seconds to minutes of entries)."""
        found: dict[str, str] = {}
        start = f"{since_ms}-0"
        while len(found) < len(event_ids):
            entries = replies.entries(await self.redis.xrange(self.stream, min=start, max="+", count=1000))
            for stream_id, fields in entries:
                event_id = json.loads(fields[b"event"]).get("id")
                if event_id in event_ids:
                    found[event_id] = replies.text(stream_id)
            if len(entries) < 1000:
                break
            start = "(" + replies.text(entries[-1][0])
        return found

    async def left_in_flight(self, user_id: str) -> list[tuple[str, str]]:
        """(stream id, event id) of the user's events that a relay which died added to the stream
        without recording them (for erasure; the caller holds the lease)."""
        mark = await self.redis.get(keys.relay_inflight(user_id))
        if mark is None:
            return []
        pending = await self.redis.lrange(keys.pending_events(user_id), 0, -1)
        found = await self.relayed_since(int(mark), {json.loads(event)["id"] for event in pending})
        return [(stream_id, event_id) for event_id, stream_id in found.items()]

    async def sweep(self, now: float | None = None) -> int:
        """Relay what crashed writers left behind; one replica at a time. Returns events relayed."""
        now = time.time() if now is None else now
        token = uuid.uuid4().hex
        if not await self.redis.set(keys.relay_lock(), token, nx=True, px=int(self.grace * 1000)):
            return 0
        relayed = 0
        try:
            stale = replies.scored(await self.redis.zrangebyscore(
                keys.relay_marks(), "-inf", now - self.grace, withscores=True, start=0, num=1000))
            for raw_user, score in stale:
                user_id = raw_user.decode()
                moved = await self.relay(user_id)
                if moved is None:  # a relay or an erasure is at it right now: look again next round
                    continue
                if moved:
                    log.warning("relayed %d event(s) a writer left pending", len(moved))
                relayed += len(moved)
                # repr round-trips the float exactly, so the script can tell a newer mark apart
                # 'conflict': a request marked the user again meanwhile, and a later sweep looks again
                await self._unmark(keys={"marks": keys.relay_marks()},
                                   args={"user_id": user_id, "score_seen": repr(float(score))})
        finally:
            await self._release(keys={"lock": keys.relay_lock()}, args={"token": token})
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
        raw = replies.members(await self.redis.lrange(keys.user_events(user_id), 0, -1))
        # each item is "<stream id> <event id>" (written by the relay script)
        return [(stream_id, event_id) for stream_id, event_id in (item.decode().split(" ", 1) for item in raw)]

    async def forget(self, user_id: str) -> int:
        """Erasure: remove the user's relayed events from the stream (those a relay that died added
        too). Returns how many were removed."""
        ids = [stream_id for stream_id, _ in await self.event_refs(user_id) + await self.left_in_flight(user_id)]
        removed = int(await self.redis.xdel(self.stream, *ids)) if ids else 0
        await self.redis.zrem(keys.relay_marks(), user_id)
        await self.redis.zrem(keys.drifting_users(), user_id)
        return removed

    async def drifting(self) -> int:
        """How many users are drifting now, across every replica: those whose latest event started a
        drift within the retention period (a user who stops posting expires with their state)."""
        return int(await self.redis.zcount(keys.drifting_users(), time.time() - self.retention, "+inf"))

