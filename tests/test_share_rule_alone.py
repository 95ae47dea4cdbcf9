"""The share-rule-alone benchmark (benchmarks/share_rule_alone.py): its harness is checked against the
classic it compares with, on a small seeded run."""

from __future__ import annotations

from benchmarks.share_rule_alone import QUICK, TARGET, VARIANTS, markdown, run


def test_every_variant_runs_at_the_rate_and_the_classic_like_one_is_the_classic() -> None:
    rows = run(QUICK)
    assert [r["variant"] for r in rows] == list(VARIANTS)
    for r in rows:
        assert 0 < r["false_alarms_per_1000"] <= TARGET and 0 < r["classic_rate"] <= TARGET
    by = {r["variant"]: r for r in rows}
    # the same statistic (bar the variance estimator: population against sample) finds the same changes
    like = by["classic-like"]
    assert abs(like["recall"] - like["classic_recall"]) <= 0.05
    assert like["paired"]["both_found"] >= 0.9 * like["classic_recall"] * QUICK.per_kind * 6
    assert -2 <= like["paired"]["median_difference"] <= 0
    # a bank splits the false alarms: its first CUSUM needs a higher threshold than one CUSUM alone
    assert by["as shipped"]["threshold"] > by["one CUSUM (no bank)"]["threshold"]
    page = markdown(rows, QUICK, 1.0)
    assert page.count("| classic-like |") == len(QUICK.families)
