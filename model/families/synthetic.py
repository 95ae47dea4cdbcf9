"""The family the temporal model was first built on: :mod:`model.synthetic`'s regimes, confusion matrix
and posting times (per-post independent moods, one fixed ~66%-accurate classifier for everyone,
~85% faces, bursty gaps without a day rhythm), cut into the common kinds of :mod:`model.families.base`.

>>> s = make_stream(np.random.default_rng(1), "two_changes")
>>> s.start < s.start2 < s.length, s.probs.shape == (s.length, 7)
(True, True)
"""

from __future__ import annotations

import numpy as np

from model import synthetic
from model.families.base import KINDS, Stream, seeded, shifted

NAME = "synthetic"
NO_CHANGE_LENGTH = 2000
PRE = (32, 96)  # a change's first post: the published streams' range (benchmarks.late_changes asks later)
POST = 150
AFTER_END = 40
SECOND_AFTER = (120, 200)  # posts between the two changes of a two_changes stream


def make_stream(rng: np.random.Generator, kind: str, length: int = NO_CHANGE_LENGTH,
                pre: tuple[int, int] = PRE) -> Stream:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    if kind == "none":
        _, baseline, _, _ = synthetic.draw_regimes(rng)
        return _stream(rng, kind, np.repeat(baseline[None], length, axis=0))
    _, baseline, _, contrast = synthetic.draw_regimes(rng, negative_baseline=kind == "abrupt_neg_pos")
    start = int(rng.integers(pre[0], pre[1] + 1))
    mix = np.zeros(start + POST)
    end = start2 = None
    third = None
    if kind == "small_shift":
        contrast = shifted(baseline, float(rng.uniform(0.1, 0.3)) * (-1 if baseline[synthetic.NEGATIVE].sum() > 0.5 else 1))
        mix[start:] = 1.0
    elif kind == "placebo":
        contrast = baseline
    elif kind in ("transient", "episode"):
        n = int(rng.integers(1, 4)) if kind == "transient" else int(rng.integers(12, 31))
        end = start + n
        mix = np.zeros(end + AFTER_END)
        mix[start:end] = 1.0
    elif kind == "gradual":
        ramp = int(rng.integers(10, 41))
        mix[start:] = np.minimum((np.arange(POST) + 1) / ramp, 1.0)
    elif kind == "two_changes":
        start2 = start + int(rng.integers(SECOND_AFTER[0], SECOND_AFTER[1] + 1))
        mix = np.zeros(start2 + POST)
        mix[start:] = 1.0
        # the second change: back to where the user was, or on to another regime far from the first change
        third = baseline if rng.random() < 0.5 else synthetic.draw_regimes(
            rng, negative_baseline=bool(contrast[synthetic.NEGATIVE].sum() < 0.5))[1]
    else:  # abrupt
        mix[start:] = 1.0
    dist = (1.0 - mix)[:, None] * baseline + mix[:, None] * contrast  # (T, 7)
    if third is not None:
        dist[start2:] = third
    return _stream(rng, kind, dist, start, end, start2)


def make_streams(seed: int, kind: str, n: int, length: int = NO_CHANGE_LENGTH,
                 pre: tuple[int, int] = PRE) -> list[Stream]:
    rng = seeded(NAME, seed, kind)
    return [make_stream(rng, kind, length, pre) for _ in range(n)]


def _stream(rng, kind, dist, start=None, end=None, start2=None) -> Stream:
    emotion, probs, gaps, face = synthetic.observe(rng, dist)
    return Stream(kind, probs, gaps, face, start, end, start2, emotion, NAME)
