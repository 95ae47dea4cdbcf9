"""The operating-points benchmark (benchmarks/operating_points.py) on a small seeded run: the service's
thresholds scaled move it along its curve, and each classic is calibrated to the service's rate there."""

from __future__ import annotations

import dataclasses
import json

import pytest

from benchmarks import operating_points
from benchmarks.families import FamilyPlan
from benchmarks.operating_points import judge, markdown, run
from benchmarks.published import PUBLISHED

PLAN = FamilyPlan(no_change=4, no_change_length=600, per_kind=8, iterations=6, workers=1,
                  families=("sessions", "blind", "blind2"))


@pytest.mark.slow
def test_stricter_thresholds_find_less_and_the_classic_follows_the_rate() -> None:
    published = json.loads(PUBLISHED.read_text())
    scales = (0.7, 1.0, 2.1)
    out = run(PLAN, published, scales)
    assert [r["family"] for r in out["families"]] == list(PLAN.families)
    assert [p["scale"] for p in out["pooled"]] == list(scales)  # blind and blind2: held out, pooled
    for r in out["families"]:
        assert r["best_classic"] == published["families"][r["family"]]["bar"]["best_classic"]
        recalls = [p["service"]["all_changes"]["recall"] for p in r["points"]]
        rates = [p["service"]["no_change"]["false_alarms_per_1000"] for p in r["points"]]
        assert recalls == sorted(recalls, reverse=True) and recalls[0] > recalls[-1]
        assert rates == sorted(rates, reverse=True)
        for p in r["points"]:  # calibrated from above: never more false alarms than the service
            assert p["classic"]["no_change"]["false_alarms_per_1000"] <= p["service"]["no_change"]["false_alarms_per_1000"] + 1e-9
            j = judge(p["service"], p["classic"])
            assert j["recall_and_delay"] == (j["checks"]["recall"] and j["checks"]["delay"])
    page = markdown(out, published, PLAN, scales, 1.0)
    assert "not the published streams" in page and page.count("| 2.1 |") == len(PLAN.families) + 1


def test_the_scale_one_point_is_checked_against_the_published_run() -> None:
    published = json.loads(PUBLISHED.read_text())
    p = published["plan"]
    plan = dataclasses.replace(PLAN, seed=p["seed"], no_change=p["no_change"], no_change_length=p["no_change_length"],
                               per_kind=p["per_kind"])
    service = published["families"]["sessions"]["detectors"]["service"]
    result = {"family": "sessions", "points": [{"scale": 1.0, "service": service}]}
    assert operating_points._check(published, result, plan) == "reproduced"
    other = {**service, "all_changes": {**service["all_changes"], "recall": 0.0}}
    assert operating_points._check(published, {**result, "points": [{"scale": 1.0, "service": other}]},
                                   plan).startswith("DIFFERS")
