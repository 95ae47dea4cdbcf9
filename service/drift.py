"""The per-user drift state machine: pure, small, serializable.

The temporal model turns every post into a drift score in 0..1 (the probability that the user's
emotional regime has changed recently). This module decides what that means for the user: it turns a
noisy score stream into *episodes* with hysteresis, so one change gives one alert.

States: ``warming_up`` (too few posts to know what is normal) → ``stable`` ⇄ ``drifting``.

Two rules can start an episode; whichever fires first does (both are calibrated *together* to one
false-alarm rate, docs/detection.md):

- **fast rule**: the score is ≥ ``threshold`` for ``confirm_posts`` consecutive posts (abrupt changes).
  With a score profile the bar moves with the user's post count: ``logit(score) - excess >= logit(threshold)``,
  where ``excess`` is how far the profile's mean runs above a settled user's at that count (never below
  0). The model scores every user higher around posts 50-250; with a fixed threshold users there raised
  2.5x the false alarms of settled users (measured with temporal:3 and a 0.81 x 2 rule: 1.3-1.5 against
  0.5-0.6 per 1000 posts).
- **evidence rule** (a self-normalised CUSUM): each post's score is put on the logit scale, then on
  the model's *score profile* when it has one (``x = (logit(score) - profile mean[age]) / profile
  sd[age]``: what the score does at that post count on users who never change, measured at export by
  ``python -m export score-profile``; without it the score's climb over a new user's first ~80 posts
  read as evidence), and standardised against *this user's own* level, ``z = (x - mean) / (sd + 0.05)``,
  where mean and variance are an exponentially weighted reference (weight ``max(1/n, reference_alpha)``)
  updated on every post while the user is not drifting, after the post has been tested. The evidence
  ``cusum = max(0, cusum + z - cusum_slack)`` accumulates persistent, moderate excesses (small shifts,
  slow escalations) that never cross the fast rule's threshold; it alarms at ``cusum_threshold``.
  Users whose scores always run high (mixed or mostly negative baselines) are measured against
  themselves, not against a global threshold. ``cusum_threshold = 0`` turns the rule off.

After ``drift.started`` the evidence restarts at 0 and the reference is frozen (so "normal" stays what
came before). An episode ends (``drift.ended``) in one of two ways, kept in ``resolution``:

- ``"recovered"``: the score is < ``recovery_threshold`` for ``recovery_posts`` consecutive posts;
- ``"new_baseline"`` (re-baselining, when ``rebaseline_posts`` > 0): the user is still drifting
  ``rebaseline_posts`` posts after the episode started, so the new pattern has persisted and becomes
  their normal. The temporal model's memory still holds the old pattern (its score would stay high for
  good, and a later change would never be reported), so the caller restarts the LSTM state
  (:attr:`DriftDetector.restart_model`); the detector restarts its reference and counts the user's
  age from there (``baseline_since``), so a later change is read exactly like a first one.

Either way ``cooldown_posts`` posts must then pass (no evidence is accumulated, the reference keeps
learning) before a new episode; after a new baseline at least ``warmup_posts``, as for a new user.

The state is a handful of numbers (a few hundred bytes of JSON, stored per user); ``from_dict``
ignores unknown fields and defaults missing ones, so a state written before the evidence rule existed
loads with an empty reference (the evidence rule waits for ``reference_min_posts`` new posts; the fast
rule works at once). The reference is kept on one scale: a state whose ``ref_profile`` is not the
config's profile (written before the profile existed, or under another one) restarts its reference
and evidence the same way instead of mixing the two scales.

>>> d = DriftDetector(DetectorConfig(warmup_posts=2, threshold=0.5, recovery_threshold=0.2,
...                                  confirm_posts=2, recovery_posts=2, cooldown_posts=0, cusum_threshold=0))
>>> [d.update(s) for s in (0.9, 0.1, 0.6)]
[None, None, None]
>>> d.status, d.update(0.7), d.status
('stable', 'drift.started', 'drifting')
>>> d.update(0.1), d.update(0.1), d.status
(None, 'drift.ended', 'stable')
>>> DriftDetector.from_dict(d.config, d.to_dict()) == d
True

The evidence rule: scores that hover near 0.05 and then settle near 0.4 never reach the fast rule's
0.85, yet the accumulated evidence alarms after a few such posts.

>>> e = DriftDetector(DetectorConfig(threshold=0.85, cusum_threshold=20.0, cusum_slack=0.5))
>>> events = [e.update(s) for s in [0.03, 0.06, 0.05, 0.08, 0.04] * 8 + [0.4] * 20]
>>> events.index("drift.started"), e.status
(45, 'drifting')
>>> DriftDetector.from_dict(e.config, {"posts_seen": 50, "status": "stable", "streak": 0}).ref_n  # an old state
0

Re-baselining: a change that persists ends its episode as a new baseline after ``rebaseline_posts``.

>>> r = DriftDetector(DetectorConfig(warmup_posts=2, threshold=0.5, recovery_threshold=0.2, confirm_posts=2,
...                                  recovery_posts=2, cooldown_posts=0, cusum_threshold=0, rebaseline_posts=5))
>>> [(i, ev) for i, ev in enumerate(r.update(s) for s in [0.1] * 4 + [0.9] * 7) if ev]
[(5, 'drift.started'), (10, 'drift.ended')]
>>> r.resolution, r.status, r.restart_model, r.baseline_since
('new_baseline', 'stable', True, 11)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Literal

Status = Literal["warming_up", "stable", "drifting"]
Event = Literal["drift.started", "drift.ended"]
Resolution = Literal["", "recovered", "new_baseline"]

SD_FLOOR = 0.05  # added to the reference sd: a user whose scores never move still needs real evidence
# The profile's sd is 0.02-0.06 at post 8 (temporal:4 and 3: every new user scores ~0): without a floor
# one early post a little off that norm would weigh as much as a real change.
PROFILE_SD_FLOOR = 0.25


@dataclass(frozen=True)
class ScoreProfile:
    """The temporal model's logit drift score on users who never change: mean and sd at each post count
    (0-based; later posts use the last entry). ``id`` names it in the user's state."""

    id: str
    mean: tuple[float, ...]
    sd: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.mean or len(self.mean) != len(self.sd) or min(self.sd) < 0:
            raise ValueError("a score profile needs equal-length mean and sd (sd >= 0)")

    @classmethod
    def from_manifest(cls, entry: dict) -> "ScoreProfile":
        """From the temporal manifest's ``score_profile`` (export/score_profile.py writes it)."""
        return cls(str(entry["id"]).rsplit("/", 1)[-1], tuple(map(float, entry["mean"])), tuple(map(float, entry["sd"])))

    def standardise(self, x: float, index: int) -> float:
        i = min(index, len(self.mean) - 1)
        return (x - self.mean[i]) / max(self.sd[i], PROFILE_SD_FLOOR)

    def excess(self, index: int) -> float:
        """How far above a settled user's (the last entry's) the mean logit score runs at this post count."""
        return max(0.0, self.mean[min(index, len(self.mean) - 1)] - self.mean[-1])


