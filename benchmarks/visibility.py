"""``python -m benchmarks.visibility [--quick] [--family F]``: how large each family's changes are in
what the emotion classifier outputs, and how many of them a clairvoyant detector of the negative share
finds. Writes ``docs/visibility.md`` and ``docs/visibility.json``.

Why: on ``blind9`` and ``blind10`` (docs/detection_unseen.md) neither the service nor any of the six
classics finds more changes than it "finds" on the placebo streams, where nothing changes: their recall
there is chance. Live calibration, which raised the thresholds on ``blind10``, halved the service's recall
and its placebo alike. Whether that is the detectors' failing or the data's limit is what this page
measures, per family, on the published run's streams (seed and sizes from docs/detection_families.json):

- **The size of a change** where the detectors see it: the shift of the mean negative share from the
  posts before the change to the posts of the change (up to the second change of a two-change stream, to
  the end of an episode), in standard deviations of the share before it. And the same in all seven
  outputs (the Mahalanobis distance of the mean probability vectors, cross-fitted: the direction is
  estimated on the odd posts and measured on the even ones and the other way round, so noise alone
  measures about 0 where the in-sample distance would not).
- **Told apart in hindsight**: how often a change stream's size exceeds a placebo stream's, where
  nothing changes at its ``start`` (the AUC of the size): knowing where the change began, after all its
  posts. At 0.5 a change is as large as what a user's own mood swings give with no change at all.
- **The clairvoyant**: told a change's direction and size, and the mean and spread of the share before
  it, it runs the CUSUM of the Gaussian log-likelihood ratio of that shift from the stream's first
  post, restarting after each alarm like every detector here. For a known shift in mean the CUSUM is the
  optimal detector (Lorden 1971, Moustakides 1986). Its threshold for each size is calibrated on the
  family's no-change users, cut into segments shaped like the placebo streams and standardised as it
  standardises a change stream, read in both directions, to the rate the published run calibrated the
  classics to there (the service's measured false-alarm rate). The placebo streams are told the change
  streams' sizes: what it finds there is its chance. Two readings: *told its shift*, measured on the very
  posts it reads (optimistic: on a small change the measured shift is partly the noise it then finds),
  and *told fairly*, reading every other post, told the shift the other half shows (no post both
  informs the size and raises the alarm; it sees half the posts, so it is slower than it need be).

- **What meeting the recall and the delay checks together asks** (twentieth round): the bar's medians are
  over each detector's own finds, so a detector meets both only if at least half the least recall the bar
  allows (the best classic's + 0.05) is found within the classic's median delay. The table sets that
  against what the clairvoyant told its shift finds by then (``delay_check_reach``), per family and pooled
  over the held-out ones.

Recall above chance (recall minus the placebo's) is comparable between the service, the best classic and
the clairvoyant because all run at one false-alarm rate. The clairvoyant bounds detectors of a shift in
the mean share only approximately: the share is not Gaussian, and the service also reads the other
outputs, the face flag and the posting gaps (the all-outputs size says how much more the mean of the
other outputs carries).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import time
from typing import cast

import numpy as np

from benchmarks import metrics
from benchmarks.families import above_chance as recall_above_chance
from benchmarks.families import MARGIN, change_case
from benchmarks.oracle import cusum_alarms, padded
from benchmarks.published import PUBLISHED, RerunPlan, per_family, rerun, write_page
from model import families
from model.families.base import CHANGE_KINDS, Stream

SIZES = np.geomspace(0.03, 2.0, 14)  # the shift sizes (in SDs) the clairvoyant's threshold is calibrated at
H_RANGE = (0.05, 80.0)  # the thresholds bisected over (log scale)
ITERATIONS = 16
SMALL = 0.2  # a change under this many SDs of the share is counted as small on the page
MIN_SD = 1e-3


Plan = RerunPlan


def segment_end(s: Stream) -> int:
    """The first post after the (first) change's segment: the second change, the episode's end, or the end."""
    if s.kind == "two_changes" and s.start2 is not None:
        return s.start2
    return s.end if s.end is not None else s.length


def share_shift(s: Stream) -> tuple[float, float, float]:
    """The negative share's mean and SD before the change, and the change's size in those SDs (signed)."""
    share = s.negative_share.astype(float)
    start = int(s.start or 0)
    before, during = share[:start], share[start:segment_end(s)]
    sd = max(float(before.std()), MIN_SD)
    return float(before.mean()), sd, (float(during.mean()) - float(before.mean())) / sd


def all_outputs_size(s: Stream, ridge: float = 1e-3) -> float:
    """The change's cross-fitted Mahalanobis size in the classifier's outputs (six of the seven: they sum
    to 1): the shift direction estimated on one half of the posts (alternate posts), the shift along it
    measured on the other half in that half's pooled SD, both ways round, averaged."""
    start = int(s.start or 0)
    probs = s.probs[:, :-1].astype(float)
    before, during = probs[:start], probs[start:segment_end(s)]
    sizes = []
    for half in (0, 1):
        fit0, fit1, test0, test1 = before[half::2], during[half::2], before[1 - half::2], during[1 - half::2]
        if min(len(fit0), len(fit1), len(test0), len(test1)) < 2:
            return float("nan")
        cov = np.cov(np.vstack([fit0 - fit0.mean(0), fit1 - fit1.mean(0)]).T) + ridge * np.eye(probs.shape[1])
        w = np.linalg.solve(cov, fit1.mean(0) - fit0.mean(0))
        y0, y1 = test0 @ w, test1 @ w
        sd = math.sqrt((y0.var() * len(y0) + y1.var() * len(y1)) / (len(y0) + len(y1)))
        sizes.append((y1.mean() - y0.mean()) / sd if sd > 0 else 0.0)
    return float(np.mean(sizes))


