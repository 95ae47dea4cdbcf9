"""The return test (``share_return_nats``): at the re-baseline post an episode whose negative share came
back to the user's old level ends as ``recovered``, one whose share stayed as ``new_baseline``."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from service.drift import RETURN_MIN_BACK, RETURN_STEP, DetectorConfig, DriftDetector

# The share rule alone (the fast rule's bar out of reach, the evidence rule off), with the bank. The score
# sits between the recovery and the fast rule's thresholds once the episode starts, so the ordinary recovery
# (score low for recovery_posts) never ends an episode: only the re-baseline post does, one way or the other.
CFG = DetectorConfig(warmup_posts=5, threshold=0.6, recovery_threshold=0.3, confirm_posts=3, recovery_posts=4,
                     cooldown_posts=6, cusum_threshold=0.0, rebaseline_posts=50, share_threshold=12.0,
                     share_slack=0.25, share2_threshold=20.4, share2_slack=0.1, share_return_nats=5.0)
SD = 0.12  # the per-post sd of the simulated share


def share_stream(seed: int, level: float, episode: int | None) -> list[float]:
    """100 posts at 0.2, then ``level`` for ``episode`` posts (None: for good), then 0.2 again."""
    rng = np.random.default_rng(seed)
    after = [level] * 150 if episode is None else [level] * episode + [0.2] * (150 - episode)
    return np.clip(rng.normal([0.2] * 100 + after, SD), 0, 1).tolist()


def first_end(negative: list[float], cfg: DetectorConfig = CFG) -> tuple[int, int, str] | None:
    """(alarm post, end post, resolution) of the first episode; None when there was none."""
    detector, started = DriftDetector(cfg), None
    for i, x in enumerate(negative):
        event = detector.update(0.05 if started is None else 0.5, x)
        if event == "drift.started":
            started = i
        elif event == "drift.ended":
            assert started is not None
            return started, i, detector.resolution
    return None


def endings(level: float, episode: int | None, cfg: DetectorConfig = CFG, seeds: int = 12) -> list[str]:
    out = []
    for seed in range(seeds):
        found = first_end(share_stream(seed, level, episode), cfg)
        assert found is not None, seed  # every change here is found
        start, end, resolution = found
        assert end - start == cfg.rebaseline_posts  # only the re-baseline post ends these episodes
        out.append(resolution)
    return out


def test_a_change_that_persists_ends_as_a_new_baseline() -> None:
    assert endings(0.45, None).count("new_baseline") >= 11


def test_an_episode_over_soon_after_its_alarm_ends_as_recovered() -> None:
    # the alarm comes some tens of posts into the episode, often near its end: the posts since the alarm
    # then look like the old level and like a level of their own alike; the run before the alarm decides
    assert endings(0.5, 35).count("recovered") >= 10
    assert endings(0.5, 35, replace(CFG, share_return_nats=0.0)) == ["new_baseline"] * 12  # off: as before


def test_the_test_dates_the_change_from_the_run_before_the_alarm_and_forgets_it_after() -> None:
    detector = DriftDetector(CFG)
    negative = share_stream(3, 0.5, 35)
    for i, x in enumerate(negative):
        if detector.update(0.05, x) == "drift.started":
            break
    # the episode's level starts from the dating CUSUM's run: the posts that brought the alarm
    assert detector.sh_zrun >= 3 and detector.sh_zsum > detector.sh_zrun * CFG.share2_slack
    at_alarm, run = detector.sh_zsum, detector.sh_zrun
    assert detector.sh_zmax == 0.0
    sums = []
    for x in negative[i + 1:i + 1 + 2 * RETURN_STEP + 1]:
        sums.append(detector.sh_zsum)
        detector.update(0.5, x)
    # the candidate returns come every RETURN_STEP episode posts, the first at the alarm: the largest S^2 / n
    candidates = [sums[k * RETURN_STEP] ** 2 / (run + k * RETURN_STEP) for k in range(3)]
    assert sums[0] == at_alarm and detector.sh_ep_n == 2 * RETURN_STEP + 1
    assert detector.sh_zmax == pytest.approx(max(candidates), abs=1e-3)
    for x in negative[i + 2 + 2 * RETURN_STEP:]:
        if detector.update(0.5, x) == "drift.ended":
            break
    assert (detector.resolution, detector.ended_by) == ("recovered", "return_test")
    assert (detector.sh_zsum, detector.sh_zrun, detector.sh_zmax) == (0.0, 0, 0.0)
    assert not {"sh_zsum", "sh_zrun", "sh_zmax"} & set(detector.to_dict())


def test_a_few_posts_back_just_before_the_decision_are_no_return() -> None:
    # the last 4 posts before the re-baseline post at the old level, the 46 before them still changed: every
    # candidate return has RETURN_MIN_BACK posts after it, mostly still changed, so a new baseline
    negative = share_stream(5, 0.5, None)
    found = first_end(negative)
    assert found is not None and found[2] == "new_baseline"
    start = found[0]
    back = start + CFG.rebaseline_posts - 4 + 1
    assert back > start + RETURN_MIN_BACK
    late = negative[:back] + [0.2] * (len(negative) - back)
    assert first_end(late) == (start, start + CFG.rebaseline_posts, "new_baseline")


def test_its_state_round_trips_mid_episode_and_stays_small() -> None:
    negative = share_stream(8, 0.5, 30)
    straight, resumed = DriftDetector(CFG), DriftDetector(CFG)
    out_a, out_b, most = [], [], 0
    added = {"sh_rs_up", "sh_rn_up", "sh_rs_down", "sh_rn_down", "sh_zsum", "sh_zrun", "sh_zmax"}
    for x in negative:
        score = 0.5 if straight.status == "drifting" else 0.05
        out_a.append(straight.update(score, x))
        resumed = DriftDetector.from_dict(CFG, json.loads(json.dumps(resumed.to_dict())))
        out_b.append(resumed.update(score, x))
        most = max(most, len(added & set(straight.to_dict())))
    assert out_a == out_b and resumed == straight and "drift.ended" in out_a
    # what it adds to a user's state: at most four numbers at a time (the record stays under 1 KiB)
    assert most <= 4


def test_off_it_adds_nothing_to_the_state_and_a_negative_value_is_refused() -> None:
    plain = DriftDetector(replace(CFG, share_return_nats=0.0))
    for x in share_stream(1, 0.5, None):
        plain.update(0.05 if plain.status != "drifting" else 0.5, x)
    assert not {"sh_rs_up", "sh_rn_up", "sh_rs_down", "sh_rn_down", "sh_zsum", "sh_zrun", "sh_zmax"} & set(plain.to_dict())
    assert DetectorConfig().share_return_nats == 0.0
    with pytest.raises(ValueError):
        DetectorConfig(share_return_nats=-1.0)


def test_the_benchmark_on_independent_posts_reads_both_errors_for_each_threshold() -> None:
    from benchmarks.families import served_config
    from benchmarks.published import served_temporal
    from benchmarks.return_test import NATS, QUICK, markdown, run

    config = served_config(served_temporal())
    assert config.share_return_nats in NATS  # the shipped threshold is on the page's grid
    rows = run(QUICK, config)
    assert len(rows) == len(QUICK.shifts) * (1 + len(QUICK.episodes)) and all(r["found"] for r in rows)
    for r in rows:
        shares = [r["recovered"][n] for n in NATS]
        assert shares == sorted(shares, reverse=True)  # a higher bar recovers fewer, never more
        if r["episode"] is None:
            assert r["recovered"][config.share_return_nats] <= 0.05  # lasting changes stay new baselines
    big = next(r for r in rows if r["shift"] == max(QUICK.shifts) and r["episode"] is not None)
    assert big["recovered"][config.share_return_nats] >= 0.3  # returns of a clear shift are seen
    page = markdown(rows, QUICK, config, 1.0)
    assert f"**{config.share_return_nats:g} nats**" in page and page.count("| persistent |") == len(QUICK.shifts)


def test_the_manifest_sets_it_and_an_operator_can_override_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks.detection import REPOSITORY
    from service import calibration, model_repository
    from service.config import Settings

    manifest = model_repository.load(REPOSITORY, "temporal", 4).manifest
    served = calibration.detector_config(manifest, calibration.overrides(Settings()))
    assert served.share_return_nats == manifest["detector"]["share_return_nats"] > 0
    monkeypatch.setenv("EMODRIFT_RETURN_TEST_NATS", "0")  # a platform that would rather hear new_baseline
    operator = calibration.overrides(Settings())
    assert operator == {"share_return_nats": 0.0}
    assert calibration.detector_config(manifest, operator).share_return_nats == 0.0
    assert "share_return_nats" in calibration.describe(manifest, operator)["overridden"]


def test_each_ending_records_its_rule() -> None:
    detector = DriftDetector(replace(CFG, share_return_nats=0.0))
    for x in share_stream(2, 0.5, None):
        if detector.update(0.05 if detector.status != "drifting" else 0.5, x) == "drift.ended":
            break
    assert (detector.resolution, detector.ended_by) == ("new_baseline", "rebaseline")
    # the ordinary recovery: the score low and the share back for recovery_posts posts
    detector = DriftDetector(CFG)
    for x in share_stream(4, 0.6, 12):
        if detector.update(0.05, x) == "drift.ended":
            break
    assert (detector.resolution, detector.ended_by) == ("recovered", "recovery")
    assert DriftDetector.from_dict(CFG, detector.to_dict()).ended_by == "recovery"
