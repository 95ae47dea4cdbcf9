"""blind13 -- emotion streams of photo-sharing app users, read by an imperfect pipeline.

The world
---------
Each simulated user of a photo-sharing app has a *personality* (cheerful, flat,
mixed, volatile, gloomy, anxious or irritable) that fixes a personal baseline mix
over the seven FER-2013 emotions (angry, disgust, fear, happy, sad, surprise,
neutral).  On top of the baseline the user's felt emotion is pushed around by a
slow mood that persists in real time (a continuous-time Ornstein-Uhlenbeck mood
plus a per-calendar-day "good day / bad day" effect), by context (trips and
holidays, birthday, parties and other events that come as bursts of posts,
weekends, late nights) and by emotional inertia (posts close together in time
tend to carry the same feeling).

Posting follows a real-life rhythm: sessions arrive through a daily activity
profile (per-user chronotype, weekday/weekend difference, trips and holidays
with more activity), with heavy-tailed gaps, occasional long silences of days
to months, multi-post sessions and event bursts.  Posts are photos of different
types (selfie, group photo, scenery, food, pet, other/screenshot) whose mix is
personal, drifts slowly, shifts with context and with the user's mood (sad
people take fewer selfies), and undergoes harmless life changes that are not
mood changes (a foodie phase, a new pet, a travel phase, a new phone that
changes detection quality, a new job that changes the posting rate).

The observation pipeline is imperfect and user specific: a face detector that
misses faces (worse at night and for distant faces, with rare false positives
on pets and objects); group photos whose dominant face is often somebody else's;
posed smiles that mask a negative mood; and a 7-class classifier with a
per-user confusion matrix (accuracy roughly 45-75% on detected faces, with
personal confusions such as neutral read as sad or fear read as surprise) and a
per-user confidence shape from peaked to flat.  Posts without a detected face
still get a probability vector, close to the classifier's prior plus noise and a
faint trace of the scene content.

Stream kinds (a mood change = the user's true emotional regime changes at a post
index): "none" (long, no change), "abrupt_pos_neg", "abrupt_neg_pos",
"gradual" (ramp of 20-200 posts), "small_shift" (negative share moves by
0.1-0.3), "transient" (1-3 posts of another regime), "episode" (a dip of
tens to ~100 posts that recovers), "two_changes" and "placebo" (a start drawn
as for change streams, where nothing happens).  Negative mood regimes also make
some users post less (or more) often, as in life.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

NAME = "blind13"
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
NEGATIVE = np.array([True, True, True, False, True, False, False])
PHOTO_TYPES = ("selfie", "group", "scenery", "food", "pet", "other")

_DAY = 86400.0


@dataclass
class EmotionStream:
    """One user's stream.  ``meta`` holds extra ground truth (never needed by a detector)."""

    kind: str
    probs: np.ndarray  # (T, 7) float32, classifier output
    gaps: np.ndarray  # (T,) float64 seconds since previous post, 0 for the first
    face: np.ndarray  # (T,) bool, face detected
    true_emotion: np.ndarray  # (T,) int, felt emotion 0..6
    start: Optional[int] = None
    end: Optional[int] = None
    start2: Optional[int] = None
    meta: Dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.probs.shape[0])


# --------------------------------------------------------------------------- people

