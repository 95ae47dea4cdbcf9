"""The drift state machine: exact outcomes on seeded score streams."""

from __future__ import annotations

import numpy as np
import pytest

from service.drift import DetectorConfig, DriftDetector

CFG = DetectorConfig(warmup_posts=5, threshold=0.6, recovery_threshold=0.3, confirm_posts=3, recovery_posts=4, cooldown_posts=6)


def run(scores: list[float], cfg: DetectorConfig = CFG) -> list[tuple[int, str]]:
    detector = DriftDetector(cfg)
    return [(i, event) for i, s in enumerate(scores) if (event := detector.update(s))]


def test_no_alarm_during_warmup_even_on_high_scores() -> None:
    assert run([0.99] * 4) == []
    detector = DriftDetector(CFG)
    for _ in range(4):
        detector.update(0.99)
    assert detector.status == "warming_up"
    detector.update(0.99)
    assert detector.status == "stable"


def test_one_change_gives_one_start_and_one_end() -> None:
    scores = [0.1] * 10 + [0.9] * 20 + [0.05] * 20
    assert run(scores) == [(12, "drift.started"), (33, "drift.ended")]


def test_isolated_spikes_below_confirm_never_alarm() -> None:
    scores = [0.1] * 10 + [0.9, 0.9, 0.1] * 30
    assert run(scores) == []


def test_hysteresis_holds_drifting_between_the_thresholds() -> None:
    scores = [0.1] * 10 + [0.9] * 3 + [0.45] * 50
    assert run(scores) == [(12, "drift.started")]


def test_cooldown_suppresses_an_immediate_second_episode() -> None:
    scores = [0.1] * 10 + [0.9] * 3 + [0.1] * 4 + [0.9] * 8
    events = run(scores)
    assert events[:2] == [(12, "drift.started"), (16, "drift.ended")]
    # 6 posts of cooldown (17..22) then 3 confirming posts (23, 24, 25 > len) -> no second start yet
    assert len(events) == 2
    assert run(scores + [0.9] * 3)[2] == (25, "drift.started")


def test_round_trip_preserves_behaviour() -> None:
    rng = np.random.default_rng(7)
    scores = rng.uniform(0, 1, 400).tolist()
    straight = DriftDetector(CFG)
    resumed = DriftDetector(CFG)
    out_a, out_b = [], []
    for s in scores:
        out_a.append(straight.update(s))
        resumed = DriftDetector.from_dict(CFG, resumed.to_dict())  # as if loaded from Redis each post
        out_b.append(resumed.update(s))
    assert out_a == out_b and any(out_a)


@pytest.mark.parametrize("kwargs", [
    {"threshold": 0.3, "recovery_threshold": 0.5}, {"threshold": 1.0}, {"confirm_posts": 0}, {"cooldown_posts": -1}])
def test_invalid_configs_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        DetectorConfig(**kwargs)


def test_scores_outside_unit_interval_are_refused() -> None:
    with pytest.raises(ValueError):
        DriftDetector(CFG).update(1.5)
