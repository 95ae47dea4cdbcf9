"""The benchmark's labelled user streams, one generator per kind of change (seeded, disjoint from training).

Every stream is drawn with :func:`model.synthetic.observe`: true emotions from the regime of the
moment, passed through the ~66%-accurate FER-2013 confusion matrix with confidence spread, bursty
posting times and ~85% face detection. Regimes are the generator's archetypes (Dirichlet around mostly
happy / neutral / mixed / negative) and contrasts (sad, angry, fearful, negative; happy or neutral for a
negative baseline).

=================  =======================================================================================
kind               stream
=================  =======================================================================================
none               no change: ``NO_CHANGE_LENGTH`` posts of one regime; baselines cycle through happy,
                   neutral, mixed and negative (the false-alarm streams)
abrupt_pos_neg     a non-negative baseline switches to a negative contrast at ``start``, to the end
abrupt_neg_pos     a mostly negative baseline switches to happy or neutral, to the end
gradual_10/_30     the mix goes linearly from baseline to contrast over 10 / 30 posts from ``start``
shift_0.1/.2/.3    the share of negative emotions (angry, disgust, fear, sad) rises by 0.1 / 0.2 / 0.3
transient          one dip of 1-3 contrast posts, then baseline again: must NOT alarm
episode            a dip of 12-30 contrast posts that recovers: must start, and end
placebo            no change, timed like a change stream (a ``start`` is drawn, nothing happens there): the
                   control. An alarm in its window is chance, so a detector's "recall" here is the share
                   of every lasting kind's recall it would score with no change at all
=================  =======================================================================================

Change streams have ``PRE`` = 32..96 posts of baseline before ``start``; persistent changes run
``POST`` posts after it; dips and episodes run ``AFTER_END`` posts after ``end`` (first post back).

>>> s = make_stream(np.random.default_rng(1), "episode")
>>> s.kind, s.start < s.end, s.probs.shape == (s.length, 7)
('episode', True, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.synthetic import ARCHETYPES, NEGATIVE, draw_regimes, observe, shifted

CHANGE_KINDS = ("abrupt_pos_neg", "abrupt_neg_pos", "gradual_10", "gradual_30", "shift_0.1", "shift_0.2",
                "shift_0.3", "episode")
KINDS = ("none", *CHANGE_KINDS, "transient", "placebo")  # appended kinds keep the others' seeds
NO_CHANGE_LENGTH = 3000
PRE = (32, 96)
POST = 150
AFTER_END = 40
SEED = 20_000  # training draws from seed 0; the exporter's held-out figures use 10_000+


@dataclass
class Stream:
    kind: str
    probs: np.ndarray  # (T, 7) float32 CNN output
    gaps: np.ndarray   # (T,) seconds since the previous post
    face: np.ndarray   # (T,) bool
    start: int | None = None  # first post of the change
    end: int | None = None    # first post back at baseline (None: the change lasts to the end)
    # What no detector sees, for the oracle (benchmarks/oracle.py): each post's true emotion and CNN
    # class, and the baseline and contrast regimes (true-emotion distributions) the stream was drawn from.
    emotion: np.ndarray | None = None  # (T,) int
    label: np.ndarray | None = None    # (T,) int: the class the CNN's output was built around
    baseline: np.ndarray | None = None  # (7,)
    contrast: np.ndarray | None = None  # (7,)

    @property
    def length(self) -> int:
        return int(self.probs.shape[0])

    @property
    def negative_share(self) -> np.ndarray:  # (T,)
        return self.probs[:, NEGATIVE].sum(axis=1)


def make_stream(rng: np.random.Generator, kind: str, index: int = 0, length: int = NO_CHANGE_LENGTH) -> Stream:
    if kind == "none":
        name = list(ARCHETYPES)[index % len(ARCHETYPES)]
        baseline = rng.dirichlet(40.0 * ARCHETYPES[name])
        return _stream(rng, kind, np.repeat(baseline[None], length, axis=0), regimes=(baseline, baseline))
    _, baseline, _, contrast = draw_regimes(rng, negative_baseline=kind == "abrupt_neg_pos")
    start = int(rng.integers(PRE[0], PRE[1] + 1))
    if kind.startswith("shift_"):
        contrast = shifted(baseline, float(kind.split("_")[1]))
    elif kind == "placebo":
        contrast = baseline
    mix = np.zeros(start + POST)
    end = None
    if kind in ("transient", "episode"):
        n = int(rng.integers(1, 4)) if kind == "transient" else int(rng.integers(12, 31))
        end = start + n
        mix = np.zeros(end + AFTER_END)
        mix[start:end] = 1.0
    elif kind.startswith("gradual_"):
        ramp = int(kind.split("_")[1])
        mix[start:] = np.minimum((np.arange(POST) + 1) / ramp, 1.0)
    else:
        mix[start:] = 1.0
    true_dist = (1.0 - mix)[:, None] * baseline + mix[:, None] * contrast  # (T, 7)
    return _stream(rng, kind, true_dist, start, end, (baseline, contrast))


def make_streams(kind: str, n: int, seed: int = SEED, length: int = NO_CHANGE_LENGTH) -> list[Stream]:
    """``n`` streams of one kind; each kind has its own seed offset so kinds do not share draws."""
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    return [make_stream(rng, kind, i, length) for i in range(n)]


def _stream(rng, kind, true_dist, start=None, end=None, regimes=(None, None)) -> Stream:
    emotion, probs, gaps, face, label = observe(rng, true_dist, with_labels=True)
    return Stream(kind, probs, gaps, face, start, end, emotion, label, *regimes)
