"""blind9: simulated image timelines of social-media users, as a FER-2013 classifier reports them.

Each stream is one user's sequence of image posts. For every post the simulator records what the
person actually felt (``true_emotion``), the seconds since the previous post (``gaps``), whether the
face detector found a face (``face``) and the 7-class probability vector the emotion pipeline
returned (``probs``). Labels follow FER-2013: angry, disgust, fear, happy, sad, surprise, neutral;
angry, disgust, fear and sad count as negative.

The world
---------
* **Who the users are.** Every user gets a personal emotional pattern: a share of negative feeling
  (from a few percent for cheerful people to about 80% for gloomy ones), a *kind* of negativity
  (mostly anger, mostly sadness, mostly anxiety, or mixed; disgust is always rare) and a flavour of
  the rest (cheerful, stoic-neutral, calm, expressive with much surprise). Feelings are drawn post
  by post from that pattern; posts made minutes apart (photo dumps) usually share one feeling.
* **Moods wander.** A mean-reverting mood, correlated over hours to days of wall-clock time (plus,
  for some users, a yearly rhythm), tilts every post toward or away from negativity. It never adds
  up to a lasting change.
* **Posting.** Users range from several posts a day to a few a year-equivalent. Pauses between
  sessions are heavy-tailed, with occasional long silences; sessions are single posts, photo dumps
  (posts seconds apart) or trips (posts hours apart, few faces). A personal daily and weekly rhythm
  (peak hour, quiet nights, busier or quieter weekends) shapes when posts happen. Some users post
  more when they feel worse, others withdraw.
* **Faces.** Users range from selfie people to landscape/food people; the share of posts with a face
  drifts slowly and may follow mood (fewer selfies when low). Some faces are not the user's
  (friends, celebrities, memes) and show their own, mostly cheerful, expressions. Not everyone shows
  what they feel: less expressive users put on a posed smile or a blank face. The detector misses
  some faces (more in the dark) and occasionally "finds" one in a pattern.
* **The classifier.** A user-specific imperfect FER model: 45-75% accurate on displayed expressions,
  with FER-typical confusions (fear/surprise, sad/neutral, disgust/angry, fear/sad), rare disgust
  predictions, a lean toward sad and neutral, weaker recognition in dim light, "resting faces" read
  as angry or sad, and calibration from overconfident to nearly flat. When no face is detected the
  pipeline returns what its kind returns: a uniform vector, the FER-2013 class prior, a neutral
  default, or the network's noisy reaction to the whole scene.
* **Nuisances.** Any user (stable ones included) may get a new phone (different quality and colour
  bias), start using a beautifying filter (happier outputs), take up a hobby photographed without
  faces, or start posting memes of other people. None of these changes how the user feels.

Kinds of streams
----------------
``none`` (1500-3000 posts, no change); ``abrupt_pos_neg`` and ``abrupt_neg_pos`` (a lasting switch
at ``start``); ``gradual`` (a ramp of 20-300 posts from ``start``, toward more negativity, toward
less, or toward different emotions with the same negativity, e.g. happiness fading to blankness);
``small_shift`` (negative share moves by 0.1-0.3, mostly up); ``transient`` (1-3 posts of another
mood, ``end`` is the first post back; not a change); ``episode`` (10-80 posts of another mood);
``two_changes`` (a lasting change, then at ``start2`` a return, a further step, or a different kind
of negativity); ``placebo`` (a stable user with a ``start`` drawn as change streams draw it).
Change streams have 300-900 posts, 20 <= start <= 300 and at least 150 posts after the last change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

NAME = "blind9"
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
KINDS = (
    "none",
    "abrupt_pos_neg",
    "abrupt_neg_pos",
    "gradual",
    "small_shift",
    "transient",
    "episode",
    "two_changes",
    "placebo",
)

FloatArr = npt.NDArray[np.float64]
IntArr = npt.NDArray[np.int64]
BoolArr = npt.NDArray[np.bool_]

ANGRY, DISGUST, FEAR, HAPPY, SAD, SURPRISE, NEUTRAL = range(7)
NEG_IDX = np.array([ANGRY, DISGUST, FEAR, SAD])
POS_IDX = np.array([HAPPY, SURPRISE, NEUTRAL])
NEG_MASK = np.isin(np.arange(7), NEG_IDX)

# Composition of negative feeling (angry, disgust, fear, sad) and of the rest (happy, surprise, neutral).
NEG_STYLES: dict[str, FloatArr] = {
    "anger": np.array([0.60, 0.12, 0.08, 0.20]),
    "sadness": np.array([0.12, 0.04, 0.14, 0.70]),
    "anxiety": np.array([0.10, 0.03, 0.60, 0.27]),
    "mixed": np.array([0.30, 0.08, 0.25, 0.37]),
}
POS_STYLES: dict[str, FloatArr] = {
    "cheerful": np.array([0.65, 0.10, 0.25]),
    "stoic": np.array([0.15, 0.05, 0.80]),
    "calm": np.array([0.35, 0.07, 0.58]),
    "expressive": np.array([0.45, 0.30, 0.25]),
}
# Archetype: (lowest negative share, highest, allowed flavours of the non-negative rest).
ARCHETYPES: dict[str, tuple[float, float, tuple[str, ...]]] = {
    "cheerful": (0.03, 0.18, ("cheerful", "expressive")),
    "stoic": (0.04, 0.25, ("stoic",)),
    "calm": (0.08, 0.32, ("calm", "stoic")),
    "expressive": (0.18, 0.42, ("expressive",)),
    "mixed": (0.30, 0.55, ("calm", "expressive", "stoic")),
    "volatile": (0.35, 0.62, ("expressive", "calm")),
    "gloomy": (0.50, 0.82, ("stoic", "calm")),
}

# FER-typical confusions: row = shown expression, how much it also looks like each class.
CONFUSION = np.array(
    [
        # ang   dis   fea   hap   sad   sur   neu
        [1.00, 0.35, 0.20, 0.00, 0.30, 0.05, 0.20],  # angry
        [0.60, 1.00, 0.15, 0.05, 0.20, 0.05, 0.10],  # disgust
        [0.20, 0.05, 1.00, 0.00, 0.45, 0.50, 0.10],  # fear
        [0.00, 0.02, 0.00, 1.00, 0.00, 0.15, 0.20],  # happy
        [0.20, 0.05, 0.30, 0.00, 1.00, 0.00, 0.55],  # sad
        [0.05, 0.00, 0.45, 0.20, 0.00, 1.00, 0.10],  # surprise
        [0.10, 0.00, 0.05, 0.15, 0.45, 0.05, 1.00],  # neutral
    ]
)
CLASS_EASE = np.array([0.85, 0.70, 0.65, 1.30, 0.85, 1.15, 1.00])  # happy and surprise are easy, fear hard
CLASS_BIAS = np.array([0.10, -0.90, 0.00, 0.10, 0.25, -0.10, 0.35])  # disgust rarely predicted
DARK_BIAS = np.array([0.10, 0.00, 0.25, -0.30, 0.45, -0.10, 0.20])  # dim light looks sad/fearful
FER_PRIOR = np.array([0.138, 0.015, 0.143, 0.251, 0.169, 0.111, 0.173])
OTHER_FACES = np.array([0.08, 0.03, 0.04, 0.45, 0.06, 0.14, 0.20])  # friends, celebrities, memes
MOOD_DIR = np.array([1.0, 1.0, 1.0, -0.6, 1.0, -0.3, 0.0])  # how a low mood tilts feelings
FALLBACKS = ("uniform", "prior", "neutral", "scene")

DAY = 86400.0
WEEK = 7 * DAY
YEAR = 365.25 * DAY


@dataclass
class Stream:
    """One user's timeline: what the classifier saw and what really happened."""

    kind: str
    probs: npt.NDArray[np.float32]
    gaps: FloatArr
    face: BoolArr
    start: int | None
    end: int | None
    start2: int | None
    true_emotion: IntArr


