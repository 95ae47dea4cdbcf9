"""The manifest that sits beside every exported model: ``model_repository/<name>/<version>/manifest.json``.

The layout follows NVIDIA Triton's model repository (numeric version folders, ``model.onnx`` inside),
so the same files can be served by Triton. The manifest is what the service reads to know how to feed
the model: its inputs and outputs, labels, preprocessing, where the weights came from, and the parity
figures measured when it was exported.
"""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parent.parent / "model_repository"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class VersionExists(FileExistsError):
    """The version is already exported: a tag names one set of weights for good (users' stored states are
    continued by whatever weights the tag serves), so it is rewritten only on purpose (``--replace``)."""


def version_dir(name: str, version: int, repository: Path = REPOSITORY, *, replace: bool = False) -> Path:
    out = repository / name / str(version)
    if (out / "manifest.json").exists() and not replace:
        raise VersionExists(f"{name}:{version} exists ({out}); a version's weights never change under its tag, "
                            f"since users' stored states are continued by them: export as "
                            f"--version {next_version(name, repository)}, or pass --replace to regenerate this one")
    out.mkdir(parents=True, exist_ok=True)
    return out


def next_version(name: str, repository: Path = REPOSITORY) -> int:
    """The version after the highest exported one (1 for the first); a folder an export left without its
    manifest is no version (model_repository.versions), so the next export takes it again."""
    from service.model_repository import versions

    return 1 + max(versions(repository, name), default=0)


def write_manifest(out_dir: Path, manifest: dict[str, Any]) -> Path:
    """Write manifest.json next to model.onnx, adding its sha256 and the exporting toolchain."""
    model_path = out_dir / manifest.get("file", "model.onnx")
    full = {
        "format": "onnx",
        "file": model_path.name,
        **manifest,
        "sha256": sha256_of(model_path),
        "size_bytes": model_path.stat().st_size,
        "exported_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "toolchain": _toolchain(),
    }
    path = out_dir / "manifest.json"
    path.write_text(json.dumps(full, indent=2, sort_keys=False) + "\n")
    from export import triton  # the model's Triton config follows its manifests

    triton.write_config(out_dir.parent)
    return path


def _toolchain() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for module in ("torch", "onnx", "onnxruntime", "numpy"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:  # pragma: no cover - the train extra brings them all
            pass
    return versions
