"""The detection benchmark: its streams, its metrics on hand-made alarms with known answers, the
baselines' contract, a quick end-to-end run, and the evidence the service puts in an alert."""

from __future__ import annotations

import argparse
import doctest
import math
import re
from pathlib import Path
from dataclasses import replace

import httpx
import numpy as np
import pytest

import benchmarks.detection
import benchmarks.baselines
import benchmarks.metrics
import benchmarks.streams
import service.evidence
from benchmarks import metrics
from benchmarks.baselines import BASELINES, Cusum, EmaJensenShannon, FastKSWIN
from benchmarks.metrics import Case
from benchmarks.streams import CHANGE_KINDS, NEGATIVE, POST, PRE, make_streams
from model.synthetic import shifted
from service.emotions import LABELS
from tests.conftest import start_service


def test_docstring_examples():
    for module in (benchmarks.metrics, benchmarks.streams, benchmarks.baselines, benchmarks.detection, service.evidence):
        assert doctest.testmod(module).failed == 0


def test_streams_are_seeded_and_shaped_as_documented():
    a, b = make_streams("abrupt_pos_neg", 5), make_streams("abrupt_pos_neg", 5)
    assert all((x.probs == y.probs).all() and x.start == y.start for x, y in zip(a, b))
    assert not np.array_equal(make_streams("abrupt_neg_pos", 1)[0].probs[:10], a[0].probs[:10])
    for kind in CHANGE_KINDS + ("transient",):
        for s in make_streams(kind, 8):
            assert PRE[0] <= s.start <= PRE[1]
            np.testing.assert_allclose(s.probs.sum(axis=1), 1.0, atol=1e-5)
            if kind == "transient":
                assert 1 <= s.end - s.start <= 3
            elif kind == "episode":
                assert 12 <= s.end - s.start <= 30
            else:
                assert s.end is None and s.length == s.start + POST
    for s in make_streams("placebo", 8):  # the control: timed like a lasting change, with none
        assert PRE[0] <= s.start <= PRE[1] and s.end is None and s.length == s.start + POST
    none = make_streams("none", 4, length=500)
    assert [s.length for s in none] == [500] * 4 and all(s.start is None for s in none)


def test_small_shifts_move_the_negative_share_by_their_size():
    base = np.array([0.05, 0.01, 0.04, 0.6, 0.08, 0.1, 0.12])
    for delta in (0.1, 0.2, 0.3):
        assert shifted(base, delta)[NEGATIVE].sum() == pytest.approx(base[NEGATIVE].sum() + delta)
    # seen through the simulated CNN (negative faces often read as neutral), +0.3 shows as about +0.1
    rise = [s.negative_share[s.start:].mean() - s.negative_share[:s.start].mean() for s in make_streams("shift_0.3", 40)]
    assert 0.06 < np.mean(rise) < 0.2


def test_nothing_changes_at_a_placebo_streams_start():
    def rise(kind):
        return np.mean([s.negative_share[s.start:].mean() - s.negative_share[:s.start].mean()
                        for s in make_streams(kind, 60)])
    assert abs(rise("placebo")) < 0.02 < 0.06 < rise("shift_0.3")


