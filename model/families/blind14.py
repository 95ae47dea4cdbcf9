"""blind14: users of a photo and short-video social app, seen through an emotion classifier.

The world
---------
Every stream follows one account on a photo / short-video app. Accounts live in many time zones;
everything below is simulated in the account's own local time (the zone is kept in ``meta["tz"]``
for the record only, gaps between posts do not depend on it).

*Who posts.* About three accounts in four belong to one person. The rest are shared: family
accounts (a parent posting the children), couples, and small businesses or fan pages. On a shared
account many of the detected faces belong to somebody else, and those people feel their own
things. The ground truth ``true_emotion`` is always the *tracked user's* felt emotion; what the
classifier looks at may be another face (``meta["other_face"]`` marks those posts).

*Temperament.* Each user has a baseline: cheerful, balanced, stoic (neutral-heavy), gloomy or
volatile. The baseline fixes the designed share of negative feelings (angry, disgust, fear, sad)
and how the remaining mass is split between happy, surprise and neutral. Some people smile for
the camera whatever they feel: a personal "social smile" tendency turns mild negative feelings
into a happy (sometimes a neutral) face on their own face posts. Feelings are unchanged by it.

*Mood over time.* Posts of one session share a feeling (each post copies the session's first
feeling with a personal probability). Day to day a slow mood wanders and comes back (two
autoregressive components, one of days and one of weeks); many people are a little happier on
weekends, some are not, a few the opposite; and a small seasonal wave over the year comes back by
itself. None of these is a change of regime.

*Posting.* Sessions arrive along a personal day/night rhythm (a sleep window with almost nothing,
a lunch bump and an evening peak). Inside a session posts are seconds to minutes apart; between
sessions the gaps are heavy-tailed (hours to days), with occasional breaks of two weeks to a few
months and bursts around events (holidays, concerts: a cluster of close, large sessions). Some
users post several times a day, others a few times a month.

*Camera and app.* Some users often use beauty filters, which push the classifier toward happy and
neutral on those posts. Photos taken in the dark (late evening, night, early morning) are read
less accurately and less confidently, and the face detector misses more faces in the dark and on
group shots. Faceless posts (scenery, food, text) are 30-70% of a user's posts depending on the
user; on them the classifier still returns a probability vector, its own prior plus noise with a
faint trace of the scene's mood, flatter than on faces. Rare false detections read a poster or a
statue.

*Classifier.* Its quality is personal: accuracy on the visible face between roughly 45% and 75%
(median near 57%), a personal confusion pattern built on the usual neighbours (neutral read as
sad, fear as surprise, disgust as angry, sad as neutral ...) with two personal favourites
strengthened, and a personal confidence shape from peaked to flat. Wrong answers usually keep a
little mass on the right class.

*Changes.* A mood change means the tracked user's designed negative share (the "regime") changes
at post ``start``:

- ``abrupt_pos_neg``: a mostly positive user (negative share below 0.3) turns persistently
  negative, by 0.3-0.55; ``abrupt_neg_pos``: a gloomy user (above 0.45) improves by 0.3-0.5.
- ``gradual``: the same size of move, either direction, spread linearly over ``meta["ramp"]``
  posts (20-200).
- ``small_shift``: the share moves by 0.13-0.27, either direction.
- ``transient``: 1-3 posts of a much darker regime (+0.4 to +0.65), then exactly the old one.
- ``episode``: a dark spell of 20-110 posts (+0.3 to +0.55) that recovers exactly to baseline.
- ``two_changes``: a lasting move, then at least 100 posts later a second lasting move, back to
  the old level, further in the same direction, or overshooting past the old level.
- ``placebo``: a start is drawn as for the others and the mood does nothing; but, as in life,
  something harmless usually happens near it (a new filter habit, a new phone, more scenery,
  a different posting pace), which changes what is observed and not what is felt.
- ``none``: long streams with natural swings and no systematic move.

Harmless events of the same sort also happen, less often, at random places in every other kind.
Mood changes also nudge behaviour, differently per user: some post less when low, some more, and
some take fewer selfies.

``meta["neg_before"]`` is the designed share before ``start``; ``meta["neg_after"]`` the designed
share of the regime entered at ``start`` (the dark level for ``transient`` and ``episode``, whose
return level is ``meta["neg_end"]``; for ``two_changes`` the level after the second change is
``meta["neg_after2"]``). Realised shares also carry the mood swings above.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

NAME = "blind14"
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

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
ANGRY, DISGUST, FEAR, HAPPY, SAD, SURPRISE, NEUTRAL = range(7)
NEG = np.array([ANGRY, DISGUST, FEAR, SAD])
POS = np.array([HAPPY, SURPRISE, NEUTRAL])
NEG_MASK = np.zeros(7, dtype=bool)
NEG_MASK[NEG] = True

_TYPES = ("cheerful", "balanced", "stoic", "gloomy", "volatile")
_TYPE_P = np.array([0.25, 0.3, 0.15, 0.15, 0.15])
_TYPE_LEVEL = {
    "cheerful": (0.04, 0.18),
    "balanced": (0.18, 0.38),
    "stoic": (0.08, 0.28),
    "gloomy": (0.45, 0.75),
    "volatile": (0.25, 0.55),
}
# how the positive mass splits (happy, surprise, neutral) and the size of mood swings
_TYPE_POS = {
    "cheerful": (0.6, 0.12, 0.28),
    "balanced": (0.4, 0.12, 0.48),
    "stoic": (0.2, 0.05, 0.75),
    "gloomy": (0.3, 0.08, 0.62),
    "volatile": (0.45, 0.2, 0.35),
}
_TYPE_NEG = {  # angry, disgust, fear, sad
    "cheerful": (0.25, 0.08, 0.2, 0.47),
    "balanced": (0.25, 0.1, 0.18, 0.47),
    "stoic": (0.3, 0.12, 0.13, 0.45),
    "gloomy": (0.2, 0.08, 0.2, 0.52),
    "volatile": (0.38, 0.14, 0.16, 0.32),
}
_TYPE_SWING = {
    "cheerful": 0.07,
    "balanced": 0.08,
    "stoic": 0.05,
    "gloomy": 0.09,
    "volatile": 0.16,
}

# usual confusions of a facial-expression classifier: row = shown emotion, column = read as
_CONFUSION = np.array(
    [
        # an   di   fe   ha   sa   su   ne
        [0.0, 2.0, 0.7, 0.3, 1.5, 0.4, 1.0],  # angry
        [3.0, 0.0, 0.5, 0.3, 1.0, 0.3, 0.8],  # disgust
        [0.6, 0.3, 0.0, 0.3, 1.5, 3.0, 0.8],  # fear
        [0.3, 0.2, 0.2, 0.0, 0.4, 1.2, 2.0],  # happy
        [0.8, 0.4, 1.0, 0.3, 0.0, 0.2, 2.5],  # sad
        [0.3, 0.2, 2.0, 1.5, 0.3, 0.0, 1.0],  # surprise
        [0.6, 0.2, 0.4, 1.0, 2.5, 0.5, 0.0],  # neutral
    ]
)
_FAVOURITES = (
    (NEUTRAL, SAD),
    (FEAR, SURPRISE),
    (DISGUST, ANGRY),
    (SAD, NEUTRAL),
    (NEUTRAL, ANGRY),
    (HAPPY, NEUTRAL),
    (ANGRY, SAD),
    (SURPRISE, HAPPY),
)
_PRIOR = np.array([0.1, 0.03, 0.08, 0.22, 0.16, 0.08, 0.33])

# emotions shown by other people's faces, by account type
_OTHER = {
    "single": np.array(
        [0.05, 0.02, 0.03, 0.5, 0.07, 0.1, 0.23]
    ),  # friends in the picture
    "family": np.array([0.07, 0.02, 0.04, 0.45, 0.1, 0.12, 0.2]),  # children
    "couple": np.array([0.08, 0.03, 0.04, 0.38, 0.12, 0.08, 0.27]),  # partner
    "business": np.array(
        [0.02, 0.01, 0.02, 0.55, 0.04, 0.08, 0.28]
    ),  # models, customers, idols
}

_DAY = 86400.0


@dataclass
class Stream:
    kind: str
    probs: np.ndarray
    gaps: np.ndarray
    face: np.ndarray
    true_emotion: np.ndarray
    start: int | None = None
    end: int | None = None
    start2: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def _check(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")


def _type_for_level(rng: np.random.Generator, level: float) -> str:
    fits = [
        t
        for t in _TYPES
        if _TYPE_LEVEL[t][0] - 0.03 <= level <= _TYPE_LEVEL[t][1] + 0.03
    ]
    if not fits:
        fits = ["cheerful"] if level < 0.3 else ["gloomy"]
    return fits[int(rng.integers(len(fits)))]


def _design(rng: np.random.Generator, kind: str) -> dict[str, Any]:
    """Length, change positions and the designed negative share per post index."""
    d: dict[str, Any] = {
        "start": None,
        "end": None,
        "start2": None,
        "ramp": None,
        "direction": 0,
        "direction2": None,
        "neg_before": None,
        "neg_after": None,
        "neg_after2": None,
        "neg_end": None,
        "pattern": None,
    }
    if kind in ("none", "placebo"):
        btype = _TYPES[int(rng.choice(len(_TYPES), p=_TYPE_P))]
        lo, hi = _TYPE_LEVEL[btype]
        base = float(rng.uniform(lo, hi))
        if kind == "none":
            T = int(rng.integers(1500, 2501))
        else:
            start = int(rng.integers(30, 251))
            T = int(rng.integers(max(300, start + 150), 701))
            d["start"] = start
        d.update(T=T, btype=btype, neg_before=base, r=np.full(T, base))
        return d

    start = int(rng.integers(30, 251))
    need = start + 150
    levels: list[float]
    if kind in ("abrupt_pos_neg", "abrupt_neg_pos", "gradual"):
        if kind == "gradual":
            direction = 1 if rng.random() < 0.5 else -1
            ramp = int(round(np.exp(rng.uniform(np.log(20), np.log(200)))))
            d["ramp"] = ramp
            need = start + ramp + 150
        else:
            direction = 1 if kind == "abrupt_pos_neg" else -1
        if direction > 0:
            base = float(rng.uniform(0.05, 0.25))
            after = min(0.9, base + float(rng.uniform(0.3, 0.55)))
        else:
            base = float(rng.uniform(0.45, 0.78))
            after = max(0.04, base - float(rng.uniform(0.3, 0.5)))
        levels = [base, after]
    elif kind == "small_shift":
        direction = 1 if rng.random() < 0.5 else -1
        size = float(rng.uniform(0.13, 0.27))
        base = (
            float(rng.uniform(0.05, 0.6))
            if direction > 0
            else float(rng.uniform(0.3, 0.75))
        )
        levels = [base, base + direction * size]
    elif kind in ("transient", "episode"):
        direction = 1
        if kind == "transient":
            base = float(rng.uniform(0.04, 0.45))
            inside = min(0.95, base + float(rng.uniform(0.4, 0.65)))
            length = int(rng.integers(1, 4))
        else:
            base = float(rng.uniform(0.04, 0.5))
            inside = min(0.92, base + float(rng.uniform(0.3, 0.55)))
            length = int(rng.integers(20, 111))
            need = max(need, start + length + 100)
        d["end"] = start + length
        d["neg_end"] = base
        levels = [base, inside]
    elif kind == "two_changes":
        pattern = ("back", "further", "overshoot")[int(rng.integers(3))]
        for _ in range(200):
            base = float(rng.uniform(0.04, 0.8))
            direction = 1 if rng.random() < 0.5 else -1
            l1 = base + direction * float(rng.uniform(0.2, 0.45))
            if pattern == "back":
                l2 = base + float(rng.uniform(-0.05, 0.05))
            elif pattern == "further":
                l2 = l1 + direction * float(rng.uniform(0.2, 0.35))
            else:
                l2 = base - direction * float(rng.uniform(0.1, 0.3))
            if min(base, l1, l2) >= 0.03 and max(base, l1, l2) <= 0.9:
                break
        else:  # pragma: no cover - practically unreachable
            base, l1, l2, direction, pattern = 0.15, 0.5, 0.15, 1, "back"
        need = start + 250
        d["pattern"] = pattern
        d["direction2"] = 1 if l2 > l1 else -1
        d["neg_after2"] = l2
        levels = [base, l1, l2]
    else:  # pragma: no cover - guarded by _check
        raise ValueError(kind)

    T = int(rng.integers(max(300, need), 701))
    r = np.full(T, levels[0])
    if kind == "gradual":
        ramp = d["ramp"]
        r[start : start + ramp] = levels[0] + (levels[1] - levels[0]) * (
            np.arange(1, ramp + 1) / ramp
        )
        r[start + ramp :] = levels[1]
    elif kind in ("transient", "episode"):
        r[start : d["end"]] = levels[1]
    elif kind == "two_changes":
        start2 = int(rng.integers(start + 100, min(T - 150, start + 400) + 1))
        d["start2"] = start2
        r[start:start2] = levels[1]
        r[start2:] = levels[2]
    else:
        r[start:] = levels[1]
    d.update(
        T=T,
        start=start,
        r=r,
        direction=direction,
        neg_before=levels[0],
        neg_after=levels[1],
        btype=_type_for_level(rng, levels[0]),
    )
    return d


def _ar_unit(rng: np.random.Generator, n: int, phi: float, lags: int) -> np.ndarray:
    """A stationary AR(1)-like series of unit variance (truncated moving-average form)."""
    kernel = phi ** np.arange(lags)
    kernel /= np.sqrt(np.sum(kernel**2))
    noise = rng.standard_normal(n + lags - 1)
    return np.convolve(noise, kernel, mode="valid")


def _softmax_rows(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def _draw_rows(rng: np.random.Generator, cdf_rows: np.ndarray) -> np.ndarray:
    """One category per row of cumulative probabilities."""
    u = rng.random(len(cdf_rows))
    return np.minimum((u[:, None] > cdf_rows).sum(axis=1), cdf_rows.shape[1] - 1)


def make_stream(rng: np.random.Generator, kind: str) -> Stream:
    _check(kind)
    d = _design(rng, kind)
    T: int = d["T"]
    r: np.ndarray = d["r"]
    base = d["neg_before"]
    btype = d["btype"]
    start, end, start2 = d["start"], d["end"], d["start2"]

    # ---------------------------------------------------------------- who the user is
    u = rng.random()
    if u < 0.75:
        account = "single"
    else:
        account = ("family", "couple", "business")[
            int(rng.choice(3, p=[0.4, 0.3, 0.3]))
        ]
    p_other = {
        "single": (0.02, 0.08),
        "family": (0.35, 0.6),
        "couple": (0.15, 0.35),
        "business": (0.45, 0.85),
    }[account]
    p_group = {
        "single": (0.03, 0.12),
        "family": (0.2, 0.4),
        "couple": (0.15, 0.3),
        "business": (0.1, 0.3),
    }[account]
    p_other = float(rng.uniform(*p_other))
    p_group = float(rng.uniform(*p_group))

    pos_mix = rng.dirichlet(30.0 * np.array(_TYPE_POS[btype]))
    neg_mix = rng.dirichlet(15.0 * np.array(_TYPE_NEG[btype]))
    swing = _TYPE_SWING[btype] * float(rng.uniform(0.7, 1.3))
    stick = float(rng.uniform(0.3, 0.75))
    smile = (
        float(rng.uniform(0.3, 0.8))
        if rng.random() < 0.35
        else float(rng.uniform(0.0, 0.1))
    )
    filt = (
        float(rng.uniform(0.2, 0.8))
        if rng.random() < 0.35
        else float(rng.uniform(0.0, 0.05))
    )
    selfie = float(rng.uniform(0.36, 0.78))
    selfie_mood = float(np.clip(rng.normal(-1.0, 1.0), -3.0, 1.0))
    rate_mood = float(np.clip(rng.normal(0.0, 0.8), -1.5, 1.5))
    weekend = float(rng.normal(-0.03, 0.03))
    season = float(rng.uniform(0.0, 0.04))

    acc = float(0.51 + 0.34 * rng.beta(2.0, 2.4))
    sharp = float(np.exp(rng.uniform(np.log(1.3), np.log(4.0))))
    conf = _CONFUSION * rng.gamma(3.0, 1.0 / 3.0, size=(7, 7))
    for k in rng.choice(len(_FAVOURITES), size=2, replace=False):
        a, b = _FAVOURITES[int(k)]
        conf[a, b] *= 4.0
    np.fill_diagonal(conf, 0.0)
    conf_cdf = np.cumsum(conf / conf.sum(axis=1, keepdims=True), axis=1)
    prior = rng.dirichlet(25.0 * _PRIOR)
    miss0 = float(rng.uniform(0.02, 0.08))

    # ---------------------------------------------------------------- a harmless event
    harmless = None
    h = T
    if kind == "placebo" and rng.random() < 0.8:
        h = int(np.clip(start + rng.integers(-3, 4), 0, T - 1))
    elif kind != "placebo" and rng.random() < 0.2:
        h = int(rng.integers(0, T))
    if h < T:
        harmless = ("filter", "phone", "scenery", "pace")[int(rng.integers(4))]
    after_h = np.arange(T) >= h
    filt_i = np.full(T, filt)
    acc_i = np.full(T, acc)
    sharp_i = np.full(T, sharp)
    selfie_shift = np.zeros(T)
    pace = 1.0
    if harmless == "filter":
        filt_i[after_h] = min(0.9, filt + float(rng.uniform(0.3, 0.6)))
    elif harmless == "phone":
        acc_i[after_h] = acc + float(rng.uniform(-0.08, 0.08))
        sharp_i[after_h] = sharp * float(rng.uniform(0.7, 1.4))
    elif harmless == "scenery":
        selfie_shift[after_h] = -float(rng.uniform(0.8, 1.5))
    elif harmless == "pace":
        pace = float(np.exp(rng.uniform(np.log(0.4), np.log(2.5))))

    # ---------------------------------------------------------------- sessions
    extra = float(rng.uniform(0.2, 2.5))
    n_s = int(T / (1.0 + extra) * 1.3) + 20
    while True:
        sizes = rng.geometric(1.0 / (1.0 + extra), size=n_s)
        event = rng.random(n_s) < float(rng.uniform(0.01, 0.04))
        sizes = sizes + event * rng.integers(2, 9, size=n_s)
        if sizes.sum() >= T:
            break
        n_s *= 2
    sess = np.repeat(np.arange(n_s), sizes)[:T]
    n_s = int(sess[-1]) + 1
    event = event[:n_s]
    first = np.empty(T, dtype=bool)
    first[0] = True
    first[1:] = sess[1:] != sess[:-1]
    first_idx = np.flatnonzero(first)

    # between-session gaps, in days of the user's activity clock
    rate = float(np.exp(rng.uniform(np.log(0.12), np.log(6.0))))
    sigma = float(rng.uniform(0.8, 1.4))
    g = rng.lognormal(-0.5 * sigma**2, sigma, size=n_s) / rate
    tail = rng.random(n_s) < 0.08
    g[tail] *= 1.0 + np.minimum(rng.pareto(1.5, size=int(tail.sum())), 15.0)
    near_event = np.convolve(event.astype(float), np.ones(5))[:n_s] > 0
    g[near_event] *= 0.03
    brk = rng.random(n_s) < float(rng.uniform(0.002, 0.012))
    g = np.minimum(g, 60.0)
    g[brk] += rng.uniform(14.0, 75.0, size=int(brk.sum()))
    g *= np.exp(rate_mood * 2.5 * (r[first_idx] - base))
    g[first_idx >= h] *= pace

    # the activity clock -> local wall time (sleep window, lunch bump, evening peak)
    hours = (np.arange(96) + 0.5) / 4.0
    wake = float(rng.uniform(5.5, 10.0))
    sleep = float(rng.uniform(6.0, 9.0))
    asleep = ((hours - (wake - sleep)) % 24.0) < sleep
    peak = float(rng.uniform(18.0, 22.5))
    inten = 1.0 + float(rng.uniform(0.5, 2.0)) * np.exp(
        -((((hours - peak + 12) % 24 - 12) / 2.0) ** 2)
    )
    inten += 0.5 * np.exp(-(((hours - 12.5) / 1.2) ** 2))
    inten[asleep] = 0.04
    cum = np.concatenate(([0.0], np.cumsum(inten)))
    cum /= cum[-1]
    clock = np.cumsum(g) + float(rng.uniform(0.0, 1.0))
    day = np.floor(clock)
    s_start = (day + np.interp(clock - day, cum, np.arange(97) / 96.0)) * _DAY

    # inside sessions: seconds to minutes, faster in event bursts
    w = rng.lognormal(np.log(rng.uniform(20.0, 150.0)), 1.0, size=T)
    w[event[sess]] *= 0.3
    w = np.maximum(w, 2.0)
    w[first] = 0.0
    cs = np.cumsum(w)
    offset = cs - cs[first_idx][sess]
    dur = np.bincount(sess, weights=w, minlength=n_s)
    c = np.concatenate(([0.0], np.cumsum(dur[:-1] + 120.0)))
    s_adj = c + np.maximum.accumulate(s_start - c)
    times = s_adj[sess] + offset
    gaps = np.empty(T)
    gaps[0] = 0.0
    gaps[1:] = np.diff(times)

    # ---------------------------------------------------------------- felt emotions
    hour = (times / 3600.0) % 24.0
    dayi = np.floor(times / _DAY).astype(np.int64)
    n_days = int(dayi[-1]) + 1
    fast = _ar_unit(rng, n_days, float(rng.uniform(0.5, 0.85)), 30)
    slow = _ar_unit(rng, n_days, float(rng.uniform(0.93, 0.98)), 150)
    wd0 = int(rng.integers(7))
    doy0 = float(rng.uniform(0.0, 365.0))
    days = np.arange(n_days)
    fluct = swing * (0.8 * fast + 0.6 * slow)
    fluct += weekend * (((days + wd0) % 7) >= 5)
    fluct += season * np.sin(2 * np.pi * (days + doy0) / 365.0)
    p_neg = np.clip(
        r + np.maximum(4.0 * r * (1.0 - r), 0.15) * fluct[dayi], 0.005, 0.97
    )

    neg_cdf = np.cumsum(neg_mix)
    pos_cdf = np.cumsum(pos_mix)
    is_neg = rng.random(T) < p_neg
    un = rng.random(T)
    fresh = np.where(
        is_neg,
        NEG[np.minimum(np.searchsorted(neg_cdf, un), 3)],
        POS[np.minimum(np.searchsorted(pos_cdf, un), 2)],
    )
    gfirst = first.copy()
    for b in (start, end, start2, (start + d["ramp"]) if d["ramp"] else None):
        if b is not None and b < T:
            gfirst[b] = True
    gfirst_idx = np.flatnonzero(gfirst)
    gid = np.cumsum(gfirst) - 1
    copy = rng.random(T) < stick
    copy[gfirst] = False
    true = np.where(copy, fresh[gfirst_idx[gid]], fresh).astype(np.int64)

    # ---------------------------------------------------------------- what the camera sees
    dark = (hour >= 20.5) | (hour < 6.5)
    lg = np.log(selfie / (1.0 - selfie)) + selfie_mood * 3.0 * (r - base) + selfie_shift
    present = rng.random(T) < 1.0 / (1.0 + np.exp(-lg))
    group = present & (rng.random(T) < p_group)
    miss = rng.random(T) < np.clip(miss0 + 0.18 * dark + 0.15 * group, 0.0, 0.9)
    false_pos = ~present & (rng.random(T) < 0.015)
    face = (present & ~miss) | false_pos
    other = present & ((rng.random(T) < p_other) | (group & (rng.random(T) < 0.5)))
    other |= false_pos

    shown = true.copy()
    masked = (~other) & NEG_MASK[true] & (rng.random(T) < 0.6 * smile)
    shown[masked] = np.where(rng.random(int(masked.sum())) < 0.8, HAPPY, NEUTRAL)
    n_other = int(other.sum())
    if n_other:
        ocdf = np.cumsum(_OTHER[account])
        oe = np.minimum(np.searchsorted(ocdf, rng.random(n_other)), 6)
        if account == "couple":
            same = rng.random(n_other) < 0.35
            oe = np.where(same, true[other], oe)
        shown[other] = oe

    filtered = face & (rng.random(T) < filt_i)

    # ---------------------------------------------------------------- the classifier
    fi = np.flatnonzero(face)
    nf = len(fi)
    probs = np.empty((T, 7))
    if nf:
        e = shown[fi]
        a_i = np.clip(acc_i[fi] - 0.12 * dark[fi] - 0.05 * group[fi], 0.15, 0.95)
        label = np.where(rng.random(nf) < a_i, e, _draw_rows(rng, conf_cdf[e]))
        fl = filtered[fi]
        flip = fl & NEG_MASK[label] & (rng.random(nf) < 0.4)
        label[flip] = np.where(rng.random(int(flip.sum())) < 0.7, HAPPY, NEUTRAL)
        s = sharp_i[fi] * (1.0 - 0.35 * dark[fi])
        logits = 0.35 * rng.standard_normal((nf, 7))
        rows = np.arange(nf)
        logits[rows, label] += 1.0
        logits[rows, e] += 0.35 * (label != e)
        logits[:, HAPPY] += 0.35 * fl
        logits[:, NEUTRAL] += 0.2 * fl
        probs[fi] = _softmax_rows(logits * s[:, None])
    ni = np.flatnonzero(~face)
    if len(ni):
        flat = 0.6 * prior + 0.4 / 7.0
        logits = np.log(flat) + 0.35 * rng.standard_normal((len(ni), 7))
        logits[np.arange(len(ni)), true[ni]] += 0.2
        probs[ni] = _softmax_rows(logits)
    probs32 = probs.astype(np.float32)
    probs32 /= probs32.sum(axis=1, keepdims=True)

    meta: dict[str, Any] = {
        "ramp": d["ramp"],
        "direction": d["direction"],
        "direction2": d["direction2"],
        "neg_before": d["neg_before"],
        "neg_after": d["neg_after"],
        "neg_after2": d["neg_after2"],
        "neg_end": d["neg_end"],
        "pattern": d["pattern"],
        "baseline": btype,
        "account": account,
        "shared": account != "single",
        "other_face": other,
        "shown_emotion": shown,
        "dark": dark,
        "filtered": filtered,
        "accuracy": acc,
        "sharpness": sharp,
        "social_smile": smile,
        "filter_use": filt,
        "selfie_share": selfie,
        "sessions_per_day": rate,
        "harmless": harmless,
        "harmless_at": h if harmless else None,
        "tz": int(rng.integers(-10, 13)),
    }
    return Stream(
        kind=kind,
        probs=probs32,
        gaps=gaps,
        face=face,
        true_emotion=true,
        start=start,
        end=end,
        start2=start2,
        meta=meta,
    )


def make_streams(seed: int, kind: str, n: int) -> list[Stream]:
    _check(kind)
    ss = np.random.SeedSequence([int(seed) % (2**63), 1414, KINDS.index(kind)])
    rng = np.random.default_rng(ss)
    return [make_stream(rng, kind) for _ in range(n)]
