"""The bar's bootstrap with each classic calibrated again on every resample of the no-change users
(``benchmarks/rate_noise.py``): a classic whose reach depends on the rate it is given, judged against a
service whose rate was measured on a few users, is a comparison less sure than one that holds the
classic's knob fixed."""

from __future__ import annotations

import doctest

import numpy as np

from benchmarks import metrics, rate_noise
from benchmarks.families import MARGIN, bar, pool_families
from benchmarks.rate_noise import RateGrid, bracket, intervals


def test_docstring_examples() -> None:
    assert doctest.testmod(rate_noise).failed == 0


def test_the_interpolated_calibration_is_at_the_services_rate() -> None:
    rates = np.array([0.1, 0.2, 0.4, 0.8])
    for target in (0.1, 0.13, 0.3, 0.75):
        lower, upper, towards, outside = bracket(rates, target)
        assert not outside and rates[lower] <= target <= rates[upper] and upper - lower <= 1
        assert abs((1 - towards) * rates[lower] + towards * rates[upper] - target) < 1e-12


def _world(seed: int, users: int = 40, streams: int = 600) -> tuple[RateGrid, dict, dict]:
    """A service that finds 50% of the changes and raises a few false alarms on its users, against a
    classic whose knobs trade rate for reach: at the knob calibrated to the service's measured rate it
    finds 42%, and each doubling of its rate finds 6 points more."""
    rng = np.random.default_rng(seed)
    posts = [2000] * users
    wander = rng.gamma(2.0, 0.5, users)  # some users wander more: every detector's false alarms follow them
    ours_fa = rng.poisson(0.15 * wander)  # ~6 false alarms in all: a rate measured on little
    rates = [2.0 ** o for o in (-1.5, -0.75, 0.0, 0.75, 1.5)]
    # each knob's alarms are those of the next less strict one, thinned: a stricter knob raises a subset
    knobs_fa = [rng.poisson(0.15 * rates[-1] * wander)]
    for lower, upper in zip(rates[-2::-1], rates[:0:-1]):
        knobs_fa.insert(0, rng.binomial(knobs_fa[0], lower / upper))
    while knobs_fa[2].sum() > ours_fa.sum():  # the calibrated knob: at or under the service's rate
        knobs_fa[2][int(np.argmax(knobs_fa[2]))] -= 1
    ease = rng.random(streams)
    ours = [int(rng.integers(10, 60)) if e < 0.5 else None for e in ease]
    delays = [[int(rng.integers(10, 60)) if e < 0.42 + 0.06 * np.log2(r) else None for e in ease] for r in rates]
    grid = RateGrid(ours, ours_fa.tolist(), posts, [1.0, *rates[:2], *rates[3:]],
                    [fa.tolist() for fa in [knobs_fa[2], *knobs_fa[:2], *knobs_fa[3:]]],
                    [delays[2], *delays[:2], *delays[3:]])

    def row(d: list[int | None], fa: list[int]) -> dict:
        found = [x for x in d if x is not None]
        n = len(d)
        return {"no_change": metrics.alarm_rate(sum(posts), int(sum(fa))), "dip_alarm_rate": 0.0,
                "second_change": {"recall": 0.5, "first_recall": 0.5, "ratio": 1.0},
                "all_changes": {"streams": n, "recall": len(found) / n, "pre_change_alarm_rate": 0.0,
                                "delay_median": float(np.median(found)), "delays": sorted(found)},
                "per_stream": {"delay": d, "early": [0] * n, "dips": [0] * 10, "first": [1] * 10,
                               "second": [1] * 10, "false_alarms": fa, "posts": posts}}

    return grid, row(ours, ours_fa.tolist()), row(delays[2], knobs_fa[2].tolist())


def test_recalibrating_the_classic_widens_the_margins_interval_and_can_unclear_a_verdict() -> None:
    grid, service, classic = _world(3)
    fixed = bar({"service": service, "cusum": classic})
    recal = bar({"service": service, "cusum": {**classic, "rate_grid": [grid]}})
    assert fixed["noise"]["classic_calibration"] == {"recalibrated": False}
    assert recal["noise"]["classic_calibration"]["recalibrated"] and recal["noise"]["classic_calibration"]["knobs"] == [5]
    check = "recall_beats_best_classic_by_0.05"
    lo_f, hi_f = fixed["noise"]["checks"][check]["interval"]
    lo_r, hi_r = recal["noise"]["checks"][check]["interval"]
    assert fixed["checks"][check] == recal["checks"][check]  # here the knob is at the service's rate, near enough
    assert (hi_r - lo_r) > 1.5 * (hi_f - lo_f)  # the rate's noise is the larger part here
    assert lo_r < lo_f and lo_f > MARGIN and not recal["noise"]["checks"][check]["clear"]
    # the other checks read the service alone and do not move
    for other in ("pre_change_alarms_at_most_5pct", "false_alarms_at_most_1_per_1000"):
        assert fixed["noise"]["checks"][other] == recal["noise"]["checks"][other]


def test_a_grid_of_one_knob_gives_back_the_fixed_calibrations_interval() -> None:
    grid, service, classic = _world(4)
    one = RateGrid(grid.service_delay, grid.service_false_alarms, grid.posts, grid.knobs[:1],
                   grid.false_alarms[:1], grid.delay[:1])
    fixed = bar({"service": service, "cusum": classic})["noise"]["checks"]["recall_beats_best_classic_by_0.05"]
    recal = intervals([one], 0.9, 1000)
    assert recal["outside"] > 0  # the service's resampled rate is often above the one knob's
    assert np.allclose(recal["recall"], fixed["interval"], atol=0.01)  # the same resampling of the streams


