"""Detection metrics from alarm positions (post indices, 0-based), as docs/detection.md defines them.

- **ARL0**: posts monitored (after the ``WARMUP`` posts of each no-change stream) per false alarm;
  detectors restart after an alarm, so this is the mean run length to a false alarm.
- **episode recall**: share of change streams with an alarm in the tolerance window, from 1 post before
  the change to 10 posts after its end (a lasting change ends with its stream);
- **pre-change alarms**: share of change streams with an alarm after warm-up and before that window;
- **delay**: posts from the change's first post to the first alarm in the window (0 if 1 post early);
- **precision**: alarms in a window (the first one per change; for an episode also the first one
  within 10 posts of its end) over all alarms raised on change and dip streams; F1 with recall;
- **found within 30**: share of all changes (found or not) with an alarm in the window at delay <= 30;
- **window P/R at w** (CLPsych-2022 style): a predicted change point (an alarm, or the service's
  ``drift.ended``) is right if a true change point (a start, or an episode's end) lies within w posts;
  recall is the share of true change points with a prediction within w posts.

>>> m = change_metrics([Case(start=50, end=None, length=200, alarms=[60]),
...                     Case(start=50, end=None, length=200, alarms=[20, 150]),
...                     Case(start=50, end=None, length=200, alarms=[])])
>>> m["recall"], m["pre_change_alarm_rate"], m["delay_median"], round(m["precision"], 3), m["delays"]
(0.6667, 0.3333, 55.0, 0.667, [10, 100])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

WARMUP = 8
TOLERANCE_AFTER_END = 10


@dataclass
class Case:
    start: int
    end: int | None  # first post back at baseline; None: lasting change
    length: int
    alarms: list[int]
    ends: list[int] = field(default_factory=list)  # the service's drift.ended events, if any


def arl0(alarms: list[list[int]], lengths: list[int]) -> dict:
    """False alarms on no-change streams: ARL0 (posts per false alarm) and false alarms per 1000 posts.

    >>> arl0([[100, 600], [], [9]], [1000, 1000, 1000])
    {'posts': 2976, 'false_alarms': 3, 'arl0': 992.0, 'false_alarms_per_1000': 1.008}
    """
    posts = int(sum(max(0, n - WARMUP) for n in lengths))
    count = int(sum(sum(1 for a in row if a >= WARMUP) for row in alarms))
    return alarm_rate(posts, count)


def alarm_rate(posts: int, count: int) -> dict:
    """``count`` false alarms over ``posts`` no-change posts, as :func:`arl0` reports them."""
    return {"posts": posts, "false_alarms": count, "arl0": round(posts / count, 1) if count else float("inf"),
            "false_alarms_per_1000": round(1000.0 * count / posts, 3) if posts else 0.0}


def window(case: Case) -> tuple[int, int]:
    """The tolerance window [lo, hi] of a change."""
    hi = case.length - 1 if case.end is None else case.end + TOLERANCE_AFTER_END
    return case.start - 1, hi


def in_window(case: Case) -> list[int]:
    """The case's alarms after warm-up that fall in its tolerance window (the first one finds it)."""
    lo, hi = window(case)
    return [a for a in case.alarms if a >= WARMUP and lo <= a <= hi]


def change_metrics(cases: list[Case]) -> dict:
    detected, early, delays, ended = 0, 0, [], 0
    true_alarms, all_alarms = 0, 0
    outcomes: list[int | None] = []  # per case, in order: its delay, None if not found
    early_cases: list[int] = []      # per case: 1 if it had an alarm before its window
    for case in cases:
        lo, hi = window(case)
        alarms = [a for a in case.alarms if a >= WARMUP]
        all_alarms += len(alarms)
        early_cases.append(int(any(a < lo for a in alarms)))
        early += early_cases[-1]
        hits = in_window(case)
        outcomes.append(max(0, hits[0] - case.start) if hits else None)
        if hits:
            detected += 1
            true_alarms += 1
            delays.append(max(0, hits[0] - case.start))
        if case.end is not None:
            # the return to baseline: the service's drift.ended, or (a restarting detector) a new alarm
            back = [a for a in case.ends if case.end - 1 <= a <= case.end + 2 * TOLERANCE_AFTER_END]
            again = [a for a in hits[1:] if case.end - 1 <= a <= case.end + TOLERANCE_AFTER_END]
            ended += bool(hits) and bool(back or again)
            true_alarms += bool(again)
    n = len(cases)
    recall = detected / n if n else 0.0
    precision = true_alarms / all_alarms if all_alarms else 0.0
    return {
        "streams": n,
        "recall": round(recall, 4),
        "pre_change_alarm_rate": round(early / n, 4) if n else 0.0,
        "delay_median": float(np.median(delays)) if delays else float("nan"),
        "delay_p90": float(np.percentile(delays, 90)) if delays else float("nan"),
        "precision": round(precision, 4),
        "f1": round(2 * precision * recall / (precision + recall), 4) if precision + recall else 0.0,
        "ended": round(ended / n, 4) if n else 0.0,
        # unconditional speed: share of ALL changes found within 30 posts (a median over found changes
        # favours detectors that find only the early, lucky ones)
        "found_within_30": found_within(delays, n, 30) if n else 0.0,
        "alarms": all_alarms,
        "delays": sorted(delays),  # of the changes found, so any "found within d posts" can be read off
        "outcomes": outcomes,
        "early": early_cases,
    }


