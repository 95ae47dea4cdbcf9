"""The seven emotions the service speaks of, in the CNN's output order, and their valence: the one home
of these facts in ``service/`` (docs/drift.md's valence table describes the same numbers).

The order is FER-2013's, the order of the emotion CNN's probabilities and of the temporal model's first
seven features. Both models' manifests list the labels they were built with (the temporal one its
valence table too); :func:`check_manifest` refuses at start-up an artifact whose list differs, since
reading its outputs in another order would score every post wrongly without any error.

``model/features.py`` keeps the training side's copy (``model/`` never imports ``service/``, nor the
reverse: tests/test_layering.py); tests/test_emotions.py checks the two are equal.

>>> LABELS.index("happy"), VALENCE["sad"], [LABELS[i] for i in NEGATIVE]
(3, -1.0, ['angry', 'disgust', 'fear', 'sad'])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
VALENCE: dict[str, float] = {
    "angry": -0.8, "disgust": -0.7, "fear": -0.6, "happy": 1.0, "sad": -1.0, "surprise": 0.3, "neutral": 0.0,
}
# Indices of the emotions of negative valence, in LABELS order.
NEGATIVE: tuple[int, ...] = tuple(i for i, label in enumerate(LABELS) if VALENCE[label] < 0)


class LabelMismatch(ValueError):
    """A model's manifest lists other emotion labels (or another valence table) than this service."""


def check_manifest(tag: str, manifest: Mapping[str, Any]) -> None:
    """Raise :class:`LabelMismatch` unless the manifest's ``labels`` (and, where it has one, its
    ``features.valence`` table) are exactly :data:`LABELS` and :data:`VALENCE`.

    >>> check_manifest("emotion_cnn:1", {"labels": list(LABELS)})
    >>> check_manifest("emotion_cnn:9", {"labels": ["happy", "sad"]})
    Traceback (most recent call last):
    ...
    service.emotions.LabelMismatch: emotion_cnn:9 lists the labels ['happy', 'sad'], but this service \
reads the model's outputs as ['angry', 'disgust', 'fear', 'happy', 'sad', 'surprise', 'neutral'] (service/emotions.py)
    """
    labels = manifest.get("labels")
    if labels is None or list(labels) != list(LABELS):
        raise LabelMismatch(f"{tag} lists the labels {labels}, but this service reads the model's outputs as "
                            f"{list(LABELS)} (service/emotions.py)")
    features = manifest.get("features")
    valence = features.get("valence") if isinstance(features, Mapping) else None
    if valence is not None and dict(valence) != VALENCE:
        raise LabelMismatch(f"{tag} was trained with the valence table {dict(valence)}, but this service "
                            f"uses {VALENCE} (service/emotions.py)")
