"""Blind family 3: a heterogeneous population of posters seen through a FER-2013 classifier.

The world
---------
Each stream is one account's image posts in time order. An account is drawn from a set of
*personas* that post very differently:

* ``selfie``   -- a young person posting selfies, late-night chronotype, many sessions of
  several posts in a row, shows feelings fairly openly;
* ``adult``    -- an everyday adult: mixed selfies, friends, landscapes; smiles for the camera;
* ``parent``   -- posts mostly the kids: the largest face is usually a child whose expression
  only partly follows the parent's mood;
* ``brand``    -- a small business posting stock photos of smiling models on office hours;
  the owner's mood shows mostly in how often and what they post;
* ``artist``   -- drawn and painted faces: the face detector fires, the classifier is unreliable;
* ``pet``      -- a pet account, mostly faceless, and many "faces" found are animal faces;
* ``stoic``    -- keeps a neutral face whatever they feel;
* ``vlogger``  -- very expressive, posts a lot, faces almost always.

Posting times come from a thinned Poisson process with a per-persona circadian and weekly
profile, a heavy-tailed per-account rate (about one post a month to dozens a day), sessions of
quick successive posts, and silences of days to months. A negative mood lowers (for some
accounts raises) the posting rate and the share of posts that show a face; the onset of a bad
period is sometimes preceded by a silence.

Mood is a distribution over the seven emotions (the *regime*); each post's real emotion is
drawn from it, with persistence within a day. What the camera sees is the *displayed*
expression: people put on smiles for photos, hide sadness and anger behind a neutral face, and
the face in the picture is often somebody else's (friends, kids, models). The classifier then
confuses classes the way FER-2013 CNNs do (fear/surprise, sad/neutral, angry/disgust, disgust
almost never predicted, happy the most reliable), with a per-account bias (glasses, skin tone,
lighting, camera), a per-account confidence (flat ~0.3 top probability to nearly one-hot), a
slowly drifting photo quality, and garbage outputs on false faces. Posts without a face carry
the classifier's output on the whole image (mostly neutral/sad noise). Some accounts cross-post
the same image again minutes later (identical outputs).

Everybody has bad moments: one or two clearly negative posts, shown honestly more often than
usual. They happen unlabelled in every stream, drawn exactly like the labelled dip of a
``transient`` stream, so a dip alone is never evidence of a lasting change.

Benign events that are *not* mood changes happen in every kind, most of all in ``none`` and
``placebo``: a new phone (bias, confidence and quality jump), a new friend group (who is in the
photos and how they pose), holiday/wedding bursts of happy group photos, a change of posting
rate (new job), and seasonal gloom (a small winter dip for some accounts). In ``placebo``
streams a benign event often happens exactly at ``start``.

Every change stream is checked before it is returned: the expected distribution of the
classifier's top class on face posts must differ between the regimes by a minimum total
variation (smaller for ``small_shift``), so that a careful reader of many posts could see it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("none", "abrupt_pos_neg", "abrupt_neg_pos", "gradual", "small_shift", "transient",
         "episode", "two_changes", "placebo")
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # FER-2013 order
A, D, F, H, S, U, N = range(7)
NEG = np.array([A, D, F, S])

DAY = 86400.0

# Rows: displayed expression; columns: top class of a FER-2013 CNN (~65 % test accuracy).
CONFUSION = np.array([
    [.55, .02, .10, .05, .15, .03, .10],   # angry
    [.27, .30, .08, .05, .14, .03, .13],   # disgust
    [.10, .01, .42, .05, .17, .12, .13],   # fear
    [.02, .00, .02, .86, .03, .03, .04],   # happy
    [.08, .01, .10, .05, .50, .02, .24],   # sad
    [.02, .00, .11, .05, .02, .75, .05],   # surprise
    [.05, .00, .05, .07, .17, .03, .63],   # neutral
]) + 1e-3
CONFUSION /= CONFUSION.sum(1, keepdims=True)
LOG_CONF = np.log(CONFUSION)
LOG_PRIOR = np.log(CONFUSION.mean(0))          # what a blind classifier leans to

TEMPLATES = {  # mood regimes, in LABELS order: angry disgust fear happy sad surprise neutral
    "elated":    [.02, .01, .01, .62, .03, .11, .20],
    "positive":  [.03, .02, .02, .45, .07, .06, .35],
    "content":   [.03, .01, .02, .28, .08, .05, .53],
    "gloomy":    [.08, .03, .08, .12, .30, .04, .35],
    "depressed": [.05, .02, .07, .06, .45, .02, .33],
    "irritable": [.28, .12, .03, .08, .15, .04, .30],
    "anxious":   [.04, .01, .28, .07, .20, .12, .28],
    "grieving":  [.03, .01, .05, .05, .55, .02, .29],
}
POSITIVE = ("elated", "positive", "content")
NEGATIVE = ("gloomy", "depressed", "irritable", "anxious", "grieving")

# persona: weight, face rate, log10 posts/day, smile-for-camera, hide-negative, other-face share,
#          garbage-face rate, quality, session share, chronotype shift (h), weekend factor
PERSONAS = {
    "selfie":  (.18, .85, 0.3, .25, .22, .15, .02, .90, .40, 2.0, 1.3),
    "adult":   (.22, .50, -0.5, .30, .30, .30, .03, .85, .20, 0.0, 1.3),
    "parent":  (.12, .70, -0.2, .35, .35, .55, .03, .85, .30, -1.0, 1.4),
    "brand":   (.07, .85, 0.0, .75, .70, .80, .03, .95, .10, -2.0, 0.35),
    "artist":  (.07, .60, -0.4, .15, .20, .40, .20, .65, .15, 1.0, 1.1),
    "pet":     (.07, .12, 0.0, .30, .40, .30, .45, .80, .40, 0.0, 1.3),
    "stoic":   (.12, .55, -0.7, .12, .60, .20, .03, .85, .15, 0.0, 1.2),
    "vlogger": (.15, .92, 0.6, .15, .12, .10, .02, .92, .35, 1.0, 1.1),
}


@dataclass
class Stream:
    kind: str
    probs: np.ndarray              # (T, 7) float32, rows sum to 1
    gaps: np.ndarray               # (T,) float64 seconds since the previous post
    face: np.ndarray               # (T,) bool
    start: int | None
    end: int | None
    start2: int | None
    true_emotion: np.ndarray       # (T,) int, index into LABELS


@dataclass
class _User:
    persona: str
    face_rate: float
    rate: float                    # posts per day
    smile: float                   # P(put on a smile) when not really happy
    hide: float                    # P(negative shown as a neutral face)
    other: float                   # P(the largest face is somebody else)
    other_mood: np.ndarray         # (7,) how the others pose
    couple: float                  # how much the others' faces follow the user's mood
    garbage: float
    quality: float
    quality_drift: float           # per year
    beta: float                    # classifier confidence (inverse temperature)
    bias: np.ndarray               # (7,) per-account logit bias
    session: float
    chrono: float
    weekend: float
    k_face: float                  # face rate drop per unit of negative share
    k_rate: float                  # log posting-rate drop per unit of negative share
    persist: float                 # P(same emotion as the previous post within hours)
    seasonal: float                # winter gloom amplitude (negative share)
    repost: float                  # P(the same image posted again minutes later)


def _dirichlet_around(rng: np.random.Generator, name: str, conc: float) -> np.ndarray:
    return rng.dirichlet(np.asarray(TEMPLATES[name]) * conc + 0.05)


def _neg(p: np.ndarray) -> np.ndarray:
    return p[..., NEG].sum(-1)


def _draw_user(rng: np.random.Generator) -> _User:
    names = list(PERSONAS)
    w = np.array([PERSONAS[n][0] for n in names])
    name = names[rng.choice(len(names), p=w / w.sum())]
    _, face, lrate, smile, hide, other, garb, qual, sess, chrono, wkend = PERSONAS[name]
    j = lambda x, s, lo=0.0, hi=1.0: float(np.clip(x + rng.normal(0, s), lo, hi))  # noqa: E731
    bias = rng.normal(0, 0.2, 7)
    if rng.random() < 0.25:        # glasses: brows hidden, reads as angry/sad
        bias[[A, S]] += rng.uniform(0.1, 0.5)
    if rng.random() < 0.3:         # dark skin / poor light: a known FER-2013 skew
        bias[[F, S]] += rng.uniform(0.1, 0.4)
        bias[H] -= rng.uniform(0.0, 0.4)
    other_mood = rng.dirichlet(np.array([.02, .01, .02, .62, .03, .10, .20]) * 40 + 0.05)
    return _User(
        persona=name, face_rate=j(face, .08, .05, .98),
        rate=float(10 ** np.clip(lrate + rng.normal(0, 0.55), -1.5, 1.5)),
        smile=j(smile, .1), hide=j(hide, .1), other=j(other, .1, 0, .95), other_mood=other_mood,
        couple=float(rng.uniform(0.3, 0.7)), garbage=j(garb, garb / 3, 0.0, 0.6),
        quality=j(qual, .08, .35, 1.0), quality_drift=float(rng.normal(0.02, 0.03)),
        beta=float(np.exp(rng.uniform(np.log(0.3), np.log(3.5)))), bias=bias,
        session=j(sess, .08), chrono=chrono + rng.normal(0, 1.0), weekend=wkend,
        k_face=float(rng.uniform(0.0, 1.2)), k_rate=float(rng.uniform(-0.8, 2.5)),
        persist=float(rng.uniform(0.2, 0.7)),
        seasonal=float(rng.uniform(0.02, 0.07)) if rng.random() < 0.3 else 0.0,
        repost=float(rng.uniform(0.01, 0.06)) if rng.random() < 0.3 else 0.0)


def _display_matrix(u: _User) -> np.ndarray:
    """(7, 7): P(displayed expression | real emotion) for the user's own face."""
    m = np.eye(7)
    for e, smile, hide in ((A, .4, .8), (D, .4, .7), (F, .4, .6), (S, .7, 1.0), (N, 1.0, 0.0),
                           (U, .3, 0.0)):
        s, h = u.smile * smile, u.hide * hide
        m[e] = 0.0
        m[e, H] += s
        m[e, N] += h * (1 - s)
        m[e, e] += (1 - s) * (1 - h)
    m[D] = m[D] * 0.6 + m[A] * 0.4 * (m[D, D] > 0)    # disgust often shows as anger
    m[F, U] += 0.1                                  # fear often looks like surprise
    m[H] = [0, 0, 0, .9, 0, .03, .07]
    return m / m.sum(1, keepdims=True)


