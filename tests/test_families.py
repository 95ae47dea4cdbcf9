"""Stream families: seeded, shaped as documented, one Stream type and the same kinds; and the quick
per-family benchmark that reports each family on its own."""

from __future__ import annotations

import dataclasses
import doctest
import math
import re
from pathlib import Path

import numpy as np
import pytest

import model.families
from model import families
from model.families import base, blind_adapter, days, sessions, synthetic


def test_docstring_examples() -> None:
    for module in (model.families, base, synthetic, sessions, days):
        assert doctest.testmod(module).failed == 0, module.__name__


@pytest.mark.parametrize("family", families.TRAINING)
def test_every_family_is_seeded_and_gives_every_kind_as_documented(family: str) -> None:
    for kind in families.KINDS:
        a = families.make_streams(family, 5, kind, 6, length=300 if kind == "none" else None)
        b = families.make_streams(family, 5, kind, 6, length=300 if kind == "none" else None)
        assert all((x.probs == y.probs).all() and (x.gaps == y.gaps).all() for x, y in zip(a, b))
        for s in a:
            assert s.kind == kind and s.family == family and s.probs.dtype == np.float32
            assert s.probs.shape == (s.length, 7) and s.gaps.shape == s.face.shape == (s.length,)
            np.testing.assert_allclose(s.probs.sum(axis=1), 1.0, atol=1e-5)
            assert s.gaps[0] == 0.0 and (s.gaps >= 0).all()
            if kind == "none":
                assert s.length == 300 and s.start is None
                continue
            assert 16 <= s.start < s.length - 12
            assert (s.start2 is not None) == (kind == "two_changes") and (s.end is not None) == (kind in ("transient", "episode"))
            if kind == "transient":
                assert 1 <= s.end - s.start <= 3
            if kind == "two_changes":
                assert s.start + 100 <= s.start2 < s.length - 100


def test_families_differ_where_the_issue_says_they_should() -> None:
    def faces(family: str) -> float:
        return float(np.mean([s.face.mean() for s in families.make_streams(family, 1, "none", 20, length=400)]))

    def accuracy(family: str) -> list[float]:
        return [float((s.probs.argmax(1) == s.true_emotion).mean()) for s in families.make_streams(family, 1, "none", 20, length=400)]

    assert faces("days") < 0.75 < faces("synthetic")  # many faceless posts
    spread = accuracy("sessions")
    assert max(spread) - min(spread) > 0.15  # per-user classifier quality
    # sessions: the same mood within a session (gaps under an hour) more often than across sessions
    s = families.make_streams("sessions", 2, "none", 30, length=600)
    same_in = np.mean([np.mean((t.true_emotion[1:] == t.true_emotion[:-1])[t.gaps[1:] < 3600]) for t in s])
    same_out = np.mean([np.mean((t.true_emotion[1:] == t.true_emotion[:-1])[t.gaps[1:] >= 3600]) for t in s])
    assert same_in > same_out + 0.05
    # heavy tails: the longest gap of a sessions user is many times their median
    assert np.median([t.gaps.max() / np.median(t.gaps[1:]) for t in s]) > 50


def test_a_stream_tail_is_what_a_new_user_would_post() -> None:
    s = families.make_streams("synthetic", 3, "two_changes", 1)[0]
    tail = s.tail(s.start + 10)
    assert tail.gaps[0] == 0.0 and tail.length == s.length - s.start - 10
    assert tail.start is None and tail.start2 == s.start2 - s.start - 10
    assert (tail.probs == s.probs[s.start + 10:]).all()


def _flat(length: int, start: int | None, kind: str = "abrupt_pos_neg") -> base.Stream:
    return base.Stream(kind, np.full((length, 7), 1 / 7, dtype=np.float32), np.ones(length),
                       np.ones(length, dtype=bool), start)


def test_a_head_keeps_a_users_beginning() -> None:
    s = _flat(500, None, "none").head(300)
    assert s.length == 300 and s.gaps.shape == s.face.shape == (300,)


def test_a_head_keeps_the_changes_it_holds() -> None:
    s = _flat(500, 100)
    assert s.head(300).start == 100 and s.head(100).start is None and s.head(50).probs.shape == (50, 7)


