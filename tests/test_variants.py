"""A variant of the shipped detector as the screen and the calibration read it (benchmarks/variants.py)."""

from __future__ import annotations

import argparse
import doctest

import pytest

from benchmarks import variants
from benchmarks.variants import constants, parse_variant


def test_docstring_examples() -> None:
    assert doctest.testmod(variants).failed == 0


def test_a_variant_is_config_fields_and_detector_constants() -> None:
    assert parse_variant('lag={"ratio": 2.2, "constants": {"SHARE_ALPHA": 0.0025}}') == (
        "lag", ({"ratio": 2.2}, {"SHARE_ALPHA": 0.0025}))
    for bad in ("no json", 'x={"share_nonsense": 1}', 'x={"constants": {"NOT_A_CONSTANT": 1}}', '={"ratio": 2}',
                'x=[1, 2]', 'x={"constants": 3}', 'x={"constants": {"DriftDetector": 1}}'):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_variant(bad)


def test_a_variant_leaves_the_detector_constants_as_it_found_them() -> None:
    from service import drift

    before = drift.SHARE_SD_FLOOR
    with constants({"SHARE_SD_FLOOR": 0.5}):
        assert drift.SHARE_SD_FLOOR == 0.5
    assert drift.SHARE_SD_FLOOR == before
    with pytest.raises(RuntimeError), constants({"SHARE_SD_FLOOR": 0.5}):
        raise RuntimeError("a variant that fails")
    assert drift.SHARE_SD_FLOOR == before
