"""The base temporal model against one adapted to a platform's users, on that platform's held-out users:
``python -m benchmarks.detection --timelines FILE [--candidate CKPT] [--base CKPT] [--json OUT]``.

Only the users :func:`model.adapt.is_held_out` keeps from fine-tuning are read. Two sets are made of them:

- **real**: their timelines as exported, unchanged. Whatever happens in them, an alarm there is alert
  volume the platform would see; both models are calibrated to the same volume, ``--alarms-per-1000``
  alarms per 1000 posts (after the detector's warm-up);
- **spliced**: windows of one held-out user joined to a segment of another (``abrupt``, or a 10-30 post
  ``episode``), the same construction as the fine-tune's (:func:`model.adapt.splice`) with its own seed:
  changes whose start is known by construction.

Each model's drift score runs through the service's detector (``service.drift.DriftDetector``, the fast
rule: ``confirm_posts`` posts above a threshold; the evidence rule off, since a fine-tuned model has no
score profile yet); the threshold of each model is calibrated on the real set to the target volume.
Reported per model: recall (an alarm within ``WINDOW`` posts of the join), the median and p90 delay, and
the share of spliced streams alarmed before the join.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from benchmarks.bisection import bisect
from model.adapt import (ADAPTED, BASE, AdaptConfig, Spliced, Timelines, TimelinesError, is_held_out,
                         load_timelines, splice)
from model.features import timeline_features
from model.temporal import TemporalNet, load_checkpoint
from service.drift import DetectorConfig, DriftDetector

WINDOW = 40          # an alarm this many posts after the join (or fewer) detects it
SEED = 31_000        # the spliced set's draws (the fine-tune's come from its --seed, 0 by default)
DOCS = Path(__file__).resolve().parent.parent / "docs"


def spliced_set(data: Timelines, n: int, length: int, seed: int = SEED) -> list[Spliced]:
    """``n`` spliced streams of held-out users only, half abrupt, half episodes."""
    held = [u for u in data.users if is_held_out(u.user)]
    backgrounds = [u for u in held if u.length >= length]
    if len(backgrounds) < 2:
        raise ValueError(f"fewer than 2 held-out users with {length}+ posts: export more users")
    defaults = AdaptConfig()
    rng = np.random.default_rng(seed)
    out: list[Spliced] = []
    for attempt in range(200 * n):
        if len(out) == n:
            break
        a, b = backgrounds[rng.integers(len(backgrounds))], held[rng.integers(len(held))]
        if a is b:
            continue
        made = splice(rng, a, b, ("abrupt", "episode")[len(out) % 2], length, defaults.label_delay,
                      defaults.min_tv, defaults.quiet_tv)
        if made is not None:
            out.append(made)
    return out


@torch.no_grad()
def scores(net: TemporalNet, streams: list) -> list[np.ndarray]:
    """The drift score after every post of each stream (anything with probs, gaps, face)."""
    out = []
    for s in streams:
        x = torch.from_numpy(timeline_features(s.probs, s.gaps, s.face))[None]  # (1, T, 10)
        out.append(net(x)[0][0].numpy())
    return out


def detector(threshold: float) -> DetectorConfig:
    return replace(DetectorConfig(), threshold=threshold, recovery_threshold=0.3 * threshold, cusum_threshold=0.0)


def alarms(rows: list[np.ndarray], threshold: float) -> list[list[int]]:
    config, out = detector(threshold), []
    for row in rows:
        d, found = DriftDetector(config), []
        for t, s in enumerate(row.tolist()):
            if d.update(s) == "drift.started":
                found.append(t)
        out.append(found)
    return out


def volume(rows: list[np.ndarray], threshold: float) -> float:
    """Alarms per 1000 posts past the warm-up."""
    warm = DetectorConfig().warmup_posts
    posts = sum(max(len(r) - warm, 0) for r in rows)
    return 1000.0 * sum(map(len, alarms(rows, threshold))) / max(posts, 1)


def calibrate(rows: list[np.ndarray], target: float, iterations: int = 18) -> float:
    """The lowest threshold whose volume on ``rows`` is at most ``target`` (bisection on the logit)."""
    found = bisect(lambda threshold: volume(rows, threshold), lambda v: v <= target, 0.02, 0.9995, iterations,
                   to=lambda p: math.log(p / (1.0 - p)), back=lambda x: 1.0 / (1.0 + math.exp(-x)))
    return found[0] if found else 0.9995


def figures(net: TemporalNet, real: list, spliced: list[Spliced], target: float) -> dict:
    real_scores, spliced_scores = scores(net, real), scores(net, spliced)
    threshold = calibrate(real_scores, target)
    found = alarms(spliced_scores, threshold)
    delays, early = [], 0
    for s, a in zip(spliced, found):
        after = [t - s.start for t in a if t >= s.start]
        early += any(t < s.start for t in a)
        if after and after[0] < WINDOW:
            delays.append(after[0])
    return {"threshold": round(threshold, 4), "alarms_per_1000_real_posts": round(volume(real_scores, threshold), 3),
            "recall": round(len(delays) / len(spliced), 4),
            "delay_median": float(np.median(delays)) if delays else None,
            "delay_p90": float(np.percentile(delays, 90)) if delays else None,
            "alarmed_before_the_join": round(early / len(spliced), 4)}


def run(timelines: Path, candidate: Path, base: Path = BASE, target: float = 2.0, n_spliced: int = 300,
        length: int = 96) -> dict:
    data = load_timelines(timelines)
    real = [u for u in data.users if is_held_out(u.user)]
    spliced = spliced_set(data, n_spliced, length)
    base_net, _ = load_checkpoint(base)
    candidate_net, candidate_checkpoint = load_checkpoint(candidate)
    seen = candidate_checkpoint.get("training", {}).get("data", {})
    if seen and any(name != data.header.get("key_id") for name in seen.get("key_ids", [seen.get("key_id")])):
        # users are held out by their name's digest: under another key (or real ids) other users are
        # held out, some of them ones the candidate trained on, and its figures would flatter it
        raise TimelinesError(f"{candidate} (or a fine-tune it started from) trained on an export whose users are named "
                             f"with another pseudonym key (this one: {data.header.get('key_id') or 'real ids'}): "
                             "its held-out users would include users it trained on; benchmark it on an export "
                             "made with the same key")
    if seen and seen.get("sha256") != data.sha256:
        print(f"note: {candidate} was fine-tuned on another export ({seen.get('file')}) with the same pseudonym key: "
              "the users held out are the same, their posts since are new")
    return {
        "data": data.record(), "target_alarms_per_1000": target, "window": WINDOW, "length": length,
        "held_out_real": {"users": len(real), "posts": sum(u.length for u in real)},
        "spliced": {"streams": len(spliced), "abrupt": sum(s.kind == "abrupt" for s in spliced),
                    "episode": sum(s.kind == "episode" for s in spliced), "seed": SEED},
        "base": {"checkpoint": base.name, **figures(base_net, real, spliced, target)},
        "candidate": {"checkpoint": candidate.name, **figures(candidate_net, real, spliced, target)},
    }


def markdown(result: dict) -> str:
    d = result["data"]
    rows = "\n".join(
        f"| {name} (`{r['checkpoint']}`) | {r['threshold']} | {r['alarms_per_1000_real_posts']} | {r['recall']} | "
        f"{r['delay_median']} | {r['delay_p90']} | {r['alarmed_before_the_join']} |"
        for name, r in (("base", result["base"]), ("fine-tuned", result["candidate"])))
    return (
        f"Held-out users of `{d['file']}` (sha256 `{d['sha256'][:16]}…`): {result['held_out_real']['users']} users, "
        f"{result['held_out_real']['posts']} posts; {result['spliced']['streams']} spliced streams of "
        f"{result['length']} posts ({result['spliced']['abrupt']} abrupt, {result['spliced']['episode']} episodes, "
        f"seed {result['spliced']['seed']}). Both models calibrated to {result['target_alarms_per_1000']} alarms "
        f"per 1000 posts of the held-out users' real timelines; recall = an alarm within {result['window']} posts "
        "of the join.\n\n"
        "| model | threshold | alarms / 1000 real posts | recall | delay median | delay p90 | alarmed before the join |\n"
        "|---|---|---|---|---|---|---|\n" + rows + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.detection",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--timelines", type=Path, required=True)
    parser.add_argument("--candidate", type=Path, default=ADAPTED, help="the fine-tuned checkpoint")
    parser.add_argument("--base", type=Path, default=BASE, help="the checkpoint it was adapted from")
    parser.add_argument("--alarms-per-1000", type=float, default=2.0, help="alert volume both models are held to")
    parser.add_argument("--spliced", type=int, default=300, help="spliced streams of held-out users")
    parser.add_argument("--length", type=int, default=96, help="posts per spliced stream")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here too")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    try:
        result = run(args.timelines, args.candidate, args.base, args.alarms_per_1000, args.spliced, args.length)
    except TimelinesError as error:
        print(f"python -m benchmarks.detection: {error}", file=sys.stderr)
        return 2
    print(markdown(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0
