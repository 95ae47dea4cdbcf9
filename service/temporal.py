"""The temporal model (the LSTM of the CNN-LSTM) advanced one post at a time.

A user's memory is the LSTM's (h, c): two float32 vectors stored in Redis. One post = one step:
``(features, h, c) → (drift_probability, next_distribution, h', c')``. The features are rebuilt here
from the manifest (valence table, time-gap transform) so the service never imports ``model/``; a
test checks this matches ``model/features.py`` exactly.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from service import lstm_numpy
from service.drift import ScoreProfile
from service.emotions import LABELS, VALENCE, check_manifest
from service.inference import ProviderChoice, open_session
from service.model_repository import Artifact

FEATURE_ORDER = [f"p_{label}" for label in LABELS] + ["valence", "log_gap", "face"]
LOG_GAP = "min(log1p(gap_seconds/3600), 10)"
log = logging.getLogger(__name__)
# numpy step vs onnxruntime: |a - b| / (1 + |b|) on every output over a chained random sequence. Relative
# beyond 1: c grows to tens, where one float32 ulp is already ~2e-6.
PARITY_TOLERANCE = 1e-5


@dataclass(frozen=True)
class Step:
    drift_probability: float
    next_distribution: np.ndarray  # (7,)
    h: np.ndarray  # (H,) float32
    c: np.ndarray  # (H,) float32


class TemporalModel:
    def __init__(self, artifact: Artifact, choice: ProviderChoice) -> None:
        self.artifact = artifact
        # The step is tiny (a few µs of maths): the CPU beats a round trip to the GPU.
        self.session = open_session(artifact, ProviderChoice("cpu", "temporal step is tiny"), threads=1)
        manifest = artifact.manifest
        check_manifest(artifact.tag, manifest)  # the labels and valence table it was trained with
        self.hidden_size = int(manifest["hidden_size"])
        features = manifest.get("features", {})
        # Refuse at start-up a model that expects features this code does not build.
        if features.get("order", FEATURE_ORDER) != FEATURE_ORDER or features.get("log_gap", LOG_GAP) != LOG_GAP:
            raise ValueError(f"{artifact.tag} expects features {features} that this service does not compute")
        self.valence = np.array([VALENCE[label] for label in LABELS], dtype=np.float32)
        self.negative = self.valence < 0  # (7,) the negative classes: angry, disgust, fear, sad
        # The numpy step when it reproduces onnxruntime on this artifact, else onnxruntime itself.
        self._numpy = lstm_numpy.from_onnx(artifact.model_path)
        if self._numpy is not None and (gap := self.numpy_parity()) > PARITY_TOLERANCE:
            log.warning("%s: numpy step differs from onnxruntime by %.2g; using onnxruntime", artifact.tag, gap)
            self._numpy = None
        self.engine = "numpy" if self._numpy is not None else "onnxruntime"
        # What the score does on users who never change, by post count: the evidence rule's scale.
        # Artifacts exported before it existed have none; `python -m export score-profile` adds it.
        self.score_profile = ScoreProfile.of(manifest)
        if self.score_profile is None:
            log.warning("%s has no score_profile: the evidence rule reads the raw score, whose climb over a "
                        "new user's first posts raises false alarms", artifact.tag)

    def initial_state(self) -> tuple[np.ndarray, np.ndarray]:
        zeros = np.zeros(self.hidden_size, dtype=np.float32)
        return zeros, zeros.copy()

    def features(self, probabilities: np.ndarray, gap_seconds: float, face: bool) -> np.ndarray:
        """(7,) probabilities → (10,) [p_0..p_6, valence, log_gap, face]."""
        gap = max(float(gap_seconds), 0.0)
        x = np.empty(10, dtype=np.float32)
        x[:7] = probabilities
        x[7] = float(np.dot(probabilities, self.valence))
        x[8] = min(math.log1p(gap / 3600.0), 10.0)
        x[9] = 1.0 if face else 0.0
        return x

    def replay(self, timelines: Sequence[Any]) -> list[np.ndarray]:
        """The drift score after every post of each timeline (anything with ``probs`` (T, 7), ``gaps`` and
        ``face``), from a new user's state: this module's features and the ONNX step, batched over the
        timelines. For offline replays (the detection benchmark, the export's score profile), not requests."""
        lengths = [len(t.probs) for t in timelines]
        x = np.zeros((len(timelines), max(lengths), len(FEATURE_ORDER)), np.float32)
        for i, t in enumerate(timelines):
            for j in range(lengths[i]):
                x[i, j] = self.features(t.probs[j], float(t.gaps[j]), bool(t.face[j]))
        h = np.zeros((len(timelines), self.hidden_size), np.float32)
        c = np.zeros_like(h)
        scores = np.empty(x.shape[:2])
        for j in range(x.shape[1]):
            drift, _, h, c = self.session.run(None, {"x": x[:, j], "h": h, "c": c})
            scores[:, j] = np.clip(drift, 0.0, 1.0)
        return [scores[i, :n] for i, n in enumerate(lengths)]

    def negative_share(self, probabilities: np.ndarray) -> float:
        """The probability on the negative classes, in 0..1 (the detector's share rule reads it)."""
        return min(max(float(probabilities[self.negative].sum()), 0.0), 1.0)

    def valence_of(self, probabilities: np.ndarray) -> float:
        return float(np.dot(probabilities, self.valence))

    def step(self, x: np.ndarray, h: np.ndarray, c: np.ndarray) -> Step:
        if self._numpy is not None:
            drift, nxt, h2, c2 = self._numpy(x, h, c)
            return Step(min(max(drift, 0.0), 1.0), nxt, h2, c2)
        return self.onnx_step(x, h, c)

    def onnx_step(self, x: np.ndarray, h: np.ndarray, c: np.ndarray) -> Step:
        drift, nxt, h2, c2 = self.session.run(
            ["drift_probability", "next_distribution", "h_out", "c_out"],
            {"x": x[None, :], "h": h[None, :], "c": c[None, :]},
        )
        return Step(min(max(float(drift[0]), 0.0), 1.0), nxt[0], h2[0].astype(np.float32), c2[0].astype(np.float32))

    def numpy_parity(self, steps: int = 64, seed: int = 0) -> float:
        """Largest difference between the numpy and onnxruntime steps over a chained random sequence."""
        assert self._numpy is not None
        rng = np.random.default_rng(seed)
        h, c = self.initial_state()
        gap = 0.0
        for _ in range(steps):
            x = self.features(rng.dirichlet(np.ones(len(LABELS))).astype(np.float32), rng.exponential(7200),
                              bool(rng.integers(2)))
            drift, nxt, h2, c2 = self._numpy(x, h, c)
            ref = self.onnx_step(x, h, c)
            for ours, theirs in ((np.float32(drift), np.float32(ref.drift_probability)),
                                 (nxt, ref.next_distribution), (h2, ref.h), (c2, ref.c)):
                gap = max(gap, float((np.abs(ours - theirs) / (1.0 + np.abs(theirs))).max()))
            h, c = ref.h, ref.c
        return gap
