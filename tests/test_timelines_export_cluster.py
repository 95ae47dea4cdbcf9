"""`emodrift timelines export` on a real 3-master Redis Cluster: every primary scanned, each with its own
cursor in the checkpoint, an interrupted export resumed."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster as AsyncCluster

from model.standin import population
from service.state_store import StateStore
from service.timelines_export import Checkpoint, Pseudonymizer, export
from tests.conftest import RunningService, start_service
from tests.population import seed
from tests.redis_cluster import RedisCluster

pytestmark = pytest.mark.slow  # a cluster of three redis-servers
N_USERS = 40


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RedisCluster, list[str]]]:
    nodes = RedisCluster(tmp_path_factory.mktemp("cluster")).start()
    service: RunningService = start_service(redis_url=nodes.url, redis_cluster=True, data_dir=Path("/nonexistent"),
                                            redis_timeout_seconds=5)
    try:
        with service.client() as client:
            ids = seed(client, population(4, N_USERS, (20, 40)))
        yield nodes, ids
    finally:
        service.stop()
        nodes.stop()


def users_in(path: Path) -> list[str]:
    with gzip.open(path, "rt") as handle:
        return [json.loads(line)["user"] for line in list(handle)[1:]]


def test_every_primary_is_scanned_and_an_interrupted_export_resumes(seeded, tmp_path: Path) -> None:
    nodes, ids = seeded
    out = tmp_path / "t.jsonl.gz"
    stops: list[Checkpoint] = []

    def interrupt_once(cp: Checkpoint) -> None:
        if cp.users and not stops:
            stops.append(cp)
            raise Interrupted

    async def run(**kwargs: object) -> object:
        client = AsyncCluster.from_url(nodes.url)
        store = StateStore(client, outbox="ed:outbox", outbox_maxlen=1000, timeline_length=200, idempotency_ttl=3600)
        try:
            return await export(client, store, out, Pseudonymizer(None), timeline_length=200, scan_count=10, **kwargs)
        finally:
            await client.aclose()

    with pytest.raises(Interrupted):
        asyncio.run(run(after_batch=interrupt_once))
    saved = Checkpoint.load(tmp_path / "t.jsonl.gz.checkpoint.json")
    assert 0 < saved.users < N_USERS and len(saved.cursors) + len(saved.finished) >= 1
    summary = asyncio.run(run())
    assert summary.resumed and sorted(users_in(out)) == sorted(ids)  # all three primaries, nobody twice


def test_the_command_line_on_a_cluster(seeded, tmp_path: Path) -> None:
    nodes, ids = seeded
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMODRIFT_")}
    env |= {"EMODRIFT_REDIS_URL": nodes.url, "EMODRIFT_REDIS_CLUSTER": "true"}
    done = subprocess.run([sys.executable, "-m", "service.cli", "timelines", "export", "--keep-ids",
                           "--out", str(tmp_path / "c.jsonl.gz")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted(users_in(tmp_path / "c.jsonl.gz")) == sorted(ids)
