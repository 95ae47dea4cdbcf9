"""Alerts as a resource, end to end: the real service on a real redis-server, users driven into drift
and back with observations, then listed, read, acknowledged and resolved through /v1/alerts."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import redis.asyncio as aioredis

from service import keys
from service.alerts.lifecycle import NOTE_MAX_CHARS
from service.alerts.index import AlertIndex
from service.alerts.store import CHUNK, AlertStore
from service.embedded_redis import EmbeddedRedis, free_port
from service.drift import RAISERS
from service.schemas import Alert, WebhookPayload
from service.state_store import StateStore
from tests.conftest import RunningService, start_service
from tests.test_state_store import _state
from tests.test_webhooks import FAST, OUTBOX, subscribe, wait_for
from tests.webhook_receiver import Receiver
from tests.constants import HAPPY, SAD

# 40 happy posts, a sad spell (drift.started after ~6 of them), happy again (drift.ended ~30 posts later)
EPISODE = [HAPPY] * 40 + [SAD] * 30 + [HAPPY] * 40


def observe(http: httpx.Client, user: str, moods: list[dict[str, float]], start: int = 0) -> list[dict[str, Any]]:
    """Post ``moods`` as observations of ``user``; returns the alerts they raised, in order."""
    raised = []
    for i, mood in enumerate(moods, start=start):
        response = http.post(f"/v1/users/{user}/observations", json={"post_id": f"{user}-{i}", "probabilities": mood})
        assert response.status_code == 200, response.text
        if response.json()["alert"]:
            raised.append(response.json()["alert"])
    return raised


def listing(http: httpx.Client, **params: Any) -> dict[str, Any]:
    response = http.get("/v1/alerts", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def verdicts(http: httpx.Client) -> dict[str, float]:
    text = http.get("/metrics").text
    return {m[1]: float(m[2]) for m in re.finditer(r'^emodrift_alert_verdicts_total\{verdict="(\w+)"\} (\S+)$', text, re.M)}


def verdicts_by_rule(http: httpx.Client) -> dict[tuple[str, str], float]:
    text = http.get("/metrics").text
    pattern = r'^emodrift_alert_verdicts_by_rule_total\{rule="(\w+)",verdict="(\w+)"\} (\S+)$'
    return {(m[1], m[2]): float(m[3]) for m in re.finditer(pattern, text, re.M)}


def test_an_alert_is_recorded_listed_and_judged(client: httpx.Client) -> None:
    started, ended = observe(client, "ann", EPISODE)
    assert (started["type"], ended["type"]) == ("drift.started", "drift.ended")
    for alert in (started, ended):  # the post's answer carries the alert as the API lists it
        Alert.model_validate(alert)
        assert alert["status"] == "open" and alert["backfill"] is False and alert["verdict"] is None
        assert client.get(f"/v1/alerts/{alert['id']}").json() == alert
    assert [a["id"] for a in listing(client)["alerts"]] == [ended["id"], started["id"]]  # newest first

    assert started["raised_by"] and set(started["raised_by"]) <= {"fast", "evidence", "share"}
    assert ended["raised_by"] is None
    # a receiver pairs an end with its start without a lookup (it had to list the user's alerts: an audit)
    assert started["started_id"] is None and ended["started_id"] == started["id"]
    before, before_by_rule = verdicts(client), verdicts_by_rule(client)
    # every raiser's series from 0, a promoted model's too (it raises drift.started: transition.py)
    assert {rule for rule, _ in before_by_rule} == set(RAISERS)
    seen = client.post(f"/v1/alerts/{started['id']}/acknowledge")
    assert seen.status_code == 200 and seen.json()["status"] == "acknowledged" and seen.json()["acknowledged_at"]
    assert client.post(f"/v1/alerts/{started['id']}/acknowledge").json() == seen.json()  # idempotent
    judged = client.post(f"/v1/alerts/{started['id']}/resolve", json={"verdict": "false_alarm", "note": "a costume party"})
    assert judged.status_code == 200, judged.text
    body = judged.json()
    assert (body["status"], body["verdict"], body["note"]) == ("resolved", "false_alarm", "a costume party")
    assert body["resolved_at"] >= body["acknowledged_at"] >= body["created_at"]
    assert {k: v for k, v in body.items() if k not in ("status", "acknowledged_at", "resolved_at", "verdict", "note")} \
        == {k: v for k, v in started.items() if k not in ("status", "acknowledged_at", "resolved_at", "verdict", "note")}
    # a retry of the same judgment changes nothing; another judgment is a conflict
    again = client.post(f"/v1/alerts/{started['id']}/resolve", json={"verdict": "false_alarm", "note": "a costume party"})
    assert again.status_code == 200 and again.json() == body
    for path, payload in (("resolve", {"verdict": "confirmed"}), ("acknowledge", None)):
        refused = client.post(f"/v1/alerts/{started['id']}/{path}", json=payload)
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "alert_resolved"
    # the same verdict with another note, or none: the message named the verdict that was sent as the conflict
    for payload in ({"verdict": "false_alarm", "note": "a birthday"}, {"verdict": "false_alarm"}):
        refused = client.post(f"/v1/alerts/{started['id']}/resolve", json=payload)
        message = refused.json()["error"]["message"]
        assert refused.status_code == 409 and "another note" in message and "'a costume party'" in message, message
    after = verdicts(client)
    assert after.get("false_alarm", 0) - before.get("false_alarm", 0) == 1  # counted once, not per retry
    # and once for each rule that raised it: which rule's alarms people find false
    by_rule = verdicts_by_rule(client)
    assert {k: v - before_by_rule.get(k, 0) for k, v in by_rule.items() if v != before_by_rule.get(k, 0)} \
        == {(rule, "false_alarm"): 1 for rule in started["raised_by"]}
    assert client.get(f"/v1/alerts/{started['id']}").json() == body

    # a misclicked verdict is mended by naming the judgment it replaces (it could not be: an outside
    # review); that one stays on record, and the metrics count the change, not a second verdict
    # every change's series exists before its first change, from 0 (increase() misses a first 1); metrics are
    # process-wide, so another test's amendments in this process may have moved it: read, not assumed 0
    series = r'^emodrift_alert_verdict_amendments_total\{from_verdict="false_alarm",to_verdict="confirmed"\} (\S+)$'
    primed = re.search(series, client.get("/metrics").text, re.M)
    assert primed is not None
    amended = client.post(f"/v1/alerts/{started['id']}/resolve",
                          json={"verdict": "confirmed", "note": "misclicked", "replaces": body["resolved_at"]})
    assert amended.status_code == 200, amended.text
    mended = amended.json()
    assert (mended["verdict"], mended["note"]) == ("confirmed", "misclicked")
    assert [(j["verdict"], j["note"], j["resolved_at"]) for j in mended["amended"]] == \
        [("false_alarm", "a costume party", body["resolved_at"])]
    assert verdicts(client) == after
    counted = re.search(series, client.get("/metrics").text, re.M)
    assert counted is not None and float(counted[1]) == float(primed[1]) + 1
    refused = client.post(f"/v1/alerts/{started['id']}/resolve", json={"verdict": "not_actionable"})
    assert refused.status_code == 409 and mended["resolved_at"] in refused.json()["error"]["details"]["to_change"]
    # a change from a page shown before this one (another reviewer's, or a retry) is refused, not applied unseen
    stale = client.post(f"/v1/alerts/{started['id']}/resolve",
                        json={"verdict": "not_actionable", "replaces": body["resolved_at"]})
    assert stale.status_code == 409 and "judged again since: now confirmed" in stale.json()["error"]["message"]
    assert stale.json()["error"]["details"]["resolved_at"] == mended["resolved_at"]  # what to name, to a program
    garbage = client.post(f"/v1/alerts/{started['id']}/resolve", json={"verdict": "not_actionable", "replaces": "x"})
    assert garbage.status_code == 409 and "has no judgment of that resolved_at" in garbage.json()["error"]["message"]
    again = client.post(f"/v1/alerts/{started['id']}/resolve",  # the same change again: a retry, unchanged
                        json={"verdict": "confirmed", "note": "misclicked", "replaces": body["resolved_at"]})
    assert again.status_code == 200 and again.json() == mended
    # past the bound on the history, the first judgment stays: who judged first is never pushed out
    current = mended
    for n in range(12):
        current = client.post(f"/v1/alerts/{started['id']}/resolve", json={
            "verdict": "confirmed", "note": f"change {n}", "replaces": current["resolved_at"]}).json()
    assert len(current["amended"]) == 10 and current["amended"][0]["verdict"] == "false_alarm"
    assert current["amended"][-1]["note"] == "change 10"
    by_rule = verdicts_by_rule(client)

    # the ended alert is resolved straight from open, without being acknowledged
    direct = client.post(f"/v1/alerts/{ended['id']}/resolve", json={"verdict": "confirmed"}).json()
    assert direct["status"] == "resolved" and direct["acknowledged_at"] is None and direct["note"] is None
    assert client.get("/v1/users/ann").json()["last_alert"] == direct  # the user's view follows the alert
    assert verdicts_by_rule(client) == by_rule  # a drift.ended alert was raised by no rule


def test_listing_filters_and_pages_newest_first(client: httpx.Client) -> None:
    raised = {user: observe(client, user, EPISODE[:60]) for user in ("bo", "cy", "di")}
    assert all(len(alerts) == 1 for alerts in raised.values())
    observe(client, "bo", EPISODE[60:], start=60)  # bo recovers: a drift.ended
    everything = listing(client, limit=200)
    assert everything["next_cursor"] is None and len(everything["alerts"]) == 4
    ordered = [a["created_at"] for a in everything["alerts"]]
    assert ordered == sorted(ordered, reverse=True)

    pages, cursor = [], None
    while True:  # one at a time: the cursors walk the same list, nothing twice, nothing lost
        page = listing(client, limit=1, **({"cursor": cursor} if cursor else {}))
        pages += page["alerts"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [a["id"] for a in pages] == [a["id"] for a in everything["alerts"]]

    client.post(f"/v1/alerts/{raised['cy'][0]['id']}/resolve", json={"verdict": "confirmed"})
    client.post(f"/v1/alerts/{raised['di'][0]['id']}/acknowledge")
    ids = lambda **params: [a["id"] for a in listing(client, **params)["alerts"]]  # noqa: E731
    assert ids(status="resolved") == [raised["cy"][0]["id"]]
    assert ids(status="acknowledged") == [raised["di"][0]["id"]]
    assert set(ids(status="open")) == {raised["bo"][0]["id"], everything["alerts"][0]["id"]}
    assert [a["user_id"] for a in listing(client, user_id="bo")["alerts"]] == ["bo", "bo"]
    assert [a["type"] for a in listing(client, user_id="bo")["alerts"]] == ["drift.ended", "drift.started"]
    assert [a["user_id"] for a in listing(client, type="drift.ended")["alerts"]] == ["bo"]
    assert ids(user_id="bo", status="open", type="drift.started") == [raised["bo"][0]["id"]]
    assert listing(client, user_id="nobody") == {"alerts": [], "next_cursor": None}


def test_bad_requests_get_clear_errors(client: httpx.Client) -> None:
    (alert,) = observe(client, "eve", EPISODE[:60])
    cases = [
        (client.get("/v1/alerts", params={"status": "closed"}), 422, "validation_error"),
        (client.get("/v1/alerts", params={"limit": 0}), 422, "validation_error"),
        (client.get("/v1/alerts", params={"cursor": "not a cursor"}), 400, "bad_request"),
        (client.get("/v1/alerts", params={"user_id": "no spaces"}), 400, "invalid_id"),
        (client.get("/v1/alerts/evt_missing"), 404, "alert_not_found"),
        (client.post("/v1/alerts/evt_missing/acknowledge"), 404, "alert_not_found"),
        (client.post(f"/v1/alerts/{alert['id']}/resolve", json={"verdict": "maybe"}), 422, "validation_error"),
        (client.post(f"/v1/alerts/{alert['id']}/resolve", json={"verdict": "confirmed", "note": "x" * 2001}),
         422, "validation_error"),
        (client.post(f"/v1/alerts/{alert['id']}/resolve", json={"verdict": "confirmed", "by": "me"}), 422,
         "validation_error"),
    ]
    for response, status, code in cases:
        assert response.status_code == status and response.json()["error"]["code"] == code, response.text
    assert client.get(f"/v1/alerts/{alert['id']}").json() == alert  # nothing refused changed it


def test_a_notes_line_breaks_are_stored_as_lf_and_counted_as_one(client: httpx.Client) -> None:
    """A browser sends a textarea's line breaks as CRLF, and its maxlength counts each as one character:
    a note that filled the field is NOTE_MAX_CHARS long once its breaks are LF, as it is stored."""
    first, second = observe(client, "lin", EPISODE)
    lines = ("x" * 99 + "\r\n") * 19 + "x" * 100  # 2000 characters with LF breaks, 2019 with CRLF
    judged = client.post(f"/v1/alerts/{first['id']}/resolve", json={"verdict": "confirmed", "note": lines})
    assert judged.status_code == 200, judged.text
    assert judged.json()["note"] == lines.replace("\r\n", "\n") and len(judged.json()["note"]) == NOTE_MAX_CHARS
    # the same judgment with LF breaks is the same note: a retry, not a conflict
    again = client.post(f"/v1/alerts/{first['id']}/resolve",
                        json={"verdict": "confirmed", "note": lines.replace("\r\n", "\n")})
    assert again.status_code == 200 and again.json() == judged.json()
    lone = client.post(f"/v1/alerts/{second['id']}/resolve", json={"verdict": "confirmed", "note": "a\rb\r\nc"})
    assert lone.status_code == 200 and lone.json()["note"] == "a\nb\nc"
    assert client.get(f"/v1/alerts/{second['id']}").json()["note"] == "a\nb\nc"


def test_erasing_a_user_erases_their_alerts(client: httpx.Client, redis_client: redis.Redis) -> None:
    alerts = observe(client, "fay", EPISODE) + observe(client, "gus", EPISODE[:60])
    assert client.delete("/v1/users/fay").status_code == 204
    for alert in alerts[:2]:
        assert client.get(f"/v1/alerts/{alert['id']}").status_code == 404
    assert [a["id"] for a in listing(client)["alerts"]] == [alerts[2]["id"]]
    assert listing(client, user_id="fay")["alerts"] == []
    listed = [m for status in ("open", "acknowledged", "resolved")
              for m in redis_client.zrange(keys.alerts_by_status(status), 0, -1)]
    blob = b" ".join(redis_client.keys("*") + redis_client.zrange(keys.alerts_by_time(), 0, -1) + listed
                     + [b"%s=%s" % kv for kv in redis_client.hgetall(keys.alert_owners()).items()])
    assert b"fay" not in blob and all(a["id"].encode() not in blob for a in alerts[:2])


def test_alerts_follow_the_user_retention(client: httpx.Client, redis_client: redis.Redis,
                                          service: RunningService) -> None:
    (alert,) = observe(client, "hal", EPISODE[:60])
    retention = service.settings.user_retention_seconds
    assert retention - 5 <= redis_client.ttl(keys.alerts("hal")) <= retention
    assert abs(redis_client.ttl(keys.alerts("hal")) - redis_client.ttl(keys.state("hal"))) <= 1
    # the user's keys expire (made to happen now): the alert is gone, and the listing forgets it
    for key in redis_client.keys("ed:{hal}:*"):
        redis_client.pexpire(key, 1)
    deadline = time.monotonic() + 2
    while redis_client.exists(keys.alerts("hal")) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.get(f"/v1/alerts/{alert['id']}").status_code == 404
    assert listing(client)["alerts"] == []
    assert redis_client.zcard(keys.alerts_by_time()) == 0 and not redis_client.hexists(keys.alert_owners(), alert["id"])


def test_a_stale_status_hint_is_repaired_by_the_listing(client: httpx.Client, redis_client: redis.Redis) -> None:
    (alert,) = observe(client, "ida", EPISODE[:60])
    client.post(f"/v1/alerts/{alert['id']}/resolve", json={"verdict": "not_actionable"})
    # a replica died between the record's compare-and-set and the move between status sets
    score = redis_client.zscore(keys.alerts_by_status("resolved"), alert["id"])
    redis_client.zadd(keys.alerts_by_status("open"), {alert["id"]: score})
    assert listing(client, status="open")["alerts"] == []  # the record is the truth
    assert redis_client.zscore(keys.alerts_by_status("open"), alert["id"]) is None
    assert [a["id"] for a in listing(client, status="resolved")["alerts"]] == [alert["id"]]


# --- the store, against Redis directly ----------------------------------------------------------
def _event(n: int, created_at: str) -> dict[str, Any]:
    return {"id": f"evt_{n}", "type": "drift.started", "status": "open", "created_at": created_at, "n": n}


def _stores(client: aioredis.Redis, alerts_per_user: int, outbox_maxlen: int = 1000) -> tuple[StateStore, AlertStore]:
    store = StateStore(client, outbox="ed:test-outbox", outbox_maxlen=outbox_maxlen, timeline_length=10,
                       idempotency_ttl=3600, alerts_per_user=alerts_per_user)
    return store, AlertStore(client, store.relay.alerts)


def test_an_alert_is_written_with_its_step_or_not_at_all(redis_server: EmbeddedRedis, redis_client: redis.Redis) -> None:
    async def body() -> None:
        client = aioredis.Redis.from_url(redis_server.url)
        store, alerts = _stores(client, 2)
        try:
            ok = await store.advance("u", "p1", 0, _state(), {"n": 1}, _event(1, "2026-11-30T10:00:01.000000Z"), 1.0)
            assert ok.outcome == "ok" and (await alerts.get("evt_1"))["n"] == 1
            # a refused step (stale version) and a repeated post id write no alert
            stale = await store.advance("u", "p2", 0, _state(), {"n": 2}, _event(2, "2026-11-30T10:00:02.000000Z"), 2.0)
            dup = await store.advance("u", "p1", 1, _state(), {"n": 3}, _event(3, "2026-11-30T10:00:03.000000Z"), 3.0)
            assert (stale.outcome, dup.outcome) == ("conflict", "duplicate")
            assert await alerts.ids_of("u") == ["evt_1"] and not redis_client.hexists(keys.alerts("u"), "evt_2")
            # past alerts_per_user the oldest goes, from the user's hash and from the listing
            for n in (4, 5):
                await store.advance("u", f"p{n}", n - 3, _state(), {"n": n}, _event(n, f"2026-11-30T10:00:0{n}.000000Z"),
                                    float(n))
            assert await alerts.ids_of("u") == ["evt_5", "evt_4"]
            found, cursor = await alerts.list()
            assert [a["id"] for a in found] == ["evt_5", "evt_4"] and cursor is None
            assert (await store.last_alert("u"))["id"] == "evt_5"
        finally:
            await client.aclose()

    asyncio.run(body())


def test_a_verdict_racing_the_erasure_does_not_list_the_alert_again(redis_server: EmbeddedRedis,
                                                                   redis_client: redis.Redis) -> None:
    """A verdict is a compare-and-set on the user's record, then a move between the status sets. An erasure
    unlisting the alert between the two had the move add it back: an audit saw 1 of 25 races leave the id
    in the resolved list after the 204. The move lists an alert only while the owners' hash holds it."""
    async def body() -> None:
        client = aioredis.Redis.from_url(redis_server.url)
        index = AlertIndex(client, retention_seconds=3600)
        try:
            async with client.pipeline(transaction=False) as pipe:
                AlertIndex.add(pipe, "w", {"id": "evt_1", "created_at": "2026-11-30T10:00:01Z", "status": "open"})
                await pipe.execute()
            await index.move("evt_1", 1.0, "acknowledged")
            assert await client.zscore(keys.alerts_by_status("acknowledged"), "evt_1") == 1.0
            await index.remove(["evt_1"])  # the erasure, between the verdict's write and its move
            await index.move("evt_1", 1.0, "resolved")
            for status in ("open", "acknowledged", "resolved"):
                assert await client.zscore(keys.alerts_by_status(status), "evt_1") is None, status
        finally:
            await client.aclose()

    asyncio.run(body())


