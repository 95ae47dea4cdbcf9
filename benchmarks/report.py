"""Turns the in-family benchmark's results into docs/detection_in_family.md, docs/detection_curve.png and the bar's verdict."""

from __future__ import annotations

import json
import math
from pathlib import Path

from benchmarks import metrics
from benchmarks.streams import AFTER_END, CHANGE_KINDS, POST, PRE

LSTM = "cnn_lstm"
MARGIN = 0.05


def fastest(others: dict, kind: str) -> str | None:
    """The detector with the shortest median delay on ``kind`` (one that found none has no median)."""
    timed = {n: d[kind]["delay_median"] for n, d in others.items() if not math.isnan(d[kind]["delay_median"])}
    return min(timed, key=timed.__getitem__) if timed else None


def beyond_chance(det: dict) -> dict[str, float] | None:
    """Each detector's pooled recall minus its placebo 'recall' (None for results without the placebo)."""
    if not all("placebo" in d for d in det.values()):
        return None
    return {n: d["all_changes"]["recall"] - d["placebo"]["recall"] for n, d in det.items()}


def bar(results: dict) -> dict:
    """The issue's bar, checked item by item on the headline run."""
    det = results["detectors"]
    ours, others = det[LSTM], {k: v for k, v in det.items() if k != LSTM}
    checks = {}
    checks["arl0_at_least_1000"] = ours["no_change"]["arl0"] >= 1000
    best_other = max(v["all_changes"]["recall"] for v in others.values())
    checks["recall_margin"] = ours["all_changes"]["recall"] >= best_other + MARGIN
    # Beyond the bar: the same margin on recall above chance (recall minus the placebo's, whose
    # window is a lasting change's: an over-correction for episodes, whose window is shorter)
    beyond = beyond_chance(det)
    if beyond is not None:
        checks["recall_margin_beyond_chance"] = beyond[LSTM] >= max(v for k, v in beyond.items() if k != LSTM) + MARGIN
    where, faster = [], []
    for kind in CHANGE_KINDS:
        mine = ours[kind]
        rival_recall = max(v[kind]["recall"] for v in others.values())
        rival = fastest(others, kind)
        rival_delay = others[rival][kind]["delay_median"] if rival else math.inf
        if mine["recall"] < rival_recall:
            where.append(f"{kind}: recall {mine['recall']} < {rival_recall}")
        if not mine["delay_median"] <= rival_delay:
            where.append(f"{kind}: median delay {mine['delay_median']} > {rival_delay} ({rival})")
            faster.append({"kind": kind, "rival": rival, "rival_delay": rival_delay,
                           "rival_recall": others[rival][kind]["recall"], "ours_delay": mine["delay_median"],
                           "ours_recall": mine["recall"]})
    checks["best_recall_and_delay_every_kind"] = not where
    checks["pre_change_alarms_at_most_5pct"] = ours["all_changes"]["pre_change_alarm_rate"] <= 0.05
    checks["dip_alarms_under_5pct"] = ours["transient"]["dip_alarm_rate"] < 0.05
    return {"met": all(checks.values()), "checks": checks, "best_baseline_recall": best_other, "short_of": where,
            "faster_rivals": faster}


