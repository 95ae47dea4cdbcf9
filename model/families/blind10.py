"""blind10: image timelines of social-media users as a 7-class facial-emotion classifier reports them.

Written from a plain description of the task only (no other family, simulator or detector read). Each
stream is one user: the times of their posts, whether a face was found in each image, the classifier's
probability vector and the truth (what the person felt, and where their emotional pattern changed).

The world
=========

Three layers, simulated in this order: *when* a person posts, *what they feel* when they post, and *what
the pipeline reports* from the image.

When people post
----------------
* Posting comes in **sessions**: per local day the number of sessions is Poisson with a user rate
  (0.5-10 a day, log-uniform) times a weekday/weekend factor, a **day-level gamma burst factor** (heavy
  overdispersion for some users: quiet days and binge days), a slowly wandering monthly **engagement**
  level (AR(1) in log rate) and **hiatuses** (off periods of days to months).
* Session start times follow a personal **chronotype** (morning, daytime, evening, night owl, split-shift
  or flat), as a mixture of von Mises bumps over the 24 h clock.
* A session has 1 + geometric posts, minutes apart (lognormal gaps, personal median 15 s-6 min); some
  sessions are **photo dumps** (carousels) of 4-20 posts seconds apart. Overlapping sessions merge.
  Gaps between posts are therefore bursty and heavy tailed: seconds, hours, days, and now and then months.
* Mood changes can change the posting habit itself: after a change toward negativity some people
  withdraw (post less), others vent (post more), and some drift later into the night.
* Travel moves a block of days to another time zone (the clock of posting shifts for a while).

What people feel
----------------
* A personal **baseline** distribution over the 7 emotions, drawn around one of eight temperaments
  (sunny, easygoing, stoic, volatile, melancholic, anxious, irritable, low), blended with a second
  temperament and Dirichlet-perturbed: from cheerful to gloomy to mixed.
* Context tilts the baseline along a **valence** and an **arousal** axis (a circumplex): a session-level
  mood that persists across sessions with a personal time constant (1-36 hours), a **night dip**
  (posts between midnight and 5 a.m.), a **weekend lift** (or a weekend slump), and for some users a
  **winter low** (seasonal cycle). The expected feeling of a post is ``feel`` (softmax of the tilted log
  baseline); the felt emotion is drawn from it.
* **Within-session persistence**: a post repeats the previous post's felt emotion with a personal
  probability (0.3-0.9) that decays with the gap (time constant 2-30 min).

What the pipeline reports
-------------------------
* **Faces.** A personal share of face posts (20-85 %), correlated within a session (a food session, a
  selfie session), and lower while the person feels negative for users who post fewer selfies when low.
  A few non-face images are detected as faces anyway (pet faces, patterns): ``face`` True, noise output.
* **Display.** The person shows the felt emotion with a personal expressivity (0.35-0.95), and shows
  negative feelings less (a disclosure factor). Otherwise they show a mask: a neutral face, a **posed
  smile**, or a personal **signature pose** (the tongue-out, the mock-angry, the surprised face).
  In **group photos** the face read is often someone else's (mostly smiling). Some images are
  **throwbacks**: an old photo re-posted, its old expression re-read (with recompression jitter).
* **Classifier.** A per-user confusion matrix: accuracy 50-75 % on displayed expressions (happy easiest,
  fear and disgust hardest), errors following FER-typical confusions (fear/surprise, sad/neutral,
  disgust/angry, angry/sad), and for some users a "resting face" that reads sad or angry. The probability
  vector has the predicted class on top, leaks the displayed class second, has a user/camera bias,
  session-correlated noise (same light, same place), a personal temperature (near one-hot to nearly flat),
  sometimes a floor (label smoothing) and sometimes rounding to 2-4 decimals.
* **Faceless posts** get what the user's pipeline returns for no face: a uniform vector, the FER-2013
  class prior, a neutral-heavy default, the classifier run on the whole image (noise, weakly tinted by the
  scene's mood), the last face result repeated (a stale cache), or a mix of uniform and whole-image runs.
* **Nuisances** change the outputs but not the feeling, on every kind of stream (stable users included),
  at random times: a new phone (bias, temperature, noise), a beauty filter (smooths frowns away, lifts
  happy/neutral), more group photos (new partner, kids, a party season), a pipeline update (temperature,
  bias and the faceless default change), sunglasses on a trip (accuracy drops for a while), a new look
  (glasses or beard: a lasting accuracy drop), more faceless content (food blog, pet photos), pet faces
  detected as faces, and travel to another time zone.

Kinds of streams
================
``none``: a stable user, 1500-3000 posts. Change streams: 300-900 posts, ``20 <= start <= 300``, at
least 150 posts after the last change. ``settled`` (an extra field) is the first post fully at the new
pattern (``start`` for abrupt changes, ``start + ramp`` for gradual ones).

* ``abrupt_pos_neg``: a non-gloomy baseline moves at ``start``, for good, toward a negative flavour
  (grief, worry, anger, contempt, numbness); the negative share rises by at least 0.15.
* ``abrupt_neg_pos``: a gloomy baseline moves toward joy, calm or excitement; negative share falls >= 0.15.
* ``gradual``: a ramp of 20-300 posts (linear, smoothstep or fast-then-slow) toward a negative, a positive
  or a *lateral* pattern (a different kind of negativity, or happy turning flat), the latter keeping the
  negative share about the same.
* ``small_shift``: the negative share of the expected feeling moves by 0.1-0.3 (calibrated on the
  tilted feelings, so it holds for ``feel`` and ``true_emotion``), up or down.
* ``transient``: 1-3 posts of another mood (bad news, a wild night), ``end`` = first post back.
* ``episode``: 10-80 posts of another mood (an illness, a breakup, a holiday), ``end`` = first post back.
* ``two_changes``: a lasting change at ``start``, then at ``start2 >= start + 100`` a return (partial or
  full), a further step in the same direction, or a different kind of (negative) feeling.
* ``placebo``: a stable user with ``start`` drawn as change streams draw it; nothing happens there.

Extra fields beyond the interface (the adapter ignores them): ``feel`` (T, 7) expected feeling per post,
``pattern`` (T, 7) the pattern before context tilts (transient posts: their mood),
``displayed`` (T,) the expression the classifier read (-1: no face or not a real face), ``settled``, and
``nuisances`` (name, first post, first post after or None).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

NAME = "blind10"
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
KINDS = ("none", "abrupt_pos_neg", "abrupt_neg_pos", "gradual", "small_shift", "transient", "episode",
         "two_changes", "placebo")

N_CLASSES = 7
ANGRY, DISGUST, FEAR, HAPPY, SAD, SURPRISE, NEUTRAL = range(7)
NEGATIVE = np.array([True, True, True, False, True, False, False])
DAY = 86400.0

#                     angry disg  fear  happy sad  surpr neutral
VALENCE = np.array([-0.8, -0.7, -0.7, 1.0, -1.0, 0.2, 0.0])
AROUSAL = np.array([0.7, 0.3, 0.8, 0.4, -0.6, 0.9, -0.6])

TEMPERAMENTS = {
    "sunny":       np.array([0.02, 0.01, 0.02, 0.58, 0.03, 0.13, 0.21]),
    "easygoing":   np.array([0.03, 0.01, 0.03, 0.40, 0.05, 0.08, 0.40]),
    "stoic":       np.array([0.04, 0.02, 0.03, 0.15, 0.07, 0.04, 0.65]),
    "volatile":    np.array([0.11, 0.04, 0.08, 0.30, 0.13, 0.10, 0.24]),
    "melancholic": np.array([0.04, 0.02, 0.06, 0.14, 0.38, 0.04, 0.32]),
    "anxious":     np.array([0.05, 0.02, 0.30, 0.12, 0.18, 0.13, 0.20]),
    "irritable":   np.array([0.30, 0.08, 0.04, 0.14, 0.13, 0.05, 0.26]),
    "low":         np.array([0.08, 0.03, 0.10, 0.06, 0.45, 0.02, 0.26]),
}
BRIGHT = ("sunny", "easygoing", "stoic", "volatile")
GLOOMY = ("melancholic", "anxious", "irritable", "low")
TEMPER_P = np.array([0.16, 0.2, 0.13, 0.12, 0.11, 0.1, 0.09, 0.09])

LOW_FLAVOURS = {
    "grief":    np.array([0.05, 0.02, 0.08, 0.04, 0.60, 0.02, 0.19]),
    "worry":    np.array([0.06, 0.02, 0.50, 0.05, 0.15, 0.12, 0.10]),
    "anger":    np.array([0.52, 0.12, 0.05, 0.05, 0.10, 0.04, 0.12]),
    "contempt": np.array([0.25, 0.35, 0.03, 0.07, 0.08, 0.04, 0.18]),
    "numb":     np.array([0.06, 0.02, 0.04, 0.04, 0.30, 0.01, 0.53]),
}
HIGH_FLAVOURS = {
    "joy":     np.array([0.01, 0.01, 0.01, 0.70, 0.02, 0.12, 0.13]),
    "calm":    np.array([0.02, 0.01, 0.02, 0.30, 0.04, 0.05, 0.56]),
    "excited": np.array([0.02, 0.01, 0.03, 0.52, 0.02, 0.30, 0.10]),
}

# FER-typical confusions: where a misread expression goes (rows: shown, columns: read)
CONFUSION_AFFINITY = np.array([
    [0.0, 0.15, 0.10, 0.08, 0.30, 0.05, 0.32],   # angry   -> sad, neutral, disgust
    [0.50, 0.0, 0.10, 0.08, 0.20, 0.02, 0.10],   # disgust -> angry, sad
    [0.10, 0.04, 0.0, 0.04, 0.30, 0.35, 0.17],   # fear    -> surprise, sad
    [0.08, 0.04, 0.04, 0.0, 0.10, 0.20, 0.54],   # happy   -> neutral, surprise
    [0.14, 0.04, 0.20, 0.08, 0.0, 0.02, 0.52],   # sad     -> neutral, fear, angry
    [0.04, 0.01, 0.50, 0.25, 0.02, 0.0, 0.18],   # surprise-> fear, happy
    [0.14, 0.02, 0.08, 0.14, 0.55, 0.07, 0.0],   # neutral -> sad, angry, happy
])
CLASS_EASE = np.array([-0.04, -0.14, -0.14, 0.14, -0.06, 0.06, 0.0])
FER_PRIOR = np.array([4953, 547, 5121, 8989, 6077, 4002, 6198], float) / 35887.0
OTHER_FACES = np.array([0.03, 0.01, 0.02, 0.55, 0.03, 0.10, 0.26])  # other people in group photos

FACELESS_MODES = ("uniform", "prior", "neutral", "noise", "stale", "mixed")
NUISANCES = ("new_phone", "beauty_filter", "group_photos", "pipeline_update", "sunglasses_trip",
             "new_look", "more_faceless", "pet_faces", "travel")


@dataclass
class Stream:
    kind: str
    probs: np.ndarray            # (T, 7) float32, rows sum to 1
    gaps: np.ndarray             # (T,) float64 seconds since the previous post, 0 first
    face: np.ndarray             # (T,) bool
    start: int | None = None
    end: int | None = None
    start2: int | None = None
    true_emotion: np.ndarray | None = None   # (T,) int64
    feel: np.ndarray | None = None           # (T, 7) float32 expected feeling per post
    pattern: np.ndarray | None = None        # (T, 7) float32 the emotional pattern before context tilts
    displayed: np.ndarray | None = None      # (T,) int8, -1 where no real face was read
    settled: int | None = None               # first post fully at the new pattern (lasting changes)
    nuisances: tuple = field(default_factory=tuple)

    @property
    def length(self) -> int:
        return int(self.probs.shape[0])


# --- small helpers -----------------------------------------------------------------------------------

def _norm(p: np.ndarray) -> np.ndarray:
    p = np.maximum(p, 1e-4)
    return p / p.sum(axis=-1, keepdims=True)


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def neg_share(p: np.ndarray) -> np.ndarray:
    return p[..., NEGATIVE].sum(axis=-1)


def _tv(p: np.ndarray, q: np.ndarray) -> float:
    return float(0.5 * np.abs(p - q).sum())


def _draw_rows(rng: np.random.Generator, q: np.ndarray) -> np.ndarray:
    """One categorical draw per row of q (n, 7)."""
    c = np.cumsum(q, axis=1)
    u = rng.random(q.shape[0])[:, None] * c[:, -1:]
    return np.minimum((c < u).sum(axis=1), N_CLASSES - 1)


def _mix(p: np.ndarray, target: np.ndarray, w: float) -> np.ndarray:
    return _norm((1.0 - w) * p + w * target)


def _with_neg_share(p: np.ndarray, s: float, tint: np.ndarray | None = None, w: float = 0.0) -> np.ndarray:
    """p with its negative block scaled to total s (optionally re-tinted toward tint's negative profile)."""
    neg = p[NEGATIVE] / p[NEGATIVE].sum()
    if tint is not None:
        neg = (1 - w) * neg + w * tint[NEGATIVE] / tint[NEGATIVE].sum()
    pos = p[~NEGATIVE] / p[~NEGATIVE].sum()
    out = np.empty(N_CLASSES)
    out[NEGATIVE] = s * neg
    out[~NEGATIVE] = (1 - s) * pos
    return _norm(out)


# --- the user ----------------------------------------------------------------------------------------

class _User:
    """Everything personal: posting habits, feelings, face and classifier traits."""

    def __init__(self, rng: np.random.Generator, temperaments: tuple[str, ...] | None = None):
        r = rng
        # posting
        self.sessions_per_day = float(np.exp(r.uniform(np.log(0.5), np.log(10.0))))
        self.extra_posts = float(r.uniform(0.1, 1.8))
        self.p_dump = float(r.choice([0.0, r.uniform(0.01, 0.12)], p=[0.4, 0.6]))
        self.within_median = float(np.exp(r.uniform(np.log(15.0), np.log(360.0))))
        self.burst_k = float(np.exp(r.uniform(np.log(0.35), np.log(4.0))))
        self.week = np.ones(7)
        self.week[5:] = np.exp(r.normal(0.15, 0.35))
        self.week[r.integers(7)] *= np.exp(r.normal(0, 0.3))
        self.dow0 = int(r.integers(7))
        self.doy0 = float(r.uniform(0, 365))
        self.profile = self._chronotype(r)
        months = 600
        eng = np.zeros(months)
        sd, rho = r.uniform(0.1, 0.35), r.uniform(0.6, 0.9)
        for m in range(1, months):
            eng[m] = rho * eng[m - 1] + r.normal(0, sd)
        self.engagement = np.exp(eng - eng.mean())
        ndays = 30000
        off = np.zeros(ndays, bool)
        p_off = r.choice([0.0, r.uniform(0.0005, 0.006)], p=[0.35, 0.65])
        starts = np.flatnonzero(r.random(ndays) < p_off)
        for s0 in starts:
            off[s0:s0 + int(r.pareto(1.2) * 4 + 2)] = True
        self.off = off
        self.withdraw = float(r.uniform(-0.6, 1.2))    # >0: posts less when more negative
        self.night_drift = float(r.uniform(0.0, 1.0))  # later posting when more negative
        # feeling
        names = tuple(TEMPERAMENTS) if temperaments is None else temperaments
        probs = np.array([TEMPER_P[list(TEMPERAMENTS).index(n)] for n in names])
        first = names[r.choice(len(names), p=probs / probs.sum())]
        other = list(TEMPERAMENTS)[r.integers(len(TEMPERAMENTS))]
        base = _mix(TEMPERAMENTS[first], TEMPERAMENTS[other], r.uniform(0.0, 0.3))
        self.temperament = first
        self.base = _norm(r.dirichlet(base * r.uniform(30, 120)))
        self.persist = float(r.uniform(0.3, 0.9))
        self.persist_tau = float(r.uniform(120, 1800))
        self.mood_tau = float(r.uniform(1, 36)) * 3600
        self.mood_sd = float(r.uniform(0.15, 0.55))
        self.arousal_sd = float(r.uniform(0.1, 0.5))
        self.night_dip = float(r.uniform(0.0, 0.6))
        self.weekend_lift = float(r.normal(0.12, 0.15))
        self.season_amp = float(r.uniform(0.03, 0.1)) if r.random() < 0.3 else 0.0
        # face and display
        self.face_rate = float(r.uniform(0.2, 0.85))
        self.face_session_sd = float(r.uniform(0.2, 1.3))
        self.face_neg_drop = float(r.uniform(0.0, 1.0)) if r.random() < 0.6 else 0.0
        self.expressivity = float(r.uniform(0.35, 0.95))
        self.disclosure = float(r.uniform(0.35, 1.0))
        self.posed_smile = float(r.uniform(0.1, 0.7))
        self.signature = int(r.choice([SURPRISE, DISGUST, ANGRY, FEAR, HAPPY]))
        self.signature_p = float(r.uniform(0.0, 0.12)) if r.random() < 0.4 else 0.0
        self.group = float(r.uniform(0.02, 0.3))
        self.filter = float(r.uniform(0.3, 1.0)) if r.random() < 0.2 else 0.0
        self.pareidolia = float(r.uniform(0.0, 0.03))
        self.throwback = float(r.uniform(0.0, 0.04)) if r.random() < 0.5 else 0.0
        # classifier
        self.accuracy = float(r.uniform(0.5, 0.75))
        self.confusion = self._confusion(r)
        self.margin = float(r.uniform(2.2, 4.0))
        self.temp = float(np.exp(r.uniform(np.log(0.35), np.log(3.5))))
        self.noise = float(r.uniform(0.2, 0.8))
        self.noise_corr = float(r.uniform(0.2, 0.7))
        self.leak = float(r.uniform(0.0, 0.6))
        self.second = float(r.uniform(0.0, 0.4))
        self.bias = r.normal(0, 0.25, N_CLASSES)
        self.smoothing = float(r.choice([0.0, 0.0, 0.01, 0.05]))
        self.decimals = [None, None, 4, 3, 2][int(r.integers(5))]
        self.faceless_mode = int(r.choice(len(FACELESS_MODES), p=[0.22, 0.15, 0.15, 0.25, 0.1, 0.13]))
        self.neutral_default = _norm(np.r_[r.dirichlet(np.ones(6) * 2) * r.uniform(0.15, 0.45), 0.0])
        self.neutral_default[NEUTRAL] = 1 - self.neutral_default[:NEUTRAL].sum()
        self.scene_bias = r.normal(0, 0.5, N_CLASSES)
        self.scene_leak = float(r.uniform(0.0, 0.7))
        self.scene_temp = float(np.exp(r.uniform(np.log(0.6), np.log(3.0))))

    @staticmethod
    def _chronotype(r: np.random.Generator) -> np.ndarray:
        hours = (np.arange(96) + 0.5) / 4
        kind = r.choice(["morning", "day", "evening", "night", "split", "flat"],
                        p=[0.12, 0.2, 0.35, 0.15, 0.1, 0.08])
        peaks = {"morning": [7.5], "day": [12.5], "evening": [20.5], "night": [23.5],
                 "split": [7.0, 21.0], "flat": [15.0]}[kind]
        prof = np.full(96, r.uniform(0.02, 0.12))
        for mu in peaks:
            mu = mu + r.normal(0, 1.2)
            kappa = r.uniform(1.0, 4.0) if kind != "flat" else 0.3
            prof += r.uniform(0.5, 1.0) * np.exp(kappa * (np.cos(2 * np.pi * (hours - mu) / 24) - 1))
        sleep = (hours - (peaks[-1] + 7.5)) % 24 < 5.5   # a few hours of little posting
        prof[sleep] *= r.uniform(0.05, 0.4)
        return prof / prof.sum()

    def _confusion(self, r: np.random.Generator) -> np.ndarray:
        diag = np.clip(self.accuracy - 0.04 + CLASS_EASE + r.normal(0, 0.05, N_CLASSES), 0.2, 0.95)
        aff = CONFUSION_AFFINITY * np.exp(r.normal(0, 0.4, (N_CLASSES, N_CLASSES)))
        if r.random() < 0.25:   # a resting face that reads sad or angry
            aff[NEUTRAL, r.choice([SAD, ANGRY])] *= 3
            diag[NEUTRAL] -= r.uniform(0.05, 0.2)
        np.fill_diagonal(aff, 0)
        aff /= aff.sum(axis=1, keepdims=True)
        conf = aff * (1 - diag)[:, None]
        conf[np.arange(N_CLASSES), np.arange(N_CLASSES)] = diag
        return conf


# --- when -------------------------------------------------------------------------------------------

def _post_times(rng: np.random.Generator, u: _User, n: int, t0: float, rate: float, shift_h: float
                ) -> np.ndarray:
    """n post times after t0 (seconds; day 0 starts at local midnight)."""
    prof = np.roll(u.profile, int(round(shift_h * 4)))
    mean_posts = 1 + u.extra_posts + u.p_dump * 11
    per_day = max(u.sessions_per_day * rate * mean_posts * 0.5, 0.05)
    day = int(t0 // DAY)
    chunks, total = [], 0
    while total < n:
        nd = int(min(max(14, (n - total) / per_day * 1.3 + 7), 20000))
        days = np.arange(day, day + nd)
        mult = (u.week[(days + u.dow0) % 7] * rng.gamma(u.burst_k, 1 / u.burst_k, nd)
                * u.engagement[(days // 30) % u.engagement.size] * ~u.off[days % u.off.size])
        counts = rng.poisson(u.sessions_per_day * rate * mult)
        ns = int(counts.sum())
        day += nd
        if ns == 0:
            continue
        sday = np.repeat(days, counts)
        starts = sday * DAY + (rng.choice(96, ns, p=prof) + rng.random(ns)) * 900.0
        sizes = rng.geometric(1 / (1 + u.extra_posts), ns)
        dump = rng.random(ns) < u.p_dump
        sizes[dump] += rng.integers(3, 19, int(dump.sum()))
        sess = np.repeat(np.arange(ns), sizes)
        first = np.r_[0, np.cumsum(sizes)[:-1]]
        g = rng.lognormal(np.log(u.within_median), 0.9, sess.size)
        g = np.where(dump[sess], rng.uniform(1, 8, sess.size), g)
        g[first] = 0.0
        cs = np.cumsum(g)
        t = starts[sess] + cs - cs[first][sess]
        t = t[t > t0 + 20]
        chunks.append(t)
        total += t.size
    return np.sort(np.concatenate(chunks))[:n]


# --- what is felt: plans per kind ----------------------------------------------------------------------

def _more_negative(rng, p0, gain=0.15):
    for _ in range(30):
        name = list(LOW_FLAVOURS)[rng.integers(len(LOW_FLAVOURS))]
        fl = _norm(rng.dirichlet(LOW_FLAVOURS[name] * 80))
        p1 = _mix(p0, fl, rng.uniform(0.4, 0.92))
        if neg_share(p1) - neg_share(p0) >= gain:
            return p1
    return _mix(p0, LOW_FLAVOURS["grief"], 0.92)


def _less_negative(rng, p0, gain=0.15):
    for _ in range(30):
        name = list(HIGH_FLAVOURS)[rng.integers(len(HIGH_FLAVOURS))]
        fl = _norm(rng.dirichlet(HIGH_FLAVOURS[name] * 80))
        p1 = _mix(p0, fl, rng.uniform(0.4, 0.92))
        if neg_share(p0) - neg_share(p1) >= gain:
            return p1
    return _mix(p0, HIGH_FLAVOURS["joy"], 0.92)


def _lateral(rng, p0, min_tv=0.12):
    """Another kind of feeling with about the same negative share."""
    s0 = float(neg_share(p0))
    best, best_tv = p0, 0.0
    for _ in range(30):
        if s0 >= 0.22 and rng.random() < 0.75:   # a different kind of negativity
            name = list(LOW_FLAVOURS)[rng.integers(len(LOW_FLAVOURS))]
            p1 = _with_neg_share(p0, s0, LOW_FLAVOURS[name], rng.uniform(0.6, 1.0))
        else:                                     # happy turning flat, or flat turning bright
            p1 = p0.copy()
            if rng.random() < 0.5 or p0[NEUTRAL] < 0.15:
                moved = p1[HAPPY] * rng.uniform(0.5, 0.9)
                p1[HAPPY] -= moved
                p1[NEUTRAL] += moved
            else:
                moved = p1[NEUTRAL] * rng.uniform(0.5, 0.9)
                p1[NEUTRAL] -= moved
                p1[HAPPY] += 0.75 * moved
                p1[SURPRISE] += 0.25 * moved
            p1 = _norm(p1)
        tv = _tv(p0, p1)
        if tv >= min_tv:
            return p1
        if tv > best_tv:
            best, best_tv = p1, tv
    return best


def _other_mood(rng, p0, lo=0.5, hi=0.95, min_tv=0.25):
    """A mood unlike the baseline, for transients and episodes."""
    s0 = float(neg_share(p0))
    for _ in range(30):
        r = rng.random()
        if r < 0.15:
            p1 = _lateral(rng, p0, min_tv)
        elif (s0 < 0.35 and r < 0.9) or (0.35 <= s0 <= 0.5 and r < 0.55):
            name = list(LOW_FLAVOURS)[rng.integers(len(LOW_FLAVOURS))]
            p1 = _mix(p0, LOW_FLAVOURS[name], rng.uniform(lo, hi))
        else:
            name = list(HIGH_FLAVOURS)[rng.integers(len(HIGH_FLAVOURS))]
            p1 = _mix(p0, HIGH_FLAVOURS[name], rng.uniform(lo, hi))
        if _tv(p0, p1) >= min_tv:
            return p1
    return _mix(p0, LOW_FLAVOURS["grief"] if s0 < 0.4 else HIGH_FLAVOURS["joy"], hi)


def _goes_down(rng, s0: float) -> bool:
    """Direction of a lasting change: more negative or less, among the feasible ones."""
    can_down, can_up = s0 <= 0.55, s0 >= 0.25
    if can_down and can_up:
        return bool(rng.random() < (0.8 if s0 < 0.3 else 0.2 if s0 > 0.5 else 0.5))
    return can_down


def _change_start(rng, T, after):
    return int(rng.integers(20, min(300, T - 150 - after) + 1))


class _Plan:
    def __init__(self, T):
        self.T = T
        self.start = self.end = self.start2 = self.settled = None
        self.regimes = []          # (first post, distribution) pieces; ramps in `ramp`
        self.ramp = None           # (start, length, p_from, p_to, shape)
        self.override = None       # (start, end, distribution): transient posts feel exactly this
        self.behaviour = [(0, 0.0)]   # (first post, change in negative share) for posting habits
        self.small_shift = None    # target change in negative share (calibrated later)
        self.fresh = []            # posts that draw a fresh feeling (no persistence across a boundary)


def _plan(rng: np.random.Generator, kind: str, u: _User) -> _Plan:
    p0 = u.base
    if kind == "none":
        plan = _Plan(int(rng.integers(1500, 3001)))
        plan.regimes = [(0, p0)]
        return plan
    T = int(rng.integers(300, 901))
    plan = _Plan(T)
    plan.regimes = [(0, p0)]
    if kind == "placebo":
        plan.start = _change_start(rng, T, 0)
        return plan
    if kind in ("abrupt_pos_neg", "abrupt_neg_pos", "small_shift"):
        s = plan.start = plan.settled = _change_start(rng, T, 0)
        if kind == "small_shift":
            s0 = float(neg_share(p0))
            size = float(rng.uniform(0.1, 0.3))
            up = rng.random() < (0.75 if s0 < 0.25 else 0.25 if s0 > 0.6 else 0.5)
            up = (up or s0 - size < 0.04) and s0 + size < 0.92
            plan.small_shift = size if up else -size
            plan.behaviour.append((s, plan.small_shift))
            return plan
        p1 = _more_negative(rng, p0) if kind == "abrupt_pos_neg" else _less_negative(rng, p0)
        plan.regimes.append((s, p1))
        plan.behaviour.append((s, float(neg_share(p1) - neg_share(p0))))
        plan.fresh.append(s)
        return plan
    if kind == "gradual":
        ramp = int(np.exp(rng.uniform(np.log(20), np.log(300))))
        ramp = min(ramp, T - 170)
        s = plan.start = _change_start(rng, T, ramp)
        plan.settled = s + ramp
        s0 = float(neg_share(p0))
        if rng.random() < 0.3:
            p1 = _lateral(rng, p0, 0.15)
        elif _goes_down(rng, s0):
            p1 = _more_negative(rng, p0, 0.12)
        else:
            p1 = _less_negative(rng, p0, 0.12)
        plan.ramp = (s, ramp, p0, p1, str(rng.choice(["linear", "smooth", "fast"])))
        plan.regimes.append((s + ramp, p1))
        plan.behaviour.append((s + ramp // 2, float(neg_share(p1) - neg_share(p0))))
        return plan
    if kind == "transient":
        n = int(rng.integers(1, 4))
        s = plan.start = _change_start(rng, T, n)
        plan.end = s + n
        plan.override = (s, s + n, _other_mood(rng, p0, 0.8, 1.0, 0.35))
        plan.fresh += [s, s + n]
        return plan
    if kind == "episode":
        n = int(rng.integers(10, 81))
        s = plan.start = _change_start(rng, T, n)
        plan.end = s + n
        p1 = _other_mood(rng, p0)
        plan.regimes += [(s, p1), (s + n, p0)]
        plan.behaviour += [(s, float(neg_share(p1) - neg_share(p0))), (s + n, 0.0)]
        plan.fresh += [s, s + n]
        return plan
    if kind == "two_changes":
        s = plan.start = plan.settled = int(rng.integers(20, min(300, T - 250) + 1))
        s2 = plan.start2 = int(rng.integers(s + 100, T - 150 + 1))
        s0 = float(neg_share(p0))
        down = _goes_down(rng, s0)
        p1 = _more_negative(rng, p0) if down else _less_negative(rng, p0)
        s1 = float(neg_share(p1))
        further_ok = s1 <= 0.6 if down else s1 >= 0.15
        p2, best = p1, 0.0
        for _ in range(30):
            how = rng.choice(["return", "further", "reflavour"], p=[0.45, 0.25, 0.3])
            if how == "return":
                cand = _norm(p0 + rng.uniform(0.0, 0.4) * (p1 - p0))
            elif how == "further" and further_ok:
                cand = _more_negative(rng, p1, 0.1) if down else _less_negative(rng, p1, 0.1)
            else:
                cand = _lateral(rng, p1, 0.15)
            if _tv(p1, cand) > best:
                p2, best = cand, _tv(p1, cand)
            if best >= 0.12:
                break
        plan.regimes += [(s, p1), (s2, p2)]
        plan.behaviour += [(s, float(neg_share(p1) - s0)), (s2, float(neg_share(p2) - s0))]
        plan.fresh += [s, s2]
        return plan
    raise ValueError(f"unknown kind {kind!r} (known: {', '.join(KINDS)})")


def _regime_matrix(plan: _Plan) -> np.ndarray:
    P = np.empty((plan.T, N_CLASSES))
    for first, p in plan.regimes:
        P[first:] = p
    if plan.ramp is not None:
        s, n, a, b, shape = plan.ramp
        x = (np.arange(n) + 1) / (n + 1)
        if shape == "smooth":
            x = x * x * (3 - 2 * x)
        elif shape == "fast":
            x = (1 - np.exp(-3 * x)) / (1 - np.exp(-3))
        P[s:s + n] = (1 - x)[:, None] * a + x[:, None] * b
    return P


# --- what is felt: context ---------------------------------------------------------------------------

def _tilts(rng: np.random.Generator, u: _User, times: np.ndarray, gaps: np.ndarray, session: np.ndarray
           ) -> np.ndarray:
    """Additive log-tilts (T, 7) of the feeling from mood, time of day, weekday and season."""
    ns = int(session[-1]) + 1
    firsts = np.flatnonzero(np.r_[True, session[1:] != session[:-1]])
    sgap = gaps[firsts]
    phi = np.exp(-sgap / u.mood_tau)
    eps = rng.normal(0, 1, (ns, 2))
    z = np.empty((ns, 2))
    z[0] = eps[0]
    for i in range(1, ns):
        z[i] = phi[i] * z[i - 1] + np.sqrt(1 - phi[i] ** 2) * eps[i]
    val = z[session, 0] * u.mood_sd
    aro = z[session, 1] * u.arousal_sd
    hour = (times % DAY) / 3600
    dow = ((times // DAY).astype(int) + u.dow0) % 7
    doy = (times / DAY + u.doy0) % 365.25
    val = val - u.night_dip * (hour < 5) + u.weekend_lift * (dow >= 5)
    val = val - u.season_amp * np.cos(2 * np.pi * (doy - 15) / 365.25)
    aro = aro - 0.2 * ((hour >= 5) & (hour < 9))
    return val[:, None] * VALENCE + aro[:, None] * AROUSAL


def _calibrate_small_shift(p0: np.ndarray, tilt: np.ndarray, delta: float) -> np.ndarray:
    """A distribution whose tilted negative share differs from p0's by delta (bisection on the share)."""
    base = float(neg_share(_softmax(np.log(p0) + tilt)).mean())
    lo, hi = 0.003, 0.997
    reach_lo = float(neg_share(_softmax(np.log(_with_neg_share(p0, lo)) + tilt)).mean()) - base
    reach_hi = float(neg_share(_softmax(np.log(_with_neg_share(p0, hi)) + tilt)).mean()) - base
    if not reach_lo <= delta <= reach_hi:   # not feasible this way round: shift the other way
        delta = -delta
    for _ in range(28):
        mid = 0.5 * (lo + hi)
        got = float(neg_share(_softmax(np.log(_with_neg_share(p0, mid)) + tilt)).mean()) - base
        if got < delta:
            lo = mid
        else:
            hi = mid
    return _with_neg_share(p0, 0.5 * (lo + hi))


# --- what the pipeline reports -----------------------------------------------------------------------

class _Conditions:
    """Per-post classifier conditions after nuisances."""

    def __init__(self, u: _User, T: int):
        self.bias = np.tile(u.bias, (T, 1))
        self.temp = np.full(T, u.temp)
        self.noise = np.full(T, u.noise)
        self.group = np.full(T, u.group)
        self.filter = np.full(T, u.filter)
        self.face_logit = np.zeros(T)
        self.pareidolia = np.full(T, u.pareidolia)
        self.mode = np.full(T, u.faceless_mode)
        self.degrade = []   # (slice, probability, distribution)


def _nuisances(rng: np.random.Generator, u: _User, T: int) -> tuple[_Conditions, list, list]:
    """Nuisance events; returns the conditions, the travel windows (first, stop, hours) and the log."""
    cond = _Conditions(u, T)
    events, travel = [], []
    n = min(int(rng.poisson(0.6 + T / 1000)), 5)
    p = np.array([0.16, 0.12, 0.12, 0.1, 0.1, 0.08, 0.12, 0.08, 0.12])
    for name in rng.choice(NUISANCES, n, p=p / p.sum()):
        a = int(rng.integers(0, T))
        b = None
        if name in ("sunglasses_trip", "travel"):
            b = a + int(rng.integers(5, 60))
        elif name in ("group_photos", "more_faceless", "beauty_filter") and rng.random() < 0.35:
            b = a + int(rng.integers(20, 300))
        b = None if b is not None and b >= T else b
        sl = slice(a, b)
        if name == "new_phone":
            cond.bias[sl] += rng.normal(0, 0.35, N_CLASSES)
            cond.temp[sl] *= np.exp(rng.normal(0, 0.3))
            cond.noise[sl] *= rng.uniform(0.7, 1.4)
        elif name == "beauty_filter":
            cond.filter[sl] = rng.uniform(0.5, 1.0)
        elif name == "group_photos":
            cond.group[sl] = np.minimum(cond.group[sl] + rng.uniform(0.15, 0.4), 0.7)
        elif name == "pipeline_update":
            cond.temp[sl] *= np.exp(rng.normal(0, 0.4))
            cond.bias[sl] += rng.normal(0, 0.2, N_CLASSES)
            cond.mode[sl] = rng.integers(len(FACELESS_MODES))
        elif name == "sunglasses_trip":
            cond.degrade.append((sl, rng.uniform(0.25, 0.5), _norm(np.array([4, 1, 3, 2, 2, 3, 5.0]))))
            cond.face_logit[sl] -= 0.3
        elif name == "new_look":
            cond.degrade.append((sl, rng.uniform(0.08, 0.2), _norm(rng.dirichlet(np.ones(N_CLASSES)))))
        elif name == "more_faceless":
            cond.face_logit[sl] -= rng.uniform(0.7, 1.6)
        elif name == "pet_faces":
            cond.pareidolia[sl] += rng.uniform(0.04, 0.12)
        elif name == "travel":   # another time zone: the posting clock shifts by hours for a while
            travel.append((a, T if b is None else b, float(rng.choice([-1, 1]) * rng.uniform(3, 9))))
        events.append((str(name), a, b))
    return cond, travel, sorted(events, key=lambda e: e[1])


def _display(rng, u: _User, cond: _Conditions, emotion: np.ndarray, face: np.ndarray) -> np.ndarray:
    T = emotion.size
    show_p = np.where(NEGATIVE[emotion], u.expressivity * u.disclosure, u.expressivity)
    shown = np.where(rng.random(T) < show_p, emotion, -1)
    r = rng.random(T)
    mask = np.where(r < u.signature_p, u.signature,
                    np.where(r < u.signature_p + (1 - u.signature_p) * u.posed_smile, HAPPY, NEUTRAL))
    disp = np.where(shown >= 0, shown, mask)
    filt = rng.random(T) < cond.filter
    smooth = filt & NEGATIVE[disp] & (rng.random(T) < 0.4)
    disp = np.where(smooth, NEUTRAL, disp)
    other = rng.random(T) < cond.group
    disp = np.where(other, _draw_rows(rng, np.tile(OTHER_FACES, (T, 1))), disp)
    return np.where(face, disp, -1), filt


def _classify(rng, u: _User, cond: _Conditions, disp: np.ndarray, filt: np.ndarray, face: np.ndarray,
              session: np.ndarray, emotion: np.ndarray) -> np.ndarray:
    T = disp.size
    real = disp >= 0
    read = np.zeros(T, int)
    read[real] = _draw_rows(rng, u.confusion[disp[real]])
    for sl, prob, dist in cond.degrade:
        idx = np.arange(T)[sl]
        hit = idx[rng.random(idx.size) < prob]
        read[hit] = _draw_rows(rng, np.tile(dist, (hit.size, 1)))
    ns = int(session[-1]) + 1
    shared = rng.normal(0, 1, (ns, N_CLASSES))[session]
    noise = (u.noise_corr * shared + np.sqrt(1 - u.noise_corr ** 2) * rng.normal(0, 1, (T, N_CLASSES)))
    logits = cond.bias + cond.noise[:, None] * noise
    rows = np.arange(T)
    m = u.margin
    logits[rows[real], read[real]] += m
    leak = real & (disp != read)
    logits[rows[leak], disp[leak]] += u.leak * m
    second = np.argmax(np.where(np.eye(N_CLASSES, dtype=bool), -1, u.confusion), axis=1)
    logits[rows[real], second[read[real]]] += u.second * m
    logits[filt] += np.array([-0.3, -0.3, -0.3, 0.5, -0.3, 0.0, 0.3])
    fake = face & ~real                      # pet faces, patterns: noise with a random bump
    logits[fake] += rng.normal(0, 0.8, (int(fake.sum()), N_CLASSES))
    out = _softmax(logits / cond.temp[:, None])
    # faceless posts: what the pipeline returns without a face
    scene = u.scene_bias + rng.normal(0, 0.7, (T, N_CLASSES)) + 0.4 * shared
    scene[rows, emotion] += u.scene_leak
    noise_out = _softmax(scene / u.scene_temp)
    last_face = np.maximum.accumulate(np.where(face, rows, -1))
    stale = np.where(last_face[:, None] >= 0, out[np.maximum(last_face, 0)], 1.0 / N_CLASSES)
    screenshot = rng.random(T) < 0.5
    fixed = {0: np.full(N_CLASSES, 1 / N_CLASSES), 1: FER_PRIOR, 2: u.neutral_default}
    for mode in np.unique(cond.mode[~face]):
        sel = ~face & (cond.mode == mode)
        name = FACELESS_MODES[mode]
        if mode in fixed:
            out[sel] = fixed[mode]
        elif name == "noise":
            out[sel] = noise_out[sel]
        elif name == "stale":
            out[sel] = stale[sel]
        else:
            out[sel] = np.where(screenshot[sel, None], 1 / N_CLASSES, noise_out[sel])
    return out


# --- the stream --------------------------------------------------------------------------------------

def make_stream(rng: np.random.Generator, kind: str) -> Stream:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r} (known: {', '.join(KINDS)})")
    temperaments = BRIGHT if kind == "abrupt_pos_neg" else GLOOMY if kind == "abrupt_neg_pos" else None
    u = _User(rng, temperaments)
    plan = _plan(rng, kind, u)
    T = plan.T

    # when (posting habits follow mood changes; travel shifts the clock)
    cond, travel, events = _nuisances(rng, u, T)
    bounds = sorted({0, T} | {a for a, _ in plan.behaviour} | {x for a, b, _ in travel for x in (a, b)})
    pieces, t0 = [], float(rng.uniform(0, DAY))
    for a, b in zip(bounds[:-1], bounds[1:]):
        d = [dn for first, dn in plan.behaviour if first <= a][-1]
        shift = u.night_drift * d * 8 + sum(h for x, y, h in travel if x <= a < y)
        t = _post_times(rng, u, b - a, t0, float(np.exp(-u.withdraw * d * 1.5)), shift)
        pieces.append(t)
        t0 = float(t[-1])
    times = np.concatenate(pieces)
    gaps = np.r_[0.0, np.diff(times)]
    session = np.cumsum(gaps > 1800.0)

    # what is felt
    tilt = _tilts(rng, u, times, gaps, session)
    if plan.small_shift is not None:
        p1 = _calibrate_small_shift(u.base, tilt, plan.small_shift)
        plan.regimes.append((plan.start, p1))
        plan.fresh.append(plan.start)
    P = _regime_matrix(plan)
    feel = _softmax(np.log(P) + tilt)
    if plan.override is not None:
        a, b, mood = plan.override
        feel[a:b] = mood
        P[a:b] = mood
    fresh = _draw_rows(rng, feel)
    repeat = rng.random(T) < u.persist * np.exp(-gaps / u.persist_tau)
    repeat[0] = False
    repeat[[i for i in plan.fresh if i < T]] = False
    if plan.override is not None:
        repeat[plan.override[0]:plan.override[1]] = False
    emotion = fresh[np.maximum.accumulate(np.where(repeat, 0, np.arange(T)))]

    # what the pipeline reports
    face_sess = rng.normal(0, u.face_session_sd, int(session[-1]) + 1)[session]
    flogit = (np.log(u.face_rate / (1 - u.face_rate)) + face_sess + cond.face_logit
              - 1.5 * u.face_neg_drop * NEGATIVE[emotion])
    face = rng.random(T) < 1 / (1 + np.exp(-flogit))
    disp, filt = _display(rng, u, cond, emotion, face)
    fake = ~face & (rng.random(T) < cond.pareidolia)
    face = face | fake
    probs = _classify(rng, u, cond, disp, filt, face, session, emotion)
    if u.throwback > 0:
        for i in np.flatnonzero(face & (rng.random(T) < u.throwback)):
            old = np.flatnonzero(face[:max(i - 20, 0)])
            if old.size:
                j = int(old[rng.integers(old.size)])
                probs[i] = _norm(probs[j] * np.exp(rng.normal(0, 0.05, N_CLASSES)))
                disp[i] = disp[j]
    if u.smoothing:
        probs = (1 - u.smoothing) * probs + u.smoothing / N_CLASSES
    if u.decimals is not None:
        probs = np.round(probs, u.decimals)
        probs[probs.sum(axis=1) <= 0] = 1.0 / N_CLASSES
    probs = probs.astype(np.float32)
    probs /= probs.sum(axis=1, keepdims=True)

    return Stream(kind=kind, probs=probs, gaps=gaps.astype(np.float64), face=face.astype(bool),
                  start=plan.start, end=plan.end, start2=plan.start2,
                  true_emotion=emotion.astype(np.int64), feel=feel.astype(np.float32),
                  pattern=P.astype(np.float32),
                  displayed=disp.astype(np.int8), settled=plan.settled, nuisances=tuple(events))


def make_streams(seed: int, kind: str, n: int) -> list[Stream]:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r} (known: {', '.join(KINDS)})")
    root = np.random.SeedSequence([int(seed), KINDS.index(kind), 0xB10])
    return [make_stream(np.random.default_rng(child), kind) for child in root.spawn(n)]