def test_the_held_out_family_is_only_reached_through_its_adapter() -> None:
    assert families.HELD_OUT == ("blind", "blind2", "blind3", "blind4", "blind5", "blind6", "blind7") and not set(families.HELD_OUT) & set(families.TRAINING)
    for name in families.HELD_OUT:
        assert (name in families.available()) == blind_adapter.available(name)
    with pytest.raises(ValueError, match="unknown held-out family"):
        blind_adapter.available("synthetic")


def test_every_held_out_or_reserved_family_adapts_to_what_the_benchmark_reads() -> None:
    assert not set(blind_adapter.RESERVED) & set(families.HELD_OUT)  # a reserved family is not run
    assert families.RESERVED == blind_adapter.RESERVED and not set(families.RESERVED) & set(families.available())
    # ... unless it is named (benchmarks.detection --family): then its streams come through the same adapter
    assert families.make_streams(families.RESERVED[0], 1, "none", 1)[0].family == families.RESERVED[0]
    for name in blind_adapter.NAMES + blind_adapter.RESERVED:
        for kind in blind_adapter.kinds(name):
            s = blind_adapter.make_streams(1, kind, 2, name)[0]
            assert s.family == name and s.kind == kind and s.probs.shape == (s.length, base.N_CLASSES)
            assert s.gaps.shape == s.face.shape == (s.length,)
            assert (s.start is None) == (kind == "none") and (s.start2 is not None) == (kind == "two_changes")


def _looks_tables() -> tuple[list[list[str]], list[list[str]]]:
    """The two tables of docs/detection_method.md that count the looks: per family, and the ledger."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "detection_method.md").read_text()
    tables: list[list[list[str]]] = []
    for header in ("| family | written | looks |", "| round | the run | looks |"):
        rows = text[text.index(header):].split("\n\n", 1)[0].splitlines()[2:]
        tables.append([[c.strip() for c in row.strip().strip("|").split(" | ")] for row in rows])
    return tables[0], tables[1]


def ledger_looks(cell: str, order: tuple[str, ...]) -> dict[str, int]:
    """A ledger row's looks per family: ``"`a`: 8; `b`-`d`: 1"`` (a range runs over ``order``)."""
    out: dict[str, int] = {}
    for item in cell.split("; "):
        names, count = item.rsplit(": ", 1)
        first, _, last = names.replace("`", "").partition("-")
        span = order[order.index(first): order.index(last or first) + 1]
        assert span, f"{names!r} is not a range of {order}"
        out |= {name: out.get(name, 0) + int(count) for name in span}
    return out


def test_a_ledger_cell_reads_single_families_and_ranges() -> None:
    order = ("blind", "blind2", "blind3")
    assert ledger_looks("`blind`-`blind3`: 2", order) == {"blind": 2, "blind2": 2, "blind3": 2}
    assert ledger_looks("`blind2`: 8; `blind`: 1", order) == {"blind2": 8, "blind": 1}
    with pytest.raises(AssertionError):
        ledger_looks("`blind3`-`blind`: 1", order)


def test_every_look_at_a_held_out_family_is_counted_once_and_adds_up() -> None:
    # The published count of looks is what the rows say: a family's early looks plus its ledger rows'.
    per_family, ledger = _looks_tables()
    order = tuple(row[0].strip("`") for row in per_family)
    assert order == families.WRITTEN_BLIND
    rounds = [int(row[0]) for row in ledger]
    assert rounds == sorted(rounds)
    counted = dict.fromkeys(order, 0)
    for row in ledger:
        for name, n in ledger_looks(row[2], order).items():
            counted[name] += n
    for name, _written, looks, early, _decided in per_family:
        name = name.strip("`")
        early_looks = re.match(r"\d+", early)
        assert early_looks and int(looks) == int(early_looks.group()) + counted[name], name
        if int(looks) == 0:  # never looked at: kept for an exam, out of the published run
            assert name in families.RESERVED and name not in families.HELD_OUT
    assert all(int(row[2]) > 0 for row in per_family if row[0].strip("`") in families.HELD_OUT)