# name: (mean emotion mix, Dirichlet concentration, mood sigma, day-effect sigma)
_PERSONALITIES: Dict[str, Tuple[List[float], float, float, float]] = {
    "cheerful": ([0.03, 0.01, 0.02, 0.52, 0.05, 0.10, 0.27], 60.0, 0.35, 0.25),
    "flat": ([0.03, 0.01, 0.02, 0.18, 0.06, 0.04, 0.66], 60.0, 0.20, 0.15),
    "mixed": ([0.06, 0.03, 0.05, 0.32, 0.12, 0.08, 0.34], 40.0, 0.40, 0.30),
    "volatile": ([0.11, 0.05, 0.06, 0.34, 0.11, 0.14, 0.19], 25.0, 0.75, 0.50),
    "gloomy": ([0.07, 0.03, 0.06, 0.09, 0.40, 0.03, 0.32], 50.0, 0.35, 0.25),
    "anxious": ([0.05, 0.03, 0.28, 0.12, 0.18, 0.11, 0.23], 40.0, 0.45, 0.30),
    "irritable": ([0.24, 0.09, 0.04, 0.14, 0.12, 0.04, 0.33], 40.0, 0.40, 0.30),
}
_GROUPS: Dict[str, Dict[str, float]] = {
    "any": {"cheerful": 0.22, "flat": 0.16, "mixed": 0.20, "volatile": 0.10,
            "gloomy": 0.12, "anxious": 0.10, "irritable": 0.10},
    "nonneg": {"cheerful": 0.35, "flat": 0.22, "mixed": 0.30, "volatile": 0.13},
    "gloomy": {"gloomy": 0.45, "anxious": 0.30, "irritable": 0.25},
}
_NEG_TEMPLATES = {
    "low": [0.05, 0.02, 0.05, 0.06, 0.48, 0.02, 0.32],
    "stressed": [0.08, 0.03, 0.36, 0.07, 0.18, 0.10, 0.18],
    "conflict": [0.36, 0.13, 0.05, 0.08, 0.14, 0.05, 0.19],
    "grief": [0.04, 0.02, 0.05, 0.04, 0.60, 0.02, 0.23],
    "disillusioned": [0.15, 0.20, 0.05, 0.07, 0.25, 0.03, 0.25],
}
_POS_TEMPLATES = {
    "cheerful": [0.03, 0.01, 0.02, 0.55, 0.05, 0.09, 0.25],
    "calm": [0.03, 0.01, 0.02, 0.22, 0.06, 0.04, 0.62],
    "elated": [0.02, 0.01, 0.02, 0.66, 0.03, 0.15, 0.11],
    "content": [0.04, 0.02, 0.03, 0.40, 0.07, 0.07, 0.37],
}

# valence direction of the slow mood in log-probability space
_V = np.array([-0.7, -0.6, -0.6, 1.0, -0.9, 0.3, 0.0])
_TRIP_TILT = np.array([-0.2, -0.2, 0.0, 0.5, -0.3, 0.35, -0.1])
_EVENT_TILT = np.array([-0.1, -0.2, -0.1, 0.6, -0.3, 0.45, -0.2])
_HOLIDAY_TILT = np.array([0.0, 0.0, 0.0, 0.35, -0.1, 0.2, -0.1])
_LATE_TILT = np.array([0.05, 0.0, 0.2, -0.25, 0.3, -0.1, 0.05])
_WEEKEND_TILT = np.array([-0.05, 0.0, -0.05, 0.15, -0.05, 0.05, 0.0])
_MONDAY_TILT = np.array([0.15, 0.05, 0.05, -0.1, 0.05, 0.0, 0.05])

# classifier: generic FER-like off-diagonal confusions (rows: shown, cols: read)
_W = np.array([
    [0.00, 0.06, 0.12, 0.06, 0.30, 0.06, 0.40],
    [0.50, 0.00, 0.12, 0.08, 0.18, 0.04, 0.08],
    [0.12, 0.03, 0.00, 0.06, 0.30, 0.32, 0.17],
    [0.08, 0.02, 0.07, 0.00, 0.10, 0.18, 0.55],
    [0.14, 0.03, 0.17, 0.08, 0.00, 0.04, 0.54],
    [0.05, 0.01, 0.45, 0.25, 0.06, 0.00, 0.18],
    [0.12, 0.02, 0.08, 0.15, 0.50, 0.13, 0.00],
])
_DIFFICULTY = np.array([-0.08, -0.15, -0.18, 0.18, -0.08, 0.08, 0.0])
_PERSONAL_CONFUSIONS = [(6, 4), (2, 5), (4, 6), (1, 0), (0, 6), (5, 2), (6, 0),
                        (3, 6), (0, 4), (6, 3), (4, 2), (5, 3)]
_CLF_PRIOR = np.array([0.10, 0.03, 0.10, 0.20, 0.17, 0.08, 0.32])
_SOCIAL = np.array([0.03, 0.01, 0.02, 0.55, 0.05, 0.10, 0.24])

# photos: selfie, group, scenery, food, pet, other
_PHOTO_MEAN = np.array([0.38, 0.22, 0.16, 0.11, 0.06, 0.07])
_FACE_PRESENT = np.array([0.97, 0.95, 0.12, 0.04, 0.08, 0.15])
_DET_TYPE = np.array([1.0, 0.96, 0.55, 0.8, 0.85, 0.85])
_OWN_FACE = np.array([0.96, 0.5, 0.6, 0.35, 0.2, 0.3])  # group entry is per user

_HOUR_PROFILE = np.array([0.35, 0.2, 0.1, 0.06, 0.05, 0.08, 0.25, 0.6, 0.9, 0.9, 0.95, 1.1,
                          1.5, 1.3, 1.0, 1.0, 1.1, 1.3, 1.6, 1.8, 1.9, 1.8, 1.3, 0.7])


