"""The drift-detection benchmark: ``python -m benchmarks.detection [--quick] [--out docs/] [--in-family]``.

By default, every stream family of :mod:`model.families` reported on its own (:mod:`benchmarks.families`):
the service as shipped (the served temporal model, the calibration in its manifest, re-baselining)
against the classic detectors, each calibrated per family to the service's false-alarm rate there; the
headline is the held-out ``blind`` family. Writes ``detection.md`` and ``detection_families.json``.

``--in-family`` is the detailed analysis on :mod:`benchmarks.streams` (the generator the temporal model
was built on): the CNN-LSTM (the committed temporal model from ``model_repository/``, stepped with
onnxruntime through the service's own feature code, then the service's ``DriftDetector``) against the
classic detectors of :mod:`benchmarks.baselines`. Every detector gets one knob calibrated by simulation
so that its ARL0 on the no-change streams is the target (``--arl0``, default 2000 posts), and one shape
parameter tuned on a small grid (best mean recall at that ARL0). Writes ``detection_in_family.md``
(tables, the bar, definitions), ``detection.json`` and ``detection_curve.png`` (delay and recall
against ARL0 for every detector). ``--quick`` is a small run for the tests.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import pickle
import re
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from benchmarks import metrics, oracle, report
from benchmarks.baselines import BASELINES, Baseline
from benchmarks.bisection import bisect
# `SEED as SEED`: re-exported, for the type checker (benchmarks.fast_rules reads detection.SEED)
from benchmarks.streams import CHANGE_KINDS, SEED as SEED, Stream, make_streams
from service import model_repository
from service.drift import DetectorConfig, DriftDetector, ScoreProfile
from service.inference import ProviderChoice
from service.temporal import TemporalModel

if TYPE_CHECKING:  # imported where used: only the per-family run loads the families
    from benchmarks.families import FamilyPlan

REPOSITORY = Path(__file__).resolve().parent.parent / "model_repository"
LSTM = "cnn_lstm"
# The CNN-LSTM's fast rule (score threshold, consecutive posts): the served model's calibration (its
# manifest), not the environment's overrides, so that an EMODRIFT_* variable set in the shell cannot
# silently change published figures.
SERVED_CALIBRATION: dict = model_repository.load(REPOSITORY, "temporal").manifest.get("detector", {})
SERVICE_FAST_RULE: tuple[float, int] = (float(SERVED_CALIBRATION.get("threshold", DetectorConfig().threshold)),
                                        int(SERVED_CALIBRATION.get("confirm_posts", DetectorConfig().confirm_posts)))


@dataclass(frozen=True)
class Plan:
    no_change: int = 60            # no-change streams ...
    no_change_length: int = 3000   # ... of this many posts
    per_kind: int = 200            # streams per change kind (and transient dips)
    arl0: float = 2000.0
    curve: tuple[float, ...] = (250.0, 500.0, 1000.0, 2000.0, 4000.0)
    curve_share: float = 0.34      # share of each kind's streams the curve points use (the headline uses all)
    slow_share: float = 0.25       # share of no-change streams KSWIN is calibrated on (far slower: docs/performance.md)
    iterations: int = 14           # bisection steps of a calibration
    seed: int = SEED
    workers: int = 2
    fast_rule: tuple[float, int] = SERVICE_FAST_RULE  # the CNN-LSTM's, held fixed while its evidence rule is calibrated


QUICK = Plan(no_change=6, no_change_length=800, per_kind=16, arl0=400.0, curve=(200.0, 400.0), curve_share=1.0,
             slow_share=0.5, iterations=8)
SLOW = {"kswin"}

_DATA: dict[str, list] = {}  # signals per group, set before the worker pool forks


def lstm_scores(temporal: TemporalModel, streams: list[Stream]) -> list[np.ndarray]:
    """Drift probability after every post: the service's features and ONNX step, batched over users."""
    return temporal.replay(streams)


def lstm_events(scores: list[np.ndarray], config: DetectorConfig) -> tuple[list[list[int]], list[list[int]]]:
    alarms, ends = [], []
    for row in scores:
        d, a, e = DriftDetector(config), [], []
        for t, s in enumerate(row.tolist()):
            event = d.update(s)
            if event == "drift.started":
                a.append(t)
            elif event == "drift.ended":
                e.append(t)
        alarms.append(a)
        ends.append(e)
    return alarms, ends


