"""User state in Redis: load, the atomic advance script, timeline, erase, and the outbox.

Advancing a user is optimistic: load the state (one round trip), compute the LSTM step and the
detector update in Python, then one script checks the post id's idempotency record, compares the
version, and writes state, timeline, idempotency record and any alert event together — or nothing.
A version mismatch means another request advanced the user meanwhile: the caller recomputes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service import keys
from service.errors import StoreUnavailable

STORE_ERRORS = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError)

# KEYS: state, timeline, post, post_index, outbox
# ARGV: expected_version, h, c, meta, result, timeline_len, idem_ttl, now, event, outbox_maxlen, post_id
ADVANCE = """
local prior = redis.call('GET', KEYS[3])
if prior then return {'duplicate', prior} end
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if v ~= tonumber(ARGV[1]) then return {'conflict', tostring(v)} end
local nv = v + 1
redis.call('HSET', KEYS[1], 'v', nv, 'h', ARGV[2], 'c', ARGV[3], 'meta', ARGV[4])
redis.call('RPUSH', KEYS[2], ARGV[5])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[6]), -1)
redis.call('SET', KEYS[3], ARGV[5], 'EX', ARGV[7])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[8])
redis.call('ZADD', KEYS[4], tonumber(ARGV[8]) + tonumber(ARGV[7]), ARGV[11])
local event_id = ''
if ARGV[9] ~= '' then
  event_id = redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[10], '*', 'event', ARGV[9])
end
return {'ok', tostring(nv), event_id}
"""

# KEYS: state, timeline, post_index; ARGV: the key prefix of post records
ERASE = """
local ids = redis.call('ZRANGE', KEYS[3], 0, -1)
local n = 0
for _, id in ipairs(ids) do n = n + redis.call('DEL', ARGV[1] .. id) end
return n + redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
"""


@dataclass
class UserState:
    """What is kept per user besides the timeline: small, JSON + two float32 vectors."""

    version: int
    h: np.ndarray  # (H,) float32
    c: np.ndarray  # (H,) float32
    model: str  # temporal model tag that wrote h and c
    posts_seen: int = 0
    last_ts: float | None = None
    score: float = 0.0
    baseline: list[float] = field(default_factory=list)
    recent: list[float] = field(default_factory=list)
    detector: dict[str, Any] = field(default_factory=dict)
    recent_posts: list[str] = field(default_factory=list)
    last_alert: dict[str, Any] | None = None
    model_resets: int = 0

    def meta(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("version", "h", "c"):
            data.pop(name)
        return data

    @classmethod
    def from_redis(cls, raw: dict[bytes, bytes]) -> "UserState":
        meta = json.loads(raw[b"meta"])
        return cls(
            version=int(raw[b"v"]),
            h=np.frombuffer(raw[b"h"], dtype=np.float32).copy(),
            c=np.frombuffer(raw[b"c"], dtype=np.float32).copy(),
            **{k: v for k, v in meta.items() if k in cls.__dataclass_fields__},
        )


@dataclass(frozen=True)
class Advance:
    outcome: Literal["ok", "duplicate", "conflict"]
    version: int = 0
    prior_result: dict[str, Any] | None = None
    event_id: str | None = None


class StateStore:
    def __init__(self, redis: aioredis.Redis, *, outbox: str, outbox_maxlen: int, timeline_length: int, idempotency_ttl: int) -> None:
        self.redis = redis
        self.outbox = outbox
        self._outbox_maxlen = outbox_maxlen
        self._timeline_length = timeline_length
        self._ttl = idempotency_ttl
        self._advance = redis.register_script(ADVANCE)
        self._erase = redis.register_script(ERASE)

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except STORE_ERRORS:
            return False

    async def load(self, user_id: str) -> UserState | None:
        raw = await self._call(self.redis.hgetall(keys.state(user_id)))
        return UserState.from_redis(raw) if raw else None

    async def advance(
        self, user_id: str, post_id: str, expected: int, state: UserState,
        result: dict[str, Any], event: dict[str, Any] | None, now: float,
    ) -> Advance:
        reply = await self._call(self._advance(
            keys=[keys.state(user_id), keys.timeline(user_id), keys.post(user_id, post_id),
                  keys.post_index(user_id), self.outbox],
            args=[expected, state.h.astype(np.float32).tobytes(), state.c.astype(np.float32).tobytes(),
                  json.dumps(state.meta()), json.dumps(result), self._timeline_length, self._ttl,
                  f"{now:.6f}", json.dumps(event) if event else "", self._outbox_maxlen, post_id],
        ))
        kind = reply[0].decode()
        if kind == "duplicate":
            return Advance("duplicate", prior_result=json.loads(reply[1]))
        if kind == "conflict":
            return Advance("conflict", version=int(reply[1]))
        return Advance("ok", version=int(reply[1]), event_id=reply[2].decode() or None)

    async def timeline(self, user_id: str, limit: int) -> list[dict[str, Any]]:
        raw = await self._call(self.redis.lrange(keys.timeline(user_id), -limit, -1))
        return [json.loads(item) for item in raw]

    async def erase(self, user_id: str) -> int:
        prefix = keys.post(user_id, "")
        return int(await self._call(self._erase(
            keys=[keys.state(user_id), keys.timeline(user_id), keys.post_index(user_id)], args=[prefix])))

    async def outbox_events(self, count: int = 100) -> list[tuple[str, dict[str, Any]]]:
        raw = await self._call(self.redis.xrange(self.outbox, count=count))
        return [(eid.decode(), json.loads(fields[b"event"])) for eid, fields in raw]

    @staticmethod
    async def _call(awaitable: Any) -> Any:
        try:
            return await awaitable
        except STORE_ERRORS as exc:
            raise StoreUnavailable(f"state store unreachable: {exc.__class__.__name__}") from exc
