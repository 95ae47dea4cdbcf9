"""Blind family 5: a heterogeneous population seen through a weak FER-2013 CNN.

The world
---------
Each stream is one account's image posts in time order. Accounts come from archetypes that post very
differently: teenagers (daily selfies, bursts, night owls), young adults, parents (mostly their kids'
faces), professionals (one polite smile a week), travellers (photo dumps, long silences), artists
(drawn faces the CNN was never trained on), pet accounts (few human faces; pet faces fool the face
detector) and brands (stock models who always smile; brands never change mood, so they only appear
in "none" and "placebo" streams). Posting rates are log-normal with a heavy tail, from about one post
a month to dozens a day, but never so low that a stream would span more than ~8 years.

Time: posts arrive as sessions on a warped clock (circadian profile per archetype, weekends, the
Christmas/New Year fortnight and one summer trip per user post more), with bursts of posts minutes
apart inside a session and silences of weeks. Sadder regimes post less and go silent more often.

Mood vs expression: a regime is the user's distribution of real emotions (``true_emotion``). What the
classifier sees is an expression: on their own face people put on a smile or a blank face instead of
a negative feeling (a per-user habit), and other people's faces (kids, friends, stock models, drawn
characters) show the subject's expression, which echoes the poster's mood only sometimes (an
artist's drawings echo it most). A
negative regime also means fewer selfies and fewer face posts (quotes, landscapes).

Classifier: a FER-2013 confusion matrix (happy reliable, fear<->surprise, sad<->neutral, disgust
almost never predicted) degraded toward a per-user "bad photo" output, a per-user logit bias
(glasses, lighting, skin tone, camera) and a per-user temperature (some users always flat, some
always one-hot). The predicted class is drawn from the biased confusion row and stands out by a
per-user margin, so the argmax follows the confusion matrix and the rest keeps its structure.
Posts without a face, and false face detections (patterns, pets), give a per-user garbage output.

Benign changes, everywhere but forced at ``start`` in some placebo streams: a new phone (new bias,
temperature, detection rate), a filter, a new friend group (more or fewer other faces, other
expressions), happy bursts (weddings, trips), one-to-three-post sad blips, winter gloom, holidays
and a slow wobble of every emotion (log-scale sd 0.12) over the years.

Example
-------
>>> s = make_streams(0, "episode", 1)[0]
>>> s.probs.shape[1], s.start < s.end
(7, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("none", "abrupt_pos_neg", "abrupt_neg_pos", "gradual", "small_shift", "transient",
         "episode", "two_changes", "placebo")
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
ANGRY, DISGUST, FEAR, HAPPY, SAD, SURPRISE, NEUTRAL = range(7)
NEGATIVE = np.array([ANGRY, DISGUST, FEAR, SAD])


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


def _norm(v: list[float] | np.ndarray) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    return a / a.sum(axis=-1, keepdims=True)


# rows: true expression, columns: what a small FER-2013 CNN predicts
_CONFUSION = _norm([
    [0.52, 0.010, 0.09, 0.05, 0.15, 0.03, 0.150],
    [0.34, 0.180, 0.08, 0.08, 0.15, 0.02, 0.150],
    [0.10, 0.005, 0.40, 0.05, 0.18, 0.12, 0.145],
    [0.02, 0.002, 0.02, 0.86, 0.03, 0.02, 0.048],
    [0.08, 0.005, 0.10, 0.04, 0.50, 0.02, 0.255],
    [0.03, 0.002, 0.10, 0.06, 0.03, 0.74, 0.038],
    [0.05, 0.002, 0.05, 0.07, 0.18, 0.03, 0.618],
])
_BAD_PHOTO = _norm([0.10, 0.01, 0.17, 0.12, 0.25, 0.07, 0.28])
_NON_FACE = _norm([0.12, 0.01, 0.18, 0.10, 0.25, 0.06, 0.28])
_PET_FACE = _norm([0.08, 0.01, 0.20, 0.20, 0.12, 0.22, 0.17])

# mood regimes: mean real-emotion mix, face-rate and posting-rate ranges, silence multiplier
_MOODS = {
    "positive": ([0.02, 0.005, 0.02, 0.58, 0.05, 0.06, 0.265], (1.0, 1.1), (1.0, 1.2), 1.0),
    "calm": ([0.03, 0.005, 0.02, 0.32, 0.07, 0.04, 0.515], (0.9, 1.05), (0.9, 1.1), 1.0),
    "gloomy": ([0.08, 0.02, 0.07, 0.10, 0.33, 0.03, 0.37], (0.75, 0.9), (0.7, 0.9), 1.5),
    "sad": ([0.05, 0.01, 0.06, 0.08, 0.45, 0.02, 0.33], (0.5, 0.85), (0.4, 0.8), 2.5),
    "irritable": ([0.30, 0.08, 0.04, 0.10, 0.16, 0.04, 0.28], (0.8, 1.0), (0.9, 1.5), 1.2),
    "anxious": ([0.05, 0.01, 0.30, 0.08, 0.20, 0.10, 0.26], (0.7, 1.0), (0.8, 1.4), 1.5),
    "withdrawn": ([0.04, 0.01, 0.04, 0.10, 0.30, 0.02, 0.49], (0.35, 0.7), (0.3, 0.6), 3.0),
}
_NEG_MOODS = ("sad", "irritable", "anxious", "withdrawn")
_DIP = _norm([0.12, 0.02, 0.06, 0.02, 0.66, 0.02, 0.10])

_CIRCADIAN = {
    "day": _norm([2, 1, .5, .3, .3, .5, 1.5, 3, 3, 3, 3.5, 4, 5, 4, 3.5, 3.5, 4, 5, 6, 7, 7, 6, 4.5, 3]),
    "owl": _norm([6, 5, 3.5, 2, 1, .5, .3, .5, 1, 1.5, 2, 3, 3.5, 3.5, 3, 3, 3.5, 4, 5, 6, 7, 8, 8, 7]),
    "office": _norm([.1, .1, .1, .1, .1, .2, .5, 2, 6, 8, 8, 7, 6, 7, 7, 6, 5, 3, 1.5, 1, .5, .3, .2, .1]),
}


@dataclass(frozen=True)
class _Archetype:
    name: str
    weight: float       # share of the population
    can_change: bool    # brands have no mood of their own
    rate: float         # median posts per day
    face: float         # share of posts with a detected face
    own: float          # share of face posts showing the user themself
    burst: float        # chance a post belongs to the previous post's session
    clock: str
    smile: tuple[float, float]  # range of the put-on-smile habit
    falsepos: float     # detected "faces" that are not human faces
    subject: tuple[float, ...]  # expressions of the other faces in the photos
    degrade: tuple[float, float]


_FRIENDS = (0.02, 0.005, 0.02, 0.60, 0.03, 0.08, 0.245)
_ARCHETYPES = (
    _Archetype("teen", 0.20, True, 3.0, 0.80, 0.85, 0.40, "owl", (0.10, 0.30), 0.02, _FRIENDS, (0.05, 0.30)),
    _Archetype("adult", 0.22, True, 0.9, 0.60, 0.70, 0.25, "day", (0.10, 0.35), 0.03, _FRIENDS, (0.05, 0.35)),
    _Archetype("parent", 0.16, True, 0.7, 0.70, 0.35, 0.30, "day", (0.15, 0.40), 0.03,
               (0.06, 0.01, 0.03, 0.50, 0.10, 0.12, 0.18), (0.05, 0.35)),
    _Archetype("professional", 0.08, True, 0.15, 0.70, 0.90, 0.05, "office", (0.30, 0.50), 0.01,
               (0.01, 0.0, 0.01, 0.55, 0.02, 0.03, 0.38), (0.02, 0.20)),
    _Archetype("traveller", 0.10, True, 0.4, 0.35, 0.70, 0.50, "day", (0.15, 0.35), 0.05, _FRIENDS, (0.10, 0.40)),
    _Archetype("artist", 0.07, True, 0.4, 0.60, 0.20, 0.10, "owl", (0.05, 0.20), 0.08, (), (0.30, 0.60)),
    _Archetype("pet", 0.10, True, 1.0, 0.30, 0.45, 0.30, "day", (0.10, 0.30), 0.25, _FRIENDS, (0.10, 0.40)),
    _Archetype("brand", 0.07, False, 2.0, 0.75, 0.0, 0.10, "office", (0.0, 0.0), 0.02,
               (0.005, 0.0, 0.005, 0.85, 0.005, 0.02, 0.115), (0.02, 0.15)),
)


@dataclass
class _User:
    arch: _Archetype
    rate: float
    smile: float
    blank: float
    contagion: float
    seasonal: float
    silence: float
    tau: float
    margin: float          # how far the CNN's top logit stands out, before the temperature
    degrade: float
    bias: np.ndarray       # (7,) logit bias of this user's faces under the camera
    junk: np.ndarray       # (7,) where a poor photo's output drifts to
    garbage: np.ndarray    # (7,) output on non-faces
    subject: np.ndarray    # (7,) other faces' expressions
    summer: float          # first day-of-year of the summer trip


def _pick_archetype(rng: np.random.Generator, changing: bool) -> _Archetype:
    pool = [a for a in _ARCHETYPES if a.can_change or not changing]
    w = np.array([a.weight for a in pool])
    return pool[int(rng.choice(len(pool), p=w / w.sum()))]


def _make_user(rng: np.random.Generator, n: int, changing: bool) -> _User:
    a = _pick_archetype(rng, changing)
    # stream spans stay believable: at most ~8 years for long streams, ~6 for change streams
    floor = n / (365.0 * (8.0 if n >= 1500 else 6.0))
    rate = float(np.clip(a.rate * rng.lognormal(0.0, 0.9), floor, 40.0))
    bias = rng.normal(0.0, 0.2, 7)
    if rng.random() < 0.2:      # glasses / heavy brows read as angry or sad
        bias[[ANGRY, SAD]] += 0.5
    if rng.random() < 0.15:     # dim rooms read as fear and sad
        bias[[FEAR, SAD]] += 0.4
    smile = rng.uniform(*a.smile)
    subject = rng.dirichlet(np.full(7, 0.7)) if not a.subject else rng.dirichlet(_norm(a.subject) * 40 + 0.05)
    return _User(
        arch=a, rate=rate, smile=smile, blank=rng.uniform(0.05, 0.3),
        contagion={"brand": 0.0, "artist": rng.uniform(0.5, 0.8)}.get(a.name, rng.uniform(0.25, 0.6)),
        seasonal=0.0 if rng.random() < 0.5 else rng.uniform(0.02, 0.08),
        silence=rng.uniform(0.002, 0.015), tau=float(np.clip(rng.lognormal(0.0, 0.5), 0.3, 3.5)),
        margin=rng.uniform(1.0, 2.5),
        degrade=rng.uniform(*a.degrade), bias=bias, junk=rng.dirichlet(_BAD_PHOTO * 20),
        garbage=rng.dirichlet((_PET_FACE if a.name == "pet" else _NON_FACE) * 15),
        subject=subject, summer=rng.uniform(160, 230),
    )


# ----------------------------------------------------------------------------- regimes over posts

def _regime(rng: np.random.Generator, name: str) -> tuple[np.ndarray, float, float, float]:
    mean, fr, rr, sil = _MOODS[name]
    vec = rng.dirichlet(_norm(mean) * rng.uniform(40, 120)) + 1e-4
    return _norm(vec), rng.uniform(*fr), rng.uniform(*rr), sil


def _neg(v: np.ndarray) -> float:
    return float(v[NEGATIVE].sum())


def _distinct(rng: np.random.Generator, base: tuple, names: tuple[str, ...], gap: float) -> tuple:
    """A regime from `names` whose negative share differs from base's by at least `gap`."""
    for _ in range(50):
        r = _regime(rng, str(rng.choice(names)))
        if abs(_neg(r[0]) - _neg(base[0])) >= gap:
            return r
    return r


