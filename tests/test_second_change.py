"""The second-change benchmark (benchmarks/second_change.py): its windows are the bar's, a stream's tail
makes the second change a new user's first, and on the published streams it reproduces the published run."""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from benchmarks import second_change
from benchmarks.published import PUBLISHED
from benchmarks.second_change import Plan, check, early, found_first, found_second, markdown, run, run_family
from model.families.base import Stream


def two_changes(length: int = 300, start: int = 100, start2: int = 200) -> Stream:
    probs = np.full((length, 7), 1 / 7, dtype=np.float32)
    return Stream("two_changes", probs, np.zeros(length), np.ones(length, dtype=bool), start, None, start2)


def test_the_windows_are_the_bars() -> None:
    s = two_changes()
    rows = [[50], [99], [198], [199], [50, 250], []]
    # the first change's window runs from 1 post before it to 1 post before the second one
    assert found_first([s] * len(rows), rows) == [0, 1, 1, 0, 0, 0]
    assert found_second([s] * len(rows), rows) == [0, 0, 0, 1, 1, 0]


def test_the_tail_makes_the_second_change_a_new_users_first() -> None:
    tail = two_changes().tail(100)
    assert (tail.start, tail.start2, tail.length) == (0, 100, 200)
    assert found_second([tail] * 3, [[98], [99], [150]]) == [0, 1, 1]
    assert early([tail] * 3, [[5], [99], []]) == [1, 0, 0]


def test_the_check_compares_stream_by_stream() -> None:
    published = json.loads(PUBLISHED.read_text())
    p = published["plan"]
    plan = Plan(seed=p["seed"], per_kind=p["per_kind"], families=("sessions",))
    per_stream = published["families"]["sessions"]["detectors"]["service"]["per_stream"]
    result = {"family": "sessions", "service": {"first": per_stream["first"], "second": per_stream["second"]}}
    assert check(published, result, plan) == "reproduced"
    flipped = [1 - per_stream["second"][0], *per_stream["second"][1:]]
    assert check(published, {**result, "service": {**result["service"], "second": flipped}}, plan) == "DIFFERS"
    assert check(published, result, dataclasses.replace(plan, per_kind=8)) == "not the published streams"


def test_on_the_published_streams_it_reproduces_the_published_run() -> None:
    published = json.loads(PUBLISHED.read_text())
    p = published["plan"]
    plan = Plan(seed=p["seed"], per_kind=p["per_kind"], families=("sessions",), workers=1)
    best = published["families"]["sessions"]["bar"]["best_classic"]
    result = run_family((plan, "sessions", best, published["families"]["sessions"]["detectors"][best]["value"]))
    assert check(published, result, plan) == "reproduced"
    # the classic, at its published knob, finds what the published run says it found
    theirs = published["families"]["sessions"]["detectors"][best]["per_stream"]
    assert result["classic"]["first"] == theirs["first"] and result["classic"]["second"] == theirs["second"]


def test_a_small_run_writes_a_row_per_family_and_pools_the_held_out_ones() -> None:
    published = json.loads(PUBLISHED.read_text())
    plan = Plan(seed=1234, per_kind=6, families=("sessions", "blind", "blind2"), workers=1)
    results = run(plan, published)
    assert [r["family"] for r in results] == list(plan.families)
    for r in results:
        for who in ("service", "classic"):
            assert all(len(v) == plan.per_kind and set(v) <= {0, 1} for v in r[who].values())
    page = markdown(results, published, plan, 1.0)
    assert page.count("not the published streams") == 3 and "| held out, pooled |" in page
    assert second_change.__doc__ and "second_change.md" in second_change.__doc__
