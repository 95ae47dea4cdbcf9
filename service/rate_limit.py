"""Per-API-key request rate limiting, shared by every replica through Redis.

A sliding one-second window per key, kept exactly: a log of the times of the requests admitted in the
last second (a sorted set of at most the limit's entries), read and written by one script that admits or
refuses. At most N requests in any one second, and N each second to a client that keeps to it. Fixed
windows let 2N through across a window's edge (an audit: 10 of 40 requests at 5 a second in 0.69 s); two
counters, one weighted, still let 9 of 5 through in under a second and held a paced client to 4 (a
re-audit). Refused requests are not counted, and a refusal's Retry-After is when the oldest admitted
request leaves the window. The time is Redis's, one clock for every replica (each replica's own let one 10-50
ms ahead take more than the limit). Exact means exact: a client pacing itself at N a second evenly is refused
now and then by a millisecond of jitter on the way; pace at 0.98 N (docs/settings.md). Keys are stored hashed.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Callable

import redis.asyncio as aioredis

from service.errors import RateLimited
from service import keys, lua
from service.state_store import guarded


# The /ui alert page's picture is part of the page, so not counted with the pages (a verdict at a low limit
# was a POST, a page and a 429 picture); uncounted, one session rendered 150-210 a second (~5 ms of CPU
# each: an audit). Counted in a window of its own, this many times the limit: reloads and tabs, not loops.
PICTURES_PER_PAGE = 4


# None: the time is Redis's (TIME, in the script). Tests set a clock of their own here.
clock: Callable[[], float] | None = None


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
        limit = self.per_second * allowance
        reply = await guarded(self._window(keys={"log": keys.rate_log(digest)}, args={
            "limit": limit, "now": "" if clock is None else repr(clock()), "member": secrets.token_hex(8),
            "ttl_milliseconds": 2000}))
        if reply.status == "refused":
            oldest, now = int(float(reply.values[1])), int(reply.values[2])  # microseconds
            raise RateLimited(f"more than {limit} requests per second for this API key",
                              retry_after=max(1, math.ceil((oldest + 1_000_000 - now) / 1e6)))
