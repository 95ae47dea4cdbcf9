"""Shadow mode and promotion without a cold start (service/shadow.py), on real services, Redis and models.

The served model is temporal:4 and the shadow temporal:3 (and the other way round after a promotion);
the shadow's figures are checked against a direct replay of its model and detector.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import redis

from service import keys, model_repository
from service.config import Settings
from service.drift import DetectorConfig, DriftDetector
from service.embedded_redis import EmbeddedRedis
from service.inference import ProviderChoice
from service.calibration import detector_config, overrides
from service.shadow import AGREEMENT, Shadow, pack, unpack
from service.state_store import UserState, decode_record, encode_record
from service.temporal import TemporalModel
from tests.conftest import RunningService, read_state, start_service
from tests.constants import HAPPY, LABELS, SAD

START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
GAP = timedelta(hours=5)


def temporal(version: int) -> TemporalModel:
    return TemporalModel(model_repository.load(Settings().model_repository, "temporal", version),
                         ProviderChoice("cpu", "test"))


def stream(n: int, change_at: int, seed: int = 0) -> list[dict[str, object]]:
    """Posts of one user: noisy happy, then noisy sad from ``change_at``, five hours apart."""
    rng = np.random.default_rng(seed)
    posts = []
    for i in range(n):
        base = np.array([(HAPPY if i < change_at else SAD)[label] for label in LABELS])
        probs = rng.dirichlet(base * 60)
        posts.append({"post_id": f"p{i}", "created_at": (START + i * GAP).isoformat(),
                      "probabilities": dict(zip(LABELS, map(float, probs)))})
    return posts


def vector(post: dict[str, object]) -> np.ndarray:
    return np.array([post["probabilities"][label] for label in LABELS], dtype=np.float32)  # type: ignore[index]


def config(model: TemporalModel, settings: Settings) -> DetectorConfig:
    """The detector a service with ``settings`` runs for ``model`` (its manifest's calibration)."""
    return detector_config(model.artifact.manifest, overrides(settings), model.score_profile)


@dataclass
class Replay:
    """One user's posts through a model and a detector, as the service steps them: the LSTM state rebuilt
    over the posts since the alarm when an episode ends as a new baseline."""

    h: np.ndarray
    c: np.ndarray
    detector: DriftDetector
    scores: list[float]
    events: list[str | None]


def replay(model: TemporalModel, settings: Settings, posts: list[dict[str, object]]) -> Replay:
    detector = DriftDetector(config(model, settings))
    h, c = model.initial_state()
    xs = [model.features(vector(post), GAP.total_seconds() if i else 0.0, True) for i, post in enumerate(posts)]
    scores, events = [], []
    for i, post in enumerate(posts):
        step = model.step(xs[i], h, c)
        h, c = step.h, step.c
        scores.append(step.drift_probability)
        events.append(detector.update(step.drift_probability, model.negative_share(vector(post))))
        if detector.restart_model and detector.replay_posts > 1:
            h, c = model.initial_state()
            first = i + 1 - detector.replay_posts
            for j in range(first, i + 1):  # the first replayed post has no gap before it
                # earlier posts come from the timeline, whose probabilities are rounded to 6 places
                probs = vector(posts[j]) if j == i else np.array([round(float(p), 6) for p in vector(posts[j])],
                                                                  dtype=np.float32)
                x = model.features(probs, GAP.total_seconds() if j > first else 0.0, True)
                step = model.step(x, h, c)
                h, c = step.h, step.c
    return Replay(h, c, detector, scores, events)


def running(redis_server: EmbeddedRedis, **overrides: object) -> RunningService:
    return start_service(redis_url=redis_server.url, data_dir=Path("/nonexistent"), **overrides)


@pytest.fixture(scope="module")
def shadowed(redis_server: EmbeddedRedis) -> Iterator[RunningService]:
    service = running(redis_server, temporal_model_version=4, shadow_temporal_model_version=3)
    yield service
    service.stop()


def test_a_record_with_a_shadow_slot_round_trips_and_an_old_one_still_decodes() -> None:
    h, c = np.arange(48, dtype=np.float32) / 7, -np.arange(48, dtype=np.float32) / 3
    old = UserState(version=3, h=h, c=c, model="temporal:4", posts_seen=12)
    raw = encode_record(3, old.h, old.c, old.meta())
    assert b"shadow" not in raw and decode_record(raw).shadow is None  # no shadow: the record as before
    slot = {"model": "temporal:3", "h": pack(h * 2), "c": pack(c * 2), "detector": {"status": "stable"}, "score": 0.1}
    state = decode_record(encode_record(4, h, c, UserState(4, h, c, "temporal:4", 13, shadow=slot).meta()))
    assert state.shadow == slot and state.posts_seen == 13
    np.testing.assert_array_equal(unpack(state.shadow["h"]), h * 2)  # float32, exactly


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # uvicorn's exit, on purpose
def test_a_shadow_of_the_served_version_or_an_uncalibrated_one_is_refused(redis_server: EmbeddedRedis) -> None:
    with pytest.raises(ValueError, match="is the served one"):
        Shadow(temporal(3), config(temporal(3), Settings()), "temporal:3")
    with pytest.raises(RuntimeError):  # uvicorn reports the lifespan's ValueError as a failed start
        running(redis_server, temporal_model_version=3, shadow_temporal_model_version=3).stop()
    with pytest.raises(RuntimeError):  # temporal:2 has no calibration: as refused as serving it would be
        running(redis_server, temporal_model_version=4, shadow_temporal_model_version=2).stop()


@pytest.fixture(scope="module")
def plain(redis_server: EmbeddedRedis) -> Iterator[RunningService]:
    """The shadowed service's twin without a shadow, as fresh as it: the session's service has learnt a
    live calibration from the traffic of every test before this one, and would alarm on other posts."""
    service = running(redis_server, temporal_model_version=4)
    yield service
    service.stop()


def test_responses_are_byte_for_byte_the_same_with_and_without_a_shadow(
    plain: RunningService, shadowed: RunningService, redis_client: redis.Redis
) -> None:
    service = plain
    posts = stream(70, change_at=35)
    bodies: dict[str, list[bytes]] = {}
    outbox: dict[str, list[str]] = {}  # the types of the events each service put out
    for name, target in (("plain", service), ("shadowed", shadowed)):
        redis_client.flushall()
        with target.client() as http:
            answers = [http.post("/v1/users/vera/observations", json=post) for post in posts]
            answers += [http.post("/v1/users/vera/observations", json=posts[3]),  # a retry
                        http.get("/v1/users/vera"), http.get("/v1/users/vera/timeline")]
        assert all(a.status_code == 200 for a in answers)
        outbox[name] = [json.loads(fields[b"event"])["type"]
                        for _, fields in redis_client.xrange(target.settings.outbox_stream)]
        text = b"\n".join(a.content for a in answers)
        # an alert's id is drawn per request (and the URLs naming it), its emitted_at and created_at
        # are the clock's when it was raised (the posts' own times are in 2026-01)
        ids = set(re.findall(rb"evt_[0-9a-f]{32}", text))
        assert ids, "the stream should raise an alert, so the comparison covers one"
        for i, event_id in enumerate(sorted(ids, key=text.index)):
            text = text.replace(event_id, b"evt_%d" % i)
        bodies[name] = re.sub(rb'"(emitted_at|created_at)":"(?!2026-01)[^"]+"', rb'"\1":""', text).split(b"\n")
    assert len(bodies["plain"]) == len(bodies["shadowed"])
    for plain, shadowed_body in zip(bodies["plain"], bodies["shadowed"]):
        assert plain == shadowed_body
    assert outbox["plain"] == outbox["shadowed"] == ["drift.started"]  # the shadow's alarms are never sent
    slot = read_state(redis_client, "vera").shadow
    assert slot["model"] == "temporal:3" and slot["detector"]["episodes"] == 1  # the shadow ran, and alarmed


def test_the_shadow_is_reported_as_its_model_and_detector_would_score_the_user(
    shadowed: RunningService, redis_client: redis.Redis
) -> None:
    with shadowed.client() as http:
        before = http.get("/v1/model").json()["shadow"]
        posts = stream(130, change_at=40, seed=1)
        answers = [http.post("/v1/users/wim/observations", json=post).json() for post in posts]
        after = http.get("/v1/model").json()["shadow"]
        exposition = http.get("/metrics").text
    # the shadow replayed directly: its model, the service's features, a detector as the service runs it
    direct = replay(temporal(3), shadowed.settings, posts)
    scores, alarms = direct.scores, direct.events.count("drift.started")
    assert alarms >= 1 and direct.detector.resolution == "new_baseline"  # the change persisted: a rebuilt state
    state = read_state(redis_client, "wim")
    np.testing.assert_array_equal(unpack(state.shadow["h"]), direct.h)
    np.testing.assert_array_equal(unpack(state.shadow["c"]), direct.c)
    assert state.shadow["detector"] == direct.detector.to_dict()
    served_alarms = sum(a["alert"] is not None and a["alert"]["type"] == "drift.started" for a in answers)
    assert served_alarms >= 1
    assert after["served"]["tag"] == "temporal:4" and after["shadow"]["tag"] == "temporal:3"
    assert after["posts"] - before["posts"] == 130
    assert after["served"]["alarms"] - before["served"]["alarms"] == served_alarms
    assert after["shadow"]["alarms"] - before["shadow"]["alarms"] == alarms
    assert after["shadow"]["score"]["at_most"]["+Inf"] == after["posts"]
    low = sum(s <= 0.05 for s in scores)
    # run first, the shadow had scored nothing before: no buckets yet
    assert after["shadow"]["score"]["at_most"]["0.05"] - before["shadow"]["score"]["at_most"].get("0.05", 0) == low
    # both drifted on the same change: one episode of agreement
    assert after["episodes"]["both"] - before["episodes"]["both"] == 1
    assert re.search(r'emodrift_temporal_alarms_total\{model="shadow"\} [1-9]', exposition)
    assert 'emodrift_shadow_info{served="temporal:4",shadow="temporal:3"} 1.0' in exposition
    assert 'emodrift_temporal_score_count{model="served"}' in exposition
    # each loaded model by its role, which the rules select on (EmodriftModelNotLoaded), not by its name
    loaded = {tuple(sorted(re.findall(r'(\w+)="([^"]*)"', labels))) for labels in
              re.findall(r"^emodrift_model_info\{([^}]*)\} 1\.0$", exposition, re.M)}
    for role, name, version in (("emotion", "emotion_cnn", "1"), ("temporal", "temporal", "4"),
                                ("shadow", "temporal", "3")):
        assert (("name", name), ("provider", "cpu"), ("role", role), ("version", version)) in loaded, loaded


def test_promotion_keeps_the_users_state_and_rollback_is_one_setting(
    redis_server: EmbeddedRedis, redis_client: redis.Redis
) -> None:
    posts = stream(32, change_at=1000, seed=2)
    first = running(redis_server, temporal_model_version=3, shadow_temporal_model_version=4)
    try:
        with first.client() as http:
            for post in posts[:30]:
                assert http.post("/v1/users/yan/observations", json=post).status_code == 200
    finally:
        first.stop()
    shadowed = read_state(redis_client, "yan")
    assert shadowed.model == "temporal:3" and shadowed.shadow["model"] == "temporal:4"

    # promote: serve 4 (whose state the record holds), keep 3 as the shadow
    promoted = running(redis_server, temporal_model_version=4, shadow_temporal_model_version=3)
    try:
        with promoted.client() as http:
            body = http.post("/v1/users/yan/observations", json=posts[30]).json()
    finally:
        promoted.stop()
    assert body["drift"]["posts_seen"] == 31 and body["drift"]["status"] == "stable"
    state = read_state(redis_client, "yan")
    assert state.model == "temporal:4" and state.model_resets == 0 and state.shadow["model"] == "temporal:3"
    x = temporal(4).features(vector(posts[30]), GAP.total_seconds(), True)
    direct = temporal(4).step(x, unpack(shadowed.shadow["h"]), unpack(shadowed.shadow["c"]))
    np.testing.assert_array_equal(state.h, direct.h)  # the shadow's h and c, continued
    np.testing.assert_array_equal(state.c, direct.c)
    assert body["drift"]["score"] == round(direct.drift_probability, 6)
    old = temporal(3).step(x, shadowed.h, shadowed.c)  # the old served state went on as the shadow
    np.testing.assert_array_equal(unpack(state.shadow["h"]), old.h)

    # roll back without any shadow: serving 3 again takes the state the shadow slot kept
    rolled_back = running(redis_server, temporal_model_version=3)
    try:
        with rolled_back.client() as http:
            body = http.post("/v1/users/yan/observations", json=posts[31]).json()
            assert http.get("/v1/model").json()["shadow"] is None
    finally:
        rolled_back.stop()
    assert body["drift"]["posts_seen"] == 32 and body["drift"]["status"] == "stable"
    again = read_state(redis_client, "yan")
    assert again.model == "temporal:3" and again.model_resets == 0 and again.shadow["model"] == "temporal:4"
    x = temporal(3).features(vector(posts[31]), GAP.total_seconds(), True)
    np.testing.assert_array_equal(again.h, temporal(3).step(x, old.h, old.c).h)


def test_a_promotion_that_changes_a_users_status_says_so(redis_server: EmbeddedRedis,
                                                         redis_client: redis.Redis) -> None:
    """temporal:3 alarms a few posts sooner than temporal:4 on this stream. Promoted while the old model
    had the user drifting and the new one did not, the user turned stable with no event: the drift.started
    alert stayed open for good, the user stayed in the drifting set; promoted the other way, a user turned
    drifting with no drift.started, and its first alert was a drift.ended."""
    posts, at = stream(40, change_at=30, seed=0), 36  # by post 36: drifting under 3, not yet under 4

    def post_all(service: RunningService, user: str, chosen: list[dict[str, object]]) -> list[dict]:
        with service.client() as http:
            return [http.post(f"/v1/users/{user}/observations", json=post).json() for post in chosen]

    first = running(redis_server, temporal_model_version=3, shadow_temporal_model_version=4)
    try:
        (opened,) = [a["alert"] for a in post_all(first, "ho-end", posts[:at]) if a["alert"]]
    finally:
        first.stop()
    second = running(redis_server, temporal_model_version=4, shadow_temporal_model_version=3)
    try:
        assert not [a for a in post_all(second, "ho-start", posts[:at]) if a["alert"]]  # 4 sees nothing yet
        (ended,) = post_all(second, "ho-end", posts[at:at + 1])  # promoted to 4, which sees no episode
    finally:
        second.stop()
    third = running(redis_server, temporal_model_version=3, shadow_temporal_model_version=4)
    try:
        (started,) = post_all(third, "ho-start", posts[at:at + 1])  # promoted to 3, which sees one
        with third.client(follow_redirects=False) as person:  # no keys: the page opens with one click
            assert person.post("/ui/sign-in", data={"next": "/ui"}).status_code == 303
            # the page named every rule from a table without "promotion": a 500 for these alerts
            pages = {kind: person.get(f"/ui/alerts/{answer['alert']['id']}") for kind, answer in
                     (("started", started), ("ended", ended)) if answer["alert"]}
    finally:
        third.stop()
    assert set(pages) == {"started", "ended"} and all(p.status_code == 200 for p in pages.values()), pages
    assert all("newly served temporal model" in p.text for p in pages.values())
    assert opened["type"] == "drift.started" and ended["drift"]["status"] == "stable"
    assert ended["alert"] is not None, "the open episode ended without an event"
    assert (ended["alert"]["type"], ended["alert"]["resolution"], ended["alert"]["ended_by"]) == (
        "drift.ended", "model_changed", "promotion")
    assert ended["alert"]["model_versions"]["temporal"] == "temporal:4"
    assert started["drift"]["status"] == "drifting" and started["alert"] is not None
    assert (started["alert"]["type"], started["alert"]["raised_by"]) == ("drift.started", ["promotion"])
    assert redis_client.zscore(keys.drifting_users(), "ho-end") is None  # the gauge counts drifting users
    assert redis_client.zscore(keys.drifting_users(), "ho-start") is not None


def test_a_version_switched_to_without_a_shadow_ends_the_open_episode(redis_server: EmbeddedRedis,
                                                                       redis_client: redis.Redis) -> None:
    """A user drifting under the old model who had no state of the new one (no shadow ran, or they did
    not post while it did) restarted warming up with no event: their drift.started stayed open for good
    and the drifting gauge kept them (a re-audit: 11 counted drifting against 8)."""
    posts, at = stream(40, change_at=30, seed=0), 36
    first = running(redis_server, temporal_model_version=3)
    try:
        with first.client() as http:
            raised = [http.post("/v1/users/cold/observations", json=post).json()["alert"] for post in posts[:at]]
    finally:
        first.stop()
    assert any(a and a["type"] == "drift.started" for a in raised)
    second = running(redis_server, temporal_model_version=4)
    try:
        with second.client() as http:
            answer = http.post("/v1/users/cold/observations", json=posts[at]).json()
    finally:
        second.stop()
    assert answer["drift"]["status"] == "warming_up" and answer["alert"] is not None
    assert (answer["alert"]["type"], answer["alert"]["resolution"], answer["alert"]["ended_by"]) == (
        "drift.ended", "model_changed", "promotion")
    assert redis_client.zscore(keys.drifting_users(), "cold") is None


def episodes(model: TemporalModel, settings: Settings, posts: list[dict[str, object]]) -> list[tuple[int, float]]:
    """The model's drift episodes on one user's posts as [start, end) post indices (end: inf while open)."""
    found: list[tuple[int, float]] = []
    for i, event in enumerate(replay(model, settings, posts).events):
        if event == "drift.started":
            found.append((i, float("inf")))
        elif event == "drift.ended":
            found[-1] = (found[-1][0], i)
    return found


NEUTRAL = {"angry": 0.05, "disgust": 0.02, "fear": 0.05, "happy": 0.15, "sad": 0.1, "surprise": 0.03, "neutral": 0.6}


def spell(seed: int, mood: dict[str, float], length: int) -> list[dict[str, object]]:
    """Happy, a spell of ``mood`` for ``length`` posts from a seeded start, then happy for 60 posts."""
    rng = np.random.default_rng(seed)
    start, posts = int(rng.integers(20, 50)), []
    for i in range(start + length + 60):
        base = np.array([(mood if start <= i < start + length else HAPPY)[label] for label in LABELS])
        posts.append({"post_id": f"p{i}", "created_at": (START + i * GAP).isoformat(),
                      "probabilities": dict(zip(LABELS, map(float, rng.dirichlet(base * 20))))})
    return posts


def test_episodes_are_compared_as_intervals_of_both_models_would_be(
    redis_server: EmbeddedRedis, redis_client: redis.Redis
) -> None:
    """The service's agreement counts against the definition written as intervals: ``both`` for each pair
    of overlapping episodes, ``only_x`` for each ended episode of x that overlapped none of the other's.
    Both alarm on a sad spell of 15 posts; temporal:4 alone on a neutral spell of 25 or 40, where temporal:3
    does not: served 4 with shadow 3, then the other way round, cover every class."""
    expected, measured = dict.fromkeys(AGREEMENT, 0), dict.fromkeys(AGREEMENT, 0)

    def overlaps(a: tuple[int, float], b: tuple[int, float]) -> bool:
        return a[0] < b[1] and b[0] < a[1]

    for served, candidate, spells in ((4, 3, ((SAD, 15), (NEUTRAL, 25))), (3, 4, ((NEUTRAL, 40),))):
        service = running(redis_server, temporal_model_version=served, shadow_temporal_model_version=candidate)
        try:
            with service.client() as http:
                before = http.get("/v1/model").json()["shadow"]["episodes"]
                for seed in range(6):
                    posts = spell(seed, *spells[seed % len(spells)])
                    for post in posts:
                        assert http.post(f"/v1/users/m{served}-{seed}/observations", json=post).status_code == 200
                    mine = episodes(temporal(served), service.settings, posts)
                    theirs = episodes(temporal(candidate), service.settings, posts)
                    expected["both"] += sum(overlaps(a, b) for a in mine for b in theirs)
                    expected["only_served"] += sum(a[1] != float("inf") and not any(overlaps(a, b) for b in theirs)
                                                   for a in mine)
                    expected["only_shadow"] += sum(b[1] != float("inf") and not any(overlaps(b, a) for a in mine)
                                                   for b in theirs)
                after = http.get("/v1/model").json()["shadow"]["episodes"]
        finally:
            service.stop()
        for kind in AGREEMENT:
            measured[kind] += after[kind] - before[kind]
    assert measured == expected
    assert min(expected.values()) > 0, expected  # the streams exercise every class
