"""Compact per-user storage (issue 17): the timeline entry is the idempotency record, a few dozen bytes,
and it gives back the first answer byte for byte; the window expires by age; records written in the
format before are read as they are and converted on the user's next write, losing nothing."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import httpx
import numpy as np
import redis
import redis.asyncio as aioredis

from service import json_codec, keys, timeline_codec
from service.embedded_redis import EmbeddedRedis
from service.state_store import StateStore, UserState, encode_record
from service.emotions import LABELS
from tests.conftest import recorded_posts
from tests.legacy_format import OLD_ADVANCE

HAPPY = {"angry": 0.02, "disgust": 0.01, "fear": 0.02, "happy": 0.85, "sad": 0.03, "surprise": 0.04, "neutral": 0.03}
SAD = {"angry": 0.08, "disgust": 0.02, "fear": 0.1, "happy": 0.02, "sad": 0.7, "surprise": 0.01, "neutral": 0.07}


def _state(version: int = 0) -> UserState:
    return UserState(version=version, h=np.zeros(8, np.float32), c=np.ones(8, np.float32), model="temporal:1",
                     posts_seen=version, baseline=[1 / 7] * 7, recent=[1 / 7] * 7, detector={"status": "stable"})


def _result(user: str, post: str, n: int, alert: dict[str, Any] | None = None) -> dict[str, Any]:
    """A result of the pipeline's shape, with values as it rounds them."""
    rng = np.random.default_rng(n)
    p = rng.dirichlet(np.ones(7))
    return {"user_id": user, "post_id": post, "created_at": f"2026-11-0{1 + n % 9}T10:{n % 60:02d}:00.{n:06d}Z",
            "duplicate": False,
            "emotion": {"label": LABELS[int(np.argmax(p))], "probabilities": {k: round(float(v), 6) for k, v in zip(LABELS, p)},
                        "face_detected": n % 2 == 0},
            "drift": {"score": round(float(rng.random()), 6), "status": ("warming_up", "stable", "drifting")[n % 3],
                      "posts_seen": n},
            "alert": alert}


def _store(url: str, *, timeline: int = 3, ttl: int = 3600) -> tuple[aioredis.Redis, StateStore]:
    client = aioredis.Redis.from_url(url)
    return client, StateStore(client, outbox="ed:outbox", outbox_maxlen=1000, timeline_length=timeline,
                              idempotency_ttl=ttl)


def test_answers_and_timeline_are_the_first_answers_byte_for_byte(client: httpx.Client, redis_client: redis.Redis) -> None:
    firsts = []
    for i, mood in enumerate([HAPPY] * 40 + [SAD] * 12):  # the sad spell raises drift.started
        response = client.post("/v1/users/bea/observations", json={"post_id": f"bea-{i}", "probabilities": mood})
        assert response.status_code == 200, response.text
        firsts.append(response)
    with_alert = [r for r in firsts if r.json()["alert"]]
    assert with_alert, "the episode raised no alert"
    timeline = client.get("/v1/users/bea/timeline", params={"limit": 1000}).json()["posts"]
    assert [json_codec.dumps(p) for p in timeline] == [r.content for r in firsts]
    for first in firsts[:3] + with_alert + firsts[-3:]:
        again = client.post("/v1/users/bea/observations", json={"post_id": first.json()["post_id"], "probabilities": SAD})
        assert again.content == first.content.replace(b'"duplicate":false', b'"duplicate":true', 1)
    # compact: the header, the post id, 33 bytes of result; JSON only behind the one that carries an alert
    for entry, first in zip(redis_client.lrange(keys.timeline("bea"), 0, -1), firsts):
        size = 6 + len(first.json()["post_id"]) + 33
        assert entry[0] == timeline_codec.COMPACT_SOURCED  # with the post's source (an observation)
        assert len(entry) == size if not first.json()["alert"] else len(entry) > size
    assert len(redis_client.get(keys.seen("bea"))) == 4 * len(firsts)