@dataclass
class _Plan:
    """The emotional script of a stream: per-post pattern of feelings and the change positions."""

    pattern: FloatArr  # (T, 7) probabilities of each true feeling
    base: FloatArr
    start: int | None = None
    end: int | None = None
    start2: int | None = None
    forced: IntArr | None = None  # true feelings of the transient posts [start, end)


# ----------------------------------------------------------------------------------------- patterns


def neg_share(p: FloatArr) -> Any:
    """Share of negative feeling in a pattern (or in each row of a pattern array)."""
    return p[..., NEG_IDX].sum(axis=-1)


def _draw_comp(rng: np.random.Generator, center: FloatArr) -> FloatArr:
    conc = rng.uniform(20.0, 60.0)
    return np.asarray(rng.dirichlet(center * conc + 0.05), dtype=np.float64)


def _compose(neg: float, neg_comp: FloatArr, pos_comp: FloatArr) -> FloatArr:
    p = np.zeros(7)
    p[NEG_IDX] = neg * neg_comp / neg_comp.sum()
    p[POS_IDX] = (1.0 - neg) * pos_comp / pos_comp.sum()
    return p


def _draw_baseline(rng: np.random.Generator, lo: float, hi: float) -> FloatArr:
    """A personal pattern whose negative share lies in [lo, hi]."""
    names = [n for n, (a, b, _) in ARCHETYPES.items() if a < hi and b > lo]
    a, b, flavours = ARCHETYPES[names[rng.integers(len(names))]]
    neg = rng.uniform(max(a, lo), min(b, hi))
    neg_style = list(NEG_STYLES)[rng.integers(len(NEG_STYLES))]
    pos_style = flavours[rng.integers(len(flavours))]
    return _compose(neg, _draw_comp(rng, NEG_STYLES[neg_style]), _draw_comp(rng, POS_STYLES[pos_style]))


