"""Webhooks end to end: a real receiver on 127.0.0.1 that verifies signatures with docs/webhooks.md's
stdlib code, a real redis-server, the real service (one or two instances, stopped and started again).

These tests own a redis-server of their own: a dispatcher is a consumer of every event in its Redis,
and the session-wide service of the other tests (default settings: private URLs refused, retries
minutes apart) must not take part in these deliveries.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import redis.asyncio as aioredis

from service import keys
from service.embedded_redis import EmbeddedRedis, free_port
from service.webhooks.deliveries import Deliveries
from service.webhooks.subscriptions import Subscription
from tests.conftest import RunningService, start_service
from tests.webhook_receiver import Receiver, verify
from tests.constants import HAPPY, SAD

OUTBOX, GROUP = "ed:outbox", "webhooks"
FAST = {  # retries in tens of milliseconds, idle outbox entries claimed after 0.3 s
    "webhook_allow_private_urls": True, "webhook_retry_schedule": "0.05,0.1,0.2", "webhook_retry_jitter": 0.1,
    "webhook_claim_idle_ms": 300, "webhook_poll_interval_seconds": 0.02, "webhook_timeout_seconds": 2.0,
    "webhook_lease_margin_seconds": 1.0, "data_dir": Path("/nonexistent"),
}


@pytest.fixture(scope="module")
def wh_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("wh-redis"), port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def wh_service(wh_redis: EmbeddedRedis) -> Iterator[RunningService]:
    running = start_service(redis_url=wh_redis.url, **FAST)
    yield running
    running.stop()


@pytest.fixture
def r(wh_redis: EmbeddedRedis) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(wh_redis.url)
    client.flushall()  # the dispatchers re-create their consumer group on their next read
    yield client
    client.close()


@pytest.fixture
def api(wh_service: RunningService, r: redis.Redis) -> Iterator[httpx.Client]:
    with wh_service.client() as http:
        yield http


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    started: list[Receiver] = []

    def make(**kwargs: Any) -> Receiver:
        started.append(Receiver(**kwargs).start())
        return started[-1]

    yield make
    for receiver in started:
        receiver.stop()


def subscribe(api: httpx.Client, receiver: Receiver, events: list[str] | None = None) -> dict[str, Any]:
    response = api.post("/v1/webhooks", json={"url": receiver.url, "events": events or ["drift.started", "drift.ended"]})
    assert response.status_code == 201, response.text
    receiver.secret = response.json()["secret"]
    return response.json()


def alert(event_type: str = "drift.started", user: str = "uma") -> dict[str, Any]:
    """A well-formed outbox event, as service.transition.drift_event writes it."""
    return {"id": f"evt_{uuid.uuid4().hex}", "type": event_type, "user_id": user, "at": "2026-11-25T10:00:00Z",
            "emitted_at": "2026-11-25T10:00:01Z", "score": 0.91, "posts_seen": 50,
            "before": {"distribution": HAPPY, "dominant": "happy", "valence": 0.8},
            "after": {"distribution": SAD, "dominant": "sad", "valence": -0.8}, "valence_change": -1.6,
            "evidence_post_ids": ["p1", "p2"], "model_versions": {"emotion_cnn": "emotion_cnn/1", "temporal": "temporal/1"},
            "timeline_url": f"http://127.0.0.1:8000/v1/users/{user}/timeline"}


def publish(r: redis.Redis, event: dict[str, Any]) -> dict[str, Any]:
    r.xadd(OUTBOX, {"event": json.dumps(event)})
    return event


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 10.0, every: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def unacked(r: redis.Redis) -> int:
    try:
        return int(r.xpending(OUTBOX, GROUP)["pending"])
    except redis.ResponseError as exc:
        # each test starts on a flushed Redis; the dispatcher re-creates its group on its next read, and a
        # test event never goes through the outbox: no group yet means nothing is waiting in it
        if "NOGROUP" not in str(exc):
            raise
        return 0


def deliveries(api: httpx.Client, sub_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/v1/webhooks/{sub_id}/deliveries")
    assert response.status_code == 200, response.text
    return response.json()["deliveries"]


def settled(api: httpx.Client, sub_id: str, r: redis.Redis, count: int = 1) -> list[dict[str, Any]]:
    """Wait until `count` deliveries are final and the outbox has nothing left unacknowledged."""
    def done() -> list[dict[str, Any]] | None:
        log = deliveries(api, sub_id)
        final = len(log) == count and all(d["status"] != "pending" for d in log)
        return log if final and unacked(r) == 0 else None
    return wait_for(done, f"{count} final deliveries and an acknowledged outbox")


def test_subscriptions_crud_and_the_secret_is_shown_once(api: httpx.Client) -> None:
    created = api.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["drift.started"]})
    assert created.status_code == 201
    sub = created.json()
    assert sub["id"].startswith("wh_") and sub["status"] == "enabled" and sub["events"] == ["drift.started"]
    assert sub["secret"].startswith("whsec_") and 24 <= len(base64.b64decode(sub["secret"][6:])) <= 64
    own = api.post("/v1/webhooks", json={"url": "https://127.0.0.1/x", "events": ["drift.ended"],
                                         "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}).json()
    assert own["secret"] == "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    listed = api.get("/v1/webhooks").json()["webhooks"]
    assert [w["id"] for w in listed] == [sub["id"], own["id"]] and all("secret" not in w for w in listed)
    one = api.get(f"/v1/webhooks/{sub['id']}").json()
    assert one == {k: v for k, v in sub.items() if k != "secret"}
    for body, field in (({"url": "http://127.0.0.1/", "events": ["drift.maybe"]}, "events"),
                        ({"url": "http://127.0.0.1/", "events": []}, "events"),
                        ({"url": "http://127.0.0.1/", "events": ["drift.ended"], "secret": "whsec_c2hvcnQ="}, "secret")):
        bad = api.post("/v1/webhooks", json=body)
        assert bad.status_code == 422 and field in bad.json()["error"]["message"], bad.text
    assert api.delete(f"/v1/webhooks/{sub['id']}").status_code == 204
    for response in (api.get(f"/v1/webhooks/{sub['id']}"), api.delete(f"/v1/webhooks/{sub['id']}"),
                     api.get(f"/v1/webhooks/{sub['id']}/deliveries")):
        assert response.status_code == 404 and response.json()["error"]["code"] == "webhook_not_found"


def test_private_and_non_http_urls_are_refused_by_default(client: httpx.Client) -> None:
    """The session service runs with the default settings: private receivers are not allowed."""
    for url in ("http://127.0.0.1:8080/hook", "http://localhost/hook", "http://10.0.0.7/", "http://[::1]/",
                "http://169.254.169.254/latest/meta-data", "http://192.168.1.1/", "ftp://example.com/", "hook"):
        response = client.post("/v1/webhooks", json={"url": url, "events": ["drift.started"]})
        assert response.status_code == 422, (url, response.text)
        assert response.json()["error"]["code"] == "invalid_webhook_url", url
    public = client.post("/v1/webhooks", json={"url": "https://8.8.8.8/hook", "events": ["drift.started"]})
    assert public.status_code == 201
    client.delete(f"/v1/webhooks/{public.json()['id']}")


def test_a_delivery_is_signed_and_verifies_with_the_stdlib_code(
        api: httpx.Client, r: redis.Redis, receivers: Callable[..., Receiver]) -> None:
    receiver = receivers()
    sub = subscribe(api, receiver, events=["drift.started"])
    ignored = receivers()
    subscribe(api, ignored, events=["drift.ended"])
    sent = time.monotonic()
    event = publish(r, alert())
    wait_for(lambda: receiver.successes()[event["id"]], "the delivery")
    got = receiver.attempts()[0]
    assert got.verified and got.webhook_id == event["id"] and abs(got.timestamp - time.time()) < 5
    print(f"outbox -> receiver: {1000 * (got.at - sent):.1f} ms")
    headers = {"webhook-id": got.webhook_id, "webhook-timestamp": str(got.timestamp),
               "webhook-signature": got.signature}
    assert verify(receiver.secret, headers, got.body) == {"type": "drift.started", "timestamp": event["emitted_at"],
                                                          "data": event}
    with pytest.raises(ValueError, match="bad signature"):
        verify(receiver.secret, headers, got.body.replace(b"uma", b"eve"))
    log = settled(api, sub["id"], r)
    assert log[0]["status"] == "delivered" and log[0]["webhook_id"] == event["id"]
    assert [a["status_code"] for a in log[0]["attempts"]] == [200] and log[0]["attempts"][0]["latency_ms"] > 0
    assert ignored.attempts() == []
    metrics = api.get("/metrics").text
    for family in ('emodrift_webhook_deliveries_total{outcome="delivered"}',
                   "emodrift_webhook_delivery_duration_seconds_bucket",
                   'emodrift_webhook_attempts_total{result="delivered"}', "emodrift_outbox_backlog"):
        assert family in metrics, family


def test_the_delivery_log_names_the_subscription_and_the_event_unambiguously(
        api: httpx.Client, r: redis.Redis, receivers: Callable[..., Receiver]) -> None:
    """`webhook_id` means the subscription at the log's top and the event (the webhook-id header) in each
    delivery: kept as it was, with `subscription_id` and `event_id` beside it, and described."""
    receiver = receivers()
    sub = subscribe(api, receiver)
    event = publish(r, alert())
    settled(api, sub["id"], r)
    log = api.get(f"/v1/webhooks/{sub['id']}/deliveries").json()
    assert log["webhook_id"] == log["subscription_id"] == sub["id"]
    (delivery,) = log["deliveries"]
    assert delivery["subscription_id"] == sub["id"]
    assert delivery["webhook_id"] == delivery["event_id"] == event["id"] == receiver.attempts()[0].webhook_id
    one = api.get(f"/v1/webhooks/{sub['id']}/deliveries/{delivery['id']}").json()
    assert one["subscription_id"] == sub["id"] and one["event_id"] == event["id"]
    schemas = api.get("/openapi.json").json()["components"]["schemas"]
    view, top = schemas["DeliveryView"]["properties"], schemas["DeliveryLog"]["properties"]
    assert "webhook-id" in view["webhook_id"]["description"] and "subscription_id" in view["webhook_id"]["description"]
    assert "subscription" in top["webhook_id"]["description"] and "event" in top["webhook_id"]["description"]


def test_transient_failures_then_exactly_one_success_with_one_webhook_id(
        api: httpx.Client, r: redis.Redis, receivers: Callable[..., Receiver]) -> None:
    receiver = receivers(script=[500, (429, {"Retry-After": "1"})])
    sub = subscribe(api, receiver)
    event = publish(r, alert("drift.ended"))
    log = settled(api, sub["id"], r)
    calls = receiver.attempts()
    assert [c.status for c in calls] == [500, 429, 200] and all(c.verified for c in calls)
    assert {c.webhook_id for c in calls} == {event["id"]} and receiver.successes() == {event["id"]: 1}
    assert calls[2].at - calls[1].at >= 0.95, "Retry-After: 1 was not honoured"
    attempts = log[0]["attempts"]
    assert [(a["attempt"], a["status_code"], a["result"]) for a in attempts] == [
        (1, 500, "retry"), (2, 429, "retry"), (3, 200, "delivered")]
    assert attempts[1]["retry_after_s"] == 1.0 and attempts[0]["next_attempt_at"]
    assert log[0]["status"] == "delivered" and log[0]["finished_at"]


def test_410_gone_disables_the_subscription(api: httpx.Client, r: redis.Redis, receivers: Callable[..., Receiver]) -> None:
    receiver = receivers(default=410)
    sub = subscribe(api, receiver)
    publish(r, alert())
    log = settled(api, sub["id"], r)
    assert log[0]["status"] == "disabled" and "410" in log[0]["reason"]
    view = api.get(f"/v1/webhooks/{sub['id']}").json()
    assert view["status"] == "disabled" and "410" in view["disabled_reason"]
    publish(r, alert())
    wait_for(lambda: r.xlen(OUTBOX) == 2 and unacked(r) == 0 and r.xinfo_groups(OUTBOX)[0]["last-delivered-id"]
             == r.xrevrange(OUTBOX, count=1)[0][0], "the second event read and acknowledged")
    # nothing is sent to a disabled subscription, but the event is in its log (cancelled, replayable)
    assert len(receiver.attempts()) == 1
    assert [d["status"] for d in deliveries(api, sub["id"])] == ["cancelled", "disabled"]


def test_spent_schedule_and_4xx_are_dead_lettered_then_replayed(
        api: httpx.Client, r: redis.Redis, receivers: Callable[..., Receiver]) -> None:
    down, refusing = receivers(default=503), receivers(default=400)
    sub_down, sub_refusing = subscribe(api, down), subscribe(api, refusing)
    event = publish(r, alert())
    (dead_down,) = settled(api, sub_down["id"], r)
    (dead_refusing,) = settled(api, sub_refusing["id"], r)
    assert [a["status_code"] for a in dead_down["attempts"]] == [503] * 4  # 1 + the three retries of the schedule
    assert dead_down["status"] == "dead_lettered" and "retries exhausted" in dead_down["reason"]
    assert [a["status_code"] for a in dead_refusing["attempts"]] == [400]
    assert "not retryable" in dead_refusing["reason"]
    letters = {f[b"subscription_id"].decode(): f for _, f in r.xrange(keys.dead_letters())}
    assert set(letters) == {sub_down["id"], sub_refusing["id"]}
    assert letters[sub_down["id"]][b"event_id"].decode() == event["id"]

    down.set(default=200)
    replay = api.post(f"/v1/webhooks/{sub_down['id']}/deliveries/{dead_down['id']}/retry")
    assert replay.status_code == 202 and replay.json()["status"] == "pending"
    wait_for(lambda: down.successes()[event["id"]] == 1, "the replayed delivery")
    (again,) = settled(api, sub_down["id"], r)
    assert again["status"] == "delivered" and again["replays"] == 1 and len(again["attempts"]) == 5
    assert {c.webhook_id for c in down.attempts()} == {event["id"]}
    missing = api.post(f"/v1/webhooks/{sub_down['id']}/deliveries/dlv_nope/retry")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "delivery_not_found"


def test_the_deliveries_to_replay_are_listed_by_status_and_replayed_at_once(
        api: httpx.Client, r: redis.Redis, receivers: Callable[..., Receiver]) -> None:
    """After an outage an on-call replays every dead letter; the listing could not filter (422 on
    ?status=) and an audit found 852 of them by paging through all deliveries, newest first."""
    receiver = receivers(default=400)  # not retryable: dead-lettered at once
    sub = subscribe(api, receiver)
    dead = [publish(r, alert())["id"] for _ in range(3)]
    settled(api, sub["id"], r, count=3)
    receiver.set(default=200)
    delivered = publish(r, alert())["id"]
    wait_for(lambda: receiver.successes()[delivered] == 1, "the delivered one")
    settled(api, sub["id"], r, count=4)

    def listed(**params: Any) -> list[str]:
        response = api.get(f"/v1/webhooks/{sub['id']}/deliveries", params=params)
        assert response.status_code == 200, response.text
        return [d["event_id"] for d in response.json()["deliveries"]]

    assert listed(status="dead_lettered") == dead[::-1] and listed(status="delivered") == [delivered]
    assert listed(status="dead_lettered", limit=2) == dead[:0:-1] and listed(status="pending") == []
    assert listed(limit=2) == [delivered, dead[-1]]  # without it, the newest of every status
    refused = api.get(f"/v1/webhooks/{sub['id']}/deliveries", params={"status": "dead"})
    assert refused.status_code == 422 and "dead_lettered" in refused.text

    # and replayed in one request, oldest first; sent again, it finds them pending and replays none twice
    replay = api.post(f"/v1/webhooks/{sub['id']}/deliveries/retry", params={"status": "dead_lettered"})
    again = api.post(f"/v1/webhooks/{sub['id']}/deliveries/retry", params={"status": "dead_lettered"})
    assert replay.status_code == again.status_code == 202, (replay.text, again.text)
    ids = {d["event_id"]: d["id"] for d in deliveries(api, sub["id"])}
    assert replay.json()["replayed"] == [ids[event] for event in dead] and again.json()["replayed"] == []
    wait_for(lambda: all(receiver.successes()[event] == 1 for event in dead), "the three replayed")
    assert listed(status="dead_lettered") == [] and sorted(listed(status="delivered")) == sorted([*dead, delivered])
    wrong = api.post(f"/v1/webhooks/{sub['id']}/deliveries/retry", params={"status": "delivered"})
    assert wrong.status_code == 422, wrong.text  # a delivered one is sent again only one at a time, with force


def test_the_receivers_documentation_says_a_4xx_is_dead_lettered_at_once(api: httpx.Client) -> None:
    # as the test above sees a 400 (and docs/webhooks.md says); the OpenAPI descriptions said "anything else
    # is retried, then dead-lettered"
    from service.webhooks.retry import classify

    assert [classify(status) for status in (400, 404, 301)] == ["failed"] * 3
    for event_type, described in api.get("/openapi.json").json()["webhooks"].items():
        text = described["post"]["description"]
        assert "every other 4xx) is dead-lettered at once" in text and "429 or 5xx is retried" in text, event_type
        assert "anything else is retried" not in text, event_type


def test_a_replay_sent_twice_sends_once_and_a_delivered_one_only_when_forced(
        api: httpx.Client, wh_service: RunningService, r: redis.Redis, receivers: Callable[..., Receiver]) -> None:
    """A double click or a client retrying its replay: the receiver gets the event once more, not twice.
    The first replay was delivered before the second came (a receiver on 127.0.0.1 answers in a
    millisecond), so 'pending' alone cannot catch it: a delivered delivery is not replayed unforced."""
    receiver = receivers(default=400)
    sub = subscribe(api, receiver)
    event = publish(r, alert())
    (dead,) = settled(api, sub["id"], r)
    assert dead["status"] == "dead_lettered"
    receiver.set(default=200)
    retry = f"/v1/webhooks/{sub['id']}/deliveries/{dead['id']}/retry"

    def replay(_: int) -> int:
        with wh_service.client() as client:
            return client.post(retry).status_code
    with ThreadPoolExecutor(8) as pool:  # eight at once: one is sent
        assert sorted(pool.map(replay, range(8))) == [202] + [409] * 7
    wait_for(lambda: receiver.successes()[event["id"]] == 1, "the replay")
    wait_for(lambda: deliveries(api, sub["id"])[0]["status"] == "delivered", "the replay recorded")
    again = api.post(retry)  # one after another
    assert again.status_code == 409 and again.json()["error"]["code"] == "delivery_not_replayable"
    assert "force=true" in again.json()["error"]["message"]
    forced = api.post(retry, params={"force": "true"})
    assert forced.status_code == 202 and forced.json()["replays"] == 2
    wait_for(lambda: receiver.successes()[event["id"]] == 2, "the forced replay")
    time.sleep(0.3)  # a duplicate would have arrived by now
    assert receiver.successes()[event["id"]] == 2 and len(receiver.attempts(event["id"])) == 3


def drive_into_drift(http: httpx.Client, user: str) -> dict[str, Any]:
    for i in range(80):
        body = http.post(f"/v1/users/{user}/observations",
                         json={"post_id": f"{user}-{i}", "probabilities": HAPPY if i < 40 else SAD}).json()
        if body["alert"]:
            return body["alert"]
    raise AssertionError("no drift alert")


@pytest.fixture
def lone_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis no other dispatcher reads from: a restart must be the only way the delivery goes on."""
    server = EmbeddedRedis(tmp_path, port=free_port())
    server.start()
    yield server
    server.stop()


