"""The per-user drift state machine: pure, small, serializable.

The temporal model turns every post into a drift score in 0..1 (the probability that the user's
emotional regime has changed recently). This module decides what that means for the user: it turns a
noisy score stream into *episodes* with hysteresis, so one change gives one alert.

States: ``warming_up`` (too few posts to know what is normal) → ``stable`` ⇄ ``drifting``.

- ``stable → drifting`` when the score is ≥ ``threshold`` for ``confirm_posts`` consecutive posts and
  the cooldown after the previous episode is over: emits ``drift.started``.
- ``drifting → stable`` when the score is < ``recovery_threshold`` for ``recovery_posts`` consecutive
  posts: emits ``drift.ended``, then ``cooldown_posts`` posts must pass before a new episode.

>>> d = DriftDetector(DetectorConfig(warmup_posts=2, threshold=0.5, recovery_threshold=0.2,
...                                  confirm_posts=2, recovery_posts=2, cooldown_posts=0))
>>> [d.update(s) for s in (0.9, 0.1, 0.6)]
[None, None, None]
>>> d.status, d.update(0.7), d.status
('stable', 'drift.started', 'drifting')
>>> d.update(0.1), d.update(0.1), d.status
(None, 'drift.ended', 'stable')
>>> DriftDetector.from_dict(d.config, d.to_dict()) == d
True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

Status = Literal["warming_up", "stable", "drifting"]
Event = Literal["drift.started", "drift.ended"]


@dataclass(frozen=True)
class DetectorConfig:
    warmup_posts: int = 8
    threshold: float = 0.75  # calibrated to ARL0 ~2000 posts: docs/detection.md
    recovery_threshold: float = 0.25
    confirm_posts: int = 3
    recovery_posts: int = 5
    cooldown_posts: int = 10

    def __post_init__(self) -> None:
        if not 0 < self.recovery_threshold < self.threshold < 1:
            raise ValueError("need 0 < recovery_threshold < threshold < 1")
        if self.warmup_posts < 1 or self.confirm_posts < 1 or self.recovery_posts < 1:
            raise ValueError("warmup_posts, confirm_posts and recovery_posts must be >= 1")
        if self.cooldown_posts < 0:
            raise ValueError("cooldown_posts must be >= 0")


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

    @property
    def drift_detected(self) -> bool:
        return self.status == "drifting"

    def update(self, score: float) -> Event | None:
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"score must be in [0, 1], got {score!r}")
        cfg = self.config
        self.posts_seen += 1
        if self.status == "warming_up":
            if self.posts_seen >= cfg.warmup_posts:
                self.status = "stable"
            return None
        if self.status == "stable":
            if self.cooldown_left > 0:
                self.cooldown_left -= 1
                self.streak = 0
                return None
            self.streak = self.streak + 1 if score >= cfg.threshold else 0
            if self.streak >= cfg.confirm_posts:
                self.status, self.streak = "drifting", 0
                self.episode_started_at = self.posts_seen
                self.episodes += 1
                return "drift.started"
            return None
        # drifting
        self.streak = self.streak + 1 if score < cfg.recovery_threshold else 0
        if self.streak >= cfg.recovery_posts:
            self.status, self.streak = "stable", 0
            self.cooldown_left = cfg.cooldown_posts
            self.episode_started_at = None
            return "drift.ended"
        return None

    def to_dict(self) -> dict[str, object]:
        state = asdict(self)
        state.pop("config")
        return state

    @classmethod
    def from_dict(cls, config: DetectorConfig, state: dict[str, object]) -> "DriftDetector":
        known = {k: v for k, v in state.items() if k in cls.__dataclass_fields__ and k != "config"}
        return cls(config=config, **known)  # type: ignore[arg-type]