def test_results_of_any_shape_round_trip(redis_server: EmbeddedRedis) -> None:
    alert = {"id": "evt_1", "type": "drift.started", "score": 0.9, "evidence_post_ids": ["a", "b"], "status": "open"}
    results = [_result("u", "a", 1), _result("u", "b", 2, alert), _result("u", "c", 3),
               {"n": 4, "odd": [1.5]},  # not the pipeline's shape: kept as JSON
               {**_result("u", "e", 5), "drift": {"score": 0.1234567, "status": "stable", "posts_seen": 5}}]

    async def body() -> None:
        client, store = _store(redis_server.url, timeline=10)
        try:
            await client.flushall()
            for n, result in enumerate(results):
                assert (await store.advance("u", "abcde"[n], n, _state(n), result, None, 1000.0 + n)).outcome == "ok"
            assert await store.timeline("u", 10) == results
            raw = await client.lrange(keys.timeline("u"), 0, -1)
            assert [entry[0] for entry in raw] == [1, 1, 1, 2, 2]  # 0.1234567 is off the 6-decimal grid
            for n, result in enumerate(results):
                dup = await store.advance("u", "abcde"[n], 5, _state(5), {"other": True}, None, 2000.0)
                assert dup.outcome == "duplicate" and json_codec.dumps(dup.prior_result) == json_codec.dumps(result)
        finally:
            await client.aclose()

    asyncio.run(body())


def test_the_window_expires_by_age_and_old_entries_leave(redis_server: EmbeddedRedis, redis_client: redis.Redis) -> None:
    async def body() -> None:
        client, store = _store(redis_server.url, timeline=3, ttl=60)
        try:
            await client.flushall()
            for n in range(1, 6):  # within the window: all five kept, the timeline shows three
                assert (await store.advance("u", f"p{n}", n - 1, _state(n - 1), _result("u", f"p{n}", n), None,
                                           999.0 + n)).outcome == "ok"
            assert recorded_posts(redis_client, "u") == ["p1", "p2", "p3", "p4", "p5"]
            assert [r["post_id"] for r in await store.timeline("u", 50)] == ["p3", "p4", "p5"]
            assert (await store.advance("u", "p1", 5, _state(5), _result("u", "p1", 9), None, 1059.5)).outcome == "duplicate"
            # p1 (written at 1000) and p2 (1001) are past the window at 1061: a new post drops them
            assert (await store.advance("u", "p6", 5, _state(5), _result("u", "p6", 6), None, 1061.0)).outcome == "ok"
            assert recorded_posts(redis_client, "u") == ["p3", "p4", "p5", "p6"]
            assert len(redis_client.get(keys.seen("u"))) == 4 * 4
            again = await store.advance("u", "p1", 6, _state(6), _result("u", "p1", 7), None, 1062.0)
            assert again.outcome == "ok"  # as when its record expired: a post id past the window is new
            # past the window but still shown in the timeline: p4 answers as new too
            late = await store.advance("u", "p4", 7, _state(7), _result("u", "p4", 8), None, 1070.0)
            assert late.outcome == "ok"
        finally:
            await client.aclose()

    asyncio.run(body())


def test_a_fingerprint_collision_is_no_duplicate(redis_server: EmbeddedRedis) -> None:
    by_print: dict[bytes, str] = {}
    for i in itertools.count():  # a birthday search: ~80k ids for 4 bytes
        pid = f"c{i}"
        if (other := by_print.setdefault(timeline_codec.fingerprint(pid), pid)) != pid:
            break
    ids = [other, pid]

    async def body() -> None:
        client, store = _store(redis_server.url, timeline=10)
        try:
            await client.flushall()
            for n, post in enumerate(ids):
                assert (await store.advance("u", post, n, _state(n), _result("u", post, n), None, 1000.0)).outcome == "ok"
            for n, post in enumerate(ids):
                dup = await store.advance("u", post, 2, _state(2), _result("u", post, 9), None, 1001.0)
                assert dup.outcome == "duplicate" and dup.prior_result == _result("u", post, n)
        finally:
            await client.aclose()

    asyncio.run(body())


def _write_old(r: redis.Redis, user: str, n: int, result: dict[str, Any], now: float, *, timeline: int,
               ttl: int) -> None:
    """One step written by the version before issue 17 (its script, verbatim)."""
    record = encode_record(n, np.zeros(8, np.float32), np.ones(8, np.float32), _state(n).meta())
    reply = r.register_script(OLD_ADVANCE)(
        keys=[keys.state(user), keys.timeline(user), keys.post(user, result["post_id"]), keys.post_index(user),
              keys.pending_events(user), keys.alerts(user)],
        args=[n - 1, record[record.index(b"|"):], json_codec.dumps(result), timeline, ttl, f"{now:.6f}", "",
              result["post_id"], 90 * 86400, "", 100])
    assert reply[0] == b"ok"


