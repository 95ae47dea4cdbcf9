"""One detector's outcomes on one family, stream by stream, beside its rival classic's, and the figure each
check of the bar reads on any resample of them. The one home of those statistics: the bar's intervals
(``families.noise``) resample one design against its classic, an exam (``exam.py``) two designs against
each other on the same streams."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def _array(values: Sequence[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], float)


@dataclass(frozen=True)
class Outcomes:
    delay: np.ndarray          # per change stream: posts to the alarm, nan where missed
    rival_delay: np.ndarray    # the rival classic's, on the same streams
    early: np.ndarray          # per change stream: 1 where it alarmed before the change
    dips: np.ndarray           # per transient stream: 1 where it alarmed on the dip
    first: np.ndarray          # per two-change stream: 1 where the first change was found
    second: np.ndarray         # ... and the second
    false_alarms: np.ndarray   # per no-change user (empty where the run kept none)
    posts: np.ndarray          # per no-change user

    @classmethod
    def of(cls, ours: dict[str, Any], rival: dict[str, Any]) -> Outcomes:
        """From the ``per_stream`` records of the detector and of its rival."""
        return cls(_array(ours["delay"]), _array(rival["delay"]), _array(ours["early"]), _array(ours["dips"]),
                   _array(ours["first"]), _array(ours["second"]), _array(ours.get("false_alarms", [])),
                   _array(ours.get("posts", [])))

    def recall(self, rows: np.ndarray) -> float:
        return float((~np.isnan(self.delay[rows])).mean())

    def margin(self, rows: np.ndarray) -> float:
        """Recall minus the rival's."""
        return self.recall(rows) - float((~np.isnan(self.rival_delay[rows])).mean())

    def gap(self, rows: np.ndarray) -> float:
        """Median delay minus the rival's, each over its own finds (nan: one of them found nothing)."""
        ours, rival = self.delay[rows], self.rival_delay[rows]
        ours, rival = ours[~np.isnan(ours)], rival[~np.isnan(rival)]
        return float(np.median(ours) - np.median(rival)) if len(ours) and len(rival) else float("nan")

    def rate(self, rows: np.ndarray) -> float:
        """False alarms per 1000 posts of the no-change users."""
        posts = self.posts[rows].sum()
        return float(1000.0 * self.false_alarms[rows].sum() / posts) if posts else float("nan")

    def early_rate(self, rows: np.ndarray) -> float:
        return float(self.early[rows].mean())

    def dip_rate(self, rows: np.ndarray) -> float:
        return float(self.dips[rows].mean())

    def ratio(self, rows: np.ndarray) -> float:
        """Second changes found over first ones."""
        found = self.first[rows].sum()
        return float(self.second[rows].sum() / found) if found else float("nan")


# Each check of the bar: the statistic it compares, and the field whose rows a resample draws.
STATISTICS: dict[str, tuple[Callable[[Outcomes, np.ndarray], float], str]] = {
    "recall_beats_best_classic_by_0.05": (Outcomes.margin, "delay"),
    "median_delay_at_most_that_classics": (Outcomes.gap, "delay"),
    "pre_change_alarms_at_most_5pct": (Outcomes.early_rate, "early"),
    "dip_alarms_at_most_5pct": (Outcomes.dip_rate, "dips"),
    "second_change_at_least_0.9_of_first": (Outcomes.ratio, "first"),
    "false_alarms_at_most_1_per_1000": (Outcomes.rate, "false_alarms"),
}


def rows(outcomes: Outcomes, check: str) -> int:
    """How many rows (streams, or no-change users) the check's figure is read on."""
    return len(getattr(outcomes, STATISTICS[check][1]))
