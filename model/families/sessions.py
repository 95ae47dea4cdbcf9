"""A family of users whose moods persist within posting sessions, who post in bursts separated by
heavy-tailed gaps with a day/night rhythm, and whose photos meet a classifier of their own quality.

Each user has
- a personal baseline drawn around cheerful, content, flat, mixed or gloomy (``base.MOODS``) and a
  contrasting regime (a low one; cheerful or content for a gloomy user);
- **sessions**: posts come in sessions of 1 + Geometric posts (mean 1.5-5 per user); within a session
  the mood is shared: the session's emotion distribution is a Dirichlet draw around the regime of the
  moment with a per-user concentration of 2-12 (low: moody sessions, a run of sad posts is normal);
- **posting times**: gaps within a session are exponential (mean 1-15 minutes); between sessions they
  are Pareto-tailed (shape 1.1-1.8, scale 1-8 hours), and a session that would start in the user's
  night (a 7-hour window at a per-user offset) starts when it ends;
- **a classifier of their own** (``base.draw_classifier``): accuracy 50-75%, per-user confusions and
  confidence shape; faces on 60-95% of posts.

>>> s = make_stream(np.random.default_rng(2), "episode")
>>> s.start < s.end < s.length, s.probs.shape == (s.length, 7), s.family
(True, True, 'sessions')
"""

from __future__ import annotations

import numpy as np

from model.families import base
from model.families.base import KINDS, Stream, seeded

NAME = "sessions"
NO_CHANGE_LENGTH = 2000
PRE = (40, 110)  # a change's first post: the published streams' range (benchmarks.late_changes asks later)
POST = 150
AFTER_END = 40
SECOND_AFTER = (120, 200)
HOUR = 3600.0


def make_stream(rng: np.random.Generator, kind: str, length: int = NO_CHANGE_LENGTH,
                pre: tuple[int, int] = PRE) -> Stream:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    dist, start, end, start2 = base.mood_regimes(kind, rng, length, pre, POST, AFTER_END, SECOND_AFTER, dip=(1, 3),
                                                 episode=(10, 35), ramp=(10, 40))
    return observe(rng, kind, dist, start, end, start2)


def make_streams(seed: int, kind: str, n: int, length: int = NO_CHANGE_LENGTH,
                 pre: tuple[int, int] = PRE) -> list[Stream]:
    rng = seeded(NAME, seed, kind)
    return [make_stream(rng, kind, length, pre) for _ in range(n)]


def observe(rng: np.random.Generator, kind: str, dist: np.ndarray, start=None, end=None, start2=None) -> Stream:
    t: int = dist.shape[0]  # an int: numpy's stubs would pick rng.random's scalar overload (face a bool)
    session_mean = rng.uniform(1.5, 5.0)
    first = np.zeros(t, dtype=bool)  # first post of a session
    i = 0
    while i < t:
        first[i] = True
        i += int(rng.geometric(1.0 / session_mean))
    session = np.cumsum(first) - 1  # (T,) session index
    concentration = rng.uniform(2.0, 12.0)
    # each session's mood: a Dirichlet around the regime at its first post (S, 7), shared by its posts
    draws = rng.gamma(concentration * dist[np.flatnonzero(first)] + 1e-3)
    mood = (draws / draws.sum(axis=1, keepdims=True))[session]  # (T, 7)
    emotion = base.categorical(rng, mood)
    face = rng.random(t) < rng.uniform(0.6, 0.95)
    probs = base.classify(rng, base.draw_classifier(rng), emotion, face)
    return Stream(kind, probs, _times(rng, first), face, start, end, start2, emotion, NAME)


def _times(rng: np.random.Generator, first: np.ndarray) -> np.ndarray:
    """Gaps (T,) in seconds: exponential inside a session, Pareto between sessions, no session at night."""
    inside = rng.uniform(60.0, 900.0)
    shape, scale = rng.uniform(1.1, 1.8), rng.uniform(1.0, 8.0) * HOUR
    night = rng.uniform(0.0, 24.0)  # hour of the day the user's 7-hour night begins
    clock, gaps = rng.uniform(0.0, 24.0) * HOUR, np.zeros(first.shape[0])
    for j in range(1, first.shape[0]):
        gap = scale * (1.0 + rng.pareto(shape)) if first[j] else rng.exponential(inside)
        hour = ((clock + gap) / HOUR - night) % 24.0
        if first[j] and hour < 7.0:
            gap += (7.0 - hour) * HOUR  # sleeps until the night is over
        gaps[j] = gap
        clock += gap
    return gaps