def test_restart_mid_retry_delivers_once_and_claims_a_dead_consumers_entries(
        lone_redis: EmbeddedRedis, receivers: Callable[..., Receiver]) -> None:
    """The issue's acceptance test: a user driven into drift through the API, a receiver failing,
    the service stopped while a retry is pending and started again: exactly one verified delivery."""
    r = redis.Redis.from_url(lone_redis.url)
    settings = {**FAST, "webhook_retry_schedule": ",".join(["0.3"] * 20)}
    receiver = receivers(default=500)
    first = start_service(redis_url=lone_redis.url, **settings)
    try:
        with first.client() as http:
            sub = subscribe(http, receiver, events=["drift.started"])
            event = drive_into_drift(http, "vera")
            wait_for(lambda: len(receiver.attempts()) >= 2, "two failed attempts")
    finally:
        first.stop()
    failed_before_restart = len(receiver.attempts())
    # A replica that read an event and died before creating its deliveries: pending in the group.
    orphan = publish(r, alert(user="walt"))
    assert r.xreadgroup(GROUP, "ghost-consumer", {OUTBOX: ">"})[0][1][0][0]
    receiver.set(default=200)
    second = start_service(redis_url=lone_redis.url, **settings)
    try:
        with second.client() as http:
            wait_for(lambda: receiver.successes() == {event["id"]: 1, orphan["id"]: 1}, "both deliveries", 15)
            log = {d["event_id"]: d for d in settled(http, sub["id"], r, count=2)}
    finally:
        second.stop()
    assert event["type"] == "drift.started" and event["user_id"] == "vera"
    calls = receiver.attempts(event["id"])
    assert all(c.verified for c in receiver.attempts()) and len(calls) == failed_before_restart + 1
    assert [a["result"] for a in log[event["id"]]["attempts"]] == ["retry"] * failed_before_restart + ["delivered"]
    assert calls[-1].json()["data"]["evidence_post_ids"][-1].startswith("vera-")
    assert log[orphan["id"]]["status"] == "delivered"


