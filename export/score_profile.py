"""``python -m export score-profile [--version N]``: the temporal model's drift score on users who never
change, by account age, written into the artifact's manifest as ``score_profile``.

Why: the drift score is a posterior, and its prior depends on how many posts the model has seen. On
users whose mood never changes it starts near 0 (training never puts a change in a user's first 16
posts), climbs over the first ~80 posts, then drifts slowly down (each temporal manifest's
``score_profile`` holds the figures). The detector's evidence rule compares a user's score with that
user's own past, so the climb itself looked like evidence: with the raw score, far more users who never
changed alarmed in the placebo control's windows than the long-run false-alarm rate predicts
(docs/detection_method.md, History). The service reads the score against this profile (``service/drift.py``): the
evidence rule standardises it, and the fast rule's bar rises where the profile runs above its end.

The profile is measured through the service's own path (``service.temporal.TemporalModel``: its
feature code and step) on seeded stable users from :mod:`model.synthetic`, seed ``PROFILE_SEED``
(disjoint from training, from the exporter's held-out seeds and from the benchmark's streams). Ages
past the profile's end use its last entry. ``python -m export temporal`` writes it for every new
version; this command adds or refreshes it on an existing one without touching the ONNX file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from export.manifest import REPOSITORY
from model.synthetic import Kind, generate_dataset
from service import model_repository
from service.drift import logit
from service.inference import ProviderChoice
from service.temporal import TemporalModel

PROFILE_SEED = 10_002   # held-out range (training draws from its --seed; evaluation 10_000, parity 10_001)
USERS = 1000
AGES = 1536  # the mean still falls slowly past the training's 384-post timelines (temporal:3: -1.91 at 383, -1.98 here)
DIGITS = 3


def served(artifact: model_repository.Artifact) -> TemporalModel:
    """The artifact as the service steps it. Its warning that the manifest has no profile yet is what
    this module is about to fix, so it is not shown."""
    logger = logging.getLogger("service.temporal")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return TemporalModel(artifact, ProviderChoice("cpu", "export"))
    finally:
        logger.setLevel(level)


def measure(temporal: TemporalModel, users: int = USERS, ages: int = AGES, seed: int = PROFILE_SEED) -> dict:
    """Mean and sd of logit(drift score) at every age 0..ages-1 over ``users`` stable users."""
    scores = np.stack(temporal.replay(generate_dataset(seed, users, ages, kinds=(Kind.STABLE,))))
    logits = np.vectorize(logit)(scores)
    mean = [round(float(v), DIGITS) for v in logits.mean(axis=0)]
    sd = [round(float(v), DIGITS) for v in logits.std(axis=0)]
    digest = hashlib.sha256(json.dumps([mean, sd]).encode()).hexdigest()[:12]
    return {"id": f"{temporal.artifact.tag}/{digest}", "scale": "logit(score), service.drift.logit",
            "users": users, "seed": seed, "generator": "model.synthetic stable users", "mean": mean, "sd": sd}


def write(folder: Path, profile: dict) -> Path:
    """Put ``profile`` into ``folder``'s manifest.json, keeping every other field as it was."""
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["score_profile"] = profile
    path.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m export score-profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", type=int, default=None, help="temporal version (default: the highest)")
    parser.add_argument("--repository", type=Path, default=REPOSITORY)
    args = parser.parse_args(argv)
    artifact = model_repository.load(args.repository, "temporal", args.version)
    profile = measure(served(artifact))
    path = write(artifact.model_path.parent, profile)
    m, s = profile["mean"], profile["sd"]
    print(f"wrote score_profile {profile['id']} into {path}: logit mean {m[8]} at post 8, {m[80]} at 80, "
          f"{m[-1]} at {len(m) - 1}; sd {s[8]}, {s[80]}, {s[-1]}")
    return 0
