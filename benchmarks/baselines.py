"""The classic change detectors the CNN-LSTM is measured against, each a per-stream object with
``update(x)`` and a ``drift_detected`` property (river's contract), resetting itself after an alarm.

=============  ===============================  ======================================  ===================
name           detector                         reads per post                          calibrated knob
=============  ===============================  ======================================  ===================
page_hinkley   river ``PageHinkley`` (both)     valence                                 threshold (lambda)
adwin          river ``ADWIN`` (clock 1)        valence mapped to 0..1                  delta
kswin          river ``KSWIN`` (100 / 30)       valence                                 alpha
hddm_a         river ``binary.HDDMA`` 2-sided   valence mapped to 0..1                  drift_confidence
cusum          two-sided self-starting CUSUM    valence, standardised on the posts     h
                                                since the last reset
ema_js         Jensen-Shannon(fast EMA, slow    the 7 probabilities                     h
               EMA) of the emotion distribution
=============  ===============================  ======================================  ===================

Each has one *tuned* shape parameter (a small grid, the best recall at the target ARL0 wins) and one
*calibrated* alarm knob, set by simulation to the target ARL0 on the no-change streams (never the
library default).

>>> d = Cusum(h=4.0, k=0.5)
>>> alarms = [i for i, x in enumerate([0.0, 0.1] * 10 + [-1.0] * 10) if d.update(x) or d.drift_detected]
>>> alarms[0] >= 20
True
"""

from __future__ import annotations

import collections
import itertools
import math
import warnings
from dataclasses import dataclass, field
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from river import drift as river_drift
from river.drift.binary import HDDMA

BURN_IN = 8  # posts a self-starting detector needs before it tests anything (the service's warmup)
TINY = 1e-300  # added to probabilities inside a logarithm


class Cusum:
    """Two-sided CUSUM on standardised values; the reference mean and sd are the running estimates
    over the posts since the last reset (self-starting: a user's normal is not known in advance)."""

    def __init__(self, h: float, k: float = 0.5):
        if h <= 0 or k < 0:
            raise ValueError("need h > 0 and k >= 0")
        self.h, self.k = h, k
        self._reset()

    def _reset(self) -> None:
        self.n, self.mean, self.m2, self.up, self.down = 0, 0.0, 0.0, 0.0, 0.0
        self._drift = False

    @property
    def drift_detected(self) -> bool:
        return self._drift

    def update(self, x: float) -> None:
        if self._drift:
            self._reset()
        if self.n >= BURN_IN:
            sd = math.sqrt(self.m2 / (self.n - 1)) + 1e-3
            z = (x - self.mean) / sd
            self.up = max(0.0, self.up + z - self.k)
            self.down = max(0.0, self.down - z - self.k)
            self._drift = self.up > self.h or self.down > self.h
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)


class EmaJensenShannon:
    """Alarm when the Jensen-Shannon divergence (bits) between a fast and a slow EMA of the emotion
    distribution exceeds h; both start at the mean of the first ``BURN_IN`` posts."""

    def __init__(self, h: float, fast: float = 0.2, slow: float = 0.02):
        if not 0 < slow < fast < 1 or h <= 0:
            raise ValueError("need 0 < slow < fast < 1 and h > 0")
        self.h, self.fast_alpha, self.slow_alpha = h, fast, slow
        self._reset()

    def _reset(self) -> None:
        self.n, self.fast, self.slow = 0, np.zeros(7), np.zeros(7)
        self._drift = False

    @property
    def drift_detected(self) -> bool:
        return self._drift

    def update(self, p: np.ndarray) -> None:
        if self._drift:
            self._reset()
        self.n += 1
        if self.n <= BURN_IN:
            self.fast += (p - self.fast) / self.n
            self.slow = self.fast.copy()
            return
        self.fast += self.fast_alpha * (p - self.fast)
        self.slow += self.slow_alpha * (p - self.slow)
        # JS in bits, inlined (this runs millions of times in calibration). A class a user's classifier never
        # names is 0 in both EMAs: TINY makes its term 0 * log 1 = 0 (0 * log 0 = 0), not NaN, which never alarms
        m = 0.5 * (self.fast + self.slow) + TINY
        js = 0.5 * float(self.fast @ np.log2((self.fast + TINY) / m) + self.slow @ np.log2((self.slow + TINY) / m))
        self._drift = js > self.h


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """JS divergence in bits (0..1).

    >>> jensen_shannon(np.array([1.0, 0.0]), np.array([0.0, 1.0])), jensen_shannon(np.ones(2) / 2, np.ones(2) / 2)
    (1.0, 0.0)
    """
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float((a[nz] * np.log2(a[nz] / m[nz])).sum())

    return 0.5 * kl(p) + 0.5 * kl(q)