def test_families_pooled_are_resampled_and_recalibrated_each_on_its_own() -> None:
    a, _, _ = _world(5)
    b, _, _ = _world(6, users=30, streams=300)
    pooled = intervals([a, b], 0.9, 400)
    assert pooled["knobs"] == [5, 5] and 0 <= pooled["outside"] <= 1
    lo, hi = pooled["recall"]
    alone = intervals([a], 0.9, 400)["recall"]
    assert lo < hi and (hi - lo) < (alone[1] - alone[0])  # more streams and users: a narrower interval
    assert lo < 0.08 < hi  # around the designed margin: 0.50 against 0.42


def test_the_pooled_bar_recalibrates_each_familys_classic_on_that_familys_users() -> None:
    fams = {}
    for name, seed in (("a", 7), ("b", 8)):
        grid, service, classic = _world(seed)
        fams[name] = {"detectors": {"service": service, "cusum": {**classic, "rate_grid": [grid]}}}
    pooled = pool_families(fams)
    assert pooled["bar"]["noise"]["classic_calibration"]["knobs"] == [5, 5]
    assert all("rate_grid" not in row for row in pooled["detectors"].values())
    # a family whose rival has no grid: the pooled bar holds every classic's calibration fixed
    del fams["b"]["detectors"]["cusum"]["rate_grid"]
    assert pool_families(fams)["bar"]["noise"]["classic_calibration"] == {"recalibrated": False}


def test_a_slow_classic_is_calibrated_again_on_the_drawn_users_of_its_own_few() -> None:
    # The bar calibrates a slow classic (KSWIN) on the first of a family's no-change users only: here 2
    # of 4, whose rate under the service's (1 per 1000 posts on every user) brackets it halfway between
    # a knob that raises none and finds nothing and one that raises 2 per user and finds every change.
    grid = RateGrid([5] * 10, [1, 1, 1, 1], [1000] * 4, [1.0, 2.0], [[0, 0], [2, 2]],
                    [[None] * 10, [7] * 10])
    judged = intervals([grid], 0.9, 200)
    assert judged["recall"] == (0.5, 0.5) and judged["outside"] == 0.0
    assert judged["median_gap"] == (-2.0, -2.0)


def test_the_sample_is_read_at_the_services_rate_not_at_the_knob_under_it() -> None:
    # A classic whose false alarms come in clumps: its calibrated knob (the first) raises 1 false alarm
    # on its 2 users, the next one 6; the service raised 4 on them. Held at the first knob it finds 3 of
    # 10 changes, so the bar's margin reads +0.5; read at the service's rate (3/5 of the way to the next
    # knob, which finds 8) it finds 6 and the margin is +0.2.
    service_found = [5] * 8 + [None] * 2
    grid = RateGrid(service_found, [2, 2], [1000, 1000], [1.0, 2.0], [[1, 0], [3, 3]],
                    [[9] * 3 + [None] * 7, [9] * 8 + [None] * 2])
    at = rate_noise.at_sample([grid])
    assert abs(at["recall_margin"] - 0.2) < 1e-9 and at["outside"] == 0
    assert at["median_gap"] == -4.0
    assert at["rates"] == [{"classic_at_knob": 0.5, "service": 2.0}]
    # at the knob whose rate is the service's, the sample reads as the bar does
    exact = RateGrid(service_found, [2, 2], [1000, 1000], [1.0, 2.0], [[2, 2], [3, 3]],
                     [[9] * 3 + [None] * 7, [9] * 8 + [None] * 2])
    assert abs(rate_noise.at_sample([exact])["recall_margin"] - 0.5) < 1e-9
    # the bootstrap is centred on the sample's reading, not on the bar's knob
    lo, hi = intervals([grid], 0.9, 400)["recall"]
    assert lo <= 0.2 <= hi < 0.5


def test_the_bar_judges_the_classic_at_the_services_rate_when_it_has_its_grid() -> None:
    # The service finds 5 of 10 changes, the classic 4 at its calibrated knob (1 false alarm on its 2
    # users against the service's 4), 6 at the next knob (6 false alarms): held at the knob the margin
    # is +0.1, read at the service's rate (3/5 of the way) the classic finds 5.2 and the margin is -0.02.
    posts = [1000, 1000]
    service_delays = [5] * 5 + [None] * 5
    knob, loose = [20] * 4 + [None] * 6, [20] * 6 + [None] * 4

    def row(delays: list[int | None], fa: list[int]) -> dict:
        found = [d for d in delays if d is not None]
        return {"no_change": metrics.alarm_rate(sum(posts), sum(fa)), "dip_alarm_rate": 0.0,
                "second_change": {"recall": 0.5, "first_recall": 0.5, "ratio": 1.0},
                "all_changes": {"streams": 10, "recall": len(found) / 10, "pre_change_alarm_rate": 0.0,
                                "delay_median": float(np.median(found)), "delays": found},
                "per_stream": {"delay": delays, "early": [0] * 10, "dips": [0] * 10, "first": [1] * 10,
                               "second": [1] * 10, "false_alarms": fa, "posts": posts}}

    grid = RateGrid(service_delays, [2, 2], posts, [1.0, 2.0], [[1, 0], [3, 3]], [knob, loose])
    service, classic = row(service_delays, [2, 2]), row(knob, [1, 0])
    held = bar({"service": service, "kswin": classic})
    judged = bar({"service": service, "kswin": {**classic, "rate_grid": [grid]}})
    check = "recall_beats_best_classic_by_0.05"
    assert held["checks"][check] and not judged["checks"][check] and not judged["met"]
    at = judged["noise"]["classic_calibration"]["at_service_rate"]
    assert abs(at["recall_margin"] + 0.02) < 1e-9 and judged["best_classic_recall"] == 0.4  # its knob's, shown
    assert judged["checks"]["median_delay_at_most_that_classics"]  # 5 posts against 20 either way
