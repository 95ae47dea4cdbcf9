"""Reviewers' verdicts and live calibration (service/calibration.py ``judge``, the ``calibration_judge``
script): an alarm judged a real change leaves the counts learning reads, so a platform where many users
really change does not raise its thresholds for them (a reviewer's audit: a population where most users
changed raised the scale to 2.94, and a plain happy-to-sad change then raised nothing)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import redis
import redis.asyncio as aioredis

from service import calibration, keys
from service.calibration import LiveCalibration, level_index, parse_counts
from service.config import Settings
from service.embedded_redis import EmbeddedRedis, free_port
from tests.conftest import RunningService, start_service
from tests.constants import HAPPY, SAD

AGE = 500  # every user below is this far into their baseline: one bucket
MIN_POSTS = 20_000


def _settings(**kw) -> Settings:
    return Settings(**{"target_false_alarms_per_1000": 0.5, "calibration_min_posts": MIN_POSTS, **kw})


def _traffic(live: LiveCalibration, seed: int, changes: int) -> list[str]:
    """40 000 judged posts of users who do not change, a quarter of them rising to an excursion's peak
    that falls as a CUSUM's does (exponential above the grid's lowest level: the few that reach the
    manifest's thresholds alarm), and ``changes`` users whose real change rises far past the thresholds.
    Returns the changes' alarm ids."""
    rng = np.random.default_rng(seed)
    for i in range(40_000):
        if rng.random() < 0.25:
            peak = calibration.LEVELS[0] + float(rng.exponential(0.14))
            alarmed = peak >= 1.0  # at scale 1, the manifest's
            live.record(AGE, (0.0, peak), alarmed, f"evt_false_{i}" if alarmed else None)
        else:
            live.record(AGE, None, False)
    real = [f"evt_real_{i}" for i in range(changes)]
    for alarm_id in real:
        live.record(AGE, (0.0, 5.0), True, alarm_id)
    return real


def _scenario(url: str) -> dict[str, tuple[float, calibration.Bucket]]:
    """The same no-change traffic three times under three calibrations: alone; with 60 real changes; with
    the 60 changes and a verdict on each that it was real. One replica counts the traffic (it learns
    nothing: its minimum is never reached) and takes the verdicts; another then learns the scale from the
    shared counts. The scale each learned and its bucket's counts."""

    async def run() -> dict[str, tuple[float, calibration.Bucket]]:
        client = aioredis.Redis.from_url(url)
        out = {}
        try:
            for name, changes, judged in (("alone", 0, False), ("changes", 60, False), ("judged", 60, True)):
                model = f"verdicts-{name}"
                counter = LiveCalibration(client, model, _settings(calibration_min_posts=10**9))
                real = _traffic(counter, 7, changes)
                await counter.sync()
                if judged:
                    assert [await counter.judge(alarm_id, True, 1) for alarm_id in real] == ["ok"] * changes
                learner = LiveCalibration(client, model, _settings())
                await learner.sync()
                counts = parse_counts([await client.hgetall(keys.calibration_counts(model, 0))])
                assert learner.buckets[calibration.age_bucket(AGE)].source == "live"  # solved, not the manifest's
                out[name] = (learner.scale(AGE), counts[calibration.age_bucket(AGE)])
        finally:
            await client.aclose()
        return out

    return asyncio.run(run())


def test_alarms_judged_real_leave_the_counts_the_scale_is_learned_from(redis_server) -> None:
    seen = _scenario(redis_server.url)
    (alone, a), (changes, c), (judged, j) = seen["alone"], seen["changes"], seen["judged"]
    assert a.alarms > 5 and c.alarms == a.alarms + 60 and c.real == 0
    assert changes > alone > 1.0  # the real changes pushed the thresholds up for everyone
    # judged real, the changes are out of what learning reads, crossings and all: the same scale as without them
    assert (j.alarms, j.real, calibration.crossings(j.up, j.down)) == (a.alarms, 60, calibration.crossings(a.up, a.down))
    assert abs(judged - alone) < 0.001  # (their 60 judged posts are the only difference left)


