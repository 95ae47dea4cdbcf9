"""blind17: emotion timelines of shift workers and carers in a photo feed.

The simulated people share photos in the photo feed of a workplace-and-family
messaging app: hospital nurses, care-home staff, delivery and taxi drivers,
night-shift factory and warehouse workers, and unpaid carers looking after a
relative at home.

Life on a rota
    Work comes in rota blocks of a few weeks (day shifts, night shifts, or a
    mix) with rest days bunched together.  Posting times follow the rota:
    lunch breaks and evenings on day shifts, small hours and the drive home on
    nights, clustered bursts on days off.  Carers have no rota but broken
    nights, and some spells need night care.  Sleep is irregular, and
    tiredness (long night runs, the first day off after nights) shows on
    camera mostly as a flat, neutral face.

Temperament and mood
    Every person has a temperament (sunny, even, dour or volatile) that sets
    the usual mix of their true emotions.  Around it a slowly drifting mood
    rises and falls, pushed by work: hard weeks, spells with a good team, a
    difficult patient or fare, small nice moments.  These pushes carry over
    for a while and then fade: ordinary ups and downs, not a change.

What the camera and the classifier see
    Many posts show no face (rota screenshots, meals, the view from the cab),
    and some show other people (colleagues at a leaving do, patients'
    families, the relative being cared for) whose expressions are not the
    poster's.  Own faces are shown in each person's own way: some flatten
    everything towards neutral, some put on a brave face.  Each person's
    phone and usual lighting give their classifier its own accuracy, its own
    confusions and its own confidence; poor light (night wards, car interiors)
    makes it less sure and pulls it towards some emotions.  Faceless posts
    still get an (uninformative) output.

Harmless changes
    A move to (or away from) night shifts, a new phone, a new team with more
    group photos: they alter what is seen without changing the person.

Real changes
    Grief when a cared-for relative dies, burnout building over weeks, a hard
    period that passes, relief after leaving a bad job, a new relationship,
    calm after recovery.  They shift the person's true pattern of emotions;
    the classifier shows them smaller and noisier.
"""

from dataclasses import dataclass

import numpy as np

NAME = "blind17"
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
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NEG = np.array([0, 1, 2, 4])
_HAPPY, _NEUTRAL = 3, 6

_ROLES = ("nurse", "care_home", "driver", "night_factory", "carer")
_ROLE_P = np.array([0.25, 0.2, 0.2, 0.2, 0.15])
# Per role: share of night rota blocks, and how dim the usual place of work is.
_P_NIGHT = dict(zip(_ROLES, (0.3, 0.3, 0.35, 0.6, 0.1)))
_WORK_DARK = dict(zip(_ROLES, (0.2, 0.18, 0.35, 0.25, 0.15)))
_HOME_DARK = 0.1
_OFF, _DAY, _NIGHT, _CARE = 0, 1, 2, 3
_RATE_MULT = {_OFF: 2.2, _DAY: 0.6, _NIGHT: 0.7, _CARE: 1.0}

# How mood and tiredness move the true emotion logits.
_VALENCE = np.array([-0.45, -0.4, -0.45, 0.8, -0.6, 0.25, 0.0])
_TIRED = np.array([0.05, 0.0, 0.0, -0.1, 0.05, -0.1, 0.15])

# Directions of real changes in logit space (angry, disgust, fear, happy, sad, surprise, neutral).
_DIRS = {
    "grief": np.array([0.2, 0.05, 0.3, -0.5, 1.0, -0.3, 0.0]),
    "burnout": np.array([0.7, 0.5, 0.25, -0.6, 0.6, -0.2, 0.2]),
    "hard_period": np.array([0.4, 0.2, 0.6, -0.4, 0.7, -0.1, 0.0]),
    "relief": np.array([-0.4, -0.4, -0.3, 1.0, -0.4, 0.2, 0.0]),
    "romance": np.array([-0.2, -0.2, -0.2, 1.0, -0.5, 0.5, 0.0]),
    "calm": np.array([-0.3, -0.3, -0.4, 0.5, -0.5, 0.0, 0.8]),
}
_NEG_DIRS = ("grief", "burnout", "hard_period")
_POS_DIRS = ("relief", "romance", "calm")

