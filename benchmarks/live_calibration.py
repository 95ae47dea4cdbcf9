"""Live calibration offline: the service's :class:`service.calibration.LiveCalibration` driven without
Redis, so the detection benchmark can warm it on a family's own traffic and then measure it.

The service sends its counters to Redis every few seconds and every replica recomputes the scales from
the shared counts; here the counts stay in memory and the scales are recomputed every ``sync_posts``
judged posts, which is what the service does at a traffic of ``sync_posts`` posts per sync interval.
"""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

from service.calibration import LiveCalibration, parse_counts

SYNC_POSTS = 2000


class OfflineLiveCalibration(LiveCalibration):
    """LiveCalibration whose ``sync`` is a local merge, triggered by the posts it counts."""

    def __init__(self, model: str, target_per_1000: float, min_posts: int, sync_posts: int = SYNC_POSTS,
                 hold_young: bool = False, one_scale: bool = False) -> None:
        settings = SimpleNamespace(live_calibration=True, calibration_frozen=False, calibration_hold_young=hold_young,
                                   calibration_one_scale=one_scale,
                                   target_false_alarms_per_1000=target_per_1000, calibration_min_posts=min_posts,
                                   calibration_generation_posts=10**12)
        super().__init__(None, model, settings)
        self.totals: Counter[str] = Counter()
        self.entries: dict[str, str] = {}  # the alarms merged, by id (keys.calibration_alarms' values)
        self.sync_posts = sync_posts
        self._since = 0

    def record(self, age: int, crossed: tuple[float, float] | None, alarmed: bool, alarm_id: str | None = None) -> None:
        super().record(age, crossed, alarmed, alarm_id)
        self._since += 1
        if self._since >= self.sync_posts:
            self.merge()

    def merge(self) -> None:
        if self.frozen:
            # as a frozen service's sync learns nothing: what a frozen replica still counts (posts and
            # alarms, for the recent alarm rate, which no benchmark reads) must not reach the totals
            self._pending.clear()
            self._since = 0
            return
        self.totals.update(self._pending)
        self._pending.clear()
        self.entries.update(self._alarms)
        self._alarms.clear()
        self._since = 0
        self.update(parse_counts([self.totals]))

    def freeze(self) -> None:
        """Stop learning (the benchmark measures the warmed calibration on other users)."""
        self.merge()
        self.frozen = True

    def judge_offline(self, alarm_id: str, real: bool) -> str:
        """A reviewer's verdict on a merged alarm, applied to the totals as the ``calibration_judge`` script
        applies it to the shared counts (``tests/test_calibration_verdicts.py`` holds the two to the same
        counts), verdicts taken in the order given: ``ok`` or ``missing``."""
        entry = self.entries.get(alarm_id)
        if entry is None:
            return "missing"
        bucket, level, was = entry.split(":")[:3]  # offline, verdicts come in order: no judgment number
        if (was == "1") != real:
            delta = 1 if real else -1
            self.totals[f"c:{bucket}"] += delta
            if int(level) >= 0:
                self.totals[f"d:{bucket}:{level}"] += delta
            self.entries[alarm_id] = f"{bucket}:{level}:{int(real)}"
        return "ok"
