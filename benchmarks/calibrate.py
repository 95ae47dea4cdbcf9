"""``python -m benchmarks.calibrate [--quick] [--write]``: the detector's calibration for the served
temporal model, chosen on the training families and written into the model's manifest.

Why not on one generator: calibrated on :mod:`model.synthetic` alone (ARL0 2000 posts there), the
service raised 1.0 and 1.8 false alarms per 1000 posts on the sessions and days families (the
benchmark, docs/detection.md): what a model's score does on users who never change depends on the
users. So the knobs are set for the *worst* of the families we may train and tune on (synthetic,
sessions, days; never the held-out one), seed ``SEED`` (disjoint from the benchmark's):

1. for every fast-rule threshold in ``FAST`` and share-rule threshold in ``SHARE`` (0: off; the share
   bank's second CUSUM at ``SHARE2_RATIO`` times it, so the pair moves as one knob), the evidence rule's
   threshold is bisected to the largest false-alarm rate at most ``TARGET`` per 1000
   posts on every family's no-change users (a pair whose other rules alone exceed it is dropped);
2. the pair with the best recall (mean over the families of the pooled recall of every change kind),
   then the shortest median delay, wins.

``--write`` puts it into ``model_repository/temporal/<v>/manifest.json`` (section ``detector``, with
``calibrated_with``: the command, seed, families, target and the figures) and ``docs/calibration.json``.

A round's candidate (docs/detection_method.md, "How a round runs") is calibrated from the screen's own text,
``--variant NAME=JSON`` (:mod:`benchmarks.variants`: DetectorConfig fields, ``ratio``, and service.drift
constants), with ``--share-grid`` / ``--fast-grid`` where its thresholds lie outside the manifest's grids.
Read without ``--write``; written (``--write --version N``, a scratch copy of the served model) only when
it has no constants, since a manifest cannot hold them, and then into that manifest alone.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import metrics
from benchmarks.bisection import bisect
from benchmarks.families import figures, served_config, service_events
from benchmarks.variants import RATIO, constants, numbers, parse_variant
from model import families
from service import model_repository
from service.drift import DetectorConfig
from service.inference import ProviderChoice
from service.temporal import TemporalModel

REPOSITORY = Path(__file__).resolve().parent.parent / "model_repository"
DOCS = Path(__file__).resolve().parent.parent / "docs"
SEED = 40_000
# False alarms per 1000 posts on the worst training family. 0.35, not the operator's default 0.5: out of
# family the rate ran up to ~2x the training families' (docs/detection_rules.md, "a lower calibration
# target"), and with the share bank the recall margin over the classics held at 0.35.
TARGET = 0.35
# Below 0.95 the fast rule alone raises 0.7-1.2 false alarms per 1000 posts on sessions and days.
# With the share rule's refinements (SHARE_RULE), 0.95 and a share threshold up to 16 were over the target
# without the evidence rule, and 0.99 or the share rule off lost recall (0.37-0.48 against 0.51). Reading
# faceless posts too, the share rule alone was over the target below 14; with the wide bank's slacks (0.5 and
# 0.15), below 9.5 (docs/detection_rules.md, twenty-seventh round).
FAST = (0.96, 0.97, 0.98)
SHARE = (9.0, 9.5, 10.0, 10.5, 11.0)
REBASELINE_POSTS = 50  # chosen, not calibrated: docs/detection.md
# Posts "back" in a row before an episode ends as recovered. Chosen, not calibrated: with 5, out of family
# 22-39% of the persistent changes found ended as "recovered" by chance dips (docs/detection_rules.md).
RECOVERY_POSTS = 10
# The share rule's refinements, chosen on the training families by seeded experiments (docs/detection_rules.md),
# not calibrated: it reads every post, faceless ones too (as the classics do; hiding them lost recall once
# the share bank was in), a young user's reference counts its own uncertainty, an episode ends as
# "recovered" only when the recent share is nearer the pre-change level than the episode's, and a new
# baseline's reference starts from the posts since the alarm, and at the re-baseline post an episode whose
# share is back at the old level ends as "recovered" (the return test at 5 nats: the value at which each
# training family's persistent changes kept under 3% wrongly recovered), and the share CUSUMs discount each
# user's serial correlation (moods that carry from post to post; chosen by blind12's exam, the nineteenth
# round). Weighing posts by their gap (share_tau) lost recall: left off. The bank's slacks are the wide pair
# (0.5 and 0.15: quicker, and passed blind15's exam in the twenty-eighth round).
SHARE_RULE: dict[str, Any] = {"share_faceless": True, "share_uncertainty": 0.5, "share_back_nearer": True,
              "share_back_sd": 1.0, "share_tau": 0.0, "share_slack": 0.5, "share2_slack": 0.15,
              "share_rebaseline_seed": True, "share_return_nats": 5.0, "share_serial": True}
# The share bank (docs/detection_rules.md, "A bank of share CUSUMs"): a second CUSUM with slack 0.1 (tuned to a
# shift of ~0.2 reference sd, the first one's 0.25 to ~0.5) at this ratio of the first one's threshold: the
# ratio at which each alone raised the same false alarms on the training families' no-change users (an
# equal split of the budget, measured at seed 40000), so one knob, bisected with the others, sets both. For
# the wide pair (0.5 and 0.15) the equal split is 2.5 and 1.7 is not it but the examined design: the second
# CUSUM spends most of the budget (docs/detection_rules.md, twenty-eighth round).
SHARE2_RATIO = 1.7


@dataclass(frozen=True)
class CalibrationPlan:
    no_change: int = 30
    no_change_length: int = 2000
    per_kind: int = 60
    iterations: int = 8
    seed: int = SEED
    target: float = TARGET
    pre: tuple[int, int] | None = None  # a change's first post: each family's own range, or this (late_changes.md)
    fast: tuple[float, ...] = FAST      # the grids tried (--fast-grid, --share-grid) and the bank's ratio
    share: tuple[float, ...] = SHARE    # (a variant's "ratio"): the manifest's design unless a round's
    ratio: float = SHARE2_RATIO         # candidate asks for others


QUICK = CalibrationPlan(no_change=3, no_change_length=500, per_kind=6, iterations=3, target=3.0)


class Calibrator:
    def __init__(self, plan: CalibrationPlan, temporal: TemporalModel) -> None:
        self.plan, self.temporal = plan, temporal
        self.groups: dict[str, dict[str, list]] = {}
        self.scores: dict[str, dict[str, list]] = {}
        for family in families.TRAINING:
            self.groups[family] = {kind: families.make_streams(
                family, plan.seed, kind, plan.no_change if kind == "none" else plan.per_kind,
                plan.no_change_length if kind == "none" else None, plan.pre) for kind in families.KINDS}
            self.scores[family] = {kind: temporal.replay(streams) for kind, streams in self.groups[family].items()}

    def false_alarms(self, config: DetectorConfig) -> dict[str, float]:
        out = {}
        for family, groups in self.groups.items():
            alarms, _ = service_events(self.temporal, groups["none"], config, self.scores[family]["none"])
            out[family] = metrics.arl0(alarms, [s.length for s in groups["none"]])["false_alarms_per_1000"]
        return out

    def evaluate(self, config: DetectorConfig) -> dict[str, dict]:
        out = {}
        for family, groups in self.groups.items():
            events = {kind: service_events(self.temporal, groups[kind], config, self.scores[family][kind])
                      for kind in families.KINDS if kind != "none"}
            out[family] = figures(groups, {k: v[0] for k, v in events.items()}, {k: v[1] for k, v in events.items()},
                                  config.rebaseline_posts)
        return out

    def fit(self, base: DetectorConfig, log=print) -> dict:
        tried: list[dict[str, Any]] = []
        for fast in self.plan.fast:
            for share in self.plan.share:
                config = replace(base, threshold=fast, share_threshold=share, cusum_threshold=0.0,
                                 share2_threshold=share2_threshold(share, self.plan.ratio))
                if max(self.false_alarms(config).values()) > self.plan.target:  # the other rules alone are too many
                    log(f"fast {fast} share {share}: over the target without the evidence rule")
                    continue
                found = bisect(lambda cusum: self.false_alarms(replace(config, cusum_threshold=cusum)),
                               lambda rates: max(rates.values()) <= self.plan.target, 5.0, 2000.0, self.plan.iterations)
                cusum, rates = found if found else (0.0, self.false_alarms(config))
                chosen = replace(config, cusum_threshold=round(cusum, 1))
                figs = self.evaluate(chosen)
                recall = float(np.mean([f["all_changes"]["recall"] for f in figs.values()]))
                delay = float(np.nanmean([f["all_changes"]["delay_median"] for f in figs.values()]))
                tried.append({"threshold": fast, "share_threshold": share, "cusum_threshold": round(cusum, 1),
                              "share2_threshold": chosen.share2_threshold,
                              "false_alarms_per_1000": rates, "recall": round(recall, 4), "delay_median": round(delay, 1),
                              "by_family": {f: {"recall": v["all_changes"]["recall"], "delay_median": v["all_changes"]["delay_median"],
                                                "second_change": v["second_change"]["ratio"]} for f, v in figs.items()}})
                log(f"fast {fast} share {share}: cusum {cusum:.1f} FA {rates} recall {recall:.4f} delay {delay:.1f}")
        return {"chosen": max(tried, key=lambda t: (t["recall"], -t["delay_median"])), "tried": tried}


def share2_threshold(share: float, ratio: float = SHARE2_RATIO) -> float:
    """The bank's second CUSUM's threshold for the first one's ``share`` (ratio 0: the bank is off)."""
    return round(ratio * share, 2) if ratio > 0 else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.calibrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run (tests); never written")
    parser.add_argument("--write", action="store_true", help="write the result into the served model's manifest")
    parser.add_argument("--version", type=int, default=None, help="temporal version (default: the highest)")
    parser.add_argument("--target", type=float, default=None,
                        help=f"false alarms per 1000 posts on the worst training family (default {TARGET})")
    parser.add_argument("--pre", type=_posts_range, default=None, metavar="LO,HI",
                        help="draw each change's first post from LO-HI (default: each training family's own range)")
    parser.add_argument("--variant", type=parse_variant, default=None, metavar="NAME=JSON",
                        help="calibrate this variant of the design (benchmarks.late_changes --variant's text); "
                             "--write then writes only its manifest, and never with constants")
    parser.add_argument("--fast-grid", type=_grid, default=None, metavar="T,T,...",
                        help=f"fast-rule thresholds to try (default {','.join(map(str, FAST))})")
    parser.add_argument("--share-grid", type=_grid, default=None, metavar="T,T,...",
                        help=f"share-rule thresholds to try (default {','.join(map(str, SHARE))})")
    args = parser.parse_args(argv)
    variant: tuple[str, tuple[dict[str, Any], dict[str, float]]] = args.variant or ("", ({}, {}))
    name, (fields, overrides) = variant
    if args.write and overrides:
        parser.error(f"{name!r} sets service.drift constants, which no manifest holds: calibrate it without --write")
    plan = _plan(args, fields.pop(RATIO, None))
    started = time.perf_counter()
    artifact = model_repository.load(REPOSITORY, "temporal", args.version)
    temporal = TemporalModel(artifact, ProviderChoice("cpu", "calibration"))
    # the knobs not calibrated here come from the model's calibration, or the defaults for a new model
    uncalibrated = "detector" not in artifact.manifest
    base = DetectorConfig(profile=temporal.score_profile) if uncalibrated else served_config(temporal)
    base = replace(base, rebaseline_posts=REBASELINE_POSTS, recovery_posts=RECOVERY_POSTS, **SHARE_RULE)
    base = replace(base, **fields)
    with constants(overrides):
        result = Calibrator(plan, temporal).fit(base)
    result["seconds"] = round(time.perf_counter() - started, 1)
    chosen = result["chosen"]
    print(f"chosen: fast {chosen['threshold']} share {chosen['share_threshold']} (second {chosen['share2_threshold']}) "
          f"cusum {chosen['cusum_threshold']} recall {chosen['recall']} delay {chosen['delay_median']} ({result['seconds']} s)")
    if args.write and not args.quick:
        write(artifact.model_path.parent / "manifest.json", base, chosen, plan, tuple(fields))
        published = json.loads((DOCS / "calibration.json").read_text())["model"]
        # docs/ holds the shipped model's calibration: a round's candidate, or a platform's adapted
        # model (docs/adaptation.md), is written into its own manifest only
        if args.variant or artifact.tag != published:
            print(f"wrote {artifact.tag}'s manifest; docs/calibration.json ({published}'s) left as it was")
        else:
            (DOCS / "calibration.json").write_text(json.dumps({"model": artifact.tag, **result}, indent=1) + "\n")
    return 0


