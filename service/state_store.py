"""User state in Redis: load, the atomic advance script, timeline, erase, and the outbox.

Advancing a user is optimistic: take the state (from this process's cache of recently seen users,
else one GET), compute the LSTM step and the detector update in Python, then one script checks
the post id's idempotency record, compares the version, and writes state, timeline, idempotency
record and any alert (its record, and its event pending relay) together — or nothing. A version
mismatch means another request or replica advanced the user meanwhile: the script returns the current state with the refusal, so the
caller recomputes without another round trip. A warm user therefore costs one round trip per post.
The cache only saves reads: Redis stays the single source of truth, every write is compared.

The record is ONE string (``encode_record``): ``b"<version>|<len(h)>|" + h + c + meta``, h and c
float32 bytes, meta JSON. One string instead of a hash of four fields because a hash whose values
exceed 64 B is stored as a hashtable, about 430 B of overhead per user; the string stays under 1 KiB.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from collections.abc import Awaitable
from typing import Any, Literal, TypeVar

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from service import json_codec, keys
from service.alerts.index import created_seconds
from service.errors import StoreUnavailable
from service.outbox import Outbox

STORE_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)  # OSError: sockets, the builtin ConnectionError
T = TypeVar("T")


async def guarded(awaitable: Awaitable[T]) -> T:
    """Every Redis call that serves a request goes through here: Redis away is a 503, not a 500."""
    try:
        return await awaitable
    except STORE_ERRORS as exc:
        raise StoreUnavailable(f"Redis unreachable: {exc.__class__.__name__}") from exc

# KEYS: state, timeline, post, post_index, pending events, alerts (all of one user: one Cluster slot)
# ARGV: expected_version, the record without its version ("|<len(h)>|" h c meta), result, timeline_len,
#       idem_ttl, now, event ('' for none), post_id, retention_seconds,
#       "<created unix seconds>:<alert id>" (the event's entry in the user's index), alerts kept per user
ADVANCE = """
local prior = redis.call('GET', KEYS[3])
if prior then return {'duplicate', prior} end
local cur = redis.call('GET', KEYS[1])
local v = 0
if cur then v = tonumber(string.match(cur, '^(%d+)|')) end
if v ~= tonumber(ARGV[1]) then
  return {'conflict', tostring(v), cur or ''}