def test_the_service_restarts_its_model_at_a_new_baseline_and_finds_a_second_change() -> None:
    from benchmarks.detection import REPOSITORY
    from benchmarks.families import served_config, service_events
    from service import model_repository
    from service.inference import ProviderChoice
    from service.temporal import TemporalModel

    temporal = TemporalModel(model_repository.load(REPOSITORY, "temporal"), ProviderChoice("cpu", "test"))
    config = served_config(temporal)
    streams = [s for s in families.make_streams("synthetic", 7, "two_changes", 12)]
    alarms, ends = service_events(temporal, streams, config)
    seconds = 0
    for s, a, e in zip(streams, alarms, ends):
        first = [t for t in a if s.start - 1 <= t < s.start2 - 1]
        if first:  # found: the episode ends as a new baseline after exactly rebaseline_posts
            assert e and e[0] == (first[0] + config.rebaseline_posts, "new_baseline")
        seconds += any(t >= s.start2 - 1 for t in a)
    assert seconds >= 6  # the second change is found (without re-baselining the service never could)
    frozen, _ = service_events(temporal, streams, dataclasses.replace(config, rebaseline_posts=0))
    # without re-baselining only a user whose first change went unseen (or recovered) can alarm again
    assert sum(any(t >= s.start2 - 1 for t in a) for s, a in zip(streams, frozen)) <= seconds // 3


def test_the_benchmark_runs_live_calibration_as_the_service_does_unless_a_flag_says_otherwise() -> None:
    import argparse

    from benchmarks.detection import families_plan
    from benchmarks.families import service_default

    def plan(**flags: bool):
        return families_plan(argparse.Namespace(quick=True, workers=1, seed=None, family=None,
                                                **{"calibration_hold_young": False, "calibration_per_age": False, **flags}))
    default = plan()
    assert (default.live_hold_young, default.live_one_scale) == (service_default("calibration_hold_young"),
                                                                 service_default("calibration_one_scale"))
    assert plan(calibration_hold_young=True).live_hold_young is True
    assert plan(calibration_per_age=True).live_one_scale is False