def _observed(u: _User, pi: np.ndarray) -> np.ndarray:
    """Expected top-class distribution on face posts under mood ``pi``."""
    own = pi @ _display_matrix(u)
    oth = u.couple * own + (1 - u.couple) * u.other_mood
    disp = (1 - u.other) * own + u.other * oth
    q = 1 - 0.6 * (1 - u.quality)       # even a poor photo keeps most of the signal
    conf = np.exp(q * LOG_CONF + (1 - q) * LOG_PRIOR)
    conf /= conf.sum(1, keepdims=True)
    return (1 - u.garbage) * disp @ conf + u.garbage * np.exp(LOG_PRIOR) / np.exp(LOG_PRIOR).sum()


def _tv(p: np.ndarray, q: np.ndarray) -> float:
    return 0.5 * float(np.abs(p - q).sum())


def _regimes(rng: np.random.Generator, kind: str) -> list[np.ndarray]:
    conc = rng.uniform(50, 150)
    pos = lambda: _dirichlet_around(rng, POSITIVE[rng.integers(3)], conc)   # noqa: E731
    neg = lambda: _dirichlet_around(rng, NEGATIVE[rng.integers(5)], conc)   # noqa: E731
    if kind in ("none", "placebo", "transient"):
        return [pos() if rng.random() < 0.8 else neg()]
    if kind == "abrupt_neg_pos":
        return [neg(), pos()]
    if kind == "small_shift":
        a = pos() if rng.random() < 0.8 else _dirichlet_around(rng, "content", conc)
        b = a.copy()
        if rng.random() < 0.6:     # more negative emotions, taken from happy and neutral
            d = rng.uniform(0.08, 0.3)
            take = np.array([b[H], b[N]]) / (b[H] + b[N])
            d = min(d, 0.8 * (b[H] + b[N]))
            b[H] -= d * take[0]
            b[N] -= d * take[1]
            b += d * _dirichlet_around(rng, NEGATIVE[rng.integers(5)], conc) * (np.arange(7) != H)
        else:                      # joy fades into flatness, a little sadness
            d = rng.uniform(0.15, 0.35) * b[H] / max(b[H], 0.3)
            b[H] -= d
            b[N] += 0.75 * d
            b[S] += 0.25 * d
        return [a, b / b.sum()]
    if kind == "gradual" and rng.random() < 0.25:
        return [neg(), pos()]
    if kind == "two_changes":
        a, b = pos(), neg()
        c = neg() if rng.random() < 0.5 else pos()
        return [a, b, c]
    return [pos(), neg()]


