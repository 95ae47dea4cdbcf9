"""Blind family 6: a heterogeneous population of accounts seen through a FER-2013 classifier.

World
-----
Every stream is one account. The account has an *archetype* that fixes what its images show:
a teenager's selfie feed, a parent posting the kids, a small shop / brand posting stock photos of
smiling models, an artist posting drawn faces, a pet account (mostly faceless, the odd cat face that
the face detector takes for a human one), or an account shared by two people. Each post is one of

* own face   - the account owner's face; shows the real emotion unless the person poses (most
               people smile or keep a neutral mask for the camera; posing fades when they feel bad),
* other face - the largest face in a group photo / the kids; mostly happy, only loosely tied to the
               owner's mood,
* drawn face - memes, screenshots, drawings; exaggerated expressions, partly chosen to match mood,
* stock face - brand models, nearly always smiling,
* false face - the detector fired on a pattern or an animal: classifier output is garbage,
* no face    - landscapes, food, quotes; the pipeline emits either a flat placeholder or the
               classifier run on the whole image (a per-account pipeline choice).

The owner's real emotion per post (``true_emotion``) is drawn from a mood *regime* (a distribution
over the seven FER labels) that wanders slowly (log-space random walk over hundreds of posts), is
pushed toward gloom in winter for some users, and is persistent over short runs of posts (a bad day
covers several posts). Mood also moves behaviour: low mood means fewer sessions, fewer own-face
posts and more faceless ones, and less posing; a lifted mood, more mildly, the reverse.

Timing: per-account session rate is heavy-tailed (about one a month to a few dozen a day); sessions
follow a circadian and weekly profile (time-warped Poisson process); sessions hold one or several
posts (events give bursts of near-duplicate photos seconds to minutes apart); weeks-long silences
occur. ``gaps`` are the resulting seconds between posts.

Classifier: a FER-2013 CNN with the usual confusions (fear<->surprise, sad<->neutral, disgust
rarely predicted and read as angry, happy the most reliable), a per-account bias (camera, light,
glasses, skin tone), a per-account temperature (some accounts always flat, some near one-hot) and
per-post noise. A new phone changes bias and temperature at a random post.

Benign confounders that are not mood changes appear in every kind with the same odds: a new phone,
a new friend group (more / different group photos), a holiday burst of happy group photos in quick
succession, a switch toward faceless content, and a "serious aesthetic" era (posing with a neutral
face instead of a smile).

Changes are changes of the owner's mood regime (shared accounts: the main poster's; small shifts
reach both). Kinds follow the benchmark's invariants: see ``make_stream``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("none", "abrupt_pos_neg", "abrupt_neg_pos", "gradual", "small_shift", "transient",
         "episode", "two_changes", "placebo")
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")   # FER-2013 order

A, D, F, H, S, U, N = range(7)
NEG = np.array([1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0])
DAY = 86400.0


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


# Mood regime templates (angry, disgust, fear, happy, sad, surprise, neutral).
_TEMPL = {
    "bright": [0.02, 0.01, 0.02, 0.55, 0.04, 0.07, 0.29],
    "calm": [0.03, 0.01, 0.03, 0.33, 0.06, 0.04, 0.50],
    "mixed": [0.05, 0.02, 0.04, 0.38, 0.09, 0.06, 0.36],
    "gloomy": [0.08, 0.02, 0.07, 0.12, 0.36, 0.03, 0.32],
    "bitter": [0.22, 0.08, 0.05, 0.12, 0.18, 0.03, 0.32],
    "sad": [0.05, 0.01, 0.06, 0.08, 0.50, 0.02, 0.28],
    "angry": [0.34, 0.10, 0.05, 0.08, 0.15, 0.03, 0.25],
    "anxious": [0.06, 0.01, 0.30, 0.09, 0.20, 0.10, 0.24],
    "withdrawn": [0.05, 0.01, 0.05, 0.08, 0.30, 0.02, 0.49],
    "upbeat": [0.02, 0.01, 0.02, 0.60, 0.03, 0.08, 0.24],
    "content": [0.03, 0.01, 0.02, 0.42, 0.05, 0.05, 0.42],
}
_POS_BASE = ("bright", "calm", "mixed")
_NEG_BASE = ("gloomy", "bitter", "sad", "withdrawn")
_NEG_TARGET = ("sad", "angry", "anxious", "withdrawn", "bitter")
_POS_TARGET = ("upbeat", "content", "bright", "calm")

# FER-2013-like confusion: rows = expression shown, columns = class the CNN leans to.
_CONF = np.array([
    [0.55, 0.02, 0.09, 0.04, 0.13, 0.03, 0.14],
    [0.28, 0.36, 0.08, 0.04, 0.11, 0.03, 0.10],
    [0.09, 0.01, 0.42, 0.04, 0.17, 0.13, 0.14],
    [0.02, 0.002, 0.02, 0.86, 0.03, 0.02, 0.05],
    [0.08, 0.01, 0.09, 0.04, 0.53, 0.02, 0.23],
    [0.03, 0.002, 0.11, 0.05, 0.03, 0.74, 0.04],
    [0.05, 0.004, 0.05, 0.07, 0.16, 0.03, 0.64],
])
_CONF = _CONF / _CONF.sum(1, keepdims=True)

# Content shares: own, other, drawn, stock, false-face, no-face.
_ARCH = {
    "selfie": ([0.66, 0.14, 0.05, 0.00, 0.02, 0.13], 1.5, 1.0),
    "parent": ([0.30, 0.42, 0.02, 0.00, 0.03, 0.23], 0.6, 0.9),
    "brand": ([0.25, 0.08, 0.02, 0.45, 0.02, 0.18], 1.0, 0.8),
    "artist": ([0.25, 0.05, 0.40, 0.00, 0.03, 0.27], 0.5, 1.0),
    "pet": ([0.30, 0.06, 0.02, 0.00, 0.14, 0.48], 0.8, 1.0),
    "shared": ([0.50, 0.25, 0.03, 0.02, 0.03, 0.17], 0.9, 0.9),
}
_ARCH_NAMES = tuple(_ARCH)
_ARCH_P = np.array([0.34, 0.18, 0.10, 0.10, 0.10, 0.18])
_OTHER = np.array([0.02, 0.005, 0.02, 0.58, 0.04, 0.08, 0.255])
_DRAWN = np.array([0.14, 0.08, 0.10, 0.30, 0.14, 0.16, 0.08])
_STOCK = np.array([0.0, 0.0, 0.0, 0.88, 0.0, 0.04, 0.08])


def _regime(rng: np.random.Generator, name: str, conc: float = 70.0) -> np.ndarray:
    t = np.asarray(_TEMPL[name])
    return rng.dirichlet(t * conc + 0.05)


def _tv(p: np.ndarray, q: np.ndarray) -> float:
    return 0.5 * float(np.abs(p - q).sum())


def _distinct(rng: np.random.Generator, names: tuple[str, ...], others: list[np.ndarray],
              min_tv: float) -> np.ndarray:
    for _ in range(50):
        q = _regime(rng, str(rng.choice(names)))
        if all(_tv(q, o) >= min_tv for o in others):
            return q
    return q


def _small_shift(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """Move 0.08-0.3 of the mass: to the negatives, from happy to neutral, or between negatives."""
    q = p.copy()
    mode = rng.choice(3, p=[0.6, 0.25, 0.15])
    if mode == 1 and q[H] > 0.25:
        d = rng.uniform(0.12, min(0.3, q[H] - 0.05))
        q[H] -= d
        q[N] += d
        return q
    if mode == 2 and (q * NEG).sum() > 0.35:
        src, dst = (S, A) if q[S] >= q[A] else (A, S)
        d = min(q[src] * 0.7, rng.uniform(0.15, 0.3))
        q[src] -= d
        q[dst] += d
        return q
    d = rng.uniform(0.08, 0.3)
    pos = np.array([0, 0, 0, 1.0, 0, 0.5, 0.6]) * q
    take = pos / pos.sum() * min(d, 0.85 * pos.sum())
    q -= take
    w = rng.dirichlet([2.0, 0.4, 1.0, 0.01, 3.0, 0.01, 0.01]) * NEG
    q += w / w.sum() * take.sum()
    return q / q.sum()


def _sessions(rng: np.random.Generator, T: int, dn: np.ndarray, rate: float, withdraw: float,
              ) -> tuple[np.ndarray, np.ndarray]:
    """Gaps (seconds) and the session-head index of every post."""
    sizes = []
    total = 0
    while total < T:
        if rng.random() < 0.05:
            k = int(rng.integers(4, 26))          # an event: burst of photos
        else:
            k = int(rng.geometric(0.75))
        sizes.append(k)
        total += k
    sizes_a = np.array(sizes)
    nses = sizes_a.size
    heads = np.concatenate([[0], np.cumsum(sizes_a)[:-1]])
    head_of = np.repeat(heads, sizes_a)[:T]
    # Circadian x weekly intensity over one week (hourly bins), time-warped Poisson process.
    h = np.arange(168)
    hour, wd = h % 24, h // 24
    circ = 0.15 + np.exp(-0.5 * ((hour - rng.normal(20, 1.5)) / 3.0) ** 2) \
        + 0.5 * np.exp(-0.5 * ((hour - 12.5) / 2.0) ** 2)
    inten = circ * np.where(wd >= 5, rng.uniform(1.0, 1.6), 1.0)
    inten = inten / inten.sum() * rate * 7.0            # sessions per week
    cum = np.concatenate([[0.0], np.cumsum(inten)])
    wmass = cum[-1]
    d = dn[np.minimum(heads, T - 1)]
    mood = np.exp(withdraw * (-2.5 * np.clip(d, 0, None) + 1.0 * np.clip(-d, 0, None)))
    op = np.cumsum(rng.exponential(1.0, nses) / mood)
    wk = np.floor(op / wmass)
    t_head = wk * 7 * DAY + np.interp(op - wk * wmass, cum, np.arange(169) * 3600.0)
    sil = rng.random(nses) < rng.uniform(0.002, 0.02)
    t_head = t_head + np.cumsum(sil * np.round(rng.uniform(7, 80, nses)) * DAY)
    within = np.exp(rng.normal(np.log(90.0), 1.3, T))  # seconds between posts of one session
    cs = np.cumsum(np.where(head_of == np.arange(T), 0.0, within))
    t = t_head[np.searchsorted(heads, head_of)] + cs - cs[head_of]
    t = np.maximum.accumulate(t)
    gaps = np.diff(t, prepend=t[0])
    gaps[0] = 0.0
    return gaps, head_of


def _layout(rng: np.random.Generator, kind: str) -> dict:
    if kind == "none":
        return {"T": int(rng.integers(1500, 3001)), "start": None, "end": None, "start2": None}
    pre = int(rng.integers(30, 251))
    post = int(min(150 + rng.exponential(180), 900))
    out = {"start": pre, "end": None, "start2": None}
    if kind == "gradual":
        out["ramp"] = int(rng.integers(10, 121))
        out["T"] = pre + out["ramp"] + post
    elif kind == "transient":
        out["end"] = pre + int(rng.integers(1, 3))
        out["T"] = out["end"] + post
    elif kind == "episode":
        out["end"] = pre + int(rng.integers(12, 61))
        out["T"] = out["end"] + post
    elif kind == "two_changes":
        out["start2"] = pre + int(rng.integers(150, 301))
        out["T"] = out["start2"] + post
    else:
        out["T"] = pre + post
    return out


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def make_stream(rng: np.random.Generator, kind: str) -> Stream:
    """One account's posts. Invariants: "none" has 1500-3000 posts and no change; change kinds have
    30-250 baseline posts before ``start`` and at least 150 posts after the last change; "transient"
    dips for exactly 1-2 posts and "episode" for 12-60 ([start, end)); "two_changes" has its second
    change 150-300 posts after the first; "placebo" has a ``start`` but no change."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    lay = _layout(rng, kind)
    T = lay["T"]
    idx = np.arange(T)
    arch = _ARCH_NAMES[rng.choice(len(_ARCH_NAMES), p=_ARCH_P)]
    shares0, rate_med, rate_sig = _ARCH[arch]
    shares = rng.dirichlet(np.asarray(shares0) * 40 + 0.3)
    if kind not in ("none", "placebo", "transient") and shares[0] + 0.5 * shares[2] < 0.3:
        shares[0] += 0.3                           # the owner must be visible for a fair change
        shares /= shares.sum()
    rate = float(np.clip(rate_med * np.exp(rng.normal(0, rate_sig) * 1.3), 1 / 30, 40))
    rate = max(rate, T / (1.6 * 365 * 7))           # nobody posts one stream over decades

    # ---- mood regimes -------------------------------------------------------------------------
    if kind == "abrupt_pos_neg":
        base = _regime(rng, str(rng.choice(_POS_BASE)))
    elif kind == "abrupt_neg_pos":
        base = _regime(rng, str(rng.choice(_NEG_BASE)))
    else:
        pool = _POS_BASE * 3 + _NEG_BASE
        base = _regime(rng, str(rng.choice(pool)))
    base_neg = float((base * NEG).sum())
    gloomy_base = base_neg > 0.3
    w = np.zeros(T)
    new = base
    third = None
    w2 = np.zeros(T)
    s = lay["start"]
    if kind in ("abrupt_pos_neg", "episode", "transient") or (
            kind in ("gradual", "two_changes") and not gloomy_base):
        new = _distinct(rng, _NEG_TARGET, [base], 0.3)
    elif kind == "abrupt_neg_pos" or kind in ("gradual", "two_changes"):
        new = _distinct(rng, _POS_TARGET, [base], 0.3)
    elif kind == "small_shift":
        new = _small_shift(rng, base)
    if kind == "episode" and gloomy_base and rng.random() < 0.4:
        new = _distinct(rng, _POS_TARGET, [base], 0.3)   # a bright spell for a gloomy user
    if kind in ("abrupt_pos_neg", "abrupt_neg_pos", "small_shift"):
        w[s:] = 1.0
    elif kind == "gradual":
        r = lay["ramp"]
        w[s:s + r] = (np.arange(r) + 1) / r
        w[s + r:] = 1.0
    elif kind in ("episode", "transient"):
        w[s:lay["end"]] = 1.0
    elif kind == "two_changes":
        w[s:] = 1.0
        names = _NEG_TARGET + ("calm", "content", "mixed")
        third = _distinct(rng, names, [base, new], 0.25)
        w2[lay["start2"]:] = 1.0
    p_true = (1 - w)[:, None] * base + w[:, None] * new
    if third is not None:
        p_true = (1 - w2)[:, None] * p_true + w2[:, None] * third
    if kind == "transient":
        neg = rng.choice([S, A, F], p=[0.6, 0.3, 0.1])
        p_true[s:lay["end"]] = 0.02
        p_true[s:lay["end"], neg] = 0.88

    # slow wander of the baseline itself, no event
    amp = rng.uniform(0.0, 0.25)
    step = int(rng.integers(60, 250))             # knots of a smooth log-space wander
    knots = np.arange(0, T + step, step)
    kv = rng.normal(0, amp, (knots.size, 7))
    walk = np.stack([np.interp(idx, knots, kv[:, j]) for j in range(7)], 1)
    p_true = p_true * np.exp(walk)
    p_true /= p_true.sum(1, keepdims=True)
    dn = (p_true * NEG).sum(1) - base_neg

    withdraw = rng.uniform(0.0, 1.0)
    gaps, head_of = _sessions(rng, T, dn, rate, withdraw)

    # ---- confounders (same odds in every kind) --------------------------------------------------
    n_conf = rng.poisson(1.2)
    conf = [(str(rng.choice(["phone", "friends", "holiday", "faceless", "serious"],
                            p=[0.3, 0.2, 0.25, 0.15, 0.1])),
             int(rng.integers(10, T - 5))) for _ in range(n_conf)]
    other_share_mult = np.ones(T)
    faceless_mult = np.ones(T)
    other_dist = np.tile(_OTHER, (T, 1))
    pose_smile = np.full(T, rng.uniform(0.5, 0.9))  # of posed faces, share smiling (rest neutral)
    holiday = np.zeros(T, bool)
    for name, at in conf:
        if name == "friends":
            other_share_mult[at:] *= rng.uniform(1.5, 3.0)
            other_dist[at:] = rng.dirichlet(_OTHER * 30 + 0.2)
        elif name == "holiday":
            ln = int(rng.integers(15, 70))
            holiday[at:at + ln] = True
            gaps[at + 1:at + ln] /= rng.uniform(2.0, 8.0)
        elif name == "faceless":
            faceless_mult[at:] *= rng.uniform(1.5, 3.0)
        elif name == "serious":
            pose_smile[at:] = rng.uniform(0.2, 0.45)

    # seasonality (winter gloom for some users)
    day0 = rng.uniform(0, 365)
    doy = (day0 + np.cumsum(gaps) / DAY) % 365.25
    winter = np.cos(2 * np.pi * (doy - 15) / 365.25).clip(0, None)
    sad_amp = rng.uniform(0, 0.12) if rng.random() < 0.5 else 0.0
    shift = np.minimum(winter * sad_amp, p_true[:, H] * 0.5)
    p_true[:, H] -= shift
    p_true[:, S] += shift * 0.6
    p_true[:, N] += shift * 0.4

    # true emotion, persistent within a day
    cum = np.cumsum(p_true, 1)
    true = (rng.random((T, 1)) > cum / cum[:, -1:]).sum(1).clip(0, 6)
    persist = rng.uniform(0.2, 0.6)
    keep = (rng.random(T) < persist) & (gaps < 8 * 3600)
    keep[0] = False
    if kind == "transient":
        keep[s:lay["end"] + 1] = False
    if kind in ("episode", "two_changes", "abrupt_pos_neg", "abrupt_neg_pos", "small_shift",
                "gradual") and s is not None:
        keep[s] = False
    if lay["start2"] is not None:
        keep[lay["start2"]] = False
    src = np.maximum.accumulate(np.where(keep, 0, idx))
    true = true[src]
    if kind == "transient":
        true[s:lay["end"]] = p_true[s, :].argmax()   # a bad day, plainly visible on the face

    # ---- content type per post -------------------------------------------------------------------
    low = np.clip(dn, 0, None) * withdraw
    sh = np.tile(shares, (T, 1))
    sh[:, 0] *= np.exp(-2.0 * low + 1.0 * np.clip(-dn, 0, None) * withdraw)   # glad: more selfies
    sh[:, 5] *= np.exp(2.0 * low) * faceless_mult
    sh[:, 1] *= other_share_mult
    sh[holiday, 1] += 1.0
    sh /= sh.sum(1, keepdims=True)
    c = np.cumsum(sh, 1)
    ctype = (rng.random((T, 1)) > c).sum(1).clip(0, 5)
    # near-duplicate bursts: later posts of a session often repeat the head post's scene
    dup = (head_of != idx) & (rng.random(T) < rng.uniform(0.3, 0.8))
    if kind == "transient":
        dup[s:lay["end"]] = False
    dsrc = np.where(dup, head_of, idx)
    ctype = ctype[dsrc]
    if kind == "transient":
        ctype[s:lay["end"]] = 0                   # the striking post: the owner's own face
    # shared account: a second person posts some sessions (own face = theirs)
    second = np.zeros(T, bool)
    if arch == "shared":
        sp = rng.uniform(0.15, 0.3)
        second = (rng.random(T) < sp)[head_of]
        base2 = _regime(rng, str(rng.choice(_POS_BASE + _NEG_BASE)))
        t2 = rng.choice(7, size=T, p=base2)
        if kind == "small_shift":
            t2 = np.where(w > 0, rng.choice(7, size=T, p=_small_shift(rng, base2)), t2)
        if kind != "transient":
            true = np.where(second, t2, true)

    # ---- expression shown --------------------------------------------------------------------------
    pose = rng.uniform(0.1, 0.5) * np.exp(-3.0 * np.clip(dn, 0, None))
    posed = rng.random(T) < pose
    if kind == "transient":
        posed[s:lay["end"]] = False
    posed_expr = np.where(rng.random(T) < pose_smile, H, N)
    shown = np.where(posed, posed_expr, true)
    oc = np.cumsum(other_dist, 1)
    other_expr = (rng.random((T, 1)) > oc / oc[:, -1:]).sum(1).clip(0, 6)
    hol_expr = np.where(rng.random(T) < 0.8, H, U)
    other_expr = np.where(holiday, hol_expr, other_expr)
    other_expr = np.where(rng.random(T) < 0.3, true, other_expr)    # the mood is in the room
    drawn_expr = np.where(rng.random(T) < (0.6 if arch == "artist" else 0.35), true,
                          rng.choice(7, size=T, p=_DRAWN))
    stock_expr = rng.choice(7, size=T, p=_STOCK)
    shown = np.select([ctype == 0, ctype == 1, ctype == 2, ctype == 3],
                      [shown, other_expr, drawn_expr, stock_expr], default=N)
    shown = np.where(dup, shown[dsrc], shown)

    # ---- classifier --------------------------------------------------------------------------------
    def person() -> np.ndarray:                   # the face: skin tone, glasses, resting face
        b = rng.normal(0, 0.25, 7)
        b[D] -= 0.6
        if rng.random() < 0.3:                    # glasses / heavy brows read as angry-neutral
            b[[A, N]] += rng.uniform(0.2, 0.5)
        return b

    def camera() -> np.ndarray:                   # the phone and the usual light
        b = rng.normal(0, 0.12, 7)
        light = rng.choice(3)                     # 0 fine, 1 dim rooms, 2 harsh light / flash
        if light == 1:
            b[[S, F]] += rng.uniform(0.1, 0.4)
        elif light == 2:
            b[[U, F]] += rng.uniform(0.1, 0.3)
        return b
    owner = person()
    bias, temp = owner + camera(), float(np.exp(rng.normal(0.45, 0.5)))
    biases = np.tile(bias, (T, 1))
    temps = np.full(T, temp)
    for name, at in conf:
        if name == "phone":
            biases[at:] = owner + camera()
            temps[at:] *= float(np.exp(rng.normal(0, 0.25)))
    if arch == "shared":                          # a different face on the same phone
        biases[second] += person() - owner
    sharp = rng.uniform(1.0, 1.7)                 # image quality: how often the CNN gets it right
    cu = _CONF[shown] ** sharp * np.exp(biases)
    cu /= cu.sum(1, keepdims=True)
    perceived = (rng.random((T, 1)) > np.cumsum(cu, 1)).sum(1).clip(0, 6)
    margin = rng.uniform(1.5, 3.0)
    z = margin * np.eye(7)[perceived] + 0.8 * np.log(cu) + rng.normal(0, rng.uniform(0.25, 0.7), (T, 7))
    z = np.where(dup[:, None] & (rng.random((T, 1)) < 0.7), z[dsrc] + rng.normal(0, 0.15, (T, 7)), z)
    probs = _softmax(z / temps[:, None])
    face = ctype != 5
    garbage = ctype == 4
    gz = rng.normal(0, 1.3, (T, 7)) + np.array([0, -1.0, 0.6, -0.3, 0.3, 0.4, 0.5])
    probs[garbage] = _softmax(gz[garbage] / temps[garbage, None])
    if rng.random() < 0.5:
        probs[~face] = 1.0 / 7
    else:
        fz = rng.normal(0, 0.6, (T, 7)) + np.array([-0.2, -1.2, 0.3, -0.4, 0.5, -0.3, 0.8])
        probs[~face] = _softmax(fz[~face] / 1.5)
    probs = probs.astype(np.float32)
    probs /= probs.sum(1, keepdims=True)
    start = lay["start"]
    return Stream(kind=kind, probs=probs, gaps=gaps.astype(np.float64), face=face.astype(bool),
                  start=start, end=lay["end"], start2=lay["start2"], true_emotion=true.astype(int))


def make_streams(seed: int, kind: str, n: int) -> list[Stream]:
    """``n`` streams of one kind; the same seed gives the same streams."""
    rng = np.random.default_rng([seed, KINDS.index(kind), 6])
    return [make_stream(rng, kind) for _ in range(n)]
