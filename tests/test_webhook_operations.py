"""Operating webhooks: rotate a secret (both signatures during the grace period), enable a disabled
subscription again, send a test event, count the last failed attempt as a failure, and keep receiver
URLs (their paths and queries often hold tokens) out of the logs.

Signatures are checked with the official Standard Webhooks library and Svix's, as receivers do, on
deliveries a real receiver on 127.0.0.1 got from the real service.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis
import standardwebhooks
import svix.webhooks

from service import keys
from service.webhooks.events import WebhookTestEvent
from tests.test_webhooks import (  # noqa: F401 - fixtures
    OUTBOX, alert, api, publish, r, receivers, settled, subscribe, wait_for, wh_redis, wh_service,
)
from tests.webhook_receiver import Receiver, Received


def headers_of(got: Received) -> dict[str, str]:
    return {"webhook-id": got.webhook_id, "webhook-timestamp": str(got.timestamp), "webhook-signature": got.signature}


def verifies(secret: str, got: Received) -> bool:
    """Both official libraries agree on whether ``secret`` signed this delivery."""
    results = []
    for verifier, error in ((standardwebhooks.Webhook, standardwebhooks.WebhookVerificationError),
                            (svix.webhooks.Webhook, svix.webhooks.WebhookVerificationError)):
        try:
            verifier(secret).verify(got.body, headers_of(got))
            results.append(True)
        except error:
            results.append(False)
    assert results[0] == results[1], f"standardwebhooks and svix disagree: {results}"
    return results[0]


def counter(api: httpx.Client, name: str, labels: str) -> float:
    match = re.search(rf"^{name}\{{{re.escape(labels)}\}} (\S+)$", api.get("/metrics").text, re.M)
    return float(match.group(1)) if match else 0.0


def test_a_rotated_secret_signs_beside_the_old_one_until_the_grace_period_ends(
        api: httpx.Client, r: redis.Redis, receivers: Callable[..., Receiver]) -> None:
    receiver = receivers()
    sub = subscribe(api, receiver)
    old = receiver.secret
    rotated = api.post(f"/v1/webhooks/{sub['id']}/rotate-secret", json={"grace_seconds": 3600})
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new.startswith("whsec_") and new != old and rotated.json()["previous_secret_expires_at"]
    view = api.get(f"/v1/webhooks/{sub['id']}").json()
    assert "secret" not in view and view["previous_secret_expires_at"] == rotated.json()["previous_secret_expires_at"]

    receiver.secret = new  # the test receiver accepts a delivery when any signature matches its secret
    event = publish(r, alert())
    wait_for(lambda: receiver.successes()[event["id"]], "the delivery after the rotation")
    (got,) = receiver.attempts()
    assert len(got.signature.split()) == 2
    assert verifies(old, got) and verifies(new, got)  # receivers on either secret accept it
    assert json.loads(got.body)["data"]["id"] == event["id"]

    # a rotation without a grace period: only the newest secret signs from now on
    chosen = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    again = api.post(f"/v1/webhooks/{sub['id']}/rotate-secret", json={"secret": chosen, "grace_seconds": 0})
    assert again.status_code == 200 and again.json()["secret"] == chosen
    assert again.json()["previous_secret_expires_at"] is None
    receiver.secret = chosen
    second = publish(r, alert("drift.ended"))
    wait_for(lambda: receiver.successes()[second["id"]], "the delivery after the second rotation")
    latest = receiver.attempts(second["id"])[0]
    assert len(latest.signature.split()) == 1
    assert verifies(chosen, latest) and not verifies(new, latest) and not verifies(old, latest)

    bad = api.post(f"/v1/webhooks/{sub['id']}/rotate-secret", json={"secret": "not-a-secret"})
    assert bad.status_code == 422
    missing = api.post("/v1/webhooks/wh_nope/rotate-secret")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "webhook_not_found"
    default_grace = api.post(f"/v1/webhooks/{sub['id']}/rotate-secret")  # no body: a generated secret, default grace
    assert default_grace.status_code == 200 and default_grace.json()["previous_secret_expires_at"]


def test_a_second_rotation_keeps_every_secret_inside_its_grace_period(
        api: httpx.Client, r: redis.Redis, receivers: Callable[..., Receiver]) -> None:
    """A rotation retried after a timeout rotates twice: the receiver may still hold the original secret,
    whose grace period has not ended, so it must keep signing beside both new ones."""
    receiver = receivers()
    sub = subscribe(api, receiver)
    original = receiver.secret
    first = api.post(f"/v1/webhooks/{sub['id']}/rotate-secret").json()["secret"]
    second = api.post(f"/v1/webhooks/{sub['id']}/rotate-secret").json()  # the retry
    receiver.secret = original  # the receiver never saw either answer
    event = publish(r, alert())
    wait_for(lambda: receiver.successes()[event["id"]], "a delivery the original secret verifies")
    (got,) = receiver.attempts(event["id"])
    assert len(got.signature.split()) == 3
    assert all(verifies(secret, got) for secret in (original, first, second["secret"]))
    assert second["previous_secret_expires_at"]

    # the same explicit secret twice is one rotation's worth of signatures, never a duplicate
    chosen = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    for _ in range(2):
        assert api.post(f"/v1/webhooks/{sub['id']}/rotate-secret", json={"secret": chosen}).status_code == 200
    # bounded: the newest four previous secrets sign beside the current one, the oldest goes
    for _ in range(2):
        api.post(f"/v1/webhooks/{sub['id']}/rotate-secret")
    receiver.secret = chosen
    later = publish(r, alert("drift.ended"))
    wait_for(lambda: receiver.successes()[later["id"]], "a delivery after six rotations")
    (signed,) = receiver.attempts(later["id"])
    signatures = signed.signature.split()
    assert len(signatures) == len(set(signatures)) == 5
    assert all(verifies(secret, signed) for secret in (first, second["secret"], chosen))
    assert not verifies(original, signed)
    # a rotation without grace stops every previous secret at once (a leaked one)
    api.post(f"/v1/webhooks/{sub['id']}/rotate-secret", json={"grace_seconds": 0})
    assert api.get(f"/v1/webhooks/{sub['id']}").json()["previous_secret_expires_at"] is None
    assert not r.hexists(keys.webhook(sub["id"]), "previous_secrets")  # none kept, not kept expired

    # a subscription rotated by the previous release kept one previous secret in two fields: still honoured
    r.hset(keys.webhook(sub["id"]), mapping={"previous_secret": original, "previous_secret_until": repr(time.time() + 60)})
    assert api.get(f"/v1/webhooks/{sub['id']}").json()["previous_secret_expires_at"]
    api.post(f"/v1/webhooks/{sub['id']}/rotate-secret")
    receiver.secret = original
    third = publish(r, alert())
    wait_for(lambda: receiver.successes()[third["id"]], "a delivery the legacy previous secret verifies")
    assert len(receiver.attempts(third["id"])[0].signature.split()) == 3


def test_a_subscription_disabled_by_410_is_enabled_again(
        api: httpx.Client, r: redis.Redis, receivers: Callable[..., Receiver]) -> None:
    receiver = receivers(default=410)
    sub = subscribe(api, receiver)
    publish(r, alert())
    settled(api, sub["id"], r)
    assert api.get(f"/v1/webhooks/{sub['id']}").json()["status"] == "disabled"
    refused = api.post(f"/v1/webhooks/{sub['id']}/test")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "webhook_disabled"

    # an alert raised while it is disabled is not sent, nor lost: its delivery is logged as cancelled
    # and the outbox entry acknowledged; once enabled, a replay sends it (at least once)
    missed = publish(r, alert(user="while-disabled"))
    newest = settled(api, sub["id"], r, count=2)[0]
    assert (newest["webhook_id"], newest["status"]) == (missed["id"], "cancelled")
    assert "subscription disabled" in newest["reason"] and newest["attempts"] == []
    assert missed["id"] not in {got.webhook_id for got in receiver.attempts()}
    too_early = api.post(f"/v1/webhooks/{sub['id']}/deliveries/{newest['id']}/retry")
    assert too_early.status_code == 409 and too_early.json()["error"]["code"] == "delivery_not_replayable"

    receiver.set(default=200)
    enabled = api.post(f"/v1/webhooks/{sub['id']}/enable")
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["status"] == "enabled" and enabled.json()["disabled_reason"] is None
    assert api.post(f"/v1/webhooks/{sub['id']}/deliveries/{newest['id']}/retry").status_code == 202
    wait_for(lambda: receiver.successes()[missed["id"]], "the missed alert, replayed after enabling")
    (got,) = [c for c in receiver.attempts() if c.webhook_id == missed["id"]]
    assert got.verified and got.json()["data"]["user_id"] == "while-disabled"
    event = publish(r, alert())
    wait_for(lambda: receiver.successes()[event["id"]], "a delivery after enabling")
    assert api.post("/v1/webhooks/wh_nope/enable").status_code == 404


def test_a_test_event_reaches_only_that_subscription_signed(
        api: httpx.Client, r: redis.Redis, receivers: Callable[..., Receiver], wh_service: Any) -> None:
    receiver, other = receivers(), receivers()
    sub = subscribe(api, receiver)
    subscribe(api, other)
    sent = api.post(f"/v1/webhooks/{sub['id']}/test")
    assert sent.status_code == 202, sent.text
    delivery = sent.json()
    assert delivery["type"] == "webhook.test" and delivery["status"] in ("pending", "delivered")
    wait_for(lambda: receiver.successes()[delivery["webhook_id"]], "the test event")
    (got,) = receiver.attempts()
    assert verifies(receiver.secret, got)
    body = WebhookTestEvent.model_validate_json(got.body)  # what the OpenAPI webhooks section documents
    assert body.data.subscription_id == sub["id"] and body.data.id == got.webhook_id == delivery["webhook_id"]
    (logged,) = settled(api, sub["id"], r)
    assert logged["status"] == "delivered" and logged["type"] == "webhook.test"
    assert other.attempts() == [] and r.xlen(OUTBOX) == 0  # not an alert: the outbox never saw it
    documented = api.get("/openapi.json").json()["webhooks"]
    assert "webhook.test" in documented
    assert api.post("/v1/webhooks/wh_nope/test").status_code == 404


def test_the_last_failed_attempt_counts_as_failed_not_retry(
        api: httpx.Client, r: redis.Redis, receivers: Callable[..., Receiver]) -> None:
    retries = counter(api, "emodrift_webhook_attempts_total", 'result="retry"')
    failures = counter(api, "emodrift_webhook_attempts_total", 'result="failed"')
    receiver = receivers(default=503)
    sub = subscribe(api, receiver)
    publish(r, alert())
    (dead,) = settled(api, sub["id"], r)
    assert [a["result"] for a in dead["attempts"]] == ["retry", "retry", "retry", "failed"]  # FAST: 3 retries
    assert dead["status"] == "dead_lettered" and "retries exhausted: HTTP 503" in dead["reason"]
    assert dead["attempts"][-1].get("next_attempt_at") is None
    assert counter(api, "emodrift_webhook_attempts_total", 'result="retry"') - retries == 3
    assert counter(api, "emodrift_webhook_attempts_total", 'result="failed"') - failures == 1


def test_logs_name_the_receiver_host_never_its_path_or_query(
        api: httpx.Client, r: redis.Redis, receivers: Callable[..., Receiver],
        caplog: pytest.LogCaptureFixture) -> None:
    receiver = receivers(script=[500])
    host = receiver.url.rsplit("/", 1)[0]  # http://127.0.0.1:<port>
    url = f"{host}/hooks/path-token-123?key=query-token-456"
    created = api.post("/v1/webhooks", json={"url": url, "events": ["drift.started"]})
    assert created.status_code == 201
    receiver.secret = created.json()["secret"]
    caplog.set_level(logging.DEBUG)
    event = publish(r, alert())
    wait_for(lambda: receiver.successes()[event["id"]], "the delivery after one 500")
    settled(api, created.json()["id"], r)
    messages = [record.getMessage() for record in caplog.records]
    assert not [m for m in messages if "token-123" in m or "token-456" in m or "/hooks" in m], messages
    assert any(host in m and "retry" in m for m in messages if m.startswith("webhook attempt")), messages
    assert any(m.startswith("HTTP Request: POST " + host) for m in messages), messages  # httpx's own line, cut