def llr(z: np.ndarray, size: float) -> np.ndarray:
    """The Gaussian log-likelihood ratio of a shift of ``size`` SDs (> 0) for standardised posts ``z``."""
    return size * (z - size / 2)


def calm_segments(none: list[Stream], placebo: list[Stream]) -> list[np.ndarray]:
    """The no-change users cut into consecutive segments shaped like the placebo streams (cycled: posts
    before the change, then the change's), each standardised on its own posts before the "change", as
    the clairvoyant standardises a change stream; every segment twice, read in both directions."""
    shapes = [(int(s.start or 0), s.length) for s in placebo]
    rows, k = [], 0
    for s in none:
        share, at = s.negative_share.astype(float), 0
        while True:
            before, length = shapes[k % len(shapes)]
            if at + length > len(share):
                break
            k += 1
            segment = share[at:at + length]
            unit = (segment - segment[:before].mean()) / max(float(segment[:before].std()), MIN_SD)
            rows += [unit, -unit]
            at += length
    return rows


def thresholds(calm: list[np.ndarray], per_1000: float, sizes: np.ndarray = SIZES) -> np.ndarray:
    """Per shift size, the smallest threshold (log-scale bisection, all sizes at once) whose false alarms on
    the standardised no-change segments (``calm_segments``) are at most ``per_1000`` per 1000 posts."""
    lengths = [len(row) for row in calm]
    rows = padded([llr(row, float(size)) for size in sizes for row in calm])
    lo, hi = np.full(len(sizes), math.log(H_RANGE[0])), np.full(len(sizes), math.log(H_RANGE[1]))
    for _ in range(ITERATIONS):
        mid = (lo + hi) / 2
        alarms = cusum_alarms(rows, np.repeat(np.exp(mid), len(calm)))
        rates = [metrics.arl0(alarms[i * len(calm):(i + 1) * len(calm)], lengths)["false_alarms_per_1000"]
                 for i in range(len(sizes))]
        ok = np.array(rates) <= per_1000
        hi, lo = np.where(ok, mid, hi), np.where(ok, lo, mid)
    return np.exp(hi)


