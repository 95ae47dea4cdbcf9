"""Shared fixtures: a real redis-server per test session (flushed before each test) and the real
service on 127.0.0.1 (uvicorn in a thread) with the committed ONNX models."""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
import uvicorn

from service.app import create_app
from service.config import Settings
from service import keys
from service.embedded_redis import EmbeddedRedis, free_port
from service import timeline_codec
from service.state_store import UserState, decode_record


def read_state(client: redis.Redis, user_id: str) -> UserState | None:
    """The user's state record as stored in Redis (None: no record): version, h, c and the meta fields."""
    raw = client.get(keys.state(user_id))
    return decode_record(raw) if raw else None


def recorded_posts(client: redis.Redis, user_id: str) -> list[str | None]:
    """The post ids the user's timeline holds an entry for, oldest first: each entry is its post id's
    idempotency record (service/timeline_codec.py)."""
    return [timeline_codec.post_id(entry) for entry in client.lrange(keys.timeline(user_id), 0, -1)]


def interrupt(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Stop a service process as Ctrl-C does; killed if it has not exited within ``timeout`` s (never left running)."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(autouse=True)
def _root_logging_left_as_found() -> Iterator[None]:
    """A test that runs ``service.cli.main`` configures logging: a root handler writing to *that test's*
    captured stderr, which later tests' services would log to after pytest closed it ("Logging error").
    The handlers a test adds (pytest's own aside) are taken off again, and the root level restored."""
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in before and not type(handler).__module__.startswith("_pytest"):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield client
    client.close()


@dataclass
class RunningService:
    url: str
    settings: Settings
    server: uvicorn.Server
    thread: threading.Thread

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def start_service(**overrides: object) -> RunningService:
    """uvicorn in a thread on a free 127.0.0.1 port, serving create_app(Settings(**overrides))."""
    settings = Settings(**overrides)  # type: ignore[arg-type]
    port = free_port()
    # log_config=None: uvicorn's own handlers write to the sys.stderr of the test that started the
    # service, which pytest closes after it ("Logging error ... I/O operation on closed file" later);
    # records go to the root logger, which pytest captures per test
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on", log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the service did not start")
        time.sleep(0.02)
    return RunningService(f"http://127.0.0.1:{port}", settings, server, thread)


@pytest.fixture(scope="session")
def service(redis_server: EmbeddedRedis) -> Iterator[RunningService]:
    running = start_service(redis_url=redis_server.url, data_dir=Path("/nonexistent"))
    yield running
    running.stop()


@pytest.fixture
def client(service: RunningService, redis_client: redis.Redis) -> Iterator[httpx.Client]:
    """A client of the session's service, with Redis flushed first."""
    with service.client() as http:
        yield http