def found_within(delays: list[int], streams: int, posts: float) -> float:
    """The share of ``streams`` change streams found at most ``posts`` posts after their change, from the
    delays of those found (an unconditional speed: a median over found changes favours a detector that
    finds only the early, lucky ones, or penalises one that also finds hard ones late)."""
    return round(sum(d <= posts for d in delays) / streams, 4)


def median_interval(delays: list[int], level: float = 0.9, draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """A bootstrap percentile interval of the median delay (seeded: the same delays give the same interval).
    A median over a few dozen found changes moves by several posts from run to run.

    >>> median_interval([10] * 20)
    (10.0, 10.0)
    >>> lo, hi = median_interval(list(range(1, 41)))
    >>> lo < 20.5 < hi and 1 <= lo and hi <= 40
    True
    """
    if not delays:
        return (float("nan"), float("nan"))
    sample = np.random.default_rng(seed).choice(np.asarray(delays, float), (draws, len(delays)))
    medians = np.median(sample, axis=1)
    tail = 50.0 * (1.0 - level)
    return (float(np.percentile(medians, tail)), float(np.percentile(medians, 100.0 - tail)))


def bootstrap_interval(statistic: Callable[[np.ndarray], float], n: int, level: float = 0.9, draws: int = 1000,
                       seed: int = 0) -> tuple[float, float]:
    """A bootstrap percentile interval of ``statistic(rows)``, where ``rows`` is a resample (with
    replacement) of the indices ``0..n-1`` of the streams it reads (seeded; draws where the statistic is
    undefined, nan, are left out). Every detector read on the same resample keeps the comparison paired.

    >>> found = np.array([1.0] * 30 + [0.0] * 70)
    >>> lo, hi = bootstrap_interval(lambda rows: float(found[rows].mean()), 100)
    >>> 0.2 < lo < 0.3 < hi < 0.4
    True
    """
    if n <= 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    return percentile_interval([statistic(rng.integers(0, n, n)) for _ in range(draws)], level)


def percentile_interval(values: list[float], level: float) -> tuple[float, float]:
    """The central ``level`` of the resampled ``values`` (nan ones left out), rounded as the pages show it."""
    kept = np.array(values, float)
    kept = kept[~np.isnan(kept)]
    if not len(kept):
        return (float("nan"), float("nan"))
    tail = 50.0 * (1.0 - level)
    return (round(float(np.percentile(kept, tail)), 4), round(float(np.percentile(kept, 100.0 - tail)), 4))


def paired_delays(ours: list[int | None], rival: list[int | None]) -> dict:
    """Two detectors' delays on the same change streams (None: not found), compared on the changes both
    found: how many, on how many each was the sooner, and the median of ours minus the rival's. A median
    over each detector's own finds is not this: a detector that also finds hard changes late has the
    longer median even where it is never the later of the two.

    >>> paired_delays([10, 25, None, 90], [12, 20, 30, None])
    {'both_found': 2, 'ours_sooner': 1, 'rival_sooner': 1, 'same': 0, 'median_difference': 1.5}
    """
    both = [(a, b) for a, b in zip(ours, rival) if a is not None and b is not None]
    return {"both_found": len(both), "ours_sooner": sum(a < b for a, b in both),
            "rival_sooner": sum(a > b for a, b in both), "same": sum(a == b for a, b in both),
            "median_difference": float(np.median([a - b for a, b in both])) if both else float("nan")}


def dip_hits(cases: list[Case]) -> list[int]:
    """Per transient dip: 1 if an alarm fell from 1 post before the dip to 10 posts after it."""
    hits = []
    for case in cases:
        lo, hi = window(case)
        hits.append(int(any(lo <= a <= hi and a >= WARMUP for a in case.alarms)))
    return hits


def dip_alarm_rate(cases: list[Case]) -> float:
    """Share of transient dips with an alarm from 1 post before the dip to 10 posts after it."""
    return round(sum(dip_hits(cases)) / len(cases), 4) if cases else 0.0


def false_alarms_per_user(alarms: list[list[int]], lengths: list[int]) -> dict[str, list[int]]:
    """Per no-change user, as :func:`arl0` counts them: false alarms and posts monitored (to resample users).

    >>> false_alarms_per_user([[100, 600], [], [3]], [1000, 1000, 10])
    {'false_alarms': [2, 0, 0], 'posts': [992, 992, 2]}
    """
    return {"false_alarms": [sum(1 for a in row if a >= WARMUP) for row in alarms],
            "posts": [max(0, n - WARMUP) for n in lengths]}


def window_pr(cases: list[Case], w: int) -> tuple[float, float]:
    """CLPsych-2022 style (precision, recall) of change points at window w.

    >>> window_pr([Case(start=10, end=20, length=40, alarms=[12, 30], ends=[21])], 2)
    (0.6667, 1.0)
    """
    right, predicted, found, truths = 0, 0, 0, 0
    for case in cases:
        points = [case.start] + ([case.end] if case.end is not None else [])
        guesses = [a for a in case.alarms if a >= WARMUP] + list(case.ends)
        predicted += len(guesses)
        right += sum(any(abs(g - p) <= w for p in points) for g in guesses)
        truths += len(points)
        found += sum(any(abs(g - p) <= w for g in guesses) for p in points)
    return (round(right / predicted, 4) if predicted else 0.0, round(found / truths, 4) if truths else 0.0)