def test_records_of_the_old_format_are_read_then_converted_on_the_next_write(
        redis_server: EmbeddedRedis, redis_client: redis.Redis) -> None:
    now = time.time()
    alert = {"id": "evt_9", "type": "drift.started", "score": 0.8, "status": "open"}
    results = [_result("old", f"p{n}", n, alert if n == 4 else None) for n in range(1, 6)]
    for n, result in enumerate(results, start=1):
        _write_old(redis_client, "old", n, result, now - 100 + n, timeline=3, ttl=3600)
    # p3's record has expired (its index entry goes with it, as the old script's ZREMRANGEBYSCORE did)
    redis_client.delete(keys.post("old", "p3"))
    redis_client.zrem(keys.post_index("old"), "p3")
    old_keys = sorted(redis_client.keys("ed:{old}:*"))
    assert redis_client.lindex(keys.timeline("old"), 0)[:1] == b"{"

    async def body() -> None:
        client, store = _store(redis_server.url, timeline=3, ttl=3600)
        try:
            # read as they are: nothing written
            assert await store.timeline("old", 10) == results[2:]
            assert sorted(redis_client.keys("ed:{old}:*")) == old_keys
            # the next write converts first, then answers: p1 lives only in its old record
            dup = await store.advance("old", "p1", 5, _state(5), _result("old", "p1", 99), None, now)
            assert dup.outcome == "duplicate" and json_codec.dumps(dup.prior_result) == json_codec.dumps(results[0])
            assert not redis_client.exists(keys.post_index("old"), *[keys.post("old", f"p{n}") for n in range(1, 6)])
            assert recorded_posts(redis_client, "old") == ["p1", "p2", "p3", "p4", "p5"]
            assert all(entry[:1] != b"{" for entry in redis_client.lrange(keys.timeline("old"), 0, -1))
            assert len(redis_client.get(keys.seen("old"))) == 4 * 5
            retention = 90 * 86400
            assert retention - 200 <= redis_client.ttl(keys.seen("old")) <= retention
            assert await store.timeline("old", 10) == results[2:]
            for n in (2, 4, 5):  # the alert's result too, byte for byte
                dup = await store.advance("old", f"p{n}", 5, _state(5), _result("old", "x", 0), None, now)
                assert json_codec.dumps(dup.prior_result) == json_codec.dumps(results[n - 1])
            # p3's window had ended: a new post, applied on the converted records
            p3 = _result("old", "p3", 6)
            assert (await store.advance("old", "p3", 5, _state(5), p3, None, now)).outcome == "ok"
            assert await store.timeline("old", 10) == [results[3], results[4], p3]
            # erasure leaves nothing of either format
            _write_old(redis_client, "old", 7, _result("old", "p7", 7), now, timeline=3, ttl=3600)
            await store.erase("old")
            assert redis_client.keys("ed:{old}*") == []
        finally:
            await client.aclose()

    asyncio.run(body())


def test_a_replica_of_the_old_version_writing_meanwhile_loses_nothing(
        redis_server: EmbeddedRedis, redis_client: redis.Redis) -> None:
    """A rolling upgrade: old and new replicas write the same user in turns; every write stays."""
    now = time.time()
    written = []

    async def body() -> None:
        client, store = _store(redis_server.url, timeline=10, ttl=3600)
        try:
            for n in range(1, 9):
                result = _result("mix", f"p{n}", n)
                if n % 3 == 0:
                    _write_old(redis_client, "mix", n, result, now + n, timeline=10, ttl=3600)
                else:
                    assert (await store.advance("mix", f"p{n}", n - 1, _state(n - 1), result, None, now + n)).outcome == "ok"
                written.append(result)
            assert await store.timeline("mix", 10) == written
            for n, result in enumerate(written, start=1):
                dup = await store.advance("mix", f"p{n}", 8, _state(8), _result("mix", "x", 0), None, now + 9)
                assert dup.outcome == "duplicate" and dup.prior_result == result
            assert recorded_posts(redis_client, "mix") == [f"p{n}" for n in range(1, 9)]
        finally:
            await client.aclose()

    asyncio.run(body())
