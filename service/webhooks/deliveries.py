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
import re
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from service import keys, lua, replies
from service.webhooks import events
from service.timestamps import iso_time
from service.state_store import guarded
from service.webhooks.subscriptions import Subscription

LOG_LENGTH = 1000  # deliveries indexed per subscription
DEAD_LETTER_MAXLEN = 100_000

# A delivery made without the outbox (a test event) names a stream id of its own: nothing to acknowledge.
DIRECT_PREFIX = "direct:"


def from_outbox(stream_id: str) -> bool:
    return not stream_id.startswith(DIRECT_PREFIX)


ID_PATTERN = re.compile(r"dlv_[0-9a-f]{24}")  # what delivery_id makes


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
        self._enqueue = lua.DELIVERY_ENQUEUE.bind(redis)
        self._claim = lua.DELIVERY_CLAIM.bind(redis)
        self._record = lua.DELIVERY_RECORD.bind(redis)
        self._release = lua.DELIVERY_RELEASE.bind(redis)
        self._replay = lua.DELIVERY_REPLAY.bind(redis)
        self._forget = lua.DELIVERY_FORGET.bind(redis)

    async def enqueue(self, stream_id: str, event: dict[str, Any], payload: str, subs: list[Subscription]) -> int:
        """Create (once) a delivery per subscription; how many of this event's deliveries are open (0 when
        the event's user was erased: nothing is created, and the entry can be acknowledged)."""
        key_tail: list[str] = []
        arg_tail: list[str] = []
        for sub in subs:
            did = delivery_id(sub.id, event["id"])
            key_tail += [keys.delivery(did), keys.delivery_attempts(did), keys.webhook_deliveries(sub.id)]
            arg_tail += [did, sub.id, event["id"], stream_id, event["type"], payload]
        reply = await guarded(self._enqueue(
            keys={"open": keys.event_open(stream_id), "due": keys.deliveries_due(), "erased": keys.erased_events()},
            key_tail=key_tail, args={"now": repr(time.time()), "event_id": event["id"], "log_length": LOG_LENGTH},
            arg_tail=arg_tail))
        return 0 if reply.status == "erased" else int(reply.values[0])

    async def enqueue_direct(self, event: dict[str, Any], subs: list[Subscription]) -> int:
        """Deliver an event that is not in the outbox (a test event) to ``subs``."""
        return await self.enqueue(DIRECT_PREFIX + event["id"], event, events.body(event), subs)

    async def due(self, now: float, limit: int) -> list[str]:
        ids = await guarded(self.redis.zrangebyscore(keys.deliveries_due(), "-inf", now, start=0, num=limit))
        return [raw.decode() for raw in replies.members(ids)]

    async def claim(self, did: str, now: float, lease_until: float) -> Claimed | None:
        """The delivery leased to this replica until ``lease_until``; None when it is not due (another
        replica may have won it), finished, or its user was erased."""
        # one round trip: the script answers the token, the record and how many attempts it has
        reply = await guarded(self._claim(
            keys={"due": keys.deliveries_due(), "delivery": keys.delivery(did), "attempts": keys.delivery_attempts(did),
                  "erased": keys.erased_events()},
            args={"delivery_id": did, "now": repr(now), "lease_until": repr(lease_until)}))
        if reply.status != "ok":
            return None
        token, flat, count = reply.values
        record = {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}
        return Claimed(did, int(token), record, int(count))

    async def record(self, claimed: Claimed, attempt: dict[str, Any] | None, status: str,
                     next_at: float = 0.0, reason: str = "") -> tuple[str, int]:
        """Store an attempt's result. Returns the script's status and, when 'ok' (finished), how many
        deliveries of the event are still open: 'pending' (due again at ``next_at``), 'stale' (another
        claim came since: discarded), 'erased' (the user was erased meanwhile: nothing kept)."""
        rec = claimed.record
        reply = await guarded(self._record(
            keys={"delivery": keys.delivery(claimed.id), "attempts": keys.delivery_attempts(claimed.id),
                  "due": keys.deliveries_due(), "open": keys.event_open(rec["stream_id"]),
                  "dead_letters": keys.dead_letters(), "subscription": keys.webhook(rec["subscription_id"]),
                  "erased": keys.erased_events()},
            args={"delivery_id": claimed.id, "token": claimed.token, "attempt": json.dumps(attempt) if attempt else "",
                  "new_status": status, "next_attempt_at": repr(next_at), "now": repr(time.time()),
                  "retention_seconds": self.retention, "reason": reason, "dead_letter_maxlen": DEAD_LETTER_MAXLEN}))
        return reply.status, int(reply.values[0]) if reply.status == "ok" else 0

    async def release(self, claimed: Claimed) -> None:
        """Give the lease back (shutdown): due again now; 'stale' when another claim came since."""
        await self._release(keys={"delivery": keys.delivery(claimed.id), "due": keys.deliveries_due()},
                            args={"delivery_id": claimed.id, "token": claimed.token, "now": repr(time.time())})

    async def forget_event(self, stream_id: str, event_id: str, sub_ids: list[str], *,
                           tombstone_seconds: float) -> int:
        """Erasure: tombstone one event and delete every delivery of it (payloads carry the user's
        data), open or done; returns how many still have an attempt on the wire (call again)."""
        dids = [delivery_id(sub_id, event_id) for sub_id in sub_ids]
        key_tail: list[str] = []
        for sub_id, did in zip(sub_ids, dids):
            key_tail += [keys.delivery(did), keys.delivery_attempts(did), keys.webhook_deliveries(sub_id)]
        now = time.time()
        reply = await guarded(self._forget(
            keys={"erased": keys.erased_events(), "due": keys.deliveries_due(), "open": keys.event_open(stream_id)},
            key_tail=key_tail, args={"event_id": event_id, "now": repr(now), "tombstone_cutoff": repr(now - tombstone_seconds)},
            arg_tail=dids))
        return int(reply.values[0]) if reply.status == "busy" else 0

    async def replay(self, sub_id: str, did: str, *, force: bool = False) -> str:
        """Send a finished delivery again: 'ok', or 'missing', 'pending' (its next attempt is scheduled),
        'delivered' (the receiver answered 2xx already, and not ``force``), 'disabled' (the subscription is).
        One script: a replay sent twice (a double click, a client's retry) sends once."""
        reply = await guarded(self._replay(
            keys={"delivery": keys.delivery(did), "attempts": keys.delivery_attempts(did), "due": keys.deliveries_due(),
                  "subscription": keys.webhook(sub_id)},
            args={"delivery_id": did, "now": repr(time.time()), "force": "1" if force else "0"}))
        return reply.status

    async def with_status(self, sub_id: str, status: str) -> list[str]:
        """The ids of the subscription's kept deliveries (at most LOG_LENGTH) in ``status``, newest first."""
        ids = [raw.decode() for raw in replies.members(await guarded(self.redis.zrevrange(keys.webhook_deliveries(sub_id), 0, -1)))]
        async with self.redis.pipeline(transaction=False) as pipe:
            for did in ids:
                pipe.hget(keys.delivery(did), "status")
            statuses = await guarded(pipe.execute()) if ids else []
        return [did for did, found in zip(ids, statuses) if found is not None and found.decode() == status]

    async def log(self, sub_id: str, limit: int, only: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """Newest first: each delivery with its attempts; ``status``: only those in it, read among the whole
        kept log (at most LOG_LENGTH: an on-call audit replaying 852 dead letters found them only by paging
        through every delivery)."""
        if only is not None:
            ids = [only] if await guarded(self.redis.zscore(keys.webhook_deliveries(sub_id), only)) is not None else []
        else:
            ids = (await self.with_status(sub_id, status))[:limit] if status is not None else \
                [raw.decode() for raw in replies.members(
                    await guarded(self.redis.zrevrange(keys.webhook_deliveries(sub_id), 0, limit - 1)))]
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

    # webhook_id is Standard Webhooks' name for the event's id (the header); subscription_id is ours
    return {"id": rec["id"], "webhook_id": rec["event_id"], "event_id": rec["event_id"],
            "subscription_id": rec["subscription_id"], "type": rec["type"],
            "status": rec["status"], "reason": rec.get("reason") or None, "created_at": stamp("created_at"),
            "next_attempt_at": stamp("next_attempt_at") if rec["status"] == "pending" else None,
            "finished_at": stamp("finished_at"), "replays": int(rec.get("replays", "0")),
            "attempts": [json.loads(a) for a in attempts]}