def test_alerts_older_than_the_retention_are_dropped(redis_server: EmbeddedRedis, redis_client: redis.Redis) -> None:
    async def body() -> None:
        client = aioredis.Redis.from_url(redis_server.url)
        store = StateStore(client, outbox="ed:test-outbox", outbox_maxlen=1000, timeline_length=10,
                           idempotency_ttl=3600, retention_seconds=3600)
        try:
            # an alert recorded two hours ago by a user who kept posting since
            await store.advance("v", "p1", 0, _state(), {}, _event(1, "1970-01-01T00:00:01.000000Z"), 1.0)
            await store.advance("v", "p2", 1, _state(), {}, _event(2, "1970-01-01T02:00:01.000000Z"), 7201.0)
            assert [a for a in (await client.hgetall(keys.alerts("v"))) if a.startswith(b"evt_")] == [b"evt_2"]
            assert await client.zrange(keys.alerts_by_time(), 0, -1) == []  # both older than an hour before now
        finally:
            await client.aclose()

    asyncio.run(body())


# --- who may read and who may judge --------------------------------------------------------------
@pytest.fixture
def keyed(redis_server: EmbeddedRedis, redis_client: redis.Redis) -> Iterator[RunningService]:
    running = start_service(redis_url=redis_server.url, data_dir=Path("/nonexistent"), api_keys=["ingest-key"],
                            admin_api_keys=["admin-key"])
    yield running
    running.stop()