def test_two_replicas_deliver_every_event_exactly_once(
        api: httpx.Client, wh_redis: EmbeddedRedis, r: redis.Redis, receivers: Callable[..., Receiver]) -> None:
    receiver = receivers(fail_first_per_id=1)  # every event needs a retry: attempts are claimed twice
    subscribe(api, receiver)
    other = start_service(redis_url=wh_redis.url, **FAST)
    try:
        events = [publish(r, alert(user=f"u{i}")) for i in range(40)]
        wait_for(lambda: len(receiver.successes()) == 40 and unacked(r) == 0, "40 deliveries", 20)
    finally:
        other.stop()
    assert receiver.successes() == {e["id"]: 1 for e in events}
    per_id = {e["id"]: [c.status for c in receiver.attempts(e["id"])] for e in events}
    assert all(statuses == [500, 200] for statuses in per_id.values()), per_id
    readers = [c for c in r.xinfo_consumers(OUTBOX, GROUP)]
    assert len(readers) >= 2


def test_a_claim_is_exclusive_until_its_lease_expires_and_a_stale_result_is_discarded(
        lone_redis: EmbeddedRedis) -> None:
    """What keeps replicas from sending one attempt twice, and lets a dead replica's attempt go on."""
    async def scenario() -> None:
        client = aioredis.Redis.from_url(lone_redis.url)
        store = Deliveries(client, retention_seconds=60)
        sub = Subscription("wh_t", "http://127.0.0.1/", ("drift.started",), "whsec_x", "enabled", time.time())
        event = alert()
        assert await store.enqueue("1-0", event, "{}", [sub]) == 1
        assert await store.enqueue("1-0", event, "{}", [sub]) == 1  # taking the entry again adds nothing
        (did,) = await store.due(time.time(), 10)
        now = time.time()
        winner = await store.claim(did, now, now + 0.3)
        assert winner is not None and winner.token == 1 and winner.round_attempt == 1
        assert await store.claim(did, now, now + 0.3) is None  # a second replica loses
        await asyncio.sleep(0.35)  # the winner "died": its lease runs out
        later = time.time()
        heir = await store.claim(did, later, later + 5)
        assert heir is not None and heir.token == 2
        assert await store.record(winner, {"attempt": 1}, "delivered") == ("stale", 0)  # the dead one's late word
        assert await store.record(heir, {"attempt": 1}, "delivered") == ("ok", 0)  # last open delivery: XACK
        assert await store.due(time.time() + 60, 10) == []
        await client.aclose()

    asyncio.run(scenario())


