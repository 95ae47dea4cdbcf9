"""The held-out family, seen through a thin adapter: ``model/families/blind.py`` was written from a
plain description by someone who had not read :mod:`model.synthetic` or the detector. It is the
benchmark's headline and is never trained or tuned on; this adapter only copies its streams into
:class:`model.families.base.Stream` (the fields the benchmark reads) and does not look inside.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import numpy as np

from model.families.base import Stream

NAME = "blind"
MODULE = "model.families.blind"


def available() -> bool:
    return importlib.util.find_spec(MODULE) is not None


def _module() -> ModuleType:
    return importlib.import_module(MODULE)


def kinds() -> tuple[str, ...]:
    return tuple(_module().KINDS)


def adapt(stream: object) -> Stream:
    def opt(name: str) -> int | None:
        value = getattr(stream, name, None)
        return None if value is None else int(value)
    emotion = getattr(stream, "true_emotion", None)
    return Stream(str(getattr(stream, "kind")), np.asarray(getattr(stream, "probs"), np.float32),
                  np.asarray(getattr(stream, "gaps"), np.float64), np.asarray(getattr(stream, "face"), bool),
                  opt("start"), opt("end"), opt("start2"), None if emotion is None else np.asarray(emotion), NAME)


def make_stream(rng: np.random.Generator, kind: str) -> Stream:
    return adapt(_module().make_stream(rng, kind))


def make_streams(seed: int, kind: str, n: int) -> list[Stream]:
    return [adapt(s) for s in _module().make_streams(seed, kind, n)]
