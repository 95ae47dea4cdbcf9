"""The live calibration's export file (``emodrift calibration export`` / ``import``): what it holds, how it
is written from Redis and read back into it (docs/live_calibration.md, "Seeing it, exporting and importing it")."""

from __future__ import annotations

import json
from typing import Any

from service import keys
from service.calibration import MAX_SCALE, MIN_SCALE


def export_state(client: Any, model: str) -> dict[str, Any]:
    """The learned calibration of ``model`` as JSON (a sync ``redis.Redis``): the scales in force and the
    counts they came from (``emodrift calibration export``)."""
    generation = int(client.hget(keys.calibration_meta(model), "gen") or 0)
    counts = {str(g): {k.decode(): int(v) for k, v in client.hgetall(keys.calibration_counts(model, g)).items()}
              for g in (generation - 1, generation) if g >= 0}
    raw = client.get(keys.calibration_scales(model))
    return {"format": "emodrift-live-calibration/1", "model": model, "generation": generation,
            "scales": json.loads(raw) if raw else None, "counts": counts}


def stored_names(client: Any) -> list[str]:
    """The calibrations this Redis holds state for (a sync ``redis.Redis``), sorted."""
    found = (keys.calibration_of(raw.decode()) for raw in client.scan_iter(match=f"{keys.CALIBRATION}:*", count=1000))
    return sorted({name for name in found if name is not None})


class CalibrationImportError(ValueError):
    """An export that does not fit: another format or another temporal model."""


def import_state(client: Any, data: dict[str, Any], model: str) -> int:
    """Replace ``model``'s live calibration with an export of it (``emodrift calibration import``), in one
    transaction; the scales are marked ``imported``. Returns the counters written."""
    if data.get("format") != "emodrift-live-calibration/1":
        raise CalibrationImportError("not an `emodrift calibration export` file (format emodrift-live-calibration/1)")
    if data.get("model") != model:
        raise CalibrationImportError(f"the export is of {data.get('model')}, the served calibration is {model}: "
                                     "another model's scores, or another calibration's thresholds, are another scale")
    counts = {int(g): {str(k): int(v) for k, v in fields_.items()} for g, fields_ in data.get("counts", {}).items()}
    generation = int(data.get("generation", max(counts, default=0)))
    scales = data.get("scales")
    if scales is not None:
        for entry in scales.get("buckets", {}).values():
            if not MIN_SCALE <= float(entry["scale"]) <= MAX_SCALE:
                raise CalibrationImportError(f"a scale outside [{MIN_SCALE}, {MAX_SCALE}]: {entry['scale']}")
            entry["source"] = "imported"
    pipe = client.pipeline(transaction=True)
    for g in (generation - 1, generation):
        pipe.delete(keys.calibration_counts(model, g))
    for g, values in counts.items():
        if values:
            pipe.hset(keys.calibration_counts(model, g), mapping=values)
    pipe.hset(keys.calibration_meta(model), "gen", generation)
    if scales is not None:
        pipe.set(keys.calibration_scales(model), json.dumps(scales))
    pipe.execute()
    return sum(len(v) for v in counts.values())