def _small_shift(rng: np.random.Generator, base: tuple) -> tuple:
    vec = base[0].copy()
    delta = rng.uniform(0.08, 0.3)
    if rng.random() < 0.4:      # mostly visible as fewer smiles: happy -> neutral, a little sadness
        h = min(rng.uniform(0.12, 0.3), vec[HAPPY] * 0.8)
        vec[HAPPY] -= h
        vec[NEUTRAL] += h
        delta = rng.uniform(0.08, 0.12)
    flavour = _norm(np.array(_MOODS[str(rng.choice(_NEG_MOODS[:3]))][0])[NEGATIVE])
    take_h = min(delta * 0.7, vec[HAPPY] - 0.02)
    take_n = min(delta - take_h, vec[NEUTRAL] - 0.02)
    vec[HAPPY] -= take_h
    vec[NEUTRAL] -= take_n
    vec[NEGATIVE] += (take_h + take_n) * flavour
    return _norm(vec), base[1] * rng.uniform(0.85, 1.0), base[2] * rng.uniform(0.85, 1.0), base[3]


def _plan(rng: np.random.Generator, kind: str) -> tuple[int, int | None, int | None, int | None, list]:
    """Stream length, change points and [(a, b, from_regime, to_regime)] pieces after the baseline."""
    start = int(rng.integers(30, 251))
    tail = int(rng.integers(150, 601))
    pos = ("positive", "calm")
    if kind == "none":
        return int(rng.integers(1500, 3001)), None, None, None, []
    if kind == "placebo":
        return start + tail, start, None, None, []
    if kind == "abrupt_pos_neg":
        return start + tail, start, None, None, [("base", pos, _NEG_MOODS, 0.25)]
    if kind == "abrupt_neg_pos":
        return start + tail, start, None, None, [("base", ("gloomy", "gloomy", "sad", "irritable", "anxious"), pos, 0.25)]
    if kind == "gradual":
        ramp = int(rng.integers(10, 121))
        names = (pos, _NEG_MOODS) if rng.random() < 0.75 else (("gloomy", "sad"), pos)
        return start + ramp + tail, start, None, None, [("ramp", names[0], names[1], 0.25, ramp)]
    if kind == "small_shift":
        return start + tail, start, None, None, [("small", ("positive", "calm", "calm"))]
    if kind == "transient":
        length = int(rng.integers(1, 3))
        return start + length + tail, start, start + length, None, [("dip", pos + ("gloomy",), length)]
    if kind == "episode":
        length = int(rng.integers(12, 61))
        names = (pos, _NEG_MOODS) if rng.random() < 0.85 else (("gloomy", "sad"), pos)
        return start + length + tail, start, start + length, None, [("episode", names[0], names[1], 0.25, length)]
    if kind == "two_changes":
        start2 = start + int(rng.integers(150, 301))
        return start2 + tail, start, None, start2, [("two", start2)]
    raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")


