"""A held-out family of labelled emotion timelines: a varied population seen through a FER-2013 CNN.

The world
---------
Each stream is one account's image posts in time order. The account belongs to one of six personas,
drawn with unequal weights, and everything about it is drawn per account, so no two users look alike:

* ``selfie`` (teenagers, young adults): mostly their own face, several posts a day, photo dumps;
* ``adult``: a mix of selfies, friends, food and landscapes, a post every day or two;
* ``parent``: the largest face is usually a child, whose expression only loosely follows the parent's;
* ``brand``: stock photos of models, sharp professional pictures, the "mood" is the campaign's tone;
* ``artist``: drawn or painted faces, which the classifier reads badly and flatly;
* ``pet``: mostly faceless posts, and the face detector often fires on the animal (garbage output).

Posting rate is heavy-tailed (log-normal per persona, up to ~40 posts a day; the slowest rates are
raised so that a stream spans at most ~15 years before silences). Time runs in "awake seconds" mapped
onto the wall clock, so posts follow the user's day (wake hour, night owls), weekends are busier for
some, photo dumps put posts seconds apart and rare silences last weeks.

The user's real emotion per post (``true_emotion``) comes from a *regime*, a distribution over the
seven emotions (sunny, content, reserved, gloomy, sad, irritable, anxious, flat), tilted by a mood
that wanders over days (an Ornstein-Uhlenbeck process in wall time), a seasonal swing (winter gloom,
opposite phase for the southern hemisphere), weekends and late nights. Regimes also carry behaviour:
a sad or flat regime means fewer posts, fewer faces and darker faceless pictures; a happy one the
opposite, each user by their own amount (some users do not change their habits at all).

What the camera sees is not what the user feels: people smile for photos, sadness shows as a neutral
face more often than as a sad one, anger is suppressed or reads as disgust, fear looks like surprise.
Faces of other people (children, friends) follow the user's emotion only part of the time.

The classifier is a small FER-2013 CNN: a confusion matrix close to the published ones (happy
~0.87 right, surprise good, disgust rarely predicted, fear <-> surprise/sad, sad <-> neutral), a
per-user bias (glasses read as angry, dim rooms as sad or fearful, a random per-user tilt), a per-user
temperature (some users' outputs sit near 0.3 maximum probability, others near one-hot), blurred
small faces, garbage on false detections, and a phone replaced every couple of years of wall time,
which moves the temperature and the bias. Faceless posts carry the classifier's output on the whole
picture: flat, mostly neutral/sad, slightly darker when the user is low.

Changes (what must alarm) replace the regime, away from the baseline (a low baseline, 20% of users,
gets better; the others get worse): abruptly, along a ramp of 10-120 posts, for an episode of 12-60
posts, or twice in a row (the third regime far from both), each moving the regime's happy-minus-
negative balance by at least 0.4; or by a small move of 0.08-0.3 of probability mass towards the
negative emotions (a third of the time only from happy to neutral). Confounders that are NOT mood changes: 1-2 post dips ("transient"),
a new phone, a new group of friends in the photos, a new routine (posting rate and selfie habit
change), a holiday burst of happy group photos. "none" streams carry 0-3 of these; half of the
"placebo" streams have one exactly at ``start``.

>>> s = make_streams(0, "abrupt_pos_neg", 1)[0]
>>> s.probs.shape[1], s.probs.dtype.name, 30 <= s.start <= 250, s.end is None
(7, 'float32', True, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("none", "abrupt_pos_neg", "abrupt_neg_pos", "gradual", "small_shift", "transient",
         "episode", "two_changes", "placebo")
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # FER-2013 order
ANGRY, DISGUST, FEAR, HAPPY, SAD, SURPRISE, NEUTRAL = range(7)
NEGATIVE = (ANGRY, DISGUST, FEAR, SAD)

_DAY = 86400.0
_YEAR = 365.25 * _DAY

# FER-2013 CNN confusion (rows: expression shown, columns: predicted), in the range published for
# small CNNs (~65% overall); rows are normalised below.
_CONFUSION = np.array([
    [0.55, 0.01, 0.09, 0.05, 0.14, 0.03, 0.13],   # angry
    [0.24, 0.38, 0.09, 0.05, 0.12, 0.02, 0.10],   # disgust
    [0.10, 0.01, 0.43, 0.05, 0.17, 0.12, 0.12],   # fear
    [0.02, 0.00, 0.02, 0.87, 0.03, 0.02, 0.04],   # happy
    [0.08, 0.00, 0.09, 0.04, 0.52, 0.01, 0.26],   # sad
    [0.02, 0.00, 0.11, 0.04, 0.02, 0.77, 0.04],   # surprise
    [0.05, 0.00, 0.04, 0.06, 0.17, 0.02, 0.66],   # neutral
]) + 0.002
_CONFUSION /= _CONFUSION.sum(axis=1, keepdims=True)
# a drawn face: exaggerated features read as surprise/fear/happy, and little else is reliable
_DRAWN_ROW = np.array([0.10, 0.02, 0.18, 0.22, 0.12, 0.22, 0.14])
# a blurred or tiny face collapses towards neutral and sad
_BLUR_ROW = np.array([0.08, 0.01, 0.07, 0.10, 0.28, 0.04, 0.42])
# the CNN on a whole faceless picture (landscape, food, a quote): flat, mostly neutral/sad
_FALLBACK_LOGITS = np.array([-0.3, -2.5, -0.6, 0.2, 0.3, -0.8, 0.9])
_DARK_LOGITS = np.array([0.2, 0.0, 0.4, -0.7, 0.7, 0.0, 0.1])
_GARBAGE_LOGITS = np.array([0.0, -1.5, 0.5, -0.3, 0.5, 0.0, 0.6])
# how a good or bad mood tilts each emotion's log-odds
_VALENCE = np.array([-0.6, -0.4, -0.5, 1.0, -0.8, 0.2, 0.0])

_MOODS = {
    "sunny":     [0.04, 0.01, 0.03, 0.55, 0.06, 0.08, 0.23],
    "content":   [0.05, 0.01, 0.03, 0.36, 0.08, 0.06, 0.41],
    "reserved":  [0.05, 0.01, 0.03, 0.23, 0.09, 0.05, 0.54],
    "gloomy":    [0.10, 0.03, 0.07, 0.12, 0.28, 0.04, 0.36],
    "sad":       [0.06, 0.02, 0.07, 0.09, 0.42, 0.03, 0.31],
    "irritable": [0.28, 0.09, 0.04, 0.11, 0.16, 0.04, 0.28],
    "anxious":   [0.06, 0.02, 0.25, 0.11, 0.22, 0.13, 0.21],
    "flat":      [0.05, 0.02, 0.04, 0.06, 0.26, 0.02, 0.55],
}
_POSITIVE = ("sunny", "content", "reserved")
_LOW = ("gloomy", "sad", "irritable", "anxious", "flat")
_DIP = [0.20, 0.03, 0.07, 0.02, 0.50, 0.03, 0.15]   # a 1-2 post bad moment

# persona: weight, face rate, share of faces that are someone else, posts/day (median, log-sd),
# social smile probability, share of face detections that are not faces, share of drawn faces
_PERSONAS = {
    "selfie": (0.32, (0.65, 0.92), (0.05, 0.25), (2.5, 1.0), (0.05, 0.25), (0.01, 0.03), 0.0),
    "adult":  (0.25, (0.35, 0.70), (0.15, 0.40), (0.5, 1.0), (0.05, 0.25), (0.01, 0.04), 0.0),
    "parent": (0.15, (0.50, 0.85), (0.40, 0.65), (0.8, 0.8), (0.05, 0.25), (0.01, 0.03), 0.0),
    "brand":  (0.08, (0.60, 0.95), (0.00, 0.00), (3.0, 0.8), (0.00, 0.03), (0.01, 0.02), 0.0),
    "artist": (0.08, (0.40, 0.80), (0.00, 0.10), (0.7, 0.9), (0.00, 0.10), (0.02, 0.05), 0.5),
    "pet":    (0.12, (0.20, 0.40), (0.00, 0.15), (1.5, 0.9), (0.05, 0.25), (0.15, 0.35), 0.0),
}
_OTHERS = [0.05, 0.01, 0.03, 0.48, 0.08, 0.10, 0.25]   # children and friends in photos


@dataclass
class Stream:
    kind: str
    probs: np.ndarray          # (T, 7) float32, rows sum to 1
    gaps: np.ndarray           # (T,) float64 seconds since the previous post, 0.0 first
    face: np.ndarray           # (T,) bool
    start: int | None
    end: int | None
    start2: int | None
    true_emotion: np.ndarray   # (T,) int64, index into LABELS


@dataclass
class _User:
    persona: str
    rate: float            # posts per day at the baseline
    face_rate: float
    other_share: float
    smile: float
    garbage: float
    drawn: float
    sad_to_neutral: float
    anger_hidden: float
    couple: float          # how often someone else's face shows the user's own emotion
    others: np.ndarray     # (7,) what other faces show otherwise
    temp: float
    margin: float
    bias: np.ndarray       # (7,) log-odds tilt of this user's pictures
    blur: float
    mood_sd: float
    mood_tau: float        # seconds
    season: float          # signed: negative in the southern hemisphere
    weekend_mood: float
    night_mood: float
    wake: float            # seconds after midnight
    awake: float           # seconds awake per day
    weekend_busy: float
    burst: float
    silence: float
    phone_years: float
    behaviour: float       # 0: habits do not follow mood, 1: strongly


@dataclass
class _Regime:
    p: np.ndarray          # (7,)
    rate: float = 1.0      # posting rate relative to the user's baseline
    face: float = 1.0      # face rate relative to the baseline
    dark: float = 0.1      # share of dark faceless pictures


def _u(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(*lo_hi))


def _draw_user(rng: np.random.Generator, n_posts: int) -> _User:
    names = list(_PERSONAS)
    weights = np.array([_PERSONAS[n][0] for n in names])
    persona = names[rng.choice(len(names), p=weights / weights.sum())]
    _, face, other, (med, sd), smile, garbage, drawn = _PERSONAS[persona]
    # nobody posts 2000 pictures at one a month: the slowest rates give ~15 years, silences aside
    rate = float(np.clip(med * np.exp(sd * rng.normal()), max(1 / 30, n_posts / (15 * 365)), 40.0))
    bias = rng.normal(0.0, 0.3, 7)
    if rng.random() < 0.25:        # glasses: frames and shadows read as a frown
        bias[[ANGRY, FEAR]] += (0.4, 0.2)
    if rng.random() < 0.3:         # dim rooms, a dark skin tone the training set underrepresents
        bias[[SAD, FEAR, HAPPY]] += (0.4, 0.2, -0.2)
    night_owl = rng.random() < 0.2
    return _User(
        persona=persona, rate=rate, face_rate=_u(rng, face), other_share=_u(rng, other),
        smile=_u(rng, smile), garbage=_u(rng, garbage), drawn=drawn * rng.uniform(0.6, 1.2),
        sad_to_neutral=rng.uniform(0.1, 0.4), anger_hidden=rng.uniform(0.15, 0.4),
        couple=rng.uniform(0.3, 0.6), others=rng.dirichlet(np.array(_OTHERS) * 60),
        temp=float(np.exp(rng.uniform(np.log(0.45), np.log(2.6)))), margin=rng.uniform(2.5, 3.5),
        bias=bias, blur=rng.uniform(0.03, 0.25), mood_sd=rng.uniform(0.15, 0.6),
        mood_tau=rng.uniform(1.0, 7.0) * _DAY,
        season=rng.uniform(0.0, 0.45) * (-1.0 if rng.random() < 0.15 else 1.0),   # 15%: southern
        weekend_mood=rng.uniform(0.0, 0.25), night_mood=rng.uniform(0.0, 0.5),
        wake=(rng.uniform(9.5, 12.0) if night_owl else rng.uniform(5.5, 9.0)) * 3600,
        awake=rng.uniform(14.5, 18.0) * 3600, weekend_busy=rng.uniform(-0.1, 0.8),
        burst=rng.uniform(0.0, 0.12) * (2.0 if persona == "selfie" else 1.0),
        silence=10 ** rng.uniform(-3.5, -2.0), phone_years=rng.uniform(1.5, 4.0),
        behaviour=rng.uniform(0.0, 1.0) ** 0.7,
    )


def _neg(p: np.ndarray) -> float:
    return float(p[list(NEGATIVE)].sum())


def _regime(rng: np.random.Generator, user: _User, name: str, base: _Regime | None = None) -> _Regime:
    """A user's version of a named regime; its habits are set relative to ``base``."""
    p = rng.dirichlet(np.array(_MOODS[name]) * rng.uniform(80, 200)) + 0.002
    p /= p.sum()
    reg = _Regime(p=p, dark=rng.uniform(0.3, 0.6) if name in _LOW else rng.uniform(0.05, 0.2))
    if base is not None:
        lift = _valence(p) - _valence(base.p)                          # > 0: happier than before
        b = user.behaviour
        reg.rate = float(np.exp(b * (0.9 * lift + rng.normal(0, 0.1))))
        reg.face = float(np.exp(b * (0.6 * lift + rng.normal(0, 0.08))))
    return reg


