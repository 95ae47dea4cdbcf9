"""The published per-family run (``docs/detection_families.json``, written by ``python -m
benchmarks.detection``) as the benchmarks that rerun its streams use it (``operating_points``,
``second_change``, ``visibility``): where it is (and the reserved families' one run), the served temporal
model, and the command line they share."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import multiprocessing as mp
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.detection import REPOSITORY
from service import model_repository
from service.inference import ProviderChoice
from service.temporal import TemporalModel

DOCS = Path(__file__).resolve().parent.parent / "docs"
PUBLISHED = DOCS / "detection_families.json"
UNSEEN = DOCS / "detection_families_unseen.json"  # the reserved families' one run (``--name detection_unseen``)


@functools.cache
def served_temporal() -> TemporalModel:
    """The served temporal model, built once per worker process (an ONNX session is not shared across a fork)."""
    return TemporalModel(model_repository.load(REPOSITORY, "temporal"), ProviderChoice("cpu", "benchmark"))


def published_runs() -> dict[str, dict]:
    """Every published family's figures: the per-family run's and the reserved families' one run."""
    out: dict[str, dict] = {}
    for path in (PUBLISHED, UNSEEN):
        if path.exists():
            out.update(json.loads(path.read_text())["families"])
    return out


def page_parser(prog: str, doc: str) -> argparse.ArgumentParser:
    """The options of every benchmark that writes a page: ``--quick`` (``write_page``'s) and ``--out``."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run (tests); never the published figures")
    parser.add_argument("--out", type=Path, default=DOCS)
    return parser


def cli(prog: str, doc: str, argv: Sequence[str] | None) -> tuple[argparse.Namespace, dict]:
    """The options every rerun of the published streams takes, and the published run itself."""
    parser = page_parser(prog, doc)
    parser.add_argument("--family", action="append", default=[], help="only these families (repeatable)")
    parser.add_argument("--workers", type=int, default=2)
    return parser.parse_args(argv), json.loads(PUBLISHED.read_text())


QUICK_FAMILIES = ("sessions", "blind")


@dataclasses.dataclass(frozen=True)
class RerunPlan:
    """What a rerun of the published streams reads: their seed and sizes, and which families."""

    seed: int
    per_kind: int
    no_change: int
    no_change_length: int
    families: tuple[str, ...]
    workers: int = 2


def rerun(prog: str, doc: str, argv: Sequence[str] | None) -> tuple[argparse.Namespace, dict[str, dict], dict[str, Any]]:
    """The command line of a benchmark that reruns every published family's streams (the per-family run's
    and the reserved families' one run): its options, every published family's figures, and its plan's
    fields: the published seed and sizes, the families asked for (every published one by default), or,
    with ``--quick``, a small run of a few."""
    args, published_json = cli(prog, doc, argv)
    runs = published_runs()
    p = published_json["plan"]
    plan = {"seed": p["seed"], "per_kind": p["per_kind"], "no_change": p["no_change"],
            "no_change_length": p["no_change_length"], "families": tuple(args.family) or tuple(runs),
            "workers": args.workers}
    if args.quick:
        plan |= {"per_kind": 8, "no_change": 4, "families": tuple(args.family) or QUICK_FAMILIES}
    unknown = [f for f in plan["families"] if f not in runs]
    if unknown:
        raise SystemExit(f"no published run of {', '.join(unknown)}: run python -m benchmarks.detection first")
    return args, runs, plan


def per_family(run_family: Callable[[Any], Any], jobs: list, workers: int) -> list:
    """``run_family`` on every job, on ``workers`` forked processes (one job at a time each) or here."""
    if workers > 1 and len(jobs) > 1:
        with mp.get_context("fork").Pool(workers) as pool:
            return pool.map(run_family, jobs, chunksize=1)
    return [run_family(job) for job in jobs]


def write_page(out: Path, stem: str, quick: bool, text: str) -> None:
    """The page ``stem``.md in ``out`` (``stem``-quick.md for a ``--quick`` run, never the published one); ``out``
    is made if missing (a scratch ``--out`` given at the end of a long run must not lose it)."""
    path = out / (f"{stem}-quick.md" if quick else f"{stem}.md")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"wrote {path}")
