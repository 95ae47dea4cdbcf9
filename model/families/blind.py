"""The blind family: labelled emotion timelines of simulated social-media users.

Written from a plain description only, without reading the detector, its training streams or its
benchmark; it is held out of training, the exam the detector has not seen. numpy only, no project imports.

The world it simulates
----------------------
A stream is one user's image posts in time order; for each post a FER-2013 emotion CNN (run on the
largest face found) gives 7 probabilities. The detector sees `probs`, `gaps` and `face`; the labels say
where the user's real emotional pattern changed.

- **People.** A user's baseline is a distribution over the 7 emotions drawn around an archetype:
  cheerful, flat (neutral-heavy), mixed, gloomy, irritable or anxious, individualised by a Dirichlet.
  One user in five is volatile: moods are less sticky and the baseline wanders more.
- **Moods stick.** Posts come in sessions (bursts of a few posts minutes apart). A session has a mood;
  each of its posts shows that mood with a per-user probability (0.25-0.85), else a fresh draw from the
  pattern. The next session keeps the mood with a chance that fades over hours to a day or so, so bad
  days and good days happen to everybody without being a change. Without any change the pattern still
  wanders slowly (a few slow sinusoids in log space, a few points of share).
- **Time.** Sessions per day vary by user from one a fortnight to ten a day; gaps between sessions are
  heavy-tailed (log-normal, plus rare absences of days to two months); a per-user day/night rhythm
  (a chronotype, a sleep window with few posts) warps them through a time change; posts within a
  session are seconds to minutes apart. Trips (a burst of frequent, mostly faceless posts) and life
  changes (a lasting change of posting rate or of selfie habit) happen with no change of mood, so the
  rhythm alone never gives a change away; real changes to a negative pattern often come with fewer
  posts and fewer selfies, as they do in life.
- **Faces.** Each user has a faceless share (landscapes, food, memes) of 5-40%, varying by session; sad
  people post fewer selfies. The face detector misses 2-10% of faces and finds a face in 1-6% of
  faceless images. On a faceless image the CNN's output is unrelated to the user's mood: neutral-ish
  noise with a per-user content bias, and sometimes a confident answer about a meme's face.
- **The classifier.** Per user it is right on exactly its accuracy (50-75%) of the face posts it
  sees; which posts it gets right leans on the class (happy and surprise easy, fear and disgust
  hard), so a user's accuracy moves with their mood. Errors follow FER-2013 confusions
  (fear<->surprise, fear<->sad, angry<->disgust, sad<->neutral, neutral<->everything), plus a per-user
  bias towards one class (a face that reads sad or angry at rest, lighting, ethnicity, age). Confidence
  runs from peaky to flat per user, the truth is often the runner-up when it is wrong, and it is
  sometimes confidently wrong. Some users change camera: confidence and accuracy shift, mood does not.

Kinds and labels: see `KINDS` and `Stream`; the rules for `start`, `end`, `start2` are in
`tests/test_family_blind.py`.

>>> s = make_stream(np.random.default_rng(0), "episode")
>>> s.probs.shape[1], s.probs.dtype, float(s.gaps[0]), bool(12 <= s.end - s.start <= 60)
(7, dtype('float32'), 0.0, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("none", "abrupt_pos_neg", "abrupt_neg_pos", "gradual", "small_shift", "transient",
         "episode", "two_changes", "placebo")
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # FER-2013 order
ANGRY, DISGUST, FEAR, HAPPY, SAD, SURPRISE, NEUTRAL = range(7)
NEGATIVE = np.array([True, True, True, False, True, False, False])  # angry, disgust, fear, sad

# Pattern centres, in LABELS order. Baselines are drawn around the first two groups; the last two are
# what a user changes into.
_CALM = {"cheerful": [.03, .01, .02, .60, .06, .08, .20], "flat": [.03, .01, .02, .20, .08, .04, .62],
         "mixed": [.08, .03, .05, .35, .15, .08, .26]}
_GLOOMY = {"gloomy": [.10, .04, .08, .12, .38, .03, .25], "irritable": [.25, .08, .04, .15, .15, .03, .30],
           "anxious": [.05, .02, .25, .10, .20, .10, .28]}
_LOW = {"sad": [.06, .02, .06, .05, .50, .02, .29], "angry": [.42, .12, .04, .06, .12, .02, .22],
        "fearful": [.05, .02, .38, .05, .18, .10, .22], "mixed_negative": [.16, .06, .12, .06, .28, .03, .29]}
_HIGH = {"cheerful": _CALM["cheerful"], "flat": _CALM["flat"], "content": [.02, .01, .02, .42, .05, .06, .42]}

# What a FER-2013 CNN says instead of the true class (rows) when it is wrong; zero diagonal.
_CONFUSION = np.array([
    [0.00, 0.15, 0.12, 0.05, 0.25, 0.05, 0.38],   # angry
    [0.50, 0.00, 0.10, 0.08, 0.14, 0.03, 0.15],   # disgust
    [0.08, 0.02, 0.00, 0.05, 0.32, 0.30, 0.23],   # fear
    [0.06, 0.02, 0.08, 0.00, 0.10, 0.20, 0.54],   # happy
    [0.12, 0.02, 0.20, 0.06, 0.00, 0.04, 0.56],   # sad
    [0.05, 0.01, 0.45, 0.24, 0.05, 0.00, 0.20],   # surprise
    [0.14, 0.02, 0.10, 0.20, 0.40, 0.14, 0.00],   # neutral
])
# How strongly each true class leans towards being among the posts the CNN gets right.
_EASE = np.array([0.8, 0.6, 0.55, 1.8, 0.8, 1.4, 1.0])


@dataclass
class Stream:
    kind: str
    probs: np.ndarray          # (T, 7) float32, rows sum to 1: the CNN's output per post
    gaps: np.ndarray           # (T,) float64 seconds since the previous post (0.0 for the first)
    face: np.ndarray           # (T,) bool: the face detector found a face
    start: int | None          # first post of the (first) change
    end: int | None            # first post back at the old pattern; None: the change persists
    start2: int | None         # first post of the second change ("two_changes" only)
    true_emotion: np.ndarray   # (T,) int: the user's real emotion per post, index into LABELS


# A stretch of posts where posting behaviour differs: (from post, to post, posting rate x, faceless share +,
# time between a session's posts x).
_Habit = tuple[int, int, float, float, float]


@dataclass
class _User:
    stick: float              # share of a session's posts that show the session's mood
    carry: float              # chance the next session keeps the mood, for sessions close in time
    carry_hours: float        # time over which that carry-over fades
    wander: float             # sd (log scale) of the slow drift of the pattern without any change
    sessions_per_day: float
    session_mean: float       # mean posts per session
    within_s: float           # median seconds between posts of a session
    absence: float            # chance that a gap between sessions is an absence of days to weeks
    day: np.ndarray           # (1441,) operational hours elapsed at each minute of the clock day
    faceless: float
    miss: float               # faces the detector misses
    false_face: float         # faceless images where it finds a face
    accuracy: float
    margin: float             # typical logit lead of the top class: small = flat, large = peaky
    noise: float
    bias_class: int
    bias: float
    logit_bias: np.ndarray    # (7,)
    content: np.ndarray       # (7,) logits of the CNN on this user's faceless images


@dataclass
class _Plan:
    regime: np.ndarray        # (T, 7) the user's pattern at each post, before the slow wander
    cuts: list[int]           # posts where a change takes effect: the mood is drawn afresh
    start: int | None = None
    end: int | None = None
    start2: int | None = None
    dip: tuple[int, ...] = ()
    dip_emotion: int = SAD
    behaviour: tuple[_Habit, ...] = ()


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _categorical(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    c = np.cumsum(p, axis=1)                                   # (n, 7)
    u = rng.random(len(p)) * c[:, -1]
    return np.minimum((c < u[:, None]).sum(axis=1), 6)


def _tv(a: np.ndarray, b: np.ndarray) -> float:
    return 0.5 * float(np.abs(a - b).sum())


def _negative(p: np.ndarray) -> float:
    return float(p[NEGATIVE].sum())


def _draw_user(rng: np.random.Generator) -> _User:
    volatile = rng.random() < 0.2
    peak = rng.normal(20.0, 2.5) % 24                          # chronotype: the busiest hour
    hours = np.arange(1440) / 60
    lam = np.exp(_u(rng, 0.5, 1.5) * np.cos(2 * np.pi * (hours - peak) / 24))
    lam[((hours - (peak + _u(rng, 2.5, 5.0))) % 24) < _u(rng, 6.0, 9.0)] *= _u(rng, 0.03, 0.12)  # asleep
    lam /= lam.mean()
    bias_class = int(rng.choice([ANGRY, FEAR, SAD, NEUTRAL, HAPPY]))
    bias = _u(rng, 0.0, 0.35)
    logit_bias = rng.normal(0.0, 0.25, 7)
    logit_bias[NEUTRAL] += 0.3                                 # FER CNNs lean to neutral
    logit_bias[bias_class] += 1.5 * bias
    content = 0.5 * np.log(rng.dirichlet(np.full(7, 0.7)) + 1e-3)
    content[NEUTRAL] += 1.0
    return _User(
        stick=_u(rng, 0.25, 0.5) if volatile else _u(rng, 0.5, 0.85),
        carry=_u(rng, 0.1, 0.35) if volatile else _u(rng, 0.2, 0.65),
        carry_hours=_u(rng, 4.0, 24.0),
        wander=_u(rng, 0.1, 0.2) if volatile else _u(rng, 0.04, 0.12),
        sessions_per_day=float(np.clip(rng.lognormal(0.0, 0.9), 0.07, 10.0)),
        session_mean=_u(rng, 1.2, 5.0),
        within_s=float(np.exp(_u(rng, np.log(20), np.log(400)))),
        absence=_u(rng, 0.005, 0.04),
        day=np.concatenate([[0.0], np.cumsum(lam) / 60]),
        faceless=_u(rng, 0.05, 0.4), miss=_u(rng, 0.02, 0.1), false_face=_u(rng, 0.01, 0.06),
        accuracy=_u(rng, 0.5, 0.75),
        margin=float(np.exp(_u(rng, np.log(0.6), np.log(3.5)))), noise=_u(rng, 0.4, 1.0),
        bias_class=bias_class, bias=bias, logit_bias=logit_bias, content=content)


def _pattern(rng: np.random.Generator, *pools: dict[str, list[float]]) -> np.ndarray:
    centres = [c for pool in pools for c in pool.values()]
    centre = np.asarray(centres[rng.integers(len(centres))])
    return rng.dirichlet(_u(rng, 25, 80) * centre + 0.05)


def _far(rng: np.random.Generator, pools: tuple[dict[str, list[float]], ...], *away: tuple[np.ndarray, float],
         negative: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """A pattern from `pools` at least the given total-variation distance from each of `away`, with a
    negative share within `negative` (a draw of the right archetype can still be too mild)."""
    p = _pattern(rng, *pools)
    for _ in range(200):
        if all(_tv(p, q) >= d for q, d in away) and negative[0] <= _negative(p) <= negative[1]:
            break
        p = _pattern(rng, *pools)
    return p


def _turn(rng: np.random.Generator, old: np.ndarray, new: np.ndarray, lo: int, hi: int) -> tuple[_Habit, ...]:
    """How posting behaviour follows a large change of mood: low people post less, and fewer selfies."""
    if _negative(new) > _negative(old) + 0.25 and rng.random() < 0.6:
        return ((lo, hi, _u(rng, 0.4, 0.9), _u(rng, 0.0, 0.15), 1.0),)
    if _negative(new) < _negative(old) - 0.25 and rng.random() < 0.5:
        return ((lo, hi, _u(rng, 0.9, 1.6), _u(rng, -0.05, 0.05), 1.0),)
    return ()


def _plan(rng: np.random.Generator, kind: str) -> _Plan:
    start, tail = int(rng.integers(30, 251)), int(rng.integers(150, 401))
    if kind == "none":
        t = int(rng.integers(1500, 3001))
        return _Plan(np.tile(_pattern(rng, _CALM, _GLOOMY), (t, 1)), [])
    if kind == "placebo":
        return _Plan(np.tile(_pattern(rng, _CALM, _GLOOMY), (start + tail, 1)), [], start=start)
    if kind == "transient":
        old = _pattern(rng, _CALM, _GLOOMY)
        n = int(rng.integers(1, 3))
        # a mood the user rarely shows: a negative one for a calm user, happiness for a gloomy one
        options, weights = ([SAD, ANGRY, FEAR, DISGUST], np.array([.4, .3, .2, .1])) if _negative(old) < 0.4 \
            else ([HAPPY, SURPRISE], np.array([.8, .2]))
        weights = weights * (old[options] < 0.15)
        mood = int(rng.choice(options, p=weights / weights.sum())) if weights.sum() else int(np.argmin(old))
        return _Plan(np.tile(old, (start + n + tail, 1)), [], start=start, end=start + n,
                     dip=tuple(range(start, start + n)), dip_emotion=mood)
    if kind in ("abrupt_pos_neg", "small_shift") or (kind == "gradual" and rng.random() < 0.7):
        old = _pattern(rng, _CALM)
        while _negative(old) > 0.35:
            old = _pattern(rng, _CALM)
    elif kind in ("abrupt_neg_pos", "gradual"):
        old = _pattern(rng, _GLOOMY, _LOW)
        while _negative(old) < 0.4:
            old = _pattern(rng, _GLOOMY, _LOW)
    else:
        old = _pattern(rng, _CALM, _GLOOMY)
    calm = _negative(old) < 0.4
    if kind == "small_shift":
        delta = _u(rng, 0.1, 0.3)
        towards = _pattern(rng, _LOW) * NEGATIVE
        new = np.where(NEGATIVE, old + delta * towards / towards.sum(),
                       old * (1 - _negative(old) - delta) / (1 - _negative(old)))
    elif kind == "abrupt_neg_pos" or (kind == "gradual" and not calm):
        new = _far(rng, (_HIGH,), (old, 0.3), negative=(0.0, 0.2))
    elif kind in ("abrupt_pos_neg", "gradual") or (kind in ("episode", "two_changes") and calm):
        new = _far(rng, (_LOW,), (old, 0.3), negative=(0.45, 1.0))
    else:
        new = _far(rng, (_LOW, _HIGH), (old, 0.35))
    if kind == "episode":
        end = start + int(rng.integers(12, 61))
        t = end + tail
        regime = np.tile(old, (t, 1))
        regime[start:end] = new
        return _Plan(regime, [start, end], start=start, end=end, behaviour=_turn(rng, old, new, start, end))
    if kind == "two_changes":
        start2 = start + int(rng.integers(150, 301))
        third = _far(rng, (_CALM, _GLOOMY, _LOW, _HIGH), (new, 0.35), (old, 0.25))
        regime = np.tile(old, (start2 + tail, 1))
        regime[start:start2], regime[start2:] = new, third
        behaviour = _turn(rng, old, new, start, start2) + _turn(rng, old, third, start2, len(regime))
        return _Plan(regime, [start, start2], start=start, start2=start2, behaviour=behaviour)
    ramp = int(rng.integers(10, 61)) if kind == "gradual" else 0
    t = start + ramp + tail
    w = np.clip((np.arange(t) - start + 1) / (ramp + 1), 0.0, 1.0)[:, None]   # (T, 1), 0 before start
    return _Plan((1 - w) * old + w * new, [] if ramp else [start], start=start,
                 behaviour=_turn(rng, old, new, start, t))


def _life(rng: np.random.Generator, t: int) -> tuple[_Habit, ...]:
    """Trips and life changes: posting behaviour that moves while the mood does not."""
    out: list[_Habit] = []
    for _ in range(rng.poisson(0.6 * t / 1000)):
        a = int(rng.integers(0, t))
        out.append((a, a + int(rng.integers(10, 51)), 3.0, 0.25, 0.5))
    if rng.random() < 0.25:
        out.append((int(rng.integers(t // 10, 9 * t // 10)), t, float(np.exp(_u(rng, np.log(0.5), np.log(2.0)))),
                    _u(rng, -0.1, 0.1), 1.0))
    return tuple(out)


def _timeline(rng: np.random.Generator, user: _User, t: int, behaviour: tuple[_Habit, ...]
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gaps (seconds), the session of each post, its first post, and each post's faceless delta."""
    sizes = np.minimum(rng.geometric(1 / user.session_mean, size=t), 25)
    ends = np.cumsum(sizes)
    n = int(np.searchsorted(ends, t)) + 1
    sizes = sizes[:n].copy()
    sizes[-1] -= ends[n - 1] - t
    firsts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    session = np.repeat(np.arange(n), sizes)
    # gaps between session starts, in operational hours (hours of a day that has the user's average rhythm)
    gap = rng.lognormal(np.log(24 / user.sessions_per_day) - 0.5, 1.0, n)
    away = rng.random(n) < user.absence
    gap[away] += np.minimum(72 * (1 + rng.pareto(1.2, away.sum())), 60 * 24)
    within = np.clip(rng.lognormal(np.log(user.within_s), 1.0, t), 2.0, 3600.0)
    faceless = np.zeros(t)
    for lo, hi, rate, more_faceless, quicker in behaviour:
        gap[(firsts >= lo) & (firsts < hi)] /= rate
        faceless[lo:hi] += more_faceless
        within[lo:hi] *= quicker
    op = _u(rng, 0, 24) + np.cumsum(np.minimum(gap, 90 * 24))     # dormant users are not in the stream
    days = np.floor(op / 24)
    clock = days * 24 + np.interp(op - 24 * days, user.day, np.arange(1441) / 60)   # warp to the clock
    starts = clock * 3600
    within[firsts] = 0.0
    c = np.cumsum(within)
    offset = c - c[firsts][session]
    duration = offset[firsts + sizes - 1]
    short = np.maximum(0.0, duration[:-1] + 600 - np.diff(starts))    # sessions never overlap
    starts[1:] += np.cumsum(short)
    times = starts[session] + offset
    return np.diff(times, prepend=times[0]), session, firsts, faceless


