"""The oracle: how fast a change of each kind can be found at all, at the benchmark's false-alarm rate.

The oracle knows in advance the user's baseline and the exact regime the change leads to, and it
reads each post through one of two views:

- ``emotion``: the post's **true** emotion, before the ~66%-accurate CNN blurs it (no detector here
  has that);
- ``label``: the class the CNN's output was built around, and whether a face was found. Given those
  two, the simulated CNN probabilities no longer depend on the true emotion (``model/synthetic.py``),
  so this view holds everything the probabilities hold about the change: it is the ceiling for any
  detector that reads the CNN's outputs, the CNN-LSTM and every baseline included.

Its statistic is the CUSUM of the log-likelihood ratio of each post's view under the contrast and the
baseline regime. For a known pre- and post-change distribution the CUSUM is the optimal detector (it
minimises the worst-case mean delay at a given ARL0: Lorden 1971, Moustakides 1986). Its threshold
is calibrated per kind and view, by simulation, so that its ARL0 on no-change continuations of that
kind's own baselines is the benchmark's target; alarms in the warm-up are ignored and it restarts
after an alarm, like every detector here. Where the oracle itself needs a median of 60 posts, a
detector with a median of 19 is not finding those changes but alarming early on a few of them (compare
the placebo control).

>>> calm, sad = np.array([0.1, 0.1, 0.1, 0.4, 0.1, 0.1, 0.1]), np.array([0.1, 0.1, 0.1, 0.1, 0.4, 0.1, 0.1])
>>> llr = np.log(sad / calm)[[3] * 40 + [4] * 20]  # 40 happy posts, then 20 sad ones
>>> cusum_alarms(llr[None], h=6.0)[0]  # log 4 = 1.39 a sad post: the 5th crosses 6, then every 5th again
[44, 49, 54, 59]
"""

from __future__ import annotations

from typing import cast

import numpy as np

from benchmarks import metrics
from benchmarks.bisection import bisect
from benchmarks.streams import CHANGE_KINDS, NO_CHANGE_LENGTH, Stream
from model.synthetic import categorical, observed_distribution

VIEWS = ("emotion", "label")
H_RANGE = (0.5, 60.0)
ITERATIONS = 16


def _observed(dist: np.ndarray, face: np.ndarray) -> np.ndarray:
    """P(CNN class | regime, face) per post (T, 7): through the confusion matrix, and without a face
    half the time a uniformly random class (model/synthetic.py)."""
    through = observed_distribution(np.maximum(dist, 1e-12))
    return np.where(face[:, None], through, 0.5 * through + 0.5 / len(dist))


def _llr(stream: Stream, view: str, values: np.ndarray, face: np.ndarray) -> np.ndarray:
    """Each post's log-likelihood ratio, contrast against baseline (T,), for the view's ``values``."""
    assert stream.baseline is not None and stream.contrast is not None
    if view == "emotion":
        pre, post = np.maximum(stream.baseline, 1e-12), np.maximum(stream.contrast, 1e-12)
        return np.log(post / pre)[values]
    rows = np.arange(len(values))
    return np.log(_observed(stream.contrast, face)[rows, values] / _observed(stream.baseline, face)[rows, values])


def cusum_alarms(llr: np.ndarray, h: float | np.ndarray, warmup: int = metrics.WARMUP) -> list[list[int]]:
    """Alarm positions of a restarting CUSUM over each row of ``llr`` (n, T), vectorised over rows; ``h``:
    one threshold, or one per row."""
    n, length = llr.shape
    alarms: list[list[int]]
    s, alarms = np.zeros(n), [[] for _ in range(n)]
    for t in range(length):
        s = np.maximum(0.0, s + llr[:, t])
        fired = s >= h
        if fired.any():
            s[fired] = 0.0
            if t >= warmup:
                for i in np.flatnonzero(fired):
                    alarms[i].append(t)
    return alarms


def padded(rows: list[np.ndarray]) -> np.ndarray:
    """Rows of different lengths as one (n, T) array, padded with a very negative LLR (never alarms)."""
    out = np.full((len(rows), max(len(r) for r in rows)), -1e9)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


def _no_change_llr(streams: list[Stream], view: str, rng: np.random.Generator, length: int) -> np.ndarray:
    """LLRs of ``length`` fresh posts drawn from each stream's baseline (n, length); a face is found at
    the stream's own rate."""
    rows = []
    for s in streams:
        assert s.baseline is not None  # every benchmark stream has its regimes
        face = rng.random(length) < float(np.mean(s.face))
        dist = np.repeat(s.baseline[None], length, 0) if view == "emotion" else _observed(s.baseline, face)
        rows.append(_llr(s, view, categorical(rng, dist), face))
    return np.stack(rows)


def calibrate(streams: list[Stream], view: str, target: float, seed: int,
              length: int = NO_CHANGE_LENGTH) -> tuple[float, dict]:
    """The threshold whose ARL0 on no-change continuations of these streams' baselines is the smallest
    at or above ``target`` (log-scale bisection)."""
    calm = _no_change_llr(streams, view, np.random.default_rng(seed), length)
    best = bisect(lambda h: metrics.arl0(cusum_alarms(calm, h), [length] * len(streams)),
                  lambda figures: figures["arl0"] >= target, *H_RANGE, ITERATIONS, key=lambda figures: figures["arl0"])
    if best is None:
        best = (H_RANGE[1], metrics.arl0(cusum_alarms(calm, H_RANGE[1]), [length] * len(streams)))
    return best


def run(groups: dict[str, list[Stream]], target: float, seed: int) -> dict:
    """Per view and change kind: the oracle's threshold, its no-change ARL0 and its change metrics."""
    out: dict = {}
    for view in VIEWS:
        out[view] = {}
        for index, kind in enumerate(CHANGE_KINDS):
            streams = groups[kind]
            h, no_change = calibrate(streams, view, target, seed + 1 + index)
            seen = [cast(np.ndarray, s.emotion if view == "emotion" else s.label) for s in streams]  # both drawn
            llr = padded([_llr(s, view, v, s.face) for s, v in zip(streams, seen)])
            alarms = cusum_alarms(llr, h)
            cases = [metrics.Case(cast(int, s.start), s.end, s.length, a) for s, a in zip(streams, alarms)]
            out[view][kind] = {"h": round(h, 3), "arl0": no_change["arl0"], **metrics.change_metrics(cases)}
    return out