def _with_neg(rng: np.random.Generator, p: FloatArr, new_neg: float, restyle_neg: float, restyle_pos: float,
              pos_styles: tuple[str, ...] = tuple(POS_STYLES)) -> FloatArr:
    """p moved to negative share new_neg; its compositions are redrawn with the given probabilities."""
    neg_comp, pos_comp = p[NEG_IDX].copy(), p[POS_IDX].copy()
    if rng.random() < restyle_neg:
        neg_comp = _draw_comp(rng, NEG_STYLES[list(NEG_STYLES)[rng.integers(len(NEG_STYLES))]])
    if rng.random() < restyle_pos:
        pos_comp = _draw_comp(rng, POS_STYLES[pos_styles[rng.integers(len(pos_styles))]])
    return _compose(float(np.clip(new_neg, 0.02, 0.95)), neg_comp, pos_comp)


def _more_negative(rng: np.random.Generator, p: FloatArr, lo: float, hi: float) -> FloatArr:
    neg = float(neg_share(p))
    return _with_neg(rng, p, min(0.93, neg + rng.uniform(lo, hi)), 0.35, 0.3, ("stoic", "calm"))


def _less_negative(rng: np.random.Generator, p: FloatArr, lo: float, hi: float) -> FloatArr:
    neg = float(neg_share(p))
    new = max(0.03, neg - rng.uniform(lo, min(hi, max(lo, neg - 0.03))))
    return _with_neg(rng, p, new, 0.2, 0.6, ("cheerful", "calm", "expressive"))


