"""Per-API-key request rate limiting, shared by every replica through Redis.

A fixed one-second window per key (``INCR`` + ``EXPIRE`` in one script): cheap, one round trip,
and exact enough for "at most N requests per second per client". Keys are stored hashed.
"""

from __future__ import annotations

import hashlib
import time

import redis.asyncio as aioredis

from service.errors import RateLimited
from service import keys, lua
from service.state_store import guarded


class RateLimiter:
    def __init__(self, redis: aioredis.Redis, per_second: int) -> None:
        self.per_second = per_second
        self._window = lua.RATE_WINDOW.bind(redis)

    async def check(self, api_key: str) -> None:
        await self._count(hashlib.sha256(api_key.encode()).hexdigest()[:16])

    async def check_session(self, key_id: str) -> None:
        """A /ui request, counted under the key its session was opened with (the session holds an HMAC
        of the key, not the key: its own window, of the same size). The page went unlimited."""
        await self._count(f"ui-{key_id[:16]}")

    async def _count(self, digest: str) -> None:
        if self.per_second <= 0:
            return
        second = int(time.time())
        reply = await guarded(self._window(keys={"window": keys.rate_window(digest, second)}, args={"ttl_seconds": 2}))
        if int(reply.values[0]) > self.per_second:
            raise RateLimited(f"more than {self.per_second} requests per second for this API key")