def _valence(p: np.ndarray) -> float:
    return float(p[HAPPY] - _neg(p))


def _pair(rng: np.random.Generator, user: _User, low_base: bool) -> tuple[_Regime, _Regime]:
    """A baseline and a changed regime far enough apart for a careful reader to see the change."""
    for _ in range(500):
        base = _regime(rng, user, str(rng.choice(_LOW if low_base else _POSITIVE)))
        new = _regime(rng, user, str(rng.choice(_POSITIVE if low_base else _LOW)), base)
        lift = _valence(new.p) - _valence(base.p)
        if (lift >= 0.4 and new.p[HAPPY] > base.p[HAPPY] + 0.15) if low_base else \
                (lift <= -0.4 and _neg(new.p) > _neg(base.p) + 0.15):
            return base, new
    raise RuntimeError("no visible change drawn")   # not reached: most draws qualify


def _l1(a: _Regime, b: _Regime) -> float:
    return float(np.abs(a.p - b.p).sum())


def _small_shift(rng: np.random.Generator, user: _User, base: _Regime) -> _Regime:
    delta = rng.uniform(0.08, 0.3)
    p = base.p.copy()
    if rng.random() < 0.35 and p[HAPPY] > delta + 0.03:     # only the happy/neutral balance moves
        p[HAPPY] -= delta
        p[NEUTRAL] += delta
    else:
        take = np.array([0.0, 0.0, 0.0, 0.7, 0.0, 0.1, 0.2]) * delta
        over = np.maximum(take - (p - 0.01), 0.0)          # cannot take more than is there
        take = np.minimum(take, p - 0.01)
        take[NEUTRAL] += over.sum()
        p -= take
        p[list(NEGATIVE)] += rng.dirichlet([2.0, 0.3, 1.0, 4.0]) * delta
    p = np.maximum(p, 0.002)
    reg = _Regime(p=p / p.sum(), dark=base.dark + 0.5 * delta)
    reg.rate = float(np.exp(-user.behaviour * delta * rng.uniform(0.0, 1.0)))
    return reg


