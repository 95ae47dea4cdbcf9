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
    return min(timed, key=timed.get) if timed else None


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


def markdown(results: dict) -> str:
    det, plan, verdict = results["detectors"], results["plan"], results["bar"]
    names = list(det)
    threshold, confirm = plan["fast_rule"]
    lines = [
        "# Drift detection: the CNN-LSTM against the classic detectors",
        "",
        f"Produced by `python -m benchmarks.detection --in-family` ({results['seconds']:.0f} s on {plan['workers']} cores) with the "
        f"temporal model `{results['model']}`; every figure below comes from that run (seed {plan['seed']}, disjoint "
        "from the training seeds). Re-run it after retraining. The CNN-LSTM's fast rule in this run: score >= "
        f"{threshold:g} for {confirm} consecutive posts (`--fast-rule {threshold:g},{confirm}`); its evidence rule "
        "is calibrated with it in place.",
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
        lines += ["Read a lower median delay together with recall: the median is over the changes a detector "
                  "found, so a detector that finds few changes of a kind (often the early, lucky ones, or alarms "
                  "that come soon after its own restart) can show a short median. The table 'found within 30 "
                  "posts' below counts every change, found or not, the placebo control shows what each "
                  "detector 'finds' where nothing changes, and the oracle shows how fast a change can be found "
                  "at all. None of them changes the verdict: the bar asks for the lowest median delay, and where "
                  "it is listed above the CNN-LSTM does not have it.", ""]
        lines += _faster_rivals(results)
    lines += [
        f"The recall margin is judged on all change kinds pooled (best baseline {verdict['best_baseline_recall']}, "
        f"margin {MARGIN}); recall and median delay are then compared kind by kind.",
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
              f"{plan['per_kind']} streams drawn like the small-shift streams (a non-negative baseline, a `start` "
              f"{PRE[0]}-{PRE[1]} posts in, {POST} posts after it) in which nothing changes at `start`. Any alarm "
              "in the window a lasting change would have (1 post before `start` to the end) is chance; its share "
              "is the 'recall' a detector would score on a lasting change kind without seeing the change. A "
              "detector is only as good as its recall above this line.", "",
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
        "## The service's calibrated defaults",
        "",
        "The service's `DriftDetector` starts an episode when either rule fires: the fast rule (score >= "
        f"`EMODRIFT_DRIFT_THRESHOLD={threshold:g}` for `EMODRIFT_CONFIRM_POSTS={confirm}` posts; "
        f"ARL0 {_fast_rule_arl0(ours)} posts on its own) or "
        "the evidence rule, a self-normalised CUSUM of the score against the user's own score level "
        "(`service/drift.py`: x = (logit(score) - profile mean[post]) / max(profile sd[post], 0.25), "
        "z = (x - reference mean) / (reference sd + 0.05), reference weight 0.01 per post, evidence = "
        "max(0, evidence + z - slack)). The profile is the model's score on users who never change, by post "
        "count (`python -m export score-profile`, in the temporal manifest): without it the score's climb over "
        "a new user's first ~80 posts read as evidence (see the placebo control). On the same profile the fast "
        "rule's bar rises by how far the profile's mean runs above a settled user's at that post count "
        "(`logit(score) - excess >= logit(threshold)`), so a user around posts 50-250, whom the model scores "
        "higher whatever happens, is not alarmed on more often than a settled one. The two rules are "
        "calibrated together; the service "
        f"ships the headline operating point: `EMODRIFT_DRIFT_CUSUM_THRESHOLD={ours['value']:.1f}` and "
        f"`EMODRIFT_DRIFT_CUSUM_SLACK={ours['shape_value']:g}` (ARL0 ≈ {ours['no_change']['arl0']:.0f} posts, i.e. "
        f"about {ours['no_change']['false_alarms_per_1000']} false alarms per 1000 posts of a user whose mood does "
        "not change), with recovery threshold 0.25 over 5 posts and a 10-post cooldown. To trade sensitivity "
        "for alarms, set the evidence threshold from this table (same fast rule and slack):",
        "",
        "| target ARL0 | " + " | ".join(f"{p['target']:g}" for p in ours["curve"]) + " |",
        "|---|" + "---|" * len(ours["curve"]),
        "| evidence threshold | " + " | ".join(f"{p['knob']:.1f}" for p in ours["curve"]) + " |",
        "| measured ARL0 | " + " | ".join(_f(p["arl0"]) for p in ours["curve"]) + " |",
        "| recall / median delay | " + " | ".join(f"{p['recall']} / {_f(p['delay_median'])}" for p in ours["curve"]) + " |",
        "",
        *_unreachable(ours),
        "## Upgrading the temporal model",
        "",
        "A user's LSTM state (h, c) is stored with the tag of the model that wrote it. When a new version is "
        "deployed (`model_repository/temporal/<n>/`, the service loads the highest), a user's next post finds a "
        "state from another model: the hidden state and the detector restart (the user is `warming_up` again for "
        "8 posts, `model_resets` counts it), while the post count and the emotion baseline/recent distributions, "
        "which do not depend on the model, are kept. Old and new hidden states are never mixed "
        "(`tests/test_api.py::test_state_from_another_temporal_model_is_restarted_not_mixed`). Re-run this "
        "benchmark on the new version and set the evidence threshold from its table.",
        "",
        "## Explaining an alert",
        "",
        "Every `drift.started` / `drift.ended` event carries `evidence`: a one-line `reason` (\"mostly happy over 40 "
        "posts → mostly sad over the last 9\": the dominant emotion of the long-horizon baseline and of the recent "
        "posts, and how many of the latest posts belong to the new regime) and `top_posts`, the recent posts that "
        "moved the drift score most (post id, score change, top emotion), next to the distributions before and "
        "after, the valence change and the recent post ids (`service/evidence.py`).",
        "",
        "## What is measured",
        "",
        f"- **Streams** (`benchmarks/streams.py`): {plan['no_change']} no-change streams of "
        f"{plan['no_change_length']} posts (baselines cycling mostly happy, neutral, mixed, mostly negative; bursty "
        f"posting), and {plan['per_kind']} streams of each change kind: abrupt positive→negative and "
        "negative→positive, gradual escalation over 10 and 30 posts, small shifts (+0.1, +0.2, +0.3 in the negative "
        "share), a 12-30 post episode that recovers, a 1-3 post transient dip that must not alarm, and the "
        "placebo control (a `start` with no change). Each change "
        f"stream has {PRE[0]}-{PRE[1]} baseline posts first; lasting changes are followed for {POST} posts, dips "
        f"and episodes for {AFTER_END} posts after they end. True emotions pass through the confusion matrix of a "
        "~66%-accurate FER-2013 classifier with confidence spread (`model/synthetic.py`).",
        "- **CNN-LSTM**: the committed ONNX temporal step (`model_repository/temporal/<highest>/`) fed by the "
        "service's own feature code (`service/temporal.py`), then the service's `DriftDetector` on the model's "
        "score profile (fast rule "
        f"{threshold:g} x {confirm} posts, `--fast-rule {threshold:g},{confirm}`, or the evidence rule, whose "
        "threshold is the calibrated knob and whose slack is the tuned shape; "
        "recovery threshold 0.25, 5 recovery posts, cooldown 10, warm-up 8). The previous rule (fast rule only, "
        "threshold 0.75 x 3, calibrated the same way) had recall 0.81 and median delays 83 / 52.5 / 44 on the "
        "small shifts. Before the score profile (commit 737d857 and earlier) this page reported recall 0.91 and "
        "small-shift medians 48 / 41 / 36; the placebo control then showed 40% of users who never change "
        "alarming in the same windows, so much of that recall was the evidence rule reading a new user's "
        "climbing score.",
        "- **Baselines** (`benchmarks/baselines.py`): river's PageHinkley, ADWIN, KSWIN and HDDM_A on per-post "
        "valence, a two-sided self-starting CUSUM, and an EMA Jensen-Shannon detector on the 7 probabilities.",
        "- **Calibration**: each detector's alarm knob is bisected (log scale) until its ARL0 on the no-change "
        "streams is the target (the smallest ARL0 at or above it; ADWIN's delta is searched up to 2 and HDDM_A's "
        "drift confidence up to 0.8 so that both reach it); a shape parameter is tuned on a 3-point grid "
        "(best pooled recall at that ARL0). KSWIN (~200x slower) is bisected on "
        f"{plan['slow_share']:.0%} of the no-change streams, then its ARL0 is measured on all of them.",
        f"- **Definitions** (`benchmarks/metrics.py`): ARL0 = posts monitored after the {metrics.WARMUP}-post warm-up "
        "per false alarm on no-change streams (detectors restart after an alarm). Episode recall = share of changes "
        f"with an alarm from 1 post before the change to {metrics.TOLERANCE_AFTER_END} posts after its end (a lasting "
        "change ends with its stream). Delay = posts from the change's first post to that alarm. Pre-change alarms = "
        "share of change streams with an alarm after warm-up, before the window. Precision = alarms in a window "
        "(the first per change, and for an episode the first within 10 posts of its end) over all alarms on change "
        "and dip streams. Dip alarms = share of transient dips with an alarm from 1 post before to 10 after. "
        "Window P/R (CLPsych 2022) at w: predictions are alarms and the service's `drift.ended`; a prediction is "
        "right when a true change point (start, episode end) is within w posts. 'Episode ... ended' = the start was "
        "found and then the return (a `drift.ended`, or for a restarting detector a new alarm) within 10-20 posts "
        "of the episode's end.",
        "- **Cost**: state bytes per user (LSTM: h and c as float32 plus the detector's JSON; baselines: the pickled "
        "detector) and one update's latency on one core (LSTM: features + ONNX step + detector).",
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
    return ["The faster baselines, with what they score where nothing changes, what the oracle that knows the "
            "change in advance reaches (the ceiling for any detector of the CNN's outputs, below), and how many "
            "changes each has found by the baseline's median delay:", "", *out, ""]


def _oracle(results: dict) -> list[str]:
    """The ceiling table: the oracle's two views against the CNN-LSTM and the fastest baseline, per kind."""
    if "oracle" not in results:
        return []
    det, ceiling = results["detectors"], results["oracle"]
    lines = ["", "## The ceiling: an oracle that knows the change in advance", "",
             "`benchmarks/oracle.py`: the optimal detector (a CUSUM of the exact log-likelihood ratio) for each "
             "stream's own baseline and change, calibrated per kind to the same ARL0. It reads each post either as "
             "its **true emotion** (no detector has that) or as the **CNN's class and face flag**, which hold "
             "everything the CNN's probabilities hold about the change: that view is the ceiling for every detector "
             "here. Cells: recall / median delay / p90 delay (posts), then the share of all changes found within "
             "30 posts.", "",
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
