"""``emodrift timelines export --out FILE``: every user's timeline as derived features, for adapting the
temporal model to a platform's own users (``python -m model.train_temporal --timelines FILE``).

What goes out is what the service keeps per post (docs/timelines.md has the format): the 7 emotion
probabilities, the face flag, ``created_at`` and the gap to the user's previous post, the drift score and
status the served model gave, the alert type a post raised, and per user the temporal model that wrote
its state. Never an image (none is stored), never a post id or an alert's text. User ids become keyed
pseudonyms, ``"u_" + HMAC-SHA256(key, user_id)[:32 hex]``, unless ``keep_ids``: the same key gives the
same pseudonym in every export (exports join), and without the key nobody can tell who is who.

The file is gzip-compressed JSON lines: a header line, then one line per user. Why not Parquet: it would
need pyarrow (~100 MB) and buffers a row group then writes its footer at the end, so a killed export
leaves nothing readable; JSON lines stream one user at a time, and gzip members concatenate, which makes
the export resumable by truncation.

Streaming and resumable: users are enumerated with ``SCAN`` over the state keys (one cursor per Redis
node), a batch of users at a time. After each batch the gzip member is closed and a checkpoint
(``<out>.checkpoint.json``: the cursors, the bytes written so far, the counts) replaces the previous one
atomically. A rerun with the checkpoint present truncates the file to those bytes and continues from
the cursors; memory holds one batch, whatever the number of users. SCAN may return a user twice (when
Redis resizes its table mid-export): readers keep a user's last line (``model.adapt.load_timelines`` does).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import hmac
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from service import json_codec, keys
from service.emotions import LABELS
from service.state_store import StateStore, guarded
from service.timestamps import iso_time

FORMAT = "emodrift.timelines"
FORMAT_VERSION = 1
SCAN_COUNT = 1000     # keys each SCAN call examines (a user has a few): one batch, one gzip member, one checkpoint
CONCURRENT_USERS = 32  # timeline reads in flight at once
KEY_ID_MESSAGE = b"emodrift pseudonym key id"


class ExportError(Exception):
    """The export cannot start or continue as asked (the message says why and what to do)."""


@dataclass(frozen=True)
class Pseudonymizer:
    """User id -> ``u_<32 hex>`` (HMAC-SHA256 keyed); ``key=None`` keeps the ids.

    >>> p = Pseudonymizer(b"0123456789abcdef0123")
    >>> p("alice") == p("alice") != p("bob"), len(p("alice")), p.key_id == Pseudonymizer(b"0123456789abcdef0123").key_id
    (True, 34, True)
    >>> Pseudonymizer(None)("alice")
    'alice'
    """

    key: bytes | None

    def __call__(self, user_id: str) -> str:
        if self.key is None:
            return user_id
        return "u_" + hmac.new(self.key, user_id.encode(), hashlib.sha256).hexdigest()[:32]

    @property
    def key_id(self) -> str | None:
        """Names the key without revealing it: two exports with one key_id have joinable pseudonyms."""
        return None if self.key is None else hmac.new(self.key, KEY_ID_MESSAGE, hashlib.sha256).hexdigest()[:12]


def read_key_file(path: Path) -> bytes:
    key = path.read_bytes().strip()
    if len(key) < 16:
        raise ExportError(f"{path}: a pseudonym key needs 16+ bytes (e.g. `head -c 32 /dev/urandom | base64 > {path}`)")
    return key


@dataclass
class Checkpoint:
    """Where an interrupted export stands; written after every batch, removed when the export completes."""

    out: str
    key_id: str | None
    keep_ids: bool
    bytes: int = 0
    cursors: dict[str, int] = field(default_factory=dict)  # per Redis node; absent: not started
    finished: list[str] = field(default_factory=list)      # nodes whose SCAN came back to cursor 0
    users: int = 0
    posts: int = 0

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, path)  # atomic: a crash leaves the old checkpoint or the new one

    @classmethod
    def load(cls, path: Path) -> "Checkpoint":
        return cls(**json.loads(path.read_text()))


def user_line(pseudonym: str, state_model: str | None, posts_seen: int, timeline: list[dict[str, Any]],
              verdicts: dict[str, str] | None = None) -> dict[str, Any] | None:
    """One user's line (columns, one entry per post, oldest first), from the timeline's post results.
    The first kept post's gap is 0: the post before it may have left the capped timeline. ``verdicts``:
    alert id -> the verdict people gave it, written at the post that raised it (never the note).

    >>> line = user_line("u_x", "temporal:4", 3, [
    ...     {"created_at": "2026-01-01T00:00:00.000000Z", "post_id": "p1", "emotion": {"probabilities":
    ...      dict(zip(LABELS, [0, 0, 0, 1, 0, 0, 0])), "face_detected": True}, "drift": {"score": 0.1, "status": "warming_up"}},
    ...     {"created_at": "2026-01-01T02:00:00.000000Z", "post_id": "p2", "emotion": {"probabilities":
    ...      dict(zip(LABELS, [0, 0, 0, 0, 1, 0, 0])), "face_detected": False}, "drift": {"score": 0.2, "status": "warming_up"},
    ...      "alert": {"type": "drift.started", "user_id": "alice"}}])
    >>> line["gap_seconds"], line["face"], line["alert"], "p1" in str(line), "alice" in str(line)
    ([0.0, 7200.0], [True, False], [None, 'drift.started'], False, False)
    >>> line["verdict"]
    [None, None]
    """
    if not timeline:
        return None
    verdicts = verdicts or {}
    created, gaps, probs, face, score, status, alert, verdict = [], [], [], [], [], [], [], []
    latest: float | None = None
    for post in timeline:
        ts = _unix(post["created_at"])
        gaps.append(0.0 if latest is None else round(max(ts - latest, 0.0), 3))  # as the service steps it
        latest = ts if latest is None else max(latest, ts)
        created.append(post["created_at"])
        emotion = post["emotion"]
        probs.append([round(float(emotion["probabilities"][label]), 6) for label in LABELS])
        face.append(bool(emotion.get("face_detected", True)))
        score.append(post.get("drift", {}).get("score"))
        status.append(post.get("drift", {}).get("status"))
        alert.append((post.get("alert") or {}).get("type"))
        verdict.append(verdicts.get((post.get("alert") or {}).get("id", "")))
    return {"user": pseudonym, "temporal_model": state_model, "posts_seen": posts_seen, "n": len(timeline),
            "created_at": created, "gap_seconds": gaps, "probs": probs, "face": face, "score": score,
            "status": status, "alert": alert, "verdict": verdict}


def judged(alerts: Mapping[bytes | str, bytes | str]) -> dict[str, str]:
    """alert id -> verdict, of a user's alerts hash (``keys.alerts``: the ``index`` field aside)."""
    found = {}
    for raw_id, raw in alerts.items():
        alert_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
        if alert_id != "index" and (verdict := json_codec.loads(raw).get("verdict")):
            found[alert_id] = str(verdict)
    return found


