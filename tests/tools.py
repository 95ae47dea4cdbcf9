"""Command-line validators and servers the tests run (promtool, prometheus, hadolint, kubectl): from the
virtualenv or PATH, installed by `make install`; missing, a test skips (and fails under CI=true)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest


def missing(what: str) -> None:
    message = f"{what} is not installed (`make install` installs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def tool(name: str) -> str:
    """A command-line tool from the virtualenv (pip-installed or extracted there) or PATH (apt-installed)."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    path = shutil.which(name, path=search)
    if path is None:
        missing(name)
    return path  # type: ignore[return-value]
