"""One post, end to end: image → face crop → micro-batched CNN → LSTM step → detector → atomic write.

``Pipeline.score_image`` does the per-image work (decode and face crop in a worker thread, CNN in the
micro-batcher); ``Pipeline.apply`` advances the user's state by exactly one step (the pure
``service.transition.advance``), retrying the compare-and-set when another replica advanced the same
user meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, nullcontext
from datetime import datetime
from typing import Any, get_args

import numpy as np

from service import calibration, images, metrics, timeline_svg, transition
from service.alerts import lifecycle
from service.batching import MicroBatcher
from service.config import Settings
from service.drift import Event
from service.errors import ImageTooComplex, OutOfOrder, Overloaded, StateConflict
from service.fair_slots import FairSlots
from service.logs import user_ref
from service import shadow as shadows
from service.state_store import StateStore, UserState
from service.timestamps import iso_datetime, iso_time, unix_seconds
from service.emotions import LABELS
from service.temporal import TemporalModel
from service.transition import Post, Scored, Transition

# exported from 0 (metrics.from_zero): the first drift.started is seen by the alert-spike rule's increase()
metrics.from_zero(metrics.ALERTS, get_args(Event))
metrics.from_zero(metrics.FACES, ("true", "false"))
metrics.from_zero(metrics.POSTS, ("image", "observation"), ("applied", "duplicate", "conflict", "overloaded"))

__all__ = ["Pipeline", "UserLocks"]

log = logging.getLogger("emodrift.pipeline")


class UserLocks:
    """One FIFO lock per user id, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, list[Any]] = {}  # user id -> [asyncio.Lock, holders and waiters]

    def __len__(self) -> int:
        return len(self._locks)

    @asynccontextmanager
    async def hold(self, user_id: str) -> AsyncIterator[None]:
        entry = self._locks.setdefault(user_id, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[user_id]


class Pipeline:
    """What it still owns: the image path up to the CNN's answer (the decode threads, each image's
    decoding budget, the spare threads of images past it, the batcher's permit at the door), the
    per-user locks, and the compare-and-set loop around the pure transition (``service.transition``):
    loading the state, the timeline reads a transition asks for (a replay after a new baseline, an
    alert's evidence), the write, and counting what was written (metrics, live calibration, the shadow
    comparison). How a post changes a user's state and what its alert says live in ``service.transition``.
    """

    def __init__(
        self, settings: Settings, store: StateStore, batcher: MicroBatcher, temporal: TemporalModel,
        face_detector: images.Detector, emotion_tag: str, shadow: TemporalModel | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.batcher = batcher
        self.temporal = temporal
        self.face_detector = face_detector
        self.model_versions = {"emotion_cnn": emotion_tag, "temporal": temporal.artifact.tag}
        # the served model's calibration (its manifest) under the operator's overrides: CalibrationMissing
        # at start-up when the model has none and the operator gave none
        self.detector_config = calibration.served_config(temporal.artifact.manifest, settings)
        self.shadow = None if shadow is None else shadows.Shadow(
            shadow, calibration.served_config(shadow.artifact.manifest, settings), temporal.artifact.tag)
        self.rules = transition.Rules(temporal, self.detector_config, settings.recent_alpha, settings.baseline_alpha,
                                      self.shadow)
        self.event_context = transition.EventContext(temporal, self.model_versions, settings.evidence_posts,
                                                     settings.public_url)
        # the thresholds by user age, learned from the population's traffic (lifespan runs its sync task)
        self.live = calibration.LiveCalibration(
            store.redis, calibration.learned_under(temporal.artifact.tag, self.detector_config), settings)
        images.bound_jpeg_memory(settings.max_image_pixels)  # before any decode thread exists
        # decode_threads images are decoded at once; an image past its budget is answered 422 and
        # finishes on a spare thread (a thread cannot be stopped), so it holds no slot from the others
        self._decoders = ThreadPoolExecutor(settings.decode_threads + settings.max_overrunning_images,
                                            thread_name_prefix="decode")
        self._decode_slots = FairSlots(settings.decode_threads)  # taken by users in turn (fair_slots.py)
        self._overrunning = 0  # images past their budget, still decoding on a spare thread
        self._user_locks = UserLocks()

    def close(self) -> None:
        self._decoders.shutdown(wait=False, cancel_futures=True)

    def decode_share(self) -> asyncio.Semaphore:
        """One request's share of the decoding slots, for a request of many images (a batch): it queues
        at most ``decode_threads`` of them for a slot at a time, so a post arriving meanwhile waits behind
        those few, not behind the whole batch (the slots' queue is first come, first served)."""
        return asyncio.Semaphore(self.settings.decode_threads)

    async def score_image(self, data: bytes, share: asyncio.Semaphore | None = None, user_id: str = "") -> Scored:
        # Backpressure at the door, before any work: the batcher's permit (max_queue images from
        # decode to CNN result; service/batching.py), then the spare threads for overrunning images.
        # ``user_id``: whose turn the image takes for a decoding slot (fair_slots.py)
        try:
            with self.batcher.permit():
                if self._overrunning >= self.settings.max_overrunning_images:
                    raise Overloaded(f"{self._overrunning} images past their decoding budget are still running; "
                                     "retry shortly")
                queued = time.perf_counter()
                async with share or nullcontext():
                    crop = await self._prepare(data, queued, user_id)
                metrics.FACES.labels(str(crop.face_detected).lower()).inc()
                probabilities, _embedding = await self.batcher.submit(crop.pixels, admitted=True)
        except Overloaded:
            metrics.POSTS.labels("image", "overloaded").inc()
            raise
        return Scored(probabilities.astype(np.float32), crop.face_detected, "image")

    async def _prepare(self, data: bytes, queued: float, user_id: str) -> images.FaceCrop:
        """Decode and crop in a worker thread, within the per-image budget (the backstop behind the
        checks that bound the work before decoding: bytes, pixels, JPEG scans, detector windows).
        ``queued``: when the image began to wait for its slot (perf_counter), in its user's turn."""
        cfg = self.settings
        async with self._decode_slots.hold(user_id):
            started = time.perf_counter()
            metrics.DECODE_WAIT.observe(started - queued)
            # Checked again with the slot in hand, not only at the door: while images past their budget
            # fill every spare thread, a job submitted now would wait in the executor's queue, time out
            # there without starting (an innocent image answered 422 "too complex"), and still run in
            # full later: 12 posts of a hostile image then held every image post for a minute.
            if self._overrunning >= cfg.max_overrunning_images:
                raise Overloaded(f"{self._overrunning} images past their decoding budget are still running; "
                                 "retry shortly")
            work = self._decoders.submit(
                images.prepare, data, max_bytes=cfg.max_image_bytes, max_pixels=cfg.max_image_pixels,
                detector=self.face_detector, max_jpeg_scans=cfg.max_jpeg_scans,
                max_jpeg_scan_pixels=cfg.max_jpeg_scan_pixels, max_image_chunks=cfg.max_image_chunks)
            job = asyncio.wrap_future(work)
            try:
                crop = await asyncio.wait_for(asyncio.shield(job), cfg.image_budget_seconds)
                metrics.PREPROCESS_LATENCY.observe(time.perf_counter() - started)
                return crop
            except asyncio.TimeoutError:
                if work.cancel():  # never started (the check above keeps a thread free): not its fault
                    raise Overloaded("no decoding thread was free in time; retry shortly") from None
                self._overrunning += 1
                job.add_done_callback(self._overrun_done)
                metrics.IMAGES_OVER_BUDGET.inc()
                raise ImageTooComplex(f"the image took more than {cfg.image_budget_seconds} s to decode") from None

    def _overrun_done(self, job: "asyncio.Future[images.FaceCrop]") -> None:
        self._overrunning -= 1
        if not job.cancelled():
            job.exception()  # retrieved: the answer was given already

    async def picture(self, user_id: str, posts: list[dict[str, Any]], highlight: str | None = None) -> str:
        """The user's timeline picture (API and /ui alike): the posts, with the fast rule's bar as this
        replica serves it (its calibration, its live scales, the user's baseline from their state)."""
        state = await self.store.load(user_id)
        since = int(state.detector.get("baseline_since", 0)) if state is not None else 0
        bars = transition.alarm_bars(posts, self.detector_config, self.live.scale, since)
        return timeline_svg.render(user_id, posts, bars, highlight)

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
        async with self._user_locks.hold(user_id):
            return await self._apply(user_id, post_id, created_at, scored, backfill)

    async def _apply(self, user_id: str, post_id: str, created_at: datetime | None, scored: Scored,
                     backfill: bool) -> dict[str, Any]:
        received = time.time()
        post = (Post(user_id, post_id, received, scored) if created_at is None
                else Post(user_id, post_id, unix_seconds(created_at), scored, iso_datetime(created_at)))
        started = time.perf_counter()
        current = await self.store.load(user_id, cached=True)
        for _ in range(self.settings.cas_retries):
            previous = current or self.rules.new_state()
            if backfill and previous.last_ts is not None and post.ts < previous.last_ts:
                outcome = await self.store.probe(user_id, post_id, previous.version, received)
                if outcome.outcome == "unseen":  # history after what is stored would run the user's change backwards
                    raise OutOfOrder.at(("created_at",), (
                        f"post {post_id} was created at {iso_time(post.ts)}, before user {user_id}'s last post "
                        f"({iso_time(previous.last_ts)}): a backfill is applied after what is stored, so send each "
                        "user's history oldest first across batches too (older batches first), or erase the user "
                        "and replay it in order"))
            else:
                step = await self._transition(previous, post)
                event = await self._alert(step, post, received, backfill)
                outcome = await self.store.advance(user_id, post_id, previous.version, step.state, step.result, event,
                                                   received)
            if outcome.outcome == "duplicate":
                assert outcome.prior_result is not None
                metrics.POSTS.labels(scored.source, "duplicate").inc()
                return {**outcome.prior_result, "duplicate": True}
            if outcome.outcome == "conflict":
                metrics.STATE_CONFLICTS.inc()
                current = outcome.current  # the state that won, returned by the refusing script
                continue
            self._written(step, post, event, backfill, started)
            return step.result
        metrics.POSTS.labels(scored.source, "conflict").inc()
        raise StateConflict(f"user {user_id} is being updated too often concurrently; retry the post")

    async def _transition(self, previous: UserState, post: Post) -> Transition:
        """The pure step, then the LSTM states it asks to rebuild after a new baseline (rare: a timeline read)."""
        step = transition.advance(previous, post, self.rules, self.live.scale)
        if step.replay > 1:
            earlier = await self.store.timeline(post.user_id, step.replay - 1)
            step.state.h, step.state.c = transition.replayed(self.temporal, earlier, post)
        compared = step.compared
        if self.shadow is not None and compared is not None and compared.replay > 1:  # the shadow's own new baseline
            earlier = await self.store.timeline(post.user_id, compared.replay - 1)
            self.shadow.restart(step.state, *transition.replayed(self.shadow.temporal, earlier, post))
        return step

    async def _alert(self, step: Transition, post: Post, received: float, backfill: bool) -> dict[str, Any] | None:
        """The alert the step raised, if any, attached to its result (rare: the evidence is one more read)."""
        if step.event_type is None:
            return None
        earlier = await self.store.timeline(post.user_id, self.settings.evidence_posts)
        event = transition.drift_event(step, earlier, self.event_context, event_id=f"evt_{uuid.uuid4().hex}",
                                       emitted_at=time.time())
        if step.event_type == "drift.ended":  # the start it closes, its user's latest alert: receivers pair them
            started = await self.store.last_alert(post.user_id)
            event["started_id"] = started["id"] if started and started["type"] == "drift.started" else None
        alert = lifecycle.opened(event, created_at=received, backfill=backfill)
        step.result["alert"] = alert
        return alert

    def _written(self, step: Transition, post: Post, event: dict[str, Any] | None, backfill: bool,
                 started: float) -> None:
        """Counts a step once it is written (never for an attempt that lost the compare-and-set)."""
        if step.judged is not None:
            alarmed = step.event_type == "drift.started"
            self.live.record(*step.judged, alarmed, event["id"] if alarmed and event is not None else None)
        if step.model_reset:
            metrics.STATE_RESETS.inc()
        if step.promoted:
            metrics.STATE_PROMOTIONS.inc()
        metrics.STATE_LATENCY.observe(time.perf_counter() - started)
        metrics.POSTS.labels(post.scored.source, "applied").inc()
        metrics.DRIFT_SCORE.observe(step.result["drift"]["score"])
        if self.shadow is not None and step.compared is not None:
            self.shadow.record(step.compared)
        if event is not None:
            if not backfill:  # a backfilled alert never reaches the outbox
                metrics.ALERTS.labels(event["type"]).inc()
            log.info("drift event", extra={"event_type": event["type"], "event_id": event["id"],
                                           "user": user_ref(post.user_id), "score": event["score"],
                                           "backfill": backfill})
