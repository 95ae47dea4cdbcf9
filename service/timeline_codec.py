"""A post's result as kept in its user's timeline: a few dozen bytes, decoded back to the same JSON.

The timeline entry is also the post id's idempotency record (state_store.py): a retry is answered
with the entry its first write left, so the entry must give back the first answer byte for byte.
It can, because every number in an answer is already rounded: probabilities and the drift score to
6 decimals (an integer below 2**20 millionths each), the time to the microsecond, and the labels and
statuses come from short fixed lists. A result the compact form cannot hold exactly (another shape,
a value off those grids) is kept as JSON behind the same header instead, never approximated.

Layout (big-endian)::

    tag u8 | received u32 (unix s) | len(post_id) u8 | post_id | body
    tag 1: flags u8 (face_detected, alert, label index, status index) | created_at µs i64 |
           posts_seen u32 | 7 probabilities + score, 20 bits each (20 bytes) | alert JSON if flagged
    tag 2: the result as JSON
    tag 3: tag 1 with the post's source (emotion.source): flags bit 7 set for an observation. Tag 1 is
           a result written before the source was kept (no ``source`` key), decoded as it was written.

``received`` (when the post was written, not its ``created_at``) dates the idempotency window; the
advance script reads it and the post id at these fixed offsets (keep them in step with ADVANCE).
A timeline entry written before this format is the result's JSON itself (it starts with ``{``).

>>> entry = encode({"user_id": "u", "post_id": "p1", "created_at": "2026-01-02T03:04:05.000006Z",
...     "duplicate": False, "emotion": {"label": "happy", "probabilities": dict(zip(LABELS,
...     [0.1, 0.0, 0.05, 0.7, 0.05, 0.05, 0.05])), "face_detected": True},
...     "drift": {"score": 0.123456, "status": "stable", "posts_seen": 12}, "alert": None}, 1767323045.9, "p1")
>>> entry[0], len(entry), decode(entry, "u")["drift"], received(entry), post_id(entry)
(1, 41, {'score': 0.123456, 'status': 'stable', 'posts_seen': 12}, 1767323045, 'p1')
"""

from __future__ import annotations

import hashlib
import struct
import time
from datetime import datetime, timedelta, timezone
from typing import Any, cast

from service import json_codec
from service.emotions import LABELS

COMPACT, AS_JSON, COMPACT_SOURCED = 1, 2, 3
SOURCES = ("image", "observation")  # flags bit 7 of a tag 3 entry
EMOTION_KEYS = (["label", "probabilities", "face_detected"], ["label", "probabilities", "face_detected", "source"])
STATUSES = ("warming_up", "stable", "drifting")  # drift.Status, in a fixed order: indexes are stored
SCALE = 1_000_000  # the answers' 6 decimals
BITS = 20  # SCALE < 2**20
HEADER = struct.Struct(">BIB")  # tag, received, len(post_id)
FIXED = struct.Struct(">BqI")  # flags, created_at µs, posts_seen
PACKED = (len(LABELS) + 1) * BITS // 8  # 7 probabilities and the score
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
RESULT_KEYS = ["user_id", "post_id", "created_at", "duplicate", "emotion", "drift", "alert"]


def fingerprint(post_id: str) -> bytes:
    """4 bytes standing for a post id in the user's list of seen ids (a match is checked against the
    entry's own post id, so a collision costs one more look, never a wrong answer)."""
    return hashlib.blake2b(post_id.encode(), digest_size=4).digest()


def _micros(iso: str) -> int:
    return (datetime.fromisoformat(iso.replace("Z", "+00:00")) - EPOCH) // timedelta(microseconds=1)


