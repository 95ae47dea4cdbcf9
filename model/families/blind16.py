"""Stream family ``blind16``: adults of 30 to 75 on a general photo-sharing network.

The world
---------
Each simulated user is an adult between 30 and 75 with a *persona* that decides what they photograph:

* parents, whose feed is mostly family life and their children (others' faces, few selfies);
* hobbyists (gardening, hiking, cooking, crafts, pets), whose photos mostly show no face at all, or a pet;
* travellers, who post scenery, themselves and their companions;
* grandparents and retirees, who share outings, travel and grandchildren.

Temperament and felt emotions
    Every person has a baseline *regime*: a probability vector over the seven felt emotions (angry, disgust,
    fear, happy, sad, surprise, neutral) drawn from a temperament (sunny, calm, mixed, melancholic, anxious,
    irritable).  On top of the regime a daily *valence* modulates the odds of the pleasant against the
    unpleasant emotions: it carries over from day to day (an AR(1)-like process built by convolution on the
    calendar's day grid), follows the seasons (the dark months weigh on some people far more than on others,
    flipped for the southern hemisphere), the working week for people who work (weekends lift, Mondays drag;
    retirees feel no week), holidays and family gatherings (which lift most people and strain a few), a
    yearly summer break, and bad and good days (short shocks).  The felt emotion of each post is drawn from
    the regime tilted by that valence.

Life events (the designed changes)
    Lasting negative events (job loss, divorce, chronic illness, bereavement, caring for a declining parent)
    and lasting positive ones (new job, recovery, new relationship, a retirement that goes well) replace the
    regime at a post index; gradual changes blend the old and new regime linearly over a ramp; episodes (a
    hard month, a hospital stay, a rough patch at work, or for gloomy people sometimes a good spell) replace it
    for a while and then give it back; a transient is a bad day of one to three posts.  The designed regime
    is what the felt emotions (``true_emotion``) follow, exactly from the designed post on.

Posting habits
    Daily posters, regular posters and event-clustered posters (bursts of photos on consecutive days, then
    weeks of silence).  Sessions hold one or several posts minutes apart, at the times of day that fit the
    person's life (workers in the evening and at weekends, retirees by day).  People post less often and show
    their own face less when they feel low.

Photos, faces and the classifier
    Each photo shows the poster (selfie), the poster with others, others only (children, grandchildren,
    friends), a crowd, a scene without a face, or a pet.  An off-the-shelf classifier runs on the largest
    face found: this may be the poster's or someone else's, and others' expressions are unrelated to the
    poster's mood.  The poster's face shows the felt emotion only some of the time: people mask unpleasant
    feelings and smile, or keep a neutral face, for the camera.  The face detector misses faces (small,
    distant, badly lit) and fires on pets and patterns.  The classifier confuses neighbouring expressions
    (angry/disgust, fear/surprise, sad/neutral), has global biases, per-user quality (camera, lighting,
    glasses, older faces reading as sad), per-photo quality, and per-user confidence habits; it outputs a
    probability vector for every photo, including those where no face was found.

Harmless changes
    In any stream (no-change ones included) nuisance changes happen at random posts: a new phone (classifier
    quality and biases shift), new glasses, a new hobby or a new pet (more faceless photos), a change in who
    appears (a grandchild is born, the children grow up and leave), a new posting rhythm, a new photo style
    (smiling more or less for the camera).  None of them touches the felt emotions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

NAME = "blind16"
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
NEG = (0, 1, 2, 4)
NONNEG = (3, 5, 6)
IS_NEG = np.array([True, True, True, False, True, False, False])
_NEG_IDX = np.array(NEG)
_NONNEG_IDX = np.array(NONNEG)

# --------------------------------------------------------------------------------------------- regimes

_NEG_FLAVOURS = {  # weights over (angry, disgust, fear, sad)
    "grief": (0.5, 0.3, 1.0, 6.0),
    "conflict": (4.0, 1.5, 1.0, 3.0),
    "worry": (1.0, 0.5, 4.0, 3.0),
    "exhaustion": (2.0, 1.0, 2.0, 4.0),
    "irritable": (4.0, 3.0, 1.0, 1.5),
    "plain": (1.5, 1.0, 1.5, 3.0),
}
_POS_FLAVOURS = {  # weights over (happy, surprise, neutral)
    "cheerful": (6.0, 1.0, 3.0),
    "calm": (2.0, 0.6, 6.0),
    "lively": (4.0, 2.0, 3.0),
    "flat": (1.0, 0.3, 6.0),
}
_TEMPERAMENTS = {  # name: (probability, negative share range, negative flavours, non-negative flavours)
    "sunny": (0.22, (0.04, 0.20), ("plain", "worry"), ("cheerful", "lively")),
    "calm": (0.25, (0.08, 0.30), ("plain", "exhaustion"), ("calm", "flat")),
    "mixed": (0.20, (0.30, 0.50), ("plain", "worry", "irritable"), ("lively", "calm")),
    "melancholic": (0.12, (0.50, 0.78), ("grief", "plain"), ("flat", "calm")),
    "anxious": (0.11, (0.40, 0.68), ("worry", "exhaustion"), ("calm", "flat")),
    "irritable": (0.10, (0.35, 0.62), ("irritable", "conflict"), ("flat", "lively")),
}
_NEG_EVENTS = (
    ("job loss", ("worry", "conflict"), ("flat", "calm")),
    ("divorce", ("conflict", "grief"), ("flat",)),
    ("chronic illness", ("worry", "exhaustion"), ("flat", "calm")),
    ("bereavement", ("grief",), ("flat", "calm")),
    ("caring for a declining parent", ("exhaustion", "worry"), ("flat", "calm")),
)
_POS_EVENTS = (
    ("new job", ("plain",), ("lively", "cheerful")),
    ("recovery from an illness", ("plain", "worry"), ("calm", "cheerful")),
    ("new relationship", ("plain",), ("cheerful", "lively")),
    ("retirement that goes well", ("plain",), ("calm", "cheerful")),
)
_NEG_EPISODES = (
    ("hard month", ("plain", "exhaustion"), ("flat",)),
    ("hospital stay", ("worry", "exhaustion"), ("flat", "calm")),
    ("rough patch at work", ("irritable", "worry"), ("flat",)),
)
_POS_EPISODES = (
    ("a good spell", ("plain",), ("cheerful", "lively")),
    ("a long visit from family", ("plain",), ("cheerful", "calm")),
)
_BAD_DAYS = (("bad day", ("conflict", "grief", "irritable", "worry"), ("flat",)),)


def _pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def _regime(rng: np.random.Generator, neg_share: float, negf: str, posf: str, conc: float = 14.0) -> np.ndarray:
    a = np.asarray(_NEG_FLAVOURS[negf])
    b = np.asarray(_POS_FLAVOURS[posf])
    neg = np.maximum(rng.dirichlet(a / a.sum() * conc + 0.05), 1e-3)
    pos = np.maximum(rng.dirichlet(b / b.sum() * conc + 0.05), 1e-3)
    p = np.empty(7)
    p[_NEG_IDX] = neg / neg.sum() * neg_share
    p[_NONNEG_IDX] = pos / pos.sum() * (1.0 - neg_share)
    return p


def neg_share(p: np.ndarray) -> float:
    return float(np.asarray(p)[_NEG_IDX].sum())


def _tv(p: np.ndarray, q: np.ndarray) -> float:
    return 0.5 * float(np.abs(np.asarray(p) - np.asarray(q)).sum())


def _baseline(rng: np.random.Generator, allowed=None, lo: float = 0.0, hi: float = 1.0):
    names = [n for n in _TEMPERAMENTS if allowed is None or n in allowed]
    w = np.array([_TEMPERAMENTS[n][0] for n in names])
    name = names[int(rng.choice(len(names), p=w / w.sum()))]
    _, (a, b), negfs, posfs = _TEMPERAMENTS[name]
    share = float(np.clip(rng.uniform(a, b), lo, hi))
    return name, _regime(rng, share, _pick(rng, negfs), _pick(rng, posfs))


def _event_regime(rng, ref: np.ndarray, events, lo: float, hi: float, min_tv: float):
    """A regime for a life event whose negative share lies in [lo, hi] and which differs from ``ref``."""
    lo, hi = max(0.02, lo), min(0.97, hi)
    if hi < lo:
        lo = hi = 0.5 * (lo + hi)
    best, best_tv, best_name = None, -1.0, ""
    for _ in range(60):
        name, negfs, posfs = _pick(rng, events)
        p = _regime(rng, rng.uniform(lo, hi), _pick(rng, negfs), _pick(rng, posfs))
        d = _tv(p, ref)
        if d >= min_tv:
            return name, p
        if d > best_tv:
            best, best_tv, best_name = p, d, name
    return best_name, best


def _shifted(p: np.ndarray, delta: float) -> np.ndarray:
    """Rescale the negative and non-negative parts so that the negative share moves by exactly ``delta``."""
    s = neg_share(p)
    q = p.copy()
    q[_NEG_IDX] *= (s + delta) / s
    q[_NONNEG_IDX] *= (1.0 - s - delta) / (1.0 - s)
    return q / q.sum()


# --------------------------------------------------------------------------------------------- stream


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
    design: dict[str, Any] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.probs)


def _design(rng: np.random.Generator, kind: str):
    """Length, change positions and the per-post designed felt-emotion regime (T, 7)."""
    info: dict[str, Any] = {}
    start = end = start2 = None
    if kind == "none":
        T = int(rng.integers(1500, 3001))
        temp, base = _baseline(rng)
        info.update(temperament=temp, baseline=base, regimes=[base])
        felt = np.broadcast_to(base, (T, 7))
        return T, start, end, start2, felt, info

    # span between the (first) change and the last one
    if kind == "gradual":
        span = int(rng.integers(30, 251))
    elif kind == "transient":
        span = int(rng.integers(1, 4))
    elif kind == "episode":
        span = int(np.exp(rng.uniform(np.log(20), np.log(150))))
    elif kind == "two_changes":
        span = int(rng.integers(100, 401))
    else:
        span = 0
    T = int(rng.integers(max(400, 40 + span + 150), 1501))
    start = int(rng.integers(40, min(700, T - 150 - span) + 1))

    if kind == "abrupt_pos_neg":
        temp, base = _baseline(rng, ("sunny", "calm", "mixed"), hi=0.35)
    elif kind == "abrupt_neg_pos":
        temp, base = _baseline(rng, ("melancholic", "anxious", "irritable", "mixed"), lo=0.45)
    else:
        temp, base = _baseline(rng)
    b = neg_share(base)
    info.update(temperament=temp, baseline=base)
    felt = np.empty((T, 7))
    felt[:] = base

    if kind == "placebo":
        info["regimes"] = [base]
    elif kind == "abrupt_pos_neg":
        ev, new = _event_regime(rng, base, _NEG_EVENTS, max(0.5, b + 0.3), 0.92, 0.3)
        felt[start:] = new
        info.update(event=ev, regimes=[base, new])
    elif kind == "abrupt_neg_pos":
        ev, new = _event_regime(rng, base, _POS_EVENTS, 0.03, min(0.3, b - 0.3), 0.3)
        felt[start:] = new
        info.update(event=ev, regimes=[base, new])
    elif kind == "gradual":
        worse = b < 0.35 or (b <= 0.55 and rng.random() < 0.5)
        if worse:
            ev, new = _event_regime(rng, base, _NEG_EVENTS, b + 0.3, min(0.95, b + 0.6), 0.3)
        else:
            ev, new = _event_regime(rng, base, _POS_EVENTS, max(0.03, b - 0.6), b - 0.3, 0.3)
        w = np.clip((np.arange(T) - start + 1) / span, 0.0, 1.0)[:, None]
        felt = (1.0 - w) * base + w * new
        info.update(event=ev, regimes=[base, new], ramp=span)
    elif kind == "small_shift":
        d = rng.uniform(0.1, 0.3)
        up_ok, down_ok = b + d <= 0.92, b - d >= 0.03
        sign = 1.0 if (up_ok and (not down_ok or rng.random() < 0.5)) else -1.0
        new = _shifted(base, sign * d)
        felt[start:] = new
        info.update(event="small shift", regimes=[base, new], delta=sign * d)
    elif kind == "transient":
        ev, new = _event_regime(rng, base, _BAD_DAYS, max(0.8, b), 0.98, 0.35)
        end = start + span
        felt[start:end] = new
        info.update(event=ev, regimes=[base, new])
    elif kind == "episode":
        if b <= 0.55 or rng.random() < 0.5:
            ev, new = _event_regime(rng, base, _NEG_EPISODES, min(b + 0.3, 0.9), 0.95, 0.3)
        else:
            ev, new = _event_regime(rng, base, _POS_EPISODES, 0.03, b - 0.3, 0.3)
        end = start + span
        felt[start:end] = new
        info.update(event=ev, regimes=[base, new])
    elif kind == "two_changes":
        start2 = start + span
        worse = b < 0.4 or (b <= 0.55 and rng.random() < 0.5)
        if worse:
            ev1, r1 = _event_regime(rng, base, _NEG_EVENTS, b + 0.3, min(0.95, b + 0.6), 0.3)
        else:
            ev1, r1 = _event_regime(rng, base, _POS_EVENTS, max(0.03, b - 0.6), b - 0.3, 0.3)
        b1 = neg_share(r1)
        further = rng.random() < 0.25
        if (worse != further and b1 - 0.3 >= 0.03) or b1 + 0.3 > 0.95:  # second change brightens
            ev2, r2 = _event_regime(rng, r1, _POS_EVENTS, max(0.03, b1 - 0.6), b1 - 0.3, 0.3)
        else:
            ev2, r2 = _event_regime(rng, r1, _NEG_EVENTS, b1 + 0.3, min(0.95, b1 + 0.6), 0.3)
        felt[start:start2] = r1
        felt[start2:] = r2
        info.update(event=ev1, event2=ev2, regimes=[base, r1, r2])
    else:  # pragma: no cover - guarded by make_streams
        raise ValueError(kind)
    return T, start, end, start2, felt, info


# --------------------------------------------------------------------------------------------- people

_CONTENT = ("selfie", "with_others", "others", "crowd", "scene", "pet")
_PERSONA_CONTENT = {
    "parent": (0.08, 0.17, 0.40, 0.05, 0.25, 0.05),
    "hobbyist": (0.07, 0.06, 0.08, 0.04, 0.65, 0.10),
    "traveller": (0.13, 0.17, 0.12, 0.10, 0.46, 0.02),
    "grandparent": (0.07, 0.18, 0.38, 0.05, 0.27, 0.05),
}
_OTHERS_EXPR = np.array([0.04, 0.02, 0.03, 0.55, 0.07, 0.09, 0.20])  # children, friends
_CROWD_EXPR = np.array([0.03, 0.02, 0.02, 0.40, 0.04, 0.06, 0.43])
# the classifier's evidence (logits) for each displayed expression: confusions between neighbours
_EVIDENCE = np.array(
    [
        [3.0, 1.2, 0.3, -0.5, 0.6, 0.2, 0.8],
        [1.4, 2.6, 0.4, -0.3, 0.7, 0.1, 0.5],
        [0.4, 0.4, 2.6, -0.4, 1.0, 1.5, 0.3],
        [-0.5, 0.1, -0.3, 3.4, -0.6, 0.5, 0.4],
        [0.5, 0.6, 0.9, -0.5, 2.6, 0.0, 1.4],
        [0.1, 0.0, 1.3, 0.6, -0.2, 3.0, 0.2],
        [0.4, 0.1, 0.2, 0.2, 1.0, 0.1, 2.8],
    ]
)
_GLOBAL_BIAS = np.array([0.0, -0.8, -0.2, 0.3, 0.2, -0.3, 0.5])
_GARBAGE_BIAS = np.array([0.1, -0.6, 0.3, 0.4, 0.7, -0.2, 1.3])
_VALENCE_W = np.array([-0.7, -0.5, -0.6, 1.0, -0.9, 0.2, 0.0])


def _person(rng: np.random.Generator) -> dict[str, Any]:
    u = rng.random
    age = rng.uniform(30, 75)
    if age < 50:
        personas, pw = ("parent", "hobbyist", "traveller"), (0.55, 0.33, 0.12)
    elif age < 62:
        personas, pw = ("parent", "hobbyist", "traveller", "grandparent"), (0.25, 0.4, 0.2, 0.15)
    else:
        personas, pw = ("grandparent", "hobbyist", "traveller"), (0.45, 0.3, 0.25)
    persona = personas[int(rng.choice(len(personas), p=np.array(pw)))]
    retired = age >= 60 and u() < min(1.0, (age - 58) / 9)
    content = rng.dirichlet(np.asarray(_PERSONA_CONTENT[persona]) * 25 + 0.2)
    if u() < 0.3:  # pet owner
        content[5] += 0.15
    content /= content.sum()

    style = _pick(rng, ("daily", "regular", "regular", "clustered", "clustered"))
    if style == "daily":
        post = dict(p_burst=0.0, gap_med=rng.uniform(1.0, 1.6), gap_sig=0.35, size=rng.uniform(1.0, 1.8), pb=0.6)
    elif style == "regular":
        post = dict(p_burst=rng.uniform(0, 0.2), gap_med=rng.uniform(1.5, 5), gap_sig=rng.uniform(0.4, 0.8),
                    size=rng.uniform(1.3, 3.0), pb=rng.uniform(0.5, 0.8))
    else:
        post = dict(p_burst=rng.uniform(0.4, 0.75), gap_med=rng.uniform(7, 25), gap_sig=rng.uniform(0.5, 1.0),
                    size=rng.uniform(3.0, 8.0), pb=rng.uniform(0.4, 0.8))
    post["max_days"] = rng.uniform(3.0, 12.0) * 365.25  # an account this long is an active one
    if retired:
        hours = (rng.uniform(8, 11), rng.uniform(13, 17), rng.uniform(0.3, 0.7))
    else:
        hours = (rng.uniform(6.5, 8.5), rng.uniform(18, 22.5), rng.uniform(0.1, 0.35))
    age_f = (age - 30) / 45
    poster_bias = rng.normal(0, 0.25, 7)  # resting face
    poster_bias += age_f * np.array([0.0, 0.3, 0.0, -0.2, 0.5, -0.1, 0.2])  # older faces read sadder
    if u() < 0.25 + 0.35 * age_f:  # glasses
        poster_bias += np.array([0.3, 0.1, 0.2, -0.1, 0.1, 0.0, 0.0])
    rho = rng.uniform(0.25, 0.85)
    return dict(
        age=age,
        persona=persona,
        retired=retired,
        style=style,
        content=content,
        post=post,
        hours=hours,
        hour_sd=rng.uniform(0.8, 2.0),
        within_med=rng.uniform(60, 1200),
        weekend_shift=0.0 if retired else rng.uniform(0, 0.35),
        low_post=rng.uniform(0.0, 1.5),  # how much less they post when low
        low_selfie=rng.uniform(0.3, 1.0),  # selfie odds multiplier when feeling negative
        # mood
        phi=rng.uniform(0.5, 0.93),
        mood_sd=rng.uniform(0.2, 0.6),
        season=rng.uniform(0, 0.4) if u() > 0.15 else rng.uniform(0.4, 0.8),
        south=u() < 0.12,
        week=0.0 if retired else rng.uniform(0, 0.35),
        holiday=rng.normal(0.3, 0.3),
        vacation=(rng.uniform(170, 225), rng.uniform(8, 20), rng.uniform(0, 0.5)),
        bad_rate=rng.uniform(0.01, 0.05),
        good_rate=rng.uniform(0.005, 0.03),
        reactivity=rng.uniform(0.4, 1.0),
        post_sd=rng.uniform(0.1, 0.4),
        # display
        rho=rho,
        rho_happy=max(rho, rng.uniform(0.6, 0.95)),
        mask=rng.uniform(0.3, 1.0),
        smile=rng.uniform(0.2, 0.85),
        expressive=rng.uniform(0.5, 1.2),
        others_expr=rng.dirichlet(_OTHERS_EXPR * 40 + 0.1),
        crowd_expr=rng.dirichlet(_CROWD_EXPR * 40 + 0.1),
        # camera / detector / classifier
        p_det=rng.uniform(0.7, 0.97) * (1.0 - 0.1 * age_f),
        p_fp=rng.uniform(0.01, 0.06),
        p_fp_pet=rng.uniform(0.08, 0.35),
        strength=rng.uniform(0.45, 1.1) * (1.0 - 0.25 * age_f),
        noise=rng.uniform(0.5, 1.0),
        conf=np.exp(rng.normal(0.1, 0.3)),
        cam_bias=rng.normal(0, 0.2, 7),
        poster_bias=poster_bias,
        garbage_bias=_GARBAGE_BIAS + rng.normal(0, 0.35, 7),
        garbage_noise=rng.uniform(0.4, 1.0),
    )


def _nuisance(rng: np.random.Generator, P: dict, T: int) -> dict[str, Any]:
    """Harmless changes at random posts: per-post multipliers and shifts (none of them touches the mood)."""
    n = min(int(rng.poisson(T / 900.0)), 5)
    idx = np.arange(T)
    out = dict(
        cam_s=np.ones(T), cam_bias=np.zeros((T, 7)), det=np.ones(T), poster_bias=np.zeros((T, 7)),
        content=np.ones((T, 6)), rate=np.ones(T), smile=np.zeros(T), events=[],
    )
    for _ in range(n):
        u = int(rng.integers(1, T))
        m = idx >= u
        what = _pick(rng, ("new phone", "new glasses", "new hobby", "new pet", "grandchild born",
                           "children grew up", "posting rhythm", "photo style"))
        if what == "new phone":
            out["cam_s"][m] *= np.exp(rng.normal(0, 0.3))
            out["cam_bias"][m] += rng.normal(0, 0.25, 7)
            out["det"][m] *= rng.uniform(0.9, 1.08)
        elif what == "new glasses":
            out["poster_bias"][m] += rng.normal(0, 0.2, 7) + np.array([0.25, 0.05, 0.15, -0.1, 0.05, 0, 0])
        elif what == "new hobby":
            out["content"][m, 4] *= rng.uniform(1.5, 3.0)
        elif what == "new pet":
            out["content"][m, 5] *= rng.uniform(3.0, 8.0)
        elif what == "grandchild born":
            out["content"][m, 2] *= rng.uniform(1.5, 3.0)
            out["content"][m, 1] *= rng.uniform(1.2, 2.0)
        elif what == "children grew up":
            out["content"][m, 2] *= rng.uniform(0.25, 0.6)
        elif what == "posting rhythm":
            out["rate"][m] *= np.exp(rng.uniform(-0.9, 0.9))
        else:
            out["smile"][m] += rng.uniform(-0.3, 0.3)
        out["events"].append((u, what))
    return out


# --------------------------------------------------------------------------------------------- generation


def _timeline(rng: np.random.Generator, P: dict, T: int, low: np.ndarray, rate: np.ndarray):
    """Post times (seconds since the first day's midnight), sorted; ``low`` is the designed negativity
    excess per post (people post less when low), ``rate`` the harmless posting-rate multiplier."""
    pp = P["post"]
    n = int(T / pp["size"] * 1.3) + 16
    while True:
        sizes = rng.geometric(1.0 / pp["size"], n)
        cs = np.cumsum(sizes)
        if cs[-1] >= T:
            break
        n *= 2
    k = int(np.searchsorted(cs, T))
    sizes = sizes[: k + 1].copy()
    sizes[-1] -= cs[k] - T
    S = k + 1
    first = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    burst = rng.random(S) < pp["p_burst"]
    long_gap = np.maximum(1.0, np.round(np.exp(np.log(pp["gap_med"]) + pp["gap_sig"] * rng.standard_normal(S))))
    short_gap = rng.geometric(pp["pb"], S) - 1.0
    gap = np.where(burst, short_gap, long_gap)
    gap *= np.exp(P["low_post"] * low[first]) / rate[first]
    gap[0] = 0.0
    cum = np.cumsum(gap)
    if cum[-1] > pp["max_days"]:  # the same rhythm, faster
        cum *= pp["max_days"] / cum[-1]
    day = np.floor(cum + rng.random()).astype(np.int64)
    day0 = int(rng.integers(15706, 18779))  # 2013-01-01 .. 2021-06-01, days since 1970-01-01
    dow = (day + day0 + 3) % 7  # Monday = 0
    if P["weekend_shift"] > 0:
        move = (dow < 5) & (rng.random(S) < P["weekend_shift"])
        day = day + np.where(move, 5 - dow, 0)
    h1, h2, w1 = P["hours"]
    hour = np.where(rng.random(S) < w1, h1, h2) + P["hour_sd"] * rng.standard_normal(S)
    hour = np.clip(hour, 5.5, 23.9)
    sess_sec = day * 86400.0 + hour * 3600.0
    off = np.exp(np.log(P["within_med"]) + rng.standard_normal(T))
    off[first] = 0.0
    coff = np.cumsum(off)
    sess = np.repeat(np.arange(S), sizes)
    times = np.sort(sess_sec[sess] + coff - coff[first][sess])
    return times, day0


def _valence(rng: np.random.Generator, P: dict, times: np.ndarray, day0: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-post valence (mood) and a per-post holiday flag."""
    pday = (times // 86400).astype(np.int64)
    D = int(pday[-1]) + 1
    phi = P["phi"]
    K = int(min(200, np.ceil(np.log(0.01) / np.log(phi)) + 1))
    kern = np.sqrt(1 - phi * phi) * phi ** np.arange(K)
    ar = np.convolve(rng.standard_normal(D + K - 1), kern, mode="valid")[:D] * P["mood_sd"]
    absd = np.arange(D) + day0
    dates = absd.astype("datetime64[D]")
    doy = (dates - dates.astype("datetime64[Y]")).astype(np.int64)
    dow = (absd + 3) % 7
    season = -P["season"] * np.cos(2 * np.pi * (doy - 20) / 365.25)
    if P["south"]:
        season = -season
    week = P["week"] * ((dow >= 5) * 1.0 + (dow == 4) * 0.4 - (dow == 0) * 0.6)
    holiday = (doy >= 354) | (doy <= 1) | ((doy >= 326) & (doy <= 331))
    vs, vl, vr = P["vacation"]
    vacation = (doy >= vs) & (doy < vs + vl)
    shocks = np.where(rng.random(D) < P["bad_rate"], -rng.uniform(1.0, 2.5, D), 0.0)
    shocks += np.where(rng.random(D) < P["good_rate"], rng.uniform(0.5, 1.5, D), 0.0)
    shocks = np.convolve(shocks, (1.0, 0.5, 0.25))[:D]
    v_day = ar + season + week + P["holiday"] * holiday + vr * vacation + shocks
    hour = (times % 86400) / 3600
    v = v_day[pday] + P["post_sd"] * rng.standard_normal(len(times)) - 0.2 * ((hour < 4) | (hour >= 23.5))
    return v, (holiday | vacation)[pday]


def _categorical(rng: np.random.Generator, w: np.ndarray) -> np.ndarray:
    cum = np.cumsum(w, axis=1)
    u = rng.random(len(w)) * cum[:, -1]
    return np.minimum((cum < u[:, None]).sum(axis=1), w.shape[1] - 1)


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=1, keepdims=True)


def make_stream(rng: np.random.Generator, kind: str) -> Stream:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    T, start, end, start2, felt_design, info = _design(rng, kind)
    P = _person(rng)
    N = _nuisance(rng, P, T)
    base_neg = neg_share(info["baseline"])
    low = felt_design[:, _NEG_IDX].sum(axis=1) - base_neg

    # when: timeline and calendar mood
    times, day0 = _timeline(rng, P, T, low, N["rate"])
    gaps = np.empty(T)
    gaps[0] = 0.0
    gaps[1:] = np.diff(times)
    v, holiday = _valence(rng, P, times, day0)

    # what the person felt
    logits = np.log(felt_design) + (P["reactivity"] * v)[:, None] * _VALENCE_W
    true_emotion = _categorical(rng, _softmax(logits))
    felt_neg = IS_NEG[true_emotion]

    # what the photo shows
    cw = np.broadcast_to(P["content"], (T, 6)) * N["content"]
    cw = cw * np.where(holiday[:, None], (1.0, 1.5, 1.8, 1.6, 1.0, 1.0), 1.0)
    cw[:, 0] *= np.where(felt_neg, P["low_selfie"], 1.0)
    cw[:, 1] *= np.where(felt_neg, 0.5 * (1.0 + P["low_selfie"]), 1.0)
    content = _categorical(rng, cw)
    r = rng.random((T, 4))
    poster = (content == 0) | ((content == 1) & (r[:, 0] < 0.45))
    has_face = content <= 3
    p_det = P["p_det"] * N["det"] * np.where(content == 3, 0.7, 1.0)
    p_fp = np.where(content == 5, P["p_fp_pet"], P["p_fp"])
    face = np.where(has_face, r[:, 1] < p_det, r[:, 1] < p_fp)
    real = has_face & face

    # displayed expression of the largest face
    rho = np.where(IS_NEG, P["rho"] * P["mask"], P["rho"])
    rho[3] = P["rho_happy"]
    show = r[:, 2] < rho[true_emotion]
    smile = np.clip(P["smile"] + N["smile"], 0.05, 0.95)
    posed = np.where(r[:, 3] < smile, 3, 6)
    disp_poster = np.where(show, true_emotion, posed)
    others = _categorical(rng, np.where((content == 3)[:, None], P["crowd_expr"], P["others_expr"]))
    disp = np.where(poster, disp_poster, others)
    intensity = np.where(poster, P["expressive"], 1.1) * rng.uniform(0.55, 1.25, T)
    intensity = np.where(poster & ~show, 0.8 * intensity, intensity)

    # the classifier
    quality = np.exp(0.35 * rng.standard_normal(T))
    amp = P["strength"] * N["cam_s"] * quality * intensity
    signal = amp[:, None] * _EVIDENCE[disp]
    noise = rng.standard_normal((T, 7))
    face_logits = (signal + _GLOBAL_BIAS + P["cam_bias"] + N["cam_bias"]
                   + poster[:, None] * (P["poster_bias"] + N["poster_bias"]) + P["noise"] * noise)
    garbage = P["garbage_bias"] + N["cam_bias"] + P["garbage_noise"] * noise
    garbage = garbage + np.where(has_face, 0.25, 0.0)[:, None] * signal
    out = np.where(real[:, None], face_logits, garbage)
    probs = _softmax(P["conf"] * out).astype(np.float32)
    probs /= probs.sum(axis=1, keepdims=True, dtype=np.float32)

    info.update(persona=P["persona"], age=P["age"], harmless=N["events"], posting=P["style"],
                poster_face=poster & real, shown=disp)
    return Stream(
        kind=kind,
        probs=probs,
        gaps=gaps,
        face=face.astype(bool),
        start=start,
        end=end,
        start2=start2,
        true_emotion=true_emotion.astype(np.int64),
        design=info,
    )


def make_streams(seed: int, kind: str, n: int) -> list[Stream]:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    rng = np.random.default_rng([int(seed), KINDS.index(kind), 16])
    return [make_stream(rng, kind) for _ in range(int(n))]
