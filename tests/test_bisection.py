"""The benchmarks' one bisection (benchmarks/bisection.py), on rates whose answer is known."""

from __future__ import annotations

import math

from benchmarks.bisection import bisect


def test_the_lowest_threshold_that_passes_is_found_on_the_log_scale() -> None:
    tried: list[float] = []

    def rate(threshold: float) -> float:  # false alarms fall as the threshold rises; 1.0 at threshold 10
        tried.append(threshold)
        return 10.0 / threshold

    knob, at = bisect(rate, lambda r: r <= 1.0, 1.0, 100.0, 20) or (math.nan, math.nan)
    assert 10.0 <= knob < 10.0 * 1.001 and at == rate(knob) <= 1.0
    assert math.isclose(tried[0], 10.0)  # the first midpoint is the geometric one: log-scale bisection
    assert all(1.0 < t < 100.0 for t in tried)


def test_a_knob_whose_passing_lies_above_is_searched_upwards() -> None:
    # a detector whose run length grows as its knob falls: passing sends the search above the knob
    knob, _ = bisect(lambda k: 1.0 / k, lambda arl: arl >= 0.25, 1.0, 16.0, 20, passing_goes_down=False) or (0, 0)
    assert 4.0 * 0.999 < knob <= 4.0


def test_nothing_passes_gives_none_and_the_key_picks_among_the_passing() -> None:
    assert bisect(lambda k: k, lambda v: v < 0, 1.0, 10.0, 8) is None
    # a rate that is not monotone: the key returns the passing knob with the least result, not the last one
    values = iter([0.5, 2.0, 0.9, 2.0, 2.0])
    seen: list[tuple[float, float]] = []

    def measure(k: float) -> float:
        seen.append((k, v := next(values)))
        return v

    found = bisect(measure, lambda v: v <= 1.0, 1.0, 100.0, 5, key=lambda v: v)
    assert found is not None and found[1] == 0.5 and found[0] == seen[0][0]
    last = bisect(lambda k: dict(seen)[k], lambda v: v <= 1.0, 1.0, 100.0, 5)
    assert last is not None and last[1] == 0.9


def test_other_scales_are_given_by_their_maps() -> None:
    logit, sigmoid = (lambda p: math.log(p / (1 - p))), (lambda x: 1 / (1 + math.exp(-x)))
    knob, _ = bisect(lambda p: p, lambda p: p >= 0.7, 0.02, 0.9995, 30, to=logit, back=sigmoid) or (0, 0)
    assert 0.7 <= knob < 0.7 + 1e-6