# How easily the classifier mixes up two expressions (row: shown, column: output).
_SIM = np.array(
    [
        [0.0, 3.0, 1.0, 0.3, 1.5, 0.7, 2.0],
        [3.0, 0.0, 1.0, 0.3, 1.5, 0.5, 1.5],
        [1.0, 1.0, 0.0, 0.3, 2.0, 3.0, 1.5],
        [0.4, 0.4, 0.3, 0.0, 0.4, 2.0, 3.0],
        [1.2, 0.8, 2.0, 0.4, 0.0, 0.4, 3.5],
        [0.5, 0.3, 3.0, 2.5, 0.3, 0.0, 1.5],
        [1.0, 0.5, 0.8, 1.5, 3.0, 0.8, 0.0],
    ]
)
_EASE = np.array([0.0, -0.12, -0.1, 0.12, -0.03, 0.02, 0.06])
_GROUP_FACES = np.array([0.02, 0.01, 0.01, 0.55, 0.03, 0.1, 0.28])
_CARE_FACES = np.array([0.04, 0.02, 0.1, 0.2, 0.22, 0.04, 0.38])


@dataclass
class Stream:
    """One simulated user's timeline (only the contract fields are read)."""

    kind: str
    probs: np.ndarray
    gaps: np.ndarray
    face: np.ndarray
    start: int | None
    end: int | None
    start2: int | None
    true_emotion: np.ndarray
    true_probs: np.ndarray
    role: str = ""
    temperament: str = ""


@dataclass
class _User:
    role: str
    temperament: str
    base: np.ndarray
    volatility: float
    mood_tau: float
    rate: float
    p_night: float
    sleep_irreg: float
    p_face: float
    group_frac: float
    flat: float
    mask: float
    others_p: np.ndarray
    hard_rate: float


@dataclass
class _Classifier:
    confusion: np.ndarray
    dark_bias: np.ndarray
    dark_pull: float
    kappa: float
    true_pull: float
    sigma: float
    prior: np.ndarray
    faceless_bias: np.ndarray
    faceless_sigma: float
    lowlight: float


def _softmax(z: np.ndarray) -> np.ndarray:
    e: np.ndarray = np.exp(z - z.max(axis=-1, keepdims=True))
    out: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return out


def _neg_share(logits: np.ndarray) -> float:
    return float(_softmax(logits)[NEG].sum())


def _sample_rows(rng: np.random.Generator, p: np.ndarray) -> np.ndarray:
    c = np.cumsum(p, axis=1)
    u = rng.random((p.shape[0], 1)) * c[:, -1:]
    idx: np.ndarray = np.minimum((u > c).sum(axis=1), p.shape[1] - 1)
    return idx


def _pick_temperament(rng: np.random.Generator, kind: str) -> str:
    if kind == "abrupt_pos_neg":
        return str(rng.choice(["sunny", "even", "volatile"], p=[0.4, 0.4, 0.2]))
    if kind == "abrupt_neg_pos":
        return "dour"
    return str(
        rng.choice(["sunny", "even", "dour", "volatile"], p=[0.3, 0.35, 0.15, 0.2])
    )


