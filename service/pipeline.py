"""One post, end to end: image → face crop → micro-batched CNN → LSTM step → detector → atomic write.

``Pipeline.score_image`` does the per-image work (decode and face crop in a worker thread, CNN in the
micro-batcher); ``Pipeline.apply`` advances the user's state by exactly one step, retrying the
compare-and-set when another request advanced the same user meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from service import calibration, images, metrics
from service.alerts import lifecycle
from service.batching import MicroBatcher
from service.config import Settings
from service.drift import DriftDetector
from service.evidence import explain
from service.errors import ImageTooComplex, Overloaded, StateConflict
from service.logs import user_ref
from service import shadow as shadows
from service.state_store import StateStore, UserState
from service.emotions import LABELS
from service.temporal import TemporalModel
from service.timestamps import iso_time

log = logging.getLogger("emodrift.pipeline")


@dataclass(frozen=True)
class Scored:
    """What the CNN (or the platform's own model) says about one post."""

    probabilities: np.ndarray  # (7,) float32, FER-2013 order
    face_detected: bool
    source: str  # "image" | "observation"


@dataclass
class Stepped:
    """What one post did to a user's state (``Pipeline._step``)."""

    result: dict[str, Any]      # the post's answer
    event_type: str | None      # the event it raised, if any
    replay: int                 # after a new baseline, the posts (this one included) the LSTM is rebuilt over; else 0
    compared: shadows.Compared | None  # with a shadow model: how the two models saw the post
    judged: tuple[int, tuple[float, float] | None] | None  # what live calibration counts (None while warming up)


def state_resolution(event_type: str, detector: dict[str, Any]) -> str | None:
    return str(detector.get("resolution") or "recovered") if event_type == "drift.ended" else None


def as_distribution(values: np.ndarray | list[float]) -> dict[str, float]:
    return {label: round(float(p), 6) for label, p in zip(LABELS, values)}


class Pipeline:
    def __init__(
        self, settings: Settings, store: StateStore, batcher: MicroBatcher, temporal: TemporalModel,
        face_detector: images.FaceDetector, emotion_tag: str, shadow: TemporalModel | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.batcher = batcher
        self.temporal = temporal
        self.face_detector = face_detector
        self.model_versions = {"emotion_cnn": emotion_tag, "temporal": temporal.artifact.tag}
        # the served model's calibration (its manifest) under the operator's overrides: CalibrationMissing
        # at start-up when the model has none and the operator gave none
        self.detector_config = calibration.detector_config(
            temporal.artifact.manifest, calibration.overrides(settings), temporal.score_profile)
        self.shadow = None if shadow is None else shadows.Shadow(shadow, calibration.detector_config(
            shadow.artifact.manifest, calibration.overrides(settings), shadow.score_profile), temporal.artifact.tag)
        # the thresholds by user age, learned from the population's traffic (lifespan runs its sync task)
        self.live = calibration.LiveCalibration(store.redis, temporal.artifact.tag, settings)
        # decode_threads images are decoded at once; an image past its budget is answered 422 and
        # finishes on a spare thread (a thread cannot be stopped), so it holds no slot from the others
        self._decoders = ThreadPoolExecutor(settings.decode_threads + settings.max_overrunning_images,
                                            thread_name_prefix="decode")
        self._decode_slots = asyncio.Semaphore(settings.decode_threads)
        self._overrunning = 0  # images past their budget, still decoding on a spare thread
        self._user_locks: dict[str, list[Any]] = {}  # user id -> [asyncio.Lock, waiters]

    def close(self) -> None:
        self._decoders.shutdown(wait=False, cancel_futures=True)

    async def score_image(self, data: bytes) -> Scored:
        # Backpressure at the door, before any work: the batcher's permit (max_queue images from
        # decode to CNN result; service/batching.py), then the spare threads for overrunning images.
        try:
            with self.batcher.permit():
                if self._overrunning >= self.settings.max_overrunning_images:
                    raise Overloaded(f"{self._overrunning} images past their decoding budget are still running; "
                                     "retry shortly")
                started = time.perf_counter()
                crop = await self._prepare(data)
                metrics.PREPROCESS_LATENCY.observe(time.perf_counter() - started)
                metrics.FACES.labels(str(crop.face_detected).lower()).inc()
                probabilities, _embedding = await self.batcher.submit(crop.pixels, admitted=True)
        except Overloaded:
            metrics.POSTS.labels("image", "overloaded").inc()
            raise
        return Scored(probabilities.astype(np.float32), crop.face_detected, "image")

    async def _prepare(self, data: bytes) -> images.FaceCrop:
        """Decode and crop in a worker thread, within the per-image budget (the backstop behind the
        checks that bound the work before decoding: bytes, pixels, JPEG scans, detector windows)."""
        cfg = self.settings
        async with self._decode_slots:
            job = asyncio.get_running_loop().run_in_executor(self._decoders, lambda: images.prepare(
                data, max_bytes=cfg.max_image_bytes, max_pixels=cfg.max_image_pixels, detector=self.face_detector,
                max_jpeg_scans=cfg.max_jpeg_scans, max_image_chunks=cfg.max_image_chunks))
            try:
                return await asyncio.wait_for(asyncio.shield(job), cfg.image_budget_seconds)
            except asyncio.TimeoutError:
                self._overrunning += 1
                job.add_done_callback(self._overrun_done)
                metrics.IMAGES_OVER_BUDGET.inc()
                raise ImageTooComplex(f"the image took more than {cfg.image_budget_seconds} s to decode") from None

    def _overrun_done(self, job: "asyncio.Future[images.FaceCrop]") -> None:
        self._overrunning -= 1
        if not job.cancelled():
            job.exception()  # retrieved: the answer was given already

    @staticmethod
    def observed(probabilities: dict[str, float], face_detected: bool = True) -> Scored:
        vector = np.array([probabilities[label] for label in LABELS], dtype=np.float32)
        return Scored(vector, face_detected, "observation")

    async def apply(self, user_id: str, post_id: str, created_at: datetime | None, scored: Scored,
                    backfill: bool = False) -> dict[str, Any]:
        """Advance ``user_id`` by one step for this post; a repeated post id returns its first result.
        ``backfill``: an alert it raises is recorded (marked so) but sent to no webhook.

        Posts of one user are serialized inside this process (a FIFO lock per user), so the
        compare-and-set only ever races other replicas: without it, a burst of concurrent posts
        for one user made every request recompute against each other and some ran out of retries.
        """
        entry = self._user_locks.setdefault(user_id, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                return await self._apply(user_id, post_id, created_at, scored, backfill)
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._user_locks[user_id]

    async def _apply(self, user_id: str, post_id: str, created_at: datetime | None, scored: Scored,
                     backfill: bool) -> dict[str, Any]:
        received = time.time()
        ts = created_at.timestamp() if created_at is not None else received
        started = time.perf_counter()
        current = await self.store.load(user_id, cached=True)
        for _ in range(self.settings.cas_retries):
            state = current or self._new_state()
            expected = state.version
            step = self._step(user_id, post_id, ts, scored, state)
            result, event_type = step.result, step.event_type
            if step.replay > 1:  # rare: a new baseline; the LSTM is rebuilt over the posts since the alarm
                earlier = await self.store.timeline(user_id, step.replay - 1)
                state.h, state.c = self._replayed(earlier, scored, ts)
            compared = step.compared
            if compared is not None and compared.replay > 1:  # the same, for the shadow's own new baseline
                earlier = await self.store.timeline(user_id, compared.replay - 1)
                self.shadow.restart(state, *self._replayed(earlier, scored, ts, self.shadow.temporal))  # type: ignore[union-attr]
            event = None
            if event_type is not None:  # rare: the evidence comes from the timeline, one more read
                event = lifecycle.opened(
                    self._event(user_id, post_id, ts, event_type, state, result,
                                await self.store.timeline(user_id, self.settings.evidence_posts)),
                    created_at=received, backfill=backfill)
                result["alert"] = event
            outcome = await self.store.advance(user_id, post_id, expected, state, result, event, received)
            if outcome.outcome == "duplicate":
                assert outcome.prior_result is not None
                metrics.POSTS.labels(scored.source, "duplicate").inc()
                return {**outcome.prior_result, "duplicate": True}
            if outcome.outcome == "conflict":
                metrics.STATE_CONFLICTS.inc()
                current = outcome.current  # the state that won, returned by the refusing script
                continue
            if step.judged is not None:  # counted once, for the step that was written
                self.live.record(*step.judged, event_type == "drift.started")
            metrics.STATE_LATENCY.observe(time.perf_counter() - started)
            metrics.POSTS.labels(scored.source, "applied").inc()
            metrics.DRIFT_SCORE.observe(result["drift"]["score"])
            if compared is not None:
                self.shadow.record(compared)  # type: ignore[union-attr]
            if event is not None:
                if not backfill:  # a backfilled alert never reaches the outbox
                    metrics.ALERTS.labels(event["type"]).inc()
                log.info("drift event", extra={"event_type": event["type"], "event_id": event["id"],
                                               "user": user_ref(user_id), "score": event["score"],
                                               "backfill": backfill})
            return result
        metrics.POSTS.labels(scored.source, "conflict").inc()
        raise StateConflict(f"user {user_id} is being updated too often concurrently; retry the post")

    def _new_state(self) -> UserState:
        h, c = self.temporal.initial_state()
        return UserState(version=0, h=h, c=c, model=self.temporal.artifact.tag)

    def _step(
        self, user_id: str, post_id: str, ts: float, scored: Scored, state: UserState
    ) -> Stepped:
        """Mutates ``state`` into the next one; returns what the post did (see ``Stepped``)."""
        cfg = self.settings
        shadows.promote(state, self.temporal.artifact.tag)  # the shadow's state, when it became the served model
        detector = DriftDetector.from_dict(self.detector_config, state.detector)
        if state.model != self.temporal.artifact.tag:
            # A hidden state from another temporal model means nothing to this one: start it afresh
            # (the emotion distributions are model-independent and are kept).
            state.h, state.c = self.temporal.initial_state()
            state.model = self.temporal.artifact.tag
            state.model_resets += 1
            detector = DriftDetector(self.detector_config)
            metrics.STATE_RESETS.inc()
        # Out-of-order posts (older than the last one) are applied in arrival order with a zero gap.
        gap = ts - state.last_ts if state.last_ts is not None else 0.0
        probs = scored.probabilities
        x = self.temporal.features(probs, gap, scored.face_detected)
        step = self.temporal.step(x, state.h, state.c)
        age, warming = detector.age, detector.status == "warming_up"
        event_type = detector.update(step.drift_probability, self.temporal.negative_share(probs), self.live.scale(age),
                                     max(gap, 0.0), scored.face_detected)
        judged = None if warming else (age, detector.crossed)

        if not state.baseline:
            state.baseline, state.recent = probs.tolist(), probs.tolist()
        else:
            recent = (1 - cfg.recent_alpha) * np.asarray(state.recent) + cfg.recent_alpha * probs
            state.recent = recent.tolist()
            if not detector.drift_detected:  # freeze "normal" while drifting so "before" stays before
                baseline = (1 - cfg.baseline_alpha) * np.asarray(state.baseline) + cfg.baseline_alpha * probs
                state.baseline = baseline.tolist()
        state.h, state.c = step.h, step.c
        if detector.restart_model:
            # The episode ended as a new baseline: the LSTM's memory holds the old pattern (its score would
            # stay high for good), so it restarts as for a new user (then _apply replays the posts since the
            # alarm). The baseline mix, frozen during the episode, resumes learning (baseline_alpha).
            state.h, state.c = self.temporal.initial_state()
        state.posts_seen += 1
        state.last_ts = ts if state.last_ts is None else max(state.last_ts, ts)
        state.score = step.drift_probability
        state.detector = detector.to_dict()
        result = {
            "user_id": user_id,
            "post_id": post_id,
            "created_at": iso_time(ts),
            "duplicate": False,
            "emotion": {
                "label": LABELS[int(np.argmax(probs))],
                "probabilities": as_distribution(probs),
                "face_detected": scored.face_detected,
            },
            "drift": {"score": round(step.drift_probability, 6), "status": detector.status, "posts_seen": state.posts_seen},
            "alert": None,
        }
        compared = None if self.shadow is None else self.shadow.advance(state, x, probs, event_type,
                                                                          max(gap, 0.0), scored.face_detected)
        return Stepped(result, event_type, detector.replay_posts if detector.restart_model else 0, compared, judged)

    def _replayed(self, earlier: list[dict[str, Any]], scored: Scored, ts: float,
                  model: TemporalModel | None = None) -> tuple[np.ndarray, np.ndarray]:
        """A new user's LSTM state of ``model`` (default: the served one) advanced over ``earlier``
        timeline posts (oldest first) and this one: the new baseline is all it has seen (the timeline
        keeps the last EMODRIFT_TIMELINE_LENGTH)."""
        model = model or self.temporal
        h, c = model.initial_state()
        last: float | None = None
        posts = [(np.array([p["emotion"]["probabilities"][label] for label in LABELS], dtype=np.float32),
                  bool(p["emotion"]["face_detected"]), datetime.fromisoformat(p["created_at"]).timestamp())
                 for p in earlier]
        for probs, face, at in posts + [(scored.probabilities, scored.face_detected, ts)]:
            gap = max(at - last, 0.0) if last is not None else 0.0
            step = model.step(model.features(probs, gap, face), h, c)
            h, c, last = step.h, step.c, at if last is None else max(last, at)
        return h, c

    def _event(self, user_id: str, post_id: str, ts: float, event_type: str, state: UserState,
               result: dict[str, Any], earlier: list[dict[str, Any]]) -> dict[str, Any]:
        """The alert with its evidence (DESIGN.md §3): this post and the ones before it in the timeline."""
        before, after = np.asarray(state.baseline), np.asarray(state.recent)
        posts = (earlier + [result])[-self.settings.evidence_posts:]
        scores = [p["drift"]["score"] for p in earlier + [result]]
        deltas = [round(b - a, 4) for a, b in zip([0.0] + scores, scores)][-len(posts):]
        post_ids = [p["post_id"] for p in posts]
        labels = "".join(str(LABELS.index(p["emotion"]["label"])) for p in posts)
        event_id, public = f"evt_{uuid.uuid4().hex}", self.settings.public_url.rstrip('/')
        return {
            "id": event_id,
            "type": event_type,
            "user_id": user_id,
            "at": iso_time(ts),
            "emitted_at": iso_time(time.time()),
            "score": round(state.score, 6),
            "posts_seen": state.posts_seen,
            "before": {"distribution": as_distribution(before), "dominant": LABELS[int(np.argmax(before))],
                       "valence": round(self.temporal.valence_of(before), 4)},
            "after": {"distribution": as_distribution(after), "dominant": LABELS[int(np.argmax(after))],
                      "valence": round(self.temporal.valence_of(after), 4)},
            "valence_change": round(self.temporal.valence_of(after) - self.temporal.valence_of(before), 4),
            # how the episode ended (drift.ended only): "recovered" or "new_baseline" (service/drift.py)
            "resolution": state_resolution(event_type, state.detector),
            "evidence_post_ids": post_ids,
            "evidence": explain(event_type, before.tolist(), after.tolist(), post_ids, deltas, labels, state.posts_seen),
            "model_versions": dict(self.model_versions),
            "timeline_url": f"{public}/v1/users/{user_id}/timeline.svg",
            "ui_url": f"{public}/ui/alerts/{event_id}",
        }
