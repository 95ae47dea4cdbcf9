"""``python -m export temporal``: the temporal model's single LSTM step as ONNX, parity-checked.

Writes ``<out>/temporal/<version>/model.onnx`` (weights embedded, one file) and ``manifest.json``. The
graph is one post per user::

    x (N, 10) raw features, h (N, H), c (N, H)  ->  drift_probability (N,), next_distribution (N, 7),
                                                    h_out (N, H), c_out (N, H)

with a dynamic batch axis N; zero h and c are the initial state of a new user. Parity: held-out
timelines are stepped one post at a time through onnxruntime and compared with the full-sequence
PyTorch forward; the export fails if the max abs difference exceeds ``PARITY_TOLERANCE``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from export import score_profile
from export.manifest import REPOSITORY, VersionExists, next_version, sha256_of, version_dir, write_manifest
from model import features
from model.synthetic import generate_dataset, stack
from model.temporal import TemporalNet, load_checkpoint
from model.train_temporal import CHECKPOINT, EVAL_SEED, evaluate
from service import model_repository

NAME = "temporal"
INPUTS = ("x", "h", "c")
OUTPUTS = ("drift_probability", "next_distribution", "h_out", "c_out")
PARITY_TOLERANCE = 1e-5
PARITY_SEED = EVAL_SEED + 1


class _Step(nn.Module):
    def __init__(self, net: TemporalNet):
        super().__init__()
        self.net = net

    def forward(self, x, h, c):
        return self.net.step(x, h, c)


def export_onnx(net: TemporalNet, path: Path) -> None:
    hidden = net.config.hidden_size
    example = (torch.zeros(2, net.config.n_features), torch.zeros(2, hidden), torch.zeros(2, hidden))
    axes = {name: {0: "batch"} for name in INPUTS + OUTPUTS}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(_Step(net).eval(), example, str(path), input_names=list(INPUTS),
                          output_names=list(OUTPUTS), dynamic_axes=axes, opset_version=17, dynamo=False)


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@torch.no_grad()
def parity(net: TemporalNet, path: Path, n_users: int = 32, length: int = 128) -> dict:
    """Step held-out timelines through onnxruntime one post at a time vs the PyTorch full sequence.

    The headline compares every step's drift_probability, next_distribution and h; the cell state c is
    an unbounded accumulator (|c| reaches ~50), so its final value is compared relative to max(1, |c|).
    """
    x = stack(generate_dataset(PARITY_SEED, n_users, length))["features"]  # (B, T, 10)
    drift_ref, next_ref, (_, c_ref) = net(torch.from_numpy(x))
    h_ref, _ = net.lstm(net._normalise(torch.from_numpy(x)))  # (B, T, H): h after every post
    runner = session(path)
    h = np.zeros((n_users, net.config.hidden_size), dtype=np.float32)
    c = np.zeros_like(h)
    drift, nxt = np.empty((n_users, length), np.float32), np.empty((n_users, length, features.N_CLASSES), np.float32)
    hs = np.empty((n_users, length, net.config.hidden_size), np.float32)
    for t in range(length):
        drift[:, t], nxt[:, t], h, c = runner.run(None, {"x": x[:, t], "h": h, "c": c})
        hs[:, t] = h
    diffs = {
        "drift_probability": float(np.abs(drift - drift_ref.numpy()).max()),
        "next_distribution": float(np.abs(nxt - next_ref.numpy()).max()),
        "h_every_step": float(np.abs(hs - h_ref.numpy()).max()),
    }
    c_abs = np.abs(c - c_ref.numpy())
    return {"onnx_step_vs_torch_sequence_max_abs": max(diffs.values()), "per_output": diffs,
            "c_final_max_abs": float(c_abs.max()),
            "c_final_max_rel": float((c_abs / np.maximum(1.0, np.abs(c_ref.numpy()))).max()),
            "users": n_users, "posts": length, "seed": PARITY_SEED, "tolerance": PARITY_TOLERANCE,
            "runtime": f"onnxruntime {ort.__version__} CPUExecutionProvider"}


def tensor_spec(name: str, hidden: int) -> dict:
    shapes = {"x": ["N", features.N_FEATURES], "h": ["N", hidden], "c": ["N", hidden],
              "drift_probability": ["N"], "next_distribution": ["N", features.N_CLASSES],
              "h_out": ["N", hidden], "c_out": ["N", hidden]}
    return {"name": name, "dtype": "float32", "shape": shapes[name]}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m export temporal", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=CHECKPOINT)
    parser.add_argument("--version", type=int, default=None, help="numeric version (default: the next free one)")
    parser.add_argument("--replace", action="store_true", help="rewrite an existing version (make export's regeneration)")
    parser.add_argument("--out", type=Path, default=REPOSITORY, help="model repository root (default %(default)s)")
    parser.add_argument("--eval-users", type=int, default=1000)
    args = parser.parse_args(argv)
    args.version = next_version(NAME, args.out) if args.version is None else args.version
    try:
        out_dir = version_dir(NAME, args.version, args.out, replace=args.replace)
    except VersionExists as error:
        print(f"export temporal: {error}", file=sys.stderr)
        return 2
    try:
        net, checkpoint = load_checkpoint(args.checkpoint)
    except (OSError, RuntimeError, KeyError, ValueError) as error:  # missing, a directory, not a checkpoint
        print(f"export temporal: cannot read {args.checkpoint} as a temporal checkpoint: {error}", file=sys.stderr)
        return 2
    torch.set_num_threads(2)
    torch.set_flush_denormal(True)
    path = out_dir / "model.onnx"
    export_onnx(net, path)
    figures = parity(net, path)
    print(f"parity: max abs {figures['onnx_step_vs_torch_sequence_max_abs']:.2e} {figures['per_output']}")
    if max(figures["onnx_step_vs_torch_sequence_max_abs"], figures["c_final_max_rel"]) > PARITY_TOLERANCE:
        print(f"parity above {PARITY_TOLERANCE}: not writing the manifest", file=sys.stderr)
        return 1
    hidden = net.config.hidden_size
    evaluation = evaluate(net, n_users=args.eval_users)
    manifest = {
        "name": NAME,
        "version": args.version,
        "inputs": [tensor_spec(name, hidden) for name in INPUTS],
        "outputs": [tensor_spec(name, hidden) for name in OUTPUTS],
        "labels": list(features.LABELS),
        "features": features.manifest_entry(),
        "hidden_size": hidden,
        "state": {"initial": "zeros", "tensors": ["h", "c"], "dtype": "float32",
                  "bytes_per_user": 2 * hidden * 4},
        "outputs_meaning": {
            "drift_probability": "P(posts up to this one come from a lasting change away from the user's baseline)",
            "next_distribution": "expected CNN probabilities of the user's next post",
        },
        "config": checkpoint["config"],
        "training": {**checkpoint["training"], "train_config": checkpoint["train_config"]},
        "source": {"checkpoint": _relative(args.checkpoint), "checkpoint_sha256": sha256_of(args.checkpoint),
                   "code": "model/temporal.py, model/train_temporal.py, model/synthetic.py"},
        "parity": figures,
        "evaluation": evaluation,
    }
    written = write_manifest(out_dir, manifest)
    # the drift score's per-age profile on users who never change, measured through the service's path
    artifact = model_repository.load(args.out, NAME, args.version)
    score_profile.write(out_dir, score_profile.measure(score_profile.served(artifact)))
    print(f"wrote {path} ({path.stat().st_size} bytes) and {written}")
    print(f"held-out drift AUC {evaluation['drift_auc']}  next CE {evaluation['next_cross_entropy']}")
    return 0


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPOSITORY.parent))
    except ValueError:
        return str(path)