def _regimes(rng: np.random.Generator, kind: str) -> tuple[int, int | None, int | None, int | None, np.ndarray, np.ndarray]:
    """(T, 7) real-emotion mix per post and (T, 3) face, rate and silence multipliers."""
    n, start, end, start2, pieces = _plan(rng, kind)
    P = np.empty((n, 7))
    M = np.empty((n, 3))

    def put(a: int, b: int, r0: tuple, r1: tuple | None = None) -> None:
        r1 = r0 if r1 is None else r1
        w = np.linspace(0.0, 1.0, b - a + 2)[1:-1, None] if r1 is not r0 else np.zeros((b - a, 1))
        P[a:b] = (1 - w) * r0[0] + w * r1[0]
        M[a:b] = (1 - w) * np.array(r0[1:]) + w * np.array(r1[1:])

    if not pieces:
        base = _regime(rng, str(rng.choice(("positive", "positive", "calm", "calm", "gloomy"))))
        put(0, n, base)
        return n, start, end, start2, P, M
    p = pieces[0]
    if p[0] == "two":
        seq = [("positive", "sad", "irritable"), ("positive", "anxious", "withdrawn"), ("calm", "irritable", "sad"),
               ("gloomy", "positive", "irritable"), ("calm", "withdrawn", "positive"), ("positive", "calm", "sad"),
               ("sad", "calm", "anxious")][int(rng.integers(7))]
        r0 = _regime(rng, seq[0])
        r1 = _distinct(rng, r0, (seq[1],), 0.2 if seq[1] != "calm" else 0.0)
        r2 = _distinct(rng, r1, (seq[2],), 0.2)
        put(0, start, r0)
        put(start, start2, r1)
        put(start2, n, r2)
        return n, start, end, start2, P, M
    base = _regime(rng, str(rng.choice(p[1])))
    put(0, n, base)
    if p[0] == "base":
        put(start, n, _distinct(rng, base, p[2], p[3]))
    elif p[0] == "ramp":
        target = _distinct(rng, base, p[2], p[3])
        put(start, start + p[4], base, target)
        put(start + p[4], n, target)
    elif p[0] == "small":
        put(start, n, _small_shift(rng, base))
    elif p[0] == "episode":
        put(start, end, _distinct(rng, base, p[2], p[3]))
    elif p[0] == "dip":
        P[start:end] = _DIP
    return n, start, end, start2, P, M


