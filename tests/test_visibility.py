"""How large the changes are and what a clairvoyant finds (benchmarks/visibility.py): sizes in SDs, a
cross-fitted size that noise does not inflate, thresholds that hold their rate on users they were not
set on, a clairvoyant that finds a known shift and not a placebo, and the page from the published runs."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from benchmarks import metrics, visibility
from benchmarks.published import DOCS, published_runs
from benchmarks.visibility import (Plan, all_outputs_size, calm_segments, clairvoyant, every_other, separability,
                                   share_shift, thresholds)
from model.families.base import Stream

SAD, HAPPY = 4, 3  # sad is one of the negative classes the share sums, happy is not


def stream(share: np.ndarray, kind: str = "abrupt_pos_neg", start: int | None = 100, end: int | None = None,
           start2: int | None = None) -> Stream:
    """A user whose negative share is ``share``: the rest of each post's probability on happy."""
    share = np.clip(share, 0.0, 1.0)
    probs = np.zeros((len(share), 7), dtype=np.float32)
    probs[:, SAD], probs[:, HAPPY] = share, 1.0 - share
    return Stream(kind, probs, np.ones(len(share)), np.ones(len(share), dtype=bool), start, end, start2)


def gaussian(rng: np.random.Generator, n: int, length: int = 300, start: int = 100, shift: float = 0.0,
             kind: str = "abrupt_pos_neg") -> list[Stream]:
    """``n`` users with an iid share of mean 0.3 and SD 0.1, moved by ``shift`` SDs from ``start`` on."""
    out = []
    for _ in range(n):
        share = 0.3 + 0.1 * rng.standard_normal(length)
        share[start:] += 0.1 * shift
        out.append(stream(share, kind, start))
    return out


def test_a_shift_is_measured_in_sds_of_the_share_before_it() -> None:
    share = np.r_[np.tile([0.1, 0.3], 50), np.full(100, 0.3)]  # before: mean 0.2, SD 0.1
    mean, sd, size = share_shift(stream(share))
    assert (round(mean, 6), round(sd, 6), round(size, 6)) == (0.2, 0.1, 1.0)
    # an episode's change ends where it ends; a two-change stream's first change, at the second one
    episode = stream(np.r_[np.tile([0.1, 0.3], 50), np.full(20, 0.4), np.full(80, 0.2)], "episode", end=120)
    assert round(share_shift(episode)[2], 6) == 2.0
    two = stream(np.r_[np.tile([0.1, 0.3], 50), np.full(50, 0.3), np.full(50, 0.9)], "two_changes", start2=150)
    assert round(share_shift(two)[2], 6) == 1.0


def test_the_all_outputs_size_is_cross_fitted_so_noise_measures_about_zero() -> None:
    rng = np.random.default_rng(3)
    still, moved, in_sample = [], [], []
    for _ in range(40):
        probs = rng.dirichlet(np.ones(7) * 2, size=300).astype(np.float32)
        s = Stream("abrupt_pos_neg", probs, np.ones(300), np.ones(300, dtype=bool), 100)
        still.append(all_outputs_size(s))
        x0, x1 = probs[:100, :-1].astype(float), probs[100:, :-1].astype(float)
        d = x1.mean(0) - x0.mean(0)
        in_sample.append(float(np.sqrt(d @ np.linalg.solve(np.cov(np.vstack([x0 - x0.mean(0), x1 - x1.mean(0)]).T), d))))
        shifted = probs.copy()
        shifted[100:, SAD] += 0.1  # about half an SD of that output
        moved.append(all_outputs_size(Stream("abrupt_pos_neg", shifted, np.ones(300), np.ones(300, dtype=bool), 100)))
    assert abs(np.median(still)) < 0.1 < np.median(in_sample)  # the in-sample distance would see a change
    assert np.median(moved) > 0.3


def test_every_other_post_keeps_the_change_where_it_is() -> None:
    s = stream(np.arange(300) / 300, start=101, end=None)
    for first in (0, 1):
        half = every_other(s, first)
        posts = np.arange(first, 300, 2)
        assert half.length == len(posts) and posts[half.start] >= 101 > posts[half.start - 1]
    two = every_other(stream(np.zeros(300), "two_changes", start=100, start2=200), 1)
    assert (two.start, two.start2) == (50, 100)


def test_the_thresholds_hold_their_rate_on_users_they_were_not_set_on() -> None:
    rng = np.random.default_rng(5)
    shapes = gaussian(rng, 10, length=400, kind="placebo")
    target = 2.0
    table = thresholds(calm_segments(gaussian(rng, 60, length=2000, kind="none"), shapes), target)
    assert np.all(np.diff(table[:8]) > 0)  # a larger shift's LLR climbs faster: a higher threshold holds the rate
    fresh = calm_segments(gaussian(rng, 60, length=2000, kind="none"), shapes)
    size = visibility.SIZES[6]
    alarms = visibility.cusum_alarms(visibility.padded([visibility.llr(z, float(size)) for z in fresh]), table[6])
    rate = metrics.arl0(alarms, [len(z) for z in fresh])["false_alarms_per_1000"]
    assert 0.5 * target <= rate <= 1.5 * target


