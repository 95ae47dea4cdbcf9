"""The resolutions benchmark (benchmarks/resolutions.py): its windows and its reading of an episode's end
are the bar's, and on the published streams it reproduces the published run's persistent figures."""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from benchmarks.published import PUBLISHED
from benchmarks.resolutions import Ending, Plan, _tally, check, ending, episode_window, persistent_window, run_family
from model.families.base import Stream


def stream(kind: str, length: int = 300, start: int = 100, end: int | None = None, start2: int | None = None) -> Stream:
    probs = np.full((length, 7), 1 / 7, dtype=np.float32)
    return Stream(kind, probs, np.zeros(length), np.ones(length, dtype=bool), start, end, start2)


def test_the_windows_are_the_bars() -> None:
    assert persistent_window(stream("abrupt_pos_neg")) == ((99, 300), 300)
    # a two-change stream's first change runs up to its second
    assert persistent_window(stream("two_changes", start2=200)) == ((99, 199), 199)
    # an episode's alarm counts up to 10 posts after it; what follows is read to the stream's end
    assert episode_window(stream("episode", end=130)) == ((99, 140), 300)


def test_an_ending_is_the_first_end_after_the_first_alarm_in_the_window() -> None:
    window, until = (99, 199), 199
    assert ending([50], [(60, "recovered")], window, until) is None  # no alarm in the window: not found
    assert ending([120], [], window, until) == Ending("", None, False)
    # an end before the alarm does not count; the first one after it does, and an alarm after it is "again"
    assert ending([50, 120, 190], [(60, "recovered"), (170, "new_baseline"), (195, "recovered")],
                  window, until) == Ending("new_baseline", 50, True)
    assert ending([120, 250], [(130, "recovered")], window, until) == Ending("recovered", 10, False)


def test_the_tally_tells_right_from_wrong() -> None:
    endings = [None, Ending("new_baseline", 51, False), Ending("new_baseline", 52, True),
               Ending("recovered", 10, True), Ending("", None, False)]
    t = _tally(endings, "new_baseline", within=51)
    assert (t["streams"], t["found"], t["right"], t["wrong"], t["open"], t["again"]) == (5, 4, 0.25, 0.25, 0.25, 0.5)
    e = _tally(endings, "recovered")
    assert (e["right"], e["wrong"], e["posts_median"]) == (0.25, 0.5, 10)


def test_on_the_published_streams_it_reproduces_the_published_run() -> None:
    published = json.loads(PUBLISHED.read_text())
    p = published["plan"]
    plan = Plan(seed=p["seed"], per_kind=p["per_kind"], families=("sessions",), episodes=20, workers=1)
    result = run_family((plan, "sessions"))
    assert check(published, result, plan) == "reproduced"
    wrong = {**result, "persistent": {**result["persistent"], "right": result["persistent"]["right"] - 0.01}}
    assert check(published, wrong, plan) == "DIFFERS"
    assert check(published, result, dataclasses.replace(plan, per_kind=8)) == "not the published streams"