def logit(score: float) -> float:
    """The score on the log-odds scale, softened at 0 and 1 (0 → -4.6, 1 → 4.6)."""
    return math.log((score + 0.01) / (1.01 - score))


@dataclass(frozen=True)
class DetectorConfig:
    warmup_posts: int = 8
    # Calibrated together to ARL0 ~2000 posts by `python -m benchmarks.detection`: docs/detection.md
    threshold: float = 0.84
    recovery_threshold: float = 0.25
    confirm_posts: int = 2
    recovery_posts: int = 5
    cooldown_posts: int = 10
    cusum_threshold: float = 93.0  # evidence (sum of standardised excesses) that starts an episode; 0: off
    cusum_slack: float = 0.25      # standardised excess a post must bring before it counts as evidence
    reference_alpha: float = 0.01  # weight of a post in the user's reference score level (~100 posts)
    reference_min_posts: int = 2   # reference posts before the evidence rule may fire
    profile: ScoreProfile | None = None  # the model's score profile (None: the raw logit score)
    rebaseline_posts: int = 0      # posts drifting after which the new pattern is the baseline; 0: never

    def __post_init__(self) -> None:
        if not 0 < self.recovery_threshold < self.threshold < 1:
            raise ValueError("need 0 < recovery_threshold < threshold < 1")
        if self.warmup_posts < 1 or self.confirm_posts < 1 or self.recovery_posts < 1:
            raise ValueError("warmup_posts, confirm_posts and recovery_posts must be >= 1")
        if self.cooldown_posts < 0 or self.rebaseline_posts < 0:
            raise ValueError("cooldown_posts and rebaseline_posts must be >= 0")
        if self.cusum_threshold < 0 or self.cusum_slack < 0:
            raise ValueError("cusum_threshold and cusum_slack must be >= 0")
        if not 0 < self.reference_alpha < 1 or self.reference_min_posts < 2:
            raise ValueError("need 0 < reference_alpha < 1 and reference_min_posts >= 2")

    @property
    def profile_id(self) -> str:
        return self.profile.id if self.profile is not None else ""


