"""Turns the per-family results of :mod:`benchmarks.families` into docs/detection.md."""

from __future__ import annotations

import math

import numpy as np

from benchmarks.families import SERVICE, SERVICE_LIVE, above_chance
from model.families import WRITTEN_BLIND
from model.families.base import CHANGE_KINDS

CHECKS = {  # each check of the bar: its column heading, and a short name for the checks a row missed
    "false_alarms_at_most_1_per_1000": ("false alarms ≤ 1 / 1000 posts", "false alarms"),
    "recall_beats_best_classic_by_0.05": ("recall ≥ best classic + 0.05", "margin"),
    "median_delay_at_most_that_classics": ("median delay ≤ that classic's", "delay"),
    "pre_change_alarms_at_most_5pct": ("alarms before the change ≤ 5%", "pre-change"),
    "dip_alarms_at_most_5pct": ("alarms on dips ≤ 5%", "dips"),
    "second_change_at_least_0.9_of_first": ("second change ≥ 0.9 × first", "2nd change"),
}
CHECK_NAMES = {key: names[0] for key, names in CHECKS.items()}


def _f(x: object, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}g}" if abs(x) < 1 else f"{x:.{max(digits - 1, 1)}f}".rstrip("0").rstrip(".")
    return str(x)


SOURCE_MARK = {"manifest": " (m)", "borrowed": " (b)"}  # a live bucket's scale: learned unless marked


def _verdict(judged: dict, check: str) -> str:
    """'yes' / 'NO', with '?' when its bootstrap interval straddles the bar (``families.noise``)."""
    sure = judged.get("noise", {}).get("checks", {}).get(check, {}).get("clear", True)
    return ("yes" if judged["checks"][check] else "NO") + ("" if sure else "?")


def _interval(judged: dict, check: str, value: float | None) -> str:
    """'0.05 [0.01, 0.09]': a figure the bar compares and its bootstrap interval."""
    band = judged.get("noise", {}).get("checks", {}).get(check)
    if band is None:
        return _f(value)
    lo, hi = band["interval"]
    return f"{_f(value)} [{_f(lo)}, {_f(hi)}]" + ("" if band["clear"] else " ?")


