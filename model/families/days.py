"""A family of users whose mood is set by the day, who post in self-exciting bursts, whose photos often
show no face, and whose classifier is biased towards one class for them.

Each user has
- a personal baseline and a contrasting regime as in :mod:`model.families.sessions` (``base.draw_moods``);
- **day-level moods**: a latent valence per day follows an AR(1) (persistence 0.3-0.9, per-user
  strength 0.5-2): on a good day the regime is tilted towards the happy classes, on a bad day towards
  the negative ones, so a bad week looks like a small change that goes away by itself;
- **self-exciting posting**: posts a day ~ Poisson(mu + a x posts the day before) (mu 0.5-4,
  a 0.2-0.7; a quiet day is 0 posts and a long gap), at waking hours 8-24 spread within the day;
- **many faceless posts**: faces on 40-80% of posts (group shots, scenery, memes);
- **a biased classifier** (``base.draw_classifier(bias=True)``): accuracy 50-75%, and neutral or sad
  takes an extra 5-20% of every true class.

>>> s = make_stream(np.random.default_rng(3), "two_changes")
>>> s.start < s.start2 < s.length, s.family
(True, 'days')
"""

from __future__ import annotations

import numpy as np

from model.families import base
from model.families.base import KINDS, Stream, seeded

NAME = "days"
NO_CHANGE_LENGTH = 2000
PRE = (40, 110)  # a change's first post: the published streams' range (benchmarks.late_changes asks later)
POST = 150
AFTER_END = 40
SECOND_AFTER = (120, 200)
DAY = 86400.0
# How a day's mood tilts the regime: happy and surprise up on a good day, the negative classes up on a bad one.
TILT = np.array([-1.0, -1.0, -1.0, 1.0, -1.0, 0.5, 0.0])


def make_stream(rng: np.random.Generator, kind: str, length: int = NO_CHANGE_LENGTH,
                pre: tuple[int, int] = PRE) -> Stream:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    dist, start, end, start2 = base.mood_regimes(kind, rng, length, pre, POST, AFTER_END, SECOND_AFTER, dip=(2, 3),
                                                 episode=(15, 45), ramp=(15, 50), spread=20.0)
    return observe(rng, kind, dist, start, end, start2)


def make_streams(seed: int, kind: str, n: int, length: int = NO_CHANGE_LENGTH,
                 pre: tuple[int, int] = PRE) -> list[Stream]:
    rng = seeded(NAME, seed, kind)
    return [make_stream(rng, kind, length, pre) for _ in range(n)]


def observe(rng: np.random.Generator, kind: str, dist: np.ndarray, start=None, end=None, start2=None) -> Stream:
    t: int = dist.shape[0]  # an int: numpy's stubs would pick rng.random's scalar overload (face a bool)
    times, day = _times(rng, t)
    rho, strength = rng.uniform(0.3, 0.9), rng.uniform(0.5, 2.0)
    valence = np.zeros(int(day[-1]) + 1)
    for d in range(1, valence.shape[0]):
        valence[d] = rho * valence[d - 1] + np.sqrt(1 - rho * rho) * rng.normal()
    tilted = dist * np.exp(strength * 0.5 * valence[day][:, None] * TILT[None, :])  # (T, 7)
    tilted /= tilted.sum(axis=1, keepdims=True)
    emotion = base.categorical(rng, tilted)
    face = rng.random(t) < rng.uniform(0.4, 0.8)
    probs = base.classify(rng, base.draw_classifier(rng, bias=True), emotion, face)
    gaps = np.diff(times, prepend=times[0])
    return Stream(kind, probs, gaps, face, start, end, start2, emotion, NAME)


def _times(rng: np.random.Generator, t: int) -> tuple[np.ndarray, np.ndarray]:
    """Post times in seconds (T,), sorted, and the day of each post (T,)."""
    mu, excite = rng.uniform(0.5, 4.0), rng.uniform(0.2, 0.7)
    times: list[float]
    times, days, d, yesterday = [], [], 0, 0
    while len(times) < t:
        n = int(rng.poisson(mu + excite * yesterday))
        n = min(n, 30)
        hours = np.sort(8.0 + 16.0 * rng.beta(2.0, 1.5, n)) if n else np.zeros(0)
        times.extend((d * DAY + hours * 3600.0).tolist())
        days.extend([d] * n)
        yesterday, d = n, d + 1
    return np.asarray(times[:t]), np.asarray(days[:t])