def clairvoyant_alarms(streams: list[Stream], table: np.ndarray, shifts: list[float],
                       sizes: np.ndarray = SIZES) -> list[list[int]]:
    """Each stream's alarms by the CUSUM told a direction and size (``shifts``, signed SDs, cycled),
    standardised on the stream's posts before its change; the threshold interpolated in ``table`` on log
    size, sizes outside it clipped to its ends."""
    rows, hs = [], []
    for i, s in enumerate(streams):
        mean, sd, _ = share_shift(s)
        size = shifts[i % len(shifts)]
        magnitude = float(np.clip(abs(size), sizes[0], sizes[-1]))
        z = math.copysign(1.0, size) * (s.negative_share.astype(float) - mean) / sd
        rows.append(llr(z, magnitude))
        hs.append(math.exp(float(np.interp(math.log(magnitude), np.log(sizes), np.log(table)))))
    return cusum_alarms(padded(rows), np.array(hs))


def every_other(s: Stream, first: int) -> Stream:
    """The stream's posts ``first``, ``first`` + 2, ...: half a user, its change positions moved with it."""
    def moved(i: int | None) -> int | None:
        return None if i is None else (i - first + 1) // 2
    keep = slice(first, None, 2)
    return dataclasses.replace(s, probs=s.probs[keep], gaps=s.gaps[keep], face=s.face[keep], start=moved(s.start),
                               end=moved(s.end), start2=moved(s.start2),
                               true_emotion=None if s.true_emotion is None else s.true_emotion[keep])


def clairvoyant(changes: list[Stream], placebo: list[Stream], none: list[Stream], per_1000: float,
                told: list[float]) -> tuple[list[metrics.Case], list[metrics.Case]]:
    """The clairvoyant told ``told`` (one signed size per change stream; the placebo streams are told the
    same sizes, so its alarms there are this detector's chance), calibrated on ``none``: the change and
    placebo cases."""
    table = thresholds(calm_segments(none, placebo), per_1000)
    found = [change_case(s, a) for s, a in zip(changes, clairvoyant_alarms(changes, table, told))]
    chance = [metrics.Case(cast(int, s.start), None, s.length, a)
              for s, a in zip(placebo, clairvoyant_alarms(placebo, table, told))]
    return found, chance


def reading(found: list[metrics.Case], chance: list[metrics.Case], posts_per_post: int = 1) -> dict:
    m, p = metrics.change_metrics(found), metrics.change_metrics(chance)
    return {"recall": m["recall"], "placebo_recall": p["recall"], "delay_median": m["delay_median"] * posts_per_post,
            "pre_change_alarm_rate": m["pre_change_alarm_rate"], "streams": m["streams"],
            "delays": [d * posts_per_post for d in m["delays"]]}


def delay_check_reach(delays: list[int], streams: int, classic: dict) -> dict:
    """What the bar's recall and delay checks ask of a detector, against what the clairvoyant reaches.

    A detector meets both only if it finds at least ``least`` = the best classic's recall + 0.05 of the
    changes and half of what it finds comes within the classic's median delay ``D``: at least ``least`` / 2
    of all changes found within ``D`` posts. ``within``: what the clairvoyant finds within ``D``;
    ``median_at_least``: the median delay of a detector that found ``least`` of the changes, each as soon
    as the clairvoyant (None where the clairvoyant finds fewer)."""
    least, d = classic["best_classic_recall"] + MARGIN, classic["best_classic_delay"]
    ordered = sorted(delays)
    k = math.ceil(least / 2 * streams)  # the finds that must come within the median
    return {"classic_recall": classic["best_classic_recall"], "classic_delay": d, "least_recall": round(least, 4),
            "needed_within": round(least / 2, 4), "within": metrics.found_within(delays, streams, d),
            "median_at_least": float(ordered[k - 1]) if len(ordered) / streams >= least and k else None}


def separability(changes: list[float] | np.ndarray, placebo: list[float]) -> float:
    """How often a change stream's size exceeds a placebo stream's (ties half): 0.5 where a change cannot
    be told from no change even in hindsight, knowing where it began (the AUC of the size)."""
    a, b = np.nan_to_num(np.asarray(changes)), np.nan_to_num(np.asarray(placebo))
    return float((a[:, None] > b[None]).mean() + 0.5 * (a[:, None] == b[None]).mean())


