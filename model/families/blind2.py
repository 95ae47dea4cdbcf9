"""blind2: a held-out family of labelled emotion timelines, "the crowded camera roll".

Written blind (without reading the detector, its benchmarks or the other families) as an exam the
detector was never tuned on. Each stream is one social-media user's image posts in time order, as the
service sees them: the 7 probabilities of a FER-2013 CNN run on the largest face found, whether a face
was found, and the seconds since the previous post. The labels say when the *user's* emotional
pattern changed.

The world, and why it is hard:

- **The largest face is often not the user.** Posts come in sessions of one kind: selfie runs, social
  albums (group photos where the biggest face is as often a friend as the user, friends mostly smiling
  whatever the user feels), meme/repost sprees (strong staged expressions unrelated to the user's mood)
  and scenery/food posts (no face: the CNN reads the centre crop and answers with its own flat prior).
  The face detector misses some faces and finds some in posters and pets.
- **Faces hide feelings.** In selfies a user "smiles for the camera" with some probability whatever
  they feel (a posed, weak smile the CNN reads as happy or neutral); in group photos the social smile
  is stronger; many users suppress negative feelings to a neutral face. A sad period therefore shows
  as fewer smiles and more neutral faces, fewer selfies and social albums, friends who smile less and
  sadder memes, as much as sad faces.
- **Mood is sticky and social.** A daily mood (AR(1) over days) tilts the true emotion of every post
  of that day; weekends are a bit brighter; holidays bring bursts of happy group albums. None of these
  is a lasting change.
- **Posting habits change.** Rates range from one post a week to 30 a day, with albums posted minutes
  apart, nights with no posts, busier weekends, silences of weeks, and life epochs (a new job) that
  change the rate by a factor of 0.4..2.5 in every kind of stream. A negative regime also changes the
  rate (most users post less when low, some more).
- **The classifier is a real, imperfect CNN.** A FER-like confusion matrix (disgust read as angry,
  fear as sad or surprise, sad as neutral), a per-user bias ("resting face" read as angry, sad or
  neutral), a per-user calibration from overconfident to flat, weak expressions pulled towards
  neutral, 0.5-2% garbage outputs, and a camera/lighting change (new phone) in half of the streams
  that shifts every output slightly and is NOT a change. There is no model update: that is announced
  by the service, not guessed from the data. Per user, the CNN's sharpness (lighting, resolution,
  faces unlike FER-2013's) is solved so that its accuracy on face posts against the user's true
  emotion is a drawn 0.47..0.73.

``_simulate`` returns the hidden world beside each stream (post categories, expressed faces, the
regime per post, ...) for the tests; a detector only ever gets a ``Stream``.

Kinds and labels (``start``/``end``/``start2`` are post indices): "none" (1500-3000 posts, no change);
change kinds have 30-250 baseline posts before ``start`` and at least 150 posts after the last change;
"abrupt_pos_neg" (non-negative baseline -> a negative regime), "abrupt_neg_pos" (gloomy -> happy or
neutral), "gradual" (a linear ramp of 10-80 posts starting at ``start``), "small_shift" (negative share
+0.1..0.3), "transient" (1-2 clearly negative selfies at ``start``..``end``-1: must not alarm),
"episode" (12-60 posts of another regime, back at ``end``), "two_changes" (a persistent change at
``start`` and another one to a third regime 150-300 posts later at ``start2``), "placebo" (no change,
``start`` drawn as for a change stream: a chance control).

Standalone: numpy only, nothing from the project.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("none", "abrupt_pos_neg", "abrupt_neg_pos", "gradual", "small_shift", "transient",
         "episode", "two_changes", "placebo")
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # FER-2013 order
ANGRY, DISGUST, FEAR, HAPPY, SAD, SURPRISE, NEUTRAL = range(7)
NEGATIVE = (ANGRY, DISGUST, FEAR, SAD)
_NEG = np.zeros(7, bool)
_NEG[list(NEGATIVE)] = True
# How pleasant each true emotion is: a good day tilts the user's emotions along this axis.
_VALENCE = np.array([-0.8, -0.7, -0.6, 1.0, -0.9, 0.3, 0.0])

# What a FER-2013 CNN says (argmax) for a clearly expressed face in the wild; rows: expressed emotion.
_CONFUSION = np.array([
    [0.55, 0.03, 0.08, 0.04, 0.12, 0.03, 0.15],   # angry
    [0.30, 0.35, 0.07, 0.05, 0.10, 0.03, 0.10],   # disgust: mostly lost to angry
    [0.10, 0.02, 0.40, 0.04, 0.18, 0.12, 0.14],   # fear: sad and surprise
    [0.02, 0.002, 0.02, 0.85, 0.02, 0.03, 0.058],  # happy: the easy one
    [0.08, 0.01, 0.10, 0.04, 0.50, 0.02, 0.25],   # sad: often neutral
    [0.02, 0.002, 0.10, 0.05, 0.02, 0.75, 0.058],  # surprise
    [0.05, 0.005, 0.04, 0.06, 0.15, 0.03, 0.665],  # neutral
])
_CONFUSION /= _CONFUSION.sum(1, keepdims=True)

# Post categories: what the largest face (if any) belongs to.
SELFIE, GROUP_OWN, GROUP_FRIEND, REPOST, SCENERY = range(5)
# Session kinds (selfie run, social album, meme spree, scenery) -> category mix inside the session.
_SESSION_MIX = np.array([
    [0.90, 0.00, 0.00, 0.00, 0.10],
    [0.00, 0.40, 0.45, 0.00, 0.15],
    [0.00, 0.00, 0.00, 0.80, 0.20],
    [0.05, 0.00, 0.10, 0.00, 0.85],
])
_FRIEND = np.array([0.04, 0.03, 0.04, 0.55, 0.05, 0.09, 0.20])   # friends in the user's photos
_CONCERNED = np.array([0.03, 0.02, 0.05, 0.15, 0.20, 0.05, 0.50])  # friends around a low user
_MEME = np.array([0.15, 0.10, 0.08, 0.30, 0.07, 0.22, 0.08])     # staged meme faces
_SAD_MEME = np.array([0.20, 0.10, 0.12, 0.10, 0.33, 0.05, 0.10])  # what a low user reposts
_NEG_FLAVOURS = {  # how a negative regime splits its negative share (angry, disgust, fear, sad)
    "sad": np.array([0.12, 0.06, 0.14, 0.68]),
    "angry": np.array([0.55, 0.25, 0.05, 0.15]),
    "anxious": np.array([0.10, 0.05, 0.50, 0.35]),
    "mixed": np.array([0.25, 0.15, 0.25, 0.35]),
}


@dataclass
class Stream:
    kind: str
    probs: np.ndarray         # (T, 7) float32, rows sum to 1
    gaps: np.ndarray          # (T,) float64 seconds since the previous post, 0.0 first
    face: np.ndarray          # (T,) bool: a face was found
    start: int | None         # first post of the (first) change
    end: int | None           # first post back at the old pattern; None: the change persists
    start2: int | None        # first post of the second change ("two_changes" only)
    true_emotion: np.ndarray  # (T,) int: the user's real emotion per post, index into LABELS


def _regime(rng: np.random.Generator, neg_share: float, flavour: str, sunny: float) -> np.ndarray:
    """A distribution of the user's true emotions with this negative share.

    ``sunny`` in 0..1 moves the non-negative mass from neutral towards happy.
    """
    pos_mean = np.array([0.15 + 0.55 * sunny, 0.08, 0.77 - 0.55 * sunny])   # happy, surprise, neutral
    pos = rng.dirichlet(40 * pos_mean)
    neg = rng.dirichlet(30 * _NEG_FLAVOURS[flavour])
    p = np.zeros(7)
    p[[HAPPY, SURPRISE, NEUTRAL]] = (1 - neg_share) * pos
    p[list(NEGATIVE)] = neg_share * neg
    return p


def _baseline(rng: np.random.Generator, mood: str) -> np.ndarray:
    flavour = str(rng.choice(list(_NEG_FLAVOURS)))
    if mood == "positive":
        return _regime(rng, rng.uniform(0.03, 0.2), flavour, rng.uniform(0.4, 1.0))
    if mood == "neutral":
        return _regime(rng, rng.uniform(0.12, 0.3), flavour, rng.uniform(0.0, 0.4))
    return _regime(rng, rng.uniform(0.45, 0.7), flavour, rng.uniform(0.0, 0.4))   # gloomy


def _negative(rng: np.random.Generator) -> np.ndarray:
    flavour = str(rng.choice(list(_NEG_FLAVOURS)))
    return _regime(rng, rng.uniform(0.5, 0.85), flavour, rng.uniform(0.0, 0.3))


def _bright(rng: np.random.Generator) -> np.ndarray:
    return _regime(rng, rng.uniform(0.03, 0.2), "mixed", rng.uniform(0.2, 1.0))


def _distinct(rng: np.random.Generator, make, others: list[np.ndarray], tv: float = 0.3) -> np.ndarray | None:
    """A regime from ``make`` at least ``tv`` (total variation) from all ``others``; None if none is."""
    for _ in range(50):
        p = make(rng)
        if all(0.5 * np.abs(p - o).sum() >= tv for o in others):
            return p
    return None


def _neg_share(p: np.ndarray) -> np.ndarray:
    return p[..., _NEG].sum(-1)


def _plan(rng: np.random.Generator, kind: str):
    """Kind -> (T, regime per post (T,7), start, end, start2)."""
    if kind == "none":
        T = int(rng.integers(1500, 3001))
        a = _baseline(rng, str(rng.choice(["positive", "neutral", "gloomy"], p=[0.6, 0.25, 0.15])))
        return T, np.tile(a, (T, 1)), None, None, None
    start = int(rng.integers(30, 251))
    tail = int(rng.integers(150, 501))
    if kind == "placebo":
        T = start + tail
        a = _baseline(rng, str(rng.choice(["positive", "neutral", "gloomy"], p=[0.6, 0.25, 0.15])))
        return T, np.tile(a, (T, 1)), start, None, None
    if kind == "abrupt_neg_pos":
        a = _baseline(rng, "gloomy")
        going_down = False
    elif kind == "abrupt_pos_neg":
        a = _baseline(rng, str(rng.choice(["positive", "neutral"], p=[0.7, 0.3])))
        going_down = True
    else:
        a = _baseline(rng, str(rng.choice(["positive", "neutral", "gloomy"], p=[0.55, 0.25, 0.2])))
        # From a gloomy baseline the change is usually a recovery, otherwise usually a fall.
        going_down = bool(rng.random() < (0.2 if _neg_share(a) > 0.4 else 0.85))
    if kind == "small_shift":
        delta = rng.uniform(0.1, 0.3)
        b = a.copy()
        b[~_NEG] *= (1 - _neg_share(a) - delta) / (1 - _neg_share(a))
        b[_NEG] += delta * rng.dirichlet(30 * _NEG_FLAVOURS[str(rng.choice(["sad", "angry", "anxious"]))])
    else:
        # A happy user cannot get much happier, a gloomy one may not get much gloomier: turn around.
        # The abrupt kinds keep their direction whatever happens.
        makers = [_bright, _negative] if not going_down else [_negative, _bright]
        b = _distinct(rng, makers[0], [a])
        if b is None and not kind.startswith("abrupt"):
            b = _distinct(rng, makers[1], [a])
        b = makers[0](rng) if b is None else b
    end = start2 = None
    if kind == "transient":
        end = start + int(rng.integers(1, 3))
        T = end + tail
        return T, np.tile(a, (T, 1)), start, end, None
    if kind == "episode":
        end = start + int(rng.integers(12, 61))
        T = end + tail
        reg = np.tile(a, (T, 1))
        reg[start:end] = b
        return T, reg, start, end, None
    if kind == "gradual":
        ramp = int(rng.integers(10, 81))
        T = start + ramp + tail
        w = np.clip((np.arange(T) - start + 1) / ramp, 0.0, 1.0)[:, None]
        return T, (1 - w) * a + w * b, start, None, None
    if kind == "two_changes":
        start2 = start + int(rng.integers(150, 301))
        T = start2 + tail
        # The third regime: another kind of low, a numb neutral, or a recovery, far from both.
        def third(r: np.random.Generator) -> np.ndarray:
            pick = r.random()
            if pick < 0.4:
                return _negative(r)
            if pick < 0.7:
                return _regime(r, r.uniform(0.2, 0.4), "sad", r.uniform(0.0, 0.1))
            return _bright(r)
        c = _distinct(rng, third, [a, b], tv=0.25)
        c = _distinct(rng, _negative, [a, b], tv=0.2) if c is None else c
        c = _negative(rng) if c is None else c
        reg = np.tile(a, (T, 1))
        reg[start:start2] = b
        reg[start2:] = c
        return T, reg, start, None, start2
    if kind in ("abrupt_pos_neg", "abrupt_neg_pos", "small_shift"):
        T = start + tail
        reg = np.tile(a, (T, 1))
        reg[start:] = b
        return T, reg, start, None, None
    raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")


def _post_times(rng: np.random.Generator, T: int, rate_factor: np.ndarray) -> np.ndarray:
    """Wall-clock seconds of T posts: albums, awake hours, busier weekends, silences of weeks.

    ``rate_factor`` (T,) scales the user's session rate at each post (life epochs, holidays, mood).
    """
    per_day = np.exp(rng.uniform(np.log(1 / 7), np.log(30)))   # posts per day
    p_album = rng.uniform(0.1, 0.5)                              # a post follows the previous within minutes
    new_session = np.r_[True, rng.random(T - 1) >= p_album]
    first = np.flatnonzero(new_session)                          # (S,) first post of each session
    session = np.cumsum(new_session) - 1                         # (T,) session of each post
    rate = per_day * (1 - p_album) * rate_factor[first]          # sessions per average day
    tau = np.cumsum(rng.exponential(1.0, first.size) / rate)     # (S,) time in "average days"
    weekday = np.ones(7)
    weekday[5:] = rng.uniform(1.0, 1.8)                          # weekends are busier
    weekday /= weekday.mean()
    dow0 = int(rng.integers(7))
    n_days = int(tau[-1] / weekday.min()) + 3
    w = weekday[(dow0 + np.arange(n_days)) % 7]
    edges = np.r_[0.0, np.cumsum(w)]
    day = np.searchsorted(edges, tau, side="right") - 1
    frac = np.clip((tau - edges[day]) / w[day], 0.0, 1.0)
    wake, awake = rng.uniform(6, 10), rng.uniform(13, 18)        # hours
    hour = wake + awake * frac ** rng.uniform(0.6, 1.0)         # skewed to the evening
    silent = rng.random(first.size) < rng.uniform(0.0, 0.01)     # "taking a break": 1-8 whole weeks
    day = day + np.cumsum(np.where(silent, 7 * rng.integers(1, 9, first.size), 0))
    t_session = day * 86400.0 + hour * 3600.0                    # (S,)
    hop = np.where(new_session, 0.0, rng.exponential(rng.uniform(30, 400), T))
    offset = np.cumsum(hop)
    t = t_session[session] + offset - offset[first][session]
    # Overlapping albums of heavy posters: keep the order, at least one second apart.
    idx = np.arange(T)
    return np.maximum.accumulate(t - idx) + idx + dow0 * 86400.0


def _daily_mood(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """(T,) the mood of each post's day: AR(1) over calendar days, brighter weekends."""
    day = (t // 86400).astype(np.int64)
    days, which = np.unique(day, return_inverse=True)
    phi = rng.uniform(0.5, 0.9) ** np.diff(days, prepend=days[0] - 1).astype(float)
    noise = rng.standard_normal(days.size)
    v = np.empty(days.size)
    x = 0.0
    for k in range(days.size):   # one step per day with posts: at most T
        x = phi[k] * x + np.sqrt(1 - phi[k] ** 2) * noise[k]
        v[k] = x
    weekend = (days % 7) >= 5
    return (v + rng.uniform(0.0, 0.4) * weekend)[which]


def _blocks(rng: np.random.Generator, T: int, count: int, lo: int, hi: int) -> np.ndarray:
    mask = np.zeros(T, bool)
    for _ in range(count):
        n = int(rng.integers(lo, hi + 1))
        s = int(rng.integers(0, max(1, T - n)))
        mask[s:s + n] = True
    return mask


def _sample(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """One category per row of p (T, K)."""
    c = np.cumsum(p / p.sum(1, keepdims=True), axis=1)
    return np.minimum((rng.random((p.shape[0], 1)) > c).sum(1), p.shape[1] - 1)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def _sharpness(shown: np.ndarray, bias: np.ndarray, true: np.ndarray, target: float) -> float:
    """How sharply the CNN sees this user's faces: the factor that makes its expected accuracy
    against the user's true emotion ``target`` (lighting, resolution, the faces FER-2013 lacks).
    """
    pick = np.linspace(0, true.size - 1, min(true.size, 300)).astype(int)   # plenty for an expectation
    shown, bias, true = shown[pick], bias[pick], true[pick]
    lo, hi = 0.2, 6.0
    rows = np.arange(true.size)
    for _ in range(14):   # bisection: accuracy grows with sharpness for all but a few posts
        mid = 0.5 * (lo + hi)
        if _softmax(mid * shown + bias)[rows, true].mean() < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def make_stream(rng: np.random.Generator, kind: str) -> Stream:
    """One user's timeline of the given kind, drawn from ``rng``."""
    return _simulate(rng, kind)[0]


def _simulate(rng: np.random.Generator, kind: str) -> tuple[Stream, dict[str, np.ndarray | float]]:
    """One stream and the hidden world behind it (post categories, expressed faces, ...)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    T, reg, start, end, start2 = _plan(rng, kind)
    down = np.clip(_neg_share(reg) - _neg_share(reg[0]), -1.0, 1.0)   # (T,) how much lower than usual

    # Nuisances found in every kind: life epochs, holidays, a new phone.
    epoch = np.ones(T)
    for cut in rng.integers(0, T, rng.poisson(T / 800)):
        epoch[cut:] *= np.exp(rng.uniform(np.log(0.4), np.log(2.5)))
    holiday = _blocks(rng, T, rng.poisson(T / 1000), 10, 40)
    mood_rate = rng.uniform(0.4, 1.2)          # rate factor in a fully negative regime
    rate = epoch * np.where(holiday, rng.uniform(2, 4), 1.0) * mood_rate ** (2 * down)
    t = _post_times(rng, T, rate)
    gaps = np.diff(t, prepend=t[0])

    # The user's true emotion: regime tilted by the day's mood (and holidays).
    mood = _daily_mood(rng, t) + 0.6 * holiday
    tilt = np.exp(rng.uniform(0.3, 1.0) * mood[:, None] * _VALENCE[None, :])
    true = _sample(rng, reg * tilt)
    dip = np.zeros(T, bool)
    if kind == "transient":
        dip[start:end] = True
        flavour = _NEG_FLAVOURS[str(rng.choice(["sad", "angry", "anxious"]))]
        true[dip] = np.array(NEGATIVE)[_sample(rng, np.tile(flavour, (int(dip.sum()), 1)))]

    # What is in the picture: sessions of one kind; low users withdraw from albums and repost more.
    session_mix = rng.dirichlet([5.0, 2.0, 1.0, 2.0])
    session_mix[2] = min(session_mix[2], 0.12)   # the user's own face stays the most common face
    new_session = np.r_[True, gaps[1:] > 1800]
    sid = np.cumsum(new_session) - 1
    first = np.flatnonzero(new_session)
    withdraw, doom, camera_shy = rng.uniform(0, 3), rng.uniform(0, 1.2), rng.uniform(0, 1.5)
    mix = np.tile(session_mix, (T, 1))
    mix[:, 0] *= np.exp(-camera_shy * down)
    mix[:, 1] *= np.exp(-withdraw * down) * np.where(holiday, 3.0, 1.0)
    mix[:, 2] *= np.exp(doom * down)
    skind = _sample(rng, mix[first])[sid]
    friend_first = rng.uniform(0.25, 0.6)       # in group photos, how often a friend's face is larger
    sess = _SESSION_MIX.copy()
    sess[1, 1:3] = 0.85 * np.array([1 - friend_first, friend_first])
    cat = _sample(rng, sess[skind])
    cat[dip] = SELFIE

    # The face the CNN sees and how strongly it shows its emotion.
    expressed = true.copy()
    strength = rng.beta(5, 2, T)
    own = (cat == SELFIE) | (cat == GROUP_OWN)
    u = rng.random(T)
    p_mask, p_social, p_suppress = rng.uniform(0.05, 0.3), rng.uniform(0.3, 0.6), rng.uniform(0.1, 0.35)
    maskable = np.isin(true, [SAD, NEUTRAL, FEAR, ANGRY]) & ~dip
    posed = own & maskable & (u < np.where(cat == SELFIE, p_mask, p_social))
    expressed[posed] = HAPPY
    strength[posed] = rng.uniform(0.1, 0.5, int(posed.sum()))
    hidden = own & ~posed & _NEG[true] & ~dip & (rng.random(T) < p_suppress)
    expressed[hidden] = NEUTRAL
    strength[dip] = rng.uniform(0.8, 1.0, int(dip.sum()))
    friend = cat == GROUP_FRIEND
    concern = 0.3 * np.clip(down[friend], 0, 1)[:, None]   # friends around a low user smile less
    expressed[friend] = _sample(rng, (1 - concern) * _FRIEND + concern * _CONCERNED)
    meme = cat == REPOST
    low = np.clip(down[meme], 0, 1)[:, None]
    expressed[meme] = _sample(rng, (1 - low) * _MEME + low * _SAD_MEME)
    strength[meme] = rng.uniform(0.7, 1.0, int(meme.sum()))

    # The CNN: confusion, resting-face bias, calibration, a new phone, misses and garbage.
    bias = np.zeros((T, 7)) + rng.normal(0, 0.15, 7)
    if rng.random() < 0.4:
        bias[:, rng.choice([ANGRY, SAD, NEUTRAL, FEAR])] += rng.uniform(0.3, 0.9)
    temp = np.full(T, np.exp(rng.uniform(np.log(0.4), np.log(2.0))))
    if rng.random() < 0.5:
        cut = int(rng.integers(0, T))
        bias[cut:] += rng.normal(0, 0.2, 7)
        bias[cut:, rng.integers(7)] += rng.choice([-0.4, 0.4])
        temp[cut:] *= rng.uniform(0.8, 1.25)
    pull = 0.6 * (1 - strength[:, None])        # a weak expression reads partly as a neutral face
    shown = np.log((1 - pull) * _CONFUSION[expressed] + pull * _CONFUSION[NEUTRAL] + 1e-3)   # (T, 7)
    face = cat != SCENERY
    missed = face & ~dip & (rng.random(T) < np.where(meme, 0.2, rng.uniform(0.02, 0.1)))
    sharp = _sharpness(shown[face & ~missed], bias[face & ~missed], true[face & ~missed],
                       rng.uniform(0.47, 0.73))
    z = sharp * shown + bias + rng.gumbel(size=(T, 7))   # argmax ~ softmax(sharp * shown + bias)
    temp *= np.sqrt(sharp)                               # calibration stays the user's, not the image's
    prior = np.array([0.0, -2.0, 0.0, 0.3, 0.6, -0.5, 1.0]) + rng.normal(0, 0.4, 7)
    z[missed] = 0.3 * z[missed] + 0.7 * prior + rng.normal(0, 0.4, (int(missed.sum()), 7))
    scenery = ~face
    z[scenery] = prior + rng.normal(0, 0.6, (int(scenery.sum()), 7))
    ghost = scenery & (rng.random(T) < 0.03)   # a face found on a poster or a pet
    z[ghost] += rng.normal(0, 1.0, (int(ghost.sum()), 7))
    face = (face & ~missed) | ghost
    probs = _softmax(z / temp[:, None])
    junk = rng.random(T) < rng.uniform(0.005, 0.02)
    probs[junk] = rng.dirichlet(np.full(7, 0.15), int(junk.sum()))
    probs = np.clip(probs, 1e-7, None)
    probs = (probs / probs.sum(1, keepdims=True)).astype(np.float32)
    gaps[0] = 0.0
    stream = Stream(kind=kind, probs=probs, gaps=gaps.astype(np.float64), face=face, start=start,
                    end=end, start2=start2, true_emotion=true.astype(np.int64))
    return stream, dict(category=cat, expressed=expressed, posed=posed, hidden=hidden, missed=missed,
                        sharpness=sharp, regime=reg, times=t)


def make_streams(seed: int, kind: str, n: int) -> list[Stream]:
    """n streams of one kind; stream i depends only on (seed, kind, i).

    Examples
    --------
    >>> s = make_streams(0, "episode", 2)[1]
    >>> s.probs.shape[1], 30 <= s.start < s.end <= s.start + 60, len(s.probs) - s.end >= 150
    (7, True, True)
    """
    k = KINDS.index(kind) if kind in KINDS else -1
    if k < 0:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    return [make_stream(np.random.default_rng([seed, k, i]), kind) for i in range(n)]