def test_a_verdict_counts_once_and_a_changed_verdict_puts_the_alarm_back(redis_server, redis_client) -> None:
    """Retried, a verdict counts once; changed, the alarm goes back; a verdict older than the one taken
    last (two reviewers' changes reaching calibration in the other order than they were written) changes
    nothing."""
    model = "verdicts-once"

    async def run() -> list[tuple[str, int, int]]:
        client = aioredis.Redis.from_url(redis_server.url)
        live = LiveCalibration(client, model, _settings())
        live.record(AGE, (0.3, 2.0), True, "evt_a")
        b, peak = calibration.age_bucket(AGE), level_index(2.0)

        async def counted() -> tuple[int, int]:
            counts = await client.hgetall(keys.calibration_counts(model, 0))
            return int(counts.get(f"c:{b}".encode(), 0)), int(counts.get(f"d:{b}:{peak}".encode(), 0))

        # judged within a sync of the alarm (an automated reviewer): kept ahead, applied when it arrives
        steps = [(await live.judge("evt_a", True, 1), *await counted())]
        await live.sync()
        steps.append(("synced", *await counted()))
        for judgment, real in ((1, True), (3, False), (2, True), (4, False), (5, True)):
            status = await live.judge("evt_a", real, judgment)
            steps.append((status, *await counted()))
        await client.aclose()
        return steps

    steps = asyncio.run(run())
    below = level_index(0.3)
    assert below >= 0 and steps[:2] == [("missing", 0, 0), ("synced", 1, 1)]
    # the rise from 0.3 recorded its own down-crossing at 0.3's level, not at the peak's: the peak's starts at 0
    # judgment 1 again (a retry): nothing; 3: back; 2, arriving late: nothing; 4, the same: nothing; 5: real again
    assert steps[2:] == [("ok", 1, 1), ("ok", 0, 0), ("ok", 0, 0), ("ok", 0, 0), ("ok", 1, 1)]


def test_an_alarm_goes_with_its_generation(redis_server, redis_client) -> None:
    """A rotation drops the oldest generation's counts and the alarms they held: a verdict on one of those
    changes nothing (its alarm is no longer counted anywhere)."""
    model = "verdicts-rotation"

    async def run() -> tuple[str, str]:
        client = aioredis.Redis.from_url(redis_server.url)
        live = LiveCalibration(client, model, _settings(calibration_generation_posts=1000))
        live.record(AGE, (0.0, 2.0), True, "evt_old")
        for generation_fills in range(3):  # each sync fills the generation in use and moves on
            for _ in range(1000):
                live.record(AGE, None, False)
            await live.sync()
        late = await live.judge("evt_old", True, 1)
        live.record(AGE, (0.0, 2.0), True, "evt_new")
        await live.sync()
        recent = await live.judge("evt_new", True, 1)
        await client.aclose()
        return late, recent

    late, recent = asyncio.run(run())
    assert (late, recent) == ("missing", "ok")
    assert not redis_client.exists(keys.calibration_alarms(model, 0), keys.calibration_counts(model, 0))


