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
on the no-change users are at most the shipped design's (at its manifest thresholds), searched in
``Plan.scale_range``; a variant whose match lies at an end of it (none passes, or every scale tried does)
is marked "(range end)" on the page, and ``--scale-range`` widens it for a screen. A second table
reads the shipped design against the classic CUSUM calibrated to its rate on each family, as the bar
does, on both ranges: whether its delay gap and recall margin depend on when changes come. Training families
only, the published page at seed ``SEED`` and a screen at ``SCREEN_SEEDS`` unless it asks for others (none
of them the benchmark's, the calibration's nor any other page's); no held-out family is read.

This is the screen a round's lead passes before any held-out family is run (docs/detection_rules.md).
``--variant NAME=JSON`` (repeatable) screens one's own variants instead of the page's, DetectorConfig
fields and ``service.drift`` constants, on a scratch page (``late_changes-screen.md`` in ``--out``), e.g.
``--variant 'young slack 1.0={"share_uncertainty": 1.0}' --out /tmp/screen``; a variant that needs new
code is run through :func:`run` from a scratch script. A screen reads every variant at ``SCREEN_SEEDS``
(two seeds) unless ``--seed N`` (repeatable) names others, and its page opens with each variant against
the shipped design at every seed: a variant matched at a lower scale than the shipped design's can owe its
gain to where the bisection lands on a few false alarms of 40 users, or spend more false alarms on the
families that are not the worst, so a gain is believed only where it holds at every seed
(docs/detection_rules.md, thirty-second and thirty-third rounds: a lower z cap and a faster-forgetting
reference, each a gain at one seed only).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from dataclasses import replace

import numpy as np

from benchmarks import metrics
from benchmarks.baselines import BASELINES
from benchmarks.bisection import bisect
from benchmarks.calibrate import share2_threshold
from benchmarks.families import change_case, classic_alarms, served_config, service_events
from benchmarks.published import DOCS, page_parser, served_temporal, write_page
from benchmarks.variants import RATIO, constants, numbers, parse_variant
from model import families
from model.families import days, sessions, synthetic
from model.families.base import CHANGE_KINDS, Stream
from service.drift import DetectorConfig
from service.temporal import TemporalModel

SEED = 70_000
SCREEN_SEEDS = (SEED, 71_000)  # a screen of one's own variants, unless --seed says otherwise
PRE = (30, 250)       # a change's first post: the held-out families' range, which the published streams stop short of
# the last first post of a change on the training families' published streams
PUBLISHED_END = max(module.PRE[1] for module in (days, sessions, synthetic))
WITHIN = 60           # posts: the "found within" column (about the best classic's pooled median delay)
SHIPPED = "shipped"
CLASSIC = "cusum"  # the bar's best classic on every training family in the published run (docs/detection.md)
# name -> (DetectorConfig fields, service.drift constants) on top of the served design: the candidates of
# earlier rounds whose early alarms rose out of family and not on the published training streams, so the
# page also says whether this screen would have seen them, and the twenty-third round's lead (the round
# 10 bank with the young slack raised; dropped by the twenty-fourth round's validation rule); "ratio": the bank's second CUSUM's threshold as that multiple of
# the first one's (the manifest's: 1.7)
VARIANTS: dict[str, tuple[dict, dict]] = {
    "no young slack, sd floor 0.001 (round 7)": ({"share_uncertainty": 0.0}, {"SHARE_SD_FLOOR": 0.001}),
    "bank ratio 2.2 (round 10)": ({"ratio": 2.2}, {}),
    "sd floor 0.001 (round 17)": ({}, {"SHARE_SD_FLOOR": 0.001}),
    "anchored at 100 posts (round 20)": ({"share_anchor_posts": 100}, {}),
    "anchored at 200 posts": ({"share_anchor_posts": 200}, {}),
    "bank ratio 2.2, young slack 1.5 (round 23)": ({"ratio": 2.2, "share_uncertainty": 1.5}, {}),
}


@dataclasses.dataclass(frozen=True)
class Plan:
    no_change: int = 40
    no_change_length: int = 2000
    per_kind: int = 60
    iterations: int = 8
    classic_iterations: int = 14
    scale_range: tuple[float, float] = (0.7, 2.0)
    pre: tuple[int, int] = PRE
    families: tuple[str, ...] = families.TRAINING
    seed: int = SEED


QUICK = Plan(no_change=4, no_change_length=600, per_kind=6, iterations=4, classic_iterations=6,
             families=("sessions", "days"))


@dataclasses.dataclass
class FamilyData:
    none: list[Stream]
    changes: list[Stream]
    none_scores: list[np.ndarray]
    change_scores: list[np.ndarray]
    published: list[Stream]  # the same kinds and numbers with the family's own range (its PRE)
    published_scores: list[np.ndarray]


def family_data(temporal: TemporalModel, family: str, plan: Plan) -> FamilyData:
    none = families.make_streams(family, plan.seed, "none", plan.no_change, plan.no_change_length)
    changes = [s for kind in CHANGE_KINDS for s in families.make_streams(family, plan.seed, kind, plan.per_kind, pre=plan.pre)]
    published = [s for kind in CHANGE_KINDS for s in families.make_streams(family, plan.seed, kind, plan.per_kind)]
    return FamilyData(none, changes, temporal.replay(none), temporal.replay(changes), published, temporal.replay(published))


def false_alarms(temporal: TemporalModel, data: dict[str, FamilyData], config: DetectorConfig,
                 scale: float) -> dict[str, float]:
    """Each family's false alarms per 1000 posts on its no-change users at ``scale``."""
    out = {}
    for family, d in data.items():
        alarms, _ = service_events(temporal, d.none, config, d.none_scores, scale=scale)
        out[family] = metrics.arl0(alarms, [s.length for s in d.none])["false_alarms_per_1000"]
    return out


def matched_scale(temporal: TemporalModel, data: dict[str, FamilyData], config: DetectorConfig, target: float,
                  plan: Plan) -> tuple[float, dict[str, float]]:
    """The smallest scale (by bisection on ``plan.scale_range``) at which the worst family's false alarms are
    at most ``target`` (the top of the range if none is), with each family's false alarms there."""
    found = bisect(lambda scale: max(false_alarms(temporal, data, config, scale).values()),
                   lambda worst: worst <= target, *plan.scale_range, plan.iterations)
    scale = round(found[0] if found else plan.scale_range[1], 3)  # the scale the page shows is the one its rows are read at
    return scale, false_alarms(temporal, data, config, scale)


def at_range_end(scale: float, plan: Plan) -> bool:
    """Whether a matched scale is an end of ``plan.scale_range``: its bottom, within the last bisection step
    (every scale tried passed), or its top (none passed, :func:`matched_scale`'s fallback). The variant's
    match may then lie beyond it, and its row is not read at the shipped rate. The last scale tried below
    the top passed and its neighbour failed: a match, not an end."""
    lo, hi = plan.scale_range
    step = math.log(hi / lo) / 2 ** plan.iterations
    return math.log(scale / lo) <= 1.5 * step or scale >= round(hi, 3)


def _metrics(streams: list[Stream], alarms: list[list[int]], ends: list | None = None) -> dict:
    return metrics.change_metrics([change_case(s, a, [t for t, _ in ends[i]] if ends else None)
                                   for i, (s, a) in enumerate(zip(streams, alarms))])


def row(temporal: TemporalModel, data: FamilyData, config: DetectorConfig, scale: float, rate: float) -> dict:
    """One detector's figures on one family at ``scale`` (``rate``: its false alarms there, already counted)."""
    m = _metrics(data.changes, *service_events(temporal, data.changes, config, data.change_scores, scale=scale))
    late = [e for s, e in zip(data.changes, m["early"]) if s.start > PUBLISHED_END]
    p = _metrics(data.published, *service_events(temporal, data.published, config, data.published_scores, scale=scale))
    return {"scale": scale, "false_alarms_per_1000": rate,
            "recall": m["recall"], "delay_median": m["delay_median"], "delays": m["delays"],
            "found_within": metrics.found_within(m["delays"], len(data.changes), WITHIN),
            "early": m["pre_change_alarm_rate"], "early_late": round(float(np.mean(late)), 4) if late else float("nan"),
            "early_published": p["pre_change_alarm_rate"], "published_recall": p["recall"],
            "published_delays": p["delays"], "streams": len(data.changes), "late_streams": len(late)}


def _shares(streams: list[Stream]) -> list[list[float]]:
    return [s.negative_share.astype(float).tolist() for s in streams]


def classic_row(data: FamilyData, target: float, plan: Plan) -> dict:
    """The classic CUSUM on the negative share (the bar's best classic on the training families' published run), its
    threshold bisected to the smallest with at most ``target`` false alarms per 1000 posts on the family's
    no-change users (the shipped design's rate there, as the bar calibrates each classic), on both ranges."""
    baseline = next(b for b in BASELINES if b.name == CLASSIC)
    none, lengths = _shares(data.none), [s.length for s in data.none]
    def rate(knob: float) -> float:
        return metrics.arl0(classic_alarms(CLASSIC, knob, none), lengths)["false_alarms_per_1000"]

    found = bisect(rate, lambda tried: tried <= target, *baseline.knob_range, plan.classic_iterations)
    knob, knob_rate = found if found else (baseline.knob_range[1], None)
    m = _metrics(data.changes, classic_alarms(CLASSIC, knob, _shares(data.changes)))
    p = _metrics(data.published, classic_alarms(CLASSIC, knob, _shares(data.published)))
    return {"knob": round(knob, 3), "false_alarms_per_1000": rate(knob) if knob_rate is None else knob_rate,
            "recall": m["recall"], "delays": m["delays"], "published_recall": p["recall"], "published_delays": p["delays"],
            "streams": len(data.changes)}


def variant_config(shipped: DetectorConfig, fields: dict) -> DetectorConfig:
    """The served design with a variant's ``fields`` (``ratio``: see ``VARIANTS``)."""
    fields = dict(fields)
    if RATIO in fields:
        fields["share2_threshold"] = share2_threshold(shipped.share_threshold, fields.pop(RATIO))
    return replace(shipped, **fields)


def run(plan: Plan, variants: dict[str, tuple[dict, dict]], log=print) -> dict:
    temporal = served_temporal()
    shipped = served_config(temporal)
    data = {f: family_data(temporal, f, plan) for f in plan.families}
    shipped_rates = false_alarms(temporal, data, shipped, 1.0)
    target = max(shipped_rates.values())
    out: dict = {"target": target, "detectors": {}}
    for name, (fields, consts) in {SHIPPED: ({}, {}), **variants}.items():
        config = variant_config(shipped, fields)
        with constants(consts):
            scale, rates = (1.0, shipped_rates) if name == SHIPPED else matched_scale(temporal, data, config, target, plan)
            out["detectors"][name] = {f: row(temporal, d, config, scale, rates[f]) for f, d in data.items()}
        log(f"{name}: scale {scale}" + (f" (an end of the scale range {plan.scale_range}: widen it)"
                                        if at_range_end(scale, plan) else ""))
    out["classic"] = {f: classic_row(d, shipped_rates[f], plan) for f, d in data.items()}
    return out


def pooled(rows: dict[str, dict]) -> dict:
    """The families' figures weighted by their streams (delays: the mean of the families' medians)."""
    n = sum(r["streams"] for r in rows.values())
    late = sum(r["late_streams"] for r in rows.values())
    mean = {k: sum(r[k] * r["streams"] for r in rows.values()) / n
            for k in ("recall", "found_within", "early", "early_published", "published_recall")}
    rates = [r["false_alarms_per_1000"] for r in rows.values()]
    # the mean too (each family has as many no-change posts): the one scale charges only the worst family's,
    # so a variant can spend more on the others unseen (docs/detection_rules.md, thirty-second round)
    return {**mean, "false_alarms_per_1000": max(rates), "false_alarms_mean": float(np.mean(rates)),
            "delay_median": float(np.nanmean([r["delay_median"] for r in rows.values()])),
            "early_late": sum(r["early_late"] * r["late_streams"] for r in rows.values()) / late if late else float("nan"),
            "scale": next(iter(rows.values()))["scale"]}


def _scale(r: dict, plan: Plan) -> str:
    """A row's scale, marked where it is an end of the scale range (its match not found within it; the
    shipped design, read at 1, never is)."""
    return f"{r['scale']:.3f}" + (" (range end)" if at_range_end(r["scale"], plan) else "")


def _line(family: str, name: str, r: dict, plan: Plan) -> str:
    rate = f"{r['false_alarms_per_1000']:.3f}"
    if "false_alarms_mean" in r:
        rate += f" (mean {r['false_alarms_mean']:.3f})"
    return (f"| {family} | {name} | {_scale(r, plan)} | {rate} | {r['recall']:.3f} | "
            f"{r['delay_median']:.1f} | {r['found_within']:.3f} | {r['early']:.1%} | {r['early_late']:.1%} | "
            f"{r['early_published']:.1%} | {r['published_recall']:.3f} |")


def markdown(result: dict, plan: Plan, seconds: float) -> str:
    """The page of one run (the published page, or a screen at one seed)."""
    intro = _intro(plan, seconds, f"(seed {plan.seed})", f"{result['target']:.3f} per 1000 posts")
    return "\n".join(intro + _body(result, plan, "##") + [""])


def screen_markdown(results: dict[int, dict], plan: Plan, seconds: float) -> str:
    """A screen's page: at one seed the same page as :func:`markdown`; at several, each variant against the
    shipped design at every seed first, then each seed's tables."""
    if len(results) == 1:
        (seed, result), = results.items()
        return markdown(result, replace(plan, seed=seed), seconds)
    lines = _intro(plan, seconds, f"(seeds {', '.join(map(str, results))}, each its own streams)",
                   "at each seed its own rate, below")
    lines += ["## Each variant against the shipped design at every seed", "",
              "Pooled over the families, each seed's variant against that seed's shipped design (the change in "
              "brackets); the false alarms the worst family's (the one the scale matches), then the families' mean. "
              "A gain is believed only where it holds at every seed.", "",
              f"| detector | seed | scale | false alarms / 1000: worst (mean) | recall | found within {WITHIN} "
              "| before the change |",
              "|---|---|---|---|---|---|---|"]
    names = [name for name in next(iter(results.values()))["detectors"] if name != SHIPPED]
    for name in names:
        for seed, result in results.items():
            ours, base = (pooled(result["detectors"][n]) for n in (name, SHIPPED))
            fa_mean = ours["false_alarms_mean"]
            lines.append(f"| {name} | {seed} | {_scale(ours, plan)} | {ours['false_alarms_per_1000']:.3f} "
                         f"({fa_mean:.3f}, {fa_mean - base['false_alarms_mean']:+.3f}) "
                         f"| {_changed(ours, base, 'recall')} | {_changed(ours, base, 'found_within')} "
                         f"| {ours['early']:.1%} ({100 * (ours['early'] - base['early']):+.1f} pt) |")
    for seed, result in results.items():
        lines += ["", f"## Seed {seed}", "",
                  f"The shipped design's worst family: {result['target']:.3f} false alarms per 1000 posts.", ""]
        lines += _body(result, replace(plan, seed=seed), "###")
    return "\n".join(lines + [""])


def _changed(ours: dict, base: dict, key: str) -> str:
    """A pooled figure with its change from the shipped design's in brackets."""
    return f"{ours[key]:.3f} ({ours[key] - base[key]:+.3f})"


def _intro(plan: Plan, seconds: float, seeds: str, target: str) -> list[str]:
    return ["# The training families with late changes",
            "",
            f"Generated by `python -m benchmarks.late_changes` ({seconds:.0f} s); why and how: the module's docstring, "
            "what it showed: [detection_rules.md](detection_rules.md#the-training-families-with-late-changes-twenty-first-round). "
            f"Training families only {seeds}: {plan.no_change} no-change users of {plan.no_change_length} posts "
            f"and {plan.per_kind} streams of each change kind, each change's first post drawn from "
            f"{plan.pre[0]}-{plan.pre[1]} (the published streams: up to {PUBLISHED_END}). Every variant's "
            "thresholds are scaled by one factor, the smallest at which its worst family's false alarms are at "
            f"most the shipped design's ({target}). *Found within {WITHIN}*: the "
            "share of all changes found at most that many posts after they began. *Before the change*: change "
            f"streams with an alarm before the change; *... of those after post {PUBLISHED_END}*: the same among "
            "the streams whose change comes later than any on the published streams; *... on the published range*: "
            "the same kinds and numbers of change streams with each family's own range, at the same scale; *recall "
            "on the published range*: on those streams (the changes the calibration sees, and what it then "
            "trades).",
            ""]


def _body(result: dict, plan: Plan, level: str) -> list[str]:
    """One run's tables, their headings at ``level`` ("##" on a page of one run)."""
    lines = [f"| family | detector | scale | false alarms / 1000 | recall | median delay | found within {WITHIN} "
             f"| before the change | ... of those after post {PUBLISHED_END} | ... on the published range "
             "| recall on the published range |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for family in plan.families:
        lines += [_line(family, name, rows[family], plan) for name, rows in result["detectors"].items()]
    if len(plan.families) > 1:
        lines += [_line("pooled", name, pooled(rows), plan) for name, rows in result["detectors"].items()]
        lines += ["", "Pooled: recall, found within and the early alarms weighted by streams; the false alarms "
                      "the worst family's (the one the scale matches), with the families' mean beside it; the delay the mean "
                      "of the families' medians."]
    return lines + classic_section(result, plan, level)


def _versus(family: str, label: str, ours: dict, classic: dict, key: str) -> str:
    """One row of the classic table: the shipped design against the classic on one range (``key``: "" for
    the late range, "published_" for the published one)."""
    ours_delay, classic_delay = (float(np.median(r[f"{key}delays"])) if r[f"{key}delays"] else float("nan")
                                 for r in (ours, classic))
    return (f"| {family} | {label} | {ours[f'{key}recall']:.3f} | {classic[f'{key}recall']:.3f} | "
            f"{ours[f'{key}recall'] - classic[f'{key}recall']:+.3f} | {ours_delay:.1f} | {classic_delay:.1f} | "
            f"{ours_delay - classic_delay:+.1f} |")


def _pool(rows: list[dict]) -> dict:
    n = sum(r["streams"] for r in rows)
    return {key: (sum(r[key] * r["streams"] for r in rows) / n if key.endswith("recall")
                  else [d for r in rows for d in r[key]])
            for key in ("recall", "delays", "published_recall", "published_delays")}


def classic_section(result: dict, plan: Plan, level: str) -> list[str]:
    lines = ["",
             f"{level} The shipped design against the classic {CLASSIC.upper()}",
             "",
             f"The classic {CLASSIC.upper()} on the negative share (the bar's best classic on every training family in "
             "the published run), "
             "its threshold bisected to the smallest at which its false alarms on the family's no-change users are at "
             "most the shipped design's there, as the bar calibrates each classic; both read on the late range and on "
             "the published one. *Margin*: the shipped design's recall minus the classic's (the bar asks +0.05); "
             "*gap*: its median delay minus the classic's, each over its own finds (the bar asks <= 0).",
             "",
             "| family | classic's threshold, false alarms / 1000 (shipped's) |",
             "|---|---|"]
    shipped = result["detectors"][SHIPPED]
    for family in plan.families:
        c = result["classic"][family]
        lines.append(f"| {family} | {c['knob']:.2f}, {c['false_alarms_per_1000']:.3f} "
                     f"({shipped[family]['false_alarms_per_1000']:.3f}) |")
    lines += ["",
              "| family | changes | shipped recall | classic recall | margin | shipped median delay "
              "| classic median delay | gap |",
              "|---|---|---|---|---|---|---|---|"]
    rows = [(f, shipped[f], result["classic"][f]) for f in plan.families]
    if len(rows) > 1:
        rows.append(("pooled", _pool([r for _, r, _ in rows]), _pool([c for _, _, c in rows])))
    for family, ours, classic in rows:
        lines.append(_versus(family, f"from post {plan.pre[0]}-{plan.pre[1]}", ours, classic, ""))
        lines.append(_versus(family, "published range", ours, classic, "published_"))
    return lines


SCREEN = "late_changes-screen"  # the page of a screen of one's own variants (--variant), never the published one


def _scale_range(text: str) -> tuple[float, float]:
    lo, hi = numbers(text, float, "LO,HI (two scales)", 2)
    if not 0 < lo < 1 < hi:
        raise argparse.ArgumentTypeError(f"need 0 < LO < 1 < HI (the shipped design is at 1), got {text!r}")
    return lo, hi


def main(argv: list[str] | None = None) -> int:
    parser = page_parser("python -m benchmarks.late_changes", __doc__ or "")
    parser.add_argument("--variant", type=parse_variant, action="append", default=[], metavar="NAME=JSON",
                        help="screen this variant against the shipped design instead of the page's (repeatable); "
                             f"writes {SCREEN}.md, so give --out a scratch folder")
    parser.add_argument("--seed", type=int, action="append", default=[],
                        help=f"the streams' seed (repeatable; a screen's default: {', '.join(map(str, SCREEN_SEEDS))}); "
                             f"the published page is read at {SEED} alone, so another is for a screen (--variant)")
    parser.add_argument("--scale-range", type=_scale_range, default=None, metavar="LO,HI",
                        help=f"the range each variant's scale is matched in (default {Plan.scale_range}); for a "
                             "screen whose variant lands at an end of it, which its page marks")
    args = parser.parse_args(argv)
    if args.variant and args.out.resolve() == DOCS.resolve():
        parser.error("a screen of one's own variants is scratch: give --out a folder other than docs/")
    if args.seed not in ([], [SEED]) and not args.variant:
        parser.error("the published page is read at its own seed: --seed is for a screen (--variant)")
    if args.scale_range and not args.variant:
        parser.error("the published page is matched in its own scale range: --scale-range is for a screen (--variant)")
    plan = QUICK if args.quick else Plan()
    plan = replace(plan, scale_range=args.scale_range) if args.scale_range else plan
    started = time.perf_counter()
    if not args.variant:
        result = run(plan, VARIANTS)
        write_page(args.out, "late_changes", args.quick, markdown(result, plan, time.perf_counter() - started))
        return 0
    results = {seed: run(replace(plan, seed=seed), dict(args.variant)) for seed in dict.fromkeys(args.seed or SCREEN_SEEDS)}
    write_page(args.out, SCREEN, args.quick, screen_markdown(results, plan, time.perf_counter() - started))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
