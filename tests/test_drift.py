"""The drift state machine: exact outcomes on seeded score streams (fast rule, evidence rule, both)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from service.drift import DetectorConfig, DriftDetector

# the fast rule alone (the evidence rule off): exact outcomes that do not depend on the calibration
CFG = DetectorConfig(warmup_posts=5, threshold=0.6, recovery_threshold=0.3, confirm_posts=3, recovery_posts=4, cooldown_posts=6,
                     cusum_threshold=0.0)
# both rules, the evidence rule with a threshold small enough for short hand-made streams
BOTH = DetectorConfig(warmup_posts=5, threshold=0.9, recovery_threshold=0.3, confirm_posts=3, recovery_posts=4,
                      cooldown_posts=6, cusum_threshold=30.0, cusum_slack=0.5)


def calm_moderate_calm(seed: int = 3) -> list[float]:
    """300 calm scores (mean ~0.08), 100 moderate ones (mean ~0.44, never 3 in a row >= 0.9), 100 calm."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.beta(1, 12, 300), rng.beta(4, 5, 100), rng.beta(1, 12, 100)]).tolist()


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


def test_evidence_rule_catches_a_persistent_moderate_rise_the_fast_rule_misses() -> None:
    scores = calm_moderate_calm()
    assert run(scores, replace(BOTH, cusum_threshold=0.0)) == []  # never 3 posts >= 0.9 in a row
    assert run(scores, BOTH) == [(320, "drift.started"), (402, "drift.ended")]  # 21 posts in; ends when calm again


def test_evidence_rule_measures_a_user_against_their_own_level() -> None:
    # a user whose scores always run moderately high (mean ~0.33) and never change: a fixed threshold of
    # 0.5 cries wolf, the self-normalised evidence rule (and the service's calibrated default) does not
    high = np.random.default_rng(4).beta(3, 6, 3000).tolist()
    assert run(high, replace(CFG, threshold=0.5))[0] == (418, "drift.started")
    assert run(high, BOTH) == [] and run(high, DetectorConfig()) == []


def test_evidence_restarts_at_an_alarm_and_waits_out_the_cooldown() -> None:
    detector = DriftDetector(BOTH)
    events = [detector.update(s) for s in calm_moderate_calm()[:20] + [0.95] * 3]
    assert events.count("drift.started") == 1 and detector.status == "drifting" and detector.cusum == 0.0
    frozen = (detector.ref_n, detector.ref_mean, detector.ref_var)
    for _ in range(3):
        detector.update(0.5)  # drifting: the reference does not learn from the new regime
    assert (detector.ref_n, detector.ref_mean, detector.ref_var) == frozen
    assert [detector.update(0.05) for _ in range(4)][-1] == "drift.ended"
    for _ in range(6):  # cooldown: no evidence accumulates, the reference keeps learning
        assert detector.update(0.6) is None and detector.cusum == 0.0
    assert detector.ref_n == frozen[0] + 6


def test_state_from_the_previous_version_loads_and_keeps_working() -> None:
    # stored before the evidence rule existed: no cusum / reference fields; plus a field we do not know
    old = {"posts_seen": 120, "status": "stable", "streak": 1, "cooldown_left": 0, "episode_started_at": None,
           "episodes": 2, "some_future_field": 1}
    detector = DriftDetector.from_dict(DetectorConfig(), old)
    assert (detector.posts_seen, detector.status, detector.episodes, detector.ref_n, detector.cusum) == (120, "stable", 2, 0, 0.0)
    events = [detector.update(s) for s in calm_moderate_calm()[:10] + [0.95] * 3]
    assert events.count("drift.started") == 1 and detector.episodes == 3  # a new user's rules apply at once
    assert detector.ref_n == 13 and set(detector.to_dict()) >= {"cusum", "ref_n", "ref_mean", "ref_var"}


def test_round_trip_preserves_behaviour_with_both_rules() -> None:
    scores = calm_moderate_calm(5) * 3
    straight, resumed = DriftDetector(DetectorConfig()), DriftDetector(DetectorConfig())
    out_a, out_b = [], []
    for s in scores:
        out_a.append(straight.update(s))
        resumed = DriftDetector.from_dict(DetectorConfig(), json.loads(json.dumps(resumed.to_dict())))
        out_b.append(resumed.update(s))
    assert out_a == out_b and resumed == straight
    assert len(json.dumps(straight.to_dict())) < 300


@pytest.mark.parametrize("kwargs", [
    {"threshold": 0.3, "recovery_threshold": 0.5}, {"threshold": 1.0}, {"confirm_posts": 0}, {"cooldown_posts": -1},
    {"cusum_threshold": -1.0}, {"cusum_slack": -0.1}, {"reference_alpha": 0.0}, {"reference_alpha": 1.0},
    {"reference_min_posts": 1}])
def test_invalid_configs_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        DetectorConfig(**kwargs)


def test_scores_outside_unit_interval_are_refused() -> None:
    with pytest.raises(ValueError):
        DriftDetector(CFG).update(1.5)
