"""``python -m benchmarks.late_changes [--quick]``: the training families with their changes moved later in
a user's life, the shipped detector against variants of it at one matched false-alarm rate. Writes
``docs/late_changes.md``.

Why (twenty-first round, docs/detection_rules.md): the training families' changes start at posts 32-110
(``PRE`` in each family), the held-out families' anywhere in 40-250. So a variant screened on the
training families was never shown a user whose pattern holds for 110-250 posts before it changes, which
is where the held-out families' early alarms come from; the anchored share CUSUM of the twentieth round
raised no more early alarms on the training families and more on every held-out one. Here the same
generators draw each change's first post from ``PRE`` (30-250 by default), and the early alarms are read
among all change streams and among those whose change comes after post 110. The variants are earlier
rounds' candidates whose early alarms rose out of family but not on the published training streams
(the page says whether this screen would have seen it coming), and the anchor at 200 posts.

The comparison is at one false-alarm rate, as calibration would set it: every threshold of a variant is
scaled by one factor, the smallest (by bisection) at which its worst family's false alarms per 1000 posts
on the no-change users are at most the shipped design's (at its manifest thresholds). Training families
only, seed ``SEED`` (neither the benchmark's, the calibration's nor any other page's); no held-out family
is read.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import replace

import numpy as np

from benchmarks import metrics
from benchmarks.families import change_case, served_config, service_events
from benchmarks.published import page_parser, served_temporal, write_page
from benchmarks.share_rule_alone import constants
from model import families
from model.families import days, sessions, synthetic
from model.families.base import CHANGE_KINDS, Stream
from service.drift import DetectorConfig
from service.temporal import TemporalModel

SEED = 70_000
PRE = (30, 250)       # a change's first post: the held-out families' range, which the published streams stop short of
# the last first post of a change on the training families' published streams
PUBLISHED_END = max(module.PRE[1] for module in (days, sessions, synthetic))
WITHIN = 60           # posts: the "found within" column (about the best classic's pooled median delay)
SHIPPED = "shipped"
# name -> (DetectorConfig fields, service.drift constants) on top of the served design: the candidates of
# earlier rounds whose early alarms rose out of family and not on the published training streams, so the
# page also says whether this screen would have seen them; "ratio": the bank's second CUSUM's threshold
# as that multiple of the first one's (the manifest's: 1.7)
VARIANTS: dict[str, tuple[dict, dict]] = {
    "no young slack, sd floor 0.001 (round 7)": ({"share_uncertainty": 0.0}, {"SHARE_SD_FLOOR": 0.001}),
    "bank ratio 2.2 (round 10)": ({"ratio": 2.2}, {}),
    "sd floor 0.001 (round 17)": ({}, {"SHARE_SD_FLOOR": 0.001}),
    "anchored at 100 posts (round 20)": ({"share_anchor_posts": 100}, {}),
    "anchored at 200 posts": ({"share_anchor_posts": 200}, {}),
}


@dataclasses.dataclass(frozen=True)
class Plan:
    no_change: int = 40
    no_change_length: int = 2000
    per_kind: int = 60
    iterations: int = 8
    scale_range: tuple[float, float] = (0.7, 2.0)
    pre: tuple[int, int] = PRE
    families: tuple[str, ...] = families.TRAINING


QUICK = Plan(no_change=4, no_change_length=600, per_kind=6, iterations=4, families=("sessions", "days"))


@dataclasses.dataclass
class FamilyData:
    none: list[Stream]
    changes: list[Stream]
    none_scores: list[np.ndarray]
    change_scores: list[np.ndarray]
    published: list[Stream]  # the same kinds and numbers with the family's own range (its PRE)
    published_scores: list[np.ndarray]


def family_data(temporal: TemporalModel, family: str, plan: Plan) -> FamilyData:
    none = families.make_streams(family, SEED, "none", plan.no_change, plan.no_change_length)
    changes = [s for kind in CHANGE_KINDS for s in families.make_streams(family, SEED, kind, plan.per_kind, pre=plan.pre)]
    published = [s for kind in CHANGE_KINDS for s in families.make_streams(family, SEED, kind, plan.per_kind)]
    return FamilyData(none, changes, temporal.replay(none), temporal.replay(changes), published, temporal.replay(published))


def false_alarms(temporal: TemporalModel, data: FamilyData, config: DetectorConfig, scale: float) -> float:
    alarms, _ = service_events(temporal, data.none, config, data.none_scores, scale=scale)
    return metrics.arl0(alarms, [s.length for s in data.none])["false_alarms_per_1000"]


def matched_scale(temporal: TemporalModel, data: dict[str, FamilyData], config: DetectorConfig, target: float,
                  plan: Plan) -> float:
    """The smallest scale (by bisection on ``plan.scale_range``) at which the worst family's false alarms are
    at most ``target``; the top of the range if none is."""
    lo, hi = (math.log(x) for x in plan.scale_range)
    best = plan.scale_range[1]
    for _ in range(plan.iterations):
        mid = 0.5 * (lo + hi)
        if max(false_alarms(temporal, d, config, math.exp(mid)) for d in data.values()) <= target:
            best, hi = math.exp(mid), mid
        else:
            lo = mid
    return round(best, 3)


def row(temporal: TemporalModel, data: FamilyData, config: DetectorConfig, scale: float) -> dict:
    """One detector's figures on one family at ``scale``."""
    alarms, ends = service_events(temporal, data.changes, config, data.change_scores, scale=scale)
    m = metrics.change_metrics([change_case(s, a, [t for t, _ in e]) for s, a, e in zip(data.changes, alarms, ends)])
    late = [e for s, e in zip(data.changes, m["early"]) if s.start > PUBLISHED_END]
    published, ends_p = service_events(temporal, data.published, config, data.published_scores, scale=scale)
    early_published = metrics.change_metrics([change_case(s, a, [t for t, _ in e])
                                              for s, a, e in zip(data.published, published, ends_p)])
    return {"scale": scale, "false_alarms_per_1000": false_alarms(temporal, data, config, scale),
            "recall": m["recall"], "delay_median": m["delay_median"],
            "found_within": metrics.found_within(m["delays"], len(data.changes), WITHIN),
            "early": m["pre_change_alarm_rate"], "early_late": round(float(np.mean(late)), 4) if late else float("nan"),
            "early_published": early_published["pre_change_alarm_rate"],
            "streams": len(data.changes), "late_streams": len(late)}