def _neg(p: np.ndarray) -> float:
    return float(p[NEGATIVE].sum())


def _clean(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64) + 1e-4
    return p / p.sum()


def _dirichlet(rng: np.random.Generator, mean, conc: float) -> np.ndarray:
    a = np.maximum(np.asarray(mean, dtype=np.float64) * conc, 0.05)
    return _clean(rng.dirichlet(a))


def _set_neg(p: np.ndarray, target: float, neg_profile: Optional[np.ndarray] = None) -> np.ndarray:
    """Return ``p`` with its negative share moved to ``target`` (shapes kept)."""
    target = min(max(target, 0.01), 0.97)
    negp = p * NEGATIVE if neg_profile is None else neg_profile * NEGATIVE
    negp = negp / negp.sum()
    pos = p * ~NEGATIVE
    pos = pos / pos.sum()
    out = target * negp + (1.0 - target) * pos
    return _clean(out)


def _sample_baseline(rng, group: str, lo: float = 0.0, hi: float = 1.0) -> Tuple[str, np.ndarray]:
    names = list(_GROUPS[group])
    w = np.array([_GROUPS[group][k] for k in names])
    w = w / w.sum()
    name, p = names[0], None
    for _ in range(60):
        name = names[int(rng.choice(len(names), p=w))]
        mean, conc, _, _ = _PERSONALITIES[name]
        p = _dirichlet(rng, mean, conc)
        if lo <= _neg(p) <= hi:
            return name, p
    return name, _set_neg(p, min(max(_neg(p), lo + 0.02), hi - 0.02))


def _toward(rng, base: np.ndarray, direction: int, min_delta: float,
            lam_lo: float = 0.6) -> Tuple[str, np.ndarray]:
    """A new regime moving the negative share by at least ``min_delta`` in ``direction``."""
    templates = _NEG_TEMPLATES if direction > 0 else _POS_TEMPLATES
    names = list(templates)
    name = names[0]
    for _ in range(60):
        name = names[int(rng.integers(len(names)))]
        q = _dirichlet(rng, templates[name], 50.0)
        lam = rng.uniform(lam_lo, 1.0)
        new = _clean(lam * q + (1.0 - lam) * base)
        if (_neg(new) - _neg(base)) * direction >= min_delta:
            return name, new
    q = _dirichlet(rng, templates[name], 50.0)
    target = _neg(base) + direction * (min_delta + rng.uniform(0.02, 0.15))
    return name, _set_neg(q, target)


# --------------------------------------------------------------------------- plans

def _draw_start(rng) -> int:
    return int(30 + round(220 * rng.beta(1.2, 1.5)))


def _draw_length(rng, need: int) -> int:
    lo = max(300, need)
    return int(rng.integers(lo, max(lo, 700) + 1))


