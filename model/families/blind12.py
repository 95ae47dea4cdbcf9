"""blind12: photo-sharing app users whose image posts go through a face detector and an emotion CNN.

World. Each stream is one user of a photo app, followed post by post. A user has:

* A temperament: a personal mix of seven true emotions (angry, disgust, fear, happy, sad,
  surprise, neutral), from cheerful to calm-neutral to mixed to gloomy, written as a negative
  share plus a make-up of the negative part (blue, irritable, anxious) and of the rest (cheerful,
  calm, lively).
* Moods that persist: a day-level tilt (an AR(1) over days, a weekend lift or dip, for some users
  a winter low) and, inside a posting session, a tendency to stay in the session's first emotion.
* A posting life: sessions arrive by day with a per-user rate, bursty days (gamma), slow waves
  of activity, weekend habits, time off (holidays, busy weeks) and a personal day/night profile
  (early birds to night owls, a sleep window). A session holds one to a few posts, sometimes a
  photo dump, a few seconds to minutes apart. Some users post less when low, some more.
* Content: selfies, photos of other people or groups (mostly smiling; a little emotional
  contagion from the user), and faceless images (food, places, pets, memes), in personal shares
  that shift a little with mood. Selfies are sometimes posed (a smile or a blank face whatever the
  mood); a few posts are throwbacks to old photos; bursts hold near-duplicate shots.
* A classifier of personal quality: a confusion matrix per user with accuracy around 50-75% on
  their own face (happy easiest, disgust and fear hardest, FER-like confusions such as
  disgust->angry, fear->surprise, sad<->neutral), a "resting face" bias, its own confidence shape
  (over- or under-confident), per-photo quality (blur, light), and another matrix for friends'
  faces. The face detector misses some faces and sometimes fires on a non-face.
* Nuisances that are not mood changes: a new phone camera or beauty filter that shifts what the
  CNN sees, and holidays with more landscapes and happy group photos.

Outputs per post: `probs` is the CNN's 7-way softmax for the post's largest detected face; `face`
says whether the detector found one. For posts with no detected face, `probs` is what the CNN
outputs when run on the whole image: a noisy, fairly flat vector around a per-user background
profile that leans neutral/sad. `gaps` are seconds since the previous post (0 for the first).
`true_emotion` is the poster's own emotion at that post (not the depicted face's expression,
which can differ for posed selfies, throwbacks and photos of others).

Kinds (truth for the benchmark; "negative" = angry, disgust, fear, sad):
none (no change, long stream); abrupt_pos_neg (a low-negative baseline turns negative at
`start`); abrupt_neg_pos (a gloomy baseline turns cheerful or calm at `start`); gradual (a ramp of
tens of posts starting at `start`, either direction); small_shift (negative share moves by
0.1-0.3 at `start`); transient (1-3 posts of an opposite mood at start..end-1, one sitting);
episode (a low spell of tens of posts from `start`, back to baseline at `end`); two_changes
(lasting changes at `start` and `start2`); placebo (no change; `start` drawn like a change's).
Lasting changes come no earlier than post 30 and leave at least 150 posts after them.

`make_streams(seed, kind, n)` seeds one generator with [seed, index of kind] and draws the
streams in turn, so a longer list begins with the shorter one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

NAME = "blind12"
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

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

N_EMOTIONS = 7
ANGRY, DISGUST, FEAR, HAPPY, SAD, SURPRISE, NEUTRAL = range(N_EMOTIONS)
NEGATIVE = np.array([ANGRY, DISGUST, FEAR, SAD])
NON_NEGATIVE = np.array([HAPPY, SURPRISE, NEUTRAL])
# How a good or bad day pushes each emotion (surprise leans slightly positive on photo apps).
VALENCE = np.array([-1.0, -1.0, -1.0, 1.0, -1.0, 0.2, 0.0])

DAY = 86400.0
SESSION_BREAK = 2700.0  # a gap above 45 minutes starts a new sitting
MIN_START = 30
MIN_AFTER = 150

# Make-ups of the negative part (angry, disgust, fear, sad) and of the rest (happy, surprise, neutral).
NEG_STYLES = np.array([
    [0.15, 0.05, 0.15, 0.65],  # blue
    [0.55, 0.15, 0.10, 0.20],  # irritable
    [0.15, 0.05, 0.55, 0.25],  # anxious
    [0.30, 0.10, 0.20, 0.40],  # mixed
])
POS_STYLES = np.array([
    [0.70, 0.10, 0.20],  # cheerful
    [0.30, 0.07, 0.63],  # calm
    [0.55, 0.25, 0.20],  # lively
])

# FER-like confusions: where a misread expression goes (rows: shown, columns: predicted).
CONFUSABLE = np.array([
    [0.00, 0.10, 0.12, 0.05, 0.33, 0.05, 0.35],
    [0.55, 0.00, 0.10, 0.05, 0.15, 0.03, 0.12],
    [0.12, 0.03, 0.00, 0.04, 0.33, 0.28, 0.20],
    [0.05, 0.02, 0.05, 0.00, 0.08, 0.25, 0.55],
    [0.12, 0.03, 0.17, 0.06, 0.00, 0.04, 0.58],
    [0.05, 0.02, 0.35, 0.28, 0.05, 0.00, 0.25],
    [0.12, 0.03, 0.08, 0.20, 0.50, 0.07, 0.00],
])
# Per-class accuracy relative to the user's mean: happy is easy, disgust and fear are hard.
CLASS_EASE = np.array([-0.08, -0.25, -0.20, 0.20, -0.05, 0.10, 0.03])
SOCIAL_FACES = np.array([0.03, 0.02, 0.03, 0.55, 0.05, 0.08, 0.24])  # friends in photos mostly smile
BACKGROUND = np.array([0.13, 0.07, 0.12, 0.10, 0.20, 0.08, 0.30])  # the CNN on a non-face image
# Camera or filter changes, as shifts of the CNN's logits (not mood changes).
CAMERA_SHIFTS = np.array([
    [-0.3, -0.3, -0.2, 0.5, -0.2, 0.0, 0.2],  # beautifying filter: smoother, smilier faces
    [0.1, 0.05, 0.2, -0.3, 0.35, 0.0, 0.0],  # dim low-light camera
    [0.0, 0.0, 0.0, -0.2, 0.0, 0.0, 0.4],  # wide angle, distant framing flattens expressions
])


@dataclass
class Stream:
    kind: str
    probs: FloatArray  # (T, 7) CNN softmax, label order angry..neutral
    gaps: FloatArray  # (T,) seconds since the previous post, 0 for the first
    face: BoolArray  # (T,) whether the detector found a face
    start: int | None
    end: int | None
    start2: int | None
    true_emotion: IntArray | None  # (T,) the poster's own emotion index


@dataclass(frozen=True)
class _User:
    # posting
    sessions_per_day: float
    extra_posts: float
    dump_prob: float
    within_gap: float
    hour_profile: FloatArray
    weekend_activity: float
    day_shape: float
    break_rate: float
    break_len: float
    activity_mood_gain: float
    weekday0: int
    yearday0: int
    # mood
    stickiness: float
    tilt_sd: float
    tilt_memory: float
    weekend_mood: float
    season_amp: float
    # content
    faceless_share: float
    own_share: float
    faceless_mood_gain: float
    masking: float
    posed: FloatArray
    social: FloatArray
    contagion: float
    throwback: float
    duplicate: float
    miss_rate: float
    false_face: float
    # classifier
    conf_own: FloatArray
    conf_other: FloatArray
    margin: float
    tau: float
    noise: float
    quality_a: float
    background: FloatArray
    background_conc: float


@dataclass(frozen=True)
class _Plan:
    length: int
    start: int | None
    end: int | None
    start2: int | None
    moods: FloatArray  # (K, 7) true-emotion mixes
    weights: FloatArray  # (T, K) how much of each mix holds at each post
    transient: bool = False


# ---------------------------------------------------------------- small helpers


def _unif(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _log_unif(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _normalize(p: FloatArray) -> FloatArray:
    out: FloatArray = p / p.sum(axis=-1, keepdims=True)
    return out


def _softmax(z: FloatArray) -> FloatArray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    out: FloatArray = e / e.sum(axis=1, keepdims=True)
    return out


def _sample_rows(rng: np.random.Generator, p: FloatArray) -> IntArray:
    """One category per row of p (rows need not be normalized)."""
    cum = np.cumsum(p, axis=1)
    u = rng.random(p.shape[0]) * cum[:, -1]
    idx: IntArray = np.minimum((u[:, None] > cum).sum(axis=1), p.shape[1] - 1).astype(np.int64)
    return idx


def _smooth_noise(rng: np.random.Generator, n: int, memory: float) -> FloatArray:
    """Unit-variance AR(1)-like noise: white noise through a truncated exponential kernel."""
    k = int(max(1, min(n, np.ceil(4.0 / (1.0 - memory)))))
    kernel = memory ** np.arange(k, dtype=np.float64)
    kernel /= np.sqrt((kernel**2).sum())
    x = rng.standard_normal(n + k - 1)
    return np.convolve(x, kernel, mode="valid")


# ---------------------------------------------------------------- users


def _hour_profile(rng: np.random.Generator) -> FloatArray:
    """Share of sessions per local hour: a personal peak (lunch to late night) and a sleep window."""
    h = np.arange(24, dtype=np.float64)
    peak = _unif(rng, 10.0, 24.0)
    prof = np.exp(_unif(rng, 0.6, 2.0) * np.cos(2 * np.pi * (h - peak) / 24))
    if rng.random() < 0.4:  # a second, morning or lunch-time habit
        bump = _unif(rng, 7.0, 13.0)
        prof += _unif(rng, 0.5, 2.0) * np.exp(-0.5 * ((h - bump) / 1.2) ** 2)
    sleep_mid = (peak + 12.0 + rng.normal(0.0, 1.5)) % 24
    dist = np.abs(h - sleep_mid)
    dist = np.minimum(dist, 24 - dist)
    prof[dist < _unif(rng, 2.5, 4.5)] *= _unif(rng, 0.03, 0.2)
    return _normalize(prof)


def _confusion(rng: np.random.Generator, mean_acc: float) -> FloatArray:
    """A user's confusion matrix: per-class accuracy around mean_acc, FER-like misreads, a resting-face bias."""
    acc = np.clip(mean_acc + CLASS_EASE + rng.normal(0.0, 0.06, N_EMOTIONS), 0.1, 0.97)
    conf = np.zeros((N_EMOTIONS, N_EMOTIONS))
    for e in range(N_EMOTIONS):
        off = rng.dirichlet(CONFUSABLE[e] * 8.0 + 0.05)
        off[e] = 0.0
        conf[e] = (1.0 - acc[e]) * off / off.sum()
        conf[e, e] = acc[e]
    resting = int(rng.choice([NEUTRAL, SAD, ANGRY, HAPPY], p=[0.45, 0.25, 0.2, 0.1]))
    beta = _unif(rng, 0.0, 0.15)
    conf = (1.0 - beta) * conf
    conf[:, resting] += beta
    return conf