def accuracy(streams: list[Stream]) -> float:
    """How often the classifier's top class is the post's true emotion, on posts with a face."""
    hits = [(s.probs.argmax(1) == s.true_emotion)[s.face] for s in streams if s.true_emotion is not None]
    return float(np.concatenate(hits).mean()) if hits else float("nan")


def run_family(job: tuple[Plan, str, float]) -> dict:
    plan, family, per_1000 = job
    none = families.make_streams(family, plan.seed, "none", plan.no_change, plan.no_change_length)
    placebo = families.make_streams(family, plan.seed, "placebo", plan.per_kind)
    changes = [s for kind in CHANGE_KINDS for s in families.make_streams(family, plan.seed, kind, plan.per_kind)]
    shares = [share_shift(s)[2] for s in changes]
    outputs = [all_outputs_size(s) for s in changes]
    # told each stream's own shift, measured on the posts it reads: optimistic where changes are small
    own = reading(*clairvoyant(changes, placebo, none, per_1000, shares))
    # fair: reads every other post, told the shift the other half of the posts shows (both halves pooled)
    halves = [clairvoyant([every_other(s, k) for s in changes], [every_other(s, k) for s in placebo],
                          [every_other(s, k) for s in none], per_1000,
                          [share_shift(every_other(s, 1 - k))[2] for s in changes]) for k in (0, 1)]
    fair = reading(halves[0][0] + halves[1][0], halves[0][1] + halves[1][1], posts_per_post=2)
    magnitude = np.abs(shares)
    return {"family": family, "per_1000": per_1000,
            "accuracy": round(accuracy(changes), 3), "faces": round(float(np.mean([s.face.mean() for s in changes])), 3),
            "share_size": _quartiles(magnitude), "all_outputs_size": _quartiles(np.array(outputs)),
            "small": round(float(np.mean(magnitude < SMALL)), 3),
            "separability": {"share": round(separability(magnitude, [abs(share_shift(s)[2]) for s in placebo]), 3),
                             "all_outputs": round(separability(outputs, [all_outputs_size(s) for s in placebo]), 3)},
            "clairvoyant": own, "clairvoyant_fair": fair}


def _quartiles(values: np.ndarray) -> list[float]:
    values = values[np.isfinite(values)]
    return [round(float(np.percentile(values, q)), 3) for q in (25, 50, 75)]


def detector_row(family: dict, name: str) -> dict:
    d = family["detectors"][name]
    return {"recall": d["all_changes"]["recall"], "placebo_recall": d["placebo_recall"]}


def _size(q: list[float]) -> str:
    return f"{q[1]:.2f} [{q[0]:.2f}, {q[2]:.2f}]"


def _above(d: dict) -> str:
    return f"{d['recall'] - d['placebo_recall']:+.2f}"


def _found(d: dict) -> str:
    return f"{d['recall']:.2f} / {d['placebo_recall']:.2f} / {_above(d)}"


def above_chance(family: dict) -> dict[str, dict[str, float]]:
    """Recall above chance of every detector of a published family: ``service`` with the classics at its
    rate, ``service_live`` with the classics at the live rate."""
    detectors = family["detectors"]
    shipped = {k: recall_above_chance(v) for k, v in detectors.items() if k != "service_live"}
    live = {k: recall_above_chance(v) for k, v in family.get("classics_at_live_rate", {}).items()}
    return {"service": shipped, **({"service_live": {"service_live": recall_above_chance(detectors["service_live"]), **live}}
                                   if live and "service_live" in detectors else {})}


def _margin_row(label: str, rows: list[dict[str, dict[str, float]]]) -> str:
    """The service against the one classic with the most recall above chance over ``rows`` (their mean)."""
    cells = []
    for service in ("service", "service_live"):
        if not all(service in r for r in rows):
            cells.append("– | – | –")
            continue
        mean = {k: float(np.mean([r[service][k] for r in rows])) for k in rows[0][service]}
        best = max((k for k in mean if not k.startswith("service")), key=lambda k: mean[k])
        cells.append(f"{mean[service]:+.2f} | {mean[best]:+.2f} ({best}) | {mean[service] - mean[best]:+.2f}")
    return f"| {label} | {cells[0]} | {cells[1]} |"