def _plan(rng, kind: str) -> Dict[str, Any]:
    plan: Dict[str, Any] = {"start": None, "end": None, "start2": None, "ramp": None,
                            "direction": 0, "direction2": 0, "regime": None, "regime2": None}
    if kind == "none":
        name, base = _sample_baseline(rng, "any")
        T = int(rng.integers(1500, 2501))
        plan.update(T=T, personality=name, base=base, P=np.tile(base, (T, 1)))
        return plan

    start = _draw_start(rng)
    plan["start"] = start
    if kind == "placebo":
        name, base = _sample_baseline(rng, "any")
        T = _draw_length(rng, start + 150)
        plan.update(T=T, personality=name, base=base, P=np.tile(base, (T, 1)))
        return plan

    if kind == "abrupt_pos_neg":
        name, base = _sample_baseline(rng, "nonneg", 0.0, 0.33)
        reg, new = _toward(rng, base, +1, 0.22)
        T = _draw_length(rng, start + 150)
        P = np.tile(base, (T, 1))
        P[start:] = new
        plan.update(direction=1, regime=reg, new=new)
    elif kind == "abrupt_neg_pos":
        name, base = _sample_baseline(rng, "gloomy", 0.40, 1.0)
        reg, new = _toward(rng, base, -1, 0.22)
        T = _draw_length(rng, start + 150)
        P = np.tile(base, (T, 1))
        P[start:] = new
        plan.update(direction=-1, regime=reg, new=new)
    elif kind == "gradual":
        if rng.random() < 0.6:
            name, base = _sample_baseline(rng, "nonneg", 0.0, 0.35)
            direction = 1
        else:
            name, base = _sample_baseline(rng, "gloomy", 0.40, 1.0)
            direction = -1
        reg, new = _toward(rng, base, direction, 0.22)
        ramp = int(round(math.exp(rng.uniform(math.log(20), math.log(200)))))
        T = _draw_length(rng, start + ramp + 150)
        x = np.clip((np.arange(T) - start + 1) / ramp, 0.0, 1.0)
        shape = int(rng.integers(4))
        if shape == 1:
            x = x * x * (3 - 2 * x)
        elif shape == 2:
            x = np.sqrt(x)
        elif shape == 3:
            x = x * x
        x[:start] = 0.0
        P = (1 - x)[:, None] * base[None, :] + x[:, None] * new[None, :]
        plan.update(direction=direction, regime=reg, new=new, ramp=ramp, ramp_shape=shape)
    elif kind == "small_shift":
        name, base = _sample_baseline(rng, "any", 0.06, 0.75)
        n = _neg(base)
        delta = rng.uniform(0.1, 0.3)
        direction = 1 if rng.random() < 0.6 else -1
        if n + delta > 0.92:
            direction = -1
        if n - delta < 0.03:
            direction = 1
        profile = None
        if direction > 0 and rng.random() < 0.5:  # the new negativity may have its own flavour
            t = list(_NEG_TEMPLATES.values())[int(rng.integers(len(_NEG_TEMPLATES)))]
            profile = 0.5 * base * NEGATIVE / _neg(base) + 0.5 * np.array(t) * NEGATIVE / _neg(np.array(t))
        new = _set_neg(base, n + direction * delta, profile)
        T = _draw_length(rng, start + 150)
        P = np.tile(base, (T, 1))
        P[start:] = new
        plan.update(direction=direction, regime="shift", new=new, delta=direction * delta)
    elif kind == "transient":
        if rng.random() < 0.8:
            name, base = _sample_baseline(rng, "any", 0.0, 0.45)
            direction = 1
            reg, new = _toward(rng, base, +1, 0.4, lam_lo=0.9)
            new = _set_neg(new, max(_neg(new), 0.8))
        else:
            name, base = _sample_baseline(rng, "gloomy", 0.40, 1.0)
            direction = -1
            reg, new = _toward(rng, base, -1, 0.3, lam_lo=0.9)
            new = _set_neg(new, min(_neg(new), 0.08))
        L = int(rng.choice([1, 2, 3], p=[0.45, 0.35, 0.2]))
        T = _draw_length(rng, start + 150)
        P = np.tile(base, (T, 1))
        P[start:start + L] = new
        plan.update(direction=direction, regime=reg, new=new, end=start + L)
    elif kind == "episode":
        name, base = _sample_baseline(rng, "any", 0.0, 0.40)
        reg, new = _toward(rng, base, +1, 0.25)
        L = int(20 + round(90 * rng.beta(1.3, 2.0)))
        end = start + L
        T = _draw_length(rng, max(start + 150, end + 120))
        P = np.tile(base, (T, 1))
        P[start:end] = new
        plan.update(direction=1, regime=reg, new=new, end=end)
    elif kind == "two_changes":
        name, base = _sample_baseline(rng, "any", 0.05, 0.65)
        n0 = _neg(base)
        d1 = 1 if (n0 < 0.3 or (n0 < 0.45 and rng.random() < 0.5)) else -1
        reg1, p1 = _toward(rng, base, d1, 0.2)
        n1 = _neg(p1)
        mode = rng.choice(["return", "overshoot", "escalate", "other"], p=[0.4, 0.2, 0.2, 0.2])
        p2, reg2 = None, str(mode)
        if mode == "return":
            beta = rng.uniform(0.6, 1.0)
            p2 = _clean(beta * base + (1 - beta) * p1)
        elif mode == "escalate" and ((d1 > 0 and n1 < 0.6) or (d1 < 0 and n1 > 0.22)):
            reg2, p2 = _toward(rng, p1, d1, 0.15)
        else:  # overshoot / a different pattern in the opposite direction
            reg2, p2 = _toward(rng, p1, -d1, 0.2)
        if abs(_neg(p2) - n1) < 0.15:
            p2, reg2 = _set_neg(base, n0), "return"
        d2 = 1 if _neg(p2) > n1 else -1
        start2 = start + int(rng.integers(120, 251))
        T = _draw_length(rng, start2 + 150)
        P = np.tile(base, (T, 1))
        P[start:start2] = p1
        P[start2:] = p2
        plan.update(direction=d1, direction2=d2, regime=reg1, regime2=reg2, new=p1, new2=p2,
                    start2=start2)
    else:  # pragma: no cover - guarded by make_stream
        raise ValueError(kind)
    plan.update(T=T, personality=name, base=base, P=P)
    return plan


