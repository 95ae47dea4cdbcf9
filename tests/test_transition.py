"""The state transition (service/transition.py) on its own: no Redis, no app, the real served temporal
model and its manifest's detector calibration.

The stream is one user, noisy happy then noisy sad from post 40, five hours apart; with the served model
it raises drift.started during the sad posts and, after ``rebaseline_posts``, ends the episode as a new
baseline. Every figure asserted is recomputed here from the model and the detector directly.
"""

from __future__ import annotations

import copy
import dataclasses
from functools import cache

import numpy as np
import pytest

from service import calibration, model_repository
from service.config import Settings
from service.drift import DriftDetector
from service.inference import ProviderChoice
from service.state_store import UserState
from service.temporal import TemporalModel
from service.transition import EventContext, Post, Rules, Scored, Transition, advance, drift_event, replayed, state_ended_by
from tests.constants import HAPPY, LABELS, SAD

GAP = 5 * 3600.0
START = 1_767_614_400.0  # 2026-01-05T12:00:00Z
CHANGE_AT = 40


@cache
def served() -> TemporalModel:
    return TemporalModel(model_repository.load(Settings().model_repository, "temporal"), ProviderChoice("cpu", "test"))


def rules(**detector: object) -> Rules:
    model = served()
    config = calibration.detector_config(model.artifact.manifest, {}, model.score_profile)
    return Rules(model, dataclasses.replace(config, **detector), recent_alpha=0.25, baseline_alpha=0.03)


def posts(n: int, seed: int = 0) -> list[Post]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        base = np.array([(HAPPY if i < CHANGE_AT else SAD)[label] for label in LABELS])
        probs = rng.dirichlet(base * 60).astype(np.float32)
        out.append(Post("u1", f"p{i}", START + i * GAP, Scored(probs, True, "observation")))
    return out


def run(stream: list[Post], r: Rules, state: UserState | None = None) -> list[Transition]:
    state = state or r.new_state()
    steps = []
    for post in stream:
        steps.append(advance(state, post, r))
        state = steps[-1].state
    return steps


def snapshot(state: UserState) -> tuple[bytes, bytes, dict[str, object], int]:
    return state.h.tobytes(), state.c.tobytes(), copy.deepcopy(state.meta()), state.version


def test_advance_leaves_the_previous_state_as_it_was() -> None:
    r = rules()
    steps = run(posts(12), r)
    previous = dataclasses.replace(steps[-1].state, version=7)
    before = snapshot(previous)
    step = advance(previous, posts(13)[-1], r)
    assert snapshot(previous) == before
    assert step.state is not previous and step.state.version == 7  # the store writes version + 1
    assert step.state.posts_seen == previous.posts_seen + 1 == 13
    assert step.result["post_id"] == "p12" and step.result["drift"]["posts_seen"] == 13
    assert step.result["alert"] is None and not step.model_reset and not step.promoted


def test_scores_and_events_are_the_model_and_detector_stepped_directly() -> None:
    r = rules()
    stream = posts(80)
    steps = run(stream, r)
    model, detector = served(), DriftDetector(r.detector)
    h, c = model.initial_state()
    events = []
    for i, post in enumerate(stream):
        probs = post.scored.probabilities
        out = model.step(model.features(probs, GAP if i else 0.0, True), h, c)
        h, c = out.h, out.c
        events.append(detector.update(out.drift_probability, model.negative_share(probs)))
        assert steps[i].result["drift"]["score"] == round(out.drift_probability, 6)
    assert [s.event_type for s in steps] == events
    started = events.index("drift.started")
    assert started >= CHANGE_AT  # nothing before the change; the served model catches it
    assert steps[started].result["drift"]["status"] == "drifting"
    assert steps[started].judged is not None and steps[0].judged is None  # the first posts warm up


def test_the_baseline_freezes_while_drifting_and_recent_follows_the_posts() -> None:
    steps = run(posts(80), rules())
    started = next(i for i, s in enumerate(steps) if s.event_type == "drift.started")
    drifting = [s.state for s in steps[started:started + 10]]
    assert all(s.baseline == drifting[0].baseline for s in drifting)
    assert drifting[-1].recent != drifting[0].recent
    assert np.argmax(drifting[0].baseline) == LABELS.index("happy")
    assert np.argmax(drifting[-1].recent) == LABELS.index("sad")


