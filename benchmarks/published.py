"""The published per-family run (``docs/detection_families.json``, written by ``python -m
benchmarks.detection``) as the benchmarks that rerun its streams use it (``operating_points``,
``second_change``): where it is, the served temporal model, and the command line they share."""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Sequence
from pathlib import Path

from benchmarks.detection import REPOSITORY
from service import model_repository
from service.inference import ProviderChoice
from service.temporal import TemporalModel

DOCS = Path(__file__).resolve().parent.parent / "docs"
PUBLISHED = DOCS / "detection_families.json"


@functools.cache
def served_temporal() -> TemporalModel:
    """The served temporal model, built once per worker process (an ONNX session is not shared across a fork)."""
    return TemporalModel(model_repository.load(REPOSITORY, "temporal"), ProviderChoice("cpu", "benchmark"))


def cli(prog: str, doc: str, argv: Sequence[str] | None) -> tuple[argparse.Namespace, dict]:
    """The options every rerun of the published streams takes, and the published run itself."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run (tests); never the published figures")
    parser.add_argument("--family", action="append", default=[], help="only these families (repeatable)")
    parser.add_argument("--out", type=Path, default=DOCS)
    parser.add_argument("--workers", type=int, default=2)
    return parser.parse_args(argv), json.loads(PUBLISHED.read_text())