_Plan = tuple[list[_Regime], np.ndarray, int | None, int | None, int | None]


def _plan(rng: np.random.Generator, kind: str, user: _User) -> _Plan:
    """Regimes, a (T, R) weight per post over them, and the labels."""
    low_base = rng.random() < (0.25 if kind in ("none", "placebo") else 0.2)
    if kind == "abrupt_neg_pos":
        low_base = True
    elif kind == "abrupt_pos_neg":
        low_base = False
    if kind in ("none", "placebo", "small_shift", "transient"):
        base = _regime(rng, user, str(rng.choice(_LOW if low_base else _POSITIVE)))
        new = _small_shift(rng, user, base) if kind == "small_shift" else \
            _Regime(p=rng.dirichlet(np.array(_DIP) * 50) + 0.002)
        new.p /= new.p.sum()
    else:
        base, new = _pair(rng, user, low_base)
    if kind == "none":
        t = int(rng.integers(1500, 3001))
        return [base], np.ones((t, 1)), None, None, None
    n0 = int(rng.integers(30, 251))
    tail = 150 + int(min(rng.exponential(150.0), 600))
    if kind == "placebo":
        return [base], np.ones((n0 + tail, 1)), n0, None, None
    if kind in ("abrupt_pos_neg", "abrupt_neg_pos", "small_shift"):
        w = np.zeros((n0 + tail, 2))
        w[:n0, 0], w[n0:, 1] = 1.0, 1.0
        return [base, new], w, n0, None, None
    if kind == "gradual":
        ramp = int(rng.integers(10, 121))
        x = (np.arange(ramp) + 1) / ramp
        x = x ** rng.uniform(0.5, 2.0) if rng.random() < 0.5 else 1 / (1 + np.exp(-10 * (x - 0.5)))
        w = np.zeros((n0 + ramp + tail, 2))
        w[:n0, 0] = 1.0
        w[n0:n0 + ramp, 1] = x
        w[n0:n0 + ramp, 0] = 1 - x
        w[n0 + ramp:, 1] = 1.0
        return [base, new], w, n0, None, None
    if kind in ("transient", "episode"):
        length = int(rng.integers(1, 3)) if kind == "transient" else int(rng.integers(12, 61))
        w = np.zeros((n0 + length + tail, 2))
        w[:, 0] = 1.0
        w[n0:n0 + length] = (0.0, 1.0)
        return [base, new], w, n0, n0 + length, None
    # two_changes: the third regime differs from both; any mood will do
    mid = int(rng.integers(150, 301))
    for _ in range(500):
        third = _regime(rng, user, str(rng.choice(list(_MOODS))), new)
        if _l1(third, new) >= 0.4 and _l1(third, base) >= 0.3:
            break
    # its habits were drawn relative to the second regime: make them relative to the baseline
    third.rate, third.face = third.rate * new.rate, third.face * new.face
    w = np.zeros((n0 + mid + tail, 3))
    w[:n0, 0], w[n0:n0 + mid, 1], w[n0 + mid:, 2] = 1.0, 1.0, 1.0
    return [base, new, third], w, n0, None, n0 + mid