def variant_config(shipped: DetectorConfig, fields: dict) -> DetectorConfig:
    """The served design with a variant's ``fields`` (``ratio``: see ``VARIANTS``)."""
    fields = dict(fields)
    if "ratio" in fields:
        fields["share2_threshold"] = round(fields.pop("ratio") * shipped.share_threshold, 2)
    return replace(shipped, **fields)


def run(plan: Plan, variants: dict[str, tuple[dict, dict]], log=print) -> dict:
    temporal = served_temporal()
    shipped = served_config(temporal)
    data = {f: family_data(temporal, f, plan) for f in plan.families}
    target = max(false_alarms(temporal, d, shipped, 1.0) for d in data.values())
    out: dict = {"target": target, "detectors": {}}
    for name, (fields, consts) in {SHIPPED: ({}, {}), **variants}.items():
        config = variant_config(shipped, fields)
        with constants(consts):
            scale = 1.0 if name == SHIPPED else matched_scale(temporal, data, config, target, plan)
            out["detectors"][name] = {f: row(temporal, d, config, scale) for f, d in data.items()}
        log(f"{name}: scale {scale}")
    return out


def pooled(rows: dict[str, dict]) -> dict:
    """The families' figures weighted by their streams (delays: the mean of the families' medians)."""
    n = sum(r["streams"] for r in rows.values())
    late = sum(r["late_streams"] for r in rows.values())
    mean = {k: sum(r[k] * r["streams"] for r in rows.values()) / n
            for k in ("recall", "found_within", "early", "early_published")}
    return {**mean, "false_alarms_per_1000": max(r["false_alarms_per_1000"] for r in rows.values()),
            "delay_median": float(np.nanmean([r["delay_median"] for r in rows.values()])),
            "early_late": sum(r["early_late"] * r["late_streams"] for r in rows.values()) / late if late else float("nan"),
            "scale": next(iter(rows.values()))["scale"]}


def _line(family: str, name: str, r: dict) -> str:
    return (f"| {family} | {name} | {r['scale']:.3f} | {r['false_alarms_per_1000']:.3f} | {r['recall']:.3f} | "
            f"{r['delay_median']:.1f} | {r['found_within']:.3f} | {r['early']:.1%} | {r['early_late']:.1%} | "
            f"{r['early_published']:.1%} |")


def markdown(result: dict, plan: Plan, seconds: float) -> str:
    lines = ["# The training families with late changes",
             "",
             f"Generated by `python -m benchmarks.late_changes` ({seconds:.0f} s); why and how: the module's docstring, "
             "what it showed: [detection_rules.md](detection_rules.md#the-training-families-with-late-changes-twenty-first-round). "
             f"Training families only (seed {SEED}): {plan.no_change} no-change users of {plan.no_change_length} posts "
             f"and {plan.per_kind} streams of each change kind, each change's first post drawn from "
             f"{plan.pre[0]}-{plan.pre[1]} (the published streams: up to {PUBLISHED_END}). Every variant's "
             "thresholds are scaled by one factor, the smallest at which its worst family's false alarms are at "
             f"most the shipped design's ({result['target']:.3f} per 1000 posts). *Found within {WITHIN}*: the "
             "share of all changes found at most that many posts after they began. *Before the change*: change "
             f"streams with an alarm before the change; *... of those after post {PUBLISHED_END}*: the same among "
             "the streams whose change comes later than any on the published streams; *... on the published range*: "
             "the same kinds and numbers of change streams with each family's own range, at the same scale.",
             "",
             f"| family | detector | scale | false alarms / 1000 | recall | median delay | found within {WITHIN} "
             f"| before the change | ... of those after post {PUBLISHED_END} | ... on the published range |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for family in plan.families:
        lines += [_line(family, name, rows[family]) for name, rows in result["detectors"].items()]
    if len(plan.families) > 1:
        lines += [_line("pooled", name, pooled(rows)) for name, rows in result["detectors"].items()]
        lines += ["", "Pooled: recall, found within and the early alarms weighted by streams; the false alarms "
                      "the worst family's; the delay the mean of the families' medians."]
    return "\n".join(lines + [""])


def main(argv: list[str] | None = None) -> int:
    args = page_parser("python -m benchmarks.late_changes", __doc__ or "").parse_args(argv)
    plan = QUICK if args.quick else Plan()
    started = time.perf_counter()
    result = run(plan, VARIANTS)
    write_page(args.out, "late_changes", args.quick, markdown(result, plan, time.perf_counter() - started))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