def _draw_user(rng: np.random.Generator) -> _User:
    posed = np.zeros(N_EMOTIONS)
    posed[[HAPPY, NEUTRAL, SURPRISE]] = rng.dirichlet([6.0, 3.0, 0.5])
    return _User(
        sessions_per_day=_log_unif(rng, 0.3, 4.0),
        extra_posts=_unif(rng, 0.1, 1.5),
        dump_prob=_unif(rng, 0.0, 0.05),
        within_gap=_log_unif(rng, 15.0, 400.0),
        hour_profile=_hour_profile(rng),
        weekend_activity=_unif(rng, 0.7, 1.6),
        day_shape=_unif(rng, 0.3, 2.0),
        break_rate=_log_unif(rng, 1 / 500, 1 / 60),
        break_len=_unif(rng, 3.0, 25.0),
        activity_mood_gain=_unif(rng, -1.5, 2.0),
        weekday0=int(rng.integers(7)),
        yearday0=int(rng.integers(365)),
        stickiness=_unif(rng, 0.3, 0.8),
        tilt_sd=_unif(rng, 0.1, 0.45),
        tilt_memory=_unif(rng, 0.3, 0.8),
        weekend_mood=_unif(rng, -0.2, 0.35),
        season_amp=_unif(rng, 0.0, 0.35) * float(rng.random() < 0.6),
        faceless_share=_unif(rng, 0.05, 0.7),
        own_share=_unif(rng, 0.35, 0.9),
        faceless_mood_gain=_unif(rng, -0.3, 0.8),
        masking=_unif(rng, 0.03, 0.35),
        posed=posed,
        social=rng.dirichlet(SOCIAL_FACES * 25.0),
        contagion=_unif(rng, 0.05, 0.3),
        throwback=_unif(rng, 0.0, 0.05),
        duplicate=_unif(rng, 0.0, 0.25),
        miss_rate=_unif(rng, 0.02, 0.15),
        false_face=_unif(rng, 0.0, 0.05),
        conf_own=_confusion(rng, _unif(rng, 0.55, 0.8)),
        conf_other=_confusion(rng, _unif(rng, 0.5, 0.75)),
        margin=_unif(rng, 1.5, 3.0),
        tau=_log_unif(rng, 0.45, 2.5),
        noise=_unif(rng, 0.3, 0.7),
        quality_a=_unif(rng, 2.0, 8.0),
        background=rng.dirichlet(BACKGROUND * 30.0),
        background_conc=_log_unif(rng, 3.0, 25.0),
    )


