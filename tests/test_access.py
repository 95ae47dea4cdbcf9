"""Access control, rate limiting, retention and logs (issue: nothing lost, nobody let in)."""

from __future__ import annotations

import doctest
import hashlib
import json
import logging
import os
import subprocess
import sys
import time

import httpx
import pytest
import redis
from pydantic import ValidationError

from service import access, cli, keys, logs, rate_limit, timeline_codec
from service.config import Settings
from service.embedded_redis import EmbeddedRedis
from tests.conftest import start_service
from tests.constants import HAPPY, SAD


def test_the_key_kinds_examples_and_each_settings_description_names_its_scopes() -> None:
    assert doctest.testmod(access).failed == 0
    for kind, scopes in access.KINDS.items():
        description = Settings.model_fields[access.SETTING[kind]].description or ""
        named = {scope for scope in access.SCOPES if f"`{scope}`" in description}
        assert named == set(scopes), (kind, named)


def test_scopes_401_without_key_403_with_the_wrong_scope(redis_server: EmbeddedRedis, redis_client: redis.Redis) -> None:
    svc = start_service(redis_url=redis_server.url, api_keys=["ingest-key"], admin_api_keys=["admin-key"])
    try:
        with svc.client() as client:
            body = {"post_id": "a", "probabilities": HAPPY}
            ingest = {"authorization": "Bearer ingest-key"}
            admin = {"authorization": "Bearer admin-key"}
            assert client.post("/v1/users/u1/observations", json=body).status_code == 401
            assert client.post("/v1/users/u1/observations", json=body,
                               headers={"authorization": "Bearer wrong"}).json()["error"]["code"] == "unauthorized"
            assert client.post("/v1/users/u1/observations", json=body, headers=ingest).status_code == 200
            assert client.get("/v1/users/u1", headers=ingest).status_code == 200
            # admin routes
            forbidden = client.delete("/v1/users/u1", headers=ingest)
            assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "forbidden"
            assert client.get("/v1/model", headers=ingest).status_code == 403
            assert client.get("/v1/model", headers=admin).status_code == 200
            # admin keys hold the ingest scope too
            assert client.post("/v1/users/u1/observations", json={**body, "post_id": "b"}, headers=admin).status_code == 200
            assert client.delete("/v1/users/u1", headers=admin).status_code == 204
            # probes and metrics stay open for the orchestrator and Prometheus
            assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
            assert client.get("/metrics").status_code == 200
    finally:
        svc.stop()


def test_a_reviewer_key_reads_and_judges_alerts_and_nothing_else(redis_server: EmbeddedRedis,
                                                                  redis_client: redis.Redis) -> None:
    svc = start_service(redis_url=redis_server.url, api_keys=["ingest-key"], reviewer_api_keys=["reviewer-key"],
                        admin_api_keys=["admin-key"])
    try:
        with svc.client() as client:
            ingest = {"authorization": "Bearer ingest-key"}
            reviewer = {"x-api-key": "reviewer-key"}
            # without a key, a 401 comes first, whatever the query (a 422 for ?bogus= described the API)
            assert client.get("/v1/alerts", params={"bogus": "1"}).status_code == 401
            assert client.get("/v1/alerts", params={"bogus": "1"}, headers=reviewer).status_code == 422
            alert = None
            for i in range(90):  # a happy user turns sad: the platform's key posts, the detector alarms
                answer = client.post("/v1/users/u1/observations", headers=ingest,
                                     json={"post_id": f"p{i}", "probabilities": HAPPY if i < 40 else SAD}).json()
                if answer["alert"]:
                    alert = answer["alert"]
                    break
            assert alert is not None
            # the reviewer reads what it needs to judge...
            for path in ("/v1/users/u1", "/v1/users/u1/timeline", "/v1/users/u1/timeline.svg", "/v1/alerts",
                         f"/v1/alerts/{alert['id']}"):
                assert client.get(path, headers=reviewer).status_code == 200, path
            # ...and judges; the platform's ingest key may not
            refused = client.post(f"/v1/alerts/{alert['id']}/acknowledge", headers=ingest)
            assert refused.status_code == 403 and "needs review (reviewer or admin keys)" in refused.json()["error"]["message"]
            assert client.post(f"/v1/alerts/{alert['id']}/acknowledge", headers=reviewer).json()["status"] == "acknowledged"
            judged = client.post(f"/v1/alerts/{alert['id']}/resolve", headers=reviewer, json={"verdict": "confirmed"})
            assert judged.status_code == 200 and judged.json()["verdict"] == "confirmed"
            # who judged a person is on record: the key's label, never the key (an outside review: "no
            # audit trail of who judged a person")
            label = "key:" + hashlib.sha256(b"reviewer-key").hexdigest()[:8]
            assert judged.json()["acknowledged_by"] == judged.json()["resolved_by"] == label
            assert b"reviewer-key" not in json.dumps(judged.json()).encode()
            # nothing else: no posts, no erasure, no webhooks, no model
            for method, path, body in (("POST", "/v1/users/u1/observations", {"post_id": "x", "probabilities": HAPPY}),
                                       ("POST", "/v1/posts/batch", {"items": []}),
                                       ("DELETE", "/v1/users/u1", None), ("GET", "/v1/webhooks", None),
                                       ("POST", "/v1/webhooks", {"url": "https://example.com/hook"}),
                                       ("GET", "/v1/model", None)):
                answer = client.request(method, path, headers=reviewer, json=body)
                assert answer.status_code == 403 and answer.json()["error"]["code"] == "forbidden", (method, path)
    finally:
        svc.stop()