def _visible(u: _User, regimes: list[np.ndarray], kind: str) -> bool:
    obs = [_observed(u, r) for r in regimes]
    if len(obs) == 1:
        return True
    lo, hi = (0.05, 0.16) if kind == "small_shift" else (0.14, 1.0)
    steps = [_tv(obs[i], obs[i + 1]) for i in range(len(obs) - 1)]
    if len(obs) == 3:
        steps.append(_tv(obs[0], obs[2]))
    return all(lo <= s <= hi for s in steps)


def _layout(rng: np.random.Generator, kind: str) -> tuple[int, int | None, int | None, int | None, int]:
    """(T, start, end, start2, ramp length)."""
    if kind == "none":
        return int(rng.integers(1500, 3001)), None, None, None, 0
    start = int(rng.integers(30, 251))
    tail = int(150 + rng.exponential(200))
    if kind == "placebo":
        return start + tail, start, None, None, 0
    if kind == "transient":
        end = start + int(rng.integers(1, 3))
        return end + tail, start, end, None, 0
    if kind == "episode":
        end = start + int(rng.integers(12, 61))
        return end + tail, start, end, None, 0
    if kind == "gradual":
        ramp = int(rng.integers(10, 121))
        return start + ramp + tail, start, None, None, ramp
    if kind == "two_changes":
        start2 = start + int(rng.integers(150, 301))
        return start2 + tail, start, None, start2, 0
    return start + tail, start, None, None, 0