def _iso(micros: int) -> str:
    """timestamps.iso_time's shape, from whole microseconds (a few times faster than via datetime: a
    timeline page decodes hundreds; encode() checks the two agree for every entry it writes)."""
    seconds, fraction = divmod(micros, 1_000_000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{fraction:06d}Z"


def _pack(values: list[float]) -> bytes | None:
    """20 bits per value, or None if one is not an exact multiple of 1e-6 in [0, 1]."""
    acc = 0
    for value in values:
        n = round(value * SCALE)
        if not (0 <= n < 1 << BITS) or n / SCALE != value:
            return None
        acc = acc << BITS | n
    return acc.to_bytes(PACKED, "big")


MASK = (1 << BITS) - 1
SHIFTS = tuple(BITS * i for i in reversed(range(PACKED * 8 // BITS)))


def _unpack(raw: bytes) -> list[float]:
    acc = int.from_bytes(raw, "big")
    return [(acc >> shift & MASK) / SCALE for shift in SHIFTS]


def _compact(result: dict[str, Any]) -> tuple[int, bytes] | None:
    """(tag, body) of the compact form, or None when the result does not fit it exactly."""
    try:
        emotion, drift = result["emotion"], result["drift"]
        if (list(result) != RESULT_KEYS or list(emotion) not in EMOTION_KEYS or tuple(emotion["probabilities"]) != LABELS
                or result["duplicate"] is not False):
            return None
        packed = _pack([*emotion["probabilities"].values(), drift["score"]])
        label, status = LABELS.index(emotion["label"]), STATUSES.index(drift["status"])
        sourced = "source" in emotion
        flags = (bool(emotion["face_detected"]) | (result["alert"] is not None) << 1 | label << 2 | status << 5
                 | (sourced and SOURCES.index(emotion["source"])) << 7)
        if packed is None or not 0 <= drift["posts_seen"] < 1 << 32:
            return None
        body = FIXED.pack(flags, _micros(result["created_at"]), drift["posts_seen"]) + packed
    except (KeyError, TypeError, ValueError, AttributeError, struct.error):
        return None
    return (COMPACT_SOURCED if sourced else COMPACT,
            body + (json_codec.dumps(result["alert"]) if result["alert"] is not None else b""))


def encode(result: dict[str, Any], received_at: float, post_id: str) -> bytes:
    """The timeline entry of ``result`` for ``post_id``, written at ``received_at`` (unix seconds)."""
    pid = post_id.encode()
    compact = _compact(result)
    head = HEADER.pack(compact[0] if compact is not None else AS_JSON, int(received_at), len(pid)) + pid
    if compact is not None:
        entry = head + compact[1]
        # the answer a retry gets must be the first one byte for byte: checked, not assumed
        if result["post_id"] == post_id and json_codec.dumps(decode(entry, result["user_id"])) == json_codec.dumps(result):
            return entry
        head = HEADER.pack(AS_JSON, int(received_at), len(pid)) + pid
    return head + json_codec.dumps(result)


def received(entry: bytes) -> int:
    """When the entry's post was written (unix seconds; 0 for an entry of the JSON-only format)."""
    return 0 if entry[:1] == b"{" else HEADER.unpack_from(entry)[1]


def post_id(entry: bytes) -> str | None:
    if entry[:1] == b"{":
        return cast("str | None", json_codec.loads(entry).get("post_id"))  # orjson parses to Any
    size = entry[5]
    return entry[6:6 + size].decode()


def decode(entry: bytes, user_id: str) -> dict[str, Any]:
    """The result the entry was written from (an entry of any format)."""
    if entry[:1] == b"{":  # written before this format
        return cast("dict[str, Any]", json_codec.loads(entry))
    tag, _, size = HEADER.unpack_from(entry)
    start = HEADER.size + size
    if tag == AS_JSON:
        return cast("dict[str, Any]", json_codec.loads(entry[start:]))
    flags, micros, posts_seen = FIXED.unpack_from(entry, start)
    values = _unpack(entry[start + FIXED.size:start + FIXED.size + PACKED])
    rest = entry[start + FIXED.size + PACKED:]
    return {
        "user_id": user_id,
        "post_id": entry[HEADER.size:start].decode(),
        "created_at": _iso(micros),
        "duplicate": False,
        "emotion": {"label": LABELS[flags >> 2 & 7], "probabilities": dict(zip(LABELS, values[:-1])),
                    "face_detected": bool(flags & 1),
                    **({"source": SOURCES[flags >> 7]} if tag == COMPACT_SOURCED else {})},
        "drift": {"score": values[-1], "status": STATUSES[flags >> 5 & 3], "posts_seen": posts_seen},
        "alert": json_codec.loads(rest) if flags & 2 else None,
    }
