"""Every install runs what was tested: constraints.txt pins each dependency pyproject.toml names, at a
version its range allows, and make install and the Dockerfile install with it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
UNPINNED = {"torch", "fer", "onnxruntime-gpu", "tflite2onnx", "tflite"}  # pinned where installed, or by make export


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            assert name not in pins, f"{name} pinned twice"
            pins[canonicalize_name(name)] = version
    return pins


def test_every_dependency_is_pinned_within_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    named = project["dependencies"] + [d for group in project["optional-dependencies"].values() for d in group]
    pins = _pins()
    for entry in named:
        requirement = Requirement(entry)
        name = canonicalize_name(requirement.name)
        if name in UNPINNED:
            continue
        assert name in pins, f"{entry}: not in constraints.txt (make lock)"
        assert requirement.specifier.contains(pins[name], prereleases=True), f"{entry}: pinned at {pins[name]}"


def test_make_install_and_the_images_install_with_the_constraints() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"pip install --quiet -c constraints.txt -e \"\.\[train,dev\]\"", makefile)
    assert re.search(r"^STAMP := .*constraints\.txt", makefile, re.M), "a new pin reinstalls"
    dockerfile = (ROOT / "Dockerfile").read_text()
    installs = re.findall(r"pip install --no-cache-dir (?!--force-reinstall)(.*)", dockerfile)
    assert len(installs) == 2 and all(i.startswith("-c constraints.txt .") for i in installs), installs
