"""Training windows from the non-blind families, labelled like :mod:`model.synthetic`'s: what
``python -m model.train_temporal --families`` mixes into its batches (never the held-out family).

A window is ``length`` posts of one family stream: for a change kind it contains the (first) change,
with at least ``MIN_BEFORE`` posts before it; for ``none`` and ``placebo`` it is the stream's start.
Labels (causal, as the detector needs them; ``delay`` = the trainer's ``--label-delay``):

- abrupt (both ways), two_changes (its first change only: the service re-baselines before a second
  one): 1 from ``start + delay``; the ``delay`` posts from the start have weight 0;
- gradual (ramps of 10-50 posts, not given by the stream): 1 from ``start + 20``, weight 0 from the
  start until then;
- small_shift: 1 from ``start + 10``, weight 0 before that from the start (a small change takes more
  posts to tell from noise);
- episode: 1 from ``start + delay`` to ``end + delay``, weight 0 on the ``delay`` posts after each edge;
- transient, none, placebo: 0 everywhere.

Windows are drawn into a pool once (the sessions and days generators are Python loops) and batches
sample from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.families import _TRAINING
from model.features import timeline_features

FAMILIES = ("sessions", "days")  # synthetic's own labelled users come from model.synthetic directly
MIN_BEFORE = 16
GRADUAL_LABEL = 20
SHIFT_LABEL = 10


@dataclass
class Window:
    kind: str
    probs: np.ndarray   # (T, 7)
    gaps: np.ndarray    # (T,)
    face: np.ndarray    # (T,)
    drift: np.ndarray   # (T,) float32
    weight: np.ndarray  # (T,) float32

    @property
    def features(self) -> np.ndarray:  # (T, 10)
        return timeline_features(self.probs, self.gaps, self.face)


def window(rng: np.random.Generator, family: str, kind: str, length: int, delay: int = 1) -> Window:
    module = _TRAINING[family]
    s = module.make_stream(rng, kind, length) if kind == "none" else module.make_stream(rng, kind)
    first = 0
    if kind not in ("none", "placebo") and s.start is not None:
        room = s.start - MIN_BEFORE
        first = int(rng.integers(0, room + 1)) if room > 0 else 0
        first = max(0, min(first, s.start - MIN_BEFORE, s.length - length)) if s.length > length else 0
    s = s.tail(first) if first else s
    t = min(length, s.length)
    drift, weight = np.zeros(s.length, np.float32), np.ones(s.length, np.float32)
    if kind in ("abrupt_pos_neg", "abrupt_neg_pos", "two_changes"):
        drift[s.start + delay:s.start2 if s.start2 is not None else None] = 1.0
        weight[s.start:s.start + delay] = 0.0
        if s.start2 is not None:
            weight[s.start2:] = 0.0  # the second change is never trained on: re-baselining comes first
    elif kind == "gradual":
        drift[s.start + GRADUAL_LABEL:] = 1.0
        weight[s.start:s.start + GRADUAL_LABEL] = 0.0
    elif kind == "small_shift":
        drift[s.start + SHIFT_LABEL:] = 1.0
        weight[s.start:s.start + SHIFT_LABEL] = 0.0
    elif kind == "episode":
        drift[s.start + delay:s.end + delay] = 1.0
        weight[s.start:s.start + delay] = 0.0
        weight[s.end:s.end + delay] = 0.0
    pad = length - t  # a short stream is padded with weight-0 copies of its last post
    def fit(a: np.ndarray) -> np.ndarray:
        a = a[:t]
        return np.concatenate([a, np.repeat(a[-1:], pad, axis=0)]) if pad else a
    w = fit(weight)
    if pad:
        w[t:] = 0.0
    return Window(kind, fit(s.probs), fit(s.gaps), fit(s.face), fit(drift), w.astype(np.float32))


def pool(seed: int, size: int, length: int, kinds: tuple[str, ...], delay: int = 1,
         families: tuple[str, ...] = FAMILIES) -> list[Window]:
    """``size`` windows, families and kinds round-robin, from one generator seeded with ``seed``."""
    rng = np.random.default_rng([seed, 7])
    return [window(rng, families[i % len(families)], kinds[(i // len(families)) % len(kinds)], length, delay)
            for i in range(size)]
