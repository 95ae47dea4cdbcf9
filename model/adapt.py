"""Adapt the temporal model to a platform's own users without labels:
``python -m model.train_temporal --timelines FILE [--init CKPT] [--steps N] [--out PATH]``.

The file is an export (``emodrift timelines export``, docs/timelines.md): real users' per-post CNN
probabilities, face flags and gaps, and no label of any kind. Fine-tuning starts from the served
checkpoint (same architecture and input normalisation) and minimises the sum of

- **next**: the next-post cross-entropy on the real sequences (self-supervised: the target is the
  CNN output of the following post, as in :mod:`model.train_temporal`);
- **drift**: binary cross-entropy of the drift head on **spliced** sequences, whose ground truth is
  known by construction: a window of one user (the background) continued by a segment of another user
  (``abrupt``), or interrupted by 10-30 of the other user's posts before it resumes (``episode``),
  labelled 1 from ``label_delay`` posts after the join (and until ``label_delay`` posts after the end of
  an episode), the ``label_delay`` posts after each join weighing 0; and of unspliced **quiet** windows
  (no visible change: see :func:`quiet`), labelled 0. A splice is kept only when the two segments' mean
  CNN outputs differ by a total variation of at least ``min_tv``: joining two similar users is no change;
- **replay**: every ``synthetic_every``-th step is a batch of :mod:`model.synthetic` users with their own
  labels, so kinds that splicing cannot make (gradual changes, small shifts) are not forgotten.

Users are split by their pseudonym (:func:`is_held_out`, 20%): the fine-tune never sees the held-out
users, on which ``python -m benchmarks.detection --timelines FILE`` compares the base and adapted models.
The checkpoint records the data it saw (users, posts, date range, the file's sha256, the export's key
id), which ``python -m export temporal --checkpoint`` carries into the artifact's manifest.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from model.features import timeline_features
from model.synthetic import KINDS, generate_user
from model.temporal import TemporalNet, load_checkpoint
from model.train_temporal import descend, losses, to_tensors

BASE = Path(__file__).resolve().parent / "checkpoints" / "temporal-4.pt"  # the served temporal:4
ADAPTED = Path(__file__).resolve().parent / "checkpoints" / "temporal-adapted.pt"
HELD_OUT_PERCENT = 20


@dataclass
class UserTimeline:
    user: str
    probs: np.ndarray     # (T, 7) float32
    gaps: np.ndarray      # (T,) seconds
    face: np.ndarray      # (T,) bool
    created_at: list[str]
    # per post, the verdict people gave the alert it raised (the export's ``verdict`` column; None: none,
    # or an export from before the column)
    verdicts: list[str | None] = field(default_factory=list)

    @property
    def length(self) -> int:
        return int(self.probs.shape[0])

    def judged(self, window: slice, verdict: str) -> bool:
        return verdict in self.verdicts[window]


@dataclass
class Timelines:
    header: dict
    users: list[UserTimeline]
    sha256: str
    path: str

    def record(self) -> dict:
        """What a model trained on this file saw: counts, dates, the file's hash and the export's key id."""
        held = [u for u in self.users if is_held_out(u.user)]
        trained = [u for u in self.users if not is_held_out(u.user)]
        verdicts = [v for u in trained for v in u.verdicts if v]
        dates = sorted(d for u in self.users for d in (u.created_at[0], u.created_at[-1]))
        return {"file": Path(self.path).name, "sha256": self.sha256, "format_version": self.header.get("format_version"),
                "exported_at": self.header.get("exported_at"), "pseudonymised": self.header.get("pseudonymised"),
                "key_id": self.header.get("key_id"), "served_models": self.header.get("served_models"),
                "users": len(self.users), "posts": sum(u.length for u in self.users),
                "train_users": len(trained), "held_out_users": len(held),
                "train_posts": sum(u.length for u in trained), "held_out_posts": sum(u.length for u in held),
                "train_verdicts": {v: verdicts.count(v) for v in sorted(set(verdicts))},
                "held_out_rule": f"sha256(user)[:8] as an integer % 100 < {HELD_OUT_PERCENT}",
                "date_range": [dates[0], dates[-1]] if dates else None}


def is_held_out(user: str) -> bool:
    """The users kept from fine-tuning for the benchmark: 20% of pseudonyms, the same in every run.

    >>> sum(is_held_out(f"u_{i}") for i in range(1000))
    219
    """
    return int(hashlib.sha256(user.encode()).hexdigest()[:8], 16) % 100 < HELD_OUT_PERCENT


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as raw:
        for chunk in iter(lambda: raw.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verdicts(row: dict) -> list[str | None]:
    """A row's ``verdict`` column, one per post; an export from before it (or a column that does not
    fit the row: another length, not strings) reads as no verdicts, never letters of one."""
    column = row.get("verdict")
    if (not isinstance(column, list) or len(column) != row["n"]
            or not all(v is None or isinstance(v, str) for v in column)):
        return [None] * row["n"]
    return column


class TimelinesError(ValueError):
    """An export that cannot be used as asked: not one, unreadable, or named with another pseudonym key
    than the model it judges. The commands print it as one line and exit 2."""


def load_timelines(path: Path, min_posts: int = 2) -> Timelines:
    """An export's users with at least ``min_posts``, sorted by pseudonym (a user exported twice by SCAN:
    the last line wins)."""
    users: dict[str, UserTimeline] = {}
    try:
        with gzip.open(path, "rt") as handle:
            header = json.loads(handle.readline())
            if not isinstance(header, dict) or header.get("format") != "emodrift.timelines":
                raise TimelinesError(f"{path}: not an emodrift timelines export (its first line is no such header)")
            for line in handle:
                row = json.loads(line)
                if row["n"] < min_posts:
                    continue
                users[row["user"]] = UserTimeline(row["user"], np.asarray(row["probs"], np.float32),
                                                  np.asarray(row["gap_seconds"], np.float64),
                                                  np.asarray(row["face"], bool), row["created_at"],
                                                  _verdicts(row))
    except OSError as error:  # missing, unreadable, not gzip (gzip.BadGzipFile), truncated (EOFError is not one)
        raise TimelinesError(f"{path}: cannot read it as a gzip-compressed export: {error}") from None
    except (EOFError, ValueError, KeyError, TypeError) as error:
        if isinstance(error, TimelinesError):
            raise
        raise TimelinesError(f"{path}: not an emodrift timelines export ({type(error).__name__}: {error})") from None
    # by pseudonym, not in SCAN's order: the same users give the same fine-tune and the same splices
    return Timelines(header, [users[name] for name in sorted(users)], _sha256(path), str(path))


def total_variation(a: np.ndarray, b: np.ndarray) -> float:
    return 0.5 * float(np.abs(a.mean(axis=0) - b.mean(axis=0)).sum())


def quiet(probs: np.ndarray, max_tv: float) -> bool:
    """No visible change inside: the mean CNN outputs of the window's two halves agree within ``max_tv``
    (total variation). A window with a real change inside would otherwise be labelled 0; the filter is
    coarse (two halves of a few dozen posts differ by 0.1-0.2 by chance), which is why a platform whose
    users rarely change needs it little."""
    n = probs.shape[0]
    return total_variation(probs[:n // 2], probs[n // 2:]) <= max_tv


@dataclass
class Spliced:
    probs: np.ndarray   # (L, 7)
    gaps: np.ndarray    # (L,)
    face: np.ndarray    # (L,)
    drift: np.ndarray   # (L,) label
    weight: np.ndarray  # (L,)
    kind: str           # abrupt | episode
    start: int
    end: int | None


def splice(rng: np.random.Generator, background: UserTimeline, donor: UserTimeline, kind: str, length: int,
           label_delay: int, min_tv: float, quiet_tv: float, attempts: int = 8) -> Spliced | None:
    """A ``length``-post window of ``background`` with a segment of ``donor`` joined in at a random post
    (``abrupt``: to the end; ``episode``: 10-30 posts, then the background resumes); None when no
    window of these two users makes a quiet background and a visible change."""
    if background.length < length or donor.length < 12:
        return None
    for _ in range(attempts):
        a0 = int(rng.integers(0, background.length - length + 1))
        window = slice(a0, a0 + length)
        # a background is "no change" before the join: never a window people judged a real change
        if not quiet(background.probs[window], quiet_tv) or changed(background, window):
            continue
        start = int(rng.integers(16, length - (12 if kind == "abrupt" else 18)))  # 12+ posts after the join
        n = length - start if kind == "abrupt" else int(rng.integers(10, min(31, length - start - 4)))
        if donor.length < n:
            continue
        b0 = int(rng.integers(0, donor.length - n + 1))
        seg = slice(b0, b0 + n)
        if total_variation(background.probs[window], donor.probs[seg]) < min_tv:
            continue
        parts = [(background, a0, a0 + start), (donor, b0, b0 + n)]
        if kind == "episode":  # the background resumes where it left off
            parts.append((background, a0 + start, a0 + length - n))
        probs = np.concatenate([u.probs[i:j] for u, i, j in parts])  # (L, 7)
        face = np.concatenate([u.face[i:j] for u, i, j in parts])
        gaps = np.concatenate([u.gaps[i:j] for u, i, j in parts])
        gaps[start] = background.gaps[a0 + start]  # each join comes at the background's own pace
        if kind == "episode" and start + n < length:
            gaps[start + n] = background.gaps[a0 + start]
        gaps[0] = 0.0
        drift = np.zeros(length, np.float32)
        weight = np.ones(length, np.float32)
        end = start + n if kind == "episode" else None
        stop = length if end is None else min(length, end + label_delay)
        drift[start + label_delay:stop] = 1.0
        weight[start:start + label_delay] = 0.0
        if end is not None:
            weight[end:end + label_delay] = 0.0
        return Spliced(probs.astype(np.float32), gaps, face.astype(bool), drift, weight, kind, start, end)
    return None


@dataclass
class AdaptConfig:
    timelines: str = ""
    init: str = ""
    seed: int = 0
    steps: int = 600
    batch_size: int = 32
    length: int = 96
    lr: float = 1e-3
    min_lr: float = 2e-5
    warmup: int = 20
    grad_clip: float = 1.0
    label_delay: int = 1        # as the base (temporal:4 was trained with --label-delay 1)
    min_tv: float = 0.25        # a splice must move the mean CNN output by this much (total variation)
    quiet_tv: float = 0.2       # a background's two halves agree within this
    synthetic_every: int = 4    # every Nth step a model.synthetic batch (0: never)
    next_loss_weight: float = 1.0
    drift_loss_weight: float = 1.0

    def __post_init__(self) -> None:
        # every step synthetic (1) would never read the platform's users, and leave no loss to report
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if self.synthetic_every == 1 or self.synthetic_every < 0:
            raise ValueError(f"synthetic_every must be 0 (never) or at least 2, got {self.synthetic_every}")


def changed(user: UserTimeline, window: slice) -> bool:
    """Does the window hold an alert people judged a real change (``confirmed``, or ``not_actionable``:
    it changed, with nothing to do)?"""
    return user.judged(window, "confirmed") or user.judged(window, "not_actionable")


def real_weight(user: UserTimeline, window: slice, quiet_tv: float) -> float:
    """How much an unspliced window's "no change" label counts: people's verdicts first, then the quiet
    test. A window holding an alert confirmed as a real change (or one "not actionable": a change
    too) is no negative (it was used as one, a
    label against the people who judged it); one holding an alert judged a false alarm is, quiet or not
    (the pattern the model mistook for a change is what it should learn to leave alone).

    >>> probs = np.tile(np.eye(7, dtype=np.float32)[3], (10, 1)); probs[5:] = np.eye(7)[4]  # a change
    >>> u = UserTimeline("u", probs, np.zeros(10), np.ones(10, bool), [], [None] * 10)
    >>> real_weight(u, slice(0, 10), 0.2)
    0.0
    >>> u.verdicts[6] = "false_alarm"; real_weight(u, slice(0, 10), 0.2), real_weight(u, slice(0, 5), 0.2)
    (1.0, 1.0)
    >>> u.verdicts[6] = "confirmed"; real_weight(u, slice(0, 10), 0.2), real_weight(u, slice(0, 5), 0.2)
    (0.0, 1.0)
    """
    if changed(user, window):
        return 0.0
    if user.judged(window, "false_alarm"):
        return 1.0
    return 1.0 if quiet(user.probs[window], quiet_tv) else 0.0


def batch(rng: np.random.Generator, pool: list[UserTimeline], config: AdaptConfig) -> dict[str, torch.Tensor]:
    """Half spliced windows, half unspliced windows of the training users (``real`` marks the latter;
    their drift label is 0 and weighs 1 only when the window is quiet)."""
    long_enough = [u for u in pool if u.length >= config.length]
    rows: list[tuple[np.ndarray, ...]]
    rows, real = [], []
    while len(rows) < config.batch_size // 2:
        a, b = rng.choice(len(long_enough)), rng.choice(len(pool))
        if pool[b] is long_enough[a]:
            continue
        made = splice(rng, long_enough[a], pool[b], "abrupt" if rng.random() < 0.5 else "episode",
                      config.length, config.label_delay, config.min_tv, config.quiet_tv)
        if made is not None:
            rows.append((made.probs, made.gaps, made.face, made.drift, made.weight))
            real.append(0.0)
    while len(rows) < config.batch_size:
        user = long_enough[rng.choice(len(long_enough))]
        a0 = int(rng.integers(0, user.length - config.length + 1))
        w = slice(a0, a0 + config.length)
        gaps = user.gaps[w].copy()
        gaps[0] = 0.0
        label_weight = real_weight(user, w, config.quiet_tv)
        rows.append((user.probs[w], gaps, user.face[w], np.zeros(config.length, np.float32),
                     np.full(config.length, label_weight, np.float32)))
        real.append(1.0)
    features = np.stack([timeline_features(p, g, f) for p, g, f, _, _ in rows])  # (B, L, 10)
    return {"features": torch.from_numpy(features), "probs": torch.from_numpy(np.stack([r[0] for r in rows])),
            "drift": torch.from_numpy(np.stack([r[3] for r in rows])),
            "weight": torch.from_numpy(np.stack([r[4] for r in rows])),
            "real": torch.tensor(real)}


def adapt_losses(net: TemporalNet, data: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Drift BCE over every row (spliced and quiet), next-post cross-entropy over the real rows only."""
    drift_logit, next_logits, _ = net.forward_logits(data["features"])  # (B, L), (B, L, 7)
    weight = data["weight"]
    drift_loss = F.binary_cross_entropy_with_logits(drift_logit, data["drift"], weight=weight,
                                                    reduction="sum") / weight.sum().clamp_min(1.0)
    log_p = torch.log_softmax(next_logits[:, :-1], dim=-1)  # post t+1 from posts 0..t
    per_row = -(data["probs"][:, 1:] * log_p).sum(-1).mean(-1)  # (B,)
    real = data["real"]
    next_loss = (per_row * real).sum() / real.sum().clamp_min(1.0)
    return drift_loss, next_loss


