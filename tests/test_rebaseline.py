"""Re-baselining: a change that persists becomes the user's baseline (``drift.ended`` with resolution
``new_baseline``), and a later change from it is detected like the first one."""

from __future__ import annotations

from dataclasses import replace

import httpx
import numpy as np
import pytest
import redis

from service.drift import DetectorConfig, DriftDetector

# the fast rule alone, re-baselining after 20 posts drifting
CFG = DetectorConfig(warmup_posts=5, threshold=0.6, recovery_threshold=0.3, confirm_posts=3, recovery_posts=4,
                     cooldown_posts=6, cusum_threshold=0.0, rebaseline_posts=20)


def run(scores: list[float], cfg: DetectorConfig = CFG) -> list[tuple[int, str, str]]:
    detector = DriftDetector(cfg)
    out = []
    for i, s in enumerate(scores):
        if event := detector.update(s):
            out.append((i, event, detector.resolution if event == "drift.ended" else ""))
    return out


def test_a_persistent_change_ends_as_a_new_baseline_after_the_documented_posts() -> None:
    scores = [0.1] * 10 + [0.9] * 40
    # started at post 12 (3rd high post), the episode's posts_seen is 13: new baseline at posts_seen 33.
    # Scores that stay high after it alarm again once the cooldown is over: the service's restarted
    # model does not give them (the next test and the end-to-end one).
    assert run(scores)[:2] == [(12, "drift.started", ""), (32, "drift.ended", "new_baseline")]


def test_a_return_before_the_limit_is_a_recovery() -> None:
    scores = [0.1] * 10 + [0.9] * 10 + [0.1] * 30
    assert run(scores) == [(12, "drift.started", ""), (23, "drift.ended", "recovered")]


def test_off_by_default_the_user_stays_drifting() -> None:
    scores = [0.1] * 10 + [0.9] * 200
    assert run(scores, replace(CFG, rebaseline_posts=0)) == [(12, "drift.started", "")]


def test_after_a_new_baseline_the_detector_asks_for_a_restart_and_treats_the_user_as_new() -> None:
    detector = DriftDetector(replace(CFG, cusum_threshold=30.0, cusum_slack=0.5))
    restarts, started = [], None
    for i, s in enumerate([0.1] * 10 + [0.9] * 21):
        if detector.update(s) == "drift.started":
            started = i  # the evidence rule fires on the first high post: 10
        if detector.restart_model:
            restarts.append(i)
    assert started == 10 and restarts == [30]  # exactly the post that ended the episode, 20 after its start
    # the new baseline began after the alarm (posts_seen 11): the model replays the 20 posts since
    assert (detector.status, detector.baseline_since, detector.replay_posts) == ("stable", 11, 20)
    assert (detector.ref_n, detector.cusum) == (0, 0.0)
    assert detector.cooldown_left == max(CFG.cooldown_posts, CFG.warmup_posts)
    detector.update(0.1)
    assert not detector.restart_model  # one post only
    round_trip = DriftDetector.from_dict(detector.config, detector.to_dict())
    assert round_trip == detector and "restart_model" not in detector.to_dict()


def test_a_second_change_from_the_new_baseline_is_detected_like_the_first() -> None:
    # The caller restarts the model at a new baseline, so its scores fall back as for a new user: the
    # second change then alarms after the same 3 confirming posts as the first.
    rng = np.random.default_rng(4)
    calm = lambda n: rng.uniform(0.02, 0.2, n).tolist()  # noqa: E731
    scores = calm(10) + [0.9] * 25 + calm(30) + [0.9] * 5
    events = run(scores)
    assert [e[1:] for e in events] == [("drift.started", ""), ("drift.ended", "new_baseline"), ("drift.started", "")]
    first, second = events[0][0] - 10, events[2][0] - 65
    assert first == second == 2


def test_rebaseline_posts_must_not_be_negative() -> None:
    with pytest.raises(ValueError):
        DetectorConfig(rebaseline_posts=-1)