def test_quick_benchmark_reports_every_family_and_judges_each(tmp_path, capsys) -> None:
    from benchmarks import detection

    # a page of its own (as for reserved families): the published detection.md is not overwritten
    assert detection.main(["--quick", "--out", str(tmp_path), "--family", "synthetic", "--family", "days",
                           "--name", "detection_check"]) == 0
    assert "; headline days: bar met" in capsys.readouterr().out  # no held-out pool: the last family
    text = (tmp_path / "detection_check-quick.md").read_text()
    import json
    results = json.loads((tmp_path / "detection_families_check-quick.json").read_text())
    command = "python -m benchmarks.detection --family synthetic --family days --name detection_check"
    assert results["command"] == command and f"Produced by `{command}`" in text
    assert text.startswith("# Drift detection on `synthetic`, `days`\n")
    assert list(results["families"]) == ["synthetic", "days"] and results["headline"] == "days"
    for family in results["families"].values():
        det = family["detectors"]
        assert set(det) == {"service", "service_live", "page_hinkley", "adwin", "kswin", "hddm_a", "cusum", "ema_js"}
        assert det["service_live"]["live"]["frozen"] and set(family["bar_live"]["checks"]) == set(family["bar"]["checks"])
        rate = det["service"]["no_change"]["false_alarms_per_1000"]
        for name, d in det.items():
            assert 0 <= d["all_changes"]["recall"] <= 1 and "second_change" in d
            if name in ("page_hinkley", "cusum"):  # calibrated from above to the service's rate
                assert d["no_change"]["false_alarms_per_1000"] <= rate + 1e-9 or rate == 0
        assert set(family["bar"]["checks"]) == {
            "false_alarms_at_most_1_per_1000", "recall_beats_best_classic_by_0.05", "median_delay_at_most_that_classics",
            "pre_change_alarms_at_most_5pct", "dip_alarms_at_most_5pct", "second_change_at_least_0.9_of_first"}
        # the service as deployed (live calibration, its own rate) is judged against classics at that rate
        live_rate = det["service_live"]["no_change"]["false_alarms_per_1000"]
        at_live = family["classics_at_live_rate"]
        assert set(at_live) == set(det) - {"service", "service_live"}
        for name in ("page_hinkley", "cusum"):
            assert at_live[name]["no_change"]["false_alarms_per_1000"] <= live_rate + 1e-9 or live_rate == 0
        assert family["bar_live"]["best_classic_recall"] == at_live[family["bar_live"]["best_classic"]]["all_changes"]["recall"]
        speed = family["bar"]["found_within_classic_median"]
        assert speed["within_posts"] == family["bar"]["best_classic_delay"]
        rival = det[family["bar"]["best_classic"]]["all_changes"]
        if rival["delays"]:  # the classic has found at least half of what it found by its own median delay
            assert speed["classic"] >= rival["recall"] / 2 - 1e-4  # both rounded to 4 decimals
        for key, classics in (("bar", det), ("bar_live", at_live)):  # how sure each verdict is
            judged = family[key]
            assert set(judged["noise"]["checks"]) == set(judged["checks"])
            # the classic calibrated again on every resample of the no-change users (rate_noise), from a
            # grid around the service's rate: one knob when the service raised no false alarm
            calibration = judged["noise"]["classic_calibration"]
            raised = det["service" if key == "bar" else "service_live"]["no_change"]["false_alarms"]
            assert calibration["recalibrated"] and 1 <= calibration["knobs"][0] <= (5 if raised else 1)
            at = calibration["at_service_rate"]  # the sample read at the service's rate: the page's last column
            assert -1 <= at["recall_margin"] <= 1 and len(at["rates"]) == 1
            assert at["rates"][0]["service"] == det["service" if key == "bar" else "service_live"]["no_change"]["false_alarms_per_1000"]
            assert all("rate_grid" not in row for row in classics.values())  # not in the JSON
            for band in judged["noise"]["checks"].values():
                assert band["interval"][0] <= band["interval"][1] or math.isnan(band["interval"][0])
            both = judged["paired_delays"]["both_found"]
            ours = det["service" if key == "bar" else "service_live"]["per_stream"]["delay"]
            rival = classics[judged["best_classic"]]["per_stream"]["delay"]
            assert both == sum(a is not None and b is not None for a, b in zip(ours, rival))
            # only the service and its rivals keep every stream's outcome
            assert all("per_stream" not in row for name, row in classics.items()
                       if name not in ("service", "service_live", judged["best_classic"]))
    assert "## days (headline)" in text and "| **days** (headline) |" in text
    assert "## How sure the verdicts are" in text and "### With live calibration" in text
    assert "| the classic at the service's rate: margin, gap" in text and "`rate_noise.at_sample`" in text
    assert "## Live calibration (`service_live`)" in text and "| days | " in text.split("## Live calibration")[1]
    # two families as one population (how the held-out ones are pooled for the headline)
    from benchmarks.families import pool_families, pooled_rival
    pooled = pool_families(results["families"])
    # the rival whose grids run() builds before the pooled bar exists is the one that bar then picks
    assert pooled_rival(results["families"]) == pooled["bar"]["best_classic"]
    assert pooled_rival(results["families"], "classics_at_live_rate") == pooled["bar_live"]["best_classic"]
    assert pooled["families"] == ["synthetic", "days"] and set(pooled["bar"]["checks"]) == set(family["bar"]["checks"])
    assert set(pooled["classics_at_live_rate"]) == set(at_live) and "bar_live" in pooled
    best = pooled["bar"]["best_classic"]  # judged with intervals when every family kept its streams
    kept = all("per_stream" in results["families"][f]["detectors"][best] for f in ("synthetic", "days"))
    assert ("noise" in pooled["bar"]) == kept and all("per_stream" not in row for row in pooled["detectors"].values())
    for name, d in pooled["detectors"].items():
        rows = [results["families"][f]["detectors"][name] for f in ("synthetic", "days")]
        assert d["no_change"]["false_alarms"] == sum(r["no_change"]["false_alarms"] for r in rows)
        recalls = [r["all_changes"]["recall"] for r in rows]
        assert min(recalls) - 1e-9 <= d["all_changes"]["recall"] <= max(recalls) + 1e-9
        assert d["all_changes"]["streams"] == sum(r["all_changes"]["streams"] for r in rows)


