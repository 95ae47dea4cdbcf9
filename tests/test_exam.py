"""The exam of a detector change on a reserved family (benchmarks/exam.py), on the published unseen run's
own rows: a design against itself passes; a candidate made worse beyond the shipped design's intervals,
or with more false alarms than chance gives, fails; one worse only within them passes."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from benchmarks import exam
from benchmarks.published import UNSEEN

FAMILY = "blind14"


@pytest.fixture()
def shipped() -> dict[str, Any]:
    return json.loads(UNSEEN.read_text())["families"][FAMILY]


def _failing(found: list[exam.Condition]) -> list[tuple[str, str]]:
    return [(c.view, c.name) for c in found if not c.holds]


def test_a_design_against_itself_passes(shipped: dict[str, Any]) -> None:
    found = exam.conditions(shipped, copy.deepcopy(shipped))
    assert exam.passed(found) and len(found) == 8
    assert {c.view for c in found} == {"manifest", "live"}


def test_more_false_alarms_fail_only_beyond_chance(shipped: dict[str, Any]) -> None:
    assert exam.more_false_alarms_p(10, 7) == pytest.approx(0.3145, abs=1e-4)  # scipy's binomtest(10, 17)
    assert exam.more_false_alarms_p(0, 0) == 1.0 and exam.more_false_alarms_p(20, 0) < 1e-5
    candidate = copy.deepcopy(shipped)
    no_change = candidate["detectors"]["service"]["no_change"]
    s = shipped["detectors"]["service"]["no_change"]["false_alarms"]
    for count, holds in ((s + 3, True), (4 * s, False)):
        no_change["false_alarms"] = count
        no_change["false_alarms_per_1000"] = 1000.0 * count / no_change["posts"]
        fa = next(c for c in exam.conditions(shipped, candidate) if c.name.startswith("false alarms"))
        assert fa.holds is holds, (count, fa)


def test_a_met_check_turned_unmet_fails_only_beyond_the_shipped_interval(shipped: dict[str, Any]) -> None:
    check = "second_change_at_least_0.9_of_first"
    assert shipped["bar_live"]["checks"][check]
    shipped["bar_live"]["noise"]["checks"][check]["interval"] = [0.8, 1.9]  # a family sure of less
    candidate = copy.deepcopy(shipped)
    candidate["bar_live"]["checks"][check] = False
    ratio = candidate["detectors"]["service_live"]["second_change"]
    ratio["ratio"] = 0.85  # unmet, inside the interval: chance could give it
    assert exam.passed(exam.conditions(shipped, candidate))
    ratio["ratio"] = 0.75  # beyond it
    assert _failing(exam.conditions(shipped, candidate)) == [("live", "no met check turns unmet beyond its interval")]


def test_a_worse_margin_and_delay_fail_beyond_the_allowance_and_interval(shipped: dict[str, Any]) -> None:
    candidate = copy.deepcopy(shipped)
    at = candidate["bar"]["noise"]["classic_calibration"]["at_service_rate"]
    margin_low, _ = exam.interval(shipped, "manifest", "recall_beats_best_classic_by_0.05")  # type: ignore[misc]
    _, gap_high = exam.interval(shipped, "manifest", "median_delay_at_most_that_classics")  # type: ignore[misc]
    at["recall_margin"] = min(margin_low, at["recall_margin"] - exam.MARGIN_ALLOWANCE) - 0.01
    at["median_gap"] = max(gap_high, at["median_gap"]) + 5
    failing = {name.split(" ")[0] for view, name in _failing(exam.conditions(shipped, candidate)) if view == "manifest"}
    assert failing == {"recall", "median"}


def test_the_command_reads_two_runs_and_exits_nonzero_on_a_failed_exam(shipped: dict[str, Any], tmp_path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    worse = copy.deepcopy(shipped)
    worse["detectors"]["service"]["all_changes"]["pre_change_alarm_rate"] = 0.5
    for name, row in (("shipped", shipped), ("candidate", worse)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "detection_families.json").write_text(json.dumps({"families": {FAMILY: row}}))
    assert exam.main([str(tmp_path / "shipped"), str(tmp_path / "shipped"), "--family", FAMILY]) == 0
    assert exam.main([str(tmp_path / "shipped"), str(tmp_path / "candidate"), "--family", FAMILY]) == 1
    assert f"Exam on `{FAMILY}`: **failed**" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no run of 'blind99'"):
        exam.main([str(tmp_path / "shipped"), str(tmp_path / "candidate"), "--family", "blind99"])
