"""``python -m benchmarks.gpu_parity``: every model in model_repository/, CUDA against the CPU.

For each ``<name>/<version>`` the committed ONNX file is opened twice, on onnxruntime's
CUDAExecutionProvider and on its CPUExecutionProvider, fed the same seeded inputs built from the
manifest's declared inputs (uniform in [-1, 1], the range of the normalised images and the LSTM state),
and every output is compared: the largest absolute difference per model is printed, and the run fails
when one exceeds ``--tolerance``. A CUDA session that onnxruntime silently placed on the CPU (its CUDA
libraries missing) is a failure too, not a pass.

Without CUDA (``--reference-only``, what benchmarks/gpu_check.sh runs on a machine with no GPU) the
second session is the CPU with graph optimisations off, so the same path still runs end to end and
compares two real executions of each model.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from service import model_repository
from service.inference import load_cuda_libraries

ROOT = Path(__file__).resolve().parent.parent
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
BATCH = 8  # the size given to a dynamic batch dimension (-1 or a name such as "N")


@dataclass(frozen=True)
class Parity:
    model: str  # "<name>:<version>"
    provider: str  # the provider the compared session really ran on
    max_abs_diff: float
    per_output: dict[str, float]
    ok: bool


def inputs_for(manifest: dict[str, Any], seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded float32 inputs with the manifest's declared shapes (dynamic dimensions set to BATCH)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in manifest["inputs"]:
        if spec.get("dtype", "float32") != "float32":
            raise ValueError(f"{manifest['name']}: input {spec['name']} is {spec['dtype']}, not float32")
        shape = [d if isinstance(d, int) and d > 0 else BATCH for d in spec["shape"]]
        feeds[spec["name"]] = rng.uniform(-1.0, 1.0, shape).astype(np.float32)
    return feeds


def session(path: Path, providers: list[str], optimize: bool = True) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    return ort.InferenceSession(str(path), options, providers=providers)


def compare(artifact: model_repository.Artifact, tolerance: float, reference_only: bool) -> Parity:
    feeds = inputs_for(artifact.manifest)
    cpu = session(artifact.model_path, [CPU])
    if reference_only:
        other = session(artifact.model_path, [CPU], optimize=False)
    else:
        other = session(artifact.model_path, [CUDA, CPU])
    names = [o.name for o in cpu.get_outputs()]
    expected = cpu.run(names, feeds)
    got = other.run(names, feeds)
    per_output = {n: float(np.max(np.abs(e - g))) if e.size else 0.0 for n, e, g in zip(names, expected, got)}
    worst = max(per_output.values())
    placed = other.get_providers()[0]
    on_wanted = reference_only or placed == CUDA
    return Parity(artifact.tag, placed if not reference_only else f"{CPU} (no graph optimisation)",
                  worst, per_output, bool(on_wanted and worst <= tolerance))


def all_artifacts(repository: Path) -> list[model_repository.Artifact]:
    names = sorted(p.name for p in repository.iterdir() if p.is_dir())
    return [model_repository.load(repository, name, version)
            for name in names for version in model_repository.versions(repository, name)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_parity", description=__doc__.splitlines()[0])
    parser.add_argument("--repository", type=Path, default=ROOT / "model_repository")
    parser.add_argument("--tolerance", type=float, default=1e-3,
                        help="largest absolute difference allowed on any output (float32 kernels differ "
                             "in summation order between providers, never by this much)")
    parser.add_argument("--reference-only", action="store_true",
                        help="no GPU: compare the CPU with and without graph optimisation instead")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if not args.reference_only and CUDA not in ort.get_available_providers():
        print(f"onnxruntime {ort.__version__} offers {ort.get_available_providers()}: no {CUDA}", file=sys.stderr)
        return 2
    if not args.reference_only:
        load_cuda_libraries()  # as the service does before its CUDA session (service/inference.py)
    results = [compare(a, args.tolerance, args.reference_only) for a in all_artifacts(args.repository)]
    for r in results:
        print(f"{'ok  ' if r.ok else 'FAIL'} {r.model:<16} on {r.provider}: max abs diff {r.max_abs_diff:.3g}")
    if args.json:
        args.json.write_text(json.dumps({"onnxruntime": ort.__version__, "tolerance": args.tolerance,
                                         "reference_only": args.reference_only,
                                         "models": [asdict(r) for r in results]}, indent=2) + "\n")
    return 0 if results and all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
