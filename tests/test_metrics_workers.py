"""Gauges die with their worker (issue 14): with `emodrift serve --workers 2`, a SIGKILLed worker's
last gauge values stayed in /metrics until restart, so alerts kept firing on a ghost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis
from prometheus_client.mmap_dict import MmapedDict

from service import keys
from service.embedded_redis import EmbeddedRedis, free_port
from tests.conftest import interrupt
from tests.test_cli import _wait_ready


def _users_drifting(url: str) -> float:
    with httpx.Client() as fresh:  # a new connection: whichever worker answers
        text = fresh.get(f"{url}/metrics").text
    return float(next(l for l in text.splitlines() if l.startswith("emodrift_users_drifting ")).split()[-1])


def _drifting_seen_by(directory: Path) -> set[int]:
    """Pids whose gauge file holds emodrift_users_drifting = 1."""
    seen = set()
    for path in directory.glob("gauge_*.db"):
        for key, value, *_ in MmapedDict.read_all_values_from_file(str(path)):
            if '"emodrift_users_drifting"' in key and value == 1.0:
                seen.add(int(path.stem.rsplit("_", 1)[-1]))
    return seen


def _gauge_pids(directory: Path) -> set[int]:
    return {int(p.stem.rsplit("_", 1)[-1]) for p in directory.glob("gauge_*.db")}


@pytest.mark.slow
def test_a_killed_workers_gauges_leave_metrics(tmp_path: Path) -> None:
    own = EmbeddedRedis(tmp_path / "redis", port=free_port()).start()
    r = redis.Redis.from_url(own.url)
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "EMODRIFT_REDIS_URL": own.url, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--workers", "2"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(url, proc)
        workers = [int(c) for c in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
        # one user drifting, seen by both workers at scrape time (each scrape is answered by either)
        r.zadd(keys.drifting_users(), {"ghost": time.time()})
        deadline = time.monotonic() + 30
        while len(_drifting_seen_by(metrics_dir) & set(workers)) < 2 and time.monotonic() < deadline:
            assert _users_drifting(url) == 1.0
        seen = _drifting_seen_by(metrics_dir) & set(workers)
        assert len(seen) == 2, f"both workers should have reported the drifting user: {seen} of {workers}"
        # Prometheus keeps its connection, so one worker answers every scrape: the other's last value
        # (1) won the max and the figure stayed stale after the user left Redis (an on-call audit)
        r.zrem(keys.drifting_users(), "ghost")
        with httpx.Client() as kept:
            scraped = [float(next(line for line in kept.get(f"{url}/metrics").text.splitlines()
                                  if line.startswith("emodrift_users_drifting ")).split()[-1]) for _ in range(5)]
        assert scraped == [0.0] * 5, scraped
        r.zadd(keys.drifting_users(), {"ghost": time.time()})
        while len(_drifting_seen_by(metrics_dir) & set(workers)) < 2 and time.monotonic() < deadline + 30:
            assert _users_drifting(url) == 1.0
        victim = min(seen)
        os.kill(victim, signal.SIGKILL)
        r.zrem(keys.drifting_users(), "ghost")  # nobody drifts now; the victim last said 1
        time.sleep(0.5)
        for _ in range(10):
            assert _users_drifting(url) == 0.0, "a dead worker's gauge is still in /metrics"
        assert victim not in _gauge_pids(metrics_dir)
    finally:
        interrupt(proc, timeout=60)
        r.close()
        own.stop()
