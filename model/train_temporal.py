"""Train the temporal model on synthetic timelines: ``python -m model.train_temporal [--steps N] [--seed S]
[--out PATH] [--smoke]``.

Every step draws a fresh batch of users from :mod:`model.synthetic` (one ``numpy`` generator seeded with
``--seed``; held-out evaluation uses seeds >= ``EVAL_SEED``, which training never touches), so there is
no epoch and nothing to overfit. The loss is the sum of

- **drift**: binary cross-entropy of the drift head against the causal drift label of
  :mod:`model.synthetic` (1 from the 4th post of a lasting change until 3 posts after it ends; transient
  1-3 post dips are 0), each step weighted by the label's weight (0 on the ambiguous posts right after
  a change starts or ends);
  ``--label-delay N`` labels lasting changes from their (N+1)th post instead (``--shift-label-scale``: how
  much later small shifts are labelled), ``--early-weight W`` weighs the first ``--early-span`` posts
  labelled 1 of each change W times (where a late rise costs detection delay), ``--kind-weights`` samples
  the kinds non-uniformly. temporal:3 is ``--init model/checkpoints/temporal-2.pt --lr 1e-3 --steps 2500
  --seed 3 --threads 1 --label-delay 1 --shift-label-scale 20 --early-weight 2 --kind-weights 1,1,1,1,1,1.5``;
  temporal:4 (served) is the same options from scratch, ``--seed 3 --steps 5000 --threads 1``: chosen over
  v3 and a seed-4 twin on streams of seed 30000 (``python -m benchmarks.fast_rules --seed 30000``), not on
  the published benchmark's;
- **next**: cross-entropy of ``next_dist[t]`` against the CNN probabilities of post t+1 (soft targets:
  what the service will actually observe).

Adam, linear warm-up then cosine decay, gradient clipping. The checkpoint (a few tens of kB) holds the
state dict, the :class:`~model.temporal.TemporalConfig` (input normalisation included), the training
config and a record of the run. ``--smoke`` trains a tiny run in a few seconds for CI.

``--family-share S`` mixes the sessions and days families' labelled windows into every short batch
(``model/families/training.py``), and with ``--family-long-pool N`` into every long batch too. Neither is
in a served model: the models they made were judged and not shipped (docs/detection_rules.md, the fourth
and fifteenth rounds).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F

from model.features import N_CLASSES
from model.synthetic import KINDS, LABEL_DELAY, MIN_OBSERVED_TV, Kind, Timeline, generate_dataset, generate_user, stack
from model.temporal import TemporalConfig, TemporalNet

CHECKPOINT = Path(__file__).resolve().parent / "checkpoints" / "temporal.pt"
EVAL_SEED = 10_000  # held-out data: seeds from here on; training uses one stream seeded with --seed


@dataclass
class TrainConfig:
    seed: int = 0
    steps: int = 5000
    batch_size: int = 64
    length: int = 128
    long_length: int = 384   # every long_every-th batch: long timelines, so the state does not drift on
    long_every: int = 4      # streams far longer than a training window (stable users must stay low)
    long_batch_size: int = 32
    lr: float = 3e-3
    min_lr: float = 1e-4
    warmup: int = 100
    grad_clip: float = 1.0
    drift_loss_weight: float = 1.0
    next_loss_weight: float = 1.0
    hidden_size: int = 48
    init: str = ""           # warm start: a checkpoint whose weights (and input normalisation) are the start
    label_delay: int = LABEL_DELAY    # a lasting change is labelled from its (label_delay + 1)th post
    shift_label_scale: float = 40.0   # a shift of delta: labelled from label_delay + round(scale * (0.35 - delta))
    early_weight: float = 1.0         # loss weight of the first early_span positive posts of each change
    early_span: int = 8
    kind_weights: tuple[float, ...] = ()  # sampling weight per KINDS entry (empty: uniform)
    family_share: float = 0.0  # share of each batch drawn from the other training families' windows (long ones: below)
    family_pool: int = 20000   # windows drawn once from those families (model/families/training.py)
    # long windows (long_length posts) of those families, the same share of each long batch; 0: long
    # batches are model.synthetic's only (a model that meets the families only in short windows learnt to
    # let its score climb on their long no-change users: docs/detection_rules.md)
    family_long_pool: int = 0


def drift_label_definition(config: TrainConfig | None = None) -> str:
    delay = config.label_delay if config else LABEL_DELAY
    scale = config.shift_label_scale if config else 40.0
    early = (f"; the first {config.early_span} positive posts of each change weigh {config.early_weight}x"
             if config and config.early_weight != 1.0 else "")
    return (f"1 from the {delay + 1}th post of a lasting change (abrupt, gradual: from the first post "
            f"with mix >= 0.5, episode of 8-30 posts) until {delay} posts after it ends; transient dips "
            f"of 1-3 posts and stable users are 0; the {delay} posts after a start or end have weight 0; "
            f"a shift of the negative share by delta (0.1-0.35) from {delay} + round({scale:g} * (0.35 - delta)) "
            f"posts after its start (see model/synthetic.py){early}")


def generator_params(config: TrainConfig) -> dict:
    sampling = dict(zip([k.value for k in KINDS], config.kind_weights)) if config.kind_weights else "uniform"
    return {"kinds": [k.value for k in KINDS], "kind_sampling": sampling, "length": config.length,
            "long_length": config.long_length, "long_every": config.long_every,
            "min_observed_tv": MIN_OBSERVED_TV, "face_rate": "Beta(17, 3) per user",
            "cnn_confusion": "model.synthetic.CONFUSION (~66% accurate)",
            **({"families": {"share_of_short_batches": config.family_share, "pool": config.family_pool,
                             "long_pool": config.family_long_pool,
                             "from": ["sessions", "days"], "labels": "model/families/training.py"}}
               if config.family_share else {})}


def losses(net: TemporalNet, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted drift BCE and next-post soft cross-entropy of one batch."""
    drift_logit, next_logits, _ = net.forward_logits(batch["features"])  # (B, T), (B, T, 7)
    weight = batch["weight"]
    bce = F.binary_cross_entropy_with_logits(drift_logit, batch["drift"], weight=weight, reduction="sum")
    drift_loss = bce / weight.sum().clamp_min(1.0)
    log_p = torch.log_softmax(next_logits[:, :-1], dim=-1)  # predicts post t+1 from posts 0..t
    next_loss = -(batch["probs"][:, 1:] * log_p).sum(-1).mean()
    return drift_loss, next_loss