def test_speed_is_compared_over_all_changes_not_over_those_each_found() -> None:
    from benchmarks.families import bar, found_within

    def row(delays: list[int], streams: int = 10) -> dict:
        return {"no_change": {"false_alarms_per_1000": 0.2}, "dip_alarm_rate": 0.0,
                "second_change": {"ratio": 1.0},
                "all_changes": {"streams": streams, "recall": len(delays) / streams, "pre_change_alarm_rate": 0.0,
                                "delay_median": float(np.median(delays)), "delays": sorted(delays)}}


    # the service finds what the classic finds, each 5 posts sooner, and four hard changes late
    classic = [20, 30, 40, 50]
    service = [d - 5 for d in classic] + [90, 100, 110, 120]
    judged = bar({"service": row(service), "cusum": row(classic)})
    assert not judged["checks"]["median_delay_at_most_that_classics"]  # a median over more, later finds
    assert judged["found_within_classic_median"] == {"within_posts": 35.0, "service": 0.3, "classic": 0.2}
    found_none = {"streams": 10, "recall": 0.0, "delays": []}
    assert found_within(found_none, 10) == 0.0
    assert math.isnan(found_within(found_none, float("nan")))  # the classic found nothing: no median delay
    assert math.isnan(found_within({"streams": 0, "delays": []}, 10))


def test_each_verdict_says_whether_a_new_sample_could_turn_it() -> None:
    from benchmarks.families import MARGIN, bar

    def row(delays: list[int | None], early: int = 0, second: int = 50, fa: int = 2) -> dict:
        found = [d for d in delays if d is not None]
        n = len(delays)
        return {"no_change": {"false_alarms_per_1000": 1000.0 * fa / 40_000}, "dip_alarm_rate": 0.0,
                "second_change": {"ratio": second / 60},
                "all_changes": {"streams": n, "recall": len(found) / n, "pre_change_alarm_rate": early / n,
                                "delay_median": float(np.median(found)), "delays": sorted(found)},
                "per_stream": {"delay": delays, "early": [1] * early + [0] * (n - early), "dips": [0] * 100,
                               "first": [1] * 60 + [0] * 40, "second": [1] * second + [0] * (100 - second),
                               "false_alarms": [fa] + [0] * 39, "posts": [1000] * 40}}

    rng = np.random.default_rng(5)
    classic = [int(d) if found else None for d, found in zip(rng.integers(20, 60, 600), rng.random(600) < 0.4)]
    # far ahead: every change the classic finds, 5 posts sooner, and those it missed among the first 300, late
    ahead = [d - 5 if d is not None else (120 if i < 300 else None) for i, d in enumerate(classic)]
    judged = bar({"service": row(ahead), "cusum": row(classic)})
    checks = judged["noise"]["checks"]
    assert judged["checks"]["recall_beats_best_classic_by_0.05"] and checks["recall_beats_best_classic_by_0.05"]["clear"]
    lo, hi = checks["recall_beats_best_classic_by_0.05"]["interval"]
    margin = sum(d is None for d in classic[:300]) / 600
    assert MARGIN < lo < margin < hi < margin + 0.05  # around the point estimate, and clear of the bar
    # the median over its own finds is longer, clearly, though it is the sooner on every change both found
    assert not judged["checks"]["median_delay_at_most_that_classics"] and checks["median_delay_at_most_that_classics"]["clear"]
    found = sum(d is not None for d in classic)
    assert judged["paired_delays"] == {"both_found": found, "ours_sooner": found, "rival_sooner": 0, "same": 0,
                                       "median_difference": -5.0}
    # level: a margin of 0.05 on 600 streams is inside the noise, and so is a ratio of 0.85 on 60 first changes
    missed = [i for i, d in enumerate(classic) if d is None]
    level = [40 if i in missed[:30] else d for i, d in enumerate(classic)]  # 30 more finds in 600: 0.05
    judged = bar({"service": row(level, early=29, second=51), "cusum": row(classic)})
    checks = judged["noise"]["checks"]
    assert not checks["recall_beats_best_classic_by_0.05"]["clear"]
    assert not checks["second_change_at_least_0.9_of_first"]["clear"] and not judged["checks"]["second_change_at_least_0.9_of_first"]
    assert judged["checks"]["pre_change_alarms_at_most_5pct"] and not checks["pre_change_alarms_at_most_5pct"]["clear"]
    # two false alarms on 40,000 posts: clearly under 1 per 1000; 20 of them on one user: not clearly
    assert checks["false_alarms_at_most_1_per_1000"]["clear"]
    many = bar({"service": row(level, fa=36), "cusum": row(classic)})["noise"]["checks"]
    assert not many["false_alarms_at_most_1_per_1000"]["clear"]
    from benchmarks.families_report import _failed, _verdict
    assert _verdict(judged, "recall_beats_best_classic_by_0.05") in ("yes?", "NO?")
    assert "2nd change?" in _failed(judged)


