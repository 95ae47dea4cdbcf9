"""Reviewers' verdicts and live calibration: ``python -m benchmarks.calibration_verdicts [--write]``.

Live calibration learns what "normal" looks like from a platform's own users, and an alarm nobody judges
counts as a false alarm. Where many users really change, that raises the thresholds for everyone (a
reviewer's audit saw the scale reach 2.94 and a plain happy-to-sad change raise nothing). Since round 41
of issue 12 a verdict that an alert was a real change takes its alarm out of what is learned
(``LiveCalibration.judge``). This measures what that gives, on one family's users, with the service's
live calibration driven offline as ``benchmarks.detection`` drives it (its defaults: target, warm-up,
one scale), in three warm-ups of the same number of posts:

- ``no_change``: only users whose pattern does not change: what the calibration is meant to learn;
- ``unjudged``: a share of the users change for good (happy to negative, abrupt or gradual), and nobody
  judges an alert;
- ``judged``: the same users, and a reviewer judges every alert as the truth says (real: the first
  raised in the change's tolerance window, ``benchmarks.metrics.in_window``), a chunk of users after it
  was raised.

Each warmed calibration is then frozen and measured on the same fresh users: false alarms per 1000
posts of users who do not change, and the recall and median delay of changes. Nothing is tuned on any of
it. Figures: docs/live_calibration.md (``--write``: docs/calibration_verdicts.json).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks import metrics
from benchmarks.families import served_config, service_default, service_events
from benchmarks.live_calibration import OfflineLiveCalibration
from model import families
from model.families.base import Stream
from service import model_repository
from service.drift import DetectorConfig
from service.inference import ProviderChoice
from service.temporal import TemporalModel

OUT = Path("docs/calibration_verdicts.json")
CHANGES = ("abrupt_pos_neg", "gradual")  # changes for good, for the worse: those the audit's population had
CHUNK = 20  # users posted before the reviewer judges their alerts


def warm(temporal: TemporalModel, config: DetectorConfig, users: list[Stream], judged: bool,
         one_scale: bool) -> OfflineLiveCalibration:
    """Live calibration at the service's defaults, warmed on ``users`` a chunk at a time; ``judged``: every
    alert of a chunk judged as the truth says once the chunk is posted."""
    live = OfflineLiveCalibration(temporal.artifact.tag, service_default("target_false_alarms_per_1000"),
                                  service_default("calibration_min_posts"),
                                  one_scale=one_scale,
                                  hold_young=service_default("calibration_hold_young"))
    for first in range(0, len(users), CHUNK):
        chunk = users[first:first + CHUNK]
        alarms, _ = service_events(temporal, chunk, config, live=live)
        live.merge()  # a sync: the chunk's alarms reach the shared counts before anyone judges them
        if judged:
            for i, (stream, raised) in enumerate(zip(chunk, alarms)):
                found = finds(stream, raised)
                for post in raised:
                    live.judge_offline(f"{i}:{post}", post == found)
        live.entries.clear()  # the next chunk's alarm ids start again at its first stream
    live.freeze()
    return live


def finds(stream: Stream, alarms: list[int]) -> int | None:
    """The alarm a reviewer who knew the truth would judge the real change: the first in the change's
    tolerance window (as ``benchmarks.metrics`` counts a true alarm). Later ones in the window come after
    the user's new baseline (or during the episode) and say nothing new: false alarms, as all others."""
    if stream.start is None:
        return None
    hits = metrics.in_window(metrics.Case(stream.start, stream.end, stream.length, alarms))
    return hits[0] if hits else None


def measure(temporal: TemporalModel, config: DetectorConfig, live: OfflineLiveCalibration,
            none: list[Stream], changes: list[Stream]) -> dict:
    quiet, _ = service_events(temporal, none, config, live=live)
    changed, ends = service_events(temporal, changes, config, live=live)
    cases = [metrics.Case(s.start, s.end, s.length, a, [e for e, _ in ended])
             for s, a, ended in zip(changes, changed, ends) if s.start is not None]
    found = metrics.change_metrics(cases)
    return {"scale": max(live.scales), "false_alarms_per_1000": metrics.arl0(quiet, [s.length for s in none])["false_alarms_per_1000"],
            "recall": found["recall"], "delay_median": found["delay_median"],
            "pre_change_alarm_rate": found["pre_change_alarm_rate"]}


def run(family: str, users: int, share: float, length: int, seed: int, one_scale: bool) -> dict:
    temporal = TemporalModel(model_repository.load(Path("model_repository"), "temporal"), ProviderChoice("cpu", "benchmark"))
    config = served_config(temporal)
    changers = [s for k, kind in enumerate(CHANGES)
                for s in families.make_streams(family, seed + k, kind, round(users * share / len(CHANGES)))]
    quiet = families.make_streams(family, seed + 10, "none", users - len(changers), length)
    mixed = [s for pair in zip(quiet, changers) for s in pair] + quiet[len(changers):] + changers[len(quiet):]
    # the no-change warm-up: as many posts, all of users who do not change
    posts = sum(s.length for s in mixed)
    alone = families.make_streams(family, seed + 20, "none", round(posts / length) + 1, length)
    fresh_none = families.make_streams(family, seed + 30, "none", 100, length)
    fresh_changes = [s for k, kind in enumerate(CHANGES) for s in families.make_streams(family, seed + 40 + k, kind, 100)]
    arms = {"no_change": warm(temporal, config, alone, False, one_scale),
            "unjudged": warm(temporal, config, mixed, False, one_scale),
            "judged": warm(temporal, config, mixed, True, one_scale)}
    return {"family": family, "seed": seed, "warm_users": len(mixed), "changing_share": round(len(changers) / len(mixed), 3),
            "warm_posts": posts, "one_scale": one_scale, "target_false_alarms_per_1000": service_default("target_false_alarms_per_1000"),
            "measured_on": {"no_change_users": len(fresh_none), "change_users": len(fresh_changes), "changes": list(CHANGES)},
            "arms": {name: measure(temporal, config, live, fresh_none, fresh_changes) for name, live in arms.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="blind", help="a stream family (default: blind, held out of training)")
    parser.add_argument("--users", type=int, default=400, help="users in the warm-up")
    parser.add_argument("--share", type=float, nargs="+", default=[0.5, 0.8],
                        help="shares of them whose pattern changes (a run each)")
    parser.add_argument("--length", type=int, default=2000, help="posts of a user who does not change")
    parser.add_argument("--seed", type=int, default=41_000)
    parser.add_argument("--calibration-per-age", action="store_true",
                        help="a scale per age bucket (EMODRIFT_CALIBRATION_ONE_SCALE=false), not the default one scale")
    parser.add_argument("--write", action="store_true", help=f"write {OUT}")
    args = parser.parse_args(argv)
    one_scale = service_default("calibration_one_scale") and not args.calibration_per_age
    result = {"runs": [run(args.family, args.users, share, args.length, args.seed, one_scale) for share in args.share]}
    text = json.dumps(result, indent=2)
    print(text)
    if args.write:
        OUT.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