def to_tensors(timelines: list[Timeline], early_weight: float = 1.0, early_span: int = 8) -> dict[str, torch.Tensor]:
    batch = stack(timelines)
    if early_weight != 1.0:  # the first posts labelled 1 after a 0: where detection is early or late
        drift, weight = batch["drift"], batch["weight"]
        onset = np.zeros_like(drift, dtype=bool)
        onset[:, 1:] = (drift[:, 1:] > 0.5) & (drift[:, :-1] < 0.5)
        early = np.zeros_like(onset)
        for k in range(early_span):
            early[:, k:] |= onset[:, :onset.shape[1] - k]
        early &= drift > 0.5
        batch["weight"] = np.where(early, weight * early_weight, weight).astype(np.float32)
    return {k: torch.from_numpy(v) for k, v in batch.items()}


def input_statistics(seed: int, length: int) -> tuple[list[float], list[float]]:
    """Per-feature mean and std over a reference draw: the fixed normalisation inside the net."""
    features = np.concatenate([t.features for t in generate_dataset(seed, 500, length)])
    std = np.maximum(features.std(axis=0), 1e-3)
    return [round(float(v), 6) for v in features.mean(axis=0)], [round(float(v), 6) for v in std]


def descend(net: torch.nn.Module, optimizer: torch.optim.Optimizer, schedule: torch.optim.lr_scheduler.LRScheduler,
            loss: torch.Tensor, grad_clip: float) -> None:
    """One optimisation step on ``loss``, gradients clipped to ``grad_clip`` (training and adaptation alike)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
    optimizer.step()
    schedule.step()


def train(config: TrainConfig, out: Path, log_every: int = 100) -> dict:
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    mean, std = input_statistics(config.seed + 1, config.length)
    net = TemporalNet(TemporalConfig(hidden_size=config.hidden_size, input_mean=mean, input_std=std))
    if config.init:  # fine-tune: same architecture and normalisation as the starting checkpoint
        start = torch.load(config.init, map_location="cpu", weights_only=True)
        net = TemporalNet(TemporalConfig(**start["config"]))
        net.load_state_dict(start["state_dict"])
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(config, s))
    started = time.perf_counter()
    recent: list[tuple[float, float]] = []
    first: tuple[float, float] | None = None
    windows: list = []
    long_windows: list = []
    if config.family_share > 0:  # the other training families (never the held-out one), labelled alike
        from model.families import KINDS as FAMILY_KINDS
        from model.families.training import pool

        windows = pool(config.seed, config.family_pool, config.length, FAMILY_KINDS, config.label_delay)
        if config.family_long_pool > 0:
            long_windows = pool(config.seed + 1, config.family_long_pool, config.long_length, FAMILY_KINDS,
                                config.label_delay)
        print(f"{len(windows) + len(long_windows)} family windows drawn in {time.perf_counter() - started:.0f}s",
              flush=True)
    for step in range(1, config.steps + 1):
        users = draw_batch(config, rng, step, windows, long_windows)
        drift_loss, next_loss = losses(net, to_tensors(users, config.early_weight, config.early_span))
        descend(net, optimizer, schedule, config.drift_loss_weight * drift_loss + config.next_loss_weight * next_loss,
                config.grad_clip)
        pair = (drift_loss.item(), next_loss.item())
        first = first or pair
        recent = (recent + [pair])[-100:]
        if step % log_every == 0 or step == config.steps:
            d, n = np.mean(recent, axis=0)
            print(f"step {step:5d}/{config.steps}  drift {d:.4f}  next {n:.4f}  "
                  f"lr {schedule.get_last_lr()[0]:.2e}  {time.perf_counter() - started:6.1f}s", flush=True)
    elapsed = time.perf_counter() - started
    final = np.mean(recent, axis=0)
    assert first is not None  # set at step 1
    record = {
        "seed": config.seed, "steps": config.steps, "time_seconds": round(elapsed, 1),
        "threads": torch.get_num_threads(),
        "first_losses": {"drift_bce": round(first[0], 4), "next_ce": round(first[1], 4)},
        "final_losses": {"drift_bce": round(float(final[0]), 4), "next_ce": round(float(final[1]), 4),
                         "averaged_over_last_steps": len(recent)},
        "drift_label": drift_label_definition(config),
        "generator": generator_params(config),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": net.state_dict(), "config": net.config.to_dict(),
                "train_config": asdict(config), "training": record}, out)
    print(f"saved {out} ({out.stat().st_size} bytes) in {elapsed:.1f}s", flush=True)
    return record


def draw_batch(config: TrainConfig, rng: np.random.Generator, step: int, windows: list, long_windows: list) -> list:
    """One step's users: fresh :mod:`model.synthetic` timelines, and ``family_share`` of the batch borrowed
    from the family windows of its length (short steps: ``windows``; every ``long_every``-th, a long one:
    ``long_windows``, when there are any)."""
    long = config.long_every > 0 and step % config.long_every == 0
    length, batch_size = (config.long_length, config.long_batch_size) if long else (config.length, config.batch_size)
    source = long_windows if long else windows
    borrowed = [] if not source else [
        source[int(i)] for i in rng.integers(0, len(source), int(round(batch_size * config.family_share)))]
    batch_size -= len(borrowed)
    if config.kind_weights:
        p = np.asarray(config.kind_weights, dtype=float) / sum(config.kind_weights)
        kinds = [KINDS[int(i)] for i in rng.choice(len(KINDS), size=batch_size, p=p)]
    else:
        kinds = [KINDS[int(rng.integers(len(KINDS)))] for _ in range(batch_size)]
    users = [generate_user(rng, kind, length, config.label_delay, config.shift_label_scale) for kind in kinds]
    return users + borrowed


def _lr_factor(config: TrainConfig, step: int) -> float:
    if step < config.warmup:
        return (step + 1) / config.warmup
    progress = min(1.0, (step - config.warmup) / max(1, config.steps - config.warmup))
    floor = config.min_lr / config.lr
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


# --- evaluation on held-out seeds (also used by the exporter and the tests) -------------------------

def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half)."""
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    _, first_index, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    mid_ranks = first_index + (counts + 1) / 2.0  # 1-based average rank of each tie group
    ranks[order] = np.repeat(mid_ranks, counts)
    positives = labels > 0.5
    n_pos, n_neg = positives.sum(), (~positives).sum()
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


