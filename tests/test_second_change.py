"""The second-change benchmark (benchmarks/second_change.py): its windows are the bar's, a stream's tail
makes the second change a new user's first, and on the published streams it reproduces the published run."""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from benchmarks import second_change
from benchmarks.published import PUBLISHED
from benchmarks.second_change import (Plan, check, clairvoyant_found, early, found_first, found_second, markdown, run,
                                      run_family, second_as_first)
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


def gaussian_two_changes(rng: np.random.Generator, n: int, second: float) -> list[Stream]:
    """Users whose negative share (mean 0.3, SD 0.1) rises by 2 SDs at post 100, then by ``second`` SDs more
    at post 250."""
    out = []
    for _ in range(n):
        share = np.clip(0.3 + 0.1 * rng.standard_normal(450), 0.0, 1.0)
        share[100:] += 0.2
        share[250:] += 0.1 * second
        probs = np.zeros((450, 7), dtype=np.float32)
        probs[:, 4], probs[:, 3] = share, 1.0 - share  # sad (negative) and happy
        out.append(Stream("two_changes", probs, np.ones(450), np.ones(450, dtype=bool), 100, None, 250))
    return out


def test_the_second_read_as_a_first_keeps_the_first_changes_posts_as_its_reference() -> None:
    view = second_as_first(two_changes(length=300, start=100, start2=200))
    assert (view.start, view.start2, view.end, view.length, view.gaps[0]) == (100, None, None, 200, 0.0)


def test_the_clairvoyant_finds_a_second_change_only_where_there_is_one() -> None:
    rng = np.random.default_rng(5)
    none = [Stream("none", probs, np.ones(2000), np.ones(2000, dtype=bool))
            for probs in (np.zeros((2000, 7), dtype=np.float32) for _ in range(20))]
    for s in none:
        share = np.clip(0.3 + 0.1 * rng.standard_normal(2000), 0.0, 1.0)
        s.probs[:, 4], s.probs[:, 3] = share, 1.0 - share
    moved = clairvoyant_found(gaussian_two_changes(rng, 30, 2.0), none, 1.0)
    still = clairvoyant_found(gaussian_two_changes(rng, 30, 0.0), none, 1.0)
    assert np.mean(moved["first"]) >= 0.9 and np.mean(still["first"]) >= 0.9
    assert np.mean(moved["second_as_new_user"]) >= 0.9
    # with no second change it is told the noise's own shift, and finds some of it: the optimism the page
    # states; still far fewer than where the share moved
    assert np.mean(still["second_as_new_user"]) <= np.mean(moved["second_as_new_user"]) - 0.3


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
    detectors = published["families"]["sessions"]["detectors"]
    result = run_family((plan, "sessions", best, detectors[best]["value"],
                         detectors["service"]["no_change"]["false_alarms_per_1000"]))
    assert check(published, result, plan) == "reproduced"
    # the classic, at its published knob, finds what the published run says it found
    theirs = published["families"]["sessions"]["detectors"][best]["per_stream"]
    assert result["classic"]["first"] == theirs["first"] and result["classic"]["second"] == theirs["second"]


def test_a_small_run_writes_a_row_per_family_and_pools_the_held_out_ones() -> None:
    published = json.loads(PUBLISHED.read_text())
    plan = Plan(seed=1234, per_kind=6, families=("sessions", "blind", "blind2"), workers=1, no_change=4)
    results = run(plan, published)
    assert [r["family"] for r in results] == list(plan.families)
    for r in results:
        for who in ("service", "classic"):
            assert all(len(v) == plan.per_kind and set(v) <= {0, 1} for v in r[who].values())
    page = markdown(results, published, plan, 1.0)
    assert page.count("not the published streams") == 3 and "| held out, pooled |" in page
    assert "| held out, pooled | per family |" in page  # the clairvoyant's table pools them too
    assert second_change.__doc__ and "second_change.md" in second_change.__doc__