def test_the_bar_names_the_faster_baseline_and_judges_recall_beyond_chance():
    from benchmarks.report import _faster_rivals, bar

    def detector(recall, delay, chance):
        kinds = {k: {"recall": recall, "delay_median": delay} for k in CHANGE_KINDS}
        return {**kinds, "no_change": {"arl0": 2000.0}, "all_changes": {"recall": recall, "pre_change_alarm_rate": 0.01},
                "transient": {"dip_alarm_rate": 0.01},
                "placebo": {"recall": chance, "delay_median": 18.0, "pre_change_alarm_rate": 0.0}}

    det = {"cnn_lstm": detector(0.8, 30.0, 0.12), "quick": detector(0.1, 12.0, 0.09), "steady": detector(0.7, 40.0, 0.05)}
    verdict = bar({"detectors": det})
    assert verdict["checks"]["recall_margin"]  # 0.8 against 0.7
    assert not verdict["checks"]["recall_margin_beyond_chance"]  # 0.68 above chance against 0.65: within 0.05
    assert not verdict["met"] and len(verdict["short_of"]) == len(CHANGE_KINDS)
    assert {(r["kind"], r["rival"], r["rival_delay"]) for r in verdict["faster_rivals"]} == {
        (k, "quick", 12.0) for k in CHANGE_KINDS}
    assert f"{CHANGE_KINDS[0]}: median delay 30.0 > 12.0 (quick)" in verdict["short_of"]
    det["cnn_lstm"]["placebo"]["recall"] = 0.01
    assert bar({"detectors": det})["checks"]["recall_margin_beyond_chance"]
    det["cnn_lstm"]["episode"].update(streams=4, delays=[5, 12, 13, 40])  # by 12 posts: 2 of 4 changes found
    det["quick"]["episode"].update(streams=4, delays=[12])
    oracle = {"label": {"episode": {"recall": 1.0, "delay_median": 8.0, "streams": 4, "delays": [3, 8, 9, 12]}}}
    table = "\n".join(_faster_rivals({"detectors": det, "bar": verdict, "plan": {"per_kind": 200}, "oracle": oracle}))
    # medians with their bootstrap intervals where the delays are kept (one delay: no spread)
    assert "| episode | quick | 0.1 (20 of 200) / 12 (12-12) | 0.09 / 18 | 0.8 / 30 (8.5-26.5) | 1.0 / 8 | " \
           "0.500 / 0.250 / 1.000 |" in table
    assert f"| {CHANGE_KINDS[0]} | quick | 0.1 (20 of 200) / 12 | 0.09 / 18 | 0.8 / 30 | – | – / – / – |" in table


def test_arl0_and_change_metrics_on_hand_made_alarms():
    # 3 no-change streams of 1008 posts: 3000 monitored posts, 2 alarms after warm-up (one inside it)
    assert metrics.arl0([[3, 500], [], [900]], [1008] * 3) == {
        "posts": 3000, "false_alarms": 2, "arl0": 1500.0, "false_alarms_per_1000": 0.667}
    cases = [
        Case(start=40, end=None, length=190, alarms=[39]),          # 1 post early: inside the window, delay 0
        Case(start=40, end=None, length=190, alarms=[45, 100]),     # delay 5, a second (false) alarm
        Case(start=40, end=None, length=190, alarms=[20]),          # only a pre-change alarm: missed
        Case(start=40, end=60, length=100, alarms=[50, 61], ends=[]),  # episode: start and end found
    ]
    m = metrics.change_metrics(cases)
    assert m["recall"] == 0.75 and m["pre_change_alarm_rate"] == 0.25
    assert m["delay_median"] == 5.0 and m["found_within_30"] == 0.75  # delays 0, 5, 10 (of 4 changes)
    assert m["precision"] == round(4 / 6, 4) and m["ended"] == 0.25
    assert metrics.dip_alarm_rate([Case(50, 52, 90, [51]), Case(50, 52, 90, [80]), Case(50, 51, 90, [])]) == 0.3333
    assert metrics.window_pr([Case(10, None, 50, [11, 14])], 1) == (0.5, 1.0)
    assert metrics.window_pr([Case(10, None, 50, [14])], 3) == (0.0, 0.0)


