"""The detector's calibration: it belongs to the temporal model, and the operator may only override it.

Every threshold of the detector (``service/drift.py``) was calibrated on one temporal model's scores
(``python -m benchmarks.calibrate``): a score of 0.84 means something else to another model. So the
values live in the model's manifest (``model_repository/temporal/<v>/manifest.json``, section
``detector``, with ``calibrated_with``: the command, seed and target it was calibrated with), and the
service reads them from the model it serves. ``Settings`` (``EMODRIFT_DRIFT_THRESHOLD`` and friends)
holds only overrides: ``None`` means "the manifest's". A model without a calibration (temporal:1 and 2
were never calibrated on their own) is refused unless the operator sets every calibrated value, so
serving temporal:3 can never silently run on temporal:4's thresholds.

>>> manifest = {"detector": {"threshold": 0.8, "confirm_posts": 2, "cusum_threshold": 89.2, "cusum_slack": 0.5}}
>>> c = detector_config(manifest, {"confirm_posts": 3})
>>> (c.threshold, c.confirm_posts, c.cusum_threshold)
(0.8, 3, 89.2)
>>> detector_config({}, {})
Traceback (most recent call last):
...
service.calibration.CalibrationMissing: the temporal model's manifest has no detector calibration; set threshold, confirm_posts, cusum_threshold, cusum_slack (EMODRIFT_DRIFT_THRESHOLD, EMODRIFT_CONFIRM_POSTS, EMODRIFT_DRIFT_CUSUM_THRESHOLD, EMODRIFT_DRIFT_CUSUM_SLACK) or calibrate it with `python -m benchmarks.calibrate --write`
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import re
import time
from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

from service import keys, lua, metrics
from service.drift import PEAK_RESET, DetectorConfig, ScoreProfile

log = logging.getLogger("emodrift.calibration")

# DetectorConfig field -> the Settings field that overrides it
OVERRIDES = {
    "warmup_posts": "warmup_posts",
    "threshold": "drift_threshold",
    "recovery_threshold": "recovery_threshold",
    "confirm_posts": "confirm_posts",
    "recovery_posts": "recovery_posts",
    "cooldown_posts": "cooldown_posts",
    "cusum_threshold": "drift_cusum_threshold",
    "cusum_slack": "drift_cusum_slack",
    "reference_alpha": "drift_reference_alpha",
    "rebaseline_posts": "rebaseline_posts",
    "share_return_nats": "return_test_nats",
}
# What a calibration fixes: without these from the manifest or the operator there is no detector.
CALIBRATED = ("threshold", "confirm_posts", "cusum_threshold", "cusum_slack")
_KNOWN = {f.name for f in fields(DetectorConfig)} - {"profile"}


class CalibrationMissing(ValueError):
    """The served temporal model carries no calibration and the operator did not supply one."""


def overrides(settings: Any) -> dict[str, Any]:
    """The detector values the operator set (``Settings`` fields that are not None), by DetectorConfig name."""
    return {name: value for name, key in OVERRIDES.items() if (value := getattr(settings, key)) is not None}


def detector_config(manifest: dict[str, Any], operator: dict[str, Any],
                    profile: ScoreProfile | None = None) -> DetectorConfig:
    """The manifest's ``detector`` section with the operator's values on top (names of DetectorConfig)."""
    calibrated = {k: v for k, v in manifest.get("detector", {}).items() if k in _KNOWN}
    missing = [k for k in CALIBRATED if k not in calibrated and k not in operator]
    if missing:
        env = ", ".join(f"EMODRIFT_{OVERRIDES[k].upper()}" for k in missing)
        raise CalibrationMissing(f"the temporal model's manifest has no detector calibration; set {', '.join(missing)} "
                                 f"({env}) or calibrate it with `python -m benchmarks.calibrate --write`")
    return DetectorConfig(**{**calibrated, **operator, "profile": profile})


def served_config(manifest: dict[str, Any], settings: Any) -> DetectorConfig:
    """The detector a temporal model is served with: its manifest's calibration and score profile under
    the operator's overrides in ``settings`` (the service, its shadow and the CLI's calibration name)."""
    return detector_config(manifest, overrides(settings), ScoreProfile.of(manifest))


def describe(manifest: dict[str, Any], operator: dict[str, Any]) -> dict[str, Any]:
    """Where the served calibration comes from, for ``GET /v1/model``."""
    section = manifest.get("detector", {})
    return {"from_manifest": sorted(k for k in section if k in _KNOWN and k not in operator),
            "overridden": sorted(operator), "calibrated_with": section.get("calibrated_with")}


def learned_under(tag: str, config: DetectorConfig) -> str:
    """The live calibration's name, in its Redis keys and its exports: the temporal model's tag and a digest
    of the detector configuration its levels are read against (the manifest's calibration under the
    operator's overrides). A model recalibrated in place, or an overridden setting, starts afresh: counts
    taken against other thresholds are another scale, as another model's are."""
    values: dict[str, Any] = {f.name: getattr(config, f.name) for f in fields(DetectorConfig) if f.name != "profile"}
    values["profile"] = config.profile_id
    return f"{tag}@{hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:10]}"


# --- live calibration: the thresholds follow the platform's traffic --------------------------------
# docs/live_calibration.md explains the method; the figures it reached are there, not here.

# User-age buckets (posts since the baseline began): bucket i holds ages below AGE_EDGES[i], the last the rest.
# Young users get narrow buckets: the score's behaviour changes fastest there, and offline profiles
# transferred worst there (issue 12: early alarms at posts 40-92).
AGE_EDGES = (16, 32, 64, 128, 256, 512, 1024)
BUCKETS = len(AGE_EDGES) + 1
# The grid of levels (ratio of a rule's statistic to its threshold) the excursion peaks are counted on:
# PEAK_RESET x 2^(k/8), ~9% apart, up to 8x.
LEVEL_STEPS = 8
LEVELS = tuple(PEAK_RESET * 2 ** (k / LEVEL_STEPS) for k in range(5 * LEVEL_STEPS + 1))
# How far live thresholds may move from the manifest's: never switched off by a population that moves at
# once (at most 3x), never below half (a quiet population does not make the detector trigger-happy).
MIN_SCALE, MAX_SCALE = 0.5, 3.0
MIN_COUNT = 5          # crossings a level needs before its rate is trusted
FIT_LEVELS = 8         # the highest trusted levels the tail is extrapolated from
RECENT_POSTS = 20_000  # the window of the recent alarm rate (the global-event signal)
# Its history keeps a point every RECENT_STEP posts, not one per sync: HISTORY points then span twice the
# window whatever the traffic (one per sync never filled it below ~8 posts/s, and idle syncs pushed it out).
RECENT_STEP = RECENT_POSTS // 256
HISTORY = 512
AHEAD_SECONDS = 3600  # a verdict on an alarm no replica has sent yet waits this long for it (calibration_judge)
# Below the scale in force the counts under-read the alarms a lower scale would raise (an alarm restarts a
# statistic that, unreset, stays up and crosses once), so a move down aims at this share of the target.
DOWN_SHARE = 0.6
# After the first solve, each move is feedback: the alarm rate measured at the scale in force (over at least
# the window's posts) against the target, turned into a step along the counts' slope (d log crossings /
# d scale), half of it taken (learning slowly) and at most MAX_STEP of the scale.
WINDOW_ALARMS = 20     # the window: posts in which the target expects this many alarms
DAMPING = 0.5
MAX_STEP = 0.15
SLOPE_RANGE = (2.0, 20.0)  # the slope's bounds (per unit of scale) when the counts are too few to fit it


def age_bucket(age: int) -> int:
    """The age bucket of a user ``age`` posts into their baseline.

    >>> [age_bucket(a) for a in (8, 16, 40, 90, 5000)]
    [0, 1, 2, 3, 7]
    """
    for i, edge in enumerate(AGE_EDGES):
        if age < edge:
            return i
    return len(AGE_EDGES)


def bucket_label(bucket: int) -> str:
    lo = 0 if bucket == 0 else AGE_EDGES[bucket - 1]
    return f"{lo}-{AGE_EDGES[bucket] - 1}" if bucket < len(AGE_EDGES) else f"{lo}+"


def level_index(value: float) -> int:
    """The highest grid level at or below ``value`` (-1 below the grid)."""
    if value < LEVELS[0]:
        return -1
    return min(int(math.floor(LEVEL_STEPS * math.log2(value / LEVELS[0]) + 1e-9)), len(LEVELS) - 1)


def crossings(up: list[int], down: list[int]) -> list[int]:
    """Excursions that rose through each grid level: peaks after a rise at or above it, minus peaks
    before one at or above it (a rise from a to b crosses every level in (a, b])."""
    out, total = [0] * len(LEVELS), 0
    for k in range(len(LEVELS) - 1, -1, -1):
        total += up[k] - down[k]
        out[k] = total
    return out


def solve_scale(posts: int, up: list[int], down: list[int], target_per_post: float, current: float) -> float | None:
    """The scale at which the bucket's alarm rate (excursions crossing it, per post) is the target.

    Levels above ``current`` are censored (an excursion that reaches the scale in force alarms and
    restarts), so only those at or below it are read. When the target's level lies among them it is
    interpolated (log-linear); when it lies above (too many alarms now) or the counts there are too few
    (a young bucket: few posts), the tail is extrapolated from the highest trusted levels: a CUSUM's
    crossing rate falls exponentially with its threshold. None: not enough to say.

    Excursions whose crossings fall as a CUSUM's do, exp(-6 x level) (1000 cross the lowest level), in
    100 000 posts; the exact answers are 0.25 + log(100) / 6 = 1.0175 and 0.25 + log(1000) / 6 = 1.4013:

    >>> n = [1000 * math.exp(-6 * (level - LEVELS[0])) for level in LEVELS] + [0]
    >>> up, down = [round(n[k] - n[k + 1]) for k in range(len(LEVELS))], [0] * len(LEVELS)
    >>> solve_scale(100_000, up, down, 1e-4, 3.0)    # the target, 10 crossings, among the levels read
    1.0142
    >>> solve_scale(100_000, up, down, 1e-5, 0.8)    # 1 crossing, above the scale in force: extrapolated
    1.4035
    """
    n = crossings(up, down)
    target = target_per_post * posts
    usable = [k for k in range(len(LEVELS)) if LEVELS[k] <= current * 1.0001 and n[k] >= MIN_COUNT]
    if not usable:
        return None
    if target >= MIN_COUNT:
        for k in usable:
            if n[k] <= target:
                if k == 0:
                    return max(LEVELS[0], MIN_SCALE)
                lo, hi = math.log(n[k - 1]), math.log(n[k])
                share = (lo - math.log(target)) / (lo - hi) if lo > hi else 1.0
                return _bounded(LEVELS[k - 1] + share * (LEVELS[k] - LEVELS[k - 1]))
    top = usable[-FIT_LEVELS:]
    if len(top) < 2:
        return None
    xs, ys = np.array([LEVELS[k] for k in top]), np.log([n[k] for k in top])
    if np.ptp(ys) == 0:  # equal counts at every level read: no slope (polyfit's may round to -1e-16)
        return None
    slope, intercept = np.polyfit(xs, ys, 1)
    if slope >= 0:
        return None
    return _bounded(float((math.log(max(target, 1e-9)) - intercept) / slope))


def slope(bucket: "Bucket") -> float:
    """How fast the crossings fall with the scale near the one in force (-d log N / d scale), fitted on
    the trusted levels at or below it, within SLOPE_RANGE."""
    n = crossings(bucket.up, bucket.down)
    top = [k for k in range(len(LEVELS)) if LEVELS[k] <= bucket.scale * 1.0001 and n[k] >= MIN_COUNT][-FIT_LEVELS:]
    if len(top) < 2:
        return SLOPE_RANGE[0]
    fitted = -float(np.polyfit([LEVELS[k] for k in top], np.log([n[k] for k in top]), 1)[0])
    return min(max(fitted, SLOPE_RANGE[0]), SLOPE_RANGE[1])


def feedback(bucket: "Bucket", per_post: float) -> float:
    """The next scale from the alarms measured at this one since it was set (Robbins-Monro on the log rate).

    >>> b = Bucket(posts=60_000, alarms=40, scale=1.0, source="live", at_posts=20_000, at_alarms=0)
    >>> feedback(b, 0.5e-3) > 1.0   # 40 alarms where 20 were the target: up
    True
    """
    # an alarm counted before the mark and judged a real change after it takes one off: never below 0
    posts, alarms = bucket.posts - bucket.at_posts, max(bucket.alarms - bucket.at_alarms, 0)
    ratio = (alarms + 0.5) / (posts * per_post + 0.5)
    step = DAMPING * math.log(ratio) / slope(bucket)
    step = min(max(step, -MAX_STEP * bucket.scale), MAX_STEP * bucket.scale)
    return _bounded(bucket.scale + step)


def _bounded(scale: float) -> float:
    return round(min(max(scale, MIN_SCALE), MAX_SCALE), 4)


@dataclass
class Bucket:
    """One age bucket's counts (both generations kept) and the scale in force."""

    posts: int = 0
    alarms: int = 0  # raised, less those a reviewer judged real changes (``real``): what learning reads
    up: list[int] = field(default_factory=lambda: [0] * len(LEVELS))
    down: list[int] = field(default_factory=lambda: [0] * len(LEVELS))
    scale: float = 1.0
    source: str = "manifest"  # manifest | live | imported | borrowed (an older learned bucket's: borrow())
    # the bucket's posts and alarms when its scale was last set: what came since was judged at this scale
    at_posts: int = 0
    at_alarms: int = 0
    real: int = 0  # alarms a reviewer's verdict said were real changes (``judge``)

    @property
    def raised(self) -> int:
        """Every alarm raised, real changes included (``alarms`` leaves those out)."""
        return self.alarms + self.real


LEARNED = ("live", "imported")
LABELS = tuple(bucket_label(b) for b in range(BUCKETS))
Count = Annotated[StrictInt, Field(ge=0)]


class ScaleEntry(BaseModel):
    """One age bucket's learned scale as stored (and exported): the scale, learned here or imported, and
    the bucket's posts and alarms when it was set (feedback measures the alarms since)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    scale: Annotated[float, Field(ge=MIN_SCALE, le=MAX_SCALE, allow_inf_nan=False)]
    source: Literal["live", "imported"]
    # exports from before the feedback window carried no marks: measured from the start
    at_posts: Count = 0
    at_alarms: Count = 0


class StoredScales(BaseModel):
    """The scales in force (``keys.calibration_scales``, JSON), as the replicas write them and an import
    does. Every replica's sync reads them with this schema too, so an import refuses exactly what a sync
    could not read (a scale of ``true`` or an ``at_posts`` of ``"abc"`` once stopped every replica's
    learning), and a value that does not fit changes nothing before it is refused."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)
    model: StrictStr
    target_false_alarms_per_1000: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    buckets: dict[str, ScaleEntry]  # by age bucket label; buckets absent serve the manifest's (or borrow)

    @field_validator("buckets")
    @classmethod
    def _known_ages(cls, buckets: dict[str, ScaleEntry]) -> dict[str, ScaleEntry]:
        unknown = [label for label in buckets if label not in LABELS]
        if unknown:
            raise ValueError(f"unknown age bucket {unknown[0]!r} (the buckets: {', '.join(LABELS)})")
        return buckets


def borrow(buckets: list[Bucket]) -> None:
    """A bucket without a scale of its own serves the nearest older learned bucket's when that is above 1.

    The youngest buckets fill last (a user brings only ~8 judged posts to ages 0-15), so on a population
    noisier than the training families they kept the manifest's thresholds while every older bucket had
    found those too low and moved them up (docs/live_calibration.md, ``blind6``). Borrowing only upwards
    never makes an unmeasured bucket more sensitive than the manifest;
    a bucket's own counts replace the borrowed scale once it has ``min_posts`` (read at the borrowed
    scale, the one its alarms were raised at). Every replica derives it from the same learned scales, so
    it is never stored."""
    for i, bucket in enumerate(buckets):
        if bucket.source in LEARNED:
            continue
        older = next((x for x in buckets[i + 1:] if x.source in LEARNED), None)
        if older is not None and older.scale > 1.0:
            bucket.scale, bucket.source = older.scale, "borrowed"
        else:
            bucket.scale, bucket.source = 1.0, "manifest"


def hold_young(buckets: list[Bucket]) -> list[int]:
    """``calibration_hold_young``: a learned bucket's scale is raised to the highest of the older learned
    buckets' when it is below it; the buckets raised. The manifest holds young users to stricter thresholds
    than settled ones on purpose (the share rule's young slack: an early false episode hides a real
    change), their statistics climb less, and a bucket solved to the target on its own gets the lowest
    scale of all at ages 32-63 on most populations: live calibration undoes that caution where changes
    begin. Held, a younger user is never judged more sensitively, relative to the manifest, than an older
    one; what that trades is in docs/live_calibration.md."""
    raised, floor = [], 0.0
    for i in range(len(buckets) - 1, -1, -1):
        bucket = buckets[i]
        if bucket.source not in LEARNED:
            continue
        if bucket.scale < floor:
            bucket.scale = floor
            raised.append(i)
        floor = bucket.scale
    return raised


def population(buckets: list[Bucket]) -> list[Bucket]:
    """``calibration_one_scale``: every bucket given the whole population's counts (every age's summed), so
    that each solves and feeds back the same scale: the population's level is learned, and the manifest's
    balance between ages (the share rule's caution for young users) is kept. Solved per age, the bucket of
    ages 32-63 gets the lowest scale on most populations (``hold_young``); with the twenty-eighth round's
    wide share bank, one scale kept out of family the speed that per-age scales took away
    (docs/live_calibration.md)."""
    posts, alarms, real = (sum(getattr(b, name) for b in buckets) for name in ("posts", "alarms", "real"))
    up = [sum(counts) for counts in zip(*(b.up for b in buckets))]
    down = [sum(counts) for counts in zip(*(b.down for b in buckets))]
    return [Bucket(posts=posts, alarms=alarms, up=list(up), down=list(down), real=real) for _ in buckets]


# A generation's counter (``keys.calibration_counts``' fields, written by ``record``): posts ``n:<bucket>``,
# alarms ``a:<bucket>``, of them judged real changes ``c:<bucket>`` (``judge``), up- and down-crossings ``u:<bucket>:<level>``, ``d:<bucket>:<level>``; numbers as
# ``record`` writes them, without a leading 0. One reading for the sync and an import's validation.
_NUMBER = r"(0|[1-9][0-9]*)"
COUNTER = re.compile(rf"(?P<kind>[nac]):(?P<b>{_NUMBER})|(?P<crossing>[ud]):(?P<cb>{_NUMBER}):(?P<level>{_NUMBER})")


def parse_counter(name: str | bytes) -> tuple[str, int, int] | None:
    """``(kind, bucket, level)`` of a counter's name (level 0 for ``n`` and ``a``); None for anything else,
    a bucket or level out of range included.

    >>> parse_counter("u:3:12"), parse_counter(b"c:0"), parse_counter("a:8"), parse_counter("n:01")
    (('u', 3, 12), ('c', 0, 0), None, None)
    """
    match = COUNTER.fullmatch(name.decode() if isinstance(name, bytes) else name)
    if match is None:
        return None
    kind, bucket, level = match["kind"] or match["crossing"], int(match["b"] or match["cb"]), int(match["level"] or 0)
    return (kind, bucket, level) if bucket < BUCKETS and level < len(LEVELS) else None


def parse_counts(hashes: list[Any]) -> list[Bucket]:
    """The counters of the generations kept (``keys.calibration_counts``: field -> count, bytes or str),
    summed, by bucket; fields that are no counter are skipped. A bucket's ``alarms`` are those raised
    less those judged real changes (never below 0: a verdict can land on an alarm whose count a replica
    lost)."""
    buckets = [Bucket() for _ in range(BUCKETS)]
    for counts in hashes:
        for raw, value in counts.items():
            if (counter := parse_counter(raw)) is None:
                continue
            (kind, b, k), v = counter, int(value)
            bucket = buckets[b]
            if kind == "n":
                bucket.posts += v
            elif kind == "a":
                bucket.alarms += v
            elif kind == "c":
                bucket.real += v
            else:
                (bucket.up if kind == "u" else bucket.down)[k] += v
    for bucket in buckets:
        bucket.real = min(max(bucket.real, 0), bucket.alarms)
        bucket.alarms -= bucket.real
    return buckets


class LiveCalibration:
    """The scale on the manifest's thresholds by user age, learned from the population (shared in Redis).

    The hot path only reads ``scale(age)`` and adds to local counters (``record``); ``sync`` (every
    ``calibration_sync_seconds``, a background task) sends the counters in one round trip (the
    ``calibration_add`` script: to the generation they were counted in, while it is kept), reads the two
    generations kept, and recomputes every bucket's scale. Every replica reads
    the same counts, so they agree; ``calibration_frozen`` stops learning and serves the scales stored
    last (learned, or imported by an operator). A reviewer's verdict that an alarm was a real change
    takes it out of the counts (``judge``): "normal" is learned from false alarms, not from changes.
    """

    def __init__(self, redis: Any, model: str, settings: Any) -> None:
        self.redis, self.model = redis, model
        self.enabled, self.frozen = bool(settings.live_calibration), bool(settings.calibration_frozen)
        self.hold = bool(settings.calibration_hold_young)
        self.one_scale = bool(settings.calibration_one_scale)
        self.by_age: list[tuple[int, int, int]] | None = None  # one_scale: each age's own (posts, alarms, real)
        self.target = float(settings.target_false_alarms_per_1000)
        self.min_posts = int(settings.calibration_min_posts)
        self.generation_posts = int(settings.calibration_generation_posts)
        self.buckets = [Bucket() for _ in range(BUCKETS)]
        self.scales = [1.0] * BUCKETS  # what the hot path reads
        self.generation = 0
        self.recent_ratio: float | None = None
        self._pending: Counter[str] = Counter()
        self._alarms: dict[str, str] = {}  # alert id -> its entry (keys.calibration_alarms), sent with the counts
        self._add = lua.CALIBRATION_ADD.bind(redis) if redis is not None else None
        self._rotate = lua.CALIBRATION_ROTATE.bind(redis) if redis is not None else None
        self._store = lua.CALIBRATION_STORE.bind(redis) if redis is not None else None
        self._judge = lua.CALIBRATION_JUDGE.bind(redis) if redis is not None else None
        self._observe = lua.CALIBRATION_OBSERVE.bind(redis) if redis is not None else None

    def scale(self, age: int) -> float:
        return self.scales[age_bucket(age)]

    def record(self, age: int, crossed: tuple[float, float] | None, alarmed: bool, alarm_id: str | None = None) -> None:
        """One judged post of a user ``age`` posts into their baseline: the excursion rise it made, if
        any, and whether it raised an alarm (``alarm_id``: the alert's, for a verdict on it: ``judge``).
        Local counters only; ``sync`` sends them. Frozen, only the post and its alarm: freezing stops
        learning, not the recent alarm rate (``observe``)."""
        if not self.enabled:
            return
        b = age_bucket(age)
        pending = self._pending
        pending[f"n:{b}"] += 1
        if alarmed:
            pending[f"a:{b}"] += 1
            if alarm_id is not None and not self.frozen:
                peak = level_index(crossed[1]) if crossed is not None else -1
                self._alarms[alarm_id] = f"{b}:{peak}:0"
        if crossed is not None and not self.frozen:
            lo, hi = level_index(crossed[0]), level_index(crossed[1])
            if hi > lo:  # a rise within one grid step crosses no level
                pending[f"u:{b}:{hi}"] += 1
                if lo >= 0:
                    pending[f"d:{b}:{lo}"] += 1

    async def sync(self) -> None:
        """Counters out, counts in, scales recomputed (three round trips, plus a rare rotation and store).
        Frozen: the posts and alarms out, the stored scales in (two round trips)."""
        if not self.enabled:
            return
        pending, self._pending = self._pending, Counter()
        alarms, self._alarms = self._alarms, {}
        if self.frozen:
            await self._read_shared(pending)
            return
        if self._add is None or self._rotate is None or self._store is None:  # built without Redis (tests of the counting alone)
            raise RuntimeError("live calibration has no Redis client to sync with")
        meta = keys.calibration_meta(self.model)
        counters = [x for counter, value in pending.items() for x in (counter, value)]
        added = await self._add(keys={"meta": meta, "counts": keys.calibration_counts(self.model, self.generation),
                                      "alarms": keys.calibration_alarms(self.model, self.generation),
                                      "ahead": keys.calibration_ahead(self.model),
                                      "ahead_times": keys.calibration_ahead_times(self.model)},
                                args={"generation": self.generation, "counter_values": len(counters)},
                                arg_tail=counters + [x for alarm in alarms.items() for x in alarm])
        generation = int(added.values[0])
        if added.status == "stale":  # an import replaced the counts (or two rotations passed): these were of before
            log.info("live calibration: generation %d is gone (an import, or rotations), %d counters dropped; "
                     "now on generation %d", self.generation, len(pending), generation)
        latest, previous, stored = await self._read_shared(pending, generation)
        self.generation = generation
        if sum(int(v) for k, v in latest.items() if k.startswith(b"n:")) >= self.generation_posts:
            # 'ok': this replica moved on; 'conflict': another did first. Either way, the generation in use now
            rotated = await self._rotate(keys={"meta": meta,
                                               "previous_counts": keys.calibration_counts(self.model, generation - 1),
                                               "previous_alarms": keys.calibration_alarms(self.model, generation - 1)},
                                         args={"generation": generation})
            self.generation = int(rotated.values[0])
        if self.update(parse_counts([latest, previous])):
            # compare-and-set: when another replica moved the scales meanwhile, theirs stand (read next sync)
            await self._store(keys={"scales": keys.calibration_scales(self.model)},
                              args={"expected": stored or "", "scales": json.dumps(self.export_scales())})

    def update(self, buckets: list[Bucket]) -> bool:
        """Every bucket's scale from its counts (pure: the benchmark drives it without Redis); True when a
        scale moved. A bucket keeps the manifest's until it has seen ``min_posts``; then its first scale is
        solved from the excursions' crossings, and every later move is feedback on the alarm rate
        measured at the scale in force."""
        per_post = self.target / 1000.0
        window = max(self.min_posts, int(WINDOW_ALARMS / per_post))
        moved = False
        if self.one_scale:
            self.by_age = [(b.posts, b.raised, b.real) for b in buckets]
            buckets = population(buckets)
        for old, new in zip(self.buckets, buckets):
            new.scale, new.source, new.at_posts, new.at_alarms = old.scale, old.source, old.at_posts, old.at_alarms
            if new.posts < new.at_posts:  # a generation was dropped: measure afresh from here
                new.at_posts, new.at_alarms = new.posts, new.alarms
            if new.posts < self.min_posts:
                continue
            if new.source not in LEARNED:
                solved = solve_scale(new.posts, new.up, new.down, per_post, new.scale)
                if solved is not None and solved < new.scale:
                    lower = solve_scale(new.posts, new.up, new.down, per_post * DOWN_SHARE, new.scale)
                    solved = min(lower, new.scale) if lower is not None else new.scale
                if solved is None:
                    continue
            elif new.posts - new.at_posts >= window:
                solved = feedback(new, per_post)
            else:
                continue
            moved = moved or solved != new.scale or new.source != "live"
            new.scale, new.source, new.at_posts, new.at_alarms = solved, "live", new.posts, new.alarms
        for i in hold_young(buckets) if self.hold else []:  # its alarms are measured afresh at the scale now served
            moved, buckets[i].at_posts, buckets[i].at_alarms = True, buckets[i].posts, buckets[i].alarms
        borrow(buckets)
        self.buckets = buckets
        self.scales = [b.scale for b in buckets]
        self._publish()
        return moved

    async def _read_shared(self, pending: Counter[str], generation: int | None = None) -> tuple[Any, Any, Any]:
        """Two round trips: this sync's posts and alarms added to the recent alarm rate's totals (nothing
        written when there is nothing to add: a replica without traffic leaves Redis as it found it), the
        totals read back (``observe``), the stored scales applied; and, learning (``generation``), the
        counts of that generation and the one before; frozen (no ``generation``), the generation in use,
        which verdicts look alarms up by (a frozen replica stayed on 0 while the counts moved on, and its
        verdicts found nothing: an audit). Returns (latest, previous, stored scales)."""
        assert self._observe is not None  # sync() is only called with Redis
        added = {kind: sum(v for k, v in pending.items() if k.startswith(f"{kind}:")) for kind in "na"}
        observed = await self._observe(
            keys={"observed": keys.calibration_observed(self.model), "history": keys.calibration_recent(self.model)},
            args={"posts": added["n"], "alarms": added["a"], "window": RECENT_POSTS, "step": RECENT_STEP, "keep": HISTORY})
        pipe = self.redis.pipeline(transaction=False)
        if generation is not None:
            pipe.hgetall(keys.calibration_counts(self.model, generation))
            pipe.hgetall(keys.calibration_counts(self.model, generation - 1))
        else:
            pipe.hget(keys.calibration_meta(self.model), "gen")
        pipe.get(keys.calibration_scales(self.model))
        replies = await pipe.execute()
        latest, previous = replies[:2] if generation is not None else ({}, {})
        if generation is None:
            self.generation = int(replies[0] or 0)
        stored = replies[-1]
        posts, alarms, *start = (int(v) for v in observed.values)
        self.observe(posts, alarms, (start[0], start[1]) if start else None)
        self._apply_stored(stored)  # the scales every replica serves start from the shared ones
        return latest, previous, stored

    def observe(self, posts: int, alarms: int, start: tuple[int, int] | None) -> None:
        """The recent alarm rate (the global-event signal) from the population's judged posts and alarms so
        far (``keys.calibration_observed``) and the totals at the start of the window (the newest point of
        their shared history at least RECENT_POSTS posts back; ``calibration_observe``): the window's alarms
        over the target's. Those totals are kept apart from the generations' counts, which learning reads:
        frozen replicas add to them too (freezing stops learning, not observing: the ratio went NaN and the
        alert cleared though nothing had improved), and neither a rotation nor an import moves them. Each
        post counts once (summed over the age buckets after ``population`` gave each the whole population's,
        the window was an eighth of its size). The history is shared, so a replica reads the rate from its
        first sync: kept in each process, every restart (a deploy, the freeze the runbook asks for) made it
        unknown for ~20 000 posts a worker, and the alert cleared (an on-call audit)."""
        self.recent_ratio = None
        if start is not None and posts > start[0]:
            self.recent_ratio = round((alarms - start[1]) / (posts - start[0]) / (self.target / 1000.0), 3)
        # not enough traffic yet: NaN, as /v1/model's null (0 would read as "no alarms")
        metrics.CALIBRATION_ALARM_RATE.set(float("nan") if self.recent_ratio is None else self.recent_ratio)

    def _publish(self) -> None:
        for b, bucket in enumerate(self.buckets):
            metrics.CALIBRATION_SCALE.labels(bucket_label(b)).set(bucket.scale)
        metrics.CALIBRATION_LIVE_BUCKETS.set(sum(b.source in LEARNED for b in self.buckets))
        # whatever the scale's source: thresholds an operator imported at a bound (or a young bucket
        # borrows) are pinned there as much as learned ones; counting only "live" showed 0 for them
        metrics.CALIBRATION_AT_BOUND.set(sum(b.scale in (MIN_SCALE, MAX_SCALE) for b in self.buckets))

    def _apply_stored(self, raw: bytes | str | None) -> None:
        if not raw:
            return
        stored = StoredScales.model_validate_json(raw)  # whole, before any bucket changes
        for b, bucket in enumerate(self.buckets):
            entry = stored.buckets.get(bucket_label(b))
            if entry is None:
                bucket.scale, bucket.source, bucket.at_posts, bucket.at_alarms = 1.0, "manifest", 0, 0
            else:
                bucket.scale, bucket.source = entry.scale, entry.source
                bucket.at_posts, bucket.at_alarms = entry.at_posts, entry.at_alarms
        if self.hold:  # scales stored or imported without the hold are served held too
            hold_young(self.buckets)
        borrow(self.buckets)
        self.scales = [b.scale for b in self.buckets]
        self._publish()

    def export_scales(self) -> dict[str, Any]:
        """The learned scales as stored in Redis (``StoredScales``; borrowed ones are derived, never stored)."""
        return StoredScales.model_validate({
            "model": self.model, "target_false_alarms_per_1000": self.target,
            "buckets": {bucket_label(b): {"scale": x.scale, "source": x.source, "at_posts": x.at_posts,
                                          "at_alarms": x.at_alarms}
                        for b, x in enumerate(self.buckets) if x.source in LEARNED}}).model_dump()

    def largest_scale(self) -> float:
        """The most the thresholds in force are raised over the manifest's, at any user age (1: not at all)."""
        return max(self.scales) if self.enabled else 1.0

    def largest_source(self) -> str:
        """Where the largest scale in force came from, in a reviewer's words: learned (from this platform's
        traffic, or borrowed from an older age's) or imported (by an operator)."""
        bucket = max(self.buckets, key=lambda b: b.scale)
        return "imported" if bucket.source == "imported" else "learned"

    def describe(self) -> dict[str, Any]:
        """For ``GET /v1/model``."""
        counts = self.by_age or [(x.posts, x.raised, x.real) for x in self.buckets]
        return {"name": self.model, "enabled": self.enabled, "frozen": self.frozen, "hold_young": self.hold,
                "one_scale": self.one_scale, "target_false_alarms_per_1000": self.target,
                "min_posts": self.min_posts, "generation": self.generation, "recent_alarm_rate_ratio": self.recent_ratio,
                "bounds": [MIN_SCALE, MAX_SCALE],
                "buckets": [{"age": bucket_label(b), "scale": x.scale, "source": x.source, "posts": posts,
                             "alarms": alarms, "judged_real": real}
                            for b, (x, (posts, alarms, real)) in enumerate(zip(self.buckets, counts))]}

    async def judge(self, alarm_id: str, real: bool, judgment: int) -> str:
        """A reviewer's verdict on an alarm (``service/alerts/store.py``, when whether it was a real change
        changes): a real change is taken out of the counts learning reads (its alarm and its excursion's
        crossings), a later "not real" puts it back; once only, however often a verdict is retried, and
        the latest verdict (``judgment``, its number on the alert) stands whatever order they arrive in
        (``calibration_judge``). Looked up in the generations a replica may have counted it in (this
        one's, the one before, the one after); the status: ``ok``, or ``missing``: not counted yet (the
        verdict waits for the alarm's sync, ``calibration_add`` applies it), or in a generation gone, or
        under another calibration (nothing changes). Learning follows at the next sync; frozen, the
        counts change for when learning resumes."""
        if not self.enabled or self._judge is None:
            return "missing"
        generations = [key for g in self._generations_kept()
                       for key in (keys.calibration_alarms(self.model, g), keys.calibration_counts(self.model, g))]
        reply = await self._judge(keys={"ahead": keys.calibration_ahead(self.model),
                                        "ahead_times": keys.calibration_ahead_times(self.model)}, key_tail=generations,
                                  args={"alarm_id": alarm_id, "real": int(real), "judgment": judgment,
                                        "now": repr(time.time()), "ahead_seconds": AHEAD_SECONDS})
        return reply.status

    async def forget(self, alarm_ids: list[str]) -> None:
        """Erasure (``service/alerts/store.py`` ``unlist``): the alarms recorded by these alert ids go from
        the generations a replica may have counted them in; the counts stay (aggregates of no one). An
        alarm raised within a sync of the erasure may still be sent after it (docs/storage.md)."""
        if not self.enabled or self.redis is None or not alarm_ids:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for g in self._generations_kept():
                pipe.hdel(keys.calibration_alarms(self.model, g), *alarm_ids)
            pipe.hdel(keys.calibration_ahead(self.model), *alarm_ids)
            pipe.zrem(keys.calibration_ahead_times(self.model), *alarm_ids)
            await pipe.execute()

    def _generations_kept(self) -> list[int]:
        """The generations an alarm may have been counted in: this replica's, the one before it (kept), and
        the one after (another replica may have moved on first)."""
        return [g for g in (self.generation - 1, self.generation, self.generation + 1) if g >= 0]

    async def sync_at_start(self, timeout: float) -> None:
        """One sync before the service serves (``service/app.py``): without it a replica, a frozen one too,
        served the manifest's thresholds until the background task's first sync, a sync interval after
        every start. Bounded by ``timeout`` (the Redis timeout): a Redis away or slow delays the stored
        scales, never the start; the background task syncs again."""
        await self._sync_within(timeout, "no sync before serving; the next one is due in the background")

    async def sync_at_stop(self, timeout: float) -> None:
        """One last sync once the service stops serving (``service/app.py``): a stop cancelled the
        background task and dropped up to a sync interval of counts and alarms (a restart's audit: 26 of
        30 alarms never recorded, so verdicts on them did nothing). Bounded by ``timeout``: what it could
        not send is lost, as a crash's is."""
        await self._sync_within(timeout, "the last counts were not sent before stopping")

    async def _sync_within(self, timeout: float, failed: str) -> None:
        """A sync that waits at most ``timeout``; timed out or Redis away, ``failed`` is logged."""
        try:
            await asyncio.wait_for(self.sync(), timeout)
        except Exception:  # noqa: BLE001 - a start or a stop goes on either way
            log.warning("live calibration: %s", failed, exc_info=True)

    async def run(self, every: float) -> None:
        """The background task: sync every ``every`` seconds; Redis away only delays learning."""
        while True:
            await asyncio.sleep(every)
            try:
                await self.sync()
            except Exception:  # noqa: BLE001 - the next sync retries; detection goes on with the scales in force
                log.warning("live calibration sync failed", exc_info=True)
