"""Per-API-key request rate limiting, shared by every replica through Redis.

A fixed one-second window per key (``INCR`` + ``EXPIRE`` in one script): cheap, one round trip,
and exact enough for "at most N requests per second per client". Keys are stored hashed.
"""

from __future__ import annotations

import hashlib
import time

import redis.asyncio as aioredis

from service.errors import RateLimited
from service import keys
from service.state_store import guarded

# KEYS: the window's counter; ARGV: ttl seconds. Returns the count including this request.
WINDOW = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


class RateLimiter:
    def __init__(self, redis: aioredis.Redis, per_second: int) -> None:
        self.per_second = per_second
        self._window = redis.register_script(WINDOW)

    async def check(self, api_key: str) -> None:
        if self.per_second <= 0:
            return
        second = int(time.time())
        digest = hashlib.sha256(api_key.encode()).hexdigest()[:16]
        count = await guarded(self._window(keys=[keys.rate_window(digest, second)], args=[2]))
        if int(count) > self.per_second:
            raise RateLimited(f"more than {self.per_second} requests per second for this API key")