def test_a_reviewers_verdict_reaches_the_calibration(tmp_path: Path) -> None:
    """Through the service: an alert judged real (confirmed, or not_actionable: the pattern did change)
    leaves the counts once, however often the verdict is sent; judged a false alarm again, it is back.
    An end of an episode raised no alarm and changes nothing. Its own Redis: nothing here reaches the
    session's service."""
    with _own_service(tmp_path, sync_seconds=0.1) as (running, client), running.client() as http:
        started, ended = _episode(http)
        name = http.get("/v1/model").json()["live_calibration"]["name"]
        alarms = keys.calibration_alarms(name, 0)
        deadline = time.monotonic() + 10
        while not client.hexists(alarms, started["id"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        bucket = client.hget(alarms, started["id"]).decode().split(":")[0]

        def judged_real() -> int:
            return int(client.hget(keys.calibration_counts(name, 0), f"c:{bucket}") or 0)

        seen = []
        resolved = _resolve(http, started["id"], {"verdict": "confirmed"})
        seen.append(judged_real())
        _resolve(http, started["id"], {"verdict": "confirmed"})  # a retry
        seen.append(judged_real())
        resolved = _resolve(http, started["id"], {"verdict": "not_actionable", "replaces": resolved["resolved_at"]})
        seen.append(judged_real())
        time.sleep(0.3)  # a sync: GET /v1/model shows it
        shown = sum(b["judged_real"] for b in http.get("/v1/model").json()["live_calibration"]["buckets"])
        _resolve(http, ended["id"], {"verdict": "confirmed"})
        seen.append(judged_real())
        _resolve(http, started["id"], {"verdict": "false_alarm", "replaces": resolved["resolved_at"]})
        seen.append(judged_real())
        # erased, the user's alarms leave the calibration's records (by alert id); its counts stay
        counts_before = client.hgetall(keys.calibration_counts(name, 0))
        assert http.delete("/v1/users/ann").status_code == 204
        left = client.hexists(alarms, started["id"])
        assert client.hgetall(keys.calibration_counts(name, 0)) == counts_before
    assert (seen, shown, left) == ([1, 1, 1, 1, 0], 1, False)


@contextmanager
def _own_service(tmp_path: Path, sync_seconds: float) -> Iterator[tuple[RunningService, redis.Redis]]:
    """The service on a Redis of its own (nothing here reaches the session's service), syncing live
    calibration every ``sync_seconds``; and a client of that Redis."""
    own = EmbeddedRedis(tmp_path, port=free_port(), appendonly=False).start()
    client = redis.Redis.from_url(own.url)
    running = start_service(redis_url=own.url, data_dir=Path("/nonexistent"), calibration_sync_seconds=sync_seconds)
    try:
        yield running, client
    finally:
        running.stop()
        client.close()
        own.stop()


def _episode(http) -> tuple[dict, dict]:
    """A user's drift.started and drift.ended (happy, a sad spell, happy again)."""
    raised = []
    for i, mood in enumerate([HAPPY] * 40 + [SAD] * 30 + [HAPPY] * 40):
        response = http.post("/v1/users/ann/observations", json={"post_id": f"ann-{i}", "probabilities": mood})
        assert response.status_code == 200, response.text
        if response.json()["alert"]:
            raised.append(response.json()["alert"])
    started, ended = raised
    assert (started["type"], ended["type"]) == ("drift.started", "drift.ended")
    return started, ended


def _resolve(http, alert_id: str, body: dict) -> dict:
    response = http.post(f"/v1/alerts/{alert_id}/resolve", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_benchmarks_offline_verdicts_count_as_the_script_does(redis_server) -> None:
    """benchmarks/calibration_verdicts.py judges alarms offline (``judge_offline``): the counts it reaches
    must be those the service's ``calibration_judge`` writes for the same traffic and verdicts."""
    from benchmarks.live_calibration import OfflineLiveCalibration

    offline = OfflineLiveCalibration("offline", 0.5, min_posts=10**9, sync_posts=10**9)
    verdicts = [("evt_real_3", True), ("evt_real_5", True), ("evt_real_5", False), ("evt_real_7", True),
                ("evt_real_7", True), ("evt_unknown", True)]

    async def run() -> tuple[list[calibration.Bucket], list[str]]:
        client = aioredis.Redis.from_url(redis_server.url)
        shared = LiveCalibration(client, "verdicts-offline", _settings(calibration_min_posts=10**9))
        for live in (offline, shared):
            _traffic(live, 11, 10)
        await shared.sync()
        said = [await shared.judge(alarm_id, real, number) for number, (alarm_id, real) in enumerate(verdicts, 1)]
        counts = parse_counts([await client.hgetall(keys.calibration_counts(shared.model, 0))])
        await client.aclose()
        return counts, said

    counts, said = asyncio.run(run())
    offline.merge()
    assert [offline.judge_offline(alarm_id, real) for alarm_id, real in verdicts] == said == ["ok"] * 5 + ["missing"]
    assert counts == parse_counts([offline.totals]) and sum(b.real for b in counts) == 2


def test_a_frozen_replica_finds_the_alarms_in_the_generation_in_use(redis_server) -> None:
    """Frozen (the runbook's remedy during an event, when reviewers confirm many real changes), a replica
    learned nothing and never read the generation in use: it stayed on 0 while the counts had moved on,
    and its verdicts found no alarm (an audit: three verdicts answered 200 and changed nothing)."""
    model = "verdicts-frozen"

    async def run() -> tuple[int, str, int]:
        client = aioredis.Redis.from_url(redis_server.url)
        learning = LiveCalibration(client, model, _settings(calibration_generation_posts=1000))
        for _ in range(3):  # each sync fills the generation in use and moves on
            for _ in range(1000):
                learning.record(AGE, None, False)
            await learning.sync()
        learning.record(AGE, (0.0, 2.0), True, "evt_during_the_event")
        await learning.sync()
        frozen = LiveCalibration(client, model, _settings(calibration_frozen=True))
        await frozen.sync_at_start(5.0)
        status = await frozen.judge("evt_during_the_event", True, 1)
        counts = await client.hgetall(keys.calibration_counts(model, learning.generation))
        await client.aclose()
        return frozen.generation - learning.generation, status, int(counts.get(f"c:{calibration.age_bucket(AGE)}".encode(), 0))

    assert asyncio.run(run()) == (0, "ok", 1)


def test_a_stopping_service_sends_its_last_counts(tmp_path: Path) -> None:
    """A stop cancelled the background sync and dropped up to a sync interval of counts and alarms (an
    audit: 26 of 30 alarms raised just before a restart were never recorded, and verdicts on them did
    nothing). Here the background never syncs (an hour apart): only the last sync, at stop, sends them."""
    with _own_service(tmp_path, sync_seconds=3600) as (running, client):
        with running.client() as http:
            started, _ = _episode(http)
            name = http.get("/v1/model").json()["live_calibration"]["name"]
        before = client.hexists(keys.calibration_alarms(name, 0), started["id"])
        running.stop()
        after = client.hexists(keys.calibration_alarms(name, 0), started["id"])
    assert (before, after) == (False, True)


def test_a_verdict_waiting_for_its_alarm_outlasts_a_rotation_and_each_one_expires_alone(redis_server) -> None:
    """A rotation deleted every verdict waiting ahead, those whose alarm another replica was about to send
    too (a re-audit: 6 of 504 automated verdicts lost at a rotation every 20 000 posts); and one TTL on the
    whole hash, renewed at every write, let verdicts on alarms that never come pile up for as long as
    reviewers worked. Each now waits an hour on its own, and rotations leave them."""
    from service import lua

    model = "verdicts-ahead"

    async def run() -> tuple[int, list[bytes]]:
        client = aioredis.Redis.from_url(redis_server.url)
        slow = LiveCalibration(client, model, _settings(calibration_generation_posts=1000))
        busy = LiveCalibration(client, model, _settings(calibration_generation_posts=1000))
        slow.record(AGE, (0.0, 2.0), True, "evt_unsent")
        assert await busy.judge("evt_unsent", True, 1) == "missing"  # waits ahead
        for _ in range(1000):
            busy.record(AGE, None, False)
        await busy.sync()
        assert busy.generation == 1  # rotated
        await slow.sync()  # the alarm arrives in generation 0, still kept
        counts = await client.hgetall(keys.calibration_counts(model, 0))
        judge = lua.CALIBRATION_JUDGE.bind(client)
        ahead = {"ahead": keys.calibration_ahead(model), "ahead_times": keys.calibration_ahead_times(model)}
        for alarm_id, now in (("evt_never_a", 1000.0), ("evt_never_b", 1000.0 + calibration.AHEAD_SECONDS + 1)):
            await judge(keys=ahead, key_tail=[], args={"alarm_id": alarm_id, "real": 1, "judgment": 1, "now": now,
                                                         "ahead_seconds": calibration.AHEAD_SECONDS})
        waiting = sorted(await client.hkeys(keys.calibration_ahead(model)))
        await client.aclose()
        return int(counts.get(f"c:{calibration.age_bucket(AGE)}".encode(), 0)), waiting

    assert asyncio.run(run()) == (1, [b"evt_never_b"])