def test_the_clairvoyant_finds_a_known_shift_and_its_placebo_is_chance() -> None:
    rng = np.random.default_rng(7)
    changes, placebo = gaussian(rng, 40, shift=1.0), gaussian(rng, 40, kind="placebo")
    none = gaussian(rng, 30, length=2000, kind="none")
    told = [share_shift(s)[2] for s in changes]
    found, chance = clairvoyant(changes, placebo, none, 1.0, told)
    m, p = metrics.change_metrics(found), metrics.change_metrics(chance)
    assert m["recall"] >= 0.95 and m["delay_median"] <= 20 and m["pre_change_alarm_rate"] <= 0.1
    assert p["recall"] <= 0.2
    # no shift: told sizes of the same kind, it finds about what it finds on the placebo
    flat = gaussian(rng, 40)
    found, _ = clairvoyant(flat, placebo, none, 1.0, told)
    assert metrics.change_metrics(found)["recall"] <= 0.2


def test_separability_is_a_half_where_changes_look_like_no_change() -> None:
    assert separability([0.1, 0.2, 0.3], [0.1, 0.2, 0.3]) == 0.5
    assert separability([0.5, 0.6], [0.1, 0.2]) == 1.0


@pytest.mark.parametrize("family", ["sessions"])
def test_the_page_compares_the_clairvoyant_with_the_published_detectors(family: str) -> None:
    published = published_runs()
    plan = Plan(seed=30_000, per_kind=8, no_change=4, no_change_length=2000, families=(family,), workers=1)
    rate = published[family]["detectors"]["service"]["no_change"]["false_alarms_per_1000"]
    result = visibility.run_family((plan, family, rate))
    assert result["per_1000"] == rate and 0 <= result["clairvoyant"]["recall"] <= 1
    page = visibility.markdown([result], published, plan, 1.0)
    service = published[family]["detectors"]["service"]
    above = service["all_changes"]["recall"] - service["placebo_recall"]
    row = next(line for line in page.splitlines() if line.startswith(f"| {family} | {rate:g} |"))
    assert f"{service['all_changes']['recall']:.2f} / {service['placebo_recall']:.2f} / {above:+.2f}" in row
    # the margin table: the service against the classic with the most recall above chance
    margins = visibility.above_chance(published[family])["service"]
    best = max((k for k in margins if k != "service"), key=lambda k: margins[k])
    assert f"| {family} | {above:+.2f} | {margins[best]:+.2f} ({best}) |" in page


def test_the_published_page_is_what_the_code_computes() -> None:
    """docs/visibility.json (and the page made from it) must not drift from the families and the code: one
    family recomputed at the published plan gives its published entry, and the page is the JSON's."""
    published_json = json.loads((DOCS / "visibility.json").read_text())
    plan = Plan(**{**published_json["plan"], "families": ("sessions",), "workers": 1})
    runs = published_runs()
    rate = runs["sessions"]["detectors"]["service"]["no_change"]["false_alarms_per_1000"]
    assert visibility.run_family((plan, "sessions", rate)) == next(
        r for r in published_json["families"] if r["family"] == "sessions")
    full = Plan(**{**published_json["plan"], "families": tuple(published_json["plan"]["families"])})
    page = visibility.markdown(published_json["families"], runs, full, 0.0, visibility.held_out_pooled_bar())
    assert _untimed(page) == _untimed((DOCS / "visibility.md").read_text())


def _untimed(page: str) -> str:
    return re.sub(r"\(\d+ s\)", "", page)


def test_meeting_both_checks_asks_half_the_least_recall_within_the_classics_median() -> None:
    classic = {"best_classic_recall": 0.40, "best_classic_delay": 20.0}
    # 60 of 100 changes found, at delays 1..60: 20 within the classic's median, 22.5 needed
    reach = visibility.delay_check_reach(list(range(1, 61)), 100, classic)
    assert (reach["least_recall"], reach["needed_within"], reach["within"]) == (0.45, 0.225, 0.2)
    assert reach["median_at_least"] == 23.0  # the 23rd soonest of the 45 a least-recall detector finds
    faster = visibility.delay_check_reach([d // 2 for d in range(1, 61)], 100, classic)
    assert faster["median_at_least"] == 11.0 and faster["within"] >= faster["needed_within"]
    # finding fewer than the least recall, it cannot meet the recall check at all
    assert visibility.delay_check_reach(list(range(1, 41)), 100, classic)["median_at_least"] is None
