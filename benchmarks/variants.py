"""A variant of the shipped detector, as a screen or a calibration reads it: DetectorConfig fields on top
of the served design and, for what-ifs that are not settings, ``service.drift`` module constants; and the
comma-separated numbers their other options take (:func:`numbers`).

``python -m benchmarks.late_changes --variant`` screens variants on the training families and
``python -m benchmarks.calibrate --variant`` calibrates one, both from the same ``NAME=JSON`` text, so a
round's lead goes from the screen to its calibration without editing either module
(docs/detection_method.md, "How a round runs").
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from service import drift
from service.drift import DetectorConfig

# Not a DetectorConfig field: the bank's second CUSUM's threshold as this multiple of the first one's
# (benchmarks.calibrate's SHARE2_RATIO in the manifest's design).
RATIO = "ratio"
N = TypeVar("N", int, float)


@contextlib.contextmanager
def constants(overrides: dict[str, float]) -> Iterator[None]:
    """The detector's module constants set for one variant (a what-if: they are not settings)."""
    saved = {name: getattr(drift, name) for name in overrides}
    for name, value in overrides.items():
        setattr(drift, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(drift, name, value)


def parse_variant(text: str) -> tuple[str, tuple[dict[str, Any], dict[str, float]]]:
    """``NAME=JSON``: a variant, JSON an object of DetectorConfig fields (and ``ratio``) with, under
    ``constants``, service.drift module constants.

    >>> parse_variant('young slack 1.0={"share_uncertainty": 1.0, "constants": {"SHARE_ALPHA": 0.0025}}')
    ('young slack 1.0', ({'share_uncertainty': 1.0}, {'SHARE_ALPHA': 0.0025}))
    """
    name, sep, spec = text.partition("=")
    try:
        fields = json.loads(spec) if sep and name.strip() else None
    except json.JSONDecodeError:
        fields = None
    if not isinstance(fields, dict) or not isinstance(fields.get("constants", {}), dict):
        raise argparse.ArgumentTypeError(f"expected NAME={{DetectorConfig fields as JSON}}, got {text!r}")
    known = {f.name for f in dataclasses.fields(DetectorConfig)} | {RATIO}
    overrides = fields.pop("constants", {})
    unknown = sorted(set(fields) - known) + sorted(c for c in overrides if not (c.isupper() and hasattr(drift, c)))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown in {name!r}: {', '.join(unknown)}")
    return name.strip(), (fields, overrides)


def numbers(text: str, convert: Callable[[str], N], what: str, count: int | None = None) -> tuple[N, ...]:
    """``text``'s comma-separated numbers (``count`` of them, if given), or the command line's error
    naming ``what`` they were meant to be; each caller checks their range.

    >>> numbers("30,250", int, "LO,HI (two post numbers)", 2)
    (30, 250)
    """
    try:
        values = tuple(convert(part) for part in text.split(","))
    except ValueError:
        values = ()
    if not values or (count is not None and len(values) != count):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return values
