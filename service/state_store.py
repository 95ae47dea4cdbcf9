"""User state in Redis: load, the atomic advance script, timeline, erase, and the outbox.

Advancing a user is optimistic: take the state (from this process's cache of recently seen users,
else one GET), compute the LSTM step and the detector update in Python, then one script checks
whether the post id was seen (its timeline entry is its idempotency record), compares the version, and
writes state, timeline entry and any alert (its record, and its event pending relay) together — or
nothing. A version mismatch means another request or replica advanced the user meanwhile: the script
returns the current state with the refusal, so the caller recomputes without another round trip. A
warm user therefore costs one round trip per post. The cache only saves reads: Redis stays the single
source of truth, every write is compared.

The record is ONE string (``encode_record``): ``b"<version>|<len(h)>|" + h + c + meta``, h and c
float32 bytes, meta JSON. One string instead of a hash of four fields because a hash whose values
exceed 64 B is stored as a hashtable, about 430 B of overhead per user; the string stays under 1 KiB.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, TypeVar

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import (AskError, ClusterDownError, ClusterError, MovedError, RedisClusterException,
                              SlotNotCoveredError, TryAgainError)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.asyncio.cluster import RedisCluster
from redis.typing import EncodableT, KeyT

from service import json_codec, keys, lua, metrics, replies, timeline_codec
from service.alerts.index import created_seconds
from service.errors import StateConflict, StoreUnavailable
from service.legacy_records import LegacyRecords
from service.outbox import Outbox
from service.redis_pipelining import BATCHED, AutoPipeline

STORE_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)  # OSError: sockets, the builtin ConnectionError
# EMODRIFT_REDIS_CLUSTER=true against a Redis that is no Cluster: every command raised this, a 500 on
# /readyz, /metrics and every post; it is a 503 that says which setting to look at
NOT_A_CLUSTER = "the Redis at EMODRIFT_REDIS_URL is not a Redis Cluster, and EMODRIFT_REDIS_CLUSTER is true"
# the other way round: a plain client gets MOVED from a Cluster node, which read as a slot on the move
IS_A_CLUSTER = "the Redis at EMODRIFT_REDIS_URL is a Redis Cluster node"
MOVED_HINT = " (a MOVED reply: if the Redis is a Cluster, set EMODRIFT_REDIS_CLUSTER=true)"
# a write of a user's keys (one script over several keys) cannot run while their slot is open between two
# nodes and the keys are not all on one of them (Redis answers TRYAGAIN): a slot left half moved by a
# stopped rebalance refuses them until it is closed
OPEN_SLOT_HINT = (" (a slot left half moved by a stopped reshard or rebalance refuses writes until "
                  "`redis-cli --cluster fix` closes it)")
T = TypeVar("T")
# Redis up but refusing writes: an error reply (in a script's too), by its first word. They were 500
# `internal` ("a bug: roll back"), and /readyz said ready: an on-call audit filled Redis's memory.
REFUSALS = {
    "OOM": ("out_of_memory", "its memory is full (used_memory reached maxmemory under the noeviction policy)"),
    "READONLY": ("read_only", "it is a read-only replica (EMODRIFT_REDIS_URL names a replica, or a failover "
                 "left the client on one)"),
    "MISCONF": ("cannot_persist", "it cannot persist (MISCONF: its last save failed, and it stops writes)"),
}
metrics.from_zero(metrics.REDIS_REFUSALS, [reason for reason, _ in REFUSALS.values()])
# the word where a reply starts, or where a script's error quotes its command's ("...: -OOM command...")
_REFUSAL_WORD = re.compile(rf"(?:^|[\s:-])({'|'.join(REFUSALS)})\b")


# A Cluster slot being moved to another node (redis-cli --cluster reshard): a command on it is refused
# without running (TRYAGAIN while a multi-key script's keys are split between the two nodes; ASK and
# MOVED that redis-py follows a few times, then its ClusterError "TTL exhausted"). Safe to run again.
SLOT_MOVING = (TryAgainError, AskError, MovedError, ClusterDownError, SlotNotCoveredError, ClusterError)


def slot_moving(exc: BaseException) -> bool:
    """A refusal while a Cluster slot moves (the command did not run)."""
    return isinstance(exc, SLOT_MOVING)


def refused_write(exc: ResponseError) -> tuple[str, str] | None:
    """(reason, in words) when an error reply is Redis refusing a write: a command's (redis-py raises its
    own class and strips the first word) or a script's (whose reply quotes it). None for any other error.

    >>> refused_write(OutOfMemoryError("command not allowed when used memory > 'maxmemory'."))[0]
    'out_of_memory'
    >>> refused_write(ResponseError("Error running script (call to f_1): @user_script: 9: -OOM command not allowed"))[0]
    'out_of_memory'
    >>> refused_write(ResponseError("MISCONF Redis is configured to save RDB snapshots"))[0]
    'cannot_persist'
    >>> refused_write(ResponseError("WRONGTYPE Operation against a key")) is None
    True
    """
    word = "OOM" if isinstance(exc, OutOfMemoryError) else "READONLY" if isinstance(exc, ReadOnlyError) else None
    message = str(exc)
    if (found := _REFUSAL_WORD.search(message)) is not None:
        word = found.group(1)
    return REFUSALS[word] if word else None


def unavailable(exc: Exception, *, retried: bool = False) -> StoreUnavailable | None:
    """The 503 a Redis failure answers (None: the exception is no Redis failure, a bug to re-raise).
    ``retried``: a slot move outlasted ``retried``'s backoff, so the message says it is still moving."""
    if isinstance(exc, STORE_ERRORS):
        return StoreUnavailable(f"Redis unreachable: {exc.__class__.__name__}")
    if isinstance(exc, RedisClusterException):
        return StoreUnavailable(f"{NOT_A_CLUSTER}: {exc}")
    if isinstance(exc, ResponseError) and (refusal := refused_write(exc)) is not None:
        metrics.REDIS_REFUSALS.labels(refusal[0]).inc()
        return StoreUnavailable(f"Redis refuses writes: {refusal[1]}")
    if not slot_moving(exc):
        return None
    hint = MOVED_HINT if isinstance(exc, MovedError) else OPEN_SLOT_HINT if retried else ""
    still = "still " if retried else ""
    return StoreUnavailable(f"the Redis Cluster slot is {still}moving: {exc.__class__.__name__}{hint}")