# --------------------------------------------------------------------------- users

def _confusion(rng) -> Tuple[np.ndarray, float]:
    a = rng.uniform(0.56, 0.88)
    diag = np.clip(a + _DIFFICULTY + rng.normal(0, 0.06, 7), 0.15, 0.95)
    W = _W * np.exp(rng.normal(0, 0.4, (7, 7)))
    for k in rng.choice(len(_PERSONAL_CONFUSIONS), size=int(rng.integers(1, 4)), replace=False):
        i, j = _PERSONAL_CONFUSIONS[int(k)]
        W[i, j] *= rng.uniform(2.0, 6.0)
    np.fill_diagonal(W, 0.0)
    W = W / W.sum(1, keepdims=True) * (1 - diag)[:, None]
    C = W + np.diag(diag)
    return C / C.sum(1, keepdims=True), a


def _user(rng, T: int) -> Dict[str, Any]:
    u: Dict[str, Any] = {}
    # posting rhythm
    u["sessions_per_day"] = float(np.exp(rng.normal(math.log(1.0), 0.8)))
    u["extra_posts"] = float(rng.uniform(0.1, 1.4))
    u["event_p"] = float(rng.uniform(0.02, 0.09))
    u["gap_sigma"] = float(rng.uniform(0.6, 1.4))
    u["silence_p"] = float(np.exp(rng.uniform(math.log(0.002), math.log(0.03))))
    u["silence_alpha"] = float(rng.uniform(1.1, 1.8))
    u["intra_median"] = float(np.exp(rng.normal(math.log(45.0), 0.5)))
    shift = int(rng.integers(-2, 4))
    prof = np.roll(_HOUR_PROFILE, shift) * np.exp(rng.normal(0, 0.2, 24))
    prof_we = np.roll(prof, int(rng.integers(0, 3)))
    u["prof_wd"], u["prof_we"] = prof, prof_we
    u["weekend_mult"] = float(rng.uniform(0.8, 2.0))
    u["trip_every_days"] = float(rng.uniform(40, 250))
    u["trip_mult"] = float(rng.uniform(1.5, 4.0))
    u["dow0"], u["doy0"] = int(rng.integers(7)), int(rng.integers(365))
    u["birthday"] = int(rng.integers(365))
    u["mood_gap_factor"] = float(np.exp(rng.normal(0.25, 0.35)))  # >1: withdraws when low
    # mood dynamics
    u["tau"] = float(np.exp(rng.uniform(math.log(0.7), math.log(5.0)))) * _DAY
    u["inertia"] = float(rng.uniform(0.15, 0.7))
    u["inertia_tau"] = float(np.exp(rng.uniform(math.log(1800), math.log(4 * 3600))))
    u["night_sens"] = float(rng.uniform(0.0, 1.5))
    u["context_sens"] = float(rng.uniform(0.4, 1.3))
    # photo habits
    u["photo_logit"] = np.log(_dirichlet(rng, _PHOTO_MEAN, rng.uniform(3.0, 8.0)))
    u["photo_drift"] = float(np.exp(rng.uniform(math.log(0.004), math.log(0.03))))
    u["mood_photo"] = float(rng.uniform(0.0, 1.3))
    # face detector and expression
    u["det"] = float(rng.uniform(0.78, 0.98))
    u["night_det"] = float(rng.uniform(0.8, 0.98))
    u["fp"] = float(rng.uniform(0.005, 0.04))
    u["own_group"] = float(rng.uniform(0.3, 0.65))
    u["pose"] = float(rng.uniform(0.03, 0.3))
    u["flat_affect"] = float(rng.uniform(0.0, 0.25)) if rng.random() < 0.6 else 0.0
    u["contagion"] = float(rng.uniform(0.2, 0.5))
    # classifier
    u["C"], u["clf_skill"] = _confusion(rng)
    u["clf_prior"] = _dirichlet(rng, _CLF_PRIOR, 30.0)
    u["sharp"] = float(np.exp(rng.uniform(math.log(1.3), math.log(5.5))))
    u["logit_noise"] = float(rng.uniform(0.25, 0.75))
    u["faceless_noise"] = float(np.exp(rng.uniform(math.log(0.05), math.log(0.7))))
    u["content_leak"] = float(rng.uniform(0.0, 0.5))
    return u


