"""The shadow temporal model: a candidate advanced beside the served one on every post, never alerting.

With ``EMODRIFT_SHADOW_TEMPORAL_MODEL_VERSION=N`` every post also steps temporal model N on the user's
*shadow slot* (its own h, c, detector state and model tag), kept inside the user's state record
(``UserState.shadow``), so it is written by the same atomic compare-and-set as the served state: the
two can never drift apart by a lost write. The shadow's detector runs with the same settings as the
served one (and the shadow model's own score profile); its events are counted, never sent, and
nothing of it reaches a response.

What is compared (``Shadow.record`` after each successful write; ``Shadow.report`` for /v1/model):
scores of both models, alarms (``drift.started``) of both, and *episodes* by agreement: ``both``
when the two models are drifting at the same time (counted once, when the overlap begins), and
``only_served`` / ``only_shadow`` when an episode of one model ends without the other having drifted
during it (an episode still open is not classified yet).

Promotion (``promote``): when the served model is switched to the version whose state sits in the
shadow slot, the two slots swap: the shadow's state becomes the served state (no cold start, the
detector keeps its status) and the old served state becomes the shadow slot, so rolling back is the
same setting flipped back. The slot's h and c are float32 bytes in base64 (exact).
"""

from __future__ import annotations

import base64
import bisect
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service import metrics
from service.drift import DetectorConfig, DriftDetector
from service.state_store import UserState
from service.temporal import TemporalModel

ROLES = ("served", "shadow")
AGREEMENT = ("both", "only_served", "only_shadow")
SCORE_BUCKETS = metrics.SCORE_BUCKETS


def pack(vector: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vector, dtype=np.float32).tobytes()).decode("ascii")


def unpack(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.float32).copy()


def promote(state: UserState, served_tag: str) -> bool:
    """If the served model's state is in the shadow slot (the shadow was promoted), swap the slots;
    True when it did. The served state goes to the shadow slot, where a rollback finds it."""
    slot = state.shadow
    if state.model == served_tag or slot is None or slot.get("model") != served_tag:
        return False
    pair = slot.get("pair", [False, False])
    state.shadow = {"model": state.model, "h": pack(state.h), "c": pack(state.c), "detector": state.detector,
                    "score": state.score, "pair": [pair[1], pair[0]]}
    state.model, state.h, state.c = served_tag, unpack(slot["h"]), unpack(slot["c"])
    state.detector, state.score = dict(slot.get("detector", {})), float(slot.get("score", 0.0))
    metrics.STATE_PROMOTIONS.inc()
    return True


@dataclass(frozen=True)
class Compared:
    """One post as both models saw it: what ``Shadow.record`` counts once the write has succeeded."""

    scores: tuple[float, float]  # served, shadow
    alarms: tuple[bool, bool]  # drift.started raised by served, shadow
    episodes: tuple[str, ...]  # agreement classes of the episodes this post settled


@dataclass
class Tally:
    """This process's comparison since it started (``/metrics`` has every worker's)."""

    posts: int = 0
    alarms: list[int] = field(default_factory=lambda: [0, 0])
    score_sums: list[float] = field(default_factory=lambda: [0.0, 0.0])
    score_counts: list[list[int]] = field(default_factory=lambda: [[0] * (len(SCORE_BUCKETS) + 1) for _ in ROLES])
    episodes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(AGREEMENT, 0))


class Shadow:
    def __init__(self, temporal: TemporalModel, config: DetectorConfig, served_tag: str) -> None:
        if temporal.artifact.tag == served_tag:
            raise ValueError(f"the shadow temporal model {served_tag} is the served one: pick another version")
        self.temporal = temporal
        self.config = config
        self.tag = temporal.artifact.tag
        self.tally = Tally()
        metrics.SHADOW_INFO.labels(served_tag, self.tag).set(1)

    def advance(self, state: UserState, x: np.ndarray, served_event: str | None) -> Compared:
        """Steps the shadow slot of ``state`` (already advanced by the served model) on the post's features ``x``."""
        slot = state.shadow
        if slot is None or slot.get("model") != self.tag:  # a user new to this shadow: start afresh
            h, c = self.temporal.initial_state()
            slot = {"model": self.tag, "detector": {}, "pair": [False, False]}
            metrics.SHADOW_RESETS.inc()
        else:
            h, c = unpack(slot["h"]), unpack(slot["c"])
        detector = DriftDetector.from_dict(self.config, slot["detector"])
        step = self.temporal.step(x, h, c)
        shadow_event = detector.update(step.drift_probability)

        served_drifting = state.detector.get("status") == "drifting"
        served_overlap, shadow_overlap = slot.get("pair", [False, False])
        settled: list[str] = []
        if served_drifting and detector.drift_detected and not (served_overlap and shadow_overlap):
            settled.append("both")
            served_overlap = shadow_overlap = True
        if served_event == "drift.ended" and not served_overlap:
            settled.append("only_served")
        if shadow_event == "drift.ended" and not shadow_overlap:
            settled.append("only_shadow")
        state.shadow = {"model": self.tag, "h": pack(step.h), "c": pack(step.c), "detector": detector.to_dict(),
                        "score": round(step.drift_probability, 6),
                        "pair": [served_overlap and served_drifting, shadow_overlap and detector.drift_detected]}
        return Compared((state.score, step.drift_probability),
                        (served_event == "drift.started", shadow_event == "drift.started"), tuple(settled))

    def record(self, compared: Compared) -> None:
        tally = self.tally
        tally.posts += 1
        for i, role in enumerate(ROLES):
            score = compared.scores[i]
            metrics.TEMPORAL_SCORE.labels(role).observe(score)
            tally.score_sums[i] += score
            tally.score_counts[i][bisect.bisect_left(SCORE_BUCKETS, score)] += 1
            if compared.alarms[i]:
                metrics.TEMPORAL_ALARMS.labels(role).inc()
                tally.alarms[i] += 1
        for kind in compared.episodes:
            metrics.SHADOW_EPISODES.labels(kind).inc()
            tally.episodes[kind] += 1

    def report(self, served_tag: str) -> dict[str, Any]:
        """The comparison for GET /v1/model: this process since it started."""
        tally, n = self.tally, self.tally.posts

        def model(i: int, tag: str) -> dict[str, Any]:
            counts = tally.score_counts[i]
            edges = [*SCORE_BUCKETS, 1.0]
            return {
                "tag": tag,
                "alarms": tally.alarms[i],
                "alarms_per_1000_posts": round(1000 * tally.alarms[i] / n, 3) if n else None,
                "score": {"mean": round(tally.score_sums[i] / n, 6) if n else None,
                          # posts whose score is <= each edge (cumulative, as Prometheus buckets)
                          "at_most": {str(edge): sum(counts[:j + 1]) for j, edge in enumerate(edges)}},
            }

        return {
            "scope": "this process since it started; /metrics sums every worker",
            "posts": n,
            "served": model(0, served_tag),
            "shadow": {**model(1, self.tag), "engine": self.temporal.engine},
            "episodes": dict(tally.episodes),
        }