def _draw_user(rng: np.random.Generator, temperament: str) -> _User:
    role = str(rng.choice(_ROLES, p=_ROLE_P))
    ranges = {
        "sunny": ((0.08, 0.25), (0.3, 0.5), 0.8),
        "even": ((0.2, 0.4), (0.15, 0.3), 1.0),
        "dour": ((0.45, 0.65), (0.05, 0.15), 0.9),
        "volatile": ((0.25, 0.45), (0.2, 0.35), 1.3),
    }
    (nlo, nhi), (hlo, hhi), vol = ranges[temperament]
    p_neg = rng.uniform(nlo, nhi)
    p_happy = rng.uniform(hlo, hhi)
    p_surprise = rng.uniform(0.02, 0.07)
    split = rng.dirichlet([2.0, 1.0, 1.2, 2.5]) * p_neg
    if role == "driver":  # traffic makes for more anger
        split = np.array([split[0] * 1.5, split[1], split[2], split[3]])
        split *= p_neg / split.sum()
    p = np.empty(7)
    p[NEG] = split
    p[_HAPPY], p[5] = p_happy, p_surprise
    p[_NEUTRAL] = 1.0 - p_neg - p_happy - p_surprise
    care = role in ("nurse", "care_home", "carer")
    mix = 0.45 if care else 0.0
    others = (1.0 - mix) * _GROUP_FACES + mix * _CARE_FACES
    return _User(
        role=role,
        temperament=temperament,
        base=np.log(np.maximum(p, 1e-4)),
        volatility=vol * rng.uniform(0.85, 1.15),
        mood_tau=rng.uniform(2.0, 6.0),
        rate=rng.uniform(0.8, 3.0),
        p_night=_P_NIGHT[role] * rng.uniform(0.6, 1.4),
        sleep_irreg=rng.uniform(0.03, 0.15),
        p_face=rng.uniform(0.35, 0.8) * (0.75 if role == "driver" else 1.0),
        group_frac=rng.uniform(0.05, 0.25),
        flat=rng.uniform(0.02, 0.15),
        mask=rng.uniform(0.0, 0.2),
        others_p=others / others.sum(),
        hard_rate=rng.uniform(0.06, 0.16) * (1.3 if care else 1.0),
    )


def _draw_classifier(rng: np.random.Generator) -> _Classifier:
    acc = rng.uniform(0.52, 0.8)
    conf = np.zeros((7, 7))
    for k in range(7):
        a = float(np.clip(acc + _EASE[k] + rng.normal(0.0, 0.05), 0.25, 0.92))
        others = np.array([j for j in range(7) if j != k])
        conf[k, others] = (1.0 - a) * rng.dirichlet(_SIM[k, others] * 4.0 + 0.05)
        conf[k, k] = a
    faceless_bias = rng.normal(0.0, 0.35, 7)
    faceless_bias[_NEUTRAL] += rng.uniform(0.0, 0.8)
    return _Classifier(
        confusion=conf,
        dark_bias=rng.dirichlet([1.5, 0.5, 2.5, 0.4, 2.5, 0.6, 3.0]),
        dark_pull=rng.uniform(0.25, 0.55),
        kappa=rng.uniform(2.0, 5.0),
        true_pull=rng.uniform(0.1, 0.4),
        sigma=rng.uniform(0.3, 1.0),
        prior=rng.normal(0.0, 0.25, 7),
        faceless_bias=faceless_bias,
        faceless_sigma=rng.uniform(0.2, 0.6),
        lowlight=rng.uniform(-0.12, 0.15),
    )


