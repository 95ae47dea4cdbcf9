"""A detector change's exam on a reserved family, as code: ``python -m benchmarks.exam SHIPPED CANDIDATE
--family NAME``, where SHIPPED and CANDIDATE are the ``detection_families.json`` (or the folder holding
it) of ``benchmarks.detection --family NAME`` run once with the shipped model and once with the
candidate's (``--version``), at the published seed, so that both read the same streams.

Why code: the twenty-fifth and twenty-sixth rounds' candidates each passed their validation rule and
then lost their exam on a condition that chance alone could cross on one family's counts (3 false
alarms; 4 second changes of 100 streams, on a check the shipped design met by one stream;
docs/detection_rules.md). Here every condition compares the two designs *paired*, stream by stream: a
bootstrap over the family's streams (its no-change users for false alarms) resamples both designs'
outcomes on the same rows, and a condition fails only where the whole 90% interval of the candidate's
difference from the shipped design lies on the worse side of the condition's allowance. The exam asks
that the candidate be *not shown worse* on the exam family; whether it is better is the validation run's
question, on seven families with seven times the streams.

The conditions, with the manifest's thresholds (and, with live calibration, the first, fourth and
fifth):

1. no check of the bar the shipped design meets turns unmet where the candidate is shown worse on it;
2. false alarms at most 1 per 1000, and not shown over ``FA_RATIO`` times the shipped design's; on a family
   where the shipped design is over 1 already, not shown over the shipped design's (the bar's cap alone
   would fail any candidate there, however much it lowered them: the thirtieth round's `blind6`);
3. alarms before the change not shown over the shipped design's + ``EARLY_POINTS``;
4. the recall margin over the best classic not shown under the shipped design's - ``MARGIN_ALLOWANCE``;
5. the median delay gap to that classic not shown longer than the shipped design's.

A validation run reads the same conditions on each of its families (``--family`` left out: every family
both runs read), and each family is then an exam of its own: the thirtieth round's validation rule read
whether any family's bar check turned unmet without these intervals, as the twenty-fifth and twenty-sixth
rounds' exams had read their conditions, so a rule written before a run can name this command instead.

The margin and the gap read each design against its own best classic at that design's own rate (the
manifest's or live calibration's), stream by stream, at the knob the classic's bisection settled on (the
bar interpolates between the two knobs that bracket the rate).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.families import CHECK_LIMIT, CHECK_SENSE, LEVEL
from benchmarks.metrics import bootstrap_interval
from benchmarks.outcomes import STATISTICS, Outcomes, rows

FA_CAP = CHECK_LIMIT["false_alarms_at_most_1_per_1000"]  # per 1000 posts: the bar's own check
FA_RATIO = 1.25          # the candidate's false alarms against the shipped design's
EARLY_POINTS = 0.01      # alarms before the change: one point more is allowed outright
MARGIN_ALLOWANCE = 0.02  # recall margin: this much less is allowed outright
DRAWS = 1000
VIEWS = {"manifest": ("service", "bar", "detectors"), "live": ("service_live", "bar_live", "classics_at_live_rate")}


def outcomes(row: dict[str, Any], view: str) -> Outcomes:
    """A family's row of ``detection_families.json``, read for one design's thresholds: the service's
    outcomes per stream beside those of its best classic at its rate (every run keeps both)."""
    detector, bar_key, classics_key = VIEWS[view]
    best = row[bar_key]["best_classic"]
    return Outcomes.of(row["detectors"][detector]["per_stream"], row[classics_key][best]["per_stream"])


@dataclass(frozen=True)
class Difference:
    shipped: float
    candidate: float
    interval: tuple[float, float]  # of candidate - shipped x ``scale``, paired

    def text(self) -> str:
        return f"{self.shipped:.4g} -> {self.candidate:.4g}, difference [{self.interval[0]:+.4g}, {self.interval[1]:+.4g}]"


def difference(shipped: Outcomes, candidate: Outcomes, check: str, scale: float = 1.0) -> Difference:
    """The paired bootstrap interval of the candidate's figure minus ``scale`` x the shipped design's."""
    statistic = STATISTICS[check][0]
    n = rows(shipped, check)
    if rows(candidate, check) != n:
        raise ValueError(f"{check}: the two runs read different streams ({n} against "
                         f"{rows(candidate, check)}); run both at the same seed")
    span = bootstrap_interval(lambda drawn: statistic(candidate, drawn) - scale * statistic(shipped, drawn), n,
                              LEVEL, DRAWS)
    return Difference(whole(shipped, check), whole(candidate, check), span)


def whole(outcomes: Outcomes, check: str) -> float:
    """A run's figure for ``check`` on every one of its rows (no resampling)."""
    return STATISTICS[check][0](outcomes, np.arange(rows(outcomes, check)))


def shown_worse(found: Difference, check: str, allowance: float = 0.0) -> bool:
    """The whole interval of the difference lies beyond ``allowance`` on the side the check fails."""
    low, high = found.interval
    return low > allowance if CHECK_SENSE[check] == "<=" else high < -allowance


