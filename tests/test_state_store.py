"""The atomic advance script against a real redis-server: CAS, idempotency, timeline cap, erase."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import numpy as np
import pytest
import redis
import redis.asyncio as aioredis

from service import keys, timeline_codec
from service.embedded_redis import EmbeddedRedis
from service.errors import StoreUnavailable
from service.state_store import StateStore, UserState, encode_record
from tests.conftest import recorded_posts


def _state(version: int = 0, posts: int = 0) -> UserState:
    rng = np.random.default_rng(version)
    return UserState(version=version, h=rng.standard_normal(8).astype(np.float32),
                     c=rng.standard_normal(8).astype(np.float32), model="temporal:1", posts_seen=posts,
                     baseline=[1 / 7] * 7, recent=[1 / 7] * 7, detector={"status": "stable"})


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


async def _with_store(url: str, fn, **kwargs):  # type: ignore[no-untyped-def]
    client = aioredis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    store = StateStore(client, outbox="ed:outbox", outbox_maxlen=1000, timeline_length=kwargs.get("timeline", 3),
                       idempotency_ttl=kwargs.get("ttl", 3600), cache_users=kwargs.get("cache", 0))
    try:
        return await fn(store)
    finally:
        await client.aclose()


def test_state_round_trips_through_redis(redis_server: EmbeddedRedis, redis_client: redis.Redis) -> None:
    state = _state()

    async def body(store: StateStore) -> UserState | None:
        assert await store.load("u1") is None
        outcome = await store.advance("u1", "p1", 0, state, {"post_id": "p1"}, None, 1000.0)
        assert outcome.outcome == "ok" and outcome.version == 1 and outcome.event_id is None
        return await store.load("u1")

    loaded = run(_with_store(redis_server.url, body))
    assert loaded is not None and loaded.version == 1
    np.testing.assert_array_equal(loaded.h, state.h)
    np.testing.assert_array_equal(loaded.c, state.c)
    assert loaded.meta() == state.meta()
    # the timeline entry is the post id's idempotency record, dated when it was written
    assert recorded_posts(redis_client, "u1") == ["p1"]
    assert timeline_codec.received(redis_client.lindex(keys.timeline("u1"), 0)) == 1000


def test_conflict_duplicate_timeline_cap_and_outbox(redis_server: EmbeddedRedis, redis_client: redis.Redis) -> None:
    async def body(store: StateStore) -> None:
        assert (await store.advance("u", "p1", 0, _state(), {"n": 1}, None, 1.0)).outcome == "ok"
        stale = await store.advance("u", "p2", 0, _state(), {"n": 2}, None, 2.0)
        assert stale.outcome == "conflict" and stale.version == 1
        dup = await store.advance("u", "p1", 1, _state(), {"n": 99}, None, 3.0)
        assert dup.outcome == "duplicate" and dup.prior_result == {"n": 1}
        for n in range(2, 6):
            ok = await store.advance("u", f"p{n}", n - 1, _state(), {"n": n}, {"id": "evt_4", "type": "drift.started", "n": n} if n == 4 else None, float(n))
            assert ok.outcome == "ok"
            assert (ok.event_id is not None) == (n == 4)
        assert [r["n"] for r in await store.timeline("u", 10)] == [3, 4, 5]  # capped at 3
        assert [e["n"] for _, e in await store.outbox_events()] == [4]
        # state, timeline (its entries are the idempotency records), seen ids, the relayed event's id
        # list, the alerts, and the event's outbox entry
        assert await store.erase("u") == 3 + 1 + 1 + 1
        assert await store.load("u") is None
        assert await store.outbox_events() == []

    run(_with_store(redis_server.url, body))
    assert redis_client.keys("ed:{u}*") == []


def test_a_lost_redis_is_a_503_error_not_a_crash(tmp_path) -> None:  # type: ignore[no-untyped-def]
    server = EmbeddedRedis(tmp_path, port=None).start()
    url = server.url
    server.stop()

    async def body(store: StateStore) -> None:
        assert (await store.unready() or "").startswith("Redis unreachable")
        with pytest.raises(StoreUnavailable):
            await store.load("u")
        with pytest.raises(StoreUnavailable):
            await store.advance("u", "p", 0, _state(), {}, None, 1.0)

    run(_with_store(url, body))


def test_meta_is_plain_json() -> None:
    meta = _state().meta()
    assert json.loads(json.dumps(meta)) == meta


def test_a_stale_cache_costs_a_conflict_that_carries_the_winning_state(redis_server: EmbeddedRedis, redis_client: redis.Redis) -> None:
    async def body(store: StateStore) -> None:
        other = StateStore(store.redis, outbox="ed:outbox", outbox_maxlen=1000, timeline_length=10,
                           idempotency_ttl=60, cache_users=10)  # another replica
        assert (await store.advance("u", "p1", 0, _state(), {}, None, 1.0)).outcome == "ok"
        cached = await store.load("u", cached=True)
        assert cached is not None and cached.version == 1
        assert (await other.advance("u", "p2", 1, _state(9, posts=7), {}, None, 2.0)).outcome == "ok"
        stale = await store.load("u", cached=True)
        assert stale is not None and stale.version == 1  # this replica has not seen p2
        refused = await store.advance("u", "p3", stale.version, _state(), {}, None, 3.0)
        assert refused.outcome == "conflict" and refused.current is not None
        assert refused.current.version == 2 and refused.current.posts_seen == 7
        np.testing.assert_array_equal(refused.current.h, _state(9).h)
        assert (await store.advance("u", "p3", 2, _state(), {}, None, 3.0)).outcome == "ok"
        # an erased user: the conflict says so, and the cache forgets it
        await other.erase("u")
        gone = await store.advance("u", "p4", 3, _state(), {}, None, 4.0)
        assert gone.outcome == "conflict" and gone.version == 0 and gone.current is None

    run(_with_store(redis_server.url, body, cache=10))


def test_events_a_crashed_writer_left_pending_are_swept_to_the_outbox(redis_server: EmbeddedRedis, redis_client: redis.Redis) -> None:
    import time

    async def body(store: StateStore) -> None:
        # a writer that died between its atomic write and the relay: mark, script, no relay
        relay = store.relay.relay
        store.relay.relay = _crash  # type: ignore[method-assign]
        outcome = await store.advance("u", "p1", 0, _state(), {}, {"id": "evt_1", "type": "drift.started"}, 1.0)
        assert outcome.outcome == "ok" and outcome.event_id is None
        store.relay.relay = relay  # type: ignore[method-assign]
        assert await store.outbox_events() == []
        assert redis_client.llen(keys.pending_events("u")) == 1
        # within the grace period the writer may still be relaying: the sweeper leaves it alone
        assert await store.relay.sweep(now=time.time()) == 0
        assert await store.relay.sweep(now=time.time() + 60) == 1
        assert [e["id"] for _, e in await store.outbox_events()] == ["evt_1"]
        assert redis_client.llen(keys.pending_events("u")) == 0
        assert redis_client.zscore(keys.relay_marks(), "u") is None  # nothing pending: unmarked
        assert await store.relay.sweep(now=time.time() + 60) == 0  # and never relayed twice

    async def _crash(user_id: str) -> list[str]:
        raise ConnectionError("process died here")

    run(_with_store(redis_server.url, body))


def test_a_newer_mark_survives_the_sweep(redis_server: EmbeddedRedis, redis_client: redis.Redis) -> None:
    async def body(store: StateStore) -> None:
        redis_client.zadd(keys.relay_marks(), {"v": 100.0})
        script = store.relay._unmark
        reply = await script(keys={"marks": keys.relay_marks()}, args={"user_id": "v", "score_seen": repr(99.5)})
        assert reply.status == "conflict"  # re-marked since
        reply = await script(keys={"marks": keys.relay_marks()}, args={"user_id": "v", "score_seen": repr(100.0)})
        assert reply.status == "ok"

    run(_with_store(redis_server.url, body))


def test_meta_holds_every_field_but_version_and_vectors() -> None:
    names = {f.name for f in dataclasses.fields(UserState)} - {"version", "h", "c"}
    state = _state()
    # absent until a shadow model has run for the user, and until a state was ever reset (decode's 0)
    assert set(state.meta()) == names - {"shadow", "model_resets"}
    assert UserState.from_record(encode_record(1, state.h, state.c, state.meta())).model_resets == 0
    state.shadow, state.model_resets = {"model": "temporal:3"}, 2
    assert set(state.meta()) == names
    assert UserState.from_record(encode_record(1, state.h, state.c, state.meta())).model_resets == 2


def test_a_late_relay_trims_only_what_it_read_and_a_sweeper_frees_only_its_own_lock(
        redis_server: EmbeddedRedis, redis_client: redis.Redis) -> None:
    async def body(store: StateStore) -> None:
        pending = keys.pending_events("w")
        redis_client.rpush(pending, b"e1")
        lease, refs, inflight = keys.relay_lease("w"), keys.user_events("w"), keys.relay_inflight("w")
        redis_client.set(lease, "mine")

        async def trim(*, first_read: bytes, read_count: int) -> bool:  # the commit's trim, refs aside
            before = redis_client.llen(pending)
            await store.relay._commit(
                keys={"lease": lease, "pending": pending, "user_events": refs, "relay_inflight": inflight},
                args={"token": "mine", "first_read": first_read, "read_count": read_count, "cutoff_ms": 0,
                      "retention_seconds": 60}, arg_tail=["1-0 e"])
            return redis_client.llen(pending) < before

        assert await trim(first_read=b"e1", read_count=1)  # the first relay trims what it moved
        redis_client.rpush(pending, b"e2")  # a newer event arrives
        assert not await trim(first_read=b"e1", read_count=1)  # a second relay of e1 leaves e2 alone
        assert redis_client.lrange(pending, 0, -1) == [b"e2"]
        redis_client.set(keys.relay_lock(), "another-replica")
        assert (await store.relay._release(keys={"lock": keys.relay_lock()}, args={"token": "mine"})).status == "stale"
        assert redis_client.get(keys.relay_lock()) == b"another-replica"

    run(_with_store(redis_server.url, body))
