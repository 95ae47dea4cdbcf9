"""Teenagers and young adults posting to a stories/messaging app, seen through the phone's face detector
and emotion classifier. Each user has a temperament (bubbly, deadpan, moody, anxious or irritable) that
sets a personal mix of felt emotions, a mood that wanders on a slow (weeks) and a medium (days) timescale,
and a day-level whim. Life runs on a calendar: school or university terms, exam weeks, holidays,
weekends and Sunday evenings change both how much people post and how they feel; a diurnal rhythm
(class hours, late nights) shapes when they post. Parties, concerts, games and day trips bring bursts of
posts full of smiling group photos, and a group photo's detected face is often somebody else's, posing
a smile whatever the poster feels. Low moods show less as sad faces than as withdrawal: fewer selfies,
more faceless posts (memes, screenshots, dark photos, song lyrics), longer gaps between posts, and on
the selfies that remain a masking neutral face or a forced smile.

The classifier is imperfect per user: a camera- and lighting-dependent accuracy, a confusion pattern of
its own (neutral read as sad, fear read as surprise, disgust read as anger...), a confidence that is
overconfident for some phones and flat for others, worse at night and through beauty filters or
stickers, and fooled by cartoon faces in memes. Faceless posts still yield a probability vector, from a
crop with no real face, leaning on what the picture is (a dark photo reads sadder than a meme). Harmless
changes that are not mood changes happen at random points of any stream, including the no-change
ones: a new phone with a better camera, a new friend group in the photos, a phase of posting mostly
memes, a phase of heavy filters. Real mood changes follow life events: a breakup, exam stress,
bereavement or moving away (lasting, negative), falling in love, a new school going well or settling
down (lasting, positive), an illness or a bad week (an episode that recovers), a bad day (a dip of a
few posts). The true emotions follow the designed change exactly; what the classifier shows of it is
only what this world's masking, posing, withdrawal and noise let through.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

NAME = "blind15"
KINDS = ("none", "abrupt_pos_neg", "abrupt_neg_pos", "gradual", "small_shift", "transient", "episode",
         "two_changes", "placebo")

NEG = np.array([0, 1, 2, 4])      # angry, disgust, fear, sad
POS = np.array([3, 5, 6])         # happy, surprise, neutral
HAPPY, SURPRISE, NEUTRAL = 3, 5, 6

# temperament: felt negative share range, negative mix (angry, disgust, fear, sad), non-negative mix
# (happy, surprise, neutral), mood volatility, masking of negative faces, selfie-smile habit
TEMPERAMENTS: dict[str, dict[str, Any]] = {
    "bubbly": dict(share=(0.05, 0.18), neg=(0.25, 0.08, 0.22, 0.45), pos=(0.62, 0.16, 0.22),
                   vol=(0.7, 1.1), mask=(0.5, 0.8), smile=(0.3, 0.6), weight=0.28),
    "deadpan": dict(share=(0.08, 0.22), neg=(0.3, 0.15, 0.15, 0.4), pos=(0.18, 0.06, 0.76),
                    vol=(0.5, 0.8), mask=(0.3, 0.6), smile=(0.0, 0.12), weight=0.2),
    "moody": dict(share=(0.3, 0.6), neg=(0.2, 0.08, 0.17, 0.55), pos=(0.35, 0.1, 0.55),
                  vol=(1.1, 1.6), mask=(0.2, 0.5), smile=(0.1, 0.3), weight=0.2),
    "anxious": dict(share=(0.25, 0.55), neg=(0.1, 0.05, 0.5, 0.35), pos=(0.3, 0.2, 0.5),
                    vol=(0.9, 1.3), mask=(0.4, 0.7), smile=(0.15, 0.4), weight=0.16),
    "irritable": dict(share=(0.25, 0.5), neg=(0.45, 0.22, 0.08, 0.25), pos=(0.3, 0.1, 0.6),
                      vol=(0.9, 1.3), mask=(0.1, 0.4), smile=(0.05, 0.25), weight=0.16),
}
TEMPER_NAMES = tuple(TEMPERAMENTS)

# life events: negative mix and non-negative mix they bring (None keeps the user's own)
CAUSES: dict[str, tuple[tuple[float, ...] | None, tuple[float, ...] | None]] = {
    "breakup": ((0.3, 0.05, 0.1, 0.55), (0.15, 0.05, 0.8)),
    "exam_stress": ((0.25, 0.05, 0.5, 0.2), (0.2, 0.1, 0.7)),
    "bereavement": ((0.08, 0.02, 0.15, 0.75), (0.1, 0.05, 0.85)),
    "moving_away": ((0.1, 0.05, 0.35, 0.5), (0.25, 0.15, 0.6)),
    "burnout": ((0.2, 0.1, 0.2, 0.5), (0.1, 0.05, 0.85)),
    "friend_drama": ((0.45, 0.2, 0.1, 0.25), (0.25, 0.15, 0.6)),
    "illness": ((0.1, 0.15, 0.15, 0.6), (0.1, 0.05, 0.85)),
    "bad_week": ((0.45, 0.15, 0.1, 0.3), (0.2, 0.1, 0.7)),
    "bad_day": ((0.5, 0.15, 0.05, 0.3), (0.2, 0.1, 0.7)),
    "in_love": (None, (0.75, 0.1, 0.15)),
    "new_school": (None, (0.55, 0.25, 0.2)),
    "settling_down": (None, (0.3, 0.05, 0.65)),
}
NEG_LASTING = ("breakup", "exam_stress", "bereavement", "moving_away")
NEG_SLOW = ("exam_stress", "burnout", "breakup", "moving_away")
POS_LASTING = ("in_love", "new_school", "settling_down")
EPISODES = ("illness", "bad_week", "friend_drama")
NUISANCES = ("new_phone", "new_friends", "meme_mode", "filter_phase")

# what faces in group photos (and cartoon faces in memes) show, whatever the poster feels
POSED = np.array([0.02, 0.01, 0.02, 0.65, 0.03, 0.12, 0.15])
CARTOON = np.array([0.15, 0.05, 0.05, 0.4, 0.1, 0.25, 0.0])

# the shared shape of an emotion classifier's mistakes (row: shown, column: read), diagonal unused
CONFUSION = np.array([
    [0.0, 0.2, 0.1, 0.05, 0.25, 0.05, 0.35],
    [0.45, 0.0, 0.1, 0.05, 0.2, 0.05, 0.15],
    [0.1, 0.03, 0.0, 0.05, 0.3, 0.3, 0.22],
    [0.05, 0.02, 0.05, 0.0, 0.1, 0.2, 0.58],
    [0.15, 0.03, 0.2, 0.07, 0.0, 0.05, 0.5],
    [0.05, 0.02, 0.35, 0.25, 0.05, 0.0, 0.28],
    [0.1, 0.02, 0.08, 0.15, 0.5, 0.15, 0.0],
])
CLASS_EASE = np.array([-0.05, -0.15, -0.12, 0.15, -0.05, 0.08, 0.03])

# faceless content: meme, screenshot, dark photo, lyrics/text, scenery/food/pet
CONTENT_BASE = np.array([0.3, 0.2, 0.08, 0.1, 0.32])
CONTENT_BIAS = np.array([
    [0.0, 0.0, 0.0, 0.8, 0.0, 0.6, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5],
    [0.0, 0.0, 0.6, 0.0, 0.7, 0.0, 0.2],
    [0.0, 0.0, 0.0, 0.0, 0.3, 0.0, 0.4],
    [0.0, 0.0, 0.0, 0.2, 0.0, 0.0, 0.6],
])

# posting rhythm by hour: school/work days and free days (weekends, holidays)
BUSY_HOURS = np.array([0.4, 0.2, 0.1, 0.05, 0.05, 0.05, 0.2, 0.8, 0.6, 0.3, 0.3, 0.4, 0.9, 0.6, 0.4, 0.9,
                       1.2, 1.3, 1.3, 1.4, 1.6, 1.8, 1.6, 1.0])
FREE_HOURS = np.array([1.0, 0.7, 0.4, 0.2, 0.1, 0.05, 0.05, 0.1, 0.2, 0.4, 0.7, 0.9, 1.0, 1.1, 1.2, 1.2,
                       1.3, 1.3, 1.4, 1.5, 1.6, 1.7, 1.7, 1.4])
WEEKDAY = np.array([0.95, 0.95, 1.0, 1.0, 1.1, 1.2, 1.05])   # Monday first

# events: party, concert, game, day trip: first hour, shortest duration, extra hours, how likely
EVENT_START = np.array([20, 19, 15, 11])
EVENT_DUR = np.array([3, 3, 2, 4])
EVENT_SPAN = np.array([3, 2, 2, 4])
EVENT_P = np.array([0.45, 0.15, 0.15, 0.25])

# year plans (day of year intervals): holidays, exams
PLANS = {
    "school": ([(0, 6), (44, 51), (98, 112), (190, 247), (297, 304), (354, 365)], [(160, 180), (335, 350)]),
    "university": ([(0, 8), (85, 110), (160, 270), (350, 365)], [(8, 25), (130, 158)]),
    "work": ([(0, 6), (200, 214), (358, 365)], []),
}
PLAN_NAMES = tuple(PLANS)


@dataclass
class Stream:
    kind: str
    probs: np.ndarray
    gaps: np.ndarray
    face: np.ndarray
    start: int | None
    end: int | None
    start2: int | None
    true_emotion: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-3, 1 - 1e-3)
    return np.log(p / (1 - p))


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=1, keepdims=True)


def _rows(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """One category per row of ``p`` (rows need not be normalised)."""
    cum = np.cumsum(p, axis=1)
    u = rng.random(len(p)) * cum[:, -1]
    return np.minimum((u[:, None] >= cum).sum(axis=1), p.shape[1] - 1)


def _mix(rng: np.random.Generator, template: tuple[float, ...], conc: float = 25.0) -> np.ndarray:
    return rng.dirichlet(np.asarray(template) * conc + 0.3)


def _ar(rng: np.random.Generator, n: int, spacing: int, a: float, sd: float) -> np.ndarray:
    """A unit AR(1) on knots every ``spacing`` posts, linearly interpolated: persistence of about
    spacing / (1 - a) posts."""
    m = n // spacing + 3
    burn = 30
    white = rng.standard_normal(m + burn)
    kernel = a ** np.arange(burn) * np.sqrt(1 - a * a)
    knots = np.convolve(white, kernel)[burn:burn + m]
    where = (np.arange(m) - rng.random()) * spacing
    return sd * np.interp(np.arange(n), where, knots)


# ---------------------------------------------------------------------------------------------- design

@dataclass
class _Design:
    n: int
    start: int | None
    end: int | None
    start2: int | None
    temperament: str
    weights: np.ndarray            # (n, R) which regime each post lives in
    regimes: np.ndarray            # (R, 10): share, neg mix (4), pos mix (3), pinned, group shift
    s_ref: float
    meta: dict[str, Any]


def _regime(share: float, neg: np.ndarray, pos: np.ndarray, pinned: float = 0.0, group: float = 0.0
            ) -> np.ndarray:
    return np.concatenate([[share], neg, pos, [pinned, group]])


def _pick_temperament(rng: np.random.Generator, allowed: tuple[str, ...] = TEMPER_NAMES) -> str:
    w = np.array([TEMPERAMENTS[t]["weight"] for t in allowed])
    return allowed[int(rng.choice(len(allowed), p=w / w.sum()))]


def _cause_mixes(rng: np.random.Generator, cause: str, neg0: np.ndarray, pos0: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    neg_t, pos_t = CAUSES[cause]
    neg = neg0 if neg_t is None else 0.3 * neg0 + 0.7 * _mix(rng, neg_t)
    pos = pos0 if pos_t is None else 0.35 * pos0 + 0.65 * _mix(rng, pos_t)
    return neg / neg.sum(), pos / pos.sum()


def _step(rng: np.random.Generator, share: float, lo: float, hi: float, low: float = 0.04,
          high: float = 0.88) -> float:
    """A lasting move of size in [lo, hi] from ``share``, in a random direction that has room."""
    dirs = [d for d in (1, -1) if (high - share if d > 0 else share - low) >= lo]
    d = dirs[int(rng.integers(len(dirs)))]
    room = high - share if d > 0 else share - low
    return share + d * rng.uniform(lo, min(hi, room))


def _design(rng: np.random.Generator, kind: str) -> _Design:
    meta: dict[str, Any] = {}
    if kind == "abrupt_pos_neg":
        temper = _pick_temperament(rng, ("bubbly", "deadpan", "irritable", "anxious"))
    elif kind == "abrupt_neg_pos":
        temper = _pick_temperament(rng, ("moody", "anxious", "irritable"))
    else:
        temper = _pick_temperament(rng)
    t = TEMPERAMENTS[temper]
    share0 = rng.uniform(*t["share"])
    neg0, pos0 = _mix(rng, t["neg"]), _mix(rng, t["pos"])

    if kind == "none":
        n = int(rng.integers(1500, 2501))
        start = end = start2 = None
    else:
        start = int(rng.integers(30, 301))
        end = start2 = None

    last = start
    regimes = []
    ramp = 0
    cause = None
    if kind in ("none", "placebo"):
        regimes = [_regime(share0, neg0, pos0)]
    elif kind == "abrupt_pos_neg":
        share0 = min(share0, 0.22)
        cause = NEG_LASTING[int(rng.integers(len(NEG_LASTING)))]
        neg1, pos1 = _cause_mixes(rng, cause, neg0, pos0)
        regimes = [_regime(share0, neg0, pos0), _regime(rng.uniform(0.55, 0.85), neg1, pos1)]
    elif kind == "abrupt_neg_pos":
        share0 = rng.uniform(0.5, 0.75)
        cause = POS_LASTING[int(rng.integers(len(POS_LASTING)))]
        neg1, pos1 = _cause_mixes(rng, cause, neg0, pos0)
        group = 0.8 if cause == "in_love" else 0.3 if cause == "new_school" else 0.0
        regimes = [_regime(share0, neg0, pos0), _regime(rng.uniform(0.06, 0.22), neg1, pos1, group=group)]
    elif kind == "gradual":
        share0 = min(share0, 0.4)
        cause = NEG_SLOW[int(rng.integers(len(NEG_SLOW)))]
        neg1, pos1 = _cause_mixes(rng, cause, neg0, pos0)
        regimes = [_regime(share0, neg0, pos0),
                   _regime(min(share0 + rng.uniform(0.25, 0.45), 0.85), neg1, pos1)]
        ramp = int(rng.integers(20, 201))
        last = start + ramp
    elif kind == "small_shift":
        share0 = float(np.clip(share0, 0.12, 0.6))
        delta = rng.uniform(0.1, 0.3) * (1 if rng.random() < 0.5 else -1)
        if not 0.04 <= share0 + delta <= 0.85:
            delta = -delta
        regimes = [_regime(share0, neg0, pos0), _regime(share0 + delta, neg0, pos0)]
        cause = "drift_up" if delta > 0 else "drift_down"
    elif kind == "transient":
        cause = "bad_day"
        neg1, pos1 = _cause_mixes(rng, cause, neg0, pos0)
        regimes = [_regime(share0, neg0, pos0), _regime(1.0, neg1, pos1, pinned=1.0)]
        end = start + int(rng.integers(1, 4))
        last = end
    elif kind == "episode":
        cause = EPISODES[int(rng.integers(len(EPISODES)))]
        neg1, pos1 = _cause_mixes(rng, cause, neg0, pos0)
        s1 = rng.uniform(max(share0 + 0.3, 0.55), 0.9)
        regimes = [_regime(share0, neg0, pos0), _regime(s1, neg1, pos1)]
        end = start + int(rng.integers(20, 111))
        last = end
    elif kind == "two_changes":
        share0 = float(np.clip(share0, 0.1, 0.6))
        s1 = _step(rng, share0, 0.2, 0.45)
        s2 = _step(rng, s1, 0.2, 0.4)
        causes = []
        mixes = [(neg0, pos0)]
        for a, b in ((share0, s1), (s1, s2)):
            pool = NEG_LASTING if b > a else POS_LASTING
            c = pool[int(rng.integers(len(pool)))]
            causes.append(c)
            mixes.append(_cause_mixes(rng, c, *mixes[-1]))
        regimes = [_regime(s, *mx) for s, mx in zip((share0, s1, s2), mixes)]
        cause = "+".join(causes)
        start2 = start + int(rng.integers(100, 301))
        last = start2
    elif kind != "placebo":
        raise ValueError(f"unknown kind {kind!r} (known: {', '.join(KINDS)})")

    if kind != "none":
        n = int(rng.integers(max(300, last + 150), 901))
    idx = np.arange(n)
    w = np.zeros((n, len(regimes)))
    if kind in ("none", "placebo"):
        w[:, 0] = 1.0
    elif kind == "gradual":
        frac = np.clip((idx - start + 1) / ramp, 0.0, 1.0)
        w[:, 0], w[:, 1] = 1 - frac, frac
    elif kind in ("transient", "episode"):
        inside = (idx >= start) & (idx < end)
        w[:, 1] = inside
        w[:, 0] = ~inside
    elif kind == "two_changes":
        w[:, 0] = idx < start
        w[:, 1] = (idx >= start) & (idx < start2)
        w[:, 2] = idx >= start2
    else:
        w[:, 1] = idx >= start
        w[:, 0] = idx < start
    reg = np.array(regimes)
    meta.update(temperament=temper, cause=cause, shares=[float(r[0]) for r in reg], ramp=ramp or None)
    return _Design(n, start, end, start2, temper, w, reg, float(share0), meta)


# ----------------------------------------------------------------------------------------------- user

@dataclass
class _User:
    rate: float
    vol: float
    withdraw: float
    face0: float
    kappa: float
    group0: float
    mask: float
    smile: float
    filters: float
    deadpan: bool
    exam_sens: float
    plan: np.ndarray
    doy0: int
    dow0: int
    busy: np.ndarray
    free: np.ndarray
    rate_norm: float
    social: float
    acc: tuple[float, float]
    log_conf: np.ndarray           # (2, 7, 7): before / after a new phone
    log_prior: np.ndarray
    quality: tuple[float, float]
    temp: tuple[float, float]
    crop_bias: np.ndarray
    plan_name: str


def _year_plan(rng: np.random.Generator) -> tuple[str, np.ndarray]:
    name = PLAN_NAMES[int(rng.choice(3, p=[0.5, 0.35, 0.15]))]
    plan = np.zeros(365, dtype=np.int8)
    holidays, exams = PLANS[name]
    for a, b in holidays:
        plan[a:b] = 1
    for a, b in exams:
        plan[a:b] = 2
    return name, np.roll(plan, int(rng.integers(-10, 11)))


def _confusion(rng: np.random.Generator, acc: float) -> np.ndarray:
    s = CONFUSION * rng.gamma(2.0, 0.5, (7, 7))
    quirks = rng.integers(0, 7, (2, 2))
    s[quirks[:, 0], quirks[:, 1]] *= 3.0
    np.fill_diagonal(s, 0.0)
    s += 0.01
    np.fill_diagonal(s, 0.0)
    s /= s.sum(axis=1, keepdims=True)
    a = np.clip(acc + CLASS_EASE + rng.normal(0.0, 0.05, 7), 0.15, 0.95)
    c = s * (1 - a)[:, None] + np.diag(a)
    return np.log(c)


def _user(rng: np.random.Generator, design: _Design) -> _User:
    t = TEMPERAMENTS[design.temperament]
    plan_name, plan = _year_plan(rng)
    owl = int(rng.integers(0, 3))
    busy = np.roll(BUSY_HOURS, owl) * rng.lognormal(0.0, 0.2, 24)
    free = np.roll(FREE_HOURS, owl) * rng.lognormal(0.0, 0.2, 24)
    rate = float(np.clip(rng.lognormal(np.log(5.0), 0.6), 1.5, 25.0))
    typical_day = (5 * busy.sum() * WEEKDAY[:5].mean() + 2 * free.sum() * WEEKDAY[5:].mean()) / 7
    acc = rng.uniform(0.45, 0.77)
    acc2 = min(acc + rng.uniform(0.06, 0.15), 0.88)
    q = rng.uniform(0.8, 1.0)
    temp = float(np.clip(rng.lognormal(0.0, 0.45), 0.35, 3.0))
    crop = np.log(rng.dirichlet(np.array([1.0, 0.4, 1.2, 1.0, 2.0, 0.8, 3.0]) * 3))
    return _User(
        rate=rate, vol=rng.uniform(*t["vol"]), withdraw=rng.uniform(-0.3, 2.0),
        face0=rng.normal(0.7, 0.6), kappa=rng.uniform(1.0, 4.0), group0=rng.normal(-1.4, 0.5),
        mask=rng.uniform(*t["mask"]), smile=rng.uniform(*t["smile"]), filters=rng.uniform(0.0, 0.25),
        deadpan=design.temperament == "deadpan",
        exam_sens=0.6 if design.temperament == "anxious" else rng.uniform(0.15, 0.45),
        plan=plan, doy0=int(rng.integers(0, 365)), dow0=int(rng.integers(0, 7)), busy=busy, free=free,
        rate_norm=rate / typical_day, social=rng.uniform(0.02, 0.12), acc=(acc, acc2),
        log_conf=np.stack([_confusion(rng, acc), _confusion(rng, acc2)]),
        log_prior=np.log(rng.dirichlet(np.array([1.0, 0.3, 1.0, 1.5, 2.0, 1.0, 3.0]) * 4)),
        quality=(q, min(q + rng.uniform(0.03, 0.12), 1.0)),
        temp=(temp, float(np.clip(temp * rng.lognormal(0.0, 0.3), 0.35, 3.0))),
        crop_bias=crop, plan_name=plan_name)


# ------------------------------------------------------------------------------------------- calendar

@dataclass
class _Calendar:
    cum: np.ndarray           # (H + 1,) expected posts up to each hour boundary
    event: np.ndarray         # (H,) bool
    daytype: np.ndarray       # (days,) 0 term, 1 holiday, 2 exam
    dow: np.ndarray           # (days,)
    daily: np.ndarray         # (days,) the day's mood whim (logit)


def _build_calendar(rng: np.random.Generator, u: _User, days: int) -> _Calendar:
    d = np.arange(days)
    dow = (u.dow0 + d) % 7
    daytype = u.plan[(u.doy0 + d) % 365]
    free = (dow >= 5) | (daytype == 1)
    dayf = (WEEKDAY[dow] * np.where(daytype == 1, 1.15, 1.0) * np.where(daytype == 2, 0.8, 1.0)
            * rng.lognormal(0.0, 0.3, days))
    lam = (np.where(free[:, None], u.free, u.busy) * (dayf * u.rate_norm)[:, None]).ravel()
    h = days * 24
    p_event = (u.social * np.where((dow == 4) | (dow == 5), 3.0, 1.0) * np.where(daytype == 1, 1.6, 1.0)
               * np.where(daytype == 2, 0.3, 1.0))
    ev_days = np.flatnonzero(rng.random(days) < p_event)
    kinds = rng.choice(4, len(ev_days), p=EVENT_P)
    first = np.minimum(ev_days * 24 + EVENT_START[kinds] + rng.integers(0, 3, len(ev_days)), h)
    last = np.minimum(first + EVENT_DUR[kinds] + rng.integers(0, EVENT_SPAN[kinds] + 1), h)
    mult = rng.uniform(3.0, 11.0, len(ev_days))
    diff = np.zeros(h + 1)
    np.add.at(diff, first, mult)
    np.add.at(diff, last, -mult)
    extra = np.cumsum(diff)[:h]
    lam = lam * (1.0 + np.maximum(extra, 0.0)) + 1e-4
    cum = np.concatenate([[0.0], np.cumsum(lam)])
    return _Calendar(cum, extra > 0.5, daytype, dow, rng.normal(0.0, 0.25, days))


def _calendar(rng: np.random.Generator, u: _User, need: float) -> _Calendar:
    days = int(need / u.rate * 1.3) + 30
    while True:
        cal = _build_calendar(rng, u, days)
        if cal.cum[-1] > need:
            return cal
        days *= 2


# --------------------------------------------------------------------------------------------- stream

def make_stream(rng: np.random.Generator, kind: str) -> Stream:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r} (known: {', '.join(KINDS)})")
    des = _design(rng, kind)
    u = _user(rng, des)
    n = des.n
    idx = np.arange(n)
    par = des.weights @ des.regimes
    s_des, negmix, posmix, pinned, group_shift = par[:, 0], par[:, 1:5], par[:, 5:8], par[:, 8], par[:, 9]
    loose = 1.0 - pinned

    # harmless changes that are not mood changes
    n_nuis = int(rng.choice(3, p=[0.35, 0.45, 0.2] if kind == "none" else [0.5, 0.38, 0.12]))
    nuisance = [(NUISANCES[int(rng.integers(4))], int(rng.integers(20, n - 20))) for _ in range(n_nuis)]
    after = {name: np.zeros(n, bool) for name in NUISANCES}
    for name, pos in nuisance:
        after[name] |= idx >= pos

    # mood on index timescales, and the withdrawal it brings (rarer posts when low)
    z = u.vol * (_ar(rng, n, 40, 0.85, 0.3) + _ar(rng, n, 5, 0.6, 0.35))
    base = _logit(s_des)
    s_level = _sigmoid(base + z * loose)
    lift = np.where(pinned > 0.5, 0.0, s_level - des.s_ref)
    m = np.clip(np.exp(-u.withdraw * lift), 0.3, 3.0)
    need = np.cumsum(rng.exponential(1.0, n) / m)
    cal = _calendar(rng, u, need[-1])
    hours = np.interp(need, cal.cum, np.arange(len(cal.cum), dtype=float))
    hi = np.minimum(hours.astype(np.int64), len(cal.event) - 1)
    day, hod = hi // 24, hi % 24
    event = cal.event[hi]
    dtype, dow = cal.daytype[day], cal.dow[day]
    night = (hod >= 22) | (hod < 6)
    free_day = (dow >= 5) | (dtype == 1)

    # felt emotion: the designed regime, moved by mood and by the calendar
    cal_mood = (cal.daily[day] - 0.2 * free_day - 0.15 * (dtype == 1) + u.exam_sens * (dtype == 2)
                + 0.15 * ((dow == 6) & (hod >= 17)) - 0.5 * event + 0.25 * (hod < 5))
    s_eff = _sigmoid(base + (z + cal_mood) * loose)
    neg = rng.random(n) < s_eff
    true = np.where(neg, NEG[_rows(rng, negmix)], POS[_rows(rng, posmix)])

    # is there a face, whose, and what does it show
    face_logit = (u.face0 + 1.6 * event - u.kappa * lift - 0.7 * neg - 0.3 * night - 1.6 * after["meme_mode"]
                  + 0.3 * after["new_friends"])
    real = rng.random(n) < _sigmoid(face_logit)
    group = real & (rng.random(n) < _sigmoid(u.group0 + 2.2 * event + 1.0 * after["new_friends"]
                                             + group_shift))
    own = real & ~group
    shown = true.copy()
    r = rng.random((n, 4))
    masked = own & neg & (r[:, 0] < u.mask)
    shown[masked] = np.where(r[masked, 1] < 0.7, NEUTRAL, HAPPY)
    if u.deadpan:
        shown[own & ~neg & (true != NEUTRAL) & (r[:, 2] < 0.45)] = NEUTRAL
    shown[own & (true == NEUTRAL) & (r[:, 3] < u.smile)] = HAPPY
    shown[group] = _rows(rng, np.broadcast_to(POSED, (int(group.sum()), 7)))
    r = rng.random((n, 3))
    filt = real & (r[:, 0] < np.where(after["filter_phase"], 0.6, u.filters))
    shown[filt & (r[:, 1] < 0.35)] = HAPPY
    shown[filt & (r[:, 1] >= 0.35) & (r[:, 1] < 0.6)] = SURPRISE

    # faceless posts: what they are, leaning dark when low
    low = s_level + 0.5 * neg
    cw = CONTENT_BASE * np.ones((n, 1))
    cw[:, 0] *= 1 + 3 * after["meme_mode"]
    cw[:, 2] *= 1 + 4 * low
    cw[:, 3] *= 1 + 4 * low
    cw[:, 4] *= 1 - 0.4 * np.minimum(low, 1.0)
    content = np.where(real, -1, _rows(rng, cw))
    cartoon = (content == 0) & (r[:, 2] < 0.12)
    shown[cartoon] = _rows(rng, np.broadcast_to(CARTOON, (int(cartoon.sum()), 7)))
    missed = real & (rng.random(n) < 0.04 + 0.1 * night)
    face = (real & ~missed) | cartoon
    shown = np.where(face, shown, -1)

    # the classifier
    phone = after["new_phone"].astype(np.int64)
    q = np.where(phone == 1, u.quality[1], u.quality[0]) * (1 - 0.2 * night) * np.where(filt, 0.7, 1.0)
    q = q * np.where(cartoon, 0.65, 1.0)
    gumbel = -np.log(-np.log(rng.random((n, 7)) * (1 - 1e-12) + 1e-12))
    face_logits = (q[:, None] * u.log_conf[phone, np.maximum(shown, 0)] + (1 - q)[:, None] * u.log_prior
                   + gumbel)
    crop_logits = u.crop_bias + CONTENT_BIAS[np.maximum(content, 0)] + 1.3 * gumbel
    temp = np.where(phone == 1, u.temp[1], u.temp[0]) * rng.lognormal(0.0, 0.15, n)
    temp = temp * np.where(face, 1.0, 1.4)
    probs = _softmax(np.where(face[:, None], face_logits, crop_logits) / temp[:, None]).astype(np.float32)
    probs /= probs.sum(axis=1, keepdims=True, dtype=np.float32)

    secs = hours * 3600.0
    gaps = np.diff(secs, prepend=0.0) + 2.0 + rng.exponential(6.0, n)

    meta = dict(des.meta)
    meta.update(
        n_nuisance=n_nuis, nuisance=nuisance, plan=u.plan_name, rate_per_day=u.rate,
        accuracy_design=u.acc, s_design=s_des, s_eff=s_eff, s_level=s_level, shown=shown, real_face=real,
        group=group, event=event, content=content, filtered=filt, hours=hours)
    return Stream(kind, probs, gaps.astype(np.float64), face.astype(bool), des.start, des.end, des.start2,
                  true.astype(np.int64), meta)


def make_streams(seed: int, kind: str, n: int) -> list[Stream]:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r} (known: {', '.join(KINDS)})")
    children = np.random.SeedSequence([int(seed), KINDS.index(kind), 1515]).spawn(n)
    return [make_stream(np.random.default_rng(child), kind) for child in children]