def _reach_row(label: str, reach: dict, published_within: dict) -> str:
    median = reach["median_at_least"]
    verdict = "yes" if median is not None and median <= reach["classic_delay"] else "NO"
    return (f"| {label} | {reach['classic_recall']:.3f}, {reach['classic_delay']:g} | {reach['least_recall']:.3f} | "
            f"{reach['needed_within']:.3f} | {published_within['classic']:.3f} / {published_within['service']:.3f} / "
            f"{reach['within']:.3f} | {'–' if median is None else f'{median:g}'} | {verdict} |")


def delay_check_section(results: list[dict], published: dict[str, dict], pooled_bar: dict | None) -> list[str]:
    """The bar's recall and delay checks side by side: what meeting both asks, per family and pooled over
    the held-out ones, against what the clairvoyant told its shift reaches."""
    lines = ["",
             "## What meeting the recall and the delay checks together asks",
             "",
             "The delay check compares medians over each detector's own finds, so a detector that finds more "
             "changes, the extra ones late, has the longer median. Meeting both checks asks a detector to find "
             "at least the best classic's recall + 0.05 of the changes, half of them within the classic's median "
             "delay: at least half that recall within that many posts. *Found within it*: the share of all "
             "change streams found within the classic's median delay, by the classic, the service (the published "
             "run's) and the clairvoyant told its shift (at the same rate). *The clairvoyant's median*: the median "
             "delay of a detector that found just the least recall the bar allows, each change as soon as the "
             "clairvoyant. The clairvoyant is the optimal detector of a known Gaussian shift in the mean share, "
             "not of every stream: a detector that beats it on some streams can exist, so a NO says that both "
             "checks are beyond a detector of the share's shift as good as it, not beyond every detector.",
             "",
             "| family | best classic: recall, median delay | least recall the bar allows | to meet both, found "
             "within the classic's median at least | found within it: classic / service / clairvoyant | the "
             "clairvoyant's median at the least recall | both within its reach |",
             "|---|---|---|---|---|---|---|"]
    pooled_delays: list[int] = []
    pooled_streams = 0
    for r in results:
        bar = published[r["family"]]["bar"]
        own = r["clairvoyant"]
        lines.append(_reach_row(r["family"], delay_check_reach(own["delays"], own["streams"], bar),
                                bar["found_within_classic_median"]))
        if r["family"] in families.HELD_OUT:
            pooled_delays += own["delays"]
            pooled_streams += own["streams"]
    held = [r for r in results if r["family"] in families.HELD_OUT]
    if pooled_bar and len(held) == len(families.HELD_OUT):
        lines.append(_reach_row(f"held out, pooled ({len(held)})",
                                delay_check_reach(pooled_delays, pooled_streams, pooled_bar),
                                pooled_bar["found_within_classic_median"]))
    return lines