def signal(stream: Stream, temporal: TemporalModel, kind: str) -> list:
    valence = stream.probs @ temporal.valence
    if kind == "valence":
        return valence.astype(float).tolist()
    if kind == "valence01":
        return ((valence + 1.0) / 2.0).clip(0.0, 1.0).astype(float).tolist()
    return list(stream.probs.astype(float))


def _run(name: str, knob: float, shape: float, group: str, lo: int, hi: int) -> list[list[int]]:
    baseline = next(b for b in BASELINES if b.name == name)
    return baseline.alarms(knob, shape, _DATA[f"{group}/{baseline.signal}"][lo:hi])


def prepare(plan: Plan) -> tuple[TemporalModel, dict[str, list[Stream]]]:
    """The served temporal model and the plan's seeded streams, by group (``none``, each kind, ``transient``)."""
    temporal = TemporalModel(model_repository.load(REPOSITORY, "temporal"), ProviderChoice("cpu", "benchmark"))
    groups = {"none": make_streams("none", plan.no_change, plan.seed, plan.no_change_length)}
    for kind in (*CHANGE_KINDS, "transient", "placebo"):
        groups[kind] = make_streams(kind, plan.per_kind, plan.seed)
    return temporal, groups


@dataclass
class Tuned:
    """A detector calibrated to the plan's ARL0 at its best shape."""

    shape: float
    knob: float
    no_change: dict  # ARL0 figures on the no-change streams
    figures: dict    # per-kind and pooled change metrics
    history: list    # (knob, ARL0) pairs the calibration tried
    recall_by_shape: dict[str, float] = field(default_factory=dict)


