"""Do people's verdicts make the fine-tune better? ``python -m benchmarks.verdicts [--seeds ...]``.

For each seed, a population of the held-out ``blind`` family (model/standin.py, 400 users of 120-200
posts, 70% without a change) is posted through a real ``emodrift serve`` into a real Redis; every
drift.started the served model raises is judged as a reviewer who knew the truth would judge it
(``false_alarm`` on a user without a change or before the change, ``confirmed`` after), through the API;
``emodrift timelines export`` writes the export, with the ``verdict`` column. The temporal model is then
fine-tuned twice with the same seed and steps (model/adapt.py): on the export, and on the same export
without its verdict column. Both, and the base, are benchmarked on the held-out users
(benchmarks/timelines.py: the same alert volume on their real timelines, recall of changes spliced into
them) and, since the truth is known here, by how many of their alarms on their real timelines are false.
Figures: docs/adaptation.md.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import torch

from benchmarks import timelines as bench
from model.adapt import BASE, is_held_out, load_timelines
from model.standin import PlatformUser, family_population
from model.temporal import load_checkpoint
from service.embedded_redis import EmbeddedRedis, free_port
from service.timelines_export import Pseudonymizer
from tests.population import seed as post_population

ROOT = Path(__file__).resolve().parent.parent
KEY = "verdicts-benchmark-key-0123456789abcdef"
SEEDS = (2026, 7, 11)
STEPS = 1200  # as tests/test_adaptation.py: on this family 600 steps gained little


def _run(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"{args[:2]} failed:\n{done.stdout[-2000:]}{done.stderr[-4000:]}")


def _judge(http: httpx.Client, truth: dict[str, int | None]) -> dict[str, int]:
    """Every drift.started judged by the truth: before the change (or without one) a false alarm."""
    alerts: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = http.get("/v1/alerts", params={"type": "drift.started", "limit": 100, "backfill": "true",
                                              **({"cursor": cursor} if cursor else {})})
        page.raise_for_status()
        alerts += page.json()["alerts"]
        if not (cursor := page.json().get("next_cursor")):
            break
    judged = {"false_alarm": 0, "confirmed": 0}
    for alert in alerts:
        start = truth[alert["user_id"]]
        post = int(alert["evidence_post_ids"][-1].rsplit("-p", 1)[1])  # the post that raised it
        verdict = "false_alarm" if _before(post, start) else "confirmed"
        http.post(f"/v1/alerts/{alert['id']}/resolve", json={"verdict": verdict}).raise_for_status()
        judged[verdict] += 1
    return judged


def export_judged(users: list[PlatformUser], out: Path, env: dict[str, str]) -> dict[str, int]:
    """Post, judge and export one population; returns the verdicts given."""
    with EmbeddedRedis(out / "redis", port=free_port(), appendonly=False) as redis_server:
        env = {**env, "EMODRIFT_REDIS_URL": redis_server.url, "EMODRIFT_EXPORT_PSEUDONYM_KEY": KEY}
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port",
                                   str(port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
                deadline = time.monotonic() + 120
                while True:
                    try:
                        if http.get("/readyz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("emodrift serve did not become ready")
                    time.sleep(0.2)
                ids = post_population(http, users, prefix="platform")
                judged = _judge(http, {uid: u.start for uid, u in zip(ids, users)})
        finally:
            server.terminate()
            server.wait(timeout=30)
        _run(["-m", "service.cli", "timelines", "export", "--out", str(out / "judged.jsonl.gz")], env)
    with gzip.open(out / "judged.jsonl.gz", "rt") as judged_file, gzip.open(out / "unjudged.jsonl.gz", "wt") as bare:
        bare.write(judged_file.readline())  # the header
        for line in judged_file:
            row = json.loads(line)
            row.pop("verdict", None)
            bare.write(json.dumps(row) + "\n")
    return judged


def evaluate(out: Path, users: list[PlatformUser], checkpoints: dict[str, Path]) -> dict[str, dict[str, Any]]:
    """Each model on the held-out users: the benchmark's figures, and its alarms on their real timelines
    split by the truth (false: no change, or before it)."""
    name = Pseudonymizer(KEY.encode())
    start = {name(f"platform-{i}"): u.start for i, u in enumerate(users)}
    data = load_timelines(out / "judged.jsonl.gz")
    real = [u for u in data.users if is_held_out(u.user)]
    spliced = bench.spliced_set(data, 300, 96)
    figures = {}
    for model, path in checkpoints.items():
        net, _ = load_checkpoint(path)
        result = bench.figures(net, real, spliced, 2.0)
        found = bench.alarms(bench.scores(net, real), result["threshold"])
        false = sum(1 for u, alarms in zip(real, found) for t in alarms if _before(t, start[u.user]))
        figures[model] = {**result, "false_alarms_on_real": false,
                          "true_alarms_on_real": sum(map(len, found)) - false}
    return figures


def _before(post: int, start: int | None) -> bool:
    """An alarm at ``post`` of a user whose change starts at ``start`` (None: never) is a false one."""
    return start is None or post < start


def run(seeds: tuple[int, ...], steps: int, work: Path) -> list[dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMODRIFT_")} | {"PYTHONPATH": str(ROOT)}
    rows = []
    for population_seed in seeds:
        out = work / f"seed-{population_seed}"
        out.mkdir(parents=True, exist_ok=True)
        users = family_population(population_seed, 400, (120, 200), family="blind")
        judged = export_judged(users, out, env)
        tuned = {}
        for export in ("judged", "unjudged"):
            tuned[export] = out / f"{export}.pt"
            _run(["-m", "model.train_temporal", "--timelines", str(out / f"{export}.jsonl.gz"), "--out",
                  str(tuned[export]), "--steps", str(steps), "--lr", "1e-3"], env)
        held_out = sum(is_held_out(Pseudonymizer(KEY.encode())(f"platform-{i}")) for i in range(len(users)))
        rows.append({"seed": population_seed, "verdicts": judged, "held_out_users": held_out,
                     "models": evaluate(out, users, {"base": BASE, **tuned})})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| population seed | verdicts given (false alarm / confirmed) | model | recall | false / true alarms "
             "on held-out timelines |", "|---|---|---|---|---|"]
    for row in rows:
        given = f"{row['verdicts']['false_alarm']} / {row['verdicts']['confirmed']}"
        for model, label in (("base", "base"), ("judged", "fine-tuned with verdicts"),
                             ("unjudged", "fine-tuned without")):
            m = row["models"][model]
            lines.append(f"| {row['seed']} | {given} | {label} | {m['recall']} | "
                         f"{m['false_alarms_on_real']} / {m['true_alarms_on_real']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.verdicts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory(prefix="emodrift-verdicts-") as work:
        rows = run(tuple(args.seeds), args.steps, Path(work))
    print(markdown(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