def markdown(results: list[dict], published: dict[str, dict], plan: Plan, seconds: float,
             pooled_bar: dict | None = None) -> str:
    lines = ["# How large the changes are where the detectors see them, and what a clairvoyant finds",
             "",
             f"Generated by `python -m benchmarks.visibility` ({seconds:.0f} s); why and how: the module's docstring, "
             "what it showed: [detection_rules.md](detection_rules.md#how-large-the-changes-are-fourteenth-round). "
             f"The published runs' streams: seed {plan.seed}, {plan.per_kind} of every change kind and of the placebo "
             f"per family, {plan.no_change} no-change users to calibrate the clairvoyant on.",
             "",
             "## How large the changes are",
             "",
             "*Size*: the shift of the mean from the posts before the change to the change's own, in standard "
             "deviations before it; median [quartiles] over the change streams. *Small*: changes under "
             f"{SMALL} SD in the share. *Told apart in hindsight*: how often a change stream's size exceeds a "
             "placebo stream's (0.5: a change cannot be told from no change even knowing where it began).",
             "",
             "| family | accuracy on faces | faces | size in the share | in all seven outputs | small "
             "| told apart in hindsight: share | all seven outputs |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['family']} | {r['accuracy']:.2f} | {r['faces']:.2f} | {_size(r['share_size'])} | "
                     f"{_size(r['all_outputs_size'])} | {r['small']:.0%} | {r['separability']['share']:.2f} | "
                     f"{r['separability']['all_outputs']:.2f} |")
    lines += ["",
              "## What a clairvoyant finds, against the detectors at the same rate",
              "",
              "Each cell: recall / the placebo's \"recall\" / recall above chance (the difference), every detector "
              "at the rate the published run calibrated the classics to (the service's measured false alarms per "
              "1000 posts). *Told its shift*: the clairvoyant told each stream's own shift, measured on the posts "
              "it reads (optimistic where changes are small). *Told fairly*: it reads every other post and is told "
              "the shift the other half shows (sees half the posts; its delay counted in the stream's posts). The "
              "service's and the best classic's figures are the published run's.",
              "",
              "| family | rate / 1000 | clairvoyant told its shift | its median delay | told fairly | its median delay "
              "| service | best classic | its figures |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        fam = published[r["family"]]
        best = fam["bar"]["best_classic"]
        own, fair = r["clairvoyant"], r["clairvoyant_fair"]
        lines.append(f"| {r['family']} | {r['per_1000']:g} | {_found(own)} | {own['delay_median']:g} | {_found(fair)} | "
                     f"{fair['delay_median']:g} | {_found(detector_row(fam, 'service'))} | {best} | "
                     f"{_found(detector_row(fam, best))} |")
    lines += delay_check_section(results, published, pooled_bar)
    lines += ["",
              "## Recall above chance: the service against the classics",
              "",
              "Recall minus the placebo's, the service against the classic with the most of it (picked per family "
              "among six, each at the service's rate; the pick favours the classics a little: each placebo figure "
              "is 100 streams). *Live*: the service with live calibration, against the classics calibrated to its "
              "rate. Pooled: the mean over the families (each has as many change and placebo streams), against the "
              "one classic with the most of it there. The published runs' figures.",
              "",
              "| family | service | best classic | margin | live | best classic at its rate | margin |",
              "|---|---|---|---|---|---|---|"]
    margins = {r["family"]: above_chance(published[r["family"]]) for r in results}
    for name, row in margins.items():
        lines.append(_margin_row(name, [row]))
    for label, group in (("held out, pooled", families.HELD_OUT), ("reserved (run once), pooled", families.RESERVED)):
        rows = [margins[f] for f in group if f in margins]
        if len(rows) > 1:
            lines.append(_margin_row(f"{label} ({len(rows)})", rows))
    return "\n".join(lines + [""])


def main(argv: list[str] | None = None) -> int:
    args, published, fields = rerun("python -m benchmarks.visibility", __doc__ or "", argv)
    plan = Plan(**fields)
    started = time.perf_counter()
    jobs = [(plan, f, published[f]["detectors"]["service"]["no_change"]["false_alarms_per_1000"]) for f in plan.families]
    results = per_family(run_family, jobs, plan.workers)
    write_page(args.out, "visibility", args.quick,
               markdown(results, published, plan, time.perf_counter() - started, held_out_pooled_bar()))
    if not args.quick:
        (args.out / "visibility.json").write_text(compact_json({"plan": dataclasses.asdict(plan), "families": results}))
    return 0


def held_out_pooled_bar() -> dict | None:
    """The published run's bar over the held-out families pooled (its best classic's recall and delay)."""
    return json.loads(PUBLISHED.read_text()).get("held_out_pooled", {}).get("bar")


def compact_json(value: object) -> str:
    """``value`` as indented JSON whose lists of numbers (the clairvoyant's delays) each sit on one line."""
    text = json.dumps(value, indent=1)
    return re.sub(r"\[\n\s*(-?[\d.e+-]+(?:,\n\s*-?[\d.e+-]+)*)\n\s*\]",
                  lambda m: "[" + re.sub(r",\n\s*", ", ", m.group(1)) + "]", text) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
