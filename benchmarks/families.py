"""Detection on every stream family, each reported on its own; the headline is the held-out family.

For each family of :mod:`model.families` (``blind`` last, when it is merged):

1. the **service as shipped**: the served temporal model and the detector with the calibration in its
   manifest (``service/calibration.py``, no override), re-baselining included: when an episode ends
   as ``new_baseline`` the LSTM state is rebuilt from a new user's over the posts since the alarm,
   as ``service/pipeline.py`` does.
   Its false-alarm rate on the family's no-change users is *measured*, not set;
2. the **classics** (river PageHinkley, ADWIN, KSWIN, HDDM_A, a self-starting CUSUM on the per-post
   negative share, and EMA-JS on the 7 probabilities), each calibrated on that family's no-change
   users by bisection of its alarm knob to the service's measured false-alarm rate there (ARL0 from
   above), with the shape the in-family benchmark tuned (``SHAPES``). They restart after each alarm.

Then, per family and detector: false alarms per 1000 posts; recall and median delay pooled over the
change kinds (for ``two_changes`` its first change), per kind; change streams with an alarm *before*
the change; alarms on transient dips (1-3 posts); the second change of ``two_changes`` streams
(found / first found) and, for the service, how many persistent changes it found came back to
``stable`` through ``new_baseline`` within ``rebaseline_posts`` of the alarm; the placebo control.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from benchmarks import metrics, rate_noise
from benchmarks.baselines import BASELINES, Baseline
from benchmarks.bisection import bisect
from benchmarks.outcomes import STATISTICS, Outcomes
from benchmarks.outcomes import rows as outcome_rows
from model import families
from model.families.base import CHANGE_KINDS, Stream
from service import calibration
from service.calibration import LiveCalibration
from service.drift import DetectorConfig, DriftDetector
from service.temporal import TemporalModel

SERVICE = "service"
SERVICE_LIVE = "service_live"  # the service with live calibration, warmed on the family's own no-change users
LIVE_SEED = 90_000             # the warm-up users' seed: disjoint from the measured ones
PERSISTENT = ("abrupt_pos_neg", "abrupt_neg_pos", "gradual", "small_shift", "two_changes")
SHAPES = {"page_hinkley": 0.05, "cusum": 0.25, "ema_js": 0.1}  # docs/detection_in_family.md's tuned shapes
SLOW = {"kswin"}
SEED = 30_000  # the in-family benchmark uses 20_000, training 0.., the exporter 10_000..


def service_default(setting: str) -> Any:
    """A setting's default in ``service.config.Settings``: the benchmark runs the service as it ships."""
    from service.config import Settings

    return Settings.model_fields[setting].default


@dataclass(frozen=True)
class FamilyPlan:
    no_change: int = 40           # no-change users per family ...
    no_change_length: int = 2000  # ... of this many posts (the held-out family keeps its own lengths)
    per_kind: int = 100           # streams per other kind
    iterations: int = 12          # bisection steps of a classic's calibration
    slow_share: float = 0.25      # share of no-change users KSWIN is calibrated on
    seed: int = SEED
    workers: int = 2
    families: tuple[str, ...] = ()  # empty: every family this checkout has
    live_warm: int = 600          # no-change users (of no_change_length posts) live calibration is warmed on
    # live calibration with EMODRIFT_CALIBRATION_HOLD_YOUNG / _ONE_SCALE as set here (default: the service's)
    live_hold_young: bool = field(default_factory=lambda: service_default("calibration_hold_young"))
    live_one_scale: bool = field(default_factory=lambda: service_default("calibration_one_scale"))


QUICK_FAMILIES = FamilyPlan(no_change=4, no_change_length=600, per_kind=8, iterations=6, slow_share=0.5, live_warm=20)

_DATA: dict[str, list] = {}  # signal per "family/kind/signal", set before the pool forks


def served_config(temporal: TemporalModel) -> DetectorConfig:
    """The detector exactly as the service builds it from the model's manifest (no operator override)."""
    return calibration.detector_config(temporal.artifact.manifest, {}, temporal.score_profile)