def test_reviewer_keys_alone_close_the_api(redis_server: EmbeddedRedis, redis_client: redis.Redis) -> None:
    svc = start_service(redis_url=redis_server.url, reviewer_api_keys=["reviewer-key"])
    try:
        with svc.client() as client:
            body = {"post_id": "a", "probabilities": HAPPY}
            assert client.post("/v1/users/u1/observations", json=body).status_code == 401
            assert client.get("/v1/alerts").status_code == 401
            assert client.get("/v1/alerts", headers={"authorization": "Bearer reviewer-key"}).status_code == 200
    finally:
        svc.stop()
    assert cli.preflight(Settings(reviewer_api_keys="reviewer-key"), "0.0.0.0")[0] is None  # keys: served
    refused, _ = cli.preflight(Settings(), "0.0.0.0")
    assert refused is not None and "EMODRIFT_REVIEWER_API_KEYS" in refused


def test_rate_limit_per_key_is_shared_through_redis(redis_server: EmbeddedRedis, redis_client: redis.Redis,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # both replicas run in this process: freeze the limiter's clock so all requests share one window
    monkeypatch.setattr(rate_limit, "clock", lambda: 1_700_000_000.5)
    a = start_service(redis_url=redis_server.url, api_keys=["k1", "k2"], rate_limit_per_second=5)
    b = start_service(redis_url=redis_server.url, api_keys=["k1", "k2"], rate_limit_per_second=5)  # another replica
    try:
        with a.client() as ca, b.client() as cb:
            responses = [c.get("/v1/users/nobody", headers={"authorization": "Bearer k1"}) for c in (ca, cb) * 5]
            # alternating replicas: 5 pass, then the counter they share refuses
            assert [r.status_code for r in responses] == [404] * 5 + [429] * 5
            assert responses[5].headers["retry-after"] and responses[5].json()["error"]["code"] == "rate_limited"
            # another key has its own budget
            assert cb.get("/v1/users/nobody", headers={"authorization": "Bearer k2"}).status_code == 404
    finally:
        a.stop()
        b.stop()


def test_refused_requests_do_not_count_and_retry_after_says_when_one_is_admitted(
        redis_server: EmbeddedRedis, monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused requests were counted too: a client that waited Retry-After (1 s) was refused again, and 10
    workers sharing a key limited to 5 a second got 0.6 a second (an audit)."""
    clock = [1_700_000_000.5]
    monkeypatch.setattr(rate_limit, "clock", lambda: clock[0])
    svc = start_service(redis_url=redis_server.url, api_keys=["k-retry"], rate_limit_per_second=5)
    try:
        with svc.client() as client:
            def get() -> httpx.Response:
                return client.get("/v1/users/nobody", headers={"authorization": "Bearer k-retry"})
            assert [get().status_code for _ in range(30)] == [404] * 5 + [429] * 25
            refused = get()
            assert refused.headers["retry-after"] == "1", refused.headers  # the oldest leaves the window in 1 s
            clock[0] += 0.6
            assert get().status_code == 429  # the 5 admitted are still within the last second
            clock[0] += 0.4  # a second after them: the limit again, whatever the 27 refused did
            assert [get().status_code for _ in range(6)] == [404] * 5 + [429]
    finally:
        svc.stop()


def test_the_limit_is_exact_for_a_paced_client_and_a_burst_at_a_seconds_edge(
        redis_server: EmbeddedRedis, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two counters of whole seconds, one weighted, held a client pacing itself at 5 a second to 4, and let
    9 through in under a second to a burst at a second's edge (a re-audit). The log of admitted times is
    exact: the limit each second, never more in any one second."""
    clock = [1_700_000_300.0]
    monkeypatch.setattr(rate_limit, "clock", lambda: clock[0])
    svc = start_service(redis_url=redis_server.url, api_keys=["k-paced", "k-burst"], rate_limit_per_second=5)
    try:
        with svc.client() as client:
            def get(key: str) -> int:
                return client.get("/v1/users/nobody", headers={"authorization": f"Bearer {key}"}).status_code
            paced = []
            for k in range(25):  # 5 a second, evenly
                clock[0] = 1_700_000_300.0 + k * 0.2
                paced.append(get("k-paced"))
            assert paced == [404] * 25, paced
            admitted = []
            clock[0] = 1_700_000_400.93
            admitted += [clock[0] for _ in range(6) if get("k-burst") == 404]  # 5 of them, at .93
            while clock[0] < 1_700_000_401.92:  # then asked every 10 ms to the end of that second
                clock[0] += 0.01
                admitted += [clock[0]] if get("k-burst") == 404 else []
            assert len(admitted) == 5, admitted
    finally:
        svc.stop()


def test_inactive_users_expire_after_the_retention_period(client, redis_client: redis.Redis, service) -> None:  # type: ignore[no-untyped-def]
    client.post("/v1/users/old/observations", json={"post_id": "p", "probabilities": HAPPY})
    retention = service.settings.user_retention_seconds
    for key in (keys.state("old"), keys.timeline("old"), keys.seen("old")):
        assert retention - 5 <= redis_client.ttl(key) <= retention, key
    # the post's entry is its idempotency record: dated when written, it stops answering retries after
    # idempotency_ttl_seconds and is dropped by a later write (tests/test_compact_storage.py)
    entry = redis_client.lindex(keys.timeline("old"), -1)
    assert time.time() - 5 <= timeline_codec.received(entry) <= time.time()


def test_serve_refuses_a_public_address_without_keys(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMODRIFT_")}
    env["EMODRIFT_DATA_DIR"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-m", "service.cli", "serve", "--host", "0.0.0.0"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "refusing" in done.stderr
    assert not (tmp_path / "redis.log").exists()  # refused before starting anything


def test_a_key_listed_for_two_kinds_stops_the_start_naming_the_settings_not_the_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """It used to be silently admin: demoting a key (admin -> ingest) without removing it kept it admin."""
    for pair in (("api_keys", "admin_api_keys"), ("api_keys", "reviewer_api_keys"),
                 ("reviewer_api_keys", "admin_api_keys")):
        with pytest.raises(ValidationError) as refused:
            Settings(**{pair[0]: "ops-key-7f3a,other", pair[1]: "x, ops-key-7f3a"})
        assert all(f"EMODRIFT_{name.upper()}" in str(refused.value) for name in pair), refused.value
        assert "ops-key-7f3a" not in str(refused.value)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMODRIFT_")}
    env.update(EMODRIFT_DATA_DIR=str(tmp_path), EMODRIFT_API_KEYS="ops-key-7f3a",
               EMODRIFT_ADMIN_API_KEYS="ops-key-7f3a")
    done = subprocess.run([sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "EMODRIFT_API_KEYS and EMODRIFT_ADMIN_API_KEYS share a key" in done.stderr, done.stderr
    assert "ops-key-7f3a" not in done.stderr + done.stdout
    assert not (tmp_path / "redis.log").exists()  # refused before starting anything


def test_json_logs_hash_user_ids_and_never_carry_bytes(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from service.config import get_settings

    monkeypatch.setenv("EMODRIFT_LOG_HASH_USER_IDS", "true")
    get_settings.cache_clear()
    try:
        ref = logs.user_ref("alice@example")
        assert ref.startswith("u_") and "alice" not in ref and ref == logs.user_ref("alice@example")
        record = logging.LogRecord("emodrift", logging.INFO, __file__, 1, "drift event", (), None)
        record.user, record.image = ref, b"\xff\xd8\xff" * 1000
        line = json.loads(logs.JsonFormatter().format(record))
        assert line["msg"] == "drift event" and line["user"] == ref and line["image"] == "<3000 bytes>"
    finally:
        get_settings.cache_clear()
