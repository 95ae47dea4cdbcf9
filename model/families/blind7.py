"""Blind family 7: a heterogeneous population of posting accounts seen through a FER-2013 CNN.

World simulated
---------------
Each stream is one account.  The account has an archetype (teen selfie poster, casual adult,
parent whose photos mostly show their kids, brand account posting stock smiles on a bot-like
schedule, artist posting drawn faces, pet account with few human faces) and two independent
modifiers: a cultural display rule (reserved users rarely smile for the camera and mask
feelings behind a neutral face) and a shift-work clock (posting at night).

Time.  Posts come in sessions (an outing, a party, a selfie burst): session starts follow a
thinned Poisson process whose rate has a per-user weekly profile and holiday peaks (Christmas,
a personal summer vacation); the hour of day comes from a per-user diurnal profile.  Posting
rates are heavy-tailed (lognormal, ~1/month to dozens/day).  Accounts fall silent for weeks,
and some come back changed (a silence right before the change).  Negative moods slow posting:
the gap before a session whose emotion is negative is stretched by a per-user factor.

Emotion.  A regime is a distribution over the 7 true emotions.  Sessions share one emotion
with a per-user coherence probability; a mild seasonal (winter) wobble is added.  Holiday
posts are happier (real, short, recurring).  Changes move the regime: abrupt, a linear ramp,
a small shift (more negative mass, or only happy -> neutral), a 1-2 post transient, an
episode that recovers, or two persistent changes in a row.  Some users change on weekdays
only (weekend posts keep the old pattern).

Expression vs mood.  Sad/angry people post fewer faces (landscapes, quotes); on camera they
often show a neutral face or a polite smile.  Neutral people smile for photos.  The largest
face in the image is sometimes someone else's (kids, a new group of friends), whose
expression is mostly happy and independent of the user's mood.

Classifier.  Displayed expressions go through a FER-2013-like confusion (Gumbel-max over
log confusion rows, so the argmax follows the confusion exactly): happy is reliable, sad
leaks to neutral, fear to surprise/sad, disgust is rarely predicted.  Per-user logit bias
(glasses, lighting, skin tone) and logit scale (some users always flat, some near one-hot);
each phone era (new phone = benign change) has its own bias, scale and image quality
(low quality pulls towards neutral/sad and adds noise).  Drawn faces and pet faces give
garbage outputs; posts without a face get a flat whole-image output.

Benign confounders appear in every kind (new phones, friend-group eras, holidays, silences,
seasonal wobble), so that "none" and "placebo" streams are not clean.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("none", "abrupt_pos_neg", "abrupt_neg_pos", "gradual", "small_shift", "transient",
         "episode", "two_changes", "placebo")
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

ANG, DIS, FEA, HAP, SAD, SUR, NEU = range(7)
NEG = np.array([ANG, DIS, FEA, SAD])
IS_NEG = np.zeros(7, bool)
IS_NEG[NEG] = True
DAY = 86400.0

# Rows: displayed expression, columns: predicted class (FER-2013-like CNN, ~65% accuracy).
_CONF = np.array([
    [.60, .02, .08, .03, .12, .03, .12],
    [.24, .38, .08, .04, .13, .03, .10],
    [.10, .01, .45, .04, .15, .13, .12],
    [.02, .003, .02, .86, .03, .02, .05],
    [.08, .01, .09, .04, .56, .02, .20],
    [.03, .003, .10, .05, .03, .74, .05],
    [.04, .003, .04, .06, .15, .02, .69],
])
_CONF = _CONF / _CONF.sum(1, keepdims=True)
_LOGCONF = np.log(_CONF)
# Whole-image output when no face was found (dark/odd crops lean neutral/sad).
_NOFACE_PRIOR = np.log(np.array([.10, .02, .12, .14, .24, .06, .32]))
# Low image quality pulls logits this way.
_LOWQ_PULL = np.array([0.0, -0.6, 0.2, -0.5, 0.6, -0.3, 0.8])
# Expression distribution of other people in the photo (kids, friends).
_OTHERS = np.array([.02, .01, .03, .60, .04, .12, .18])

ARCHETYPES = ("teen", "adult", "parent", "brand", "artist", "pet")
_ARCH_W = np.array([.26, .32, .16, .06, .08, .12])


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


# ---------------------------------------------------------------- regimes

def _normalise(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, None)
    return p / p.sum()


def _neg_split(rng: np.random.Generator, flavour: str) -> np.ndarray:
    """Split of negative mass over (angry, disgust, fear, sad)."""
    base = {"sad": [1.0, 0.3, 0.6, 4.0], "anger": [4.0, 1.2, 0.5, 1.2],
            "anx": [0.6, 0.2, 3.5, 1.5], "mixed": [1.5, 0.5, 1.2, 2.0]}[flavour]
    return rng.dirichlet(np.array(base) * 4)


def _regime(rng: np.random.Generator, neg: float, happy_frac: float, flavour: str) -> np.ndarray:
    p = np.zeros(7)
    p[NEG] = neg * _neg_split(rng, flavour)
    rest = 1.0 - neg
    sur = rest * rng.uniform(0.03, 0.1)
    p[SUR] = sur
    p[HAP] = (rest - sur) * happy_frac
    p[NEU] = (rest - sur) * (1 - happy_frac)
    return _normalise(p)


def _pos_regime(rng: np.random.Generator) -> np.ndarray:
    return _regime(rng, rng.uniform(0.04, 0.16), rng.uniform(0.4, 0.75),
                   str(rng.choice(["sad", "anger", "anx", "mixed"])))


def _neg_regime(rng: np.random.Generator, flavour: str | None = None) -> np.ndarray:
    fl = flavour or str(rng.choice(["sad", "anger", "anx", "mixed"], p=[.5, .22, .13, .15]))
    return _regime(rng, rng.uniform(0.42, 0.72), rng.uniform(0.15, 0.45), fl)


def _gloomy_regime(rng: np.random.Generator) -> np.ndarray:
    return _regime(rng, rng.uniform(0.42, 0.65), rng.uniform(0.1, 0.35),
                   str(rng.choice(["sad", "anger", "mixed"])))


def _happyish_regime(rng: np.random.Generator) -> np.ndarray:
    return _regime(rng, rng.uniform(0.04, 0.14), rng.uniform(0.35, 0.8),
                   str(rng.choice(["sad", "mixed"])))


def _small_shift(rng: np.random.Generator, a: np.ndarray) -> np.ndarray:
    b = a.copy()
    if rng.random() < 0.25:
        # Only the happy/neutral balance moves: smiles give way to flat faces.
        d = min(b[HAP] * rng.uniform(0.45, 0.8), 0.35)
        d = max(d, 0.15) if b[HAP] > 0.2 else d
        d = min(d, b[HAP] - 0.01)
        b[HAP] -= d
        b[NEU] += d
        return _normalise(b)
    d = rng.uniform(0.08, 0.3)
    take_h = min(b[HAP] - 0.01, d * rng.uniform(0.5, 0.9))
    take_n = min(b[NEU] - 0.01, d - take_h)
    b[HAP] -= take_h
    b[NEU] -= take_n
    b[NEG] += (take_h + take_n) * _neg_split(rng, str(rng.choice(["sad", "anger", "anx"])))
    return _normalise(b)


# ---------------------------------------------------------------- users

def _user(rng: np.random.Generator) -> dict:
    arch = ARCHETYPES[rng.choice(len(ARCHETYPES), p=_ARCH_W)]
    u: dict = {"arch": arch}
    rate_med = {"teen": 2.5, "adult": 0.35, "parent": 0.6, "brand": 1.5, "artist": 0.5,
                "pet": 1.0}[arch]
    u["rate"] = float(np.clip(rate_med * np.exp(rng.normal(0, 1.0)), 1 / 35, 40.0))  # sessions/day
    u["sess_mean"] = {"teen": 2.6, "adult": 1.8, "parent": 2.2, "brand": 1.05, "artist": 1.3,
                      "pet": 2.0}[arch] * rng.uniform(0.7, 1.3)
    u["face_p"] = {"teen": .85, "adult": .55, "parent": .72, "brand": .9, "artist": .75,
                   "pet": .15}[arch] * rng.uniform(0.8, 1.1)
    u["others_p"] = {"teen": .15, "adult": .15, "parent": .42, "brand": .0, "artist": .0,
                     "pet": .05}[arch] * rng.uniform(0.5, 1.3)
    u["garbage_p"] = {"teen": .02, "adult": .03, "parent": .03, "brand": .01, "artist": .25,
                      "pet": .3}[arch] * rng.uniform(0.5, 1.5)
    u["bot"] = arch == "brand" and rng.random() < 0.6
    u["reserved"] = rng.random() < 0.25
    u["night"] = rng.random() < 0.12
    # Display rules: probability a negative feeling shows as neutral / as a polite smile,
    # and that a neutral mood shows as a smile for the photo.
    u["mask_neu"] = rng.uniform(0.1, 0.3) + (0.15 if u["reserved"] else 0.0)
    u["mask_smile"] = rng.uniform(0.02, 0.12) * (0.3 if u["reserved"] else 1.0)
    u["photo_smile"] = rng.uniform(0.08, 0.3) * (0.25 if u["reserved"] else 1.0)
    u["happy_flat"] = rng.uniform(0.25, 0.5) if u["reserved"] else rng.uniform(0.0, 0.1)
    if arch == "brand":
        u["photo_smile"] = 0.6
    u["coherence"] = rng.uniform(0.5, 0.9)
    u["neg_face_mult"] = rng.uniform(0.45, 0.85)
    u["neg_gap_stretch"] = rng.uniform(1.0, 2.5)
    u["weekend_mult"] = rng.uniform(0.8, 2.0)
    u["holiday_mult"] = rng.uniform(1.0, 3.0)
    u["vacation_day"] = rng.uniform(160, 240)
    u["winter_amp"] = rng.uniform(0.0, 0.06)
    u["bias"] = rng.normal(0, 0.35, 7)
    u["scale"] = float(np.exp(rng.normal(0.1, 0.5)))
    if arch == "artist":
        u["scale"] *= 0.6
    u["hours"] = (np.array([rng.uniform(1, 5), rng.uniform(12, 14), rng.uniform(18, 23)])
                  if not u["night"] else
                  np.array([rng.uniform(2, 6), rng.uniform(7, 10), rng.uniform(14, 17)]))
    u["hour_w"] = rng.dirichlet([0.5, 2, 4] if not u["night"] else [4, 2, 1])
    u["t0_day"] = rng.uniform(0, 365 * 10)
    return u


# ---------------------------------------------------------------- time

def _session_times(rng: np.random.Generator, u: dict, n_sess: int) -> np.ndarray:
    """Session start times (seconds since an arbitrary epoch of day 0)."""
    t0 = u["t0_day"] * DAY
    if u["bot"]:
        step = max(1.0, round(1.0 / max(u["rate"], 1e-3))) if u["rate"] < 1 else 1.0 / round(u["rate"])
        days = np.arange(n_sess) * step
        jitter = rng.normal(0, 120, n_sess)
        return t0 + days * DAY + u["hours"][1] * 3600 + jitter
    mmax = max(u["weekend_mult"], 1.0) * u["holiday_mult"]
    lam = u["rate"] * mmax
    out: list[np.ndarray] = []
    have, t = 0, 0.0
    while have < n_sess:
        k = int((n_sess - have) * mmax * 1.3) + 16
        cand = t + np.cumsum(rng.exponential(1.0 / lam, k))
        t = cand[-1]
        day = cand + u["t0_day"]
        dow = np.floor(day) % 7
        doy = day % 365.0
        m = np.where(dow >= 5, u["weekend_mult"], 1.0)
        hol = (doy > 354) | (doy < 3) | (np.abs(doy - u["vacation_day"]) < 7)
        m = m * np.where(hol, u["holiday_mult"], 1.0)
        keep = rng.random(k) < m / mmax
        out.append(cand[keep])
        have += int(keep.sum())
    days = np.concatenate(out)[:n_sess]
    comp = rng.choice(3, n_sess, p=u["hour_w"])
    hour = (u["hours"][comp] + rng.normal(0, 1.5, n_sess)) % 24
    times = (np.floor(days) * DAY) + hour * 3600 + t0 - (t0 % DAY)
    return np.sort(times)


# ---------------------------------------------------------------- stream

def _categorical(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    c = np.cumsum(p, axis=1)
    r = rng.random(len(p))[:, None] * c[:, -1:]
    return np.minimum((r > c).sum(1), 6)


def _layout(rng: np.random.Generator, kind: str) -> tuple[int, int | None, int | None, int | None, int, int]:
    """Returns T, start, end, start2, ramp length, end of the last change (for 'after' length)."""
    if kind == "none":
        return int(rng.integers(1500, 3001)), None, None, None, 0, 0
    s = int(rng.integers(30, 251))
    tail = int(rng.integers(150, 701))
    if kind == "transient":
        e = s + int(rng.integers(1, 3))
        return e + tail, s, e, None, 0, e
    if kind == "episode":
        e = s + int(rng.integers(12, 61))
        return e + tail, s, e, None, 0, e
    if kind == "two_changes":
        s2 = s + int(rng.integers(150, 301))
        return s2 + tail, s, None, s2, 0, s2
    if kind == "gradual":
        ramp = int(rng.integers(10, 121))
        return s + ramp + tail, s, None, None, ramp, s + ramp
    return s + tail, s, None, None, 0, s


def make_stream(rng: np.random.Generator, kind: str) -> Stream:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    u = _user(rng)
    T, start, end, start2, ramp, _ = _layout(rng, kind)

    # Regimes A (baseline), B (after the change), C (after the second change).
    if kind == "abrupt_neg_pos":
        A = _gloomy_regime(rng)
        B = _happyish_regime(rng)
    else:
        A = _pos_regime(rng) if rng.random() < 0.8 or kind in ("abrupt_pos_neg", "small_shift") \
            else _regime(rng, rng.uniform(0.1, 0.2), rng.uniform(0.1, 0.3), "mixed")
        if kind == "gradual" and rng.random() < 0.25:
            A, B = _gloomy_regime(rng), _happyish_regime(rng)
        elif kind == "small_shift":
            B = _small_shift(rng, A)
        else:
            B = _neg_regime(rng)
    C = B
    if kind == "two_changes":
        for _ in range(50):
            if rng.random() < 0.5:
                C = _neg_regime(rng)
            else:
                C = _regime(rng, rng.uniform(0.1, 0.25), rng.uniform(0.05, 0.25), "mixed")
            if np.abs(C - B).sum() > 0.5 and np.abs(C - A).sum() > 0.3:
                break

    # Sessions and times.
    sizes = rng.geometric(1.0 / max(u["sess_mean"], 1.0), T)
    sizes = np.maximum(sizes, 1)
    n_sess = int(np.searchsorted(np.cumsum(sizes), T) + 1)
    sizes = sizes[:n_sess]
    sess_t = _session_times(rng, u, n_sess)
    sess_id = np.repeat(np.arange(n_sess), sizes)[:T]
    first = np.r_[True, sess_id[1:] != sess_id[:-1]]
    intra = rng.exponential(rng.uniform(60, 600), T)
    intra[first] = 0.0
    off = np.zeros(T)
    # cumulative offset within each session
    cs = np.cumsum(intra)
    base = cs[first][sess_id]
    off = cs - base
    times = sess_t[sess_id] + off
    times = np.maximum.accumulate(times)
    day = times / DAY
    dow = np.floor(day) % 7
    doy = day % 365.0

    # Per-post mixture weights of regimes.
    idx = np.arange(T)
    wB = np.zeros(T)
    wC = np.zeros(T)
    if start is not None and kind != "placebo":
        if kind == "gradual":
            wB = np.clip((idx - start + 1) / (ramp + 1), 0, 1)
        else:
            wB = (idx >= start).astype(float)
            if end is not None:
                wB[idx >= end] = 0.0
        if start2 is not None:
            wC = (idx >= start2).astype(float)
            wB = wB * (1 - wC)
        if kind not in ("transient",) and rng.random() < 0.15:
            # Weekday-only change: weekend posts keep the old pattern.
            wk = dow >= 5
            wB[wk] = 0.0
            wC[wk] = 0.0
    p = (1 - wB - wC)[:, None] * A + wB[:, None] * B + wC[:, None] * C
    # Seasonal winter wobble (peak mid-January), holidays happier.
    season = u["winter_amp"] * np.cos(2 * np.pi * (doy - 15) / 365.0)
    p = p.copy()
    p[:, SAD] += np.maximum(season, 0) * 0.7
    p[:, HAP] = np.maximum(p[:, HAP] - season * 0.7, 0.01)
    hol = (doy > 354) | (doy < 3) | (np.abs(doy - u["vacation_day"]) < 7)
    p[hol, HAP] += 0.25
    p /= p.sum(1, keepdims=True)

    # True emotion: sessions share a draw with probability `coherence`.
    own = _categorical(rng, p)
    sess_first_idx = np.flatnonzero(first)
    shared = own[sess_first_idx][sess_id]
    seg = (wB > 0.5).astype(int) + 2 * (wC > 0.5)
    same_seg = seg == seg[sess_first_idx][sess_id]
    use_shared = (rng.random(T) < u["coherence"]) & same_seg
    true = np.where(use_shared, shared, own)
    if kind == "transient":
        true[start:end] = rng.choice(NEG, end - start, p=[.25, .05, .15, .55])

    # Gaps: negative moods slow posting; silences of weeks; some come back changed.
    gaps = np.diff(times, prepend=times[0])
    neg = IS_NEG[true]
    gaps[first & neg] *= u["neg_gap_stretch"]
    n_sil = rng.poisson(T / 900)
    if n_sil:
        at = rng.integers(1, T, n_sil)
        gaps[at] += rng.uniform(7, 90, n_sil) * DAY
    if start is not None and kind not in ("transient", "placebo") and rng.random() < 0.2:
        gaps[start] += rng.uniform(20, 120) * DAY
    if kind == "placebo" and rng.random() < 0.2:
        gaps[start] += rng.uniform(20, 120) * DAY
    gaps[0] = 0.0
    if u["bot"]:
        gaps = np.where(gaps > 0, gaps, 0.0)

    # Face present: fewer faces when feeling bad; more at holidays.
    fp = np.full(T, u["face_p"])
    fp[neg] *= u["neg_face_mult"]
    fp[hol] = np.minimum(fp[hol] * 1.2, 0.97)
    if kind == "transient":
        fp[start:end] = np.maximum(fp[start:end], 0.8)
    face = rng.random(T) < np.clip(fp, 0, 0.98)

    # Displayed expression.
    shown = true.copy()
    r = rng.random(T)
    shown[neg & (r < u["mask_neu"])] = NEU
    shown[neg & (r >= u["mask_neu"]) & (r < u["mask_neu"] + u["mask_smile"])] = HAP
    shown[(true == NEU) & (r < u["photo_smile"])] = HAP
    shown[(true == HAP) & (r < u["happy_flat"])] = NEU
    # Others in the photo: kids, friends (a friend-group era is a benign confounder).
    op = np.full(T, u["others_p"])
    if rng.random() < 0.3:
        a = int(rng.integers(0, T))
        b = min(T, a + int(rng.integers(100, 400)))
        op[a:b] += rng.uniform(0.15, 0.35)
    others = rng.random(T) < op
    if kind == "transient":
        others[start:end] = False
    n_o = int(others.sum())
    if n_o:
        shown[others] = rng.choice(7, n_o, p=_OTHERS)

    # Phone eras: bias, logit scale and image quality change at each new phone.
    n_eras = 1 + rng.poisson(max(times[-1] - times[0], 0) / DAY / 700 + 0.3)
    cuts = np.sort(rng.integers(1, T, n_eras - 1))
    era = np.searchsorted(cuts, idx, side="right")
    era_bias = rng.normal(0, 0.25, (n_eras, 7))
    era_scale = np.exp(rng.normal(0, 0.25, n_eras))
    era_lowq = rng.uniform(0, 1, n_eras) ** 2  # mostly decent, a few bad cameras
    lowq = era_lowq[era]

    g = rng.gumbel(size=(T, 7))
    logits = _LOGCONF[shown] + g + u["bias"] + era_bias[era] + lowq[:, None] * _LOWQ_PULL
    logits += rng.normal(0, 1, (T, 7)) * (0.2 + 0.6 * lowq)[:, None]
    logits *= (u["scale"] * era_scale[era])[:, None]
    garbage = face & (rng.random(T) < u["garbage_p"])
    logits[garbage] = rng.normal(0, 1.5, (int(garbage.sum()), 7)) + _NOFACE_PRIOR
    nf = ~face
    logits[nf] = (_NOFACE_PRIOR + rng.normal(0, 0.5, (int(nf.sum()), 7)) + 0.5 * u["bias"]) * 0.8
    logits -= logits.max(1, keepdims=True)
    e = np.exp(logits)
    probs = (e / e.sum(1, keepdims=True)).astype(np.float32)
    probs /= probs.sum(1, keepdims=True)

    return Stream(kind=kind, probs=probs, gaps=gaps.astype(np.float64), face=face.astype(bool),
                  start=start, end=end, start2=start2, true_emotion=true.astype(np.int64))


def make_streams(seed: int, kind: str, n: int) -> list[Stream]:
    rng = np.random.default_rng([seed, KINDS.index(kind) if kind in KINDS else 99, 7])
    return [make_stream(rng, kind) for _ in range(n)]
