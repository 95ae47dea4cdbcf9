"""Redis replies as the service's clients return them, typed for the type checker.

redis-py annotates each reply for every way a client can be built: ``bytes | str`` (with or without
``decode_responses``), lists or tuples (RESP2 or RESP3), ``None`` for a stream entry deleted under a
reader. The service builds its clients without ``decode_responses`` (``connect_redis`` in
service/app.py), so strings come back as bytes: these functions say so in one place. The one-value
ones also take ``str``, which a decoding client would give; the structured ones are casts, not
checks, since walking a whole reply on the hot path to re-prove it would cost more than it tells.
"""

from __future__ import annotations

from typing import cast

Fields = dict[bytes, bytes]  # a hash (HGETALL) or a stream entry's fields
Entry = tuple[bytes, Fields]  # (stream id, fields) of XRANGE, XREADGROUP, XAUTOCLAIM


def as_bytes(reply: bytes | str) -> bytes:
    return reply if isinstance(reply, bytes) else reply.encode()


def text(reply: bytes | str) -> str:
    return reply.decode() if isinstance(reply, bytes) else reply


def fields(reply: object) -> Fields:
    """HGETALL's reply."""
    return cast(Fields, reply)


def entries(reply: object) -> list[Entry]:
    """XRANGE's reply, or one stream's entries in XREADGROUP's or XAUTOCLAIM's."""
    return cast(list[Entry], reply)


def members(reply: object) -> list[bytes]:
    """ZRANGE's (or LRANGE's) reply without scores."""
    return cast(list[bytes], reply)


def scored(reply: object) -> list[tuple[bytes, float]]:
    """ZRANGE's or ZRANGEBYSCORE's reply ``withscores=True``: (member, score) pairs."""
    return cast(list[tuple[bytes, float]], reply)


def values(reply: object) -> list[bytes | None]:
    """MGET's reply (None: no such key)."""
    return cast("list[bytes | None]", reply)


def streams(reply: object) -> list[tuple[bytes, list[Entry]]]:
    """XREAD's or XREADGROUP's reply: (stream, its entries) for each stream read (RESP2's shape);
    empty when the block timed out (redis-py answers None or [])."""
    return cast("list[tuple[bytes, list[Entry]]]", reply or [])