def noise_section(rows: dict[str, dict], ours_name: str, bar_key: str, title: str) -> list[str]:
    """The bar's figures with their bootstrap intervals, and the delays paired on the changes both found."""
    judged_rows = {name: fam for name, fam in rows.items() if "noise" in fam.get(bar_key, {})}
    if not judged_rows:
        return []
    level = next(iter(judged_rows.values()))[bar_key]["noise"]["level"]
    lines = ["", f"### {title}", "",
             "| family | false alarms / 1000 | recall minus the best classic's | median delay minus its | "
             "pre-change alarms | 2nd change / 1st | changes both found | service sooner / classic sooner / same | "
             "median of the paired differences | the classic at the service's rate: margin, gap (its rate at the knob / the service's) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, fam in judged_rows.items():
        judged = fam[bar_key]
        ours = fam["detectors"][ours_name]
        classics = fam["detectors"] if bar_key == "bar" else fam["classics_at_live_rate"]
        rival = classics[judged["best_classic"]]["all_changes"]
        gap_recall = round(ours["all_changes"]["recall"] - rival["recall"], 4)
        gap_delay = ours["all_changes"]["delay_median"] - rival["delay_median"]
        paired = judged["paired_delays"]
        lines.append(
            f"| {name} | {_interval(judged, 'false_alarms_at_most_1_per_1000', ours['no_change']['false_alarms_per_1000'])} | "
            f"{_interval(judged, 'recall_beats_best_classic_by_0.05', gap_recall)} | "
            f"{_interval(judged, 'median_delay_at_most_that_classics', gap_delay)} | "
            f"{_interval(judged, 'pre_change_alarms_at_most_5pct', ours['all_changes']['pre_change_alarm_rate'])} | "
            f"{_interval(judged, 'second_change_at_least_0.9_of_first', ours['second_change']['ratio'])} | "
            f"{paired['both_found']} ({judged['best_classic']}) | {paired['ours_sooner']} / {paired['rival_sooner']} / "
            f"{paired['same']} | {_f(paired['median_difference'])} | {_at_service_rate(judged['noise'])} |")
    return lines + ["", f"Intervals: {round(100 * level)}% bootstrap; ? marks one that straddles the bar. "
                    + _calibration_note({name: fam[bar_key]["noise"] for name, fam in judged_rows.items()})]


def _at_service_rate(noise: dict) -> str:
    """The recall margin and delay gap with the classic interpolated to the service's measured rate
    (``rate_noise.at_sample``), and for one family the two rates on the classic's calibration users."""
    at = noise.get("classic_calibration", {}).get("at_service_rate")
    if at is None:
        return "-"
    text = f"{at['recall_margin']:+.3f}, {_f(at['median_gap'])}"
    if len(at["rates"]) == 1:
        text += f" ({_f(at['rates'][0]['classic_at_knob'])} / {_f(at['rates'][0]['service'])})"
    return text


def _calibration_note(noises: dict[str, dict]) -> str:
    """How the recall margin's and the delay gap's intervals treat the classic's calibration."""
    calibration = {name: n.get("classic_calibration", {"recalibrated": False}) for name, n in noises.items()}
    fixed = [name for name, c in calibration.items() if not c["recalibrated"]]
    recalibrated = [c for c in calibration.values() if c["recalibrated"]]
    note = ""
    if recalibrated:
        outside = max(c["outside"] for c in recalibrated)
        note = ("The recall margin and the median delay gap resample the no-change users as well as the change "
                "streams, and calibrate the classic again on the resampled users as the bar does "
                "(`benchmarks/rate_noise.py`); the service's resampled rate fell outside the classic's grid of "
                f"knobs in at most {100 * outside:.1f}% of a row's resamples (the grid's end knob is taken there). "
                "The last column reads the sample itself the same way, the classic interpolated between the two "
                "knobs whose rates on its calibration users bracket the service's (`rate_noise.at_sample`), and "
                "the bar's recall and delay verdicts are read from it; the two columns before it hold the classic "
                "at the one knob its bisection settled on, the least strict at or under the service's rate, and "
                "part from it where the classic's false alarms come in clumps.")
    if fixed:
        note += (" " if note else "") + ("With the classic's calibration held fixed: " + ", ".join(fixed) + ".")
    return note


def _failed(judged: dict) -> str:
    """' (delay?, 2nd change)': the checks a bar missed, in short (? as in :func:`_verdict`)."""
    missed = [CHECKS[k][1] + _verdict(judged, k)[2:] for k, ok in judged.get("checks", {}).items() if not ok]
    return f" ({', '.join(missed)})" if missed else ""


def live_section(fams: dict, pooled: dict | None = None, pooled_name: str = "") -> list[str]:
    """The service with live calibration against the service as shipped (docs/live_calibration.md), and
    its bar against the classics calibrated to its own rate; ``pooled``: the held-out families as one."""
    if not all(SERVICE_LIVE in fam["detectors"] for fam in fams.values()):
        return []
    first = next(iter(fams.values()))["detectors"][SERVICE_LIVE]["live"]
    lines = ["", "## Live calibration (`service_live`)", "",
             f"The service with live calibration ([live_calibration.md](live_calibration.md)) at its defaults "
             f"(target {first['target_false_alarms_per_1000']} false alarms per 1000 posts, an age bucket learns once "
             f"it has seen {first['min_posts']} posts), warmed on {first['warm_users']} of the family's own no-change "
             f"users from seed {first['warm_seed']}, then frozen and measured on the same users as every row above "
             "(how to read it: [detection_method.md](detection_method.md)).", "",
             "| family | false alarms / 1000: shipped → live | pre-change alarms | recall | median delay | dips | "
             "2nd change / 1st (live) | best classic at the live rate: recall, median delay | found within that delay: "
             "live / classic | bar met (live) | scale by user age (posts: scale; (m) the manifest's, (b) borrowed from an older bucket) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    rows = {**fams, **({pooled_name: pooled} if pooled and "bar_live" in pooled else {})}
    for name, fam in rows.items():
        lb = fam.get("bar_live", {})
        speed = lb.get("found_within_classic_median", {})
        a, b = fam["detectors"][SERVICE], fam["detectors"][SERVICE_LIVE]
        scales = ", ".join(f"{x['age']}: {x['scale']:g}{SOURCE_MARK.get(x['source'], '')}"
                           for x in b["live"]["buckets"]) if "live" in b else "each family's own"
        second = b["second_change"]
        lines.append(
            f"| {name} | {_f(a['no_change']['false_alarms_per_1000'])} → {_f(b['no_change']['false_alarms_per_1000'])} | "
            f"{_f(a['all_changes']['pre_change_alarm_rate'])} → {_f(b['all_changes']['pre_change_alarm_rate'])} | "
            f"{_f(a['all_changes']['recall'])} → {_f(b['all_changes']['recall'])} | "
            f"{_f(a['all_changes']['delay_median'])} → {_f(b['all_changes']['delay_median'])} | "
            f"{_f(a['dip_alarm_rate'])} → {_f(b['dip_alarm_rate'])} | {_f(second['recall'])} / {_f(second['first_recall'])} | "
            f"{lb.get('best_classic', '–')}: {_f(lb.get('best_classic_recall'))}, {_f(lb.get('best_classic_delay'))} | "
            f"{_f(speed.get('service'))} / {_f(speed.get('classic'))} | "
            f"{'yes' if lb.get('met') else 'NO'}{_failed(lb)} | {scales} |")
    return lines


def _above_chance(fam: dict, fams: dict, detector: str) -> str:
    """Recall minus the placebo's "recall" (what the detector scores with no change at all); a pooled row's
    is the mean of its families' (each has as many change and placebo streams)."""
    members = [fams[f] for f in fam.get("families", [])] or [fam]
    return f"{float(np.mean([above_chance(m['detectors'][detector]) for m in members])):+.3f}"


def markdown(results: dict, quick: bool = False) -> str:
    plan, fams = results["plan"], results["families"]
    headline = results["headline"]
    held_out = results.get("held_out") or [headline]
    pooled = results.get("held_out_pooled")
    pooled_name = " + ".join(pooled["families"]) + " (pooled)" if pooled else ""
    cal = results["detector"].get("calibrated_with") or {}
    lines = [
        "# Drift detection on " + ("every stream family" if "command" not in results
                                    else ", ".join(f"`{name}`" for name in fams)),
        "",
        ("**A quick run (`--quick`): small samples, not the published figures.**\n" if quick else "") +
        f"Produced by `{results.get('command', 'python -m benchmarks.detection')}` with the temporal model `{results['model']}` and the detector "
        f"calibration in its manifest (calibrated with `{cal.get('command', '?')}`, seed {cal.get('seed', '?')}, "
        f"to at most {cal.get('target_false_alarms_per_1000', '?')} false alarms per 1000 posts on the worst of the "
        f"families {', '.join(cal.get('families', [])) or '?'}), re-baselining included; stream seed "
        f"{plan['seed']}, {plan['no_change']} no-change users of {plan['no_change_length']} posts and "
        f"{plan['per_kind']} streams of every other kind per family (the held-out families keep their own lengths). "
        f"Run in {results.get('seconds', '?')} s on {plan['workers']} workers.",
        "",
        f"Headline: {', '.join(f'`{n}`' for n in held_out)}{', pooled and separately' if pooled else ''}. How the "
        "service and the classics are run, what each column means, and what the service does that the figures "
        "rest on: [detection_method.md](detection_method.md).",
        "",
        "## The bar, family by family",
        "",
        *(["A verdict marked ? could turn on another sample of the same family: its bootstrap interval "
           "straddles the bar ([how sure the verdicts are](#how-sure-the-verdicts-are)).", ""]
          if "noise" in fams[headline]["bar"] else []),
        "| family | " + " | ".join(CHECK_NAMES.values()) + " | all met |",
        "|---|" + "---|" * (len(CHECK_NAMES) + 1),
    ]
    rows = {**fams, **({pooled_name: pooled} if pooled else {})}
    for name, fam in rows.items():
        label = f"**{name}** (headline)" if name in held_out or name == pooled_name else name
        lines.append(f"| {label} | " + " | ".join(_verdict(fam["bar"], k) for k in CHECK_NAMES) +
                     f" | {'yes' if fam['bar']['met'] else 'NO'} |")
    lines += ["", "## The service against the best classic", "",
              "| family | service: false alarms / 1000 | recall | median delay | pre-change alarms | dip alarms | "
              "2nd change / 1st | back to stable via new_baseline | best classic (same rate) | its recall | its median delay | "
              "found within that delay: service / classic | recall above chance: service / classic |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, fam in rows.items():
        ours = fam["detectors"][SERVICE]
        b = fam["bar"]
        nb = ours.get("new_baseline", {})
        second = ours["second_change"]
        speed = b.get("found_within_classic_median", {})
        lines.append(
            f"| {name} | {_f(ours['no_change']['false_alarms_per_1000'])} | {_f(ours['all_changes']['recall'])} | "
            f"{_f(ours['all_changes']['delay_median'])} | {_f(ours['all_changes']['pre_change_alarm_rate'])} | "
            f"{_f(ours['dip_alarm_rate'])} | {_f(second['recall'])} / {_f(second['first_recall'])} | "
            f"{_f(nb.get('new_baseline_share'))} of {nb.get('found', 0)} within {nb.get('within_posts', '–')} posts | "
            f"{b['best_classic']} | {_f(b['best_classic_recall'])} | {_f(b['best_classic_delay'])} | "
            f"{_f(speed.get('service'))} / {_f(speed.get('classic'))} | "
            f"{_above_chance(fam, fams, SERVICE)} / {_above_chance(fam, fams, b['best_classic'])} |")
    noise = (noise_section(rows, SERVICE, "bar", "The service as shipped (the manifest's calibration)") +
             noise_section(rows, SERVICE_LIVE, "bar_live", "With live calibration, against the classics at its rate"))
    if noise:
        lines += ["", "## How sure the verdicts are", "",
                  "Each figure the bar compares, with a bootstrap interval: the family's change streams (for false "
                  "alarms, its no-change users) drawn again with replacement, the service and the best classic "
                  "read on the same draws; for the recall margin and the delay gap the no-change users are drawn "
                  "again too and the classic calibrated again on them, since the rate it is held to is the "
                  "service's measured on those users (each section's note says where it was held fixed "
                  "instead). A verdict whose interval "
                  "straddles the bar is marked ? in the bar table: another sample of the same family could turn "
                  "it. The last three columns compare the delays on the changes both found, stream by stream: "
                  "the median delays above are each over a detector's own finds, and the one that finds more "
                  "of the hard, late changes has the longer median even where it is never the later of the two "
                  "([detection_method.md](detection_method.md))."] + noise
    for name, fam in fams.items():
        det = fam["detectors"]
        tag = f" (headline{', held out' if name in WRITTEN_BLIND else ''})" if name in held_out else ""
        lines += ["", f"## {name}{tag}", "",
                  "| detector | knob | false alarms / 1000 | recall | median delay | p90 delay | pre-change | dips | "
                  "2nd change recall (1st) | placebo 'recall' |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for dname, d in det.items():
            knob = ("manifest" if dname == SERVICE else "live calibration" if dname == SERVICE_LIVE
                    else f"{d['knob']} = {d['value']:.4g}")
            a = d["all_changes"]
            lines.append(f"| {dname} | {knob} | {_f(d['no_change']['false_alarms_per_1000'])} | {_f(a['recall'])} | "
                         f"{_f(a['delay_median'])} | {_f(a['delay_p90'])} | {_f(a['pre_change_alarm_rate'])} | "
                         f"{_f(d['dip_alarm_rate'])} | {_f(d['second_change']['recall'])} ({_f(d['second_change']['first_recall'])}) | "
                         f"{_f(d['placebo_recall'])} |")
        lines += ["", "Recall / median delay per kind:", "",
                  "| detector | " + " | ".join(CHANGE_KINDS) + " |", "|---|" + "---|" * len(CHANGE_KINDS)]
        for dname, d in det.items():
            lines.append(f"| {dname} | " + " | ".join(f"{_f(d[k]['recall'])} / {_f(d[k]['delay_median'])}"
                                                    for k in CHANGE_KINDS) + " |")
    lines += live_section(fams, pooled, pooled_name)
    lines += ["", "The detailed in-family analysis (curves, oracle, costs, the fast rule) is in "
              "[detection_in_family.md](detection_in_family.md) (`python -m benchmarks.detection --in-family`)."]
    return "\n".join(lines) + "\n"