class Runner:
    """Runs detectors on stream groups: the LSTM in-process, baselines over a small worker pool."""

    def __init__(self, plan: Plan, groups: dict[str, list[Stream]], temporal: TemporalModel):
        self.plan, self.groups, self.temporal = plan, groups, temporal
        for group, streams in groups.items():
            for kind in ("valence", "valence01", "probs"):
                _DATA[f"{group}/{kind}"] = [signal(s, temporal, kind) for s in streams]
        self.scores = {group: lstm_scores(temporal, streams) for group, streams in groups.items()}
        self.pool = mp.get_context("fork").Pool(plan.workers) if plan.workers > 1 else None

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()

    def alarms(self, name: str, knob: float, shape: float, group: str, share: float = 1.0):
        """(alarms, ends) per stream of ``group`` (its first ``share``)."""
        n = max(1, int(round(len(self.groups[group]) * share)))
        if name == LSTM:
            config = lstm_config(knob, shape, self.plan.fast_rule, self.temporal.score_profile)
            return lstm_events(self.scores[group][:n], config)
        cuts = np.linspace(0, n, (self.plan.workers if self.pool else 1) + 1).astype(int)
        jobs = [(name, knob, shape, group, int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]
        parts = self.pool.starmap(_run, jobs) if self.pool else [_run(*j) for j in jobs]
        alarms = [row for part in parts for row in part]
        return alarms, [[] for _ in alarms]

    def arl0(self, name: str, knob: float, shape: float, share: float = 1.0) -> dict:
        alarms, _ = self.alarms(name, knob, shape, "none", share)
        lengths = [s.length for s in self.groups["none"][:len(alarms)]]
        return metrics.arl0(alarms, lengths)

    def tune(self, detector: Baseline) -> "Tuned":
        """The knob calibrated to the plan's ARL0 for every shape; the shape with the best recall (then
        the shortest median delay) wins."""
        tried = []
        for shape in detector.shapes:
            history: list = []
            knob, no_change = self.calibrate(detector, shape, self.plan.arl0, history)
            tried.append(Tuned(shape, knob, no_change, self.evaluate(detector.name, knob, shape), history))
        best = max(tried, key=lambda t: (t.figures["all_changes"]["recall"], -t.figures["all_changes"]["delay_median"]))
        best.recall_by_shape = {str(t.shape): t.figures["all_changes"]["recall"] for t in tried}
        return best

    def calibrate(self, detector: Baseline, shape: float, target: float, history: list | None = None,
                  known: list | None = None) -> tuple[float, dict]:
        """The knob whose ARL0 is closest to ``target`` from above (log-scale bisection); ``known``
        (knob, ARL0) pairs from an earlier calibration narrow the search."""
        share = self.plan.slow_share if detector.name in SLOW else 1.0
        lo, hi = detector.knob_range
        iterations = self.plan.iterations
        grows = detector.arl_grows_with_knob
        if known:
            below = [k for k, a in known if a < target]
            above = [k for k, a in known if a >= target]
            if below and above:
                lo, hi = sorted((max(below) if grows else min(below), min(above) if grows else max(above)))
                iterations = max(4, iterations // 2)

        def measure(knob: float) -> dict:
            figures = self.arl0(detector.name, knob, shape, share)
            if history is not None:
                history.append((knob, figures["arl0"]))
            return figures

        best = bisect(measure, lambda figures: figures["arl0"] >= target, lo, hi, iterations,
                      passing_goes_down=grows, key=lambda figures: figures["arl0"])
        if best is None:  # the range never reached the target: the most conservative end
            edge = detector.knob_range[1] if detector.arl_grows_with_knob else detector.knob_range[0]
            best = (edge, self.arl0(detector.name, edge, shape, share))
        if share < 1.0:
            best = (best[0], self.arl0(detector.name, best[0], shape))
        return best

    def evaluate(self, name: str, knob: float, shape: float, share: float = 1.0) -> dict:
        """Change metrics per kind, the dip alarm rate and CLPsych window P/R."""
        out: dict = {}
        pooled: list[metrics.Case] = []
        for kind in (*CHANGE_KINDS, "transient"):
            alarms, ends = self.alarms(name, knob, shape, kind, share)
            cases = [metrics.Case(cast(int, s.start), s.end, s.length, a, e)
                     for s, a, e in zip(self.groups[kind], alarms, ends)]
            if kind == "transient":
                out["transient"] = {"dip_alarm_rate": metrics.dip_alarm_rate(cases),
                                    "pre_change_alarm_rate": metrics.change_metrics(cases)["pre_change_alarm_rate"]}
                pooled_all = pooled + cases
                continue
            out[kind] = metrics.change_metrics(cases)
            pooled += cases
        # the control: the same windows on streams where nothing changes (chance "recall" and delays)
        alarms, ends = self.alarms(name, knob, shape, "placebo", share)
        out["placebo"] = metrics.change_metrics([metrics.Case(cast(int, s.start), s.end, s.length, a, e)
                                                 for s, a, e in zip(self.groups["placebo"], alarms, ends)])
        out["all_changes"] = metrics.change_metrics(pooled)
        precision = metrics.change_metrics(pooled_all)["precision"]  # dips' alarms count as false
        out["all_changes"]["precision"] = precision
        r = out["all_changes"]["recall"]
        out["all_changes"]["f1"] = round(2 * precision * r / (precision + r), 4) if precision + r else 0.0
        out["window_pr"] = {w: metrics.window_pr(pooled, w) for w in (1, 2, 3)}
        return out


# The knob is the evidence rule's threshold; the fast rule is the plan's (the service's defaults unless
# --fast-rule says otherwise) and the reference weight the service's default; the slack is the tuned shape.
# Calibrating the evidence rule with the fast rule in place makes the pair's combined ARL0 the target.
LSTM_DETECTOR = Baseline(LSTM, "scores", lambda *_: None, "cusum_threshold", (2.0, 400.0), True,
                         "cusum_slack", (0.25, 0.5, 1.0))


def lstm_config(cusum_threshold: float, slack: float, fast_rule: tuple[float, int] = SERVICE_FAST_RULE,
                profile: ScoreProfile | None = None) -> DetectorConfig:
    """The service's detector with these knobs, on the served model's score profile (as the service runs it)."""
    threshold, confirm_posts = fast_rule
    return replace(DetectorConfig(), cusum_threshold=cusum_threshold, cusum_slack=slack,
                   threshold=threshold, confirm_posts=confirm_posts, profile=profile)


def parse_fast_rule(text: str) -> tuple[float, int]:
    """``THRESHOLD,CONFIRM`` (e.g. ``0.9,2``) as the fast rule; DetectorConfig checks the ranges."""
    try:
        threshold, confirm = text.split(",")
        rule = (float(threshold), int(confirm))
        lstm_config(1.0, 0.5, rule)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"--fast-rule {text!r}: want THRESHOLD,CONFIRM ({error})") from None
    return rule


def cost(name: str, knob: float, shape: float, stream: Stream, temporal: TemporalModel,
         fast_rule: tuple[float, int] = SERVICE_FAST_RULE) -> dict:
    """Per-user state bytes and single-update latency (p50 / p99, microseconds) of one detector."""
    times = []
    if name == LSTM:
        h, c = temporal.initial_state()
        d = DriftDetector(lstm_config(knob, shape, fast_rule, temporal.score_profile))
        for t in range(stream.length):
            started = time.perf_counter_ns()
            step = temporal.step(temporal.features(stream.probs[t], float(stream.gaps[t]), bool(stream.face[t])), h, c)
            h, c = step.h, step.c
            d.update(step.drift_probability)
            times.append(time.perf_counter_ns() - started)
        size = h.nbytes + c.nbytes + len(json.dumps(d.to_dict()))
    else:
        baseline = next(b for b in BASELINES if b.name == name)
        d = cast(Any, baseline.build(knob, shape))  # a classic's detector (build says object): update, drift_detected
        for x in signal(stream, temporal, baseline.signal):
            started = time.perf_counter_ns()
            d.update(x)
            _ = d.drift_detected
            times.append(time.perf_counter_ns() - started)
        size = len(pickle.dumps(d))
    us = np.array(times[50:]) / 1000.0
    return {"state_bytes": int(size), "update_us_p50": round(float(np.percentile(us, 50)), 1),
            "update_us_p99": round(float(np.percentile(us, 99)), 1)}


def run(plan: Plan, log=print) -> dict:
    started = time.perf_counter()
    temporal, groups = prepare(plan)
    runner = Runner(plan, groups, temporal)
    log(f"streams and LSTM scores ready in {time.perf_counter() - started:.0f}s ({temporal.artifact.tag})")
    results: dict = {"plan": plan.__dict__ | {"curve": list(plan.curve)}, "model": temporal.artifact.tag,
                     "detectors": {}}
    try:
        for detector in (LSTM_DETECTOR, *BASELINES):
            t0 = time.perf_counter()
            best = runner.tune(detector)
            shape, knob, arl, figures, history = best.shape, best.knob, best.no_change, best.figures, best.history
            curve = []
            for target in plan.curve:
                k, a = (knob, arl) if target == plan.arl0 else runner.calibrate(detector, shape, target, known=history)
                pooled = figures["all_changes"] if target == plan.arl0 else \
                    runner.evaluate(detector.name, k, shape, plan.curve_share)["all_changes"]
                curve.append({"target": target, "arl0": a["arl0"], "knob": k, "recall": pooled["recall"],
                              "delay_median": pooled["delay_median"], "delay_p90": pooled["delay_p90"]})
            results["detectors"][detector.name] = {
                "knob": detector.knob, "value": knob, "shape": detector.shape, "shape_value": shape,
                "shapes_tried": best.recall_by_shape, "no_change": arl, **figures, "curve": curve,
                "cost": cost(detector.name, knob, shape, groups["none"][0], temporal, plan.fast_rule),
            }
            if detector.name == LSTM:  # the fast rule on its own (evidence rule off: threshold 0)
                results["detectors"][LSTM]["fast_rule_arl0"] = runner.arl0(LSTM, 0.0, shape)["arl0"]
            log(f"{detector.name:13s} {detector.knob}={knob:.4g} {detector.shape}={shape:g} ARL0 {arl['arl0']} "
                f"recall {figures['all_changes']['recall']} delay {figures['all_changes']['delay_median']} "
                f"({time.perf_counter() - t0:.0f}s)")
    finally:
        runner.close()
    t0 = time.perf_counter()
    results["oracle"] = oracle.run(groups, plan.arl0, plan.seed)
    log(f"oracle        ceilings per kind ({time.perf_counter() - t0:.0f}s)")
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["bar"] = report.bar(results)
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a == "--timelines" or a.startswith("--timelines=") for a in argv):  # base vs adapted, exported users
        from benchmarks.timelines import main as on_timelines
        return on_timelines(argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.detection", description=__doc__.split("\n\n")[0])
    parser.add_argument("--timelines", type=Path, default=None,
                        help="compare the base and a fine-tuned model on an export's held-out users instead "
                             "(benchmarks/timelines.py; --help with it for its options)")
    parser.add_argument("--quick", action="store_true", help="a small run (tests); never the published figures")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "docs")
    parser.add_argument("--in-family", action="store_true",
                        help="the detailed analysis on the generator the model was built on (curves, oracle, costs)")
    parser.add_argument("--name", default="detection",
                        help="the per-family run's page in --out: NAME.md, its data in NAME.json with 'detection' "
                             "read as 'detection_families' (default: the published run; another for a run of "
                             "reserved families, e.g. detection_unseen)")
    parser.add_argument("--family", action="append", default=None,
                        help="only this family (repeatable; default: every family, the held-out one last)")
    parser.add_argument("--arl0", type=float, default=None, help="--in-family: target ARL0 in posts (default 2000)")
    parser.add_argument("--version", type=int, default=None,
                        help="temporal model version for the per-family run (default: the highest, the served one)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=None,
                        help="stream seed (default: the published one; another one for choosing between models)")
    parser.add_argument("--fast-rule", type=parse_fast_rule, default=SERVICE_FAST_RULE, metavar="THRESHOLD,CONFIRM",
                        help="--in-family: the CNN-LSTM's fast rule (default: the served model's, {0:g},{1}); the "
                             "evidence rule is calibrated with it in place".format(*SERVICE_FAST_RULE))
    parser.add_argument("--calibration-hold-young", action="store_true",
                        help="live calibration as with EMODRIFT_CALIBRATION_HOLD_YOUNG=true (default: off, the service's)")
    parser.add_argument("--calibration-per-age", action="store_true",
                        help="live calibration as with EMODRIFT_CALIBRATION_ONE_SCALE=false, a scale per age bucket "
                             "(default: one scale, the service's)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.in_family:
        return _families_main(args)
    plan = QUICK if args.quick else Plan()
    plan = replace(plan, workers=args.workers, fast_rule=args.fast_rule, seed=args.seed or SEED,
                   **({"arl0": args.arl0} if args.arl0 else {}))
    results = run(plan)
    report.write(results, args.out, quick=args.quick)
    print(f"wrote {args.out / 'detection_in_family.md'} and {args.out / 'detection_curve.png'} in {results['seconds']}s")
    print(f"bar met: {results['bar']['met']}")
    return 0


_FLAT_LIST = re.compile(r"\[[^\[\]{}]*\]")  # a JSON list holding no list or object


def _one_line(match: re.Match[str]) -> str:
    try:
        return json.dumps(json.loads(match.group(0)))
    except ValueError:
        return match.group(0)


def dump(results: dict) -> str:
    """The results as indented JSON, each list of plain values on one line (the per-stream outcomes
    would take a line per stream).

    >>> print(dump({"a": [1, None, 2], "b": {"c": ["x, y"]}}))
    {
     "a": [1, null, 2],
     "b": {
      "c": ["x, y"]
     }
    }
    """
    return _FLAT_LIST.sub(_one_line, json.dumps(results, indent=1, default=str))


def families_plan(args: argparse.Namespace) -> "FamilyPlan":
    """The per-family run's plan from the command line: a live-calibration flag given overrides the plan's
    default, which is the service's own setting (``benchmarks.families.service_default``)."""
    from benchmarks import families

    plan = families.QUICK_FAMILIES if args.quick else families.FamilyPlan()
    plan = replace(plan, workers=args.workers, seed=args.seed or families.SEED, families=tuple(args.family or ()))
    if args.calibration_hold_young:
        plan = replace(plan, live_hold_young=True)
    if args.calibration_per_age:
        plan = replace(plan, live_one_scale=False)
    return plan


def _families_main(args: argparse.Namespace) -> int:
    from benchmarks import families, families_report

    plan = families_plan(args)
    started = time.perf_counter()
    temporal = TemporalModel(model_repository.load(REPOSITORY, "temporal", args.version), ProviderChoice("cpu", "benchmark"))
    results = families.run(plan, temporal)
    results["seconds"] = round(time.perf_counter() - started, 1)
    if args.family:
        results["command"] = " ".join(["python -m benchmarks.detection", *(f"--family {f}" for f in args.family),
                                       *([f"--name {args.name}"] if args.name != "detection" else []),
                                       *(["--calibration-hold-young"] if args.calibration_hold_young else []),
                                       *(["--calibration-per-age"] if args.calibration_per_age else [])])
    name = f"{args.name}-quick" if args.quick else args.name
    (args.out / f"{name.replace('detection', 'detection_families', 1)}.json").write_text(dump(results))
    (args.out / f"{name}.md").write_text(families_report.markdown(results, quick=args.quick))
    pooled = results.get("held_out_pooled")  # the headline of a run of several held-out families
    headline, row = ("held-out pool", pooled) if pooled else (results["headline"], results["families"][results["headline"]])
    print(f"wrote {args.out / (name + '.md')} in {results['seconds']}s; headline {headline}: bar met {row['bar']['met']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