@dataclass
class _Benign:
    rate: np.ndarray       # (T,) posting-rate multiplier
    face: np.ndarray       # (T,) face-rate multiplier
    other: np.ndarray      # (T,) extra share of other people's faces
    happy_others: np.ndarray   # (T,) bool: the other faces are a cheerful group
    lift: np.ndarray       # (T,) mood lift (holiday)
    holiday: np.ndarray    # (T,) bool: part of a compressed holiday burst
    phones: list[int]      # posts where a new phone starts


def _benign(rng: np.random.Generator, kind: str, t: int, start: int | None) -> _Benign:
    ev = _Benign(np.ones(t), np.ones(t), np.zeros(t), np.zeros(t, bool), np.zeros(t), np.zeros(t, bool), [])
    if kind == "none":
        at = sorted(rng.integers(50, t - 50, size=int(rng.integers(0, 4))).tolist())
    elif kind == "placebo":
        at = [start] if rng.random() < 0.5 else []                       # a chance control, sharpened
        at += rng.integers(20, t - 20, size=int(rng.random() < 0.3)).tolist()
    else:
        return ev
    for j in at:
        what = rng.choice(("phone", "friends", "routine", "holiday"))
        if what == "phone":
            ev.phones.append(int(j))
        elif what == "friends":           # a new circle: more group photos, a cheerful crowd
            ev.other[j:] += rng.uniform(0.1, 0.3)
            ev.happy_others[j:] = True
        elif what == "routine":           # new job, new baby, a new hobby: habits, not mood
            ev.rate[j:] *= np.exp(rng.choice((-1, 1)) * rng.uniform(0.4, 0.9))
            ev.face[j:] *= np.exp(rng.uniform(-0.4, 0.3))
        else:                             # a trip: a dense burst of happy group photos
            n = int(rng.integers(6, 26))
            ev.holiday[j:j + n] = True
            ev.lift[j:j + n] += rng.uniform(0.6, 1.4)
            ev.other[j:j + n] += 0.3
            ev.happy_others[j:j + n] = True
            ev.face[j:j + n] *= 1.5
    return ev