def _recolor(rng: np.random.Generator, p: FloatArr) -> FloatArr:
    """Same negativity, different emotions: another kind of negativity and/or happiness fading to blank."""
    neg = float(neg_share(p)) + rng.uniform(-0.05, 0.05)
    neg_comp, pos_comp = p[NEG_IDX], p[POS_IDX]
    dominant = int(np.argmax(neg_comp))
    styles = [s for s, c in NEG_STYLES.items() if s != "mixed" and int(np.argmax(c)) != dominant]
    new_neg = _draw_comp(rng, NEG_STYLES[styles[rng.integers(len(styles))]])
    if rng.random() < 0.5 or pos_comp[0] < 0.3:
        return _compose(float(np.clip(neg, 0.03, 0.93)), new_neg, pos_comp)
    flat = _draw_comp(rng, POS_STYLES["stoic"]) if pos_comp[0] > 0.3 else _draw_comp(rng, POS_STYLES["cheerful"])
    keep = new_neg if rng.random() < 0.5 else neg_comp
    return _compose(float(np.clip(neg, 0.03, 0.93)), keep, flat)


def _peak_mood(rng: np.random.Generator, base: FloatArr, negative: bool) -> FloatArr:
    """A sharply different mood for a few posts: one dominant feeling."""
    if negative:
        choices = [e for e in (ANGRY, FEAR, SAD, SAD) if e != int(np.argmax(base))]
    else:
        choices = [e for e in (HAPPY, HAPPY, SURPRISE) if e != int(np.argmax(base))]
    p = np.full(7, 0.02)
    p[choices[rng.integers(len(choices))]] = rng.uniform(5.0, 20.0) * 0.1
    return np.asarray(p / p.sum(), dtype=np.float64)


# ---------------------------------------------------------------------------------------------- plans


def _draw_start(rng: np.random.Generator) -> int:
    """Where a change happens: shared by every change kind and by placebo."""
    if rng.random() < 0.6:
        return int(rng.integers(20, 301))
    return int(np.clip(20 + rng.exponential(90.0), 20, 300))


def _length(rng: np.random.Generator, last: int) -> int:
    return int(rng.integers(max(300, last + 150), 901))


