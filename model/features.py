"""The per-post feature vector the temporal model reads: pure numpy, shared by training and export.

One post becomes ``F = 10`` float32 numbers, in this order::

    p_angry p_disgust p_fear p_happy p_sad p_surprise p_neutral  valence  log_gap  face

- the 7 emotion probabilities, FER-2013 order (:data:`LABELS`);
- ``valence = sum_i p_i * VALENCE[i]`` with the table :data:`VALENCE`;
- ``log_gap = min(log1p(gap_seconds / 3600), 10)``: hours since the user's previous post on a log
  scale (0 for a user's first post; negative gaps, i.e. clock skew, count as 0);
- ``face = 1.0`` when a face was detected (or the probabilities came from the platform's own model),
  else ``0.0`` (centre crop: the probabilities are less trustworthy).

The service re-implements these lines from the manifest (``features`` entry); any change here is a
new temporal model version.

>>> x = post_features([0.1, 0.0, 0.0, 0.6, 0.1, 0.1, 0.1], gap_seconds=3600.0, face=True)
>>> x.dtype, x.shape
(dtype('float32'), (10,))
>>> [round(float(v), 4) for v in x[7:]]  # -0.08 + 0.6 - 0.1 + 0.03 = 0.45; log1p(1) = 0.6931
[0.45, 0.6931, 1.0]
"""

from __future__ import annotations

import numpy as np

# The training side's copy of service/emotions.py (model/ never imports service/): tests/test_emotions.py
# checks they are equal, and the service checks every manifest these write against its own at load.
LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
VALENCE: dict[str, float] = {
    "angry": -0.8, "disgust": -0.7, "fear": -0.6, "happy": 1.0, "sad": -1.0, "surprise": 0.3, "neutral": 0.0,
}
VALENCE_VECTOR = np.array([VALENCE[name] for name in LABELS], dtype=np.float32)  # (7,)
FEATURE_NAMES: tuple[str, ...] = tuple(f"p_{name}" for name in LABELS) + ("valence", "log_gap", "face")
N_CLASSES = len(LABELS)
N_FEATURES = len(FEATURE_NAMES)
LOG_GAP_CAP = 10.0
LOG_GAP_FORMULA = "min(log1p(gap_seconds/3600), 10)"
FACE_RULE = "1.0 if a face was detected (or the probabilities came from the platform's own model), else 0.0"


def timeline_features(probs: np.ndarray, gap_seconds: np.ndarray, face: np.ndarray) -> np.ndarray:
    """Features of many posts at once: probs (T, 7), gap_seconds (T,), face (T,) -> (T, 10) float32."""
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim != 2 or probs.shape[1] != N_CLASSES:
        raise ValueError(f"probs must have shape (T, {N_CLASSES}), got {probs.shape}")
    gaps = np.maximum(np.asarray(gap_seconds, dtype=np.float64).reshape(-1), 0.0)  # (T,)
    faces = np.asarray(face, dtype=np.float32).reshape(-1)  # (T,)
    if gaps.shape[0] != probs.shape[0] or faces.shape[0] != probs.shape[0]:
        raise ValueError("probs, gap_seconds and face must describe the same number of posts")
    out = np.empty((probs.shape[0], N_FEATURES), dtype=np.float32)
    out[:, :N_CLASSES] = probs
    out[:, N_CLASSES] = probs @ VALENCE_VECTOR
    out[:, N_CLASSES + 1] = np.minimum(np.log1p(gaps / 3600.0), LOG_GAP_CAP)
    out[:, N_CLASSES + 2] = (faces > 0.5).astype(np.float32)
    return out


def post_features(probs, gap_seconds: float, face: bool) -> np.ndarray:
    """Features of one post: probs (7,), the seconds since the user's previous post, face -> (10,)."""
    probs = np.asarray(probs, dtype=np.float32).reshape(1, -1)
    return timeline_features(probs, np.array([gap_seconds]), np.array([float(bool(face))]))[0]


def manifest_entry() -> dict:
    """What the service needs to rebuild the features: the ``features`` block of the manifest."""
    return {
        "order": list(FEATURE_NAMES),
        "valence": dict(VALENCE),
        "valence_formula": "sum_i p_i * valence[label_i]",
        "log_gap": LOG_GAP_FORMULA,
        "face": FACE_RULE,
        "dtype": "float32",
    }
