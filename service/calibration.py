"""The detector's calibration: it belongs to the temporal model, and the operator may only override it.

Every threshold of the detector (``service/drift.py``) was calibrated on one temporal model's scores
(``python -m benchmarks.calibrate``): a score of 0.84 means something else to another model. So the
values live in the model's manifest (``model_repository/temporal/<v>/manifest.json``, section
``detector``, with ``calibrated_with``: the command, seed and target it was calibrated with), and the
service reads them from the model it serves. ``Settings`` (``EMODRIFT_DRIFT_THRESHOLD`` and friends)
holds only overrides: ``None`` means "the manifest's". A model without a calibration (temporal:1 and 2
were never calibrated on their own) is refused unless the operator sets every calibrated value, so
serving temporal:3 can never silently run on temporal:4's thresholds.

>>> manifest = {"detector": {"threshold": 0.8, "confirm_posts": 2, "cusum_threshold": 89.2, "cusum_slack": 0.5}}
>>> c = detector_config(manifest, {"confirm_posts": 3})
>>> (c.threshold, c.confirm_posts, c.cusum_threshold)
(0.8, 3, 89.2)
>>> detector_config({}, {})
Traceback (most recent call last):
...
service.calibration.CalibrationMissing: the temporal model's manifest has no detector calibration; set threshold, confirm_posts, cusum_threshold, cusum_slack (EMODRIFT_DRIFT_THRESHOLD, EMODRIFT_CONFIRM_POSTS, EMODRIFT_DRIFT_CUSUM_THRESHOLD, EMODRIFT_DRIFT_CUSUM_SLACK) or calibrate it with `python -m benchmarks.calibrate --write`
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from service.drift import DetectorConfig, ScoreProfile

# DetectorConfig field -> the Settings field that overrides it
OVERRIDES = {
    "warmup_posts": "warmup_posts",
    "threshold": "drift_threshold",
    "recovery_threshold": "recovery_threshold",
    "confirm_posts": "confirm_posts",
    "recovery_posts": "recovery_posts",
    "cooldown_posts": "cooldown_posts",
    "cusum_threshold": "drift_cusum_threshold",
    "cusum_slack": "drift_cusum_slack",
    "reference_alpha": "drift_reference_alpha",
    "rebaseline_posts": "rebaseline_posts",
}
# What a calibration fixes: without these from the manifest or the operator there is no detector.
CALIBRATED = ("threshold", "confirm_posts", "cusum_threshold", "cusum_slack")
_KNOWN = {f.name for f in fields(DetectorConfig)} - {"profile"}


class CalibrationMissing(ValueError):
    """The served temporal model carries no calibration and the operator did not supply one."""


def overrides(settings: Any) -> dict[str, Any]:
    """The detector values the operator set (``Settings`` fields that are not None), by DetectorConfig name."""
    return {name: value for name, key in OVERRIDES.items() if (value := getattr(settings, key)) is not None}


def detector_config(manifest: dict[str, Any], operator: dict[str, Any],
                    profile: ScoreProfile | None = None) -> DetectorConfig:
    """The manifest's ``detector`` section with the operator's values on top (names of DetectorConfig)."""
    calibrated = {k: v for k, v in manifest.get("detector", {}).items() if k in _KNOWN}
    missing = [k for k in CALIBRATED if k not in calibrated and k not in operator]
    if missing:
        env = ", ".join(f"EMODRIFT_{OVERRIDES[k].upper()}" for k in missing)
        raise CalibrationMissing(f"the temporal model's manifest has no detector calibration; set {', '.join(missing)} "
                                 f"({env}) or calibrate it with `python -m benchmarks.calibrate --write`")
    return DetectorConfig(**{**calibrated, **operator, "profile": profile})


def describe(manifest: dict[str, Any], operator: dict[str, Any]) -> dict[str, Any]:
    """Where the served calibration comes from, for ``GET /v1/model``."""
    section = manifest.get("detector", {})
    return {"from_manifest": sorted(k for k in section if k in _KNOWN and k not in operator),
            "overridden": sorted(operator), "calibrated_with": section.get("calibrated_with")}