def test_any_key_reads_alerts_and_only_an_admin_key_judges_them(keyed: RunningService) -> None:
    with keyed.client(headers={"Authorization": "Bearer ingest-key"}) as ingest, \
            keyed.client(headers={"Authorization": "Bearer admin-key"}) as admin, keyed.client() as anonymous:
        (alert,) = observe(ingest, "jo", EPISODE[:60])
        assert anonymous.get("/v1/alerts").status_code == 401
        assert ingest.get("/v1/alerts").json()["alerts"][0]["id"] == alert["id"]
        assert ingest.get(f"/v1/alerts/{alert['id']}").status_code == 200
        for path, payload in (("acknowledge", None), ("resolve", {"verdict": "confirmed"})):
            refused = ingest.post(f"/v1/alerts/{alert['id']}/{path}", json=payload)
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
        assert admin.post(f"/v1/alerts/{alert['id']}/resolve", json={"verdict": "confirmed"}).json()["verdict"] == "confirmed"


# --- quiet backfill ------------------------------------------------------------------------------
def test_a_backfill_records_alerts_and_sends_no_webhook(tmp_path: Path) -> None:
    own = EmbeddedRedis(tmp_path, port=free_port()).start()  # no other service's dispatcher reads it
    r = redis.Redis.from_url(own.url)
    receiver = Receiver().start()
    svc = start_service(redis_url=own.url, **FAST)
    try:
        with svc.client() as api:
            subscribe(api, receiver)

            def batch(user: str, backfill: bool | None) -> list[dict[str, Any]]:
                items = [{"user_id": user, "post_id": f"{user}-{i}", "probabilities": mood,
                          "created_at": f"2026-0{1 + i // 28}-{1 + i % 28:02d}T12:00:00Z"} for i, mood in enumerate(EPISODE)]
                body: dict[str, Any] = {"items": items} if backfill is None else {"items": items, "backfill": backfill}
                response = api.post("/v1/posts/batch", json=body)
                assert response.status_code == 200, response.text
                return [result["alert"] for result in response.json()["results"] if result["alert"]]

            history = batch("old", backfill=True)
            assert [(a["type"], a["backfill"]) for a in history] == [("drift.started", True), ("drift.ended", True)]
            assert listing(api, user_id="old")["alerts"] == history[::-1]  # listed, newest first
            assert api.get("/v1/users/old").json()["drift"]["posts_seen"] == len(EPISODE)  # state advanced
            assert r.xlen(OUTBOX) == 0, "a backfill wrote no outbox entry"

            live = batch("new", backfill=None) + batch("now", backfill=False)
            assert [a["backfill"] for a in live] == [False] * 4
            wait_for(lambda: set(receiver.successes()) == {a["id"] for a in live}, "the four live alerts delivered")
            time.sleep(0.5)  # retries here are tens of ms apart: a backfilled alert would have come by now
            assert set(receiver.successes()) == {a["id"] for a in live}
            for delivery in receiver.received:  # the payload is the Alert the API lists
                payload = WebhookPayload.model_validate(delivery.json())
                assert payload.data.id == delivery.webhook_id
                assert delivery.json()["data"] == api.get(f"/v1/alerts/{delivery.webhook_id}").json()
            # reviewers can tell history from live alerts (an audit: 130 backfilled alerts, all open, sat on
            # top of the queue with no filter), and a misspelt filter is a 422, not an unfiltered 200
            listed = {flag: {a["id"] for a in api.get("/v1/alerts", params={"backfill": flag}).json()["alerts"]}
                      for flag in ("true", "false")}
            assert listed == {"true": {a["id"] for a in history}, "false": {a["id"] for a in live}}, listed
            typo = api.get("/v1/alerts", params={"backfil": "false"})
            assert typo.status_code == 422 and typo.json()["error"]["code"] == "validation_error", typo.text
            assert "backfil" in typo.json()["error"]["message"]
            twice = api.get("/v1/alerts?backfill=true&backfill=false")  # the last one won
            assert twice.status_code == 422 and "given more than once" in twice.json()["error"]["message"], twice.text
            refused = api.post("/v1/posts/batch", json={"items": [], "backfill": "yes"})
            assert refused.status_code == 422
            refused = api.post("/v1/posts/batch", json={"items": [{"user_id": "x", "post_id": "x", "probabilities": HAPPY}],
                                                        "backfill": "yes"})
            assert refused.status_code == 422 and "backfill" in refused.json()["error"]["message"]
    finally:
        svc.stop()
        receiver.stop()
        r.close()
        own.stop()