def _weights(T: int, kind: str, start: int | None, end: int | None, start2: int | None,
             ramp: int, n_reg: int) -> np.ndarray:
    """(T, n_reg) mixture weight of each regime per post."""
    w = np.zeros((T, n_reg))
    w[:, 0] = 1.0
    if n_reg == 1 or start is None:
        return w
    i = np.arange(T)
    if kind == "gradual":
        x = np.clip((i - start + 1) / (ramp + 1), 0, 1)
        x = x * x * (3 - 2 * x) if ramp > 40 else x      # long ramps ease in and out
        w[:, 0], w[:, 1] = 1 - x, x
        return w
    on = (i >= start) & ((i < end) if end is not None else True)
    w[on] = 0
    w[on, 1] = 1
    if start2 is not None:
        w[i >= start2] = 0
        w[i >= start2, 2] = 1
    return w


def _events(rng: np.random.Generator, T: int, kind: str, start: int | None) -> dict[str, np.ndarray]:
    """Benign, non-mood changes per post: phone (quality, confidence, bias), friends, rate, bursts."""
    benign = kind in ("none", "placebo")
    n_ev = rng.poisson(T / 900 + (0.8 if benign else 0.3))
    ev = {"dq": np.zeros(T), "dbeta": np.ones(T), "dbias": np.zeros((T, 7)), "dother": np.zeros(T),
          "rate": np.ones(T), "burst": np.zeros(T, bool), "smile": np.zeros(T)}
    at = list(rng.integers(10, max(T - 10, 11), n_ev))
    if kind == "placebo" and start is not None and rng.random() < 0.5:
        at.append(start)
    for t in at:
        what = rng.choice(4, p=[.3, .25, .2, .25])
        if what == 0:              # new phone / camera app
            ev["dq"][t:] += rng.normal(0.05, 0.12)
            ev["dbeta"][t:] *= np.exp(rng.normal(0, 0.4))
            ev["dbias"][t:] += rng.normal(0, 0.25, 7)
        elif what == 1:            # new friend group: who is in the photos, how they pose
            ev["dother"][t:] += rng.normal(0, 0.2)
            ev["smile"][t:] += rng.normal(0, 0.15)
        elif what == 2:            # new job, new habit: posting rate only
            ev["rate"][t:] *= np.exp(rng.normal(0, 0.7))
        else:                      # holiday / wedding: a burst of happy group photos
            ev["burst"][t:t + int(rng.integers(5, 31))] = True
    return ev


