"""A detector change's exam on a reserved family, as code: ``python -m benchmarks.exam SHIPPED CANDIDATE
--family NAME``, where SHIPPED and CANDIDATE are the ``detection_families.json`` (or the folder holding
it) of ``benchmarks.detection --family NAME`` run once with the shipped model and once with the
candidate's (``--version``), at the published seed.

Why code: the twenty-fifth and twenty-sixth rounds' candidates each passed their validation rule and
then lost their exam on a condition that chance alone could cross on one family's counts (3 false
alarms; 4 second changes of 100 streams, on a check the shipped design met by one stream;
docs/detection_rules.md). Here every condition that compares the two designs on the exam family allows
what the shipped design's own 90% bootstrap interval, from the same run, says that family's sample
could give: the exam asks that the candidate be *not shown worse* there. Whether it is better is the
validation run's question, on seven families with seven times the streams.

The conditions, with the manifest's thresholds (and, with live calibration, the first, fourth and
fifth), each against the shipped design on the same streams:

1. no check of the bar the shipped design meets turns unmet beyond its interval: unmet, with the
   candidate's figure outside the shipped design's interval on the unmet side;
2. false alarms at most 1 per 1000, and not more than the shipped design's beyond chance: at most
   ``FA_RATIO`` times its count, or a one-sided binomial test of the candidate's count among both at 1/2
   above ``FA_P``;
3. alarms before the change at most the shipped design's + ``EARLY_POINTS``, or inside its interval;
4. the recall margin over the best classic (at each design's own rate) at least the shipped design's
   - ``MARGIN_ALLOWANCE``, or inside its interval;
5. the median delay gap to that classic no longer than the shipped design's, or inside its interval.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.families import CHECK_SENSE

FA_CAP = 1.0             # false alarms per 1000 posts: the bar's own check
FA_RATIO = 1.25          # the candidate's false alarms against the shipped design's, before chance is asked
FA_P = 0.10              # one-sided binomial p under which more false alarms count as real
EARLY_POINTS = 0.01      # alarms before the change: one point more is allowed outright
MARGIN_ALLOWANCE = 0.02  # recall margin: this much less is allowed outright

VIEWS = {"manifest": ("service", "bar"), "live": ("service_live", "bar_live")}


@dataclass(frozen=True)
class Condition:
    view: str        # "manifest" or "live"
    name: str
    shipped: str
    candidate: str
    holds: bool


def figure(row: dict[str, Any], view: str, check: str) -> float:
    """The figure the bar's ``check`` reads for one design on one family."""
    detector, bar_key = VIEWS[view]
    service, bar = row["detectors"][detector], row[bar_key]
    at_rate = bar.get("noise", {}).get("classic_calibration", {}).get("at_service_rate", {})
    changes = service["all_changes"]
    return float({
        "false_alarms_at_most_1_per_1000": lambda: service["no_change"]["false_alarms_per_1000"],
        "recall_beats_best_classic_by_0.05": lambda: at_rate.get(
            "recall_margin", changes["recall"] - bar["best_classic_recall"]),
        "median_delay_at_most_that_classics": lambda: at_rate.get(
            "median_gap", changes["delay_median"] - bar["best_classic_delay"]),
        "pre_change_alarms_at_most_5pct": lambda: changes["pre_change_alarm_rate"],
        "dip_alarms_at_most_5pct": lambda: service["dip_alarm_rate"],
        "second_change_at_least_0.9_of_first": lambda: service["second_change"]["ratio"],
    }[check]())


def interval(row: dict[str, Any], view: str, check: str) -> tuple[float, float] | None:
    """The shipped design's 90% bootstrap interval of the check's figure (None where the run has none)."""
    noise = row[VIEWS[view][1]].get("noise", {}).get("checks", {}).get(check)
    return None if noise is None else (float(noise["interval"][0]), float(noise["interval"][1]))


def more_false_alarms_p(candidate: int, shipped: int) -> float:
    """One-sided p of the candidate's count among both at 1/2: how often chance alone splits two equal
    rates' alarms at least this unevenly (exact binomial)."""
    n = candidate + shipped
    return 1.0 if n == 0 else sum(math.comb(n, k) for k in range(candidate, n + 1)) / 2 ** n


def _inside(value: float, span: tuple[float, float] | None, sense: str) -> bool:
    """``value`` is no worse than the interval's edge on the side the check's ``sense`` fails."""
    if span is None:
        return False
    return value <= span[1] if sense == "<=" else value >= span[0]


