"""The drift state machine: exact outcomes on seeded score streams (fast rule, evidence rule, both)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from service.drift import DetectorConfig, DriftDetector, ScoreProfile, logit

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
    detector = DriftDetector.from_dict(replace(DetectorConfig(), threshold=0.85, confirm_posts=3), old)
    assert (detector.posts_seen, detector.status, detector.episodes, detector.ref_n, detector.cusum) == (120, "stable", 2, 0, 0.0)
    events = [detector.update(s) for s in calm_moderate_calm()[:10] + [0.95] * 3]
    assert events.count("drift.started") == 1 and detector.episodes == 3  # a new user's rules apply at once
    assert detector.ref_n == 13 and set(detector.to_dict()) >= {"ref_n", "ref_mean", "ref_var"}


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


def _climb(ages: int = 80) -> np.ndarray:
    """What the temporal model scores on a new user who never changes: ~0.01 at first, ~0.2 by post 80."""
    return np.concatenate([np.full(10, 0.01), np.linspace(0.01, 0.2, ages - 10)])


def _profile(climb: np.ndarray) -> ScoreProfile:
    return ScoreProfile("test-profile", tuple(logit(float(s)) for s in climb), (0.3,) * len(climb))


def test_the_score_profile_keeps_a_new_users_climbing_score_from_reading_as_evidence() -> None:
    rng = np.random.default_rng(4)
    climb = _climb()
    calm = np.concatenate([climb, np.full(300, climb[-1])]) * rng.lognormal(0.0, 0.3, 380)
    raw = replace(BOTH, warmup_posts=8)
    profiled = replace(raw, profile=_profile(climb))
    first = run(calm.tolist(), raw)[0]
    assert first[1] == "drift.started" and first[0] < 120  # the climb alone alarms on the raw score
    assert run(calm.tolist(), profiled) == []
    # a user who then moves to moderate scores is still found on the profile's scale
    changed = calm.tolist() + (rng.beta(4, 5, 60)).tolist()
    assert [e for _, e in run(changed, profiled)] == ["drift.started"]
    assert run(changed, profiled)[0][0] >= len(calm)


def test_a_reference_on_another_score_scale_restarts_instead_of_mixing() -> None:
    profile = _profile(_climb())
    on_profile = DriftDetector(replace(BOTH, profile=profile))
    for s in calm_moderate_calm()[:40]:
        on_profile.update(s)
    state = json.loads(json.dumps(on_profile.to_dict()))
    assert state["ref_profile"] == "test-profile" and state["ref_n"] == 40
    assert DriftDetector.from_dict(replace(BOTH, profile=profile), state) == on_profile  # same scale: kept
    for config in (BOTH, replace(BOTH, profile=replace(profile, id="other"))):  # raw scale, or another profile
        loaded = DriftDetector.from_dict(config, state)
        assert (loaded.ref_n, loaded.ref_mean, loaded.ref_var, loaded.cusum) == (0, 0.0, 0.0, 0.0)
        assert loaded.ref_profile == config.profile_id
        assert (loaded.posts_seen, loaded.status) == (40, on_profile.status)  # the rest of the state is kept
    # a state written before profiles existed (no ref_profile) has a raw-scale reference
    old = {k: v for k, v in state.items() if k != "ref_profile"}
    assert DriftDetector.from_dict(replace(BOTH, profile=profile), old).ref_n == 0
    assert DriftDetector.from_dict(BOTH, old).ref_n == 40


def test_invalid_score_profiles_are_refused() -> None:
    for mean, sd in (((), ()), ((0.0, 1.0), (1.0,)), ((0.0,), (-1.0,))):
        with pytest.raises(ValueError):
            ScoreProfile("p", mean, sd)


def test_the_fast_rule_asks_more_of_a_score_where_the_profile_runs_high() -> None:
    # the model scores everyone ~1 logit higher over posts 20-60 than a settled user (the last entry)
    mean = tuple([-1.0] * 60 + [-2.0] * 40)
    profile = ScoreProfile("bump", mean, (1.0,) * 100)
    assert profile.excess(30) == 1.0 and profile.excess(500) == 0.0
    assert ScoreProfile("dip", tuple([-4.0] * 10 + [-2.0]), (1.0,) * 11).excess(3) == 0.0  # never below 0
    config = replace(CFG, threshold=0.6, cusum_threshold=0.0)
    early, late = [0.05] * 30 + [0.7] * 3, [0.05] * 80 + [0.7] * 3  # logit(0.7) = 0.82: above 0.6's 0.40 by 0.42
    assert [e for _, e in run(early, config)] == ["drift.started"]  # no profile: the same bar at every age
    assert run(early, replace(config, profile=profile)) == []  # at post 30 the bar is 1 logit higher
    assert run(late, replace(config, profile=profile)) == [(82, "drift.started")]  # settled: the plain threshold


def test_an_alarm_names_the_rules_that_raised_it_and_nothing_else_does() -> None:
    def raised(scores: list[float], cfg: DetectorConfig, shares: list[float] | None = None) -> list[tuple[int, tuple[str, ...]]]:
        detector, out = DriftDetector(cfg), []
        for i, s in enumerate(scores):
            event = detector.update(s, None if shares is None else shares[i])
            assert bool(detector.raised_by) == (event == "drift.started"), (i, event, detector.raised_by)
            if event == "drift.started":
                out.append((i, detector.raised_by))
        assert "raised_by" not in detector.to_dict()  # it belongs to the post, not to the stored state
        return out

    scores = calm_moderate_calm()
    assert raised(scores, BOTH) == [(320, ("evidence",))]  # the moderate rise: never 3 posts >= 0.9 in a row
    assert raised([0.05] * 20 + [0.95] * 5, CFG) == [(22, ("fast",))]
    # a jump: the evidence rule alone when its threshold is low, both when it crosses on the fast rule's
    # third post, the fast rule alone when the evidence needs one post more
    jump = [0.05] * 40 + [0.99] * 5
    assert raised(jump, replace(BOTH, cusum_threshold=5.0)) == [(40, ("evidence",))]
    assert raised(jump, replace(BOTH, cusum_threshold=140.0)) == [(42, ("fast", "evidence"))]
    assert raised(jump, replace(BOTH, cusum_threshold=145.0)) == [(42, ("fast",))]
    # the share rule alone: the score stays calm while the negative share moves for good
    rng = np.random.default_rng(1)
    shares = np.clip(np.r_[rng.normal(0.1, 0.05, 60), rng.normal(0.6, 0.05, 40)], 0, 1).tolist()
    share_cfg = replace(CFG, share_threshold=12.0, share_slack=0.25)
    assert [rules for _, rules in raised([0.05] * 100, share_cfg, shares)] == [("share",)]
