"""How long a stream family takes to generate, against a yardstick timed in the same run (speed is
judged by ratios, never by absolute times)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def assert_cheap(make_streams: Callable[[int, str, int], Sequence[Any]], seed: int = 1, users: int = 200) -> None:
    """``users`` no-change streams generate within 30 yardsticks: one scalar Python random draw per post
    generated. Vectorised generation costs a few such draws per post; a per-post Python loop, hundreds."""
    started = time.perf_counter()
    generated = make_streams(seed, "none", users)
    spent = time.perf_counter() - started
    assert len(generated) == users
    posts = sum(len(s.probs) for s in generated)
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    total = 0.0
    for _ in range(posts):
        total += rng.random()
    yardstick = time.perf_counter() - started
    assert total > 0 and spent < 30 * yardstick, (spent, yardstick)