def _plan(rng: np.random.Generator, kind: str) -> _Plan:
    if kind == "none":
        base = _draw_baseline(rng, 0.03, 0.82)
        return _Plan(np.tile(base, (int(rng.integers(1500, 3001)), 1)), base)
    if kind == "placebo":
        base = _draw_baseline(rng, 0.03, 0.82)
        start = _draw_start(rng)
        return _Plan(np.tile(base, (_length(rng, start), 1)), base, start=start)
    if kind == "abrupt_pos_neg":
        base = _draw_baseline(rng, 0.03, 0.35)
        new = _with_neg(rng, base, rng.uniform(max(float(neg_share(base)) + 0.15, 0.4), 0.92), 0.35, 0.3,
                        ("stoic", "calm"))
        return _switch(rng, base, new)
    if kind == "abrupt_neg_pos":
        base = _draw_baseline(rng, 0.45, 0.82)
        neg = float(neg_share(base))
        new = _with_neg(rng, base, rng.uniform(0.03, min(neg - 0.2, 0.35)), 0.2, 0.8, ("cheerful", "calm", "stoic"))
        return _switch(rng, base, new)
    if kind == "small_shift":
        d = rng.uniform(0.1, 0.3)
        up = rng.random() < 0.75
        base = _draw_baseline(rng, 0.03, 0.85 - d) if up else _draw_baseline(rng, d + 0.04, 0.82)
        neg = float(neg_share(base))
        new = _with_neg(rng, base, neg + d if up else neg - d, 0.1, 0.1)
        return _switch(rng, base, new)
    if kind == "gradual":
        base = _draw_baseline(rng, 0.03, 0.82)
        neg = float(neg_share(base))
        mode = rng.random()
        if mode < 0.3:
            new = _recolor(rng, base)
        elif mode < 0.5 and neg > 0.3:
            new = _less_negative(rng, base, 0.15, 0.5)
        elif neg < 0.7:
            new = _more_negative(rng, base, 0.15, 0.5)
        else:
            new = _less_negative(rng, base, 0.2, 0.5)
        start, ramp = _draw_start(rng), int(rng.integers(20, 301))
        t = _length(rng, start + max(0, ramp - 90))
        w = np.clip((np.arange(t) - start + 1) / ramp, 0.0, 1.0)[:, None]
        return _Plan((1.0 - w) * base + w * new, base, start=start)
    if kind == "transient":
        base = _draw_baseline(rng, 0.03, 0.82)
        start = _draw_start(rng)
        end = start + int(rng.integers(1, 4))
        peak = _peak_mood(rng, base, rng.random() < 0.8)
        forced = rng.choice(7, size=end - start, p=peak)
        return _Plan(np.tile(base, (_length(rng, end), 1)), base, start=start, end=end, forced=forced)
    if kind == "episode":
        base = _draw_baseline(rng, 0.03, 0.82)
        neg = float(neg_share(base))
        negative = neg < 0.2 or (neg < 0.6 and rng.random() < 0.75)
        spell = _more_negative(rng, base, 0.25, 0.6) if negative else _less_negative(rng, base, 0.25, 0.6)
        if rng.random() < 0.25:  # some spells are one dominant feeling rather than a shifted mix
            spell = 0.5 * spell + 0.5 * _peak_mood(rng, base, negative)
        start = _draw_start(rng)
        end = start + int(rng.integers(10, 81))
        pattern = np.tile(base, (_length(rng, end), 1))
        pattern[start:end] = spell
        return _Plan(pattern, base, start=start, end=end)
    if kind == "two_changes":
        base = _draw_baseline(rng, 0.03, 0.82)
        neg = float(neg_share(base))
        down = neg > 0.35 and (neg > 0.65 or rng.random() < 0.35)
        first = _less_negative(rng, base, 0.2, 0.45) if down else _more_negative(rng, base, 0.2, 0.45)
        f_neg = float(neg_share(first))
        options = ["back"]
        if (down and f_neg > 0.25) or (not down and f_neg < 0.75):
            options.append("further")
        if not down:
            options.append("recolor")
        how = options[rng.integers(len(options))]
        if how == "back":
            second = base
        elif how == "further":
            second = _less_negative(rng, first, 0.15, 0.3) if down else _more_negative(rng, first, 0.15, 0.3)
        else:
            second = _recolor(rng, first)
        start = _draw_start(rng)
        start2 = start + int(rng.integers(100, 401))
        pattern = np.tile(base, (_length(rng, start2), 1))
        pattern[start:start2] = first
        pattern[start2:] = second
        return _Plan(pattern, base, start=start, start2=start2)
    raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")


def _switch(rng: np.random.Generator, base: FloatArr, new: FloatArr) -> _Plan:
    start = _draw_start(rng)
    pattern = np.tile(base, (_length(rng, start), 1))
    pattern[start:] = new
    return _Plan(pattern, base, start=start)


# -------------------------------------------------------------------------------------------- posting