@dataclass(frozen=True)
class Baseline:
    """A detector family: ``build(knob, shape)`` makes a fresh detector; ``signal`` says what it reads."""

    name: str
    signal: str  # "valence" | "valence01" | "probs"
    build: Callable[[float, float], object]
    knob: str
    knob_range: tuple[float, float]  # searched on a log scale
    arl_grows_with_knob: bool
    shape: str = ""
    shapes: tuple[float, ...] = field(default=(0.0,))

    def alarms(self, knob: float, shape: float, signals: Iterable[Iterable[float]]) -> list[list[int]]:
        """A fresh detector per stream at ``knob`` and ``shape``: the posts of each stream's ``signals``
        (what ``signal`` names) at which it signalled drift."""
        return alarm_posts(lambda: self.build(knob, shape), signals)


def alarm_posts(build: Callable[[], Any], signals: Iterable[Iterable[float]]) -> list[list[int]]:
    """The posts at which a fresh detector from ``build()`` per stream signalled drift (river's contract:
    ``update(x)``, then ``drift_detected``)."""
    out = []
    for values in signals:
        d, alarms = build(), []
        for t, x in enumerate(values):
            d.update(x)
            if d.drift_detected:
                alarms.append(t)
        out.append(alarms)
    return out


class FastKSWIN(river_drift.KSWIN):
    """river's KSWIN, same window, same random draws, same decisions; only the two-sample KS p-value
    is looked up instead of computed (with ``stat_size`` = n = m, the statistic is k/n and scipy's
    exact p-value depends on k alone), which makes it faster (docs/performance.md). A test checks it against river's."""

    _tables: dict[int, list[float]] = {}

    def update(self, x):
        if self.drift_detected:
            self._reset()
        self.n += 1
        self.window.append(x)
        if len(self.window) < self.window_size:
            self._drift_detected = False
            return
        rnd = [self.window[r] for r in self._rng.sample(range(self.window_size - self.stat_size), self.stat_size)]
        recent = list(itertools.islice(self.window, self.window_size - self.stat_size, self.window_size))
        k = _ks_count(rnd, recent)
        st, self.p_value = k / self.stat_size, self._table()[k]  # type: ignore[assignment]  # river inits it to 0: int
        if self.p_value <= self.alpha and st > 0.1:
            self._drift_detected = True
            self.window = collections.deque(recent, maxlen=self.window_size)
        else:
            self._drift_detected = False

    def _table(self) -> list[float]:
        n = self.stat_size
        if n not in self._tables:
            from scipy import stats

            base = np.arange(n, dtype=float)
            with warnings.catch_warnings():  # as river does: "auto" may fall back to the asymptotic p-value
                warnings.simplefilter("ignore", category=RuntimeWarning)
                self._tables[n] = [float(stats.ks_2samp(base, base + k, method="auto").pvalue) for k in range(n + 1)]
        return self._tables[n]


def _ks_count(a: list[float], b: list[float]) -> int:
    """n * the two-sample KS statistic of two samples of equal size n."""
    x, y = np.sort(a), np.sort(b)
    both = np.concatenate([x, y])
    gap = np.searchsorted(x, both, side="right") - np.searchsorted(y, both, side="right")
    return int(np.abs(gap).max())


def _kswin(alpha: float, _shape: float, seed: int = 7):
    return FastKSWIN(alpha=alpha, window_size=100, stat_size=30, seed=seed)


BASELINES: tuple[Baseline, ...] = (
    Baseline("page_hinkley", "valence",
             lambda t, d: river_drift.PageHinkley(min_instances=30, delta=d, threshold=t, mode="both"),
             "threshold", (0.5, 200.0), True, "delta", (0.02, 0.05, 0.1)),
    # delta above 1 leaves ADWIN's probabilistic reading, but it is the only way down to ARL0 ~2000
    # on these streams (0.99 gives ~2800): the range must reach the target for an honest comparison
    Baseline("adwin", "valence01", lambda d, _: river_drift.ADWIN(delta=d, clock=1),
             "delta", (1e-12, 2.0), False),
    Baseline("kswin", "valence", _kswin, "alpha", (1e-14, 0.05), False),
    Baseline("hddm_a", "valence01",
             lambda c, _: HDDMA(drift_confidence=c, warning_confidence=max(c, min(0.99, 5 * c)), two_sided_test=True),
             "drift_confidence", (1e-12, 0.8), False),  # 0.45 stopped at ARL0 ~3100; 0.6 gives ~1400
    Baseline("cusum", "valence", lambda h, k: Cusum(h=h, k=k), "h", (0.5, 200.0), True, "k", (0.25, 0.5, 1.0)),
    Baseline("ema_js", "probs", lambda h, f: EmaJensenShannon(h=h, fast=f), "h", (1e-3, 0.9), True,
             "fast", (0.1, 0.2, 0.35)),
)