def _life_changes(rng, T: int) -> List[Tuple[int, str, Any]]:
    n = int(rng.poisson(2.0 if T > 1000 else 0.8))
    kinds = ["foodie", "pet", "travel", "selfie_up", "selfie_down", "phone", "rate"]
    out = []
    for _ in range(n):
        idx = int(rng.integers(int(0.05 * T), int(0.95 * T)))
        k = kinds[int(rng.integers(len(kinds)))]
        if k == "phone":
            val: Any = (float(rng.uniform(0.85, 1.12)), float(np.exp(rng.normal(0, 0.2))))
        elif k == "rate":
            val = float(np.exp(rng.uniform(math.log(0.4), math.log(2.5))))
        else:
            val = float(rng.uniform(0.7, 2.0))
        out.append((idx, k, val))
    out.sort(key=lambda t: t[0])
    return out


# --------------------------------------------------------------------------- time

def _times(rng, T: int, u: Dict[str, Any], neg_excess: np.ndarray,
           changes: List[Tuple[int, str, Any]]) -> Dict[str, np.ndarray]:
    # sessions
    p_geo = 1.0 / (1.0 + u["extra_posts"])
    sizes = rng.geometric(p_geo, size=T)
    is_ev = rng.random(T) < u["event_p"]
    sizes = np.where(is_ev, 3 + rng.geometric(1.0 / 6.0, size=T), sizes)
    cs = np.cumsum(sizes)
    n_s = int(np.searchsorted(cs, T)) + 1
    sizes = sizes[:n_s].copy()
    sizes[-1] -= int(cs[n_s - 1] - T)
    is_ev = is_ev[:n_s]
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    sess = np.repeat(np.arange(n_s), sizes)

    # virtual (activity-time) gaps between sessions: heavy-ish tailed, mood & life modulated
    sg = u["gap_sigma"]
    g = np.exp(rng.normal(-0.5 * sg * sg, sg, n_s))
    g *= u["mood_gap_factor"] ** (neg_excess[first] / 0.3)
    for idx, k, val in changes:
        if k == "rate":
            g[first >= idx] /= val
    g[0] = rng.uniform(0.0, 1.0)
    U = np.cumsum(g)

    # activity intensity on an hourly grid (sessions per hour)
    r_h = u["sessions_per_day"] / 24.0
    wd, we = u["prof_wd"] / u["prof_wd"].mean(), u["prof_we"] / u["prof_we"].mean()
    days = int(U[-1] / u["sessions_per_day"] * 1.3) + 5
    while True:
        trip = np.zeros(days, bool)
        d = rng.exponential(u["trip_every_days"])
        while d < days:
            dur = int(rng.integers(2, 15))
            trip[int(d):int(d) + dur] = True
            d += dur + rng.exponential(u["trip_every_days"])
        day = np.arange(days)
        dow = (u["dow0"] + day) % 7
        doy = (u["doy0"] + day) % 365
        holi = (doy >= 354) | (doy <= 1) | (doy == u["birthday"])
        weekend = dow >= 5
        dmult = np.where(weekend, u["weekend_mult"], 1.0) * np.where(trip, u["trip_mult"], 1.0)
        dmult = dmult * np.where(holi, 1.6, 1.0)
        norm = (5 + 2 * u["weekend_mult"]) / 7.0
        lam = np.where(weekend[:, None], we[None, :], wd[None, :]) * (dmult / norm)[:, None] * r_h
        Lam = np.concatenate([[0.0], np.cumsum(lam.ravel())])
        if Lam[-1] > U[-1]:
            break
        days = int(days * 1.6) + 5
    th = np.interp(U, Lam, np.arange(Lam.size, dtype=np.float64))  # hours
    trip_s = trip[np.minimum((th // 24).astype(int), days - 1)]

    # long silences (whole days, so the clock time of day is kept)
    sil = rng.random(n_s) < u["silence_p"]
    sil[0] = False
    sil_days = np.minimum(np.ceil(3.0 * (1.0 + rng.pareto(u["silence_alpha"], n_s))), 150.0)
    th = th + np.cumsum(np.where(sil, sil_days * 24.0, 0.0))

    # posts inside sessions
    med = np.where(is_ev, 240.0, u["intra_median"])[sess]
    intra = med * np.exp(rng.normal(0.0, 1.0, T))
    intra[first] = 0.0
    c = np.cumsum(intra)
    offs = c - c[first][sess]
    t = th[sess] * 3600.0 + offs
    t = np.maximum.accumulate(t)
    gaps = np.diff(t, prepend=t[0])
    small = gaps < 1.0
    small[0] = False
    gaps[small] = 20.0 * np.exp(rng.normal(0.0, 0.7, int(small.sum())))
    gaps[0] = 0.0
    t = np.cumsum(gaps)

    hour = (t / 3600.0) % 24.0
    dayi = (t // _DAY).astype(np.int64)
    dow_p = (u["dow0"] + dayi) % 7
    doy_p = (u["doy0"] + dayi) % 365
    return {
        "gaps": gaps, "t": t, "hour": hour, "day": dayi, "dow": dow_p,
        "holiday": (doy_p >= 354) | (doy_p <= 1) | (doy_p == u["birthday"]),
        "trip": trip_s[sess], "event": is_ev[sess], "first": first,
    }


# --------------------------------------------------------------------------- stream

def _categorical(rng, p: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(p, axis=1)
    x = rng.random(p.shape[0])[:, None] * cdf[:, -1:]
    return np.minimum((x > cdf).sum(axis=1), p.shape[1] - 1)


def make_stream(rng: np.random.Generator, kind: str) -> EmotionStream:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    plan = _plan(rng, kind)
    T, P, base = plan["T"], plan["P"], plan["base"]
    name = plan["personality"]
    _, _, mood_sigma, day_sigma = _PERSONALITIES[name]
    mood_sigma *= float(np.exp(rng.normal(0, 0.25)))
    u = _user(rng, T)
    changes = _life_changes(rng, T)
    neg_reg = P[:, NEGATIVE].sum(1)
    ctx = _times(rng, T, u, neg_reg - _neg(base), changes)
    gaps, t, hour = ctx["gaps"], ctx["t"], ctx["hour"]

    # ---- felt emotion
    eps = rng.normal(0.0, 1.0, T).tolist()
    tl = t.tolist()
    z = [0.0] * T
    zc, prev = float(rng.normal(0.0, 1.0)), 0.0
    tau = u["tau"]
    for k in range(T):
        a = math.exp(-(tl[k] - prev) / tau)
        zc = zc * a + math.sqrt(max(1.0 - a * a, 0.0)) * eps[k]
        z[k] = zc
        prev = tl[k]
    day = ctx["day"]
    day_eff = rng.normal(0.0, 1.0, int(day[-1]) + 1)
    zz = mood_sigma * np.asarray(z) + day_sigma * day_eff[day]
    cs = u["context_sens"]
    late = (hour >= 23.0) | (hour < 4.0)
    tilt = zz[:, None] * _V[None, :]
    tilt += cs * (ctx["trip"][:, None] * _TRIP_TILT + ctx["event"][:, None] * _EVENT_TILT
                  + ctx["holiday"][:, None] * _HOLIDAY_TILT
                  + (ctx["dow"] >= 5)[:, None] * _WEEKEND_TILT
                  + ((ctx["dow"] == 0) & (hour < 12.0))[:, None] * _MONDAY_TILT)
    tilt += u["night_sens"] * late[:, None] * _LATE_TILT
    p = P * np.exp(tilt)
    p /= p.sum(1, keepdims=True)
    fresh = _categorical(rng, p)
    rep = rng.random(T) < u["inertia"] * np.exp(-gaps / u["inertia_tau"])
    rep[0] = False
    for key in ("start", "end", "start2"):
        if plan[key] is not None and plan[key] < T:
            rep[plan[key]] = False
    if kind == "transient":
        rep[plan["start"]:plan["end"] + 1] = False
    src = np.maximum.accumulate(np.where(rep, 0, np.arange(T)))
    e = fresh[src]
    neg_e = NEGATIVE[e]

    # ---- photo type
    idx = np.arange(T)
    logits = np.tile(u["photo_logit"], (T, 1))
    logits += np.cumsum(rng.normal(0.0, u["photo_drift"], (T, 6)), axis=0)
    det_mult = np.ones(T)
    sharp_mult = np.ones(T)
    for ci, k, val in changes:
        after = idx >= ci
        if k == "foodie":
            logits[after, 3] += val
        elif k == "pet":
            logits[after, 4] += val + 0.5
        elif k == "travel":
            logits[after, 2] += val
        elif k == "selfie_up":
            logits[after, 0] += val
        elif k == "selfie_down":
            logits[after, 0] -= val
        elif k == "phone":
            det_mult[after] *= val[0]
            sharp_mult[after] *= val[1]
    ev, tr, ho = ctx["event"], ctx["trip"], ctx["holiday"]
    logits[:, 1] += 1.2 * ev + 0.3 * tr + 0.6 * ho + 0.3 * (ctx["dow"] >= 5) + 0.3 * (e == 3)
    logits[:, 2] += 1.3 * tr - 0.8 * late
    logits[:, 3] += 0.4 * ho + 0.2 * (ctx["dow"] >= 5)
    logits[:, 0] += 0.3 * late - u["mood_photo"] * neg_e
    logits[:, 1] -= 1.2 * u["mood_photo"] * neg_e
    logits[:, 5] += 0.5 * late + 0.5 * u["mood_photo"] * neg_e
    ptype = np.argmax(logits + rng.gumbel(size=(T, 6)), axis=1)

    # ---- face detector
    present = rng.random(T) < _FACE_PRESENT[ptype]
    dark = (hour >= 20.0) | (hour < 7.0)
    det_p = u["det"] * _DET_TYPE[ptype] * np.where(dark, u["night_det"], 1.0) * det_mult
    detected = present & (rng.random(T) < np.clip(det_p, 0.0, 0.995))
    fp = ~present & (rng.random(T) < u["fp"] * np.where(ptype == 4, 3.0, 1.0))
    face = detected | fp
    own_p = _OWN_FACE[ptype].copy()
    own_p[ptype == 1] = u["own_group"]
    own = detected & (rng.random(T) < own_p)

    # ---- what the detected face shows
    shown = e.copy()
    pose_p = u["pose"] * np.where(ptype == 1, 1.5, 1.0) * np.where(neg_e, 1.4, np.where(e == 6, 0.6, 0.0))
    posed = own & (rng.random(T) < pose_p)
    shown[posed] = np.where(rng.random(int(posed.sum())) < 0.8, 3, 6)
    flat = own & ~posed & ((e == 3) | (e == 5)) & (rng.random(T) < u["flat_affect"])
    shown[flat] = 6
    other = detected & ~own
    contag = rng.random(T) < u["contagion"] * np.where(neg_e, 0.5, 1.0)
    social = _categorical(rng, np.tile(_SOCIAL, (T, 1)))
    shown = np.where(other, np.where(contag, e, social), shown)

    # ---- classifier
    C = u["C"]
    read = _categorical(rng, C[shown])
    second = _categorical(rng, C[shown])
    prior = u["clf_prior"]
    read = np.where(fp, _categorical(rng, np.tile(prior, (T, 1))), read)
    sharp = u["sharp"] * np.exp(rng.normal(0.0, 0.3, T)) * sharp_mult
    sharp *= np.where(dark, 0.8, 1.0) * np.where(ptype == 1, 0.85, 1.0) * np.where(fp, 0.4, 1.0)
    lf = 0.5 * np.log(prior)[None, :] + u["logit_noise"] * rng.normal(0.0, 1.0, (T, 7))
    lf[idx, read] += sharp
    lf[idx, second] += sharp * rng.uniform(0.15, 0.55, T)
    ln = np.log(prior)[None, :] + u["faceless_noise"] * rng.normal(0.0, 1.0, (T, 7))
    leak = u["content_leak"]
    ln[:, 3] += leak * ((ptype == 3) | (ptype == 4))
    ln[:, 6] += leak * (ptype == 2)
    lg = np.where(face[:, None], lf, ln)
    lg -= lg.max(1, keepdims=True)
    pr = np.exp(lg)
    pr /= pr.sum(1, keepdims=True)
    probs = pr.astype(np.float32)
    probs /= probs.sum(1, keepdims=True)

    meta = {
        "personality": name,
        "baseline": base,
        "neg_before": _neg(base),
        "direction": plan["direction"],
        "direction2": plan["direction2"],
        "regime": plan["regime"],
        "regime2": plan["regime2"],
        "ramp": plan["ramp"],
        "neg_after": _neg(plan["new"]) if "new" in plan else None,
        "neg_after2": _neg(plan["new2"]) if "new2" in plan else None,
        "photo_type": ptype.astype(np.int8),
        "own_face": own,
        "shown_emotion": np.where(detected, shown, -1).astype(np.int8),
        "life_changes": [(i, k) for i, k, _ in changes],
        "classifier_skill": u["clf_skill"],
    }
    return EmotionStream(
        kind=kind,
        probs=probs,
        gaps=gaps.astype(np.float64),
        face=face.astype(bool),
        true_emotion=e.astype(np.int64),
        start=plan["start"],
        end=plan["end"],
        start2=plan["start2"],
        meta=meta,
    )


def make_streams(seed: int, kind: str, n: int) -> List[EmotionStream]:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    ss = np.random.SeedSequence([int(seed) % (2 ** 63), 0xB13, KINDS.index(kind) + 1])
    return [make_stream(np.random.default_rng(child), kind) for child in ss.spawn(int(n))]
