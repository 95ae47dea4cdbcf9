"""``python -m benchmarks.scale`` at a small N: it feeds every post through a real service into a fresh
Redis and reports figures that agree with what Redis holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import scale

pytestmark = pytest.mark.slow  # a service process and its models: ~20 s


def test_the_scale_benchmark_measures_what_it_stored(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    assert scale.main(["--users", "64", "--posts", "6", "--batch", "32", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["posts"] == 64 * 6 and result["users_stored"] == 64 and result["errors"] == {}
    keys = result["one_user_keys"]
    assert set(keys) == {"state", "timeline", "seen"}  # compact: no per-post keys, no index
    # INFO's delta per user and the user's own keys tell the same story (Redis's dictionaries and
    # allocator rounding make up the difference)
    assert 0.8 * sum(keys.values()) <= result["redis_bytes_per_user"] <= 2.0 * sum(keys.values())
    assert result["projected_gib"]["1e7"] == pytest.approx(10 * result["projected_gib"]["1e6"], rel=0.01)
    assert result["posts_per_second"] > 0 and result["batch_p99_ms"] >= result["batch_p50_ms"] > 0
    # the CPU spent feeding, start-up not counted: the service's Python path costs more than Redis's script
    assert result["server_cpu_ms_per_post"] > result["redis_cpu_ms_per_post"] > 0