HAPPY = {"angry": 0.02, "disgust": 0.01, "fear": 0.02, "happy": 0.85, "sad": 0.03, "surprise": 0.04, "neutral": 0.03}
SAD = {"angry": 0.08, "disgust": 0.02, "fear": 0.1, "happy": 0.02, "sad": 0.7, "surprise": 0.01, "neutral": 0.07}


def test_end_to_end_a_lasting_change_becomes_the_baseline_and_a_later_one_alerts_again(
        client: httpx.Client, redis_client: redis.Redis) -> None:
    model = client.get("/v1/model").json()
    limit = model["detector"]["rebaseline_posts"]
    assert limit > 0 and "rebaseline_posts" in model["detector"]["calibration"]["from_manifest"]
    alerts = []
    plan = [HAPPY] * 40 + [SAD] * (limit + 40) + [HAPPY] * 60
    for i, probabilities in enumerate(plan):
        body = client.post("/v1/users/rae/observations",
                           json={"post_id": f"r{i}", "probabilities": probabilities}).json()
        if body["alert"]:
            alerts.append((i, body["alert"]))
    kinds = [(a["type"], a["resolution"]) for _, a in alerts]
    # the first change, its new baseline, the change back (from the new baseline) and, as the happy
    # posts persist too, its own new baseline
    assert kinds == [("drift.started", None), ("drift.ended", "new_baseline")] * 2, kinds
    (start, _), (end, ended), (again, _), (end2, ended2) = alerts
    assert 40 <= start and end - start == limit and end2 - again == limit  # the documented number of posts
    assert ended["before"]["dominant"] == "happy" and ended["after"]["dominant"] == "sad"
    back = 40 + limit + 40  # the first happy post again
    assert back <= again <= back + again_within(start - 40)  # found about as fast as the first change
    assert ended2["before"]["dominant"] == "sad" and ended2["after"]["dominant"] == "happy"  # sad was the baseline
    state = client.get("/v1/users/rae").json()
    assert state["drift"]["status"] == "stable" and state["last_alert"]["resolution"] == "new_baseline"
    assert redis_client.xlen("ed:outbox") == 4


def again_within(first_delay: int) -> int:
    """How many posts the second change may take: as many as the first, and a few more (the restarted
    model has seen only the new baseline's posts since the restart)."""
    return first_delay + 5


# --- the share rule: what a CUSUM on the negative share catches, the detector catches too ------------
SHARE = replace(CFG, share_threshold=12.0, share_slack=0.25, rebaseline_posts=30)


def shares(seed: int, before: float, after: float, n_before: int = 100, n_after: int = 60) -> list[float]:
    rng = np.random.default_rng(seed)
    return np.clip(np.concatenate([rng.normal(before, 0.1, n_before), rng.normal(after, 0.1, n_after)]), 0, 1).tolist()


def run_share(scores: list[float], negative: list[float | None], cfg: DetectorConfig = SHARE) -> list[tuple[int, str, str]]:
    detector = DriftDetector(cfg)
    out = []
    for i, (s, x) in enumerate(zip(scores, negative)):
        if event := detector.update(s, x):
            out.append((i, event, detector.resolution if event == "drift.ended" else ""))
    return out


def test_the_share_rule_catches_a_rise_of_the_negative_share_the_score_misses() -> None:
    negative = shares(1, 0.2, 0.45)
    calm = [0.05] * len(negative)
    events = run_share(calm, negative)
    assert events and events[0][1] == "drift.started" and 100 <= events[0][0] <= 110
    # the score never rose, but the share has not come back: the pattern persists, a new baseline
    assert events[1] == (events[0][0] + 30, "drift.ended", "new_baseline")
    assert run_share(calm, negative, replace(SHARE, share_threshold=0.0)) == []  # off
    assert run_share(calm, [None] * len(negative)) == []  # no shares given: the rule skips
    assert run_share(calm, shares(1, 0.2, 0.2)) == []  # no change


def test_a_share_episode_recovers_when_the_share_comes_back() -> None:
    rng = np.random.default_rng(2)
    negative = np.clip(np.concatenate([rng.normal(0.2, 0.1, 100), rng.normal(0.55, 0.1, 12),
                                       rng.normal(0.2, 0.1, 40)]), 0, 1).tolist()
    events = run_share([0.05] * len(negative), negative)
    assert [e[1:] for e in events] == [("drift.started", ""), ("drift.ended", "recovered")]
    assert 100 <= events[0][0] < 112 and 112 < events[1][0] < 112 + 20