def test_the_documented_verifier_is_the_one_the_receiver_runs() -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "webhooks.md").read_text()
    block = next(b for b in page.split("```python\n")[1:] if "def verify(" in b).split("```")[0]
    assert inspect.getsource(verify).strip() in block
    assert len(block.strip().splitlines()) <= 13  # imports, blank, and the ten-line function


def test_a_receiver_that_is_not_listening_is_retried_then_dead_lettered(api: httpx.Client, r: redis.Redis) -> None:
    sub = api.post("/v1/webhooks", json={"url": f"http://127.0.0.1:{free_port()}/hook", "events": ["drift.started"]}).json()
    publish(r, alert())
    (dead,) = settled(api, sub["id"], r)
    assert dead["status"] == "dead_lettered" and len(dead["attempts"]) == 4
    assert all(a["status_code"] is None and "ConnectError" in a["error"] for a in dead["attempts"])
    assert api.post(f"/v1/webhooks/{sub['id']}/deliveries/{dead['id']}/retry").status_code == 202
    again = api.post(f"/v1/webhooks/{sub['id']}/deliveries/{dead['id']}/retry")  # still pending: not twice
    assert again.status_code == 409 and again.json()["error"]["code"] == "delivery_not_replayable"


@pytest.mark.slow
def test_a_replica_killed_mid_attempt_leaves_a_lease_that_another_replica_takes_over(
        lone_redis: EmbeddedRedis, receivers: Callable[..., Receiver]) -> None:
    """SIGKILL, not a graceful stop: the in-flight attempt is never recorded; its lease runs out and
    the next replica sends it again (the same webhook-id), so the event still arrives exactly once."""
    receiver = receivers(script=[500], hold_seconds=1.0)  # the first attempt hangs, then fails
    port = free_port()
    env = {**os.environ, "EMODRIFT_REDIS_URL": lone_redis.url, "EMODRIFT_WEBHOOK_ALLOW_PRIVATE_URLS": "true",
           "EMODRIFT_WEBHOOK_TIMEOUT_SECONDS": "2", "EMODRIFT_WEBHOOK_LEASE_MARGIN_SECONDS": "0.5",
           "EMODRIFT_WEBHOOK_POLL_INTERVAL_SECONDS": "0.02"}
    doomed = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "service.app:create_app",
                               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"], env=env)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            wait_for(lambda: _ready(http), "the doomed replica", 30)
            subscribe(http, receiver)
        event = publish(redis.Redis.from_url(lone_redis.url), alert())
        wait_for(lambda: receiver.attempts(event["id"]), "the first attempt to be in flight")
        leases = redis.Redis.from_url(lone_redis.url).zrange(keys.deliveries_due(), 0, -1, withscores=True)
    finally:
        doomed.kill()
        doomed.wait()
    heir = start_service(redis_url=lone_redis.url, **FAST)
    try:
        wait_for(lambda: receiver.successes()[event["id"]] == 1, "the lease to expire and the heir to deliver", 10)
        wait_for(lambda: unacked(redis.Redis.from_url(lone_redis.url)) == 0, "the dead replica's entry acknowledged")
    finally:
        heir.stop()
    calls = receiver.attempts()
    assert [(c.webhook_id, c.status) for c in calls] == [(event["id"], 500), (event["id"], 200)]
    # the lease runs from the claim, which comes before the receiver sees the POST (later still on a
    # loaded runner), so compare with the lease Redis holds, not with the first attempt's arrival
    [(_, lease_until)] = leases
    assert lease_until - calls[0].wall <= 2.5
    assert calls[1].wall >= lease_until  # not before the killed attempt's lease ran out


def _ready(http: httpx.Client) -> bool:
    try:
        return http.get("/readyz").status_code == 200
    except httpx.TransportError:
        return False


def test_webhooks_need_an_admin_key_once_keys_are_configured(wh_redis: EmbeddedRedis, r: redis.Redis) -> None:
    locked = start_service(redis_url=wh_redis.url, api_keys="ingest-key", admin_api_keys="admin-key", **FAST)
    try:
        with locked.client() as http:
            body = {"url": "http://127.0.0.1:9/hook", "events": ["drift.started"]}
            assert http.post("/v1/webhooks", json=body).status_code == 401
            assert http.get("/v1/webhooks", headers={"authorization": "Bearer ingest-key"}).status_code == 403
            assert http.post("/v1/webhooks", json=body, headers={"authorization": "Bearer admin-key"}).status_code == 201
    finally:
        locked.stop()
