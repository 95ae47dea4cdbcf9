"""What every stream family shares: the :class:`Stream` type, the kinds of stream, and the pieces of a
user's simulation that several families draw (regimes, a per-user classifier, posting times).

A family is a module with ``NAME``, ``KINDS`` (a subset of :data:`KINDS`, in that order),
``make_stream(rng, kind) -> Stream`` and ``make_streams(seed, kind, n) -> list[Stream]`` (the training
families also take ``length`` and ``pre``, the range of a change's first post). The benchmark (``benchmarks/detection.py``) reads only ``probs``, ``gaps``, ``face`` and the change
positions, so a family written by someone else needs nothing but a thin adapter
(:mod:`model.families.blind_adapter`).

=============== ==================================================================== ==================
kind            stream                                                               change positions
=============== ==================================================================== ==================
none            no change: a long stream of one personal baseline (false alarms)     none
abrupt_pos_neg  a non-negative baseline turns negative at ``start``, for good        start
abrupt_neg_pos  a gloomy baseline turns cheerful or neutral at ``start``, for good   start
gradual         the mix moves linearly from baseline to the new regime over a ramp   start (ramp's 1st)
small_shift     the share of negative emotions moves by 0.1-0.3 at ``start``         start
transient       one dip of 1-3 posts of another regime: must NOT alarm               start, end
episode         a dip of many posts that recovers: must alarm, and end               start, end
two_changes     a lasting change at ``start``, then another one at ``start2``        start, start2
placebo         no change, timed like a change stream (``start`` drawn, nothing      start
                happens there): the control
=============== ==================================================================== ==================
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

# shared with the families built on them (`X as X`: re-exported, for the type checker)
from model.synthetic import NEGATIVE, categorical as categorical, shifted as shifted

KINDS = ("none", "abrupt_pos_neg", "abrupt_neg_pos", "gradual", "small_shift", "transient", "episode",
         "two_changes", "placebo")
CHANGE_KINDS = ("abrupt_pos_neg", "abrupt_neg_pos", "gradual", "small_shift", "episode", "two_changes")
N_CLASSES = 7


@dataclass
class Stream:
    """One simulated user as the service would see it, with the truth no detector sees."""

    kind: str
    probs: np.ndarray        # (T, 7) float32: what the emotion classifier says
    gaps: np.ndarray         # (T,) seconds since the previous post (0 for the first)
    face: np.ndarray         # (T,) bool
    start: int | None = None   # first post of the (first) change
    end: int | None = None     # first post back at baseline (None: the change lasts)
    start2: int | None = None  # first post of the second change (two_changes only)
    true_emotion: np.ndarray | None = None  # (T,) int
    family: str = ""

    @property
    def length(self) -> int:
        return int(self.probs.shape[0])

    @property
    def negative_share(self) -> np.ndarray:  # (T,)
        return self.probs[:, NEGATIVE].sum(axis=1)

    def head(self, n: int) -> "Stream":
        """The user's first ``n`` posts (change positions from ``n`` on become None)."""
        return self._span(0, n)

    def tail(self, first: int) -> "Stream":
        """The posts from ``first`` on, as a new user would post them (first gap 0), with the change
        positions moved to the tail's indices (None where they fall before it)."""
        span = self._span(first, None)
        gaps = span.gaps.copy()
        gaps[0] = 0.0
        return dataclasses.replace(span, gaps=gaps)

    def _span(self, lo: int, hi: int | None) -> "Stream":
        """Posts ``lo`` to ``hi`` (None: the end), change positions moved to the span's indices (None
        where they fall outside it)."""
        def move(i: int | None) -> int | None:
            return None if i is None or i < lo or (hi is not None and i >= hi) else i - lo
        emotion = None if self.true_emotion is None else self.true_emotion[lo:hi]
        return Stream(self.kind, self.probs[lo:hi], self.gaps[lo:hi], self.face[lo:hi], move(self.start),
                      move(self.end), move(self.start2), emotion, self.family)


def seeded(family: str, seed: int, kind: str) -> np.random.Generator:
    """Each (family, seed, kind) its own generator: kinds do not share draws, families do not either."""
    return np.random.default_rng([seed, KINDS.index(kind), sum(map(ord, family))])


# --- pieces the non-blind families other than `synthetic` share ------------------------------------
#                      angry  disg  fear  happy  sad   surpr neutral
MOODS = {
    "cheerful": np.array([0.02, 0.01, 0.02, 0.62, 0.04, 0.14, 0.15]),
    "content":  np.array([0.03, 0.01, 0.03, 0.38, 0.06, 0.07, 0.42]),
    "flat":     np.array([0.05, 0.02, 0.05, 0.10, 0.10, 0.03, 0.65]),
    "mixed":    np.array([0.12, 0.03, 0.08, 0.27, 0.16, 0.09, 0.25]),
    "gloomy":   np.array([0.16, 0.05, 0.12, 0.07, 0.38, 0.03, 0.19]),
}
LOW_MOODS = {
    "sad":      np.array([0.06, 0.02, 0.10, 0.05, 0.55, 0.02, 0.20]),
    "irritable": np.array([0.45, 0.12, 0.06, 0.06, 0.14, 0.03, 0.14]),
    "anxious":  np.array([0.10, 0.03, 0.42, 0.05, 0.20, 0.10, 0.10]),
    "gloomy":   MOODS["gloomy"],
}
HIGH_MOODS = {"cheerful": MOODS["cheerful"], "content": MOODS["content"]}


