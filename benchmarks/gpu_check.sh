#!/usr/bin/env bash
# The GPU check: run as is from the repository root of a machine with an NVIDIA GPU,
#
#     bash benchmarks/gpu_check.sh
#
# in under 8 minutes. It (1) builds or reuses .venv (`make venv`), (2) puts onnxruntime-gpu in place of
# onnxruntime (both wheels install the same `onnxruntime` module; see the `gpu` extra in pyproject.toml),
# (3) compares every model in model_repository/ on CUDA against the CPU (benchmarks/gpu_parity.py: the
# largest absolute difference per model, failing past GPU_CHECK_TOLERANCE), (4) runs the load benchmark's
# short mode with EMODRIFT_PROVIDER=cuda (benchmarks/load.py --quick) while nvidia-smi samples the GPU's
# utilisation, and prints posts/s and that utilisation. With $OUT set, the results land in
# $OUT/gpu_check.json (plus the parity and load figures beside it).
#
# Without a GPU (no working nvidia-smi) it says so and runs its CPU fallback: no onnxruntime-gpu, parity
# of the CPU with and without graph optimisation, the load benchmark with EMODRIFT_PROVIDER=cpu. The
# test suite runs that path (tests/test_gpu_check.py).
#
# Knobs (environment): GPU_CHECK_SECONDS (the saturation phase, default 15), GPU_CHECK_WORKERS (the
# service's uvicorn workers, default 2: image decoding is CPU work, so a many-core GPU machine feeds
# the GPU better with more), GPU_CHECK_TOLERANCE
# (default 1e-3), GPU_CHECK_PYTHON (an interpreter with the project's dependencies, used instead of
# `make venv`; the modules run from this checkout, which need not be installed), GPU_CHECK_WHEELS (a folder of wheels installed with --no-index --no-deps in place of the PyPI
# download, for a machine that cannot reach PyPI: onnxruntime-gpu and whatever dependencies that
# interpreter lacks), GPU_CHECK_FORCE_CPU=1 (the fallback even where a GPU is present).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
started=$(date +%s)
seconds=${GPU_CHECK_SECONDS:-15}
workers=${GPU_CHECK_WORKERS:-2}
tolerance=${GPU_CHECK_TOLERANCE:-1e-3}
out=${OUT:-}
work=$(mktemp -d)
sampler=""
cleanup() {
  if [ -n "$sampler" ]; then kill "$sampler" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n== %s (%ds)\n' "$1" $(($(date +%s) - started)); }

if [ "${GPU_CHECK_FORCE_CPU:-0}" != 1 ] && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  gpu=1
  nvidia-smi -L
else
  gpu=0
  echo "no NVIDIA GPU here (nvidia-smi missing or sees no device): running the CPU fallback path"
fi

step "environment"
if [ -n "${GPU_CHECK_PYTHON:-}" ]; then
  py=$GPU_CHECK_PYTHON
else
  timeout 240 make venv
  py=.venv/bin/python
fi
"$py" --version

if [ "$gpu" = 1 ]; then
  step "onnxruntime-gpu in place of onnxruntime"
  "$py" -m pip uninstall -y -q onnxruntime onnxruntime-gpu >/dev/null 2>&1 || true
  if [ -n "${GPU_CHECK_WHEELS:-}" ]; then
    timeout 120 "$py" -m pip install -q --no-index --no-deps --force-reinstall "$GPU_CHECK_WHEELS"/*.whl
  else
    # the version the GPU image ships (constraints.txt), not whatever is newest
    timeout 120 "$py" -m pip install -q --force-reinstall --no-deps -c constraints.txt onnxruntime-gpu
  fi
  provider=cuda
  parity_mode=()
else
  provider=cpu
  parity_mode=(--reference-only)
fi
"$py" -c 'import onnxruntime as ort; print("onnxruntime", ort.__version__, ort.get_available_providers())'

step "parity of every model in model_repository/ (tolerance $tolerance)"
parity_status=0
timeout 90 "$py" -m benchmarks.gpu_parity --tolerance "$tolerance" "${parity_mode[@]}" \
  --json "$work/parity.json" || parity_status=$?

step "load benchmark, EMODRIFT_PROVIDER=$provider, $workers worker(s), ${seconds} s at saturation"
if [ "$gpu" = 1 ]; then
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -lms 500 \
    > "$work/gpu.csv" 2>/dev/null &
  sampler=$!
fi
load_status=0
timeout 180 "$py" -m benchmarks.load --quick --skip-naive --provider "$provider" --seconds "$seconds" \
  --workers "$workers" --json "$work/load.json" || load_status=$?
if [ -n "$sampler" ]; then
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  sampler=""
fi

step "summary"
"$py" - "$work" "$gpu" "$provider" "$parity_status" "$load_status" "$(($(date +%s) - started))" <<'PY'
import json, sys
from pathlib import Path

work, gpu, provider, parity_status, load_status, took = sys.argv[1:]
work = Path(work)
summary = {"gpu": gpu == "1", "provider": provider, "parity_ok": parity_status == "0",
           "load_ok": load_status == "0", "seconds": int(took)}
if (work / "parity.json").exists():
    parity = json.loads((work / "parity.json").read_text())
    summary["parity_max_abs_diff"] = {m["model"]: m["max_abs_diff"] for m in parity["models"]}
if (work / "load.json").exists():
    load = json.loads((work / "load.json").read_text())
    sat = load["image"]["sat"]
    summary["posts_per_s"] = sat["rate_per_s"]
    summary["workers"] = load["settings"]["workers"]
    print(f"posts/s at saturation (1080x1080 JPEG with a face, EMODRIFT_PROVIDER={provider}): {sat['rate_per_s']}")
samples = []
if (work / "gpu.csv").exists():
    for line in (work / "gpu.csv").read_text().splitlines():
        try:
            util, mem = (float(v) for v in line.split(","))
        except ValueError:
            continue
        samples.append((util, mem))
if samples:
    utils = [u for u, _ in samples]
    summary["gpu_utilisation_percent"] = {"mean": round(sum(utils) / len(utils), 1), "max": max(utils),
                                          "samples": len(utils)}
    summary["gpu_memory_used_mib_max"] = max(m for _, m in samples)
    print(f"GPU utilisation during the load run: mean {summary['gpu_utilisation_percent']['mean']}%, "
          f"max {max(utils):.0f}% ({len(utils)} nvidia-smi samples, every 0.5 s)")
else:
    summary["gpu_utilisation_percent"] = None
    print("GPU utilisation: n/a (no GPU sampled)")
(work / "gpu_check.json").write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps(summary))
PY

if [ -n "$out" ]; then
  mkdir -p "$out"
  for f in gpu_check.json parity.json load.json gpu.csv; do
    if [ -f "$work/$f" ]; then cp "$work/$f" "$out/"; fi
  done
  echo "results in $out/gpu_check.json"
fi

if [ "$parity_status" != 0 ] || [ "$load_status" != 0 ]; then
  echo "gpu_check: FAILED (parity exit $parity_status, load benchmark exit $load_status)" >&2
  exit 1
fi
echo "gpu_check: ok ($provider, $(($(date +%s) - started)) s)"
