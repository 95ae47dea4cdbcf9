"""Blind-11: an independent simulator of social-media users' emotion timelines.

Each stream is one user. The user has a personal *mood pattern*: a distribution over the seven
FER-2013 emotions built from a negative share, a split of the negative share between angry / disgust /
fear / sad (sad-leaning, irritable, anxious or mixed temperaments), a happy-vs-neutral balance of the
rest and a little surprise. Users come from cheerful, content, flat, mixed and gloomy archetypes with
jitter inside each. What the user feels in a given post is drawn from the pattern tilted by a latent
mood deviation that persists over hours to days (an autoregressive log-tilt whose memory decays with
the time elapsed between posts) and, inside a posting session, the user often simply repeats the
emotion of the previous post. Change kinds alter the pattern itself (abruptly, along a ramp, for a few
posts, for an episode, or twice); the transient dip does not carry its mood into later posts.

Posting times follow a thinned Poisson process of sessions with a personal sleep window, an evening
peak, a weekday/weekend factor and rare long absences (days to months, heavy tailed); sessions hold a
geometric number of posts minutes apart, and occasionally a burst "photo dump" seconds apart. Some users
post more (rumination, often at night) or less (withdrawal) when their pattern is more negative. Many
users go through a benign life change somewhere in the stream (new phone, new friends, new hobby, new
job) that shifts content, photo quality or posting rate but not their mood.

Posts are selfies, photos of other people, faceless content (food, scenery, pets, screenshots) or memes
with stock faces. The face detector misses some faces and hallucinates a few. When a face is read the
emotion classifier sees an *expression*: the user's own for selfies (some users smile through negative
moods), mostly cheerful group expressions for photos of others, exaggerated ones for memes. The
classifier has a user-specific confusion matrix (accuracy roughly 50-75 %, FER-typical confusions,
neutral bias, worse on poor photos) and a user-specific confidence shape (sharp or flat softmax); its
output is sampled with the Gumbel-max trick so the arg-max follows the confusion row. Without a face
the pipeline still emits a low-confidence, mostly content-driven distribution with a faint trace of
the user's mood. Some users also post fewer selfies when they feel bad.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np

LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
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

_NEG = np.array([0, 1, 2, 4])
_NEG_MASK = np.zeros(7, dtype=bool)
_NEG_MASK[_NEG] = True
_HAPPY, _SURPRISE, _NEUTRAL = 3, 5, 6

# archetype -> (negative share range, happy fraction of the non-negative, non-surprise rest)
_ARCHETYPES = {
    "cheerful": ((0.04, 0.18), (0.60, 0.85)),
    "content": ((0.10, 0.30), (0.40, 0.65)),
    "flat": ((0.06, 0.28), (0.08, 0.30)),
    "mixed": ((0.30, 0.48), (0.30, 0.60)),
    "gloomy": ((0.55, 0.80), (0.10, 0.50)),
}
# Dirichlet shapes for the split of negative emotions (angry, disgust, fear, sad)
_NEG_STYLES = (
    (0.6, 0.3, 0.6, 2.5),  # sad-leaning
    (2.5, 1.2, 0.5, 1.0),  # irritable
    (0.6, 0.4, 2.5, 1.2),  # anxious
    (1.0, 0.8, 1.0, 1.2),  # mixed
)
# expressions in photos of other people and in memes
_SOCIAL = np.array([0.02, 0.01, 0.01, 0.58, 0.03, 0.10, 0.25])
_MEME = np.array([0.15, 0.15, 0.06, 0.28, 0.07, 0.24, 0.05])

# FER-typical off-diagonal confusion weights [true, predicted]
_CONFUSE = np.ones((7, 7))
for _a, _b, _w in (
    (0, 1, 3.0), (0, 4, 2.0), (0, 6, 2.0), (1, 0, 5.0), (1, 4, 1.5), (2, 5, 4.0), (2, 4, 3.5),
    (2, 0, 1.5), (3, 6, 3.0), (3, 5, 1.2), (4, 6, 4.0), (4, 2, 2.0), (4, 0, 1.2), (5, 2, 2.5),
    (5, 3, 2.0), (5, 6, 1.5), (6, 4, 3.0), (6, 3, 1.5), (6, 0, 1.2),
):
    _CONFUSE[_a, _b] = _w
np.fill_diagonal(_CONFUSE, 0.0)
# how much easier/harder each true class is than the user's average
_CLASS_ACC = np.array([-0.05, -0.17, -0.15, 0.17, -0.04, 0.06, 0.05])


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


# --------------------------------------------------------------------------------------------------
# mood patterns


@dataclass
class _Mood:
    neg: float
    happy_w: float
    surprise: float
    mix: np.ndarray  # split of negative share over (angry, disgust, fear, sad)

    def pattern(self) -> np.ndarray:
        p = np.zeros(7)
        p[_NEG] = self.neg * self.mix
        rest = 1.0 - self.neg
        s = min(self.surprise, 0.3 * rest)
        p[_SURPRISE] = s
        p[_HAPPY] = (rest - s) * self.happy_w
        p[_NEUTRAL] = rest - s - p[_HAPPY]
        p = np.maximum(p, 0.0) + 2e-3
        return p / p.sum()

    def with_(self, **kw) -> _Mood:
        d = {"neg": self.neg, "happy_w": self.happy_w, "surprise": self.surprise, "mix": self.mix}
        d.update(kw)
        return _Mood(**d)


def _neg_mix(rng: np.random.Generator, style: int | None = None) -> np.ndarray:
    if style is None:
        style = int(rng.integers(len(_NEG_STYLES)))
    return rng.dirichlet(np.array(_NEG_STYLES[style]) * rng.uniform(2.0, 6.0))


def _draw_mood(rng: np.random.Generator, archetypes: tuple[str, ...]) -> _Mood:
    arch = archetypes[int(rng.integers(len(archetypes)))]
    (nlo, nhi), (hlo, hhi) = _ARCHETYPES[arch]
    return _Mood(
        neg=float(rng.uniform(nlo, nhi)),
        happy_w=float(rng.uniform(hlo, hhi)),
        surprise=float(rng.uniform(0.02, 0.10)),
        mix=_neg_mix(rng),
    )


def _shift(rng: np.random.Generator, x: float, lo: float, hi: float, floor: float = 0.03,
           ceil: float = 0.9) -> float:
    """Move x by a magnitude in [lo, hi] in a feasible direction, staying in [floor, ceil]."""
    dirs = []
    if x + lo <= ceil:
        dirs.append(1.0)
    if x - lo >= floor:
        dirs.append(-1.0)
    if not dirs:  # cannot happen for the ranges used, but stay safe
        return ceil if x < 0.5 else floor
    d = dirs[int(rng.integers(len(dirs)))]
    room = (ceil - x) if d > 0 else (x - floor)
    return x + d * float(rng.uniform(lo, min(hi, room)))


def _share_neg(p: np.ndarray) -> np.ndarray:
    return p[..., _NEG].sum(-1)


# --------------------------------------------------------------------------------------------------
# change schedules


def _pre(rng: np.random.Generator) -> int:
    return int(round(math.exp(rng.uniform(math.log(40.0), math.log(320.0)))))


def _post(rng: np.random.Generator, lo: int = 150, hi: int = 650) -> int:
    return int(rng.integers(lo, hi + 1))


def _schedule(rng: np.random.Generator, kind: str):
    """Return (T, start, end, start2, P (T,7) pattern per post, dip mask)."""
    allu = tuple(_ARCHETYPES)
    start = end = start2 = None
    if kind == "none":
        T = int(rng.integers(1500, 3001))
        m0 = _draw_mood(rng, allu)
        P = np.tile(m0.pattern(), (T, 1))
        return T, start, end, start2, P, np.zeros(T, bool)

    pre = _pre(rng)
    start = pre
    if kind == "placebo":
        T = pre + _post(rng)
        P = np.tile(_draw_mood(rng, allu).pattern(), (T, 1))
        return T, start, end, start2, P, np.zeros(T, bool)

    if kind == "abrupt_pos_neg":
        m0 = _draw_mood(rng, ("cheerful", "content", "flat", "mixed"))
        new_mix = m0.mix if rng.random() < 0.5 else _neg_mix(rng)
        m1 = m0.with_(neg=float(rng.uniform(max(0.55, m0.neg + 0.3), 0.9)),
                      happy_w=m0.happy_w * float(rng.uniform(0.3, 1.0)), mix=new_mix)
        T = pre + _post(rng)
        P = np.vstack([np.tile(m0.pattern(), (pre, 1)), np.tile(m1.pattern(), (T - pre, 1))])
        return T, start, end, start2, P, np.zeros(T, bool)

    if kind == "abrupt_neg_pos":
        m0 = _draw_mood(rng, ("gloomy",))
        m0 = m0.with_(neg=max(m0.neg, float(rng.uniform(0.55, 0.8))))
        hw = float(rng.uniform(0.5, 0.85)) if rng.random() < 0.6 else float(rng.uniform(0.1, 0.35))
        m1 = m0.with_(neg=float(rng.uniform(0.04, 0.25)), happy_w=hw)
        T = pre + _post(rng)
        P = np.vstack([np.tile(m0.pattern(), (pre, 1)), np.tile(m1.pattern(), (T - pre, 1))])
        return T, start, end, start2, P, np.zeros(T, bool)

    if kind == "gradual":
        mode = rng.choice(3, p=[0.65, 0.2, 0.15])
        if mode == 0:  # how much negative
            m0 = _draw_mood(rng, allu)
            m1 = m0.with_(neg=_shift(rng, m0.neg, 0.25, 0.5))
            if m1.neg > m0.neg:
                m1 = m1.with_(happy_w=m0.happy_w * float(rng.uniform(0.4, 1.0)))
        elif mode == 1:  # which negative
            m0 = _draw_mood(rng, ("mixed", "gloomy"))
            m0 = m0.with_(neg=max(m0.neg, 0.35))
            old = int(np.argmax(m0.mix))
            other = [k for k in range(4) if k != old]
            target = other[int(rng.integers(3))]
            conc = np.full(4, 0.4)
            conc[target] = 4.0
            mix1 = rng.dirichlet(conc * 3.0)
            if mix1[target] < 0.55:
                mix1 = 0.5 * mix1 + 0.5 * np.eye(4)[target]
            m1 = m0.with_(mix=mix1, neg=float(np.clip(m0.neg + rng.uniform(-0.05, 0.05), 0.3, 0.85)))
        else:  # flattening of happiness or its return
            if rng.random() < 0.6:
                m0 = _draw_mood(rng, ("cheerful",))
                m1 = m0.with_(happy_w=float(rng.uniform(0.03, 0.2)))
            else:
                m0 = _draw_mood(rng, ("flat",))
                m1 = m0.with_(happy_w=float(rng.uniform(0.7, 0.9)))
        R = int(rng.integers(20, 91))
        T = pre + R + _post(rng)
        x = np.clip((np.arange(T) - pre + 0.5) / R, 0.0, 1.0)
        shape = int(rng.integers(3))
        if shape == 1:
            x = x * x * (3.0 - 2.0 * x)
        elif shape == 2:
            x = x ** float(rng.uniform(0.4, 2.5))
        P = (1.0 - x)[:, None] * m0.pattern() + x[:, None] * m1.pattern()
        return T, start, end, start2, P, np.zeros(T, bool)

    if kind == "small_shift":
        m0 = _draw_mood(rng, allu)
        m1 = m0.with_(neg=_shift(rng, m0.neg, 0.12, 0.3, floor=0.02, ceil=0.92))
        T = pre + _post(rng)
        P = np.vstack([np.tile(m0.pattern(), (pre, 1)), np.tile(m1.pattern(), (T - pre, 1))])
        return T, start, end, start2, P, np.zeros(T, bool)

    if kind == "transient":
        m0 = _draw_mood(rng, allu)
        L = int(rng.integers(1, 4))
        end = pre + L
        T = end + _post(rng)
        if m0.neg < 0.45:
            dip_e = int(_NEG[int(rng.choice(4, p=0.5 * m0.mix + 0.125))])
        else:
            dip_e = _HAPPY if rng.random() < 0.8 else _SURPRISE
        dip = np.full(7, 0.08 / 6)
        dip[dip_e] = 0.92
        P = np.tile(m0.pattern(), (T, 1))
        P[pre:end] = dip
        mask = np.zeros(T, bool)
        mask[pre:end] = True
        return T, start, end, start2, P, mask

    if kind == "episode":
        m0 = _draw_mood(rng, allu)
        if m0.neg < 0.45:
            style = int(rng.choice(4, p=[0.45, 0.15, 0.3, 0.1]))
            me = m0.with_(neg=float(rng.uniform(0.6, 0.92)), mix=_neg_mix(rng, style),
                          happy_w=m0.happy_w * float(rng.uniform(0.2, 0.8)))
        else:
            me = m0.with_(neg=float(rng.uniform(0.03, 0.2)), happy_w=float(rng.uniform(0.5, 0.9)))
        L = int(rng.integers(10, 61))
        end = pre + L
        T = end + _post(rng, 200, 800)
        P = np.tile(m0.pattern(), (T, 1))
        P[pre:end] = me.pattern()
        return T, start, end, start2, P, np.zeros(T, bool)

    if kind == "two_changes":
        a = _draw_mood(rng, allu)
        b = a.with_(neg=_shift(rng, a.neg, 0.25, 0.5))
        if rng.random() < 0.5:
            b = b.with_(mix=_neg_mix(rng))
        if rng.random() < 0.4:
            c = a
        else:
            c = b.with_(neg=_shift(rng, b.neg, 0.22, 0.5))
            if abs(c.neg - a.neg) < 0.1:
                c = c.with_(happy_w=float(np.clip(1.0 - a.happy_w + rng.uniform(-0.1, 0.1), 0.05, 0.95)))
        start2 = pre + int(rng.integers(100, 301))
        T = start2 + _post(rng)
        P = np.vstack([np.tile(a.pattern(), (pre, 1)), np.tile(b.pattern(), (start2 - pre, 1)),
                       np.tile(c.pattern(), (T - start2, 1))])
        return T, start, end, start2, P, np.zeros(T, bool)

    raise ValueError(f"unknown kind {kind!r}")


# --------------------------------------------------------------------------------------------------
# the user: posting rhythm, mood dynamics, content, camera and classifier


def _draw_user(rng: np.random.Generator) -> dict:
    u = {}
    # rhythm
    u["r0"] = math.exp(rng.uniform(math.log(0.15), math.log(5.0)))  # sessions per day
    u["t0"] = float(rng.uniform(0, 7 * 86400.0))
    u["wake"] = float(rng.uniform(5.5, 10.5))
    u["sleep"] = u["wake"] + float(rng.uniform(14.5, 18.5))
    u["night"] = float(rng.uniform(0.02, 0.15))
    u["evening"] = float(rng.uniform(1.0, 2.2))
    u["weekend"] = math.exp(rng.uniform(math.log(0.6), math.log(1.8)))
    u["mu"] = math.exp(rng.uniform(math.log(0.2), math.log(2.5)))  # extra posts per session
    u["dump_p"] = float(rng.uniform(0.0, 0.05))
    u["within"] = math.exp(rng.uniform(math.log(20.0), math.log(1200.0)))
    u["absence_p"] = math.exp(rng.uniform(math.log(0.001), math.log(0.02)))
    u["gamma"] = 0.0 if rng.random() < 0.5 else float(rng.uniform(-2.5, 2.5))
    u["ruminate"] = float(rng.uniform(1.0, 6.0)) if rng.random() < 0.3 else 0.0
    # mood dynamics
    u["tau"] = 3600.0 * math.exp(rng.uniform(math.log(3.0), math.log(72.0)))
    u["sigma"] = float(rng.uniform(0.3, 1.1))
    u["rho"] = float(rng.uniform(0.1, 0.6))
    # content: selfie, others, faceless, meme
    u["content"] = rng.dirichlet([2.0, 1.0, 2.0, 0.5])
    u["selfie_avoid"] = float(rng.uniform(0.0, 0.6))
    u["mask"] = 0.0 if rng.random() < 0.6 else float(rng.uniform(0.1, 0.4))
    u["others_corr"] = float(rng.uniform(0.15, 0.4))
    u["detect"] = float(rng.uniform(0.8, 0.98))
    u["q_mean"] = float(rng.uniform(0.05, 0.4))
    u["q_conc"] = float(rng.uniform(2.0, 10.0))
    # classifier
    acc = float(rng.uniform(0.5, 0.75))
    diag = np.clip(acc + _CLASS_ACC + rng.normal(0, 0.05, 7), 0.2, 0.95)
    w = _CONFUSE * np.exp(rng.normal(0, 0.5, (7, 7)))
    w[:, _NEUTRAL] *= float(rng.uniform(1.0, 4.0))  # bias towards neutral
    np.fill_diagonal(w, 0.0)
    C = w / w.sum(1, keepdims=True) * (1.0 - diag)[:, None]
    C[np.arange(7), np.arange(7)] = diag
    bad = np.array([0.08, 0.04, 0.08, 0.15, 0.15, 0.05, 0.45]) * np.exp(rng.normal(0, 0.3, 7))
    D = 0.45 * C + 0.55 * (bad / bad.sum())
    u["C"], u["D"] = C, D
    u["beta"] = math.exp(rng.uniform(math.log(0.6), math.log(2.5)))
    u["bias"] = rng.normal(0, 0.3, 7)
    nf = rng.dirichlet(np.array([1.0, 0.5, 0.8, 1.5, 1.5, 0.7, 4.0]) * 2.0)
    u["nf_prior"], u["nf_beta"], u["nf_leak"] = nf, float(rng.uniform(0.3, 1.0)), float(rng.uniform(0.0, 0.25))
    return u


def _benign(rng: np.random.Generator, u: dict, T: int) -> dict:
    """A life change that is not a mood change (or nothing): new content mix, camera, friends, schedule."""
    b = {"at": T, "content": u["content"], "q_mean": u["q_mean"], "detect": u["detect"], "rate": 1.0}
    if rng.random() >= 0.45:
        return b
    b["at"] = int(rng.integers(int(0.1 * T), int(0.9 * T)))
    flags = rng.random(4) < np.array([0.6, 0.4, 0.4, 0.3])
    if not flags.any():
        flags[0] = True
    if flags[0]:  # new hobby / pet / kid: different content
        b["content"] = rng.dirichlet([2.0, 1.0, 2.0, 0.5])
    if flags[1]:  # new phone / new place
        b["q_mean"] = float(rng.uniform(0.05, 0.6))
        b["detect"] = float(rng.uniform(0.75, 0.98))
    if flags[2]:  # new job / free time
        b["rate"] = math.exp(rng.uniform(math.log(0.4), math.log(2.5)))
    if flags[3]:  # new circle of friends / partner: more photos of others
        c = b["content"].copy()
        c[1] *= 3.0
        b["content"] = c / c.sum()
    return b


def _gaps(r: random.Random, u: dict, dneg: np.ndarray, rate: np.ndarray):
    T = len(dneg)
    gaps = [0.0] * T
    sess = [0] * T
    t = u["t0"]
    wake, sleep = u["wake"], u["sleep"]
    remaining, s, dump = 0, -1, False
    q = 1.0 / (1.0 + u["mu"])
    log1q = math.log(1.0 - q)
    for i in range(T):
        if remaining == 0:
            s += 1
            dump = r.random() < u["dump_p"]
            if dump:
                remaining = r.randint(4, 15)
            else:
                remaining = 1 + int(math.log(1.0 - r.random()) / log1q)
            if i > 0:
                dn = float(dneg[i])
                mult = rate[i] * math.exp(u["gamma"] * dn)
                night = u["night"] * (1.0 + u["ruminate"] * max(dn, 0.0))
                amax = max(u["evening"], 1.0, night) * max(1.0, u["weekend"])
                lam = u["r0"] * mult * amax / 0.6 / 86400.0
                tt = t
                for _ in range(100000):
                    tt += r.expovariate(lam)
                    h = (tt / 3600.0) % 24.0
                    hh = h if h >= wake else h + 24.0
                    if hh < sleep:
                        act = u["evening"] if sleep - hh < 3.0 else 1.0
                    else:
                        act = night
                    if int(tt // 86400.0) % 7 >= 5:
                        act *= u["weekend"]
                    if r.random() * amax < act:
                        break
                g = tt - t
                if r.random() < u["absence_p"]:
                    g += 86400.0 * min(200.0, 2.0 * r.paretovariate(1.1))
            else:
                g = 0.0
        else:
            if dump:
                g = r.uniform(1.0, 40.0)
            else:
                g = r.lognormvariate(math.log(u["within"]), 1.2)
        remaining -= 1
        g = max(g, 1.0) if i > 0 else 0.0
        t += g
        gaps[i] = g
        sess[i] = s
    return np.asarray(gaps, dtype=np.float64), np.asarray(sess)


def _sample_rows(p: np.ndarray, uni: np.ndarray) -> np.ndarray:
    c = np.cumsum(p, axis=1)
    c /= c[:, -1:]
    return np.minimum((uni[:, None] > c).sum(1), p.shape[1] - 1)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def _gumbel(rng: np.random.Generator, shape) -> np.ndarray:
    return -np.log(-np.log(rng.uniform(1e-12, 1.0, shape)))


def make_stream(rng: np.random.Generator, kind: str) -> Stream:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    T, start, end, start2, P, dipmask = _schedule(rng, kind)
    u = _draw_user(rng)
    b = _benign(rng, u, T)
    pyr = random.Random(int(rng.integers(0, 2**63 - 1)))

    after = np.arange(T) >= b["at"]
    rate = np.where(after, b["rate"], 1.0)
    negp = _share_neg(P)
    gaps, sess = _gaps(pyr, u, negp - negp[0], rate)

    # persistent mood deviation (log tilt), memory decays with elapsed time
    Z = rng.standard_normal((T, 7)) * u["sigma"]
    w = np.exp(-gaps / u["tau"])
    sw = np.sqrt(1.0 - w * w)
    d = np.empty((T, 7))
    cur = Z[0]
    d[0] = cur
    for i in range(1, T):
        cur = w[i] * cur + sw[i] * Z[i]
        d[i] = cur
    m = P * np.exp(d - d.max(1, keepdims=True))
    fresh = _sample_rows(m, rng.random(T))

    # within-session repetition; a transient dip does not carry over
    urep = rng.random(T).tolist()
    fl = fresh.tolist()
    sl = sess.tolist()
    dl = dipmask.tolist()
    rho = u["rho"]
    e = [0] * T
    prev, prev_s = -1, -1
    for i in range(T):
        if dl[i]:
            e[i] = fl[i]
            continue
        if prev >= 0 and sl[i] == prev_s and urep[i] < rho:
            e[i] = prev
        else:
            e[i] = fl[i]
        prev, prev_s = e[i], sl[i]
    true_e = np.asarray(e, dtype=np.int64)
    is_neg = _NEG_MASK[true_e]

    # content of each post
    mix = np.where(after[:, None], b["content"], u["content"])
    mix = mix.copy()
    shy = is_neg * u["selfie_avoid"] * mix[:, 0]
    mix[:, 0] -= shy
    mix[:, 2] += shy
    content = _sample_rows(mix, rng.random(T))

    # expression visible in the photo
    expr = true_e.copy()
    masked = (content == 0) & is_neg & (rng.random(T) < u["mask"])
    expr[masked] = np.where(rng.random(int(masked.sum())) < 0.6, _HAPPY, _NEUTRAL)
    oth = (content == 1) & (rng.random(T) < 1.0 - u["others_corr"])
    expr[oth] = rng.choice(7, size=int(oth.sum()), p=_SOCIAL)
    meme = content == 3
    expr[meme] = rng.choice(7, size=int(meme.sum()), p=_MEME)

    # photo quality and face detection
    qm = np.where(after, b["q_mean"], u["q_mean"])
    q = rng.beta(qm * u["q_conc"], (1.0 - qm) * u["q_conc"])
    det = np.where(after, b["detect"], u["detect"])
    pdet = np.select([content == 0, content == 1, content == 3], [det * (1.0 - 0.3 * q), 0.9, 0.85], 0.04)
    face = rng.random(T) < pdet
    spurious = face & (content == 2)
    expr[spurious] = rng.choice(7, size=int(spurious.sum()), p=_SOCIAL)

    # classifier on faces
    Cx = (1.0 - q)[:, None] * u["C"][expr] + q[:, None] * u["D"][expr]
    beta = u["beta"] * np.exp(rng.normal(0.0, 0.2, T))
    logits_f = beta[:, None] * (np.log(Cx) + _gumbel(rng, (T, 7))) + u["bias"]
    # pipeline output without a detected face: content-driven, faint trace of mood
    nfm = (1.0 - u["nf_leak"]) * u["nf_prior"] + u["nf_leak"] * np.eye(7)[true_e]
    logits_n = u["nf_beta"] * (np.log(nfm) + 0.8 * _gumbel(rng, (T, 7)))
    probs = _softmax(np.where(face[:, None], logits_f, logits_n)).astype(np.float32)
    probs = np.maximum(probs, np.float32(1e-8))
    probs /= probs.sum(1, keepdims=True)

    return Stream(kind=kind, probs=probs, gaps=gaps, face=face.astype(bool), start=start, end=end,
                  start2=start2, true_emotion=true_e)


def make_streams(seed: int, kind: str, n: int) -> list[Stream]:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 0xB11D11, KINDS.index(kind)])
    return [make_stream(np.random.default_rng(child), kind) for child in ss.spawn(int(n))]