@dataclass(frozen=True)
class Condition:
    view: str        # "manifest" or "live"
    name: str
    figures: str
    holds: bool


def conditions(shipped: dict[str, Any], candidate: dict[str, Any]) -> list[Condition]:
    """Every condition of the exam, for one family's two rows (``families[NAME]`` of each run)."""
    out: list[Condition] = []
    for view in VIEWS:
        s, c = outcomes(shipped, view), outcomes(candidate, view)
        met, now = shipped[VIEWS[view][1]]["checks"], candidate[VIEWS[view][1]]["checks"]
        turned = {check: difference(s, c, check) for check in CHECK_SENSE if met[check] and not now[check]}
        worse = [check for check, found in turned.items() if shown_worse(found, check)]
        out.append(Condition(view, "no met check turns unmet where the candidate is shown worse",
                             "; ".join([f"{sum(met.values())} -> {sum(now.values())} met",
                                        *(f"{check}: {found.text()}" for check, found in turned.items())]),
                             not worse))
        margin, gap = "recall_beats_best_classic_by_0.05", "median_delay_at_most_that_classics"
        found = difference(s, c, margin)
        out.append(Condition(view, f"recall margin not shown under the shipped design's - {MARGIN_ALLOWANCE}",
                             found.text(), not shown_worse(found, margin, MARGIN_ALLOWANCE)))
        found = difference(s, c, gap)
        out.append(Condition(view, "median delay gap not shown longer than the shipped design's", found.text(),
                             not shown_worse(found, gap)))
        if view != "manifest":
            continue
        out.append(_false_alarms(s, c))
        early = "pre_change_alarms_at_most_5pct"
        found = difference(s, c, early)
        out.append(Condition(view, f"alarms before the change not shown over the shipped design's + {EARLY_POINTS:g}",
                             found.text(), not shown_worse(found, early, EARLY_POINTS)))
    return out


def _false_alarms(shipped: Outcomes, candidate: Outcomes) -> Condition:
    """Condition 2, with the manifest's thresholds: the bar's cap and the ratio, or, where the shipped design
    is over the cap already, the shipped design's own rate."""
    fa = "false_alarms_at_most_1_per_1000"
    over_cap = whole(shipped, fa) > FA_CAP
    found = difference(shipped, candidate, fa, scale=1.0 if over_cap else FA_RATIO)
    if over_cap:
        return Condition("manifest", f"false alarms not shown over the shipped design's, over {FA_CAP:g} / 1000 "
                         "already (the interval: candidate - shipped)", found.text(), not shown_worse(found, fa))
    return Condition("manifest", f"false alarms at most {FA_CAP:g} / 1000 and not shown over {FA_RATIO} x the "
                     f"shipped design's (the interval: candidate - {FA_RATIO} x shipped)", found.text(),
                     found.candidate <= FA_CAP and not shown_worse(found, fa))


def passed(found: Sequence[Condition]) -> bool:
    return all(c.holds for c in found)


def markdown(family: str, found: Sequence[Condition]) -> str:
    lines = [f"Exam on `{family}`: **{'passed' if passed(found) else 'failed'}** (differences: candidate - shipped, "
             f"paired {LEVEL:.0%} bootstrap intervals)", "",
             "| thresholds | condition | shipped -> candidate | holds |", "|---|---|---|---|"]
    lines += [f"| {c.view} | {c.name} | {c.figures} | {'yes' if c.holds else 'NO'} |" for c in found]
    return "\n".join(lines + [""])


def _families(path: Path) -> dict[str, Any]:
    path = path / "detection_families.json" if path.is_dir() else path
    families: dict[str, Any] = json.loads(path.read_text())["families"]
    return families


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.exam", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("shipped", type=Path)
    parser.add_argument("candidate", type=Path)
    parser.add_argument("--family", action="append", default=None,
                        help="the family to judge (repeatable; default: every family both runs read, as a "
                             "validation rule reads its families)")
    args = parser.parse_args(argv)
    shipped, candidate = _families(args.shipped), _families(args.candidate)
    names = args.family or [name for name in shipped if name in candidate]
    if not names:
        raise SystemExit("the two runs share no family")
    for path, runs in ((args.shipped, shipped), (args.candidate, candidate)):
        missing = [name for name in names if name not in runs]
        if missing:
            raise SystemExit(f"{path}: no run of {missing[0]!r} (has {', '.join(runs)})")
    verdicts: dict[str, bool] = {}
    for name in names:
        found = conditions(shipped[name], candidate[name])
        verdicts[name] = passed(found)
        print(markdown(name, found))
    if len(names) > 1:
        print(f"Passed on {sum(verdicts.values())} of {len(names)} families; failed on: "
              f"{', '.join(n for n, ok in verdicts.items() if not ok) or 'none'}")
    return 0 if all(verdicts.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