def _week_clock(rng: np.random.Generator) -> tuple[FloatArr, FloatArr]:
    """Cumulative activity over the hours of a week (daily peak, quiet nights, weekend factor)."""
    hours = np.arange(168)
    peak, kappa = rng.uniform(10.0, 23.0), rng.uniform(0.5, 2.5)
    day = np.exp(kappa * np.cos(2 * np.pi * ((hours % 24) - peak) / 24))
    rate = rng.uniform(0.02, 0.3) + day / day.max()
    rate *= np.where(hours // 24 >= 5, np.exp(rng.uniform(np.log(0.6), np.log(1.8))), 1.0)
    rate /= rate.mean()
    edges = np.arange(169, dtype=np.float64) * 3600.0
    return np.concatenate([[0.0], np.cumsum(rate) * 3600.0]), edges


def _posting(rng: np.random.Generator, t: int, pace: FloatArr) -> tuple[FloatArr, FloatArr, BoolArr]:
    """Gaps (s), wall-clock times (s, local) and a trip flag for t posts; pace multiplies pauses."""
    mean_gap = 10 ** np.clip(rng.normal(np.log10(8 * 3600.0), 0.8), np.log10(900.0), np.log10(120 * DAY))
    p_burst, p_trip = rng.uniform(0.0, 0.12), rng.uniform(0.1, 0.5)
    trip = rng.random(t) < p_trip
    size = np.where(trip, 4 + rng.geometric(1 / 8, t), 2 + rng.geometric(1 / 4, t))
    size = np.where(rng.random(t) < p_burst, np.minimum(size, 60), 1)
    cum = np.cumsum(size)
    n = int(np.searchsorted(cum, t)) + 1
    size, trip = size[:n].copy(), trip[:n] & (size[:n] > 1)
    size[-1] -= cum[n - 1] - t
    first = np.concatenate([[0], np.cumsum(size)[:-1]])
    sess = np.repeat(np.arange(n), size)
    pos = np.arange(t) - first[sess]
    # pauses between sessions: heavy-tailed, with rare long silences, scaled by the mood-driven pace
    sig = rng.uniform(0.6, 1.6)
    pause = mean_gap * np.exp(sig * rng.standard_normal(n) - sig**2 / 2) * pace[first]
    silent = rng.random(n) < rng.uniform(0.001, 0.02)
    pause[silent] *= np.exp(rng.uniform(np.log(10), np.log(60), silent.sum()))
    pause = np.minimum(pause, 2 * YEAR)
    cum_act, edges = _week_clock(rng)
    op = rng.uniform(0, WEEK) + np.cumsum(pause)
    weeks = np.floor(op / WEEK)
    wall = weeks * WEEK + np.interp(op - weeks * WEEK, cum_act, edges)
    inner = np.where(trip[sess], np.exp(rng.normal(np.log(3 * 3600.0), 0.8, t)),
                     np.maximum(1.0, np.exp(rng.normal(np.log(15.0), 1.0, t))))
    inner[pos == 0] = 0.0
    dur = np.bincount(sess, weights=inner, minlength=n)
    between = np.diff(wall) - dur[:-1]
    floor = np.exp(rng.normal(np.log(600.0), 1.0, n - 1))
    gaps = inner.copy()
    gaps[first[1:]] = np.maximum(between, floor)
    gaps[0] = 0.0
    times = wall[0] + np.cumsum(gaps)
    return gaps, times, trip[sess] & (pos > 0)


def _mood(rng: np.random.Generator, times: FloatArr) -> FloatArr:
    """Mean-reverting mood in wall-clock time (hours to days), plus an optional yearly rhythm."""
    tau = np.exp(rng.uniform(np.log(0.3 * DAY), np.log(4 * DAY)))
    sigma = rng.uniform(0.1, 0.45)
    decay = np.exp(-np.diff(times, prepend=times[0]) / tau).tolist()
    shocks = (rng.standard_normal(len(times)) * sigma).tolist()
    m, out = shocks[0], [0.0] * len(times)
    for i, (a, e) in enumerate(zip(decay, shocks)):
        m = a * m + (1.0 - a * a) ** 0.5 * e if i else m
        out[i] = m
    mood = np.array(out)
    if rng.random() < 0.4:
        mood += rng.uniform(0.05, 0.25) * np.cos(2 * np.pi * times / YEAR + rng.uniform(0, 2 * np.pi))
    return mood + rng.normal(0.0, 0.15, len(times))


def _sample_rows(rng: np.random.Generator, p: FloatArr) -> IntArr:
    cum = np.cumsum(p, axis=1)
    u = rng.random(len(p))[:, None] * cum[:, -1:]
    return np.asarray(np.minimum((u >= cum).sum(axis=1), 6), dtype=np.int64)


def _softmax(z: FloatArr) -> FloatArr:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return np.asarray(e / e.sum(axis=1, keepdims=True), dtype=np.float64)


def _smooth_wander(rng: np.random.Generator, t: int, amp: float) -> FloatArr:
    idx = np.arange(t)[:, None]
    periods = np.exp(rng.uniform(np.log(80), np.log(2500), 3))
    waves = np.sin(2 * np.pi * idx / periods + rng.uniform(0, 2 * np.pi, 3))
    return np.asarray(waves @ rng.normal(0.0, amp, 3), dtype=np.float64)


# ---------------------------------------------------------------------------------------- the stream


def make_stream(rng: np.random.Generator, kind: str) -> Stream:
    """Simulate one user's timeline of the given kind."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    plan = _plan(rng, kind)
    t = len(plan.pattern)
    base_neg = float(neg_share(plan.base))
    lasting_neg = neg_share(plan.pattern) - base_neg

    # when: posting pace may follow mood (some post more when low, some withdraw)
    pace = np.exp(rng.normal(0.0, 1.0) * lasting_neg)
    gaps, times, on_trip = _posting(rng, t, pace)

    # what the person felt: pattern tilted by the wandering mood, shared within quick sessions
    mood = _mood(rng, times)
    felt_p = plan.pattern * np.exp(np.clip(mood, -3, 3)[:, None] * MOOD_DIR)
    fresh = _sample_rows(rng, felt_p)
    repeat = rng.random(t) < rng.uniform(0.6, 0.95) * np.exp(-gaps / 7200.0)
    repeat[0] = False
    for at_change in (plan.start, plan.end, plan.start2):
        if at_change is not None and at_change < t:
            repeat[at_change] = False
    if plan.forced is not None and plan.start is not None:
        fresh[plan.start:plan.start + len(plan.forced)] = plan.forced
        repeat[plan.start:plan.start + len(plan.forced)] = False
    source = np.maximum.accumulate(np.where(repeat, 0, np.arange(t)))
    true = fresh[source]

    # what the face showed: less expressive people put on a smile or a blank face
    masked = rng.random(t) > rng.uniform(0.55, 1.0)
    mask_face = np.where(rng.random(t) < rng.uniform(0.2, 0.8), HAPPY, NEUTRAL)
    shown = np.where(masked, mask_face, true)

    # nuisances that change outputs but not feelings
    idx = np.arange(t)
    quality_step, phone_bias = np.ones(t), np.zeros((t, 7))
    filt, face_shift, other_shift = np.zeros(t), np.zeros(t), np.zeros(t)
    scene_bias = np.tile(np.array([0.0, -1.0, 0.2, 0.0, 0.3, -0.2, 0.6]) + rng.normal(0, 0.5, 7), (t, 1))
    n_events = int(rng.random() < 0.45) * int(rng.integers(1, 3))
    for _ in range(n_events):
        at = idx >= rng.integers(10, t - 10)
        what = rng.integers(4)
        if what == 0:  # new phone: different sensor, processing and quality
            quality_step[at] *= rng.uniform(0.75, 1.3)
            phone_bias[at] += rng.normal(0.0, 0.35, 7)
        elif what == 1:  # beautifying filter, sometimes dropped again
            stop = t if rng.random() < 0.5 else int(at.argmax()) + int(rng.integers(30, 300))
            filt[at & (idx < stop)] = rng.uniform(0.5, 1.5)
        elif what == 2:  # a hobby photographed without faces
            face_shift[at] -= rng.uniform(1.5, 3.5)
            scene_bias[at] += rng.normal(0.0, 0.5, 7)
        else:  # memes and celebrity pictures
            other_shift[at] += rng.uniform(1.5, 3.0)

    # faces: selfie people to landscape people, drifting, maybe fewer selfies when low
    kind_of_poster = rng.random()
    base_face = rng.beta(6, 2) if kind_of_poster < 0.35 else rng.beta(2, 2) if kind_of_poster < 0.7 else rng.beta(1, 6)
    face_logit = (np.log(base_face / (1 - base_face)) + _smooth_wander(rng, t, 0.4) + face_shift
                  + rng.normal(-0.5, 1.0) * lasting_neg - 0.8 * on_trip)
    actual = rng.random(t) < 1 / (1 + np.exp(-face_logit))
    q_other = rng.beta(1.2, 12.0)
    other_logit = np.log(q_other / (1 - q_other)) + other_shift
    other = actual & (rng.random(t) < 1 / (1 + np.exp(-other_logit)))
    shown = np.where(other, rng.choice(7, size=t, p=OTHER_FACES), shown)
    hour = (times % DAY) / 3600.0
    night = 1 / (1 + np.exp(-1.5 * (np.abs(hour - 13.5) - 7.0)))
    dark = np.clip(0.7 * night + rng.uniform(0.0, 0.4, t) * rng.uniform(0.3, 1.0), 0.0, 1.0)
    miss = rng.uniform(0.03, 0.2) + 0.25 * dark
    face = np.where(actual, rng.random(t) > miss, rng.random(t) < rng.uniform(0.0, 0.04))

    # the classifier: user-specific strength, confusions, biases, calibration
    conf = CONFUSION + np.where(np.eye(7) > 0, 0.0, rng.uniform(-0.08, 0.12, (7, 7)))
    conf = np.clip(conf, 0.0, None)
    bias = CLASS_BIAS + rng.normal(0.0, 0.3, 7)
    rest = np.zeros(7)
    if rng.random() < 0.3:  # a "resting face" read as angry or sad
        rest[ANGRY if rng.random() < 0.5 else SAD] = rng.uniform(0.4, 1.5)
    strength = rng.uniform(1.6, 3.0) * quality_step * np.exp(rng.normal(0.0, 0.3, t)) * (1 - 0.35 * dark)
    strength *= np.where(other, 0.8, 1.0)
    noise = rng.uniform(0.8, 1.3)
    beta = np.exp(rng.uniform(np.log(0.5), np.log(2.5)))
    z = (strength[:, None] * CLASS_EASE[shown][:, None] * conf[shown] + bias + phone_bias
         + dark[:, None] * DARK_BIAS * rng.uniform(0.5, 1.5) + (shown == NEUTRAL)[:, None] * rest
         + filt[:, None] * np.array([-0.3, -0.3, -0.2, 1.0, -0.3, 0.1, 0.0])
         + noise * rng.standard_normal((t, 7)))
    probs = _softmax(beta * z)

    # what the pipeline returns without a face: per-pipeline fallback; spurious detections are noise
    felt_neg = NEG_MASK[true].astype(np.float64)
    scene = _softmax(rng.uniform(0.5, 1.5) * (scene_bias + 0.3 * felt_neg[:, None] * NEG_MASK
                                              + 0.4 * dark[:, None] * DARK_BIAS + rng.normal(0, 0.9, (t, 7))))
    fallback = FALLBACKS[rng.integers(len(FALLBACKS))]
    if fallback == "uniform":
        empty = np.full((t, 7), 1 / 7)
    elif fallback == "prior":
        empty = np.tile(FER_PRIOR / FER_PRIOR.sum(), (t, 1))
    elif fallback == "neutral":
        empty = np.tile(np.array([0.01, 0.0, 0.01, 0.01, 0.02, 0.0, 0.95]), (t, 1))
    else:
        empty = scene
    probs = np.where(face[:, None], np.where(actual[:, None], probs, scene), empty)
    out = probs.astype(np.float32)
    out /= out.sum(axis=1, keepdims=True)
    return Stream(kind=kind, probs=out, gaps=gaps.astype(np.float64), face=face.astype(bool),
                  start=plan.start, end=plan.end, start2=plan.start2, true_emotion=true.astype(np.int64))


def make_streams(seed: int, kind: str, n: int) -> list[Stream]:
    """n streams of one kind, deterministic for (seed, kind); stream i does not depend on n."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    root = np.random.SeedSequence([int(seed) % 2**63, 0xB119, KINDS.index(kind)])
    return [make_stream(np.random.default_rng(child), kind) for child in root.spawn(n)]