@dataclass
class DriftDetector:
    """One user's detector. ``update(score)`` returns the event the post caused, if any."""

    config: DetectorConfig = field(default_factory=DetectorConfig, compare=False)
    posts_seen: int = 0
    status: Status = "warming_up"
    streak: int = 0  # consecutive posts beyond the threshold that would change the status
    cooldown_left: int = 0
    episode_started_at: int | None = None  # posts_seen when the current episode began
    episodes: int = 0
    cusum: float = 0.0     # accumulated evidence of the evidence rule
    ref_n: int = 0         # posts in the user's reference score level
    ref_mean: float = 0.0  # reference mean of the evidence input (logit score, on the profile)
    ref_var: float = 0.0   # reference variance of the evidence input
    ref_profile: str = ""  # the score profile the reference is on ("" = none)
    resolution: Resolution = ""  # how the last episode ended
    baseline_since: int = 0  # posts_seen when the current baseline began (0, or the last new_baseline)
    # this post ended an episode as a new baseline: the caller restarts the LSTM state (not stored)
    restart_model: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        if self.ref_n == 0:
            self.ref_profile = self.config.profile_id

    @property
    def drift_detected(self) -> bool:
        return self.status == "drifting"

    def update(self, score: float) -> Event | None:
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"score must be in [0, 1], got {score!r}")
        cfg = self.config
        self.posts_seen += 1
        self.restart_model = False
        if self.status == "drifting":
            self.streak = self.streak + 1 if score < cfg.recovery_threshold else 0
            if self.streak >= cfg.recovery_posts:
                self.status, self.streak, self.resolution = "stable", 0, "recovered"
                self.cooldown_left = cfg.cooldown_posts
                self.episode_started_at = None
                return "drift.ended"
            started = self.episode_started_at if self.episode_started_at is not None else self.posts_seen
            if cfg.rebaseline_posts and self.posts_seen - started >= cfg.rebaseline_posts:
                self._rebaseline()
                return "drift.ended"
            return None
        x, high = logit(score), score >= cfg.threshold
        if cfg.profile is not None:  # both rules read the score against what it is at this post count
            age = self.posts_seen - 1 - self.baseline_since
            x, high = cfg.profile.standardise(x, age), x - cfg.profile.excess(age) >= logit(cfg.threshold)
        fire = False
        if self.status == "stable":
            if self.cooldown_left > 0:
                self.cooldown_left -= 1
                self.streak, self.cusum = 0, 0.0
            else:
                self.streak = self.streak + 1 if high else 0
                if cfg.cusum_threshold > 0 and self.ref_n >= cfg.reference_min_posts:
                    z = (x - self.ref_mean) / (math.sqrt(self.ref_var) + SD_FLOOR)
                    self.cusum = max(0.0, self.cusum + z - cfg.cusum_slack)
                fire = self.streak >= cfg.confirm_posts or (0 < cfg.cusum_threshold <= self.cusum)
        self._learn(x)
        if self.status == "warming_up":
            if self.posts_seen >= cfg.warmup_posts:
                self.status = "stable"
            return None
        if fire:
            self.status, self.streak, self.cusum = "drifting", 0, 0.0
            self.episode_started_at = self.posts_seen
            self.episodes += 1
            return "drift.started"
        return None

    def _rebaseline(self) -> None:
        """The episode's pattern is the user's normal from now on: a new user's reference and age, the
        warm-up as a cooldown (the restarted LSTM's first scores mean little)."""
        cfg = self.config
        self.status, self.streak, self.resolution, self.restart_model = "stable", 0, "new_baseline", True
        self.cooldown_left = max(cfg.cooldown_posts, cfg.warmup_posts)
        self.episode_started_at = None
        self.baseline_since = self.posts_seen
        self.cusum, self.ref_n, self.ref_mean, self.ref_var = 0.0, 0, 0.0, 0.0

    def _learn(self, x: float) -> None:
        """Exponentially weighted mean and variance of the user's logit scores (Welford at first)."""
        self.ref_n += 1
        alpha = max(1.0 / self.ref_n, self.config.reference_alpha)
        delta = x - self.ref_mean
        self.ref_mean += alpha * delta
        self.ref_var = (1.0 - alpha) * (self.ref_var + alpha * delta * delta)

    def to_dict(self) -> dict[str, object]:
        # field by field: dataclasses.asdict deep-copies recursively (~4% of an observation's CPU)
        return {name: getattr(self, name) for name in STATE_FIELDS}

    @classmethod
    def from_dict(cls, config: DetectorConfig, state: dict[str, object]) -> "DriftDetector":
        known = {k: v for k, v in state.items() if k in STATE_FIELDS}
        if known.get("ref_profile", "") != config.profile_id:
            for name in ("ref_n", "ref_mean", "ref_var", "cusum", "ref_profile"):  # another scale: restart it
                known.pop(name, None)
        return cls(config=config, **known)  # type: ignore[arg-type]


STATE_FIELDS = tuple(f.name for f in fields(DriftDetector) if f.name not in ("config", "restart_model"))