# ---------------------------------------------------------------- moods and plans


def _mood(q: float, neg: FloatArray, pos: FloatArray) -> FloatArray:
    """A true-emotion mix with negative share q."""
    v = np.zeros(N_EMOTIONS)
    v[NEGATIVE] = q * neg
    v[NON_NEGATIVE] = (1.0 - q) * pos
    return v


def _neg_style(rng: np.random.Generator, style: int | None = None) -> FloatArray:
    s = int(rng.integers(len(NEG_STYLES))) if style is None else style
    return rng.dirichlet(NEG_STYLES[s] * 20.0 + 0.2)


def _pos_style(rng: np.random.Generator, style: int | None = None) -> FloatArray:
    s = int(rng.integers(len(POS_STYLES))) if style is None else style
    return rng.dirichlet(POS_STYLES[s] * 20.0 + 0.2)


def _blend(rng: np.random.Generator, old: FloatArray, new: FloatArray) -> FloatArray:
    """A changed make-up: partly the user's old one, partly a new style."""
    w = _unif(rng, 0.3, 0.9)
    return _normalize((1.0 - w) * old + w * new)


def _temperament(rng: np.random.Generator, hi: float = 0.85) -> float:
    """Baseline negative share: cheerful, mixed or gloomy users."""
    kind = rng.choice(3, p=[0.4, 0.35, 0.25])
    lo_hi = [(0.04, 0.25), (0.25, 0.5), (0.5, 0.8)][int(kind)]
    return min(_unif(rng, *lo_hi), hi)


