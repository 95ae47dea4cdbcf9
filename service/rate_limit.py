"""Per-API-key request rate limiting, shared by every replica through Redis.

A sliding one-second window per key, estimated from two fixed ones (this second's counter and the one
before, in one script that admits or refuses): this second's admitted requests plus the previous
second's, weighted by how much of it is still within the last second. Cheap, one round trip, and close
to "at most N requests in any one second": fixed windows let 2N through across a window's edge (an
audit: 10 of 40 requests at 5 a second went through in 0.69 s). Refused requests are not counted, and
a refusal's Retry-After is when the estimate next admits one (``retry_after``). Keys are stored hashed.
"""

from __future__ import annotations

import hashlib
import math
import time

import redis.asyncio as aioredis

from service.errors import RateLimited
from service import keys, lua
from service.state_store import guarded


# The /ui alert page's picture is part of the page, so not counted with the pages (a verdict at a low limit
# was a POST, a page and a 429 picture); uncounted, one session rendered 150-210 a second (~5 ms of CPU
# each: an audit). Counted in a window of its own, this many times the limit: reloads and tabs, not loops.
PICTURES_PER_PAGE = 4


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

    async def check_picture(self, key_id: str) -> None:
        """The /ui alert page's timeline picture, counted under its session's key in a window of its own."""
        await self._count(f"ui-picture-{key_id[:16]}", PICTURES_PER_PAGE)

    async def _count(self, digest: str, allowance: int = 1) -> None:
        if self.per_second <= 0:
            return
        now = time.time()
        second = int(now)
        limit = self.per_second * allowance
        reply = await guarded(self._window(keys={"window": keys.rate_window(digest, second),
                                                 "previous": keys.rate_window(digest, second - 1)},
                                           args={"limit": limit, "previous_weight": 1.0 - (now - second),
                                                 "ttl_seconds": 3}))
        if reply.status == "refused":
            admitted, previous = int(reply.values[0]), int(reply.values[1])
            raise RateLimited(f"more than {limit} requests per second for this API key",
                              retry_after=retry_after(admitted, previous, limit, now - second))


def retry_after(admitted: int, previous: int, limit: int, into: float) -> int:
    """Whole seconds (at least 1) until the sliding estimate admits a request, if none comes meanwhile:
    later in this second, as the previous second's weight falls, or else in the next, where this second's
    ``admitted`` are the previous ones. ``into``: how far into this second it is, 0 to 1.

    >>> retry_after(5, 0, 5, 0.5)  # next second at 0.5 s, where 5 x (1 - f) + 1 <= 5 from f = 0.2
    1
    >>> retry_after(5, 0, 5, 0.01)  # 0.99 s, then 0.2 s more
    2
    """
    if previous and (limit - admitted - 1) >= 0:
        at = 1.0 - (limit - admitted - 1) / previous  # n + 1 + previous x (1 - at) <= limit from here
        return max(1, math.ceil(at - into))
    at_next = max(0.0, 1.0 - (limit - 1) / admitted) if admitted else 0.0
    return max(1, math.ceil(1.0 - into + at_next))