def _profile(u: _User) -> np.ndarray:
    """(168,) relative posting intensity per hour of the week (Monday 00h first)."""
    h = np.arange(24)
    peak = (20.0 + u.chrono) % 24
    dist = np.minimum(np.abs(h - peak), 24 - np.abs(h - peak))
    day = 0.08 + np.exp(-0.5 * (dist / 4.5) ** 2)
    sleep = (h - (3.5 + u.chrono)) % 24 < 5
    day[sleep] *= 0.15
    if u.persona == "brand":
        day = np.where((h >= 8) & (h <= 18), 1.0, 0.05)
    week = np.tile(day, 7)
    week[120:] *= u.weekend
    return week / week.mean()


def _gaps(rng: np.random.Generator, u: _User, T: int, mult: np.ndarray, burst: np.ndarray,
          silence_at: list[int]) -> np.ndarray:
    prof = _profile(u)
    lam_max = u.rate / DAY * prof.max()
    t0 = rng.uniform(0, 365 * DAY)
    times: list[np.ndarray] = []
    n = 0
    t = t0
    while n < T:                   # thinning of a Poisson process with the weekly profile
        c = t + np.cumsum(rng.exponential(1 / lam_max, 2 * (T - n) + 64))
        t = c[-1]
        hour = ((c // 3600) % 168).astype(int)
        keep = c[rng.random(c.size) < prof[hour] / prof.max()]
        times.append(keep)
        n += keep.size
    g = np.diff(np.concatenate(times)[:T], prepend=t0)
    g[0] = 0.0
    sess = rng.random(T) < u.session
    g = np.where(sess, rng.lognormal(np.log(90), 1.0, T), g)
    g = g / mult
    g = np.where(burst, rng.lognormal(np.log(1200), 1.2, T), g)
    sil = rng.random(T) < 1 / rng.uniform(150, 800)
    g[sil] += rng.uniform(5, 60, sil.sum()) * DAY
    for i in silence_at:
        g[i] += rng.uniform(3, 30) * DAY
    g = np.maximum(g, 1.0)
    g[0] = 0.0
    return g


def _sample_rows(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    c = np.cumsum(p, 1)
    return np.minimum((rng.random(len(p))[:, None] * c[:, -1:] > c).sum(1), 6)


def _reposts(rng: np.random.Generator, u: _User, probs: np.ndarray, gaps: np.ndarray,
             face: np.ndarray, true: np.ndarray, marks: list[int], keep: tuple | None) -> None:
    """Cross-posts and reposts: the same image again minutes later, identical outputs (in place)."""
    T = len(gaps)
    dup = rng.random(T) < u.repost
    dup[0] = False
    for i in marks:                          # a label's first post is always a fresh image
        dup[min(i, T - 1)] = False
    if keep is not None:
        dup[keep[0]:keep[1]] = False
    src = np.maximum.accumulate(np.where(dup, 0, np.arange(T)))
    probs[:] = probs[src]
    face[:] = face[src]
    true[:] = true[src]
    gaps[dup] = rng.uniform(5, 300, dup.sum())


def make_stream(rng: np.random.Generator, kind: str) -> Stream:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    T, start, end, start2, ramp = _layout(rng, kind)
    for _ in range(200):
        u = _draw_user(rng)
        regimes = _regimes(rng, kind)
        if _visible(u, regimes, kind):
            break
    w = _weights(T, kind, start, end, start2, ramp, len(regimes))
    pi = w @ np.stack(regimes)                                       # (T, 7)
    ev = _events(rng, T, kind, start)
    neg0 = float(_neg(regimes[0]))
    dneg = _neg(pi) - neg0
    mult = np.exp(-u.k_rate * dneg) * ev["rate"]
    silence_at = [start] if (start is not None and kind not in ("transient", "placebo", "none")
                             and dneg[min(start + ramp, T - 1)] > 0.1 and rng.random() < 0.35) else []
    gaps = _gaps(rng, u, T, mult, ev["burst"], silence_at)

    # seasonal gloom: a little more sadness and less joy around mid-winter
    doy = (np.cumsum(gaps) / DAY + rng.uniform(0, 365)) % 365
    gloom = u.seasonal * np.cos(2 * np.pi * (doy - 15) / 365).clip(0)
    shift = np.minimum(gloom, pi[:, H] * 0.5)
    pi = pi.copy()
    pi[:, H] -= shift
    pi[:, S] += 0.7 * shift
    pi[:, N] += 0.3 * shift

    # real emotion per post, persisting within a few hours
    fresh = _sample_rows(rng, pi)
    carry = (rng.random(T) < u.persist) & (gaps < 6 * 3600)
    carry[0] = False
    idx = np.maximum.accumulate(np.where(carry, 0, np.arange(T)))
    true = fresh[idx]
    # bad moments, one or two clearly negative posts: the labelled dip of a "transient" stream and
    # the same thing happening unlabelled to everybody now and then
    bad = np.zeros(T, bool)
    for t in rng.integers(1, T, rng.poisson(T / 250)):
        bad[t:t + int(rng.integers(1, 3))] = True
    if kind == "transient":
        bad[max(start - 2, 0):end + 2] = False
        bad[start:end] = True
    true[bad] = rng.choice([A, F, S, S, D], bad.sum())

    negp = _neg(pi)
    face_p = np.clip(u.face_rate * (1 - u.k_face * np.clip(negp - neg0, 0, None)), 0.02, 0.98)
    face_p = np.where(ev["burst"], np.maximum(face_p, 0.9), face_p)
    face = rng.random(T) < face_p
    face[bad] = rng.random(bad.sum()) < 0.85

    # what the camera sees
    smile = np.clip(u.smile + ev["smile"], 0, 1)
    disp = np.empty(T, int)
    for s_lvl in np.unique(np.round(smile, 2)):
        sel = np.round(smile, 2) == s_lvl
        uu = _User(**{**u.__dict__, "smile": float(s_lvl)})
        disp[sel] = _sample_rows(rng, _display_matrix(uu)[true[sel]])
    honest = bad & (rng.random(T) < 0.7)     # a crying or furious selfie is not hidden
    disp[honest] = true[honest]
    other_p = np.clip(u.other + ev["dother"], 0, 0.95)
    other_p = np.where(ev["burst"], 0.9, other_p)
    other_p[bad] = 0.05
    is_other = rng.random(T) < other_p
    follows = rng.random(T) < u.couple
    other_expr = _sample_rows(rng, np.broadcast_to(u.other_mood, (T, 7)))
    other_expr = np.where(ev["burst"] & (rng.random(T) < 0.8), H, other_expr)
    disp = np.where(is_other & ~follows, other_expr, disp)

    # the classifier
    years = np.cumsum(gaps) / (365 * DAY)
    q = np.clip(u.quality + u.quality_drift * years + ev["dq"] + rng.normal(0, 0.1, T), 0.1, 1.0)
    gumbel = rng.gumbel(0, 1, (T, 7))
    q = 1 - 0.6 * (1 - q)
    logits = q[:, None] * LOG_CONF[disp] + (1 - q[:, None]) * LOG_PRIOR + gumbel
    garbage = rng.random(T) < u.garbage
    logits[garbage] = LOG_PRIOR + rng.normal(0, 1.3, (garbage.sum(), 7))
    beta = (u.beta * ev["dbeta"] * np.exp(rng.normal(0, 0.15, T)))[:, None]
    logits = beta * (logits + u.bias + ev["dbias"])     # a bias moves the top class at any beta
    # no face: the classifier on the whole image, mostly neutral/sad noise, a hint of the mood
    nf = LOG_PRIOR + np.array([0, -1, .2, -.3, .5, -.3, .8]) + rng.normal(0, 1.0, (T, 7))
    nf[:, S] += 0.8 * (negp - neg0)
    logits = np.where(face[:, None], logits, 0.6 * nf)
    logits -= logits.max(1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(1, keepdims=True)
    probs = p.astype(np.float32)
    probs /= probs.sum(1, keepdims=True)
    _reposts(rng, u, probs, gaps, face, true, [i for i in (start, end, start2) if i is not None],
             (start, end) if kind == "transient" else None)
    return Stream(kind=kind, probs=probs, gaps=gaps.astype(np.float64), face=face.astype(bool),
                  start=start, end=end, start2=start2, true_emotion=true.astype(np.int64))


def make_streams(seed: int, kind: str, n: int) -> list[Stream]:
    """``n`` streams of ``kind``, the same for the same ``seed``.

    >>> s = make_streams(0, "abrupt_pos_neg", 2)
    >>> [x.probs.shape[1] for x in s], s[0].start >= 30
    ([7, 7], True)
    """
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    return [make_stream(rng, kind) for _ in range(n)]