def _moved(rng: np.random.Generator, q: float, lo: float, hi: float, sign: int = 0) -> float:
    """A new negative share |lo..hi| away from q, toward sign (0: either side with room)."""
    size = _unif(rng, lo, hi)
    up_room, down_room = 0.93 - q, q - 0.03
    if sign == 0:
        sign = 1 if rng.random() < 0.5 else -1
        if (sign > 0 and up_room < lo) or (sign < 0 and down_room < lo):
            sign = -sign
    return float(np.clip(q + sign * size, 0.03, 0.93))


def _step(t: IntArray, at: int, ramp: int, shape: str = "linear") -> FloatArray:
    """0 before post `at`, 1 from post at+ramp-1 on; the first moved post is `at` itself."""
    if ramp <= 0:
        return (t >= at).astype(np.float64)
    x = np.clip((t - at + 1) / ramp, 0.0, 1.0)
    if shape == "smooth":
        return x * x * (3 - 2 * x)
    if shape == "late":  # slow at first, then faster
        return x**2
    if shape == "early":  # fast at first, then settling
        return np.sqrt(x)
    return x


def _start_and_length(rng: np.random.Generator) -> tuple[int, int]:
    """Where a step change (or a placebo or transient) sits, and the stream length."""
    start = int(rng.integers(MIN_START, 1000))
    return start, start + int(rng.integers(MIN_AFTER + 20, 1000))


