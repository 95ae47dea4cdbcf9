"""Automatic pipelining (service/redis_pipelining.py) against a real redis-server: the commands of one
event-loop turn share one connection and one round trip, and each caller still gets its own reply or
its own error."""

from __future__ import annotations

import asyncio

import redis
import redis.asyncio as aioredis

from service import keys
from service.embedded_redis import EmbeddedRedis, free_port
from service.errors import StoreUnavailable
from service.redis_pipelining import BATCHED, AutoPipeline
from service.state_store import StateStore
from tests.test_state_store import _state


def _client(url: str, name: str = "") -> aioredis.Redis:
    return aioredis.Redis.from_pool(aioredis.BlockingConnectionPool.from_url(
        url, max_connections=64, timeout=1.0, client_name=name or None))


def _connections(db: redis.Redis, name: str) -> int:
    """The connections Redis has open for clients named ``name`` (the pools keep theirs open)."""
    return sum(1 for c in db.client_list() if c.get("name") == name)


def test_one_turn_of_commands_is_one_pipeline_and_replies_go_to_their_callers(
        redis_server: EmbeddedRedis, redis_client: redis.Redis) -> None:
    redis_client.mset({f"k{i}": f"v{i}" for i in range(300)})

    async def main() -> tuple[list[object], int, list[object], int]:
        piped, plain = _client(redis_server.url, "piped"), _client(redis_server.url, "plain")
        auto = AutoPipeline(piped, max_commands=128)
        try:
            got = await asyncio.gather(*(auto.execute_command("GET", f"k{i}") for i in range(300)))
            alone = await asyncio.gather(*(plain.get(f"k{i}") for i in range(300)))
            return got, _connections(redis_client, "piped"), alone, _connections(redis_client, "plain")
        finally:
            await piped.aclose()
            await plain.aclose()

    got, piped_connections, alone, plain_connections = asyncio.run(main())
    assert got == alone == [f"v{i}".encode() for i in range(300)]
    # 300 commands in 3 pipelines of at most 128 (sent at once: up to 3 connections), against one
    # connection per command in flight without it
    assert piped_connections <= 3 < plain_connections


def test_an_error_reaches_only_the_command_that_caused_it(redis_server: EmbeddedRedis, redis_client: redis.Redis) -> None:
    redis_client.rpush("a-list", "x")
    redis_client.set("a-string", "y")

    async def main() -> list[object]:
        client = _client(redis_server.url)
        auto = AutoPipeline(client)
        try:
            return await asyncio.gather(auto.execute_command("GET", "a-string"), auto.execute_command("GET", "a-list"),
                                        auto.execute_command("LLEN", "a-list"), return_exceptions=True)
        finally:
            await client.aclose()

    first, wrong, length = asyncio.run(main())
    assert first == b"y" and length == 1
    assert isinstance(wrong, redis.ResponseError) and "WRONGTYPE" in str(wrong)


def test_a_caller_cancelled_while_it_gathers_a_turn_does_not_strand_the_others(
        redis_server: EmbeddedRedis, redis_client: redis.Redis) -> None:
    redis_client.set("k", "v")

    async def main() -> object:
        client = _client(redis_server.url)
        auto = AutoPipeline(client)
        try:
            first = asyncio.ensure_future(auto.execute_command("GET", "k"))  # opens the turn
            second = asyncio.ensure_future(auto.execute_command("GET", "k"))  # sent by the first
            await asyncio.sleep(0)  # both are waiting now: the first for the turn to end
            first.cancel()
            got = await asyncio.wait_for(second, 5)
            assert first.cancelled()
            return got
        finally:
            await client.aclose()

    assert asyncio.run(main()) == b"v"


def test_advances_of_many_users_in_one_turn_each_write_their_own_user(
        redis_server: EmbeddedRedis, redis_client: redis.Redis) -> None:
    redis_client.script_flush()  # the first pipeline meets NOSCRIPT: the script is loaded, then run

    async def main() -> list[str]:
        client = _client(redis_server.url, "batch")
        store = StateStore(client, outbox="ed:outbox", outbox_maxlen=1000, timeline_length=5, idempotency_ttl=3600)
        BATCHED.set(True)  # as POST /v1/posts/batch does for its users' tasks
        try:
            async def one(n: int) -> str:
                result = {"user_id": f"u{n}", "post_id": f"p{n}", "n": n}
                return (await store.advance(f"u{n}", f"p{n}", 0, _state(posts=1), result, None, 1_800_000_000.0)).outcome
            outcomes = await asyncio.gather(*(one(n) for n in range(200)))
            again = await asyncio.gather(*(one(n) for n in range(200)))  # the same posts: duplicates
            assert _connections(redis_client, "batch") <= 2  # 200 scripts a turn, in pipelines of 512
            return [*outcomes, *again]
        finally:
            await client.aclose()

    outcomes = asyncio.run(main())
    assert outcomes == ["ok"] * 200 + ["duplicate"] * 200
    for n in (0, 77, 199):
        assert redis_client.get(keys.state(f"u{n}")).startswith(b"1|")  # type: ignore[union-attr]
        assert redis_client.llen(keys.timeline(f"u{n}")) == 1


def test_posts_outside_a_batch_keep_one_command_each(redis_server: EmbeddedRedis, redis_client: redis.Redis) -> None:
    async def main() -> None:
        client = _client(redis_server.url, "single")
        store = StateStore(client, outbox="ed:outbox", outbox_maxlen=1000, timeline_length=5, idempotency_ttl=3600)
        try:
            assert await asyncio.gather(*(store.load(f"u{n}") for n in range(50))) == [None] * 50
            assert _connections(redis_client, "single") > 2  # each read on a connection of its own, as before
        finally:
            await client.aclose()

    asyncio.run(main())


def test_redis_going_away_fails_every_waiting_command_as_unavailable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    server = EmbeddedRedis(tmp_path / "redis", port=free_port()).start()

    async def main() -> list[object]:
        client = aioredis.Redis.from_url(server.url, socket_timeout=0.5, socket_connect_timeout=0.5,
                                         retry_on_error=[], retry=None)
        store = StateStore(client, outbox="ed:outbox", outbox_maxlen=1000, timeline_length=5, idempotency_ttl=3600)
        BATCHED.set(True)
        try:
            await store.load("u0")  # connected
            server.stop()
            return await asyncio.gather(*(store.load(f"u{n}") for n in range(20)), return_exceptions=True)
        finally:
            await client.aclose()

    try:
        errors = asyncio.run(main())
    finally:
        server.stop()
    assert len(errors) == 20 and all(isinstance(e, StoreUnavailable) for e in errors)


def test_a_client_that_is_not_a_single_redis_sends_commands_one_by_one() -> None:
    class NotARedis:  # a Cluster client's stand-in: the store must not pipeline it
        def register_script(self, script: str) -> object:
            return object()

    store = StateStore(NotARedis(), outbox="ed:outbox", outbox_maxlen=1000,  # type: ignore[arg-type]
                       timeline_length=5, idempotency_ttl=3600)
    assert store._pipelined is None
