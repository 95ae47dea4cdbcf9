"""Webhook subscriptions: one hash per subscription plus an index sorted by creation time.

The secret is stored (the dispatcher signs with it) but only the create and rotate responses ever
show it. After a rotation the replaced secret is kept until its grace period ends, and every delivery
until then carries a signature with each secret in use (Standard Webhooks: space-separated ``v1,``
signatures), so a receiver can switch secrets whenever it likes within that window. A second rotation
inside the window (a client retrying a rotation that timed out) keeps the first secret too: every
secret signs until its own grace ends, up to ``MAX_PREVIOUS_SECRETS`` of them; a rotation's grace also
bounds the earlier ones, so ``grace_seconds=0`` stops every previous secret at once (a leaked one).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from service import keys, lua, replies
from service.timestamps import iso_time
from service.webhooks.urls import redacted
from service.state_store import guarded

MAX_PREVIOUS_SECRETS = 4  # signatures per delivery: at most this + 1 (each costs the receiver one HMAC)


@dataclass(frozen=True)
class Subscription:
    id: str
    url: str
    events: tuple[str, ...]
    secret: str
    status: str  # enabled | disabled (the receiver answered 410 Gone)
    created_at: float
    disabled_reason: str | None = None
    # (secret, Unix time it stops signing), newest first: the secrets replaced by rotations, while in grace
    previous_secrets: tuple[tuple[str, float], ...] = ()

    @property
    def enabled(self) -> bool:
        return self.status == "enabled"

    def matches(self, event_type: str) -> bool:
        """Whether an event of this type gets a delivery of this subscription, disabled or not: while it
        is disabled the delivery is cancelled when claimed ("subscription disabled"), so the alert is in
        its log and can be replayed once it is enabled again, instead of being acknowledged unseen."""
        return event_type in self.events

    def signing_secrets(self, now: float) -> list[str]:
        """The secrets a delivery sent at ``now`` is signed with: the current one, then every previous one
        still in its grace period after a rotation.

        >>> sub = Subscription("wh_1", "https://r.example/", ("drift.started",), "whsec_c", "enabled", 0.0,
        ...                    previous_secrets=(("whsec_b", 200.0), ("whsec_a", 100.0)))
        >>> sub.signing_secrets(50.0), sub.signing_secrets(150.0), sub.signing_secrets(250.0)
        (['whsec_c', 'whsec_b', 'whsec_a'], ['whsec_c', 'whsec_b'], ['whsec_c'])
        """
        return [self.secret, *(secret for secret, until in self.previous_secrets if now < until)]

    def public(self) -> dict[str, Any]:
        """What GET shows: everything but the secrets."""
        now = time.time()
        grace = max((until for _, until in self.previous_secrets if now < until), default=None)
        return {"id": self.id, "url": redacted(self.url), "events": list(self.events), "status": self.status,
                "created_at": iso_time(self.created_at), "disabled_reason": self.disabled_reason,
                "previous_secret_expires_at": iso_time(grace) if grace else None}

    @classmethod
    def from_redis(cls, raw: dict[bytes, bytes]) -> "Subscription":
        text = {k.decode(): v.decode() for k, v in raw.items()}
        if "previous_secrets" in text:  # [[secret, until], ...] as webhook_rotate_secret.lua keeps them
            previous = tuple((secret, float(until)) for secret, until in json.loads(text["previous_secrets"]))
        elif text.get("previous_secret") and text.get("previous_secret_until"):  # rotated by an earlier release
            previous = ((text["previous_secret"], float(text["previous_secret_until"])),)
        else:
            previous = ()
        return cls(id=text["id"], url=text["url"], events=tuple(json.loads(text["events"])),
                   secret=text["secret"], status=text.get("status", "enabled"),
                   created_at=float(text["created_at"]), disabled_reason=text.get("disabled_reason"),
                   previous_secrets=previous)


# What create makes: "wh_" and 24 hex digits (service/routes/deps.py refuses any other path id)
ID_PATTERN = re.compile(r"wh_[0-9a-f]{24}")


class Subscriptions:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._rotate = lua.WEBHOOK_ROTATE_SECRET.bind(redis)
        self._enable = lua.WEBHOOK_ENABLE.bind(redis)

    async def create(self, url: str, events: list[str], secret: str) -> Subscription:
        sub = Subscription(id=f"wh_{secrets.token_hex(12)}", url=url, events=tuple(dict.fromkeys(events)),
                           secret=secret, status="enabled", created_at=round(time.time(), 6))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.webhook(sub.id), mapping={
                "id": sub.id, "url": sub.url, "events": json.dumps(list(sub.events)), "secret": sub.secret,
                "status": sub.status, "created_at": repr(sub.created_at)})
            pipe.zadd(keys.webhook_index(), {sub.id: sub.created_at})
            pipe.zadd(keys.webhook_ids_ever(), {sub.id: sub.created_at})
            await guarded(pipe.execute())
        return sub

    async def get(self, sub_id: str) -> Subscription | None:
        raw = replies.fields(await guarded(self.redis.hgetall(keys.webhook(sub_id))))
        return Subscription.from_redis(raw) if raw else None

    async def rotate(self, sub_id: str, secret: str, grace_seconds: float) -> Subscription | None:
        """Sign with ``secret`` from now on, and with the secret it replaces too for ``grace_seconds``
        (earlier ones until their own grace ends, but no later); one script, so two rotations at once
        cannot lose a secret in between."""
        now = round(time.time(), 6)  # as previous_until is: with no grace the two are equal, and nothing is kept
        reply = await guarded(self._rotate(keys={"subscription": keys.webhook(sub_id)}, args={
            "secret": secret, "previous_until": repr(round(now + grace_seconds, 6)), "now": repr(now),
            "keep": MAX_PREVIOUS_SECRETS}))
        if reply.status == "missing":
            return None
        return await self.get(sub_id)

    async def enable(self, sub_id: str) -> Subscription | None:
        """Deliver again to a subscription that was disabled (its receiver answered 410)."""
        if (await guarded(self._enable(keys={"subscription": keys.webhook(sub_id)}))).status == "missing":
            return None
        return await self.get(sub_id)

    async def ids_ever(self) -> list[str]:
        """Every subscription id ever created, deleted ones too (erasure: their deliveries hold payloads)."""
        async with self.redis.pipeline(transaction=False) as pipe:  # both in the {wh} slot
            pipe.zrange(keys.webhook_ids_ever(), 0, -1)
            pipe.zrange(keys.webhook_index(), 0, -1)  # subscriptions made before subs-ever existed
            ever, current = await guarded(pipe.execute())
        return list(dict.fromkeys(raw.decode() for raw in ever + current))

    async def all(self) -> list[Subscription]:
        ids = replies.members(await guarded(self.redis.zrange(keys.webhook_index(), 0, -1)))
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for sub_id in ids:
                pipe.hgetall(keys.webhook(sub_id.decode()))
            rows = await guarded(pipe.execute())
        return [Subscription.from_redis(raw) for raw in rows if raw]

    async def delete(self, sub_id: str) -> bool:
        """Pending deliveries of a deleted subscription are cancelled when next claimed."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.webhook(sub_id))
            pipe.zrem(keys.webhook_index(), sub_id)
            pipe.delete(keys.webhook_deliveries(sub_id))
            deleted, *_ = await guarded(pipe.execute())
        return bool(deleted)