def _timeline(rng: np.random.Generator, user: _User, rate: np.ndarray,
              holiday: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Gaps (T,) in seconds, wall-clock times (T,), burst membership, first weekday."""
    t = len(rate)
    g = rng.exponential(1.0, t) * user.awake / (user.rate * rate)     # awake seconds between posts
    in_burst, head = np.zeros(t, bool), np.arange(t)
    for h in np.flatnonzero(rng.random(t) < user.burst):               # photo dumps
        stop = min(t, h + 1 + int(rng.geometric(0.35)))
        in_burst[h + 1:stop], head[h + 1:stop] = True, h
    g[in_burst] = rng.lognormal(np.log(45.0), 1.0, int(in_burst.sum()))
    trip = holiday & ~in_burst
    if trip.any():                                                     # a trip: days, not weeks
        g[trip] = rng.exponential(rng.uniform(1.5, 6.0) * user.awake / trip.sum(), int(trip.sum()))
    quiet = (rng.random(t) < user.silence) & ~in_burst & ~holiday      # weeks away from the app
    g[quiet] += rng.lognormal(np.log(20.0), 0.7, int(quiet.sum())) * user.awake
    g[0] = 0.0
    active = np.cumsum(g) + rng.uniform(0.0, user.awake)
    # map awake seconds onto days; weekend days hold more of them when the user posts more then
    weekday0 = int(rng.integers(7))
    n_days = int(active[-1] / (user.awake * min(1.0, 1.0 + user.weekend_busy))) + 3
    weekend = (weekday0 + np.arange(n_days)) % 7 >= 5
    length = user.awake * (1.0 + user.weekend_busy * weekend)
    ends = np.cumsum(length)
    day = np.searchsorted(ends, active, side="right")
    offset = active - (ends[day] - length[day])
    wall = day * _DAY + user.wake + offset * (user.awake / length[day])
    gaps = np.maximum(np.diff(wall, prepend=wall[0]), 1.0)              # an upload takes a second
    gaps[0] = 0.0
    return gaps, wall, in_burst, head, weekday0


def _mood(rng: np.random.Generator, user: _User, wall: np.ndarray, weekday0: int) -> np.ndarray:
    """(T,) mood offset on the valence axis: a wandering mood, seasons, weekends, late nights."""
    decay = np.exp(-np.diff(wall, prepend=wall[0]) / user.mood_tau).tolist()
    eps = (rng.normal(0.0, user.mood_sd, len(wall))).tolist()
    v, out = eps[0], []
    for a, e in zip(decay, eps):                                       # Ornstein-Uhlenbeck in wall time
        v = a * v + (1.0 - a * a) ** 0.5 * e
        out.append(v)
    year = wall / _YEAR + rng.uniform(0.0, 1.0)                       # the stream starts any day
    season = -user.season * np.cos(2 * np.pi * (year - 15 / 365.25))   # gloomiest mid-January
    weekend = (weekday0 + (wall // _DAY).astype(int)) % 7 >= 5
    hour = (wall % _DAY) / 3600.0
    night = (hour >= 23.0) | (hour < 4.0)
    return np.array(out) + season + user.weekend_mood * (weekend - 2 / 7) - user.night_mood * night


def _sample(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """One category per row of (N, 7) probabilities."""
    c = np.cumsum(p, axis=1)
    return np.minimum((rng.random((len(p), 1)) * c[:, -1:] > c).sum(axis=1), 6)


def _shown(rng: np.random.Generator, user: _User, true: np.ndarray) -> np.ndarray:
    """The expression on the user's own face: smiles for the camera, flattened sadness, hidden anger."""
    shown = true.copy()
    r = rng.random(len(true))
    low = np.isin(true, (ANGRY, DISGUST, FEAR, SAD, NEUTRAL))
    smile = low & (r < user.smile * np.where(true == NEUTRAL, 1.0, 0.3))
    r2 = rng.random(len(true))
    shown[(true == SAD) & (r2 < user.sad_to_neutral)] = NEUTRAL
    hidden = (true == ANGRY) & (r2 < user.anger_hidden)
    shown[hidden] = np.where(rng.random(int(hidden.sum())) < 0.7, NEUTRAL, SAD)
    shown[(true == DISGUST) & (r2 < 0.4)] = ANGRY
    shown[(true == FEAR) & (r2 < 0.3)] = SURPRISE
    shown[smile] = HAPPY
    return shown


def _phones(rng: np.random.Generator, user: _User, wall: np.ndarray,
            forced: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per post: temperature multiplier and (7,) bias shift of the phone in use."""
    breaks, big = [], []
    x = rng.uniform(0.0, user.phone_years) * _YEAR
    while x < wall[-1]:
        breaks.append(x)
        big.append(False)
        x += user.phone_years * rng.uniform(0.7, 1.3) * _YEAR
    for j in forced:
        breaks.append(wall[j] - 1e-3)
        big.append(True)
    order = np.argsort(breaks, kind="stable")
    temp, bias = [1.0], [np.zeros(7)]
    for i in order:
        sd = 0.3 if big[i] else 0.15
        step = rng.choice((-1, 1)) * rng.uniform(0.3, 0.6) if big[i] else rng.normal(0.0, 0.2)
        temp.append(temp[-1] * float(np.exp(step)))
        bias.append(bias[-1] * 0.5 + rng.normal(0.0, sd, 7))
    seg = np.searchsorted(np.sort(np.array(breaks)), wall, side="right")
    return np.array(temp)[seg], np.array(bias)[seg]


def _classify(rng: np.random.Generator, user: _User, shown: np.ndarray, temp: np.ndarray,
              bias: np.ndarray) -> np.ndarray:
    """(N, 7) CNN probabilities for faces showing ``shown``."""
    n = len(shown)
    rows = _CONFUSION[shown] * np.exp(user.bias + bias)                # (N, 7)
    rows /= rows.sum(axis=1, keepdims=True)
    drawn = rng.random(n) < user.drawn
    rows[drawn] = 0.45 * rows[drawn] + 0.55 * _DRAWN_ROW
    blur = rng.random(n) < user.blur
    rows[blur] = 0.6 * rows[blur] + 0.4 * _BLUR_ROW
    said = _sample(rng, rows)
    margin = user.margin * rng.lognormal(0.0, 0.2, n)
    z = 0.5 * np.log(rows) + rng.normal(0.0, 0.6, (n, 7))
    z[np.arange(n), said] += margin
    z[np.arange(n), shown] += 0.35 * margin                            # some evidence of the truth
    t = user.temp * temp * np.where(blur | drawn, 1.6, 1.0)
    return _softmax(z / t[:, None])


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _emotions(rng: np.random.Generator, user: _User, p: np.ndarray, mood: np.ndarray,
              in_burst: np.ndarray, head: np.ndarray) -> np.ndarray:
    """(T,) the user's real emotion: the regime tilted by the mood; one event, one mood."""
    true = _sample(rng, _softmax(np.log(p) + mood[:, None] * _VALENCE))
    copy = in_burst & (rng.random(len(p)) < 0.5)
    true[copy] = true[head[copy]]
    return true


def _faces(rng: np.random.Generator, user: _User, face_rate: np.ndarray, ev: _Benign, true: np.ndarray,
           dip: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Which posts have a face, whose it is, and the expression it shows (own, other, garbage)."""
    t = len(true)
    face = (rng.random(t) < face_rate) | dip
    garbage = face & (rng.random(t) < user.garbage) & ~dip
    other = face & ~garbage & ~dip & (rng.random(t) < np.clip(user.other_share + ev.other, 0.0, 0.9))
    own = face & ~garbage & ~other
    shown = _shown(rng, user, true)
    shown[dip] = true[dip]                                             # a bad moment is not hidden
    cheerful = np.array(_OTHERS) * 0.4 + 0.6 * np.eye(7)[HAPPY]
    crowd = np.where(ev.happy_others[:, None], cheerful, user.others)  # (T, 7)
    stranger = _sample(rng, crowd)
    shown = np.where(own, shown, np.where(rng.random(t) < user.couple, true, stranger))
    return face, own | other, garbage, shown


def make_stream(rng: np.random.Generator, kind: str) -> Stream:
    """One labelled stream of ``kind``, drawn from ``rng``."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    user = _draw_user(rng, 3000 if kind == "none" else 600)
    regimes, w, start, end, start2 = _plan(rng, kind, user)
    t = len(w)
    ev = _benign(rng, kind, t, start)
    p = w @ np.stack([r.p for r in regimes])                           # (T, 7)
    rate = w @ np.array([r.rate for r in regimes]) * ev.rate
    gaps, wall, in_burst, head, weekday0 = _timeline(rng, user, rate, ev.holiday)
    true = _emotions(rng, user, p, _mood(rng, user, wall, weekday0) + ev.lift, in_burst, head)
    dip = np.zeros(t, bool)
    if kind == "transient":
        dip[start:end] = True
    face_rate = np.clip(user.face_rate * (w @ np.array([r.face for r in regimes])) * ev.face, 0.02, 0.97)
    face, real, garbage, shown = _faces(rng, user, face_rate, ev, true, dip)
    temp, bias = _phones(rng, user, wall, ev.phones)
    probs = np.empty((t, 7))
    probs[real] = _classify(rng, user, shown[real], temp[real], bias[real])
    junk = rng.normal(0.0, 1.2, (int(garbage.sum()), 7)) + _GARBAGE_LOGITS
    probs[garbage] = _softmax(junk / (user.temp * temp[garbage])[:, None])
    dark = rng.random(t) < w @ np.array([r.dark for r in regimes])
    scene = _FALLBACK_LOGITS + dark[:, None] * _DARK_LOGITS + rng.normal(0.0, 0.5, (t, 7))
    probs[~face] = _softmax(scene[~face] / (1.5 * user.temp * temp[~face])[:, None])
    probs = probs.astype(np.float32)
    probs /= probs.sum(axis=1, keepdims=True)
    return Stream(kind=kind, probs=probs, gaps=gaps.astype(np.float64), face=face, start=start,
                  end=end, start2=start2, true_emotion=true.astype(np.int64))


def make_streams(seed: int, kind: str, n: int) -> list[Stream]:
    """``n`` streams of ``kind``; stream i depends only on (seed, kind, i), not on ``n``."""
    salt = KINDS.index(kind) if kind in KINDS else 0
    seqs = np.random.SeedSequence([seed, salt]).spawn(n)
    return [make_stream(np.random.default_rng(s), kind) for s in seqs]
