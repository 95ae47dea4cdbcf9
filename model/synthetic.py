"""Seeded synthetic user timelines: what the temporal model trains on and what detectors are measured on.

There is no public dataset of per-user emotion streams with labelled drift, so we simulate one, from
the point of view of the service: it never sees a person's true emotion, only what a ~66%-accurate
FER-2013 CNN says about their photos.

Each user has
- a **baseline** regime: a 7-class distribution of true emotions drawn from a Dirichlet around one of
  four archetypes (mostly happy, mostly neutral, mixed, mostly negative);
- a **contrast** regime, far from the baseline as the CNN sees it (total variation between the two
  regimes' expected CNN outputs >= ``MIN_OBSERVED_TV``): sad, angry, fearful or negative for most users,
  happy or neutral for negative ones (drift can go up as well as down);
- a **stream kind** (:class:`Kind`) saying when the contrast regime shows up:

  ============  =========================================================================  ==========
  kind          what happens                                                               drift?
  ============  =========================================================================  ==========
  stable        baseline throughout                                                        never
  transient     1-3 short dips of 1-3 contrast posts, then back to baseline                no
  abrupt        from post ``s`` on, the contrast regime, to the end                        from s+3
  gradual       escalation: mix goes linearly from baseline to contrast over 10-30 posts   see below
  episode       a longer dip of 8-30 contrast posts that recovers                          s+3..e+2
  shift         from s on, the baseline with the negative share moved by 0.1-0.35 (down    from s+d
                for a mostly negative baseline): a small, lasting change
  ============  =========================================================================  ==========

- posting times: bursty. Each gap is, with a per-user probability of 10-50%, a burst gap (exponential,
  mean 2-20 minutes), else a session gap (lognormal around a per-user median of 2-48 hours). The first
  post has gap 0.
- a face detected on ~85% of posts (per-user rate ~ Beta(17, 3)).

Each post's true emotion is drawn from the regime of the moment, passed through the confusion matrix
:data:`CONFUSION` (rows: true, columns: predicted; happy and surprise ~0.85, disgust and fear poor,
sad/neutral/fear confused) and the predicted class becomes a softmax-like vector: a Dirichlet whose
mean puts a random peak weight on the predicted class and spreads the rest over the classes it is
confused with, so the top probability ranges ~0.3-0.99. Without a face the prediction is noisier (half
the time a uniformly random class) and flatter.

**Drift label** (the ``drift`` and ``weight`` arrays; causal: only what a model could know at step t).
Label 1 at step t when a *lasting* change (abrupt, gradual, episode) is under way and the user has
already posted 4 posts in the new regime (t >= s + 3), until 3 posts after recovery (t < e + 3).
The 3 posts right after a start or an end are ambiguous (a transient dip looks the same for 1-3 posts)
and carry weight 0; everything else weight 1, so transient dips are trained as 0. For a gradual change
of ramp L starting at s, the effective start is the first post whose mix >= 0.5; posts with mix < 0.2
are 0 (weight 1), posts between that and effective start + 3 have weight 0. A shift of size delta is
labelled from d = 3 + round(40 * (0.35 - delta)) posts after its start (3 to 13: a small change takes
more posts to tell from noise); the posts before that have weight 0.

>>> a = generate_dataset(seed=7, n_users=5, length=64)
>>> b = generate_dataset(seed=7, n_users=5, length=64)
>>> all((x.probs == y.probs).all() for x, y in zip(a, b)), [t.kind.value for t in a]
(True, ['stable', 'transient', 'abrupt', 'gradual', 'episode'])
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from model.features import LABELS, N_CLASSES, VALENCE, timeline_features


class Kind(str, enum.Enum):
    STABLE = "stable"
    TRANSIENT = "transient"
    ABRUPT = "abrupt"
    GRADUAL = "gradual"
    EPISODE = "episode"
    SHIFT = "shift"


KINDS: tuple[Kind, ...] = tuple(Kind)
LASTING: frozenset[Kind] = frozenset({Kind.ABRUPT, Kind.GRADUAL, Kind.EPISODE, Kind.SHIFT})
NEGATIVE = np.array([VALENCE[label] < 0 for label in LABELS], dtype=bool)  # angry, disgust, fear, sad

# Regime ids in Timeline.regime.
BASELINE, CHANGED, EXCURSION = 0, 1, 2

LABEL_DELAY = 3          # a lasting change is labelled from its 4th post on
MIN_OBSERVED_TV = 0.30   # contrast regime must be this far from baseline in CNN-output space
MIN_START = 16           # posts of baseline before any change
MIN_TAIL = 12            # posts after a change starts (or ends) before the timeline ends

#                      angry  disg  fear  happy  sad   surpr neutral
ARCHETYPES = {
    "happy":    np.array([0.03, 0.01, 0.02, 0.70, 0.04, 0.10, 0.10]),
    "neutral":  np.array([0.05, 0.01, 0.04, 0.15, 0.08, 0.05, 0.62]),
    "mixed":    np.array([0.10, 0.03, 0.07, 0.30, 0.15, 0.10, 0.25]),
    "negative": np.array([0.25, 0.06, 0.14, 0.06, 0.35, 0.04, 0.10]),
}
CONTRASTS = {
    "sad":      np.array([0.08, 0.02, 0.12, 0.04, 0.58, 0.02, 0.14]),
    "angry":    np.array([0.52, 0.10, 0.08, 0.04, 0.14, 0.04, 0.08]),
    "fearful":  np.array([0.10, 0.03, 0.45, 0.04, 0.18, 0.12, 0.08]),
    "negative": ARCHETYPES["negative"],
    "happy":    ARCHETYPES["happy"],
    "neutral":  ARCHETYPES["neutral"],
}

# A plausible confusion matrix of a ~66%-accurate FER-2013 CNN (rows: true, columns: predicted).
CONFUSION = np.array([
    [0.58, 0.01, 0.09, 0.05, 0.14, 0.02, 0.11],  # angry
    [0.20, 0.55, 0.07, 0.05, 0.07, 0.02, 0.04],  # disgust
    [0.10, 0.01, 0.45, 0.04, 0.17, 0.11, 0.12],  # fear
    [0.02, 0.00, 0.02, 0.87, 0.03, 0.02, 0.04],  # happy
    [0.08, 0.00, 0.10, 0.04, 0.55, 0.01, 0.22],  # sad
    [0.02, 0.00, 0.08, 0.03, 0.01, 0.84, 0.02],  # surprise
    [0.05, 0.00, 0.05, 0.06, 0.16, 0.02, 0.66],  # neutral
])
CONFUSION = CONFUSION / CONFUSION.sum(axis=1, keepdims=True)
# Where the rest of the probability goes when the CNN predicts class k: the classes confused with k.
_SPREAD = CONFUSION.T + CONFUSION + 0.02
np.fill_diagonal(_SPREAD, 0.0)
_SPREAD = _SPREAD / _SPREAD.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Change:
    """One excursion from baseline: ``start`` is the first post in the new regime, ``end`` the first
    post back at baseline (None: never), ``ramp`` the escalation length of a gradual change (else 0)."""

    kind: str  # "abrupt" | "gradual" | "episode" | "dip"
    start: int
    end: int | None
    ramp: int = 0


@dataclass
class Timeline:
    """One user's posts. Arrays are indexed by post, T = length."""

    kind: Kind
    probs: np.ndarray       # (T, 7) float32: what the CNN says
    gaps: np.ndarray        # (T,) float64 seconds since the previous post (0 for the first)
    face: np.ndarray        # (T,) bool
    emotion: np.ndarray     # (T,) int: the true emotion of each post
    true_dist: np.ndarray   # (T, 7): the regime distribution each post was drawn from
    regime: np.ndarray      # (T,) int: BASELINE, CHANGED or EXCURSION
    drift: np.ndarray       # (T,) float32 drift label (see module docstring)
    weight: np.ndarray      # (T,) float32 loss / evaluation weight of the label
    changes: list[Change] = field(default_factory=list)
    baseline_name: str = ""
    contrast_name: str = ""

    @property
    def features(self) -> np.ndarray:  # (T, 10)
        return timeline_features(self.probs, self.gaps, self.face)


