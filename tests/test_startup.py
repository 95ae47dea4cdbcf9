"""Start-up and shutdown of the app's lifespan (service/app.py) close everything they built.

The start-up builds the Redis client, the ONNX sessions, the batcher's task, the pipeline's decode
threads, the background tasks and the webhook dispatcher one after another; each is registered with an
exit stack as it is built. A start that fails at a later step (here, for real: a shadow temporal model
that is the served one, refused when the pipeline is built, after the batcher started) must leave no
task, no thread and no open Redis client behind, and neither may a clean shutdown.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from service import app as app_module, model_repository
from service.app import create_app
from service.config import Settings
from service.embedded_redis import EmbeddedRedis
from tests.image_fixtures import face_jpeg


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A redis-server of this test alone: its client list shows only the connections the app left open."""
    with EmbeddedRedis(tmp_path / "redis", appendonly=False) as server:
        yield server


@pytest.fixture
def closed_clients(monkeypatch: pytest.MonkeyPatch) -> list[list[bool]]:
    """For every Redis client the app builds, whether its ``aclose`` ran (the client is the real one)."""
    built: list[list[bool]] = []
    connect = app_module.connect_redis

    def recording(settings: Settings) -> aioredis.Redis:
        client = connect(settings)
        closed = [False]
        close = client.aclose

        async def aclose(*args: Any, **kwargs: Any) -> None:
            closed[0] = True
            await close(*args, **kwargs)

        client.aclose = aclose  # type: ignore[method-assign]
        built.append(closed)
        return client

    monkeypatch.setattr(app_module, "connect_redis", recording)
    return built


def others(tasks: set[asyncio.Task[Any]]) -> list[str]:
    """The names of the tasks still running besides the test's own."""
    current = asyncio.current_task()
    return sorted(t.get_name() for t in tasks if t is not current and not t.done())


def threads_left(before: set[threading.Thread], within: float = 10.0) -> list[str]:
    """Threads started since ``before`` that are still alive after ``within`` seconds (a thread pool shut
    down without waiting ends its idle threads soon after)."""
    deadline = time.monotonic() + within
    while True:
        alive = sorted(t.name for t in threading.enumerate() if t not in before and t.is_alive())
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def connected_after(observer: redis.Redis, within: float = 10.0) -> int:
    """The clients the server still lists, waiting a bounded time for it to notice closed sockets."""
    deadline = time.monotonic() + within
    while len(observer.client_list()) > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    return len(observer.client_list())


def test_a_start_that_fails_late_closes_what_it_had_built(own_redis: EmbeddedRedis,
                                                          closed_clients: list[list[bool]]) -> None:
    served = max(model_repository.versions(Settings().model_repository, "temporal"))
    app = create_app(Settings(redis_url=own_redis.url, shadow_temporal_model_version=served))
    before = set(threading.enumerate())

    async def scenario() -> tuple[str, list[str]]:
        with pytest.raises(ValueError) as refused:
            async with app.router.lifespan_context(app):
                pass
        return str(refused.value), others(asyncio.all_tasks())

    message, tasks = asyncio.run(scenario())
    assert "is the served one" in message  # the step after the batcher started
    assert tasks == []  # the micro-batcher's task was stopped
    assert closed_clients == [[True]]
    assert threads_left(before) == []
    assert app.state.pipeline is None


def test_shutdown_closes_every_client_task_and_thread(own_redis: EmbeddedRedis,
                                                      closed_clients: list[list[bool]]) -> None:
    app = create_app(Settings(redis_url=own_redis.url))
    before = set(threading.enumerate())
    observer = redis.Redis.from_url(own_redis.url)

    async def scenario() -> tuple[list[str], list[str], float]:
        async with app.router.lifespan_context(app):
            running = others(asyncio.all_tasks())
            scored = await app.state.pipeline.score_image(face_jpeg("happy"))  # a decode thread and the CNN's
            await asyncio.sleep(0.2)  # the dispatcher's loops reach Redis
            assert len(observer.client_list()) > 1
        return running, others(asyncio.all_tasks()), float(scored.probabilities.sum())

    running, left, total = asyncio.run(scenario())
    assert {"micro-batcher", "outbox-sweeper", "live-calibration"} <= set(running)
    assert any(name.startswith("webhooks-") for name in running)
    assert abs(total - 1.0) < 1e-3
    assert left == []
    assert closed_clients == [[True]]
    assert connected_after(observer) == 1  # only the observer is still connected
    assert threads_left(before) == []
    assert app.state.pipeline is None
    observer.close()
