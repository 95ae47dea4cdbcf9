"""The per-user drift state machine: pure, small, serializable.

The temporal model turns every post into a drift score in 0..1 (the probability that the user's
emotional regime has changed recently). This module decides what that means for the user: it turns a
noisy score stream into *episodes* with hysteresis, so one change gives one alert.

States: ``warming_up`` (too few posts to know what is normal) → ``stable`` ⇄ ``drifting``.

Three rules can start an episode; whichever fires first does (all are calibrated *together* to one
false-alarm rate, ``python -m benchmarks.calibrate``; the values live in the temporal model's manifest):

- **fast rule**: the score is ≥ ``threshold`` for ``confirm_posts`` consecutive posts (abrupt changes).
  With a score profile the bar moves with the user's post count: ``logit(score) - excess >= logit(threshold)``,
  where ``excess`` is how far the profile's mean runs above a settled user's at that count (never below
  0). The model scores every user higher around posts 50-250; with a fixed threshold users there raised
  several times the false alarms of settled users (the figures: docs/detection_method.md, History).
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

- **share rule** (``share_threshold`` > 0, when the caller gives each post's negative share): a
  two-sided self-starting CUSUM of the per-post share of negative emotions (angry, disgust, fear, sad),
  standardised against the user's own reference share (a slowly forgetting mean and variance). It is
  the classic statistic that, on streams the temporal model was not built on, caught changes the model
  missed (issue 12); with it the detector catches them too. While it is on, an episode only recovers
  once the recent share is back within one reference sd of the user's level. With ``share2_threshold``
  a second two-sided CUSUM of the same standardised share runs beside it with another slack
  (``share2_slack``): one slack is optimal for one size of shift, a bank of two approximates a
  generalised likelihood ratio test, for which the size is unknown (docs/detection_rules.md). With
  ``share_serial`` the CUSUMs read each user's serial correlation: a mood that carries from post to post
  makes a run of like posts less evidence than as many independent ones, so the standardised share is
  divided by ``sqrt((1 + rho) / (1 - rho))``, the variance inflation of a sum of posts whose lag-1
  autocorrelation is ``rho`` (:meth:`DriftDetector._serial_rho`). With ``share_anchor_posts`` each side
  of the bank's first CUSUM, once the reference has that many posts, reads the share against the
  reference mean as it was when that side's run began: the reference goes on learning every post, so by
  the time a change has built up a run it has learnt part of the change (after m posts of a change at
  age n, m / (n + m) of it while young), and the CUSUM would measure the change against a level that has
  moved toward it. The second CUSUM, whose small slack keeps runs going for long without a change, is
  left to the moving reference: anchored, a mood that wanders slowly kept its runs going until they
  alarmed (docs/detection_rules.md, twentieth round).

After ``drift.started`` the evidence restarts at 0 and the reference is frozen (so "normal" stays what
came before). An episode ends (``drift.ended``) in one of these ways, kept in ``resolution``:

- ``"recovered"``: the score is < ``recovery_threshold`` for ``recovery_posts`` consecutive posts;
- ``"recovered"`` at the re-baseline post, with ``share_return_nats`` > 0: the return test (a likelihood
  ratio of the standardised share, :meth:`DriftDetector._returned`) finds the share back at the user's
  old level by then, though the ordinary recovery did not (its score and recent-share conditions are
  strict, so that a lasting change does not end as recovered by chance);
- ``"new_baseline"`` (re-baselining, when ``rebaseline_posts`` > 0): the user is still drifting
  ``rebaseline_posts`` posts after the episode started, so the new pattern has persisted and becomes
  their normal. The temporal model's memory still holds the old pattern (its score would stay high for
  good, and a later change would never be reported), so the caller rebuilds the LSTM state from a new
  user's by replaying the posts since the alarm (:attr:`DriftDetector.restart_model`,
  :attr:`DriftDetector.replay_posts`): the new pattern is all it has seen. The detector restarts its
  reference and counts the user's age from the alarm (``baseline_since``, the age the replayed model
  has), so a later change is read exactly like a first one. With ``share_rebaseline_seed`` the share
  rule's new reference starts from the episode's posts (their mean and variance): restarted from
  nothing, it was still young when a second change came, learnt part of it, and read that change's
  persistence as ``recovered``.

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
>>> r.resolution, r.status, r.restart_model, r.baseline_since, r.replay_posts
('new_baseline', 'stable', True, 6, 5)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Literal

Status = Literal["warming_up", "stable", "drifting"]
Event = Literal["drift.started", "drift.ended"]
Resolution = Literal["", "recovered", "new_baseline"]
# Which rule ended the last episode: the ordinary recovery, the return test, or the re-baseline limit.
EndedBy = Literal["", "recovery", "return_test", "rebaseline"]
# Which rules raised an alarm: the fast rule (the drift score over its threshold for confirm_posts posts),
# the evidence rule (the CUSUM of the score) and the share rule (the CUSUMs of the negative share).
Rule = Literal["fast", "evidence", "share"]
RULES: tuple[Rule, ...] = ("fast", "evidence", "share")
# what an alert's raised_by may name: a rule, or a promoted model that sees the user drifting (transition.py)
RaisedBy = Rule | Literal["promotion"]
RAISERS: tuple[RaisedBy, ...] = (*RULES, "promotion")

SD_FLOOR = 0.05  # added to the reference sd: a user whose scores never move still needs real evidence
# The profile's sd is 0.02-0.06 at post 8 (temporal:4 and 3: every new user scores ~0): without a floor
# one early post a little off that norm would weigh as much as a real change.
PROFILE_SD_FLOOR = 0.25
# The share rule (a two-sided self-starting CUSUM of the per-post negative share against the user's own
# reference): what a classic CUSUM on the negative share catches, the detector catches too (issue 12).
SHARE_ALPHA = 0.005        # the reference forgets over ~200 posts (a classic CUSUM never forgets)
SHARE_MIN_POSTS = 8        # reference posts before the rule tests anything
SHARE_MIN_RUN = 3          # posts of evidence the rule needs at least (one or two extreme posts are a dip)
SHARE_Z_CAP = 3.0          # a post's standardised share counts at most this much (a robust, Huber-like CUSUM)
SHARE_SD_FLOOR = 0.02      # added to the reference sd
SHARE_RECENT_ALPHA = 0.2   # the recent share that must come back (~5 posts) before an episode recovers
SHARE_MIN_WEIGHT = 0.02    # a post's least weight in the share rule (a burst posted at once still counts a little)
SERIAL_RHO_MAX = 0.8       # share_serial: the most serial correlation a user's share is read with
# The return test (``share_return_nats``): the candidate posts at which the user may have come back lie this
# many episode posts apart, and at least RETURN_MIN_BACK posts must follow one (a few good posts are no return).
RETURN_STEP = 5
RETURN_MIN_BACK = 10
# Live calibration (service/calibration.py) reads each judged post's *level*: how far the three rules are
# towards firing, as a ratio to their thresholds (1 = one would fire at scale 1). An excursion of the level
# ends when it falls below this; the next rise is a new one (it must lie below the lowest scale).
PEAK_RESET = 0.25


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
    def from_manifest(cls, entry: dict[str, Any]) -> "ScoreProfile":
        """From the temporal manifest's ``score_profile`` (export/score_profile.py writes it)."""
        return cls(str(entry["id"]).rsplit("/", 1)[-1], tuple(map(float, entry["mean"])), tuple(map(float, entry["sd"])))

    @classmethod
    def of(cls, manifest: dict[str, Any]) -> "ScoreProfile | None":
        """A temporal manifest's profile; None for artifacts exported before it existed."""
        entry = manifest.get("score_profile")
        return cls.from_manifest(entry) if entry else None

    def standardise(self, x: float, index: int) -> float:
        i = min(index, len(self.mean) - 1)
        return (x - self.mean[i]) / max(self.sd[i], PROFILE_SD_FLOOR)

    def excess(self, index: int) -> float:
        """How far above a settled user's (the last entry's) the mean logit score runs at this post count."""
        return max(0.0, self.mean[min(index, len(self.mean) - 1)] - self.mean[-1])


