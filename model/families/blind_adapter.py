"""The held-out families, seen through a thin adapter: ``model/families/blind.py`` and ``blind2.py`` to
``blind17.py`` were each written from a plain description, by seventeen authors none of whom had read
:mod:`model.synthetic`, the detector or another's family. They are the benchmark's headline and are
never trained, tuned or calibrated on; this adapter only copies their streams into
:class:`model.families.base.Stream` (the fields the benchmark reads) and does not look inside.

``RESERVED`` families are written and tested the same way but not run by the published benchmark: each
waits to be the exam of a change to the detector, and is run only when named (docs/detection_method.md
counts the looks). ``blind8`` and ``blind9`` each examined a candidate that was not shipped, ``blind10`` the
return test, which was, ``blind12`` the serial-correlation correction, which was too (the nineteenth
round), and ``blind14`` and ``blind13`` the twenty-fifth and twenty-sixth rounds' anchored share CUSUMs,
which were not; with ``blind11`` they measure the shipped design on a page of their own
(docs/detection_unseen.md). ``blind15``, written in the twenty-fifth round, examined the twenty-eighth
round's candidate, which passed; ``blind16``, written in the twenty-seventh, and ``blind17``, written in the
thirtieth, have never been run.

>>> NAMES, RESERVED
(('blind', 'blind2', 'blind3', 'blind4', 'blind5', 'blind6', 'blind7'), ('blind8', 'blind9', 'blind10', 'blind11', 'blind12', 'blind13', 'blind14', 'blind15', 'blind16', 'blind17'))
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

import numpy as np

from model.families.base import Stream

NAMES: tuple[str, ...] = ("blind", "blind2", "blind3", "blind4", "blind5", "blind6", "blind7")
RESERVED: tuple[str, ...] = ("blind8", "blind9", "blind10", "blind11", "blind12", "blind13", "blind14", "blind15",
                             "blind16", "blind17")
NAME = NAMES[0]  # the first held-out family (kept for callers that know only one)


def _module_name(name: str) -> str:
    if name not in NAMES + RESERVED:
        raise ValueError(f"unknown held-out family {name!r} (known: {', '.join(NAMES + RESERVED)})")
    return f"model.families.{name}"


def available(name: str = NAME) -> bool:
    return importlib.util.find_spec(_module_name(name)) is not None


def _module(name: str) -> ModuleType:
    return importlib.import_module(_module_name(name))


def kinds(name: str = NAME) -> tuple[str, ...]:
    return tuple(_module(name).KINDS)


def adapt(stream: object, name: str = NAME) -> Stream:
    def opt(field: str) -> int | None:
        value = getattr(stream, field, None)
        return None if value is None else int(value)
    emotion = getattr(stream, "true_emotion", None)
    return Stream(str(getattr(stream, "kind")), np.asarray(getattr(stream, "probs"), np.float32),
                  np.asarray(getattr(stream, "gaps"), np.float64), np.asarray(getattr(stream, "face"), bool),
                  opt("start"), opt("end"), opt("start2"), None if emotion is None else np.asarray(emotion), name)


def make_stream(rng: np.random.Generator, kind: str, name: str = NAME) -> Stream:
    return adapt(_module(name).make_stream(rng, kind), name)


def make_streams(seed: int, kind: str, n: int, name: str = NAME) -> list[Stream]:
    return [adapt(s, name) for s in _module(name).make_streams(seed, kind, n)]
