"""The issue's done-when, end to end: users of the held-out ``blind`` stream family (which the served
model never trained on; model/standin.py cuts them into platform users) posted through the real service
into a real Redis, exported by the command line, the temporal model fine-tuned on the export, and the
benchmark showing the fine-tuned model beats the base on held-out users at the same alert volume.
About ten minutes on a shared 2-core machine: marked slow."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import redis
import torch

from model.standin import family_population
from tests.conftest import RunningService
from tests.population import seed

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
KEY = "adaptation-test-key-0123456789abcdef"
STEPS = 1200  # twice the default: on this family 600 steps gained 1 point of recall, 1200 six (docs/adaptation.md)


def run(args: list[str], env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done


def test_export_fine_tune_and_benchmark(client: httpx.Client, redis_client: redis.Redis, service: RunningService,
                                        tmp_path: Path) -> None:
    users = family_population(2026, 400, (120, 200), family="blind")
    seed(client, users, prefix="platform")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMODRIFT_")}
    env |= {"EMODRIFT_REDIS_URL": service.settings.redis_url, "EMODRIFT_EXPORT_PSEUDONYM_KEY": KEY}
    export = tmp_path / "timelines.jsonl.gz"
    run(["-m", "service.cli", "timelines", "export", "--out", str(export)], env)

    adapted = tmp_path / "adapted.pt"
    run(["-m", "model.train_temporal", "--timelines", str(export), "--out", str(adapted), "--steps", str(STEPS),
         "--lr", "1e-3"], env)
    record = torch.load(adapted, map_location="cpu", weights_only=True)["training"]["data"]
    with gzip.open(export, "rt") as handle:
        header = json.loads(handle.readline())
        created = [d for line in handle for d in json.loads(line)["created_at"]]
    assert record["sha256"] == hashlib.sha256(export.read_bytes()).hexdigest()
    assert record["users"] == len(users) and record["posts"] == sum(len(u.probs) for u in users) == len(created)
    assert record["date_range"] == [min(created), max(created)] and record["key_id"] == header["key_id"]
    assert 0 < record["held_out_users"] < record["train_users"]

    figures = tmp_path / "figures.json"
    shown = run(["-m", "benchmarks.detection", "--timelines", str(export), "--candidate", str(adapted),
                 "--json", str(figures)], env)
    result = json.loads(figures.read_text())
    base, tuned = result["base"], result["candidate"]
    print(shown.stdout)
    # the same alert volume on the held-out users' real timelines (at most the target, both near it) ...
    for model in (base, tuned):
        assert 0.5 * result["target_alarms_per_1000"] <= model["alarms_per_1000_real_posts"] <= result["target_alarms_per_1000"]
    # ... and the fine-tuned model finds more of the changes spliced into held-out users
    assert tuned["recall"] > base["recall"], shown.stdout
    assert result["held_out_real"]["users"] == record["held_out_users"]
