"""A platform's users, simulated differently from what the temporal model trained on: stand-ins for the
real population that ``emodrift timelines export`` would read. Two sources:

- :func:`family_population`: users cut from a stream family of :mod:`model.families` that the served
  model never trained on (the held-out ``blind`` family by default): the issue's done-when;
- :func:`population`: a quick variation of :mod:`model.synthetic` (below), for the unit tests.

It reuses :mod:`model.synthetic`'s regimes and CNN-output noise but changes four things the committed
temporal model never saw:

- **moods persist**: each post repeats the previous post's true emotion with a per-user probability of
  0.3-0.7 (runs of one emotion that a model trained on independent posts reads as changes);
- **a biased classifier**: 10-30% of posts (per user) come out as ``neutral`` whatever the emotion;
- **daily posting**: gaps lognormal around a per-user median of 12-36 hours, no bursts;
- **fewer faces**: a face on 50-80% of posts (per user).

Kinds, drawn per user: ``stable`` (70%), ``episode`` (15%: 10-30 posts of the contrast regime that recover)
and ``abrupt`` (15%): a population has real changes that nobody labelled. The truth is returned but an
export never carries it.

>>> a, b = population(3, 4, 60), population(3, 4, 60)
>>> all((x.probs == y.probs).all() for x, y in zip(a, b)), a[0].probs.shape, float(a[0].gaps[0])
(True, (60, 7), 0.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.features import LABELS, N_CLASSES
from model.synthetic import _cnn_probabilities, categorical, draw_regimes

NEUTRAL = LABELS.index("neutral")
KIND_SHARES = {"stable": 0.70, "episode": 0.15, "abrupt": 0.15}


@dataclass
class PlatformUser:
    probs: np.ndarray   # (T, 7) float32: what the CNN says
    gaps: np.ndarray    # (T,) seconds since the previous post (0 for the first)
    face: np.ndarray    # (T,) bool
    kind: str
    start: int | None = None  # first post of the change (episode, abrupt)
    end: int | None = None    # first post back at baseline (episode)


def user(rng: np.random.Generator, length: int) -> PlatformUser:
    kind = str(rng.choice(list(KIND_SHARES), p=list(KIND_SHARES.values())))
    _, baseline, _, contrast = draw_regimes(rng)
    mix = np.zeros(length)
    start = end = None
    if kind != "stable":
        start = int(rng.integers(min(24, length // 3), max(length // 3 + 1, length - 30)))
        end = min(length, start + int(rng.integers(10, 31))) if kind == "episode" else None
        mix[start:end] = 1.0
    true_dist = (1.0 - mix)[:, None] * baseline + mix[:, None] * contrast  # (T, 7)
    drawn = categorical(rng, true_dist)  # (T,)
    stick = rng.uniform(0.3, 0.7)
    repeat = rng.random(length) < stick
    emotion = drawn.copy()
    for t in range(1, length):  # a run only within one regime: a change still changes the emotion
        if repeat[t] and mix[t] == mix[t - 1]:
            emotion[t] = emotion[t - 1]
    emotion = np.where(rng.random(length) < rng.uniform(0.1, 0.3), NEUTRAL, emotion)
    face = rng.random(length) < rng.uniform(0.5, 0.8)
    probs, _ = _cnn_probabilities(rng, emotion, face)
    median = rng.uniform(12 * 3600.0, 36 * 3600.0)
    gaps = rng.lognormal(np.log(median), 0.8, length)
    gaps[0] = 0.0
    assert probs.shape == (length, N_CLASSES)
    return PlatformUser(probs, gaps, face, kind, start, end)


FAMILY_KINDS = {"none": 0.70, "transient": 0.10, "episode": 0.10, "abrupt_pos_neg": 0.05, "abrupt_neg_pos": 0.05}


def family_population(seed: int, n_users: int, length: tuple[int, int] = (120, 200),
                      family: str = "blind") -> list[PlatformUser]:
    """``n_users`` users of a stream family, mostly unchanging (:data:`FAMILY_KINDS`), each a window of
    ``length`` posts of one of its streams (a change kind's window holds its change)."""
    from model.families import make_streams

    rng = np.random.default_rng([seed, 5_151])
    kinds = rng.choice(list(FAMILY_KINDS), size=n_users, p=list(FAMILY_KINDS.values()))
    users: list[PlatformUser] = []
    for kind in FAMILY_KINDS:
        n = int((kinds == kind).sum())
        for s in make_streams(family, seed, str(kind), n) if n else []:
            size = min(int(rng.integers(length[0], length[1] + 1)), s.length)
            lo = 0 if s.start is None else max(0, s.start - size + 12)
            hi = s.length - size if s.start is None else min(s.start - 8, s.length - size)
            first = int(rng.integers(lo, max(lo, hi) + 1))
            gaps = s.gaps[first:first + size].astype(np.float64).copy()
            gaps[0] = 0.0
            move = (lambda i: None if i is None or not first <= i < first + size else i - first)  # noqa: E731
            users.append(PlatformUser(s.probs[first:first + size].astype(np.float32), gaps,
                                      s.face[first:first + size].astype(bool), str(kind), move(s.start), move(s.end)))
    order = rng.permutation(len(users))
    return [users[i] for i in order]


def population(seed: int, n_users: int, length: int | tuple[int, int] = 160) -> list[PlatformUser]:
    """``n_users`` seeded users; ``length`` fixed or drawn per user from ``[lo, hi]``."""
    rng = np.random.default_rng([seed, 5_150])
    lengths = [length] * n_users if isinstance(length, int) else rng.integers(length[0], length[1] + 1, n_users)
    return [user(rng, int(n)) for n in lengths]