async def guarded(awaitable: Awaitable[T]) -> T:
    """Every Redis call that serves a request goes through here: Redis away is a 503, not a 500."""
    try:
        return await awaitable
    except Exception as exc:
        if (error := unavailable(exc)) is None:
            raise
        raise error from exc


async def retried(call: Callable[[], Awaitable[T]], seconds: float) -> T:
    """``guarded(call())``, run again with backoff for up to ``seconds`` while its Cluster slot moves.
    A migration of one slot takes milliseconds per key, so this rides it out; past it, a 503 with
    Retry-After. Only refusals are retried (the call did not run); a lost reply is the caller's
    retry, which idempotency makes safe."""
    deadline, delay = time.monotonic() + seconds, 0.01
    while True:
        try:
            return await call()
        except Exception as exc:
            if (error := unavailable(exc, retried=True)) is None:
                raise
            if not slot_moving(exc) or time.monotonic() + delay > deadline:
                raise error from exc
        metrics.SLOT_MOVED_RETRIES.inc()
        await asyncio.sleep(delay)
        delay = min(2 * delay, 0.2)


# The timeline is also the idempotency record (issue 17): each entry (timeline_codec.py, a few dozen bytes)
# is the post's first result with the post id and when it was written; `seen` holds a 4-byte fingerprint
# of each entry's post id, in the same order, so a retry is found with one string search and answered
# from its entry. Entries are dropped from the head once past the timeline's length AND older than the
# idempotency window; reads show only the last `timeline_length`. The scripts: service/lua/state_*.lua.
MIGRATE_ATTEMPTS = 3  # a user's records are converted once; more only while an older replica writes them


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
    # The shadow temporal model's slot (service/shadow.py: its model tag, h and c, detector, score),
    # or the previously served model's after a promotion; None: no shadow has run for this user.
    shadow: dict[str, Any] | None = None

    def meta(self) -> dict[str, Any]:
        """The JSON part of the record, kept small (< 1 KiB per user with h and c): rounded floats;
        the last alert and the evidence posts live in their own key and in the timeline."""
        # field by field, not dataclasses.asdict (a recursive deep copy; its cost: docs/performance.md)
        meta = {
            "model": self.model,
            "posts_seen": self.posts_seen,
            # microseconds, as every time the API writes: milliseconds rounded last_post_at up to a time
            # later than the post (records written so are read as they are)
            "last_ts": None if self.last_ts is None else round(self.last_ts, 6),
            "score": round(self.score, 6),
            "baseline": [round(p, 6) for p in self.baseline],
            "recent": [round(p, 6) for p in self.recent],
            "detector": self.detector,
        }
        if self.model_resets:  # absent at 0 (decode's default): every byte counts under the 1 KiB bar
            meta["model_resets"] = self.model_resets
        if self.shadow is not None:  # absent, not null: a record without a shadow stays as it was
            meta["shadow"] = self.shadow
        return meta

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
    outcome: Literal["ok", "duplicate", "conflict", "unseen"]
    version: int = 0
    prior_result: dict[str, Any] | None = None
    event_id: str | None = None
    current: UserState | None = None  # on conflict: the state that won (None: the user was erased)


