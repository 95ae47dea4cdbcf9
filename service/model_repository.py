"""Reads ``model_repository/<name>/<version>/{model.onnx,manifest.json}`` (Triton's layout).

The manifest says how to feed the model; its sha256 is checked at load so a half-copied or edited
artifact is refused at start-up rather than scoring posts wrongly.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ArtifactError(RuntimeError):
    """The repository has no usable version of a model."""


@dataclass(frozen=True)
class Artifact:
    name: str
    version: int
    model_path: Path
    manifest: dict[str, Any]

    @property
    def tag(self) -> str:
        return f"{self.name}:{self.version}"


def versions(repository: Path, name: str) -> list[int]:
    """The exported versions: numeric folders with a manifest. An export that failed part-way leaves its
    folder without one (written last); counted, it became "the highest version" and stopped the start."""
    folder = repository / name
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir()
                  if p.is_dir() and p.name.isdigit() and (p / "manifest.json").is_file())


def load(repository: Path, name: str, version: int | None = None) -> Artifact:
    available = versions(repository, name)
    if not available:
        raise ArtifactError(f"no versions of {name!r} under {repository}")
    chosen = max(available) if version is None else version
    if chosen not in available:
        raise ArtifactError(f"{name!r} has versions {available}, not {chosen}")
    folder = repository / name / str(chosen)
    manifest = json.loads((folder / "manifest.json").read_text())
    model_path = folder / manifest.get("file", "model.onnx")
    digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
    if manifest.get("sha256") and digest != manifest["sha256"]:
        raise ArtifactError(f"{model_path}: sha256 {digest} does not match its manifest")
    return Artifact(name=name, version=chosen, model_path=model_path, manifest=manifest)