@torch.no_grad()
def evaluate(net: TemporalNet, seed: int = EVAL_SEED, n_users: int = 500, length: int = 128) -> dict:
    """Held-out figures: drift AUC, next-post cross-entropy vs baselines, drift-prob trajectories."""
    timelines = generate_dataset(seed, n_users, length)
    batch = stack(timelines)
    drift, next_dist, _ = net(torch.from_numpy(batch["features"]))
    drift, next_dist = drift.numpy(), next_dist.numpy()  # (B, T), (B, T, 7)
    mask = batch["weight"] > 0
    probs = batch["probs"]
    running = np.cumsum(probs, axis=1) + 1.0 / N_CLASSES  # one uniform pseudo-post as prior
    running /= running.sum(axis=-1, keepdims=True)

    def cross_entropy(prediction: np.ndarray) -> float:
        return float(-(probs[:, 1:] * np.log(np.clip(prediction[:, :-1], 1e-7, 1.0))).sum(-1).mean())

    return {
        "held_out": {"seed": seed, "n_users": n_users, "length": length, "kinds": [k.value for k in KINDS]},
        "drift_auc": round(auc(drift[mask], batch["drift"][mask]), 4),
        "next_cross_entropy": {
            "model": round(cross_entropy(next_dist), 4),
            "running_mean_baseline": round(cross_entropy(running), 4),
            "repeat_last_post_baseline": round(cross_entropy(np.clip(probs, 1e-3, 1.0)), 4),
        },
        "drift_trajectories": trajectories(timelines, drift),
        "long_stable": long_stable(net, seed + 2),
    }