def _check_inputs(score: float, negative_share: float | None, scale: float, gap: float | None) -> None:
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale!r}")
    if not 0.0 <= score <= 1.0:
        raise ValueError(f"score must be in [0, 1], got {score!r}")
    if negative_share is not None and not 0.0 <= negative_share <= 1.0:
        raise ValueError(f"negative_share must be in [0, 1], got {negative_share!r}")
    if gap is not None and not gap >= 0.0:
        raise ValueError(f"gap must be >= 0 seconds, got {gap!r}")


def _cusum_step(state: tuple[float, float, int], z: float, slack: float,
                z_down: float | None = None) -> tuple[float, float, int]:
    """A two-sided CUSUM's (up, down, run) after one standardised change ``z`` (``z_down`` for the down
    side when the sides read the share against different levels; run: consecutive posts with either side
    above 0)."""
    up, down, run = state
    down_z = z if z_down is None else z_down
    up, down = round(max(0.0, up + z - slack), 4), round(max(0.0, down - down_z - slack), 4)
    return up, down, run + 1 if max(up, down) > 0 else 0


def logit(score: float) -> float:
    """The score on the log-odds scale, softened at 0 and 1 (0 → -4.6, 1 → 4.6)."""
    return math.log((score + 0.01) / (1.01 - score))