def _emotions(rng: np.random.Generator, user: _User, regime: np.ndarray, gaps: np.ndarray,
              firsts: np.ndarray, cuts: list[int]) -> np.ndarray:
    t = len(regime)
    new_segment = np.zeros(t, bool)
    new_segment[firsts] = True
    new_segment[cuts] = True
    heads = np.flatnonzero(new_segment)
    redraw = rng.random(len(heads)) >= user.carry * np.exp(-gaps[heads] / 3600 / user.carry_hours)
    redraw[0] = True
    redraw[np.isin(heads, cuts)] = True
    draws = _categorical(rng, regime[heads])
    held = np.maximum.accumulate(np.where(redraw, np.arange(len(heads)), 0))
    mood = draws[held][np.cumsum(new_segment) - 1]               # (T,) the session's mood
    return np.where(rng.random(t) < user.stick, mood, _categorical(rng, regime))


def _classify(rng: np.random.Generator, user: _User, true: np.ndarray, real: np.ndarray,
              flag: np.ndarray, dip: tuple[int, ...]) -> np.ndarray:
    t = len(true)
    margin_x, ease_x = np.ones(t), np.ones(t)
    if rng.random() < 0.3:                                        # a new phone: confidence and accuracy move
        at = int(rng.integers(t // 10, 9 * t // 10))
        margin_x[at:] = np.exp(_u(rng, np.log(0.5), np.log(1.8)))
        ease_x[at:] = _u(rng, 0.6, 1.5)
    correct = np.zeros(t, bool)
    seen = np.flatnonzero(real & flag)
    k = int(round(user.accuracy * len(seen)))
    ease = _EASE[true[seen]] * ease_x[seen]
    ease[np.isin(seen, dip)] *= 50.0
    keys = np.log(rng.random(len(seen))) / ease                  # weighted sampling without replacement
    if k:
        correct[seen[np.argpartition(-keys, k - 1)[:k]]] = True
    missed = real & ~flag
    correct[missed] = rng.random(int(missed.sum())) < 0.8 * user.accuracy
    rows = _CONFUSION[true] * (1 - user.bias)
    rows[:, user.bias_class] += user.bias
    rows[np.arange(t), true] = 0.0
    pred = np.where(correct, true, _categorical(rng, rows))
    z = user.noise * rng.standard_normal((t, 7)) * np.where(missed, 1.3, 1.0)[:, None]
    z += user.logit_bias + 1.5 * _CONFUSION[pred]                # runners-up are the usual confusions
    m = user.margin * rng.lognormal(0.0, 0.45, t) * margin_x * np.where(missed, 0.5, 1.0)
    m = np.where(correct, m, m * rng.uniform(0.4, 1.0, t))
    wrong = np.flatnonzero(~correct)
    z[wrong, true[wrong]] += rng.uniform(0.2, 0.9, len(wrong)) * m[wrong]   # the truth often comes second
    rows_t = np.arange(t)
    z[rows_t, pred] = -np.inf
    z[rows_t, pred] = z.max(axis=1) + m
    # no face in the image: the output says nothing about the user's mood
    zf = 0.8 * rng.standard_normal((t, 7)) + user.content
    meme = np.flatnonzero(rng.random(t) < 0.15)
    zf[meme, rng.integers(0, 7, len(meme))] += rng.uniform(2.0, 5.0, len(meme))
    z = np.where(real[:, None], z, zf)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    return p / p.sum(axis=1, keepdims=True)


def make_stream(rng: np.random.Generator, kind: str) -> Stream:
    """One user's timeline of the given kind (one of `KINDS`)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    user = _draw_user(rng)
    plan = _plan(rng, kind)
    t = len(plan.regime)
    gaps, session, firsts, more_faceless = _timeline(rng, user, t, plan.behaviour + _life(rng, t))
    steps = np.arange(t)[:, None]
    wander = np.zeros((t, 7))
    for _ in range(3):                                            # slow drift of the pattern, no change
        wander += (rng.normal(0.0, user.wander * np.sqrt(2 / 3), 7)
                   * np.sin(2 * np.pi * steps / _u(rng, 200, 1500) + rng.uniform(0, 2 * np.pi, 7)))
    regime = plan.regime * np.exp(wander)
    regime /= regime.sum(axis=1, keepdims=True)
    true = _emotions(rng, user, regime, gaps, firsts, plan.cuts)
    dip = list(plan.dip)
    true[dip] = plan.dip_emotion
    faceless = rng.beta(4 * user.faceless, 4 * (1 - user.faceless), len(firsts))[session] + more_faceless
    selfie = np.where(NEGATIVE[true], 0.85, np.where(true == HAPPY, 1.1, 1.0))   # sad people post fewer selfies
    real = rng.random(t) < np.clip((1 - faceless) * selfie, 0.1, 0.98)
    flag = np.where(real, rng.random(t) >= user.miss, rng.random(t) < user.false_face)
    real[dip], flag[dip] = True, True
    probs = _classify(rng, user, true, real, flag, plan.dip)
    return Stream(kind=kind, probs=probs, gaps=gaps.astype(np.float64), face=flag.astype(bool),
                  start=plan.start, end=plan.end, start2=plan.start2, true_emotion=true.astype(np.int64))


def make_streams(seed: int, kind: str, n: int) -> list[Stream]:
    """`n` streams of one kind; stream i depends only on (seed, kind, i), not on n."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    children = np.random.SeedSequence([seed, KINDS.index(kind)]).spawn(n)
    return [make_stream(np.random.default_rng(child), kind) for child in children]