def _fmt(value: float, span: tuple[float, float] | None = None) -> str:
    text = f"{value:.4g}"
    return text if span is None else f"{text} [{span[0]:.4g}, {span[1]:.4g}]"


def conditions(shipped: dict[str, Any], candidate: dict[str, Any]) -> list[Condition]:
    """Every condition of the exam, for one family's two rows (``families[NAME]`` of each run)."""
    out: list[Condition] = []
    for view in VIEWS:
        met, now = shipped[VIEWS[view][1]]["checks"], candidate[VIEWS[view][1]]["checks"]
        turned, beyond = [], False
        for check, sense in CHECK_SENSE.items():
            if met[check] and not now[check]:
                span = interval(shipped, view, check)
                inside = _inside(figure(candidate, view, check), span, sense)
                beyond |= not inside
                turned.append(f"{check} {_fmt(figure(shipped, view, check), span)} -> "
                              f"{_fmt(figure(candidate, view, check))} ({'inside' if inside else 'beyond'})")
        out.append(Condition(view, "no met check turns unmet beyond its interval", f"{sum(met.values())} met",
                             "; ".join([f"{sum(now.values())} met", *turned]), not beyond))
        margin, gap = "recall_beats_best_classic_by_0.05", "median_delay_at_most_that_classics"
        s, c = figure(shipped, view, margin), figure(candidate, view, margin)
        span = interval(shipped, view, margin)
        out.append(Condition(view, f"recall margin at least the shipped design's - {MARGIN_ALLOWANCE} or inside its "
                             "interval", _fmt(s, span), _fmt(c),
                             c >= s - MARGIN_ALLOWANCE or _inside(c, span, CHECK_SENSE[margin])))
        s, c = figure(shipped, view, gap), figure(candidate, view, gap)
        span = interval(shipped, view, gap)
        out.append(Condition(view, "median delay gap no longer than the shipped design's or inside its interval",
                             _fmt(s, span), _fmt(c), c <= s or _inside(c, span, CHECK_SENSE[gap])))
        if view != "manifest":
            continue
        fa_s, fa_c = shipped["detectors"]["service"]["no_change"], candidate["detectors"]["service"]["no_change"]
        p = more_false_alarms_p(int(fa_c["false_alarms"]), int(fa_s["false_alarms"]))
        out.append(Condition(view, f"false alarms at most {FA_CAP:g} / 1000, and at most {FA_RATIO} x the shipped "
                             f"design's or binomial p >= {FA_P}", f"{fa_s['false_alarms']} ({fa_s['false_alarms_per_1000']:.3f})",
                             f"{fa_c['false_alarms']} ({fa_c['false_alarms_per_1000']:.3f}), p {p:.3f}",
                             fa_c["false_alarms_per_1000"] <= FA_CAP and (
                                 fa_c["false_alarms"] <= FA_RATIO * fa_s["false_alarms"] or p >= FA_P)))
        early = "pre_change_alarms_at_most_5pct"
        s, c = figure(shipped, view, early), figure(candidate, view, early)
        span = interval(shipped, view, early)
        out.append(Condition(view, f"alarms before the change at most the shipped design's + {EARLY_POINTS:g} or "
                             "inside its interval", _fmt(s, span), _fmt(c),
                             c <= s + EARLY_POINTS + 1e-12 or _inside(c, span, CHECK_SENSE[early])))
    return out


def passed(found: Sequence[Condition]) -> bool:
    return all(c.holds for c in found)


def markdown(family: str, found: Sequence[Condition]) -> str:
    lines = [f"Exam on `{family}`: **{'passed' if passed(found) else 'failed'}**", "",
             "| thresholds | condition | shipped [90% interval] | candidate | holds |", "|---|---|---|---|---|"]
    lines += [f"| {c.view} | {c.name} | {c.shipped} | {c.candidate} | {'yes' if c.holds else 'NO'} |" for c in found]
    return "\n".join(lines + [""])


def _row(path: Path, family: str) -> dict[str, Any]:
    path = path / "detection_families.json" if path.is_dir() else path
    families = json.loads(path.read_text())["families"]
    if family not in families:
        raise SystemExit(f"{path}: no run of {family!r} (has {', '.join(families)})")
    return families[family]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.exam", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("shipped", type=Path)
    parser.add_argument("candidate", type=Path)
    parser.add_argument("--family", required=True)
    args = parser.parse_args(argv)
    found = conditions(_row(args.shipped, args.family), _row(args.candidate, args.family))
    print(markdown(args.family, found))
    return 0 if passed(found) else 1


if __name__ == "__main__":
    raise SystemExit(main())