def test_a_state_of_another_temporal_model_restarts_its_memory_and_keeps_the_emotions() -> None:
    r = rules()
    first = run(posts(20), r)[-1].state
    foreign = dataclasses.replace(first, model="temporal:0", h=first.h + 1.0, c=first.c - 1.0)
    step = advance(foreign, posts(21)[-1], r)
    assert step.model_reset and step.state.model == served().artifact.tag
    assert step.state.model_resets == first.model_resets + 1
    fresh_h, fresh_c = served().initial_state()
    expected = served().step(served().features(posts(21)[-1].scored.probabilities, GAP, True), fresh_h, fresh_c)
    assert step.state.score == expected.drift_probability
    assert step.state.detector["posts_seen"] == 1  # the detector restarted too
    assert not advance(first, posts(21)[-1], r).model_reset


def test_thresholds_scaled_up_by_live_calibration_silence_the_alarm() -> None:
    r = rules(rebaseline_posts=0)
    stream, state = posts(80), r.new_state()
    ages = []
    for post in stream:
        step = advance(state, post, r, scale=lambda age: ages.append(age) or 1e6)
        state = step.state
        assert step.event_type is None
    assert ages == list(range(80))  # asked once per post, at the user's age


def test_a_new_baseline_asks_for_a_replay_and_replayed_rebuilds_the_lstm() -> None:
    r = rules()
    stream = posts(120)
    steps = run(stream, r)
    ended = next(i for i, s in enumerate(steps) if s.event_type == "drift.ended")
    step = steps[ended]
    assert step.state.detector["resolution"] == "new_baseline"
    assert state_ended_by("drift.ended", step.state.detector) == "rebaseline"
    # a state written before the rule was recorded: the only rule each resolution then had
    assert state_ended_by("drift.ended", {"resolution": "new_baseline"}) == "rebaseline"
    assert state_ended_by("drift.ended", {}) == "recovery" and state_ended_by("drift.started", {}) is None
    assert step.replay > 1
    h0, c0 = served().initial_state()
    assert np.array_equal(step.state.h, h0) and np.array_equal(step.state.c, c0)
    earlier = [s.result for s in steps[ended + 1 - step.replay:ended]]
    h, c = replayed(served(), earlier, stream[ended])
    direct_h, direct_c = served().initial_state()
    for i, post in enumerate(stream[ended + 1 - step.replay:ended + 1]):
        out = served().step(served().features(post.scored.probabilities, GAP if i else 0.0, True), direct_h, direct_c)
        direct_h, direct_c = out.h, out.c
    # the timeline keeps probabilities to 6 decimals: the replay matches the direct steps that closely
    assert np.allclose(h, direct_h, atol=1e-4) and np.allclose(c, direct_c, atol=1e-4)
    assert not np.allclose(h, h0)


def test_drift_event_carries_the_evidence_and_the_regimes() -> None:
    r = rules()
    steps = run(posts(80), r)
    i = next(i for i, s in enumerate(steps) if s.event_type == "drift.started")
    context = EventContext(served(), {"emotion_cnn": "emotion_cnn:1", "temporal": "temporal:4"}, 5, "https://ed.example/")
    event = drift_event(steps[i], [s.result for s in steps[max(0, i - 8):i]], context,
                        event_id="evt_1", emitted_at=START)
    assert event["id"] == "evt_1" and event["type"] == "drift.started" and event["user_id"] == "u1"
    assert event["evidence_post_ids"] == [f"p{k}" for k in range(i - 4, i + 1)]
    assert event["before"]["dominant"] == "happy" and event["after"]["dominant"] == "sad"
    assert event["valence_change"] < 0 and event["resolution"] is None and event["ended_by"] is None
    # which rules fired on the post: exactly those the detector reported, and only on drift.started
    assert event["raised_by"] and event["raised_by"] == list(steps[i].raised_by)
    assert set(event["raised_by"]) <= {"fast", "evidence", "share"}
    assert all(s.raised_by == () for s in steps if s.event_type != "drift.started")
    ended = next(s for s in run(posts(120), r) if s.event_type == "drift.ended")
    assert drift_event(ended, [], context, event_id="evt_3", emitted_at=START)["raised_by"] is None
    assert event["at"] == steps[i].result["created_at"] and event["emitted_at"] == "2026-01-05T12:00:00.000000Z"
    assert event["timeline_url"] == "https://ed.example/v1/users/u1/timeline.svg"
    assert event["ui_url"] == "https://ed.example/ui/alerts/evt_1"
    assert steps[i].result["alert"] is None  # attaching it is the caller's, once it is an alert
    with pytest.raises(AssertionError):
        drift_event(steps[0], [], context, event_id="evt_2", emitted_at=START)