def _timeline(
    rng: np.random.Generator, user: _User, n: int, rota_moves: list[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Post times (hours), hour of day, at-work flag and tiredness for n posts."""
    t_list: list[float] = []
    tired_list: list[float] = []
    work_list: list[bool] = []
    moves = sorted(rota_moves)
    p_night = user.p_night
    carer = user.role == "carer"
    day, block_left, n_work, offset, consec, prev = 0, 0, 4, 0, 0, _OFF
    block = "days"
    while len(t_list) < n + 8:
        while moves and len(t_list) >= moves[0]:
            moves.pop(0)
            p_night = 0.85 if p_night < 0.5 else 0.1
            block_left = 0
        if block_left <= 0:
            block_left = 7 * int(rng.integers(2, 7))
            n_work = int(rng.integers(3, 6))
            offset = int(rng.integers(0, 7))
            if carer:
                block = "care_nights" if rng.random() < p_night else "care"
            elif rng.random() < p_night:
                block = "nights"
            else:
                block = "mixed" if rng.random() < 0.3 else "days"
        dow = (day + offset) % 7
        if carer:
            sh = _CARE
        elif dow >= n_work:
            sh = _OFF
        elif block == "nights" or (block == "mixed" and rng.random() < 0.4):
            sh = _NIGHT
        else:
            sh = _DAY
        consec = consec + 1 if sh == _NIGHT else 0
        k = int(rng.poisson(user.rate * _RATE_MULT[sh]))
        if k:
            noise = rng.normal(0.0, user.sleep_irreg)
            if sh == _OFF:
                lo = 13.0 if prev == _NIGHT else 9.0
                n_cl = 1 if k < 4 or rng.random() < 0.5 else 2
                centers = rng.uniform(lo, 22.5, n_cl)
                hrs = centers[rng.integers(0, n_cl, k)] + rng.exponential(0.4, k)
                wk = np.zeros(k, bool)
                td = np.full(k, 0.5 if prev == _NIGHT else 0.15)
            elif sh == _DAY:
                after = rng.random(k) < 0.55
                hrs = np.where(
                    after, rng.uniform(19.3, 23.0, k), rng.uniform(10.5, 15.0, k)
                )
                wk = ~after
                td = np.where(after, 0.45, 0.3)
            elif sh == _NIGHT:
                after = rng.random(k) < 0.35
                hrs = np.where(
                    after, rng.uniform(31.2, 33.5, k), rng.uniform(22.0, 29.0, k)
                )
                wk = ~after
                td = np.where(after, 0.8, 0.5 + 0.07 * min(consec, 4))
            else:
                nights = block == "care_nights"
                at_night = rng.random(k) < (0.35 if nights else 0.08)
                hrs = np.where(
                    at_night, rng.uniform(25.0, 29.0, k), rng.uniform(7.5, 22.5, k)
                )
                wk = np.ones(k, bool)
                td = np.where(at_night, 0.75, 0.35 + (0.2 if nights else 0.0))
            t_list.extend((day * 24.0 + hrs).tolist())
            tired_list.extend((td + noise).tolist())
            work_list.extend(wk.tolist())
        prev = sh
        day += 1
        block_left -= 1
    order = np.argsort(np.asarray(t_list), kind="stable")[:n]
    t = np.asarray(t_list)[order]
    tired = np.clip(np.asarray(tired_list)[order], 0.0, 1.0)
    work = np.asarray(work_list, dtype=bool)[order]
    return t, t % 24.0, work, tired


def _mood(rng: np.random.Generator, user: _User, t_days: np.ndarray) -> np.ndarray:
    """Slow mood drift plus fading pushes from life at work."""
    n = len(t_days)
    sd = 0.3 * user.volatility
    decay = np.exp(-np.diff(t_days, prepend=t_days[0]) / user.mood_tau)
    shocks = rng.normal(0.0, 1.0, n) * sd * np.sqrt(1.0 - decay**2)
    m = np.empty(n)
    x = rng.normal(0.0, sd)
    for i in range(n):
        x = decay[i] * x + shocks[i]
        m[i] = x
    span = float(t_days[-1]) + 14.0
    # (events per week, amplitude range, plateau days range, fade days range)
    specs = (
        (user.hard_rate, (-0.8, -0.3), (4.0, 9.0), (2.0, 5.0)),  # hard week
        (0.06, (0.3, 0.8), (3.0, 10.0), (2.0, 5.0)),  # good team spell
        (
            6.0 * user.hard_rate,
            (-0.9, -0.3),
            (0.0, 0.0),
            (0.2, 1.0),
        ),  # difficult patient
        (0.35, (0.2, 0.7), (0.0, 0.0), (0.2, 1.0)),  # small nice moment
    )
    for per_week, (alo, ahi), (dlo, dhi), (flo, fhi) in specs:
        ne = int(rng.poisson(per_week / 7.0 * span))
        if ne == 0:
            continue
        te = rng.uniform(-14.0, float(t_days[-1]), ne)
        amp = rng.uniform(alo, ahi, ne) * user.volatility
        dur = rng.uniform(dlo, dhi, ne)
        fade = rng.uniform(flo, fhi, ne)
        # Centre the pushes so that the usual pattern stays the temperament's.
        mean_push = 0.25 * (alo + ahi) * (dlo + dhi + flo + fhi) * user.volatility
        m -= per_week / 7.0 * mean_push
        for lo in range(0, ne, 256):
            sl = slice(lo, lo + 256)
            dt = t_days[:, None] - te[None, sl]
            past = np.maximum(dt - dur[None, sl], 0.0)
            eff = np.where(
                dt >= 0.0, amp[None, sl] * np.exp(-past / fade[None, sl]), 0.0
            )
            m += eff.sum(axis=1)
    return m


def _shift(
    base: np.ndarray, name: str, goal: float, rng: np.random.Generator
) -> np.ndarray:
    """Logit offset along a (personally scaled) direction reaching the goal negative share."""
    d = _DIRS[name] * np.exp(rng.normal(0.0, 0.15, 7))
    p0 = _neg_share(base)
    goal = float(np.clip(goal, 0.04, 0.93))
    sign = 1.0 if goal > p0 else -1.0
    lo, hi = 0.0, 12.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if sign * (_neg_share(base + mid * d) - goal) < 0.0:
            lo = mid
        else:
            hi = mid
    return hi * d


def _size(rng: np.random.Generator) -> float:
    """Size of a real change in the true negative share: a few clear, many subtle."""
    return rng.uniform(0.25, 0.45) if rng.random() < 0.35 else rng.uniform(0.1, 0.22)


def _directed(
    rng: np.random.Generator, p0: float, up: bool, mag: float
) -> tuple[str, float]:
    """Pick a direction of change and a reachable goal share; flip if there is no room."""
    if up and p0 + 0.1 > 0.9:
        up = False
    if not up and p0 - 0.1 < 0.05:
        up = True
    goal = min(p0 + mag, 0.9) if up else max(p0 - mag, 0.05)
    name = str(rng.choice(_NEG_DIRS if up else _POS_DIRS))
    return name, goal


def _tail_length(rng: np.random.Generator, last_event: int) -> int:
    lo = max(250, last_event + 120)
    return int(rng.integers(lo, max(lo, 800) + 1))


def _plan(
    rng: np.random.Generator, kind: str, base: np.ndarray
) -> tuple[int, int | None, int | None, int | None, np.ndarray]:
    """Length, change positions and the per-post logit offsets of a stream."""
    if kind == "none":
        n = int(rng.integers(1500, 3001))
        return n, None, None, None, np.zeros((n, 7))
    p0 = _neg_share(base)
    start = int(rng.integers(40, 201 if kind == "two_changes" else 251))
    end: int | None = None
    start2: int | None = None
    if kind == "placebo":
        n = _tail_length(rng, start)
        return n, start, None, None, np.zeros((n, 7))
    if kind in ("abrupt_pos_neg", "abrupt_neg_pos"):
        n = _tail_length(rng, start)
        name, goal = _directed(rng, p0, kind == "abrupt_pos_neg", _size(rng))
        off = np.zeros((n, 7))
        off[start:] = _shift(base, name, goal, rng)
    elif kind == "small_shift":
        n = _tail_length(rng, start)
        name, goal = _directed(
            rng, p0, rng.random() < (0.6 if p0 < 0.55 else 0.25), rng.uniform(0.1, 0.3)
        )
        off = np.zeros((n, 7))
        off[start:] = _shift(base, name, goal, rng)
    elif kind == "gradual":
        ramp = int(rng.integers(30, 151))
        n = _tail_length(rng, start + ramp)
        up = rng.random() < (0.7 if p0 < 0.45 else 0.3)
        name, goal = _directed(rng, p0, up, rng.uniform(0.15, 0.45))
        w = np.ones(n)
        w[:start] = 0.0
        w[start : start + ramp] = (np.arange(1, ramp + 1) / ramp) ** rng.uniform(
            0.7, 1.5
        )
        off = w[:, None] * _shift(base, name, goal, rng)[None, :]
    elif kind == "transient":
        end = start + int(rng.integers(1, 4))
        n = _tail_length(rng, end)
        if p0 > 0.55 and rng.random() < 0.5:
            name, goal = "relief", rng.uniform(0.08, 0.25)
        else:
            name, goal = (
                str(rng.choice(_NEG_DIRS)),
                rng.uniform(max(0.7, p0 + 0.2), 0.93),
            )
        off = np.zeros((n, 7))
        off[start:end] = _shift(base, name, goal, rng)
    elif kind == "episode":
        length = int(rng.integers(30, 161))
        end = start + length
        n = _tail_length(rng, end)
        name, goal = _directed(rng, p0, True, rng.uniform(0.2, 0.45))
        w = np.zeros(n)
        rise, fall = max(2, length // 8), max(3, length // 4)
        w[start:end] = 1.0
        w[start : start + rise] = np.arange(1, rise + 1) / rise
        w[end - fall : end] = np.linspace(1.0, rng.uniform(0.3, 0.6), fall)
        off = w[:, None] * _shift(base, name, goal, rng)[None, :]
    elif kind == "two_changes":
        ramp1 = int(rng.integers(5, 26)) if rng.random() < 0.3 else 1
        start2 = start + int(rng.integers(ramp1 + 100, ramp1 + 251))
        n = _tail_length(rng, start2)
        name1, goal1 = _directed(
            rng, p0, rng.random() < (0.6 if p0 < 0.45 else 0.3), _size(rng)
        )
        d1 = _shift(base, name1, goal1, rng)
        p1 = _neg_share(base + d1)
        up2 = (p1 < p0) if rng.random() < 0.6 else (p1 > p0)
        name2, goal2 = _directed(rng, p1, up2, max(_size(rng), 0.12))
        d2 = _shift(base + d1, name2, goal2, rng)
        w1 = np.ones(n)
        w1[:start] = 0.0
        w1[start : start + ramp1] = np.arange(1, ramp1 + 1) / ramp1
        w2 = (np.arange(n) >= start2).astype(float)
        off = w1[:, None] * d1[None, :] + w2[:, None] * d2[None, :]
    else:  # pragma: no cover - guarded by make_stream
        raise ValueError(kind)
    return n, start, end, start2, off


def _classify(
    rng: np.random.Generator,
    clf: _Classifier,
    shown: np.ndarray,
    dark: np.ndarray,
    face: np.ndarray,
) -> np.ndarray:
    n = len(shown)
    pull = (clf.dark_pull * dark)[:, None]
    rows = clf.confusion[shown] * (1.0 - pull) + pull * clf.dark_bias[None, :]
    seen = _sample_rows(rng, rows)
    kap = clf.kappa * (1.0 - 0.35 * dark)
    z = clf.prior[None, :] + rng.normal(0.0, clf.sigma, (n, 7))
    idx = np.arange(n)
    z[idx, seen] += kap
    z[idx, shown] += clf.true_pull * kap
    zf = clf.faceless_bias[None, :] + rng.normal(0.0, clf.faceless_sigma, (n, 7))
    return _softmax(np.where(face[:, None], z, zf))


def make_stream(rng: np.random.Generator, kind: str) -> Stream:
    """Simulate one user's timeline of the given kind."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    user = _draw_user(rng, _pick_temperament(rng, kind))
    n, start, end, start2, offset = _plan(rng, kind, user.base)

    # Harmless changes: rota moves, new phones, new teams.
    n_nuis = int(rng.poisson(2.0 if kind == "none" else 0.5))
    where = [int(rng.integers(20, n - 20)) for _ in range(n_nuis)]
    if kind == "placebo" and start is not None and rng.random() < 0.5:
        where.append(
            start + int(rng.integers(-10, 11))
        )  # right where a change could be
    nuis = [(str(rng.choice(["rota", "phone", "team"])), i) for i in where]

    t_hours, hour, work, tired = _timeline(
        rng, user, n, [i for k, i in nuis if k == "rota"]
    )
    gaps = np.diff(t_hours, prepend=t_hours[0]) * 3600.0
    small = gaps[1:] < 20.0
    gaps[1:][small] = 20.0 + rng.exponential(60.0, int(small.sum()))
    if kind == "transient" and start is not None and end is not None:
        # The brief dip is one evening: its posts come minutes apart.
        old = gaps[start + 1 : end].copy()
        new = np.minimum(old, rng.uniform(300.0, 3000.0, len(old)))
        gaps[start + 1 : end] = new
        if end < n:
            gaps[end] += float((old - new).sum())
    gaps[0] = 0.0
    t_days = np.cumsum(gaps) / 86400.0

    mood = _mood(rng, user, t_days)
    logits = (
        user.base[None, :] + mood[:, None] * _VALENCE + tired[:, None] * _TIRED + offset
    )
    true_probs = _softmax(logits)
    true = _sample_rows(rng, true_probs)

    # Camera: own face, others' faces, or no face.
    group = np.full(n, user.group_frac)
    clfs = [_draw_classifier(rng)]
    seg = np.zeros(n, dtype=int)
    for what, i in sorted(nuis, key=lambda x: x[1]):
        if what == "team":
            group[i:] = np.minimum(group[i:] * rng.uniform(1.5, 3.0), 0.6)
        elif what == "phone":
            clfs.append(_draw_classifier(rng))
            seg[i:] = len(clfs) - 1
    face_any = rng.random(n) < user.p_face * np.where(work, 0.8, 1.0)
    others = face_any & (rng.random(n) < group)
    own = face_any & ~others
    shown = true.copy()
    flat = own & (rng.random(n) < np.clip(user.flat + 0.3 * tired, 0.0, 0.9))
    shown[flat] = _NEUTRAL
    brave = own & ~flat & np.isin(shown, NEG) & (rng.random(n) < user.mask)
    shown[brave] = np.where(rng.random(int(brave.sum())) < 0.3, _HAPPY, _NEUTRAL)
    shown[others] = _sample_rows(rng, np.tile(user.others_p, (int(others.sum()), 1)))

    nightness = np.where(
        (hour < 6) | (hour >= 21), 1.0, np.where((hour < 8) | (hour >= 19), 0.5, 0.0)
    )
    loc = np.where(work, _WORK_DARK[user.role], _HOME_DARK)
    lowlight = np.array([c.lowlight for c in clfs])[seg]
    dark = 0.45 * nightness + loc * (0.5 + 0.5 * nightness) + lowlight
    dark = np.clip(dark + rng.normal(0.0, 0.1, n), 0.0, 1.0)
    face = face_any & (rng.random(n) >= 0.03 + 0.25 * dark)

    probs = np.empty((n, 7))
    for j, clf in enumerate(clfs):
        sel = seg == j
        if sel.any():
            probs[sel] = _classify(rng, clf, shown[sel], dark[sel], face[sel])
    probs32 = probs.astype(np.float32)
    probs32 /= probs32.sum(axis=1, keepdims=True)

    return Stream(
        kind=kind,
        probs=probs32,
        gaps=gaps.astype(np.float64),
        face=face.astype(bool),
        start=start,
        end=end,
        start2=start2,
        true_emotion=true.astype(np.int64),
        true_probs=true_probs.astype(np.float32),
        role=user.role,
        temperament=user.temperament,
    )


def make_streams(seed: int, kind: str, n: int) -> list[Stream]:
    """n independent streams of one kind, deterministic given the seed."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    children = np.random.SeedSequence(seed).spawn(n)
    return [make_stream(np.random.default_rng(c), kind) for c in children]
