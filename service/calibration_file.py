"""The live calibration's export file (``emodrift calibration export`` / ``import``): what it holds, how it
is written from Redis and read back into it (docs/live_calibration.md, "Seeing it, exporting and importing it").

``ExportFile`` is its one schema: an import validates the whole file against it before anything is
written to Redis, and answers a file that does not fit with one line naming the first field that does not
(``CalibrationImportError``; the CLI prints it and exits 2).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, StrictStr, ValidationError, model_validator

from service import keys
from service.calibration import BUCKETS, LEVELS, Count, StoredScales, parse_counter

FORMAT = "emodrift-live-calibration/1"


class CalibrationImportError(ValueError):
    """An export that does not fit: not the format, another temporal model or calibration, or a field of
    the wrong shape or out of range."""


class ExportFile(BaseModel):
    """An ``emodrift calibration export`` file (``export_state`` writes it)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    format: Literal["emodrift-live-calibration/1"]
    model: StrictStr  # the calibration's name (calibration.learned_under)
    generation: Count  # the generation in use when it was taken
    scales: StoredScales | None  # None: taken before anything was learned
    counts: dict[str, dict[str, Count]]  # generation (that one and the one before) -> counter -> count

    @model_validator(mode="after")
    def _consistent(self) -> ExportFile:
        kept = [str(g) for g in (self.generation - 1, self.generation) if g >= 0]
        for generation, counters in self.counts.items():
            if generation not in kept:
                raise ValueError(f"counts.{generation}: an export holds the counts of its generation "
                                 f"({self.generation}) and the one before, not of {generation!r}")
            for name in counters:
                if parse_counter(name) is None:
                    raise ValueError(f"counts.{generation}.{name}: not a counter (n:<bucket>, a:<bucket>, "
                                     f"c:<bucket>, u:<bucket>:<level> or d:<bucket>:<level>; buckets 0-{BUCKETS - 1}, "
                                     f"levels 0-{len(LEVELS) - 1})")
        if self.scales is not None and self.scales.model != self.model:
            raise ValueError(f"scales.model: {self.scales.model!r} is not the export's model {self.model!r}")
        return self


def read_export(text: str, model: str) -> ExportFile:
    """The export in ``text``, validated whole, for an import into ``model``; CalibrationImportError (one
    line) when it does not fit."""
    # an editor on Windows saves a backup with a byte order mark; it says nothing about the calibration
    text = text.removeprefix("\ufeff")
    try:
        export = ExportFile.model_validate_json(text)
    except ValidationError as error:
        raise CalibrationImportError(_first_problem(error)) from None
    if export.model != model:
        raise CalibrationImportError(f"the export is of {export.model}, the served calibration is {model}: "
                                     "another model's scores, or another calibration's thresholds, are another scale")
    return export


def _first_problem(error: ValidationError) -> str:
    """One line: the first field that does not fit and why (and how many more problems there are)."""
    problems = error.errors(include_url=False)
    first = problems[0]
    loc = first["loc"]
    if first["type"] == "json_invalid" or not loc and first["type"] == "model_type" or loc[:1] == ("format",):
        return f"not an `emodrift calibration export` file (format {FORMAT}): {first['msg']}"
    if first["type"] == "value_error":  # ours: the message names the field (a model-level check has no loc)
        where, what = ".".join(map(str, loc)), str(first["ctx"]["error"])
    else:
        where, what = ".".join(map(str, loc)), first["msg"]
        if first["type"] != "missing":
            what += f", got {first['input']!r:.60}"
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"the export does not fit its format, nothing was imported: {where + ': ' if where else ''}{what}{more}"


def export_state(client: Any, model: str) -> dict[str, Any]:
    """The learned calibration of ``model`` as JSON (a sync ``redis.Redis``): the scales in force and the
    counts they came from (``emodrift calibration export``)."""
    generation = int(client.hget(keys.calibration_meta(model), "gen") or 0)
    counts = {str(g): {k.decode(): int(v) for k, v in client.hgetall(keys.calibration_counts(model, g)).items()}
              for g in (generation - 1, generation) if g >= 0}
    raw = client.get(keys.calibration_scales(model))
    return {"format": FORMAT, "model": model, "generation": generation,
            "scales": json.loads(raw) if raw else None, "counts": counts}


def stored_names(client: Any) -> list[str]:
    """The calibrations this Redis holds state for (a sync ``redis.Redis``), sorted."""
    found = (keys.calibration_of(raw.decode()) for raw in client.scan_iter(match=f"{keys.CALIBRATION}:*", count=1000))
    return sorted({name for name in found if name is not None})


def import_state(client: Any, export: ExportFile) -> int:
    """Replace the live calibration ``export`` is of with it (``emodrift calibration import``), in one
    transaction; the scales are marked ``imported``. Returns the counters written.

    Every generation's counts go, not only those numbered as the export's: the replicas go on adding to
    the generation they last saw, so an import that set the export's own (lower) numbers left the
    generations in use standing, and their counts came back when the numbers reached them again. The
    export's two generations are written as the two after the one in use: a replica still on an older
    one finds it stale (``calibration_add`` drops its counts from before the import) and moves to the
    imported one at its next sync."""
    model, meta = export.model, keys.calibration_meta(export.model)
    counts: dict[int, dict[str, int]] = {}

    def replace(pipe: Any) -> None:
        # WATCHed meta: a rotation (or another import) before EXEC retries this with what it wrote
        in_use = int(pipe.hget(meta, "gen") or 0)
        generation = in_use + 2
        old = {keys.calibration_counts(model, g) for g in (in_use - 1, in_use)}  # the replicas may add to these
        old |= {key for raw in client.scan_iter(match=keys.calibration_counts_match(model), count=1000)
                if keys.calibration_of(key := raw.decode()) == model}
        counts.clear()
        counts.update({int(g) + generation - export.generation: counters for g, counters in export.counts.items()})
        pipe.multi()
        pipe.delete(*old)
        for g, values in counts.items():
            if values:
                pipe.hset(keys.calibration_counts(model, g), mapping=values)
        pipe.hset(meta, "gen", generation)
        if export.scales is not None:
            imported = {label: entry.model_copy(update={"source": "imported"})
                        for label, entry in export.scales.buckets.items()}
            pipe.set(keys.calibration_scales(model), export.scales.model_copy(update={"buckets": imported}).model_dump_json())

    client.transaction(replace, meta)
    return sum(len(v) for v in counts.values())
