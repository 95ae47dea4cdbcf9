"""The resolutions benchmark (benchmarks/resolutions.py): its windows and its reading of an episode's end
are the bar's, and on the published streams it reproduces the published run's persistent figures."""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from benchmarks.published import PUBLISHED
from benchmarks.resolutions import Ending, Plan, _tally, check, ending, main, run_family
from model.families.base import Stream


def stream(kind: str, length: int = 300, start: int = 100, end: int | None = None, start2: int | None = None) -> Stream:
    probs = np.full((length, 7), 1 / 7, dtype=np.float32)
    return Stream(kind, probs, np.zeros(length), np.ones(length, dtype=bool), start, end, start2)


def test_the_windows_are_the_bars() -> None:
    found = Ending("", None, False)
    lasting = stream("abrupt_pos_neg")
    assert ending(lasting, [98], []) is None and ending(lasting, [99], []) == found
    assert ending(lasting, [299], []) == found
    # a two-change stream's first change runs up to its second
    two = stream("two_changes", start2=200)
    assert ending(two, [198], []) == found and ending(two, [199], []) is None
    # an episode's alarm counts up to 10 posts after its end (metrics.TOLERANCE_AFTER_END), as for recall
    episode = stream("episode", end=130)
    assert ending(episode, [140], []) == found and ending(episode, [141], []) is None


def test_an_ending_is_the_first_end_after_the_first_alarm_in_the_window() -> None:
    two = stream("two_changes", start2=200)
    assert ending(two, [50], [(60, "recovered")]) is None  # no alarm in the window: not found
    # an end before the alarm does not count; the first one after it does, and an alarm after it is "again"
    assert ending(two, [50, 120, 190], [(60, "recovered"), (170, "new_baseline"), (195, "recovered")]) \
        == Ending("new_baseline", 50, True)
    # "again" only up to where the change's reading stops (the second change starts a new one)
    assert ending(two, [120, 250], [(130, "recovered")]) == Ending("recovered", 10, False)
    # an episode is read to the stream's end
    assert ending(stream("episode", end=130), [120, 250], [(130, "new_baseline")]) == Ending("new_baseline", 10, True)


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


def test_the_command_writes_its_quick_page_beside_the_published_one(tmp_path) -> None:
    assert main(["--quick", "--family", "sessions", "--workers", "1", "--out", str(tmp_path)]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["resolutions-quick.md"]
    rows = [line for line in (tmp_path / "resolutions-quick.md").read_text().splitlines() if line.startswith("| sessions |")]
    assert len(rows) == 1 and rows[0].endswith("| not the published streams |")
