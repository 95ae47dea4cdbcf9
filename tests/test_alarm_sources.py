"""Where the service's alarms come from (benchmarks/alarm_sources.py): false alarms counted per age and
per rule, finds attributed to the rules that raised them, and the published page reproduced."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from benchmarks import alarm_sources
from benchmarks.alarm_sources import Plan, finds_by_rules, per_age, rule_counts
from benchmarks.published import DOCS, published_runs
from model.families.base import Stream


def stream(length: int = 300, start: int | None = 100, kind: str = "abrupt_pos_neg") -> Stream:
    return Stream(kind, np.full((length, 7), 1 / 7, dtype=np.float32), np.ones(length), np.ones(length, dtype=bool), start)


def test_false_alarms_are_counted_per_age_of_the_posts_kept() -> None:
    rows = per_age([[3, 10, 70, 200], [130]], [300, 100])  # post 3 is in the warm-up: not counted
    assert [r["false_alarms"] for r in rows] == [1, 1, 2]
    assert [r["posts"] for r in rows] == [(64 - 8) * 2, 64 + (100 - 64), 300 - 128]  # the short user ends at 100


def test_an_alarm_counts_for_each_rule_that_raised_it_and_a_find_for_its_rules() -> None:
    alarms = [[5, 40, 120], [150]]
    sources = [[("share",), ("fast", "share"), ("fast",)], [("evidence",)]]
    assert rule_counts(sources, alarms) == {"fast": 2, "evidence": 1, "share": 1}  # the warm-up alarm is not one
    # the first alarm in the change's window finds it: the second stream's, and the first's at post 120
    found = finds_by_rules([stream(), stream(start=149)], alarms, sources)
    assert found == {"fast": 1, "evidence": 1, "share": 0, "several": 0}
    both = finds_by_rules([stream(start=40)], [[40]], [[("fast", "share")]])
    assert both == {"fast": 0, "evidence": 0, "share": 0, "several": 1}


def test_a_quick_run_gives_every_figure() -> None:
    published = published_runs()
    plan = Plan(seed=30_000, per_kind=8, no_change=4, no_change_length=2000, families=("sessions",), young_users=10,
                workers=1)
    best = published["sessions"]["bar"]["best_classic"]
    result = alarm_sources.run_family((plan, "sessions", best, published["sessions"]["detectors"][best]["value"]))
    assert result["finds"]["streams"] == 8 * 6 and set(result["whole_life"]["by_rule"]) == {"fast", "evidence", "share"}
    page = alarm_sources.markdown([result], published, plan, 1.0)
    assert re.search(r"\| sessions \| .* \| not the published streams \|", page)


@pytest.mark.slow  # 11 s: one family at the published plan
def test_the_published_page_is_what_the_code_computes_and_reproduces_the_published_run() -> None:
    published_json = json.loads((DOCS / "alarm_sources.json").read_text())
    runs = published_runs()
    plan = Plan(**{**published_json["plan"], "families": ("sessions",), "workers": 1})
    best = runs["sessions"]["bar"]["best_classic"]
    result = alarm_sources.run_family((plan, "sessions", best, runs["sessions"]["detectors"][best]["value"]))
    assert result == next(r for r in published_json["families"] if r["family"] == "sessions")
    full = Plan(**{**published_json["plan"], "families": tuple(published_json["plan"]["families"])})
    page = alarm_sources.markdown(published_json["families"], runs, full, 0.0)
    assert re.sub(r"\(\d+ s\)", "", page) == re.sub(r"\(\d+ s\)", "", (DOCS / "alarm_sources.md").read_text())
    assert page.count("| reproduced |") == len(published_json["families"])  # the service as published, alarm for alarm