# ----------------------------------------------------------------------------- time

def _clock_weights(user: _User, hours: np.ndarray, h0: float, doy0: float, dow0: int) -> np.ndarray:
    hod = ((h0 + hours) % 24).astype(int)
    day = (h0 + hours) // 24
    dow = (dow0 + day) % 7
    doy = (doy0 + day) % 365.25
    w = _CIRCADIAN[user.arch.clock][hod] * 24
    weekend = dow >= 5
    w = w * np.where(weekend, 0.2 if user.arch.clock == "office" else 1.3, 1.0 if user.arch.clock == "office" else 0.88)
    holiday = (doy >= 354) | (doy < 2)
    w = w * np.where(holiday, 1.7, 1.0) * np.where((doy >= user.summer) & (doy < user.summer + 10), 2.0, 1.0)
    return w


def _times(rng: np.random.Generator, user: _User, M: np.ndarray, burst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gaps in seconds and each post's day of year."""
    n = len(M)
    sess = rng.random(n) < burst
    sess[0] = False
    inc = rng.exponential(1.0, n) / M[:, 1]               # in posts at the mean intensity
    silent = (rng.random(n) < user.silence * M[:, 2]) & ~sess
    inc[silent] += np.minimum(rng.lognormal(np.log(14.0), 0.8, n), 200.0)[silent] * user.rate
    inc[sess] = 0.0
    inc[0] = 0.0
    S = np.cumsum(inc)
    h0, doy0, dow0 = rng.uniform(0, 24), float(rng.integers(365)), int(rng.integers(7))
    hours = int(S[-1] / user.rate * 24 * 1.6) + 24 * 40
    while True:
        grid = np.arange(hours, dtype=np.float64)
        W = np.concatenate(([0.0], np.cumsum(_clock_weights(user, grid, h0, doy0, dow0) * user.rate / 24)))
        if W[-1] > S[-1]:
            break
        hours *= 2
    t = np.interp(S, W, np.arange(hours + 1, dtype=np.float64)) * 3600.0
    g = np.where(sess, rng.lognormal(np.log(90.0), 1.0, n), 0.0)
    cs = np.cumsum(g)
    last = np.maximum.accumulate(np.where(~sess, np.arange(n), 0))
    t = np.maximum.accumulate(t + cs - cs[last])
    gaps = np.diff(t, prepend=t[0])
    gaps[1:] = np.maximum(gaps[1:], 1.0 + rng.random(n - 1) * 5)
    doy = (doy0 + (h0 * 3600 + np.cumsum(gaps)) / 86400) % 365.25
    return gaps, doy


# ----------------------------------------------------------------------------- benign confounders

def _boundaries(rng: np.random.Generator, n: int, spacing: float, forced: int | None) -> np.ndarray:
    k = rng.poisson(n / spacing)
    b = set(rng.integers(1, n, k).tolist()) if n > 1 else set()
    if forced is not None:
        b.add(forced)
    return np.array(sorted(b), dtype=np.int64)


def _events(rng: np.random.Generator, n: int, forced: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Happy bursts (weddings, trips, concerts) and one-to-three-post sad blips, by post index."""
    happy = np.zeros(n, bool)
    blip = np.zeros(n, bool)
    starts = rng.integers(0, n, rng.poisson(n / 220)).tolist() + ([forced] if forced is not None else [])
    for s in starts:
        happy[s:s + int(rng.integers(5, 41))] = True
    for s in rng.integers(0, n, rng.poisson(n / 700)):
        blip[s:s + int(rng.integers(1, 4))] = True
    return happy, blip & ~happy


def _categorical(rng: np.random.Generator, P: np.ndarray) -> np.ndarray:
    u = rng.random(len(P))[:, None]
    return np.minimum((np.cumsum(P, axis=1) < u * P.sum(axis=1, keepdims=True)).sum(axis=1), 6)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def make_stream(rng: np.random.Generator, kind: str) -> Stream:
    n, start, end, start2, P, M = _regimes(rng, kind)
    user = _make_user(rng, n, changing=kind not in ("none", "placebo"))
    # in some placebo streams a benign change lands exactly on the drawn start
    forced = str(rng.choice(("none", "phone", "filter", "friends", "burst"))) if kind == "placebo" else "none"
    at = start if forced != "none" else None
    happy, blip = _events(rng, n, at if forced == "burst" else None)
    if kind == "transient":
        happy[start - 3:end + 3] = False
        blip[start - 3:end + 3] = False
    P[blip] = _DIP
    P[happy] = 0.5 * P[happy] + 0.5 * np.eye(7)[HAPPY]
    burst = np.where(happy, 0.75, user.arch.burst)
    gaps, doy = _times(rng, user, M, burst)

    # nobody's mood is stationary: a slow, small wobble of every emotion over the whole stream
    walk = np.cumsum(rng.normal(0.0, 1.0, (n, 7)), axis=0)
    walk = np.apply_along_axis(lambda c: np.convolve(c, np.ones(50) / 50, mode="same"), 0, walk)
    walk = (walk - walk.mean(axis=0)) / (walk.std(axis=0) + 1e-9)
    P = P * np.exp(0.12 * walk)
    P /= P.sum(axis=1, keepdims=True)
    winter = np.clip(np.cos(2 * np.pi * (doy - 15) / 365.25), 0, None) * user.seasonal
    move = np.minimum(winter, P[:, HAPPY] * 0.5)
    P[:, HAPPY] -= move
    P[:, SAD] += 0.6 * move
    P[:, NEUTRAL] += 0.4 * move
    holiday = (doy >= 354) | (doy < 2) | ((doy >= user.summer) & (doy < user.summer + 10)) | happy
    P[holiday] = 0.8 * P[holiday] + 0.2 * np.eye(7)[HAPPY]
    true = _categorical(rng, P)
    if kind == "transient":
        true[start:end] = _categorical(rng, np.tile(_DIP, (end - start, 1)))

    # camera epochs (new phone, filters) and social phases (who else is in the photos)
    cams = _boundaries(rng, n, max(60.0, 700 * user.rate), at if forced in ("phone", "filter") else None)
    ce = np.searchsorted(cams, np.arange(n), side="right")
    E = len(cams) + 1
    cam_bias = user.bias + np.vstack([np.zeros(7), rng.normal(0, 0.3, (E - 1, 7))])
    filt = rng.random(E) < 0.12
    if forced == "filter":
        filt[1:] |= cams == at
    cam_bias[filt, NEUTRAL] += 0.5
    cam_bias[filt, SAD] += 0.4
    cam_tau = user.tau * np.exp(np.concatenate(([0.0], rng.normal(0, 0.2, E - 1))))
    cam_deg = np.clip(user.degrade * 0.85 ** np.arange(E) * rng.uniform(0.7, 1.3, E), 0.0, 0.8)
    cam_face = np.concatenate(([1.0], rng.uniform(0.85, 1.2, E - 1)))
    soc = _boundaries(rng, n, 900.0, at if forced == "friends" else None)
    se = np.searchsorted(soc, np.arange(n), side="right")
    S = len(soc) + 1
    soc_own = np.clip(user.arch.own + np.concatenate(([0.0], rng.normal(0, 0.15, S - 1))), 0.0, 0.95)
    soc_subj = np.vstack([user.subject] + [rng.dirichlet(user.subject * 15 + 0.3) for _ in range(S - 1)])

    pface = np.clip(user.arch.face * M[:, 0] * cam_face[ce] * np.where(holiday, 1.2, 1.0), 0.02, 0.97)
    face = rng.random(n) < pface
    if kind == "transient":
        face[start:end] = True
    u = rng.random(n)
    fp = face & (u < user.arch.falsepos)
    own = face & ~fp & (u < user.arch.falsepos + (1 - user.arch.falsepos) * soc_own[se] * np.where(holiday, 0.7, 1.0))
    if kind == "transient":
        own[start:end] = True
        fp[start:end] = False
    other = face & ~fp & ~own

    expr = true.copy()
    v = rng.random(n)
    neg = np.isin(true, NEGATIVE)
    dip = np.zeros(n, bool)
    if kind == "transient":
        dip[start:end] = True
    # a put-on face hides a passing bad feeling more often than a low mood that lasts
    hide = user.smile * np.where(M[:, 1] < 0.9, 0.5, 1.0)
    expr[own & neg & (v < hide) & ~dip] = HAPPY
    expr[own & neg & (v >= hide) & (v < hide + user.blank) & ~dip] = NEUTRAL
    expr[own & (true == NEUTRAL) & (v < 0.6 * user.smile)] = HAPPY
    swap = other & (rng.random(n) >= user.contagion)
    expr[swap] = _categorical(rng, soc_subj[se[swap]])

    deg = cam_deg[ce][:, None]
    rows = (1 - deg) * _CONFUSION[expr] + deg * user.junk
    logits = np.log(rows) + cam_bias[ce]
    junk = ~face | fp
    dark = np.where(neg[:, None], np.eye(7)[SAD] * 0.3 + np.eye(7)[FEAR] * 0.2, 0.0)
    logits[junk] = np.log(user.garbage) + dark[junk] + rng.normal(0, 0.4, (int(junk.sum()), 7))
    # the predicted class follows the (biased) confusion row; the CNN is confident in it by a margin
    pred = _categorical(rng, _softmax(logits))
    margin = np.abs(rng.normal(user.margin, 1.0, n)) * np.where(junk, 0.5, 1.0)
    logits = logits + rng.normal(0.0, 0.5, (n, 7))
    logits[np.arange(n), pred] += margin
    tau = cam_tau[ce] * np.where(junk, 1.3, 1.0)
    probs = _softmax(logits / tau[:, None])
    probs = (probs * (1 - 7e-5) + 1e-5).astype(np.float32)
    probs /= probs.sum(axis=1, keepdims=True)
    gaps = gaps.astype(np.float64)
    gaps[0] = 0.0
    return Stream(kind, probs, gaps, face, start, end, start2, true.astype(np.int64))


def make_streams(seed: int, kind: str, n: int) -> list[Stream]:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    rng = np.random.default_rng([seed, KINDS.index(kind), 5])
    return [make_stream(rng, kind) for _ in range(n)]