def fast_bar(config: "DetectorConfig", age: int, scale: float = 1.0) -> float:
    """The score the fast rule needs at this age (posts since the baseline) and live-calibration scale:
    ``threshold`` raised by the score profile's excess and the scale, as ``_judge`` compares them.

    >>> round(fast_bar(DetectorConfig(threshold=0.9), 0), 6), fast_bar(DetectorConfig(threshold=0.9), 0, 3.0) > 0.9
    (0.9, True)
    """
    lifted = logit(config.threshold) + math.log(scale) + (config.profile.excess(age) if config.profile else 0.0)
    odds = math.exp(lifted)
    return min(1.0, max(0.0, (1.01 * odds - 0.01) / (1.0 + odds)))  # logit's inverse


@dataclass(frozen=True)
class DetectorConfig:
    warmup_posts: int = 8
    # Defaults for library use and tests: the values the service runs with are the served temporal
    # model's calibration, in its manifest (service/calibration.py, `python -m benchmarks.calibrate`).
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
    share_threshold: float = 0.0   # the share rule's CUSUM threshold (standardised units); 0: off
    share_slack: float = 0.25      # standardised change of the negative share a post must bring to count
    # The share rule's refinements (issue 12; off at their defaults, the manifest turns them on):
    share_tau: float = 0.0         # seconds: a post weighs 1 - exp(-gap / share_tau) (its news since the last); 0: 1
    share_faceless: bool = True    # False: posts without a face say nothing about mood to the share rule
    share_uncertainty: float = 0.0  # x the reference mean's own error added to the slack (young users); 0: off
    share_back_sd: float = 1.0     # an episode recovers once the recent share is within this many reference sds
    share_back_nearer: bool = False  # ... and nearer the pre-change level than to the episode's own mean
    share_rebaseline_seed: bool = False  # a new baseline's share reference starts from the episode's posts
    # A second two-sided CUSUM on the same standardised share, with another slack (a bank of two
    # approximates a GLR test, whose shift size is unknown: one slack is optimal for one shift); 0: off.
    # It reads the share rule's standardised share, so it needs share_threshold > 0 too.
    share2_threshold: float = 0.0
    share2_slack: float = 1.0
    # At the re-baseline post, the episode ends as "recovered" rather than "new_baseline" when the share is
    # back at the user's old level: the log-likelihood ratio (nats) of "back since some post after the alarm"
    # against "still where the alarm's run put it" must reach this (docs/detection_rules.md); 0: off.
    share_return_nats: float = 0.0
    # The share CUSUMs discount each user's serial correlation of the share (see the module docstring).
    share_serial: bool = False
    # From this many reference posts on, each side of the first share CUSUM reads the share against the
    # reference as it was when that side's run began (see the module docstring); 0: off.
    share_anchor_posts: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.recovery_threshold < self.threshold < 1:
            raise ValueError(f"need 0 < recovery_threshold ({self.recovery_threshold}) < threshold ({self.threshold}) < 1")
        if self.warmup_posts < 1 or self.confirm_posts < 1 or self.recovery_posts < 1:
            raise ValueError("warmup_posts, confirm_posts and recovery_posts must be >= 1")
        if self.cooldown_posts < 0 or self.rebaseline_posts < 0:
            raise ValueError("cooldown_posts and rebaseline_posts must be >= 0")
        if self.share_tau < 0 or self.share_back_sd <= 0 or self.share_uncertainty < 0 or self.share_return_nats < 0:
            raise ValueError("need share_tau >= 0, share_back_sd > 0, share_uncertainty >= 0 and share_return_nats >= 0")
        if self.share_anchor_posts < 0:
            raise ValueError("need share_anchor_posts >= 0")
        if min(self.cusum_threshold, self.cusum_slack, self.share_threshold, self.share_slack,
               self.share2_threshold, self.share2_slack) < 0:
            raise ValueError("cusum_threshold, cusum_slack and the share rule's thresholds and slacks must be >= 0")
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
    ended_by: EndedBy = ""  # and by which rule (stored with the post that ended it only)
    # the share rule: the user's reference negative share (mean, variance, posts), the two one-sided
    # CUSUMs of its standardised changes, and a short average of the recent share (for recovery)
    sh_n: int = 0
    sh_w: float = 0.0  # the reference's weight (its posts, each weighed by share_tau; = sh_n when that is off)
    sh_mean: float = 0.0
    sh_var: float = 0.0
    sh_up: float = 0.0
    sh_down: float = 0.0
    sh_run: int = 0  # consecutive posts the share CUSUM has been above 0
    sh_up2: float = 0.0  # the bank's second CUSUM (share2_slack): its two sides and run
    sh_down2: float = 0.0
    sh_run2: int = 0
    sh_recent: float = 0.0
    sh_a_up: float = 0.0  # share_anchor_posts: the reference mean when the first CUSUM's up / down side
    sh_a_down: float = 0.0  # last left 0 (kept only while that side is above 0)
    sh_last: float = 0.0  # share_serial: the previous post's share, and the running mean of squared
    sh_d2: float = 0.0    # differences of consecutive shares (kept through a new baseline: a trait, not a level)
    sh_ep_n: int = 0  # the episode's posts with a share, their mean (share_back_nearer) and variance
    sh_ep_mean: float = 0.0
    sh_ep_var: float = 0.0
    # the return test (share_return_nats): the standardised share summed over the current run of each side
    # of the CUSUM whose run dates the change (the bank's second, else the first); from the alarm on, that
    # run's sum and posts with the episode's posts added, and the largest S_tau^2 / n_tau of the candidate
    # returns so far (three numbers, whatever the episode's length: the record stays under 1 KiB)
    sh_rs_up: float = 0.0
    sh_rn_up: int = 0
    sh_rs_down: float = 0.0
    sh_rn_down: int = 0
    sh_zsum: float = 0.0
    sh_zrun: int = 0
    sh_zmax: float = 0.0
    baseline_since: int = 0  # posts_seen when the current baseline began (0, or the alarm before a new_baseline)
    # live calibration: the peak level of the current excursion, and the fast rule's last inputs
    cal_peak: float = 0.0
    fast_ys: list[float] = field(default_factory=list)
    # this post ended an episode as a new baseline: the caller restarts the LSTM state (not stored)
    restart_model: bool = field(default=False, compare=False)
    # this post's level (None: not judged: warming up, cooldown, drifting) and, when it rose past the
    # excursion's peak, the (peak before, level) it crossed; not stored
    level: float | None = field(default=None, compare=False)
    crossed: tuple[float, float] | None = field(default=None, compare=False)
    # the rules that fired on this post, when it raised drift.started (in RULES' order); not stored
    raised_by: tuple[Rule, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.ref_n == 0:
            self.ref_profile = self.config.profile_id

    @property
    def drift_detected(self) -> bool:
        return self.status == "drifting"

    @property
    def age(self) -> int:
        """Posts since the current baseline began, as the next post will be judged at (the profile's index)."""
        return self.posts_seen - self.baseline_since

    def update(self, score: float, negative_share: float | None = None, scale: float = 1.0,
               gap: float | None = None, face: bool = True) -> Event | None:
        """One post: its drift score and, for the share rule, the share of negative emotions (angry,
        disgust, fear, sad) in what the emotion model said about it (None: the share rule skips it).
        ``scale`` (live calibration, > 0) multiplies every rule's threshold: the evidence and share
        CUSUMs' thresholds by it, the fast rule's on the logit scale by ``+ log(scale)``. ``gap``
        (seconds since the user's previous post; None: unknown) weighs the post in the share rule when
        ``share_tau`` is on; ``face`` False hides the post from the share rule unless ``share_faceless``."""
        _check_inputs(score, negative_share, scale, gap)
        cfg = self.config
        self.posts_seen += 1
        self.restart_model, self.level, self.crossed, self.ended_by, self.raised_by = False, None, None, "", ()
        hidden = not face and not cfg.share_faceless  # a faceless post: the share rule neither tests nor learns it
        share = negative_share if cfg.share_threshold > 0 and not hidden else None  # None: the share rule skips it
        weight = self._weight(gap)
        if share is not None:
            recent = share if self.sh_n == 0 else self.sh_recent + SHARE_RECENT_ALPHA * (share - self.sh_recent)
            self.sh_recent = round(recent, 6)
        if self.status == "drifting":
            return self._while_drifting(score, share, hidden)
        x, y = self._inputs(score)
        fire = self._judge(x, y, share, weight, scale) if self.status == "stable" else False
        if self.cooldown_left > 0 or self.status != "stable":
            self._reset_share_cusums()
        if share is not None:
            self._learn_share(share, weight)
        self._learn(x)
        if self.status == "warming_up":
            if self.posts_seen >= cfg.warmup_posts:
                self.status = "stable"
            return None
        if self.status == "stable" and cfg.confirm_posts > 1:
            self.fast_ys = ([*self.fast_ys, round(y, 4)])[1 - cfg.confirm_posts:]
        if fire:
            self._start_episode()
            return "drift.started"
        return None

    def _while_drifting(self, score: float, share: float | None, hidden: bool) -> Event | None:
        """A post of an episode: does it end it, as a recovery or as a new baseline?"""
        cfg = self.config
        if share is not None:
            self._learn_episode(share)
        # back means the score is low and, with the share rule on, the recent share near the reference again
        # (a faceless post, hidden from the share rule, cannot say the share came back)
        share_judged = share is not None or (hidden and self.sh_n > 0)
        back = score < cfg.recovery_threshold and (not share_judged or self._share_back())
        self.streak = self.streak + 1 if back else 0
        started = self.episode_started_at if self.episode_started_at is not None else self.posts_seen
        due = cfg.rebaseline_posts > 0 and self.posts_seen - started >= cfg.rebaseline_posts
        by: EndedBy = ("recovery" if self.streak >= cfg.recovery_posts
                       else "return_test" if due and self._returned() else "")
        if by:
            self.status, self.streak, self.resolution, self.ended_by = "stable", 0, "recovered", by
            self.cooldown_left = cfg.cooldown_posts
            self.episode_started_at = None
            self._forget_episode()
            return "drift.ended"
        if due:
            self._rebaseline(started)
            return "drift.ended"
        return None

    def _inputs(self, score: float) -> tuple[float, float]:
        """The evidence rule's input ``x`` and the fast rule's ``y``: the logit score, read against what it
        is at this post count when the model has a score profile."""
        x = y = logit(score)
        profile = self.config.profile
        if profile is not None:
            age = self.posts_seen - 1 - self.baseline_since
            x, y = profile.standardise(x, age), x - profile.excess(age)
        return x, y

    def _judge(self, x: float, y: float, share: float | None, weight: float, scale: float) -> bool:
        """A stable user's post: the three rules' statistics moved on (none during a cooldown); True when
        one of them fires."""
        cfg = self.config
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.streak, self.cusum = 0, 0.0
            return False
        self.streak = self.streak + 1 if y >= logit(cfg.threshold) + math.log(scale) else 0
        if cfg.cusum_threshold > 0 and self.ref_n >= cfg.reference_min_posts:
            z = (x - self.ref_mean) / (math.sqrt(self.ref_var) + SD_FLOOR)
            self.cusum = max(0.0, self.cusum + z - cfg.cusum_slack)
        fired = (self.streak >= cfg.confirm_posts, 0 < cfg.cusum_threshold * scale <= self.cusum,
                 share is not None and self.sh_w >= SHARE_MIN_POSTS and self._share_test(share, weight, scale))
        self.raised_by = tuple(rule for rule, on in zip(RULES, fired) if on) if any(fired) else ()
        self._measure(y, share is not None)
        return bool(self.raised_by)

    def _start_episode(self) -> None:
        self._start_return_test()  # reads the run that led here, before the share CUSUMs restart
        self.status, self.streak, self.cusum = "drifting", 0, 0.0
        self._reset_share_cusums()
        self.cal_peak, self.fast_ys, self.sh_ep_n, self.sh_ep_mean, self.sh_ep_var = 0.0, [], 0, 0.0, 0.0
        self.episode_started_at = self.posts_seen
        self.episodes += 1

    def _measure(self, y: float, share_on: bool) -> None:
        """This judged post's level (the largest of the rules' statistics over their thresholds at scale 1)
        and the excursion's new peak. A rule fires at scale ``s`` when its ratio reaches ``s``; the fast
        rule's ratio is ``exp(min of its last confirm_posts inputs - logit(threshold))``."""
        cfg = self.config
        ys = [*self.fast_ys, y][-cfg.confirm_posts:]
        level = math.exp(min(min(ys) - logit(cfg.threshold), 5.0)) if len(ys) == cfg.confirm_posts else 0.0
        if cfg.cusum_threshold > 0:
            level = max(level, self.cusum / cfg.cusum_threshold)
        # share_on: this post has a share for the rule, so share_threshold > 0
        if share_on and self.sh_run >= SHARE_MIN_RUN:
            level = max(level, max(self.sh_up, self.sh_down) / cfg.share_threshold)
        if share_on and cfg.share2_threshold > 0 and self.sh_run2 >= SHARE_MIN_RUN:
            level = max(level, max(self.sh_up2, self.sh_down2) / cfg.share2_threshold)
        self.level = level
        if level > self.cal_peak:
            self.crossed, self.cal_peak = (self.cal_peak, level), round(level, 4)
        elif level < PEAK_RESET:
            self.cal_peak = 0.0

    @property
    def replay_posts(self) -> int:
        """The posts (this one included) the restarted LSTM should replay: those since the alarm."""
        return self.posts_seen - self.baseline_since

    def _rebaseline(self, started: int) -> None:
        """The episode's pattern is the user's normal from now on: a new reference, the age counted from
        the alarm (``started``: posts_seen then), the warm-up as a cooldown."""
        cfg = self.config
        self.status, self.streak, self.resolution, self.restart_model = "stable", 0, "new_baseline", True
        self.ended_by = "rebaseline"
        self.cooldown_left = max(cfg.cooldown_posts, cfg.warmup_posts)
        self.episode_started_at = None
        self.baseline_since = started
        self.cusum, self.ref_n, self.ref_mean, self.ref_var = 0.0, 0, 0.0, 0.0
        self.cal_peak, self.fast_ys = 0.0, []
        self._reset_share_cusums()
        if cfg.share_rebaseline_seed and self.sh_ep_n:
            # the posts since the alarm are the new pattern: the reference starts from them, not from nothing
            self.sh_n, self.sh_w, self.sh_mean, self.sh_var = self.sh_ep_n, float(self.sh_ep_n), self.sh_ep_mean, self.sh_ep_var
        else:
            self.sh_n, self.sh_w, self.sh_mean, self.sh_var = 0, 0.0, 0.0, 0.0
        self._forget_episode()

    def _weight(self, gap: float | None) -> float:
        """What this post adds to the share rule. Posts of one posting session (seconds to minutes apart)
        share one mood: a bad session is one piece of evidence, not one per post. With ``share_tau`` a
        post weighs ``1 - exp(-gap / share_tau)``; the user's first post, or an unknown gap, weighs 1."""
        tau = self.config.share_tau
        if tau <= 0 or gap is None or self.sh_n == 0:
            return 1.0
        return max(1.0 - math.exp(-gap / tau), SHARE_MIN_WEIGHT)

    def _reset_share_cusums(self) -> None:
        self.sh_up, self.sh_down, self.sh_run, self.sh_up2, self.sh_down2, self.sh_run2 = 0.0, 0.0, 0, 0.0, 0.0, 0
        self.sh_rs_up, self.sh_rn_up, self.sh_rs_down, self.sh_rn_down = 0.0, 0, 0.0, 0

    def _young_slack(self) -> float:
        """What a young reference adds to every share CUSUM's slack (each CUSUM's own is for a settled
        user). With ``share_uncertainty``: that many times the reference mean's own error, 1 /
        sqrt(effective posts) beyond a settled reference's (1 / sqrt(1 / SHARE_ALPHA), the posts the
        reference remembers). A reference learnt from n posts is off by about sd / sqrt(n), and a CUSUM
        adds that bias up post after post, so a young user's reference, not taken for the truth, needs
        more than a settled one's (issue 12: early alarms at posts 40-92 out of family)."""
        if not self.config.share_uncertainty or self.sh_w <= 0:
            return 0.0
        return self.config.share_uncertainty * max(0.0, 1.0 / math.sqrt(self.sh_w) - math.sqrt(SHARE_ALPHA))

    def _share_test(self, share: float, weight: float, scale: float) -> bool:
        """One post into the two-sided CUSUMs of the standardised share (the bank's second one too, when
        it is on); whether one of them fires. Never on one or two posts, however far off: a short dip is
        not a change (SHARE_MIN_RUN, for each CUSUM on its own run)."""
        cfg = self.config
        z = self._share_z(share)
        young = self._young_slack()
        rho = self._serial_rho()
        inflation = math.sqrt((1.0 + rho) / (1.0 - rho)) if rho else 1.0  # x / 1.0 is x, exactly
        evidence = weight * (z / inflation)
        if cfg.share_anchor_posts:
            up_z, down_z = self._anchored_z(share, z)
            up, down = weight * (up_z / inflation), weight * (down_z / inflation)
        else:
            up = down = evidence
        self.sh_up, self.sh_down, self.sh_run = _cusum_step(
            (self.sh_up, self.sh_down, self.sh_run), up, weight * (cfg.share_slack + young), down)
        if cfg.share_anchor_posts:  # a side back at 0 has no run to anchor: out of the record
            self.sh_a_up = self.sh_a_up if self.sh_up > 0 else 0.0
            self.sh_a_down = self.sh_a_down if self.sh_down > 0 else 0.0
        fires = max(self.sh_up, self.sh_down) >= cfg.share_threshold * scale and self.sh_run >= SHARE_MIN_RUN
        if cfg.share2_threshold > 0:
            self.sh_up2, self.sh_down2, self.sh_run2 = _cusum_step(
                (self.sh_up2, self.sh_down2, self.sh_run2), evidence, weight * (cfg.share2_slack + young))
            fires = fires or (max(self.sh_up2, self.sh_down2) >= cfg.share2_threshold * scale
                              and self.sh_run2 >= SHARE_MIN_RUN)
        if cfg.share_return_nats > 0:
            self._track_runs(z)
        return fires

    def _anchored_z(self, share: float, z: float) -> tuple[float, float]:
        """``share_anchor_posts``: the share standardised for the first CUSUM's up and down side, each
        against the reference mean when that side's run began (a side at 0 anchors at the reference now:
        its run would begin with this post). A young reference (fewer than ``share_anchor_posts`` posts)
        is still off by much of its own error, which an anchor would hold for a whole run: both sides read
        it as it moves, ``z`` (the share against the reference now)."""
        if self.sh_up <= 0:
            self.sh_a_up = self.sh_mean
        if self.sh_down <= 0:
            self.sh_a_down = self.sh_mean
        if self.sh_w < self.config.share_anchor_posts:
            return z, z
        return self._share_z(share, self.sh_a_up), self._share_z(share, self.sh_a_down)

    def _serial_rho(self) -> float:
        """The user's lag-1 autocorrelation of the share (``share_serial``; else 0), from
        ``E[(x_t - x_t-1)^2] = 2 var (1 - rho)``: a change of level moves one difference, not the rest, so
        the differences do not climb while a change goes on (a lag-1 covariance would); the reference
        variance does, slowly, as the reference learns the change. Clamped to 0..SERIAL_RHO_MAX: a negative
        one would make posts more evidence than independent ones."""
        if not self.config.share_serial or self.sh_n < 2 or self.sh_var <= 0:
            return 0.0
        return min(max(1.0 - self.sh_d2 / (2.0 * self.sh_var), 0.0), SERIAL_RHO_MAX)

    def _share_z(self, share: float, level: float | None = None) -> float:
        """The share standardised against the user's reference (its mean, or ``level`` in its sd), capped:
        one post far off is a dip, not a change."""
        z = (share - (self.sh_mean if level is None else level)) / (math.sqrt(self.sh_var) + SHARE_SD_FLOOR)
        return min(max(z, -SHARE_Z_CAP), SHARE_Z_CAP)

    def _dating_cusum(self) -> tuple[float, float]:
        """The (up, down) of the CUSUM whose run dates a change: the bank's second when it is on (its small
        slack keeps the run going from nearer the change), else the first."""
        if self.config.share2_threshold > 0:
            return self.sh_up2, self.sh_down2
        return self.sh_up, self.sh_down

    def _track_runs(self, z: float) -> None:
        """``z`` summed over the current run of each side of the dating CUSUM (since that side was last 0)."""
        up, down = self._dating_cusum()
        self.sh_rs_up, self.sh_rn_up = (round(self.sh_rs_up + z, 4), self.sh_rn_up + 1) if up > 0 else (0.0, 0)
        self.sh_rs_down, self.sh_rn_down = (round(self.sh_rs_down + z, 4), self.sh_rn_down + 1) if down > 0 else (0.0, 0)

    def _start_return_test(self) -> None:
        """The episode's level starts as the run of the side that is up: its posts are where the change began."""
        up, down = self._dating_cusum()
        self.sh_zsum, self.sh_zrun = ((self.sh_rs_up, self.sh_rn_up) if up >= down
                                      else (self.sh_rs_down, self.sh_rn_down))
        self.sh_zmax = 0.0

    def _forget_episode(self) -> None:
        """The episode's own share statistics, needed only while drifting: out of the stored state once it ends."""
        self.sh_ep_n, self.sh_ep_mean, self.sh_ep_var = 0, 0.0, 0.0
        self.sh_zsum, self.sh_zrun, self.sh_zmax = 0.0, 0, 0.0

    def _returned(self) -> bool:
        """The return test (``share_return_nats``), at the re-baseline post: has the share come back to the
        user's old level? Two models of the standardised share since the alarm's run began (the reference is
        frozen, so the old level is 0 and the sd 1): *persistent*, one level throughout; *returned*, one
        level up to a post tau after the alarm and the old level from there on. Each level at its maximum
        likelihood, the log-likelihood ratio of the second against the first is
        ``(S_tau^2 / n_tau - S^2 / n) / 2`` (S, n: the sum and posts of the whole span, S_tau, n_tau: up to
        tau), maximised over tau every RETURN_STEP posts up to RETURN_MIN_BACK before the decision.
        Counting the run before the alarm is what makes it work: an episode is often nearly over when its
        alarm comes, and the posts since the alarm alone then fit both models alike (docs/detection_rules.md)."""
        nats = self.config.share_return_nats
        n = self.sh_zrun + self.sh_ep_n
        if nats <= 0 or n == 0:
            return False
        # the S^2 / n term does not depend on tau, so the maximum over tau is kept as the posts come
        return 0.5 * (self.sh_zmax - self.sh_zsum * self.sh_zsum / n) >= nats

    def _share_back(self) -> bool:
        """The recent share is back near the user's pre-change level (the reference is frozen while drifting).
        With ``share_back_nearer`` it must also be nearer that level than the episode's own mean: a lasting
        change smaller than the share's per-post sd sits "within one sd" of the old level for good, and
        without this ended as ``recovered`` (issue 12: 44% of persistent changes out of family)."""
        away = abs(self.sh_recent - self.sh_mean)
        near = away <= self.config.share_back_sd * math.sqrt(self.sh_var) + SHARE_SD_FLOOR
        if near and self.config.share_back_nearer and self.sh_ep_n:
            near = away < abs(self.sh_recent - self.sh_ep_mean)
        return near

    def _learn_episode(self, share: float) -> None:
        """The mean and variance of the share over the posts since the alarm (the episode's own level), and
        for the return test its standardised sum."""
        cfg = self.config
        if cfg.share_return_nats > 0:
            # a candidate return (tau) every RETURN_STEP episode posts, RETURN_MIN_BACK before the re-baseline post
            upto = self.sh_zrun + self.sh_ep_n
            if upto and self.sh_ep_n % RETURN_STEP == 0 and self.sh_ep_n <= cfg.rebaseline_posts - RETURN_MIN_BACK:
                self.sh_zmax = max(self.sh_zmax, round(self.sh_zsum * self.sh_zsum / upto, 4))
            self.sh_zsum = round(self.sh_zsum + self._share_z(share), 4)
        self.sh_ep_n += 1
        delta = share - self.sh_ep_mean
        self.sh_ep_mean = round(self.sh_ep_mean + delta / self.sh_ep_n, 6)
        self.sh_ep_var = round(self.sh_ep_var + (delta * (share - self.sh_ep_mean) - self.sh_ep_var) / self.sh_ep_n, 6)

    def _learn_share(self, share: float, weight: float = 1.0) -> None:
        """The reference negative share: a running mean and variance, forgetting slowly (SHARE_ALPHA), each
        post counted with its weight (all 1: the plain running mean). With ``share_serial``, the squared
        difference from the previous post's share too, forgetting as the mean does."""
        if self.config.share_serial:
            if self.sh_n:
                step = share - self.sh_last
                self.sh_d2 = round(self.sh_d2 + max(1.0 / self.sh_n, SHARE_ALPHA) * (step * step - self.sh_d2), 6)
            self.sh_last = round(share, 6)
        self.sh_n += 1
        self.sh_w = round(self.sh_w + weight, 4)
        alpha = max(weight / self.sh_w, SHARE_ALPHA * weight)
        delta = share - self.sh_mean
        # kept to 6 decimals (shares are 0..1): the user's state stays under 1 KiB in Redis
        self.sh_mean = round(self.sh_mean + alpha * delta, 6)
        self.sh_var = round((1.0 - alpha) * (self.sh_var + alpha * delta * delta), 6)

    def _learn(self, x: float) -> None:
        """Exponentially weighted mean and variance of the user's logit scores (Welford at first)."""
        self.ref_n += 1
        alpha = max(1.0 / self.ref_n, self.config.reference_alpha)
        delta = x - self.ref_mean
        self.ref_mean += alpha * delta
        self.ref_var = (1.0 - alpha) * (self.ref_var + alpha * delta * delta)

    def to_dict(self) -> dict[str, object]:
        # field by field: dataclasses.asdict deep-copies recursively (its cost: docs/performance.md). The
        # fields added since the first release are left out at their defaults (from_dict restores them):
        # a user's state stays as small as it was for the rules that are off.
        state = {name: getattr(self, name) for name in STATE_FIELDS}
        for name, default in _OPTIONAL.items():
            if state[name] == default:
                del state[name]
        if state.get("sh_w") == float(self.sh_n):  # every post weighed 1 (share_tau off): from_dict restores it
            del state["sh_w"]
        return state

    @classmethod
    def from_dict(cls, config: DetectorConfig, state: dict[str, object]) -> "DriftDetector":
        known = {k: v for k, v in state.items() if k in STATE_FIELDS}
        posts = known.get("sh_n")
        if "sh_w" not in known and isinstance(posts, int) and posts:  # written before posts were weighed: 1 each
            known["sh_w"] = float(posts)
        if known.get("ref_profile", "") != config.profile_id:
            for name in ("ref_n", "ref_mean", "ref_var", "cusum", "ref_profile"):  # another scale: restart it
                known.pop(name, None)
        # the stored record's values: its fields are picked by name above, their types are the record's
        return cls(config=config, **known)  # type: ignore[arg-type]


STATE_FIELDS = tuple(f.name for f in fields(DriftDetector)
                     if f.name not in ("config", "restart_model", "level", "crossed", "raised_by"))
_OPTIONAL = {f.name: f.default for f in fields(DriftDetector)
             if f.name in ("resolution", "ended_by", "baseline_since", "cal_peak", "streak", "cooldown_left",
                           "episode_started_at", "episodes", "cusum") or f.name.startswith("sh_")}
_OPTIONAL["fast_ys"] = []