def _unix(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def scan_nodes(redis: aioredis.Redis) -> dict[str, aioredis.Redis]:
    """The clients to SCAN, by a stable name: the one server, or each primary of a Redis Cluster (a
    cluster client learns its nodes on its first command: initialised here first)."""
    if isinstance(redis, RedisCluster):
        await redis.initialize()
        return {node.name: aioredis.Redis(host=node.host, port=node.port) for node in redis.get_primaries()}
    return {"redis": redis}


class Progress:
    """A one-line counter on stderr, only on a terminal (users and posts so far, and the rate)."""

    def __init__(self, stream: IO[str] | None = None, every: float = 0.2) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self.started = self.last = time.monotonic()
        self.every = every

    def update(self, users: int, posts: int, final: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not final and now - self.last < self.every):
            return
        self.last = now
        rate = users / max(now - self.started, 1e-9)
        self.stream.write(f"\rexported {users:,} users, {posts:,} posts ({rate:,.0f} users/s)" + ("\n" if final else ""))
        self.stream.flush()


@dataclass(frozen=True)
class Summary:
    users: int
    posts: int
    resumed: bool
    out: Path


async def export(
    redis: aioredis.Redis, store: StateStore, out: Path, pseudonym: Pseudonymizer, *, timeline_length: int,
    header_extra: dict[str, Any] | None = None, checkpoint_path: Path | None = None,
    progress: Progress | None = None, scan_count: int = SCAN_COUNT,
    after_batch: Callable[[Checkpoint], None] | None = None,
) -> Summary:
    """Write (or continue) the export to ``out``; see the module docstring. ``after_batch`` is called
    with each saved checkpoint (the tests interrupt an export there)."""
    checkpoint_path = checkpoint_path or out.with_name(out.name + ".checkpoint.json")
    resumed = checkpoint_path.exists()
    if resumed:
        cp = _resume(out, checkpoint_path, pseudonym)
    else:
        header = {"format": FORMAT, "format_version": FORMAT_VERSION,
                  "exported_at": iso_time(time.time()), "labels": list(LABELS),
                  "pseudonymised": pseudonym.key is not None, "key_id": pseudonym.key_id,
                  "timeline_length": timeline_length, **(header_extra or {})}
        cp = _begin(out, checkpoint_path, pseudonym, header)
    batches = _Batches(store, out, checkpoint_path, pseudonym, timeline_length, progress or Progress(), after_batch)
    try:
        nodes = await scan_nodes(redis)
        for name, node in sorted(nodes.items()):
            if name not in cp.finished:
                await batches.scan(node, name, cp, scan_count)
    except BaseException:
        if not resumed and cp.users == 0:
            # Nothing worth resuming (a header at most): left behind, the file and checkpoint would
            # tie the next run to this one's key, or refuse a corrected command (another key) for it.
            out.unlink(missing_ok=True)
            checkpoint_path.unlink(missing_ok=True)
        raise
    for name, node in nodes.items():
        if node is not redis:
            await node.aclose()
    batches.progress.update(cp.users, cp.posts, final=True)
    checkpoint_path.unlink()
    return Summary(cp.users, cp.posts, resumed, out)


def _resume(out: Path, checkpoint_path: Path, pseudonym: Pseudonymizer) -> Checkpoint:
    """The checkpoint of an interrupted export, its file cut back to what the checkpoint vouches for."""
    cp = Checkpoint.load(checkpoint_path)
    if (cp.key_id, cp.keep_ids) != (pseudonym.key_id, pseudonym.key is None):
        raise ExportError(f"an earlier export to {out} stopped before it finished, and its checkpoint "
                          f"{checkpoint_path} was written with another pseudonym key (or --keep-ids): rerun "
                          "with that key to continue it, or delete the checkpoint and the file to start over")
    if not out.exists() or out.stat().st_size < cp.bytes:
        raise ExportError(f"{out} is shorter than its checkpoint says ({cp.bytes} bytes): delete "
                          f"{checkpoint_path} and {out} to start over")
    with out.open("r+b") as handle:
        handle.truncate(cp.bytes)  # drop what a killed run wrote after its last checkpoint
    return cp


def _begin(out: Path, checkpoint_path: Path, pseudonym: Pseudonymizer, header: dict[str, Any]) -> Checkpoint:
    """A new export: the header line written, and the first checkpoint saved."""
    if out.exists():
        raise ExportError(f"{out} exists and has no checkpoint ({checkpoint_path}): choose another --out "
                          "or delete it")
    cp = Checkpoint(out=str(out), key_id=pseudonym.key_id, keep_ids=pseudonym.key is None)
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(out, "wb") as gz:
        gz.write(json_codec.dumps(header) + b"\n")
    cp.bytes = out.stat().st_size
    cp.save(checkpoint_path)
    return cp


@dataclass
class _Batches:
    """One SCAN batch of users at a time: their lines appended as one gzip member, then a checkpoint."""

    store: StateStore
    out: Path
    checkpoint_path: Path
    pseudonym: Pseudonymizer
    timeline_length: int
    progress: Progress
    after_batch: Callable[[Checkpoint], None] | None
    limit: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(CONCURRENT_USERS))

    async def scan(self, node: aioredis.Redis, name: str, cp: Checkpoint, scan_count: int) -> None:
        """Every user on ``node`` from its saved cursor on."""
        cursor = cp.cursors.get(name, 0)
        while True:
            cursor, found = await node.scan(cursor=cursor, match=keys.STATE_PATTERN, count=scan_count)
            users = [keys.user_of_state(key) for key in found]
            lines = await asyncio.gather(*(self.line(user) for user in users))
            read = [(user, line) for user, line in zip(users, lines) if line is not None]
            # a user erased after their read and before the batch's write: their erasure answered 204 first,
            # and the line went out after it (a re-audit: 5 of 276 users erased during an export). Gone, or
            # fewer posts seen than were read (erased, then posted again: a new user under the same id)
            now = await asyncio.gather(*(self.posts_seen(user) for user, _ in read))
            written = [(data, n) for (_, (data, n, seen)), current in zip(read, now) if current >= seen]
            self.append(written)
            cursor = int(cursor)
            self.checkpoint(cp, name, cursor, written)
            if cursor == 0:
                break

    async def line(self, user_id: str) -> tuple[bytes, int, int] | None:
        """The user's encoded line, its post count and the posts seen by the state read (None: no state, or
        an empty timeline)."""
        async with self.limit:
            state = await self.store.load(user_id)
            timeline = await self.store.timeline(user_id, self.timeline_length)
            alerts = await guarded(self.store.redis.hgetall(keys.alerts(user_id))) if state is not None else {}
        if state is None:  # erased or expired between SCAN and the read
            return None
        line = user_line(self.pseudonym(user_id), state.model, state.posts_seen, timeline, judged(alerts))
        return None if line is None else (json_codec.dumps(line) + b"\n", line["n"], state.posts_seen)

    async def posts_seen(self, user_id: str) -> int:
        """The posts the user's state has seen now; -1 when there is none."""
        async with self.limit:
            state = await self.store.load(user_id)
        return -1 if state is None else state.posts_seen

    def append(self, written: list[tuple[bytes, int]]) -> None:
        if not written:
            return
        with self.out.open("ab") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb") as gz:  # one member per batch
                for line, _ in written:
                    gz.write(line)
            raw.flush()
            os.fsync(raw.fileno())  # on disk before the checkpoint says so

    def checkpoint(self, cp: Checkpoint, name: str, cursor: int, written: list[tuple[bytes, int]]) -> None:
        cp.bytes = self.out.stat().st_size
        cp.users += len(written)
        cp.posts += sum(n for _, n in written)
        if cursor == 0:
            cp.finished.append(name)
            cp.cursors.pop(name, None)
        else:
            cp.cursors[name] = cursor
        cp.save(self.checkpoint_path)
        self.progress.update(cp.users, cp.posts)
        if self.after_batch is not None:
            self.after_batch(cp)