def generate_user(rng: np.random.Generator, kind: Kind | str = Kind.STABLE, length: int = 128,
                  label_delay: int = LABEL_DELAY, shift_label_scale: float = 40.0) -> Timeline:
    """One user's timeline of ``length`` posts of the given kind, drawn from ``rng``. ``label_delay`` and
    ``shift_label_scale`` move the drift label (defaults: the module docstring's definition); the draws
    (and so the probabilities) do not depend on them."""
    kind = Kind(kind)
    if length < MIN_START + 3 * MIN_TAIL:
        raise ValueError(f"length must be >= {MIN_START + 3 * MIN_TAIL}")
    baseline_name, baseline, contrast_name, contrast = _regimes(rng)

    mix = np.zeros(length)  # (T,) weight of the contrast regime in each post's distribution
    regime = np.zeros(length, dtype=np.int64)
    drift = np.zeros(length, dtype=np.float32)
    weight = np.ones(length, dtype=np.float32)
    changes: list[Change] = []
    if kind is Kind.TRANSIENT:
        t = MIN_START + int(rng.integers(0, 8))
        for _ in range(int(rng.integers(1, 4))):
            n = int(rng.integers(1, 4))
            if t + n > length - 2:
                break
            mix[t:t + n], regime[t:t + n] = 1.0, EXCURSION
            changes.append(Change("dip", t, t + n))
            t += n + int(rng.integers(6, 30))
    elif kind is Kind.ABRUPT:
        s = int(rng.integers(MIN_START, length - MIN_TAIL))
        mix[s:], regime[s:] = 1.0, CHANGED
        drift[s + label_delay:] = 1.0
        weight[s:s + label_delay] = 0.0
        changes.append(Change("abrupt", s, None))
    elif kind is Kind.GRADUAL:
        ramp = int(rng.integers(10, 31))
        s = int(rng.integers(MIN_START, length - ramp // 2 - MIN_TAIL))
        steps = np.arange(length - s)
        mix[s:] = np.minimum((steps + 1) / ramp, 1.0)
        regime[s:] = np.where(mix[s:] >= 0.5, CHANGED, BASELINE)
        onset = s + int(np.argmax(mix[s:] >= 0.5))
        drift[onset + label_delay:] = 1.0
        weight[(mix >= 0.2) & (np.arange(length) < onset + label_delay)] = 0.0
        changes.append(Change("gradual", s, None, ramp))
    elif kind is Kind.EPISODE:
        n = int(rng.integers(8, 31))
        s = int(rng.integers(MIN_START, max(MIN_START + 1, length - n - MIN_TAIL)))
        e = min(s + n, length - MIN_TAIL)
        mix[s:e], regime[s:e] = 1.0, CHANGED
        drift[s + label_delay:e + label_delay] = 1.0
        weight[s:s + label_delay] = 0.0
        weight[e:e + label_delay] = 0.0
        changes.append(Change("episode", s, e))
    elif kind is Kind.SHIFT:
        size = float(rng.uniform(0.1, 0.35))
        contrast_name, contrast = f"shift{size:+.2f}", shifted(baseline, -size if baseline_name == "negative" else size)
        s = int(rng.integers(MIN_START, length - MIN_TAIL - 12))
        delay = label_delay + int(round(shift_label_scale * (0.35 - size)))
        mix[s:], regime[s:] = 1.0, CHANGED
        drift[s + delay:] = 1.0
        weight[s:s + delay] = 0.0
        changes.append(Change("shift", s, None))

    true_dist = (1.0 - mix)[:, None] * baseline + mix[:, None] * contrast  # (T, 7)
    emotion, probs, gaps, face = observe(rng, true_dist)
    return Timeline(kind, probs, gaps, face, emotion, true_dist.astype(np.float32), regime, drift, weight,
                    changes, baseline_name, contrast_name)


def shifted(dist: np.ndarray, delta: float) -> np.ndarray:
    """``dist`` with ``delta`` more probability on the negative classes (angry, disgust, fear, sad), taken
    proportionally from the others (a negative delta moves it the other way); clipped to keep 2% each side.

    >>> d = shifted(np.array([0.1, 0.0, 0.0, 0.6, 0.1, 0.1, 0.1]), 0.2)
    >>> round(float(d[NEGATIVE].sum()), 6), round(float(d.sum()), 6)
    (0.4, 1.0)
    """
    neg = float(dist[NEGATIVE].sum())
    target = min(max(neg + delta, 0.02), 0.98)
    out = dist.astype(np.float64).copy()
    out[NEGATIVE] *= target / neg
    out[~NEGATIVE] *= (1.0 - target) / (1.0 - neg)
    return out


def observe(rng: np.random.Generator, true_dist: np.ndarray, with_labels: bool = False) -> tuple[np.ndarray, ...]:
    """What the service sees of one user whose post t is drawn from ``true_dist[t]`` (T, 7): the true
    emotions (T,), the CNN probabilities (T, 7), bursty gaps (T,) and face flags (T,); with
    ``with_labels`` also the class each post's probabilities were built around (T,), which the
    benchmark's oracle reads (the same draws either way)."""
    length: int = true_dist.shape[0]  # an int: numpy's stubs would pick rng.random's scalar overload
    emotion = categorical(rng, true_dist)
    face = rng.random(length) < rng.beta(17.0, 3.0)
    probs, predicted = _cnn_probabilities(rng, emotion, face)
    gaps = _gaps(rng, length)
    return (emotion, probs, gaps, face, predicted) if with_labels else (emotion, probs, gaps, face)


def draw_regimes(rng: np.random.Generator, negative_baseline: bool | None = None) -> tuple[str, np.ndarray, str, np.ndarray]:
    """A (baseline name, baseline, contrast name, contrast) pair as the generator draws them; with
    ``negative_baseline`` set, redrawn until the baseline is (True) or is not (False) mostly negative."""
    while True:
        drawn = _regimes(rng)
        if negative_baseline is None or (drawn[0] == "negative") == negative_baseline:
            return drawn


def generate_dataset(seed: int, n_users: int, length: int = 128,
                     kinds: tuple[Kind | str, ...] = KINDS) -> list[Timeline]:
    """``n_users`` timelines, kinds taken round-robin from ``kinds``; the same seed gives the same data."""
    rng = np.random.default_rng(seed)
    return [generate_user(rng, kinds[i % len(kinds)], length) for i in range(n_users)]


def stack(timelines: list[Timeline]) -> dict[str, np.ndarray]:
    """Batch equal-length timelines: features (B, T, 10), probs (B, T, 7), drift and weight (B, T)."""
    return {
        "features": np.stack([t.features for t in timelines]),
        "probs": np.stack([t.probs for t in timelines]),
        "drift": np.stack([t.drift for t in timelines]),
        "weight": np.stack([t.weight for t in timelines]),
    }


def observed_distribution(dist: np.ndarray) -> np.ndarray:
    """The expected CNN argmax distribution for a true-emotion distribution (..., 7)."""
    return dist @ CONFUSION


def _regimes(rng: np.random.Generator) -> tuple[str, np.ndarray, str, np.ndarray]:
    """A baseline and a contrast regime at least MIN_OBSERVED_TV apart (redrawn together until they are)."""
    while True:  # accepts > 99% of first draws
        baseline_name = str(rng.choice(list(ARCHETYPES)))
        baseline = rng.dirichlet(40.0 * ARCHETYPES[baseline_name])
        names = ["happy", "neutral"] if baseline_name == "negative" else ["sad", "angry", "fearful", "negative"]
        contrast_name = str(rng.choice(names))
        contrast = rng.dirichlet(40.0 * CONTRASTS[contrast_name])
        gap = 0.5 * np.abs(observed_distribution(contrast) - observed_distribution(baseline)).sum()
        if gap >= MIN_OBSERVED_TV:
            return baseline_name, baseline, contrast_name, contrast


def categorical(rng: np.random.Generator, dist: np.ndarray) -> np.ndarray:
    """One draw per row of dist (T, K) -> (T,) int."""
    cdf = np.cumsum(dist, axis=1)
    u = rng.random(dist.shape[0]) * cdf[:, -1]
    return (cdf < u[:, None]).sum(axis=1).clip(0, dist.shape[1] - 1)


def _cnn_probabilities(rng: np.random.Generator, emotion: np.ndarray, face: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Noisy softmax-like CNN outputs (T, 7) for the true emotions (T,), and the class each was built
    around (T,): given that class and the face flag, the outputs no longer depend on the emotion."""
    t: int = emotion.shape[0]  # an int: numpy's stubs would pick rng.beta's scalar overload
    predicted = categorical(rng, CONFUSION[emotion])  # (T,)
    random_class = rng.integers(0, N_CLASSES, t)
    predicted = np.where(~face & (rng.random(t) < 0.5), random_class, predicted)
    peak = 0.15 + 0.84 * rng.beta(1.6, 1.0, t)  # (T,) weight of the predicted class in the mean
    peak = np.where(face, peak, 0.6 * peak)
    mean = peak[:, None] * np.eye(N_CLASSES)[predicted] + (1.0 - peak)[:, None] * _SPREAD[predicted]
    concentration = np.where(face, 25.0, 12.0) * rng.lognormal(0.0, 0.4, t)  # (T,)
    probs = rng.gamma(concentration[:, None] * mean + 1e-3)
    probs = probs / probs.sum(axis=1, keepdims=True)
    return probs.astype(np.float32), predicted


def _gaps(rng: np.random.Generator, length: int) -> np.ndarray:
    """Bursty inter-post gaps in seconds (T,); the first is 0."""
    burst_p = rng.uniform(0.1, 0.5)
    burst_mean = rng.uniform(120.0, 1200.0)
    session_median = np.exp(rng.uniform(np.log(2 * 3600.0), np.log(48 * 3600.0)))
    burst = rng.random(length) < burst_p
    gaps = np.where(burst, rng.exponential(burst_mean, length), rng.lognormal(np.log(session_median), 1.0, length))
    gaps[0] = 0.0
    return gaps


__all__ = ["Kind", "KINDS", "LASTING", "Change", "Timeline", "generate_user", "generate_dataset", "stack", "observe",
           "draw_regimes", "shifted", "categorical",
           "LABELS", "CONFUSION"]