def test_the_share_rule_reads_falls_too_and_its_state_round_trips() -> None:
    negative = shares(3, 0.6, 0.3)
    detector, resumed = DriftDetector(SHARE), DriftDetector(SHARE)
    out_a, out_b = [], []
    for x in negative:
        out_a.append(detector.update(0.05, x))
        resumed = DriftDetector.from_dict(SHARE, resumed.to_dict())
        out_b.append(resumed.update(0.05, x))
    assert out_a == out_b and resumed == detector and "drift.started" in out_a
    assert 100 <= out_a.index("drift.started") <= 110
    with pytest.raises(ValueError):
        DriftDetector(SHARE).update(0.1, 1.5)


def test_end_to_end_faceless_posts_reach_the_model_as_faceless_and_the_share_rule_reads_them(
        client: httpx.Client, redis_client: redis.Redis) -> None:
    # the served calibration reads faceless posts in the share rule (share_faceless: true, as the classics
    # read every post), while the temporal model is told which posts had no face (its `face` feature)
    from service import keys
    from service.state_store import decode_record

    model = client.get("/v1/model").json()["detector"]["calibration"]
    assert "share_faceless" in model["from_manifest"]
    posts = [HAPPY] * 60 + [SAD] * 30
    for user, face in (("faceless", False), ("faces", True)):
        for i, probabilities in enumerate(posts):
            client.post(f"/v1/users/{user}/observations", json={
                "post_id": f"f{i}", "probabilities": probabilities, "face_detected": i < 60 or face}).raise_for_status()
    states = {user: decode_record(redis_client.get(keys.state(user))) for user in ("faceless", "faces")}
    # the same probabilities, faceless or not: the LSTM's state differs, so the flag reached the model ...
    assert not np.allclose(states["faceless"].h, states["faces"].h)
    # ... and the share reference learnt the sad faceless posts too, until the share rule (or the score)
    # alarmed, at least 3 posts in
    learnt = {user: state.detector.get("sh_n", 0) for user, state in states.items()}
    assert learnt["faceless"] > 60 and learnt["faces"] > 60, learnt


def test_a_new_baseline_starts_its_share_reference_from_the_posts_since_the_alarm() -> None:
    """With ``share_rebaseline_seed`` the share reference of a new baseline starts from the episode's
    posts instead of from nothing. A second change (0.45 -> 0.65) then ends as a new baseline like the
    first; a reference restarted from nothing was still young when the second change came, learnt part
    of it, and read the persisting change as ``recovered`` (then alarmed again)."""
    ends = {False: [], True: []}
    for seed in range(6):
        rng = np.random.default_rng(seed)
        negative = np.clip(np.concatenate([rng.normal(0.2, 0.1, 100), rng.normal(0.45, 0.1, 60),
                                           rng.normal(0.65, 0.1, 80)]), 0, 1).tolist()
        for flag in ends:
            events = run_share([0.05] * len(negative), negative,
                               replace(SHARE, share_rebaseline_seed=flag, share_uncertainty=0.5))
            assert events[:2] == [(events[0][0], "drift.started", ""), (events[0][0] + 30, "drift.ended", "new_baseline")]
            assert events[2][1] == "drift.started" and 160 <= events[2][0] < 180  # the second change, found
            ends[flag].append(events[3][2])
    assert ends[True].count("new_baseline") >= 5 and ends[False].count("new_baseline") == 0, ends
    detector = DriftDetector(replace(SHARE, share_rebaseline_seed=True))
    for x in shares(7, 0.2, 0.5):
        if detector.update(0.05, x) == "drift.ended":
            break
    assert detector.resolution == "new_baseline" and detector.sh_n == 30 and abs(detector.sh_mean - 0.5) < 0.05
    assert 0.004 < detector.sh_var < 0.02  # the episode's own spread (sd 0.1)