def _plan(rng: np.random.Generator, kind: str) -> _Plan:
    """Stream length, change positions and the true-emotion mixes over time."""
    neg, pos = _neg_style(rng), _pos_style(rng)
    if kind == "none":
        n = int(rng.integers(1500, 2501))
        m0 = _mood(_temperament(rng), neg, pos)
        return _Plan(n, None, None, None, m0[None, :], np.ones((n, 1)))
    if kind in ("placebo", "transient"):
        start, n = _start_and_length(rng)
        m0 = _mood(_temperament(rng), neg, pos)
        end = start + int(rng.integers(1, 4)) if kind == "transient" else None
        return _Plan(n, start, end, None, m0[None, :], np.ones((n, 1)), transient=kind == "transient")
    if kind in ("abrupt_pos_neg", "abrupt_neg_pos", "small_shift"):
        start, n = _start_and_length(rng)
        if kind == "abrupt_pos_neg":
            q0, q1 = _unif(rng, 0.03, 0.32), _unif(rng, 0.5, 0.9)
            neg1, pos1 = _blend(rng, neg, _neg_style(rng)), pos
        elif kind == "abrupt_neg_pos":
            q0, q1 = _unif(rng, 0.5, 0.85), _unif(rng, 0.03, 0.3)
            neg1, pos1 = neg, _blend(rng, pos, _pos_style(rng, int(rng.integers(2))))
        else:
            q0 = _temperament(rng)
            q1 = _moved(rng, q0, 0.1, 0.3)
            neg1, pos1 = neg, pos
        # small shifts sometimes settle in over a few posts rather than at once
        ramp = int(rng.integers(4, 16)) if kind == "small_shift" and rng.random() < 0.3 else 0
        w = _step(np.arange(n), start, ramp)
        moods = np.stack([_mood(q0, neg, pos), _mood(q1, neg1, pos1)])
        return _Plan(n, start, None, None, moods, np.stack([1 - w, w], axis=1))
    if kind == "gradual":
        ramp = int(rng.integers(20, 101))
        start = int(rng.integers(MIN_START, 900))
        n = start + ramp + int(rng.integers(MIN_AFTER + 20, 900))
        q0 = _temperament(rng)
        q1 = _moved(rng, q0, 0.25, 0.55)
        neg1 = _blend(rng, neg, _neg_style(rng)) if q1 > q0 else neg
        pos1 = _blend(rng, pos, _pos_style(rng)) if q1 < q0 else pos
        shape = str(rng.choice(["linear", "smooth", "late", "early"]))
        w = _step(np.arange(n), start, ramp, shape)
        moods = np.stack([_mood(q0, neg, pos), _mood(q1, neg1, pos1)])
        return _Plan(n, start, None, None, moods, np.stack([1 - w, w], axis=1))
    if kind == "episode":
        start = int(rng.integers(MIN_START, 700))
        end = start + int(rng.integers(20, 91))
        n = end + int(rng.integers(200, 601))
        q0 = _temperament(rng, hi=0.5)
        q1 = min(0.95, q0 + _unif(rng, 0.25, 0.55))
        neg1 = _blend(rng, neg, _neg_style(rng, int(rng.choice([0, 2, 3]))))
        onset = int(rng.integers(0, 5))
        recovery = int(rng.integers(1, max(2, (end - start) // 4)))
        t = np.arange(n)
        # the recovery ramp finishes exactly at `end`, the first post back at baseline
        w = _step(t, start, onset) * (1.0 - _step(t, end - recovery + 1, recovery))
        moods = np.stack([_mood(q0, neg, pos), _mood(q1, neg1, pos)])
        return _Plan(n, start, end, None, moods, np.stack([1 - w, w], axis=1))
    if kind == "two_changes":
        start = int(rng.integers(MIN_START, 600))
        start2 = start + int(rng.integers(100, 600))
        n = start2 + int(rng.integers(MIN_AFTER + 20, 700))
        q0 = _temperament(rng)
        q1 = _moved(rng, q0, 0.2, 0.45)
        # the second change often undoes part of the first, sometimes carries on
        back = int(np.sign(q0 - q1))
        q2 = _moved(rng, q1, 0.2, 0.45, back if rng.random() < 0.6 else 0)
        t = np.arange(n)
        w1 = _step(t, start, int(rng.integers(0, 12)))
        w2 = _step(t, start2, int(rng.integers(0, 12)))
        moods = np.stack([
            _mood(q0, neg, pos),
            _mood(q1, _blend(rng, neg, _neg_style(rng)), _blend(rng, pos, _pos_style(rng))),
            _mood(q2, _blend(rng, neg, _neg_style(rng)), _blend(rng, pos, _pos_style(rng))),
        ])
        weights = np.stack([1 - w1, w1 * (1 - w2), w1 * w2], axis=1)
        return _Plan(n, start, None, start2, moods, weights)
    raise ValueError(f"unknown kind {kind!r}")


# ---------------------------------------------------------------- posting times


def _away_days(rng: np.random.Generator, u: _User, days: int) -> BoolArray:
    """Days off the app: holidays without posting, busy weeks, lost interest."""
    away = np.zeros(days, dtype=bool)
    starts = np.flatnonzero(rng.random(days) < u.break_rate)
    lengths = rng.geometric(1.0 / u.break_len, starts.size)
    for s0, ln in zip(starts, lengths):
        away[s0 : s0 + ln] = True
    return away


def _try_timeline(rng: np.random.Generator, u: _User, days: int) -> FloatArray:
    d = np.arange(days)
    weekend = (d + u.weekday0) % 7 >= 5
    level = np.exp(0.4 * _smooth_noise(rng, days, 0.95))  # slow waves of interest in the app
    bursty = rng.gamma(u.day_shape, 1.0 / u.day_shape, days)  # some days much busier than others
    rate = u.sessions_per_day * level * bursty * np.where(weekend, u.weekend_activity, 1.0)
    rate[_away_days(rng, u, days)] = 0.0
    counts = rng.poisson(rate)
    s = int(counts.sum())
    if s == 0:
        return np.zeros(0)
    hour = rng.choice(24, size=s, p=u.hour_profile)
    start = np.sort((np.repeat(d, counts) * 24 + hour + rng.random(s)) * 3600.0)
    posts = rng.geometric(1.0 / (1.0 + u.extra_posts), s)
    posts += (rng.random(s) < u.dump_prob) * rng.integers(4, 13, s)
    sess = np.repeat(np.arange(s), posts)
    within = rng.lognormal(np.log(u.within_gap), 1.0, sess.size)
    first = np.r_[True, sess[1:] != sess[:-1]]
    within[first] = 0.0
    cum = np.cumsum(within)
    times = start[sess] + cum - cum[first][sess]
    return np.sort(times)


def _timeline(rng: np.random.Generator, u: _User, n: int) -> FloatArray:
    """Times (seconds from midnight of day 0) of the user's first n posts."""
    per_day = u.sessions_per_day * (1.0 + u.extra_posts + 8.0 * u.dump_prob)
    active = max(0.3, 1.0 - u.break_rate * u.break_len)
    days = int(n / (per_day * active) * 1.5) + 30
    while True:
        times = _try_timeline(rng, u, days)
        if times.size >= n:
            return times[:n]
        days *= 2


# ---------------------------------------------------------------- true emotions


def _day_tilt(rng: np.random.Generator, u: _User, day: IntArray) -> FloatArray:
    """Each post's day-level mood push: persistent daily ups and downs, weekends, seasons."""
    n_days = int(day.max()) + 1
    tilt = u.tilt_sd * _smooth_noise(rng, n_days, u.tilt_memory)
    d = np.arange(n_days)
    tilt += np.where((d + u.weekday0) % 7 >= 5, u.weekend_mood, 0.0)
    tilt -= u.season_amp * np.cos(2 * np.pi * ((d + u.yearday0) % 365 - 15) / 365)  # low in January
    return tilt[day]


def _true_emotions(
    rng: np.random.Generator, u: _User, mix: FloatArray, session_first: IntArray
) -> IntArray:
    """Draw emotions from each post's mix; within a sitting the first emotion tends to stay."""
    fresh = _sample_rows(rng, mix)
    keep = rng.random(mix.shape[0]) < u.stickiness
    return np.where(keep, fresh[session_first], fresh)


def _transient_emotions(rng: np.random.Generator, gloomy: bool, k: int) -> IntArray:
    """A short burst of the opposite mood, mostly one emotion held across the burst."""
    if gloomy:
        options, p = np.array([HAPPY, SURPRISE]), np.array([0.8, 0.2])
    else:
        options, p = np.array([SAD, ANGRY, FEAR, DISGUST]), np.array([0.45, 0.25, 0.2, 0.1])
    main = rng.choice(options, p=p)
    out = np.where(rng.random(k) < 0.8, main, rng.choice(options, size=k, p=p))
    return out.astype(np.int64)


# ---------------------------------------------------------------- content and classifier


def _camera(rng: np.random.Generator, n: int) -> tuple[FloatArray, FloatArray]:
    """Logit shifts and confidence scale from phone or filter changes at random posts."""
    bias = np.zeros((n, N_EMOTIONS))
    scale = np.ones(n)
    events = int(rng.choice(3, p=[0.65, 0.28, 0.07]))
    for at in np.sort(rng.integers(0, n, events)):
        bias[at:] = CAMERA_SHIFTS[int(rng.integers(len(CAMERA_SHIFTS)))] * _unif(rng, 0.3, 1.0)
        scale[at:] = _unif(rng, 0.7, 1.4)
    return bias, scale


def _holidays(rng: np.random.Generator, n: int) -> BoolArray:
    """Posts made on a trip: more landscapes and group photos, not a mood change."""
    trip = np.zeros(n, dtype=bool)
    if rng.random() < 0.3:
        for _ in range(int(rng.integers(1, 3))):
            at = int(rng.integers(0, n))
            trip[at : at + int(rng.integers(8, 41))] = True
    return trip


def _classify(
    rng: np.random.Generator,
    rows: FloatArray,
    margin: float,
    tau: FloatArray,
    noise: float,
    bias: FloatArray,
) -> FloatArray:
    """CNN softmax for faces whose confusion rows are `rows`: a sampled top class, plausible runners-up."""
    n = rows.shape[0]
    top = _sample_rows(rng, rows)
    z = 0.35 * np.log(rows + 0.02) + noise * rng.standard_normal((n, N_EMOTIONS)) + bias
    z[np.arange(n), top] += margin
    return _softmax(z * tau[:, None])


def _background(rng: np.random.Generator, u: _User, n: int, conc: float) -> FloatArray:
    p = rng.dirichlet(u.background * conc, size=n) + 1e-6
    return _normalize(p)


def _session_first(gaps: FloatArray) -> IntArray:
    """Index of the first post of each post's sitting."""
    idx = np.arange(gaps.size)
    return np.maximum.accumulate(np.where(gaps > SESSION_BREAK, idx, 0)).astype(np.int64)


# ---------------------------------------------------------------- streams


def make_stream(rng: np.random.Generator, kind: str) -> Stream:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    plan = _plan(rng, kind)
    u = _draw_user(rng)
    n = plan.length
    times = _timeline(rng, u, n)
    gaps = np.r_[0.0, np.diff(times)]
    gaps[0] = 0.0
    first = _session_first(gaps)
    first[0] = 0

    mix = plan.weights @ plan.moods  # (n, 7) the mood regime
    q = mix[:, NEGATIVE].sum(axis=1)
    q0 = float(q[0])
    day = np.maximum((times - 4 * 3600.0) // DAY, 0).astype(np.int64)  # late nights count as the day before
    tilt = _day_tilt(rng, u, day)
    daily_mix = _normalize(mix * np.exp(tilt[:, None] * VALENCE[None, :]))
    true = _true_emotions(rng, u, daily_mix, first)

    # what each post shows: 0 own face, 1 other people, 2 no face
    trip = _holidays(rng, n)
    faceless_p = np.clip(u.faceless_share + u.faceless_mood_gain * (q - q0) + 0.2 * trip, 0.02, 0.95)
    faceless = rng.random(n) < faceless_p
    own = ~faceless & (rng.random(n) < u.own_share * np.where(trip, 0.5, 1.0))
    content = np.where(faceless, 2, np.where(own, 0, 1))

    shown = true.copy()
    posed = own & (rng.random(n) < u.masking)
    shown[posed] = _sample_rows(rng, np.tile(u.posed, (int(posed.sum()), 1)))
    old = own & (rng.random(n) < u.throwback)
    shown[old] = _sample_rows(rng, np.tile(plan.moods[0], (int(old.sum()), 1)))
    social = np.where(trip[:, None], 0.7 * u.social + 0.3 * np.eye(N_EMOTIONS)[HAPPY], u.social)
    others = (content == 1) & (rng.random(n) >= u.contagion)
    shown[others] = _sample_rows(rng, social[others])

    dup = (gaps <= SESSION_BREAK) & (np.arange(n) > 0) & (rng.random(n) < u.duplicate)
    if plan.transient:
        assert plan.start is not None and plan.end is not None
        span = slice(plan.start, plan.end)
        k = plan.end - plan.start
        true[span] = _transient_emotions(rng, q0 >= 0.5, k)
        selfie = rng.random(k) < 0.9  # a crying or beaming selfie, else a faceless quote or meme
        content[span] = np.where(selfie, 0, 2)
        shown[span] = true[span]
        dup[plan.start : plan.end + 1] = False
        gaps[plan.start + 1 : plan.end] = rng.lognormal(np.log(u.within_gap), 1.0, k - 1)
    src = np.maximum.accumulate(np.where(dup, 0, np.arange(n)))  # near-duplicate shots copy their burst's first
    true, content, shown = true[src], content[src], shown[src]

    has_face = content < 2
    detected = np.where(has_face, rng.random(n) >= u.miss_rate, rng.random(n) < u.false_face)
    bias, cam_scale = _camera(rng, n)
    quality = rng.beta(u.quality_a, 2.0, n)
    rows = np.where((content == 0)[:, None], u.conf_own[shown], u.conf_other[shown])
    blur = 0.4 * (1.0 - quality)[:, None]  # poor photos get misread toward the user's resting face
    rows = (1.0 - blur) * rows + blur * u.conf_own[NEUTRAL]
    tau = u.tau * cam_scale * (0.5 + quality)
    probs = _classify(rng, rows, u.margin, tau, u.noise, bias)
    junk = detected & ~has_face
    probs[junk] = _softmax(np.log(_background(rng, u, int(junk.sum()), 2.0)) * u.tau)
    no_face = ~detected
    probs[no_face] = _background(rng, u, int(no_face.sum()), u.background_conc)
    copies = np.flatnonzero(dup)
    probs[copies] = _normalize(probs[src[copies]] * np.exp(rng.normal(0.0, 0.15, (copies.size, N_EMOTIONS))))
    detected = detected[src]

    # some users withdraw when low, others post more
    new_sitting = gaps > SESSION_BREAK
    gaps[new_sitting] *= np.exp(u.activity_mood_gain * (q[new_sitting] - q0))
    return Stream(kind, probs, gaps, detected.astype(bool), plan.start, plan.end, plan.start2, true)


def make_streams(seed: int, kind: str, n: int) -> list[Stream]:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    return [make_stream(rng, kind) for _ in range(n)]