@torch.no_grad()
def long_stable(net: TemporalNet, seed: int, n_users: int = 50, length: int = 1024) -> dict:
    """Drift prob of stable users far past the training window: it must not creep up."""
    x = stack(generate_dataset(seed, n_users, length, kinds=(Kind.STABLE,)))["features"]
    drift = net(torch.from_numpy(x))[0].numpy()  # (B, T)
    windows = {"16-127": drift[:, 16:128], "128-511": drift[:, 128:512], "512-1023": drift[:, 512:]}
    return {"users": n_users, "seed": seed,
            **{name: {"mean": round(float(w.mean()), 3), "p95": round(float(np.percentile(w, 95)), 3)}
               for name, w in windows.items()}}


def trajectories(timelines: list[Timeline], drift: np.ndarray) -> dict:
    """Mean drift prob at offsets around each kind's change point (stable: over posts >= 16)."""
    def at(kind: Kind, anchor, offsets) -> dict:
        rows = [(i, anchor(t)) for i, t in enumerate(timelines) if t.kind is kind]
        out = {}
        for k in offsets:
            values = [drift[i, a + k] for i, a in rows if 0 <= a + k < drift.shape[1]]
            out[f"{k:+d}"] = round(float(np.mean(values)), 3)
        return out

    stable = np.concatenate([drift[i, 16:] for i, t in enumerate(timelines) if t.kind is Kind.STABLE])
    dips = [drift[i, c.start:cast(int, c.end) + 4].max() for i, t in enumerate(timelines) if t.kind is Kind.TRANSIENT
            for c in t.changes]
    offsets = (-1, 0, 2, 3, 4, 6, 10, 20)
    return {
        "stable": {"mean": round(float(stable.mean()), 3), "p95": round(float(np.percentile(stable, 95)), 3)},
        "transient_dip_max_within_dip_plus_3": {"mean": round(float(np.mean(dips)), 3),
                                                "p95": round(float(np.percentile(dips, 95)), 3)},
        "abrupt_from_start": at(Kind.ABRUPT, lambda t: t.changes[0].start, offsets),
        "gradual_from_start": at(Kind.GRADUAL, lambda t: t.changes[0].start, offsets + (30,)),
        "episode_from_start": at(Kind.EPISODE, lambda t: t.changes[0].start, offsets),
        "episode_from_end": at(Kind.EPISODE, lambda t: t.changes[0].end, (-1, 0, 2, 3, 4, 6, 10)),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a == "--timelines" or a.startswith("--timelines=") for a in argv):  # adapt to exported timelines
        from model.adapt import main as adapt
        return adapt(argv)
    parser = argparse.ArgumentParser(prog="python -m model.train_temporal", description=__doc__.split("\n\n")[0])
    parser.add_argument("--timelines", type=Path, default=None,
                        help="fine-tune on exported timelines instead (model/adapt.py; --help with it for its options)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps (default 5000; smoke 30)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help=f"checkpoint path (default {CHECKPOINT})")
    parser.add_argument("--hidden-size", type=int, default=48)
    parser.add_argument("--smoke", action="store_true", help="a tiny, fast run for CI (never the default path)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--init", type=Path, default=None, help="fine-tune from this checkpoint")
    parser.add_argument("--lr", type=float, default=TrainConfig.lr)
    parser.add_argument("--label-delay", type=int, default=LABEL_DELAY,
                        help=f"label a lasting change from its (N+1)th post (default {LABEL_DELAY})")
    parser.add_argument("--shift-label-scale", type=float, default=TrainConfig.shift_label_scale)
    parser.add_argument("--early-weight", type=float, default=TrainConfig.early_weight,
                        help="loss weight of the first --early-span positive posts of each change")
    parser.add_argument("--early-span", type=int, default=TrainConfig.early_span)
    parser.add_argument("--family-share", type=float, default=0.0,
                        help="share of each batch from the sessions and days families (model/families/training.py)")
    parser.add_argument("--family-pool", type=int, default=TrainConfig.family_pool,
                        help="family windows drawn once and sampled from")
    parser.add_argument("--family-long-pool", type=int, default=TrainConfig.family_long_pool,
                        help="long family windows (--family-share of each long batch); 0: long batches synthetic only")
    parser.add_argument("--kind-weights", type=str, default="",
                        help="comma-separated sampling weights, one per kind " + ",".join(k.value for k in KINDS))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # denormal activations late in training slow CPU LSTMs (docs/performance.md)
    if args.smoke:
        config = TrainConfig(seed=args.seed, steps=args.steps or 30, batch_size=16, length=64, warmup=5, long_every=0,
                             hidden_size=args.hidden_size)
        out = args.out or Path(tempfile.mkdtemp()) / "temporal-smoke.pt"
        train(config, out, log_every=10)
        return 0
    config = TrainConfig(seed=args.seed, steps=args.steps or TrainConfig.steps, hidden_size=args.hidden_size,
                         lr=args.lr, label_delay=args.label_delay, shift_label_scale=args.shift_label_scale,
                         early_weight=args.early_weight, early_span=args.early_span,
                         family_share=args.family_share, family_pool=args.family_pool,
                         family_long_pool=args.family_long_pool,
                         kind_weights=tuple(float(w) for w in args.kind_weights.split(",")) if args.kind_weights else (),
                         warmup=min(TrainConfig.warmup, max(1, (args.steps or TrainConfig.steps) // 20)),
                         init=str(args.init.relative_to(Path.cwd()) if args.init and args.init.is_relative_to(Path.cwd())
                                  else args.init or ""))
    out = args.out or CHECKPOINT
    train(config, out)
    from model.temporal import load_checkpoint
    net, _ = load_checkpoint(out)
    report = evaluate(net)
    print(f"held-out drift AUC {report['drift_auc']}  next CE {report['next_cross_entropy']}")
    print(f"trajectories {report['drift_trajectories']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
