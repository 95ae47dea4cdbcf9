"""Webhook subscriptions: one hash per subscription plus an index sorted by creation time.

The secret is stored (the dispatcher signs with it) but only the create response ever shows it.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from service import keys
from service.timestamps import iso_time
from service.webhooks.urls import redacted
from service.state_store import guarded  # noqa: F401 - the webhooks modules import it from here



@dataclass(frozen=True)
class Subscription:
    id: str
    url: str
    events: tuple[str, ...]
    secret: str
    status: str  # enabled | disabled (the receiver answered 410 Gone)
    created_at: float
    disabled_reason: str | None = None

    @property
    def enabled(self) -> bool:
        return self.status == "enabled"

    def matches(self, event_type: str) -> bool:
        """Whether an event of this type is delivered to this subscription now."""
        return self.enabled and event_type in self.events

    def public(self) -> dict[str, Any]:
        """What GET shows: everything but the secret."""
        return {"id": self.id, "url": redacted(self.url), "events": list(self.events), "status": self.status,
                "created_at": iso_time(self.created_at), "disabled_reason": self.disabled_reason}

    @classmethod
    def from_redis(cls, raw: dict[bytes, bytes]) -> "Subscription":
        text = {k.decode(): v.decode() for k, v in raw.items()}
        return cls(id=text["id"], url=text["url"], events=tuple(json.loads(text["events"])),
                   secret=text["secret"], status=text.get("status", "enabled"),
                   created_at=float(text["created_at"]), disabled_reason=text.get("disabled_reason"))


class Subscriptions:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

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
        raw = await guarded(self.redis.hgetall(keys.webhook(sub_id)))
        return Subscription.from_redis(raw) if raw else None

    async def ids_ever(self) -> list[str]:
        """Every subscription id ever created, deleted ones too (erasure: their deliveries hold payloads)."""
        async with self.redis.pipeline(transaction=False) as pipe:  # both in the {wh} slot
            pipe.zrange(keys.webhook_ids_ever(), 0, -1)
            pipe.zrange(keys.webhook_index(), 0, -1)  # subscriptions made before subs-ever existed
            ever, current = await guarded(pipe.execute())
        return list(dict.fromkeys(raw.decode() for raw in ever + current))

    async def all(self) -> list[Subscription]:
        ids = await guarded(self.redis.zrange(keys.webhook_index(), 0, -1))
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