def write(results: dict, out: Path, quick: bool = False) -> None:
    (out / "detection.json").write_text(json.dumps(results, indent=1, default=str))
    plot(results, out / "detection_curve.png")
    if not quick:
        (out / "detection_in_family.md").write_text(markdown(results))
    else:
        (out / "detection_in_family-quick.md").write_text(markdown(results))


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, d in results["detectors"].items():
        xs = [p["arl0"] for p in d["curve"]]
        style = dict(marker="o", lw=2.5 if name == LSTM else 1.2, label=name)
        left.plot(xs, [p["delay_median"] for p in d["curve"]], **style)
        right.plot(xs, [p["recall"] for p in d["curve"]], **style)
    for ax, label in ((left, "median detection delay (posts)"), (right, "episode recall")):
        ax.set_xscale("log")
        ax.set_xlabel("ARL0 on no-change streams (posts per false alarm)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    right.legend(fontsize=8)
    fig.suptitle("Drift detectors on the benchmark's change streams (all change kinds pooled)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _f(v) -> str:
    if isinstance(v, float) and math.isnan(v):
        return "–"
    if isinstance(v, float) and math.isinf(v):
        return "∞"
    return f"{v:g}" if isinstance(v, float) else str(v)


METHOD = "detection_method.md"  # the hand-written page: how to read this one, definitions, history


def markdown(results: dict) -> str:
    """The page, from the run's results only: every sentence here is a figure or a parameter of that run;
    what the figures mean, how they were measured and what earlier runs showed is in docs/detection_method.md."""
    det, plan, verdict = results["detectors"], results["plan"], results["bar"]
    names = list(det)
    threshold, confirm = plan["fast_rule"]
    lines = [
        "# Drift detection: the CNN-LSTM against the classic detectors",
        "",
        f"Generated by `python -m benchmarks.detection --in-family` ({results['seconds']:.0f} s on {plan['workers']} cores) "
        f"with the temporal model `{results['model']}`, stream seed {plan['seed']}. The CNN-LSTM's fast rule in this "
        f"run: score >= {threshold:g} for {confirm} consecutive posts (`--fast-rule {threshold:g},{confirm}`), its "
        "evidence rule calibrated with it in place. What this page measures, how to read it, and what earlier runs "
        f"showed: [{METHOD}]({METHOD}).",
        "",
        "## The bar",
        "",
        f"**{'Met' if verdict['met'] else 'Not met'}.** " + ", ".join(
            f"{k.replace('_', ' ')}: {'yes' if v else 'NO'}" for k, v in verdict["checks"].items()) + ".",
        "",
    ]
    if verdict["short_of"]:
        lines += ["Where the CNN-LSTM falls short of the best baseline (recall, or median delay):", ""]
        lines += [f"- {w}" for w in verdict["short_of"]] + [""]
        lines += _faster_rivals(results)
    lines += [
        f"Recall margin on all change kinds pooled: best baseline {verdict['best_baseline_recall']}, margin {MARGIN}.",
        "",
        f"## Headline: every detector calibrated to ARL0 ≈ {plan['arl0']:g} posts",
        "",
        "| detector | calibrated knob | tuned shape | ARL0 (posts) | false alarms / 1000 | recall | median delay | "
        "p90 delay | pre-change alarms | precision | F1 | dip alarms | state bytes | update p50 / p99 (µs) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n in names:
        d = det[n]
        a, nc, c = d["all_changes"], d["no_change"], d["cost"]
        lines.append(
            f"| {n} | {d['knob']} = {d['value']:.4g} | {d['shape'] or '–'}{' = ' + _f(d['shape_value']) if d['shape'] else ''} "
            f"| {_f(nc['arl0'])} | {nc['false_alarms_per_1000']} | {a['recall']} | {_f(a['delay_median'])} | "
            f"{_f(a['delay_p90'])} | {a['pre_change_alarm_rate']} | {a['precision']} | {a['f1']} | "
            f"{d['transient']['dip_alarm_rate']} | {c['state_bytes']} | {c['update_us_p50']} / {c['update_us_p99']} |")
    lines += ["", "## Per change kind: recall / median delay / p90 delay (posts)", "",
              "| kind | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for kind in CHANGE_KINDS:
        cells = [f"{det[n][kind]['recall']} / {_f(det[n][kind]['delay_median'])} / {_f(det[n][kind]['delay_p90'])}"
                 for n in names]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines.append("| transient (dip alarm rate) | " + " | ".join(str(det[n]["transient"]["dip_alarm_rate"]) for n in names) + " |")
    lines.append("| found within 30 posts (share of all changes) | " + " | ".join(
        str(det[n]["all_changes"].get("found_within_30", "–")) for n in names) + " |")
    lines.append("| episode that must end (start and end found) | " + " | ".join(str(det[n]["episode"]["ended"]) for n in names) + " |")
    lines += _oracle(results)
    lines += ["", "## Found within 30 posts of the change (share of all changes of the kind, found or not)", "",
              "| kind | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for kind in CHANGE_KINDS:
        lines.append(f"| {kind} | " + " | ".join(str(det[n][kind].get("found_within_30", "–")) for n in names) + " |")
    lines += ["", "## The control: the same windows where nothing changes (placebo)", "",
              f"{plan['per_kind']} streams drawn like the small-shift streams, a `start` {PRE[0]}-{PRE[1]} posts in and "
              f"{POST} posts after it, in which nothing changes at `start`.", "",
              "| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    beyond = beyond_chance(det)
    if beyond is not None:
        lines.append("| chance 'recall' (alarm in the window) | " + " | ".join(
            str(det[n]["placebo"]["recall"]) for n in names) + " |")
        lines.append("| median 'delay' of those alarms | " + " | ".join(
            _f(det[n]["placebo"]["delay_median"]) for n in names) + " |")
        lines.append("| alarm before `start` | " + " | ".join(
            str(det[n]["placebo"]["pre_change_alarm_rate"]) for n in names) + " |")
        lines.append("| pooled recall minus chance | " + " | ".join(f"{beyond[n]:.4f}" for n in names) + " |")
    lines += ["", "## Pre-change alarms and precision per kind", "",
              "| kind | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for kind in CHANGE_KINDS:
        lines.append(f"| {kind} | " + " | ".join(
            f"{det[n][kind]['pre_change_alarm_rate']} / {det[n][kind]['precision']}" for n in names) + " |")
    lines += ["", "## CLPsych-2022 window precision / recall (change points: starts and episode ends)", "",
              "| w | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for w in ("1", "2", "3"):
        lines.append(f"| {w} | " + " | ".join(
            "{} / {}".format(*(det[n]["window_pr"].get(w) or det[n]["window_pr"][int(w)])) for n in names) + " |")
    lines += ["", "## Delay against ARL0", "", "![delay and recall against ARL0](detection_curve.png)", "",
              "| detector | " + " | ".join(f"target {t:g}" for t in plan["curve"]) + " |",
              "|---|" + "---|" * len(plan["curve"])]
    for n in names:
        lines.append(f"| {n} | " + " | ".join(
            f"ARL0 {_f(p['arl0'])}: recall {p['recall']}, delay {_f(p['delay_median'])}" for p in det[n]["curve"]) + " |")
    ours = det[LSTM]
    lines += [
        "",
        f"Curve points other than the headline use the first {plan['curve_share']:.0%} of each kind's streams.",
        "",
        "## The CNN-LSTM's evidence threshold for each target",
        "",
        f"Fast rule {threshold:g} x {confirm} (its own ARL0: {_fast_rule_arl0(ours)} posts), evidence slack "
        f"{ours['shape_value']:g}; at the headline: evidence threshold {ours['value']:.1f}, ARL0 "
        f"{ours['no_change']['arl0']:.0f} posts ({ours['no_change']['false_alarms_per_1000']} false alarms per 1000).",
        "",
        "| target ARL0 | " + " | ".join(f"{p['target']:g}" for p in ours["curve"]) + " |",
        "|---|" + "---|" * len(ours["curve"]),
        "| evidence threshold | " + " | ".join(f"{p['knob']:.1f}" for p in ours["curve"]) + " |",
        "| measured ARL0 | " + " | ".join(_f(p["arl0"]) for p in ours["curve"]) + " |",
        "| recall / median delay | " + " | ".join(f"{p['recall']} / {_f(p['delay_median'])}" for p in ours["curve"]) + " |",
        "",
        *_unreachable(ours),
        "## This run's streams",
        "",
        f"{plan['no_change']} no-change streams of {plan['no_change_length']} posts; {plan['per_kind']} streams of "
        f"each change kind, {PRE[0]}-{PRE[1]} baseline posts first, lasting changes followed for {POST} posts, dips "
        f"and episodes for {AFTER_END} posts after they end; warm-up {metrics.WARMUP} posts, an episode's window "
        f"ends {metrics.TOLERANCE_AFTER_END} posts after it; KSWIN bisected on {plan['slow_share']:.0%} of the "
        "no-change streams.",
        "",
    ]
    return "\n".join(lines)


def _faster_rivals(results: dict) -> list[str]:
    """For each kind where a baseline has the shorter median: how many changes that median rests on, and
    what the same detector scores on the placebo, where nothing changes."""
    det, rows = results["detectors"], results["bar"].get("faster_rivals", [])
    if not rows or not all("placebo" in d for d in det.values()):
        return []
    per_kind = results["plan"]["per_kind"]

    def found_by(figures: dict, posts: float) -> str:  # share of ALL changes found within ``posts``
        delays = figures.get("delays")
        return "–" if delays is None else f"{sum(d <= posts for d in delays) / figures['streams']:.3f}"

    def median(figures: dict) -> str:  # the median with its 90% bootstrap interval, when the delays are kept
        if not figures.get("delays"):
            return _f(figures["delay_median"])
        lo, hi = metrics.median_interval(figures["delays"])
        return f"{_f(figures['delay_median'])} ({lo:g}-{hi:g})"

    ceiling = results.get("oracle", {}).get("label", {})
    out = ["| kind | faster baseline | its recall / median (90% CI) | its placebo 'recall' / median | CNN-LSTM recall "
           "/ median (90% CI) "
           "| oracle on the CNN's class: recall / median | found within the baseline's median (share of all "
           "changes): CNN-LSTM / baseline / oracle |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        p, theirs, ours = det[r["rival"]]["placebo"], det[r["rival"]][r["kind"]], det[LSTM][r["kind"]]
        top = ceiling.get(r["kind"])
        out.append(f"| {r['kind']} | {r['rival']} | {r['rival_recall']} ({round(r['rival_recall'] * per_kind)} of "
                   f"{per_kind}) / {median(theirs)} | {p['recall']} / {_f(p['delay_median'])} | "
                   f"{r['ours_recall']} / {median(ours)} | "
                   + (f"{top['recall']} / {_f(top['delay_median'])}" if top else "–") + " | "
                   f"{found_by(ours, r['rival_delay'])} / {found_by(theirs, r['rival_delay'])} / "
                   + (found_by(top, r["rival_delay"]) if top else "–") + " |")
    return ["The faster baselines: their placebo figures, the oracle's (below), and how many changes each has "
            "found by the baseline's median delay:", "", *out, ""]


def _oracle(results: dict) -> list[str]:
    """The ceiling table: the oracle's two views against the CNN-LSTM and the fastest baseline, per kind."""
    if "oracle" not in results:
        return []
    det, ceiling = results["detectors"], results["oracle"]
    lines = ["", "## The ceiling: an oracle that knows the change in advance", "",
             "`benchmarks/oracle.py`, calibrated per kind to the same ARL0. Cells: recall / median delay / p90 delay "
             "(posts), then the share of all changes found within 30 posts.", "",
             "| kind | oracle, true emotions | oracle, CNN's class | cnn_lstm | fastest baseline |",
             "|---|---|---|---|---|"]

    def cell(f: dict) -> str:
        return f"{f['recall']} / {_f(f['delay_median'])} / {_f(f['delay_p90'])}; {f.get('found_within_30', '–')}"

    others = {n: d for n, d in det.items() if n != LSTM}
    for kind in CHANGE_KINDS:
        rival = fastest(others, kind)
        lines.append(f"| {kind} | {cell(ceiling['emotion'][kind])} | {cell(ceiling['label'][kind])} | "
                     f"{cell(det[LSTM][kind])} | " + (f"{rival}: {cell(others[rival][kind])}" if rival else "–") + " |")
    return lines


def _unreachable(ours: dict) -> list[str]:
    """A note when a target lies above the fast rule's own ARL0: the evidence threshold cannot reach it."""
    value = ours.get("fast_rule_arl0")
    missed = [p["target"] for p in ours["curve"] if value is not None and value < p["target"]]
    if not missed:
        return []
    one = len(missed) == 1
    targets = f"Target {missed[0]:g} lies" if one else f"Targets {', '.join(f'{t:g}' for t in missed)} lie"
    return [f"{targets} above the fast rule's own ARL0 ({value:.0f}): no evidence threshold reaches "
            f"{'it' if one else 'them'} (the table shows the highest one searched). For fewer alarms than that, "
            "take a stricter fast rule from docs/detection_fast_rules.md (each row gives the rule's own ARL0) and "
            "calibrate the evidence threshold with it: `python -m benchmarks.detection --fast-rule THRESHOLD,CONFIRM "
            f"--arl0 {missed[-1]:g}`, then set `EMODRIFT_DRIFT_THRESHOLD`, `EMODRIFT_CONFIRM_POSTS` and "
            "`EMODRIFT_DRIFT_CUSUM_THRESHOLD` from its table.", ""]


def _fast_rule_arl0(ours: dict) -> str:
    """The fast rule's own ARL0 as measured by the run (older results lack it)."""
    value = ours.get("fast_rule_arl0")
    return f"about {value:.0f}" if value is not None else "not measured in this run"
