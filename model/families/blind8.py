"""Blind family 8: session-structured users seen through an imperfect FER camera.

This module simulates social-media users' image timelines as a FER-2013
emotion classifier (angry, disgust, fear, happy, sad, surprise, neutral) would
report them. It was written independently, from a short brief only, to serve
as a held-out exam for an emotional-drift detector.

The simulated world
-------------------
*Who the user is.*  Every stream is one user.  A baseline is a distribution
over the seven emotions built from three parts: a share of negative emotions
(angry, disgust, fear, sad), a negative profile (how that share splits among
the four: some people mostly look sad, others angry, others anxious), and a
non-negative profile (happy / surprise / neutral).  Personas range from
cheerful (few negatives, mostly happy) over stoic-neutral and mixed to gloomy
(about half to three quarters negative).

*When they post.*  Posts come in sessions (one to a few photos, sometimes a
photo dump) a few seconds to minutes apart, sometimes near-simultaneous
(carousels).  Sessions are separated by heavy-tailed lognormal gaps whose
median is user specific (hours to days).  Users have bursty phases (holidays,
festivals, events: many bigger sessions close together) and occasional quiet
spells of weeks.  Session start times follow the user's own daily rhythm (one
or two preferred hours of day, some users are night owls) and a weekly rhythm
(some users move much of their posting to the weekend).  Times are snapped to
that rhythm, so within-day structure is realistic and gaps are never negative.

*How they feel.*  The user's actual emotion in each post is drawn from the
current regime's distribution, tilted by a mood state: a mean-reverting
(Ornstein-Uhlenbeck) mood sampled at each session, persisting for a user
specific number of days, so good and bad days and weeks occur in every stream.
Late-night posts lean negative, weekend posts slightly positive, and some
users have a mild seasonal (winter) dip.  Within a session the same emotion is
often repeated (several shots of the same moment).  Group photos lean happy.

*What the camera sees.*  The share of posts with a detectable face differs a
lot between users (landscapes, food, memes, pets) and moves over time: each
session has its own flavour (a food session has no faces), the habit drifts
slowly, and it can change abruptly (a new posting habit).  Some face posts are
group photos (the classifier reads either the largest face, possibly someone
else's, or an average over faces, depending on the user's pipeline), some are
memes or screenshots with a stranger's face whose emotion has nothing to do
with the user.

*The classifier.*  Each user gets a personal confusion matrix built on
FER-typical confusions (disgust read as angry, fear as surprise or sad, sad as
neutral, neutral as sad, surprise as fear/happy, happy as neutral), a personal
quality level (per-class recall scaled up or down), an optional resting-face
bias (a neutral face read as sad or angry), a logit bias and a personal
temperature (overconfident peaky outputs versus flat ones).  Outputs are a
softmax over noisy logits that put the most mass on the class the model
"decided", a shadow on the true class and on the confusable classes.  Night
photos are darker: flatter and a little sadder/more fearful outputs.  Posts
with no face get whatever the user's pipeline returns on a non-face image:
an exact uniform vector, a neutral-leaning default, or the CNN's noisy read of
the whole picture.

*Benign changes (not mood changes).*  At random moments in every stream,
including ``none`` and ``placebo``, a user may get a new camera or filter
(shifts the classifier's bias, temperature and quality: a beauty filter reads
happier, a poor low-light phone sadder), change their face-posting habit, or
change their posting rhythm.  These move the observed outputs without any
change in the true emotions.

*Real changes.*  A change replaces the regime distribution and also nudges
behaviour the way life events do (negative regimes tend to come with fewer
selfies and fewer group photos and a changed posting pace; recoveries the
opposite).  Negative regimes come in flavours: grief (sad), conflict (angry
and disgust), anxiety (fear and sad) or a mixture, usually with flatter affect
(neutral taking share from happy).  Kinds:

- ``none``: 1500-3000 posts of one user's stable world.
- ``abrupt_pos_neg`` / ``abrupt_neg_pos``: a non-negative baseline turns
  negative (or a gloomy one cheerful or neutral) at ``start``, for good.
- ``gradual``: a ramp of 30-250 posts (linear, logistic, or a noisy path with
  relapses), usually towards negative, sometimes towards recovery.
- ``small_shift``: the negative share moves by 0.1-0.3 (mostly upwards).
- ``transient``: one or two negative posts, then the old life.
- ``episode``: a negative spell of 12-60 posts, then back to the baseline.
- ``two_changes``: a lasting change, then 150-300 posts later another one
  (recovery, a different kind of negativity, or a relapse).
- ``placebo``: like ``none`` but shorter, with a ``start`` drawn like the
  change streams' (nothing happens there).

Change points are post indices: 30 <= start <= 250 and at least 150 posts
follow the last change point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NAME = "blind8"
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

NEG_IDX = np.array([0, 1, 2, 4])
POS_IDX = np.array([3, 5, 6])  # happy, surprise, neutral
HAPPY, SAD, NEUTRAL = 3, 4, 6
VALENCE = np.array([-0.8, -0.7, -0.7, 1.0, -1.0, 0.2, 0.0])
DAY = 86400.0

# FER-typical confusions: row = true class, column = predicted class.
_CONFUSE = np.array(
    [
        [0.00, 0.15, 0.15, 0.05, 0.25, 0.05, 0.35],  # angry
        [0.55, 0.00, 0.10, 0.05, 0.15, 0.02, 0.13],  # disgust
        [0.10, 0.02, 0.00, 0.05, 0.30, 0.35, 0.18],  # fear
        [0.05, 0.02, 0.05, 0.00, 0.08, 0.20, 0.60],  # happy
        [0.12, 0.03, 0.20, 0.05, 0.00, 0.03, 0.57],  # sad
        [0.05, 0.01, 0.40, 0.24, 0.05, 0.00, 0.25],  # surprise
        [0.12, 0.02, 0.08, 0.15, 0.50, 0.13, 0.00],  # neutral
    ]
)
_BASE_RECALL = np.array([0.55, 0.45, 0.42, 0.86, 0.52, 0.76, 0.66])


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


@dataclass
class _Regime:
    dist: np.ndarray  # (7,) emotion distribution
    face_shift: float = 0.0  # logit shift of face probability
    gap_log: float = 0.0  # log multiplier of between-session gaps
    group_mult: float = 1.0  # multiplier of the group-photo rate


# ---------------------------------------------------------------------------
# small helpers


def _sigmoid(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return out


def _logit(p: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.log(p) - np.log1p(-p)
    return out


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def _cat(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    """One categorical draw per row of p (rows need not be normalised)."""
    cs = np.cumsum(p, axis=1)
    u = np.asarray(rng.random(size=p.shape[0]))[:, None] * cs[:, -1:]
    out: np.ndarray = np.minimum((cs < u).sum(axis=1), p.shape[1] - 1)
    return out


def _dist(neg_share: float, neg_prof: np.ndarray, pos_prof: np.ndarray) -> np.ndarray:
    d = np.zeros(7)
    d[NEG_IDX] = neg_share * neg_prof / neg_prof.sum()
    d[POS_IDX] = (1.0 - neg_share) * pos_prof / pos_prof.sum()
    return d


def _neg_share(d: np.ndarray) -> float:
    return float(d[NEG_IDX].sum())


def _tv(a: np.ndarray, b: np.ndarray) -> float:
    return 0.5 * float(np.abs(a - b).sum())


# ---------------------------------------------------------------------------
# who the user is


def _baseline(
    rng: np.random.Generator, pref: str
) -> tuple[_Regime, np.ndarray, np.ndarray]:
    if pref == "any":
        persona = rng.choice(4, p=[0.35, 0.25, 0.25, 0.15])
    elif pref == "nonneg":
        persona = rng.choice(3, p=[0.45, 0.30, 0.25])
    else:
        persona = 3
    if persona == 0:  # cheerful
        ns = rng.uniform(0.03, 0.15)
        pos = rng.dirichlet(np.array([6.0, 1.0, 2.5]) * 2)
    elif persona == 1:  # stoic / neutral
        ns = rng.uniform(0.05, 0.2)
        pos = rng.dirichlet(np.array([2.0, 0.7, 6.0]) * 2)
    elif persona == 2:  # mixed
        ns = rng.uniform(0.18, 0.32)
        pos = rng.dirichlet(np.array([3.0, 1.0, 3.0]) * 2)
    else:  # gloomy
        ns = rng.uniform(0.45, 0.78)
        pos = rng.dirichlet(np.array([1.5, 0.5, 4.0]) * 2)
    neg = rng.dirichlet(np.array([1.0, 0.35, 0.6, 1.6]) * 1.5) + 1e-3
    return _Regime(_dist(ns, neg, pos)), neg, pos


def _neg_regime(rng: np.random.Generator, pos: np.ndarray, share: float) -> _Regime:
    flavour = rng.integers(4)
    conc = [
        np.array([0.5, 0.2, 0.5, 6.0]),  # grief
        np.array([4.0, 1.5, 0.4, 1.2]),  # conflict
        np.array([0.4, 0.2, 3.0, 2.5]),  # anxiety
        np.array([2.0, 1.0, 2.0, 3.0]),  # mixed
    ][flavour]
    neg = rng.dirichlet(conc * 2) + 1e-3
    flat = rng.uniform(0.0, 1.0)  # flattened affect: neutral takes from happy
    new_pos = (
        pos * np.array([1.0 - 0.6 * flat, 1.0 - 0.3 * flat, 1.0 + 1.5 * flat]) + 1e-3
    )
    return _Regime(
        _dist(share, neg, new_pos),
        face_shift=float(rng.normal(-0.5, 0.6)),
        gap_log=float(rng.normal(0.1, 0.5)),
        group_mult=float(rng.uniform(0.3, 0.9)),
    )


def _pos_regime(rng: np.random.Generator, neg: np.ndarray, share: float) -> _Regime:
    if rng.random() < 0.6:  # cheerful
        pos = rng.dirichlet(np.array([6.0, 1.0, 2.5]) * 2)
    else:  # calm / neutral
        pos = rng.dirichlet(np.array([2.5, 0.7, 6.0]) * 2)
    return _Regime(
        _dist(share, neg, pos + 1e-3),
        face_shift=float(rng.normal(0.3, 0.4)),
        gap_log=float(rng.normal(-0.1, 0.4)),
        group_mult=float(rng.uniform(1.0, 1.8)),
    )


def _scaled(rng: np.random.Generator, base: _Regime, share: float) -> _Regime:
    """Same profiles, new negative share, mild behavioural nudge."""
    d = base.dist
    neg = d[NEG_IDX] + 1e-3
    neg = neg * np.exp(rng.normal(0.0, 0.3, 4))
    pos = d[POS_IDX] + 1e-3
    up = share > _neg_share(d)
    return _Regime(
        _dist(share, neg, pos),
        face_shift=float(rng.normal(-0.2 if up else 0.2, 0.3)),
        gap_log=float(rng.normal(0.0, 0.3)),
        group_mult=float(rng.uniform(0.6, 1.0) if up else rng.uniform(1.0, 1.4)),
    )


# ---------------------------------------------------------------------------
# the plan of a stream: length, change points, regimes and their mixing


@dataclass
class _Plan:
    T: int
    start: int | None
    end: int | None
    start2: int | None
    regimes: list[_Regime]
    W: np.ndarray  # (T, K) mixing weights of the regimes per post
    bounds: list[int]
    transient: tuple[int, int] | None = None


def _tail(rng: np.random.Generator, extra: int = 0) -> int:
    return 150 + extra + int(min(rng.exponential(300.0), 1500.0))


def _step_W(T: int, cuts: list[int], K: int) -> np.ndarray:
    W = np.zeros((T, K))
    seg = np.searchsorted(np.array(cuts), np.arange(T), side="right")
    W[np.arange(T), seg] = 1.0
    return W


def _plan(rng: np.random.Generator, kind: str) -> _Plan:
    if kind == "none":
        T = int(rng.integers(1500, 3001))
        base, _, _ = _baseline(rng, "any")
        return _Plan(T, None, None, None, [base], np.ones((T, 1)), [])

    start = int(rng.integers(30, 251))

    if kind == "placebo":
        T = start + _tail(rng)
        base, _, _ = _baseline(rng, "any")
        return _Plan(T, start, None, None, [base], np.ones((T, 1)), [])

    if kind == "abrupt_pos_neg":
        base, neg, pos = _baseline(rng, "nonneg")
        share = min(_neg_share(base.dist) + rng.uniform(0.35, 0.65), 0.92)
        new = _neg_regime(rng, pos, share)
        T = start + _tail(rng)
        return _Plan(T, start, None, None, [base, new], _step_W(T, [start], 2), [start])

    if kind == "abrupt_neg_pos":
        base, neg, pos = _baseline(rng, "gloomy")
        share = rng.uniform(0.04, 0.22)
        new = _pos_regime(rng, neg, share)
        T = start + _tail(rng)
        return _Plan(T, start, None, None, [base, new], _step_W(T, [start], 2), [start])

    if kind == "gradual":
        ramp = int(rng.integers(30, 251))
        T = start + _tail(rng, extra=max(0, ramp - 50))
        if rng.random() < 0.75:
            base, neg, pos = _baseline(rng, "nonneg")
            share = min(_neg_share(base.dist) + rng.uniform(0.3, 0.6), 0.92)
            new = _neg_regime(rng, pos, share)
        else:
            base, neg, pos = _baseline(rng, "gloomy")
            new = _pos_regime(rng, neg, rng.uniform(0.04, 0.25))
        x = np.arange(ramp + 1) / ramp
        shape = rng.integers(3)
        if shape == 0:
            w = x
        elif shape == 1:
            k = rng.uniform(6.0, 14.0)
            w = _sigmoid(k * (x - 0.5))
            w = (w - w[0]) / (w[-1] - w[0])
        else:  # noisy path with relapses, pinned at both ends
            steps = rng.normal(0.0, 1.0, ramp + 1).cumsum()
            bridge = steps - x * steps[-1] - steps[0] * (1 - x)
            w = np.clip(x + 0.25 * bridge / (np.abs(bridge).max() + 1e-9), 0.0, 1.0)
        wt = np.zeros(T)
        wt[start : start + ramp + 1] = w[: T - start]
        wt[start + ramp + 1 :] = 1.0
        W = np.stack([1.0 - wt, wt], axis=1)
        return _Plan(T, start, None, None, [base, new], W, [start])

    if kind == "small_shift":
        base, _, _ = _baseline(rng, "any")
        s0 = _neg_share(base.dist)
        delta = rng.uniform(0.1, 0.3)
        up = rng.random() < 0.7
        if up and s0 + delta > 0.95:
            up = False
        if not up and s0 - delta < 0.02:
            up = True
        share = s0 + delta if up else s0 - delta
        new = _scaled(rng, base, float(np.clip(share, 0.02, 0.95)))
        T = start + _tail(rng)
        return _Plan(T, start, None, None, [base, new], _step_W(T, [start], 2), [start])

    if kind == "transient":
        base, _, _ = _baseline(rng, "nonneg" if rng.random() < 0.85 else "any")
        end = start + int(rng.integers(1, 3))
        T = end + _tail(rng)
        return _Plan(
            T, start, end, None, [base], np.ones((T, 1)), [start, end], (start, end)
        )

    if kind == "episode":
        base, neg, pos = _baseline(rng, "nonneg" if rng.random() < 0.9 else "any")
        share = min(max(_neg_share(base.dist) + rng.uniform(0.35, 0.6), 0.6), 0.95)
        spell = _neg_regime(rng, pos, share)
        end = start + int(rng.integers(12, 61))
        T = end + _tail(rng)
        W = _step_W(T, [start, end], 3)
        W = np.stack([W[:, 0] + W[:, 2], W[:, 1]], axis=1)
        return _Plan(T, start, end, None, [base, spell], W, [start, end])

    if kind == "two_changes":
        start2 = start + int(rng.integers(150, 301))
        T = start2 + _tail(rng)
        for _ in range(50):
            route = rng.integers(4)
            if route in (0, 1, 3):  # first change: towards negative
                base, neg, pos = _baseline(rng, "nonneg")
                s0 = _neg_share(base.dist)
                if route == 3:  # a small step, then a big one
                    r1 = _scaled(rng, base, min(s0 + rng.uniform(0.15, 0.3), 0.9))
                    r2 = _neg_regime(
                        rng,
                        pos,
                        min(_neg_share(r1.dist) + rng.uniform(0.25, 0.4), 0.93),
                    )
                else:
                    r1 = _neg_regime(rng, pos, min(s0 + rng.uniform(0.35, 0.6), 0.92))
                    if route == 0:  # recovery
                        r2 = _pos_regime(rng, neg, rng.uniform(0.03, max(0.05, s0)))
                    else:  # another kind of negativity
                        r2 = _neg_regime(
                            rng,
                            pos,
                            float(
                                np.clip(
                                    _neg_share(r1.dist) + rng.uniform(-0.1, 0.15),
                                    0.5,
                                    0.95,
                                )
                            ),
                        )
            else:  # gloomy recovers, then relapses
                base, neg, pos = _baseline(rng, "gloomy")
                r1 = _pos_regime(rng, neg, rng.uniform(0.04, 0.22))
                r2 = _neg_regime(rng, pos, rng.uniform(0.5, 0.9))
            if _tv(base.dist, r1.dist) >= 0.15 and _tv(r1.dist, r2.dist) >= 0.25:
                break
        return _Plan(
            T,
            start,
            None,
            start2,
            [base, r1, r2],
            _step_W(T, [start, start2], 3),
            [start, start2],
        )

    raise ValueError(f"unknown kind {kind!r}")


# ---------------------------------------------------------------------------
# the classifier


def _confusion(
    q: float, jitter: np.ndarray, rest_cls: int, rest_f: float
) -> np.ndarray:
    recall = _sigmoid(_logit(_BASE_RECALL) + q)
    C = (1.0 - recall)[:, None] * jitter + np.diag(recall)
    for row, f in ((NEUTRAL, rest_f), (HAPPY, 0.3 * rest_f)):
        moved = f * C[row, row]
        C[row, row] -= moved
        C[row, rest_cls] += moved
    out: np.ndarray = C / C.sum(axis=1, keepdims=True)
    return out


def _classify(
    rng: np.random.Generator,
    emo: np.ndarray,
    conf: np.ndarray,
    bias: np.ndarray,
    temp: np.ndarray,
    noise_sd: float,
    margin: float,
) -> np.ndarray:
    """Probabilities for faces showing `emo`; conf/bias/temp are per post."""
    n = emo.shape[0]
    ar = np.arange(n)
    rows = conf[ar, emo]
    decided = _cat(rng, rows)
    z = bias + noise_sd * rng.standard_normal((n, 7)) + 0.5 * np.log(rows + 0.02)
    z[ar, decided] += margin
    z[ar, emo] += 0.7
    return _softmax(z / temp[:, None])


# ---------------------------------------------------------------------------
# one user


def make_stream(rng: np.random.Generator, kind: str) -> Stream:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    plan = _plan(rng, kind)
    T = plan.T
    idx = np.arange(T)
    K = len(plan.regimes)
    R = np.stack([r.dist for r in plan.regimes])
    W = plan.W
    reg_face = W @ np.array([r.face_shift for r in plan.regimes])
    reg_gap = W @ np.array([r.gap_log for r in plan.regimes])
    reg_group = W @ np.array([r.group_mult for r in plan.regimes])
    assert W.shape == (T, K)

    # --- benign events (new camera/filter, face habit, posting rhythm)
    def events(rate: float) -> np.ndarray:
        k = rng.poisson(rate * T / 1500.0)
        return np.sort(rng.integers(1, T, size=k))

    cam_at = events(0.6)
    habit_at = events(0.5)
    rhythm_at = events(0.4)
    habit_shift = np.concatenate([[0.0], np.cumsum(rng.normal(0, 1.0, habit_at.size))])
    habit_post = habit_shift[np.searchsorted(habit_at, idx, side="right")]
    rhythm_shift = np.concatenate(
        [[0.0], np.cumsum(rng.normal(0, 0.6, rhythm_at.size))]
    )
    rhythm_post = rhythm_shift[np.searchsorted(rhythm_at, idx, side="right")]

    # --- sessions
    mean_size = rng.uniform(1.0, 3.5)
    p_burst = rng.uniform(0.005, 0.04)
    burst = np.zeros(T, dtype=bool)
    for b0 in np.flatnonzero(rng.random(T) < p_burst):
        burst[b0 : b0 + int(rng.integers(3, 15))] = True
    sizes = np.where(
        burst,
        rng.geometric(1.0 / (1.0 + 2.5 * mean_size), T),
        rng.geometric(1.0 / mean_size, T),
    )
    dump = rng.random(T) < 0.02
    sizes = sizes + dump * rng.geometric(0.12, T)
    cs = np.cumsum(sizes)
    n_s = int(np.searchsorted(cs, T)) + 1
    sizes = sizes[:n_s].copy()
    burst = burst[:n_s]
    sizes[-1] -= int(cs[n_s - 1] - T)
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    sess = np.repeat(np.arange(n_s), sizes)
    is_first = np.zeros(T, dtype=bool)
    is_first[first] = True

    # between-session gaps in days: heavy tailed, bursts, quiet spells
    med_days = float(np.exp(rng.uniform(np.log(0.25), np.log(4.0))))
    g = rng.lognormal(np.log(med_days), rng.uniform(0.9, 1.5), n_s)
    g *= np.where(burst, rng.uniform(0.05, 0.25), 1.0)
    quiet = rng.random(n_s) < rng.uniform(0.003, 0.025)
    g *= np.where(quiet, np.exp(rng.uniform(np.log(5.0), np.log(40.0), n_s)), 1.0)
    g *= np.exp(reg_gap[first] + rhythm_post[first])
    pos_days = rng.uniform(0, 3650) + np.cumsum(g)
    day = np.floor(pos_days)
    dow0 = int(rng.integers(7))
    weekend_pull = rng.uniform(0.0, 0.5) if rng.random() < 0.6 else 0.0
    dow = (day + dow0) % 7
    move = (dow < 5) & (rng.random(n_s) < weekend_pull)
    day = day + np.where(move, 5 - dow + rng.integers(0, 2, n_s), 0)
    # daily rhythm: one or two preferred hours
    if rng.random() < 0.2:
        peaks = np.array([rng.uniform(22.5, 26.0)])  # night owl
    else:
        peaks = np.array([rng.uniform(11.0, 14.0), rng.uniform(18.0, 23.0)])
    which = rng.integers(peaks.size, size=n_s)
    hour = (peaks[which] + rng.normal(0, rng.uniform(1.0, 3.0), n_s)) % 24.0
    starts = np.sort(day * DAY + hour * 3600.0)

    # within-session gaps in seconds
    wg = rng.lognormal(np.log(rng.uniform(10.0, 300.0)), 1.0, T)
    carousel = rng.random(T) < rng.uniform(0.0, 0.4)
    wg = np.where(carousel, rng.uniform(0.5, 4.0, T), wg)
    wg[is_first] = 0.0
    cw = np.cumsum(wg)
    offset = cw - cw[first][sess]
    dur = offset[np.concatenate([first[1:] - 1, [T - 1]])]
    # a session that would overlap the previous one is pushed a little later
    pause = rng.lognormal(np.log(1800.0), 1.0, n_s) + 120.0
    c = np.concatenate([[0.0], np.cumsum(dur + pause)[:-1]])
    sess_start = c + np.maximum.accumulate(starts - c)
    times = sess_start[sess] + offset
    gaps = np.diff(times, prepend=times[0])
    gaps[0] = 0.0
    hour_p = (times % DAY) / 3600.0
    dow_p = (np.floor(times / DAY) + dow0) % 7
    night = (hour_p < 5.0) | (hour_p >= 23.5)

    # --- mood: OU process sampled per session
    tau = rng.uniform(1.0, 8.0) * DAY
    rho = np.exp(-np.diff(sess_start, prepend=sess_start[0]) / tau)
    eps = rng.standard_normal(n_s)
    innov = np.sqrt(1.0 - rho**2) * eps
    mood = np.empty(n_s)
    m = float(eps[0])
    for i in range(n_s):
        m = rho[i] * m + innov[i] if i else m
        mood[i] = m
    beta = rng.uniform(0.25, 0.8)
    season_amp = rng.uniform(0.0, 0.3) if rng.random() < 0.4 else 0.0
    doy = (times / DAY) % 365.25
    val = (
        beta * mood[sess]
        - rng.uniform(0.0, 0.5) * night
        + rng.uniform(0.0, 0.2) * (dow_p >= 5)
        - season_amp * np.cos(2 * np.pi * (doy - 15.0) / 365.25)
        + rng.normal(0.0, 0.15, T)
    )

    # --- faces, group photos, memes
    face_base = rng.uniform(-2.3, 2.6)
    sess_fx = rng.normal(0.0, rng.uniform(0.3, 1.3), n_s)
    drift = np.cumsum(rng.normal(0.0, 0.025, n_s))
    burst_fx = rng.normal(0.3, 0.5)
    flogit = (
        face_base
        + sess_fx[sess]
        + drift[sess]
        + habit_post
        + reg_face
        + burst_fx * burst[sess]
    )
    face = rng.random(T) < np.clip(_sigmoid(flogit), 0.02, 0.98)
    group_rate = rng.beta(1.2, 4.0) * 0.6
    group = face & (
        rng.random(T) < np.clip(group_rate * reg_group * (1 + burst[sess]), 0, 0.8)
    )
    meme = face & ~group & (rng.random(T) < rng.uniform(0.0, 0.08))

    # --- true emotions
    P = (W @ R) * np.exp(val[:, None] * VALENCE[None, :])
    P[group, HAPPY] *= 2.5
    draw = _cat(rng, P)
    kappa = rng.uniform(0.0, 0.45)
    fresh = ~(rng.random(T) < kappa) | is_first
    fresh[[b for b in plan.bounds if b < T]] = True
    src = np.maximum.accumulate(np.where(fresh, idx, 0))
    emo = draw[src]
    if plan.transient is not None:
        a, b = plan.transient
        negp = R[0][NEG_IDX] + 0.05
        emo[a:b] = NEG_IDX[_cat(rng, np.tile(negp, (b - a, 1)))]
        face[a:b] |= rng.random(b - a) < 0.85
        meme[a:b] = False
        group[a:b] = False
        if emo[b] in NEG_IDX:
            emo[b] = POS_IDX[_cat(rng, R[0][POS_IDX][None, :] + 1e-6)[0]]
    # at least one face and one faceless post
    if face.all() or not face.any():
        j = int(rng.integers(T))
        if plan.transient is not None and plan.transient[0] <= j < plan.transient[1]:
            j = plan.transient[1]
        face[j] = not face[j]
        group[j] = meme[j] = False

    # --- classifier (per camera segment)
    q0 = float(np.clip(rng.normal(-0.35, 0.55), -1.4, 0.6))
    jitter = np.stack([rng.dirichlet(r * 30.0 + 0.05) for r in _CONFUSE])
    np.fill_diagonal(jitter, 0.0)
    jitter /= jitter.sum(axis=1, keepdims=True)
    rest_cls = SAD if rng.random() < 0.6 else 0
    rest_f = rng.uniform(0.1, 0.35) if rng.random() < 0.4 else 0.0
    bias0 = rng.normal(0.0, 0.3, 7)
    if rest_f > 0:
        bias0[rest_cls] += rng.uniform(0.1, 0.5)
    temp0 = float(np.exp(rng.uniform(np.log(0.5), np.log(1.6))))
    n_seg = cam_at.size + 1
    Cs = np.empty((n_seg, 7, 7))
    biases = np.empty((n_seg, 7))
    temps = np.empty(n_seg)
    q, bias, temp = q0, bias0.copy(), temp0
    filters = np.array(
        [
            [-0.2, -0.1, -0.1, 0.5, -0.3, 0.0, 0.2],  # beauty filter
            [0.0, 0.0, 0.3, -0.3, 0.4, 0.0, 0.0],  # low-light phone
            [0.2, 0.1, 0.0, 0.0, 0.0, 0.1, -0.3],  # harsh contrast
        ]
    )
    for s in range(n_seg):
        if s:
            kf = int(rng.integers(4))
            shift = (
                rng.normal(0.0, 0.3, 7)
                if kf == 3
                else filters[kf] * rng.uniform(0.5, 1.5)
            )
            bias = bias + shift
            temp = float(np.clip(temp * np.exp(rng.normal(0.0, 0.25)), 0.4, 2.0))
            q = float(np.clip(q + rng.normal(0.0, 0.3), -1.5, 0.7))
        Cs[s] = _confusion(q, jitter, rest_cls, rest_f)
        biases[s] = bias
        temps[s] = temp
    seg = np.searchsorted(cam_at, idx, side="right")
    noise_sd = rng.uniform(0.4, 0.9)
    margin = rng.uniform(1.8, 2.8)
    ptemp = temps[seg] * np.exp(rng.normal(0.0, 0.2, T)) * np.where(night, 1.25, 1.0)

    conf = Cs[seg]
    pbias = biases[seg]
    pbias[night, SAD] += 0.25
    pbias[night, 2] += 0.1
    read = emo.copy()
    crowd = np.array([0.01, 0.01, 0.01, 0.6, 0.02, 0.1, 0.25])
    meme_dist = np.array([0.15, 0.1, 0.1, 0.25, 0.1, 0.2, 0.1])
    read[meme] = _cat(rng, np.tile(meme_dist, (int(meme.sum()), 1)))
    largest = rng.random() < 0.5
    other = _cat(rng, np.tile(crowd, (T, 1)))
    if largest:  # the pipeline reads the largest face: often someone else's
        swap = group & (rng.random(T) < 0.5)
        read[swap] = other[swap]
    probs = _classify(rng, read, conf, pbias, ptemp, noise_sd, margin)
    if not largest and group.any():  # the pipeline averages over faces
        other_p = _classify(
            rng, other[group], conf[group], pbias[group], ptemp[group], noise_sd, margin
        )
        lam = rng.uniform(0.3, 0.8, int(group.sum()))[:, None]
        probs[group] = lam * probs[group] + (1.0 - lam) * other_p

    # non-face posts: whatever the pipeline returns on a non-face image
    nf = ~face
    mode = rng.choice(3, p=[0.3, 0.5, 0.2])
    if mode == 0:
        probs[nf] = 1.0 / 7.0
    elif mode == 1:
        nb = np.array([0.0, -1.0, 0.3, 0.0, 0.6, -0.5, 1.2]) + rng.normal(0.0, 0.4, 7)
        probs[nf] = _softmax(nb + rng.normal(0.0, 0.5, (int(nf.sum()), 7)))
    else:
        default = np.full(7, 0.02)
        default[NEUTRAL] = 0.88
        probs[nf] = default

    out = probs.astype(np.float32)
    out /= out.sum(axis=1, keepdims=True)
    return Stream(
        kind=kind,
        probs=out,
        gaps=gaps.astype(np.float64),
        face=face.astype(bool),
        start=plan.start,
        end=plan.end,
        start2=plan.start2,
        true_emotion=emo.astype(np.int64),
    )


def make_streams(seed: int, kind: str, n: int) -> list[Stream]:
    ss = np.random.SeedSequence([int(seed), KINDS.index(kind), 8])
    return [make_stream(np.random.default_rng(child), kind) for child in ss.spawn(n)]
