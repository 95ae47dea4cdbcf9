"""A user's records in the format before issue 17, converted on the user's next write.

Before, a post cost a JSON copy of its result in the timeline, another under ``keys.post`` for seven
days (the idempotency record) and its id in ``keys.post_index``: ~1 KB per post. The advance script
refuses to write over such records (its ``'migrate'`` answer); the caller converts them here and
writes again. Nothing is lost on the way: every timeline entry becomes a compact one (timeline_codec,
exact), and every post id still inside its idempotency window keeps its first answer and its
window, whether its result was still in the timeline or only in its record. Old keys are deleted.

The conversion is computed from what was read and written only if the user's state version has not
moved meanwhile (a compare-and-set like every write), so a replica of the older version writing at
the same time costs a retry, never a lost entry; that replica's next write is converted again.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from service import json_codec, keys, lua, replies, timeline_codec


def convert_entries(entries: list[bytes], index: list[tuple[str, float]], records: list[bytes | None],
                    idempotency_ttl: int) -> list[bytes]:
    """The user's new timeline from the old one (``entries``, oldest first), the post index
    (post id, expiry of its record) and the records of its ids (None: expired)."""
    written = {pid: max(0, int(expiry) - idempotency_ttl) for pid, expiry in index}
    record_of = dict(zip((pid for pid, _ in index), records))
    in_timeline = {timeline_codec.post_id(entry) for entry in entries}
    # the ids past the timeline still answered as duplicates: older than every timeline entry
    out = [timeline_codec.encode(json_codec.loads(record), written[pid], pid)
           for pid, _ in sorted(index, key=lambda item: item[1])
           if (record := record_of[pid]) is not None and pid not in in_timeline]
    last_of = {timeline_codec.post_id(entry): i for i, entry in enumerate(entries)}
    for i, entry in enumerate(entries):
        if entry[:1] != b"{":  # already compact (written by this version)
            out.append(entry)
            continue
        result = json_codec.loads(entry)
        pid = str(result.get("post_id", ""))
        # only a post id's latest entry carries its idempotency window; an earlier one has expired
        out.append(timeline_codec.encode(result, written.get(pid, 0) if last_of.get(pid) == i else 0, pid))
    return out


class LegacyRecords:
    def __init__(self, redis: aioredis.Redis, *, idempotency_ttl: int, retention_seconds: int) -> None:
        self.redis = redis
        self._ttl, self._retention = idempotency_ttl, retention_seconds
        self._convert = lua.LEGACY_CONVERT.bind(redis)  # service/lua/legacy_convert.lua

    async def convert(self, user_id: str) -> bool:
        """Rewrite the user's records in the compact format; False if a write came between (retry).
        Redis errors propagate: the caller maps them (state_store.guarded)."""
        state = await (self.redis.get(keys.state(user_id)))
        version = int(replies.as_bytes(state).split(b"|", 1)[0]) if state else 0
        entries = replies.members(await (self.redis.lrange(keys.timeline(user_id), 0, -1)))
        index = [(member.decode(), score) for member, score in
                 replies.scored(await (self.redis.zrange(keys.post_index(user_id), 0, -1, withscores=True)))]
        record_keys = [keys.post(user_id, pid) for pid, _ in index]
        records = replies.values(await (self.redis.mget(record_keys))) if record_keys else []
        new = convert_entries(entries, index, records, self._ttl)
        seen = b"".join(timeline_codec.fingerprint(timeline_codec.post_id(entry) or "") for entry in new)
        reply = await self._convert(
            keys={"state": keys.state(user_id), "timeline": keys.timeline(user_id), "seen": keys.seen(user_id),
                  "post_index": keys.post_index(user_id)}, key_tail=record_keys,
            args={"version": version, "retention_seconds": self._retention, "seen": seen}, arg_tail=new)
        return reply.status == "ok"
