"""The one bisection every calibration in the benchmarks runs: a knob (a threshold, a scale) searched on a
log (or any monotone) scale for the strictest setting that still passes a test, most often "at most this
many false alarms". The callers differ only in what they measure, what passes, and which way a passing
knob moves the search; this module holds the loop, so a fix to it (its edge cases, its step count) is
made once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

R = TypeVar("R")


def bisect(measure: Callable[[float], R], passes: Callable[[R], bool], lo: float, hi: float, iterations: int, *,
           passing_goes_down: bool = True, key: Callable[[R], float] | None = None,
           to: Callable[[float], float] = math.log, back: Callable[[float], float] = math.exp
           ) -> tuple[float, R] | None:
    """Bisect ``iterations`` times between ``lo`` and ``hi`` (in the space ``to`` maps them to, the log by
    default; ``back`` maps a midpoint out again) and return the passing knob tried with what ``measure``
    gave there, or None when no knob tried passed.

    ``passing_goes_down``: a passing knob sends the search below it (the knob is a threshold: lower is
    more sensitive, and the search wants the lowest that passes); False sends it above. Which passing knob
    is returned: the one with the smallest ``key`` of its result, or, without ``key``, the last one tried,
    which is the one nearest the edge when passing is monotone in the knob."""
    a, b = to(lo), to(hi)
    best: tuple[float, R] | None = None
    for _ in range(iterations):
        mid = 0.5 * (a + b)
        knob = back(mid)
        result = measure(knob)
        if passes(result):
            if best is None or key is None or key(result) < key(best[1]):
                best = (knob, result)
            a, b = (a, mid) if passing_goes_down else (mid, b)
        else:
            a, b = (mid, b) if passing_goes_down else (a, mid)
    return best
