"""The bar's recall margin and median-delay gap with the classic calibrated again on every resample.

The bar calibrates each classic to the service's false-alarm rate *measured* on a family's no-change
users (``families.classics_at``). Another draw of those users gives the service another rate, and the
classic another knob: with 40 users the count moves a lot (``sessions``: 8 false alarms at one seed,
22 at another; docs/detection_rules.md, twenty-first round), and a classic held to a higher rate finds
more. A bootstrap that resamples only the change streams, with the classic's knob fixed, leaves that
out. Here every resample draws a family's no-change users as well as its change streams, measures the
service's rate on those users, and calibrates the classic on the same users as the bar does, choosing
among a grid of knobs computed once (:class:`RateGrid`, built by ``families.rate_grid``): each knob's
rate on the resampled users is read from its per-user false alarms.

A finite grid cannot hit a rate exactly, and always taking the knob just under the service's rate would
favour the service. So the knob is drawn between the two whose rates bracket the service's, the higher
with the probability that makes the expected rate the service's (a randomised calibration). A service
rate outside the grid's rates takes the nearest end; how often that happened is reported (``outside``),
since there the interval understates the noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmarks import metrics

OCTAVES = (-1.5, -0.75, 0.75, 1.5)  # the grid around the service's measured rate, in doublings of it
GRID_ITERATIONS = 8                 # bisection steps per grid knob: each resample measures its rate anyway


@dataclass
class RateGrid:
    """One family's service and one classic, as the resamples need them: per change stream the service's
    delay (None: not found); per no-change user its false alarms and posts monitored; per knob of the
    classic (its calibrated one first) each user's false alarms and each change stream's delay."""
    classic: str
    service_delay: list[int | None]
    service_false_alarms: list[int]
    posts: list[int]
    knobs: list[float]
    false_alarms: list[list[int]]
    delay: list[list[int | None]]


def _found(delays: list[int | None]) -> np.ndarray:
    return np.array([np.nan if d is None else d for d in delays], float)


def pick(rates: np.ndarray, rate: float, draw: float) -> tuple[int, bool]:
    """The index (into ``rates``, ascending) of the knob calibrated to ``rate``: the last at or under it,
    or the next one up with probability proportional to how far ``rate`` is towards it (``draw``: a
    uniform number); and whether ``rate`` lay outside the grid's rates.

    >>> pick(np.array([0.0, 0.0, 0.2, 0.4]), 0.0, 0.99)  # no alarm: the least strict knob that raises none
    (1, False)
    >>> pick(np.array([0.1, 0.2, 0.4]), 0.35, 0.5), pick(np.array([0.1, 0.2, 0.4]), 0.35, 0.8)
    ((2, False), (1, False))
    >>> pick(np.array([0.1, 0.2]), 0.05, 0.0), pick(np.array([0.1, 0.2]), 0.3, 0.0)
    ((0, True), (1, True))
    """
    if rate < rates[0]:
        return 0, True
    upper = int(np.searchsorted(rates, rate, side="right"))
    if upper == len(rates):
        return len(rates) - 1, bool(rate > rates[-1])
    lower = upper - 1
    towards = (rate - rates[lower]) / (rates[upper] - rates[lower])
    return (upper if draw < towards else lower), False


def intervals(grids: list[RateGrid], level: float, draws: int, seed: int = 0) -> dict:
    """Bootstrap intervals (``level``) of the recall margin and of the median-delay gap (service minus
    classic), each family's users and streams resampled on their own and the classic recalibrated there;
    several grids are several families pooled as one population."""
    rng = np.random.default_rng(seed)
    fams = []
    for g in grids:
        full = np.array(g.false_alarms, float)
        posts = np.array(g.posts, float)
        fams.append({"ours": _found(g.service_delay), "ours_fa": np.array(g.service_false_alarms, float),
                     "posts": posts, "fa": full, "order_key": full.sum(axis=1),
                     "theirs": np.array([_found(d) for d in g.delay])})
    margins, gaps, outside, picked = [], [], 0, 0
    for _ in range(draws):
        ours_all, theirs_all = [], []
        for f in fams:
            users = rng.integers(0, len(f["posts"]), len(f["posts"]))
            streams = rng.integers(0, len(f["ours"]), len(f["ours"]))
            posts = f["posts"][users].sum()
            rate = f["ours_fa"][users].sum() / posts
            rates = f["fa"][:, users].sum(axis=1) / posts
            order = np.lexsort((f["order_key"], rates))  # ties: the knob less strict on the whole sample last
            at, out = pick(rates[order], rate, float(rng.random()))
            outside += out
            picked += 1
            ours_all.append(f["ours"][streams])
            theirs_all.append(f["theirs"][order[at]][streams])
        ours, theirs = np.concatenate(ours_all), np.concatenate(theirs_all)
        margins.append(float((~np.isnan(ours)).mean() - (~np.isnan(theirs)).mean()))
        a, b = ours[~np.isnan(ours)], theirs[~np.isnan(theirs)]
        gaps.append(float(np.median(a) - np.median(b)) if len(a) and len(b) else float("nan"))
    return {"recall": metrics.percentile_interval(margins, level), "median_gap": metrics.percentile_interval(gaps, level),
            "outside": round(outside / picked, 4) if picked else 0.0,
            "knobs": [len(g.knobs) for g in grids]}

