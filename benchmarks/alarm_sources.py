"""``python -m benchmarks.alarm_sources [--quick] [--family F]``: where the service's alarms come from, by
detector rule and by user age, against each family's best classic. Writes ``docs/alarm_sources.md`` and
``docs/alarm_sources.json``.

Why: at one false-alarm rate on the no-change users the service "finds" more changes on the placebo
streams than the classics do (docs/visibility.md): its false alarms fall more where the placebo and the
change streams are, on users a few hundred posts old. Every alert now names the rules that raised it
(``raised_by``), and a platform counts its people's verdicts per rule; this page gives the same reading
out of family, on the published runs' streams (seed and sizes from docs/detection_families.json), the
service as shipped (the manifest's calibration):

- **false alarms by age**: ``young_users`` further no-change users of each family (the published run's
  seed, so its own no-change users come first), cut to their first ``young_posts`` posts, per 1000 posts
  at ages 8-63, 64-127 and 128 on (the post's place in the user's life), the service against the
  family's best classic at its published knob on the same posts; and which rules raised the service's;
- **false alarms over a whole life, by rule**: the published run's no-change users (an alarm raised by two
  rules counts for each);
- **changes found, by the rules that raised the find**: the first alarm in each change's window
  (the bar's recall), by the rule or rules that raised it.
- **without the fast rule**: the same users and change streams with the fast rule off and the other
  rules' thresholds as they are: what the fast rule (the CNN-LSTM's drift score) adds on each family.

The harness check: the service's false alarms on the published no-change users and its recall are the
published run's.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter

from benchmarks import metrics
from benchmarks.families import change_case, served_config, service_events
from benchmarks.published import PUBLISHED, RerunPlan, per_family, rerun, served_temporal, write_page
from benchmarks.second_change import classic_alarms
from model import families
from model.families.base import CHANGE_KINDS, Stream
from service.drift import RULES

AGES = ((metrics.WARMUP, 64), (64, 128), (128, None))  # [from, to) in posts; None: to the end of the posts kept
NEVER = 10**6  # confirm_posts that no user reaches: the fast rule off


@dataclasses.dataclass(frozen=True)
class Plan(RerunPlan):
    young_users: int = 400
    young_posts: int = 300


def per_age(alarms: list[list[int]], lengths: list[int]) -> list[dict]:
    """False alarms per 1000 posts in each of ``AGES``."""
    out = []
    for lo, hi in AGES:
        posts = sum(max(0, (n if hi is None else min(n, hi)) - lo) for n in lengths)
        count = sum(1 for row in alarms for a in row if lo <= a and (hi is None or a < hi))
        out.append(metrics.alarm_rate(posts, count))
    return out


def rule_counts(sources: list[list[tuple[str, ...]]], alarms: list[list[int]]) -> dict[str, int]:
    """Alarms after the warm-up by each rule that raised them (an alarm raised by two counts for each)."""
    counts = Counter(rule for row, at in zip(sources, alarms) for rules, a in zip(row, at)
                     if a >= metrics.WARMUP for rule in rules)
    return {rule: counts.get(rule, 0) for rule in RULES}


def finds_by_rules(streams: list[Stream], alarms: list[list[int]],
                   sources: list[list[tuple[str, ...]]]) -> dict[str, int]:
    """The changes found (the first alarm in the bar's window), by the rule, or "several", that raised it."""
    out: Counter[str] = Counter()
    for s, at, row in zip(streams, alarms, sources):
        hits = metrics.in_window(change_case(s, at))
        if hits:
            rules = dict(zip(at, row))[hits[0]]
            out[rules[0] if len(rules) == 1 else "several"] += 1
    return {key: out.get(key, 0) for key in (*RULES, "several")}


def run_family(job: tuple[Plan, str, str, float]) -> dict:
    plan, family, best, knob = job
    temporal = served_temporal()
    config = served_config(temporal)
    make = families.make_streams
    young = [s.head(plan.young_posts) for s in make(family, plan.seed, "none", plan.young_users, plan.no_change_length)]
    sources: list[list[tuple[str, ...]]] = []
    alarms, _ = service_events(temporal, young, config, sources=sources)
    lengths = [s.length for s in young]
    out: dict = {"family": family, "best_classic": best,
                 "young": {"posts": sum(lengths), "service": per_age(alarms, lengths),
                           "classic": per_age(classic_alarms(best, knob, young), lengths),
                           "service_by_rule": rule_counts(sources, alarms)}}
    whole = make(family, plan.seed, "none", plan.no_change, plan.no_change_length)
    whole_scores = temporal.replay(whole)  # read twice below: as shipped and without the fast rule
    alarms, _ = service_events(temporal, whole, config, whole_scores, sources=sources)
    posts = sum(max(0, s.length - metrics.WARMUP) for s in whole)
    out["whole_life"] = {"posts": posts, "false_alarms": sum(1 for row in alarms for a in row if a >= metrics.WARMUP),
                         "by_rule": rule_counts(sources, alarms)}
    changes = [s for kind in CHANGE_KINDS for s in make(family, plan.seed, kind, plan.per_kind)]
    change_scores = temporal.replay(changes)
    alarms, _ = service_events(temporal, changes, config, change_scores, sources=sources)
    out["finds"] = {"streams": len(changes), "by_rules": finds_by_rules(changes, alarms, sources)}
    # the fast rule's own worth: the same users with it off (the other rules' thresholds as they are)
    off = dataclasses.replace(config, confirm_posts=NEVER)
    alarms, _ = service_events(temporal, whole, off, whole_scores)
    cases = [change_case(s, a) for s, a in zip(changes, service_events(temporal, changes, off, change_scores)[0])]
    m = metrics.change_metrics(cases)
    out["without_fast_rule"] = {"false_alarms": sum(1 for row in alarms for a in row if a >= metrics.WARMUP),
                                "recall": m["recall"], "delay_median": m["delay_median"],
                                "pre_change_alarm_rate": m["pre_change_alarm_rate"]}
    return out


def check(published: dict, result: dict, same_streams: bool) -> str:
    """The harness's check: the published run's false alarms on its no-change users, and its recall."""
    if not same_streams:
        return "not the published streams"
    service = published[result["family"]]["detectors"]["service"]
    found = sum(result["finds"]["by_rules"].values())
    same = (result["whole_life"]["false_alarms"] == service["no_change"]["false_alarms"]
            and round(found / result["finds"]["streams"], 4) == service["all_changes"]["recall"])
    return "reproduced" if same else "DIFFERS"


def _rates(rows: list[dict]) -> str:
    return " / ".join(f"{r['false_alarms_per_1000']:.2f}" for r in rows)


def markdown(results: list[dict], published: dict, plan: Plan, seconds: float) -> str:
    p = json.loads(PUBLISHED.read_text())["plan"]
    same_streams = (plan.seed, plan.per_kind, plan.no_change) == (p["seed"], p["per_kind"], p["no_change"])
    ages = " / ".join(f"{lo}-{hi - 1}" if hi else f"{lo}+" for lo, hi in AGES)
    lines = ["# Where the service's alarms come from: by rule and by user age",
             "",
             f"Generated by `python -m benchmarks.alarm_sources` ({seconds:.0f} s); why and how: the module's docstring, "
             "what it showed: [detection_rules.md](detection_rules.md#how-large-the-changes-are-fourteenth-round). "
             f"The published runs' streams (seed {plan.seed}); the service as shipped (the manifest's calibration) and "
             "each family's best classic at its published knob. The rules: `fast`, `evidence`, `share` "
             "([drift.md](drift.md#the-three-rules)); an alert names those that raised it (`raised_by`).",
             "",
             "## False alarms by age",
             "",
             f"{plan.young_users} no-change users of each family, their first {plan.young_posts} posts: false alarms per "
             f"1000 posts at ages {ages} (the post's place in the user's life), and the rules that raised the "
             "service's (an alarm raised by two counts for each).",
             "",
             f"| family | service at {ages} | best classic | its rates | service's alarms by rule: "
             + " / ".join(RULES) + " |",
             "|---|---|---|---|---|"]
    for r in results:
        y = r["young"]
        lines.append(f"| {r['family']} | {_rates(y['service'])} | {r['best_classic']} | {_rates(y['classic'])} | "
                     + " / ".join(str(y["service_by_rule"][rule]) for rule in RULES) + " |")
    lines += ["",
              "## Over a whole life, and what each rule finds",
              "",
              f"The published run's {plan.no_change} no-change users of each family and its change streams "
              f"({plan.per_kind} of every change kind). *False alarms by rule*: per 1000 posts (an alarm raised by two "
              "counts for each). *Changes found*: the share of change streams whose first alarm in the bar's window "
              "was raised by that rule alone, or by several at once; the row sums to the service's recall.",
              "",
              "| family | false alarms / 1000 | by rule: " + " / ".join(RULES) + " | changes found by "
              + " / ".join(RULES) + " / several | recall | without the fast rule: false alarms / 1000, recall, "
              "median delay, alarmed before the change | harness check |",
              "|---|---|---|---|---|---|---|"]
    for r in results:
        w, f, o = r["whole_life"], r["finds"], r["without_fast_rule"]
        n = f["streams"]
        lines.append(f"| {r['family']} | {1000 * w['false_alarms'] / w['posts']:.3f} | "
                     + " / ".join(f"{1000 * w['by_rule'][rule] / w['posts']:.3f}" for rule in RULES) + " | "
                     + " / ".join(f"{f['by_rules'][k] / n:.3f}" for k in (*RULES, "several")) + " | "
                     f"{sum(f['by_rules'].values()) / n:.3f} | {1000 * o['false_alarms'] / w['posts']:.3f}, "
                     f"{o['recall']:.3f}, {o['delay_median']:g}, {o['pre_change_alarm_rate']:.1%} | "
                     f"{check(published, r, same_streams)} |")
    return "\n".join(lines + [""])


def main(argv: list[str] | None = None) -> int:
    args, published, fields = rerun("python -m benchmarks.alarm_sources", __doc__ or "", argv)
    plan = Plan(**fields)
    if args.quick:
        plan = dataclasses.replace(plan, young_users=20)
    started = time.perf_counter()
    jobs = []
    for name in plan.families:
        best = published[name]["bar"]["best_classic"]
        jobs.append((plan, name, best, published[name]["detectors"][best]["value"]))
    results = per_family(run_family, jobs, plan.workers)
    write_page(args.out, "alarm_sources", args.quick,
               markdown(results, published, plan, time.perf_counter() - started))
    if not args.quick:
        (args.out / "alarm_sources.json").write_text(
            json.dumps({"plan": dataclasses.asdict(plan), "families": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