def service_events(temporal: TemporalModel, streams: list[Stream], config: DetectorConfig,
                   scores: list[np.ndarray] | None = None, live: LiveCalibration | None = None,
                   scale: float = 1.0, sources: list[list[tuple[str, ...]]] | None = None):
    """Per stream: alarm posts, and (post, resolution) of every drift.ended; after a ``new_baseline`` end
    the LSTM state is a new user's replayed over the posts since the alarm, as in ``service/pipeline.py``.
    ``scores``: the streams' replay from a new user's state, when already computed. ``live``: the
    thresholds scaled by user age as live calibration says (and every judged post counted, as the
    pipeline does). ``scale``, without ``live``: every threshold scaled by it for every user (an operating
    point other than the manifest's). ``sources``: an empty list, filled per stream with the rules that
    raised each alarm (the alert's ``raised_by``)."""
    alarms: list[list[int]] = [[] for _ in streams]
    if sources is not None:
        sources[:] = [[] for _ in streams]
    ends: list[list[tuple[int, str]]] = [[] for _ in streams]
    detectors = [DriftDetector(config) for _ in streams]
    shares = [np.clip(s.negative_share.astype(float), 0.0, 1.0).tolist() for s in streams]
    gaps = [s.gaps.astype(float).tolist() for s in streams]
    faces = [s.face.astype(bool).tolist() for s in streams]
    pending = [(i, 0, row) for i, row in enumerate(temporal.replay(streams) if scores is None else scores)]
    while pending:
        restarts = []
        for i, offset, row in pending:
            d, share, gap, face = detectors[i], shares[i], gaps[i], faces[i]
            for j, score in enumerate(row.tolist()):
                k = offset + j
                if live is None:
                    event = d.update(score, share[k], scale, gap[k], face[k])
                else:
                    age, warming = d.age, d.status == "warming_up"
                    event = d.update(score, share[k], live.scale(age), gap[k], face[k])
                    if not warming:  # an alarm's id: the stream's index and the post's
                        alarmed = event == "drift.started"
                        live.record(age, d.crossed, alarmed, f"{i}:{k}" if alarmed else None)
                if event == "drift.started":
                    alarms[i].append(offset + j)
                    if sources is not None:
                        sources[i].append(d.raised_by)
                elif event == "drift.ended":
                    ends[i].append((offset + j, d.resolution))
                    if d.restart_model and offset + j + 1 < streams[i].length:
                        # as the pipeline does: a new user's LSTM state, replayed over the posts since the alarm
                        restarts.append((i, offset + j + 1 - d.replay_posts, offset + j + 1))
                        break
        tails = [streams[i].tail(first) for i, first, _ in restarts]
        replayed = temporal.replay(tails) if tails else []
        pending = [(i, resume, row[resume - first:]) for (i, first, resume), row in zip(restarts, replayed)]
    return alarms, ends


def _signal(stream: Stream, name: str) -> list:
    return stream.negative_share.astype(float).tolist() if name == "negative" else list(stream.probs.astype(float))


def _signal_of(baseline: Baseline) -> str:
    return "probs" if baseline.signal == "probs" else "negative"


def classic_alarms(name: str, knob: float, signals: list[list]) -> list[list[int]]:
    """The classic ``name`` at ``knob`` (its tuned shape), a fresh detector per stream: its alarm posts on
    each stream's signal (``_signal``: what that classic reads)."""
    baseline = next(b for b in BASELINES if b.name == name)
    return baseline.alarms(knob, SHAPES.get(name, 0.0), signals)


def _run(name: str, knob: float, key: str, lo: int, hi: int) -> list[list[int]]:
    baseline = next(b for b in BASELINES if b.name == name)
    return classic_alarms(name, knob, _DATA[f"{key}/{_signal_of(baseline)}"][lo:hi])


