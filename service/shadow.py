"""The shadow temporal model: a candidate advanced beside the served one on every post, never alerting.

With ``EMODRIFT_SHADOW_TEMPORAL_MODEL_VERSION=N`` every post also steps temporal model N on the user's
*shadow slot* (its own h, c, detector state and model tag), kept inside the user's state record
(``UserState.shadow``), so it is written by the same atomic compare-and-set as the served state: the
two can never drift apart by a lost write. The shadow's detector is the one serving that model would
run (its manifest's calibration under the operator's overrides, its score profile; its LSTM state
rebuilt after a new baseline by the pipeline, as the served one's); its events are counted, never sent, and
nothing of it reaches a response.

What is compared (``Shadow.record`` counts it in the metrics after each successful write;
``Shadow.report`` sums them for /v1/model):
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
from dataclasses import dataclass
from typing import Any

import numpy as np

from service import metrics
from service.drift import DetectorConfig, DriftDetector
from service.state_store import UserState
from service.temporal import TemporalModel

ROLES = ("served", "shadow")
AGREEMENT = ("both", "only_served", "only_shadow")


def pack(vector: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vector, dtype=np.float32).tobytes()).decode("ascii")


def unpack(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.float32).copy()


def promote(state: UserState, served_tag: str) -> bool:
    """If the served model's state is in the shadow slot (the shadow was promoted), swap the slots;
    True when it did (the caller counts it once the state is written). The served state goes to the
    shadow slot, where a rollback finds it."""
    slot = state.shadow
    if state.model == served_tag or slot is None or slot.get("model") != served_tag:
        return False
    pair = slot.get("pair", [False, False])
    state.shadow = {"model": state.model, "h": pack(state.h), "c": pack(state.c), "detector": state.detector,
                    "score": state.score, "pair": [pair[1], pair[0]]}
    state.model, state.h, state.c = served_tag, unpack(slot["h"]), unpack(slot["c"])
    state.detector, state.score = dict(slot.get("detector", {})), float(slot.get("score", 0.0))
    return True


@dataclass(frozen=True)
class Compared:
    """One post as both models saw it: what ``Shadow.record`` counts once the write has succeeded."""

    scores: tuple[float, float]  # served, shadow
    alarms: tuple[bool, bool]  # drift.started raised by served, shadow
    episodes: tuple[str, ...]  # agreement classes of the episodes this post settled
    replay: int = 0  # the shadow's episode ended as a new baseline: posts its LSTM state is rebuilt over
    reset: bool = False  # the user was new to this shadow model: its slot started afresh


class Shadow:
    def __init__(self, temporal: TemporalModel, config: DetectorConfig, served_tag: str) -> None:
        # from 0 while a shadow runs (metrics.from_zero), and absent without one: its panels say so
        metrics.from_zero(metrics.TEMPORAL_ALARMS, ROLES)
        metrics.from_zero(metrics.SHADOW_EPISODES, AGREEMENT)
        if temporal.artifact.tag == served_tag:
            raise ValueError(f"the shadow temporal model {served_tag} is the served one: pick another version")
        self.temporal = temporal
        self.config = config
        self.tag = temporal.artifact.tag
        metrics.SHADOW_INFO.labels(served_tag, self.tag).set(1)

    def advance(self, state: UserState, x: np.ndarray, probabilities: np.ndarray, served_event: str | None,
                gap: float | None = None, face: bool = True) -> Compared:
        """Steps the shadow slot of ``state`` (already advanced by the served model) on the post's features ``x``
        and emotion ``probabilities``, ``gap`` and ``face`` (the share rule's inputs)."""
        slot = state.shadow
        reset = slot is None or slot.get("model") != self.tag
        if slot is None or reset:  # a user new to this shadow: start afresh
            h, c = self.temporal.initial_state()
            slot = {"model": self.tag, "detector": {}, "pair": [False, False]}
        else:
            h, c = unpack(slot["h"]), unpack(slot["c"])
        detector = DriftDetector.from_dict(self.config, slot["detector"])
        step = self.temporal.step(x, h, c)
        shadow_event = detector.update(step.drift_probability, self.temporal.negative_share(probabilities), 1.0, gap, face)

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
                        (served_event == "drift.started", shadow_event == "drift.started"), tuple(settled),
                        detector.replay_posts if detector.restart_model else 0, reset)

    def restart(self, state: UserState, h: np.ndarray, c: np.ndarray) -> None:
        """The shadow's LSTM state rebuilt after its new baseline (as the served one's is: transition.replayed)."""
        assert state.shadow is not None
        state.shadow["h"], state.shadow["c"] = pack(h), pack(c)

    def record(self, compared: Compared) -> None:
        """Counts a post both models stepped (once its write succeeded)."""
        if compared.reset:
            metrics.SHADOW_RESETS.inc()
        for role, score, alarm in zip(ROLES, compared.scores, compared.alarms):
            metrics.TEMPORAL_SCORE.labels(role).observe(score)
            if alarm:
                metrics.TEMPORAL_ALARMS.labels(role).inc()
        for kind in compared.episodes:
            metrics.SHADOW_EPISODES.labels(kind).inc()

    def report(self, served_tag: str) -> dict[str, Any]:
        """The comparison for GET /v1/model, from the metrics: every worker of this process group since
        it started (across replicas: Prometheus, the dashboard)."""
        buckets: dict[str, dict[str, int]] = {role: {} for role in ROLES}
        counts, sums, alarms = dict.fromkeys(ROLES, 0.0), dict.fromkeys(ROLES, 0.0), dict.fromkeys(ROLES, 0.0)
        for name, labels, value in metrics.samples("emodrift_temporal_"):
            role = labels.get("model")
            if role not in ROLES:
                continue
            if name == "emodrift_temporal_score_bucket":
                buckets[role][labels["le"]] = int(value)
            elif name == "emodrift_temporal_score_count":
                counts[role] = value
            elif name == "emodrift_temporal_score_sum":
                sums[role] = value
            elif name == "emodrift_temporal_alarms_total":
                alarms[role] = value
        episodes = dict.fromkeys(AGREEMENT, 0)
        for name, labels, value in metrics.samples("emodrift_shadow_episodes_total"):
            if labels.get("agreement") in episodes:
                episodes[labels["agreement"]] = int(value)
        n = int(counts["served"])

        def model(role: str, tag: str) -> dict[str, Any]:
            return {
                "tag": tag,
                "alarms": int(alarms[role]),
                "alarms_per_1000_posts": round(1000 * alarms[role] / n, 3) if n else None,
                "score": {"mean": round(sums[role] / n, 6) if n else None,
                          # posts whose score is <= each bucket edge (cumulative, as Prometheus's buckets)
                          "at_most": {le: count for le, count in buckets[role].items()}},
            }

        return {
            "scope": "every worker of this process group since it started; across replicas: Prometheus",
            "posts": n,
            "served": model("served", served_tag),
            "shadow": {**model("shadow", self.tag), "engine": self.temporal.engine},
            "episodes": episodes,
        }