def draw_moods(rng: np.random.Generator, gloomy: bool | None = None, spread: float = 30.0,
               min_tv: float = 0.35) -> tuple[np.ndarray, np.ndarray]:
    """A personal baseline and a contrasting regime (true-emotion distributions, total variation >=
    ``min_tv``): a gloomy baseline turns cheerful or content, any other one turns low."""
    while True:
        names = ["gloomy"] if gloomy else [n for n in MOODS if n != "gloomy"] if gloomy is False else list(MOODS)
        name = str(rng.choice(names))
        baseline = rng.dirichlet(spread * MOODS[name])
        pool = HIGH_MOODS if name == "gloomy" else LOW_MOODS
        contrast = rng.dirichlet(spread * pool[str(rng.choice(list(pool)))])
        if 0.5 * np.abs(baseline - contrast).sum() >= min_tv:
            return baseline, contrast


@dataclass(frozen=True)
class Classifier:
    """One user's emotion classifier as their photos meet it: accuracy, confusions and confidence
    differ per user (lighting, camera, face angle, the classifier's biases about them)."""

    confusion: np.ndarray  # (7, 7) rows: true, columns: predicted
    sharpness: float       # logit margin of the predicted class: higher = more confident outputs
    noise: float           # sd of the other logits
    faceless_random: float  # without a face: share of predictions that are a random class


def draw_classifier(rng: np.random.Generator, accuracy: tuple[float, float] = (0.5, 0.75),
                    bias: bool = False) -> Classifier:
    """Accuracy drawn per user in ``accuracy``; the errors go to classes drawn per user (Dirichlet), easy
    classes (happy, surprise) above the user's mean and hard ones (disgust, fear) below it. With ``bias``
    one class (neutral or sad, as often happens with poor light) takes an extra share of every row."""
    acc = rng.uniform(*accuracy)
    ease = np.array([0.0, -0.15, -0.12, 0.15, -0.03, 0.1, 0.02])
    diag = np.clip(acc + ease, 0.25, 0.95)
    confusion = np.zeros((N_CLASSES, N_CLASSES))
    for k in range(N_CLASSES):
        errors = rng.dirichlet(np.full(N_CLASSES - 1, 0.7))
        confusion[k, np.arange(N_CLASSES) != k] = (1.0 - diag[k]) * errors
        confusion[k, k] = diag[k]
    if bias:
        sink = int(rng.choice([6, 4]))
        share = rng.uniform(0.05, 0.2)
        confusion = (1.0 - share) * confusion
        confusion[:, sink] += share
    return Classifier(confusion, float(rng.uniform(1.2, 4.0)), float(rng.uniform(0.3, 1.0)),
                      float(rng.uniform(0.3, 0.7)))


def classify(rng: np.random.Generator, clf: Classifier, emotion: np.ndarray, face: np.ndarray) -> np.ndarray:
    """Softmax outputs (T, 7) float32 of ``clf`` for the true emotions (T,): the predicted class gets a
    logit margin around the user's sharpness; faceless posts are often a random class and flatter."""
    t = emotion.shape[0]
    predicted = categorical(rng, clf.confusion[emotion])
    predicted = np.where(~face & (rng.random(t) < clf.faceless_random), rng.integers(0, N_CLASSES, t), predicted)
    margin = clf.sharpness * rng.lognormal(0.0, 0.35, t) * np.where(face, 1.0, 0.5)  # (T,)
    logits = rng.normal(0.0, clf.noise, (t, N_CLASSES)) + margin[:, None] * np.eye(N_CLASSES)[predicted]
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    return (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)


def mood_regimes(kind: str, rng: np.random.Generator, length: int, pre: tuple[int, int], post: int,
                 after_end: int, second_after: tuple[int, int], dip: tuple[int, int], episode: tuple[int, int],
                 ramp: tuple[int, int], spread: float = 30.0) -> tuple[np.ndarray, int | None, int | None, int | None]:
    """The regime (true-emotion distribution) of every post of a stream (T, 7), with its change's start,
    end and second start, for the families that draw their moods from ``MOODS`` (sessions, days): a
    personal baseline and a contrast (``draw_moods``, at ``spread``); a two_changes stream that does not
    go back to its baseline moves on to a third mood, drawn against the contrast."""
    baseline, contrast = draw_moods(rng, gloomy=True if kind == "abrupt_neg_pos" else
                                    False if kind == "abrupt_pos_neg" else None, spread=spread)
    if kind == "none":
        return np.repeat(baseline[None], length, axis=0), None, None, None
    start = int(rng.integers(pre[0], pre[1] + 1))
    mix = np.zeros(start + post)
    end = start2 = None
    third = None
    if kind == "small_shift":
        gloomy = baseline[NEGATIVE].sum() > 0.5
        contrast = shifted(baseline, float(rng.uniform(0.1, 0.3)) * (-1 if gloomy else 1))
        mix[start:] = 1.0
    elif kind == "placebo":
        contrast = baseline
    elif kind in ("transient", "episode"):
        n = int(rng.integers(dip[0], dip[1] + 1)) if kind == "transient" else int(rng.integers(episode[0], episode[1] + 1))
        end = start + n
        mix = np.zeros(end + after_end)
        mix[start:end] = 1.0
    elif kind == "gradual":
        ramp_posts = int(rng.integers(ramp[0], ramp[1] + 1))
        mix[start:] = np.minimum((np.arange(post) + 1) / ramp_posts, 1.0)
    elif kind == "two_changes":
        start2 = start + int(rng.integers(second_after[0], second_after[1] + 1))
        mix = np.zeros(start2 + post)
        mix[start:] = 1.0
        third = baseline if rng.random() < 0.5 else draw_moods(rng, gloomy=bool(contrast[NEGATIVE].sum() < 0.4))[0]
    else:
        mix[start:] = 1.0
    dist = (1.0 - mix)[:, None] * baseline + mix[:, None] * contrast
    if third is not None:
        dist[start2:] = third
    return dist, start, end, start2
