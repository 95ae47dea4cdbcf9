"""Constants the tests share: the emotion labels as the API's clients see them, and two moods.

The labels are written out here rather than imported from service/emotions.py on purpose: they are
the contract the tests hold the service to (tests/test_emotions.py checks the two agree).
"""

from __future__ import annotations

LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
# A clearly happy and a clearly sad post, as CNN probabilities (sum 1): a user moving from the first
# to the second drifts; the same one again and again is a stable user.
HAPPY = {"angry": 0.02, "disgust": 0.01, "fear": 0.02, "happy": 0.85, "sad": 0.03, "surprise": 0.04, "neutral": 0.03}
SAD = {"angry": 0.08, "disgust": 0.02, "fear": 0.1, "happy": 0.02, "sad": 0.7, "surprise": 0.01, "neutral": 0.07}
