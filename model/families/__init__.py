"""Stream families: independently written simulators of user timelines, one module each, all giving
:class:`model.families.base.Stream` for the kinds of :data:`model.families.base.KINDS`.

============ ===================================================================== ===============
family       what is different about its users                                     use
============ ===================================================================== ===============
synthetic    :mod:`model.synthetic`: independent posts, one ~66% classifier,       training, bench
             ~85% faces, bursty gaps
sessions     moods persist within posting sessions, Pareto gaps with a night,      training, bench
             per-user classifier (50-75%), cheerful to gloomy baselines
days         day-level moods (AR(1)), self-exciting posting, 40-80% faces,         training, bench
             a classifier biased towards neutral or sad
blind        written from a plain description by someone who had not read the     bench only
             other families or the detector (``blind_adapter``): the headline      (held out)
blind2       a second blind family, by another author, same contract               bench only
                                                                                   (held out)
blind3       a third, by a third author told the others exist and to make a        bench only
             heterogeneous world (personas, benign changes that are not moods)    (held out)
blind4       a fourth, by a fourth author; nobody here read it before its exam     bench only
                                                                                   (held out)
blind5       a fifth, by a fifth author: a second exam of the same design          bench only
                                                                                   (held out)
blind6       a sixth, by a sixth author: a third exam of the same design           bench only
                                                                                   (held out)
blind7       a seventh, by a seventh author: the exam after live calibration's     bench only
             borrowing                                                             (held out)
blind8       an eighth, by an eighth author, not run by the published benchmark:   reserved
             an exam for a change to the detector (``blind_adapter.RESERVED``)     (held out)
blind9       a ninth, by a ninth author, reserved the same way; the exam of the    reserved
             tenth round's candidate (not shipped)                                 (held out)
blind10      a tenth, by a tenth author, reserved the same way; the exam of the    reserved
             twelfth round's return test                                           (held out)
blind11      an eleventh, by an eleventh author (twelfth round), reserved the      reserved
             same way; first run with blind8-10 for docs/detection_unseen.md       (held out)
blind12      a twelfth, by a twelfth author (thirteenth round), reserved the       reserved
             same way; the exam of the nineteenth round's serial correction        (held out)
blind13      a thirteenth, by a thirteenth author (eighteenth round), reserved     reserved
             the same way; the exam of the twenty-sixth round's anchor (dropped)   (held out)
blind14      a fourteenth, by a fourteenth author (twentieth round), reserved      reserved
             the same way; the exam of the twenty-fifth round's anchor (dropped)   (held out)
blind15      a fifteenth, by a fifteenth author (twenty-fifth round), reserved     reserved
             the same way; the exam of the twenty-eighth round's bank (shipped)    (held out)
blind16      a sixteenth, by a sixteenth author (twenty-seventh round), reserved   reserved
             the same way; never run yet: the exam of the next change              (held out)
blind17      a seventeenth, by a seventeenth author (thirtieth round), reserved    reserved
             the same way; never run yet: the exam after blind16's                 (held out)
============ ===================================================================== ===============

>>> sorted(TRAINING), HELD_OUT
(['days', 'sessions', 'synthetic'], ('blind', 'blind2', 'blind3', 'blind4', 'blind5', 'blind6', 'blind7'))
>>> len(make_streams("sessions", 1, "gradual", 3))
3
"""

from __future__ import annotations

from model.families import base, blind_adapter, days, sessions, synthetic
from model.families.base import CHANGE_KINDS, KINDS, Stream

_TRAINING = {m.NAME: m for m in (synthetic, sessions, days)}
TRAINING: tuple[str, ...] = tuple(_TRAINING)
HELD_OUT: tuple[str, ...] = blind_adapter.NAMES
# Written like the held-out ones, but run only when named (``--family``): each waits for an exam.
RESERVED: tuple[str, ...] = blind_adapter.RESERVED
WRITTEN_BLIND: tuple[str, ...] = HELD_OUT + RESERVED  # every family read only through blind_adapter


def available() -> tuple[str, ...]:
    """Every family this checkout has, the held-out ones last (each absent until it is merged)."""
    return TRAINING + tuple(name for name in HELD_OUT if blind_adapter.available(name))


def make_streams(family: str, seed: int, kind: str, n: int, length: int | None = None,
                 pre: tuple[int, int] | None = None) -> list[Stream]:
    """``n`` seeded streams of ``kind`` from ``family``; ``length`` sets a no-change stream's length and
    ``pre`` the range of a change's first post (training families only: the held-out ones keep their own)."""
    if family in WRITTEN_BLIND:
        if pre is not None:
            raise ValueError(f"{family} is held out: its changes start where its author put them")
        return blind_adapter.make_streams(seed, kind, n, family)
    module = _TRAINING[family]
    return module.make_streams(seed, kind, n, length or module.NO_CHANGE_LENGTH, pre or module.PRE)


__all__ = ["KINDS", "CHANGE_KINDS", "Stream", "TRAINING", "HELD_OUT", "RESERVED", "WRITTEN_BLIND", "available", "make_streams", "base"]
