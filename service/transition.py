"""One post's effect on one user's state, as pure functions: no Redis, no I/O, no clock, no metrics.

``advance(previous, post, rules)`` steps the temporal model and the drift detector once and returns the
next ``UserState`` (``previous`` is left as it was), the post's result and the event it raised, if any.
``drift_event`` turns that event into the alert with its evidence, given the timeline posts before it.
``replayed`` rebuilds a new user's LSTM state over timeline posts (after a new baseline).

``service.pipeline.Pipeline`` does the reading and writing around them: it loads the state, calls
``advance``, reads the timeline when a transition asks for it (a replay, an alert's evidence), writes
the result with a compare-and-set, and counts what was written.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from service import shadow as shadows
from service.drift import DetectorConfig, DriftDetector, RaisedBy, fast_bar
from service.emotions import LABELS
from service.evidence import explain
from service.state_store import UserState
from service.temporal import TemporalModel
from service.timestamps import iso_time


@dataclass(frozen=True)
class Scored:
    """What the CNN (or the platform's own model) says about one post."""

    probabilities: np.ndarray  # (7,) float32, FER-2013 order
    face_detected: bool
    source: str  # "image" | "observation"


@dataclass(frozen=True)
class Post:
    """One post of one user, as the transition sees it."""

    user_id: str
    post_id: str
    ts: float  # unix seconds: its created_at, else when it was received
    scored: Scored
    at: str | None = None  # its created_at as the API writes it, when given (exact; ts is not past 2242)


@dataclass(frozen=True)
class Rules:
    """What the transition steps a state with: the served temporal model and its detector calibration,
    the emotion averages' weights, and the shadow model when one runs."""

    temporal: TemporalModel
    detector: DetectorConfig
    recent_alpha: float
    baseline_alpha: float
    shadow: shadows.Shadow | None = None

    def new_state(self) -> UserState:
        h, c = self.temporal.initial_state()
        return UserState(version=0, h=h, c=c, model=self.temporal.artifact.tag)


@dataclass
class Transition:
    """What one post did to a user's state."""

    state: UserState            # the next state (its version is still the one it was computed from)
    result: dict[str, Any]      # the post's answer ("alert" is None until the caller attaches one)
    event_type: str | None      # the event it raised, if any
    replay: int                 # after a new baseline, the posts (this one included) the LSTM is rebuilt over; else 0
    compared: shadows.Compared | None  # with a shadow model: how the two models saw the post
    judged: tuple[int, tuple[float, float] | None] | None  # what live calibration counts (None while warming up)
    model_reset: bool           # the state was another temporal model's: its LSTM memory started afresh
    promoted: bool              # the shadow slot held the served model's state and became the served state
    raised_by: tuple[RaisedBy, ...] = ()  # drift.started: the detector's rules that fired on the post
    # the event reports a promotion's change of status, not a rule's (``handover``): drift.started
    # raised_by ["promotion"], drift.ended resolution "model_changed", ended_by "promotion"
    handover: bool = False


def no_scaling(age: int) -> float:
    """The detector's thresholds as calibrated (live calibration off)."""
    return 1.0


def advance(previous: UserState, post: Post, rules: Rules, scale: Callable[[int], float] = no_scaling) -> Transition:
    """The state after ``post``: one temporal step, one detector update, the emotion averages moved.
    ``scale(age)`` multiplies the detector's thresholds for a user of that age (live calibration)."""
    state = copy.copy(previous)  # every field below is reassigned, never changed in place
    was_drifting = previous.detector.get("status") == "drifting"  # as receivers know the user
    promoted = shadows.promote(state, rules.temporal.artifact.tag)
    detector, model_reset = _detector_for(state, rules)
    probs = post.scored.probabilities
    # Out-of-order posts (older than the last one) are applied in arrival order with a zero gap.
    gap = post.ts - state.last_ts if state.last_ts is not None else 0.0
    x = rules.temporal.features(probs, gap, post.scored.face_detected)
    step = rules.temporal.step(x, state.h, state.c)
    age, warming = detector.age, detector.status == "warming_up"
    since = max(gap, 0.0)  # what the detectors weigh the post by
    event_type = detector.update(step.drift_probability, rules.temporal.negative_share(probs), scale(age),
                                 since, post.scored.face_detected)
    judged = None if warming else (age, detector.crossed)
    _mix_emotions(state, probs, rules, drifting=detector.drift_detected)
    state.h, state.c = step.h, step.c
    if detector.restart_model:
        # The episode ended as a new baseline: the LSTM's memory holds the old pattern (its score would
        # stay high for good), so it restarts as for a new user (then the caller replays the posts since
        # the alarm: ``replayed``). The baseline mix, frozen during the episode, resumes learning.
        state.h, state.c = rules.temporal.initial_state()
    state.posts_seen += 1
    state.last_ts = post.ts if state.last_ts is None else max(state.last_ts, post.ts)
    state.score = step.drift_probability
    state.detector = detector.to_dict()
    result = post_result(post, state, detector.status)
    compared = None if rules.shadow is None else rules.shadow.advance(state, x, probs, event_type, since,
                                                                      post.scored.face_detected)
    replay = detector.replay_posts if detector.restart_model else 0
    # another model now judges the user, with its own detector: a promoted shadow's, or a fresh one (a
    # version switched to without a shadow, or a user who did not post while it ran: warming up, so an
    # open episode ends; it was left open for good, the user counted drifting)
    reported, handover = (handover_event(was_drifting, detector.drift_detected, event_type)
                          if promoted or model_reset else (event_type, False))
    return Transition(state, result, reported, replay, compared, judged, model_reset, promoted,
                      ("promotion",) if handover and reported == "drift.started" else detector.raised_by, handover)


def handover_event(was_drifting: bool, drifting: bool, event_type: str | None) -> tuple[str | None, bool]:
    """The event of a promotion's first post, and whether it reports the handover rather than a rule.

    The promoted model's detector brings its own status: a user drifting under the old model may be
    stable under the new one, or the reverse. Receivers hold the old model's episodes, so the event
    follows the status they knew: an open episode ends (``model_changed``), or one starts; the promoted
    detector's own events on this post are reported only where they agree with that (an episode of its
    that receivers never saw starting does not end, one it starts while theirs is open is the same one).

    >>> handover_event(True, False, None), handover_event(False, True, None), handover_event(True, True, None)
    (('drift.ended', True), ('drift.started', True), (None, False))
    >>> handover_event(False, True, "drift.started"), handover_event(False, False, "drift.ended")
    (('drift.started', False), (None, False))
    """
    if was_drifting == drifting:
        return None, False
    reported = "drift.started" if drifting else "drift.ended"
    return reported, reported != event_type


def _detector_for(state: UserState, rules: Rules) -> tuple[DriftDetector, bool]:
    """The user's detector, and whether the state was written by another temporal model (then reset)."""
    if state.model == rules.temporal.artifact.tag:
        return DriftDetector.from_dict(rules.detector, state.detector), False
    # A hidden state from another temporal model means nothing to this one: start it afresh (the
    # emotion distributions are model-independent and are kept).
    state.h, state.c = rules.temporal.initial_state()
    state.model = rules.temporal.artifact.tag
    state.model_resets += 1
    return DriftDetector(rules.detector), True


def _mix_emotions(state: UserState, probs: np.ndarray, rules: Rules, *, drifting: bool) -> None:
    """The recent and baseline emotion averages after this post."""
    if not state.baseline:
        state.baseline, state.recent = probs.tolist(), probs.tolist()
        return
    recent = (1 - rules.recent_alpha) * np.asarray(state.recent) + rules.recent_alpha * probs
    state.recent = recent.tolist()
    if not drifting:  # freeze "normal" while drifting so "before" stays before
        baseline = (1 - rules.baseline_alpha) * np.asarray(state.baseline) + rules.baseline_alpha * probs
        state.baseline = baseline.tolist()


def post_result(post: Post, state: UserState, status: str) -> dict[str, Any]:
    """The post's answer, from the state it produced."""
    probs = post.scored.probabilities
    return {
        "user_id": post.user_id,
        "post_id": post.post_id,
        "created_at": post.at or iso_time(post.ts),
        "duplicate": False,
        "emotion": {
            "label": LABELS[int(np.argmax(probs))],
            "probabilities": as_distribution(probs),
            "face_detected": post.scored.face_detected,
            "source": post.scored.source,
        },
        "drift": {"score": round(state.score, 6), "status": status, "posts_seen": state.posts_seen},
        "alert": None,
    }


def as_distribution(values: np.ndarray | list[float]) -> dict[str, float]:
    return {label: round(float(p), 6) for label, p in zip(LABELS, values)}


def replayed(model: TemporalModel, earlier: list[dict[str, Any]], post: Post) -> tuple[np.ndarray, np.ndarray]:
    """A new user's LSTM state of ``model`` advanced over ``earlier`` timeline posts (oldest first) and
    ``post``: after a new baseline, that is all it has seen (the timeline keeps the last
    EMODRIFT_TIMELINE_LENGTH)."""
    h, c = model.initial_state()
    last: float | None = None
    posts = [(np.array([p["emotion"]["probabilities"][label] for label in LABELS], dtype=np.float32),
              bool(p["emotion"]["face_detected"]), datetime.fromisoformat(p["created_at"]).timestamp())
             for p in earlier]
    for probs, face, at in posts + [(post.scored.probabilities, post.scored.face_detected, post.ts)]:
        gap = max(at - last, 0.0) if last is not None else 0.0
        step = model.step(model.features(probs, gap, face), h, c)
        h, c, last = step.h, step.c, at if last is None else max(last, at)
    return h, c


@dataclass(frozen=True)
class EventContext:
    """What an alert carries besides the user's state: the models that served it, how many posts of
    evidence, where its links point."""

    temporal: TemporalModel
    model_versions: dict[str, str]
    evidence_posts: int
    public_url: str


def state_resolution(event_type: str, detector: dict[str, Any]) -> str | None:
    return str(detector.get("resolution") or "recovered") if event_type == "drift.ended" else None


def state_ended_by(event_type: str, detector: dict[str, Any]) -> str | None:
    """Which rule ended the episode (drift.ended only). A state written before the rule was recorded ended
    by the only rule each resolution then had."""
    if event_type != "drift.ended":
        return None
    fallback = "rebaseline" if detector.get("resolution") == "new_baseline" else "recovery"
    return str(detector.get("ended_by") or fallback)


def drift_event(step: Transition, earlier: list[dict[str, Any]], context: EventContext, *,
                event_id: str, emitted_at: float) -> dict[str, Any]:
    """The alert of ``step``'s event with its evidence (DESIGN.md §3): this post and the ones before it
    in the timeline (``earlier``, oldest first)."""
    assert step.event_type is not None
    state, result, event_type = step.state, step.result, step.event_type
    before, after = np.asarray(state.baseline), np.asarray(state.recent)
    posts = (earlier + [result])[-context.evidence_posts:]
    scores = [p["drift"]["score"] for p in earlier + [result]]
    deltas = [round(b - a, 4) for a, b in zip([0.0] + scores, scores)][-len(posts):]
    post_ids = [p["post_id"] for p in posts]
    labels = "".join(str(LABELS.index(p["emotion"]["label"])) for p in posts)
    faces = [bool(p["emotion"].get("face_detected", True)) for p in posts]
    # an observation's face_detected is the platform's word (True unless it said otherwise), not our
    # face detector's finding: the page says which (an outside review read "yes" as found)
    sources = [p["emotion"].get("source") for p in posts]
    public, valence = context.public_url.rstrip("/"), context.temporal.valence_of
    # how the episode ended (drift.ended only): "recovered" or "new_baseline" (service/drift.py), or
    # "model_changed" by "promotion" when a promoted model does not see it (handover_event)
    handed_over = step.handover and event_type == "drift.ended"
    resolution = "model_changed" if handed_over else state_resolution(event_type, state.detector)
    return {
        "id": event_id,
        "type": event_type,
        "user_id": result["user_id"],
        "at": result["created_at"],
        "emitted_at": iso_time(emitted_at),
        "score": round(state.score, 6),
        "posts_seen": state.posts_seen,
        "before": _regime(before, valence),
        "after": _regime(after, valence),
        "valence_change": round(valence(after) - valence(before), 4),
        "resolution": resolution,
        "ended_by": "promotion" if handed_over else state_ended_by(event_type, state.detector),
        "raised_by": list(step.raised_by) if event_type == "drift.started" else None,
        "started_id": None,  # a drift.ended's start: the pipeline reads it (its user's latest alert)
        "evidence_post_ids": post_ids,
        "evidence": explain(event_type, before.tolist(), after.tolist(), post_ids, deltas, labels, state.posts_seen,
                            faces, (context.temporal.negative_share(before), context.temporal.negative_share(after)),
                            returned=resolution == "recovered", sources=sources),
        "model_versions": dict(context.model_versions),
        "timeline_url": f"{public}/v1/users/{result['user_id']}/timeline.svg",
        "ui_url": f"{public}/ui/alerts/{event_id}",
    }


def alarm_bars(posts: list[dict[str, Any]], config: DetectorConfig,
               scale: Callable[[int], float] = no_scaling, baseline_since: int = 0) -> list[float]:
    """For the timeline picture, per post (oldest first): the score the fast rule needed there, at that
    post's age since the baseline and today's live scale for that age. A line at ``threshold`` showed
    posts above it with no alert: the profile and the live calibration raise the bar for most users.
    The age: after the last new baseline the posts show, or throughout when they show none, from the
    user's state (``baseline_since``: its alarm may have left the timeline); before it, from the alarm
    the posts show. The bar is the served model's: posts scored before a promotion had another's.

    >>> cfg = DetectorConfig(threshold=0.9)
    >>> [round(b, 3) for b in alarm_bars([{"drift": {"posts_seen": 1}}, {"drift": {"posts_seen": 2}}], cfg,
    ...                                  lambda age: 1.0 + age)]
    [0.9, 0.952]
    >>> [round(alarm_bars([{"drift": {"posts_seen": 101}}], cfg, lambda a: 1.0 + a / 10, since)[0], 4)
    ...  for since in (0, 90)]  # a new baseline at post 90, its alarm out of sight: age 10, not 100
    [0.9989, 0.9519]
    """
    ends = [i for i, post in enumerate(posts) if (post.get("alert") or {}).get("type") == "drift.ended"
            and (post.get("alert") or {}).get("resolution") == "new_baseline"]
    last = ends[-1] if ends else -1
    bars, since, started = [], 0, 0
    for i, post in enumerate(posts):
        if i > last:  # the state's baseline, whatever the posts show of the alarm that began it
            since = baseline_since
        seen = int(post.get("drift", {}).get("posts_seen", 1))
        age = max(0, seen - 1 - since)
        bars.append(fast_bar(config, age, scale(age)))
        alert = post.get("alert") or {}
        if alert.get("type") == "drift.started":
            started = seen
        elif alert.get("type") == "drift.ended" and alert.get("resolution") == "new_baseline":
            since = started
    return bars


def _regime(distribution: np.ndarray, valence: Callable[[np.ndarray], float]) -> dict[str, Any]:
    return {"distribution": as_distribution(distribution), "dominant": LABELS[int(np.argmax(distribution))],
            "valence": round(valence(distribution), 4)}