def test_recall_above_chance_is_recall_minus_placebo_and_pooled_as_the_families_mean() -> None:
    from benchmarks.families_report import _above_chance

    def fam(recall: float, placebo: float) -> dict:
        return {"detectors": {"service": {"all_changes": {"recall": recall}, "placebo_recall": placebo}}}
    fams = {"a": fam(0.6, 0.1), "b": fam(0.3, 0.2)}
    assert _above_chance(fams["a"], fams, "service") == "+0.500"
    assert _above_chance(fams["b"], fams, "service") == "+0.100"
    # a pooled row's recall is pooled from its families; so is its chance
    assert _above_chance({"families": ["a", "b"], **fam(0.45, 0.0)}, fams, "service") == "+0.300"


def test_training_windows_are_labelled_like_the_synthetic_users() -> None:
    from model.families.training import GRADUAL_LABEL, MIN_BEFORE, SHIFT_LABEL, pool, window

    rng = np.random.default_rng(0)
    for family in ("sessions", "days"):
        for kind in families.KINDS:
            w = window(rng, family, kind, 128, delay=1)
            assert w.probs.shape == (128, 7) and w.features.shape == (128, 10) and w.drift.shape == w.weight.shape == (128,)
            if kind in ("none", "placebo", "transient"):
                assert w.drift.max() == 0.0
                continue
            onset = int(np.argmax(w.drift > 0))  # the first post labelled 1
            assert w.drift.max() == 1.0 and onset >= MIN_BEFORE
            expected = {"gradual": GRADUAL_LABEL, "small_shift": SHIFT_LABEL}.get(kind, 1)
            assert (w.weight[onset - expected:onset] == 0).all() and w.weight[onset - expected - 1] == 1.0
    assert len(pool(1, 18, 64, families.KINDS)) == 18  # families and kinds round-robin


def test_training_mixes_the_families_into_its_batches(tmp_path) -> None:
    from model.train_temporal import TrainConfig, train

    config = TrainConfig(seed=1, steps=4, batch_size=8, length=64, warmup=1, long_every=0, family_share=0.5,
                         family_pool=16)
    record = train(config, tmp_path / "mixed.pt", log_every=2)
    assert record["generator"]["families"]["from"] == ["sessions", "days"] and (tmp_path / "mixed.pt").stat().st_size > 1000


def test_long_batches_borrow_long_family_windows() -> None:
    """With a long pool, every long_every-th batch mixes in the families' long windows (a model that met
    them only in short windows let its score climb on their long no-change users); without one, long
    batches stay model.synthetic's."""
    from model.families import KINDS as FAMILY_KINDS
    from model.families.training import Window, pool
    from model.train_temporal import TrainConfig, draw_batch

    config = TrainConfig(batch_size=8, length=64, long_every=2, long_length=128, long_batch_size=4, family_share=0.5,
                         family_long_pool=3)
    short, long = pool(1, 3, 64, FAMILY_KINDS), pool(2, 3, 128, FAMILY_KINDS)
    rng = np.random.default_rng(0)
    for step, length, size in ((1, 64, 8), (2, 128, 4)):
        users = draw_batch(config, rng, step, short, long)
        borrowed = [u for u in users if isinstance(u, Window)]
        assert len(users) == size and len(borrowed) == size // 2
        assert all(u.probs.shape == (length, 7) for u in users)
    assert not any(isinstance(u, Window) for u in draw_batch(config, rng, 2, short, []))