def test_the_openapi_schema_types_alerts_and_documents_the_webhooks(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    assert schema["openapi"].startswith("3.1")
    alert_ref = "#/components/schemas/Alert"
    for event in ("drift.started", "drift.ended"):
        body = schema["webhooks"][event]["post"]["requestBody"]["content"]["application/json"]["schema"]
        payload = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
        assert payload["properties"]["data"]["$ref"] == alert_ref
        assert {p["name"] for p in schema["webhooks"][event]["post"]["parameters"]} == {
            "webhook-id", "webhook-timestamp", "webhook-signature"}
    alert = schema["components"]["schemas"]["Alert"]
    assert {"id", "type", "user_id", "status", "created_at", "backfill", "evidence", "verdict", "note",
            "resolved_at"} <= set(alert["properties"])
    post_result = schema["components"]["schemas"]["PostResult"]["properties"]["alert"]
    assert {"$ref": alert_ref} in post_result["anyOf"]
    listed = schema["paths"]["/v1/alerts"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["components"]["schemas"][listed["$ref"].rsplit("/", 1)[-1]]["properties"]["alerts"]["items"] == {
        "$ref": alert_ref}



def test_every_listed_alert_is_reached_by_its_cursors_whatever_the_listing_unlists(
        redis_server: EmbeddedRedis, redis_client: redis.Redis) -> None:
    """A listing unlists entries whose record is gone (erased, expired, trimmed past alerts_per_user) and
    moves stale status hints as it reads them: the next page, and the check for one, must not step over
    what that left. The newest entries are the unlisted ones, so that a page's first chunk from Redis
    (``CHUNK``) holds them; pairs of alerts share a created_at, so pages also end inside ties."""
    async def walk(alerts: AlertStore, status: str | None) -> list[str]:
        seen: list[str] = []
        cursor = None
        while True:
            found, cursor = await alerts.list(status=status, limit=CHUNK // 2, cursor=cursor)
            seen += [a["id"] for a in found]
            if cursor is None:
                return seen

    async def body() -> None:
        client = aioredis.Redis.from_url(redis_server.url)
        store, alerts = _stores(client, 5)

        async def raise_alerts(numbers: range) -> list[str]:
            for n in numbers:
                created = f"2026-11-30T10:{n // 120:02d}:{n // 2 % 60:02d}.000000Z"  # newer as n grows
                assert (await store.advance(f"u{n}", "p1", 0, _state(), {"n": n}, _event(n, created), 1.0)).outcome == "ok"
            return [f"evt_{n}" for n in reversed(numbers)]

        try:
            # records gone: a first chunk of half gone, half live fills a page exactly at its end
            live = await raise_alerts(range(0, CHUNK - CHUNK // 2 + 20))
            gone = await raise_alerts(range(CHUNK - CHUNK // 2 + 20, CHUNK + 20))
            for alert_id in gone:
                redis_client.hdel(keys.alerts(f"u{alert_id[4:]}"), alert_id)
            assert await walk(alerts, None) == live
            redis_client.flushdb()
            # stale hints: resolved alerts still listed as open fill most of the first chunk
            older = await raise_alerts(range(0, CHUNK + 20))
            stale = await raise_alerts(range(CHUNK + 20, 2 * CHUNK))
            newest = await raise_alerts(range(2 * CHUNK, 2 * CHUNK + 20))
            for alert_id in stale:  # resolved, but a replica died before moving its status hint
                await alerts.resolve(alert_id, "not_actionable", None)
                score = redis_client.zscore(keys.alerts_by_status("resolved"), alert_id)
                redis_client.zadd(keys.alerts_by_status("open"), {alert_id: score})
            assert await walk(alerts, "open") == newest + older
            assert await walk(alerts, "resolved") == stale
        finally:
            await client.aclose()

    asyncio.run(body())


def test_each_end_of_an_episode_finds_the_other_among_more_alerts_than_a_page(
        redis_server: EmbeddedRedis, redis_client: redis.Redis) -> None:
    """The /ui page links an episode's two alerts. Looking among the user's newest 200 alerts only, a re-audit
    with 205 kept saw five pages link another episode's end, or say a kept start was gone."""
    from service.alerts.store import MAX_LIMIT

    episodes = MAX_LIMIT // 2 + 30  # more alerts than a page, and page edges inside episodes

    def event(n: int) -> dict[str, Any]:  # alert n: starts on even n, ends on odd; post 10 n
        return {**_event(n, f"2026-11-30T{10 + n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}.000000Z"),
                "type": "drift.ended" if n % 2 else "drift.started", "posts_seen": 10 * n, "user_id": "many"}

    async def body() -> None:
        client = aioredis.Redis.from_url(redis_server.url)
        store, alerts = _stores(client, 10_000, outbox_maxlen=10_000)
        try:
            for n in range(2 * episodes + 1):  # the last episode still open
                assert (await store.advance("many", f"p{n}", n, _state(), {"n": n}, event(n), float(n))).outcome == "ok"
            for n in (0, 1, 2 * episodes - MAX_LIMIT - 1, 2 * episodes - MAX_LIMIT, 2 * episodes - 1, 2 * episodes):
                other = await alerts.other_end(await alerts.get(f"evt_{n}"))
                expected = None if n == 2 * episodes else (f"evt_{n + 1}" if n % 2 == 0 else f"evt_{n - 1}")
                assert (other or {}).get("id") == expected, n
        finally:
            await client.aclose()

    asyncio.run(body())


def test_a_note_outlasts_changes_of_verdict_without_one(client: httpx.Client) -> None:
    """Ten changes of verdict pushed another reviewer's escalation note out of the record, unsaid (a re-audit)."""
    started, _ = observe(client, "noted", EPISODE)
    path = f"/v1/alerts/{started['id']}/resolve"
    judged = client.post(path, json={"verdict": "false_alarm", "note": "first look: fine"}).json()
    judged = client.post(path, json={"verdict": "confirmed", "note": "ESCALATE", "replaces": judged["resolved_at"]}).json()
    for i in range(12):
        verdict = ("false_alarm", "not_actionable")[i % 2]
        judged = client.post(path, json={"verdict": verdict, "replaces": judged["resolved_at"]}).json()
        assert judged["verdict"] == verdict, judged
    notes = [j["note"] for j in judged["amended"]]
    assert len(notes) == 10 and notes[:2] == ["first look: fine", "ESCALATE"], notes
    assert judged["amended_dropped"] == 3  # 13 judgments replaced: the first, the note and the newest 8 kept