end
local nv = v + 1
redis.call('SET', KEYS[1], nv .. ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[3])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[4]), -1)
redis.call('SET', KEYS[3], ARGV[3], 'EX', ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', ARGV[6])
redis.call('ZADD', KEYS[4], tonumber(ARGV[6]) + tonumber(ARGV[5]), ARGV[8])
-- retention: a user without posts for ARGV[9] seconds disappears on their own, alerts included
redis.call('EXPIRE', KEYS[1], ARGV[9])
redis.call('EXPIRE', KEYS[2], ARGV[9])
redis.call('EXPIRE', KEYS[4], ARGV[9])
if ARGV[7] ~= '' then
  redis.call('RPUSH', KEYS[5], ARGV[7])
  redis.call('EXPIRE', KEYS[5], ARGV[9])
  -- the alert, with the step that raised it; the user's index of alerts drops those older than the
  -- retention and, past ARGV[11] of them, the oldest
  local cutoff = tonumber(ARGV[6]) - tonumber(ARGV[9])
  local kept, dropped = {}, {}
  for entry in string.gmatch(redis.call('HGET', KEYS[6], 'index') or '', '%S+') do
    local ts, id = string.match(entry, '^([^:]+):(.+)$')
    if tonumber(ts) < cutoff then table.insert(dropped, id) else table.insert(kept, entry) end
  end
  table.insert(kept, ARGV[10])
  while #kept > tonumber(ARGV[11]) do
    table.insert(dropped, string.match(table.remove(kept, 1), '^[^:]+:(.+)$'))
  end
  if #dropped > 0 then redis.call('HDEL', KEYS[6], unpack(dropped)) end
  redis.call('HSET', KEYS[6], string.match(ARGV[10], '^[^:]+:(.+)$'), ARGV[7], 'index', table.concat(kept, ' '))
end
redis.call('EXPIRE', KEYS[6], ARGV[9])
return {'ok', tostring(nv)}
"""

# KEYS: state, timeline, post_index, pending events, relayed event ids, alerts, relay in-flight mark;
# ARGV: post records' prefix
ERASE = """
local ids = redis.call('ZRANGE', KEYS[3], 0, -1)
local n = 0
for _, id in ipairs(ids) do n = n + redis.call('DEL', ARGV[1] .. id) end
redis.call('DEL', KEYS[7])
return n + redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
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
    model_resets: int = 0

    def meta(self) -> dict[str, Any]:
        """The JSON part of the record, kept small (< 1 KiB per user with h and c): rounded floats;
        the last alert and the evidence posts live in their own key and in the timeline."""
        # field by field, not dataclasses.asdict (a recursive deep copy: ~5% of an observation's CPU)
        return {
            "model": self.model,
            "posts_seen": self.posts_seen,
            "last_ts": None if self.last_ts is None else round(self.last_ts, 3),
            "score": round(self.score, 6),
            "baseline": [round(p, 6) for p in self.baseline],
            "recent": [round(p, 6) for p in self.recent],
            "detector": self.detector,
            "model_resets": self.model_resets,
        }

    @classmethod
    def from_record(cls, raw: bytes) -> "UserState":
        return cls.decode(*split_record(raw))

    @classmethod
    def decode(cls, version: int, h: bytes, c: bytes, meta: bytes | str) -> "UserState":
        fields = json_codec.loads(meta)
        return cls(
            version=version,
            h=np.frombuffer(h, dtype=np.float32).copy(),
            c=np.frombuffer(c, dtype=np.float32).copy(),
            **{k: v for k, v in fields.items() if k in cls.__dataclass_fields__},
        )


def index_entry(event: dict[str, Any], now: float) -> str:
    """The event's entry in its user's index of alerts (keys.alerts): ``"<created unix seconds>:<id>"``,
    the same score the listing across users gives it."""
    created = created_seconds(event) if "created_at" in event else now
    return f"{created!r}:{event['id']}"


def encode_record(version: int, h: np.ndarray, c: np.ndarray, meta: dict[str, Any]) -> bytes:
    """The state record as stored: ``b"<version>|<len(h)>|" + h + c + meta`` (float32 bytes, JSON)."""
    hb, cb = np.asarray(h, dtype=np.float32).tobytes(), np.asarray(c, dtype=np.float32).tobytes()
    return b"%d|%d|" % (version, len(hb)) + hb + cb + json_codec.dumps(meta)


def split_record(raw: bytes) -> tuple[int, bytes, bytes, bytes]:
    """``(version, h, c, meta)`` of a stored record (bytes of h and c, JSON of meta)."""
    version, size, rest = raw.split(b"|", 2)
    n = int(size)
    return int(version), rest[:n], rest[n:2 * n], rest[2 * n:]


def decode_record(raw: bytes) -> UserState:
    """A stored record (``GET`` of ``keys.state(user)``) as a UserState: for tests and tools."""
    return UserState.from_record(raw)


@dataclass(frozen=True)
class Advance:
    outcome: Literal["ok", "duplicate", "conflict"]
    version: int = 0
    prior_result: dict[str, Any] | None = None
    event_id: str | None = None
    current: UserState | None = None  # on conflict: the state that won (None: the user was erased)


class StateStore:
    def __init__(
        self, redis: aioredis.Redis, *, outbox: str, outbox_maxlen: int, timeline_length: int, idempotency_ttl: int,
        cache_users: int = 0, retention_seconds: int = 90 * 24 * 3600, alerts_per_user: int = 100,
        relay_lease_seconds: float = 5.0,
    ) -> None:
        self._retention = retention_seconds
        self._alerts_per_user = alerts_per_user
        self.redis = redis
        # the encoded record per user, so every load hands out a fresh, private copy
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_users = cache_users
        self.outbox = outbox
        self.relay = Outbox(redis, stream=outbox, maxlen=outbox_maxlen, retention_seconds=retention_seconds,
                            lease_seconds=relay_lease_seconds)
        self._timeline_length = timeline_length
        self._ttl = idempotency_ttl
        self._advance = redis.register_script(ADVANCE)
        self._erase = redis.register_script(ERASE)

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except STORE_ERRORS:
            return False

    async def load(self, user_id: str, *, cached: bool = False) -> UserState | None:
        """The user's state; ``cached=True`` may answer from memory (only for a compare-and-set write)."""
        if cached and (hit := self._cache.get(user_id)) is not None:
            self._cache.move_to_end(user_id)
            return UserState.from_record(hit)
        raw = await guarded(self.redis.get(keys.state(user_id)))
        if not raw:
            self._cache.pop(user_id, None)
            return None
        self._remember(user_id, raw)
        return UserState.from_record(raw)

    def _remember(self, user_id: str, encoded: bytes) -> None:
        if self._cache_users <= 0:
            return
        self._cache[user_id] = encoded
        self._cache.move_to_end(user_id)
        while len(self._cache) > self._cache_users:
            self._cache.popitem(last=False)

    async def advance(
        self, user_id: str, post_id: str, expected: int, state: UserState,
        result: dict[str, Any], event: dict[str, Any] | None, now: float,
    ) -> Advance:
        record = encode_record(expected + 1, state.h, state.c, state.meta())
        tail = record[record.index(b"|"):]  # the script prefixes the version it writes
        if event is not None:
            await guarded(self.relay.mark(user_id))  # before the write: a crash after it is swept up
        reply = await guarded(self._advance(
            keys=[keys.state(user_id), keys.timeline(user_id), keys.post(user_id, post_id),
                  keys.post_index(user_id), keys.pending_events(user_id), keys.alerts(user_id)],
            args=[expected, tail, json_codec.dumps(result), self._timeline_length, self._ttl,
                  f"{now:.6f}", json_codec.dumps(event) if event else "", post_id, self._retention,
                  index_entry(event, now) if event else "", self._alerts_per_user],
        ))
        kind = reply[0].decode()
        if kind == "duplicate":
            return Advance("duplicate", prior_result=json_codec.loads(reply[1]))
        if kind == "conflict":
            version = int(reply[1])
            if version == 0 or not reply[2]:
                self._cache.pop(user_id, None)
                return Advance("conflict", version=version)
            self._remember(user_id, reply[2])
            return Advance("conflict", version=version, current=UserState.from_record(reply[2]))
        version = int(reply[1])
        self._remember(user_id, b"%d" % version + tail)
        event_id = None
        if event is not None:
            try:
                relayed = await guarded(self.relay.relay(user_id))
                event_id = relayed[-1] if relayed else None
            except StoreUnavailable:  # the step is written; its event waits in `pending` for the sweeper
                pass
        return Advance("ok", version=version, event_id=event_id)

    async def last_alert(self, user_id: str) -> dict[str, Any] | None:
        """The user's latest alert as it stands now (acknowledged, resolved...), None if none is kept."""
        index = await guarded(self.redis.hget(keys.alerts(user_id), "index"))
        if not index:
            return None
        latest = index.rsplit(b" ", 1)[-1].split(b":", 1)[1]
        raw = await guarded(self.redis.hget(keys.alerts(user_id), latest))
        return json_codec.loads(raw) if raw else None

    async def timeline(self, user_id: str, limit: int) -> list[dict[str, Any]]:
        raw = await guarded(self.redis.lrange(keys.timeline(user_id), -limit, -1))
        return [json_codec.loads(item) for item in raw]

    async def erase(self, user_id: str) -> int:
        self._cache.pop(user_id, None)
        prefix = keys.post(user_id, "")
        removed = await guarded(self.relay.forget(user_id))  # alerts not yet delivered go too
        return removed + int(await guarded(self._erase(
            keys=[keys.state(user_id), keys.timeline(user_id), keys.post_index(user_id),
                  keys.pending_events(user_id), keys.user_events(user_id), keys.alerts(user_id),
                  keys.relay_inflight(user_id)],
            args=[prefix])))

    async def outbox_events(self, count: int = 100) -> list[tuple[str, dict[str, Any]]]:
        raw = await guarded(self.redis.xrange(self.outbox, count=count))
        return [(eid.decode(), json_codec.loads(fields[b"event"])) for eid, fields in raw]