def test_baselines_follow_the_river_contract_and_see_a_mean_shift():
    rng = np.random.default_rng(0)
    calm, shifted_up = rng.normal(0, 0.3, 300), rng.normal(0.6, 0.3, 100)
    for cls, stream in ((lambda: Cusum(h=8.0, k=0.5), np.concatenate([calm, shifted_up])),):
        d = cls()
        alarms = [t for t, x in enumerate(stream) if (d.update(float(x)) or d.drift_detected)]
        assert alarms and all(t >= 300 for t in alarms[:1]) and alarms[0] < 330
    d = EmaJensenShannon(h=0.1)
    happy, sad = np.eye(7)[3] * 0.8 + 0.2 / 7, np.eye(7)[4] * 0.8 + 0.2 / 7
    flags = []
    for t in range(80):
        d.update(happy if t < 50 else sad)
        flags.append(d.drift_detected)
    assert not any(flags[:50]) and any(flags[50:60])
    # a classifier that never names some classes (exact zeros): the same alarm, not a NaN that never fires
    never = np.array([0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    happy0, sad0 = never * 0.8 + np.array([0, 0, 0, 0, 0.1, 0, 0.1]), np.array([0, 0, 0, 0.1, 0.8, 0, 0.1])
    d, flags = EmaJensenShannon(h=0.1), []
    for t in range(80):
        d.update(happy0 if t < 50 else sad0)
        flags.append(d.drift_detected)
    assert not any(flags[:50]) and any(flags[50:60])
    assert {b.name for b in BASELINES} == {"page_hinkley", "adwin", "kswin", "hddm_a", "cusum", "ema_js"}


def test_fast_kswin_decides_exactly_as_rivers():
    from river.drift import KSWIN

    x = np.concatenate([np.random.default_rng(1).normal(0, 1, 600), np.random.default_rng(2).normal(1, 1, 200)])
    ours, theirs = FastKSWIN(alpha=1e-3, seed=7), KSWIN(alpha=1e-3, seed=7)
    for v in x.round(2).tolist():  # rounding makes ties, which the statistic must handle as scipy does
        ours.update(v)
        theirs.update(v)
        assert (ours.drift_detected, ours.p_value) == (theirs.drift_detected, theirs.p_value)


@pytest.mark.slow
def test_quick_benchmark_calibrates_every_detector_and_judges_the_bar(tmp_path):
    from benchmarks.detection import QUICK, run
    from benchmarks.report import markdown, plot

    results = run(QUICK, log=lambda *_: None)
    detectors = results["detectors"]
    assert set(detectors) == {"cnn_lstm", *(b.name for b in BASELINES)}
    for name, d in detectors.items():
        assert set(CHANGE_KINDS) <= set(d) and 0 <= d["all_changes"]["recall"] <= 1, name
        assert d["cost"]["state_bytes"] > 0 and d["cost"]["update_us_p50"] > 0
    # the LSTM's threshold is continuous: its calibration lands close above the target
    assert QUICK.arl0 <= detectors["cnn_lstm"]["no_change"]["arl0"] <= 2 * QUICK.arl0
    assert set(results["bar"]["checks"]) >= {"recall_margin", "recall_margin_beyond_chance", "dip_alarms_under_5pct"}
    assert all(0 <= d["placebo"]["recall"] <= 1 for d in detectors.values())  # the control ran for every detector
    text = markdown(results)
    assert "## The bar" in text and "| cnn_lstm |" in text and "## The control" in text
    assert "`--fast-rule {:g},{}`".format(*QUICK.fast_rule) in text  # the report says which fast rule ran
    plot(results, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 10_000


def test_fast_rule_option_is_parsed_checked_and_reaches_the_detector():
    from benchmarks.detection import SERVED_CALIBRATION, SERVICE_FAST_RULE, lstm_config, parse_fast_rule

    # the served model's calibration, from its manifest
    assert SERVICE_FAST_RULE == (SERVED_CALIBRATION["threshold"], SERVED_CALIBRATION["confirm_posts"])
    config = lstm_config(50.0, 0.25, parse_fast_rule("0.9,2"))
    assert (config.threshold, config.confirm_posts, config.cusum_threshold, config.cusum_slack) == (0.9, 2, 50.0, 0.25)
    for bad in ("0.9", "0.9,2,1", "x,2", "0.9,0", "0.1,2", "1.0,2"):  # recovery is 0.25: the threshold must exceed it
        with pytest.raises(argparse.ArgumentTypeError):
            parse_fast_rule(bad)


def test_fast_rule_sweep_calibrates_each_rule_and_marks_the_default():
    from benchmarks import fast_rules
    from benchmarks.detection import QUICK, SERVICE_FAST_RULE

    rows = fast_rules.sweep([SERVICE_FAST_RULE, (0.78, 2)], QUICK, log=lambda *_, **__: None)
    for row in rows:  # each rule's evidence threshold brings the pair back to the target ARL0
        assert QUICK.arl0 <= row["arl0"] <= 2 * QUICK.arl0
        assert row["fast_rule_arl0"] >= row["arl0"]  # the fast rule alone alarms less often than the pair
    # a quicker fast rule never leaves the evidence rule more of the false-alarm allowance (on these
    # short streams 0.78 x 2 rarely fires without a change, so the two thresholds may be equal)
    assert rows[1]["cusum_threshold"] >= rows[0]["cusum_threshold"]
    text = fast_rules.markdown(rows, QUICK, 1.0)
    assert "{:g} x {} *default*".format(*SERVICE_FAST_RULE) in text and "0.78 x 2 |" in text
    assert text.count("\n| ") == 1 + len(rows)  # header and one row per rule


def test_fast_rule_rows_from_another_seed_are_not_judged_against_the_published_baselines():
    from benchmarks import fast_rules
    from benchmarks.detection import QUICK

    figures = {k: {"recall": 0.5, "delay_median": 10.0} for k in CHANGE_KINDS}
    figures.update(all_changes={"recall": 0.5, "pre_change_alarm_rate": 0.01}, transient={"dip_alarm_rate": 0.01})
    row = {"rule": (0.8, 2), "cusum_threshold": 90.0, "slack": 0.5, "arl0": 2017.0, "fast_rule_arl0": 2100.0,
           "figures": figures, "short_of": None, "checks": None}
    text = fast_rules.markdown([row], replace(QUICK, seed=30_000), 1.0)
    assert "(seed 30000)" in text and "Not judged against the bar" in text
    assert text.splitlines()[-3].endswith(" | – |")  # the row's 'short of the bar' cell
    judged = {**row, "short_of": ["episode: ..."], "checks": {"a": True}}
    text = fast_rules.markdown([judged], QUICK, 1.0)
    assert "(same seeds)" in text and "Rules meeting the whole bar: 0.8 x 2." in text


def test_alert_explains_itself(client: httpx.Client) -> None:
    happy = {"angry": 0.02, "disgust": 0.01, "fear": 0.02, "happy": 0.85, "sad": 0.03, "surprise": 0.04, "neutral": 0.03}
    sad = {"angry": 0.08, "disgust": 0.02, "fear": 0.1, "happy": 0.02, "sad": 0.7, "surprise": 0.01, "neutral": 0.07}
    alert = None
    for i in range(80):
        body = client.post("/v1/users/ivy/observations",
                           json={"post_id": f"i{i}", "probabilities": happy if i < 40 else sad}).json()
        if body["alert"]:
            alert = body["alert"]
            break
    assert alert is not None and i >= 40
    evidence = alert["evidence"]
    match = re.fullmatch(r"mostly happy over (\d+) posts → mostly sad over the last (\d+)", evidence["reason"])
    assert match, evidence["reason"]
    before, after = map(int, match.groups())
    assert after == i - 39 and before + after == i + 1  # exactly the sad posts, and all that came before
    assert evidence["top_posts"] and all(p["post_id"] in alert["evidence_post_ids"] for p in evidence["top_posts"])
    changes = [p["score_change"] for p in evidence["top_posts"]]
    assert changes == sorted(changes, reverse=True) and changes[0] > 0
    assert {p["emotion"] for p in evidence["top_posts"]} == {"sad"}
    assert not math.isnan(alert["score"])
    # every observation here claimed a face
    assert evidence["posts_with_face"] == len(alert["evidence_post_ids"])
    assert all(p["face"] is True for p in evidence["top_posts"])


def test_an_alert_resting_on_faceless_posts_says_so(client: httpx.Client) -> None:
    """A user who stops posting faces: the share still moves (the classifier reads the whole picture), and
    a reviewer must see that the evidence had no faces."""
    happy = {"angry": 0.02, "disgust": 0.01, "fear": 0.02, "happy": 0.85, "sad": 0.03, "surprise": 0.04, "neutral": 0.03}
    sad = {"angry": 0.08, "disgust": 0.02, "fear": 0.1, "happy": 0.02, "sad": 0.7, "surprise": 0.01, "neutral": 0.07}
    alert = None
    for i in range(80):
        faceless = i >= 40
        body = client.post("/v1/users/noface/observations",
                           json={"post_id": f"n{i}", "probabilities": sad if faceless else happy,
                                 "face_detected": not faceless}).json()
        if body["alert"]:
            alert = body["alert"]
            break
    assert alert is not None
    evidence, ids = alert["evidence"], alert["evidence_post_ids"]
    faced = sum(int(pid[1:]) < 40 for pid in ids)
    assert evidence["posts_with_face"] == faced < len(ids) / 2
    assert evidence["reason"].endswith(f"; a face in only {faced} of these {len(ids)} posts")
    assert evidence["top_posts"] and all(p["face"] is (int(p["post_id"][1:]) < 40) for p in evidence["top_posts"])
    # the alert as listed and read back carries the same
    assert client.get(f"/v1/alerts/{alert['id']}").json()["evidence"] == evidence


def _first_alert(client: httpx.Client, user: str, before: dict[str, float], after: dict[str, float],
                 change: int = 40, seed: int = 0) -> tuple[dict | None, int]:
    rng = np.random.default_rng(seed)
    for i in range(200):
        mood = before if i < change else after
        probs = rng.dirichlet(np.array([mood[label] for label in LABELS]) * 50)
        body = client.post(f"/v1/users/{user}/observations", json={
            "post_id": f"{user}-{i}", "probabilities": dict(zip(LABELS, map(float, probs)))}).json()
        if body["alert"]:
            return body["alert"], i
    return None, 200


def test_a_same_emotion_alert_says_what_moved(redis_server, redis_client) -> None:  # type: ignore[no-untyped-def]
    """An alert of the share rule, the same emotion leading on both sides, read "mostly happy over 145
    posts → mostly happy over the last 10", saying nothing (a data scientist's audit). The reason's other
    cases (no count claimed when every post read is of the new pattern, "again" only on a return) are
    service.evidence's doctests. A service of its own, live calibration off: the alarm's post is fixed."""
    running = start_service(redis_url=redis_server.url, data_dir=Path("/nonexistent"), live_calibration=False)
    happy = {"angry": 0.02, "disgust": 0.01, "fear": 0.02, "happy": 0.85, "sad": 0.03, "surprise": 0.04, "neutral": 0.03}
    dimmer = {"angry": 0.05, "disgust": 0.02, "fear": 0.06, "happy": 0.55, "sad": 0.24, "surprise": 0.03, "neutral": 0.05}
    try:
        with running.client() as client:
            alert, at = _first_alert(client, "dimmer", happy, dimmer)
    finally:
        running.stop()
    assert alert is not None and at >= 40 and alert["before"]["dominant"] == alert["after"]["dominant"] == "happy"
    reason = alert["evidence"]["reason"]
    shares = re.search(r", negative emotions (\d+)% → (\d+)%$", reason)
    assert shares and int(shares[1]) < int(shares[2]), reason
    assert int(shares[2]) == round(100 * sum(alert["after"]["distribution"][k] for k in ("angry", "disgust", "fear", "sad")))


def test_the_service_ships_the_committed_benchmarks_calibration():
    import json
    from pathlib import Path

    from service import model_repository

    root = Path(__file__).resolve().parent.parent
    # the calibration lives in the served model's manifest (Settings only override it), written there by
    # `python -m benchmarks.calibrate --write` together with docs/calibration.json
    artifact = model_repository.load(root / "model_repository", "temporal")
    declared = artifact.manifest["detector"]
    calibration = json.loads((root / "docs" / "calibration.json").read_text())
    chosen = calibration["chosen"]
    assert calibration["model"] == artifact.tag and declared["calibrated_with"]["command"] == "python -m benchmarks.calibrate --write"
    assert (declared["threshold"], declared["cusum_threshold"], declared["share_threshold"]) == (
        chosen["threshold"], chosen["cusum_threshold"], chosen["share_threshold"])
    assert max(chosen["false_alarms_per_1000"].values()) <= declared["calibrated_with"]["target_false_alarms_per_1000"]
    # the published per-family figures were measured with exactly that calibration
    published = json.loads((root / "docs" / "detection_families.json").read_text())
    assert published["model"] == artifact.tag and published["detector"]["calibrated_with"] == declared["calibrated_with"]


@pytest.mark.slow
def test_the_oracle_is_calibrated_and_sees_less_through_the_cnn():
    from benchmarks import oracle

    groups = {kind: make_streams(kind, 40) for kind in CHANGE_KINDS}
    result = oracle.run(groups, 500.0, seed=5)
    for view in oracle.VIEWS:
        for kind in CHANGE_KINDS:
            assert 500.0 <= result[view][kind]["arl0"] <= 1000.0, (view, kind)  # calibrated from above
    for kind in ("abrupt_pos_neg", "shift_0.3"):
        truth, cnn = result["emotion"][kind], result["label"][kind]
        assert truth["recall"] >= cnn["recall"] and truth["delay_median"] <= cnn["delay_median"]
    # the CNN's class is what the probabilities were built from: the stream keeps it for the oracle
    s = groups["abrupt_pos_neg"][0]
    assert (s.probs.argmax(axis=1) == s.label).mean() > 0.8 and s.emotion.shape == s.label.shape == (s.length,)


def test_a_target_beyond_the_fast_rules_own_arl0_says_how_to_reach_it():
    from benchmarks.report import _unreachable

    ours = {"fast_rule_arl0": 2163.0, "curve": [{"target": 2000.0}, {"target": 4000.0}]}
    text = " ".join(_unreachable(ours))
    assert "Target 4000 lies above the fast rule's own ARL0 (2163): no evidence threshold reaches it" in text
    assert "--arl0 4000" in text and "docs/detection_fast_rules.md" in text
    assert _unreachable({**ours, "fast_rule_arl0": 5000.0}) == []