def _plan(args: argparse.Namespace, ratio: float | None) -> CalibrationPlan:
    """The plan the command line asks for: the quick or full one, with its options and a variant's ratio."""
    plan = QUICK if args.quick else CalibrationPlan()
    return replace(plan, target=args.target or plan.target, pre=args.pre or plan.pre, fast=args.fast_grid or plan.fast,
                   share=args.share_grid or plan.share, ratio=plan.ratio if ratio is None else ratio)


def _grid(text: str) -> tuple[float, ...]:
    grid = numbers(text, float, "thresholds separated by commas")
    if not all(t > 0 for t in grid):
        raise argparse.ArgumentTypeError(f"thresholds must be > 0, got {text!r}")
    return grid


def _posts_range(text: str) -> tuple[int, int]:
    lo, hi = numbers(text, int, "LO,HI (two post numbers)", 2)
    if not 0 < lo <= hi:
        raise argparse.ArgumentTypeError(f"need 0 < LO <= HI, got {text!r}")
    return lo, hi


def write(path: Path, base: DetectorConfig, chosen: dict, plan: CalibrationPlan, fields: tuple[str, ...] = ()) -> None:
    """The chosen thresholds into the manifest's ``detector`` section, with the knobs chosen, not
    calibrated, that they were calibrated with (and a variant's ``fields``)."""
    manifest = json.loads(path.read_text())
    section = {k: getattr(base, k) for k in ("warmup_posts", "recovery_threshold", "confirm_posts", "recovery_posts",
                                             "cooldown_posts", "cusum_slack", "reference_alpha",
                                             *SHARE_RULE, *fields)}
    section.update(threshold=chosen["threshold"], cusum_threshold=chosen["cusum_threshold"],
                   share_threshold=chosen["share_threshold"], rebaseline_posts=REBASELINE_POSTS,
                   share2_threshold=chosen.get("share2_threshold", 0.0))
    section["calibrated_with"] = {
        "command": "python -m benchmarks.calibrate --write", "seed": plan.seed, "families": list(families.TRAINING),
        "target_false_alarms_per_1000": plan.target, "on": "the worst family's no-change users",
        "users": {"no_change": plan.no_change, "no_change_length": plan.no_change_length, "per_kind": plan.per_kind,
                  **({"change_first_post": list(plan.pre)} if plan.pre else {})},
        "figures": {"false_alarms_per_1000": chosen["false_alarms_per_1000"], "recall": chosen["recall"]},
        "note": f"rebaseline_posts, recovery_posts and the share rule's refinements ({', '.join(SHARE_RULE)}) chosen, not "
                f"calibrated; share2_threshold = {plan.ratio} x share_threshold (docs/detection_rules.md)"}
    manifest["detector"] = section
    path.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