class FamilyRunner:
    def __init__(self, plan: FamilyPlan, pool) -> None:
        self.plan, self.pool = plan, pool

    def alarms(self, name: str, knob: float, key: str, n: int) -> list[list[int]]:
        cuts = np.linspace(0, n, (self.plan.workers if self.pool else 1) + 1).astype(int)
        jobs = [(name, knob, key, int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]
        parts = self.pool.starmap(_run, jobs) if self.pool else [_run(*j) for j in jobs]
        return [row for part in parts for row in part]

    def calibrate(self, baseline: Baseline, family: str, none: list[Stream], target_arl0: float) -> tuple[float, dict]:
        """The knob whose ARL0 on the family's no-change users is closest to ``target_arl0`` from above,
        and its false alarms on all of them."""
        knob, _ = self.knob_for(baseline, family, none, target_arl0)
        return knob, metrics.arl0(self.alarms(baseline.name, knob, f"{family}/none", len(none)), [s.length for s in none])

    def calibration_users(self, baseline: Baseline, users: int) -> int:
        """How many of a family's no-change users (the first ones) a classic is calibrated on: a share of
        them for the slow ones (``SLOW``)."""
        return max(1, int(round(users * (self.plan.slow_share if baseline.name in SLOW else 1.0))))

    def knob_for(self, baseline: Baseline, family: str, none: list[Stream], target_arl0: float,
                 iterations: int | None = None) -> tuple[float, list[list[int]] | None]:
        """:meth:`calibrate`'s bisection (``iterations`` steps, the plan's by default): the knob, and its
        alarms on the :meth:`calibration_users` it was bisected on (None: no step met the target, and the
        knob is the range's edge)."""
        n = self.calibration_users(baseline, len(none))
        lengths = [s.length for s in none][:n]

        def measure(knob: float) -> tuple[dict, list[list[int]]]:
            alarms = self.alarms(baseline.name, knob, f"{family}/none", n)
            return metrics.arl0(alarms, lengths), alarms

        best = bisect(measure, lambda tried: tried[0]["arl0"] >= target_arl0, *baseline.knob_range,
                      iterations or self.plan.iterations, passing_goes_down=baseline.arl_grows_with_knob,
                      key=lambda tried: tried[0]["arl0"])
        if best is None:
            return (baseline.knob_range[1] if baseline.arl_grows_with_knob else baseline.knob_range[0]), None
        return best[0], best[1][1]


def change_case(s: Stream, alarms: list[int], closed: list[int] | None = None) -> metrics.Case:
    """A change stream as the bar judges it: a two_changes stream's first change runs up to the second
    one; ``closed``: the service's drift.ended posts."""
    assert s.start is not None  # a change stream's (and a placebo's)
    if s.kind == "two_changes" and s.start2 is not None:
        return metrics.Case(s.start, None, s.start2 - 1, [a for a in alarms if a < s.start2 - 1])
    return metrics.Case(s.start, s.end, s.length, alarms, closed or [])


def above_chance(figures_of_one: dict) -> float:
    """A detector's recall minus its placebo "recall" (what it scores with no change at all), from its
    ``figures``."""
    return float(figures_of_one["all_changes"]["recall"] - figures_of_one["placebo_recall"])


def figures(groups: dict[str, list[Stream]], alarms: dict[str, list[list[int]]],
            ends: dict[str, list[list[tuple[int, str]]]] | None, rebaseline_posts: int = 0) -> dict:
    """Every figure of one detector on one family, from its alarm (and end) positions per kind."""
    out: dict = {}
    pooled: list[metrics.Case] = []
    first_found: list[int] = []
    for kind in CHANGE_KINDS:
        cases = []
        for i, s in enumerate(groups[kind]):
            cases.append(change_case(s, alarms[kind][i], [t for t, _ in ends[kind][i]] if ends else []))
        m = metrics.change_metrics(cases)
        out[kind] = _summary(m)
        pooled += cases
        if kind == "two_changes":
            first_found = [int(d is not None) for d in m["outcomes"]]
    every = metrics.change_metrics(pooled)
    out["all_changes"] = _summary(every, delays=True)  # delays: to pool families
    dips = metrics.dip_hits([metrics.Case(cast(int, s.start), s.end, s.length, alarms["transient"][i])
                             for i, s in enumerate(groups["transient"])])
    out["dip_alarm_rate"] = round(sum(dips) / len(dips), 4) if dips else 0.0
    out["placebo_recall"] = metrics.change_metrics(
        [metrics.Case(cast(int, s.start), None, s.length, alarms["placebo"][i])
         for i, s in enumerate(groups["placebo"])])["recall"]
    two = groups["two_changes"]
    second = metrics.change_metrics([metrics.Case(cast(int, s.start2), None, s.length, [a for a in alarms["two_changes"][i]
                                                                                          if a >= cast(int, s.start2) - 1])
                                     for i, s in enumerate(two)])
    first = out["two_changes"]["recall"]
    out["second_change"] = {"recall": second["recall"], "first_recall": first,
                            "ratio": round(second["recall"] / first, 3) if first else float("nan"),
                            "delay_median": second["delay_median"]}
    # Every stream's outcome, in a fixed order (the same for every detector of a family), so that the
    # bar's verdicts can be resampled stream by stream and paired between detectors (``noise``).
    out["per_stream"] = {"delay": every["outcomes"], "early": every["early"], "dips": dips,
                         "first": first_found, "second": [int(d is not None) for d in second["outcomes"]]}
    if ends is not None:
        out["new_baseline"] = _rebaselined(groups, alarms, ends, rebaseline_posts)
    return out


def _summary(m: dict, delays: bool = False) -> dict:
    keys = ("streams", "recall", "delay_median", "delay_p90", "pre_change_alarm_rate", "ended")
    return {k: m[k] for k in keys + (("delays",) if delays else ())}


def _rebaselined(groups, alarms, ends, posts: int) -> dict:
    """Of the persistent changes the service found: the share back to ``stable`` through ``new_baseline``
    within ``posts`` (+ 1) posts of the alarm, and the share that ended as ``recovered`` instead."""
    found = back = recovered = 0
    for kind in PERSISTENT:
        for i, s in enumerate(groups[kind]):
            stop = s.start2 - 1 if kind == "two_changes" else s.length
            hits = [a for a in alarms[kind][i] if s.start - 1 <= a < stop]
            if not hits:
                continue
            found += 1
            later = [(t, r) for t, r in ends[kind][i] if t > hits[0]]
            if later and later[0][1] == "new_baseline" and later[0][0] - hits[0] <= posts + 1:
                back += 1
            elif later and later[0][1] == "recovered":
                recovered += 1
    return {"found": found, "new_baseline_share": round(back / found, 4) if found else 0.0,
            "recovered_share": round(recovered / found, 4) if found else 0.0, "within_posts": posts}


def run(plan: FamilyPlan, temporal: TemporalModel, log=print) -> dict:
    names = plan.families or families.available()
    config = served_config(temporal)
    groups_by_family: dict[str, dict[str, list[Stream]]] = {}
    for family in names:
        groups = {}
        for kind in families.KINDS:
            n = plan.no_change if kind == "none" else plan.per_kind
            length = plan.no_change_length if kind == "none" else None
            groups[kind] = families.make_streams(family, plan.seed, kind, n, length)
            for signal in ("negative", "probs"):
                _DATA[f"{family}/{kind}/{signal}"] = [_signal(s, signal) for s in groups[kind]]
        groups_by_family[family] = groups
    pool = mp.get_context("fork").Pool(plan.workers) if plan.workers > 1 else None
    runner = FamilyRunner(plan, pool)
    results: dict = {"plan": plan.__dict__ | {"families": list(names)}, "model": temporal.artifact.tag,
                     "detector": {k: v for k, v in calibration.describe(temporal.artifact.manifest, {}).items()},
                     "headline": names[-1], "families": {}}
    try:
        for family in names:
            t0 = time.perf_counter()
            groups = groups_by_family[family]
            events = {kind: service_events(temporal, groups[kind], config) for kind in families.KINDS}
            lengths = [s.length for s in groups["none"]]
            ours_arl0 = metrics.arl0(events["none"][0], lengths)
            detectors = {SERVICE: {"no_change": ours_arl0, **figures(
                groups, {k: v[0] for k, v in events.items()}, {k: v[1] for k, v in events.items()},
                config.rebaseline_posts)}}
            detectors[SERVICE]["per_stream"] |= metrics.false_alarms_per_user(events["none"][0], lengths)
            detectors[SERVICE_LIVE] = live_row(plan, temporal, family, groups, config)
            detectors.update(classics_at(runner, family, groups, ours_arl0))
            # The service runs with live calibration by default, at its own rate: its bar is against the
            # classics calibrated to that rate, not to the manifest's.
            at_live = classics_at(runner, family, groups, detectors[SERVICE_LIVE]["no_change"])
            for ours, classics in ((SERVICE, detectors), (SERVICE_LIVE, at_live)):
                with_rate_grid(runner, family, groups, detectors[ours], classics, best_classic(classics))
            results["families"][family] = {"detectors": detectors, "bar": bar(detectors),
                                           "classics_at_live_rate": at_live,
                                           "bar_live": bar({SERVICE_LIVE: detectors[SERVICE_LIVE], **at_live}, SERVICE_LIVE),
                                           "seconds": round(time.perf_counter() - t0, 1)}
            log(f"{family:10s} service FA/1000 {ours_arl0['false_alarms_per_1000']} recall "
                f"{detectors[SERVICE]['all_changes']['recall']} | best classic recall "
                f"{results['families'][family]['bar']['best_classic_recall']} "
                f"({results['families'][family]['bar']['best_classic']}) ({time.perf_counter() - t0:.0f}s)")
        held_out = [name for name in names if name in families.WRITTEN_BLIND]
        results["held_out"] = held_out
        if len(held_out) > 1:
            held = {name: results["families"][name] for name in held_out}
            # The pooled bar's rival may be another classic than a family's own: it needs its grid there too.
            for ours, key in ((SERVICE, "detectors"), (SERVICE_LIVE, "classics_at_live_rate")):
                rival = pooled_rival(held, key)
                for name, fam in held.items():
                    with_rate_grid(runner, name, groups_by_family[name], fam["detectors"][ours], fam[key], rival)
            results["held_out_pooled"] = pool_families(held)
    finally:
        if pool is not None:
            pool.terminate()
    for fam in results["families"].values():  # per-stream outcomes: kept for the service and its rivals only
        for key, rows in (("bar", fam["detectors"]), ("bar_live", fam["classics_at_live_rate"])):
            for name, row in rows.items():
                row.pop("rate_grid", None)  # what the bootstrap needed, and no figure of its own
                if name not in (SERVICE, SERVICE_LIVE, fam[key]["best_classic"]):
                    row.pop("per_stream", None)
    return results


def classics_at(runner: FamilyRunner, family: str, groups: dict[str, list[Stream]], rate: dict) -> dict[str, dict]:
    """Every classic calibrated on the family's no-change users to the false-alarm rate ``rate`` (an
    ``metrics.arl0`` result; none raised: the longest ARL0 the streams can show), and its figures."""
    lengths = [s.length for s in groups["none"]]
    target = rate["arl0"] if math.isfinite(rate["arl0"]) else 1000.0 * max(lengths)
    out = {}
    for baseline in BASELINES:
        knob, arl = runner.calibrate(baseline, family, groups["none"], target)
        alarms = {kind: runner.alarms(baseline.name, knob, f"{family}/{kind}", len(groups[kind]))
                  for kind in families.KINDS if kind != "none"}
        out[baseline.name] = {"knob": baseline.knob, "value": knob, "no_change": arl, **figures(groups, alarms, None)}
    return out


def rate_grid(runner: FamilyRunner, family: str, groups: dict[str, list[Stream]], ours: dict,
              name: str, classic: dict) -> rate_noise.RateGrid:
    """The classic ``name`` (``classic``: its row, calibrated to the service row ``ours``'s rate) at that
    knob and at knobs calibrated to the rate ``rate_noise.OCTAVES`` doublings away: what the bar's
    bootstrap needs to calibrate it again on each resample of the no-change users. A service that raised
    no false alarm gives a grid of one knob: the classic's calibration does not move."""
    baseline = next(b for b in BASELINES if b.name == name)
    none = groups["none"]
    lengths = [s.length for s in none]
    n = runner.calibration_users(baseline, len(none))  # the users the bar calibrates this classic on
    bisected: dict[float, list[list[int]] | None] = {classic["value"]: None}  # knob: its alarms on them
    if ours["no_change"]["false_alarms"]:
        for octave in rate_noise.OCTAVES:
            knob, alarms_on_them = runner.knob_for(baseline, family, none, ours["no_change"]["arl0"] / 2.0 ** octave,
                                                   rate_noise.GRID_ITERATIONS)
            bisected.setdefault(knob, alarms_on_them)
    knobs = list(bisected)
    delays = [classic["per_stream"]["delay"]]
    for knob in knobs[1:]:
        alarms = {kind: runner.alarms(name, knob, f"{family}/{kind}", len(groups[kind]))
                  for kind in families.KINDS if kind != "none"}
        delays.append(figures(groups, alarms, None)["per_stream"]["delay"])
    false_alarms = [metrics.false_alarms_per_user(
        known if known is not None else runner.alarms(name, knob, f"{family}/none", n), lengths[:n])["false_alarms"]
        for knob, known in bisected.items()]
    return rate_noise.RateGrid(ours["per_stream"]["delay"], ours["per_stream"]["false_alarms"],
                               ours["per_stream"]["posts"], knobs, false_alarms, delays)


def with_rate_grid(runner: FamilyRunner, family: str, groups: dict[str, list[Stream]], ours: dict,
                   classics: dict[str, dict], name: str) -> None:
    """Give ``classics[name]`` its :func:`rate_grid` (once), so that ``bar`` recalibrates it per resample."""
    if "rate_grid" not in classics[name]:
        classics[name]["rate_grid"] = [rate_grid(runner, family, groups, ours, name, classics[name])]


def pool_families(fams: dict[str, dict]) -> dict:
    """Several families' users as one population: every detector's figures over them together (each
    classic stays calibrated per family to the service's rate there), and the bar on that."""
    detectors: dict = {}
    for name in next(iter(fams.values()))["detectors"]:
        rows = [fam["detectors"][name] for fam in fams.values() if name in fam["detectors"]]
        if len(rows) == len(fams):
            detectors[name] = _pool_rows(rows)
    out: dict = {"families": list(fams), "detectors": detectors, "bar": bar(detectors)}
    if SERVICE_LIVE in detectors and all("classics_at_live_rate" in fam for fam in fams.values()):
        names = next(iter(fams.values()))["classics_at_live_rate"]
        at_live = {name: _pool_rows([fam["classics_at_live_rate"][name] for fam in fams.values()]) for name in names}
        out |= {"classics_at_live_rate": at_live,
                "bar_live": bar({SERVICE_LIVE: detectors[SERVICE_LIVE], **at_live}, SERVICE_LIVE)}
    for row in [*detectors.values(), *out.get("classics_at_live_rate", {}).values()]:
        row.pop("per_stream", None)  # each family keeps its own: the pooled copy would only double the JSON
        row.pop("rate_grid", None)
    return out


def pooled_rival(fams: dict[str, dict], key: str = "detectors") -> str:
    """The classic :func:`pool_families`'s bar will compare with, from the families' rows under ``key``
    (``classics_at_live_rate`` for the live bar's): known before the bar, so that its grids can be built."""
    names = [n for n in next(iter(fams.values()))[key] if n not in (SERVICE, SERVICE_LIVE)]
    return best_classic({n: _pool_rows([fam[key][n] for fam in fams.values()]) for n in names})


def _pool_rows(rows: list[dict]) -> dict:
    def weighted(key: str, within: str = "all_changes") -> float:
        n = sum(r[within]["streams"] for r in rows)
        return round(sum(r[within][key] * r[within]["streams"] for r in rows) / n, 4) if n else 0.0
    delays = sorted(d for r in rows for d in r["all_changes"].get("delays", []))
    second = [r["second_change"] for r in rows]
    second_recall = round(float(np.mean([x["recall"] for x in second])), 4)  # every family: the same count per kind
    first_recall = round(float(np.mean([x["first_recall"] for x in second])), 4)
    out = {"no_change": metrics.alarm_rate(sum(r["no_change"]["posts"] for r in rows),
                                           sum(r["no_change"]["false_alarms"] for r in rows)),
           "all_changes": {"streams": sum(r["all_changes"]["streams"] for r in rows), "recall": weighted("recall"),
                           "pre_change_alarm_rate": weighted("pre_change_alarm_rate"),
                           "delay_median": float(np.median(delays)) if delays else float("nan"),
                           "delay_p90": float(np.percentile(delays, 90)) if delays else float("nan"),
                           "delays": delays},
           "dip_alarm_rate": round(float(np.mean([r["dip_alarm_rate"] for r in rows])), 4),
           "second_change": {"recall": second_recall, "first_recall": first_recall,
                             "ratio": round(second_recall / first_recall, 3) if first_recall else float("nan")}}
    if all("per_stream" in r for r in rows):  # the families' streams end to end (dropped once judged)
        keys = set.intersection(*(set(r["per_stream"]) for r in rows))
        out["per_stream"] = {k: [x for r in rows for x in r["per_stream"][k]] for k in keys}
    if all("rate_grid" in r for r in rows):  # one per family: each resampled and recalibrated on its own
        out["rate_grid"] = [grid for r in rows for grid in r["rate_grid"]]
    if all("new_baseline" in r for r in rows):
        found = sum(r["new_baseline"]["found"] for r in rows)
        out["new_baseline"] = {"found": found, "within_posts": rows[0]["new_baseline"]["within_posts"], **{
            key: round(sum(r["new_baseline"][key] * r["new_baseline"]["found"] for r in rows) / found, 4) if found else 0.0
            for key in ("new_baseline_share", "recovered_share")}}
    return out


MARGIN = 0.05


def live_row(plan: FamilyPlan, temporal: TemporalModel, family: str, groups: dict[str, list[Stream]],
             config: DetectorConfig) -> dict:
    """The service with live calibration (``service/calibration.py``) at the service's default target and
    warm-up: warmed on ``plan.live_warm`` of the family's no-change users from another seed (what a
    platform's own traffic gives it; nobody tunes anything on them), then frozen and measured on the
    same users as every other row."""
    from benchmarks.live_calibration import OfflineLiveCalibration

    live = OfflineLiveCalibration(temporal.artifact.tag, service_default("target_false_alarms_per_1000"),
                                  service_default("calibration_min_posts"), hold_young=plan.live_hold_young,
                                  one_scale=plan.live_one_scale)
    warm = families.make_streams(family, LIVE_SEED + plan.seed, "none", plan.live_warm, plan.no_change_length)
    service_events(temporal, warm, config, live=live)
    live.freeze()
    events = {kind: service_events(temporal, groups[kind], config, live=live) for kind in families.KINDS}
    lengths = [s.length for s in groups["none"]]
    row = {"no_change": metrics.arl0(events["none"][0], lengths),
           "live": {**live.describe(), "warm_users": plan.live_warm, "warm_seed": LIVE_SEED + plan.seed},
           **figures(groups, {k: v[0] for k, v in events.items()}, {k: v[1] for k, v in events.items()},
                     config.rebaseline_posts)}
    row["per_stream"] |= metrics.false_alarms_per_user(events["none"][0], lengths)
    return row


def bar(detectors: dict, ours_name: str = SERVICE) -> dict:
    """The issue's 'Done when' items on one family (for the service as shipped, or with live calibration).
    With the rival's rate grid the recall and delay checks read it at the service's own rate, as their
    intervals do (:func:`noise`); ``best_classic_recall`` and ``_delay`` stay its figures at its knob."""
    ours = detectors[ours_name]
    classics = {k: v for k, v in detectors.items() if k not in (SERVICE, SERVICE_LIVE)}
    best = best_classic(detectors)
    rival = classics[best]["all_changes"]
    limit = CHECK_LIMIT
    checks = {
        "false_alarms_at_most_1_per_1000":
            ours["no_change"]["false_alarms_per_1000"] <= limit["false_alarms_at_most_1_per_1000"],
        "recall_beats_best_classic_by_0.05":
            ours["all_changes"]["recall"] >= rival["recall"] + limit["recall_beats_best_classic_by_0.05"],
        "median_delay_at_most_that_classics":
            _nan_inf(ours["all_changes"]["delay_median"]) <= _nan_inf(rival["delay_median"])
            + limit["median_delay_at_most_that_classics"],
        "pre_change_alarms_at_most_5pct":
            ours["all_changes"]["pre_change_alarm_rate"] <= limit["pre_change_alarms_at_most_5pct"],
        "dip_alarms_at_most_5pct": ours["dip_alarm_rate"] <= limit["dip_alarms_at_most_5pct"],
        "second_change_at_least_0.9_of_first":
            _nan_inf(ours["second_change"]["ratio"], -1.0) >= limit["second_change_at_least_0.9_of_first"],
    }
    # A median over the changes each detector found rises when a detector finds more of the hard, late
    # ones; the share of ALL changes found within the classic's median delay compares their speed
    # without that (docs/detection_method.md).
    at = rival["delay_median"]
    speed = {"within_posts": at, "service": found_within(ours["all_changes"], at),
             "classic": found_within(rival, at)}
    out = {"met": all(checks.values()), "checks": checks, "best_classic": best,
           "best_classic_recall": rival["recall"], "best_classic_delay": rival["delay_median"],
           "found_within_classic_median": speed}
    if "per_stream" in ours and "per_stream" in classics[best]:
        out |= noise(ours["per_stream"], classics[best]["per_stream"], grids=classics[best].get("rate_grid"))
        at = out["noise"]["classic_calibration"].get("at_service_rate")
        if at is not None:
            # The classic at the service's own rate (interpolated between the knobs that bracket it), not at
            # the knob under it: what the two checks' intervals read too (``rate_noise.at_sample``).
            checks["recall_beats_best_classic_by_0.05"] = at["recall_margin"] >= limit["recall_beats_best_classic_by_0.05"]
            if not math.isnan(at["median_gap"]):  # else one of them found nothing: the medians decide
                checks["median_delay_at_most_that_classics"] = (
                    at["median_gap"] <= limit["median_delay_at_most_that_classics"])
            out["met"] = all(checks.values())
    return out


def best_classic(detectors: dict[str, dict]) -> str:
    """The classic the bar compares the service with: the most recall, then the shorter median delay."""
    classics = {k: v for k, v in detectors.items() if k not in (SERVICE, SERVICE_LIVE)}
    return max(classics, key=lambda k: (classics[k]["all_changes"]["recall"], -_nan_inf(classics[k]["all_changes"]["delay_median"])))


LEVEL = 0.9  # of the bootstrap intervals the bar's verdicts are read against
# Which side of its bar each check's figure must lie on (the bar's checks, in :func:`bar`).
CHECK_SENSE: dict[str, str] = {
    "false_alarms_at_most_1_per_1000": "<=", "recall_beats_best_classic_by_0.05": ">=",
    "median_delay_at_most_that_classics": "<=", "pre_change_alarms_at_most_5pct": "<=",
    "dip_alarms_at_most_5pct": "<=", "second_change_at_least_0.9_of_first": ">=",
}
# ... and the bar itself: the recall margin over the best classic's recall, the median delay's gap to
# the classic's median, the others the figure's own limit.
CHECK_LIMIT: dict[str, float] = {  # in the order the intervals are written (noise)
    "recall_beats_best_classic_by_0.05": MARGIN, "median_delay_at_most_that_classics": 0.0,
    "pre_change_alarms_at_most_5pct": 0.05, "dip_alarms_at_most_5pct": 0.05,
    "second_change_at_least_0.9_of_first": 0.9, "false_alarms_at_most_1_per_1000": 1.0,
}


def noise(ours: dict, rival: dict, draws: int = 1000, grids: list[rate_noise.RateGrid] | None = None) -> dict:
    """How sure each verdict of the bar is: for each check, a bootstrap interval (``LEVEL``) of the figure
    it compares, streams (or no-change users) resampled, the service and the classic on the same
    resample; ``clear`` when the whole interval lies on one side of the bar, so that another draw of
    streams of the same family would not flip the verdict. And the delays paired on the changes both
    found. With the classic's ``grids`` (one per family: :func:`rate_grid`), the recall margin and the
    delay gap resample the no-change users too and calibrate the classic again on them
    (``rate_noise``); without, its calibration is held fixed and its noise is not in those two."""
    found = Outcomes.of(ours, rival)
    limits = dict(CHECK_LIMIT)
    if "false_alarms" not in ours:  # a run that kept no per-user false alarms: no interval for them
        del limits["false_alarms_at_most_1_per_1000"]
    # the cast: mypy infers no type for a lambda that binds a default argument
    intervals = {check: (metrics.bootstrap_interval(cast(Callable[[np.ndarray], float],
                                                         lambda rows, statistic=STATISTICS[check][0]: statistic(found, rows)),
                                                    outcome_rows(found, check), LEVEL, draws), limit)
                 for check, limit in limits.items()}
    recalibrated = None
    if grids:
        recalibrated = rate_noise.intervals(grids, LEVEL, draws)
        for check, figure in (("recall_beats_best_classic_by_0.05", "recall"),
                              ("median_delay_at_most_that_classics", "median_gap")):
            intervals[check] = (recalibrated[figure], limits[check])
    judged = {}
    for check, ((lo, hi), limit) in intervals.items():
        sense = CHECK_SENSE[check]
        clear = (lo >= limit or hi < limit) if sense == ">=" else (hi <= limit or lo > limit)
        judged[check] = {"interval": [lo, hi], "bar": limit, "clear": bool(clear)}
    paired = metrics.paired_delays(ours["delay"], rival["delay"])
    calibration = ({"recalibrated": True, "knobs": recalibrated["knobs"], "outside": recalibrated["outside"],
                    "at_service_rate": rate_noise.at_sample(grids or [])}
                   if recalibrated else {"recalibrated": False})
    return {"noise": {"level": LEVEL, "draws": draws, "checks": judged, "classic_calibration": calibration},
            "paired_delays": paired}


def found_within(changes: dict, posts: float) -> float:
    """The share of all change streams found at most ``posts`` posts after the change (nan: no such posts)."""
    if posts is None or not math.isfinite(posts) or not changes.get("streams") or "delays" not in changes:
        return float("nan")
    return metrics.found_within(changes["delays"], changes["streams"], posts)


def _nan_inf(x: float, fill: float = math.inf) -> float:
    return fill if x is None or (isinstance(x, float) and math.isnan(x)) else x


__all__ = ["FamilyPlan", "QUICK_FAMILIES", "run", "service_events", "figures", "bar", "live_row", "pool_families",
           "pooled_rival"]
