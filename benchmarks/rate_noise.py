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
favour the service. So the classic's figures are interpolated between the two knobs whose rates bracket
the service's, in proportion to where the service's rate lies between theirs. A service rate outside the
grid's rates takes the nearest end; how often that happened is reported (``outside``), since there the
interval understates the noise.
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
    classic (its calibrated one first) each change stream's delay and the false alarms of each user it is
    calibrated on: the first ones, all of them but for a slow classic (``families.SLOW``)."""
    service_delay: list[int | None]
    service_false_alarms: list[int]
    posts: list[int]
    knobs: list[float]
    false_alarms: list[list[int]]
    delay: list[list[int | None]]


def _found(delays: list[int | None]) -> np.ndarray:
    return np.array([np.nan if d is None else d for d in delays], float)


def bracket(rates: np.ndarray, rate: float) -> tuple[int, int, float, bool]:
    """The knobs (indices into ``rates``, ascending) calibrated to ``rate``: the last at or under it and
    the next one up, the weight of the upper one (how far ``rate`` lies towards it), and whether
    ``rate`` lay outside the grid's rates (then both are the nearest end).

    >>> bracket(np.array([0.0, 0.0, 0.2, 0.4]), 0.0)  # no alarm: the least strict knob that raises none
    (1, 2, 0.0, False)
    >>> bracket(np.array([0.25, 0.5, 1.0]), 0.75)
    (1, 2, 0.5, False)
    >>> bracket(np.array([0.1, 0.2]), 0.05), bracket(np.array([0.1, 0.2]), 0.3)
    ((0, 0, 0.0, True), (1, 1, 0.0, True))
    """
    if rate < rates[0]:
        return 0, 0, 0.0, True
    upper = int(np.searchsorted(rates, rate, side="right"))
    if upper == len(rates):
        return len(rates) - 1, len(rates) - 1, 0.0, bool(rate > rates[-1])
    lower = upper - 1
    return lower, upper, float((rate - rates[lower]) / (rates[upper] - rates[lower])), False


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The median of ``values`` each counted ``weights`` times (``np.median`` when the weights are equal).

    >>> weighted_median(np.array([1.0, 2.0, 3.0, 4.0]), np.ones(4)), weighted_median(np.array([1.0, 9.0]), np.array([0.75, 0.25]))
    (2.5, 1.0)
    """
    keep = weights > 0
    values, weights = values[keep], weights[keep]
    if not len(values):
        return float("nan")
    order = np.argsort(values, kind="stable")
    values, cum = values[order], np.cumsum(weights[order])
    half = cum[-1] / 2.0
    low = values[int(np.searchsorted(cum, half - 1e-12 * cum[-1], side="left"))]
    high = values[min(int(np.searchsorted(cum, half + 1e-12 * cum[-1], side="right")), len(values) - 1)]
    return float((low + high) / 2.0)


def _prepare(grids: list[RateGrid]) -> list[dict]:
    fams = []
    for g in grids:
        full = np.array(g.false_alarms, float)
        fams.append({"ours": _found(g.service_delay), "ours_fa": np.array(g.service_false_alarms, float),
                     "posts": np.array(g.posts, float), "fa": full, "order_key": full.sum(axis=1),
                     "theirs": np.array([_found(d) for d in g.delay])})
    return fams


def _compare(fams: list[dict], draw) -> tuple[float, float, int]:
    """The recall margin and the median-delay gap (service minus classic) on one draw of each family's
    users and streams (``draw(f)`` -> their indices), the classic calibrated on the drawn users and its
    figures interpolated between the knobs that bracket the service's rate there; and how many families'
    rates fell outside their grid."""
    ours_all, theirs_all, weights_all, streams_in, outside = [], [], [], 0, 0
    for f in fams:
        users, streams = draw(f)
        own = users[users < f["fa"].shape[1]]  # the drawn users the classic is calibrated on
        if not len(own):  # none drawn among a slow classic's few: calibrated on all of them
            own = np.arange(f["fa"].shape[1])
        rates = f["fa"][:, own].sum(axis=1) / f["posts"][own].sum()
        order = np.lexsort((f["order_key"], rates))  # ties: the knob less strict on the whole sample last
        lower, upper, towards, out = bracket(rates[order], f["ours_fa"][users].sum() / f["posts"][users].sum())
        outside += out
        streams_in += len(streams)
        ours_all.append(f["ours"][streams])
        for at, weight in ((lower, 1.0 - towards), (upper, towards)):
            theirs_all.append(f["theirs"][order[at]][streams])
            weights_all.append(np.full(len(streams), weight))
    ours, theirs, weights = np.concatenate(ours_all), np.concatenate(theirs_all), np.concatenate(weights_all)
    found = ~np.isnan(theirs)
    margin = float((~np.isnan(ours)).mean() - weights[found].sum() / streams_in)
    a = ours[~np.isnan(ours)]
    gap = float(np.median(a) - weighted_median(theirs[found], weights[found])) if len(a) and found.any() else float("nan")
    return margin, gap, outside


def intervals(grids: list[RateGrid], level: float, draws: int, seed: int = 0) -> dict:
    """Bootstrap intervals (``level``) of the recall margin and of the median-delay gap (service minus
    classic), each family's users and streams resampled on their own and the classic calibrated again
    there; several grids are several families pooled as one population. Between the two knobs that
    bracket the service's rate the classic's figures are interpolated: each of its streams counts for
    both knobs, weighted by how near the service's rate lies to each knob's."""
    rng = np.random.default_rng(seed)
    fams = _prepare(grids)

    def draw(f: dict) -> tuple[np.ndarray, np.ndarray]:
        return rng.integers(0, len(f["posts"]), len(f["posts"])), rng.integers(0, len(f["ours"]), len(f["ours"]))

    margins, gaps, outside = [], [], 0
    for _ in range(draws):
        margin, gap, out = _compare(fams, draw)
        margins.append(margin)
        gaps.append(gap)
        outside += out
    picked = draws * len(fams)
    return {"recall": metrics.percentile_interval(margins, level), "median_gap": metrics.percentile_interval(gaps, level),
            "outside": round(outside / picked, 4) if picked else 0.0,
            "knobs": [len(g.knobs) for g in grids]}


def at_sample(grids: list[RateGrid]) -> dict:
    """The recall margin and median-delay gap on the sample itself (no resampling), the classic read at
    the service's measured rate as every resample reads it: interpolated between the knobs that bracket
    it. The bar's own figures hold the classic at the one knob its bisection settled on, the least strict
    whose rate is at most the service's; where the classic's false alarms come in clumps (a slow classic
    on a quarter of the users) that knob's rate can lie far under the service's, and the bar's margin
    flatters the service. ``rates``: per family the classic's rate at that knob and the service's, on the
    users the classic is calibrated on and on all of them, per 1000 posts."""
    fams = _prepare(grids)
    margin, gap, outside = _compare(fams, lambda f: (np.arange(len(f["posts"])), np.arange(len(f["ours"]))))
    rates = []
    for g, f in zip(grids, fams):
        n = f["fa"].shape[1]
        rates.append({"classic_at_knob": round(1000.0 * f["fa"][0].sum() / f["posts"][:n].sum(), 3),
                      "service": round(1000.0 * f["ours_fa"].sum() / f["posts"].sum(), 3)})
    return {"recall_margin": round(margin, 4), "median_gap": gap, "outside": outside, "rates": rates}