def names_trained_on(data: Timelines, base: dict) -> list[str | None]:
    """The pseudonym keys (their ids; None: real ids) of every export this model and the fine-tunes it
    started from trained on: the benchmark holds users out by their names, so each must be the
    benchmark's (a chain of fine-tunes under two keys held out users the first had trained on)."""
    before = base.get("training", {}).get("data", {})
    inherited = before.get("key_ids", [before.get("key_id")]) if before else []
    return list(dict.fromkeys([data.header.get("key_id"), *inherited]))


def trainable(data: Timelines, config: AdaptConfig) -> list[UserTimeline]:
    """The users the fine-tune reads (not held out); TimelinesError when fewer than 4 have a window."""
    train_users = [u for u in data.users if not is_held_out(u.user)]
    if sum(u.length >= config.length for u in train_users) < 4:
        raise TimelinesError(f"{config.timelines}: fewer than 4 training users with {config.length}+ posts; "
                             "export more users or pass a smaller --length")
    return train_users


def adapt(config: AdaptConfig, out: Path, log_every: int = 50, data: Timelines | None = None) -> dict:
    data = data or load_timelines(Path(config.timelines))
    train_users = trainable(data, config)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    net, base = load_checkpoint(config.init or BASE)
    net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)

    def factor(step: int) -> float:
        if step < config.warmup:
            return (step + 1) / config.warmup
        progress = min(1.0, (step - config.warmup) / max(1, config.steps - config.warmup))
        floor = config.min_lr / config.lr
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    base_train = base.get("train_config", {})
    started = time.perf_counter()
    recent: list[tuple[float, float]] = []
    first = None
    for step in range(1, config.steps + 1):
        if config.synthetic_every and step % config.synthetic_every == 0:
            users = [generate_user(rng, KINDS[int(rng.integers(len(KINDS)))], 128, config.label_delay,
                                   float(base_train.get("shift_label_scale", 40.0))) for _ in range(config.batch_size)]
            drift_loss, next_loss = losses(net, to_tensors(users))
        else:
            drift_loss, next_loss = adapt_losses(net, batch(rng, train_users, config))
            pair = (drift_loss.item(), next_loss.item())
            first = first or pair
            recent = (recent + [pair])[-50:]
        descend(net, optimizer, schedule, config.drift_loss_weight * drift_loss + config.next_loss_weight * next_loss,
                config.grad_clip)
        if step % log_every == 0 or step == config.steps:
            d, n = np.mean(recent, axis=0)
            print(f"step {step:4d}/{config.steps}  drift {d:.4f}  next {n:.4f}  {time.perf_counter() - started:6.1f}s",
                  flush=True)
    final = np.mean(recent, axis=0)
    assert first is not None  # set by the first step on the training users
    record: dict[str, Any] = {
        "adapted_from": {"checkpoint": Path(config.init or BASE).name, "sha256": _sha256(Path(config.init or BASE))},
        "data": {**data.record(), "key_ids": names_trained_on(data, base)},
        "seed": config.seed, "steps": config.steps, "time_seconds": round(time.perf_counter() - started, 1),
        "first_losses": {"drift_bce": round(first[0], 4), "next_ce": round(first[1], 4)},
        "final_losses": {"drift_bce": round(float(final[0]), 4), "next_ce": round(float(final[1]), 4),
                         "averaged_over_last_steps": len(recent)},
        "drift_label": (f"spliced windows of {config.length} posts (abrupt or a 10-30 post episode of another "
                        f"user, mean-output TV >= {config.min_tv}): 1 from {config.label_delay} posts after the "
                        f"join; unspliced quiet windows (halves within TV {config.quiet_tv}): 0; "
                        f"every {config.synthetic_every}th step a model.synthetic batch with its own labels"),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": net.state_dict(), "config": net.config.to_dict(), "train_config": asdict(config),
                "training": record}, out)
    seen = record["data"]
    print(f"saved {out} ({out.stat().st_size} bytes): trained on {seen['train_users']} users' "
          f"{seen['train_posts']} posts (verdicts {seen['train_verdicts'] or 'none'}), "
          f"{seen['held_out_users']} users held out, {seen['date_range']}", flush=True)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.train_temporal",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--timelines", type=Path, required=True, help="an export (emodrift timelines export)")
    parser.add_argument("--init", type=Path, default=BASE, help="the checkpoint to adapt (default: the served one)")
    parser.add_argument("--out", type=Path, default=ADAPTED)
    parser.add_argument("--steps", type=int, default=AdaptConfig.steps)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=AdaptConfig.lr)
    parser.add_argument("--length", type=int, default=AdaptConfig.length, help="posts per training window")
    parser.add_argument("--synthetic-every", type=int, default=AdaptConfig.synthetic_every,
                        help="every Nth step a model.synthetic batch, so the base's training is not forgotten (0: never)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    try:
        config = AdaptConfig(timelines=str(args.timelines), init=str(args.init), seed=args.seed, steps=args.steps,
                             lr=args.lr, length=args.length, synthetic_every=args.synthetic_every,
                             warmup=min(AdaptConfig.warmup, max(1, args.steps // 10)))
    except ValueError as e:
        parser.error(str(e))
    try:
        data = load_timelines(args.timelines)
        trainable(data, config)  # before the process-wide settings below
    except TimelinesError as error:
        print(f"python -m model.train_temporal: {error}", file=sys.stderr)
        return 2
    # process-wide settings, made only once the run will go ahead (flushing denormals changes every float
    # operation in the process after it)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    adapt(config, args.out, data=data)
    return 0