class StateStore:
    def __init__(
        self, redis: aioredis.Redis, *, outbox: str, outbox_maxlen: int, timeline_length: int, idempotency_ttl: int,
        cache_users: int = 0, retention_seconds: int = 90 * 24 * 3600, alerts_per_user: int = 100,
        relay_lease_seconds: float = 5.0, slot_retry_seconds: float = 3.0,
    ) -> None:
        self._slot_retry = slot_retry_seconds
        self._retention = retention_seconds
        self._alerts_per_user = alerts_per_user
        self.redis = redis
        # the encoded record per user, so every load hands out a fresh, private copy
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_users = cache_users
        self.relay = Outbox(redis, stream=outbox, maxlen=outbox_maxlen, retention_seconds=retention_seconds,
                            lease_seconds=relay_lease_seconds)
        self._timeline_length = timeline_length
        self._ttl = idempotency_ttl
        self._advance = lua.STATE_ADVANCE.bind(redis)
        # a batch's reads and advance scripts go as one pipeline per event-loop turn (redis_pipelining.py);
        # a Cluster client sends each command to its slot's node itself
        self._pipelined = AutoPipeline(redis) if isinstance(redis, aioredis.Redis) else None
        self._erase = lua.STATE_ERASE.bind(redis)
        self.legacy = LegacyRecords(redis, idempotency_ttl=idempotency_ttl, retention_seconds=retention_seconds)

    async def unready(self) -> str | None:
        """Why this Redis cannot serve the store (None: it can): away, or not the kind the Cluster
        setting says. A plain client on a Cluster node answers PING, so the node is asked."""
        try:
            if isinstance(self.redis, RedisCluster):
                return None if await self.redis.ping() else "Redis did not answer PING"
            cluster = await self.redis.info("cluster")
        except RedisClusterException as exc:
            return f"{NOT_A_CLUSTER}: {exc}"
        except STORE_ERRORS as exc:
            return f"Redis unreachable: {exc.__class__.__name__}"
        return f"{IS_A_CLUSTER}: set EMODRIFT_REDIS_CLUSTER=true" if cluster.get("cluster_enabled") else None

    async def load(self, user_id: str, *, cached: bool = False) -> UserState | None:
        """The user's state; ``cached=True`` may answer from memory (only for a compare-and-set write)."""
        if cached and (hit := self._cache.get(user_id)) is not None:
            self._cache.move_to_end(user_id)
            return UserState.from_record(hit)
        reply = await retried(lambda: self._get(keys.state(user_id)), self._slot_retry)
        if not reply:
            self._cache.pop(user_id, None)
            return None
        raw = replies.as_bytes(reply)
        self._remember(user_id, raw)
        return UserState.from_record(raw)

    def _batch_pipeline(self) -> AutoPipeline | None:
        """The auto-pipeline, in a batch request's tasks on a single Redis; else None (one by one)."""
        return self._pipelined if BATCHED.get() else None

    async def _get(self, key: str) -> Any:
        pipe = self._batch_pipeline()
        return await (self.redis.get(key) if pipe is None else pipe.execute_command("GET", key))

    async def _run_advance(self, *, keys: Mapping[str, KeyT], args: Mapping[str, EncodableT]) -> lua.Reply:
        pipe = self._batch_pipeline()
        if pipe is None:
            return await self._advance(keys=keys, args=args)
        return await self._advance.through(pipe.execute_command, keys=keys, args=args)

    def _remember(self, user_id: str, encoded: bytes) -> None:
        if self._cache_users <= 0:
            return
        self._cache[user_id] = encoded
        self._cache.move_to_end(user_id)
        while len(self._cache) > self._cache_users:
            self._cache.popitem(last=False)

    async def probe(self, user_id: str, post_id: str, expected: int, now: float) -> Advance:
        """Was the post id seen (``duplicate``, its first answer), or not (``unseen``, the state still at
        ``expected``; else ``conflict``)? Atomic, as the advance it stands in for; writes nothing."""
        return await self._advance_or_probe(user_id, post_id, expected, b"", b"", now, None)

    async def advance(
        self, user_id: str, post_id: str, expected: int, state: UserState,
        result: dict[str, Any], event: dict[str, Any] | None, now: float,
    ) -> Advance:
        record = encode_record(expected + 1, state.h, state.c, state.meta())
        tail = record[record.index(b"|"):]  # the script prefixes the version it writes
        if event is not None:
            await retried(lambda: self.relay.mark(user_id), self._slot_retry)  # before the write: a crash after it is swept up
        return await self._advance_or_probe(user_id, post_id, expected, tail, timeline_codec.encode(result, now, post_id),
                                            now, event)

    async def _advance_or_probe(self, user_id: str, post_id: str, expected: int, tail: bytes, entry: bytes,
                                now: float, event: dict[str, Any] | None) -> Advance:
        for _ in range(MIGRATE_ATTEMPTS):
            reply = await retried(lambda: self._run_advance(
                keys={"state": keys.state(user_id), "timeline": keys.timeline(user_id), "seen": keys.seen(user_id),
                      "post_index": keys.post_index(user_id), "pending": keys.pending_events(user_id),
                      "alerts": keys.alerts(user_id)},
                args={"expected_version": expected, "record_tail": tail, "entry": entry,
                      "timeline_length": self._timeline_length, "idempotency_ttl": self._ttl, "now": f"{now:.6f}",
                      "event": json_codec.dumps(event) if event else "", "post_id": post_id,
                      "retention_seconds": self._retention, "index_entry": index_entry(event, now) if event else "",
                      "alerts_per_user": self._alerts_per_user, "fingerprint": timeline_codec.fingerprint(post_id)},
            ), self._slot_retry)
            if reply.status != "migrate":
                break
            await retried(lambda: self.legacy.convert(user_id), self._slot_retry)  # then write again, converted
        else:
            raise StateConflict(f"user {user_id}'s records are being rewritten by another replica; retry the post")
        if reply.status == "duplicate":
            return Advance("duplicate", prior_result=timeline_codec.decode(reply.values[0], user_id))
        if reply.status == "unseen":
            return Advance("unseen", version=expected)
        if reply.status == "conflict":
            version, current = int(reply.values[0]), reply.values[1]
            if version == 0 or not current:
                self._cache.pop(user_id, None)
                return Advance("conflict", version=version)
            self._remember(user_id, current)
            return Advance("conflict", version=version, current=UserState.from_record(current))
        version = int(reply.values[0])  # "ok"
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
        latest = replies.as_bytes(index).rsplit(b" ", 1)[-1].split(b":", 1)[1]
        raw = await guarded(self.redis.hget(keys.alerts(user_id), latest))
        return json_codec.loads(raw) if raw else None

    async def timeline(self, user_id: str, limit: int) -> list[dict[str, Any]]:
        """The user's last ``limit`` results (at most ``timeline_length``), oldest first. The list holds
        more while their post ids are inside the idempotency window: those answer retries only."""
        raw = await retried(lambda: self.redis.lrange(keys.timeline(user_id), -min(limit, self._timeline_length), -1),
                            self._slot_retry)
        return [timeline_codec.decode(item, user_id) for item in replies.members(raw)]

    async def erase(self, user_id: str) -> int:
        self._cache.pop(user_id, None)
        prefix = keys.post(user_id, "")
        removed = await guarded(self.relay.forget(user_id))  # alerts not yet delivered go too
        reply = await retried(lambda: self._erase(
            keys={"state": keys.state(user_id), "timeline": keys.timeline(user_id), "post_index": keys.post_index(user_id),
                  "pending": keys.pending_events(user_id), "user_events": keys.user_events(user_id),
                  "alerts": keys.alerts(user_id), "relay_inflight": keys.relay_inflight(user_id),
                  "seen": keys.seen(user_id)},
            args={"post_prefix": prefix}), self._slot_retry)
        # a post's write that landed between forget() and the script had marked the user (a mark precedes
        # each write with an event): its events went with the keys, its mark must too (it kept the id ~30 s)
        await guarded(self.redis.zrem(keys.relay_marks(), user_id))
        return removed + int(reply.values[0])

    async def outbox_events(self, count: int = 100) -> list[tuple[str, dict[str, Any]]]:
        raw = replies.entries(await guarded(self.redis.xrange(self.relay.stream, count=count)))
        return [(eid.decode(), json_codec.loads(fields[b"event"])) for eid, fields in raw]
